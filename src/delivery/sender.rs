//! The retrying sender: what the delivery pipeline calls once per message.
//!
//! [`Sender::deliver`] loops over attempts until the message has a final answer: delivered,
//! permanent (dead-letter it), fatal (halt the bridge), exhausted (`max_attempts` retryable failures
//! in a row) or cancelled (shutdown / partition revoked). It waits while the shared circuit breaker
//! rejects requests; that waiting — and the half-open probes — do not count against `max_attempts`,
//! so a long outage pauses delivery instead of dead-lettering every message in flight.
//!
//! [`Sender::attempt`] is one turn of that loop — breaker admission, one request, the verdict or
//! the delay before the next try — for callers that schedule the waits themselves: the pipeline
//! parks a message between attempts so that its backoff (≥ 5 s for a server error, Moloco's
//! protocol) does not hold one of the `max_in_flight` request slots.
//!
//! The same `Bytes` are sent on every attempt: the event `id` inside them is what lets Moloco
//! de-duplicate a retry whose first attempt did arrive. The breaker lock is held only to read or
//! update its state, never across an `.await`. An attempt already on the wire is not aborted by
//! cancellation (the HTTP timeout bounds it); its result is returned if it was a final one.

use super::circuit::{CircuitBreaker, CircuitState, Permit, Rejected, Signal};
use super::retry::{backoff_delay, may_retry};
use crate::config::RetryConfig;
use crate::mcm::classify::{Outcome, OutcomeClass, RetryKind};
use crate::mcm::client::{McmClient, Transport};
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use strum::IntoStaticStr;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest a waiter sleeps before looking at the breaker again. Waiters are also woken when a
/// probe finishes; the poll only covers breakers shared with other `Sender` instances.
const BREAKER_POLL: Duration = Duration::from_millis(250);

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Verdict {
    /// 2xx: ack the message.
    Delivered(Outcome),
    /// Never accepted as it is (400, 409, 413, 422, …): dead-letter it. Never retried.
    Permanent(Outcome),
    /// Misconfiguration (401/403/404/405, 3xx): halt delivery, keep the offset. Never retried.
    Fatal(Outcome),
    /// `max_attempts` counted attempts all failed retryably; the last outcome says why.
    Exhausted(Outcome),
    /// Cancelled while waiting; the message is not done. Carries the last outcome, if any.
    Cancelled(Option<Outcome>),
}

impl Verdict {
    /// Stable lowercase name for metrics and DLQ headers.
    pub fn as_str(&self) -> &'static str {
        self.into()
    }

    /// The outcome of the last attempt, if one was made.
    pub fn last_outcome(&self) -> Option<&Outcome> {
        match self {
            Verdict::Delivered(o)
            | Verdict::Permanent(o)
            | Verdict::Fatal(o)
            | Verdict::Exhausted(o) => Some(o),
            Verdict::Cancelled(o) => o.as_ref(),
        }
    }
}

/// The verdict plus what it took, for metrics and DLQ headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResult {
    pub verdict: Verdict,
    /// HTTP attempts sent, probes included.
    pub attempts: u32,
    /// Attempts that counted against `max_attempts` (made while the breaker was closed).
    pub counted_attempts: u32,
    /// The kind of every retryable failure, in order (one per retry or final exhaustion).
    pub retry_reasons: Vec<RetryKind>,
    /// Time spent waiting for the circuit breaker to admit an attempt.
    pub breaker_wait: Duration,
    pub elapsed: Duration,
}

/// What one [`Sender::attempt`] leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The message has its final answer.
    Done(Verdict),
    /// A retryable failure: attempt again after `delay` (the backoff, or `Retry-After`).
    Retry {
        delay: Duration,
        kind: RetryKind,
        outcome: Outcome,
    },
}

/// A message's attempts so far, carried from one [`Sender::attempt`] to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// HTTP attempts sent, probes included.
    pub sent: u32,
    /// Attempts that count against `max_attempts` (made while the breaker was closed).
    pub counted: u32,
    /// Time spent waiting for the breaker to admit an attempt.
    pub breaker_wait: Duration,
}

