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

use super::consumer::{BridgeContext, Tp};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often lag is sampled: three small batched requests per interval, whatever the partition
/// count.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(2);
/// How long one broker request of a sample may take before the sample is skipped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
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
fn sample(consumer: &BaseConsumer<BridgeContext>, tps: &[Tp]) -> KafkaResult<Vec<(Tp, i64)>> {
    // ListOffsets with timestamp -1 (`Offset::End`) answers the end offset, -2 the start.
    let ends =
        offsets_by_tp(&consumer.offsets_for_times(list_of(tps, Offset::End)?, REQUEST_TIMEOUT)?);
    let committed = offsets_by_tp(
        &consumer.committed_offsets(list_of(tps, Offset::Invalid)?, REQUEST_TIMEOUT)?,
    );
    let uncommitted: Vec<Tp> = tps
        .iter()
        .filter(|tp| !committed.contains_key(*tp))
        .cloned()
        .collect();
    let starts = if uncommitted.is_empty() {
        HashMap::new()
    } else {
        offsets_by_tp(
            &consumer
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

/// The sampling thread. Holds only a weak reference to the consumer so that closing the
/// consumer (the poll thread drops the last strong one) is never delayed by a sample.
pub struct LagSampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl LagSampler {
    pub fn start(consumer: Weak<BaseConsumer<BridgeContext>>) -> std::io::Result<LagSampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kafka-lag".into())
                .spawn(move || run(&consumer, &stop))?
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

fn run(consumer: &Weak<BaseConsumer<BridgeContext>>, stop: &AtomicBool) {
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
        let Some(consumer) = consumer.upgrade() else {
            return; // the consumer is closed
        };
        let tps = consumer.context().assigned_partitions();
        if tps.is_empty() {
            continue;
        }
        match sample(&consumer, &tps) {
            Ok(lags) => {
                if failing {
                    tracing::info!("consumer lag sampling works again");
                    failing = false;
                }
                consumer.context().publish_lag(&lags);
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
