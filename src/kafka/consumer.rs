//! The Kafka consumer: librdkafka settings, the rebalance context and the poll thread.
//!
//! **Commit strategy: manual commits** (`enable.auto.commit=false`, and offsets are never
//! "stored"). The coordinator commits the per-partition contiguous watermark every
//! `commit_interval` (synchronously on a blocking thread, one commit at a time, so that every
//! result is known: see `pipeline::commit_ledger`) and on revoke and shutdown. We chose this over
//! auto-commit of stored offsets because every committed value then comes from exactly one place —
//! the offset tracker — at moments we choose: no librdkafka timer commits behind our back during a
//! revoke, there is no `store_offset` (+1) vs `store_offsets` (as given) trap, and commit latency and
//! failures are observable per call. The watermark is already "the next offset to read", so it is
//! committed as given.
//!
//! One dedicated thread owns `poll()`: rebalance and commit callbacks only run inside it
//! (reference/rust-kafka.md §1.2). It forwards messages and rebalance events, in order, through
//! one bounded channel to the async coordinator. On revoke the callback *blocks* until the
//! coordinator has drained the revoked partitions (up to the drain timeout) and answered with
//! their final watermarks, then commits them synchronously before librdkafka gives the partitions
//! away — Vector's pattern. The commit runs on a helper thread the callback stops waiting for
//! after `delivery.final_commit_timeout`, so a revoke is bounded whatever the broker does. We do not use `split_partition_queue` (lost-wakeup bugs, anchors §2.5).
//!
//! The poll thread beats a [`Heartbeat`] on every turn, so `/healthz` notices when it stops
//! turning. Its longest legitimate silence is one revoke callback (the drain, then synchronous
//! commits); [`crate::pipeline::liveness_bound`] is derived from that.
//!
//! Leaving the group: closing the consumer sends a LeaveGroup (classic) or a leave heartbeat
//! (consumer protocol) only for a *dynamic* member, so its partitions move at once. A *static*
//! member (`kafka.group_instance_id`) does not leave on close (KIP-345; librdkafka's
//! `rd_kafka_cgrp_leave_maybe`; under KIP-848 it sends epoch -2, a temporary leave): the group
//! keeps its partitions for the session timeout, waiting for the same instance id to come back.
//! That is right for stable names (a StatefulSet pod restarting) and wrong for names that never
//! return (a Deployment's replaced pod), whose partitions then sit unowned for the session timeout.

use super::commit::committed_positions;
pub use super::commit::{commit_sync, tpl_of, tpl_of_tps};
use super::lag::{Assigned, LagSampler};
use crate::config::KafkaConfig;
use crate::observe::health::{Health, Heartbeat, Loop};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A topic-partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tp {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl Tp {
    pub fn new(topic: &str, partition: i32) -> Tp {
        Tp {
            topic: Arc::from(topic),
            partition,
        }
    }
}

impl std::fmt::Display for Tp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// The coordinator's answers to a revoke, in order: at most one [`RevokeAnswer::Progress`], then
/// one [`RevokeAnswer::Final`]. The channel holds both, so the coordinator never blocks on it.
pub type RevokeReply = std::sync::mpsc::SyncSender<RevokeAnswer>;

/// Offsets (next offset to read) for the revoked partitions.
#[derive(Debug)]
pub enum RevokeAnswer {
    /// What had finished when the revoke arrived, sent only when a drain has to wait for
    /// requests still in flight. Committed at once, in the group generation the revoke belongs
    /// to: a group coordinator may refuse commits while the next rebalance round forms
    /// (librdkafka's mock cluster does for seconds, Kafka does once the generation moved on), and
    /// without this early commit a refused final commit would repeat everything finished since
    /// the last periodic commit instead of only the drained requests.
    Progress(Vec<(Tp, i64)>),
    /// After the drain (idle or deadline): the offsets to commit before the partitions go.
    Final(Vec<(Tp, i64)>),
}

/// What the poll thread sends to the coordinator, in consumption order.
#[derive(Debug)]
pub enum PollEvent {
    Message(OwnedMessage),
    /// Newly assigned partitions with the group's committed offset of each (`None`: nothing
    /// committed, or the broker did not answer in time), where consumption should resume: a
    /// first message above it means offsets were skipped (see [`super::retention`]).
    Assigned(Vec<(Tp, Option<i64>)>),
    /// `lost`: the assignment was lost (session timeout); nothing may be committed for it.
    Revoked {
        partitions: Vec<Tp>,
        lost: bool,
        reply: RevokeReply,
    },
    /// The consumer's position of each assigned partition, read while idle: every message below
    /// it that librdkafka handed over was sent before this event, so offsets below it that the
    /// coordinator never saw are transaction markers or aborted records it may commit past.
    Positions(Vec<(Tp, i64)>),
    /// A consumer error worth surfacing (broker down …).
    Error(String),
    /// Kafka refused the login or a consuming right (see [`super::access`]).
    Denied(super::access::Refusal),
}

/// The rdkafka context: turns callbacks into [`PollEvent`]s.
pub struct BridgeContext {
    events: mpsc::Sender<PollEvent>,
    metrics: Arc<crate::observe::metrics::Metrics>,
    /// Partitions assigned right now, as seen by the rebalance callbacks: what the lag sampler
    /// measures, and a sample taken before a revoke must not resurrect a lag series.
    assigned: Arc<Assigned>,
    /// How long a revoke waits for the drain and then for its final commit.
    revoke: RevokeBounds,
    /// Set once shutdown has committed everything: later revokes (from close) skip the round trip.
    closing: Arc<AtomicBool>,
    /// Told when this member has joined the group (its first assignment, even an empty one).
    health: Arc<Health>,
    /// The consumer itself, for a revoke's commit on a helper thread (set once it is shared).
    consumer: std::sync::OnceLock<std::sync::Weak<BaseConsumer<BridgeContext>>>,
}

/// How much longer than its budget a revoke waits for its commit thread's answer (the last
/// attempt may start just before the deadline).
const COMMIT_ANSWER_SLACK: Duration = Duration::from_millis(500);

fn tps_of(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| Tp::new(e.topic(), e.partition()))
        .collect()
}

