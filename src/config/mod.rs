//! Configuration: model, loading and validation.
//!
//! Loading order: parse the YAML file → apply `MCM_BRIDGE__…` environment overrides →
//! interpolate `${VAR}` / `${VAR:-default}` in string values → read every section field by field,
//! collecting *all* errors with their YAML paths (see [`decode`]). Checks that span fields
//! (`drain_timeout` below the session timeout, `http://` only with `allow_insecure_http`, …) run
//! after the sections. The `topics` section is kept as raw YAML here; the mapping compiler owns
//! its rules and reports its errors into the same list.

pub mod decode;
pub mod env_overlay;
pub mod group_protocol;
pub mod interpolate;
pub mod kafka_security;
pub mod secret;
pub mod tls;

use decode::{ConfigError, ConfigErrors, MapReader};
pub use group_protocol::GroupProtocol;
use group_protocol::GroupProtocolKeys;
use interpolate::Env;
pub use kafka_security::KafkaSecurity;
pub use secret::{ApiKey, Secret};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
pub use tls::McmTls;

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub mcm: McmConfig,
    pub delivery: DeliveryConfig,
    pub observe: ObserveConfig,
    /// The raw `topics:` list, compiled by [`crate::mapping`].
    pub topics: Value,
    /// Dotted paths set by `MCM_BRIDGE__…` variables (for the `validate` summary).
    pub env_overrides: Vec<String>,
    /// Non-fatal findings (printed by `validate` and logged at start-up).
    pub warnings: Vec<String>,
}

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

#[derive(Debug, Clone)]
pub struct McmConfig {
    /// `https://{platform_name}-evt.mcm-api.moloco.com`, or `base_url` when set (trailing `/` removed).
    pub base_url: String,
    pub platform_id: String,
    pub api_key: ApiKey,
    /// Where the key came from, for the summary (`mcm.api_key` or the file path). Never the key.
    pub api_key_source: String,
    pub timeout: Duration,
    /// Global bound on concurrent requests / in-flight messages.
    pub max_in_flight: usize,
    pub allow_insecure_http: bool,
    /// Also enforce the soft rules (revenue for PURCHASE, referrer_page_id for LAND).
    pub strict_validation: bool,
    /// How far ahead of the clock an event timestamp may be (default 0: Moloco rejects future ones).
    pub future_tolerance: Duration,
    pub retry: RetryConfig,
    pub circuit_breaker: CircuitConfig,
    /// Adapt the number of concurrent requests (AIMD) within `[min_in_flight, max_in_flight]`.
    pub adaptive_concurrency: bool,
    pub min_in_flight: usize,
    /// Requests per second at most (0 = no limit), for platforms with a quota.
    pub rate_limit: u32,
    pub http_version: HttpVersion,
    /// Extra certificate authorities to trust (`mcm.tls.ca_file`), next to the platform's.
    pub tls: McmTls,
}

/// Which HTTP version to speak to the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// Whichever costs less per event; today a pool of HTTP/1.1 connections, also when the server
    /// offers HTTP/2 (the measurements are next to the decision in `crate::mcm::client`).
    Auto,
    Http1,
    /// HTTP/2 only (also over plain http, "prior knowledge"): as many multiplexed connections as
    /// `max_in_flight` needs under the server's `SETTINGS_MAX_CONCURRENT_STREAMS`.
    Http2,
}

impl McmConfig {
    /// The User Event endpoint.
    pub fn events_url(&self) -> String {
        format!(
            "{}/rmp/event/v1/platforms/{}/userevents",
            self.base_url, self.platform_id
        )
    }
}

/// Retry policy for retryable outcomes (429, 5xx, timeouts, connection errors).
///
/// Defaults follow Moloco's failure protocol (reference §3.5): wait at least 5 s before retrying
/// a server error, then back off exponentially (10 s, 20 s, 40 s …, capped at 2 min). Attempts made
/// while the circuit breaker is open do not count against `max_attempts`, so a long outage pauses
/// consumption instead of dead-lettering everything in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    /// Total attempts per message (first try included) before `on_permanent_failure` applies.
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(120),
            multiplier: 2.0,
            max_attempts: 10,
        }
    }
}

