//! A unit of work (one Kafka message on its way to MCM or the DLQ) and the acknowledgement a
//! finished task sends back to the coordinator.
//!
//! A message's whole life is one [`Work`], kept by the pure core ([`super::core`]) from the
//! moment it is taken until it is finished or forgotten. Tasks never hold it: a delivery task
//! gets a [`TaskId`] and the body, a DLQ task a copy of the message, and each answers with one
//! [`Ack`] naming the id, so the core finds the work it started and the generation it was started
//! under.

use crate::delivery::sender::Tally;
use crate::kafka::access::AccessDenied;
use crate::kafka::consumer::Tp;
use crate::kafka::dlq::{DlqReason, Unwritable};
use crate::mcm::event::EventType;
use crate::pipeline::lanes::LaneId;
use bytes::Bytes;
use std::time::Duration;

/// Names a task (a delivery, a probe or a DLQ write) for as long as it runs.
pub type TaskId = u64;

/// One message between consumption and being finished. `M` is the original message (key,
/// value, headers), kept for the DLQ: an rdkafka `OwnedMessage` in the bridge, `()` in the
/// model test of the core.
#[derive(Debug)]
pub struct Work<M> {
    pub msg: M,
    pub tp: Tp,
    /// Assignment generation of the partition when the message was taken (contract 2).
    pub generation: u64,
    pub offset: i64,
    /// Bytes counted against the in-flight budgets.
    pub bytes: u64,
    pub lane: Option<LaneId>,
    /// The serialised MCM event, for deliveries.
    pub body: Option<Bytes>,
    pub event_type: Option<EventType>,
    /// Why it goes to the DLQ, once it does.
    pub why: Option<DlqReason>,
    /// Sent as a probe while delivery is halted by a configuration error.
    pub probe: bool,
    /// Written to the DLQ as the probe of held dead letters (see `super::dlq_hold`).
    pub dlq_probe: bool,
    /// An HTTP delivery task holds a request slot for it.
    pub request: bool,
    /// Delivery attempts so far (a retry continues the count).
    pub tally: Tally,
    /// DLQ writes that failed transiently so far: the retry backoff.
    pub dlq_attempts: u32,
}

impl<M> Work<M> {
    pub fn new(msg: M, tp: Tp, generation: u64, offset: i64, bytes: u64) -> Work<M> {
        Work {
            msg,
            tp,
            generation,
            offset,
            bytes,
            lane: None,
            body: None,
            event_type: None,
            why: None,
            probe: false,
            dlq_probe: false,
            request: false,
            tally: Tally::default(),
            dlq_attempts: 0,
        }
    }
}

/// Why a DLQ write failed, as the core decides on it (the producer's error, classified).
#[derive(Debug)]
pub enum DlqFailure {
    /// Kafka refused the write (no WRITE on the DLQ topic).
    Denied(AccessDenied),
    /// Kafka cannot take it until the cluster changes (topic missing, record too large).
    Unwritable(Unwritable),
    /// Broker down, timeouts: worth retrying after a backoff.
    Transient(String),
}

/// How a task ended.
#[derive(Debug)]
pub enum AckResult {
    /// MCM accepted the event.
    Delivered,
    /// MCM will never accept it as it is (400 …) or retries ran out: apply the failure policy.
    Undeliverable(DlqReason),
    /// 401/403/404/405/3xx: configuration error; park the message and halt delivery.
    Fatal { status: u16, detail: String },
    /// A retryable failure: park the message (releasing its request slot) and attempt it again
    /// after `delay`.
    RetryAfter { delay: Duration },
    /// A probe got a retryable answer: still unknown whether the configuration works.
    ProbeInconclusive,
    /// Aborted by revoke or shutdown; the message stays unfinished (re-read by the next owner).
    Cancelled,
    /// Written to the DLQ and acknowledged by Kafka.
    DeadLettered,
    /// The DLQ write failed; retried (or, when Kafka refused it, held) while the offset keeps
    /// holding the watermark.
    DlqFailed(DlqFailure),
}

/// A finished task, sent back to the coordinator.
#[derive(Debug)]
pub struct Ack {
    pub task: TaskId,
    /// The delivery attempts after a delivery task (`None` for probes and DLQ writes, which do
    /// not count against `max_attempts`).
    pub tally: Option<Tally>,
    pub result: AckResult,
}
