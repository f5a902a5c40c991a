//! Periodic commits whose results are known, and the bound on replays while they fail.
//!
//! **Why.** librdkafka reports the result of a manual asynchronous `rd_kafka_commit()` only to
//! an `offset_commit_cb` set in the configuration, which rust-rdkafka does not set (it enables
//! the commit *event*, which carries auto-commits only). So an async commit the group refused
//! — `REBALANCE_IN_PROGRESS`, `UNKNOWN_MEMBER_ID` after the broker fenced the member,
//! `STALE_MEMBER_EPOCH` under KIP-848 — used to be counted as a success: `commits_total`
//! never showed an error, and delivery went on while nothing was being stored. Under the
//! consumer protocol (KIP-848) the broker, not the client, expires a member that went silent: a
//! fenced bridge kept delivering its backlog for seconds after a network stall healed, and the
//! next owner replayed all of it (2.63 % duplicates in a 1M-event chaos run).
//!
//! **How.** The coordinator commits synchronously on a blocking thread, one commit at a time, and
//! learns each result. This ledger keeps what is in flight (with each partition's generation, so
//! a result for a partition revoked meanwhile is ignored) and when a commit was last confirmed.
//! While commits fail, replays are bounded twice:
//! - per partition: a partition whose finished-but-uncommitted messages exceed
//!   `delivery.max_uncommitted_per_partition` starts no more deliveries (its messages wait, and
//!   its in-flight budget pauses it if that lasts);
//! - in time: when no commit has been confirmed for [`CommitLedger::stall_after`] while work is
//!   finished and uncommitted, every partition stops taking messages.
//!
//! Both resume when a commit is confirmed. Kafka keeps the events meanwhile. Pure data; no Kafka.

use crate::kafka::consumer::Tp;
use std::time::{Duration, Instant};

/// One partition's part of a commit: the generation it was taken under and the offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitEntry {
    pub tp: Tp,
    pub generation: u64,
    pub offset: i64,
}

/// The commit under way.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// Which commit this is: a result that arrives after the commit was given up is ignored.
    pub seq: u64,
    pub entries: Vec<CommitEntry>,
    pub started: Instant,
}

/// Commits: the one in flight and the time commits last worked.
#[derive(Debug)]
pub struct CommitLedger {
    in_flight: Option<InFlight>,
    next_seq: u64,
    /// When a commit was last confirmed, or when nothing was left to commit.
    last_good: Instant,
    stall_after: Duration,
}

/// The shortest commit stall that stops intake: a second, so that one slow commit on a busy
/// broker does not pause a healthy bridge.
pub const MIN_STALL: Duration = Duration::from_secs(1);
/// Commit intervals without a confirmed commit that stop intake.
pub const STALL_INTERVALS: u32 = 5;
/// How long a commit may hang before it is given up and a new one may start. A synchronous
/// commit waits for the group coordinator: with the broker unreachable librdkafka holds it for
/// up to `socket.timeout.ms` (60 s by default), and one hung commit must not keep every later
/// one — and the resumption of intake — waiting that long once the broker is back.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(5);

impl CommitLedger {
    /// `commit_interval` sets the stall bound: [`STALL_INTERVALS`] of them, at least
    /// [`MIN_STALL`].
    pub fn new(now: Instant, commit_interval: Duration) -> CommitLedger {
        CommitLedger {
            in_flight: None,
            next_seq: 0,
            last_good: now,
            stall_after: (commit_interval * STALL_INTERVALS).max(MIN_STALL),
        }
    }

    /// How long commits may go unconfirmed, while work waits to be committed, before intake stops.
    pub fn stall_after(&self) -> Duration {
        self.stall_after
    }

    /// True when no commit is in flight: the next one may start.
    pub fn idle(&self) -> bool {
        self.in_flight.is_none()
    }

    /// Records that a commit of `entries` was handed to Kafka; returns its sequence number,
    /// which its result must carry.
    pub fn start(&mut self, entries: Vec<CommitEntry>, now: Instant) -> u64 {
        self.next_seq += 1;
        self.in_flight = Some(InFlight {
            seq: self.next_seq,
            entries,
            started: now,
        });
        self.next_seq
    }

    /// Gives up a commit that has hung for longer than [`GIVE_UP_AFTER`]: a new one may start,
    /// and the old one's result, if it ever comes, is ignored. Returns true if one was given up.
    pub fn give_up_hung(&mut self, now: Instant) -> bool {
        let hung = self
            .in_flight
            .as_ref()
            .is_some_and(|f| now.saturating_duration_since(f.started) > GIVE_UP_AFTER);
        if hung {
            self.in_flight = None;
        }
        hung
    }

