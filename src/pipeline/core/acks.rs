//! A task's answer, the failure policy, and finishing a message.

use super::halts::HoldCause;
use super::{Core, Work};
use crate::config::FailurePolicy;
use crate::kafka::dlq::DlqReason;
use crate::mcm::validate::now_ms;
use crate::observe::metrics::Totals;
use crate::pipeline::work::{Ack, AckResult, DlqFailure};
use std::time::{Duration, Instant};

/// The longest wait between retries of a dead letter whose write failed transiently.
pub(super) const DLQ_RETRY_MAX: Duration = Duration::from_secs(30);

/// The wait before retrying a dead letter after `attempts` transient failures: 1 s doubling to
/// 30 s (the retry loop before waited 1 s every time, for ever).
pub(super) fn dlq_retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(5);
    Duration::from_secs(1u64 << doublings).min(DLQ_RETRY_MAX)
}

impl<M: Clone> Core<M> {
    /// A task ended. Acks are handled before new messages (the shell's `biased` select, Vector
    /// PR #20467) so finished work frees budget before more is taken.
    pub fn on_ack(&mut self, ack: Ack, now: Instant) {
        self.now = now;
        let Ack {
            task,
            tally,
            result,
        } = ack;
        let Some(mut work) = self.tasks.remove(&task) else {
            tracing::warn!(task, "acknowledgement of an unknown task; ignored");
            return;
        };
        if let Some(tally) = tally {
            work.tally = tally;
        }
        if work.probe {
            self.on_probe_ack(work, result);
            return;
        }
        let Some(p) = self
            .partitions
            .get_mut(&work.tp)
            .filter(|p| p.generation == work.generation)
        else {
            // The partition was revoked, lost or rebased while this task ran. Its request slot
            // is freed only now that the request really ended, so the request limit still holds.
            if work.request {
                self.requests = self.requests.saturating_sub(1);
                self.dispatch_ready();
            }
            if work.dlq_probe {
                if let Some(h) = self.dlq_hold.as_mut() {
                    h.probe_lost(now);
                }
            }
            self.metrics.stale_acks.inc();
            return;
        };
        p.in_flight = p.in_flight.saturating_sub(1);
        if work.request {
            work.request = false;
            p.requests = p.requests.saturating_sub(1);
            self.requests = self.requests.saturating_sub(1);
        }
        let draining = p.phase.is_draining();
        let topic = work.tp.topic.clone();
        match result {
            AckResult::Delivered => {
                let et = work.event_type.map_or("UNKNOWN", |t| t.as_str());
                self.metrics.count_delivered(&topic, et);
                self.finish(work);
            }
            AckResult::Undeliverable(why) => {
                self.metrics
                    .delivery_failures
                    .with_label_values(&[&*topic, why.class.as_str()])
                    .inc();
                self.undeliverable(work, why);
            }
            AckResult::Fatal { status, detail } => {
                self.metrics
                    .delivery_failures
                    .with_label_values(&[&topic, "fatal"])
                    .inc();
                self.enter_fatal(work, status, &detail);
            }
            AckResult::RetryAfter { delay } => self.retry(work, delay, draining),
            // A task ends cancelled when its partition goes or the bridge stops; should one end
            // so while its partition is still owned, it is tried again, not left holding the
            // partition's watermark (and its budget) for ever.
            AckResult::Cancelled | AckResult::ProbeInconclusive => {
                self.retry(work, Duration::ZERO, draining)
            }
            AckResult::DeadLettered => {
                let reason = work.why.as_ref().map_or("", |w| w.reason.as_str());
                self.metrics.count_dead_lettered(&topic, reason);
                let probe = work.dlq_probe;
                self.finish(work);
                if probe {
                    self.release_dead_letters(true);
                }
            }
            AckResult::DlqFailed(failure) => {
                let go_on = !draining && self.shutdown_deadline.is_none();
                self.on_dlq_failed(work, failure, go_on);
            }
        }
        self.dispatch_ready();
        self.check_drains();
    }

    /// An attempt that did not finish the message: park it until `delay` has passed, or, when
    /// its partition is draining or the bridge stopping, forget it — not finished, so never
    /// committed: the next owner (or the next start) reads it again, and parking it would only
    /// hold up the drain.
    fn retry(&mut self, work: Work<M>, delay: Duration, draining: bool) {
        if draining || self.shutdown_deadline.is_some() {
            self.forget(work);
        } else {
            self.park(work, delay);
        }
    }

