//! Per-partition offset tracking: which offsets are still unfinished, and the commit watermark.
//!
//! Messages of one partition finish out of order (many deliveries in flight), but Kafka stores a
//! single "next offset to read" per partition. The only safe value is the *contiguous watermark*:
//! the lowest offset not yet finished (delivered, filtered or dead-lettered and acknowledged), or
//! one past the highest seen offset when nothing is pending (DESIGN.md contract 1). A failed message
//! stays pending and holds the watermark back, however many later messages succeed — this is
//! precisely the hole in Vector (vector#24543) that we must not have.
//!
//! Pure data: no Kafka, no clock. Offsets need not be dense (compacted topics, transaction markers):
//! the watermark after finishing everything is `highest seen + 1`, which is what Kafka expects.

use std::collections::BTreeMap;

/// Unfinished offsets of one partition and what has been committed.
#[derive(Debug, Clone, Default)]
pub struct OffsetTracker {
    /// Unfinished offsets → the record's timestamp (Unix ms), for the age of the oldest one.
    pending: BTreeMap<i64, i64>,
    /// One past the highest offset ever inserted (the watermark when nothing is pending).
    next_after_seen: Option<i64>,
    /// The first offset inserted: where uncommitted work is counted from before any commit.
    first_seen: Option<i64>,
    /// The last watermark handed out for commit (so unchanged watermarks are not re-committed).
    committed: Option<i64>,
}

/// Why an offset could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    #[error("offset {offset} is not above the last seen offset {last_seen}: a partition must be consumed in order")]
    OutOfOrder { offset: i64, last_seen: i64 },
    #[error("offset {0} is negative")]
    Negative(i64),
}

impl OffsetTracker {
    pub fn new() -> OffsetTracker {
        OffsetTracker::default()
    }

    /// Records a newly consumed offset (with its record timestamp, Unix ms) as unfinished.
    /// Offsets must arrive in increasing order, as Kafka delivers them within a partition;
    /// anything else is refused rather than guessed.
    pub fn insert(&mut self, offset: i64, timestamp_ms: i64) -> Result<(), TrackError> {
        if offset < 0 {
            return Err(TrackError::Negative(offset));
        }
        if let Some(next) = self.next_after_seen {
            if offset < next {
                return Err(TrackError::OutOfOrder {
                    offset,
                    last_seen: next - 1,
                });
            }
        }
        self.pending.insert(offset, timestamp_ms);
        self.next_after_seen = Some(offset + 1);
        self.first_seen.get_or_insert(offset);
        Ok(())
    }

    /// Records that the consumer's position is `position`: offsets below it that were never
    /// handed to the bridge (transaction markers, aborted transactions under `read_committed`)
    /// need no processing, so once nothing is pending the watermark may pass them. Without this,
    /// a topic whose last record is a commit marker keeps its committed offset one short of the
    /// end, and the lag gauge shows 1 for ever. The caller guarantees that every message below
    /// `position` that *was* handed over in this assignment has been inserted already; then a
    /// tracker that saw nothing yet may adopt the position too (the assignment began on a
    /// marker). A position at or below what was seen changes nothing.
    pub fn advance_to(&mut self, position: i64) {
        if position < 0 {
            return;
        }
        if self.next_after_seen.is_none_or(|next| position > next) {
            self.next_after_seen = Some(position);
        }
    }

    /// Marks an offset finished. Returns false if it was not pending (a duplicate or stale ack),
    /// which callers count but otherwise ignore.
    pub fn complete(&mut self, offset: i64) -> bool {
        self.pending.remove(&offset).is_some()
    }

    /// The next offset to read, given everything finished so far: what Kafka should store.
    /// `None` before the first message.
    pub fn watermark(&self) -> Option<i64> {
        match self.pending.first_key_value() {
            Some((&lowest, _)) => Some(lowest),
            None => self.next_after_seen,
        }
    }

    /// The watermark if it moved since the last [`mark_committed`](Self::mark_committed).
    pub fn commit_candidate(&self) -> Option<i64> {
        let w = self.watermark()?;
        match self.committed {
            Some(c) if c >= w => None,
            _ => Some(w),
        }
    }

    /// How many offsets below the watermark are finished but not committed: what the next owner
    /// would read again if this partition went away now (markers and compacted gaps count too).
    pub fn uncommitted(&self) -> i64 {
        match (self.watermark(), self.committed.or(self.first_seen)) {
            (Some(w), Some(base)) => (w - base).max(0),
            _ => 0,
        }
    }

    /// How many offsets were taken since the last confirmed commit, finished or not: what the
    /// next owner reads again if no further commit lands.
    pub fn taken_since_commit(&self) -> i64 {
        match (self.next_after_seen, self.committed.or(self.first_seen)) {
            (Some(next), Some(base)) => (next - base).max(0),
            _ => 0,
        }
    }

    /// Where a new owner would start reading if this partition went away now: the last
    /// confirmed commit, else the first offset taken (`None` before the first message).
    pub fn replay_base(&self) -> Option<i64> {
        self.committed.or(self.first_seen)
    }

    /// Records that `offset` was committed (Kafka confirmed it).
    pub fn mark_committed(&mut self, offset: i64) {
        if self.committed.is_none_or(|c| offset > c) {
            self.committed = Some(offset);
        }
    }

