//! Kafka I/O: the consumer with its rebalance context and poll thread, the lag sampler, and the
//! DLQ producer; the security settings they share and the refusals (logins, ACLs) they report.

pub mod access;
pub mod commit;
pub mod consumer;
pub mod describe;
pub mod dlq;
pub mod lag;
pub mod mock;
pub mod replay;
pub mod retention;
pub mod security;
pub mod topic_partitions;
pub mod topic_retention;

use crate::config::KafkaConfig;
use rdkafka::config::ClientConfig;
use std::collections::BTreeMap;

/// The settings of an auxiliary admin client (the retention reader, `doctor`): the brokers, the
/// user's properties that apply to it, and the security settings. `role` names it in
/// `client.id` (`<client_id>-<role>`).
pub fn admin_config(k: &KafkaConfig, role: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers)
        .set("client.id", format!("{}-{role}", k.client_id));
    for (key, value) in shared_properties(&k.properties) {
        c.set(key, value);
    }
    security::apply(&mut c, k);
    c
}

/// The user's `kafka.properties` that also apply to a producer or admin client (TLS, SASL,
/// timeouts…): consumer-only settings would make librdkafka refuse to create such a client.
pub fn shared_properties(
    properties: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&String, &String)> {
    properties
        .iter()
        .filter(|(k, _)| !CONSUMER_ONLY.iter().any(|prefix| k.starts_with(prefix)))
}

/// librdkafka properties (or prefixes) that only a consumer understands; a producer or admin
/// client warns about each at start-up ("is a consumer property and will be ignored").
const CONSUMER_ONLY: [&str; 12] = [
    "group.",
    "fetch.",
    "queued.",
    "heartbeat.interval.ms",
    "session.timeout.ms",
    "partition.assignment.strategy",
    "auto.offset.reset",
    "enable.auto.",
    "auto.commit.interval.ms",
    "max.poll.interval.ms",
    "isolation.level",
    "enable.partition.eof",
];