/// See the module docs. Clone it to share between tasks (everything inside is shared).
pub struct Sender<T = McmClient> {
    transport: Arc<T>,
    retry: RetryConfig,
    breaker: Arc<Mutex<CircuitBreaker>>,
    /// Wakes breaker waiters when a probe finishes or the state changes.
    changed: Arc<Notify>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            transport: Arc::clone(&self.transport),
            retry: self.retry.clone(),
            breaker: Arc::clone(&self.breaker),
            changed: Arc::clone(&self.changed),
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("retry", &self.retry)
            .field("circuit", &self.circuit_state())
            .finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// The breaker state now, for `/readyz`, the pause decision and the gauge.
    pub fn circuit_state(&self) -> CircuitState {
        lock(&self.breaker).state(Instant::now())
    }

    /// The transport, for single attempts outside the retry loop (configuration-error probes).
    pub fn transport(&self) -> &T {
        &self.transport
    }
}

impl<T: Transport> Sender<T> {
    pub fn new(transport: T, retry: RetryConfig, breaker: Arc<Mutex<CircuitBreaker>>) -> Self {
        Sender {
            transport: Arc::new(transport),
            retry,
            breaker,
            changed: Arc::new(Notify::new()),
        }
    }

    /// Delivers one message body, retrying as the policy allows. See [`Verdict`] for the endings.
    /// Used where nothing else competes for request slots (`replay-dlq`, tests); the pipeline
    /// calls [`Sender::attempt`] and schedules the waits itself, so that a message waiting out
    /// its backoff does not hold a request slot.
    pub async fn deliver(&self, body: Bytes, cancel: &CancellationToken) -> DeliveryResult {
        let started = Instant::now();
        let mut result = DeliveryResult {
            verdict: Verdict::Cancelled(None),
            attempts: 0,
            counted_attempts: 0,
            retry_reasons: Vec::new(),
            breaker_wait: Duration::ZERO,
            elapsed: Duration::ZERO,
        };
        let mut tally = Tally::default();
        let mut last: Option<Outcome> = None;
        let verdict = loop {
            let step = self.attempt(&body, cancel, &mut tally).await;
            match step {
                Step::Done(Verdict::Cancelled(None)) => break Verdict::Cancelled(last),
                Step::Done(verdict) => {
                    if let Verdict::Exhausted(Outcome::Retryable { kind, .. }) = &verdict {
                        result.retry_reasons.push(*kind);
                    }
                    break verdict;
                }
                Step::Retry {
                    delay,
                    kind,
                    outcome,
                } => {
                    result.retry_reasons.push(kind);
                    last = Some(outcome);
                    if !delay.is_zero() {
                        tokio::select! {
                            biased;
                            _ = cancel.cancelled() => break Verdict::Cancelled(last),
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
        };
        result.verdict = verdict;
        result.attempts = tally.sent;
        result.counted_attempts = tally.counted;
        result.breaker_wait = tally.breaker_wait;
        result.elapsed = started.elapsed();
        result
    }

    /// One attempt: waits until the breaker admits it, sends `body` once, reports the answer to
    /// the breaker, and says what comes next — a final [`Verdict`] (`Cancelled(None)` if
    /// cancelled before anything was sent), or a retry after a delay. `tally` carries the
    /// message's attempts from one call to the next: `max_attempts` counts only attempts made
    /// while the breaker was closed.
    pub async fn attempt(
        &self,
        body: &Bytes,
        cancel: &CancellationToken,
        tally: &mut Tally,
    ) -> Step {
        let Some(permit) = self.admit(cancel, &mut tally.breaker_wait).await else {
            return Step::Done(Verdict::Cancelled(None));
        };
        let guard = PermitGuard {
            sender: self,
            permit: Some(permit),
        };
        let attempt = self.transport.send(body.clone()).await;
        let outcome = attempt.outcome;
        tally.sent += 1;
        if permit == Permit::Normal {
            tally.counted += 1;
        }
        guard.finish(signal_of(&outcome));

        let (kind, retry_after) = match &outcome {
            Outcome::Delivered { .. } => return Step::Done(Verdict::Delivered(outcome)),
            Outcome::Permanent { .. } => return Step::Done(Verdict::Permanent(outcome)),
            Outcome::Fatal { .. } => return Step::Done(Verdict::Fatal(outcome)),
            Outcome::Retryable {
                kind, retry_after, ..
            } => (*kind, *retry_after),
        };
        if !may_retry(&self.retry, tally.counted) {
            return Step::Done(Verdict::Exhausted(outcome));
        }
        // After a failed probe the re-opened breaker already enforces the wait; adding a
        // backoff on top would only delay recovery. A server-sent Retry-After still applies.
        let delay = if permit == Permit::Probe && retry_after.is_none() {
            Duration::ZERO
        } else {
            // ThreadRng is not Send: draw and drop it before any await.
            backoff_delay(
                &self.retry,
                tally.counted.max(1),
                retry_after,
                &mut rand::rng(),
            )
        };
        Step::Retry {
            delay,
            kind,
            outcome,
        }
    }

    /// Waits until the breaker admits an attempt. `None` if cancelled first.
    async fn admit(&self, cancel: &CancellationToken, waited: &mut Duration) -> Option<Permit> {
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            // Register for the wake-up before looking at the state, so a probe that finishes
            // between the look and the sleep is not missed.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let rejected = match lock(&self.breaker).try_acquire(now) {
                Ok(permit) => return Some(permit),
                Err(r) => r,
            };
            let wait = match rejected {
                Rejected::OpenUntil(until) => until.saturating_duration_since(now),
                Rejected::ProbeInFlight => BREAKER_POLL,
            }
            .min(BREAKER_POLL);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return None,
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
            *waited += now.elapsed();
        }
    }
}

fn signal_of(outcome: &Outcome) -> Signal {
    match outcome.class() {
        OutcomeClass::Delivered => Signal::Success,
        OutcomeClass::Retryable => Signal::Failure,
        OutcomeClass::Permanent | OutcomeClass::Fatal => Signal::Neutral,
    }
}

fn lock(m: &Mutex<CircuitBreaker>) -> MutexGuard<'_, CircuitBreaker> {
    // The breaker is a few plain fields updated atomically under the lock; a panic elsewhere while
    // holding it cannot leave it half-updated, so a poisoned lock is safe to keep using.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reports the attempt's result to the breaker, or releases the permit if the `deliver` future is
/// dropped mid-attempt (so a half-open breaker is never stuck with a probe nobody will finish).
struct PermitGuard<'a, T> {
    sender: &'a Sender<T>,
    permit: Option<Permit>,
}

impl<T> PermitGuard<'_, T> {
    fn finish(mut self, signal: Signal) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let now = Instant::now();
        let (before, after) = {
            let mut b = lock(&self.sender.breaker);
            let before = b.state(now);
            (before, b.record(permit, signal, now))
        };
        if before != after {
            match after {
                CircuitState::Open => tracing::warn!(
                    from = before.as_str(),
                    "circuit breaker opened: MCM API failing, pausing delivery"
                ),
                CircuitState::Closed => tracing::info!(
                    from = before.as_str(),
                    "circuit breaker closed: MCM API answering again"
                ),
                CircuitState::HalfOpen => {}
            }
        }
        if before != after || permit == Permit::Probe {
            self.sender.changed.notify_waiters();
        }
    }
}