impl ClientContext for BridgeContext {
    /// Statistics are enabled only under the consumer protocol (see [`JOIN_STATS_INTERVAL_MS`]),
    /// for the one thing they tell: the group coordinator is up, so an idle member is in the group.
    fn stats_raw(&self, statistics: &[u8]) {
        if group_coordinator_up(statistics) {
            self.health.set_joined();
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // A refused login or a missing ACL: the coordinator names it and acts, once, instead of
        // a warning per retry (see super::access).
        if let Some(refusal) = super::access::Refusal::of_client_error(&error, reason) {
            tracing::debug!(%error, reason, "kafka refused the consumer");
            // Not try_send: reported once per partition at most, it must not be lost to a full
            // channel. This runs on the poll thread, which may block on the channel.
            let _ = self.events.blocking_send(PollEvent::Denied(refusal));
            return;
        }
        tracing::warn!(%error, reason, "kafka client error");
        let _ = self
            .events
            .try_send(PollEvent::Error(format!("{error}: {reason}")));
    }
}

impl BridgeContext {
    /// Revoke commits run on the poll thread; they count in `commits_total` like the others.
    /// A revoke's commit, bounded by `delivery.final_commit_timeout` whatever the broker does:
    /// one synchronous commit can take librdkafka's socket timeout (60 s), or longer while the
    /// group has no coordinator, and the callback holds the poll thread meanwhile. So the commit
    /// runs on a helper thread (it needs no poll: librdkafka serves it on its own threads) and
    /// the callback stops waiting after the budget. `retry` repeats refusals until then (the
    /// final commit); without it one attempt is made (the progress commit, best effort). An
    /// abandoned commit counts as failed: the next owner reads again what it would have stored,
    /// nothing is lost; should it land later, the group's generation or member epoch has moved
    /// on and the broker refuses it.
    fn commit_within(
        &self,
        consumer: &BaseConsumer<Self>,
        offsets: Vec<(Tp, i64)>,
        why: &'static str,
        retry: bool,
    ) -> bool {
        let budget = self.revoke.final_commit;
        let give_up_at = if retry {
            Instant::now() + budget
        } else {
            Instant::now()
        };
        let Some(shared) = self.consumer.get().and_then(std::sync::Weak::upgrade) else {
            return commit_sync(consumer, &offsets, why, give_up_at); // not shared yet
        };
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("revoke-commit".into())
            .spawn(move || {
                let _ = done.send(commit_sync(&*shared, &offsets, why, give_up_at));
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, why, "cannot start the commit thread; nothing committed");
            return false;
        }
        match result.recv_timeout(budget + COMMIT_ANSWER_SLACK) {
            Ok(ok) => ok,
            Err(_) => {
                tracing::warn!(why, budget = ?budget, "revoke commit still running after delivery.final_commit_timeout; given up (the next owner re-reads these partitions from their last stored commit)");
                false
            }
        }
    }

