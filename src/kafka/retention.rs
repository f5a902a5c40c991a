//! Loss past retention made visible: offset gaps checked against the log start, and how much
//! room retention leaves before the group's position is deleted.
//!
//! **Why.** If MCM is down (or the bridge halted) for longer than a topic's retention, the broker
//! deletes offsets the group has not finished. The next fetch from the committed offset is out of
//! range and librdkafka resets the position to the log start (`auto.offset.reset`), silently: the
//! lag graph drops as if the group had caught up, and those events were neither delivered nor
//! dead-lettered. The bridge cannot stop that (Kafka is the buffer, and retention is the size of
//! the buffer), but it must never be silent about it.
//!
//! **How.** The coordinator knows, per partition, the offset it expects next: the group's
//! committed offset when the partition is assigned, then one past every message it takes
//! ([`Continuity`]). A message above that offset means the consumer skipped `[expected, offset)`:
//! a [`Gap`]. Most gaps are harmless — transaction markers, aborted transactions under
//! `read_committed`, records removed by compaction — so a gap alone proves nothing. What proves a
//! loss is the log start: a gap that begins below the partition's log start offset was skipped
//! because the broker no longer had those offsets, i.e. the position was reset past them
//! ([`expired`]). The lag sampler, which already asks the broker for offsets every 2 s, checks the
//! queued gaps ([`Gaps`]) against the log start offsets it fetches, counts the skipped offsets in
//! `mcm_bridge_messages_expired_total{topic,partition}` and logs the range at error level.
//!
//! The count is of **offsets**, an upper bound of the messages lost: markers and compacted-away
//! records inside a skipped range are counted too. A harmless gap is misread as a loss only if the
//! log start passes it within the seconds between the fetch and the check, i.e. when the group
//! is already consuming at the very edge of retention.
//!
//! **Headroom.** Before anything is lost, [`headroom_messages`] (committed − log start, negative
//! once the committed position is gone) and the time left (topic retention − age of the oldest
//! unfinished message) say how close each partition is to that edge, so an alert can fire while
//! there is still time to act.
//!
//! Pure data and functions; no Kafka I/O here.

use super::consumer::Tp;
use std::sync::Mutex;

/// Offsets a partition's consumption skipped: `from` (inclusive) to `to` (exclusive), where `to`
/// is the offset of the message that arrived instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub tp: Tp,
    pub from: i64,
    pub to: i64,
}

impl Gap {
    /// Number of offsets skipped.
    pub fn len(&self) -> i64 {
        self.to - self.from
    }

    pub fn is_empty(&self) -> bool {
        self.to <= self.from
    }
}

/// The offset a partition's next message should have, if nothing is skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Continuity {
    expected: Option<i64>,
}

impl Continuity {
    /// Starts at the group's committed offset (`None`: nothing committed, so wherever
    /// `auto.offset.reset` starts is by design, not a skip).
    pub fn starting_at(committed: Option<i64>) -> Continuity {
        Continuity {
            expected: committed.filter(|c| *c >= 0),
        }
    }

    /// Records that the message at `offset` was taken; returns the offsets skipped before it, if
    /// any. An offset below the expected one is not a skip (a rewind: the coordinator handles it)
    /// and moves the expectation back.
    pub fn observe(&mut self, offset: i64) -> Option<(i64, i64)> {
        let skipped = match self.expected {
            Some(e) if offset > e => Some((e, offset)),
            _ => None,
        };
        self.expected = Some(offset.saturating_add(1));
        skipped
    }
}

/// A gap found to be a loss: its offsets were below the log start when checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub gap: Gap,
    /// The partition's log start offset when the gap was checked.
    pub log_start: i64,
}

/// Whether `gap` was skipped because the broker had deleted its offsets: it begins below the
/// partition's log start offset. Then every skipped offset counts (under `auto.offset.reset:
/// latest` the reset jumps past readable offsets too, and those are just as undelivered).
pub fn expired(gap: &Gap, log_start: i64) -> Option<Expired> {
    (!gap.is_empty() && gap.from < log_start).then(|| Expired {
        gap: gap.clone(),
        log_start,
    })
}

/// How many messages the committed position is above the log start: room left before retention
/// deletes offsets this group has not finished. Negative once it has.
pub fn headroom_messages(committed: i64, log_start: i64) -> i64 {
    committed - log_start
}

/// Seconds left before the oldest unfinished message of a partition becomes eligible for
/// deletion: the topic's `retention.ms` minus that message's age. `None` without time-based
/// retention (`retention.ms` = -1). Kafka deletes whole segments once their newest record is
/// older than the retention, so a message lives at least this long: the figure errs towards
/// caution. A backlog not yet fetched has no age here (see `consumer_lag_messages`).
pub fn headroom_seconds(retention_ms: i64, oldest_unfinished_age_s: i64) -> Option<i64> {
    (retention_ms >= 0).then(|| retention_ms / 1000 - oldest_unfinished_age_s.max(0))
}

/// Most gaps waiting for a check. At 2 s between checks this holds 50,000 gaps a second, e.g.
/// a transactional producer committing every message at that rate; past it, gaps are counted as
/// unchecked rather than held without bound.
pub const MAX_PENDING_GAPS: usize = 100_000;

/// Gaps waiting to be checked: the coordinator records, the lag sampler takes.
#[derive(Debug, Default)]
pub struct Gaps(Mutex<PendingGaps>);

