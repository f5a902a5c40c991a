//! One assigned partition and its life.
//!
//! ```text
//!   assign ──► Active ──revoke──► Draining ──drain done / deadline──► (gone: Closed)
//!                │                                     ▲
//!                └──── lost ──────────────────────────┘ (at once, nothing committed)
//!   Active ──offsets went backwards──► (gone) + Active under a new generation
//! ```
//!
//! Every assignment (and every rewind) gets a fresh generation. Work remembers the generation it
//! was taken under; an ack, a parked retry, a held dead letter or a commit result of an older
//! generation finds no partition of that generation and is counted as stale and dropped — it
//! never touches the new owner's offsets (DESIGN.md contract 2).

use super::Work;
use crate::kafka::retention::Continuity;
use crate::pipeline::budget::Budget;
use crate::pipeline::lanes::Lanes;
use crate::pipeline::offset_tracker::OffsetTracker;

/// Where a partition is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Owned: messages are taken, delivered and committed.
    Active,
    /// Revoked: nothing new is taken or started; what is in flight finishes (or the drain
    /// deadline passes), then the final offsets go to the poll thread and the partition goes.
    Draining,
}

impl Phase {
    pub(super) fn is_draining(self) -> bool {
        self == Phase::Draining
    }
}

/// State of one assigned partition.
pub(super) struct Partition<M> {
    pub(super) generation: u64,
    pub(super) phase: Phase,
    pub(super) tracker: OffsetTracker,
    /// The offset the next message should have; a message above it skipped offsets.
    pub(super) continuity: Continuity,
    pub(super) lanes: Lanes<Work<M>>,
    pub(super) budget: Budget,
    /// Tasks (delivery, probe, DLQ write) of this generation not yet acknowledged.
    pub(super) in_flight: usize,
    /// HTTP deliveries of this partition in flight (bounded by `max_in_flight_per_partition`).
    pub(super) requests: usize,
    /// This partition's metric handles, looked up once per assignment instead of per message.
    pub(super) consumed_metric: prometheus::IntCounter,
    pub(super) progress_metric: prometheus::IntGauge,
}

impl<M> Partition<M> {
    /// True when `generation` is this partition's current one and it still takes work.
    pub(super) fn owns(&self, generation: u64) -> bool {
        self.generation == generation && !self.phase.is_draining()
    }
}
