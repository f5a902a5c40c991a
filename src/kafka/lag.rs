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

use super::consumer::{consumer_config, Tp};
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

/// One sample: the lag of every partition in `tps` the broker answered for.
fn sample(client: &BaseConsumer, tps: &[Tp]) -> KafkaResult<Vec<(Tp, i64)>> {
    // ListOffsets with timestamp -1 (`Offset::End`) answers the end offset, -2 the start.
    let ends =
        offsets_by_tp(&client.offsets_for_times(list_of(tps, Offset::End)?, REQUEST_TIMEOUT)?);
    let committed =
        offsets_by_tp(&client.committed_offsets(list_of(tps, Offset::Invalid)?, REQUEST_TIMEOUT)?);
    let uncommitted: Vec<Tp> = tps
        .iter()
        .filter(|tp| !committed.contains_key(*tp))
        .cloned()
        .collect();
    let starts = if uncommitted.is_empty() {
        HashMap::new()
    } else {
        offsets_by_tp(
            &client
                .offsets_for_times(list_of(&uncommitted, Offset::Beginning)?, REQUEST_TIMEOUT)?,
        )
    };
    Ok(tps
        .iter()
        .filter_map(|tp| {
            let end = *ends.get(tp)?;
            let lag = lag_of(end, committed.get(tp).copied(), starts.get(tp).copied())?;
            Some((tp.clone(), lag))
        })
        .collect())
}

/// The sampling thread and its client.
pub struct LagSampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LagSampler {
    pub fn start(
        k: &KafkaConfig,
        assigned: Arc<Assigned>,
        metrics: Arc<Metrics>,
    ) -> KafkaResult<LagSampler> {
        let mut config = consumer_config(k);
        config.set("client.id", format!("{}-lag", k.client_id));
        // Never a group member: a static member id belongs to the consuming client alone.
        config.remove("group.instance.id");
        let client: BaseConsumer = config.create()?;
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kafka-lag".into())
                .spawn(move || run(&client, &assigned, &metrics, &stop))
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

fn run(client: &BaseConsumer, assigned: &Assigned, metrics: &Metrics, stop: &AtomicBool) {
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
        let tps = assigned.snapshot();
        if tps.is_empty() {
            continue;
        }
        match sample(client, &tps) {
            Ok(lags) => {
                if failing {
                    tracing::info!("consumer lag sampling works again");
                    failing = false;
                }
                assigned.publish(metrics, &lags);
            }
            Err(e) => {
                // The gauges keep their last values; broker trouble shows in its own metrics.
                if !failing {
                    tracing::warn!(error = %e, "cannot sample consumer lag from the broker; keeping the last values");
                    failing = true;
                }
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
