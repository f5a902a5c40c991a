//! Synchronous offset commits, the partition lists they take, and reading the group's
//! committed offsets at an assignment.

use super::consumer::Tp;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
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

/// How long an assignment waits for the group's committed offsets of its new partitions.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(5);

/// The group's committed offset of each newly assigned partition: where consumption resumes,
/// so that a first message above it is known to have skipped offsets. One OffsetFetch per
/// rebalance, on the poll thread inside the assign callback (librdkafka serves it on its own
/// thread, and fetching starts only after the callback anyway). On a timeout or error the
/// offsets are unknown (`None`): the skip check then starts at the first message, and the
/// retention headroom gauge still shows a committed offset below the log start.
pub(super) fn committed_positions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    tpl: &TopicPartitionList,
    tps: &[Tp],
) -> Vec<(Tp, Option<i64>)> {
    let committed = match consumer.committed_offsets(tpl.clone(), COMMITTED_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the committed offsets of the new partitions; offsets skipped at their start will not be detected");
            return tps.iter().map(|tp| (tp.clone(), None)).collect();
        }
    };
    tps.iter()
        .map(|tp| {
            let offset = committed
                .find_partition(&tp.topic, tp.partition)
                .filter(|e| e.error().is_ok())
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o),
                    _ => None,
                });
            (tp.clone(), offset)
        })
        .collect()
}
