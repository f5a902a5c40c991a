//! The coordinator: the async shell around the delivery core.
//!
//! It carries inputs into [`Core`] — messages and rebalance events from the poll thread (in
//! consumption order), acknowledgements from delivery and DLQ tasks, commit results, ticks —
//! and carries the core's [`Effect`]s out: it spawns tasks, runs commits on blocking threads,
//! answers revokes, pauses and resumes partitions and sets the intake gate. Every decision is
//! the core's; this file only moves events between it and I/O. Acks are served before new
//! messages (`biased` select, Vector PR #20467) so finished work frees budget before more is
//! taken.

use super::committer::{commit_in_background, final_commit, CommitDone};
use super::core::{Core, CoreDeps, Effect, RevokeId, Taken};
use super::deliver::Deliverer;
use super::lanes::lane_of;
use super::process;
use super::reload::PlanSwap;
use super::schema_wait::{Admit, SchemaWait};
use super::shutdown::{ending, final_offsets, CommitOutcome, Ending};
use super::tasks::{Sink, Tasks};
use super::work::Ack;
use crate::config::Config;
use crate::kafka::consumer::{
    tpl_of_tps, BridgeContext, IntakeGate, PollEvent, RevokeAnswer, RevokeReply, Tp,
};
use crate::kafka::retention::Gaps;
use crate::mapping::{MappingPlan, Processed, SourceMessage, WireEvent};
use crate::observe::health::{Health, Heartbeat, Loop};
use crate::observe::metrics::Metrics;
use crate::observe::tap::Tap;
use crate::schema::{self, FetchError, Known, RegistryClient, SchemaBook};
use futures::FutureExt as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Everything the coordinator needs from outside.
pub struct Deps {
    pub config: Arc<Config>,
    pub plan: Arc<MappingPlan>,
    /// Kept in shadow mode too: its concurrency limit and circuit state feed the core.
    pub deliverer: Arc<Deliverer>,
    /// Where deliveries and dead letters go: MCM and the DLQ, or nowhere (shadow mode).
    pub sink: Sink,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Where skipped offsets go to be checked against the log start (loss past retention).
    pub gaps: Arc<Gaps>,
    /// New mapping rules from live reloads (`pipeline::reload`), when enabled.
    pub reloads: Option<mpsc::Receiver<PlanSwap>>,
    /// Where judged messages are offered to `mcm-bridge tap` watchers (`observe.tap`).
    pub tap: Option<Arc<Tap>>,
    /// Where schema'd topics' schemas come from (`schema_registry`), when configured.
    pub registry: Option<RegistryClient>,
}

/// A schema fetch's answer: the id and what the registry said.
type Fetched = (u32, Result<Known, FetchError>);

/// What the pipeline run ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Shutdown requested; everything finished was committed (or nothing needed it).
    Shutdown,
    /// The poll thread went away (consumer closed).
    ConsumerGone,
    /// Kafka refused the login or a right needed to consume; the bridge stopped after committing
    /// what had finished (see `Core::on_access_denied`).
    AccessDenied,
    /// Stopped, but the final commit did not land within `delivery.final_commit_timeout`: the
    /// next owner reads `messages` again (see [`super::shutdown`]).
    FinalCommitFailed { partitions: usize, messages: u64 },
}

pub struct Coordinator {
    core: Core<OwnedMessage>,
    config: Arc<Config>,
    plan: Arc<MappingPlan>,
    deliverer: Arc<Deliverer>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    consumer: Arc<BaseConsumer<BridgeContext>>,
    gate: IntakeGate,
    tasks: Tasks,
    ack_rx: mpsc::Receiver<Ack>,
    commit_tx: mpsc::Sender<CommitDone>,
    commit_rx: mpsc::Receiver<CommitDone>,
    /// Revokes whose final answer the poll thread still waits for.
    revokes: HashMap<RevokeId, RevokeReply>,
    next_revoke: RevokeId,
    /// Beaten on every turn of [`Coordinator::run`]: `/healthz` notices a wedged coordinator.
    heartbeat: Heartbeat,
    reloads: Option<mpsc::Receiver<PlanSwap>>,
    tap: Option<Arc<Tap>>,
    /// Messages waiting for their schema, and the schemas known.
    schemas: SchemaWait<Tp, OwnedMessage>,
    registry: Option<RegistryClient>,
    fetched_tx: mpsc::Sender<Fetched>,
    fetched_rx: mpsc::Receiver<Fetched>,
    /// "Not found" answers per schema id not trusted yet.
    not_found_tries: HashMap<u32, u32>,
}

