//! Adaptive concurrency (AIMD, in the spirit of Vector's ARC): how many requests may be in flight.
//!
//! MCM takes one event per request, so throughput is concurrency ÷ latency — up to the point
//! where the API pushes back. The limit starts low and doubles per round trip while responses are
//! healthy (slow start), then grows by one per round trip (additive increase). It shrinks
//! multiplicatively on back-pressure: 429s (×0.75), 5xx or timeouts (×0.9), or latency rising
//! well above the observed baseline (×0.9; during slow start a rise only ends slow start, as TCP's
//! HyStart does) — at most once per baseline round trip, so a burst of
//! answers to requests sent before the first decrease does not collapse the limit. It always stays
//! within `[min, max]` (`max` = `mcm.max_in_flight`). Pure: time and latencies are parameters.
//!
//! Errors count as back-pressure by their **share of a window** of answers (one window = as many
//! answers as the limit, about one round trip), not one by one: 429s once they reach
//! [`THROTTLE_SHARE`] of a window, failures once they reach [`FAILURE_SHARE`], and never for a
//! single error. Reacting to every error, as TCP does to every loss, collapsed the limit from
//! 256 to 11–19 against the demo's sandbox (2 % 500s, 1 % 429s at random), and with it the
//! throughput, although the API was nowhere near overload. MCM throttles "by platform or by
//! user" (reference §3.3): a few 429s for one hot user id are no reason to slow every other
//! event, while a real overload or quota shows as a large share of errors within a round trip,
//! which still cuts the limit at once (an error storm crosses the share before the window ends).
//! An error rate that persists below the shares is left to the retry policy and, when requests
//! keep failing in a row, to the circuit breaker. The aibrix batch client made the same change
//! for the same reason (vllm-project/aibrix#2452).

use std::time::{Duration, Instant};

/// Latency above this multiple of the baseline counts as back-pressure.
const LATENCY_RISE: f64 = 2.0;
const THROTTLE_FACTOR: f64 = 0.75;
const FAILURE_FACTOR: f64 = 0.9;
/// 429s in one window, as a share of the window, that count as back-pressure.
pub const THROTTLE_SHARE: f64 = 0.05;
/// 5xx, timeouts and connection errors in one window, as a share of it, that count as
/// back-pressure.
pub const FAILURE_SHARE: f64 = 0.10;
/// Fewer errors than this in a window are never back-pressure, whatever their share (a limit of
/// 4 would otherwise read one error as 25 %).
const MIN_ERRORS: usize = 2;
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
    /// Errors in the current window of answers.
    window: ErrorWindow,
}

/// Answers and errors since the window started; a window holds as many answers as the limit.
#[derive(Debug, Clone, Copy, Default)]
struct ErrorWindow {
    answers: usize,
    throttled: usize,
    failed: usize,
}

/// Whether `errors` in a window of `size` answers are back-pressure at `share`.
fn over_share(errors: usize, share: f64, size: usize) -> bool {
    errors >= MIN_ERRORS && errors as f64 >= share * size as f64
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
            window: ErrorWindow::default(),
        }
    }

    /// Requests that may be in flight now.
    pub fn limit(&self) -> usize {
        (self.limit as usize).clamp(self.min, self.max)
    }

    pub fn observe(&mut self, signal: Signal, now: Instant) {
        let window_size = self.limit();
        self.window.answers += 1;
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
                    let _ = self.decrease(factor, now);
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
            Signal::Throttled => {
                self.window.throttled += 1;
                if over_share(self.window.throttled, THROTTLE_SHARE, window_size)
                    && self.decrease(THROTTLE_FACTOR, now)
                {
                    self.window = ErrorWindow::default();
                }
            }
            Signal::Failed => {
                self.window.failed += 1;
                if over_share(self.window.failed, FAILURE_SHARE, window_size)
                    && self.decrease(FAILURE_FACTOR, now)
                {
                    self.window = ErrorWindow::default();
                }
            }
        }
        // A share still over the bound after a decrease was refused (within one round trip of
        // the last) keeps counting, so a storm that goes on is cut again once the round trip has
        // passed; a window that ends below the shares was noise.
        if self.window.answers >= window_size {
            self.window = ErrorWindow::default();
        }
        self.limit = self.limit.clamp(self.min as f64, self.max as f64);
    }

    /// Multiplies the limit by `factor`, at most once per baseline round trip; false if refused.
    fn decrease(&mut self, factor: f64, now: Instant) -> bool {
        let round_trip = Duration::from_secs_f64(self.baseline_rtt.unwrap_or(0.05).max(0.01));
        if self
            .last_decrease
            .is_some_and(|t| now.duration_since(t) < round_trip)
        {
            return false;
        }
        self.last_decrease = Some(now);
        self.slow_start = false;
        self.answers_since_step = 0;
        self.limit = (self.limit * factor).floor();
        true
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
        for _ in 0..20 {
            l.observe(Signal::Failed, t0);
        }
        let after = l.limit();
        assert_eq!(
            after, 90,
            "a storm of failures cuts ×0.9, once per round trip"
        );
        healthy(&mut l, after, t0);
        assert_eq!(
            l.limit(),
            after + 1,
            "one more per round trip once out of slow start"
        );
    }

    #[test]
    fn sporadic_errors_below_the_shares_leave_the_limit_at_the_maximum() {
        // The demo's sandbox: 2 % 500s and 1 % 429s, spread over the answers.
        let mut l = AdaptiveLimit::new(4, 256);
        let mut now = Instant::now();
        for i in 0..20_000u32 {
            let signal = if i % 100 == 37 {
                Signal::Throttled
            } else if i % 50 == 11 {
                Signal::Failed
            } else {
                Signal::Answered(RTT)
            };
            l.observe(signal, now);
            now += Duration::from_micros(200);
        }
        assert_eq!(l.limit(), 256);
    }

    #[test]
    fn a_single_error_is_never_back_pressure_even_at_a_small_limit() {
        let mut l = AdaptiveLimit::new(4, 256);
        let now = Instant::now();
        l.observe(Signal::Failed, now);
        l.observe(Signal::Answered(RTT), now);
        l.observe(Signal::Throttled, now);
        assert_eq!(
            l.limit(),
            5,
            "still in slow start: +1 for the one healthy answer"
        );
    }

    #[test]
    fn an_error_storm_cuts_before_its_window_ends() {
        let mut l = AdaptiveLimit::new(4, 512);
        let t0 = Instant::now();
        healthy(&mut l, 2000, t0);
        assert_eq!(l.limit(), 512);
        // 10 % of a 512-answer window is 51.2: at least 52 failures in a row, and at most two
        // windows' worth (the storm may start near the end of one).
        let failures = errors_until_a_cut(&mut l, Signal::Failed, t0 + RTT);
        assert!((52..=104).contains(&failures), "{failures}");
        assert_eq!(l.limit(), 460);
        // 429s weigh more: 5 % of the (now 460-answer) window is 23.
        let throttles = errors_until_a_cut(&mut l, Signal::Throttled, t0 + RTT * 3);
        assert!((23..=46).contains(&throttles), "{throttles}");
        assert_eq!(l.limit(), 345);
    }

    /// Feeds `signal` until the limit moves; returns how many it took.
    fn errors_until_a_cut(l: &mut AdaptiveLimit, signal: Signal, now: Instant) -> usize {
        let before = l.limit();
        for n in 1..=10 * before {
            l.observe(signal, now);
            if l.limit() != before {
                return n;
            }
        }
        panic!("no cut after {} errors in a row", 10 * before);
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
