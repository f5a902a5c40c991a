//! The coordinator: one task that owns all partition state and makes every decision.
//!
//! It receives messages and rebalance events from the poll thread (in consumption order) and
//! acknowledgements from delivery / DLQ tasks, and it alone touches offset trackers, lanes and
//! budgets — so there are no locks around the data that decides what gets committed. Acks are
//! served before new messages (`biased` select, Vector PR #20467) so finished work frees budget
//! before more is taken. Every partition assignment gets a fresh generation; an ack carrying an
//! older generation is counted and dropped (contract 2), and messages for partitions we do not own
//! are never tracked, so a non-owner can never commit.

use super::budget::{Budget, Flow};
use super::commit_ledger::{CommitEntry, CommitLedger};
use super::deliver::Deliverer;
use super::dlq_hold::DlqHold;
use super::lanes::{lane_of, Lanes};
use super::offset_tracker::{OffsetTracker, TrackError};
use super::parked::Parked;
use super::shutdown::{ending, final_offsets, CommitOutcome, Ending, PartitionEnd};
use super::work::{Ack, AckResult, Work};
use crate::config::{Config, FailurePolicy};
use crate::kafka::access::{AccessDenied, Names, Refusal};
use crate::kafka::consumer::{
    commit_sync, tpl_of, tpl_of_tps, BridgeContext, IntakeGate, PollEvent, RevokeAnswer,
    RevokeReply, Tp,
};
use crate::kafka::dlq::{DlqError, DlqProducer, DlqReason, Unwritable};
use crate::kafka::retention::{Continuity, Gap, Gaps};
use crate::mapping::{MappingPlan, Processed, SourceMessage, WireEvent};
use crate::mcm::validate::{now_ms, ValidateOptions};
use crate::observe::health::{Health, Heartbeat, Loop};
use crate::observe::metrics::{Metrics, Totals};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// State of one assigned partition.
struct PartitionState {
    generation: u64,
    tracker: OffsetTracker,
    /// The offset the next message should have; a message above it skipped offsets.
    continuity: Continuity,
    lanes: Lanes<Work>,
    budget: Budget,
    /// Spawned delivery / DLQ tasks not yet acknowledged.
    in_flight: usize,
    /// HTTP deliveries of this partition in flight (bounded by `max_in_flight_per_partition`).
    requests: usize,
    /// Cancels this partition's tasks when it is revoked.
    cancel: CancellationToken,
    revoking: bool,
    /// This partition's metric handles, looked up once per assignment instead of per message
    /// (a label hash per event, and a formatted partition number for the progress gauge).
    consumed_metric: prometheus::IntCounter,
    progress_metric: prometheus::IntGauge,
}

/// The result of a periodic commit, from its blocking thread.
struct CommitDone {
    /// The ledger's number for this commit.
    seq: u64,
    result: Result<(), String>,
    elapsed: Duration,
}

/// How often a commit that keeps being refused is logged.
const COMMIT_WARNING_EVERY: Duration = Duration::from_secs(10);

struct DrainJob {
    partitions: Vec<Tp>,
    deadline: Instant,
    reply: RevokeReply,
}

/// Messages that may be taken from Kafka per request slot (see [`Coordinator::new`]).
const TAKEN_PER_REQUEST_SLOT: usize = 2;

/// Messages that may wait out a retry backoff per request slot. They hold no request slot and
/// have a budget of their own (this many × `max_in_flight` messages, and `max_in_flight_bytes`),
/// so sporadic failures neither starve new work nor grow memory without bound: a 5 s backoff at
/// 10k events/s and a 2 % error rate parks ~1,000 messages; when this budget is full, intake
/// stops as it does for a full in-flight budget.
const PARKED_PER_REQUEST_SLOT: usize = 8;

/// How long a full global budget only closes the intake gate before it becomes a librdkafka
/// pause. Short enough that a rebalance waits at most this long for `poll()`; long enough that a
/// healthy pipeline, whose budget frees within milliseconds, never pays a pause (see
/// [`IntakeGate`]).
const GATE_BEFORE_PAUSE: Duration = Duration::from_secs(2);

/// Why dead letters are held rather than retried (see `Coordinator::hold_dead_letter`).
#[derive(Clone, Copy)]
enum HoldCause<'a> {
    /// Kafka refused the write: a missing WRITE right.
    Denied(&'a AccessDenied),
    /// Kafka cannot take it until the cluster changes: a missing topic, a record too large.
    Unwritable(&'a Unwritable),
}

/// The wait before retrying a dead letter after `attempts` transient failures: 1 s doubling to
/// 30 s (the retry loop before waited 1 s every time, for ever).
fn dlq_retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(5);
    Duration::from_secs(1u64 << doublings).min(DLQ_RETRY_MAX)
}

/// The longest wait between retries of a dead letter whose write failed transiently.
const DLQ_RETRY_MAX: Duration = Duration::from_secs(30);

/// The longest interval between probes of held dead letters: an operator who granted the DLQ
/// right waits at most this long (Moloco's 15 min cap is about its API, not about Kafka).
const DLQ_PROBE_MAX: Duration = Duration::from_secs(5 * 60);

/// Delivery halted by a configuration error (401/403/404): messages wait here until a probe
/// succeeds (e.g. after the key was rotated).
struct FatalHalt {
    parked: Vec<Work>,
    next_probe: Instant,
    backoff: Duration,
    probing: bool,
    last_log: Instant,
}

/// Everything the coordinator needs from outside.
pub struct Deps {
    pub config: Arc<Config>,
    pub plan: Arc<MappingPlan>,
    pub deliverer: Arc<Deliverer>,
    pub dlq: DlqProducer,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Where skipped offsets go to be checked against the log start (loss past retention).
    pub gaps: Arc<Gaps>,
}

pub struct Coordinator {
    deps: Deps,
    consumer: Arc<BaseConsumer<BridgeContext>>,
    partitions: HashMap<Tp, PartitionState>,
    next_generation: u64,
    /// Messages taken from Kafka and not finished. When full, the intake gate closes; after
    /// [`GATE_BEFORE_PAUSE`] every partition is paused instead.
    global: Budget,
    gate: IntakeGate,
    /// When the global budget became full (`None` while it has room).
    global_full_since: Option<Instant>,
    /// The global budget has been full for longer than [`GATE_BEFORE_PAUSE`]: pause.
    global_pause: bool,
    /// Mapped messages waiting for a request slot, oldest first.
    ready: VecDeque<Work>,
    /// Messages waiting out a retry backoff, request slot released (see [`Parked`]). They count
    /// in `parked_budget`, not in `global` or their partition's budget.
    parked: Parked<Work>,
    parked_budget: Budget,
    /// HTTP deliveries in flight (bounded by `mcm.max_in_flight`).
    requests: usize,
    paused: HashSet<Tp>,
    pauses_dirty: bool,
    ack_tx: mpsc::Sender<Ack>,
    ack_rx: mpsc::Receiver<Ack>,
    drains: Vec<DrainJob>,
    /// `on_failure: halt` hit: stop until an operator restarts the bridge.
    halted: Option<String>,
    halted_work: Vec<Work>,
    fatal: Option<FatalHalt>,
    /// Dead letters Kafka refused to take (no WRITE on the DLQ topic), until a probe gets through.
    dlq_hold: Option<DlqHold<(Work, DlqReason)>>,
    /// Kafka refused the login or a consuming right: the run ends with [`Exit::AccessDenied`].
    access_denied: bool,
    circuit_open: bool,
    shutdown_deadline: Option<Instant>,
    next_commit: Instant,
    /// The periodic commit in flight and when commits last worked (bounded replays).
    commits: CommitLedger,
    commit_tx: mpsc::Sender<CommitDone>,
    commit_rx: mpsc::Receiver<CommitDone>,
    /// No commit confirmed for too long while work waits: every partition stops taking messages.
    commits_stalled: bool,
    /// When the last failed-commit warning was logged (one line per 10 s, not one per tick).
    last_commit_warning: Option<Instant>,
    next_lag_sample: Instant,
    /// Messages finished since the last commit: a commit also happens every `max_in_flight` of
    /// them, so a crash re-delivers at most about one in-flight window, not a commit interval's
    /// worth of traffic.
    finished_since_commit: usize,
    /// Beaten on every turn of [`Coordinator::run`]: `/healthz` notices a wedged coordinator.
    heartbeat: Heartbeat,
}