/// A registry's "not found" is trusted at the third answer, a second or more apart.
const NOT_FOUND_TRIES: u32 = 3;
const NOT_FOUND_PAUSE: Duration = Duration::from_secs(1);

impl Coordinator {
    pub fn new(
        deps: Deps,
        consumer: Arc<BaseConsumer<BridgeContext>>,
        gate: IntakeGate,
    ) -> Coordinator {
        let core = Core::new(
            CoreDeps {
                config: deps.config.clone(),
                plan: deps.plan.clone(),
                metrics: deps.metrics.clone(),
                health: deps.health.clone(),
                gaps: deps.gaps,
            },
            Instant::now(),
        );
        // Acks are bounded by the in-flight budget (plus overshoot and probes): the channel never
        // grows without bound, and a full channel only delays a finished task briefly.
        let (ack_tx, ack_rx) =
            mpsc::channel(deps.config.mcm.max_in_flight.saturating_mul(2).max(64));
        let (commit_tx, commit_rx) = mpsc::channel(1);
        let heartbeat = deps.health.heartbeat(Loop::Coordinator);
        // One fetch runs at a time: its answer always has room.
        let (fetched_tx, fetched_rx) = mpsc::channel(1);
        let cache_size = deps
            .config
            .schema_registry
            .as_ref()
            .map_or(1, |r| r.cache_size);
        Coordinator {
            core,
            config: deps.config,
            plan: deps.plan,
            tasks: Tasks::new(deps.sink, ack_tx),
            deliverer: deps.deliverer,
            metrics: deps.metrics,
            health: deps.health,
            consumer,
            gate,
            ack_rx,
            commit_tx,
            commit_rx,
            revokes: HashMap::new(),
            next_revoke: 1,
            heartbeat,
            reloads: deps.reloads,
            tap: deps.tap,
            schemas: SchemaWait::new(cache_size),
            registry: deps.registry,
            fetched_tx,
            fetched_rx,
            not_found_tries: HashMap::new(),
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
            self.core
                .set_request_limit(self.deliverer.concurrency_limit());
            let next_retry = self.core.next_retry_due();
            tokio::select! {
                biased;
                Some(ack) = self.ack_rx.recv() => self.core.on_ack(ack, Instant::now()),
                Some(done) = self.commit_rx.recv() => {
                    self.core.on_commit_done(done.seq, done.result, done.elapsed, Instant::now());
                }
                Some((id, answer)) = self.fetched_rx.recv() => self.on_schema_fetched(id, answer),
                _ = sleep_until_or_never(next_retry), if next_retry.is_some() => {
                    self.core.unpark_due(Instant::now());
                }
                // Between two messages: every message is mapped by exactly one plan, the one in
                // force when it was taken; what is in flight keeps the body it was given. Before
                // new messages, so a steady stream of them cannot hold a reload back.
                Some(swap) = recv_or_never(&mut self.reloads) => {
                    self.core.replace_plan(swap.plan.clone());
                    self.plan = swap.plan;
                    let _ = swap.done.send(());
                    // The new rules may read held messages' topics differently (as JSON, or
                    // not at all): map what no longer waits.
                    self.release_held(Instant::now());
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break Exit::ConsumerGone,
                },
                _ = tick.tick() => {
                    self.core.on_tick(Instant::now(), self.deliverer.circuit_is_open());
                    self.metrics.circuit_state.set(self.deliverer.circuit_metric());
                }
                _ = shutdown.cancelled(), if !self.core.is_shutting_down() => {
                    // Held messages were never seen by the core, so nothing committed passes
                    // them: the next run reads them again.
                    self.schemas.clear();
                    self.update_schema_wait();
                    self.core.begin_shutdown(Instant::now());
                }
            }
            self.carry_out_effects();
            self.apply_pauses();
            let closed = self.core.gate_closed();
            if closed != self.gate.is_closed() {
                self.gate.set_closed(closed);
            }
            if self.core.is_shutting_down() && self.core.shutdown_complete(Instant::now()) {
                break if self.core.access_denied() {
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

    fn on_event(&mut self, ev: PollEvent) {
        let now = Instant::now();
        match ev {
            PollEvent::Message(msg) => self.on_message(msg, now),
            PollEvent::Assigned(tps) => self.core.on_assigned(tps, now),
            PollEvent::Revoked {
                partitions,
                lost,
                reply,
            } => {
                // Held messages of these partitions go back to Kafka with them (never seen by
                // the core, so never committed): their next owner reads them again.
                self.schemas.forget(|held| partitions.contains(held));
                self.release_held(now);
                let id = self.next_revoke;
                self.next_revoke += 1;
                self.revokes.insert(id, reply);
                self.core.on_revoked(partitions, lost, id, now);
            }
            // Positions say everything below them was handed over, and held messages were: the
            // core must not advance a holding partition past them (that would commit them
            // undelivered). Every message of a partition that holds none was taken.
            PollEvent::Positions(mut at) => {
                at.retain(|(tp, _)| !self.schemas.is_holding(tp));
                self.core.on_positions(at);
            }
            PollEvent::Error(e) => self.health.set_broker_error(Some(e)),
            PollEvent::Denied(refusal) => self.core.on_access_denied(refusal, now),
        }
    }

    fn on_message(&mut self, msg: OwnedMessage, now: Instant) {
        let needs = self
            .plan
            .route(msg.topic())
            .and_then(|block| schema::missing_schema(block, msg.payload(), self.schemas.book()));
        let partition = |m: &OwnedMessage| Tp::new(m.topic(), m.partition());
        match self.schemas.admit(msg, partition, needs) {
            Admit::Pass(msg) => self.take(msg, now),
            Admit::Held { fetch } => {
                if let Some(id) = fetch {
                    self.fetch_schema(id, Duration::ZERO);
                }
                self.update_schema_wait();
            }
        }
    }

    /// The registry answered (or failed to) for schema `id`.
    fn on_schema_fetched(&mut self, id: u32, answer: Result<Known, FetchError>) {
        let max = self
            .config
            .schema_registry
            .as_ref()
            .map_or(Duration::from_secs(30), |r| r.max_backoff);
        // A registry follower may not have read a schema registered a moment ago: its "not
        // found" is trusted only after NOT_FOUND_TRIES answers a second apart, so a fresh schema
        // does not dead-letter its first messages (nor, cached, all of them).
        let unconfirmed_not_found = matches!(answer, Ok(Known::NotFound))
            && self.not_found_tries.get(&id).copied().unwrap_or(0) + 1 < NOT_FOUND_TRIES;
        let answer = match answer {
            Ok(Known::NotFound) => {
                let tries = self.not_found_tries.entry(id).or_insert(0);
                *tries += 1;
                if *tries < NOT_FOUND_TRIES {
                    Err(FetchError::Unavailable {
                        url: format!("/schemas/ids/{id}"),
                        why: format!(
                            "not found (answer {tries} of {NOT_FOUND_TRIES} before it is trusted)"
                        ),
                    })
                } else {
                    self.not_found_tries.remove(&id);
                    Ok(Known::NotFound)
                }
            }
            other => other,
        };
        let result = match answer {
            Ok(known) => {
                let result = match &known {
                    Known::NotFound => "not_found",
                    Known::Invalid(_) => "invalid",
                    _ => "ok",
                };
                if let Known::Invalid(why) = &known {
                    tracing::warn!(
                        schema_id = id,
                        why,
                        "schema cannot be used; its messages are dead-lettered as schema_invalid"
                    );
                }
                self.schemas.learned(id, known);
                self.release_held(Instant::now());
                result
            }
            Err(e) => {
                let refused = matches!(e, FetchError::Refused { .. });
                let delay = self.schemas.failed(refused, max);
                if refused {
                    tracing::error!(schema_id = id, error = %e, retry_in = ?delay, "schema registry refused; consumption paused until it answers (nothing is dead-lettered for this)");
                } else {
                    tracing::warn!(schema_id = id, error = %e, retry_in = ?delay, "schema registry unavailable; consumption paused");
                }
                // Retried only while a held message still needs it: a revoke may have taken
                // them all, and then the fetch must not block the next one forever.
                let plan = self.plan.clone();
                let needed = self.schemas.needs_id(id, |m, book| {
                    plan.route(m.topic())
                        .and_then(|block| schema::missing_schema(block, m.payload(), book))
                });
                if needed {
                    let delay = if unconfirmed_not_found {
                        NOT_FOUND_PAUSE
                    } else {
                        delay
                    };
                    self.fetch_schema(id, delay);
                } else {
                    self.schemas.abandon(id);
                    self.release_held(Instant::now());
                }
                if refused {
                    "refused"
                } else {
                    "unavailable"
                }
            }
        };
        self.metrics
            .schema_fetches
            .with_label_values(&[result])
            .inc();
    }

    /// Maps the held messages whose schemas are known now, in order, and fetches the next
    /// missing one.
    fn release_held(&mut self, now: Instant) {
        let plan = self.plan.clone();
        let (ready, fetch) = self.schemas.release(|m, book| {
            plan.route(m.topic())
                .and_then(|block| schema::missing_schema(block, m.payload(), book))
        });
        if let Some(id) = fetch {
            self.fetch_schema(id, Duration::ZERO);
        }
        for msg in ready {
            self.take(msg, now);
        }
        self.update_schema_wait();
    }

    fn update_schema_wait(&mut self) {
        let held = self.schemas.held();
        self.metrics
            .schema_wait_messages
            .set(i64::try_from(held).unwrap_or(i64::MAX));
        self.core
            .set_schema_wait(self.schemas.holding().cloned().collect());
    }

    /// Fetches schema `id` after `delay`; the answer comes back on `fetched_rx`.
    fn fetch_schema(&self, id: u32, delay: Duration) {
        let tx = self.fetched_tx.clone();
        let Some(client) = self.registry.clone() else {
            // Validation requires a registry for schema'd blocks, but a live reload may bring
            // one in (with `format: avro`) while this process runs without a client: hold the
            // messages (never dead-letter them for it) and say a restart is needed.
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let refused = FetchError::Refused {
                    url: String::new(),
                    why: "this process runs without a schema_registry: restart it to read format: avro / protobuf / json_schema topics".into(),
                };
                let _ = tx.send((id, Err(refused))).await;
            });
            return;
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // A panic in the registry client or a schema parser must not leave the fetch
            // unanswered (every partition would stay paused): it makes the schema unusable.
            let answer = std::panic::AssertUnwindSafe(client.fetch(id))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Ok(Known::Invalid(
                        "reading the schema panicked (see the log)".into(),
                    ))
                });
            let _ = tx.send((id, answer)).await;
        });
    }

    /// Hands a message to the core (mapping it).
    fn take(&mut self, msg: OwnedMessage, now: Instant) {
        let bytes =
            (msg.payload().map_or(0, <[u8]>::len) + msg.key().map_or(0, <[u8]>::len)) as u64;
        let taken = Taken {
            tp: Tp::new(msg.topic(), msg.partition()),
            offset: msg.offset(),
            timestamp_ms: msg.timestamp().to_millis(),
            bytes,
            lane: lane_of(self.config.delivery.ordering, msg.key()),
            msg,
        };
        let (plan, config, tap) = (&self.plan, &self.config, self.tap.as_deref());
        let book = self.schemas.book();
        self.core
            .on_message(taken, |msg| map(plan, config, tap, book, msg), now);
    }

    /// Executes the core's effects in order.
    fn carry_out_effects(&mut self) {
        let effects: Vec<Effect<OwnedMessage>> = self.core.take_effects().collect();
        for effect in effects {
            match effect {
                Effect::Opened(tp) => self.tasks.opened(tp),
                Effect::Closed(tp) => self.tasks.closed(&tp),
                Effect::Deliver {
                    task,
                    tp,
                    body,
                    tally,
                } => self.tasks.deliver(task, &tp, body, tally),
                Effect::Probe { task, body } => self.tasks.probe(task, body),
                Effect::WriteDlq {
                    task,
                    msg,
                    why,
                    delay,
                } => self.tasks.write_dlq(task, msg, why, delay),
                Effect::Commit { seq, offsets } => {
                    commit_in_background(&self.consumer, seq, &offsets, &self.commit_tx)
                }
                Effect::AnswerRevoke { revoke, answer } => {
                    let reply = match answer {
                        RevokeAnswer::Progress(_) => self.revokes.get(&revoke).cloned(),
                        RevokeAnswer::Final(_) => self.revokes.remove(&revoke),
                    };
                    if let Some(reply) = reply {
                        let _ = reply.try_send(answer);
                    }
                }
            }
        }
    }

    fn apply_pauses(&mut self) {
        let Some((to_pause, to_resume)) = self.core.pause_changes() else {
            return;
        };
        if !to_pause.is_empty() {
            match self.consumer.pause(&tpl_of_tps(&to_pause)) {
                Ok(()) => self.core.paused(to_pause),
                Err(e) => tracing::warn!(error = %e, "pause failed"),
            }
        }
        if !to_resume.is_empty() {
            match self.consumer.resume(&tpl_of_tps(&to_resume)) {
                Ok(()) => self.core.resumed(&to_resume),
                Err(e) => tracing::warn!(error = %e, "resume failed"),
            }
        }
    }

    /// Stops the deliveries the drain left, then makes the final commit, bounded by
    /// `delivery.final_commit_timeout` whatever the broker does (see [`super::shutdown`]).
    async fn finish_shutdown(&mut self) -> Ending {
        self.tasks.cancel_all();
        let ends = self.core.final_ends();
        let offsets = final_offsets(&ends);
        let budget = self.config.delivery.final_commit_timeout;
        let outcome = if offsets.is_empty() {
            CommitOutcome::NotNeeded
        } else {
            let started = Instant::now();
            let ok = final_commit(&self.consumer, offsets, budget).await;
            let m = &self.metrics;
            m.commit_latency.observe(started.elapsed().as_secs_f64());
            m.commits
                .with_label_values(&[if ok { "ok" } else { "error" }])
                .inc();
            if ok {
                CommitOutcome::Committed
            } else {
                CommitOutcome::Failed
            }
        };
        let ending = ending(&ends, outcome);
        ending.log(budget);
        ending
    }
}

/// Decodes, routes, maps and validates one message (the same path as `map`, `test` and
/// `replay-dlq`: [`super::process`]).
/// Offers the result to the tap's watchers, if any.
fn map(
    plan: &MappingPlan,
    config: &Config,
    tap: Option<&Tap>,
    schemas: &SchemaBook,
    msg: &OwnedMessage,
) -> Processed<WireEvent> {
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
    let processed = process::process(plan, &source, &process::validate_options(config), schemas);
    if let Some(tap) = tap {
        tap.offer(&source, &processed);
    }
    processed
}

/// The next plan of `rx`, or never when reloads are off (or their sender is gone).
async fn recv_or_never<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => match r.recv().await {
            Some(v) => Some(v),
            None => {
                *rx = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
