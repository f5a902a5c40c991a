//! Holding messages until the schema they name is known (schema'd topics, docs/formats.md).
//!
//! The coordinator asks [`SchemaWait::admit`] before the core sees a message. A message whose
//! schema id is not in the book yet — or any message while others are held, so that every
//! partition keeps its order — is held here in arrival order, and one fetch runs at a time. When
//! the registry answers, [`SchemaWait::release`] hands back, in order, every held message up to
//! the next one whose schema is still unknown. While anything is held every partition is paused
//! (`Core::set_schema_wait`), so the queue is bounded by what the consumer had already fetched.
//!
//! What it guarantees: a held message is invisible to the core, so no commit passes it; the
//! coordinator must also not let the poll thread's idle *positions* pass it (they say everything
//! below them was handed over, and a held message was — see [`SchemaWait::is_holding`]). Held
//! messages of a revoked partition are forgotten ([`SchemaWait::forget`]): their next owner
//! reads them again. What it does not do: fetch ids ahead of need, or fetch in parallel (one id
//! per new schema version, once per process; the registry answers in milliseconds).

use crate::schema::{Known, SchemaBook};
use std::collections::VecDeque;
use std::time::Duration;

/// What to do with a message offered to [`SchemaWait::admit`].
#[derive(Debug)]
pub enum Admit<M> {
    /// Map it now.
    Pass(M),
    /// Held; fetch this id now (`None`: a fetch is already running).
    Held { fetch: Option<u32> },
}

/// The held messages and the book of known schemas.
#[derive(Debug)]
pub struct SchemaWait<M> {
    book: SchemaBook,
    held: VecDeque<M>,
    /// The id being fetched (one at a time).
    fetching: Option<u32>,
    /// Failed attempts in a row, for the backoff.
    failures: u32,
}

impl<M> SchemaWait<M> {
    pub fn new(capacity: usize) -> SchemaWait<M> {
        SchemaWait {
            book: SchemaBook::new(capacity),
            held: VecDeque::new(),
            fetching: None,
            failures: 0,
        }
    }

    pub fn book(&self) -> &SchemaBook {
        &self.book
    }

    /// Whether any message is held (the coordinator then ignores idle positions).
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// `needs` is the schema id the message needs and the book lacks (see
    /// [`crate::schema::missing_schema`]).
    pub fn admit(&mut self, msg: M, needs: Option<u32>) -> Admit<M> {
        if self.held.is_empty() && needs.is_none() {
            return Admit::Pass(msg);
        }
        self.held.push_back(msg);
        let fetch = match (self.fetching, needs) {
            (None, Some(id)) if self.held.len() == 1 => {
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
        self.held.iter().any(|m| needs(m, &self.book) == Some(id))
    }

    /// Stops waiting for `id` (no held message needs it any more): the next
    /// [`Self::release`] fetches what the front of the queue needs.
    pub fn abandon(&mut self, id: u32) {
        if self.fetching == Some(id) {
            self.fetching = None;
            self.failures = 0;
        }
    }

    /// Hands back, in order, the held messages before the first whose schema is still unknown
    /// (`needs` says which id a message lacks), and the id to fetch for that one, if no fetch
    /// runs.
    pub fn release(
        &mut self,
        needs: impl Fn(&M, &SchemaBook) -> Option<u32>,
    ) -> (Vec<M>, Option<u32>) {
        let mut ready = Vec::new();
        while let Some(front) = self.held.front() {
            if let Some(id) = needs(front, &self.book) {
                let fetch = if self.fetching.is_none() {
                    self.fetching = Some(id);
                    Some(id)
                } else {
                    None
                };
                return (ready, fetch);
            }
            if let Some(m) = self.held.pop_front() {
                ready.push(m);
            }
        }
        (ready, None)
    }

    /// Forgets the held messages `gone` says are of revoked partitions.
    pub fn forget(&mut self, gone: impl Fn(&M) -> bool) {
        self.held.retain(|m| !gone(m));
    }

    /// Forgets every held message (shutdown: none was committed, the next run reads them).
    pub fn clear(&mut self) {
        self.held.clear();
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

    #[test]
    fn messages_behind_an_unknown_schema_wait_in_order_and_one_fetch_runs() {
        let mut w: SchemaWait<M> = SchemaWait::new(10);
        w.learned(1, Known::Json);
        assert!(matches!(w.admit((0, 1), None), Admit::Pass(_)));
        assert!(matches!(
            w.admit((0, 2), Some(2)),
            Admit::Held { fetch: Some(2) }
        ));
        // Known schema, but behind a held one: held too, no new fetch.
        assert!(matches!(w.admit((1, 1), None), Admit::Held { fetch: None }));
        assert!(matches!(
            w.admit((1, 3), Some(3)),
            Admit::Held { fetch: None }
        ));
        assert!(w.is_holding());
        w.learned(2, Known::Json);
        let (ready, fetch) = w.release(needs);
        assert_eq!(ready, vec![(0, 2), (1, 1)]);
        assert_eq!(fetch, Some(3));
        w.learned(3, Known::NotFound);
        let (ready, fetch) = w.release(needs);
        assert_eq!((ready, fetch), (vec![(1, 3)], None));
        assert!(!w.is_holding());
    }

    #[test]
    fn a_revoke_forgets_its_held_messages_and_the_next_fetch_is_for_what_remains() {
        let mut w: SchemaWait<M> = SchemaWait::new(10);
        assert!(matches!(
            w.admit((0, 5), Some(5)),
            Admit::Held { fetch: Some(5) }
        ));
        w.admit((1, 6), Some(6));
        w.forget(|m| m.0 == 0);
        assert_eq!(w.held(), 1);
        // The fetch of 5 is still running: nothing new starts until it answers.
        assert_eq!(w.release(needs), (vec![], None));
        w.learned(5, Known::Json);
        assert_eq!(w.release(needs), (vec![], Some(6)));
    }

    #[test]
    fn a_fetch_nobody_needs_any_more_is_abandoned_for_the_next() {
        let mut w: SchemaWait<M> = SchemaWait::new(10);
        w.admit((0, 5), Some(5));
        w.admit((1, 6), Some(6));
        w.forget(|m| m.0 == 0);
        assert!(!w.needs_id(5, needs));
        assert!(w.needs_id(6, needs));
        w.abandon(5);
        assert_eq!(w.release(needs), (vec![], Some(6)));
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_a_refusal_waits_the_cap() {
        let mut w: SchemaWait<M> = SchemaWait::new(1);
        let max = Duration::from_secs(5);
        let d: Vec<u128> = (0..8).map(|_| w.failed(false, max).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(w.failed(true, max), max);
        w.learned(1, Known::Json);
        assert_eq!(w.failed(false, max), Duration::from_millis(100));
    }
}