    fn count_commit(&self, ok: bool) {
        self.metrics
            .commits
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }
}

impl ConsumerContext for BridgeContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                // An assignment, even an empty one, means this member is in the group: an idle
                // member (more members than partitions) is a ready standby.
                self.health.set_joined();
                let tps = tps_of(tpl);
                if tps.is_empty() {
                    return; // cooperative rebalances announce empty assignments
                }
                tracing::info!(partitions = %fmt_tps(&tps), "partitions assigned");
                if let Ok(mut a) = self.assigned.lock() {
                    a.extend(tps.iter().cloned());
                }
                let positions = committed_positions(consumer, tpl, &tps);
                let _ = self.events.blocking_send(PollEvent::Assigned(positions));
            }
            Rebalance::Revoke(tpl) => {
                let tps = tps_of(tpl);
                if tps.is_empty() || self.closing.load(AtomicOrdering::SeqCst) {
                    return;
                }
                if let Ok(mut a) = self.assigned.lock() {
                    for tp in &tps {
                        a.remove(tp);
                        let partition = tp.partition.to_string();
                        let labels = [&*tp.topic, partition.as_str()];
                        let m = &self.metrics;
                        for gauge in [
                            &m.consumer_lag_messages,
                            &m.retention_headroom_messages,
                            &m.retention_headroom_seconds,
                        ] {
                            let _ = gauge.remove_label_values(&labels);
                        }
                    }
                }
                let lost = consumer.assignment_lost();
                tracing::info!(partitions = %fmt_tps(&tps), lost, "partitions revoked; draining");
                let (reply, answer) = std::sync::mpsc::sync_channel(2);
                if self
                    .events
                    .blocking_send(PollEvent::Revoked {
                        partitions: tps,
                        lost,
                        reply,
                    })
                    .is_err()
                {
                    return; // coordinator gone (shutdown already committed)
                }
                let deadline = Instant::now() + self.revoke.answer_wait;
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let Ok(answer) = answer.recv_timeout(left) else {
                        tracing::warn!("no drain answer in time; revoked partitions will be re-read by their next owner");
                        return;
                    };
                    match answer {
                        // Best effort, one attempt: retrying would hold up the final commit.
                        RevokeAnswer::Progress(offsets) if !lost && !offsets.is_empty() => {
                            let ok = self.commit_within(
                                consumer,
                                offsets,
                                "revoke (before drain)",
                                false,
                            );
                            self.count_commit(ok);
                        }
                        RevokeAnswer::Progress(_) => {}
                        RevokeAnswer::Final(offsets) => {
                            if !lost && !offsets.is_empty() {
                                let ok = self.commit_within(consumer, offsets, "revoke", true);
                                self.count_commit(ok);
                            }
                            return;
                        }
                    }
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

/// librdkafka's statistics interval under the consumer protocol (KIP-848). There an idle member
/// (more members than partitions) never gets an assignment callback: librdkafka reconciles only
/// assignments that differ from the current one, and an empty one does not (measured on Apache
/// Kafka 4.2: the idle member stays in join state `init` while its group coordinator is `up`).
/// Its readiness needs another sign of membership; the consumer protocol's membership is the
/// heartbeat to the group coordinator, so "coordinator up" is it. Under the classic protocol
/// every member gets an assignment callback, empty or not, and statistics stay off.
const JOIN_STATS_INTERVAL_MS: &str = "5000";

#[derive(serde::Deserialize)]
struct StatsGroup {
    state: String,
}

#[derive(serde::Deserialize)]
struct StatsHead {
    cgrp: Option<StatsGroup>,
}

/// Whether librdkafka's statistics JSON says the consumer group's coordinator is up.
fn group_coordinator_up(statistics: &[u8]) -> bool {
    serde_json::from_slice::<StatsHead>(statistics)
        .ok()
        .and_then(|s| s.cgrp)
        .is_some_and(|g| g.state == "up")
}

/// How long a revoke callback may hold the poll thread: the drain, then the final commit.
#[derive(Debug, Clone, Copy)]
pub struct RevokeBounds {
    /// How long to wait for the coordinator's drain answer (drain timeout + slack).
    pub answer_wait: Duration,
    /// How long the final commit keeps retrying (`delivery.final_commit_timeout`).
    pub final_commit: Duration,
}

fn fmt_tps(tps: &[Tp]) -> String {
    tps.iter().map(Tp::to_string).collect::<Vec<_>>().join(",")
}

/// The librdkafka settings for the bridge's consumer.
pub fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers)
        .set("group.id", &k.group_id)
        .set("client.id", &k.client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", &k.auto_offset_reset)
        .set(
            "queued.max.messages.kbytes",
            k.queued_max_messages_kbytes.to_string(),
        )
        .set(METADATA_REFRESH, METADATA_REFRESH_MS);
    for (key, value) in k.group_protocol.librdkafka_properties() {
        c.set(key, value);
    }
    if matches!(
        k.group_protocol,
        crate::config::GroupProtocol::Consumer { .. }
    ) {
        c.set("statistics.interval.ms", JOIN_STATS_INTERVAL_MS);
    }
    if let Some(id) = &k.group_instance_id {
        c.set("group.instance.id", id);
    }
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    super::security::apply(&mut c, k);
    c
}

