//! Messages waiting out a retry backoff, ordered by when they may be attempted again.
//!
//! Moloco's failure protocol asks for at least 5 s before a server error is retried (reference
//! §3.5). A delivery task that slept through that wait would hold one of the `max_in_flight`
//! request slots the whole time, so a background error rate of a few percent would eat most of
//! the concurrency (at 10k events/s, 1 % of 500s parks 500 messages at any moment). Instead the
//! coordinator parks such a message here, with its request slot released, and moves it back to
//! the front of the ready queue once it is due. Pure: the caller passes the time.

use std::collections::BTreeMap;
use std::time::Instant;

/// Items keyed by due time; items due at the same instant keep their parking order.
#[derive(Debug)]
pub struct Parked<T> {
    by_due: BTreeMap<(Instant, u64), T>,
    next_seq: u64,
}

impl<T> Default for Parked<T> {
    fn default() -> Self {
        Parked {
            by_due: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<T> Parked<T> {
    /// Parks `item` until `due`.
    pub fn park(&mut self, due: Instant, item: T) {
        self.by_due.insert((due, self.next_seq), item);
        self.next_seq = self.next_seq.wrapping_add(1);
    }

    /// When the earliest item becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.by_due.keys().next().map(|(due, _)| *due)
    }

    /// Removes and returns every item due at or before `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        while let Some(entry) = self.by_due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }

    /// Removes and returns every item matching `pred` (a revoked partition's), earliest first.
    pub fn take_where(&mut self, pred: impl Fn(&T) -> bool) -> Vec<T> {
        let keys: Vec<(Instant, u64)> = self
            .by_due
            .iter()
            .filter(|(_, item)| pred(item))
            .map(|(key, _)| *key)
            .collect();
        keys.iter()
            .filter_map(|key| self.by_due.remove(key))
            .collect()
    }

    /// The parked items, earliest due first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.by_due.values()
    }

    pub fn len(&self) -> usize {
        self.by_due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn items_come_back_when_due_earliest_first() {
        let t0 = Instant::now();
        let mut p = Parked::default();
        p.park(t0 + Duration::from_secs(7), "c");
        p.park(t0 + Duration::from_secs(5), "a");
        p.park(t0 + Duration::from_secs(6), "b");
        assert_eq!(p.next_due(), Some(t0 + Duration::from_secs(5)));
        assert!(p.take_due(t0 + Duration::from_millis(4999)).is_empty());
        assert_eq!(p.take_due(t0 + Duration::from_secs(6)), vec!["a", "b"]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.take_due(t0 + Duration::from_secs(60)), vec!["c"]);
        assert!(p.is_empty());
        assert_eq!(p.next_due(), None);
    }

    #[test]
    fn items_due_at_the_same_instant_keep_their_order() {
        let t0 = Instant::now();
        let mut p = Parked::default();
        for i in 0..5 {
            p.park(t0, i);
        }
        assert_eq!(p.take_due(t0), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn take_where_removes_only_matching_items() {
        let t0 = Instant::now();
        let mut p = Parked::default();
        for i in 0..10 {
            p.park(t0 + Duration::from_millis(10 - i), i);
        }
        let mut odd = p.take_where(|i| i % 2 == 1);
        odd.sort_unstable();
        assert_eq!(odd, vec![1, 3, 5, 7, 9]);
        assert_eq!(p.len(), 5);
        assert_eq!(p.take_due(t0 + Duration::from_secs(1)), vec![8, 6, 4, 2, 0]);
    }
}
