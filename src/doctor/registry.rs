//! The schema registry half of `doctor` (only when the config has a `schema_registry`): the
//! registry answers with the configured credentials, and for each `format: avro` topic block
//! or `format: protobuf` topic block named exactly (`topic:`; Protobuf: its first message type), the rules' paths exist in the latest schema registered under the
//! topic's subject (`<topic>-value`, Confluent's default TopicNameStrategy).
//!
//! A path the latest schema cannot hold is a warning, not a failure: a rule may read an
//! alternative on purpose (`first:` over an old and a new field), and older schema versions may
//! still be in the topic. `format: json_schema` blocks: the rules' paths must be *declared* by the
//! JSON Schema (`properties`, `$ref`s, combinators: `schema::json_schema`). What this does not
//! check: pattern blocks (no subject to name), other subject strategies (a missing
//! `<topic>-value` subject is a warning).

use crate::config::schema_registry::SchemaRegistryConfig;
use crate::doctor::report::Check;
use crate::mapping::{Format, MappingPlan};
use crate::schema::{FetchError, Known, RegistryClient};

pub async fn check(cfg: &SchemaRegistryConfig, plan: &MappingPlan) -> Vec<Check> {
    let subject = cfg.urls.join(", ");
    let client = match RegistryClient::new(cfg) {
        Ok(c) => c,
        Err(e) => return vec![Check::fail("schema_registry", subject, e.to_string())],
    };
    let mut checks = Vec::new();
    match client.ping().await {
        Ok(()) => checks.push(Check::pass(
            "schema_registry",
            subject,
            "answers with these credentials",
        )),
        Err(e) => {
            let what = match &e {
                FetchError::Unavailable { .. } => "unreachable or failing (the bridge would pause until it answers)",
                FetchError::Refused { .. } => "refuses (check schema_registry.url and its credentials; the bridge would pause until fixed)",
            };
            checks.push(Check::fail(
                "schema_registry",
                subject,
                format!("{what}: {e}"),
            ));
            return checks;
        }
    }
    let exact = plan.subscriptions();
    for (i, block) in plan.blocks().iter().enumerate() {
        if !block.uses_registry() {
            continue;
        }
        let at = format!("topics[{i}] ({})", block.name);
        if !exact.contains(&block.name) {
            checks.push(Check::skip(
                "schema_registry.subject",
                at,
                "a pattern block: no subject to check its paths against",
            ));
            continue;
        }
        let subject = format!("{}-value", block.name);
        let known = match client.latest(&subject).await {
            Ok(Some(k)) => k,
            Ok(None) => {
                checks.push(Check::warn(
                    "schema_registry.subject",
                    at,
                    format!("no subject {subject:?} in the registry (TopicNameStrategy); the rules' paths are not checked (fine with another subject strategy, or before the first message is produced)"),
                ));
                continue;
            }
            Err(e) => {
                checks.push(Check::fail("schema_registry.subject", at, e.to_string()));
                continue;
            }
        };
        let has_path = |p: &Vec<String>| match &known {
            Known::Avro(s) => s.has_path(p),
            Known::Protobuf(s) => s.has_path(p),
            _ => true,
        };
        checks.push(match (&known, block.format) {
            (Known::Avro(_), Format::Avro) | (Known::Protobuf(_), Format::Protobuf) => {
                let paths = block.need().paths();
                let missing: Vec<String> = paths
                    .iter()
                    .filter(|p| !has_path(p))
                    .map(|p| p.join("."))
                    .collect();
                if missing.is_empty() {
                    Check::pass(
                        "schema_registry.subject",
                        at,
                        format!(
                            "every path the rules read ({}) is in the latest schema of {subject:?}",
                            paths.len()
                        ),
                    )
                } else {
                    Check::warn(
                        "schema_registry.subject",
                        at,
                        format!(
                            "the rules read {} the latest schema of {subject:?} has no field for: {}",
                            if missing.len() == 1 { "a path" } else { "paths" },
                            missing.join(", ")
                        ),
                    )
                }
            }
            (Known::Json, Format::JsonSchema) => {
                json_schema_paths(&client, &subject, block.need().paths(), at).await
            }
            (Known::Invalid(why), _) => Check::fail(
                "schema_registry.subject",
                at,
                format!("the latest schema of {subject:?} cannot be used: {why}"),
            ),
            (found, expected) => Check::fail(
                "schema_registry.subject",
                at,
                format!(
                    "the latest schema of {subject:?} is {}, but the block says `format: {}`",
                    found.type_name(),
                    expected.as_str()
                ),
            ),
        });
    }
    checks
}

/// The `json_schema` half of the subject check: every path the rules read declared by the latest
/// JSON Schema of `subject`.
async fn json_schema_paths(
    client: &RegistryClient,
    subject: &str,
    paths: Vec<Vec<String>>,
    at: String,
) -> Check {
    let text = match client.latest_json_schema(subject).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Check::warn(
                "schema_registry.subject",
                at,
                format!("the latest schema of {subject:?} changed while it was read; run again"),
            )
        }
        Err(e) => return Check::fail("schema_registry.subject", at, e.to_string()),
    };
    let schema: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return Check::fail(
                "schema_registry.subject",
                at,
                format!("the latest schema of {subject:?} is not JSON: {e}"),
            )
        }
    };
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| !crate::schema::json_schema::declares(&schema, p))
        .map(|p| p.join("."))
        .collect();
    if missing.is_empty() {
        Check::pass(
            "schema_registry.subject",
            at,
            format!(
                "every path the rules read ({}) is declared by the latest JSON Schema of {subject:?}",
                paths.len()
            ),
        )
    } else {
        Check::warn(
            "schema_registry.subject",
            at,
            format!(
                "the rules read {} the latest JSON Schema of {subject:?} does not declare: {}",
                if missing.len() == 1 {
                    "a path"
                } else {
                    "paths"
                },
                missing.join(", ")
            ),
        )
    }
}
