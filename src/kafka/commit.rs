//! Synchronous offset commits and the partition lists they take.

use super::consumer::Tp;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Commits `offsets` synchronously, retrying transient failures until `give_up_at` (at least
/// one attempt; `Instant::now()` means exactly one).
///
/// The retries are bounded by the deadline, not a count: a group that refuses with
/// REBALANCE_IN_PROGRESS answers within milliseconds, so a count would give up within a second
/// of a rebalance that settles in two. One attempt itself is librdkafka's to bound (with no group
/// coordinator it can take up to the session timeout); callers that must not wait that long run
/// this on a blocking thread and stop waiting for it (`pipeline::committer::final_commit`).
pub fn commit_sync<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    offsets: &[(Tp, i64)],
    why: &str,
    give_up_at: Instant,
) -> bool {
    let Some(tpl) = tpl_of(offsets) else {
        return false;
    };
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                tracing::info!(why, partitions = offsets.len(), "offsets committed");
                return true;
            }
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {
                return true
            }
            Err(e) => {
                tracing::warn!(why, attempt, error = %e, "synchronous commit failed");
                let pause = Duration::from_millis(100 * attempt.min(5));
                if Instant::now() + pause >= give_up_at {
                    return false;
                }
                #[allow(clippy::disallowed_methods)]
                // the poll thread / a blocking task, not async code
                std::thread::sleep(pause);
            }
        }
    }
}

/// A TopicPartitionList of `(tp, next offset to read)`; offsets are taken as given.
pub fn tpl_of(offsets: &[(Tp, i64)]) -> Option<TopicPartitionList> {
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for (tp, off) in offsets {
        if tpl
            .add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*off))
            .is_err()
        {
            return None;
        }
    }
    Some(tpl)
}

/// A TopicPartitionList without offsets (for pause/resume).
pub fn tpl_of_tps<'a>(tps: impl IntoIterator<Item = &'a Tp>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for tp in tps {
        tpl.add_partition(&tp.topic, tp.partition);
    }
    tpl
}
