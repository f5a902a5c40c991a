//! Ordering lanes inside one partition (DESIGN.md contract 6).
//!
//! In `per_key` mode every Kafka key is a lane; in `per_partition` mode the whole partition is one
//! lane; in `unordered` mode there are no lanes. A lane has at most one message in flight; the
//! others wait here in arrival (= offset) order and start one by one as their predecessor
//! finishes, so messages of one key complete in order while other keys of the same partition keep
//! flowing (a failing key does not block its neighbours — Parallel Consumer's KEY mode). Messages
//! without a key have no ordering constraint. Pure data; waiting messages count against the
//! in-flight budget of the caller, so this queue is bounded by that budget.

use crate::config::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

/// Identifies a lane within a partition.
pub type LaneId = u64;

/// The lane of a message, or `None` when it may run concurrently with anything.
pub fn lane_of(ordering: Ordering, key: Option<&[u8]>) -> Option<LaneId> {
    match ordering {
        Ordering::Unordered => None,
        Ordering::PerPartition => Some(0),
        Ordering::PerKey => key.map(|k| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            k.hash(&mut h);
            h.finish()
        }),
    }
}

/// Lanes of one partition: busy lanes and the messages waiting behind them.
#[derive(Debug)]
pub struct Lanes<T> {
    /// A lane present here has one message in flight; the deque holds the ones waiting.
    busy: HashMap<LaneId, VecDeque<T>>,
    waiting: usize,
}

impl<T> Default for Lanes<T> {
    fn default() -> Self {
        Lanes {
            busy: HashMap::new(),
            waiting: 0,
        }
    }
}

impl<T> Lanes<T> {
    pub fn new() -> Lanes<T> {
        Lanes::default()
    }

    /// Offers a message. Returns it back if it may start now (its lane was idle, or it has no
    /// lane); otherwise keeps it until [`finish`](Self::finish) releases it.
    pub fn admit(&mut self, lane: Option<LaneId>, item: T) -> Option<T> {
        let Some(lane) = lane else { return Some(item) };
        match self.busy.entry(lane) {
            Entry::Vacant(v) => {
                v.insert(VecDeque::new());
                Some(item)
            }
            Entry::Occupied(mut o) => {
                o.get_mut().push_back(item);
                self.waiting += 1;
                None
            }
        }
    }

    /// The in-flight message of `lane` finished; returns the next one to start, if any.
    pub fn finish(&mut self, lane: Option<LaneId>) -> Option<T> {
        let lane = lane?;
        let Entry::Occupied(mut o) = self.busy.entry(lane) else {
            return None;
        };
        match o.get_mut().pop_front() {
            Some(next) => {
                self.waiting -= 1;
                Some(next)
            }
            None => {
                o.remove();
                None
            }
        }
    }

    /// Messages waiting behind a busy lane.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Removes and returns every waiting message (partition revoked: they were never started,
    /// are not committed, and the next owner reads them again).
    pub fn take_waiting(&mut self) -> Vec<T> {
        self.waiting = 0;
        self.busy.drain().flat_map(|(_, q)| q).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_waits_other_keys_flow() {
        let mut l = Lanes::new();
        let a = lane_of(Ordering::PerKey, Some(b"a"));
        let b = lane_of(Ordering::PerKey, Some(b"b"));
        assert_eq!(l.admit(a, 1), Some(1));
        assert_eq!(l.admit(a, 2), None, "second message of key a waits");
        assert_eq!(l.admit(b, 3), Some(3), "key b is not blocked by key a");
        assert_eq!(l.admit(a, 4), None);
        assert_eq!(l.waiting(), 2);
        assert_eq!(l.finish(a), Some(2), "a's messages start in order");
        assert_eq!(l.finish(a), Some(4));
        assert_eq!(l.finish(a), None);
        assert_eq!(l.admit(a, 5), Some(5), "lane is idle again");
        assert_eq!(l.waiting(), 0);
    }

    #[test]
    fn unordered_and_keyless_never_wait() {
        let mut l = Lanes::new();
        assert_eq!(lane_of(Ordering::Unordered, Some(b"a")), None);
        assert_eq!(lane_of(Ordering::PerKey, None), None);
        for i in 0..10 {
            assert_eq!(l.admit(None, i), Some(i));
        }
        assert_eq!(l.finish(None), None);
    }

    #[test]
    fn per_partition_is_one_lane() {
        let mut l = Lanes::new();
        let p1 = lane_of(Ordering::PerPartition, Some(b"x"));
        let p2 = lane_of(Ordering::PerPartition, None);
        assert_eq!(p1, p2);
        assert_eq!(l.admit(p1, 1), Some(1));
        assert_eq!(l.admit(p2, 2), None);
        let mut rest = l.take_waiting();
        rest.sort_unstable();
        assert_eq!(rest, vec![2]);
        assert_eq!(l.waiting(), 0);
    }
}
