//! Adaptive concurrency (AIMD, in the spirit of Vector's ARC): how many requests may be in flight.
//!
//! MCM takes one event per request, so throughput is concurrency ÷ latency — up to the point
//! where the API pushes back. The limit starts low and doubles per round trip while responses are
//! healthy (slow start), then grows by one per round trip (additive increase). It shrinks
//! multiplicatively on back-pressure: a 429 (×0.75), a 5xx or timeout (×0.9), or latency rising
//! well above the observed baseline (×0.9; during slow start a rise only ends slow start, as TCP's
//! HyStart does) — at most once per baseline round trip, so a burst of
//! answers to requests sent before the first decrease does not collapse the limit. It always stays
//! within `[min, max]` (`max` = `mcm.max_in_flight`). Pure: time and latencies are parameters.

use std::time::{Duration, Instant};

/// Latency above this multiple of the baseline counts as back-pressure.
const LATENCY_RISE: f64 = 2.0;
const THROTTLE_FACTOR: f64 = 0.75;
const FAILURE_FACTOR: f64 = 0.9;
/// EWMA weight of a new latency sample in the short-term average.
const SHORT_ALPHA: f64 = 0.2;
/// The baseline creeps up this much per sample, so it follows a permanently slower API.
const BASELINE_DRIFT: f64 = 1.001;

/// What one answer says about the API's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An answer (2xx or a 4xx about the data) after `rtt`.
    Answered(Duration),
    /// 429: the API asks us to slow down.
    Throttled,
    /// 5xx, timeout, connection error.
    Failed,
}

#[derive(Debug, Clone)]
pub struct AdaptiveLimit {
    min: usize,
    max: usize,
    limit: f64,
    slow_start: bool,
    /// Healthy answers since the last additive step (one step per `limit` answers = per RTT).
    answers_since_step: usize,
    short_rtt: Option<f64>,
    baseline_rtt: Option<f64>,
    last_decrease: Option<Instant>,
}

impl AdaptiveLimit {
    pub fn new(min: usize, max: usize) -> AdaptiveLimit {
        let max = max.max(1);
        let min = min.clamp(1, max);
        AdaptiveLimit {
            min,
            max,
            limit: min as f64,
            slow_start: true,
            answers_since_step: 0,
            short_rtt: None,
            baseline_rtt: None,
            last_decrease: None,
        }
    }

    /// Requests that may be in flight now.
    pub fn limit(&self) -> usize {
        (self.limit as usize).clamp(self.min, self.max)
    }

    pub fn observe(&mut self, signal: Signal, now: Instant) {
        match signal {
            Signal::Answered(rtt) => {
                let rtt = rtt.as_secs_f64();
                let short = match self.short_rtt {
                    Some(s) => s + SHORT_ALPHA * (rtt - s),
                    None => rtt,
                };
                self.short_rtt = Some(short);
                let baseline = match self.baseline_rtt {
                    Some(b) => (b * BASELINE_DRIFT).min(short),
                    None => short,
                };
                self.baseline_rtt = Some(baseline);
                if short > baseline * LATENCY_RISE {
                    // Like TCP's HyStart: rising delay during slow start means the knee is near,
                    // so stop doubling but keep the limit (a "decrease" by ×1, which also ends
                    // slow start and gives the rise one round trip to pass: the answers already
                    // on their way saw the same burst). Measured on the 50 ms sink with 512
                    // allowed: ramping from 8 opens hundreds of connections within a few round
                    // trips, that burst alone doubled the latency, and the cut (×0.9) plus +1 per
                    // round trip left the limit ~100 below the maximum for ~7 s. A rise that
                    // persists is cut on the next answers.
                    let factor = if self.slow_start { 1.0 } else { FAILURE_FACTOR };
                    self.decrease(factor, now);
                } else if self.slow_start {
                    self.limit += 1.0; // +1 per answer: doubles per round trip
                } else {
                    // +1 per round trip: one step after as many answers as the current limit.
                    self.answers_since_step += 1;
                    if self.answers_since_step >= self.limit() {
                        self.answers_since_step = 0;
                        self.limit += 1.0;
                    }
                }
            }
            Signal::Throttled => self.decrease(THROTTLE_FACTOR, now),
            Signal::Failed => self.decrease(FAILURE_FACTOR, now),
        }
        self.limit = self.limit.clamp(self.min as f64, self.max as f64);
    }

