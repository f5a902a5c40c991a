//! DLQ replay: runs dead-lettered messages through the *current* mapping and delivery again
//! (typically after a mapping fix), and keeps the ones that still fail in the DLQ.
//!
//! The replayer reads the DLQ topic with its own consumer group (`<group_id>.replay`), from its
//! committed position (or `--since` a time), up to the end offsets seen at start — records it
//! appends itself are left for the next run. Each record is rebuilt into its original message
//! (topic, partition and offset from the `mcm.source.*` headers; original key, value and headers)
//! and processed by the pipeline's own stage, [`crate::pipeline::process`]. A record that still
//! cannot be delivered is appended to the DLQ again with its new reason and `mcm.replay.count`
//! incremented. The replay
//! group commits a DLQ offset only after its record was delivered or re-appended (acknowledged by
//! Kafka), so an interrupted replay resumes without losing anything. `--dry-run` maps and validates
//! only: nothing is sent, appended or committed.

use crate::config::Config;
use crate::kafka::dlq::{DlqProducer, DlqReason};
use crate::mapping::{MappingPlan, Processed, SourceMessage};
use crate::pipeline::deliver::Deliverer;
use crate::pipeline::process;
use crate::pipeline::work::AckResult;
use crate::schema::FetchOnDemand;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub read: u64,
    pub delivered: u64,
    pub filtered: u64,
    /// Still failing: re-appended to the DLQ (or, in a dry run, would be).
    pub still_failing: u64,
    /// Would be delivered (dry run only).
    pub would_deliver: u64,
    /// Still-failing reasons with counts.
    pub reasons: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("DLQ: {0}")]
    Dlq(#[from] super::dlq::DlqError),
    #[error("DLQ topic {0:?} does not exist or has no partitions")]
    NoSuchTopic(String),
    #[error("MCM client: {0}")]
    Client(#[from] crate::mcm::client::ClientError),
    #[error("{0}")]
    RegistryClient(#[from] crate::schema::registry::RegistryClientError),
    /// The schema a dead letter needs could not be fetched: stopped before judging it, so it is
    /// not dead-lettered again for the registry's sake.
    #[error("{0}; replay stopped (run it again when the registry answers)")]
    Registry(#[from] crate::schema::FetchError),
    #[error("record {topic}[{partition}]@{offset} lacks the mcm.source.topic header: not written by mcm-bridge")]
    NotADeadLetter {
        topic: String,
        partition: i32,
        offset: i64,
    },
    #[error(
        "delivery halted: MCM answered {status} ({detail}); fix the configuration and replay again"
    )]
    Fatal { status: u16, detail: String },
}

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub dlq_topic: String,
    /// Start at this Unix time (ms) instead of the replay group's committed position.
    pub since_ms: Option<i64>,
    pub dry_run: bool,
}

fn header_str(msg: &OwnedMessage, name: &str) -> Option<String> {
    msg.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Replays `opts.dlq_topic` once, up to its end at start.
pub async fn replay(
    config: &Config,
    plan: &MappingPlan,
    deliverer: &Deliverer,
    opts: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let mut schemas = FetchOnDemand::new(config.schema_registry.as_ref())?;
    let k = &config.kafka;
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &k.bootstrap_servers)
        .set("group.id", format!("{}.replay", k.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest");
    for (key, value) in &k.properties {
        cc.set(key, value);
    }
    super::security::apply(&mut cc, k);
    let consumer: BaseConsumer = cc.create().map_err(|e| super::security::scrub(e, k))?;
    let md = consumer.fetch_metadata(Some(&opts.dlq_topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = md
        .topics()
        .first()
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(ReplayError::NoSuchTopic(opts.dlq_topic.clone()));
    }
    // Where to start and where to stop, per partition.
    let mut ends = BTreeMap::new();
    let mut starts = TopicPartitionList::new();
    let committed = {
        let mut t = TopicPartitionList::new();
        for p in &partitions {
            t.add_partition(&opts.dlq_topic, *p);
        }
        consumer.committed_offsets(t, Duration::from_secs(10)).ok()
    };
    let by_time = match opts.since_ms {
        Some(ms) => {
            let mut t = TopicPartitionList::new();
            for p in &partitions {
                t.add_partition_offset(&opts.dlq_topic, *p, Offset::Offset(ms))?;
            }
            Some(consumer.offsets_for_times(t, Duration::from_secs(10))?)
        }
        None => None,
    };
    for p in &partitions {
        let (lo, hi) = consumer.fetch_watermarks(&opts.dlq_topic, *p, Duration::from_secs(10))?;
        let from_group = committed
            .as_ref()
            .and_then(|c| c.find_partition(&opts.dlq_topic, *p))
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let from_time = by_time
            .as_ref()
            .and_then(|c| c.find_partition(&opts.dlq_topic, *p))
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => hi, // no record at or after the time
            });
        let start = from_time.or(from_group).unwrap_or(lo).max(lo);
        if start < hi {
            ends.insert(*p, hi);
            starts.add_partition_offset(&opts.dlq_topic, *p, Offset::Offset(start))?;
        }
    }
    let mut report = ReplayReport::default();
    if ends.is_empty() {
        return Ok(report);
    }
    consumer.assign(&starts)?;
    let dlq = if opts.dry_run {
        None
    } else {
        Some(DlqProducer::new(
            k,
            &opts.dlq_topic,
            config.mcm.api_key.expose(),
        )?)
    };
    let cancel = CancellationToken::new();
    let mut remaining = ends.clone();
    while !remaining.is_empty() {
        let Some(next) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let record = next?.detach();
        let partition = record.partition();
        let offset = record.offset();
        report.read += 1;
        let outcome = replay_one(
            config,
            plan,
            deliverer,
            &mut schemas,
            &record,
            opts.dry_run,
            &cancel,
        )
        .await?;
        match outcome {
            Outcome::Delivered => report.delivered += 1,
            Outcome::WouldDeliver => report.would_deliver += 1,
            Outcome::Filtered => report.filtered += 1,
            Outcome::StillFailing(why) => {
                report.still_failing += 1;
                *report.reasons.entry(why.reason.clone()).or_default() += 1;
                if let Some(dlq) = &dlq {
                    let again = with_replay_count(&record);
                    dlq.send(&again, &why).await?;
                }
            }
        }
        if !opts.dry_run {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&opts.dlq_topic, partition, Offset::Offset(offset + 1))?;
            consumer.commit(&tpl, CommitMode::Sync)?;
        }
        if remaining
            .get(&partition)
            .is_some_and(|end| offset + 1 >= *end)
        {
            remaining.remove(&partition);
        }
    }
    Ok(report)
}

