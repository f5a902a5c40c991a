//! Fault decisions, as pure functions of the knobs, a random source and the clock.
//!
//! Nothing here sleeps, locks or reads the time: the caller passes an RNG (a thread-local one in
//! the server, a seeded one in tests) and "now" as the time since the sandbox started. That keeps
//! every decision reproducible in unit tests and keeps the request path free of shared state
//! beyond the atomics the caller reads.
//!
//! Order of precedence on the event route: an active outage (503) comes first, because it models
//! the whole service being down (in front of authentication); then throttling (429) and server
//! errors (500), which the caller applies after authentication.

use super::config::Faults;
use rand::Rng;
use std::time::Duration;

/// What to do with one request on the event route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it normally (authenticate, validate, accept or reject).
    Proceed,
    /// 503: the outage window is open.
    Outage,
    /// 429, with `Retry-After` when configured.
    Throttle,
    /// 500.
    Fail,
}

/// The delay to add before answering: `latency + uniform[0, latency_jitter]`.
pub fn delay<R: Rng + ?Sized>(faults: &Faults, rng: &mut R) -> Duration {
    if faults.latency_jitter.is_zero() {
        return faults.latency;
    }
    // Nanosecond resolution is plenty; u64 nanos cover 584 years of jitter.
    let jitter_ns = u64::try_from(faults.latency_jitter.as_nanos()).unwrap_or(u64::MAX);
    faults.latency + Duration::from_nanos(rng.random_range(0..=jitter_ns))
}

/// Decides the verdict for one request. `outage_active` comes from [`outage_active`].
///
/// One uniform draw is split into `[0, throttle)` → 429, `[throttle, throttle + fail)` → 500, so
/// each fault happens with exactly its configured probability (as long as they sum to ≤ 1) and a
/// request never needs two draws.
pub fn verdict<R: Rng + ?Sized>(faults: &Faults, rng: &mut R, outage_active: bool) -> Verdict {
    if outage_active {
        return Verdict::Outage;
    }
    if faults.throttle_rate <= 0.0 && faults.fail_rate <= 0.0 {
        // The common benchmark case: no draw at all.
        return Verdict::Proceed;
    }
    let x: f64 = rng.random();
    if x < faults.throttle_rate {
        Verdict::Throttle
    } else if x < faults.throttle_rate + faults.fail_rate {
        Verdict::Fail
    } else {
        Verdict::Proceed
    }
}

/// True when the request that brought the accepted count (since the knobs were set) to
/// `accepted_since_armed` is the one that opens the outage. Exactly one request satisfies this,
/// so the outage starts once per arming.
pub fn opens_outage(faults: &Faults, accepted_since_armed: u64) -> bool {
    faults.outage_after == Some(accepted_since_armed)
}

/// True while an outage that started at `started_at` (time since sandbox start) is still open at
/// `now`. The window is half-open: at `started_at + outage_for` the service has recovered.
pub fn outage_active(faults: &Faults, started_at: Option<Duration>, now: Duration) -> bool {
    match started_at {
        Some(start) => now >= start && now < start.saturating_add(faults.outage_for),
        None => false,
    }
}

/// An `outage_after: 0` outage starts as soon as the knobs are set, before any acceptance.
pub fn outage_starts_immediately(faults: &Faults) -> bool {
    faults.outage_after == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(0x5eed)
    }

    fn count(faults: &Faults, n: usize) -> (usize, usize, usize) {
        let mut r = rng();
        let (mut ok, mut throttle, mut fail) = (0, 0, 0);
        for _ in 0..n {
            match verdict(faults, &mut r, false) {
                Verdict::Proceed => ok += 1,
                Verdict::Throttle => throttle += 1,
                Verdict::Fail => fail += 1,
                Verdict::Outage => panic!("no outage was requested"),
            }
        }
        (ok, throttle, fail)
    }

    #[test]
    fn no_faults_always_proceeds_without_delay() {
        let f = Faults::default();
        assert_eq!(count(&f, 1000), (1000, 0, 0));
        assert_eq!(delay(&f, &mut rng()), Duration::ZERO);
    }

    #[test]
    fn fail_rate_one_fails_every_request() {
        let f = Faults {
            fail_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(count(&f, 1000), (0, 0, 1000));
    }

    #[test]
    fn rates_are_honoured_statistically_with_a_seeded_rng() {
        let f = Faults {
            fail_rate: 0.2,
            throttle_rate: 0.1,
            ..Faults::default()
        };
        let (ok, throttle, fail) = count(&f, 20_000);
        // 3-sigma bands are about ±0.9% (fail) and ±0.6% (throttle) of 20 000.
        assert!((3_800..=4_200).contains(&fail), "fail {fail}");
        assert!((1_850..=2_150).contains(&throttle), "throttle {throttle}");
        assert_eq!(ok + throttle + fail, 20_000);
    }

    #[test]
    fn same_seed_gives_same_decisions() {
        let f = Faults {
            fail_rate: 0.5,
            ..Faults::default()
        };
        let (mut a, mut b) = (rng(), rng());
        let xs: Vec<_> = (0..64).map(|_| verdict(&f, &mut a, false)).collect();
        let ys: Vec<_> = (0..64).map(|_| verdict(&f, &mut b, false)).collect();
        assert_eq!(xs, ys);
        assert!(xs.contains(&Verdict::Fail) && xs.contains(&Verdict::Proceed));
    }

    #[test]
    fn throttle_wins_the_overlap_when_rates_sum_above_one() {
        let f = Faults {
            fail_rate: 1.0,
            throttle_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(count(&f, 100), (0, 100, 0));
    }

    #[test]
    fn delay_stays_within_latency_plus_jitter() {
        let f = Faults {
            latency: Duration::from_millis(50),
            latency_jitter: Duration::from_millis(10),
            ..Faults::default()
        };
        let mut r = rng();
        let ds: Vec<Duration> = (0..1000).map(|_| delay(&f, &mut r)).collect();
        assert!(ds
            .iter()
            .all(|d| (Duration::from_millis(50)..=Duration::from_millis(60)).contains(d)));
        // Uniform, not constant: both halves of the jitter range are hit.
        assert!(ds.iter().any(|d| *d < Duration::from_millis(55)));
        assert!(ds.iter().any(|d| *d > Duration::from_millis(55)));
    }

    #[test]
    fn outage_opens_on_the_nth_acceptance_and_closes_after_its_duration() {
        let f = Faults {
            outage_after: Some(3),
            outage_for: Duration::from_secs(30),
            ..Faults::default()
        };
        assert!(!opens_outage(&f, 2));
        assert!(opens_outage(&f, 3));
        assert!(!opens_outage(&f, 4), "the outage opens once per arming");
        let start = Some(Duration::from_secs(100));
        assert!(!outage_active(&f, None, Duration::from_secs(100)));
        assert!(outage_active(&f, start, Duration::from_secs(100)));
        assert!(outage_active(&f, start, Duration::from_millis(129_999)));
        assert!(!outage_active(&f, start, Duration::from_secs(130)));
        let mut r = rng();
        assert_eq!(verdict(&f, &mut r, true), Verdict::Outage);
        assert_eq!(verdict(&f, &mut r, false), Verdict::Proceed);
    }

    #[test]
    fn outage_after_zero_starts_immediately() {
        let f = Faults {
            outage_after: Some(0),
            outage_for: Duration::from_secs(1),
            ..Faults::default()
        };
        assert!(outage_starts_immediately(&f));
        assert!(!outage_starts_immediately(&Faults::default()));
    }
}