    fn decrease(&mut self, factor: f64, now: Instant) {
        let window = Duration::from_secs_f64(self.baseline_rtt.unwrap_or(0.05).max(0.01));
        if self
            .last_decrease
            .is_some_and(|t| now.duration_since(t) < window)
        {
            return;
        }
        self.last_decrease = Some(now);
        self.slow_start = false;
        self.answers_since_step = 0;
        self.limit = (self.limit * factor).floor();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    fn healthy(l: &mut AdaptiveLimit, n: usize, now: Instant) {
        for _ in 0..n {
            l.observe(Signal::Answered(RTT), now);
        }
    }

    #[test]
    fn slow_start_reaches_the_maximum_while_healthy() {
        let mut l = AdaptiveLimit::new(4, 512);
        assert_eq!(l.limit(), 4);
        healthy(&mut l, 1000, Instant::now());
        assert_eq!(l.limit(), 512, "never above max_in_flight");
    }

    #[test]
    fn throttling_shrinks_at_most_once_per_round_trip() {
        let mut l = AdaptiveLimit::new(1, 512);
        let t0 = Instant::now();
        healthy(&mut l, 200, t0);
        let before = l.limit();
        for _ in 0..50 {
            l.observe(Signal::Throttled, t0);
        }
        assert_eq!(
            l.limit(),
            (before as f64 * 0.75) as usize,
            "a burst counts once"
        );
        l.observe(Signal::Throttled, t0 + RTT * 2);
        assert!(l.limit() < (before as f64 * 0.75) as usize);
    }

    #[test]
    fn additive_increase_after_a_decrease() {
        let mut l = AdaptiveLimit::new(1, 512);
        let t0 = Instant::now();
        healthy(&mut l, 99, t0);
        l.observe(Signal::Failed, t0);
        let after = l.limit();
        healthy(&mut l, after, t0);
        assert_eq!(
            l.limit(),
            after + 1,
            "one more per round trip once out of slow start"
        );
    }

    #[test]
    fn a_latency_rise_during_slow_start_stops_doubling_without_a_cut() {
        let mut l = AdaptiveLimit::new(8, 512);
        let now = Instant::now();
        healthy(&mut l, 200, now);
        let before = l.limit();
        assert_eq!(before, 208);
        // One slow answer lifts the short-term average above twice the baseline.
        l.observe(Signal::Answered(RTT * 8), now);
        healthy(&mut l, 5, now);
        assert_eq!(
            l.limit(),
            before,
            "no cut within the round trip of the rise"
        );
        healthy(&mut l, 3 * before, now);
        assert!(
            (before + 1..=before + 3).contains(&l.limit()),
            "additive from here on, not doubling: {}",
            l.limit()
        );
        // A rise that persists past that round trip is back-pressure again.
        let later = now + RTT * 4;
        for _ in 0..5 {
            l.observe(Signal::Answered(RTT * 8), later);
        }
        assert!(l.limit() < before, "cut: {}", l.limit());
    }

    #[test]
    fn rising_latency_is_back_pressure_and_the_floor_holds() {
        let mut l = AdaptiveLimit::new(2, 64);
        let mut now = Instant::now();
        healthy(&mut l, 100, now);
        for _ in 0..200 {
            now += Duration::from_millis(200);
            l.observe(Signal::Answered(Duration::from_millis(400)), now);
        }
        assert_eq!(l.limit(), 2, "shrinks down to min, never below");
    }
}