/// Circuit breaker: after `failure_threshold` consecutive retryable failures stop sending, probe
/// every `probe_interval`, close on the first success. Moloco suggests opening after more than
/// five failures and probing every ~15 min; we probe every 30 s by default so short outages heal
/// quickly, and allow up to 15 min.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitConfig {
    pub failure_threshold: u32,
    pub probe_interval: Duration,
}

impl Default for CircuitConfig {
    fn default() -> CircuitConfig {
        CircuitConfig {
            failure_threshold: 5,
            probe_interval: Duration::from_secs(30),
        }
    }
}

/// Maximum probe interval (Moloco's documented 15 min).
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Any number of messages of a partition in flight; commits stay in offset order.
    Unordered,
    /// Messages with the same Kafka key are never in flight together and complete in order.
    PerKey,
    /// One message per partition at a time.
    PerPartition,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::Unordered => "unordered",
            Ordering::PerKey => "per_key",
            Ordering::PerPartition => "per_partition",
        }
    }
}

/// What happens to a message that cannot be delivered (permanent error or exhausted retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Write it to the dead-letter topic with the reason, then count it done. Never loses data.
    Dlq,
    /// Count it and move on (the count is the only trace).
    Drop,
    /// Stop delivery for the bridge and keep the offset: an operator must act.
    Halt,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Dlq => "dlq",
            FailurePolicy::Drop => "drop",
            FailurePolicy::Halt => "halt",
        }
    }

    pub fn parse(s: &str) -> Option<FailurePolicy> {
        match s {
            "dlq" => Some(FailurePolicy::Dlq),
            "drop" => Some(FailurePolicy::Drop),
            "halt" => Some(FailurePolicy::Halt),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub ordering: Ordering,
    pub on_permanent_failure: FailurePolicy,
    /// Dead-letter topic; defaults to `<group_id>.dlq`.
    pub dlq_topic: String,
    pub max_in_flight_per_partition: usize,
    pub max_in_flight_bytes: u64,
    pub max_in_flight_bytes_per_partition: u64,
    /// How long a revoke or shutdown waits for in-flight deliveries; below the session timeout.
    pub drain_timeout: Duration,
    /// Finished but uncommitted messages a partition may hold before it stops taking more: the
    /// most its next owner replays when commits keep failing (see `pipeline::commit_ledger`).
    pub max_uncommitted_per_partition: usize,
    /// How long the final commit of a shutdown or a revoke may take, whatever the broker does:
    /// with `drain_timeout` it bounds how long SIGTERM takes (see `pipeline::shutdown`).
    pub final_commit_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct ObserveConfig {
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `mcm_bridge=debug,librdkafka=warn`.
    pub log_level: String,
}

/// Loads a configuration file with the real process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    load_with(path, |_, _| ()).map(|(c, ())| c)
}

/// Loads a configuration file and runs `topics_hook` (the mapping compiler) on the `topics` list
/// in the same pass, so section errors and mapping errors are reported together.
pub fn load_with<T>(
    path: &Path,
    topics_hook: impl FnOnce(&Value, &mut Vec<ConfigError>) -> T,
) -> Result<(Config, T), ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::new(
            "",
            format!("cannot read {}: {e}", path.display()),
        )])
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (mut cfg, hooked) = load_str_with(
        &text,
        &base_dir,
        &interpolate::ProcessEnv,
        std::env::vars(),
        topics_hook,
    )?;
    if let Some(w) = exposed_key_warning(path, &text, &cfg) {
        cfg.warnings.push(w);
    }
    Ok((cfg, hooked))
}

