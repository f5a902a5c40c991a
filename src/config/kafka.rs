//! The `kafka` section: brokers, consumer group, offsets and commits, prefetch, and the
//! librdkafka properties passed through as they are (the ones the bridge manages refused, the
//! ones that hold secrets kept as [`Secret`]s). The group protocol keys and the security keys are
//! collected here and checked in [`super::group_protocol`] and [`super::kafka_security`].

use super::decode::{self, ConfigError, MapReader};
use super::group_protocol::{GroupProtocol, GroupProtocolKeys};
use super::kafka_security::{self, KafkaSecurity};
use super::secret::Secret;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// librdkafka properties the bridge sets itself because the delivery contracts depend on them.
pub const MANAGED_KAFKA_PROPERTIES: [&str; 5] = [
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "bootstrap.servers",
    "group.instance.id",
];

#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    pub group_id: String,
    pub client_id: String,
    /// `group.instance.id` for static membership: only for names that come back (a StatefulSet pod),
    /// since a static member sends no LeaveGroup (see `kafka::consumer`).
    pub group_instance_id: Option<String>,
    /// The consumer group protocol with the settings that belong to it (`group_protocol`,
    /// `assignment_strategy`, `session_timeout`, `remote_assignor`).
    pub group_protocol: GroupProtocol,
    /// Where a group without committed offsets starts. `earliest` by default: a new deployment must
    /// not skip the backlog that is already on the topic.
    pub auto_offset_reset: String,
    /// How often finished offsets are committed.
    pub commit_interval: Duration,
    /// librdkafka prefetch bound per consumer (`queued.max.messages.kbytes`), DESIGN.md contract 5.
    pub queued_max_messages_kbytes: u64,
    /// Passed through to librdkafka as-is (TLS, SASL, …), after the bridge's own settings;
    /// those that hold secrets are in `security.secret_properties` instead.
    pub properties: BTreeMap<String, String>,
    /// `security_protocol`, `sasl`, `tls`, and the secret properties (see [`kafka_security`]).
    pub security: KafkaSecurity,
}

pub(super) fn read_kafka(
    v: &Value,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> Option<KafkaConfig> {
    let mut r = MapReader::new(v, "kafka", errors)?;
    let bootstrap_servers = r.req::<String>(
        "bootstrap_servers",
        "the Kafka brokers, e.g. \"broker-1:9092,broker-2:9092\"",
    );
    let group_id = r.req::<String>("group_id", "the consumer group id, e.g. \"mcm-bridge\"");
    let client_id = r
        .opt_string("client_id")
        .unwrap_or_else(|| "mcm-bridge".into());
    let group_instance_id = r.opt_string("group_instance_id");
    let protocol_keys = GroupProtocolKeys {
        group_protocol: r.opt_string("group_protocol"),
        assignment_strategy: r.opt_string("assignment_strategy"),
        session_timeout: r.duration("session_timeout"),
        remote_assignor: r.opt_string("remote_assignor"),
    };
    let auto_offset_reset = r
        .opt_string("auto_offset_reset")
        .unwrap_or_else(|| "earliest".into());
    if !["earliest", "latest"].contains(&auto_offset_reset.as_str()) {
        r.error("auto_offset_reset", "must be \"earliest\" or \"latest\"");
    }
    let commit_interval = r
        .duration("commit_interval")
        .unwrap_or(Duration::from_secs(1));
    if commit_interval.is_zero() {
        r.error("commit_interval", "must be above zero");
    }
    // 8 MiB: about a second of messages at the bridge's top rate on a small machine, and half
    // of librdkafka's share of RSS at 16 MiB. Measured (200k events, 8 partitions, tansu +
    // sandbox, alternating runs on a busy machine, so indicative): no slower — 8 MiB
    // 19.9–20.1k/s at 23–24 µs of CPU per event, 16 MiB 17.0–17.2k/s at 25–26 µs.
    let queued_max_messages_kbytes = r
        .bytes("prefetch_bytes")
        .map(|b| (b / 1024).max(1))
        .unwrap_or(8 * 1024);
    let security_keys = kafka_security::SecurityKeys {
        security_protocol: r.opt_string("security_protocol"),
        sasl: r.raw("sasl").cloned(),
        tls: r.raw("tls").cloned(),
    };
    let mut properties = BTreeMap::new();
    let mut secret_properties = BTreeMap::new();
    if let Some(props) = r.raw("properties") {
        match props {
            Value::Mapping(m) => {
                for (k, val) in m {
                    let key = decode::show(k).trim_matches('"').to_string();
                    let path = format!("kafka.properties.{key}");
                    if key == "group.protocol" {
                        r.error_at(
                            path,
                            "set kafka.group_protocol instead (classic or consumer)",
                        );
                        continue;
                    }
                    if MANAGED_KAFKA_PROPERTIES.contains(&key.as_str()) {
                        r.error_at(
                            path,
                            "managed by mcm-bridge (commit-after-delivery depends on it); use the kafka section's own keys",
                        );
                        continue;
                    }
                    let text = match val {
                        Value::String(s) => s.clone(),
                        Value::Number(_) | Value::Bool(_) => decode::show(val),
                        other => {
                            r.error_at(
                                path,
                                format!(
                                    "expected a string, number or boolean, found {}",
                                    decode::kind(other)
                                ),
                            );
                            continue;
                        }
                    };
                    if kafka_security::is_secret_property(&key) {
                        secret_properties.insert(key, Secret::verbatim(&text));
                    } else {
                        properties.insert(key, text);
                    }
                }
            }
            other => {
                let msg = format!(
                    "expected a mapping of librdkafka properties, found {}",
                    decode::kind(other)
                );
                r.error("properties", msg);
            }
        }
    }
    let group_protocol =
        match GroupProtocol::from_keys(protocol_keys, properties.keys().map(String::as_str)) {
            Ok(p) => Some(p),
            Err(problems) => {
                for e in problems {
                    r.error(&e.key, e.message);
                }
                None
            }
        };
    let security = kafka_security::read(
        security_keys,
        base_dir,
        &properties,
        secret_properties,
        r.errors(),
        warnings,
    );
    r.finish();
    Some(KafkaConfig {
        bootstrap_servers: bootstrap_servers?,
        group_id: group_id?,
        client_id,
        group_instance_id,
        group_protocol: group_protocol?,
        auto_offset_reset,
        commit_interval,
        queued_max_messages_kbytes,
        properties,
        security: security?,
    })
}
