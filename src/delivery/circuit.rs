//! Circuit breaker for the MCM API (DESIGN.md contract 3; Moloco failure protocol, reference §3.5).
//!
//! A pure state machine: time comes in as `Instant` parameters, so every transition is tested with a
//! hand-moved clock. Closed → Open after `failure_threshold` consecutive retryable failures; Open
//! rejects every request until `probe_interval` has passed; then HalfOpen lets exactly one probe
//! through at a time; the probe's success closes the breaker, its failure re-opens it for another
//! interval. While the breaker is not closed the pipeline pauses consumption — Kafka is the buffer.
//!
//! It does not sleep, spawn, or know about HTTP: callers ask [`CircuitBreaker::try_acquire`] before
//! an attempt and report the result with [`CircuitBreaker::record`], passing back the [`Permit`].

use crate::config::CircuitConfig;
use std::time::{Duration, Instant};
use strum::IntoStaticStr;

/// The externally visible state, for `/readyz`, logs and the `circuit_state` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// Gauge value: 0 closed, 1 open, 2 half-open.
    pub fn metric_value(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::Open => 1,
            CircuitState::HalfOpen => 2,
        }
    }

    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Permission to make one attempt. Must be given back to [`CircuitBreaker::record`] (or
/// [`CircuitBreaker::release`] if the attempt was abandoned), or a half-open breaker stays busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Normal traffic while closed.
    Normal,
    /// The single half-open probe.
    Probe,
}

/// Why an attempt may not be made now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Open: the next probe is allowed at this instant.
    OpenUntil(Instant),
    /// Half-open and another request is probing; wait for its result.
    ProbeInFlight,
}

/// What an attempt told us about the API's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// 2xx.
    Success,
    /// Retryable: 429, 5xx, timeout, connection error.
    Failure,
    /// Permanent (4xx) or fatal (401/403/404, 3xx). These say nothing about whether the API is
    /// *available*: a bad payload must not trip the breaker and pause every partition (one poison
    /// message would stop the bridge), and a fatal configuration error halts delivery by itself —
    /// counting it as a success would instead mask an outage that happens at the same time.
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed { consecutive_failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    probe_interval: Duration,
    inner: Inner,
}

impl CircuitBreaker {
    pub fn new(cfg: &CircuitConfig) -> CircuitBreaker {
        CircuitBreaker {
            // A threshold of 0 would open on nothing; 1 is the most sensitive meaningful value.
            failure_threshold: cfg.failure_threshold.max(1),
            probe_interval: cfg.probe_interval,
            inner: Inner::Closed {
                consecutive_failures: 0,
            },
        }
    }