/// A warning when the file holds a secret itself (not `${VAR}`: the API key, the Kafka password,
/// a secret librdkafka property) and group or others may read it (DESIGN.md contract 8):
/// secrets should come from the environment or a secret file, or the config should be
/// `chmod 600`. Only the paths and the permission bits are reported, never a secret.
#[cfg(unix)]
fn exposed_key_warning(path: &Path, text: &str, cfg: &Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let raw: Value = serde_yaml_ng::from_str(text).ok()?;
    let mut candidates: Vec<(String, Option<&Value>)> = vec![
        (
            "mcm.api_key".into(),
            raw.get("mcm").and_then(|m| m.get("api_key")),
        ),
        (
            "kafka.sasl.password".into(),
            raw.get("kafka")
                .and_then(|k| k.get("sasl"))
                .and_then(|s| s.get("password")),
        ),
    ];
    let properties = raw.get("kafka").and_then(|k| k.get("properties"));
    for key in cfg.kafka.security.secret_properties.keys() {
        candidates.push((
            format!("kafka.properties.{key}"),
            properties.and_then(|p| p.get(key.as_str())),
        ));
    }
    let literal: Vec<String> = candidates
        .into_iter()
        .filter(|(p, _)| !cfg.env_overrides.contains(p))
        .filter_map(|(p, v)| match v? {
            Value::String(s) if s.contains("${") => None,
            Value::Null => None,
            _ => Some(p),
        })
        .collect();
    if literal.is_empty() {
        return None;
    }
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    let what = if literal == ["mcm.api_key"] {
        "the API key in plain text (mcm.api_key)".to_string()
    } else {
        format!("secrets in plain text ({})", literal.join(", "))
    };
    let instead = if literal == ["mcm.api_key"] {
        "use mcm.api_key: \"${MCM_API_KEY}\" / mcm.api_key_file"
    } else {
        "write them as \"${VAR}\" / use mcm.api_key_file and kafka.sasl.password_file"
    };
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} contains {what} and is readable by group or others (mode {mode:03o}): chmod 600 it, or {instead}",
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn exposed_key_warning(_: &Path, _: &str, _: &Config) -> Option<String> {
    None
}

/// Loads a configuration from text. `base_dir` resolves a relative `api_key_file`; `env` serves
/// `${VAR}`; `overrides` are the candidate `MCM_BRIDGE__…` variables.
pub fn load_str(
    text: &str,
    base_dir: &Path,
    env: &dyn Env,
    overrides: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigErrors> {
    load_str_with(text, base_dir, env, overrides, |_, _| ()).map(|(c, ())| c)
}

/// [`load_str`] plus a hook run on the `topics` list (see [`load_with`]).
pub fn load_str_with<T>(
    text: &str,
    base_dir: &Path,
    env: &dyn Env,
    overrides: impl IntoIterator<Item = (String, String)>,
    topics_hook: impl FnOnce(&Value, &mut Vec<ConfigError>) -> T,
) -> Result<(Config, T), ConfigErrors> {
    let mut root: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        ConfigErrors(vec![ConfigError::new("", format!("invalid YAML{at}: {e}"))])
    })?;
    let env_overrides = env_overlay::apply(&mut root, overrides);
    let mut errors = Vec::new();
    interpolate::interpolate_tree(&mut root, "", env, &mut errors);
    let mut warnings = Vec::new();

    let Some(mut r) = MapReader::new(&root, "", &mut errors) else {
        return Err(ConfigErrors(errors));
    };
    let kafka_v = r.raw("kafka").cloned().unwrap_or(Value::Null);
    let mcm_v = r.raw("mcm").cloned().unwrap_or(Value::Null);
    let delivery_v = r.raw("delivery").cloned().unwrap_or(Value::Null);
    let observe_v = r.raw("observe").cloned().unwrap_or(Value::Null);
    let topics = r.raw("topics").cloned().unwrap_or(Value::Null);
    r.finish();

    let kafka = read_kafka(&kafka_v, base_dir, &mut errors, &mut warnings);
    let mcm = read_mcm(&mcm_v, base_dir, &mut errors, &mut warnings);
    let delivery = read_delivery(&delivery_v, kafka.as_ref(), mcm.as_ref(), &mut errors);
    let observe = read_observe(&observe_v, &mut errors);
    let hooked = if matches!(topics, Value::Sequence(_)) {
        Some(topics_hook(&topics, &mut errors))
    } else {
        errors.push(ConfigError::new(
            "topics",
            "required: a list of mapping blocks, one per topic or topic pattern (see docs/mapping.md)",
        ));
        None
    };

    match (kafka, mcm, delivery, observe, hooked) {
        (Some(kafka), Some(mcm), Some(delivery), Some(observe), Some(hooked))
            if errors.is_empty() =>
        {
            let config = Config {
                kafka,
                mcm,
                delivery,
                observe,
                topics,
                env_overrides,
                warnings,
            };
            Ok((config, hooked))
        }
        _ => Err(ConfigErrors(errors)),
    }
}

