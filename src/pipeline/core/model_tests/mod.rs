//! Model-based test of the delivery core: random sequences of assign, revoke (and lost),
//! messages (deliverable, filtered, rejected, rewound), task answers (fresh, stale and
//! duplicate), DLQ answers, commit results, ticks with the circuit open or closed, positions,
//! pause refusals and shutdown, with the core's contracts checked after every step:
//!
//! - the budgets hold exactly the work the core holds, and return to zero when nothing is held;
//! - request slots match the delivery tasks running, and stay within the limits;
//! - no commit (periodic, revoke progress, revoke final, shutdown) passes an offset that was
//!   taken in that generation and not finished;
//! - a finished message is never started again, and a revoked generation's work never finishes
//!   in the partition's new generation;
//! - after the sequence, answering every task and draining leaves every taken message either
//!   finished or at/after the offset the shutdown commits.
//!
//! Failures shrink to a short list of [`Op`]s (proptest), printed with the seed.

use super::{Core, CoreDeps, Effect, Taken};
use crate::config::Config;
use crate::kafka::access::{AccessDenied, Names, Refusal};
use crate::kafka::consumer::{RevokeAnswer, Tp};
use crate::kafka::dlq::{DlqReason, Unwritable};
use crate::kafka::retention::Gaps;
use crate::mapping::{MappingPlan, Processed, RejectClass, WireEvent};
use crate::mcm::event::EventType;
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;
use crate::pipeline::work::{Ack, AckResult, DlqFailure, TaskId};
use proptest::prelude::*;
use rdkafka::types::RDKafkaErrorCode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod checks;
mod ops;

use ops::{op, Answer, Maps, Op};

/// The world around the core, as the model sees it.
struct Model {
    core: Core<()>,
    now: Instant,
    next_offset: HashMap<i32, i64>,
    /// Offsets taken per (partition, generation), and the ones that finished.
    taken: BTreeMap<(i32, u64), BTreeSet<i64>>,
    finished: BTreeMap<(i32, u64), BTreeSet<i64>>,
    /// Running tasks (from effects) and answered ones, for duplicates.
    tasks: Vec<TaskId>,
    answered: Vec<TaskId>,
    commits: Vec<(u64, Vec<(Tp, i64)>)>,
    /// Each partition's generation as last seen (a revoke's final answer comes after it went).
    generation: HashMap<i32, u64>,
    refuse_pauses: bool,
    /// Per revoke (by id): progress and final answers received.
    revokes: Vec<(u32, u32)>,
    log: Vec<String>,
}

fn tp(p: i32) -> Tp {
    Tp::new("t", p)
}

fn config(policy: &str) -> Config {
    let text = format!(
        "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n  group_id: g\n  commit_interval: 1s\n\
         delivery:\n  on_permanent_failure: {policy}\n  max_in_flight_per_partition: 2\n  \
         max_uncommitted_per_partition: 6\n  drain_timeout: 3s\n\
         mcm:\n  platform_name: acme\n  platform_id: ACME_TEST\n  api_key: k\n  max_in_flight: 3\n\
         topics: []\n"
    );
    crate::config::load_str(
        &text,
        Path::new("."),
        &|_: &str| None,
        Vec::<(String, String)>::new(),
    )
    .unwrap_or_else(|e| panic!("model config: {e}"))
}

