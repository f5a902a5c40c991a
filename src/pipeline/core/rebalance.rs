//! Partitions coming and going: assignment, revoke drains, lost partitions, rewinds, and the
//! shutdown drain.

use super::partition::{Partition, Phase};
use super::{Core, Effect};
use crate::kafka::consumer::{RevokeAnswer, Tp};
use crate::kafka::retention::Continuity;
use crate::mcm::validate::now_ms;
use crate::pipeline::lanes::Lanes;
use crate::pipeline::offset_tracker::OffsetTracker;
use crate::pipeline::shutdown::PartitionEnd;
use std::time::Instant;

/// Names a revoke whose answer the poll thread waits for (the shell keeps the reply channel).
pub type RevokeId = u64;

/// Revoked partitions draining until idle or the deadline.
#[derive(Debug)]
pub(super) struct DrainJob {
    partitions: Vec<Tp>,
    deadline: Instant,
    revoke: RevokeId,
}

impl<M: Clone> Core<M> {
    pub fn on_assigned(&mut self, tps: Vec<(Tp, Option<i64>)>, now: Instant) {
        self.now = now;
        self.metrics.rebalances.with_label_values(&["assign"]).inc();
        for (tp, committed) in tps {
            if self.partitions.contains_key(&tp) {
                // Assigned again without a revoke in between (librdkafka always revokes first):
                // the old generation goes as if revoked and lost, so none of its work starts or
                // finishes under the new one.
                self.drop_ready(|w| w.tp == tp);
                self.drop_partition(&tp);
            }
            let mut fresh = self.fresh_partition(&tp);
            fresh.continuity = Continuity::starting_at(committed);
            self.partitions.insert(tp.clone(), fresh);
            // librdkafka keeps a partition's pause flag across revoke and re-assignment
            // (librdkafka #5113): a partition paused when it was revoked or lost (circuit open,
            // shutdown) comes back paused. Its state is unknown here, so count it as paused:
            // the pause check then resumes it unless it should stay paused. Assuming "not paused"
            // left re-assigned partitions silently paused forever (the tansu chaos run).
            self.paused.insert(tp);
        }
        self.update_assignment_gauges();
        self.pauses_dirty = true;
    }

    /// State for a newly assigned (or rebased) partition, under the next generation.
    fn fresh_partition(&mut self, tp: &Tp) -> Partition<M> {
        let generation = self.next_generation;
        self.next_generation += 1;
        let m = &self.metrics;
        let partition = tp.partition.to_string();
        let progress_metric = m
            .partition_last_progress
            .with_label_values(&[&*tp.topic, partition.as_str()]);
        // A partition that never finishes a message must still show up as stalled.
        progress_metric.set(now_ms() / 1000);
        self.effects.push(Effect::Opened(tp.clone()));
        Partition {
            generation,
            phase: Phase::Active,
            tracker: OffsetTracker::new(),
            continuity: Continuity::default(),
            lanes: Lanes::new(),
            budget: self.ledger.partition_budget(),
            in_flight: 0,
            requests: 0,
            consumed_metric: m.messages_consumed.with_label_values(&[&*tp.topic]),
            progress_metric,
        }
    }

