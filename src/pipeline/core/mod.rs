//! The delivery core: every decision that can lose or duplicate data, as plain data.
//!
//! [`Core`] owns the partitions (their offset trackers, lanes and budgets), the ready queue,
//! parked retries, halts and holds, revoke drains and the commit planner. It takes inputs —
//! a message taken, an assignment, a revoke, a task's [`Ack`], a commit's result, a tick — with
//! the time passed in, and answers with [`Effect`]s: start this delivery, write that dead letter,
//! commit these offsets, answer that revoke. It spawns nothing and imports no tokio, rdkafka or
//! hyper: the coordinator ([`super::coordinator`]) is the thin async shell that carries inputs
//! in and effects out, and the model test (`model_tests`) drives this same type with random
//! sequences and checks the contracts after every step. Metrics and health flags are in-memory
//! counters and are updated here directly.
//!
//! The concerns live in one file each, as `impl Core` blocks: taking messages (here),
//! [`acks`] (a task's answer and the failure policy), [`flow`] (the ready queue, parked retries,
//! pause/resume and the intake gate), [`halts`] (configuration errors, `on_failure: halt`, held
//! dead letters, refused Kafka rights), [`rebalance`] (assign, revoke, drains, rewinds,
//! shutdown) and [`commits`] (what to commit and when commits stall intake). Budgets change only
//! through the [`ledger`]; a partition's life is a [`partition::Phase`].

mod acks;
mod commits;
mod flow;
mod halts;
mod ledger;
mod partition;
mod rebalance;

#[cfg(test)]
mod model_tests;

use super::commit_ledger::CommitLedger;
use super::dlq_hold::DlqHold;
use super::offset_tracker::TrackError;
use super::parked::Parked;
use super::work::{TaskId, Work};
use crate::config::Config;
use crate::delivery::sender::Tally;
use crate::kafka::consumer::{RevokeAnswer, Tp};
use crate::kafka::dlq::DlqReason;
use crate::kafka::retention::{Gap, Gaps};
use crate::mapping::{MappingPlan, Processed, WireEvent};
use crate::mcm::validate::now_ms;
use crate::observe::health::Health;
use crate::observe::metrics::{Metrics, Totals};
use bytes::Bytes;
use ledger::Ledger;
use partition::Partition;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use halts::FatalHalt;
pub use rebalance::RevokeId;

/// What the core asks the shell to do. Effects are executed in the order given.
#[derive(Debug)]
pub enum Effect<M> {
    /// A partition starts under a new generation: its tasks get a new cancellation token (the
    /// old generation's tasks, after a rewind, keep theirs and finish as stale).
    Opened(Tp),
    /// A partition is gone (revoked, lost): cancel its tasks.
    Closed(Tp),
    /// Start one delivery attempt of `body`; answer with an [`Ack`] for `task`.
    Deliver {
        task: TaskId,
        tp: Tp,
        body: Bytes,
        tally: Tally,
    },
    /// Send `body` once, bypassing retries and the breaker, to learn whether a configuration
    /// error was fixed; answer with an [`Ack`] for `task`.
    Probe { task: TaskId, body: Bytes },
    /// Write `msg` to the DLQ after `delay`; answer with an [`Ack`] for `task`.
    WriteDlq {
        task: TaskId,
        msg: M,
        why: DlqReason,
        delay: Duration,
    },
    /// Commit these offsets (next offset to read); answer with [`Core::on_commit_done`].
    Commit { seq: u64, offsets: Vec<(Tp, i64)> },
    /// Answer the revoke `revoke` (the poll thread waits for its final answer).
    AnswerRevoke {
        revoke: RevokeId,
        answer: RevokeAnswer,
    },
}

/// A message taken from Kafka, as the core needs it.
#[derive(Debug)]
pub struct Taken<M> {
    pub tp: Tp,
    pub offset: i64,
    /// The record's timestamp (ms), when it has one.
    pub timestamp_ms: Option<i64>,
    /// Key + value bytes, counted against the budgets.
    pub bytes: u64,
    /// Its ordering lane (see [`super::lanes::lane_of`]).
    pub lane: Option<super::lanes::LaneId>,
    pub msg: M,
}

/// What the core is built from: configuration and the in-memory observers.
pub struct CoreDeps {
    pub config: Arc<Config>,
    pub plan: Arc<MappingPlan>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Where skipped offsets go to be checked against the log start (loss past retention).
    pub gaps: Arc<Gaps>,
}

