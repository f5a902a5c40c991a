//! A unit of work (one Kafka message on its way to MCM or the DLQ) and the acknowledgement a
//! finished task sends back to the coordinator.

use crate::delivery::sender::Tally;
use crate::kafka::consumer::Tp;
use crate::kafka::dlq::{DlqError, DlqReason};
use crate::mcm::event::EventType;
use crate::pipeline::lanes::LaneId;
use bytes::Bytes;
use rdkafka::message::OwnedMessage;
use rdkafka::Message;
use std::time::Duration;

/// One message between consumption and being finished.
#[derive(Debug)]
pub struct Work {
    /// The original message (key, value, headers), kept for the DLQ.
    pub msg: OwnedMessage,
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

impl Work {
    pub fn new(msg: OwnedMessage, tp: Tp, generation: u64) -> Work {
        let offset = msg.offset();
        let bytes =
            (msg.payload().map_or(0, <[u8]>::len) + msg.key().map_or(0, <[u8]>::len)) as u64;
        Work {
            msg,
            tp,
            generation,
            offset,
            bytes,
            lane: None,
            body: None,
            event_type: None,
            probe: false,
            dlq_probe: false,
            request: false,
            tally: Tally::default(),
            dlq_attempts: 0,
        }
    }
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
    DeadLettered { reason: String },
    /// The DLQ write failed; retried (or, when Kafka refused it, held) while the offset keeps
    /// holding the watermark.
    DlqFailed { why: DlqReason, error: DlqError },
}

/// A finished task, sent back to the coordinator.
#[derive(Debug)]
pub struct Ack {
    pub work: Work,
    pub result: AckResult,
}
