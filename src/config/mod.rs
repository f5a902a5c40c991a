//! Configuration: model, loading and validation.
//!
//! Loading order: parse the YAML file → apply `MCM_BRIDGE__…` environment overrides →
//! interpolate `${VAR}` / `${VAR:-default}` in string values → read every section field by field,
//! collecting *all* errors with their YAML paths (see [`decode`]). Checks that span fields
//! (`drain_timeout` below the session timeout, `http://` only with `allow_insecure_http`, …) run
//! after the sections. The `topics` section is kept as raw YAML here; the mapping compiler owns
//! its rules and reports its errors into the same list.
//!
//! Each section has its own module ([`kafka`], [`mcm`], [`delivery`], [`observe`]) with its types
//! and its reader; this one puts them together and reports what the whole file got wrong.

pub mod decode;
pub mod delivery;
pub mod env_overlay;
mod exposed_secrets;
pub mod fingerprint;
pub mod group_protocol;
pub mod interpolate;
pub mod kafka;
pub mod kafka_security;
pub mod mcm;
pub mod observe;
pub mod schema_registry;
pub mod secret;
pub mod tls;

use decode::{ConfigError, ConfigErrors, MapReader};
pub use delivery::{DeliveryConfig, DeliveryMode, FailurePolicy, Ordering};
pub use group_protocol::GroupProtocol;
use interpolate::Env;
pub use kafka::{KafkaConfig, MANAGED_KAFKA_PROPERTIES};
pub use kafka_security::KafkaSecurity;
pub use mcm::{CircuitConfig, HttpVersion, McmConfig, RetryConfig, MAX_PROBE_INTERVAL};
pub use observe::{LogFormat, ObserveConfig};
pub use secret::{ApiKey, Secret};
use serde_yaml_ng::Value;
use std::path::Path;
pub use tls::McmTls;

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub mcm: McmConfig,
    pub delivery: DeliveryConfig,
    pub observe: ObserveConfig,
    /// Where `format: avro` / `json_schema` topics' schemas come from (`None` when not set).
    pub schema_registry: Option<schema_registry::SchemaRegistryConfig>,
    /// The raw `topics:` list, compiled by [`crate::mapping`].
    pub topics: Value,
    /// Dotted paths set by `MCM_BRIDGE__…` variables (for the `validate` summary).
    pub env_overrides: Vec<String>,
    /// Non-fatal findings (printed by `validate` and logged at start-up).
    pub warnings: Vec<String>,
    /// What a live reload compares: the rules' hash and each other section's.
    pub fingerprint: fingerprint::Fingerprint,
}

impl Config {
    /// Shadow mode (`delivery.mode: shadow` or `run --dry-run`): consume under
    /// `delivery.shadow_group_id` instead of `kafka.group_id`, so that every consumer the bridge
    /// builds (offsets, lag, the group's commits) sees only the shadow group. Idempotent.
    /// The client id gets `-shadow`, so that broker quotas and logs tell the shadow consumer
    /// from production's (a shadow run reading the retained history must not use production's
    /// fetch quota).
    pub fn enter_shadow_mode(&mut self) {
        self.delivery.mode = DeliveryMode::Shadow;
        if self.kafka.group_id != self.delivery.shadow_group_id {
            self.kafka.group_id = self.delivery.shadow_group_id.clone();
            self.kafka.client_id = format!("{}-shadow", self.kafka.client_id);
        }
    }

    pub fn is_shadow(&self) -> bool {
        self.delivery.mode == DeliveryMode::Shadow
    }
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
    if let Some(w) = exposed_secrets::exposed_key_warning(path, &text, &cfg) {
        cfg.warnings.push(w);
    }
    Ok((cfg, hooked))
}

