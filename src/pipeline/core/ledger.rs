//! The one place that adds and removes messages and bytes from the budgets.
//!
//! Three budgets bound what the bridge holds: the global in-flight budget (everything taken and
//! not finished, except parked retries), each partition's own in-flight budget, and the parked
//! budget (messages waiting out a retry backoff, which hold no request slot). A message is in
//! exactly one of "in flight" (global + its partition) or "parked" at any time; the methods here
//! move it between them, so the counts return to exactly zero when nothing is held (checked by
//! the model test after every step).
//!
//! When the global or parked budget is full, intake stops: first by the intake gate, after
//! [`GATE_BEFORE_PAUSE`] by a real pause (see `flow`). Each method returns whether partition
//! pauses must be re-evaluated.

use crate::config::Config;
use crate::pipeline::budget::{Budget, Flow};
use std::time::{Duration, Instant};

/// How long a full global budget only closes the intake gate before it becomes a librdkafka
/// pause. Short enough that a rebalance waits at most this long for `poll()`; long enough that a
/// healthy pipeline, whose budget frees within milliseconds, never pays a pause.
pub(super) const GATE_BEFORE_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(super) struct Ledger {
    global: Budget,
    parked: Budget,
    /// When the global (or parked) budget became full (`None` while both have room).
    full_since: Option<Instant>,
    /// Full for longer than [`GATE_BEFORE_PAUSE`]: pause every partition.
    global_pause: bool,
    per_partition: (usize, u64),
}

impl Ledger {
    pub(super) fn new(config: &Config) -> Ledger {
        let d = &config.delivery;
        let slots = config.mcm.max_in_flight;
        Ledger {
            global: Budget::new(
                slots.saturating_mul(super::TAKEN_PER_REQUEST_SLOT),
                d.max_in_flight_bytes,
            ),
            parked: Budget::new(
                slots.saturating_mul(super::PARKED_PER_REQUEST_SLOT),
                d.max_in_flight_bytes,
            ),
            full_since: None,
            global_pause: false,
            per_partition: (
                d.max_in_flight_per_partition
                    .saturating_mul(super::TAKEN_PER_REQUEST_SLOT),
                d.max_in_flight_bytes_per_partition,
            ),
        }
    }

    /// A new partition's own budget.
    pub(super) fn partition_budget(&self) -> Budget {
        Budget::new(self.per_partition.0, self.per_partition.1)
    }

    /// A message taken (or back from parking): counted in flight, globally and in `partition`.
    pub(super) fn take(&mut self, partition: &mut Budget, bytes: u64, now: Instant) -> bool {
        let mut dirty = partition.add(bytes) == Flow::Pause;
        if self.global.add(bytes) == Flow::Pause {
            dirty |= self.refresh(now);
        }
        dirty
    }

    /// `n` in-flight messages of `partition` (when it is still held) finished or forgotten.
    pub(super) fn release(
        &mut self,
        partition: Option<&mut Budget>,
        n: usize,
        bytes: u64,
        now: Instant,
    ) -> bool {
        if n == 0 {
            return false;
        }
        let mut dirty = partition.is_some_and(|p| remove(p, n, bytes) == Flow::Resume);
        if remove(&mut self.global, n, bytes) == Flow::Resume {
            dirty |= self.refresh(now);
        }
        dirty
    }

    /// The rest of a dropped partition's in-flight budget leaves the global one (its tasks may
    /// still run; their acks are stale and release nothing again).
    pub(super) fn release_partition(&mut self, partition: &Budget, now: Instant) -> bool {
        self.release(None, partition.messages(), partition.bytes(), now)
    }

    /// An in-flight message starts waiting out a retry backoff.
    pub(super) fn park(
        &mut self,
        partition: Option<&mut Budget>,
        bytes: u64,
        now: Instant,
    ) -> bool {
        let dirty = partition.is_some_and(|p| p.remove(bytes) == Flow::Resume);
        let _ = self.global.remove(bytes);
        let _ = self.parked.add(bytes);
        self.refresh(now) | dirty
    }

    /// A parked message leaves the parked budget (due, or dropped with its partition).
    pub(super) fn unpark(&mut self, bytes: u64) {
        let _ = self.parked.remove(bytes);
    }

    /// Re-reads whether intake must stop; true when pauses must be re-evaluated.
    pub(super) fn refresh(&mut self, now: Instant) -> bool {
        let full = self.global.is_paused() || self.parked.is_paused();
        match (full, self.full_since) {
            (true, None) => {
                self.full_since = Some(now);
                false
            }
            (false, Some(_)) => {
                self.full_since = None;
                self.global_pause = false;
                // Resumes what the global pause held, and pauses partitions still over their own
                // budget (the gate no longer holds them).
                true
            }
            _ => false,
        }
    }

    /// On a tick: a budget full for longer than [`GATE_BEFORE_PAUSE`] becomes a pause, since
    /// deliveries are stalled, not just busy. True when that just happened.
    pub(super) fn escalate(&mut self, now: Instant) -> bool {
        if !self.global_pause
            && self
                .full_since
                .is_some_and(|t| now.duration_since(t) >= GATE_BEFORE_PAUSE)
        {
            self.global_pause = true;
            return true;
        }
        false
    }

    pub(super) fn is_full(&self) -> bool {
        self.full_since.is_some()
    }

    pub(super) fn global_pause(&self) -> bool {
        self.global_pause
    }

    /// (messages, bytes) held in flight and parked.
    pub(super) fn held(&self) -> (usize, u64) {
        (
            self.global.messages() + self.parked.messages(),
            self.global.bytes() + self.parked.bytes(),
        )
    }

    #[cfg(test)]
    pub(super) fn in_flight(&self) -> (usize, u64) {
        (self.global.messages(), self.global.bytes())
    }

    #[cfg(test)]
    pub(super) fn parked(&self) -> (usize, u64) {
        (self.parked.messages(), self.parked.bytes())
    }
}

fn remove(budget: &mut Budget, n: usize, bytes: u64) -> Flow {
    if n == 1 {
        budget.remove(bytes)
    } else {
        budget.remove_many(n, bytes)
    }
}