impl<T> Drop for PermitGuard<'_, T> {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            lock(&self.sender.breaker).release(permit);
            self.sender.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CircuitConfig;
    use crate::mcm::client::Attempt;
    use std::collections::VecDeque;

    /// Returns scripted outcomes in order (the last one repeats) and records every body.
    struct Script {
        outcomes: Mutex<VecDeque<Outcome>>,
        bodies: Mutex<Vec<Bytes>>,
    }

    impl Script {
        fn new(outcomes: Vec<Outcome>) -> Script {
            Script {
                outcomes: Mutex::new(outcomes.into()),
                bodies: Mutex::new(Vec::new()),
            }
        }
    }

    impl Transport for Script {
        fn send(&self, body: Bytes) -> impl std::future::Future<Output = Attempt> + Send {
            self.bodies.lock().expect("test lock").push(body);
            let mut q = self.outcomes.lock().expect("test lock");
            let outcome = if q.len() > 1 {
                q.pop_front().expect("non-empty")
            } else {
                q.front().cloned().expect("script has at least one outcome")
            };
            let status = outcome.status();
            async move {
                Attempt {
                    outcome,
                    elapsed: Duration::ZERO,
                    status,
                }
            }
        }
    }

    fn ok() -> Outcome {
        Outcome::Delivered { status: 200 }
    }
    fn e500() -> Outcome {
        Outcome::Retryable {
            kind: RetryKind::ServerError(500),
            status: Some(500),
            retry_after: None,
            detail: String::new(),
        }
    }
    fn bad() -> Outcome {
        Outcome::Permanent {
            status: 400,
            reason: "page_id is empty".into(),
            body_snippet: String::new(),
        }
    }

    fn retry(max_attempts: u32) -> RetryConfig {
        RetryConfig {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            multiplier: 2.0,
            max_attempts,
        }
    }

    fn sender(outcomes: Vec<Outcome>, max_attempts: u32, threshold: u32) -> Sender<Script> {
        let breaker = CircuitBreaker::new(&CircuitConfig {
            failure_threshold: threshold,
            probe_interval: Duration::from_millis(30),
        });
        Sender::new(
            Script::new(outcomes),
            retry(max_attempts),
            Arc::new(Mutex::new(breaker)),
        )
    }

    #[tokio::test]
    async fn retries_until_delivered_with_the_same_body() {
        let s = sender(vec![e500(), e500(), ok()], 5, 100);
        let body = Bytes::from_static(br#"{"id":"e1"}"#);
        let r = s.deliver(body.clone(), &CancellationToken::new()).await;
        assert_eq!(r.verdict, Verdict::Delivered(ok()));
        assert_eq!(r.attempts, 3);
        assert_eq!(r.retry_reasons, vec![RetryKind::ServerError(500); 2]);
        let bodies = s.transport.bodies.lock().expect("test lock").clone();
        assert_eq!(bodies, vec![body; 3]);
    }

    #[test]
    fn verdicts_have_stable_names() {
        let names = [
            Verdict::Delivered(ok()),
            Verdict::Permanent(bad()),
            Verdict::Fatal(bad()),
            Verdict::Exhausted(e500()),
            Verdict::Cancelled(None),
        ]
        .map(|v| v.as_str());
        assert_eq!(
            names,
            ["delivered", "permanent", "fatal", "exhausted", "cancelled"]
        );
    }

    #[tokio::test]
    async fn permanent_is_never_retried() {
        let s = sender(vec![bad(), ok()], 5, 100);
        let r = s.deliver(Bytes::new(), &CancellationToken::new()).await;
        assert_eq!(r.verdict, Verdict::Permanent(bad()));
        assert_eq!(r.attempts, 1);
        assert_eq!(r.verdict.as_str(), "permanent");
    }

    #[tokio::test]
    async fn exhausts_after_max_attempts() {
        let s = sender(vec![e500()], 3, 100);
        let r = s.deliver(Bytes::new(), &CancellationToken::new()).await;
        assert_eq!(r.verdict, Verdict::Exhausted(e500()));
        assert_eq!((r.attempts, r.counted_attempts), (3, 3));
    }

    #[tokio::test]
    async fn probes_while_the_breaker_is_open_do_not_count() {
        // Threshold 2, max 3: attempts 1-2 open the breaker; probes 3-5 fail without counting;
        // probe 6 succeeds. Without the rule the message would be exhausted at attempt 3.
        let s = sender(vec![e500(), e500(), e500(), e500(), e500(), ok()], 3, 2);
        let r = s.deliver(Bytes::new(), &CancellationToken::new()).await;
        assert_eq!(r.verdict, Verdict::Delivered(ok()));
        assert_eq!((r.attempts, r.counted_attempts), (6, 2));
        assert!(r.breaker_wait >= Duration::from_millis(60), "{r:?}");
        assert_eq!(s.circuit_state(), CircuitState::Closed);
    }

    #[tokio::test]
    async fn cancel_aborts_a_waiting_retry() {
        let s = sender(vec![e500()], 100, 1);
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.cancel();
        });
        let r = s.deliver(Bytes::new(), &cancel).await;
        assert_eq!(r.verdict, Verdict::Cancelled(Some(e500())));
        assert!(r.attempts >= 1);
    }

    #[tokio::test]
    async fn already_cancelled_makes_no_attempt() {
        let s = sender(vec![ok()], 3, 5);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let r = s.deliver(Bytes::new(), &cancel).await;
        assert_eq!(r.verdict, Verdict::Cancelled(None));
        assert_eq!(r.attempts, 0);
    }

    #[test]
    fn dropped_probe_is_released() {
        let s = sender(vec![ok()], 3, 1);
        let now = Instant::now();
        lock(&s.breaker).record(Permit::Normal, Signal::Failure, now);
        let later = now + Duration::from_secs(1);
        let permit = lock(&s.breaker).try_acquire(later).expect("probe");
        drop(PermitGuard {
            sender: &s,
            permit: Some(permit),
        });
        assert_eq!(lock(&s.breaker).try_acquire(later), Ok(Permit::Probe));
    }
}