/// What the pipeline run ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Shutdown requested; everything finished was committed (or nothing needed it).
    Shutdown,
    /// The poll thread went away (consumer closed).
    ConsumerGone,
    /// Kafka refused the login or a right needed to consume; the bridge stopped after committing
    /// what had finished (see `Coordinator::on_access_denied`).
    AccessDenied,
    /// Stopped, but the final commit did not land within `delivery.final_commit_timeout`: the
    /// next owner reads `messages` again (see [`super::shutdown`]).
    FinalCommitFailed { partitions: usize, messages: u64 },
}

impl Coordinator {
    pub fn new(
        deps: Deps,
        consumer: Arc<BaseConsumer<BridgeContext>>,
        gate: IntakeGate,
    ) -> Coordinator {
        let d = &deps.config.delivery;
        // Requests in flight are bounded by max_in_flight; messages *taken* may be twice that, so
        // a request slot that frees up finds mapped work ready instead of waiting for a fetch.
        let global = Budget::new(
            deps.config
                .mcm
                .max_in_flight
                .saturating_mul(TAKEN_PER_REQUEST_SLOT),
            d.max_in_flight_bytes,
        );
        // Acks are bounded by the in-flight budget (plus overshoot and probes): the channel never
        // grows without bound, and a full channel only delays a finished task briefly.
        let (ack_tx, ack_rx) =
            mpsc::channel(deps.config.mcm.max_in_flight.saturating_mul(2).max(64));
        let parked_budget = Budget::new(
            deps.config
                .mcm
                .max_in_flight
                .saturating_mul(PARKED_PER_REQUEST_SLOT),
            d.max_in_flight_bytes,
        );
        let next_commit = Instant::now() + deps.config.kafka.commit_interval;
        let commits = CommitLedger::new(Instant::now(), deps.config.kafka.commit_interval);
        let (commit_tx, commit_rx) = mpsc::channel(1);
        let heartbeat = deps.health.heartbeat(Loop::Coordinator);
        Coordinator {
            deps,
            consumer,
            partitions: HashMap::new(),
            next_generation: 1,
            global,
            gate,
            global_full_since: None,
            global_pause: false,
            ready: VecDeque::new(),
            parked: Parked::default(),
            parked_budget,
            requests: 0,
            paused: HashSet::new(),
            pauses_dirty: false,
            ack_tx,
            ack_rx,
            drains: Vec::new(),
            halted: None,
            halted_work: Vec::new(),
            fatal: None,
            dlq_hold: None,
            access_denied: false,
            circuit_open: false,
            shutdown_deadline: None,
            next_commit,
            commits,
            commit_tx,
            commit_rx,
            commits_stalled: false,
            last_commit_warning: None,
            next_lag_sample: Instant::now(),
            finished_since_commit: 0,
            heartbeat,
        }
    }

