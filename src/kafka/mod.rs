//! Kafka I/O: the consumer with its rebalance context and poll thread, the lag sampler, and the
//! DLQ producer.

pub mod consumer;
pub mod dlq;
pub mod lag;
pub mod mock;
pub mod replay;
pub mod retention;
pub mod topic_retention;

use std::collections::BTreeMap;

/// The user's `kafka.properties` that also apply to a producer or admin client (TLS, SASL,
/// timeouts…): consumer-only settings would make librdkafka refuse to create such a client.
pub fn shared_properties(
    properties: &BTreeMap<String, String>,
) -> impl Iterator<Item = (&String, &String)> {
    properties.iter().filter(|(k, _)| {
        !k.starts_with("group.") && !k.starts_with("fetch.") && !k.starts_with("queued.")
    })
}
