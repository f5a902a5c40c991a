//! Offset commits, on blocking threads: the periodic one the core plans, and the final one at
//! shutdown, bounded by `delivery.final_commit_timeout` whatever the broker does.

use crate::kafka::consumer::{commit_sync, tpl_of, BridgeContext, Tp};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The result of a periodic commit, from its blocking thread.
pub struct CommitDone {
    /// The core's number for this commit.
    pub seq: u64,
    pub result: Result<(), String>,
    pub elapsed: Duration,
}

/// Commits `offsets` synchronously on a blocking thread and reports to `done`. Synchronous:
/// librdkafka reports a manual async commit's result to nobody here (see
/// [`super::commit_ledger`]), and a refused commit must not count as stored.
pub fn commit_in_background(
    consumer: &Arc<BaseConsumer<BridgeContext>>,
    seq: u64,
    offsets: &[(Tp, i64)],
    done: &mpsc::Sender<CommitDone>,
) {
    let Some(tpl) = tpl_of(offsets) else {
        // The core counts this commit as started: answer it, or no commit starts again until
        // the ledger gives it up as hung.
        let _ = done.try_send(CommitDone {
            seq,
            result: Err(format!("an offset librdkafka does not take: {offsets:?}")),
            elapsed: Duration::ZERO,
        });
        return;
    };
    let (consumer, done) = (consumer.clone(), done.clone());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        let elapsed = started.elapsed();
        let _ = done.blocking_send(CommitDone {
            seq,
            result,
            elapsed,
        });
    });
}

/// The final commit: retried until `budget` has passed, on a blocking thread we can stop
/// waiting for (one synchronous commit may take up to the session timeout while the group has
/// no coordinator). A commit still running after the budget is abandoned; the runtime does not
/// wait for it (`cli::run`). True when it was stored.
pub async fn final_commit(
    consumer: &Arc<BaseConsumer<BridgeContext>>,
    offsets: Vec<(Tp, i64)>,
    budget: Duration,
) -> bool {
    let consumer = consumer.clone();
    let give_up_at = Instant::now() + budget;
    let commit = tokio::task::spawn_blocking(move || {
        commit_sync(&*consumer, &offsets, "shutdown", give_up_at)
    });
    matches!(tokio::time::timeout(budget, commit).await, Ok(Ok(true)))
}
