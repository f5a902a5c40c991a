//! Dead letters Kafka refused to take (no WRITE on the DLQ topic), held until a probe gets one
//! through.
//!
//! Why hold them instead of retrying each every second, as a transient DLQ error is: a refusal
//! does not heal by itself. It takes an operator granting the right, minutes or days away, and
//! retrying meant a warning per dead letter per second (and, with a fatal idempotent producer, a
//! new producer per attempt). Holding keeps the contract all the same (DESIGN.md contract 1): a
//! held message is unfinished, so its partition's watermark stays below it and nothing past it
//! is committed. The coordinator pauses the partitions that hold one (their commits cannot move,
//! so taking more from them only grows what a restart repeats), sends new dead letters of any
//! partition straight here without an attempt, and marks itself not ready. One probe — the
//! oldest held dead letter, written for real — goes out after the first interval, then at
//! doubling intervals up to a cap; when Kafka acknowledges it, every held dead letter is written.
//! A revoked partition's dead letters leave the hold: its next owner reads them again.
//!
//! Pure data and a clock passed in; the items are opaque (the coordinator's work items).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Held dead letters and the probe schedule.
#[derive(Debug)]
pub struct DlqHold<W> {
    held: VecDeque<W>,
    /// A probe is out; its answer decides what happens next.
    probing: bool,
    next_probe: Instant,
    backoff: Duration,
    max_backoff: Duration,
}

impl<W> DlqHold<W> {
    /// An empty hold whose first probe is due `first_probe` after `now`.
    pub fn new(now: Instant, first_probe: Duration, max_backoff: Duration) -> DlqHold<W> {
        DlqHold {
            held: VecDeque::new(),
            probing: false,
            next_probe: now + first_probe,
            backoff: first_probe,
            max_backoff: max_backoff.max(first_probe),
        }
    }

    pub fn hold(&mut self, item: W) {
        self.held.push_back(item);
    }

    /// The held items, oldest first (not the probe out).
    pub fn iter(&self) -> impl Iterator<Item = &W> {
        self.held.iter()
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn is_probing(&self) -> bool {
        self.probing
    }

    /// The current interval between probes.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    /// The oldest held item, to probe with, when a probe is due and none is out.
    pub fn take_probe(&mut self, now: Instant) -> Option<W> {
        if self.probing || now < self.next_probe {
            return None;
        }
        let item = self.held.pop_front()?;
        self.probing = true;
        Some(item)
    }

    /// The probe was refused again: hold it (first in line) and wait twice as long.
    pub fn probe_refused(&mut self, now: Instant, item: W) {
        self.held.push_front(item);
        self.probing = false;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        self.next_probe = now + self.backoff;
    }

    /// The probe failed for another reason (broker unavailable): try again after the same
    /// interval.
    pub fn probe_inconclusive(&mut self, now: Instant, item: W) {
        self.held.push_front(item);
        self.probing = false;
        self.next_probe = now + self.backoff;
    }

    /// The probe's answer will not come (its partition was revoked): probe with another item
    /// at once.
    pub fn probe_lost(&mut self, now: Instant) {
        self.probing = false;
        self.next_probe = now;
    }

    /// Keeps the items `keep` accepts (revoked partitions' items leave).
    pub fn retain(&mut self, keep: impl FnMut(&W) -> bool) {
        self.held.retain(keep);
    }

    /// Removes and returns the items `leave` picks (their partition is draining: the drain must
    /// not wait for a probe, and the next owner reads them again).
    pub fn take_where(&mut self, mut leave: impl FnMut(&W) -> bool) -> Vec<W> {
        let (gone, kept): (Vec<W>, Vec<W>) = self.held.drain(..).partition(|w| leave(w));
        self.held = kept.into();
        gone
    }

    /// Whether any held item satisfies `pred`.
    pub fn any(&self, pred: impl FnMut(&W) -> bool) -> bool {
        self.held.iter().any(pred)
    }

    /// Everything held, oldest first (the probe got through: write them all).
    pub fn release(self) -> Vec<W> {
        self.held.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn probes_with_the_oldest_after_the_first_interval_and_one_at_a_time() {
        let t0 = Instant::now();
        let mut h = DlqHold::new(t0, 5 * S, 60 * S);
        h.hold(1);
        h.hold(2);
        assert_eq!(h.take_probe(t0 + 4 * S), None, "not due yet");
        assert_eq!(h.take_probe(t0 + 5 * S), Some(1));
        assert!(h.is_probing());
        assert_eq!(h.take_probe(t0 + 50 * S), None, "one probe at a time");
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn a_refused_probe_goes_back_first_and_the_interval_doubles_up_to_the_cap() {
        let t0 = Instant::now();
        let mut h = DlqHold::new(t0, 5 * S, 12 * S);
        h.hold(1);
        h.hold(2);
        let p = h.take_probe(t0 + 5 * S).expect("due");
        h.probe_refused(t0 + 6 * S, p);
        assert_eq!(h.backoff(), 10 * S);
        assert_eq!(h.take_probe(t0 + 15 * S), None);
        let p = h.take_probe(t0 + 16 * S).expect("due again");
        assert_eq!(p, 1, "the oldest is probed again");
        h.probe_refused(t0 + 17 * S, p);
        assert_eq!(h.backoff(), 12 * S, "capped");
        let p = h.take_probe(t0 + 29 * S).expect("due");
        h.probe_inconclusive(t0 + 30 * S, p);
        assert_eq!(h.backoff(), 12 * S, "an inconclusive probe does not double");
        assert_eq!(h.release(), [1, 2], "nothing lost, order kept");
    }

    #[test]
    fn a_lost_probe_lets_another_item_probe_at_once() {
        let t0 = Instant::now();
        let mut h = DlqHold::new(t0, 5 * S, 60 * S);
        h.hold(1);
        h.hold(2);
        let _ = h.take_probe(t0 + 5 * S);
        h.probe_lost(t0 + 6 * S);
        assert_eq!(h.take_probe(t0 + 6 * S), Some(2));
    }

    #[test]
    fn revoked_items_leave_and_the_rest_stay() {
        let mut h = DlqHold::new(Instant::now(), S, S);
        for i in 0..6 {
            h.hold(i);
        }
        h.retain(|i| i % 2 == 0);
        assert!(h.any(|i| *i == 4));
        assert!(!h.any(|i| *i == 3));
        assert_eq!(h.release(), [0, 2, 4]);
    }
}
