//! `consumer_lag_messages`: per assigned partition, the broker's end offset minus the group's
//! committed offset, sampled from the broker itself.
//!
//! Why not librdkafka's statistics (what we did first, and what Vector does): their end offset
//! comes from Fetch responses, so it freezes while a partition is paused — exactly when lag
//! matters (MCM down, API key rejected, circuit open): producers keep writing and the gauge keeps
//! showing the value of the last fetch. A partition paused before its first fetch had no value at
//! all (the flaky CI failure of `lag_metrics_match_broker_watermarks_and_committed_offsets`).
//! Anchors also report raw `consumer_lag` as wrong or negative (Vector #21134, #21649).
//!
//! So a dedicated thread asks the broker every [`SAMPLE_INTERVAL`]: one batched ListOffsets for
//! the end offsets, one OffsetFetch for the committed offsets, and one more ListOffsets for the
//! start offsets of partitions with nothing committed yet. That is the number
//! `kafka-consumer-groups --describe` prints. With `isolation.level=read_committed` (librdkafka's
//! default) the end offset is the last stable offset: what this consumer can actually read.
//!
//! The sampler has **its own client** (same settings and group id, never subscribed, so it never
//! joins the group). Sharing the consuming client was measured to hurt: on tansu, under steady
//! produce load, these requests sometimes took over 5 s; librdkafka then drops the connection
//! (`socket.max.fails` = 1), which took the consumer's in-flight fetches with it every few seconds
//! (the bridge fell to 1,762 accepted/s of 2,000 produced). On a shared connection its requests
//! can also wait behind the consumer's long-polling fetches (a broker serves one request at a
//! time per connection). With a separate client a slow broker only delays the gauge.
//!
//! The same thread and client also keep the subscribed topics' partition counts
//! (`topic_partitions`, see [`super::topic_partitions`]), so unowned partitions can be seen.

use super::consumer::{consumer_config, Tp};
use super::retention::{expired, headroom_messages, headroom_seconds, Gap, Gaps};
use super::security::QuietContext;
use super::topic_partitions::TopicPartitions;
use super::topic_retention::TopicRetention;
use crate::config::KafkaConfig;
use crate::observe::metrics::Metrics;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LockResult, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The partitions assigned to this member right now, kept by the rebalance callbacks: what the
/// sampler measures. Revokes remove their partitions' lag series under the same lock, so a
/// sample that began before a revoke cannot bring a series back.
#[derive(Debug, Default)]
pub struct Assigned(Mutex<HashSet<Tp>>);

impl Assigned {
    pub fn lock(&self) -> LockResult<MutexGuard<'_, HashSet<Tp>>> {
        self.0.lock()
    }

    fn snapshot(&self) -> Vec<Tp> {
        self.lock()
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Sets `consumer_lag_messages` for the partitions of `lags` still assigned.
    fn publish(&self, metrics: &Metrics, lags: &[(Tp, i64)]) {
        let Ok(assigned) = self.lock() else { return };
        for (tp, lag) in lags {
            if assigned.contains(tp) {
                metrics
                    .consumer_lag_messages
                    .with_label_values(&[&*tp.topic, tp.partition.to_string().as_str()])
                    .set(*lag);
            }
        }
    }
}

/// How often lag is sampled: three small batched requests per interval, whatever the partition
/// count.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one broker request of a sample may take before the sample is skipped (the gauges
/// keep their values).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the sampling thread looks at its stop flag while waiting.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The lag of one partition: end − committed, or end − start when nothing is committed yet
/// (everything still in the log is unread). Never negative: a committed offset past the end
/// (the log was truncated or replaced) means nothing is left to read here, and the coordinator
/// reports the rewind itself.
pub fn lag_of(end: i64, committed: Option<i64>, start: Option<i64>) -> Option<i64> {
    let base = committed.or(start)?;
    Some((end - base).max(0))
}