    /// The state as of `now`: an Open breaker whose interval has passed reports HalfOpen.
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.inner {
            Inner::Closed { .. } => CircuitState::Closed,
            Inner::Open { until } if now < until => CircuitState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Consecutive retryable failures counted while closed.
    pub fn consecutive_failures(&self) -> u32 {
        match self.inner {
            Inner::Closed {
                consecutive_failures,
            } => consecutive_failures,
            _ => 0,
        }
    }

    /// Asks to make one attempt now.
    pub fn try_acquire(&mut self, now: Instant) -> Result<Permit, Rejected> {
        match self.inner {
            Inner::Closed { .. } => Ok(Permit::Normal),
            Inner::Open { until } if now < until => Err(Rejected::OpenUntil(until)),
            Inner::Open { .. }
            | Inner::HalfOpen {
                probe_in_flight: false,
            } => {
                self.inner = Inner::HalfOpen {
                    probe_in_flight: true,
                };
                Ok(Permit::Probe)
            }
            Inner::HalfOpen {
                probe_in_flight: true,
            } => Err(Rejected::ProbeInFlight),
        }
    }

    /// Reports the result of an attempt made under `permit`. Returns the new state.
    pub fn record(&mut self, permit: Permit, signal: Signal, now: Instant) -> CircuitState {
        self.inner = match (self.inner, permit, signal) {
            // Any success proves the API answers again, whoever made the request.
            (_, _, Signal::Success) => Inner::Closed {
                consecutive_failures: 0,
            },
            (
                Inner::Closed {
                    consecutive_failures,
                },
                _,
                Signal::Failure,
            ) => {
                let n = consecutive_failures.saturating_add(1);
                if n >= self.failure_threshold {
                    self.open(now)
                } else {
                    Inner::Closed {
                        consecutive_failures: n,
                    }
                }
            }
            // The probe failed: stay away for another full interval.
            (Inner::HalfOpen { .. }, Permit::Probe, Signal::Failure) => self.open(now),
            // The probe said nothing about availability: free the slot for the next probe.
            (Inner::HalfOpen { .. }, Permit::Probe, Signal::Neutral) => Inner::HalfOpen {
                probe_in_flight: false,
            },
            // Late failures of requests admitted before the breaker opened: already accounted
            // for by opening; extending the interval for each would delay recovery for nothing.
            (state @ (Inner::Open { .. } | Inner::HalfOpen { .. }), _, Signal::Failure) => state,
            // Neutral outcomes never move the breaker (see [`Signal::Neutral`]).
            (state, _, Signal::Neutral) => state,
        };
        self.state(now)
    }

    /// Gives back a permit whose attempt was abandoned (cancelled, future dropped) without a result.
    pub fn release(&mut self, permit: Permit) {
        if let (Permit::Probe, Inner::HalfOpen { .. }) = (permit, self.inner) {
            self.inner = Inner::HalfOpen {
                probe_in_flight: false,
            };
        }
    }

    fn open(&self, now: Instant) -> Inner {
        Inner::Open {
            until: now + self.probe_interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_have_their_gauge_value_and_label() {
        let states = [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ];
        assert_eq!(
            states.map(CircuitState::as_str),
            ["closed", "open", "half_open"]
        );
        assert_eq!(states.map(CircuitState::metric_value), [0, 1, 2]);
    }

    const INTERVAL: Duration = Duration::from_secs(30);

    struct Clock(Instant);
    impl Clock {
        fn now(&self) -> Instant {
            self.0
        }
        fn advance(&mut self, d: Duration) {
            self.0 += d;
        }
    }

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(&CircuitConfig {
            failure_threshold: threshold,
            probe_interval: INTERVAL,
        })
    }

    fn fail_n(b: &mut CircuitBreaker, n: u32, now: Instant) {
        for _ in 0..n {
            let p = b.try_acquire(now).expect("closed breaker admits");
            b.record(p, Signal::Failure, now);
        }
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let clock = Clock(Instant::now());
        let mut b = breaker(3);
        fail_n(&mut b, 2, clock.now());
        assert_eq!(b.state(clock.now()), CircuitState::Closed);
        assert_eq!(b.consecutive_failures(), 2);
        fail_n(&mut b, 1, clock.now());
        assert_eq!(b.state(clock.now()), CircuitState::Open);
        assert_eq!(
            b.try_acquire(clock.now()),
            Err(Rejected::OpenUntil(clock.now() + INTERVAL))
        );
    }

    #[test]
    fn success_while_closed_resets_the_count() {
        let now = Instant::now();
        let mut b = breaker(3);
        fail_n(&mut b, 2, now);
        b.record(Permit::Normal, Signal::Success, now);
        assert_eq!(b.consecutive_failures(), 0);
        fail_n(&mut b, 2, now);
        assert_eq!(b.state(now), CircuitState::Closed);
    }

    #[test]
    fn neutral_outcomes_neither_count_nor_reset() {
        let now = Instant::now();
        let mut b = breaker(3);
        fail_n(&mut b, 2, now);
        for _ in 0..10 {
            b.record(Permit::Normal, Signal::Neutral, now);
        }
        assert_eq!(b.consecutive_failures(), 2);
        fail_n(&mut b, 1, now);
        assert_eq!(b.state(now), CircuitState::Open);
    }

    #[test]
    fn open_rejects_until_the_probe_interval_has_passed() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(1);
        fail_n(&mut b, 1, clock.now());
        clock.advance(INTERVAL - Duration::from_millis(1));
        assert_eq!(b.state(clock.now()), CircuitState::Open);
        assert!(b.try_acquire(clock.now()).is_err());
        clock.advance(Duration::from_millis(1));
        assert_eq!(b.state(clock.now()), CircuitState::HalfOpen);
    }

    #[test]
    fn half_open_allows_exactly_one_probe_at_a_time() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(1);
        fail_n(&mut b, 1, clock.now());
        clock.advance(INTERVAL);
        assert_eq!(b.try_acquire(clock.now()), Ok(Permit::Probe));
        assert_eq!(b.try_acquire(clock.now()), Err(Rejected::ProbeInFlight));
        clock.advance(INTERVAL * 10);
        assert_eq!(b.try_acquire(clock.now()), Err(Rejected::ProbeInFlight));
        assert_eq!(b.state(clock.now()), CircuitState::HalfOpen);
    }

