//! The `delivery` section: ordering, what happens to a message that cannot be delivered, the
//! in-flight budgets, and the bounds of a drain and of the final commit. It reads the `kafka` and
//! `mcm` sections for its defaults (the DLQ topic, the per-partition window) and for the rule
//! that spans sections: `drain_timeout` below the group's session timeout.

use super::decode::{ConfigError, MapReader};
use super::group_protocol::GroupProtocol;
use super::kafka::KafkaConfig;
use super::mcm::McmConfig;
use serde_yaml_ng::Value;
use std::time::Duration;
use strum::{EnumString, IntoStaticStr, VariantNames};

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr, VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum Ordering {
    /// Any number of messages of a partition in flight; commits stay in offset order.
    Unordered,
    /// Messages with the same Kafka key are never in flight together and complete in order.
    PerKey,
    /// One message per partition at a time.
    PerPartition,
}

impl Ordering {
    /// The config spelling: `unordered`, `per_key`, `per_partition`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What happens to a message that cannot be delivered (permanent error or exhausted retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr, VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum FailurePolicy {
    /// Write it to the dead-letter topic with the reason, then count it done. Never loses data.
    Dlq,
    /// Count it and move on (the count is the only trace).
    Drop,
    /// Stop delivery for the bridge and keep the offset: an operator must act.
    Halt,
}

impl FailurePolicy {
    /// The config spelling: `dlq`, `drop`, `halt`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The policy spelled exactly as [`as_str`](Self::as_str) gives it (case-sensitive).
    pub fn parse(s: &str) -> Option<FailurePolicy> {
        s.parse().ok()
    }
}

/// Whether the bridge delivers, or only reports what it would deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr, VariantNames)]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryMode {
    /// POST to MCM, write the DLQ, commit the group's offsets.
    Live,
    /// The first step of a rollout: consume under `shadow_group_id`, map and validate everything,
    /// count what would be delivered and dead-lettered, never POST to MCM nor write the DLQ, and
    /// commit only the shadow group's offsets (see `pipeline::tasks`).
    Shadow,
}

impl DeliveryMode {
    /// The config spelling: `live`, `shadow`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `live`, or `shadow` (also `run --dry-run`).
    pub mode: DeliveryMode,
    /// The consumer group of shadow mode; defaults to `<group_id>.shadow` and never equals
    /// `kafka.group_id`, so a shadow run cannot move the production group's offsets.
    pub shadow_group_id: String,
    pub ordering: Ordering,
    pub on_permanent_failure: FailurePolicy,
    /// Dead-letter topic; defaults to `<group_id>.dlq`.
    pub dlq_topic: String,
    pub max_in_flight_per_partition: usize,
    pub max_in_flight_bytes: u64,
    pub max_in_flight_bytes_per_partition: u64,
    /// How long a revoke or shutdown waits for in-flight deliveries; below the session timeout.
    pub drain_timeout: Duration,
    /// Finished but uncommitted messages a partition may hold before it stops taking more: the
    /// most its next owner replays when commits keep failing (see `pipeline::commit_ledger`).
    pub max_uncommitted_per_partition: usize,
    /// How long the final commit of a shutdown or a revoke may take, whatever the broker does:
    /// with `drain_timeout` it bounds how long SIGTERM takes (see `pipeline::shutdown`).
    pub final_commit_timeout: Duration,
}

