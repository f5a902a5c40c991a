//! Halts and holds: MCM configuration errors (401/403/404), `on_failure: halt`, dead letters
//! Kafka will not take, and Kafka refusing a consuming right.

use super::{Core, Effect, Work};
use crate::kafka::access::{AccessDenied, Names, Refusal};
use crate::kafka::dlq::Unwritable;
use crate::pipeline::dlq_hold::DlqHold;
use crate::pipeline::work::{Ack, AckResult};
use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

/// The longest interval between probes of held dead letters: an operator who granted the DLQ
/// right waits at most this long (Moloco's 15 min cap is about its API, not about Kafka).
const DLQ_PROBE_MAX: Duration = Duration::from_secs(5 * 60);

/// How often a halt by a configuration error is logged again.
const FATAL_LOG_EVERY: Duration = Duration::from_secs(30);

/// Delivery halted by a configuration error (401/403/404): messages wait here until a probe
/// succeeds (e.g. after the key was rotated).
pub struct FatalHalt<M> {
    parked: Vec<Work<M>>,
    next_probe: Instant,
    backoff: Duration,
    probing: bool,
    last_log: Instant,
}

impl<M> FatalHalt<M> {
    /// The messages waiting for the configuration to work again (not the probe out).
    #[cfg(test)]
    pub(super) fn parked(&self) -> impl Iterator<Item = &Work<M>> {
        self.parked.iter()
    }
}