    pub fn on_revoked(&mut self, tps: Vec<Tp>, lost: bool, revoke: RevokeId, now: Instant) {
        self.now = now;
        self.metrics
            .rebalances
            .with_label_values(&[if lost { "lost" } else { "revoke" }])
            .inc();
        self.drop_ready(|w| tps.contains(&w.tp));
        self.drop_parked(|w| tps.contains(&w.tp));
        for tp in &tps {
            if let Some(p) = self.partitions.get_mut(tp) {
                p.phase = Phase::Draining;
                // Waiting messages were never started: forget them; the next owner re-reads them.
                let waiting = p.lanes.take_waiting();
                let bytes = waiting.iter().map(|w| w.bytes).sum();
                self.pauses_dirty |=
                    self.ledger
                        .release(Some(&mut p.budget), waiting.len(), bytes, now);
            }
            self.paused.remove(tp);
        }
        self.update_in_flight_gauges();
        if lost {
            // Someone else may own these already: commit nothing, drop everything now.
            for tp in &tps {
                self.drop_partition(tp);
            }
            self.effects.push(Effect::AnswerRevoke {
                revoke,
                answer: RevokeAnswer::Final(Vec::new()),
            });
            self.update_assignment_gauges();
            return;
        }
        if !self.drained(&tps) {
            // Commit what has finished now, while the revoke's generation is still current; the
            // final commit after the drain may be refused (see RevokeAnswer::Progress).
            self.effects.push(Effect::AnswerRevoke {
                revoke,
                answer: RevokeAnswer::Progress(self.watermarks(&tps)),
            });
        }
        self.drains.push(DrainJob {
            partitions: tps,
            deadline: now + self.config.delivery.drain_timeout,
            revoke,
        });
        self.check_drains();
    }

