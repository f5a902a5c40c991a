//! The end of a run: what the final commit covers and what a failed one leaves to the next owner.
//!
//! SIGTERM must end the process within `delivery.drain_timeout` + `delivery.final_commit_timeout`
//! (+ the consumer's close) whatever the broker does, and an operator must be able to tell from
//! the exit code and one log line whether offsets were stored. Before this, a shutdown with the
//! broker unreachable took 8 minutes (ten synchronous commits of ~46 s each) and still exited 0.
//!
//! Pure data: the coordinator collects one [`PartitionEnd`] per owned partition, runs the commit
//! this plans (bounded, on a blocking thread), and turns the result into an [`Ending`].

use crate::kafka::consumer::Tp;

/// What one owned partition looks like when the drain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionEnd {
    pub tp: Tp,
    /// The watermark if it moved past the last confirmed commit: what the final commit stores.
    pub commit: Option<i64>,
    /// Messages taken since the last confirmed commit (finished or not): what the next owner
    /// reads again if the final commit does not land.
    pub since_commit: u64,
    /// Messages still unfinished (the drain deadline passed): read again whatever happens.
    pub unfinished: u64,
}

/// The final commit to make: `(partition, next offset to read)` for each partition that moved.
pub fn final_offsets(ends: &[PartitionEnd]) -> Vec<(Tp, i64)> {
    ends.iter()
        .filter_map(|e| e.commit.map(|w| (e.tp.clone(), w)))
        .collect()
}

/// Messages the next owner will read again, and over how many partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Redelivery {
    pub partitions: usize,
    pub messages: u64,
}

impl Redelivery {
    fn sum(ends: &[PartitionEnd], count: impl Fn(&PartitionEnd) -> u64) -> Redelivery {
        ends.iter()
            .map(count)
            .filter(|&n| n > 0)
            .fold(Redelivery::default(), |r, n| Redelivery {
                partitions: r.partitions + 1,
                messages: r.messages + n,
            })
    }
}

/// How the final commit went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Nothing moved since the last confirmed commit: no commit was needed.
    NotNeeded,
    Committed,
    /// Refused, failed or not answered within `delivery.final_commit_timeout`.
    Failed,
}

/// How a run ended, as far as its offsets go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Everything finished is stored; `unfinished` messages (cut off by the drain deadline) are
    /// read again by the next owner, as at-least-once delivery intends.
    Stored { unfinished: Redelivery },
    /// The final commit did not land: everything taken since the last confirmed commit is read
    /// again. Not data loss, but not a clean stop either: the process exits non-zero.
    NotStored { redelivered: Redelivery },
}

/// Turns the final commit's outcome into how the run ended.
impl Ending {
    /// One line for what the next owner reads again, when anything: a warning for deliveries the
    /// drain left unfinished, an error for a final commit that failed (`budget` is
    /// `delivery.final_commit_timeout`).
    pub fn log(&self, budget: std::time::Duration) {
        match self {
            Ending::Stored { unfinished } if unfinished.messages > 0 => tracing::warn!(
                partitions = unfinished.partitions,
                messages = unfinished.messages,
                "the drain ended with deliveries unfinished; their messages stay uncommitted and will be delivered again by the next owner"
            ),
            Ending::Stored { .. } => {}
            Ending::NotStored { redelivered } => tracing::error!(
                partitions = redelivered.partitions,
                messages = redelivered.messages,
                timeout = %humantime::format_duration(budget),
                "final commit failed: {} messages of {} partitions taken since the last stored commit will be delivered again by the next owner (exit code 4)",
                redelivered.messages,
                redelivered.partitions,
            ),
        }
    }
}

pub fn ending(ends: &[PartitionEnd], outcome: CommitOutcome) -> Ending {
    match outcome {
        CommitOutcome::NotNeeded | CommitOutcome::Committed => Ending::Stored {
            unfinished: Redelivery::sum(ends, |e| e.unfinished),
        },
        CommitOutcome::Failed => Ending::NotStored {
            redelivered: Redelivery::sum(ends, |e| e.since_commit.max(e.unfinished)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(p: i32, commit: Option<i64>, since_commit: u64, unfinished: u64) -> PartitionEnd {
        PartitionEnd {
            tp: Tp::new("t", p),
            commit,
            since_commit,
            unfinished,
        }
    }

    #[test]
    fn only_partitions_that_moved_are_committed() {
        let ends = [
            end(0, Some(10), 4, 0),
            end(1, None, 0, 0),
            end(2, Some(7), 7, 2),
        ];
        assert_eq!(
            final_offsets(&ends),
            vec![(Tp::new("t", 0), 10), (Tp::new("t", 2), 7)]
        );
        assert!(final_offsets(&[end(0, None, 0, 3)]).is_empty());
    }

    #[test]
    fn a_stored_ending_counts_only_what_the_drain_cut_off() {
        let ends = [
            end(0, Some(10), 4, 0),
            end(1, Some(3), 9, 6),
            end(2, None, 0, 1),
        ];
        assert_eq!(
            ending(&ends, CommitOutcome::Committed),
            Ending::Stored {
                unfinished: Redelivery {
                    partitions: 2,
                    messages: 7
                }
            }
        );
        assert_eq!(
            ending(&[end(0, None, 0, 0)], CommitOutcome::NotNeeded),
            Ending::Stored {
                unfinished: Redelivery::default()
            }
        );
    }

    #[test]
    fn a_failed_commit_gives_back_everything_since_the_last_confirmed_one() {
        let ends = [
            end(0, Some(10), 4, 0),
            end(1, Some(3), 9, 6),
            end(2, None, 0, 0),
        ];
        assert_eq!(
            ending(&ends, CommitOutcome::Failed),
            Ending::NotStored {
                redelivered: Redelivery {
                    partitions: 2,
                    messages: 13
                }
            }
        );
    }
}
