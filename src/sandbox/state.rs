//! The state one sandbox instance shares between its requests: identity, live fault knobs, outage
//! clock, counters (of answers and of traffic), the id set and the recorder.
//!
//! Everything the request path reads or writes is an atomic (or a shard of the id set), so there
//! is no global lock. Knobs that change at runtime (`PUT /_sandbox/faults`) are stored knob by
//! knob: a request racing a change may see some old and some new knobs, which is harmless for a
//! test double and avoids a lock on every request. The API key is kept only as a keyed hash
//! (random key per instance), which is what lets it change at runtime without a lock and keeps
//! the secret itself out of memory dumps.

use super::config::{Faults, FaultsError, SandboxConfig};
use super::dedup::IdSet;
use super::delay::DelayTimer;
use super::faults;
use super::recorder::Recorder;
use super::stats::Counters;
use super::traffic::Traffic;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// `Option<u64>` in an atomic: this value means `None`. No real knob gets near it.
const NONE: u64 = u64::MAX;

fn dur_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn opt_to_atomic(v: Option<u64>) -> u64 {
    v.map_or(NONE, |n| n.min(NONE - 1))
}

fn atomic_to_opt(v: u64) -> Option<u64> {
    (v != NONE).then_some(v)
}

/// Fault knobs, one atomic each.
#[derive(Debug)]
struct LiveFaults {
    fail_rate: AtomicU64,
    throttle_rate: AtomicU64,
    latency_ns: AtomicU64,
    jitter_ns: AtomicU64,
    outage_after: AtomicU64,
    outage_for_ns: AtomicU64,
    retry_after: AtomicU64,
}

impl LiveFaults {
    fn new(f: &Faults) -> LiveFaults {
        let live = LiveFaults {
            fail_rate: AtomicU64::new(0),
            throttle_rate: AtomicU64::new(0),
            latency_ns: AtomicU64::new(0),
            jitter_ns: AtomicU64::new(0),
            outage_after: AtomicU64::new(NONE),
            outage_for_ns: AtomicU64::new(0),
            retry_after: AtomicU64::new(NONE),
        };
        live.store(f);
        live
    }

    fn store(&self, f: &Faults) {
        self.fail_rate.store(f.fail_rate.to_bits(), Relaxed);
        self.throttle_rate.store(f.throttle_rate.to_bits(), Relaxed);
        self.latency_ns.store(dur_to_nanos(f.latency), Relaxed);
        self.jitter_ns
            .store(dur_to_nanos(f.latency_jitter), Relaxed);
        self.outage_after
            .store(opt_to_atomic(f.outage_after), Relaxed);
        self.outage_for_ns
            .store(dur_to_nanos(f.outage_for), Relaxed);
        self.retry_after
            .store(opt_to_atomic(f.retry_after), Relaxed);
    }

    fn load(&self) -> Faults {
        Faults {
            fail_rate: f64::from_bits(self.fail_rate.load(Relaxed)),
            throttle_rate: f64::from_bits(self.throttle_rate.load(Relaxed)),
            latency: Duration::from_nanos(self.latency_ns.load(Relaxed)),
            latency_jitter: Duration::from_nanos(self.jitter_ns.load(Relaxed)),
            outage_after: atomic_to_opt(self.outage_after.load(Relaxed)),
            outage_for: Duration::from_nanos(self.outage_for_ns.load(Relaxed)),
            retry_after: atomic_to_opt(self.retry_after.load(Relaxed)),
        }
    }
}

/// Shared per-instance state.
#[derive(Debug)]
pub struct Shared {
    pub platform_id: String,
    key_hasher: RandomState,
    key_hash: AtomicU64,
    faults: LiveFaults,
    /// The sandbox's own clock origin; outage times are offsets from it.
    started: Instant,
    /// Accepted requests since the fault knobs were last set (drives `outage_after`).
    accepted_since_armed: AtomicU64,
    /// Outage start as nanoseconds since `started`, plus one; 0 = no outage started.
    outage_started: AtomicU64,
    pub counters: Counters,
    /// Connections, HTTP versions, concurrency.
    pub traffic: Traffic,
    pub ids: IdSet,
    pub recorder: Option<Recorder>,
    /// Holds answers for the `latency` fault (precise to well under a millisecond).
    pub delays: DelayTimer,
}

impl Shared {
    /// Builds the state; `recorder` is started by the caller (it owns the file).
    pub fn new(cfg: &SandboxConfig, recorder: Option<Recorder>) -> Result<Shared, FaultsError> {
        cfg.faults.check()?;
        let key_hasher = RandomState::new();
        let key_hash = AtomicU64::new(key_hasher.hash_one(cfg.api_key.as_bytes()));
        let shared = Shared {
            platform_id: cfg.platform_id.clone(),
            key_hasher,
            key_hash,
            faults: LiveFaults::new(&Faults::default()),
            started: Instant::now(),
            accepted_since_armed: AtomicU64::new(0),
            outage_started: AtomicU64::new(0),
            counters: Counters::default(),
            traffic: Traffic::default(),
            ids: IdSet::default(),
            recorder,
            delays: DelayTimer::default(),
        };
        shared.set_faults(&cfg.faults)?;
        Ok(shared)
    }