/// Offsets of `tpl` that the broker answered without error, by partition.
fn offsets_by_tp(tpl: &TopicPartitionList) -> HashMap<Tp, i64> {
    tpl.elements()
        .iter()
        .filter(|e| e.error().is_ok())
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some((Tp::new(e.topic(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

fn list_of(tps: &[Tp], offset: Offset) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::with_capacity(tps.len());
    for tp in tps {
        tpl.add_partition_offset(&tp.topic, tp.partition, offset)?;
    }
    Ok(tpl)
}

/// What one sample learned from the broker.
#[derive(Debug, Default)]
struct Sample {
    /// The lag of every assigned partition the broker answered for.
    lags: Vec<(Tp, i64)>,
    /// Log start offsets of the assigned partitions and of those with gaps to check.
    starts: HashMap<Tp, i64>,
    /// The group's committed offsets of the assigned partitions that have one.
    committed: HashMap<Tp, i64>,
}

/// One sample of the assigned partitions `tps`, plus the log start of `also_start` (partitions
/// with skipped offsets to check, which may have been revoked since).
fn sample(
    client: &BaseConsumer<QuietContext>,
    tps: &[Tp],
    also_start: &[Tp],
) -> KafkaResult<Sample> {
    let mut out = Sample::default();
    if !tps.is_empty() {
        // ListOffsets with timestamp -1 (`Offset::End`) answers the end offset, -2 the start.
        let ends =
            offsets_by_tp(&client.offsets_for_times(list_of(tps, Offset::End)?, REQUEST_TIMEOUT)?);
        out.committed = offsets_by_tp(
            &client.committed_offsets(list_of(tps, Offset::Invalid)?, REQUEST_TIMEOUT)?,
        );
        let mut want_start: Vec<Tp> = tps.to_vec();
        want_start.extend(also_start.iter().filter(|tp| !tps.contains(tp)).cloned());
        out.starts = offsets_by_tp(
            &client.offsets_for_times(list_of(&want_start, Offset::Beginning)?, REQUEST_TIMEOUT)?,
        );
        out.lags = tps
            .iter()
            .filter_map(|tp| {
                let end = *ends.get(tp)?;
                let lag = lag_of(
                    end,
                    out.committed.get(tp).copied(),
                    out.starts.get(tp).copied(),
                )?;
                Some((tp.clone(), lag))
            })
            .collect();
    } else if !also_start.is_empty() {
        out.starts = offsets_by_tp(
            &client.offsets_for_times(list_of(also_start, Offset::Beginning)?, REQUEST_TIMEOUT)?,
        );
    }
    Ok(out)
}

/// The sampling thread and its client.
pub struct LagSampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LagSampler {
    /// Starts sampling the partitions in `assigned`, checking the skipped offsets the
    /// coordinator records in `gaps` against the log start (see [`super::retention`]), and
    /// counting the partitions of the topics in `subscriptions` (the consumer's subscription
    /// list).
    pub fn start(
        k: &KafkaConfig,
        subscriptions: &[String],
        assigned: Arc<Assigned>,
        metrics: Arc<Metrics>,
        gaps: Arc<Gaps>,
    ) -> KafkaResult<LagSampler> {
        let mut config = consumer_config(k);
        config.set("client.id", format!("{}-lag", k.client_id));
        // Never a group member: a static member id belongs to the consuming client alone.
        config.remove("group.instance.id");
        let client: BaseConsumer<QuietContext> = config
            .create_with_context(QuietContext { client: "lag" })
            .map_err(|e| super::security::scrub(e, k))?;
        let retention = TopicRetention::new(k)?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            let mut watch = Watch {
                group: k.group_id.clone(),
                client,
                assigned,
                metrics,
                gaps,
                retention,
                partitions: TopicPartitions::new(subscriptions),
            };
            std::thread::Builder::new()
                .name("kafka-lag".into())
                .spawn(move || watch.run(&stop))
                .map_err(|e| KafkaError::ClientCreation(format!("cannot start lag thread: {e}")))?
        };
        Ok(LagSampler {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops sampling; returns the thread handle to join (a sample in progress ends within
    /// [`REQUEST_TIMEOUT`] per request).
    pub fn stop(mut self) -> Option<std::thread::JoinHandle<()>> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.take()
    }
}

impl Drop for LagSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The sampling thread's state: its client, and where it reads and writes.
struct Watch {
    /// The consumer group, named in the loss log line (several bridges may log to one place).
    group: String,
    client: BaseConsumer<QuietContext>,
    assigned: Arc<Assigned>,
    metrics: Arc<Metrics>,
    gaps: Arc<Gaps>,
    retention: TopicRetention,
    partitions: TopicPartitions,
}

impl Watch {
    fn run(&mut self, stop: &AtomicBool) {
        let mut failing = false;
        let mut next = Instant::now() + SAMPLE_INTERVAL;
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now < next {
                // The dedicated sampling thread, never a tokio worker.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(STOP_CHECK.min(next - now));
                continue;
            }
            next = now + SAMPLE_INTERVAL;
            // Also on a member with nothing assigned: any member's count will do.
            self.partitions.refresh(&self.client, &self.metrics);
            let tps = self.assigned.snapshot();
            let (pending, unchecked) = self.gaps.take();
            if unchecked > 0 {
                self.metrics.offset_gaps_unchecked.inc_by(unchecked);
                tracing::warn!(unchecked, "too many skipped offset ranges to check against the log start; a loss among them would go uncounted");
            }
            if tps.is_empty() && pending.is_empty() {
                continue;
            }
            let mut gap_tps: Vec<Tp> = pending.iter().map(|g| g.tp.clone()).collect();
            gap_tps.sort_unstable();
            gap_tps.dedup();
            match sample(&self.client, &tps, &gap_tps) {
                Ok(s) => {
                    if failing {
                        tracing::info!("consumer lag sampling works again");
                        failing = false;
                    }
                    self.assigned.publish(&self.metrics, &s.lags);
                    self.check_gaps(pending, &s.starts);
                    self.retention.refresh(tps.iter().map(|tp| &*tp.topic));
                    self.publish_headroom(&s);
                }
                Err(e) => {
                    // Checked at the next sample: the log start only grows, so a loss stays one.
                    for g in pending {
                        self.gaps.record(g);
                    }
                    // The gauges keep their last values; broker trouble shows in its own metrics.
                    if !failing {
                        tracing::warn!(error = %e, "cannot sample consumer lag from the broker; keeping the last values");
                        failing = true;
                    }
                }
            }
        }
    }

    /// Counts and logs every gap that begins below its partition's log start: those offsets were
    /// deleted before the bridge processed them.
    fn check_gaps(&self, pending: Vec<Gap>, starts: &HashMap<Tp, i64>) {
        for gap in pending {
            let Some(&log_start) = starts.get(&gap.tp) else {
                // The broker did not answer for it (deleted topic, no leader): nothing to compare.
                self.metrics.offset_gaps_unchecked.inc();
                continue;
            };
            let Some(e) = expired(&gap, log_start) else {
                continue;
            };
            let lost = e.gap.len();
            self.metrics
                .messages_expired
                .with_label_values(&[&*gap.tp.topic, gap.tp.partition.to_string().as_str()])
                .inc_by(u64::try_from(lost).unwrap_or(0));
            tracing::error!(
                group = %self.group,
                partition = %gap.tp,
                from = e.gap.from,
                to = e.gap.to,
                log_start = e.log_start,
                lost,
                "offsets were deleted by the broker before the bridge processed them (retention shorter than the outage or halt?): these events were neither delivered nor dead-lettered"
            );
        }
    }

    /// Retention headroom of the assigned partitions, in messages and (for topics with
    /// time-based retention) in seconds.
    fn publish_headroom(&self, s: &Sample) {
        let Ok(assigned) = self.assigned.lock() else {
            return;
        };
        let m = &self.metrics;
        for tp in assigned.iter() {
            let partition = tp.partition.to_string();
            let labels = [&*tp.topic, partition.as_str()];
            if let (Some(&c), Some(&start)) = (s.committed.get(tp), s.starts.get(tp)) {
                m.retention_headroom_messages
                    .with_label_values(&labels)
                    .set(headroom_messages(c, start));
            }
            let Some(retention_ms) = self.retention.get(&tp.topic) else {
                continue;
            };
            if retention_ms >= 0 {
                m.topic_retention_seconds
                    .with_label_values(&[&*tp.topic])
                    .set(retention_ms / 1000);
            }
            let age = m.consumer_lag_seconds.with_label_values(&labels).get();
            if let Some(h) = headroom_seconds(retention_ms, age) {
                m.retention_headroom_seconds
                    .with_label_values(&labels)
                    .set(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_committed_offset() {
        assert_eq!(lag_of(100, Some(40), Some(0)), Some(60));
        assert_eq!(lag_of(100, Some(100), Some(0)), Some(0));
    }

    #[test]
    fn nothing_committed_counts_from_the_start_of_the_log() {
        assert_eq!(lag_of(100, None, Some(30)), Some(70));
        assert_eq!(lag_of(100, None, None), None);
    }

    #[test]
    fn a_committed_offset_past_the_end_is_zero_lag_not_negative() {
        assert_eq!(lag_of(10, Some(25), Some(0)), Some(0));
    }
}
