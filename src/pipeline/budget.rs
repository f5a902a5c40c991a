//! In-flight budgets in messages and bytes, with hysteresis (DESIGN.md contract 5).
//!
//! A budget counts the messages (and their payload bytes) that have been taken from Kafka but are
//! not finished. When either bound is reached the caller pauses fetching (the partition, or all
//! partitions for the global budget); it resumes only once usage has fallen to three quarters of
//! both bounds, so a busy partition is not paused and resumed on every message (each pause makes
//! librdkafka drop its prefetched data, reference/rust-kafka.md §1.7). Messages that were already
//! received are always accepted — refusing one would lose it — so usage can overshoot a bound by
//! what librdkafka had already handed over; the pause keeps that small.

/// What the caller should do after a change in usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Unchanged,
    Pause,
    Resume,
}

#[derive(Debug, Clone)]
pub struct Budget {
    max_messages: usize,
    max_bytes: u64,
    messages: usize,
    bytes: u64,
    paused: bool,
}

impl Budget {
    pub fn new(max_messages: usize, max_bytes: u64) -> Budget {
        Budget {
            max_messages: max_messages.max(1),
            max_bytes: max_bytes.max(1),
            messages: 0,
            bytes: 0,
            paused: false,
        }
    }

    /// Accounts for one more message of `bytes`.
    pub fn add(&mut self, bytes: u64) -> Flow {
        self.messages += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if !self.paused && (self.messages >= self.max_messages || self.bytes >= self.max_bytes) {
            self.paused = true;
            return Flow::Pause;
        }
        Flow::Unchanged
    }

    /// Accounts for a finished message of `bytes`.
    pub fn remove(&mut self, bytes: u64) -> Flow {
        self.messages = self.messages.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
        if self.paused
            && self.messages <= self.max_messages * 3 / 4
            && self.bytes <= self.max_bytes / 4 * 3
        {
            self.paused = false;
            return Flow::Resume;
        }
        Flow::Unchanged
    }

    /// Accounts for many finished messages at once (a revoked partition's share of the global
    /// budget).
    pub fn remove_many(&mut self, messages: usize, bytes: u64) -> Flow {
        if messages == 0 {
            return Flow::Unchanged;
        }
        self.messages = self.messages.saturating_sub(messages - 1);
        self.bytes = self.bytes.saturating_sub(bytes);
        self.remove(0)
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn messages(&self) -> usize {
        self.messages
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_at_the_count_bound_and_resumes_at_three_quarters() {
        let mut b = Budget::new(8, 1 << 20);
        for _ in 0..7 {
            assert_eq!(b.add(10), Flow::Unchanged);
        }
        assert_eq!(b.add(10), Flow::Pause);
        assert_eq!(
            b.add(10),
            Flow::Unchanged,
            "overshoot is accepted, not refused"
        );
        assert_eq!(b.remove(10), Flow::Unchanged);
        assert_eq!(b.remove(10), Flow::Unchanged);
        assert_eq!(b.remove(10), Flow::Resume);
        assert!(!b.is_paused());
        assert_eq!(b.messages(), 6);
    }

    #[test]
    fn pauses_at_the_byte_bound() {
        let mut b = Budget::new(1000, 100);
        assert_eq!(b.add(60), Flow::Unchanged);
        assert_eq!(b.add(60), Flow::Pause);
        assert_eq!(b.remove(60), Flow::Resume);
        assert_eq!(b.bytes(), 60);
    }

    #[test]
    fn remove_many_releases_a_whole_partition() {
        let mut b = Budget::new(4, 1000);
        for _ in 0..4 {
            b.add(10);
        }
        assert!(b.is_paused());
        assert_eq!(b.remove_many(3, 30), Flow::Resume);
        assert_eq!((b.messages(), b.bytes()), (1, 10));
        assert_eq!(b.remove_many(0, 0), Flow::Unchanged);
    }
}