/// Messages that may be taken from Kafka per request slot: requests in flight are bounded by
/// `max_in_flight`; messages *taken* may be twice that, so a request slot that frees up finds
/// mapped work ready instead of waiting for a fetch.
pub(crate) const TAKEN_PER_REQUEST_SLOT: usize = 2;

/// Messages that may wait out a retry backoff per request slot. They hold no request slot and
/// have a budget of their own (this many × `max_in_flight` messages, and `max_in_flight_bytes`),
/// so sporadic failures neither starve new work nor grow memory without bound: a 5 s backoff at
/// 10k events/s and a 2 % error rate parks ~1,000 messages; when this budget is full, intake
/// stops as it does for a full in-flight budget.
pub(crate) const PARKED_PER_REQUEST_SLOT: usize = 8;

/// See the module docs.
pub struct Core<M> {
    config: Arc<Config>,
    plan: Arc<MappingPlan>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    gaps: Arc<Gaps>,
    /// The time of the input being handled.
    now: Instant,
    /// Requests that may be in flight now (the adaptive limit, or `mcm.max_in_flight`).
    request_limit: usize,
    partitions: HashMap<Tp, Partition<M>>,
    next_generation: u64,
    /// Every budget: in flight (global and per partition) and parked retries.
    ledger: Ledger,
    /// Mapped messages waiting for a request slot, oldest first.
    ready: VecDeque<Work<M>>,
    /// Messages waiting out a retry backoff, request slot released (see [`Parked`]).
    parked: Parked<Work<M>>,
    /// HTTP deliveries in flight (bounded by `request_limit`).
    requests: usize,
    /// Work whose task (delivery, probe, DLQ write) is running, by task id. An entry leaves
    /// only when its task's ack arrives, so an id is never reused while its task lives.
    tasks: HashMap<TaskId, Work<M>>,
    next_task: TaskId,
    paused: HashSet<Tp>,
    pauses_dirty: bool,
    drains: Vec<rebalance::DrainJob>,
    /// `on_failure: halt` hit: stop until an operator restarts the bridge.
    halted: Option<String>,
    halted_work: Vec<Work<M>>,
    fatal: Option<FatalHalt<M>>,
    /// Dead letters Kafka refused to take, until a probe gets through.
    dlq_hold: Option<DlqHold<Work<M>>>,
    /// Kafka refused the login or a consuming right: the run ends with exit code 3.
    access_denied: bool,
    circuit_open: bool,
    /// The partitions whose messages the shell holds until their schema is fetched
    /// (`pipeline::schema_wait`): they pause meanwhile.
    schema_wait: HashSet<Tp>,
    shutdown_deadline: Option<Instant>,
    next_commit: Instant,
    commits: CommitLedger,
    /// No commit confirmed for too long while work waits: nothing new starts.
    commits_stalled: bool,
    /// The last commit was refused or hung (and none confirmed since): the replay bound then
    /// counts every message finished since the last confirmed commit, not only the contiguous
    /// ones (see `flow::dispatch_ready`).
    commits_failing: bool,
    last_commit_warning: Option<Instant>,
    next_lag_sample: Instant,
    /// Messages finished since the last commit: a commit also happens every `max_in_flight` of
    /// them, so a crash re-delivers at most about one in-flight window.
    finished_since_commit: usize,
    effects: Vec<Effect<M>>,
}

impl<M: Clone> Core<M> {
    /// New mapping rules from a live reload (same subscriptions, see `pipeline::reload`): the
    /// per-topic failure policies of messages not yet judged follow them.
    pub fn replace_plan(&mut self, plan: Arc<MappingPlan>) {
        self.plan = plan;
    }

    pub fn new(deps: CoreDeps, now: Instant) -> Core<M> {
        let CoreDeps {
            config,
            plan,
            metrics,
            health,
            gaps,
        } = deps;
        let ledger = Ledger::new(&config);
        let commits = CommitLedger::new(now, config.kafka.commit_interval);
        Core {
            request_limit: config.mcm.max_in_flight,
            next_commit: now + config.kafka.commit_interval,
            config,
            plan,
            metrics,
            health,
            gaps,
            now,
            partitions: HashMap::new(),
            next_generation: 1,
            ledger,
            ready: VecDeque::new(),
            parked: Parked::default(),
            requests: 0,
            tasks: HashMap::new(),
            next_task: 1,
            paused: HashSet::new(),
            pauses_dirty: false,
            drains: Vec::new(),
            halted: None,
            halted_work: Vec::new(),
            fatal: None,
            dlq_hold: None,
            access_denied: false,
            circuit_open: false,
            schema_wait: HashSet::new(),
            shutdown_deadline: None,
            commits,
            commits_stalled: false,
            commits_failing: false,
            last_commit_warning: None,
            next_lag_sample: now,
            finished_since_commit: 0,
            effects: Vec::new(),
        }
    }