/// Only the `observe` section of a configuration file, as `run` reads it (overrides and `${VAR}`
/// applied to it), without the other sections: `mcm-bridge tap` needs the tap's address, not the
/// API key or the Kafka password, so it runs where those secrets are not.
pub fn load_observe(path: &Path) -> Result<ObserveConfig, ConfigErrors> {
    let fail = |message: String| ConfigErrors(vec![ConfigError::new("", message)]);
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    let mut root: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| fail(format!("invalid YAML: {e}")))?;
    root.apply_merge()
        .map_err(|e| fail(format!("invalid YAML merge: {e}")))?;
    env_overlay::apply(&mut root, std::env::vars());
    let mut observe = root.get("observe").cloned().unwrap_or(Value::Null);
    let mut errors = Vec::new();
    interpolate::interpolate_tree(
        &mut observe,
        "observe",
        &interpolate::ProcessEnv,
        &mut errors,
    );
    let mut warnings = Vec::new();
    match observe::read_observe(&observe, &mut errors, &mut warnings) {
        Some(o) if errors.is_empty() => Ok(o),
        _ => Err(ConfigErrors(errors)),
    }
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
    // YAML merge keys (`<<: *anchor`, YAML 1.1): shared rule parts written once. Applied before
    // anything reads the tree, so a merged key is checked like a written one; keys written next
    // to `<<` win, and a merge is shallow (a merged `device:` is replaced whole, not combined).
    root.apply_merge().map_err(|e| {
        ConfigErrors(vec![ConfigError::new(
            "",
            format!("invalid YAML merge (`<<:` takes a mapping or a list of mappings): {e}"),
        )])
    })?;
    // Top-level `x-…` keys are extension fields (as in Compose files): a home for anchors.
    if let Value::Mapping(m) = &mut root {
        m.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("x-")));
    }
    let env_overrides = env_overlay::apply(&mut root, overrides);
    let mut errors = Vec::new();
    interpolate::interpolate_tree(&mut root, "", env, &mut errors);
    let mut warnings = Vec::new();
    let mut fingerprint = fingerprint::Fingerprint::of(&root);

    let Some(mut r) = MapReader::new(&root, "", &mut errors) else {
        return Err(ConfigErrors(errors));
    };
    let kafka_v = r.raw("kafka").cloned().unwrap_or(Value::Null);
    let mcm_v = r.raw("mcm").cloned().unwrap_or(Value::Null);
    let delivery_v = r.raw("delivery").cloned().unwrap_or(Value::Null);
    let observe_v = r.raw("observe").cloned().unwrap_or(Value::Null);
    let registry_v = r.raw("schema_registry").cloned();
    let mut topics = r.raw("topics").cloned().unwrap_or(Value::Null);
    r.finish();
    for file in resolve_schema_files(&mut topics, base_dir) {
        // Unreadable: the compiler reports it with the block's path.
        if let Ok(contents) = std::fs::read(&file) {
            fingerprint.fold_topics_file(&contents);
        }
    }

    let kafka = kafka::read_kafka(&kafka_v, base_dir, &mut errors, &mut warnings);
    let mcm = mcm::read_mcm(&mcm_v, base_dir, &mut errors, &mut warnings);
    let delivery = delivery::read_delivery(&delivery_v, kafka.as_ref(), mcm.as_ref(), &mut errors);
    let observe = observe::read_observe(&observe_v, &mut errors, &mut warnings);
    let schema_registry = registry_v
        .as_ref()
        .and_then(|v| schema_registry::read_schema_registry(v, base_dir, &mut errors));
    if registry_v.is_none() {
        require_registry_for_schemad_topics(&topics, &mut errors);
    }
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
            fingerprint.fold_secret("mcm", mcm.api_key.expose());
            if let Some(sasl) = &kafka.security.sasl {
                fingerprint.fold_secret("kafka", sasl.password.expose());
            }
            if let Some(sr) = &schema_registry {
                match &sr.auth {
                    schema_registry::RegistryAuth::Basic { password, .. } => {
                        fingerprint.fold_secret("schema_registry", password.expose())
                    }
                    schema_registry::RegistryAuth::Bearer(token) => {
                        fingerprint.fold_secret("schema_registry", token.expose())
                    }
                    schema_registry::RegistryAuth::None => {}
                }
            }
            let mut config = Config {
                kafka,
                mcm,
                delivery,
                observe,
                schema_registry,
                topics,
                env_overrides,
                warnings,
                fingerprint,
            };
            if config.is_shadow() {
                config.enter_shadow_mode();
            }
            Ok((config, hooked))
        }
        _ => Err(ConfigErrors(errors)),
    }
}

/// A block's `schema_file:` is written relative to the config file, as `api_key_file` is; the
/// mapping compiler reads it as given, so relative paths are made absolute here, before anything
/// (the compiler, `cfg.topics`' later readers) sees the tree. Returns the files, whose
/// contents are part of the rules' fingerprint.
fn resolve_schema_files(topics: &mut Value, base_dir: &Path) -> Vec<std::path::PathBuf> {
    let Value::Sequence(blocks) = topics else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for block in blocks {
        if let Some(Value::String(file)) = block.get_mut("schema_file") {
            let path = base_dir.join(file.as_str()); // an absolute `file` stays as it is
            *file = path.display().to_string();
            files.push(path);
        }
    }
    files
}

