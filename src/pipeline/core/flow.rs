//! Flow: the ready queue, request slots, parked retries, pause/resume and the intake gate.

use super::{Core, Effect, Partition, Work};
use crate::kafka::consumer::Tp;
use crate::kafka::dlq::DlqReason;
use std::time::{Duration, Instant};

impl<M: Clone> Core<M> {
    /// Queues a mapped message for delivery and starts what the request bounds allow.
    pub(super) fn queue_delivery(&mut self, work: Work<M>) {
        self.ready.push_back(work);
        self.dispatch_ready();
    }

    /// Starts deliveries from the ready queue, oldest first, while the request limit and the
    /// partition's `max_in_flight_per_partition` allow.
    pub(super) fn dispatch_ready(&mut self) {
        if self.commits_stalled {
            return; // bounded replays: nothing starts until a commit is confirmed
        }
        let per_partition = self.config.delivery.max_in_flight_per_partition;
        let bound = self.config.delivery.max_uncommitted_per_partition;
        let mut i = 0;
        while self.requests < self.request_limit && i < self.ready.len() {
            // A partition over its replay bound starts nothing more until a commit confirms:
            // what it delivers now, a new owner would deliver again.
            let w = &self.ready[i];
            let Some(p) = self.partitions.get(&w.tp).filter(|p| p.owns(w.generation)) else {
                // Its generation is gone (every path that ends one drops its ready work first,
                // so this is defence): never start it under another generation.
                if let Some(stale) = self.ready.remove(i) {
                    self.forget(stale);
                }
                continue;
            };
            // Bounded replays. While commits are refused, only offsets within `bound` of the
            // last confirmed commit start: whatever finishes, in order or not, a new owner
            // delivers again from there, so at most `bound` of them. While commits work, the
            // contiguous finished messages count (what the next commit stores): a retry waiting
            // out its backoff then holds the watermark without stopping its partition, as it
            // must not at a few percent of errors.
            let within_bound = if self.commits_failing {
                p.tracker
                    .replay_base()
                    .is_none_or(|base| w.offset - base < i64::try_from(bound).unwrap_or(i64::MAX))
            } else {
                usize::try_from(p.tracker.uncommitted()).is_ok_and(|u| u <= bound)
            };
            let startable = p.requests < per_partition && within_bound;
            if !startable {
                i += 1;
                continue;
            }
            if let Some(work) = self.ready.remove(i) {
                self.start_delivery(work);
            }
        }
    }

    fn start_delivery(&mut self, mut work: Work<M>) {
        let Some(p) = self.partitions.get_mut(&work.tp) else {
            return;
        };
        p.in_flight += 1;
        p.requests += 1;
        self.requests += 1;
        work.request = true;
        let (tp, body, tally) = (
            work.tp.clone(),
            work.body.clone().unwrap_or_default(),
            work.tally,
        );
        let task = self.start_task(work);
        self.effects.push(Effect::Deliver {
            task,
            tp,
            body,
            tally,
        });
    }

    /// Writes `work` to the DLQ after `delay` (its reason is `work.why`).
    pub(super) fn write_dead_letter(&mut self, work: Work<M>, delay: Duration) {
        let Some(p) = self.partitions.get_mut(&work.tp) else {
            return;
        };
        p.in_flight += 1;
        // Every path here set `why` first (the failure policy, a retry, a hold's release).
        let why = work.why.clone().unwrap_or_else(|| DlqReason {
            class: "internal".into(),
            reason: "reason_missing".into(),
            http_status: None,
            response_snippet: None,
            schema_id: None,
        });
        let msg = work.msg.clone();
        let task = self.start_task(work);
        self.effects.push(Effect::WriteDlq {
            task,
            msg,
            why,
            delay,
        });
    }

    /// Removes ready (not yet started) work matching `pred`, releasing its budget: it was never
    /// sent, is not committed, and will be read again by whoever owns the partition next.
    pub(super) fn drop_ready(&mut self, pred: impl Fn(&Work<M>) -> bool) {
        let (dropped, kept): (Vec<Work<M>>, Vec<Work<M>>) =
            self.ready.drain(..).partition(|w| pred(w));
        self.ready = kept.into();
        for w in dropped {
            self.forget(w);
        }
    }

    /// A message whose attempt failed retryably waits out its backoff here, its request slot
    /// already released, counted in the parked budget instead of the in-flight ones.
    pub(super) fn park(&mut self, work: Work<M>, delay: Duration) {
        let budget = self.partitions.get_mut(&work.tp).map(|p| &mut p.budget);
        self.pauses_dirty |= self.ledger.park(budget, work.bytes, self.now);
        self.parked.park(self.now + delay, work);
        self.update_in_flight_gauges();
    }

    /// When the earliest parked retry is due.
    pub fn next_retry_due(&self) -> Option<Instant> {
        self.parked.next_due()
    }

    /// Moves the parked messages whose backoff has passed to the front of the ready queue (they
    /// are older than anything there) and starts what the request bounds allow.
    pub fn unpark_due(&mut self, now: Instant) {
        self.now = now;
        let due = self.parked.take_due(now);
        if due.is_empty() {
            return;
        }
        // Reversed so that pushing each to the front keeps the earliest due first.
        for work in due.into_iter().rev() {
            self.ledger.unpark(work.bytes);
            let Some(p) = self
                .partitions
                .get_mut(&work.tp)
                .filter(|p| p.owns(work.generation))
            else {
                continue; // revoked or rebased meanwhile; its state is gone already
            };
            self.pauses_dirty |= self.ledger.take(&mut p.budget, work.bytes, now);
            self.ready.push_front(work);
        }
        self.pauses_dirty |= self.ledger.refresh(now);
        self.update_in_flight_gauges();
        self.dispatch_ready();
    }