fn read_kafka(
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

fn read_mcm(
    v: &Value,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> Option<McmConfig> {
    let mut r = MapReader::new(v, "mcm", errors)?;
    let platform_name = r.opt_string("platform_name");
    let base_url = r.opt_string("base_url");
    let allow_insecure_http = r.opt::<bool>("allow_insecure_http").unwrap_or(false);
    let base_url = match (platform_name, base_url) {
        (Some(_), Some(_)) => {
            r.error(
                "base_url",
                "set either mcm.platform_name or mcm.base_url, not both",
            );
            None
        }
        (None, None) => {
            r.error(
                "platform_name",
                "required (the platform name Moloco gave you, e.g. \"acme\"; or set mcm.base_url)",
            );
            None
        }
        (Some(name), None) => {
            // Host label convention (reference §1.2): lower-case, `_` and spaces become `-`.
            let label = name.trim().to_ascii_lowercase().replace(['_', ' '], "-");
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                r.error(
                    "platform_name",
                    format!("{name:?} cannot form a host name (letters, digits, '-', '_' only)"),
                );
                None
            } else {
                Some(format!("https://{label}-evt.mcm-api.moloco.com"))
            }
        }
        (None, Some(url)) => {
            let url = url.trim().trim_end_matches('/').to_string();
            if url.starts_with("https://") {
                Some(url)
            } else if url.starts_with("http://") {
                if allow_insecure_http {
                    Some(url)
                } else {
                    r.error(
                        "base_url",
                        "plain http:// sends the API key unencrypted; use https:// (or set mcm.allow_insecure_http: true for a local sandbox)",
                    );
                    None
                }
            } else {
                r.error("base_url", format!("{url:?} must start with https://"));
                None
            }
        }
    };
    let platform_id = r.req::<String>(
        "platform_id",
        "the platform id Moloco gave you, e.g. \"ACME_TEST\"",
    );
    if let Some(id) = &platform_id {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            r.error(
                "platform_id",
                format!("{id:?} is not a platform id (letters, digits and '_' only, e.g. \"ACME_TEST\")"),
            );
        }
    }
    let api_key = secret::read_inline_or_file(
        &mut r,
        "api_key",
        "api_key_file",
        base_dir,
        "usually \"${MCM_API_KEY}\"; or mcm.api_key_file: /run/secrets/mcm-api-key",
    );
    let timeout = r.duration("timeout").unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        r.error("timeout", "must be above zero");
    }
    let max_in_flight = r.opt::<usize>("max_in_flight").unwrap_or(256);
    if max_in_flight == 0 {
        r.error("max_in_flight", "must be at least 1");
    }
    let strict_validation = r.opt::<bool>("strict_validation").unwrap_or(false);
    let future_tolerance = r.duration("future_tolerance").unwrap_or(Duration::ZERO);
    let retry = r
        .raw("retry")
        .cloned()
        .map(|v| read_retry(&v, r.errors()))
        .unwrap_or_default();
    let adaptive_concurrency = r.opt::<bool>("adaptive_concurrency").unwrap_or(true);
    let min_in_flight = r
        .opt::<usize>("min_in_flight")
        .unwrap_or(8)
        .clamp(1, max_in_flight.max(1));
    let rate_limit = r.opt::<u32>("rate_limit").unwrap_or(0);
    let http_version = match r.opt_string("http_version").as_deref() {
        None | Some("auto") => HttpVersion::Auto,
        Some("http1") => HttpVersion::Http1,
        Some("http2") => HttpVersion::Http2,
        Some(other) => {
            r.error(
                "http_version",
                format!("{other:?} is not one of: auto, http1, http2"),
            );
            HttpVersion::Auto
        }
    };
    let circuit_breaker = r
        .raw("circuit_breaker")
        .cloned()
        .map(|v| read_circuit(&v, r.errors()))
        .unwrap_or_default();
    let tls = r
        .raw("tls")
        .cloned()
        .map(|v| tls::read_tls(&v, base_dir, r.errors()))
        .unwrap_or_default();
    r.finish();
    if base_url
        .as_deref()
        .is_some_and(|u| u.starts_with("http://"))
    {
        warnings.push("mcm.base_url uses plain http:// (allowed by mcm.allow_insecure_http): only for a local sandbox".into());
    }
    let (api_key, api_key_source) = api_key?;
    Some(McmConfig {
        base_url: base_url?,
        platform_id: platform_id?,
        api_key,
        api_key_source,
        timeout,
        max_in_flight,
        allow_insecure_http,
        strict_validation,
        future_tolerance,
        retry,
        circuit_breaker,
        adaptive_concurrency,
        min_in_flight,
        rate_limit,
        http_version,
        tls,
    })
}

