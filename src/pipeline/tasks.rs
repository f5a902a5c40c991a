//! The tasks the core's effects start: one delivery attempt, a probe, a DLQ write. Each answers
//! with exactly one [`Ack`] naming its task id; each partition generation's tasks share a
//! cancellation token, cancelled when the partition goes.
//!
//! In shadow mode ([`Sink::Shadow`]) the same effects answer at once, as if MCM had accepted
//! every request and Kafka every dead letter: nothing leaves the process, while the core keeps
//! every decision it makes live (budgets, ordering, failure policies, commits), so the shadow
//! group's offsets and counts are what a live run would have produced.

use super::deliver::Deliverer;
use super::work::{Ack, AckResult, DlqFailure, TaskId};
use crate::delivery::sender::Tally;
use crate::kafka::consumer::Tp;
use crate::kafka::dlq::{DlqError, DlqProducer, DlqReason};
use bytes::Bytes;
use rdkafka::message::OwnedMessage;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where the effects go.
pub enum Sink {
    /// MCM and the DLQ topic.
    Live {
        deliverer: Arc<Deliverer>,
        dlq: DlqProducer,
    },
    /// Nowhere: every delivery counts as accepted and every dead letter as written.
    Shadow,
}

pub struct Tasks {
    sink: Sink,
    acks: mpsc::Sender<Ack>,
    /// Cancels a partition's tasks when it is revoked (one token per generation).
    cancels: HashMap<Tp, CancellationToken>,
}

impl Tasks {
    pub fn new(sink: Sink, acks: mpsc::Sender<Ack>) -> Tasks {
        Tasks {
            sink,
            acks,
            cancels: HashMap::new(),
        }
    }

    /// A partition starts a new generation: its tasks get a new token (after a rewind the old
    /// generation's tasks keep theirs and finish as stale).
    pub fn opened(&mut self, tp: Tp) {
        self.cancels.insert(tp, CancellationToken::new());
    }

    /// A partition is gone: cancel its tasks.
    pub fn closed(&mut self, tp: &Tp) {
        if let Some(cancel) = self.cancels.remove(tp) {
            cancel.cancel();
        }
    }

    /// Shutdown: cancel every task the drain left.
    pub fn cancel_all(&self) {
        for cancel in self.cancels.values() {
            cancel.cancel();
        }
    }

    /// Answers `task` with `result` at once (shadow mode), on a task like a real answer: the
    /// core never sees an answer inside the effect that asked for it.
    fn answer_now(&self, task: TaskId, tally: Option<Tally>, result: AckResult) {
        let acks = self.acks.clone();
        tokio::spawn(async move {
            let _ = acks
                .send(Ack {
                    task,
                    tally,
                    result,
                })
                .await;
        });
    }

    pub fn deliver(&self, task: TaskId, tp: &Tp, body: Bytes, mut tally: Tally) {
        let Sink::Live { deliverer, .. } = &self.sink else {
            return self.answer_now(task, Some(tally), AckResult::Delivered);
        };
        let cancel = self.cancels.get(tp).cloned().unwrap_or_default();
        let (deliverer, acks) = (deliverer.clone(), self.acks.clone());
        tokio::spawn(async move {
            let result = deliverer.attempt(&body, &mut tally, &cancel).await;
            let tally = Some(tally);
            let _ = acks
                .send(Ack {
                    task,
                    tally,
                    result,
                })
                .await;
        });
    }

    pub fn probe(&self, task: TaskId, body: Bytes) {
        let Sink::Live { deliverer, .. } = &self.sink else {
            return self.answer_now(task, None, AckResult::Delivered);
        };
        let (deliverer, acks) = (deliverer.clone(), self.acks.clone());
        tokio::spawn(async move {
            let result = deliverer.probe(body).await;
            let _ = acks
                .send(Ack {
                    task,
                    tally: None,
                    result,
                })
                .await;
        });
    }

    pub fn write_dlq(&self, task: TaskId, msg: OwnedMessage, why: DlqReason, delay: Duration) {
        let Sink::Live { dlq, .. } = &self.sink else {
            return self.answer_now(task, None, AckResult::DeadLettered);
        };
        let (dlq, acks) = (dlq.clone(), self.acks.clone());
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let result = match dlq.send(&msg, &why).await {
                Ok(()) => AckResult::DeadLettered,
                Err(e) => AckResult::DlqFailed(failure_of(e)),
            };
            let _ = acks
                .send(Ack {
                    task,
                    tally: None,
                    result,
                })
                .await;
        });
    }
}

/// The DLQ producer's error, as the core decides on it.
fn failure_of(error: DlqError) -> DlqFailure {
    match error {
        DlqError::Denied(denied) => DlqFailure::Denied(denied),
        DlqError::Unwritable(unwritable) => DlqFailure::Unwritable(unwritable),
        DlqError::Kafka(e) => DlqFailure::Transient(e.to_string()),
    }
}