    /// True when `key` is the accepted API key.
    pub fn key_matches(&self, key: &[u8]) -> bool {
        self.key_hasher.hash_one(key) == self.key_hash.load(Relaxed)
    }

    pub fn set_api_key(&self, key: &str) {
        self.key_hash
            .store(self.key_hasher.hash_one(key.as_bytes()), Relaxed);
    }

    pub fn faults(&self) -> Faults {
        self.faults.load()
    }

    /// Replaces every fault knob and re-arms the outage (its `outage_after` counts from now).
    pub fn set_faults(&self, f: &Faults) -> Result<(), FaultsError> {
        f.check()?;
        self.faults.store(f);
        self.rearm_outage(f);
        Ok(())
    }

    fn rearm_outage(&self, f: &Faults) {
        self.accepted_since_armed.store(0, Relaxed);
        let start = if faults::outage_starts_immediately(f) {
            dur_to_nanos(self.now()).saturating_add(1)
        } else {
            0
        };
        self.outage_started.store(start, Relaxed);
    }

    /// Time since this sandbox started (the clock the fault decisions use).
    pub fn now(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn outage_started_at(&self) -> Option<Duration> {
        match self.outage_started.load(Relaxed) {
            0 => None,
            n => Some(Duration::from_nanos(n - 1)),
        }
    }

    /// Notes one accepted request for the outage trigger; opens the outage when this was the
    /// `outage_after`-th.
    pub fn note_accepted_for_outage(&self, f: &Faults) {
        if f.outage_after.is_none() {
            return;
        }
        let n = self.accepted_since_armed.fetch_add(1, Relaxed) + 1;
        if faults::opens_outage(f, n) {
            self.outage_started
                .store(dur_to_nanos(self.now()).saturating_add(1), Relaxed);
        }
    }

    /// A counter snapshot, including lines the recorder failed to write.
    pub fn snapshot(&self) -> super::stats::SandboxStats {
        let mut s = self.counters.snapshot();
        s.traffic = self.traffic.snapshot();
        if let Some(r) = &self.recorder {
            s.record_errors += r.failed_lines();
        }
        s
    }

    /// Zeroes counters and ids and re-arms the outage. The record file is left as it is: it is
    /// an append-only log of this run.
    pub fn reset(&self) {
        self.counters.reset();
        self.traffic.reset();
        self.ids.clear();
        self.rearm_outage(&self.faults());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_round_trip_through_the_atomics() {
        let f = Faults {
            fail_rate: 0.25,
            throttle_rate: 0.125,
            latency: Duration::from_millis(50),
            latency_jitter: Duration::from_micros(10),
            outage_after: Some(7),
            outage_for: Duration::from_secs(30),
            retry_after: Some(2),
        };
        let live = LiveFaults::new(&f);
        assert_eq!(live.load(), f);
        live.store(&Faults::default());
        assert_eq!(live.load(), Faults::default());
    }

    #[test]
    fn api_key_can_be_changed_and_is_compared_exactly() {
        let s = Shared::new(&SandboxConfig::new("P", "k1"), None).expect("state");
        assert!(s.key_matches(b"k1"));
        assert!(!s.key_matches(b"k1 "));
        s.set_api_key("k2");
        assert!(!s.key_matches(b"k1"));
        assert!(s.key_matches(b"k2"));
    }

    #[test]
    fn outage_opens_after_n_accepts_and_rearms_on_new_knobs() {
        let f = Faults {
            outage_after: Some(2),
            outage_for: Duration::from_secs(60),
            ..Faults::default()
        };
        let mut cfg = SandboxConfig::new("P", "k");
        cfg.faults = f.clone();
        let s = Shared::new(&cfg, None).expect("state");
        s.note_accepted_for_outage(&f);
        assert_eq!(s.outage_started_at(), None);
        s.note_accepted_for_outage(&f);
        assert!(s.outage_started_at().is_some());
        assert!(faults::outage_active(&f, s.outage_started_at(), s.now()));
        s.set_faults(&Faults::default()).expect("valid");
        assert_eq!(s.outage_started_at(), None);
    }

    #[test]
    fn invalid_knobs_are_refused_and_leave_the_old_ones() {
        let s = Shared::new(&SandboxConfig::new("P", "k"), None).expect("state");
        let bad = Faults {
            throttle_rate: -0.1,
            ..Faults::default()
        };
        assert!(s.set_faults(&bad).is_err());
        assert_eq!(s.faults(), Faults::default());
    }
}