    /// The last committed watermark, if any.
    pub fn committed(&self) -> Option<i64> {
        self.committed
    }

    /// Number of unfinished offsets.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The lowest unfinished offset (the one holding the watermark back) and its timestamp.
    pub fn oldest_pending(&self) -> Option<(i64, i64)> {
        self.pending.first_key_value().map(|(o, t)| (*o, *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_position_past_unreturned_markers_moves_the_watermark_once_nothing_is_pending() {
        let mut t = OffsetTracker::new();
        for o in 0..10 {
            t.insert(o, 1).expect("in order");
        }
        // Offset 10 is a transaction commit marker: the consumer's position is 11.
        t.advance_to(11);
        assert_eq!(t.watermark(), Some(0), "pending messages still hold it");
        for o in 0..10 {
            t.complete(o);
        }
        assert_eq!(t.watermark(), Some(11), "past the marker: lag 0, not 1");
        t.insert(11, 1)
            .expect("the next message is above the position");
        t.advance_to(5);
        assert_eq!(t.watermark(), Some(11), "an older position changes nothing");
    }

    #[test]
    fn uncommitted_counts_finished_offsets_since_the_last_confirmed_commit() {
        let mut t = OffsetTracker::new();
        assert_eq!(t.uncommitted(), 0);
        for o in 100..110 {
            t.insert(o, 1).expect("in order");
        }
        assert_eq!(t.uncommitted(), 0, "nothing finished");
        for o in 100..104 {
            t.complete(o);
        }
        t.complete(107); // out of order: not below the watermark yet
        assert_eq!(t.uncommitted(), 4);
        t.mark_committed(102);
        assert_eq!(t.uncommitted(), 2);
        for o in 104..110 {
            t.complete(o);
        }
        assert_eq!(t.uncommitted(), 8);
        t.mark_committed(110);
        assert_eq!(t.uncommitted(), 0);
    }

    #[test]
    fn an_assignment_that_starts_on_a_marker_commits_past_it() {
        let mut t = OffsetTracker::new();
        t.advance_to(-1001); // librdkafka's "no position yet"
        assert_eq!(t.watermark(), None);
        t.advance_to(33);
        assert_eq!(t.watermark(), Some(33));
        assert_eq!(t.commit_candidate(), Some(33));
    }

    #[test]
    fn failed_message_holds_watermark_until_dead_lettered() {
        let mut t = OffsetTracker::new();
        for o in 10..15 {
            t.insert(o, 1000 + o).expect("in order");
        }
        // 10 fails (stays pending); 11..15 succeed.
        for o in 11..15 {
            assert!(t.complete(o));
        }
        assert_eq!(
            t.watermark(),
            Some(10),
            "a later success must not skip the failure"
        );
        assert_eq!(t.commit_candidate(), Some(10));
        t.mark_committed(10);
        assert_eq!(
            t.commit_candidate(),
            None,
            "unchanged watermark is not re-committed"
        );
        // Dead-lettered and acknowledged: now everything is finished.
        assert!(t.complete(10));
        assert_eq!(t.watermark(), Some(15));
        assert_eq!(t.commit_candidate(), Some(15));
    }

    #[test]
    fn sparse_offsets_commit_past_the_highest_seen() {
        let mut t = OffsetTracker::new();
        assert_eq!(t.watermark(), None);
        t.insert(3, 1).expect("ok");
        t.insert(7, 2).expect("gap is fine (compaction)");
        assert!(t.complete(7));
        assert_eq!(t.watermark(), Some(3));
        assert!(t.complete(3));
        assert_eq!(t.watermark(), Some(8));
    }

    #[test]
    fn refuses_out_of_order_and_ignores_stale_acks() {
        let mut t = OffsetTracker::new();
        t.insert(5, 1).expect("ok");
        assert_eq!(
            t.insert(5, 1),
            Err(TrackError::OutOfOrder {
                offset: 5,
                last_seen: 5
            })
        );
        assert_eq!(t.insert(-1, 1), Err(TrackError::Negative(-1)));
        assert!(!t.complete(4));
        assert!(t.complete(5));
        assert!(!t.complete(5), "a second ack for the same offset is stale");
    }

    proptest! {
        /// The watermark never passes an unfinished offset, and reaches the end once all finish.
        #[test]
        fn watermark_never_passes_an_unfinished_offset(
            gaps in proptest::collection::vec(1i64..4, 1..200),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 0..200),
        ) {
            let mut t = OffsetTracker::new();
            let mut offsets = Vec::new();
            let mut o = 0;
            for g in gaps { o += g; offsets.push(o); t.insert(o, o).expect("increasing"); }
            let mut unfinished = offsets.clone();
            for idx in order {
                if unfinished.is_empty() { break; }
                let i = idx.index(unfinished.len());
                let off = unfinished.swap_remove(i);
                prop_assert!(t.complete(off));
                let w = t.watermark().expect("seen");
                for u in &unfinished { prop_assert!(w <= *u); }
            }
            for off in unfinished { t.complete(off); }
            prop_assert_eq!(t.watermark(), offsets.last().map(|l| l + 1));
        }
    }
}