    /// Commit `seq` finished. On success returns what it committed (the caller marks each entry
    /// whose partition still has that generation) and the clock of good commits restarts; on
    /// failure, or for a commit already given up, returns nothing, so the offsets stay
    /// candidates for the next commit.
    pub fn finish(&mut self, seq: u64, ok: bool, now: Instant) -> Option<InFlight> {
        if self.in_flight.as_ref().is_none_or(|f| f.seq != seq) {
            return None;
        }
        let done = self.in_flight.take()?;
        if ok {
            self.last_good = now;
            Some(done)
        } else {
            None
        }
    }

    /// Nothing finished is waiting to be committed: there is no stall to measure.
    pub fn nothing_to_commit(&mut self, now: Instant) {
        if self.in_flight.is_none() {
            self.last_good = now;
        }
    }

    /// True when commits have not been confirmed for longer than [`Self::stall_after`] while
    /// finished work waits: intake must stop so that the next owner's replay stays bounded.
    pub fn stalled(&self, now: Instant, uncommitted: bool) -> bool {
        uncommitted && now.saturating_duration_since(self.last_good) > self.stall_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: i32, generation: u64, offset: i64) -> CommitEntry {
        CommitEntry {
            tp: Tp::new("t", p),
            generation,
            offset,
        }
    }

    #[test]
    fn one_commit_at_a_time_and_its_entries_come_back_on_success() {
        let t0 = Instant::now();
        let mut l = CommitLedger::new(t0, Duration::from_millis(200));
        assert!(l.idle());
        let seq = l.start(vec![entry(0, 1, 10), entry(1, 1, 20)], t0);
        assert!(!l.idle());
        let done = l
            .finish(seq, true, t0 + Duration::from_millis(5))
            .expect("success");
        assert_eq!(done.entries, vec![entry(0, 1, 10), entry(1, 1, 20)]);
        assert!(l.idle());
    }

    #[test]
    fn a_refused_commit_marks_nothing() {
        let t0 = Instant::now();
        let mut l = CommitLedger::new(t0, Duration::from_secs(1));
        let seq = l.start(vec![entry(0, 1, 10)], t0);
        assert!(l.finish(seq, false, t0).is_none());
        assert!(l.idle(), "the next tick may try again");
        assert!(l.finish(seq, true, t0).is_none(), "nothing in flight");
    }

    #[test]
    fn commits_failing_for_longer_than_the_bound_stall_intake_until_one_succeeds() {
        let t0 = Instant::now();
        let mut l = CommitLedger::new(t0, Duration::from_millis(200));
        assert_eq!(l.stall_after(), Duration::from_secs(1));
        let mut now = t0;
        for _ in 0..10 {
            now += Duration::from_millis(200);
            let seq = l.start(vec![entry(0, 1, 10)], now);
            l.finish(seq, false, now);
        }
        assert!(l.stalled(now, true), "2 s without a confirmed commit");
        assert!(!l.stalled(now, false), "nothing waits: nothing to bound");
        let seq = l.start(vec![entry(0, 1, 10)], now);
        l.finish(seq, true, now);
        assert!(!l.stalled(now, true));
    }

    #[test]
    fn an_idle_bridge_is_never_stalled() {
        let t0 = Instant::now();
        let mut l = CommitLedger::new(t0, Duration::from_secs(1));
        let later = t0 + Duration::from_secs(60);
        l.nothing_to_commit(later);
        assert!(!l.stalled(later + Duration::from_millis(100), true));
        assert_eq!(
            l.stall_after(),
            Duration::from_secs(5),
            "5 commit intervals"
        );
    }

    #[test]
    fn a_hung_commit_is_given_up_and_its_late_result_ignored() {
        let t0 = Instant::now();
        let mut l = CommitLedger::new(t0, Duration::from_millis(200));
        let hung = l.start(vec![entry(0, 1, 10)], t0);
        assert!(!l.give_up_hung(t0 + Duration::from_secs(1)));
        assert!(l.give_up_hung(t0 + GIVE_UP_AFTER + Duration::from_millis(1)));
        assert!(l.idle());
        let now = t0 + Duration::from_secs(7);
        let fresh = l.start(vec![entry(0, 1, 12)], now);
        assert!(
            l.finish(hung, true, now).is_none(),
            "the late answer is ignored"
        );
        assert!(!l.idle(), "the fresh commit is still in flight");
        let done = l.finish(fresh, true, now).expect("the fresh one counts");
        assert_eq!(done.entries, vec![entry(0, 1, 12)]);
    }

    #[test]
    fn a_hung_commit_counts_as_a_stall() {
        let t0 = Instant::now();
        let mut l = CommitLedger::new(t0, Duration::from_millis(100));
        l.start(vec![entry(0, 1, 10)], t0);
        // Still in flight: nothing_to_commit does not reset the clock while it hangs.
        l.nothing_to_commit(t0 + Duration::from_secs(3));
        assert!(l.stalled(t0 + Duration::from_secs(3), true));
    }
}
