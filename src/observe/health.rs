//! Liveness and readiness, shared between the pipeline (writer) and the HTTP endpoints.
//!
//! **Alive** (`/healthz`) means both loops everything depends on are turning: the Kafka poll
//! thread (rebalance callbacks and fetches only happen inside its `poll()`) and the coordinator
//! (every offset decision). Each refreshes a [`Heartbeat`] on every turn. When either has been
//! silent for longer than the liveness bound the process is wedged, `/healthz` answers 503 with
//! the reason, and an orchestrator restarts it; nothing is lost by that, offsets past unfinished
//! work are never committed. The bound is derived from the configuration
//! ([`crate::pipeline::liveness_bound`]) because the poll thread legitimately blocks inside a
//! revoke callback for the drain and a commit. Before the pipeline arms the check (start-up) and
//! after it disarms it (shutdown) the process counts as alive: start-up and shutdown have their
//! own bounds (the startup probe, the grace period).
//!
//! **Ready** (`/readyz`) means "a member of the consumer group that can work": it has joined the
//! group (its first assignment arrived, even an empty one; under the consumer protocol, where an
//! idle member gets no assignment at all, its group coordinator is up) and nothing in its own
//! configuration stops it: MCM did not reject our API key, platform id or URL (401/403/404),
//! Kafka did not refuse a right it needs (the login or READ on its group or a topic: it is
//! stopping; WRITE on the DLQ topic: its dead letters are held, see `kafka::access`), and
//! delivery is not halted by an `on_failure: halt` policy. Not ready in those cases stops a bad
//! rollout at its first pod. Deliberately *ready* with a note in the body:
//! - an **idle** member (more replicas than partitions): it is a standby that takes partitions
//!   over the moment another member leaves;
//! - an **open circuit** (MCM failing) and **broker errors** after joining: outages of a shared
//!   dependency hit every replica alike, so not-ready would only stall rollouts and node drains
//!   while helping nothing; they are alerted instead (`McmBridgeCircuitOpen`, lag alerts).
//!
//! The decisions are the pure functions [`liveness_verdict`] and [`readiness_verdict`]; this
//! type only holds the inputs.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The loops whose heartbeat `/healthz` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    /// The thread that owns librdkafka's `poll()` (`kafka::consumer::poll_loop`).
    Poll,
    /// The task that owns all partition state (`pipeline::coordinator::Coordinator::run`).
    Coordinator,
}

impl Loop {
    pub const ALL: [Loop; 2] = [Loop::Poll, Loop::Coordinator];

    pub fn name(self) -> &'static str {
        match self {
            Loop::Poll => "kafka poll thread",
            Loop::Coordinator => "coordinator",
        }
    }

    fn index(self) -> usize {
        match self {
            Loop::Poll => 0,
            Loop::Coordinator => 1,
        }
    }
}

/// Liveness: `Ok` with every loop's silence when each beat within `bound`, else the reason
/// naming every loop that did not.
pub fn liveness_verdict(silence: &[(Loop, Duration)], bound: Duration) -> Result<(), String> {
    let stale: Vec<String> = silence
        .iter()
        .filter(|(_, quiet)| *quiet > bound)
        .map(|(l, quiet)| {
            format!(
                "{} silent for {:.1}s (bound {}s)",
                l.name(),
                quiet.as_secs_f64(),
                bound.as_secs()
            )
        })
        .collect();
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!("wedged: {}", stale.join("; ")))
    }
}

/// What readiness is decided from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadinessInputs {
    pub joined: bool,
    pub assigned: usize,
    pub circuit_open: bool,
    pub halted: Option<String>,
    pub config_error: Option<String>,
    /// Kafka refused the login or a right the bridge needs (one error naming it).
    pub kafka_denied: Option<String>,
    pub broker_error: Option<String>,
}

/// A ready member, with what an operator should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub assigned: usize,
    /// Conditions that do not make the member unready (see the module docs), for the body.
    pub notes: Vec<String>,
}