/// Why dead letters are held rather than retried (see [`Core::hold_dead_letter`]).
#[derive(Clone, Copy)]
pub(super) enum HoldCause<'a> {
    /// Kafka refused the write: a missing WRITE right.
    Denied(&'a AccessDenied),
    /// Kafka cannot take it until the cluster changes: a missing topic, a record too large.
    Unwritable(&'a Unwritable),
}

impl<M: Clone> Core<M> {
    /// `on_failure: halt`: stop until an operator restarts the bridge; `work` stays unfinished.
    pub(super) fn halt(&mut self, work: Work<M>, msg: String) {
        tracing::error!(reason = %msg, "delivery halted; fix the cause and restart the bridge");
        if self.halted.is_none() {
            self.halted = Some(msg.clone());
            self.health.set_halted(Some(msg));
            self.metrics.halted.set(1);
        }
        self.halted_work.push(work);
        self.pauses_dirty = true;
    }

    // ----- configuration errors (401/403/404) ------------------------------------------------

    pub(super) fn enter_fatal(&mut self, work: Work<M>, status: u16, detail: &str) {
        let now = self.now;
        match &mut self.fatal {
            Some(f) => f.parked.push(work),
            None => {
                tracing::error!(
                    status,
                    detail,
                    "MCM rejected our configuration (API key, platform id or URL); delivery halted, offsets kept, probing"
                );
                let backoff = self.config.mcm.circuit_breaker.probe_interval;
                self.fatal = Some(FatalHalt {
                    parked: vec![work],
                    next_probe: now + backoff,
                    backoff,
                    probing: false,
                    last_log: now,
                });
                self.health
                    .set_config_error(Some(format!("MCM answered {status}: {detail}")));
                self.metrics.halted.set(1);
                self.pauses_dirty = true;
            }
        }
    }

    /// On a tick: sends the next probe when it is due, or repeats the halt's error line.
    pub(super) fn probe_fatal(&mut self) {
        let now = self.now;
        let Some(f) = &mut self.fatal else { return };
        if f.probing {
            return; // handled on the probe's ack
        }
        if now.duration_since(f.last_log) > FATAL_LOG_EVERY {
            f.last_log = now;
            tracing::error!(
                parked = f.parked.len(),
                "delivery still halted by an MCM configuration error"
            );
        }
        if now < f.next_probe {
            return;
        }
        // Drop parked work whose partition was revoked meanwhile.
        let partitions = &self.partitions;
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        for w in f.parked.drain(..) {
            if partitions
                .get(&w.tp)
                .is_some_and(|p| p.generation == w.generation)
            {
                kept.push(w);
            } else {
                gone.push(w);
            }
        }
        f.parked = kept;
        let next = f.parked.pop();
        if next.is_some() {
            f.probing = true;
        }
        for w in gone {
            self.forget(w);
        }
        let Some(mut work) = next else {
            // Nothing left to probe with (all revoked): resume and let new messages probe.
            self.exit_fatal();
            return;
        };
        work.probe = true;
        if let Some(p) = self.partitions.get_mut(&work.tp) {
            p.in_flight += 1;
        }
        let body = work.body.clone().unwrap_or_default();
        let task = self.start_task(work);
        self.effects.push(Effect::Probe { task, body });
    }

    /// The answer to a probe sent while halted by a configuration error.
    pub(super) fn on_probe_ack(&mut self, mut work: Work<M>, result: AckResult) {
        work.probe = false;
        let owned = self
            .partitions
            .get_mut(&work.tp)
            .filter(|p| p.generation == work.generation);
        match owned {
            Some(p) => p.in_flight = p.in_flight.saturating_sub(1),
            None => self.metrics.stale_acks.inc(),
        }
        let now = self.now;
        let Some(f) = &mut self.fatal else {
            self.forget(work);
            return;
        };
        f.probing = false;
        match result {
            AckResult::Fatal { status, .. } => {
                f.backoff = (f.backoff * 2).min(crate::config::MAX_PROBE_INTERVAL);
                f.next_probe = now + f.backoff;
                tracing::error!(status, next_probe_in = ?f.backoff, "probe still rejected: check mcm.api_key / platform_id / base_url");
                f.parked.push(work);
            }
            AckResult::ProbeInconclusive | AckResult::Cancelled => {
                f.next_probe = now + f.backoff;
                f.parked.push(work);
            }
            other => {
                // Any answer past authentication (2xx, or a 400 about the data) means the
                // configuration works again: handle this message normally and resume.
                self.exit_fatal();
                let owned = self
                    .partitions
                    .get_mut(&work.tp)
                    .filter(|p| p.generation == work.generation);
                let Some(p) = owned else {
                    return; // stale: counted above
                };
                p.in_flight += 1; // on_ack decrements it again
                let task = self.start_task(work);
                self.on_ack(
                    Ack {
                        task,
                        tally: None,
                        result: other,
                    },
                    now,
                );
            }
        }
    }

    fn exit_fatal(&mut self) {
        let Some(f) = self.fatal.take() else { return };
        tracing::info!(
            parked = f.parked.len(),
            "MCM accepts our requests again; delivery resumed"
        );
        self.health.set_config_error(None);
        if self.halted.is_none() && self.dlq_hold.is_none() {
            self.metrics.halted.set(0);
        }
        for w in f.parked {
            let owned = self
                .partitions
                .get(&w.tp)
                .is_some_and(|p| p.owns(w.generation));
            if owned {
                self.queue_delivery(w);
            } else {
                self.forget(w);
            }
        }
        self.pauses_dirty = true;
    }

    // ----- Kafka refusals (login, ACLs) -------------------------------------------------------

    /// Kafka refused the login or a right needed to consume (READ on the group or a topic).
    ///
    /// Decision: **stop** — drain, commit what finished, exit non-zero (exit code 3) — at
    /// start-up and later alike, after one error that names the right, the resource and the
    /// grant. Why not wait and retry, as for a broker outage: nothing the bridge does fixes it,
    /// and librdkafka's own retries only repeat the refusal (every reconnect for a login, every
    /// heartbeat under KIP-848) or go silent with partitions assigned and never fetched (a topic
    /// without READ), which looks healthy while lag grows. Exiting makes it as visible as a
    /// configuration error (a crash-looping pod, a failed unit) while the supervisor's restarts,
    /// with their backoff, are the retry: once the right is granted the next start works.
    /// Nothing is lost: unfinished messages are not committed. Refused DLQ writes are different
    /// (the bridge can keep its place and wait): see [`Core::hold_dead_letter`].
    pub fn on_access_denied(&mut self, refusal: Refusal, now: Instant) {
        self.now = now;
        if matches!(refusal, Refusal::Write { .. }) {
            // Not a consuming right (the DLQ producer reports its own refusals).
            self.health.set_broker_error(Some(format!("{refusal:?}")));
            return;
        }
        if self.access_denied {
            tracing::debug!(?refusal, "Kafka refused again (already stopping)");
            return;
        }
        self.access_denied = true;
        let candidates = self.topic_candidates();
        let k = &self.config.kafka;
        let principal = k.security.principal();
        let denied = AccessDenied::explain(
            refusal,
            Names {
                group: &k.group_id,
                topic_candidates: &candidates,
                dlq_topic: &self.config.delivery.dlq_topic,
                principal: principal.as_deref(),
            },
        );
        tracing::error!(
            error = %denied,
            "stopping: the bridge cannot consume without this (exit code 3); fix it and start the bridge again"
        );
        self.count_denied(&denied);
        self.health.set_kafka_denied(Some(denied.to_string()));
        if self.shutdown_deadline.is_none() {
            self.begin_shutdown(now);
        }
    }

    /// Topics a refusal naming none may be about: the assigned topics nothing was read from yet
    /// (a topic read from is readable), else the subscribed topic names.
    fn topic_candidates(&self) -> Vec<String> {
        let read: HashSet<&str> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.tracker.watermark().is_some())
            .map(|(tp, _)| &*tp.topic)
            .collect();
        let unread: BTreeSet<String> = self
            .partitions
            .keys()
            .map(|tp| &*tp.topic)
            .filter(|t| !read.contains(t))
            .map(str::to_string)
            .collect();
        if !unread.is_empty() {
            return unread.into_iter().collect();
        }
        let mut subscribed = self.plan.subscriptions();
        subscribed.retain(|t| !t.starts_with('^'));
        subscribed
    }

    fn count_denied(&self, denied: &AccessDenied) {
        self.metrics
            .kafka_access_denied
            .with_label_values(&[denied.right.label(), denied.resource.label()])
            .inc();
    }

    // ----- dead letters Kafka will not take ---------------------------------------------------

    /// Kafka refused a dead letter (no WRITE on the DLQ topic), or cannot take it as the
    /// cluster is configured (the topic is missing, the record too large: [`Unwritable`]).
    ///
    /// Decision: **hold** the dead letters instead of stopping or retrying each — the bridge can
    /// keep its place: a held message is unfinished, so its partition's watermark stays below it
    /// and nothing past it is committed; the partitions holding one are paused, the others keep
    /// delivering; new dead letters join the hold without an attempt. One error, the
    /// `kafka_access_denied_total` count, `halted` = 1 and not ready; then a probe after
    /// `mcm.circuit_breaker.probe_interval`, doubling up to 5 minutes, like the 401/403 halt,
    /// because the right may be granted at any time (see [`crate::pipeline::dlq_hold`]).
    pub(super) fn hold_dead_letter(&mut self, mut work: Work<M>, cause: HoldCause<'_>) {
        let now = self.now;
        let was_probe = std::mem::take(&mut work.dlq_probe);
        match &mut self.dlq_hold {
            Some(h) if was_probe => {
                h.probe_refused(now, work);
                tracing::error!(
                    held = h.len(),
                    next_probe_in = ?h.backoff(),
                    "the DLQ topic still refuses writes; dead letters stay held (offsets not committed)"
                );
            }
            Some(h) => h.hold(work),
            None => {
                let what = match cause {
                    HoldCause::Denied(denied) => {
                        self.count_denied(denied);
                        denied.to_string()
                    }
                    HoldCause::Unwritable(unwritable) => unwritable.to_string(),
                };
                tracing::error!(
                    error = %what,
                    "holding dead letters: their partitions are paused and their offsets not committed until Kafka takes them; probing"
                );
                self.health.set_kafka_denied(Some(what));
                self.metrics.halted.set(1);
                let first = self.config.mcm.circuit_breaker.probe_interval;
                let mut h = DlqHold::new(now, first, DLQ_PROBE_MAX);
                h.hold(work);
                self.dlq_hold = Some(h);
            }
        }
        self.update_hold_gauge();
        self.pauses_dirty = true;
    }

    /// Sends the next probe of held dead letters when it is due; ends a hold left empty by
    /// revokes.
    pub(super) fn probe_dlq_hold(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        let partitions = &self.partitions;
        let Some(h) = &mut self.dlq_hold else { return };
        let gone = h.take_where(|w| !partitions.get(&w.tp).is_some_and(|p| p.owns(w.generation)));
        let empty = h.is_empty() && !h.is_probing();
        if !gone.is_empty() {
            // A partition may stop holding one (also one rebased meanwhile, whose old work
            // releases nothing): look again at what is paused.
            self.pauses_dirty = true;
        }
        for w in gone {
            self.forget(w);
        }
        if empty {
            self.release_dead_letters(false);
            return;
        }
        let Some(h) = &mut self.dlq_hold else { return };
        let Some(mut work) = h.take_probe(self.now) else {
            self.update_hold_gauge();
            return;
        };
        work.dlq_probe = true;
        self.update_hold_gauge();
        self.write_dead_letter(work, Duration::ZERO);
    }

    /// Ends the hold: a probe `got_through` (write every held dead letter), or nothing is held
    /// any more (their partitions were revoked; the next dead letter tries the DLQ topic again).
    pub(super) fn release_dead_letters(&mut self, got_through: bool) {
        let Some(h) = self.dlq_hold.take() else {
            return;
        };
        let held = h.release();
        if got_through {
            tracing::info!(
                more = held.len(),
                "Kafka takes dead letters again (the probe was written); writing the other held ones and resuming their partitions"
            );
        } else {
            tracing::info!("no dead letters held any more (their partitions were revoked); the next one tries the DLQ topic again");
        }
        self.health.set_kafka_denied(None);
        if self.halted.is_none() && self.fatal.is_none() {
            self.metrics.halted.set(0);
        }
        for w in held {
            let owned = self
                .partitions
                .get(&w.tp)
                .is_some_and(|p| p.owns(w.generation));
            if owned {
                self.write_dead_letter(w, Duration::ZERO);
            } else {
                self.forget(w);
            }
        }
        self.update_hold_gauge();
        self.pauses_dirty = true;
    }

    pub(super) fn holds_dead_letters(&self, tp: &crate::kafka::consumer::Tp) -> bool {
        self.dlq_hold
            .as_ref()
            .is_some_and(|h| h.any(|w| &w.tp == tp))
    }

    pub(super) fn update_hold_gauge(&self) {
        let held = self.dlq_hold.as_ref().map_or(0, DlqHold::len);
        self.metrics
            .dead_letters_held
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }
}
