//! `mcm-bridge doctor` (= `validate --online`): after the offline checks, connects to Kafka and
//! MCM as `run` would and reports, one [`Check`] each, whether the bridge could work — brokers and
//! login, topics, READ on the group, WRITE on the DLQ topic, MCM's DNS, TCP, TLS, API key and
//! platform id.
//!
//! What it guarantees: it changes nothing. It never joins the consumer group (no running bridge
//! is rebalanced), never writes to Kafka (rights are read from the broker's KIP-430 authorized
//! operations), never creates a topic, and sends MCM one request it must refuse (see
//! [`mcm::PROBE_BODY`]). Every check is bounded by the timeout, and the whole run by a few times
//! it, whatever the network does. What it does not: prove throughput, or that MCM accepts the
//! mapped events (that is `map` and `test`).
//!
//! The Kafka checks ([`kafka`]) block on librdkafka and run on a thread of their own while the
//! MCM checks ([`mcm`]) run on the async runtime; their verdicts are pure ([`kafka::verdict`],
//! [`mcm::verdict`]) and printed by [`report`].

pub mod kafka;
pub mod mcm;
pub mod registry;
pub mod report;

pub use report::{Check, Format, Status};

use crate::config::Config;
use crate::mapping::MappingPlan;
use std::time::Duration;

/// The default bound of each check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many timeouts the Kafka checks may take in all (cluster, topic listing, topics, group,
/// broker config: at most one each), plus slack, before the run stops waiting for them.
const KAFKA_ROUNDS: u32 = 6;

/// Runs every online check; the Kafka and MCM checks run at the same time.
pub async fn run(config: &Config, plan: &MappingPlan, timeout: Duration) -> Vec<Check> {
    let target = kafka::Target {
        kafka: config.kafka.clone(),
        subscriptions: plan.subscriptions(),
        dlq_topic: config.delivery.dlq_topic.clone(),
        timeout,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("doctor-kafka".into())
        .spawn(move || {
            let _ = tx.send(kafka::check(&target));
        });
    let kafka_checks = async {
        if let Err(e) = spawned {
            return vec![Check::fail(
                "kafka.brokers",
                &config.kafka.bootstrap_servers,
                format!("cannot start the Kafka checks: {e}"),
            )];
        }
        let bound = timeout * KAFKA_ROUNDS + Duration::from_secs(5);
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(checks)) => checks,
            Ok(Err(_)) => vec![Check::fail(
                "kafka.brokers",
                &config.kafka.bootstrap_servers,
                "the Kafka checks ended without an answer",
            )],
            Err(_) => vec![Check::fail(
                "kafka.brokers",
                &config.kafka.bootstrap_servers,
                format!(
                    "the Kafka checks did not finish within {}",
                    humantime::format_duration(bound)
                ),
            )],
        }
    };
    let registry_checks = async {
        match &config.schema_registry {
            Some(r) => registry::check(r, plan).await,
            None => Vec::new(),
        }
    };
    let (mut checks, mcm_checks, registry_checks) = tokio::join!(
        kafka_checks,
        mcm::check(&config.mcm, timeout),
        registry_checks
    );
    checks.extend(mcm_checks);
    checks.extend(registry_checks);
    checks
}

/// The offline part as checks: the configuration is valid (it was loaded), and its warnings.
pub fn offline(path: &std::path::Path, config: &Config, plan: &MappingPlan) -> Vec<Check> {
    let mut checks = vec![Check::pass(
        "config",
        path.display().to_string(),
        format!("valid ({} topic block(s))", plan.blocks().len()),
    )];
    checks.extend(
        config
            .warnings
            .iter()
            .map(|w| Check::warn("config", path.display().to_string(), w.clone())),
    );
    checks
}
