//! The commit planner: what to commit and when, what a result means, and when commits that do
//! not get confirmed stop intake (bounded replays).

use super::{Core, Effect};
use crate::kafka::consumer::Tp;
use crate::observe::metrics::Totals;
use crate::pipeline::commit_ledger::CommitEntry;
use std::time::{Duration, Instant};

/// How often a commit that keeps being refused is logged.
const COMMIT_WARNING_EVERY: Duration = Duration::from_secs(10);

impl<M: Clone> Core<M> {
    /// Starts a commit of every partition's watermark that moved past its last confirmed commit,
    /// unless one is in flight (its result comes back through [`Core::on_commit_done`]). The
    /// shell commits synchronously, on a blocking thread: librdkafka reports a manual async
    /// commit's result to nobody here (see [`crate::pipeline::commit_ledger`]), and a refused
    /// commit must not count as stored.
    pub(super) fn start_commit(&mut self) {
        self.finished_since_commit = 0;
        if !self.commits.idle() {
            return;
        }
        let entries: Vec<CommitEntry> = self
            .partitions
            .iter()
            .filter(|(_, p)| !p.phase.is_draining())
            .filter_map(|(tp, p)| {
                p.tracker.commit_candidate().map(|offset| CommitEntry {
                    tp: tp.clone(),
                    generation: p.generation,
                    offset,
                })
            })
            .collect();
        if entries.is_empty() {
            self.commits.nothing_to_commit(self.now);
            return;
        }
        let offsets: Vec<(Tp, i64)> = entries.iter().map(|e| (e.tp.clone(), e.offset)).collect();
        let seq = self.commits.start(entries, self.now);
        self.effects.push(Effect::Commit { seq, offsets });
    }

    /// A commit's result: confirmed offsets become the partitions' committed watermarks (for
    /// the generation they were taken under); a refusal leaves them candidates for the next
    /// commit, counted and logged.
    pub fn on_commit_done(
        &mut self,
        seq: u64,
        result: Result<(), String>,
        elapsed: Duration,
        now: Instant,
    ) {
        self.now = now;
        let m = &self.metrics;
        m.commit_latency.observe(elapsed.as_secs_f64());
        match result {
            Ok(()) => {
                m.commits.with_label_values(&["ok"]).inc();
                Totals::inc(&m.totals.committed_commits);
                if let Some(confirmed) = self.commits.finish(seq, true, now) {
                    for e in confirmed.entries {
                        if let Some(p) = self.partitions.get_mut(&e.tp) {
                            if p.generation == e.generation {
                                p.tracker.mark_committed(e.offset);
                            }
                        }
                    }
                }
                self.last_commit_warning = None;
                self.commits_failing = false;
            }
            Err(error) => {
                m.commits.with_label_values(&["error"]).inc();
                self.commits.finish(seq, false, now);
                self.commits_failing = true;
                if self
                    .last_commit_warning
                    .is_none_or(|t| now.duration_since(t) >= COMMIT_WARNING_EVERY)
                {
                    self.last_commit_warning = Some(now);
                    tracing::warn!(%error, "offset commit refused; retrying (finished messages stay uncommitted, intake stops if this lasts)");
                }
            }
        }
        // A confirmed commit can take partitions back under their replay bound (dispatch below)
        // and end a stall. Pauses are re-evaluated too, as they were before the replay bound
        // stopped pausing: this regular re-check keeps the circuit-open recovery test green.
        self.pauses_dirty = true;
        self.check_commit_stall();
        self.dispatch_ready();
    }

    /// Stops (or resumes) intake when commits have (or again have) not been confirmed for
    /// longer than the ledger's bound while finished work waits.
    pub(super) fn check_commit_stall(&mut self) {
        let now = self.now;
        self.give_up_hung_commit();
        let uncommitted: i64 = self
            .partitions
            .values()
            .filter(|p| !p.phase.is_draining())
            .map(|p| p.tracker.uncommitted())
            .sum();
        if uncommitted == 0 {
            self.commits.nothing_to_commit(now);
        }
        self.metrics.uncommitted_messages.set(uncommitted);
        let stalled = self.commits.stalled(now, uncommitted > 0);
        if stalled != self.commits_stalled {
            self.commits_stalled = stalled;
            self.pauses_dirty = true;
            self.metrics.commits_stalled.set(i64::from(stalled));
            if stalled {
                tracing::warn!(
                    uncommitted,
                    after = ?self.commits.stall_after(),
                    "no offset commit confirmed: intake stopped until one is, so that a new owner replays little"
                );
            } else {
                tracing::info!("offset commits confirmed again: intake resumes");
                self.dispatch_ready();
            }
        }
    }

    /// A commit without an answer for too long counts as failed, so another may start.
    fn give_up_hung_commit(&mut self) {
        if self.commits.give_up_hung(self.now) {
            self.commits_failing = true;
            self.metrics.commits.with_label_values(&["error"]).inc();
            tracing::warn!("an offset commit has hung for 5 s (broker unreachable?); trying again");
        }
    }

    /// The periodic turn: the circuit's state, budget escalation, due retries and probes, revoke
    /// deadlines, lag sampling and the commit interval.
    pub fn on_tick(&mut self, now: Instant, circuit_open: bool) {
        self.now = now;
        // Before anything starts this turn: a hung commit means commits are failing.
        self.give_up_hung_commit();
        if self.circuit_open {
            // Whether the open circuit pauses depends on requests in flight (should_pause).
            self.pauses_dirty = true;
        }
        self.pauses_dirty |= self.ledger.escalate(now);
        if circuit_open != self.circuit_open {
            self.circuit_open = circuit_open;
            self.health.set_circuit_open(circuit_open);
            self.pauses_dirty = true;
            if circuit_open {
                tracing::warn!("circuit open: MCM keeps failing; consumption paused (Kafka buffers the events)");
            } else {
                tracing::info!("circuit closed: consumption resumed");
            }
        }
        self.unpark_due(now);
        self.probe_fatal();
        self.probe_dlq_hold();
        self.check_drains();
        if now >= self.next_lag_sample {
            self.next_lag_sample = now + Duration::from_secs(1);
            self.sample_lag_seconds();
        }
        if now >= self.next_commit && self.shutdown_deadline.is_none() {
            self.next_commit = now + self.config.kafka.commit_interval;
            self.start_commit();
        }
        self.check_commit_stall();
    }

    /// `consumer_lag_seconds`: the age of each partition's oldest unfinished message (0 when
    /// nothing is unfinished). Sampled once a second, off the per-message path.
    fn sample_lag_seconds(&self) {
        let now = crate::mcm::validate::now_ms();
        for (tp, p) in &self.partitions {
            if p.phase.is_draining() {
                continue;
            }
            let age = p
                .tracker
                .oldest_pending()
                .map_or(0, |(_, ts)| (now - ts).max(0) / 1000);
            self.metrics
                .consumer_lag_seconds
                .with_label_values(&[&*tp.topic, tp.partition.to_string().as_str()])
                .set(age);
        }
    }
}