#[derive(Debug, Default)]
struct PendingGaps {
    gaps: Vec<Gap>,
    unchecked: u64,
}

impl Gaps {
    /// Queues a gap; beyond [`MAX_PENDING_GAPS`] it is only counted (see [`Gaps::take`]).
    pub fn record(&self, gap: Gap) {
        let Ok(mut p) = self.0.lock() else { return };
        if p.gaps.len() < MAX_PENDING_GAPS {
            p.gaps.push(gap);
        } else {
            p.unchecked += 1;
        }
    }

    /// Takes every queued gap, and how many could not be queued since the last take.
    pub fn take(&self) -> (Vec<Gap>, u64) {
        let Ok(mut p) = self.0.lock() else {
            return (Vec::new(), 0);
        };
        let unchecked = std::mem::take(&mut p.unchecked);
        (std::mem::take(&mut p.gaps), unchecked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn gap(from: i64, to: i64) -> Gap {
        Gap {
            tp: Tp::new("t", 0),
            from,
            to,
        }
    }

    #[test]
    fn consecutive_offsets_are_no_gap() {
        let mut c = Continuity::starting_at(Some(10));
        assert_eq!(c.observe(10), None);
        assert_eq!(c.observe(11), None);
    }

    #[test]
    fn a_first_message_above_the_committed_offset_is_a_gap() {
        let mut c = Continuity::starting_at(Some(100));
        assert_eq!(c.observe(300), Some((100, 300)));
        assert_eq!(c.observe(301), None);
        assert_eq!(c.observe(305), Some((302, 305)));
    }

    #[test]
    fn nothing_committed_means_the_start_is_no_gap() {
        let mut c = Continuity::starting_at(None);
        assert_eq!(c.observe(5_000), None);
        assert_eq!(c.observe(5_002), Some((5_001, 5_002)));
        // librdkafka's logical offsets (-1001 for "none") are not positions.
        assert_eq!(Continuity::starting_at(Some(-1001)), Continuity::default());
    }

    #[test]
    fn a_rewind_is_not_a_gap_and_moves_the_expectation_back() {
        let mut c = Continuity::starting_at(Some(50));
        assert_eq!(c.observe(50), None);
        assert_eq!(c.observe(3), None);
        assert_eq!(c.observe(4), None);
    }

    #[test]
    fn a_gap_below_the_log_start_expired_and_counts_whole() {
        // Committed 100, log start moved to 300, reset to the start: 200 offsets lost.
        let e = expired(&gap(100, 300), 300).expect("expired");
        assert_eq!(e.gap.len(), 200);
        assert_eq!(e.log_start, 300);
        // auto.offset.reset=latest jumped further, past readable offsets: all of them count.
        assert_eq!(expired(&gap(100, 900), 300).map(|e| e.gap.len()), Some(800));
    }

    #[test]
    fn a_gap_inside_the_log_is_a_marker_or_compaction_not_a_loss() {
        // A transaction marker at 41 (log start 0), or compaction above the log start.
        assert_eq!(expired(&gap(41, 42), 0), None);
        assert_eq!(expired(&gap(1_000, 5_000), 1_000), None);
        assert_eq!(expired(&gap(7, 7), 100), None, "an empty gap is nothing");
    }

    #[test]
    fn headroom_is_negative_once_the_committed_position_is_deleted() {
        assert_eq!(headroom_messages(500, 200), 300);
        assert_eq!(headroom_messages(100, 300), -200);
    }

    #[test]
    fn headroom_in_time_is_retention_minus_the_oldest_unfinished_age() {
        assert_eq!(headroom_seconds(3_600_000, 600), Some(3_000));
        assert_eq!(headroom_seconds(3_600_000, 0), Some(3_600));
        assert_eq!(headroom_seconds(60_000, 90), Some(-30));
        assert_eq!(headroom_seconds(-1, 90), None, "no time-based retention");
    }

    #[test]
    fn the_gap_queue_is_bounded_and_counts_what_it_could_not_keep() {
        let q = Gaps::default();
        for i in 0..(MAX_PENDING_GAPS as i64 + 5) {
            q.record(gap(i * 2, i * 2 + 1));
        }
        let (gaps, unchecked) = q.take();
        assert_eq!(gaps.len(), MAX_PENDING_GAPS);
        assert_eq!(unchecked, 5);
        assert_eq!(q.take(), (Vec::new(), 0));
    }

    proptest! {
        /// Whatever the offsets, the reported gaps are exactly the offsets never observed between
        /// the start and the last offset (for increasing sequences).
        #[test]
        fn gaps_cover_exactly_the_skipped_offsets(
            start in 0i64..1_000,
            steps in proptest::collection::vec(1i64..20, 1..200),
        ) {
            let mut c = Continuity::starting_at(Some(start));
            let mut seen = std::collections::BTreeSet::new();
            let mut skipped = std::collections::BTreeSet::new();
            let mut o = start - 1;
            for s in steps {
                o += s;
                if let Some((from, to)) = c.observe(o) {
                    prop_assert!(from < to);
                    skipped.extend(from..to);
                }
                seen.insert(o);
            }
            let expected: std::collections::BTreeSet<i64> =
                (start..=o).filter(|x| !seen.contains(x)).collect();
            prop_assert_eq!(skipped, expected);
        }
    }
}
