//! Retry policy: how long to wait before the next attempt, and whether another attempt is allowed.
//!
//! Pure (the RNG is passed in, seeded in tests). Exponential backoff with jitter, bounded below by
//! Moloco's documented 5 s minimum for server errors and above by `max_backoff`; a server-sent
//! `Retry-After` replaces the computed delay. It does not sleep and knows nothing about the circuit
//! breaker: the sender decides which attempts count.

use crate::config::RetryConfig;
use crate::mcm::classify::MAX_RETRY_AFTER;
use rand::Rng;
use std::time::Duration;

/// The delay before the next attempt, after attempt number `failed_attempt` (1-based) failed.
///
/// Without `retry_after` the delay is uniform over
/// `[initial_backoff, min(max_backoff, initial_backoff * multiplier^(failed_attempt - 1))]`.
///
/// This is a *stricter reading* of "full jitter": classic full jitter draws from `[0, cap]`, but
/// Moloco's failure protocol (reference §3.5) says to wait **at least 5 s** before retrying a
/// server error, and `initial_backoff` (5 s by default) is that floor. So the floor is kept on every
/// retry and only the part above it is jittered; the first retry therefore waits exactly
/// `initial_backoff`, and later ones spread out between the floor and the growing cap, which
/// still de-synchronises many in-flight messages retrying at once.
///
/// With `retry_after` (already parsed from the response) the server wins: wait exactly that long,
/// capped at 15 min — no jitter and no floor, because the server told us when it will be ready.
pub fn backoff_delay<R: Rng + ?Sized>(
    cfg: &RetryConfig,
    failed_attempt: u32,
    retry_after: Option<Duration>,
    rng: &mut R,
) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(MAX_RETRY_AFTER);
    }
    let floor = cfg.initial_backoff.min(cfg.max_backoff);
    let cap = backoff_cap(cfg, failed_attempt);
    if cap <= floor {
        return floor;
    }
    // Nanosecond resolution is plenty and keeps the draw in integers (no float edge cases).
    let lo = floor.as_nanos() as u64;
    let hi = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rng.random_range(lo..=hi))
}

/// The upper bound of the jitter range after attempt `failed_attempt`:
/// `min(max_backoff, initial_backoff * multiplier^(failed_attempt - 1))`.
pub fn backoff_cap(cfg: &RetryConfig, failed_attempt: u32) -> Duration {
    // A multiplier below 1 (or NaN) would shrink the backoff; config validation should reject it,
    // but a policy must never hammer the API, so treat it as 1 (constant backoff).
    let multiplier = if cfg.multiplier.is_finite() && cfg.multiplier >= 1.0 {
        cfg.multiplier
    } else {
        1.0
    };
    let exp = i32::try_from(failed_attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let secs = cfg.initial_backoff.as_secs_f64() * multiplier.powi(exp);
    // Overflow (inf) or any value beyond max_backoff becomes max_backoff.
    Duration::try_from_secs_f64(secs)
        .unwrap_or(cfg.max_backoff)
        .min(cfg.max_backoff)
}

/// Whether another attempt may follow `counted_attempts` counted attempts. `max_attempts` counts
/// total attempts including the first; 0 is treated as 1 (never "retry forever" by accident).
pub fn may_retry(cfg: &RetryConfig, counted_attempts: u32) -> bool {
    counted_attempts < cfg.max_attempts.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn cfg() -> RetryConfig {
        RetryConfig {
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(120),
            multiplier: 2.0,
            max_attempts: 10,
        }
    }

    #[test]
    fn first_retry_waits_exactly_the_floor() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            assert_eq!(
                backoff_delay(&cfg(), 1, None, &mut rng),
                Duration::from_secs(5)
            );
        }
    }

    #[test]
    fn delays_stay_within_floor_and_growing_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..=12 {
            let cap = backoff_cap(&cfg(), attempt);
            for _ in 0..200 {
                let d = backoff_delay(&cfg(), attempt, None, &mut rng);
                assert!(d >= Duration::from_secs(5), "attempt {attempt}: {d:?}");
                assert!(d <= cap, "attempt {attempt}: {d:?} > {cap:?}");
            }
        }
    }

    #[test]
    fn cap_grows_exponentially_until_max_backoff() {
        let caps: Vec<u64> = (1..=8).map(|n| backoff_cap(&cfg(), n).as_secs()).collect();
        assert_eq!(caps, vec![5, 10, 20, 40, 80, 120, 120, 120]);
        assert_eq!(backoff_cap(&cfg(), u32::MAX), Duration::from_secs(120));
    }

    #[test]
    fn jitter_actually_spreads_delays() {
        let mut rng = StdRng::seed_from_u64(42);
        let ds: Vec<Duration> = (0..50)
            .map(|_| backoff_delay(&cfg(), 5, None, &mut rng))
            .collect();
        let min = ds.iter().min().copied().unwrap_or_default();
        let max = ds.iter().max().copied().unwrap_or_default();
        assert!(max - min > Duration::from_secs(20), "{min:?}..{max:?}");
    }

    #[test]
    fn same_seed_same_delays() {
        let a: Vec<Duration> = {
            let mut rng = StdRng::seed_from_u64(3);
            (1..6)
                .map(|n| backoff_delay(&cfg(), n, None, &mut rng))
                .collect()
        };
        let b: Vec<Duration> = {
            let mut rng = StdRng::seed_from_u64(3);
            (1..6)
                .map(|n| backoff_delay(&cfg(), n, None, &mut rng))
                .collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn retry_after_wins_exactly_and_is_capped() {
        let mut rng = StdRng::seed_from_u64(1);
        let ra = Some(Duration::from_secs(1));
        assert_eq!(
            backoff_delay(&cfg(), 3, ra, &mut rng),
            Duration::from_secs(1)
        );
        assert_eq!(
            backoff_delay(&cfg(), 1, Some(Duration::ZERO), &mut rng),
            Duration::ZERO
        );
        assert_eq!(
            backoff_delay(&cfg(), 1, Some(Duration::from_secs(3600)), &mut rng),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn initial_above_max_is_clamped_to_max() {
        let c = RetryConfig {
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3),
            ..cfg()
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(backoff_delay(&c, 4, None, &mut rng), Duration::from_secs(3));
    }

    #[test]
    fn bad_multiplier_means_constant_backoff() {
        for m in [0.5, f64::NAN, f64::INFINITY, -1.0] {
            let c = RetryConfig {
                multiplier: m,
                ..cfg()
            };
            assert_eq!(backoff_cap(&c, 5), Duration::from_secs(5), "{m}");
        }
    }

    #[test]
    fn max_attempts_counts_the_first_attempt() {
        let c = RetryConfig {
            max_attempts: 3,
            ..cfg()
        };
        assert!(may_retry(&c, 1));
        assert!(may_retry(&c, 2));
        assert!(!may_retry(&c, 3));
        let zero = RetryConfig {
            max_attempts: 0,
            ..cfg()
        };
        assert!(!may_retry(&zero, 1));
    }
}