    /// Drops parked messages matching `pred` (their partition was revoked, lost or rebased, or the
    /// bridge is shutting down): unfinished, so never committed, and read again by whoever owns
    /// the partition next.
    pub(super) fn drop_parked(&mut self, pred: impl Fn(&Work<M>) -> bool) {
        let dropped = self.parked.take_where(pred);
        if dropped.is_empty() {
            return;
        }
        for w in &dropped {
            self.ledger.unpark(w.bytes);
        }
        self.pauses_dirty |= self.ledger.refresh(self.now);
        self.update_in_flight_gauges();
    }

    /// Releases an unfinished in-flight message that will not be attempted again here (revoke
    /// or shutdown in progress): it is not committed, so it is read again later. Work of a
    /// generation that is gone holds no budget any more (its partition's whole budget left
    /// when the partition went), so it releases nothing.
    pub(super) fn forget(&mut self, work: Work<M>) {
        let Some(p) = self
            .partitions
            .get_mut(&work.tp)
            .filter(|p| p.generation == work.generation)
        else {
            return;
        };
        self.pauses_dirty |= self
            .ledger
            .release(Some(&mut p.budget), 1, work.bytes, self.now);
        self.update_in_flight_gauges();
    }

    // ----- pause / resume and the gate --------------------------------------------------------

    fn should_pause(&self, tp: &Tp, p: &Partition<M>) -> bool {
        self.shutdown_deadline.is_some()
            || self.halted.is_some()
            || self.fatal.is_some()
            // An open circuit pauses consumption only while deliveries are waiting at it: they
            // are the probes that close it. With none left (a revoke or lost session cancelled
            // them) a paused consumer would never take a message to probe with, and the circuit
            // would stay open after MCM recovered (seen in the tansu chaos run). New messages
            // then wait at the breaker, bounded by the budgets, and the first becomes the probe.
            || (self.circuit_open && (self.requests > 0 || !self.parked.is_empty()))
            || self.ledger.global_pause()
            // Messages of this partition wait for a schema: more taken now would only join them.
            || self.schema_wait.contains(tp)
            // Bounded replays: commits are not being confirmed. A partition over its own replay
            // bound is not paused: `dispatch_ready` starts nothing of it until a commit confirms,
            // and its budget pauses it if that lasts. Pausing it at once cost a fetch restart
            // whenever one commit was slow on a loaded host (seen as pauses in a healthy run).
            || self.commits_stalled
            // A partition over its own budget while the global one is full is held by the gate;
            // pausing it too would only add a resume delay.
            || (p.budget.is_paused() && !self.ledger.is_full())
            || p.phase.is_draining()
            || self.holds_dead_letters(tp)
    }

    /// The partitions to pause and to resume now, when anything changed since the last call
    /// (`None` otherwise). The shell applies them and confirms with [`Core::paused`] and
    /// [`Core::resumed`] (a refused pause is tried again at the next change).
    pub fn pause_changes(&mut self) -> Option<(Vec<Tp>, Vec<Tp>)> {
        if !std::mem::take(&mut self.pauses_dirty) {
            return None;
        }
        let mut to_pause = Vec::new();
        let mut to_resume = Vec::new();
        for (tp, p) in &self.partitions {
            let want = self.should_pause(tp, p);
            let is = self.paused.contains(tp);
            if want && !is {
                to_pause.push(tp.clone());
            } else if !want && is {
                to_resume.push(tp.clone());
            }
        }
        Some((to_pause, to_resume))
    }

    /// The partitions whose messages the shell holds until a schema is fetched: they pause
    /// while it does (a registry outage becomes a pause, not a queue); the others flow.
    pub fn set_schema_wait(&mut self, holding: std::collections::HashSet<Tp>) {
        if holding != self.schema_wait {
            self.schema_wait = holding;
            self.pauses_dirty = true;
        }
    }

    /// `tps` were paused.
    pub fn paused(&mut self, tps: Vec<Tp>) {
        self.metrics.partition_pauses.inc_by(tps.len() as u64);
        self.paused.extend(tps);
    }

    /// `tps` were resumed.
    pub fn resumed(&mut self, tps: &[Tp]) {
        for tp in tps {
            self.paused.remove(tp);
        }
    }

    /// Whether the intake gate is closed: while the global budget is full and nothing else
    /// pauses consumption; open otherwise, so `poll()` keeps running whenever partitions are
    /// paused.
    pub fn gate_closed(&self) -> bool {
        self.ledger.is_full()
            && !self.ledger.global_pause()
            && self.shutdown_deadline.is_none()
            && self.halted.is_none()
            && self.fatal.is_none()
            && !self.circuit_open
    }

    pub(super) fn update_in_flight_gauges(&self) {
        let (messages, bytes) = self.ledger.held();
        self.metrics
            .in_flight_messages
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
        self.metrics
            .in_flight_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.metrics
            .retries_waiting
            .set(i64::try_from(self.parked.len()).unwrap_or(i64::MAX));
    }
}