    #[test]
    fn probe_success_closes_and_resets() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(2);
        fail_n(&mut b, 2, clock.now());
        clock.advance(INTERVAL);
        let p = b.try_acquire(clock.now()).expect("probe");
        assert_eq!(
            b.record(p, Signal::Success, clock.now()),
            CircuitState::Closed
        );
        assert_eq!(b.consecutive_failures(), 0);
        assert_eq!(b.try_acquire(clock.now()), Ok(Permit::Normal));
        fail_n(&mut b, 1, clock.now());
        assert_eq!(b.state(clock.now()), CircuitState::Closed);
    }

    #[test]
    fn probe_failure_reopens_for_another_interval() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(1);
        fail_n(&mut b, 1, clock.now());
        clock.advance(INTERVAL + Duration::from_secs(5));
        let p = b.try_acquire(clock.now()).expect("probe");
        let failed_at = clock.now();
        assert_eq!(b.record(p, Signal::Failure, failed_at), CircuitState::Open);
        assert_eq!(
            b.try_acquire(clock.now()),
            Err(Rejected::OpenUntil(failed_at + INTERVAL))
        );
        clock.advance(INTERVAL);
        assert_eq!(b.try_acquire(clock.now()), Ok(Permit::Probe));
    }

    #[test]
    fn neutral_probe_frees_the_slot_without_closing() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(1);
        fail_n(&mut b, 1, clock.now());
        clock.advance(INTERVAL);
        let p = b.try_acquire(clock.now()).expect("probe");
        assert_eq!(
            b.record(p, Signal::Neutral, clock.now()),
            CircuitState::HalfOpen
        );
        assert_eq!(b.try_acquire(clock.now()), Ok(Permit::Probe));
    }

    #[test]
    fn released_probe_frees_the_slot() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(1);
        fail_n(&mut b, 1, clock.now());
        clock.advance(INTERVAL);
        let p = b.try_acquire(clock.now()).expect("probe");
        b.release(p);
        assert_eq!(b.try_acquire(clock.now()), Ok(Permit::Probe));
        // Releasing a normal permit changes nothing.
        b.release(Permit::Normal);
        assert_eq!(b.try_acquire(clock.now()), Err(Rejected::ProbeInFlight));
    }

    #[test]
    fn late_failures_do_not_extend_the_open_interval() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(1);
        let opened_at = clock.now();
        fail_n(&mut b, 1, opened_at);
        clock.advance(Duration::from_secs(10));
        b.record(Permit::Normal, Signal::Failure, clock.now());
        assert_eq!(
            b.try_acquire(clock.now()),
            Err(Rejected::OpenUntil(opened_at + INTERVAL))
        );
    }

    #[test]
    fn late_normal_failure_does_not_reopen_a_probing_breaker() {
        let mut clock = Clock(Instant::now());
        let mut b = breaker(1);
        fail_n(&mut b, 1, clock.now());
        clock.advance(INTERVAL);
        let p = b.try_acquire(clock.now()).expect("probe");
        b.record(Permit::Normal, Signal::Failure, clock.now());
        assert_eq!(b.state(clock.now()), CircuitState::HalfOpen);
        assert_eq!(
            b.record(p, Signal::Success, clock.now()),
            CircuitState::Closed
        );
    }

    #[test]
    fn late_success_closes_an_open_breaker() {
        let now = Instant::now();
        let mut b = breaker(1);
        fail_n(&mut b, 1, now);
        assert_eq!(
            b.record(Permit::Normal, Signal::Success, now),
            CircuitState::Closed
        );
    }

    #[test]
    fn zero_threshold_behaves_as_one() {
        let now = Instant::now();
        let mut b = breaker(0);
        assert_eq!(b.state(now), CircuitState::Closed);
        fail_n(&mut b, 1, now);
        assert_eq!(b.state(now), CircuitState::Open);
    }

    #[test]
    fn metric_values() {
        assert_eq!(CircuitState::Closed.metric_value(), 0);
        assert_eq!(CircuitState::Open.metric_value(), 1);
        assert_eq!(CircuitState::HalfOpen.metric_value(), 2);
    }
}