fn read_retry(v: &Value, errors: &mut Vec<ConfigError>) -> RetryConfig {
    let d = RetryConfig::default();
    let Some(mut r) = MapReader::new(v, "mcm.retry", errors) else {
        return d;
    };
    let initial_backoff = r.duration("initial_backoff").unwrap_or(d.initial_backoff);
    let max_backoff = r.duration("max_backoff").unwrap_or(d.max_backoff);
    let multiplier = r.opt::<f64>("multiplier").unwrap_or(d.multiplier);
    let max_attempts = r.opt::<u32>("max_attempts").unwrap_or(d.max_attempts);
    if initial_backoff.is_zero() {
        r.error("initial_backoff", "must be above zero");
    }
    if max_backoff < initial_backoff {
        r.error("max_backoff", "must not be below mcm.retry.initial_backoff");
    }
    if !(multiplier.is_finite() && multiplier >= 1.0) {
        r.error("multiplier", format!("{multiplier} must be a number ≥ 1"));
    }
    if max_attempts == 0 {
        r.error(
            "max_attempts",
            "must be at least 1 (the first attempt counts)",
        );
    }
    r.finish();
    RetryConfig {
        initial_backoff,
        max_backoff,
        multiplier,
        max_attempts,
    }
}

fn read_circuit(v: &Value, errors: &mut Vec<ConfigError>) -> CircuitConfig {
    let d = CircuitConfig::default();
    let Some(mut r) = MapReader::new(v, "mcm.circuit_breaker", errors) else {
        return d;
    };
    let failure_threshold = r
        .opt::<u32>("failure_threshold")
        .unwrap_or(d.failure_threshold);
    let probe_interval = r.duration("probe_interval").unwrap_or(d.probe_interval);
    if failure_threshold == 0 {
        r.error("failure_threshold", "must be at least 1");
    }
    if probe_interval.is_zero() || probe_interval > MAX_PROBE_INTERVAL {
        r.error(
            "probe_interval",
            "must be above zero and at most 15m (Moloco's failure protocol)",
        );
    }
    r.finish();
    CircuitConfig {
        failure_threshold,
        probe_interval,
    }
}