/// Readiness: ready = joined the group, and neither MCM nor a halt policy stopped delivery for
/// a reason in this member's own configuration or data (see the module docs for why idle, an
/// open circuit and broker errors are ready).
pub fn readiness_verdict(s: &ReadinessInputs) -> Result<Ready, String> {
    if let Some(c) = &s.config_error {
        return Err(format!(
            "MCM rejected our configuration (API key, platform id or URL): {c}"
        ));
    }
    if let Some(d) = &s.kafka_denied {
        return Err(d.clone());
    }
    if let Some(h) = &s.halted {
        return Err(format!("halted: {h}"));
    }
    if !s.joined {
        return Err(match &s.broker_error {
            Some(b) => format!("not yet joined the consumer group; last broker error: {b}"),
            None => "not yet joined the consumer group".into(),
        });
    }
    let mut notes = Vec::new();
    if s.assigned == 0 {
        notes.push(
            "idle: no partitions assigned (more members than partitions); takes over when a member leaves"
                .to_string(),
        );
    }
    if s.circuit_open {
        notes.push(
            "circuit open: MCM is failing, consumption paused (alerted, not a readiness matter)"
                .into(),
        );
    }
    if let Some(b) = &s.broker_error {
        notes.push(format!("broker error: {b}"));
    }
    Ok(Ready {
        assigned: s.assigned,
        notes,
    })
}

/// Liveness as `/healthz` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Liveness {
    /// The pipeline is not running (starting up or stopped): nothing to watch.
    NotArmed,
    /// Every loop beat within the bound.
    Alive {
        bound: Duration,
        silence: Vec<(Loop, Duration)>,
    },
    Wedged(String),
}

/// Marker for "no beat recorded": a loop armed but never seen counts from the arming.
const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub struct Health {
    assigned: AtomicUsize,
    joined: AtomicBool,
    circuit_open: AtomicBool,
    halted: Mutex<Option<String>>,
    config_error: Mutex<Option<String>>,
    kafka_denied: Mutex<Option<String>>,
    broker_error: Mutex<Option<String>>,
    /// What heartbeat times count from.
    origin: Instant,
    /// The liveness bound in ms; 0 while not armed.
    bound_ms: AtomicU64,
    /// Per [`Loop`]: ms since `origin` of the last beat.
    beats: [AtomicU64; 2],
}

impl Default for Health {
    fn default() -> Health {
        Health {
            assigned: AtomicUsize::new(0),
            joined: AtomicBool::new(false),
            circuit_open: AtomicBool::new(false),
            halted: Mutex::new(None),
            config_error: Mutex::new(None),
            kafka_denied: Mutex::new(None),
            broker_error: Mutex::new(None),
            origin: Instant::now(),
            bound_ms: AtomicU64::new(0),
            beats: [AtomicU64::new(NEVER), AtomicU64::new(NEVER)],
        }
    }
}

fn set(slot: &Mutex<Option<String>>, v: Option<String>) {
    if let Ok(mut g) = slot.lock() {
        *g = v;
    }
}

fn get(slot: &Mutex<Option<String>>) -> Option<String> {
    slot.lock().ok().and_then(|g| g.clone())
}

/// A loop's handle on its heartbeat: cheap to clone and to beat (one clock read, one store).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    health: Arc<Health>,
    which: Loop,
}

impl Heartbeat {
    /// "This loop is turning."
    pub fn beat(&self) {
        self.health.beat(self.which, Instant::now());
    }
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// The heartbeat `which` refreshes.
    pub fn heartbeat(self: &Arc<Self>, which: Loop) -> Heartbeat {
        Heartbeat {
            health: self.clone(),
            which,
        }
    }

