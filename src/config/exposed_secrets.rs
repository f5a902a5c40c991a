//! The warning for a configuration file that holds a secret in plain text and that group or
//! others may read (DESIGN.md contract 8). It names the YAML paths and the permission bits, never
//! a secret; it warns and does not refuse (see [`super::kafka_security`] for why).

use super::Config;
use serde_yaml_ng::Value;
use std::path::Path;

/// A warning when the file holds a secret itself (not `${VAR}`: the API key, the Kafka password,
/// a secret librdkafka property) and group or others may read it (DESIGN.md contract 8):
/// secrets should come from the environment or a secret file, or the config should be
/// `chmod 600`. Only the paths and the permission bits are reported, never a secret.
#[cfg(unix)]
pub(super) fn exposed_key_warning(path: &Path, text: &str, cfg: &Config) -> Option<String> {
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
pub(super) fn exposed_key_warning(_: &Path, _: &str, _: &Config) -> Option<String> {
    None
}