enum Outcome {
    Delivered,
    WouldDeliver,
    Filtered,
    StillFailing(DlqReason),
}

async fn replay_one(
    config: &Config,
    plan: &MappingPlan,
    deliverer: &Deliverer,
    schemas: &mut FetchOnDemand,
    record: &OwnedMessage,
    dry_run: bool,
    cancel: &CancellationToken,
) -> Result<Outcome, ReplayError> {
    let not_ours = || ReplayError::NotADeadLetter {
        topic: record.topic().to_string(),
        partition: record.partition(),
        offset: record.offset(),
    };
    let topic = header_str(record, "mcm.source.topic").ok_or_else(not_ours)?;
    let partition = header_str(record, "mcm.source.partition")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let offset = header_str(record, "mcm.source.offset")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(&str, Option<&[u8]>)> = record
        .headers()
        .map(|h| {
            h.iter()
                .filter(|h| !h.key.starts_with("mcm."))
                .map(|h| (h.key, h.value))
                .collect()
        })
        .unwrap_or_default();
    let source = SourceMessage {
        topic: &topic,
        partition,
        offset,
        key: record.key(),
        headers: &headers,
        timestamp_ms: match record.timestamp() {
            Timestamp::NotAvailable => None,
            t => t.to_millis(),
        },
        payload: record.payload(),
    };
    if let Some(block) = plan.route(&topic) {
        schemas.ensure(block, source.payload).await?;
    }
    let processed = process::process(
        plan,
        &source,
        &process::validate_options(config),
        &schemas.book,
    );
    match processed {
        Processed::Filtered { .. } => Ok(Outcome::Filtered),
        Processed::Reject {
            class,
            reason,
            detail,
            schema_id,
        } => Ok(Outcome::StillFailing(process::dlq_reason(
            class, reason, detail, schema_id,
        ))),
        Processed::Deliver(_) if dry_run => Ok(Outcome::WouldDeliver),
        Processed::Deliver(event) => {
            match deliverer
                .deliver(bytes::Bytes::from(event.body), cancel)
                .await
            {
                AckResult::Delivered => Ok(Outcome::Delivered),
                AckResult::Undeliverable(why) => Ok(Outcome::StillFailing(why)),
                AckResult::Fatal { status, detail } => Err(ReplayError::Fatal { status, detail }),
                other => Ok(Outcome::StillFailing(DlqReason {
                    class: "replay".into(),
                    reason: format!("{other:?}").to_lowercase(),
                    http_status: None,
                    response_snippet: None,
                    schema_id: None,
                })),
            }
        }
    }
}

/// The record to re-append: original key/value, original headers plus the `mcm.source.*`
/// headers (so a later replay finds its origin) and `mcm.replay.count` + 1. The old
/// `mcm.error.*` headers are replaced by the new reason's.
fn with_replay_count(record: &OwnedMessage) -> OwnedMessage {
    let count: u32 = header_str(record, "mcm.replay.count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = OwnedHeaders::new();
    let source_topic = header_str(record, "mcm.source.topic").unwrap_or_default();
    let source_partition: i32 = header_str(record, "mcm.source.partition")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let source_offset: i64 = header_str(record, "mcm.source.offset")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if let Some(h) = record.headers() {
        for h in h.iter().filter(|h| !h.key.starts_with("mcm.")) {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    let count = (count + 1).to_string();
    headers = headers.insert(Header {
        key: "mcm.replay.count",
        value: Some(count.as_bytes()),
    });
    // DlqProducer::send adds mcm.source.* from the message's own topic/partition/offset, so the
    // rebuilt message carries the *original* coordinates.
    OwnedMessage::new(
        record.payload().map(<[u8]>::to_vec),
        record.key().map(<[u8]>::to_vec),
        source_topic,
        record.timestamp(),
        source_partition,
        source_offset,
        Some(headers),
    )
}