pub(super) fn read_delivery(
    v: &Value,
    kafka: Option<&KafkaConfig>,
    mcm: Option<&McmConfig>,
    errors: &mut Vec<ConfigError>,
) -> Option<DeliveryConfig> {
    let mut r = MapReader::new(v, "delivery", errors)?;
    let mode = r.choice("mode", DeliveryMode::Live);
    let shadow_group_id = r.opt_string("shadow_group_id");
    if let (Some(shadow), Some(k)) = (&shadow_group_id, kafka) {
        if *shadow == k.group_id {
            r.error(
                "shadow_group_id",
                "must differ from kafka.group_id: a shadow run commits its own group's offsets, never production's",
            );
        }
    }
    let ordering = r.choice("ordering", Ordering::Unordered);
    let on_permanent_failure = r.choice("on_permanent_failure", FailurePolicy::Dlq);
    let dlq_topic = r.opt_string("dlq_topic");
    let global = mcm.map_or(256, |m| m.max_in_flight);
    let max_in_flight_per_partition = r
        .opt::<usize>("max_in_flight_per_partition")
        .unwrap_or(global);
    if max_in_flight_per_partition == 0 {
        r.error("max_in_flight_per_partition", "must be at least 1");
    }
    let max_in_flight_bytes = r.bytes("max_in_flight_bytes").unwrap_or(64 << 20);
    let max_in_flight_bytes_per_partition = r
        .bytes("max_in_flight_bytes_per_partition")
        .unwrap_or(max_in_flight_bytes.min(16 << 20));
    if max_in_flight_bytes == 0 || max_in_flight_bytes_per_partition == 0 {
        r.error("max_in_flight_bytes", "byte budgets must be above zero");
    }
    let drain_timeout = r
        .duration("drain_timeout")
        .unwrap_or(Duration::from_secs(15));
    // 4 × the partition's request window: commits (every commit_interval, or every max_in_flight
    // finished messages) keep a healthy partition far below it, so only failing commits reach it.
    let max_uncommitted_per_partition = r
        .opt::<usize>("max_uncommitted_per_partition")
        .unwrap_or(max_in_flight_per_partition.saturating_mul(4));
    if max_uncommitted_per_partition < max_in_flight_per_partition {
        r.error(
            "max_uncommitted_per_partition",
            format!(
                "must be at least max_in_flight_per_partition ({max_in_flight_per_partition}): a smaller bound pauses healthy partitions between commits"
            ),
        );
    }
    // 5 s: a healthy group answers a commit in milliseconds, and a rebalance refuses it for a
    // second or two. With the default 15 s drain and ~1 s to close, SIGTERM ends in about 21 s at
    // worst: well inside the 30 s grace of docker compose and the 45 s of the shipped manifests.
    let final_commit_timeout = r
        .duration("final_commit_timeout")
        .unwrap_or(Duration::from_secs(5));
    if final_commit_timeout.is_zero() {
        r.error("final_commit_timeout", "must be above zero");
    }
    if let Some(k) = kafka {
        // Vector refuses the same combination: a drain longer than the session timeout gets the
        // member expelled mid-drain, so its commits fail and everything is re-delivered.
        // Under the consumer protocol the session timeout is the broker's; its default is the
        // bound we can check (a broker set lower is the operator's to match).
        let session = k.group_protocol.session_timeout();
        if drain_timeout >= session {
            let whose = match k.group_protocol {
                GroupProtocol::Classic { .. } => "kafka.session_timeout",
                GroupProtocol::Consumer { .. } => {
                    "the broker's default group.consumer.session.timeout.ms"
                }
            };
            r.error(
                "drain_timeout",
                format!(
                    "{} must be below {whose} ({})",
                    humantime::format_duration(drain_timeout),
                    humantime::format_duration(session)
                ),
            );
        }
    }
    r.finish();
    let dlq_topic = dlq_topic.or_else(|| kafka.map(|k| format!("{}.dlq", k.group_id)))?;
    let shadow_group_id =
        shadow_group_id.or_else(|| kafka.map(|k| format!("{}.shadow", k.group_id)))?;
    Some(DeliveryConfig {
        mode,
        shadow_group_id,
        ordering,
        on_permanent_failure,
        dlq_topic,
        max_in_flight_per_partition,
        max_in_flight_bytes,
        max_in_flight_bytes_per_partition,
        drain_timeout,
        max_uncommitted_per_partition,
        final_commit_timeout,
    })
}
