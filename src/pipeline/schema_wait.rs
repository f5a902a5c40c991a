//! Holding messages until the schema they name is known (schema'd topics, docs/formats.md).
//!
//! The coordinator asks [`SchemaWait::admit`] before the core sees a message. A message whose
//! schema id is not in the book yet — or any message of a partition that has messages held, so
//! that every partition keeps its order — is held here in arrival order, and one fetch runs at
//! a time. When the registry answers, [`SchemaWait::release`] hands back, in order, every held
//! message not behind one of its own partition whose schema is still unknown. Only partitions
//! with held messages are paused ([`SchemaWait::holding`] → `Core::set_schema_wait`): a registry
//! outage stops the partitions that meet a new schema id, while JSON topics and values whose
//! schemas are cached keep flowing; the queue is bounded by what the consumer had already
//! fetched of the paused partitions.
//!
//! What it guarantees: a held message is invisible to the core, so no commit passes it; the
//! coordinator must also not let the poll thread's idle *positions* of a holding partition
//! pass it (they say everything below them was handed over, and a held message was — see
//! [`SchemaWait::is_holding`]). Held messages of a revoked partition are forgotten
//! ([`SchemaWait::forget`]): their next owner reads them again. What it does not do: fetch ids
//! ahead of need, or fetch in parallel (one id per new schema version, once per process; the
//! registry answers in milliseconds).

use crate::schema::{Known, SchemaBook};
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

/// What to do with a message offered to [`SchemaWait::admit`].
#[derive(Debug)]
pub enum Admit<M> {
    /// Map it now.
    Pass(M),
    /// Held; fetch this id now (`None`: a fetch is already running).
    Held { fetch: Option<u32> },
}

/// The held messages, by partition `K`, and the book of known schemas.
#[derive(Debug)]
pub struct SchemaWait<K, M> {
    book: SchemaBook,
    /// Every held message with its partition, in arrival order.
    held: VecDeque<(K, M)>,
    /// How many messages each partition has held (partitions with none are absent).
    holding: HashMap<K, usize>,
    /// The id being fetched (one at a time).
    fetching: Option<u32>,
    /// Failed attempts in a row, for the backoff.
    failures: u32,
}

impl<K: Clone + Eq + Hash, M> SchemaWait<K, M> {
    pub fn new(capacity: usize) -> SchemaWait<K, M> {
        SchemaWait {
            book: SchemaBook::new(capacity),
            held: VecDeque::new(),
            holding: HashMap::new(),
            fetching: None,
            failures: 0,
        }
    }

    pub fn book(&self) -> &SchemaBook {
        &self.book
    }

    /// Whether partition `key` has messages held (the coordinator then ignores its idle
    /// positions).
    pub fn is_holding(&self, key: &K) -> bool {
        self.holding.contains_key(key)
    }