    /// Runs until `shutdown` fires (then drains, commits and returns) or the poll thread ends.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<PollEvent>,
        shutdown: CancellationToken,
    ) -> Exit {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let exit = loop {
            self.heartbeat.beat();
            let next_retry = self.parked.next_due();
            tokio::select! {
                biased;
                Some(ack) = self.ack_rx.recv() => self.on_ack(ack),
                Some(done) = self.commit_rx.recv() => self.on_commit_done(done),
                _ = sleep_until_or_never(next_retry), if next_retry.is_some() => self.unpark_due(),
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break Exit::ConsumerGone,
                },
                _ = tick.tick() => self.on_tick(),
                _ = shutdown.cancelled(), if self.shutdown_deadline.is_none() => self.begin_shutdown(),
            }
            if self.pauses_dirty {
                self.apply_pauses();
            }
            self.update_gate();
            if self.shutdown_deadline.is_some() && self.shutdown_complete() {
                break if self.access_denied {
                    Exit::AccessDenied
                } else {
                    Exit::Shutdown
                };
            }
        };
        match self.finish_shutdown().await {
            Ending::NotStored { redelivered } if exit != Exit::AccessDenied => {
                Exit::FinalCommitFailed {
                    partitions: redelivered.partitions,
                    messages: redelivered.messages,
                }
            }
            _ => exit,
        }
    }

    // ----- events from the poll thread -------------------------------------------------------

    fn on_event(&mut self, ev: PollEvent) {
        match ev {
            PollEvent::Message(msg) => self.on_message(msg),
            PollEvent::Assigned(tps) => self.on_assigned(tps),
            PollEvent::Revoked {
                partitions,
                lost,
                reply,
            } => self.on_revoked(partitions, lost, reply),
            PollEvent::Positions(at) => self.on_positions(at),
            PollEvent::Error(e) => {
                self.deps.health.set_broker_error(Some(e));
            }
            PollEvent::Denied(refusal) => self.on_access_denied(refusal),
        }
    }

    /// Positions reported by an idle poll thread: everything handed over below them has been
    /// taken already (same channel, in order), so the rest below them is markers or aborted
    /// records the watermark may pass. Not during a revoke or shutdown, whose final watermarks
    /// are already decided.
    fn on_positions(&mut self, at: Vec<(Tp, i64)>) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        for (tp, position) in at {
            if let Some(p) = self.partitions.get_mut(&tp) {
                if !p.revoking {
                    p.tracker.advance_to(position);
                }
            }
        }
    }

    fn on_assigned(&mut self, tps: Vec<(Tp, Option<i64>)>) {
        self.deps
            .metrics
            .rebalances
            .with_label_values(&["assign"])
            .inc();
        for (tp, committed) in tps {
            let mut fresh = self.fresh_partition(&tp);
            fresh.continuity = Continuity::starting_at(committed);
            self.partitions.insert(tp.clone(), fresh);
            // librdkafka keeps a partition's pause flag across revoke and re-assignment
            // (librdkafka #5113): a partition paused when it was revoked or lost (circuit open,
            // shutdown) comes back paused. Its state is unknown here, so count it as paused:
            // apply_pauses then resumes it unless it should stay paused. Assuming "not paused"
            // left re-assigned partitions silently paused forever (the tansu chaos run).
            self.paused.insert(tp.clone());
        }
        self.update_assignment_gauges();
        self.pauses_dirty = true;
    }

    /// State for a newly assigned (or rebased) partition, under the next generation.
    fn fresh_partition(&mut self, tp: &Tp) -> PartitionState {
        let generation = self.next_generation;
        self.next_generation += 1;
        let d = &self.deps.config.delivery;
        let m = &self.deps.metrics;
        let partition = tp.partition.to_string();
        let progress_metric = m
            .partition_last_progress
            .with_label_values(&[&*tp.topic, partition.as_str()]);
        // A partition that never finishes a message must still show up as stalled.
        progress_metric.set(now_ms() / 1000);
        PartitionState {
            generation,
            tracker: OffsetTracker::new(),
            continuity: Continuity::default(),
            lanes: Lanes::new(),
            budget: Budget::new(
                d.max_in_flight_per_partition
                    .saturating_mul(TAKEN_PER_REQUEST_SLOT),
                d.max_in_flight_bytes_per_partition,
            ),
            in_flight: 0,
            requests: 0,
            cancel: CancellationToken::new(),
            revoking: false,
            consumed_metric: m.messages_consumed.with_label_values(&[&*tp.topic]),
            progress_metric,
        }
    }

    fn on_revoked(&mut self, tps: Vec<Tp>, lost: bool, reply: RevokeReply) {
        self.deps
            .metrics
            .rebalances
            .with_label_values(&[if lost { "lost" } else { "revoke" }])
            .inc();
        self.drop_ready(|w| tps.contains(&w.tp));
        self.drop_parked(|w| tps.contains(&w.tp));
        for tp in &tps {
            if let Some(p) = self.partitions.get_mut(tp) {
                p.revoking = true;
                // Waiting messages were never started: forget them; the next owner re-reads them.
                let waiting = p.lanes.take_waiting();
                let (n, bytes) = (waiting.len(), waiting.iter().map(|w| w.bytes).sum());
                p.budget.remove_many(n, bytes);
                self.release_global(n, bytes);
            }
            self.paused.remove(tp);
        }
        if lost {
            // Someone else may own these already: commit nothing, drop everything now.
            for tp in &tps {
                self.drop_partition(tp);
            }
            let _ = reply.try_send(RevokeAnswer::Final(Vec::new()));
            self.update_assignment_gauges();
            return;
        }
        if !self.drained(&tps) {
            // Commit what has finished now, while the revoke's generation is still current; the
            // final commit after the drain may be refused (see RevokeAnswer::Progress).
            let _ = reply.try_send(RevokeAnswer::Progress(self.watermarks(&tps)));
        }
        let deadline = Instant::now() + self.deps.config.delivery.drain_timeout;
        self.drains.push(DrainJob {
            partitions: tps,
            deadline,
            reply,
        });
        self.check_drains();
    }

    /// True when none of `tps` has a request in flight.
    fn drained(&self, tps: &[Tp]) -> bool {
        tps.iter()
            .all(|tp| self.partitions.get(tp).is_none_or(|p| p.in_flight == 0))
    }

    /// The contiguous finished watermark (next offset to read) of each of `tps` that has one.
    fn watermarks(&self, tps: &[Tp]) -> Vec<(Tp, i64)> {
        tps.iter()
            .filter_map(|tp| {
                self.partitions
                    .get(tp)
                    .and_then(|p| p.tracker.watermark())
                    .map(|w| (tp.clone(), w))
            })
            .collect()
    }

    fn on_message(&mut self, msg: rdkafka::message::OwnedMessage) {
        if self.shutdown_deadline.is_some() {
            // Shutting down: never tracked, so never committed; the next owner reads it again.
            return;
        }
        let tp = Tp::new(msg.topic(), msg.partition());
        let Some(p) = self.partitions.get_mut(&tp) else {
            tracing::warn!(partition = %tp, offset = msg.offset(), "message for a partition we do not own; ignored");
            return;
        };
        if p.revoking {
            return;
        }
        // The record timestamp dates the message for consumer_lag_seconds; without one (old
        // producers), the time we took it is the best we know.
        let ts = msg.timestamp().to_millis().unwrap_or_else(now_ms);
        let p = match p.tracker.insert(msg.offset(), ts) {
            Ok(()) => p,
            Err(TrackError::OutOfOrder { offset, last_seen }) => {
                let Some(p) = self.rebase_partition(&tp, offset, last_seen) else {
                    return;
                };
                if p.tracker.insert(offset, ts).is_err() {
                    return; // unreachable: a fresh tracker takes any offset ≥ 0
                }
                p
            }
            Err(e) => {
                tracing::warn!(partition = %tp, error = %e, "untrackable offset; message ignored");
                return;
            }
        };
        let skipped = p.continuity.observe(msg.offset());
        let mut work = Work::new(msg, tp.clone(), p.generation);
        p.consumed_metric.inc();
        if p.budget.add(work.bytes) == Flow::Pause {
            self.pauses_dirty = true;
        }
        if self.global.add(work.bytes) == Flow::Pause {
            self.refresh_global_full();
        }
        if let Some((from, to)) = skipped {
            // Harmless (markers, compaction) unless the log start has passed it: the lag
            // sampler decides, off this task.
            self.deps.gaps.record(Gap {
                tp: tp.clone(),
                from,
                to,
            });
        }
        Totals::inc(&self.deps.metrics.totals.consumed);
        self.update_in_flight_gauges();

        let processed = self.map(&work);
        match processed {
            Processed::Deliver(event) => {
                work.event_type = Some(event.event_type);
                work.body = Some(bytes::Bytes::from(event.body));
                work.lane = lane_of(self.deps.config.delivery.ordering, work.msg.key());
                let lane = work.lane;
                let Some(p) = self.partitions.get_mut(&tp) else {
                    return;
                };
                if let Some(ready) = p.lanes.admit(lane, work) {
                    self.spawn_delivery(ready);
                }
            }
            Processed::Filtered { reason } => {
                self.deps
                    .metrics
                    .messages_filtered
                    .with_label_values(&[&tp.topic, reason])
                    .inc();
                Totals::inc(&self.deps.metrics.totals.filtered);
                self.finish(work);
            }
            Processed::Reject {
                class,
                reason,
                detail,
            } => {
                self.deps
                    .metrics
                    .delivery_failures
                    .with_label_values(&[&tp.topic, class.as_str()])
                    .inc();
                tracing::debug!(partition = %tp, offset = work.offset, %reason, %detail, "message rejected before delivery");
                let why = DlqReason {
                    class: class.as_str().to_string(),
                    reason,
                    http_status: None,
                    response_snippet: Some(detail),
                };
                self.undeliverable(work, why);
            }
        }
    }

    fn map(&self, work: &Work) -> Processed<WireEvent> {
        let msg = &work.msg;
        let headers: Vec<(&str, Option<&[u8]>)> = msg
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default();
        let source = SourceMessage {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            key: msg.key(),
            headers: &headers,
            timestamp_ms: msg.timestamp().to_millis(),
            payload: msg.payload(),
        };
        let mcm = &self.deps.config.mcm;
        let opts = ValidateOptions {
            strict: mcm.strict_validation,
            now_ms: now_ms(),
            future_tolerance_ms: i64::try_from(mcm.future_tolerance.as_millis())
                .unwrap_or(i64::MAX),
        };
        match self.deps.plan.route(msg.topic()) {
            Some(mapping) => mapping.process_wire(&source, &opts),
            None => Processed::Reject {
                class: crate::mapping::RejectClass::NoMatch,
                reason: "no_mapping_for_topic".into(),
                detail: format!("no topics block matches topic {:?}", msg.topic()),
            },
        }
    }

    // ----- spawning work -----------------------------------------------------------------------

    /// Queues a mapped message for delivery and starts what the request bounds allow.
    fn spawn_delivery(&mut self, work: Work) {
        self.ready.push_back(work);
        self.dispatch_ready();
    }

    /// Starts deliveries from the ready queue, oldest first, while `mcm.max_in_flight` and the
    /// partition's `max_in_flight_per_partition` allow.
    fn dispatch_ready(&mut self) {
        if self.commits_stalled {
            return; // bounded replays: nothing starts until a commit is confirmed
        }
        let max = self.deps.deliverer.concurrency_limit();
        let per_partition = self.deps.config.delivery.max_in_flight_per_partition;
        let bound = self.deps.config.delivery.max_uncommitted_per_partition;
        let mut i = 0;
        while self.requests < max && i < self.ready.len() {
            // A partition over its replay bound starts nothing more until a commit confirms:
            // what it delivers now, a new owner would deliver again.
            let startable = self.partitions.get(&self.ready[i].tp).is_some_and(|p| {
                p.requests < per_partition
                    && usize::try_from(p.tracker.uncommitted()).is_ok_and(|u| u <= bound)
            });
            if !startable {
                i += 1;
                continue;
            }
            if let Some(work) = self.ready.remove(i) {
                self.start_delivery(work);
            }
        }
    }

    /// Removes ready (not yet started) work matching `pred`, releasing its budget: it was never
    /// sent, is not committed, and will be read again by whoever owns the partition next.
    fn drop_ready(&mut self, pred: impl Fn(&Work) -> bool) {
        let (dropped, kept): (Vec<Work>, Vec<Work>) = self.ready.drain(..).partition(|w| pred(w));
        self.ready = kept.into();
        for w in dropped {
            if let Some(p) = self.partitions.get_mut(&w.tp) {
                p.budget.remove(w.bytes);
            }
            self.release_global(1, w.bytes);
        }
    }

    /// A message whose attempt failed retryably waits out its backoff here, its request slot
    /// already released, counted in the parked budget instead of the in-flight ones.
    fn park(&mut self, work: Work, delay: Duration) {
        if let Some(p) = self.partitions.get_mut(&work.tp) {
            if p.budget.remove(work.bytes) == Flow::Resume {
                self.pauses_dirty = true;
            }
        }
        let _ = self.global.remove(work.bytes);
        let _ = self.parked_budget.add(work.bytes);
        self.refresh_global_full();
        self.parked.park(Instant::now() + delay, work);
        self.update_in_flight_gauges();
    }

    /// Moves the parked messages whose backoff has passed to the front of the ready queue (they
    /// are older than anything there) and starts what the request bounds allow.
    fn unpark_due(&mut self) {
        let due = self.parked.take_due(Instant::now());
        if due.is_empty() {
            return;
        }
        // Reversed so that pushing each to the front keeps the earliest due first.
        for work in due.into_iter().rev() {
            let _ = self.parked_budget.remove(work.bytes);
            let Some(p) = self
                .partitions
                .get_mut(&work.tp)
                .filter(|p| p.generation == work.generation && !p.revoking)
            else {
                continue; // revoked or rebased meanwhile; its state is gone already
            };
            if p.budget.add(work.bytes) == Flow::Pause {
                self.pauses_dirty = true;
            }
            let _ = self.global.add(work.bytes);
            self.ready.push_front(work);
        }
        self.refresh_global_full();
        self.update_in_flight_gauges();
        self.dispatch_ready();
    }

    /// Drops parked messages matching `pred` (their partition was revoked, lost or rebased, or the
    /// bridge is shutting down): unfinished, so never committed, and read again by whoever owns
    /// the partition next.
    fn drop_parked(&mut self, pred: impl Fn(&Work) -> bool) {
        let dropped = self.parked.take_where(pred);
        if dropped.is_empty() {
            return;
        }
        for w in &dropped {
            let _ = self.parked_budget.remove(w.bytes);
        }
        self.refresh_global_full();
        self.update_in_flight_gauges();
    }

    /// Releases an unfinished message that will not be attempted again here (revoke or
    /// shutdown in progress): it is not committed, so it is read again later.
    fn forget(&mut self, work: Work) {
        if let Some(p) = self.partitions.get_mut(&work.tp) {
            if p.budget.remove(work.bytes) == Flow::Resume {
                self.pauses_dirty = true;
            }
        }
        self.release_global(1, work.bytes);
    }

    fn start_delivery(&mut self, mut work: Work) {
        let Some(p) = self.partitions.get_mut(&work.tp) else {
            return;
        };
        p.in_flight += 1;
        p.requests += 1;
        self.requests += 1;
        work.request = true;
        let cancel = p.cancel.clone();
        let deliverer = self.deps.deliverer.clone();
        let tx = self.ack_tx.clone();
        tokio::spawn(async move {
            let body = work.body.clone().unwrap_or_default();
            let result = deliverer.attempt(&body, &mut work.tally, &cancel).await;
            let _ = tx.send(Ack { work, result }).await;
        });
    }

    fn spawn_dlq(&mut self, work: Work, why: DlqReason, delay: Duration) {
        let Some(p) = self.partitions.get_mut(&work.tp) else {
            return;
        };
        p.in_flight += 1;
        let dlq = self.deps.dlq.clone();
        let tx = self.ack_tx.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let result = match dlq.send(&work.msg, &why).await {
                Ok(()) => AckResult::DeadLettered {
                    reason: why.reason.clone(),
                },
                Err(e) => AckResult::DlqFailed { why, error: e },
            };
            let _ = tx.send(Ack { work, result }).await;
        });
    }

    // ----- acknowledgements --------------------------------------------------------------------

    fn on_ack(&mut self, ack: Ack) {
        let Ack { work, result } = ack;
        if work.probe {
            self.on_probe_ack(work, result);
            return;
        }
        let current = self
            .partitions
            .get_mut(&work.tp)
            .filter(|p| p.generation == work.generation);
        let Some(p) = current else {
            // The partition was revoked, lost or rebased while this task ran. Its request slot
            // is freed only now that the request really ended, so max_in_flight still holds.
            if work.request {
                self.requests = self.requests.saturating_sub(1);
                self.dispatch_ready();
            }
            if let Some(h) = self.dlq_hold.as_mut().filter(|_| work.dlq_probe) {
                h.probe_lost(Instant::now());
            }
            self.deps.metrics.stale_acks.inc();
            return;
        };
        p.in_flight = p.in_flight.saturating_sub(1);
        let mut work = work;
        if work.request {
            work.request = false;
            p.requests = p.requests.saturating_sub(1);
            self.requests = self.requests.saturating_sub(1);
        }
        let topic = work.tp.topic.clone();
        match result {
            AckResult::Delivered => {
                let et = work.event_type.map_or("UNKNOWN", |t| t.as_str());
                self.deps
                    .metrics
                    .events_delivered
                    .with_label_values(&[&topic, et])
                    .inc();
                Totals::inc(&self.deps.metrics.totals.delivered);
                self.finish(work);
            }
            AckResult::Undeliverable(why) => {
                self.deps
                    .metrics
                    .delivery_failures
                    .with_label_values(&[&*topic, why.class.as_str()])
                    .inc();
                self.undeliverable(work, why);
            }
            AckResult::Fatal { status, detail } => {
                self.deps
                    .metrics
                    .delivery_failures
                    .with_label_values(&[&topic, "fatal"])
                    .inc();
                self.enter_fatal(work, status, &detail);
            }
            AckResult::RetryAfter { delay } => {
                if p.revoking || self.shutdown_deadline.is_some() {
                    // Not finished, so never committed: the next owner (or the next start) reads
                    // it again. Parking it would only hold up the drain.
                    self.forget(work);
                } else {
                    self.park(work, delay);
                }
            }
            AckResult::Cancelled | AckResult::ProbeInconclusive => {}
            AckResult::DeadLettered { reason } => {
                self.deps
                    .metrics
                    .messages_dead_lettered
                    .with_label_values(&[&*topic, reason.as_str()])
                    .inc();
                Totals::inc(&self.deps.metrics.totals.dead_lettered);
                let probe = work.dlq_probe;
                self.finish(work);
                if probe {
                    self.release_dead_letters(true);
                }
            }
            AckResult::DlqFailed { why, error } => {
                self.deps.metrics.dlq_write_failures.inc();
                let go_on = !p.revoking && self.shutdown_deadline.is_none();
                match error {
                    DlqError::Denied(denied) if go_on => {
                        self.hold_dead_letter(work, why, HoldCause::Denied(&denied))
                    }
                    DlqError::Unwritable(unwritable) if go_on => {
                        self.hold_dead_letter(work, why, HoldCause::Unwritable(&unwritable))
                    }
                    DlqError::Kafka(error)
                        if go_on && work.dlq_probe && self.dlq_hold.is_some() =>
                    {
                        tracing::warn!(%error, "DLQ probe failed; probing again later (offsets held)");
                        if let Some(h) = &mut self.dlq_hold {
                            work.dlq_probe = false;
                            h.probe_inconclusive(Instant::now(), (work, why));
                        }
                    }
                    DlqError::Kafka(error) if go_on => {
                        // Transient (broker down, timeouts): back off 1, 2, 4 … 30 s, so that an
                        // outage costs one warning per dead letter per backoff, not per second.
                        work.dlq_attempts = work.dlq_attempts.saturating_add(1);
                        let delay = dlq_retry_delay(work.dlq_attempts);
                        tracing::warn!(partition = %work.tp, offset = work.offset, attempt = work.dlq_attempts, retry_in = ?delay, %error, "DLQ write failed; retrying (offset held)");
                        self.spawn_dlq(work, why, delay);
                    }
                    // Revoked or shutting down: unfinished, so never committed; read again later.
                    _ if work.dlq_probe => {
                        if let Some(h) = &mut self.dlq_hold {
                            h.probe_lost(Instant::now());
                        }
                    }
                    _ => {}
                }
            }
        }
        self.dispatch_ready();
        self.check_drains();
    }

    /// A message that will not be delivered: apply the topic's failure policy.
    fn undeliverable(&mut self, work: Work, why: DlqReason) {
        let policy = self
            .deps
            .plan
            .route(&work.tp.topic)
            .and_then(|m| m.on_failure())
            .unwrap_or(self.deps.config.delivery.on_permanent_failure);
        match policy {
            FailurePolicy::Dlq if self.dlq_hold.is_some() => {
                if let Some(h) = &mut self.dlq_hold {
                    h.hold((work, why));
                }
                self.update_hold_gauge();
                self.pauses_dirty = true;
            }
            FailurePolicy::Dlq => self.spawn_dlq(work, why, Duration::ZERO),
            FailurePolicy::Drop => {
                self.deps
                    .metrics
                    .messages_dropped
                    .with_label_values(&[&*work.tp.topic, why.reason.as_str()])
                    .inc();
                Totals::inc(&self.deps.metrics.totals.dropped);
                self.finish(work);
            }
            FailurePolicy::Halt => {
                let msg = format!(
                    "{} offset {}: {} ({}) and the topic's policy is halt",
                    work.tp, work.offset, why.reason, why.class
                );
                tracing::error!(reason = %msg, "delivery halted; fix the cause and restart the bridge");
                if self.halted.is_none() {
                    self.halted = Some(msg.clone());
                    self.deps.health.set_halted(Some(msg));
                    self.deps.metrics.halted.set(1);
                }
                self.halted_work.push(work);
                self.pauses_dirty = true;
            }
        }
    }

    /// Marks a message finished: its offset may now be committed.
    fn finish(&mut self, work: Work) {
        let Some(p) = self.partitions.get_mut(&work.tp) else {
            return;
        };
        p.tracker.complete(work.offset);
        self.finished_since_commit += 1;
        if p.budget.remove(work.bytes) == Flow::Resume {
            self.pauses_dirty = true;
        }
        let next = if p.revoking || self.shutdown_deadline.is_some() {
            None
        } else {
            p.lanes.finish(work.lane)
        };
        p.progress_metric.set(now_ms() / 1000);
        self.release_global(1, work.bytes);
        if let Some(next) = next {
            self.spawn_delivery(next);
        }
        // Commit early when a partition is halfway to its replay bound, so that a healthy burst
        // never reaches it; past the bound its deliveries wait until a commit confirms.
        let bound = self.deps.config.delivery.max_uncommitted_per_partition;
        let uncommitted = self
            .partitions
            .get(&work.tp)
            .map_or(0, |p| usize::try_from(p.tracker.uncommitted()).unwrap_or(0));
        if (self.finished_since_commit >= self.deps.config.mcm.max_in_flight
            || uncommitted >= bound / 2)
            && self.shutdown_deadline.is_none()
        {
            self.start_commit();
        }
    }

    fn release_global(&mut self, n: usize, bytes: u64) {
        let flow = if n == 1 {
            self.global.remove(bytes)
        } else {
            self.global.remove_many(n, bytes)
        };
        if flow == Flow::Resume {
            self.refresh_global_full();
        }
        self.update_in_flight_gauges();
    }

    /// Intake stops while the in-flight budget or the parked-retry budget is full: first by the
    /// gate, after [`GATE_BEFORE_PAUSE`] by a real pause.
    fn refresh_global_full(&mut self) {
        let full = self.global.is_paused() || self.parked_budget.is_paused();
        match (full, self.global_full_since) {
            (true, None) => self.global_full_since = Some(Instant::now()),
            (false, Some(_)) => {
                self.global_full_since = None;
                self.global_pause = false;
                // Resumes what the global pause held, and pauses partitions still over their own
                // budget (the gate no longer holds them).
                self.pauses_dirty = true;
            }
            _ => {}
        }
    }

    // ----- configuration errors (401/403/404) ----------------------------------------------------

    fn enter_fatal(&mut self, work: Work, status: u16, detail: &str) {
        let now = Instant::now();
        match &mut self.fatal {
            Some(f) => f.parked.push(work),
            None => {
                tracing::error!(
                    status,
                    detail,
                    "MCM rejected our configuration (API key, platform id or URL); delivery halted, offsets kept, probing"
                );
                let backoff = self.deps.config.mcm.circuit_breaker.probe_interval;
                self.fatal = Some(FatalHalt {
                    parked: vec![work],
                    next_probe: now + backoff,
                    backoff,
                    probing: false,
                    last_log: now,
                });
                self.deps
                    .health
                    .set_config_error(Some(format!("MCM answered {status}: {detail}")));
                self.deps.metrics.halted.set(1);
                self.pauses_dirty = true;
            }
        }
    }

    fn probe_fatal(&mut self) {
        let Some(f) = &mut self.fatal else { return };
        if f.probing || Instant::now() < f.next_probe {
            return;
        }
        // Drop parked work whose partition was revoked meanwhile.
        let partitions = &self.partitions;
        f.parked.retain(|w| {
            partitions
                .get(&w.tp)
                .is_some_and(|p| p.generation == w.generation)
        });
        let Some(mut work) = f.parked.pop() else {
            // Nothing left to probe with (all revoked): resume and let new messages probe.
            self.exit_fatal();
            return;
        };
        f.probing = true;
        work.probe = true;
        let deliverer = self.deps.deliverer.clone();
        let (tx, gen) = (self.ack_tx.clone(), work.generation);
        if let Some(p) = self.partitions.get_mut(&work.tp) {
            if p.generation == gen {
                p.in_flight += 1;
            }
        }
        tokio::spawn(async move {
            let body = work.body.clone().unwrap_or_default();
            let result = deliverer.probe(body).await;
            let _ = tx.send(Ack { work, result }).await;
        });
    }

    /// The answer to a probe sent while halted by a configuration error.
    fn on_probe_ack(&mut self, mut work: Work, result: AckResult) {
        work.probe = false;
        let owned = self
            .partitions
            .get_mut(&work.tp)
            .filter(|p| p.generation == work.generation);
        match owned {
            Some(p) => p.in_flight = p.in_flight.saturating_sub(1),
            None => self.deps.metrics.stale_acks.inc(),
        }
        let Some(f) = &mut self.fatal else { return };
        f.probing = false;
        match result {
            AckResult::Fatal { status, .. } => {
                f.backoff = (f.backoff * 2).min(crate::config::MAX_PROBE_INTERVAL);
                f.next_probe = Instant::now() + f.backoff;
                tracing::error!(status, next_probe_in = ?f.backoff, "probe still rejected: check mcm.api_key / platform_id / base_url");
                f.parked.push(work);
            }
            AckResult::ProbeInconclusive | AckResult::Cancelled => {
                f.next_probe = Instant::now() + f.backoff;
                f.parked.push(work);
            }
            other => {
                // Any answer past authentication (2xx, or a 400 about the data) means the
                // configuration works again: handle this message normally and resume.
                let ack = Ack {
                    work,
                    result: other,
                };
                self.exit_fatal();
                if let Some(p) = self.partitions.get_mut(&ack.work.tp) {
                    if p.generation == ack.work.generation {
                        p.in_flight += 1; // on_ack decrements it again
                    }
                }
                self.on_ack(ack);
            }
        }
    }

    fn exit_fatal(&mut self) {
        let Some(f) = self.fatal.take() else { return };
        tracing::info!(
            parked = f.parked.len(),
            "MCM accepts our requests again; delivery resumed"
        );
        self.deps.health.set_config_error(None);
        if self.halted.is_none() && self.dlq_hold.is_none() {
            self.deps.metrics.halted.set(0);
        }
        for w in f.parked {
            let owned = self
                .partitions
                .get(&w.tp)
                .is_some_and(|p| p.generation == w.generation && !p.revoking);
            if owned {
                self.spawn_delivery(w);
            }
        }
        self.pauses_dirty = true;
    }

    // ----- Kafka refusals (login, ACLs) ---------------------------------------------------------

    /// Kafka refused the login or a right needed to consume (READ on the group or a topic).
    ///
    /// Decision: **stop** — drain, commit what finished, exit non-zero ([`Exit::AccessDenied`],
    /// exit code 3) — at start-up and later alike, after one error that names the right, the
    /// resource and the grant. Why not wait and retry, as for a broker outage: nothing the bridge
    /// does fixes it, and librdkafka's own retries only repeat the refusal (every reconnect for a
    /// login, every heartbeat under KIP-848) or go silent with partitions assigned and never
    /// fetched (a topic without READ), which looks healthy while lag grows. Exiting makes it as
    /// visible as a configuration error (a crash-looping pod, a failed unit) while the
    /// supervisor's restarts, with their backoff, are the retry: once the right is granted the
    /// next start works. Nothing is lost: unfinished messages are not committed. Refused DLQ
    /// writes are different (the bridge can keep its place and wait): see
    /// [`Coordinator::hold_dead_letter`].
    fn on_access_denied(&mut self, refusal: Refusal) {
        if matches!(refusal, Refusal::Write { .. }) {
            // Not a consuming right (the DLQ producer reports its own refusals).
            self.deps
                .health
                .set_broker_error(Some(format!("{refusal:?}")));
            return;
        }
        if self.access_denied {
            tracing::debug!(?refusal, "Kafka refused again (already stopping)");
            return;
        }
        self.access_denied = true;
        let candidates = self.topic_candidates();
        let k = &self.deps.config.kafka;
        let principal = k.security.principal();
        let denied = AccessDenied::explain(
            refusal,
            Names {
                group: &k.group_id,
                topic_candidates: &candidates,
                dlq_topic: &self.deps.config.delivery.dlq_topic,
                principal: principal.as_deref(),
            },
        );
        tracing::error!(
            error = %denied,
            "stopping: the bridge cannot consume without this (exit code 3); fix it and start the bridge again"
        );
        self.count_denied(&denied);
        self.deps.health.set_kafka_denied(Some(denied.to_string()));
        if self.shutdown_deadline.is_none() {
            self.begin_shutdown();
        }
    }

    /// Topics a refusal naming none may be about: the assigned topics nothing was read from yet
    /// (a topic read from is readable), else the subscribed topic names.
    fn topic_candidates(&self) -> Vec<String> {
        let read: HashSet<&str> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.tracker.watermark().is_some())
            .map(|(tp, _)| &*tp.topic)
            .collect();
        let unread: BTreeSet<String> = self
            .partitions
            .keys()
            .map(|tp| &*tp.topic)
            .filter(|t| !read.contains(t))
            .map(str::to_string)
            .collect();
        if !unread.is_empty() {
            return unread.into_iter().collect();
        }
        let mut subscribed = self.deps.plan.subscriptions();
        subscribed.retain(|t| !t.starts_with('^'));
        subscribed
    }

    fn count_denied(&self, denied: &AccessDenied) {
        self.deps
            .metrics
            .kafka_access_denied
            .with_label_values(&[denied.right.label(), denied.resource.label()])
            .inc();
    }

    /// Kafka refused a dead letter (no WRITE on the DLQ topic), or cannot take it as the
    /// cluster is configured (the topic is missing, the record too large: [`Unwritable`]).
    ///
    /// Decision: **hold** the dead letters instead of stopping or retrying each — the bridge can
    /// keep its place: a held message is unfinished, so its partition's watermark stays below it
    /// and nothing past it is committed; the partitions holding one are paused, the others keep
    /// delivering; new dead letters join the hold without an attempt. One error, the
    /// `kafka_access_denied_total` count, `halted` = 1 and not ready; then a probe after
    /// `mcm.circuit_breaker.probe_interval`, doubling up to 5 minutes, like the 401/403 halt,
    /// because the right may be granted at any time (see [`super::dlq_hold`]).
    fn hold_dead_letter(&mut self, mut work: Work, why: DlqReason, cause: HoldCause<'_>) {
        let now = Instant::now();
        let was_probe = std::mem::take(&mut work.dlq_probe);
        match &mut self.dlq_hold {
            Some(h) if was_probe => {
                h.probe_refused(now, (work, why));
                tracing::error!(
                    held = h.len(),
                    next_probe_in = ?h.backoff(),
                    "the DLQ topic still refuses writes; dead letters stay held (offsets not committed)"
                );
            }
            Some(h) => h.hold((work, why)),
            None => {
                let what = match cause {
                    HoldCause::Denied(denied) => {
                        self.count_denied(denied);
                        denied.to_string()
                    }
                    HoldCause::Unwritable(unwritable) => unwritable.to_string(),
                };
                tracing::error!(
                    error = %what,
                    "holding dead letters: their partitions are paused and their offsets not committed until Kafka takes them; probing"
                );
                self.deps.health.set_kafka_denied(Some(what));
                self.deps.metrics.halted.set(1);
                let first = self.deps.config.mcm.circuit_breaker.probe_interval;
                let mut h = DlqHold::new(now, first, DLQ_PROBE_MAX);
                h.hold((work, why));
                self.dlq_hold = Some(h);
            }
        }
        self.update_hold_gauge();
        self.pauses_dirty = true;
    }

    /// Sends the next probe of held dead letters when it is due; ends a hold left empty by
    /// revokes.
    fn probe_dlq_hold(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        let partitions = &self.partitions;
        let Some(h) = &mut self.dlq_hold else { return };
        h.retain(|(w, _)| {
            partitions
                .get(&w.tp)
                .is_some_and(|p| p.generation == w.generation && !p.revoking)
        });
        if h.is_empty() && !h.is_probing() {
            self.release_dead_letters(false);
            return;
        }
        let Some((mut work, why)) = h.take_probe(Instant::now()) else {
            self.update_hold_gauge();
            return;
        };
        work.dlq_probe = true;
        self.update_hold_gauge();
        self.spawn_dlq(work, why, Duration::ZERO);
    }

    /// Ends the hold: a probe `got_through` (write every held dead letter), or nothing is held
    /// any more (their partitions were revoked; the next dead letter tries the DLQ topic again).
    fn release_dead_letters(&mut self, got_through: bool) {
        let Some(h) = self.dlq_hold.take() else {
            return;
        };
        let held = h.release();
        if got_through {
            tracing::info!(
                more = held.len(),
                "Kafka takes dead letters again (the probe was written); writing the other held ones and resuming their partitions"
            );
        } else {
            tracing::info!("no dead letters held any more (their partitions were revoked); the next one tries the DLQ topic again");
        }
        self.deps.health.set_kafka_denied(None);
        if self.halted.is_none() && self.fatal.is_none() {
            self.deps.metrics.halted.set(0);
        }
        for (w, why) in held {
            let owned = self
                .partitions
                .get(&w.tp)
                .is_some_and(|p| p.generation == w.generation && !p.revoking);
            if owned {
                self.spawn_dlq(w, why, Duration::ZERO);
            }
        }
        self.update_hold_gauge();
        self.pauses_dirty = true;
    }

    fn holds_dead_letters(&self, tp: &Tp) -> bool {
        self.dlq_hold
            .as_ref()
            .is_some_and(|h| h.any(|(w, _)| &w.tp == tp))
    }

    fn update_hold_gauge(&self) {
        let held = self.dlq_hold.as_ref().map_or(0, DlqHold::len);
        self.deps
            .metrics
            .dead_letters_held
            .set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    // ----- periodic work -------------------------------------------------------------------------

    fn on_tick(&mut self) {
        let now = Instant::now();
        if self.circuit_open {
            // Whether the open circuit pauses depends on requests in flight (should_pause).
            self.pauses_dirty = true;
        }
        if !self.global_pause
            && self
                .global_full_since
                .is_some_and(|t| now.duration_since(t) >= GATE_BEFORE_PAUSE)
        {
            // Deliveries are stalled, not just busy: pause for real so poll() runs again.
            self.global_pause = true;
            self.pauses_dirty = true;
        }
        let open = self.deps.deliverer.circuit_is_open();
        if open != self.circuit_open {
            self.circuit_open = open;
            self.deps.health.set_circuit_open(open);
            self.pauses_dirty = true;
            if open {
                tracing::warn!("circuit open: MCM keeps failing; consumption paused (Kafka buffers the events)");
            } else {
                tracing::info!("circuit closed: consumption resumed");
            }
        }
        self.deps
            .metrics
            .circuit_state
            .set(self.deps.deliverer.circuit_metric());
        if let Some(f) = &mut self.fatal {
            if f.probing {
                // handled on the probe's ack
            } else if now.duration_since(f.last_log) > Duration::from_secs(30) {
                f.last_log = now;
                tracing::error!(
                    parked = f.parked.len(),
                    "delivery still halted by an MCM configuration error"
                );
            }
        }
        self.unpark_due();
        self.probe_fatal();
        self.probe_dlq_hold();
        self.check_drains();
        if now >= self.next_lag_sample {
            self.next_lag_sample = now + Duration::from_secs(1);
            self.sample_lag_seconds();
        }
        if now >= self.next_commit && self.shutdown_deadline.is_none() {
            self.next_commit = now + self.deps.config.kafka.commit_interval;
            self.start_commit();
        }
        self.check_commit_stall(now);
    }

    /// `consumer_lag_seconds`: the age of each partition's oldest unfinished message (0 when
    /// nothing is unfinished). Sampled once a second, off the per-message path.
    fn sample_lag_seconds(&self) {
        let now = now_ms();
        for (tp, p) in &self.partitions {
            if p.revoking {
                continue;
            }
            let age = p
                .tracker
                .oldest_pending()
                .map_or(0, |(_, ts)| (now - ts).max(0) / 1000);
            self.deps
                .metrics
                .consumer_lag_seconds
                .with_label_values(&[&*tp.topic, tp.partition.to_string().as_str()])
                .set(age);
        }
    }

    /// Starts a commit of every partition's watermark that moved past its last confirmed commit,
    /// unless one is in flight (its result arrives as a [`CommitDone`]). Synchronous, on a
    /// blocking thread: librdkafka reports a manual async commit's result to nobody here (see
    /// [`super::commit_ledger`]), and a refused commit must not count as stored.
    fn start_commit(&mut self) {
        self.finished_since_commit = 0;
        if !self.commits.idle() {
            return;
        }
        let entries: Vec<CommitEntry> = self
            .partitions
            .iter()
            .filter(|(_, p)| !p.revoking)
            .filter_map(|(tp, p)| {
                p.tracker.commit_candidate().map(|offset| CommitEntry {
                    tp: tp.clone(),
                    generation: p.generation,
                    offset,
                })
            })
            .collect();
        let now = Instant::now();
        if entries.is_empty() {
            self.commits.nothing_to_commit(now);
            return;
        }
        let offsets: Vec<(Tp, i64)> = entries.iter().map(|e| (e.tp.clone(), e.offset)).collect();
        let Some(tpl) = tpl_of(&offsets) else { return };
        let seq = self.commits.start(entries, now);
        let consumer = self.consumer.clone();
        let done = self.commit_tx.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = match consumer.commit(&tpl, CommitMode::Sync) {
                Ok(())
                | Err(rdkafka::error::KafkaError::ConsumerCommit(
                    rdkafka::types::RDKafkaErrorCode::NoOffset,
                )) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            let _ = done.blocking_send(CommitDone {
                seq,
                result,
                elapsed: started.elapsed(),
            });
        });
    }

    /// A periodic commit's result: confirmed offsets become the partitions' committed
    /// watermarks (for the generation they were taken under); a refusal leaves them candidates
    /// for the next commit, counted and logged.
    fn on_commit_done(&mut self, done: CommitDone) {
        let now = Instant::now();
        let m = &self.deps.metrics;
        m.commit_latency.observe(done.elapsed.as_secs_f64());
        match done.result {
            Ok(()) => {
                m.commits.with_label_values(&["ok"]).inc();
                Totals::inc(&m.totals.committed_commits);
                if let Some(confirmed) = self.commits.finish(done.seq, true, now) {
                    for e in confirmed.entries {
                        if let Some(p) = self.partitions.get_mut(&e.tp) {
                            if p.generation == e.generation {
                                p.tracker.mark_committed(e.offset);
                            }
                        }
                    }
                }
                self.last_commit_warning = None;
            }
            Err(error) => {
                m.commits.with_label_values(&["error"]).inc();
                self.commits.finish(done.seq, false, now);
                if self
                    .last_commit_warning
                    .is_none_or(|t| now.duration_since(t) >= COMMIT_WARNING_EVERY)
                {
                    self.last_commit_warning = Some(now);
                    tracing::warn!(%error, "offset commit refused; retrying (finished messages stay uncommitted, intake stops if this lasts)");
                }
            }
        }
        // A confirmed commit can take partitions back under their replay bound (dispatch below)
        // and end a stall. Pauses are re-evaluated too, as they were before the replay bound
        // stopped pausing: this regular re-check keeps the circuit-open recovery test green.
        self.pauses_dirty = true;
        self.check_commit_stall(now);
        self.dispatch_ready();
    }

    /// Stops (or resumes) intake when commits have (or again have) not been confirmed for
    /// longer than the ledger's bound while finished work waits.
    fn check_commit_stall(&mut self, now: Instant) {
        if self.commits.give_up_hung(now) {
            self.deps
                .metrics
                .commits
                .with_label_values(&["error"])
                .inc();
            tracing::warn!("an offset commit has hung for 5 s (broker unreachable?); trying again");
        }
        let mut uncommitted = 0i64;
        for p in self.partitions.values().filter(|p| !p.revoking) {
            uncommitted += p.tracker.uncommitted();
        }
        if uncommitted == 0 {
            self.commits.nothing_to_commit(now);
        }
        self.deps.metrics.uncommitted_messages.set(uncommitted);
        let stalled = self.commits.stalled(now, uncommitted > 0);
        if stalled != self.commits_stalled {
            self.commits_stalled = stalled;
            self.pauses_dirty = true;
            self.deps.metrics.commits_stalled.set(i64::from(stalled));
            if stalled {
                tracing::warn!(
                    uncommitted,
                    after = ?self.commits.stall_after(),
                    "no offset commit confirmed: intake stopped until one is, so that a new owner replays little"
                );
            } else {
                tracing::info!("offset commits confirmed again: intake resumes");
                self.dispatch_ready();
            }
        }
    }

    // ----- revoke drains and shutdown ------------------------------------------------------------

    fn check_drains(&mut self) {
        if self.drains.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < self.drains.len() {
            let job = &self.drains[i];
            let idle = self.drained(&job.partitions);
            if !(idle || now >= job.deadline) {
                i += 1;
                continue;
            }
            let job = self.drains.swap_remove(i);
            if !idle {
                tracing::warn!("drain deadline reached; unfinished messages will be re-delivered by the next owner");
            }
            let offsets = self.watermarks(&job.partitions);
            for tp in &job.partitions {
                self.drop_partition(tp);
            }
            self.update_assignment_gauges();
            // The poll thread commits these synchronously before giving the partitions away.
            let _ = job.reply.try_send(RevokeAnswer::Final(offsets));
        }
    }

    /// Offsets went backwards within one assignment: librdkafka reset its position
    /// (`auto.offset.reset` after OFFSET_OUT_OF_RANGE) because the broker lost or replaced the
    /// log — an unclean leader election, a re-created topic, a broker restarted without its data.
    /// Refusing the lower offsets would wedge the partition: nothing new is tracked until the
    /// offsets pass the old high-water mark, so new messages are skipped and never committed.
    /// Instead the partition starts over under a new generation, exactly like a fresh assignment:
    /// requests already in flight still complete (their acks are stale and only free their request
    /// slots), consumed messages not yet started are dropped (on the same log they are read again;
    /// on a lost log the broker no longer has them), and from here the watermark follows the new
    /// offsets. Returns the new state.
    fn rebase_partition(
        &mut self,
        tp: &Tp,
        offset: i64,
        last_seen: i64,
    ) -> Option<&mut PartitionState> {
        let old_generation = self.partitions.get(tp)?.generation;
        self.drop_ready(|w| &w.tp == tp && w.generation == old_generation);
        self.drop_parked(|w| &w.tp == tp && w.generation == old_generation);
        self.halted_work.retain(|w| &w.tp != tp);
        let fresh = self.fresh_partition(tp);
        let old = self.partitions.insert(tp.clone(), fresh)?;
        // drop_ready released the ready items already; the rest of the old budget (in flight
        // and lane waiters) is released here. Old in-flight tasks keep running, uncounted.
        let waiting = old.budget.messages();
        self.release_global(waiting, old.budget.bytes());
        self.deps
            .metrics
            .partition_rewinds
            .with_label_values(&[&*tp.topic, tp.partition.to_string().as_str()])
            .inc();
        tracing::error!(
            partition = %tp,
            offset,
            last_seen,
            in_flight = old.in_flight,
            "offsets went backwards: the broker lost or replaced this partition's log; tracking starts over at the new offsets"
        );
        self.pauses_dirty = true;
        self.partitions.get_mut(tp)
    }

    fn drop_partition(&mut self, tp: &Tp) {
        self.drop_parked(|w| &w.tp == tp);
        if let Some(p) = self.partitions.remove(tp) {
            p.cancel.cancel();
            self.release_global(p.budget.messages(), p.budget.bytes());
            let part = tp.partition.to_string();
            for g in [
                &self.deps.metrics.consumer_lag_messages,
                &self.deps.metrics.consumer_lag_seconds,
                &self.deps.metrics.partition_last_progress,
            ] {
                let _ = g.remove_label_values(&[&*tp.topic, part.as_str()]);
            }
        }
        self.paused.remove(tp);
        self.halted_work.retain(|w| &w.tp != tp);
        if let Some(h) = &mut self.dlq_hold {
            h.retain(|(w, _)| &w.tp != tp);
        }
    }

    fn begin_shutdown(&mut self) {
        tracing::info!("shutdown requested: pausing consumption and draining in-flight deliveries");
        self.shutdown_deadline = Some(Instant::now() + self.deps.config.delivery.drain_timeout);
        self.drop_ready(|_| true);
        self.drop_parked(|_| true);
        let mut released = (0usize, 0u64);
        for p in self.partitions.values_mut() {
            let waiting = p.lanes.take_waiting();
            released.0 += waiting.len();
            released.1 += waiting.iter().map(|w| w.bytes).sum::<u64>();
            p.budget
                .remove_many(waiting.len(), waiting.iter().map(|w| w.bytes).sum());
        }
        self.release_global(released.0, released.1);
        self.pauses_dirty = true;
    }

    fn shutdown_complete(&self) -> bool {
        let idle = self.partitions.values().all(|p| p.in_flight == 0);
        idle || self.shutdown_deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Stops the deliveries the drain left, then makes the final commit, bounded by
    /// `delivery.final_commit_timeout` whatever the broker does (see [`super::shutdown`]).
    async fn finish_shutdown(&mut self) -> Ending {
        for p in self.partitions.values() {
            p.cancel.cancel();
        }
        let ends: Vec<PartitionEnd> = self
            .partitions
            .iter()
            .map(|(tp, p)| PartitionEnd {
                tp: tp.clone(),
                commit: p.tracker.commit_candidate(),
                since_commit: u64::try_from(p.tracker.taken_since_commit()).unwrap_or(0),
                unfinished: u64::try_from(p.tracker.pending_len()).unwrap_or(u64::MAX),
            })
            .collect();
        let offsets = final_offsets(&ends);
        let outcome = if offsets.is_empty() {
            CommitOutcome::NotNeeded
        } else {
            let budget = self.deps.config.delivery.final_commit_timeout;
            let consumer = self.consumer.clone();
            let started = Instant::now();
            let give_up_at = started + budget;
            // On a blocking thread we can stop waiting for: one synchronous commit may take up
            // to the session timeout while the group has no coordinator. A commit still running
            // after the budget is abandoned; the runtime does not wait for it (`cli::run`).
            let commit = tokio::task::spawn_blocking(move || {
                commit_sync(&*consumer, &offsets, "shutdown", give_up_at)
            });
            let ok = matches!(tokio::time::timeout(budget, commit).await, Ok(Ok(true)));
            self.deps
                .metrics
                .commit_latency
                .observe(started.elapsed().as_secs_f64());
            self.deps
                .metrics
                .commits
                .with_label_values(&[if ok { "ok" } else { "error" }])
                .inc();
            if ok {
                CommitOutcome::Committed
            } else {
                CommitOutcome::Failed
            }
        };
        let ending = ending(&ends, outcome);
        match ending {
            Ending::Stored { unfinished } if unfinished.messages > 0 => tracing::warn!(
                partitions = unfinished.partitions,
                messages = unfinished.messages,
                "the drain ended with deliveries unfinished; their messages stay uncommitted and will be delivered again by the next owner"
            ),
            Ending::Stored { .. } => {}
            Ending::NotStored { redelivered } => tracing::error!(
                partitions = redelivered.partitions,
                messages = redelivered.messages,
                timeout = %humantime::format_duration(self.deps.config.delivery.final_commit_timeout),
                "final commit failed: {} messages of {} partitions taken since the last stored commit will be delivered again by the next owner (exit code 4)",
                redelivered.messages,
                redelivered.partitions,
            ),
        }
        ending
    }

    // ----- pause / resume ---------------------------------------------------------------------

    fn should_pause(&self, p: &PartitionState) -> bool {
        self.shutdown_deadline.is_some()
            || self.halted.is_some()
            || self.fatal.is_some()
            // An open circuit pauses consumption only while deliveries are waiting at it: they
            // are the probes that close it. With none left (a revoke or lost session cancelled
            // them) a paused consumer would never take a message to probe with, and the circuit
            // would stay open after MCM recovered (seen in the tansu chaos run). New messages
            // then wait at the breaker, bounded by the budgets, and the first becomes the probe.
            || (self.circuit_open && (self.requests > 0 || !self.parked.is_empty()))
            || self.global_pause
            // Bounded replays: commits are not being confirmed. A partition over its own replay
            // bound is not paused: `dispatch_ready` starts nothing of it until a commit confirms,
            // and its budget pauses it if that lasts. Pausing it at once cost a fetch restart
            // whenever one commit was slow on a loaded host (seen as pauses in a healthy run).
            || self.commits_stalled
            // A partition over its own budget while the global one is full is held by the gate;
            // pausing it too would only add a resume delay.
            || (p.budget.is_paused() && self.global_full_since.is_none())
            || p.revoking
    }

    fn apply_pauses(&mut self) {
        self.pauses_dirty = false;
        let mut to_pause = Vec::new();
        let mut to_resume = Vec::new();
        for (tp, p) in &self.partitions {
            let want = self.should_pause(p) || self.holds_dead_letters(tp);
            let is = self.paused.contains(tp);
            if want && !is {
                to_pause.push(tp.clone());
            } else if !want && is {
                to_resume.push(tp.clone());
            }
        }
        if !to_pause.is_empty() {
            match self.consumer.pause(&tpl_of_tps(&to_pause)) {
                Ok(()) => {
                    self.deps
                        .metrics
                        .partition_pauses
                        .inc_by(to_pause.len() as u64);
                    self.paused.extend(to_pause);
                }
                Err(e) => tracing::warn!(error = %e, "pause failed"),
            }
        }
        if !to_resume.is_empty() {
            match self.consumer.resume(&tpl_of_tps(&to_resume)) {
                Ok(()) => {
                    for tp in &to_resume {
                        self.paused.remove(tp);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "resume failed"),
            }
        }
    }

    /// Closes the intake gate while the global budget is full and nothing else pauses
    /// consumption; opens it otherwise, so `poll()` keeps running whenever partitions are paused.
    fn update_gate(&self) {
        let closed = self.global_full_since.is_some()
            && !self.global_pause
            && self.shutdown_deadline.is_none()
            && self.halted.is_none()
            && self.fatal.is_none()
            && !self.circuit_open;
        if closed != self.gate.is_closed() {
            self.gate.set_closed(closed);
        }
    }

    fn update_in_flight_gauges(&self) {
        self.deps.metrics.in_flight_messages.set(
            i64::try_from(self.global.messages() + self.parked_budget.messages())
                .unwrap_or(i64::MAX),
        );
        self.deps.metrics.in_flight_bytes.set(
            i64::try_from(self.global.bytes() + self.parked_budget.bytes()).unwrap_or(i64::MAX),
        );
        self.deps
            .metrics
            .retries_waiting
            .set(i64::try_from(self.parked.len()).unwrap_or(i64::MAX));
    }

    fn update_assignment_gauges(&self) {
        let n = self.partitions.values().filter(|p| !p.revoking).count();
        self.deps
            .metrics
            .assigned_partitions
            .set(i64::try_from(n).unwrap_or(i64::MAX));
        self.deps.health.set_assigned(n);
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_dlq_failures_back_off_from_one_second_to_thirty() {
        let delays: Vec<u64> = (1..=8).map(|n| dlq_retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(dlq_retry_delay(0), Duration::from_secs(1));
        assert_eq!(dlq_retry_delay(u32::MAX), DLQ_RETRY_MAX);
    }
}