    fn on_dlq_failed(&mut self, mut work: Work<M>, failure: DlqFailure, go_on: bool) {
        self.metrics.dlq_write_failures.inc();
        match failure {
            DlqFailure::Denied(denied) if go_on => {
                self.hold_dead_letter(work, HoldCause::Denied(&denied))
            }
            DlqFailure::Unwritable(unwritable) if go_on => {
                self.hold_dead_letter(work, HoldCause::Unwritable(&unwritable))
            }
            DlqFailure::Transient(error) if go_on && work.dlq_probe && self.dlq_hold.is_some() => {
                tracing::warn!(%error, "DLQ probe failed; probing again later (offsets held)");
                if let Some(h) = &mut self.dlq_hold {
                    work.dlq_probe = false;
                    h.probe_inconclusive(self.now, work);
                }
            }
            DlqFailure::Transient(error) if go_on => {
                // Transient (broker down, timeouts): back off 1, 2, 4 … 30 s, so that an
                // outage costs one warning per dead letter per backoff, not per second.
                work.dlq_attempts = work.dlq_attempts.saturating_add(1);
                let delay = dlq_retry_delay(work.dlq_attempts);
                tracing::warn!(partition = %work.tp, offset = work.offset, attempt = work.dlq_attempts, retry_in = ?delay, %error, "DLQ write failed; retrying (offset held)");
                self.write_dead_letter(work, delay);
            }
            // Revoked or shutting down: unfinished, so never committed; read again later.
            _ => {
                if work.dlq_probe {
                    if let Some(h) = &mut self.dlq_hold {
                        h.probe_lost(self.now);
                    }
                }
                self.forget(work);
            }
        }
    }

    /// A message that will not be delivered: apply the topic's failure policy.
    pub(super) fn undeliverable(&mut self, mut work: Work<M>, why: DlqReason) {
        let policy = self
            .plan
            .route(&work.tp.topic)
            .and_then(|m| m.on_failure())
            .unwrap_or(self.config.delivery.on_permanent_failure);
        match policy {
            FailurePolicy::Dlq => {
                work.why = Some(why);
                match &mut self.dlq_hold {
                    Some(h) => {
                        h.hold(work);
                        self.update_hold_gauge();
                        self.pauses_dirty = true;
                    }
                    None => self.write_dead_letter(work, Duration::ZERO),
                }
            }
            FailurePolicy::Drop => {
                self.metrics
                    .messages_dropped
                    .with_label_values(&[&*work.tp.topic, why.reason.as_str()])
                    .inc();
                Totals::inc(&self.metrics.totals.dropped);
                self.finish(work);
            }
            FailurePolicy::Halt => {
                let msg = format!(
                    "{} offset {}: {} ({}) and the topic's policy is halt",
                    work.tp, work.offset, why.reason, why.class
                );
                self.halt(work, msg);
            }
        }
    }

    /// Marks a message finished: its offset may now be committed.
    pub(super) fn finish(&mut self, work: Work<M>) {
        let shutting_down = self.shutdown_deadline.is_some();
        let Some(p) = self.partitions.get_mut(&work.tp) else {
            return;
        };
        if p.generation != work.generation {
            return; // a rewind started the partition over; nothing of the old log counts
        }
        p.tracker.complete(work.offset);
        self.finished_since_commit += 1;
        let next = if p.phase.is_draining() || shutting_down {
            None
        } else {
            p.lanes.finish(work.lane)
        };
        p.progress_metric.set(now_ms() / 1000);
        let uncommitted = usize::try_from(p.tracker.uncommitted()).unwrap_or(0);
        self.pauses_dirty |= self
            .ledger
            .release(Some(&mut p.budget), 1, work.bytes, self.now);
        self.update_in_flight_gauges();
        if let Some(next) = next {
            self.queue_delivery(next);
        }
        // Commit early when a partition is halfway to its replay bound, so that a healthy burst
        // never reaches it; past the bound its deliveries wait until a commit confirms.
        let bound = self.config.delivery.max_uncommitted_per_partition;
        if (self.finished_since_commit >= self.config.mcm.max_in_flight || uncommitted >= bound / 2)
            && !shutting_down
        {
            self.start_commit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_dlq_failures_back_off_from_one_second_to_thirty() {
        let delays: Vec<u64> = (1..=8).map(|n| dlq_retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(dlq_retry_delay(0), Duration::from_secs(1));
        assert_eq!(dlq_retry_delay(u32::MAX), DLQ_RETRY_MAX);
    }
}