impl Model {
    fn new(policy: &str) -> Model {
        let now = Instant::now();
        let deps = CoreDeps {
            config: Arc::new(config(policy)),
            plan: Arc::new(MappingPlan::default()),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new()),
            gaps: Arc::new(Gaps::default()),
        };
        Model {
            core: Core::new(deps, now),
            now,
            next_offset: HashMap::new(),
            taken: BTreeMap::new(),
            finished: BTreeMap::new(),
            tasks: Vec::new(),
            answered: Vec::new(),
            commits: Vec::new(),
            generation: HashMap::new(),
            refuse_pauses: false,
            revokes: Vec::new(),
            log: Vec::new(),
        }
    }

    fn current(&self, p: i32) -> Option<u64> {
        self.core.partitions.get(&tp(p)).map(|s| s.generation)
    }

    fn apply(&mut self, op: &Op) {
        let now = self.now;
        match *op {
            Op::Assign(p) => {
                if self.core.partitions.contains_key(&tp(p)) {
                    return; // the group never assigns a partition twice without a revoke
                }
                let committed = self.next_offset.get(&p).copied();
                self.core.on_assigned(vec![(tp(p), committed)], now);
            }
            Op::Revoke(p, lost) => {
                // The group revokes an owned partition once (not again while it drains).
                if self
                    .core
                    .partitions
                    .get(&tp(p))
                    .is_some_and(|s| !s.phase.is_draining())
                {
                    self.revoke(vec![tp(p)], lost);
                }
            }
            Op::Message(p, m) => {
                let offset = *self.next_offset.entry(p).or_insert(0);
                self.message(p, offset, m);
                self.next_offset.insert(p, offset + 1);
            }
            Op::Rewind(p, m) => {
                let next = self.next_offset.get(&p).copied().unwrap_or(0);
                if next < 2 {
                    return;
                }
                let offset = next / 2;
                if self.message(p, offset, m) {
                    self.next_offset.insert(p, offset + 1);
                }
            }
            Op::Answer(n, a) => {
                if self.tasks.is_empty() {
                    return;
                }
                let task = self.tasks.remove(n % self.tasks.len());
                self.answer(task, a);
            }
            Op::Duplicate(n) => {
                if let Some(task) = self.answered.get(n % self.answered.len().max(1)).copied() {
                    let before = self.core.tasks.len();
                    self.core.on_ack(ack(task, AckResult::Delivered), now);
                    assert_eq!(
                        self.core.tasks.len(),
                        before,
                        "a duplicate ack changed the tasks"
                    );
                }
            }
            Op::Commit(n, ok) => {
                if self.commits.is_empty() {
                    return;
                }
                let (seq, _) = self.commits.remove(n % self.commits.len());
                let result = if ok { Ok(()) } else { Err("refused".into()) };
                self.core.on_commit_done(seq, result, Duration::ZERO, now);
            }
            Op::Tick(ms, open) => {
                self.now += Duration::from_millis(u64::from(ms));
                self.core.on_tick(self.now, open);
            }
            Op::Positions => {
                let at = self.next_offset.iter().map(|(p, o)| (tp(*p), *o)).collect();
                self.core.on_positions(at);
            }
            Op::RefusePauses => self.refuse_pauses = !self.refuse_pauses,
            Op::RequestLimit(n) => self.core.set_request_limit(n),
            Op::Denied => {
                let refusal = Refusal::Group {
                    detail: "GROUP_AUTHORIZATION_FAILED".into(),
                };
                self.core.on_access_denied(refusal, now);
            }
            Op::Shutdown => self.core.begin_shutdown(now),
        }
    }

    /// Hands the core a message; true when it takes it (owned, active, not shutting down).
    fn revoke(&mut self, tps: Vec<Tp>, lost: bool) {
        let id = self.revokes.len() as u64;
        self.revokes.push((0, 0));
        self.core.on_revoked(tps, lost, id, self.now);
    }

    fn message(&mut self, p: i32, offset: i64, m: Maps) -> bool {
        let accepted = self
            .core
            .partitions
            .get(&tp(p))
            .is_some_and(|s| !s.phase.is_draining())
            && !self.core.is_shutting_down();
        let lane = match m {
            Maps::Deliver(key) => key.map(u64::from),
            _ => None,
        };
        let taken = Taken {
            tp: tp(p),
            offset,
            timestamp_ms: Some(0),
            bytes: 10 + offset as u64 % 7,
            lane,
            msg: (),
        };
        self.core.on_message(taken, |_| processed(m), self.now);
        if let (true, Some(g)) = (accepted, self.current(p)) {
            self.taken.entry((p, g)).or_default().insert(offset);
            let dropped = self.core.config.delivery.on_permanent_failure
                == crate::config::FailurePolicy::Drop;
            if matches!(m, Maps::Filtered) || (matches!(m, Maps::Rejected) && dropped) {
                self.finished.entry((p, g)).or_default().insert(offset);
            }
        }
        accepted
    }

    fn answer(&mut self, task: TaskId, a: Answer) {
        let Some(work) = self.core.tasks.get(&task) else {
            panic!("task {task} is running but the core does not know it");
        };
        let (p, g, offset, is_dlq, is_probe) = (
            work.tp.partition,
            work.generation,
            work.offset,
            work.why.is_some() && !work.request && !work.probe,
            work.probe,
        );
        // Answers fit the task: HTTP answers for deliveries and probes, DLQ answers for writes.
        let result = match (is_dlq, a) {
            (true, Answer::Written | Answer::Delivered) => AckResult::DeadLettered,
            (true, Answer::DlqDenied) => AckResult::DlqFailed(DlqFailure::Denied(denied())),
            (true, Answer::DlqUnwritable) => {
                AckResult::DlqFailed(DlqFailure::Unwritable(Unwritable::TopicMissing {
                    topic: "dlq".into(),
                    code: RDKafkaErrorCode::UnknownTopicOrPartition,
                }))
            }
            (true, _) => AckResult::DlqFailed(DlqFailure::Transient("broker down".into())),
            (false, Answer::Delivered | Answer::Written) => AckResult::Delivered,
            (false, Answer::Undeliverable | Answer::DlqDenied | Answer::DlqUnwritable) => {
                AckResult::Undeliverable(reason())
            }
            (false, Answer::Fatal) => AckResult::Fatal {
                status: 401,
                detail: "bad key".into(),
            },
            (false, Answer::RetryAfter(ms)) if !is_probe => AckResult::RetryAfter {
                delay: Duration::from_millis(u64::from(ms)),
            },
            (false, Answer::Inconclusive | Answer::RetryAfter(_)) => AckResult::ProbeInconclusive,
            (false, Answer::Cancelled | Answer::DlqTransient) => AckResult::Cancelled,
        };
        let current = self.current(p) == Some(g);
        let finishes = current
            && match &result {
                AckResult::Delivered | AckResult::DeadLettered => true,
                // The failure policy decides: drop finishes at once.
                AckResult::Undeliverable(_) => {
                    self.core.config.delivery.on_permanent_failure
                        == crate::config::FailurePolicy::Drop
                }
                _ => false,
            };
        self.core.on_ack(ack(task, result), self.now);
        self.answered.push(task);
        // (The ack may end a drain, so the partition may be gone now: it finished all the same.)
        if finishes {
            self.finished.entry((p, g)).or_default().insert(offset);
        }
    }

    /// Carries out the effects: records tasks and commits, checks every committed offset.
    fn effects(&mut self) {
        let effects: Vec<Effect<()>> = self.core.take_effects().collect();
        let started = effects.iter().any(|e| matches!(e, Effect::Deliver { .. }));
        for e in &effects {
            if let Effect::Deliver { task, tp, .. } = e {
                // Bounded replays: while commits are refused, a delivery starts only within
                // `bound` offsets of the last confirmed commit (at most `bound` for a new owner
                // to deliver again); while they work, only while the contiguous finished
                // messages are within it.
                let Some(p) = self.core.partitions.get(tp) else {
                    continue;
                };
                let offset = self.core.tasks[task].offset;
                let bound = self.core.config.delivery.max_uncommitted_per_partition as i64;
                if self.core.commits_failing {
                    let base = p.tracker.replay_base().unwrap_or(offset);
                    assert!(
                        offset - base < bound,
                        "{tp} offset {offset} started while commits fail, {} past the last commit (bound {bound})",
                        offset - base
                    );
                } else {
                    // (+1: a probe's answer may finish one more after the starts it released.)
                    assert!(
                        p.tracker.uncommitted() <= bound + 1,
                        "{tp} offset {offset} started with {} uncommitted (bound {bound})",
                        p.tracker.uncommitted()
                    );
                }
            }
        }
        if started {
            // Starting a delivery never takes the requests past the limits (a limit lowered
            // while more run is only waited out).
            assert!(
                self.core.requests <= self.core.request_limit,
                "requests {} over the limit {}",
                self.core.requests,
                self.core.request_limit
            );
            let per_partition = self.core.config.delivery.max_in_flight_per_partition;
            for (t, p) in &self.core.partitions {
                assert!(
                    p.requests <= per_partition,
                    "{t}: {} requests over {per_partition}",
                    p.requests
                );
            }
        }
        for e in effects {
            match e {
                Effect::Deliver { task, .. }
                | Effect::Probe { task, .. }
                | Effect::WriteDlq { task, .. } => {
                    let w = &self.core.tasks[&task];
                    let key = (w.tp.partition, w.generation);
                    assert!(
                        !self
                            .finished
                            .get(&key)
                            .is_some_and(|f| f.contains(&w.offset)),
                        "{} offset {} started again after it finished",
                        w.tp,
                        w.offset
                    );
                    self.tasks.push(task);
                }
                Effect::Commit { seq, offsets } => {
                    self.check_offsets(&offsets, "periodic commit");
                    self.commits.push((seq, offsets));
                }
                Effect::AnswerRevoke { revoke, answer } => {
                    let Some(answers) = usize::try_from(revoke)
                        .ok()
                        .and_then(|i| self.revokes.get_mut(i))
                    else {
                        panic!("an answer to revoke {revoke}, which never happened");
                    };
                    match answer {
                        RevokeAnswer::Progress(o) => {
                            answers.0 += 1;
                            assert!(
                                answers.1 == 0,
                                "revoke {revoke}: progress after its final answer"
                            );
                            self.check_offsets(&o, "revoke progress");
                        }
                        RevokeAnswer::Final(o) => {
                            answers.1 += 1;
                            self.check_offsets(&o, "revoke final");
                        }
                    }
                    let answers = self.revokes[revoke as usize];
                    assert!(
                        answers.0 <= 1 && answers.1 <= 1,
                        "revoke {revoke} answered {answers:?} (progress, final) times"
                    );
                }
                Effect::Opened(_) | Effect::Closed(_) => {}
            }
        }
        if let Some((pause, resume)) = self.core.pause_changes() {
            if self.refuse_pauses {
                self.core.pauses_dirty = true; // the shell logs and the next change retries
            } else {
                self.core.paused(pause);
                self.core.resumed(&resume);
            }
        }
        for (tp, p) in &self.core.partitions {
            self.generation.insert(tp.partition, p.generation);
        }
    }
}
fn ack(task: TaskId, result: AckResult) -> Ack {
    Ack {
        task,
        tally: None,
        result,
    }
}