    /// The partitions with messages held: they stay paused.
    pub fn holding(&self) -> impl Iterator<Item = &K> {
        self.holding.keys()
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// `needs` is the schema id the message needs and the book lacks (see
    /// [`crate::schema::missing_schema`]); `key` gives its partition, asked only when something
    /// is held (the common case, nothing held, costs nothing).
    pub fn admit(&mut self, msg: M, key: impl FnOnce(&M) -> K, needs: Option<u32>) -> Admit<M> {
        if self.held.is_empty() && needs.is_none() {
            return Admit::Pass(msg);
        }
        let k = key(&msg);
        if needs.is_none() && !self.holding.contains_key(&k) {
            return Admit::Pass(msg);
        }
        *self.holding.entry(k.clone()).or_insert(0) += 1;
        self.held.push_back((k, msg));
        let fetch = match (self.fetching, needs) {
            (None, Some(id)) => {
                self.fetching = Some(id);
                Some(id)
            }
            _ => None,
        };
        Admit::Held { fetch }
    }

    /// The registry answered for `id`.
    pub fn learned(&mut self, id: u32, known: Known) {
        self.book.learn(id, known);
        self.failures = 0;
        if self.fetching == Some(id) {
            self.fetching = None;
        }
    }

    /// A fetch of `id` failed; the delay before the next attempt (doubling from 100 ms up to
    /// `max`; `max` at once when `refused`, as only a configuration change helps).
    pub fn failed(&mut self, refused: bool, max: Duration) -> Duration {
        self.failures = self.failures.saturating_add(1);
        if refused {
            return max;
        }
        let exp = self.failures.saturating_sub(1).min(16);
        Duration::from_millis(100u64.saturating_mul(1 << exp)).min(max)
    }

    /// Whether a held message still needs schema `id` (`needs` as for [`Self::release`]).
    pub fn needs_id(&self, id: u32, needs: impl Fn(&M, &SchemaBook) -> Option<u32>) -> bool {
        self.held
            .iter()
            .any(|(_, m)| needs(m, &self.book) == Some(id))
    }

    /// Stops waiting for `id` (no held message needs it any more): the next
    /// [`Self::release`] fetches what the first blocked message needs.
    pub fn abandon(&mut self, id: u32) {
        if self.fetching == Some(id) {
            self.fetching = None;
            self.failures = 0;
        }
    }

    /// Hands back, in arrival order, the held messages not behind one of their own partition
    /// whose schema is still unknown (`needs` says which id a message lacks), and the id to
    /// fetch for the first blocked one, if no fetch runs.
    pub fn release(
        &mut self,
        needs: impl Fn(&M, &SchemaBook) -> Option<u32>,
    ) -> (Vec<M>, Option<u32>) {
        let mut ready = Vec::new();
        let mut blocked: HashMap<K, ()> = HashMap::new();
        let mut first_missing = None;
        let mut kept = VecDeque::with_capacity(self.held.len());
        for (k, m) in self.held.drain(..) {
            if blocked.contains_key(&k) {
                kept.push_back((k, m));
                continue;
            }
            if let Some(id) = needs(&m, &self.book) {
                first_missing.get_or_insert(id);
                blocked.insert(k.clone(), ());
                kept.push_back((k, m));
                continue;
            }
            match self.holding.get_mut(&k) {
                Some(n) if *n > 1 => *n -= 1,
                _ => {
                    self.holding.remove(&k);
                }
            }
            ready.push(m);
        }
        self.held = kept;
        let fetch = match (self.fetching, first_missing) {
            (None, Some(id)) => {
                self.fetching = Some(id);
                Some(id)
            }
            _ => None,
        };
        (ready, fetch)
    }

    /// Forgets the held messages of the partitions `gone` says were revoked.
    pub fn forget(&mut self, gone: impl Fn(&K) -> bool) {
        self.held.retain(|(k, _)| !gone(k));
        self.holding.retain(|k, _| !gone(k));
    }

    /// Forgets every held message (shutdown: none was committed, the next run reads them).
    pub fn clear(&mut self) {
        self.held.clear();
        self.holding.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message: (partition, schema id).
    type M = (i32, u32);

    fn needs(m: &M, book: &SchemaBook) -> Option<u32> {
        (!book.knows(m.1)).then_some(m.1)
    }

    fn key(m: &M) -> i32 {
        m.0
    }

    #[test]
    fn a_partition_behind_an_unknown_schema_waits_in_order_and_the_others_flow() {
        let mut w: SchemaWait<i32, M> = SchemaWait::new(10);
        w.learned(1, Known::Json);
        assert!(matches!(w.admit((0, 1), key, None), Admit::Pass(_)));
        assert!(matches!(
            w.admit((0, 2), key, Some(2)),
            Admit::Held { fetch: Some(2) }
        ));
        // Known schema, but behind a held one of its partition: held too, no new fetch.
        assert!(matches!(
            w.admit((0, 1), key, None),
            Admit::Held { fetch: None }
        ));
        // Another partition's known schema passes: only partition 0 waits.
        assert!(matches!(w.admit((1, 1), key, None), Admit::Pass(_)));
        assert!(matches!(
            w.admit((1, 3), key, Some(3)),
            Admit::Held { fetch: None }
        ));
        assert!(matches!(
            w.admit((1, 1), key, None),
            Admit::Held { fetch: None }
        ));
        assert!(w.is_holding(&0) && w.is_holding(&1) && !w.is_holding(&2));
        let mut holding: Vec<i32> = w.holding().copied().collect();
        holding.sort_unstable();
        assert_eq!(holding, [0, 1]);
        w.learned(2, Known::Json);
        let (ready, fetch) = w.release(needs);
        assert_eq!(ready, vec![(0, 2), (0, 1)], "partition 0, in its order");
        assert_eq!(fetch, Some(3));
        assert!(!w.is_holding(&0) && w.is_holding(&1));
        assert!(matches!(w.admit((0, 1), key, None), Admit::Pass(_)));
        w.learned(3, Known::NotFound);
        let (ready, fetch) = w.release(needs);
        assert_eq!((ready, fetch), (vec![(1, 3), (1, 1)], None));
        assert_eq!((w.held(), w.holding().count()), (0, 0));
    }

    #[test]
    fn release_keeps_each_partitions_order_across_two_unknown_ids() {
        let mut w: SchemaWait<i32, M> = SchemaWait::new(10);
        w.admit((0, 5), key, Some(5));
        w.admit((1, 6), key, Some(6));
        w.admit((0, 6), key, Some(6));
        w.admit((1, 5), key, Some(5));
        // 6 known first: partition 1 goes up to its message needing 5; partition 0 waits for 5.
        w.learned(6, Known::Json);
        let (ready, fetch) = w.release(needs);
        assert_eq!(ready, vec![(1, 6)]);
        assert_eq!(fetch, None, "the fetch of 5 still runs");
        w.learned(5, Known::Json);
        let (ready, _) = w.release(needs);
        assert_eq!(ready, vec![(0, 5), (0, 6), (1, 5)]);
    }

    #[test]
    fn a_revoke_forgets_its_held_messages_and_the_next_fetch_is_for_what_remains() {
        let mut w: SchemaWait<i32, M> = SchemaWait::new(10);
        assert!(matches!(
            w.admit((0, 5), key, Some(5)),
            Admit::Held { fetch: Some(5) }
        ));
        w.admit((1, 6), key, Some(6));
        w.forget(|k| *k == 0);
        assert_eq!(w.held(), 1);
        assert!(!w.is_holding(&0));
        // The fetch of 5 is still running: nothing new starts until it answers.
        assert_eq!(w.release(needs), (vec![], None));
        w.learned(5, Known::Json);
        assert_eq!(w.release(needs), (vec![], Some(6)));
    }

    #[test]
    fn a_fetch_nobody_needs_any_more_is_abandoned_for_the_next() {
        let mut w: SchemaWait<i32, M> = SchemaWait::new(10);
        w.admit((0, 5), key, Some(5));
        w.admit((1, 6), key, Some(6));
        w.forget(|k| *k == 0);
        assert!(!w.needs_id(5, needs));
        assert!(w.needs_id(6, needs));
        w.abandon(5);
        assert_eq!(w.release(needs), (vec![], Some(6)));
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_a_refusal_waits_the_cap() {
        let mut w: SchemaWait<i32, M> = SchemaWait::new(1);
        let max = Duration::from_secs(5);
        let d: Vec<u128> = (0..8).map(|_| w.failed(false, max).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(w.failed(true, max), max);
        w.learned(1, Known::Json);
        assert_eq!(w.failed(false, max), Duration::from_millis(100));
    }
}