/// A block with `format: avro` (without its own `schema_file:`), `protobuf` or `json_schema`
/// reads its schemas from the registry: without a `schema_registry` section, every one of its
/// messages would wait for a schema forever.
fn require_registry_for_schemad_topics(topics: &Value, errors: &mut Vec<ConfigError>) {
    let Value::Sequence(blocks) = topics else {
        return;
    };
    for (i, block) in blocks.iter().enumerate() {
        if block.get("schema_file").is_some() {
            continue; // its own schema; a misuse (not `format: avro`) is the compiler's to say
        }
        if let Some(f) = block.get("format").and_then(Value::as_str) {
            if f != "json" {
                errors.push(ConfigError::new(
                    format!("topics[{i}].format"),
                    format!(
                        "`format: {f}` reads schemas from a registry: add a `schema_registry:` \
                         section with its url, or (Avro without a registry) the block's own \
                         `schema_file:` (see docs/formats.md)"
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
    fn yaml_merge_keys_share_rule_parts_and_written_keys_win() {
        let text = MINIMAL.replace(
            "topics: []",
            r#"x-common: &common
  timestamp: {path: ts, transform: epoch_seconds}
  channel_type: SITE
  user_id: {path: user}
topics:
  - topic: shop
    rules:
      - event_type: PAGE_VIEW
        when: {field: page, exists: true}
        fields:
          <<: *common
          channel_type: MOBILE_SITE
          page_id: {path: page}
      - event_type: HOME
        fields: {<<: *common}
"#,
        );
        let (_, plan) = load_str_with(
            &text,
            Path::new("."),
            &env,
            Vec::<(String, String)>::new(),
            crate::mapping::compile,
        )
        .unwrap_or_else(|e| panic!("merged rules compile: {e}"));
        let mapping = plan.route("shop").expect("routed");
        let opts = crate::mcm::validate::ValidateOptions::at(1_700_000_000_000);
        let event = |payload: &[u8]| {
            let source = crate::mapping::SourceMessage {
                topic: "shop",
                partition: 0,
                offset: 7,
                key: None,
                headers: &[],
                timestamp_ms: None,
                payload: Some(payload),
            };
            match mapping.process(&source, &opts) {
                crate::mapping::Processed::Deliver(e) => {
                    String::from_utf8(e.to_json_bytes()).unwrap_or_default()
                }
                other => panic!("not delivered: {other:?}"),
            }
        };
        // Written keys win over merged ones; merged ones are there.
        let page = event(br#"{"ts": 1700000000, "user": "u1", "page": "p9"}"#);
        assert!(page.contains(r#""channel_type":"MOBILE_SITE""#), "{page}");
        assert!(page.contains(r#""user_id":"u1""#), "{page}");
        let home = event(br#"{"ts": 1700000000, "user": "u1"}"#);
        assert!(home.contains(r#""channel_type":"SITE""#), "{home}");
        assert!(home.contains(r#""event_type":"HOME""#), "{home}");
    }

    #[test]
    fn a_base_url_holding_the_endpoint_path_is_refused_with_the_address_to_use() {
        // What Moloco's docs show: the whole endpoint. Appending the path again 404s every POST.
        let text = MINIMAL.replace(
            "platform_name: Acme_Shop",
            "base_url: https://acme-evt.mcm-api.moloco.com/rmp/event/v1/platforms/ACME/userevents",
        );
        let Err(errors) = load(&text) else {
            panic!("a base_url with the endpoint path must be refused");
        };
        let messages: Vec<String> = errors.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.0.len(), 1, "{messages:?}");
        assert_eq!(errors.0[0].path, "mcm.base_url");
        assert!(
            messages[0].contains("\"https://acme-evt.mcm-api.moloco.com\""),
            "names the address to use: {messages:?}"
        );
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
    fn named_choices_are_read_exactly_and_listed_when_wrong() {
        let text = MINIMAL.replace(
            "api_key: ${MCM_API_KEY}",
            "api_key: k\n  http_version: HTTP2",
        ) + "delivery:\n  ordering: PerKey\n  on_permanent_failure: DLQ\nobserve:\n  log_format: yaml\n";
        let msg = load(&text).unwrap_err().to_string();
        for needle in [
            "mcm.http_version: \"HTTP2\" is not one of: auto, http1, http2",
            "delivery.ordering: \"PerKey\" is not one of: unordered, per_key, per_partition",
            "delivery.on_permanent_failure: \"DLQ\" is not one of: dlq, drop, halt",
            "observe.log_format: \"yaml\" is not one of: text, json",
        ] {
            assert!(msg.contains(needle), "{needle} not in {msg}");
        }
        for (http, ordering, policy, log) in [
            ("auto", "unordered", "dlq", "text"),
            ("http1", "per_key", "drop", "json"),
            ("http2", "per_partition", "halt", "text"),
        ] {
            let text = MINIMAL.replace(
                "api_key: ${MCM_API_KEY}",
                &format!("api_key: k\n  http_version: {http}"),
            ) + &format!("delivery:\n  ordering: {ordering}\n  on_permanent_failure: {policy}\nobserve:\n  log_format: {log}\n");
            let c = load(&text).expect("valid");
            assert_eq!(c.delivery.ordering.as_str(), ordering);
            assert_eq!(c.delivery.on_permanent_failure.as_str(), policy);
            assert_eq!(
                FailurePolicy::parse(policy),
                Some(c.delivery.on_permanent_failure)
            );
            let want_http = match http {
                "auto" => HttpVersion::Auto,
                "http1" => HttpVersion::Http1,
                _ => HttpVersion::Http2,
            };
            assert_eq!(c.mcm.http_version, want_http);
            let want_log = if log == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
            assert_eq!(c.observe.log_format, want_log);
        }
        assert_eq!(FailurePolicy::parse("Halt"), None, "case-sensitive");
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