fn read_delivery(
    v: &Value,
    kafka: Option<&KafkaConfig>,
    mcm: Option<&McmConfig>,
    errors: &mut Vec<ConfigError>,
) -> Option<DeliveryConfig> {
    let mut r = MapReader::new(v, "delivery", errors)?;
    let ordering = match r.opt_string("ordering").as_deref() {
        None | Some("unordered") => Ordering::Unordered,
        Some("per_key") => Ordering::PerKey,
        Some("per_partition") => Ordering::PerPartition,
        Some(other) => {
            r.error(
                "ordering",
                format!("{other:?} is not one of: unordered, per_key, per_partition"),
            );
            Ordering::Unordered
        }
    };
    let on_permanent_failure = match r.opt_string("on_permanent_failure") {
        None => FailurePolicy::Dlq,
        Some(s) => FailurePolicy::parse(&s).unwrap_or_else(|| {
            r.error(
                "on_permanent_failure",
                format!("{s:?} is not one of: dlq, drop, halt"),
            );
            FailurePolicy::Dlq
        }),
    };
    let dlq_topic = r.opt_string("dlq_topic");
    let global = mcm.map_or(256, |m| m.max_in_flight);
    let max_in_flight_per_partition = r
        .opt::<usize>("max_in_flight_per_partition")
        .unwrap_or(global);
    if max_in_flight_per_partition == 0 {
        r.error("max_in_flight_per_partition", "must be at least 1");
    }
    let max_in_flight_bytes = r.bytes("max_in_flight_bytes").unwrap_or(64 << 20);
    let max_in_flight_bytes_per_partition = r
        .bytes("max_in_flight_bytes_per_partition")
        .unwrap_or(max_in_flight_bytes.min(16 << 20));
    if max_in_flight_bytes == 0 || max_in_flight_bytes_per_partition == 0 {
        r.error("max_in_flight_bytes", "byte budgets must be above zero");
    }
    let drain_timeout = r
        .duration("drain_timeout")
        .unwrap_or(Duration::from_secs(15));
    // 4 × the partition's request window: commits (every commit_interval, or every max_in_flight
    // finished messages) keep a healthy partition far below it, so only failing commits reach it.
    let max_uncommitted_per_partition = r
        .opt::<usize>("max_uncommitted_per_partition")
        .unwrap_or(max_in_flight_per_partition.saturating_mul(4));
    if max_uncommitted_per_partition < max_in_flight_per_partition {
        r.error(
            "max_uncommitted_per_partition",
            format!(
                "must be at least max_in_flight_per_partition ({max_in_flight_per_partition}): a smaller bound pauses healthy partitions between commits"
            ),
        );
    }
    // 5 s: a healthy group answers a commit in milliseconds, and a rebalance refuses it for a
    // second or two. With the default 15 s drain and ~1 s to close, SIGTERM ends in about 21 s at
    // worst: well inside the 30 s grace of docker compose and the 45 s of the shipped manifests.
    let final_commit_timeout = r
        .duration("final_commit_timeout")
        .unwrap_or(Duration::from_secs(5));
    if final_commit_timeout.is_zero() {
        r.error("final_commit_timeout", "must be above zero");
    }
    if let Some(k) = kafka {
        // Vector refuses the same combination: a drain longer than the session timeout gets the
        // member expelled mid-drain, so its commits fail and everything is re-delivered.
        // Under the consumer protocol the session timeout is the broker's; its default is the
        // bound we can check (a broker set lower is the operator's to match).
        let session = k.group_protocol.session_timeout();
        if drain_timeout >= session {
            let whose = match k.group_protocol {
                GroupProtocol::Classic { .. } => "kafka.session_timeout",
                GroupProtocol::Consumer { .. } => {
                    "the broker's default group.consumer.session.timeout.ms"
                }
            };
            r.error(
                "drain_timeout",
                format!(
                    "{} must be below {whose} ({})",
                    humantime::format_duration(drain_timeout),
                    humantime::format_duration(session)
                ),
            );
        }
    }
    r.finish();
    let dlq_topic = dlq_topic.or_else(|| kafka.map(|k| format!("{}.dlq", k.group_id)))?;
    Some(DeliveryConfig {
        ordering,
        on_permanent_failure,
        dlq_topic,
        max_in_flight_per_partition,
        max_in_flight_bytes,
        max_in_flight_bytes_per_partition,
        drain_timeout,
        max_uncommitted_per_partition,
        final_commit_timeout,
    })
}

