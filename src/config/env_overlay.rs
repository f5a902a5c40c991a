//! Environment overrides: `MCM_BRIDGE__MCM__PLATFORM_ID=ACME` sets `mcm.platform_id`.
//!
//! We apply these ourselves instead of through the `config` crate: that crate folds keys to lower
//! case across the *whole* tree (breaking case-sensitive topic names and librdkafka properties)
//! and flattens the YAML into its own value type, losing the paths our error messages are built
//! on. Here only the override's own path segments are lower-cased, and the value is parsed as a
//! YAML scalar so `MCM_BRIDGE__MCM__MAX_IN_FLIGHT=512` is a number.

use serde_yaml_ng::{Mapping, Value};

/// The prefix of override variables.
pub const PREFIX: &str = "MCM_BRIDGE__";

/// Applies every `MCM_BRIDGE__A__B=v` pair to `root`. Returns the dotted paths that were set,
/// for the `validate` summary.
pub fn apply(root: &mut Value, vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && k.len() > PREFIX.len())
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let segments: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if segments.iter().any(String::is_empty) {
            continue;
        }
        let value = parse_scalar(&raw);
        set_path(root, &segments, value);
        applied.push(segments.join("."));
    }
    applied
}

fn parse_scalar(raw: &str) -> Value {
    match serde_yaml_ng::from_str::<Value>(raw) {
        Ok(v @ (Value::Bool(_) | Value::Number(_))) => v,
        _ => Value::String(raw.to_string()),
    }
}

fn set_path(root: &mut Value, segments: &[String], value: Value) {
    if !matches!(root, Value::Mapping(_)) {
        *root = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = root else { return };
    let key = Value::String(segments[0].clone());
    if segments.len() == 1 {
        map.insert(key, value);
        return;
    }
    let child = map.entry(key).or_insert(Value::Null);
    set_path(child, &segments[1..], value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_nested_keys_with_typed_scalars() {
        let mut v: Value =
            serde_yaml_ng::from_str("mcm:\n  platform_id: A\ntopics: []\n").expect("yaml");
        let applied = apply(
            &mut v,
            [
                (
                    "MCM_BRIDGE__MCM__PLATFORM_ID".to_string(),
                    "ACME_TEST".to_string(),
                ),
                (
                    "MCM_BRIDGE__MCM__MAX_IN_FLIGHT".to_string(),
                    "512".to_string(),
                ),
                (
                    "MCM_BRIDGE__OBSERVE__LISTEN".to_string(),
                    "127.0.0.1:1".to_string(),
                ),
                ("OTHER".to_string(), "x".to_string()),
            ],
        );
        assert_eq!(
            applied,
            ["mcm.max_in_flight", "mcm.platform_id", "observe.listen"]
        );
        assert_eq!(v["mcm"]["platform_id"].as_str(), Some("ACME_TEST"));
        assert_eq!(v["mcm"]["max_in_flight"].as_u64(), Some(512));
        assert_eq!(v["observe"]["listen"].as_str(), Some("127.0.0.1:1"));
    }
}
