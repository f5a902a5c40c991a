//! A token bucket for platforms with a request quota (`mcm.rate_limit`, events per second).
//!
//! Pure: [`TokenBucket::take`] says how long to wait for the next token at a given instant. The
//! burst is one second's worth of tokens, so a quota is respected over any one-second window.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `rate` tokens per second (must be > 0).
    pub fn new(rate: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            burst: rate,
            tokens: rate,
            last: now,
        }
    }

    /// Takes a token: `Ok(())` now, or `Err(wait)` until one is available (nothing is taken).
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        for _ in 0..10 {
            assert_eq!(b.take(t0), Ok(()));
        }
        let wait = b.take(t0).expect_err("empty");
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(90));
        assert_eq!(b.take(t0 + Duration::from_millis(100)), Ok(()));
        assert!(b.take(t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn never_exceeds_the_rate_over_a_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, t0);
        let mut granted = 0;
        for ms in 0..2000 {
            let now = t0 + Duration::from_millis(ms);
            while b.take(now).is_ok() {
                granted += 1;
            }
        }
        // 100 burst + 100/s × 2 s (minus the last partial token).
        assert!((299..=300).contains(&granted), "{granted}");
    }
}
