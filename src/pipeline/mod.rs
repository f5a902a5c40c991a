//! The delivery pipeline: Kafka → map → MCM → commit, keeping DESIGN.md contracts 1–7.
//!
//! [`run`] wires the pieces: the Kafka poll thread ([`crate::kafka::consumer`]), the coordinator
//! that owns all per-partition state ([`coordinator`]), the stage that decodes, routes, maps and
//! validates each message ([`process`]), delivery tasks ([`deliver`]) and the DLQ
//! producer. Pure parts — offset tracking, ordering lanes, budgets — live in their own files and
//! are unit-tested without Kafka or HTTP.

pub mod budget;
pub mod commit_ledger;
pub mod committer;
pub mod coordinator;
pub mod core;
pub mod deliver;
pub mod dlq_hold;
pub mod lanes;
pub mod offset_tracker;
pub mod parked;
pub mod process;
pub mod reload;
pub mod schema_wait;
pub mod shutdown;
pub mod tasks;
pub mod work;

use crate::config::Config;
use crate::kafka::consumer::{PollThread, RevokeBounds};
use crate::kafka::dlq::DlqProducer;
use crate::kafka::retention::Gaps;
use crate::mapping::MappingPlan;
use crate::mcm::client::{ClientError, McmClient};
use crate::observe::health::Health;
use crate::observe::metrics::Metrics;
use coordinator::{Coordinator, Deps, Exit};
use deliver::Deliverer;
use std::sync::Arc;
use std::time::Duration;
use tasks::Sink;
use tokio_util::sync::CancellationToken;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("MCM client: {0}")]
    Client(#[from] ClientError),
    #[error("Kafka consumer: {0}")]
    Consumer(rdkafka::error::KafkaError),
    #[error("DLQ producer: {0}")]
    DlqProducer(rdkafka::error::KafkaError),
    #[error("{0}")]
    Registry(#[from] crate::schema::registry::RegistryClientError),
    #[error("no topics to subscribe to: the topics section is empty")]
    NoTopics,
    #[error("the coordinator task failed: {0}")]
    Coordinator(tokio::task::JoinError),
}

/// Capacity of the poll thread → coordinator channel. Small on purpose: messages already in it
/// are past the intake gate and librdkafka's pause, so it is the bound on how far the in-flight
/// budgets can be overshot; the coordinator drains it in microseconds per message, so throughput
/// does not need more, and back-pressure belongs to the gate and pause/resume, not to this queue.
const EVENT_CHANNEL: usize = 256;

/// How long closing the consumer (leaving the group) may take after the final commit. Part of
/// the shutdown bound: drain + final commit + this stays under compose's 30 s grace by default.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer than the drain timeout a revoke callback waits for the coordinator's answer.
const REVOKE_SLACK: Duration = Duration::from_secs(5);

/// Room in the liveness bound for the committed-offsets fetch of an assignment (5 s, in the same
/// `poll()` as a revoke under the eager protocols) and for scheduling delays on a loaded host.
const LIVENESS_MARGIN: Duration = Duration::from_secs(10);

/// How long the poll thread or the coordinator may go without a heartbeat before `/healthz`
/// reports the process wedged.
///
/// The coordinator turns at least every 50 ms. The poll thread's longest legitimate silence is
/// one revoke callback: it waits for the drain (`delivery.drain_timeout` + 5 s for the answer)
/// and for its commits, each bounded by `delivery.final_commit_timeout` (they run on a helper
/// thread the callback stops waiting for: `BridgeContext::commit_within`). The session timeout
/// stays in the bound as margin for what librdkafka itself may hold the thread for (the
/// committed-offsets fetch of an assignment, a slow `poll()` while the group has no
/// coordinator). Hence drain + 5 s + final commit + session timeout + 10 s: **80 s with the
/// defaults** (15 s drain, 5 s final commit, 45 s session). A poll thread blocked longer is
/// restarted, which loses nothing: offsets past unfinished work are never committed.
pub fn liveness_bound(config: &Config) -> Duration {
    config.delivery.drain_timeout
        + REVOKE_SLACK
        + config.delivery.final_commit_timeout
        + config.kafka.group_protocol.session_timeout()
        + LIVENESS_MARGIN
}

/// What a running pipeline can be given from outside besides its configuration.
#[derive(Default)]
pub struct Controls {
    /// New mapping rules from live reloads ([`reload::Reloader`]).
    pub reloads: Option<tokio::sync::mpsc::Receiver<reload::PlanSwap>>,
    /// Where judged messages are offered to tap watchers (`observe.tap`).
    pub tap: Option<Arc<crate::observe::tap::Tap>>,
}

/// Runs the bridge until `shutdown` is cancelled; then drains, commits and closes the consumer
/// (which leaves the group only as a dynamic member: a static one keeps its partitions for the
/// session timeout, see [`crate::kafka::consumer`]).
pub async fn run(
    config: Arc<Config>,
    plan: Arc<MappingPlan>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> Result<Exit, PipelineError> {
    run_with(config, plan, metrics, health, shutdown, Controls::default()).await
}

/// [`run`] with [`Controls`].
pub async fn run_with(
    config: Arc<Config>,
    plan: Arc<MappingPlan>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: CancellationToken,
    controls: Controls,
) -> Result<Exit, PipelineError> {
    let subscriptions = plan.subscriptions();
    if subscriptions.is_empty() {
        return Err(PipelineError::NoTopics);
    }
    metrics.set_platform(&config.mcm.platform_id, &config.kafka.group_id);
    metrics.set_mapping_hash(&config.fingerprint.topics);
    let client = McmClient::new(&config.mcm)?;
    let deliverer = Arc::new(Deliverer::new(client, &config.mcm, metrics.clone()));
    // Shadow mode builds no producer: it never writes the DLQ, and an idempotent producer would
    // ask the cluster for a producer id (a right a shadow principal need not have).
    let sink = if config.is_shadow() {
        metrics.set_shadow();
        tracing::warn!(
            group = %config.kafka.group_id,
            "shadow mode: mapping and validating only; nothing is sent to MCM or written to the DLQ"
        );
        Sink::Shadow
    } else {
        let dlq = DlqProducer::new(
            &config.kafka,
            &config.delivery.dlq_topic,
            config.mcm.api_key.expose(),
        )
        .map_err(PipelineError::DlqProducer)?;
        Sink::Live {
            deliverer: deliverer.clone(),
            dlq,
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(EVENT_CHANNEL);
    // Offsets the coordinator saw skipped, checked against the log start by the lag sampler.
    let gaps = Arc::new(Gaps::default());
    let revoke = RevokeBounds {
        answer_wait: config.delivery.drain_timeout + REVOKE_SLACK,
        final_commit: config.delivery.final_commit_timeout,
    };
    let poll = PollThread::start(
        &config.kafka,
        &subscriptions,
        tx,
        revoke,
        metrics.clone(),
        gaps.clone(),
        health.clone(),
    )
    .map_err(PipelineError::Consumer)?;
    // From here both loops must keep beating (the coordinator's first turn is microseconds away).
    health.arm_liveness(liveness_bound(&config));
    tracing::info!(
        topics = %subscriptions.join(","),
        group = %config.kafka.group_id,
        mode = config.delivery.mode.as_str(),
        endpoint = %config.mcm.events_url(),
        "pipeline started"
    );
    let deps = Deps {
        config: config.clone(),
        plan,
        deliverer,
        sink,
        metrics,
        health: health.clone(),
        gaps,
        reloads: controls.reloads,
        tap: controls.tap,
        registry: config
            .schema_registry
            .as_ref()
            .map(crate::schema::RegistryClient::new)
            .transpose()?,
    };
    let coordinator = Coordinator::new(deps, poll.consumer.clone(), poll.gate.clone());
    // On a runtime worker, not on the caller's thread (`block_on` in `main`): tasks spawned from
    // a worker go to its local queue, while every spawn from outside the workers goes through
    // the shared queue and wakes a parked worker. Measured on tansu + sandbox, 200k events,
    // three alternating runs: 40/40/34 µs of bridge CPU per event instead of 48/44/38.
    let exit = tokio::spawn(coordinator.run(rx, shutdown)).await;
    // The loops stop on purpose from here; shutdown is bounded by the close timeout below.
    health.disarm_liveness();
    poll.close(CLOSE_TIMEOUT).await;
    let exit = exit.map_err(PipelineError::Coordinator)?;
    tracing::info!(?exit, "pipeline stopped");
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra: &str) -> Config {
        let text = format!(
            "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n  group_id: g\n{extra}\
             mcm:\n  platform_name: acme\n  platform_id: ACME_TEST\n  api_key: k\ntopics: []\n"
        );
        crate::config::load_str(
            &text,
            Path::new("."),
            &|_: &str| None,
            Vec::<(String, String)>::new(),
        )
        .unwrap_or_else(|e| panic!("test config: {e}"))
    }

    #[test]
    fn liveness_bound_is_80_seconds_with_the_defaults() {
        assert_eq!(liveness_bound(&config("")), Duration::from_secs(80));
    }

    #[test]
    fn liveness_bound_outlasts_a_revoke_with_a_longer_drain_and_session() {
        let c = config("  session_timeout: 2m\ndelivery:\n  drain_timeout: 1m\n");
        let bound = liveness_bound(&c);
        // The revoke callback alone: drain + the answer's slack + commit retries for the final
        // commit budget, the last of which waits out the session timeout for a coordinator.
        let revoke = Duration::from_secs(60)
            + REVOKE_SLACK
            + Duration::from_secs(5)
            + Duration::from_secs(120);
        assert!(bound > revoke, "{bound:?} must exceed {revoke:?}");
        assert_eq!(bound, Duration::from_secs(200));
    }
}