    /// Positions reported by an idle poll thread: everything handed over below them has been
    /// taken already (same channel, in order), so the rest below them is markers or aborted
    /// records the watermark may pass. Not during a revoke or shutdown, whose final watermarks
    /// are already decided.
    pub fn on_positions(&mut self, at: Vec<(Tp, i64)>) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        for (tp, position) in at {
            if let Some(p) = self.partitions.get_mut(&tp) {
                if !p.phase.is_draining() {
                    p.tracker.advance_to(position);
                }
            }
        }
    }

    /// True when none of `tps` has a task in flight.
    fn drained(&self, tps: &[Tp]) -> bool {
        tps.iter()
            .all(|tp| self.partitions.get(tp).is_none_or(|p| p.in_flight == 0))
    }

    /// The contiguous finished watermark (next offset to read) of each of `tps` that has one.
    fn watermarks(&self, tps: &[Tp]) -> Vec<(Tp, i64)> {
        tps.iter()
            .filter_map(|tp| {
                self.partitions
                    .get(tp)
                    .and_then(|p| p.tracker.watermark())
                    .map(|w| (tp.clone(), w))
            })
            .collect()
    }

    pub(super) fn check_drains(&mut self) {
        if self.drains.is_empty() {
            return;
        }
        let now = self.now;
        let mut i = 0;
        while i < self.drains.len() {
            let job = &self.drains[i];
            let idle = self.drained(&job.partitions);
            if !(idle || now >= job.deadline) {
                i += 1;
                continue;
            }
            let job = self.drains.swap_remove(i);
            if !idle {
                tracing::warn!("drain deadline reached; unfinished messages will be re-delivered by the next owner");
            }
            let offsets = self.watermarks(&job.partitions);
            for tp in &job.partitions {
                self.drop_partition(tp);
            }
            self.update_assignment_gauges();
            // The poll thread commits these synchronously before giving the partitions away.
            self.effects.push(Effect::AnswerRevoke {
                revoke: job.revoke,
                answer: RevokeAnswer::Final(offsets),
            });
        }
    }

    /// Offsets went backwards within one assignment: librdkafka reset its position
    /// (`auto.offset.reset` after OFFSET_OUT_OF_RANGE) because the broker lost or replaced the
    /// log — an unclean leader election, a re-created topic, a broker restarted without its data.
    /// Refusing the lower offsets would wedge the partition: nothing new is tracked until the
    /// offsets pass the old high-water mark, so new messages are skipped and never committed.
    /// Instead the partition starts over under a new generation, exactly like a fresh assignment:
    /// requests already in flight still complete (their acks are stale and only free their request
    /// slots), consumed messages not yet started are dropped (on the same log they are read again;
    /// on a lost log the broker no longer has them), and from here the watermark follows the new
    /// offsets. Returns the new state.
    pub(super) fn rebase_partition(
        &mut self,
        tp: &Tp,
        offset: i64,
        last_seen: i64,
    ) -> Option<&mut Partition<M>> {
        let old_generation = self.partitions.get(tp)?.generation;
        self.drop_ready(|w| &w.tp == tp && w.generation == old_generation);
        self.drop_parked(|w| &w.tp == tp && w.generation == old_generation);
        self.halted_work.retain(|w| &w.tp != tp);
        let fresh = self.fresh_partition(tp);
        let old = self.partitions.insert(tp.clone(), fresh)?;
        // drop_ready released the ready items already; the rest of the old budget (in flight,
        // lane waiters, halted) is released here. Old in-flight tasks keep running, uncounted.
        self.pauses_dirty |= self.ledger.release_partition(&old.budget, self.now);
        self.update_in_flight_gauges();
        self.metrics
            .partition_rewinds
            .with_label_values(&[&*tp.topic, tp.partition.to_string().as_str()])
            .inc();
        tracing::error!(
            partition = %tp,
            offset,
            last_seen,
            in_flight = old.in_flight,
            "offsets went backwards: the broker lost or replaced this partition's log; tracking starts over at the new offsets"
        );
        self.pauses_dirty = true;
        self.partitions.get_mut(tp)
    }

    fn drop_partition(&mut self, tp: &Tp) {
        self.drop_parked(|w| &w.tp == tp);
        if let Some(p) = self.partitions.remove(tp) {
            self.effects.push(Effect::Closed(tp.clone()));
            self.pauses_dirty |= self.ledger.release_partition(&p.budget, self.now);
            self.update_in_flight_gauges();
            let part = tp.partition.to_string();
            for g in [
                &self.metrics.consumer_lag_messages,
                &self.metrics.consumer_lag_seconds,
                &self.metrics.partition_last_progress,
            ] {
                let _ = g.remove_label_values(&[&*tp.topic, part.as_str()]);
            }
        }
        self.paused.remove(tp);
        self.halted_work.retain(|w| &w.tp != tp);
        if let Some(h) = &mut self.dlq_hold {
            h.retain(|w| &w.tp != tp);
        }
        self.update_hold_gauge();
    }

    // ----- shutdown ---------------------------------------------------------------------------

    pub fn begin_shutdown(&mut self, now: Instant) {
        self.now = now;
        tracing::info!("shutdown requested: pausing consumption and draining in-flight deliveries");
        self.shutdown_deadline = Some(now + self.config.delivery.drain_timeout);
        self.drop_ready(|_| true);
        self.drop_parked(|_| true);
        for p in self.partitions.values_mut() {
            let waiting = p.lanes.take_waiting();
            let bytes = waiting.iter().map(|w| w.bytes).sum();
            self.pauses_dirty |=
                self.ledger
                    .release(Some(&mut p.budget), waiting.len(), bytes, now);
        }
        self.update_in_flight_gauges();
        self.pauses_dirty = true;
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown_deadline.is_some()
    }

    /// The drain ended: nothing in flight, or the drain deadline passed.
    pub fn shutdown_complete(&self, now: Instant) -> bool {
        let idle = self.partitions.values().all(|p| p.in_flight == 0);
        idle || self.shutdown_deadline.is_some_and(|d| now >= d)
    }

    /// What each partition ends with: the offset to commit and what the next owner reads again.
    pub fn final_ends(&self) -> Vec<PartitionEnd> {
        self.partitions
            .iter()
            .map(|(tp, p)| PartitionEnd {
                tp: tp.clone(),
                commit: p.tracker.commit_candidate(),
                since_commit: u64::try_from(p.tracker.taken_since_commit()).unwrap_or(0),
                unfinished: u64::try_from(p.tracker.pending_len()).unwrap_or(u64::MAX),
            })
            .collect()
    }

    pub(super) fn update_assignment_gauges(&self) {
        let n = self
            .partitions
            .values()
            .filter(|p| !p.phase.is_draining())
            .count();
        self.metrics
            .assigned_partitions
            .set(i64::try_from(n).unwrap_or(i64::MAX));
        self.health.set_assigned(n);
    }
}