/// Short-term backpressure between the coordinator and the poll thread.
///
/// While the gate is closed the poll thread stops taking messages from librdkafka, whose own
/// prefetch bound (`queued.max.messages.kbytes`) then stops fetching. We use this rather than
/// librdkafka's pause for the global in-flight budget because a pause purges the partition's
/// prefetched messages and a resume only fetches again when the broker thread next decides to
/// (measured: about 1 s on both tansu and the mock cluster, also seen in confluent-kafka-go #630).
/// Pausing on every budget cycle capped the bridge at ~1.8k events/s on a healthy sink. The
/// coordinator keeps the gate closed only briefly: a longer stall is turned into a real pause so
/// that `poll()` keeps running (rebalance callbacks, `max.poll.interval.ms`).
#[derive(Debug, Clone, Default)]
pub struct IntakeGate(Arc<AtomicBool>);

impl IntakeGate {
    /// Closes (`true`) or opens (`false`) the gate.
    pub fn set_closed(&self, closed: bool) {
        self.0.store(closed, AtomicOrdering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.0.load(AtomicOrdering::SeqCst)
    }
}

/// How long the poll thread sleeps between looks at a closed gate.
const GATE_RECHECK: Duration = Duration::from_millis(1);

/// A running consumer: the shared handle plus the poll thread.
pub struct PollThread {
    pub consumer: Arc<BaseConsumer<BridgeContext>>,
    /// Closed by the coordinator while its in-flight budget is full.
    pub gate: IntakeGate,
    stop: Arc<AtomicBool>,
    closing: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    lag: Option<LagSampler>,
}

impl PollThread {
    /// Creates the consumer, subscribes and starts polling into `events`.
    pub fn start(
        k: &KafkaConfig,
        subscriptions: &[String],
        events: mpsc::Sender<PollEvent>,
        revoke: RevokeBounds,
        metrics: Arc<crate::observe::metrics::Metrics>,
        gaps: Arc<super::retention::Gaps>,
        health: Arc<Health>,
    ) -> KafkaResult<PollThread> {
        let closing = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(Assigned::default());
        let metrics_for_lag = metrics.clone();
        let ctx = BridgeContext {
            events: events.clone(),
            metrics,
            assigned: assigned.clone(),
            revoke,
            closing: closing.clone(),
            health: health.clone(),
            consumer: std::sync::OnceLock::new(),
        };
        let consumer: BaseConsumer<BridgeContext> = consumer_config(k)
            .create_with_context(ctx)
            .map_err(|e| super::security::scrub(e, k))?;
        let subs: Vec<&str> = subscriptions.iter().map(String::as_str).collect();
        consumer.subscribe(&subs)?;
        let consumer = Arc::new(consumer);
        // Weak: the context lives inside the consumer; the poll thread holds the last strong
        // reference and closes the consumer when it drops it.
        let _ = consumer.context().consumer.set(Arc::downgrade(&consumer));
        let stop = Arc::new(AtomicBool::new(false));
        // Started first: if the poll thread cannot start, dropping the sampler stops it again.
        let lag = LagSampler::start(k, subscriptions, assigned, metrics_for_lag, gaps)?;
        let gate = IntakeGate::default();
        let handle = {
            let consumer = consumer.clone();
            let stop = stop.clone();
            let gate = gate.clone();
            let heartbeat = health.heartbeat(Loop::Poll);
            std::thread::Builder::new()
                .name("kafka-poll".into())
                .spawn(move || poll_loop(consumer, events, stop, gate, heartbeat))
                .map_err(|e| KafkaError::ClientCreation(format!("cannot start poll thread: {e}")))?
        };
        Ok(PollThread {
            consumer,
            gate,
            stop,
            closing,
            handle: Some(handle),
            lag: Some(lag),
        })
    }