fn read_observe(v: &Value, errors: &mut Vec<ConfigError>) -> Option<ObserveConfig> {
    let mut r = MapReader::new(v, "observe", errors)?;
    let listen = match r.opt_string("listen") {
        None => SocketAddr::from(([0, 0, 0, 0], 9464)),
        Some(s) => match s.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                r.error(
                    "listen",
                    format!("{s:?} is not an address like \"0.0.0.0:9464\""),
                );
                SocketAddr::from(([0, 0, 0, 0], 9464))
            }
        },
    };
    let log_format = match r.opt_string("log_format").as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            r.error("log_format", format!("{other:?} is not one of: text, json"));
            LogFormat::Text
        }
    };
    let log_level = r.opt_string("log_level").unwrap_or_else(|| "info".into());
    r.finish();
    Some(ObserveConfig {
        listen,
        log_format,
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
kafka:
  bootstrap_servers: 127.0.0.1:9092
  group_id: bridge
mcm:
  platform_name: Acme_Shop
  platform_id: ACME_TEST
  api_key: ${MCM_API_KEY}
topics: []
"#;

    fn env(name: &str) -> Option<String> {
        (name == "MCM_API_KEY").then(|| "k3y".to_string())
    }

    fn load(text: &str) -> Result<Config, ConfigErrors> {
        load_str(text, Path::new("."), &env, Vec::<(String, String)>::new())
    }

    fn error_paths(text: &str) -> Vec<String> {
        match load(text) {
            Ok(_) => vec![],
            Err(e) => e.0.into_iter().map(|e| e.path).collect(),
        }
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = load(MINIMAL).expect("valid");
        assert_eq!(c.mcm.base_url, "https://acme-shop-evt.mcm-api.moloco.com");
        assert_eq!(
            c.mcm.events_url(),
            "https://acme-shop-evt.mcm-api.moloco.com/rmp/event/v1/platforms/ACME_TEST/userevents"
        );
        assert_eq!(c.mcm.api_key.expose(), "k3y");
        assert_eq!(c.mcm.max_in_flight, 256);
        assert_eq!(c.mcm.retry, RetryConfig::default());
        assert_eq!(c.delivery.dlq_topic, "bridge.dlq");
        assert_eq!(c.delivery.ordering, Ordering::Unordered);
        assert_eq!(c.delivery.on_permanent_failure, FailurePolicy::Dlq);
        assert_eq!(
            c.kafka.group_protocol,
            GroupProtocol::Classic {
                assignment_strategy: "cooperative-sticky".into(),
                session_timeout: Duration::from_secs(45)
            }
        );
        assert_eq!(c.observe.listen.port(), 9464);
    }

    #[test]
    fn reports_every_error_with_its_yaml_path() {
        let text = r#"
kafka:
  bootstrap_servers: b:9092
  group_id: g
  comit_interval: 1s
mcm:
  platform_name: acme
  platform_id: ACME
  api_key: k
  retry:
    max_backoff: 5 secs
delivery:
  ordering: sorted
topics: []
"#;
        assert_eq!(
            error_paths(text),
            [
                "kafka.comit_interval",
                "mcm.retry.max_backoff",
                "delivery.ordering"
            ]
        );
        let msg = load(text).unwrap_err().to_string();
        assert!(
            msg.contains("mcm.retry.max_backoff: invalid duration \"5 secs\""),
            "{msg}"
        );
        assert!(msg.contains("did you mean `commit_interval`"), "{msg}");
    }

    #[test]
    fn missing_required_fields_say_what_to_put_there() {
        let msg = load("topics: []\n").unwrap_err().to_string();
        for needle in [
            "kafka.bootstrap_servers: required",
            "kafka.group_id: required",
            "mcm.platform_name: required",
            "mcm.platform_id: required (the platform id Moloco gave you",
            "mcm.api_key: required",
        ] {
            assert!(msg.contains(needle), "{needle} not in {msg}");
        }
    }

    #[test]
    fn plain_http_needs_explicit_permission() {
        let text = MINIMAL.replace(
            "platform_name: Acme_Shop",
            "base_url: http://127.0.0.1:8080/",
        );
        assert_eq!(error_paths(&text), ["mcm.base_url"]);
        let text = text.replace("api_key:", "allow_insecure_http: true\n  api_key:");
        let c = load(&text).expect("allowed");
        assert_eq!(c.mcm.base_url, "http://127.0.0.1:8080");
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn api_key_from_file_is_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("key"), "fromfile\n").expect("write");
        let text = MINIMAL.replace("api_key: ${MCM_API_KEY}", "api_key_file: key");
        let c = load_str(&text, dir.path(), &env, Vec::<(String, String)>::new()).expect("valid");
        assert_eq!(c.mcm.api_key.expose(), "fromfile");
        assert!(!format!("{c:?}").contains("fromfile"));
        let both = MINIMAL.replace("api_key: ${MCM_API_KEY}", "api_key: a\n  api_key_file: key");
        assert_eq!(error_paths(&both), ["mcm.api_key_file"]);
    }

    #[test]
    fn tls_ca_file_problems_are_reported_with_the_other_errors_at_their_path() {
        let text = MINIMAL.replace(
            "api_key: ${MCM_API_KEY}",
            "api_key: k\n  timeout: soon\n  tls:\n    ca_file: missing.pem",
        );
        assert_eq!(error_paths(&text), ["mcm.timeout", "mcm.tls.ca_file"]);
        let c = load(MINIMAL).expect("valid");
        assert_eq!(c.mcm.tls, McmTls::default(), "no extra roots by default");
    }

    #[test]
    fn unset_variable_is_an_error_at_its_path() {
        let text = MINIMAL.replace("${MCM_API_KEY}", "${NOT_SET_ANYWHERE}");
        assert_eq!(error_paths(&text), ["mcm.api_key"]);
    }

    #[test]
    fn environment_overrides_apply_before_validation() {
        let c = load_str(
            MINIMAL,
            Path::new("."),
            &env,
            [
                (
                    "MCM_BRIDGE__MCM__PLATFORM_ID".to_string(),
                    "OTHER_TEST".to_string(),
                ),
                (
                    "MCM_BRIDGE__MCM__MAX_IN_FLIGHT".to_string(),
                    "512".to_string(),
                ),
            ],
        )
        .expect("valid");
        assert_eq!(c.mcm.platform_id, "OTHER_TEST");
        assert_eq!(c.mcm.max_in_flight, 512);
        assert_eq!(c.env_overrides, ["mcm.max_in_flight", "mcm.platform_id"]);
    }

    #[test]
    fn the_final_commit_is_bounded_by_default_and_never_unbounded() {
        let c = load_str(
            &MINIMAL.replace("${MCM_API_KEY}", "k"),
            Path::new("."),
            &|_: &str| None,
            Vec::<(String, String)>::new(),
        )
        .expect("valid");
        assert_eq!(c.delivery.final_commit_timeout, Duration::from_secs(5));
        let text = MINIMAL.to_string() + "delivery:\n  final_commit_timeout: 0s\n";
        assert_eq!(error_paths(&text), ["delivery.final_commit_timeout"]);
    }

    #[test]
    fn cross_field_rules() {
        let text = MINIMAL.replace(
            "group_id: bridge",
            "group_id: bridge\n  session_timeout: 10s\n  properties:\n    enable.auto.commit: false\n    security.protocol: SASL_SSL",
        ) + "delivery:\n  drain_timeout: 10s\n";
        assert_eq!(
            error_paths(&text),
            [
                "kafka.properties.enable.auto.commit",
                "delivery.drain_timeout"
            ]
        );
        let text = MINIMAL.replace(
            "api_key: ${MCM_API_KEY}",
            "api_key: k\n  circuit_breaker:\n    probe_interval: 1h\n  retry:\n    multiplier: 0.5",
        );
        assert_eq!(
            error_paths(&text),
            ["mcm.retry.multiplier", "mcm.circuit_breaker.probe_interval"]
        );
    }

    #[test]
    fn topics_must_be_a_list() {
        let text = MINIMAL.replace("topics: []", "topics: {}");
        assert_eq!(error_paths(&text), ["topics"]);
    }

    #[test]
    fn invalid_yaml_reports_the_location() {
        let msg = load("kafka: [\n").unwrap_err().to_string();
        assert!(msg.starts_with("invalid YAML at line"), "{msg}");
    }
}