fn processed(m: Maps) -> Processed<WireEvent> {
    match m {
        Maps::Deliver(_) => Processed::Deliver(WireEvent {
            event_type: EventType::ItemPageView,
            body: b"{}".to_vec(),
        }),
        Maps::Filtered => Processed::Filtered { reason: "skip" },
        Maps::Rejected => Processed::Reject {
            class: RejectClass::Validation,
            reason: "missing_field".into(),
            detail: "no user id".into(),
            schema_id: None,
        },
    }
}

fn reason() -> DlqReason {
    DlqReason {
        class: "permanent".into(),
        reason: "http_400".into(),
        http_status: Some(400),
        response_snippet: None,
        schema_id: None,
    }
}

fn denied() -> AccessDenied {
    AccessDenied::explain(
        Refusal::Write {
            code: RDKafkaErrorCode::TopicAuthorizationFailed,
            detail: "TOPIC_AUTHORIZATION_FAILED".into(),
        },
        Names {
            group: "g",
            topic_candidates: &[],
            dlq_topic: "dlq",
            principal: None,
        },
    )
}

fn run(policy: &str, ops: &[Op]) {
    run_then(policy, ops, Model::finish);
}

fn run_then(policy: &str, ops: &[Op], end: fn(&mut Model)) {
    let mut m = Model::new(policy);
    let trace = std::env::var_os("MODEL_TRACE").is_some();
    for op in ops {
        m.log.push(format!("{op:?}"));
        m.apply(op);
        m.effects();
        if trace {
            let budgets: Vec<String> = m
                .core
                .partitions
                .iter()
                .map(|(t, p)| format!("{t}:{:?}/{}", p.phase, p.budget.messages()))
                .collect();
            let tasks: Vec<String> = m
                .core
                .tasks
                .iter()
                .map(|(id, w)| format!("{id}:{}@{}g{}", w.tp, w.offset, w.generation))
                .collect();
            eprintln!(
                "{op:?} -> {budgets:?} tasks {tasks:?} hold {:?}",
                m.core.dlq_hold.as_ref().map(|h| h
                    .iter()
                    .map(|w| format!("{}@{}g{}", w.tp, w.offset, w.generation))
                    .collect::<Vec<_>>())
            );
        }
        m.check_accounting();
    }
    end(&mut m);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_core_keeps_its_contracts_with_dead_letters(ops in prop::collection::vec(op(), 1..120)) {
        run("dlq", &ops);
    }

    #[test]
    fn the_core_keeps_its_contracts_when_failures_are_dropped(ops in prop::collection::vec(op(), 1..120)) {
        run("drop", &ops);
    }

    #[test]
    fn the_core_keeps_its_contracts_when_failures_halt(ops in prop::collection::vec(op(), 1..120)) {
        run("halt", &ops);
    }

    #[test]
    fn a_shutdown_at_the_drain_deadline_commits_nothing_unfinished(ops in prop::collection::vec(op(), 1..120)) {
        run_then("dlq", &ops, Model::finish_abruptly);
    }

    #[test]
    fn the_core_keeps_its_contracts_through_a_shutdown(
        ops in prop::collection::vec(op(), 1..80),
        after in prop::collection::vec(op(), 0..40),
    ) {
        let mut all = ops;
        all.push(Op::Shutdown);
        all.extend(after);
        run("dlq", &all);
    }
}