    /// The effects of the inputs so far, in order; the shell executes them.
    pub fn take_effects(&mut self) -> std::vec::Drain<'_, Effect<M>> {
        self.effects.drain(..)
    }

    /// Requests that may be in flight from now on (the adaptive concurrency limit).
    pub fn set_request_limit(&mut self, limit: usize) {
        self.request_limit = limit;
    }

    /// Kafka refused the login or a consuming right: the run ends with exit code 3.
    pub fn access_denied(&self) -> bool {
        self.access_denied
    }

    /// Takes one message: tracks its offset, counts it against the budgets, maps it with `map`
    /// (only when it is tracked) and starts, finishes or dead-letters it.
    pub fn on_message(
        &mut self,
        taken: Taken<M>,
        map: impl FnOnce(&M) -> Processed<WireEvent>,
        now: Instant,
    ) {
        self.now = now;
        if self.shutdown_deadline.is_some() {
            // Shutting down: never tracked, so never committed; the next owner reads it again.
            return;
        }
        let tp = taken.tp;
        let Some(p) = self.partitions.get_mut(&tp) else {
            tracing::warn!(partition = %tp, offset = taken.offset, "message for a partition we do not own; ignored");
            return;
        };
        if p.phase.is_draining() {
            return;
        }
        // The record timestamp dates the message for consumer_lag_seconds; without one (old
        // producers), the time we took it is the best we know.
        let ts = taken.timestamp_ms.unwrap_or_else(now_ms);
        match p.tracker.insert(taken.offset, ts) {
            Ok(()) => {}
            Err(TrackError::OutOfOrder { offset, last_seen }) => {
                let Some(p) = self.rebase_partition(&tp, offset, last_seen) else {
                    return;
                };
                if p.tracker.insert(offset, ts).is_err() {
                    return; // unreachable: a fresh tracker takes any offset ≥ 0
                }
            }
            Err(e) => {
                tracing::warn!(partition = %tp, error = %e, "untrackable offset; message ignored");
                return;
            }
        }
        let Some(p) = self.partitions.get_mut(&tp) else {
            return;
        };
        let skipped = p.continuity.observe(taken.offset);
        let mut work = Work::new(taken.msg, tp, p.generation, taken.offset, taken.bytes);
        p.consumed_metric.inc();
        let flow = self.ledger.take(&mut p.budget, work.bytes, now);
        self.pauses_dirty |= flow;
        if let Some((from, to)) = skipped {
            // Harmless (markers, compaction) unless the log start has passed it: the lag
            // sampler decides, off this task.
            self.gaps.record(Gap {
                tp: work.tp.clone(),
                from,
                to,
            });
        }
        Totals::inc(&self.metrics.totals.consumed);
        self.update_in_flight_gauges();

        match map(&work.msg) {
            Processed::Deliver(event) => {
                work.event_type = Some(event.event_type);
                work.body = Some(Bytes::from(event.body));
                work.lane = taken.lane;
                let Some(p) = self.partitions.get_mut(&work.tp) else {
                    return;
                };
                if let Some(ready) = p.lanes.admit(work.lane, work) {
                    self.queue_delivery(ready);
                }
            }
            Processed::Filtered { reason } => {
                self.metrics
                    .messages_filtered
                    .with_label_values(&[&work.tp.topic, reason])
                    .inc();
                Totals::inc(&self.metrics.totals.filtered);
                self.finish(work);
            }
            Processed::Reject {
                class,
                reason,
                detail,
                schema_id,
            } => {
                self.metrics
                    .delivery_failures
                    .with_label_values(&[&work.tp.topic, class.as_str()])
                    .inc();
                tracing::debug!(partition = %work.tp, offset = work.offset, %reason, %detail, "message rejected before delivery");
                let why = crate::pipeline::process::dlq_reason(class, reason, detail, schema_id);
                self.undeliverable(work, why);
            }
        }
    }

    /// Registers `work` as the task `Effect` about to be emitted and returns its id.
    fn start_task(&mut self, work: Work<M>) -> TaskId {
        let id = self.next_task;
        self.next_task += 1;
        self.tasks.insert(id, work);
        id
    }
}