    fn millis_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_millis()).unwrap_or(NEVER - 1)
    }

    fn beat(&self, which: Loop, at: Instant) {
        self.beats[which.index()].store(self.millis_since_origin(at), Ordering::Relaxed);
    }

    /// Starts watching the loops: each counts as having beaten now, and must beat again within
    /// `bound` from here on. Called by the pipeline before it starts them.
    pub fn arm_liveness(&self, bound: Duration) {
        let now = Instant::now();
        for l in Loop::ALL {
            self.beat(l, now);
        }
        let ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX).max(1);
        self.bound_ms.store(ms, Ordering::Relaxed);
    }

    /// Stops watching (the pipeline stopped its loops on purpose).
    pub fn disarm_liveness(&self) {
        self.bound_ms.store(0, Ordering::Relaxed);
    }

    /// Liveness now.
    pub fn liveness(&self) -> Liveness {
        let bound_ms = self.bound_ms.load(Ordering::Relaxed);
        if bound_ms == 0 {
            return Liveness::NotArmed;
        }
        let now = self.millis_since_origin(Instant::now());
        let silence: Vec<(Loop, Duration)> = Loop::ALL
            .iter()
            .map(|&l| {
                let last = self.beats[l.index()].load(Ordering::Relaxed);
                (l, Duration::from_millis(now.saturating_sub(last)))
            })
            .collect();
        let bound = Duration::from_millis(bound_ms);
        match liveness_verdict(&silence, bound) {
            Ok(()) => Liveness::Alive { bound, silence },
            Err(why) => Liveness::Wedged(why),
        }
    }

    /// The first rebalance of this member completed (with or without partitions).
    pub fn set_joined(&self) {
        self.joined.store(true, Ordering::Relaxed);
    }

    pub fn set_assigned(&self, n: usize) {
        self.assigned.store(n, Ordering::Relaxed);
        self.joined.store(true, Ordering::Relaxed);
        if n > 0 {
            set(&self.broker_error, None);
        }
    }

    pub fn assigned(&self) -> usize {
        self.assigned.load(Ordering::Relaxed)
    }

    pub fn set_circuit_open(&self, open: bool) {
        self.circuit_open.store(open, Ordering::Relaxed);
    }

    pub fn set_halted(&self, why: Option<String>) {
        set(&self.halted, why);
    }

    pub fn set_config_error(&self, why: Option<String>) {
        set(&self.config_error, why);
    }

    /// Kafka refused the login or a right the bridge needs (see `kafka::access`).
    pub fn set_kafka_denied(&self, why: Option<String>) {
        set(&self.kafka_denied, why);
    }

    pub fn set_broker_error(&self, why: Option<String>) {
        set(&self.broker_error, why);
    }

    /// The inputs of [`readiness_verdict`] now.
    pub fn readiness_inputs(&self) -> ReadinessInputs {
        ReadinessInputs {
            joined: self.joined.load(Ordering::Relaxed),
            assigned: self.assigned(),
            circuit_open: self.circuit_open.load(Ordering::Relaxed),
            halted: get(&self.halted),
            config_error: get(&self.config_error),
            kafka_denied: get(&self.kafka_denied),
            broker_error: get(&self.broker_error),
        }
    }

    /// `Ok` when ready (with notes), else the reason.
    pub fn readiness(&self) -> Result<Ready, String> {
        readiness_verdict(&self.readiness_inputs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(75);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn loops_that_beat_within_the_bound_are_alive() {
        let silence = [(Loop::Poll, secs(0)), (Loop::Coordinator, secs(75))];
        assert_eq!(liveness_verdict(&silence, BOUND), Ok(()));
    }

    #[test]
    fn a_silent_poll_thread_is_a_wedge_named_with_its_silence_and_the_bound() {
        let silence = [(Loop::Poll, secs(76)), (Loop::Coordinator, secs(0))];
        let why = liveness_verdict(&silence, BOUND).expect_err("wedged");
        assert!(why.contains("kafka poll thread silent for 76.0s"), "{why}");
        assert!(why.contains("bound 75s"), "{why}");
        assert!(!why.contains("coordinator"), "{why}");
    }

    #[test]
    fn every_silent_loop_is_named() {
        let silence = [(Loop::Poll, secs(100)), (Loop::Coordinator, secs(200))];
        let why = liveness_verdict(&silence, BOUND).expect_err("wedged");
        assert!(
            why.contains("kafka poll thread") && why.contains("coordinator"),
            "{why}"
        );
    }

    #[test]
    fn an_unarmed_health_is_alive_whatever_its_beats() {
        let h = Health::new();
        assert_eq!(h.liveness(), Liveness::NotArmed);
        h.arm_liveness(BOUND);
        h.disarm_liveness();
        assert_eq!(h.liveness(), Liveness::NotArmed);
    }

    #[test]
    fn arming_counts_as_a_beat_of_every_loop() {
        let h = Health::new();
        h.arm_liveness(Duration::from_secs(3600));
        match h.liveness() {
            Liveness::Alive { bound, silence } => {
                assert_eq!(bound, Duration::from_secs(3600));
                assert_eq!(silence.len(), 2);
            }
            other => panic!("expected alive, got {other:?}"),
        }
    }

    fn joined() -> ReadinessInputs {
        ReadinessInputs {
            joined: true,
            assigned: 3,
            ..ReadinessInputs::default()
        }
    }

    #[test]
    fn a_member_with_partitions_is_ready_without_notes() {
        let r = readiness_verdict(&joined()).expect("ready");
        assert_eq!(r.assigned, 3);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn an_idle_member_is_ready_and_says_it_is_idle() {
        let s = ReadinessInputs {
            assigned: 0,
            ..joined()
        };
        let r = readiness_verdict(&s).expect("an idle member is a ready standby");
        assert!(
            r.notes.iter().any(|n| n.starts_with("idle")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn an_open_circuit_keeps_the_member_ready_with_a_note() {
        let s = ReadinessInputs {
            circuit_open: true,
            ..joined()
        };
        let r = readiness_verdict(&s).expect("an MCM outage is alerted, not unready");
        assert!(
            r.notes.iter().any(|n| n.starts_with("circuit open")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn a_broker_error_after_joining_keeps_the_member_ready_with_a_note() {
        let s = ReadinessInputs {
            assigned: 0,
            broker_error: Some("all brokers down".into()),
            ..joined()
        };
        let r = readiness_verdict(&s).expect("a Kafka outage hits every member alike");
        assert!(r.notes.iter().any(|n| n.contains("all brokers down")));
    }

    #[test]
    fn a_member_that_never_joined_is_not_ready_and_says_why() {
        let s = ReadinessInputs {
            broker_error: Some("Connection refused".into()),
            ..ReadinessInputs::default()
        };
        let why = readiness_verdict(&s).expect_err("not joined");
        assert!(why.contains("not yet joined"), "{why}");
        assert!(why.contains("Connection refused"), "{why}");
    }

    #[test]
    fn a_rejected_key_makes_the_member_not_ready_even_with_partitions() {
        let s = ReadinessInputs {
            config_error: Some("MCM answered 401: unauthorized".into()),
            ..joined()
        };
        let why = readiness_verdict(&s).expect_err("a configuration error stops a rollout");
        assert!(why.contains("401"), "{why}");
    }

    #[test]
    fn a_kafka_refusal_makes_the_member_not_ready_even_with_partitions() {
        let s = ReadinessInputs {
            kafka_denied: Some("Kafka denied WRITE on topic \"g.dlq\" …".into()),
            ..joined()
        };
        let why = readiness_verdict(&s).expect_err("a missing right stops a rollout");
        assert!(why.starts_with("Kafka denied WRITE"), "{why}");
    }

    #[test]
    fn a_halt_policy_makes_the_member_not_ready() {
        let s = ReadinessInputs {
            halted: Some("events[0] offset 7: mapping".into()),
            ..joined()
        };
        let why = readiness_verdict(&s).expect_err("halted");
        assert!(why.starts_with("halted:"), "{why}");
    }

    #[test]
    fn first_assignment_joins_and_clears_the_broker_error() {
        let h = Health::new();
        h.set_broker_error(Some("down".into()));
        assert!(h.readiness().is_err());
        h.set_assigned(2);
        let r = h.readiness().expect("ready");
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn an_empty_first_assignment_joins() {
        let h = Health::new();
        h.set_joined();
        let r = h.readiness().expect("ready");
        assert_eq!(r.assigned, 0);
    }
}