    /// Stops polling and closes the consumer without blocking the caller for longer than
    /// `timeout`: librdkafka's close can hang after broker outages (librdkafka #4362), and offsets
    /// are already committed by then, so a hang costs nothing but a log line. A dynamic member
    /// leaves the group on close; a static one (`group.instance.id`) does not, see the module docs.
    pub async fn close(mut self, timeout: Duration) {
        self.closing.store(true, AtomicOrdering::SeqCst);
        self.stop.store(true, AtomicOrdering::SeqCst);
        let lag = self.lag.take().and_then(LagSampler::stop);
        let handle = self.handle.take();
        drop(self.consumer); // the poll thread holds the last reference and closes it
        if let Some(h) = handle {
            let joined = tokio::task::spawn_blocking(move || {
                let polled = h.join();
                // A sample in progress ends within its request timeout.
                if let Some(lag) = lag {
                    let _ = lag.join();
                }
                polled
            });
            if tokio::time::timeout(timeout, joined).await.is_err() {
                tracing::warn!("kafka consumer close did not finish in time; exiting anyway (the final commit was already made or given up)");
            }
        }
    }
}

/// librdkafka's metadata refresh interval, and the bridge's default for it.
///
/// Under the classic protocol the group notices a topic created after start that matches a
/// `pattern:` block, or a subscribed topic that was deleted, only when librdkafka refreshes its
/// metadata: every 5 minutes by default, so a new topic waited up to 5 minutes and a deleted
/// topic's partitions stayed assigned (with a frozen lag series) as long (measured on Apache
/// Kafka 4.2: no revoke within 90 s). One small Metadata request every 10 s is cheap and makes
/// both take seconds. A user's own `kafka.properties` value wins.
pub(crate) const METADATA_REFRESH: &str = "topic.metadata.refresh.interval.ms";
pub(crate) const METADATA_REFRESH_MS: &str = "10000";

/// How often, at most, an idle poll thread reports the consumer's positions.
const POSITIONS_EVERY: Duration = Duration::from_millis(500);

/// The consumer's positions (next offset to hand over) of the assigned partitions.
fn positions(consumer: &BaseConsumer<BridgeContext>) -> Vec<(Tp, i64)> {
    let Ok(tpl) = consumer.position() else {
        return Vec::new();
    };
    tpl.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some((Tp::new(e.topic(), e.partition()), o)),
            _ => None,
        })
        .collect()
}

fn poll_loop(
    consumer: Arc<BaseConsumer<BridgeContext>>,
    events: mpsc::Sender<PollEvent>,
    stop: Arc<AtomicBool>,
    gate: IntakeGate,
    heartbeat: Heartbeat,
) {
    let mut last_positions = Instant::now();
    while !stop.load(AtomicOrdering::SeqCst) {
        heartbeat.beat();
        if gate.is_closed() {
            // The dedicated poll thread, never a tokio worker.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(GATE_RECHECK);
            continue;
        }
        match consumer.poll(Duration::from_millis(100)) {
            // Idle: librdkafka has handed over everything fetched, transaction markers included
            // (they move the position without a message). Sent in order behind the messages.
            None if last_positions.elapsed() >= POSITIONS_EVERY => {
                last_positions = Instant::now();
                let at = positions(&consumer);
                if !at.is_empty() {
                    let _ = events.try_send(PollEvent::Positions(at));
                }
            }
            None => {}
            Some(Ok(msg))
                if events
                    .blocking_send(PollEvent::Message(msg.detach()))
                    .is_err() =>
            {
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(error = %e, "poll error");
                let _ = events.try_send(PollEvent::Error(e.to_string()));
            }
        }
    }
    // Last reference (normally): dropping closes the consumer. A dynamic member leaves the group
    // here; a static member (group.instance.id) does not (KIP-345): its partitions wait for the
    // session timeout or for the same instance id to rejoin.
    drop(consumer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_with_the_group_coordinator_up_mean_joined() {
        let up = br#"{"name":"c#consumer-1","cgrp":{"state":"up","stateage":1,"join_state":"init","rebalance_cnt":0,"assignment_size":0}}"#;
        assert!(group_coordinator_up(up));
    }

    #[test]
    fn statistics_without_a_coordinator_or_a_group_do_not_mean_joined() {
        let waiting = br#"{"cgrp":{"state":"wait-coord","join_state":"init"}}"#;
        assert!(!group_coordinator_up(waiting));
        assert!(!group_coordinator_up(br#"{"name":"producer"}"#));
        assert!(!group_coordinator_up(b"not json"));
    }
}
