//! A small reader over a parsed YAML tree that *collects* errors instead of stopping at the first.
//!
//! serde's derive stops at the first error and loses the path; users fixing a config want every
//! problem at once, each with its YAML path (`mcm.retry.max_backoff: invalid duration "5 secs"`).
//! So config sections and mapping rules are read field by field through [`MapReader`]: each leaf is
//! deserialised on its own, failures are pushed to a shared error list with the full path, and
//! unknown keys are reported when the reader is finished. Nothing here does I/O.

use serde::de::DeserializeOwned;
use serde_yaml_ng::{Mapping, Value};
use std::fmt;
use std::time::Duration;

/// One problem in a configuration file, located by its YAML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path with list indices, e.g. `topics[0].rules[2].fields.revenue`.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one configuration, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Joins a parent path and a key: `join("mcm", "retry")` → `mcm.retry`.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Joins a parent path and a list index: `index("topics", 0)` → `topics[0]`.
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// Short human description of a YAML value's kind, for error messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Renders a scalar for an error message without dumping large structures.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => kind(other).into(),
    }
}

/// Reads the keys of one YAML mapping, recording errors with paths into a shared list.
pub struct MapReader<'a, 'e> {
    map: &'a Mapping,
    path: String,
    seen: Vec<&'a str>,
    errors: &'e mut Vec<ConfigError>,
}

impl<'a, 'e> MapReader<'a, 'e> {
    /// Starts reading `value` at `path`; records an error and returns `None` if it is not a
    /// mapping. A YAML `null` (an empty section) reads as an empty mapping.
    pub fn new(
        value: &'a Value,
        path: impl Into<String>,
        errors: &'e mut Vec<ConfigError>,
    ) -> Option<MapReader<'a, 'e>> {
        static EMPTY: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
        let path = path.into();
        let map = match value {
            Value::Mapping(m) => m,
            Value::Null => EMPTY.get_or_init(Mapping::new),
            other => {
                errors.push(ConfigError::new(
                    path,
                    format!("expected a mapping, found {}", kind(other)),
                ));
                return None;
            }
        };
        Some(MapReader {
            map,
            path,
            seen: Vec::new(),
            errors,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Path of a child key.
    pub fn child_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Records an error at a child key.
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let p = self.child_path(key);
        self.errors.push(ConfigError::new(p, message));
    }

    /// Records an error at an arbitrary path.
    pub fn error_at(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(path, message));
    }

    /// Access to the shared error list (for nested readers).
    pub fn errors(&mut self) -> &mut Vec<ConfigError> {
        self.errors
    }

    /// The raw value of `key` (marks it as known). `null` counts as absent.
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.seen.push(key);
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// True when `key` is written out as `null` (or `~`, or left empty): for keys where that
    /// means something other than leaving the key out. Does not mark it as known.
    pub fn is_null(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Value::Null))
    }

    /// True when `key` is present (and not null). Does not mark it as known.
    pub fn has(&self, key: &str) -> bool {
        !matches!(self.map.get(key), None | Some(Value::Null))
    }

    /// Deserialises an optional leaf; a type error is recorded and yields `None`.
    pub fn opt<T: DeserializeOwned>(&mut self, key: &'static str) -> Option<T> {
        let v = self.raw(key)?;
        match serde_yaml_ng::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = format!("invalid value {}: {}", show(v), e);
                self.error(key, msg);
                None
            }
        }
    }

    /// Like [`opt`](Self::opt) but records `missing` (which should say what to put there) when
    /// the key is absent.
    pub fn req<T: DeserializeOwned>(&mut self, key: &'static str, missing: &str) -> Option<T> {
        if !self.has(key) {
            self.seen.push(key);
            self.error(key, format!("required ({missing})"));
            return None;
        }
        self.opt(key)
    }

    /// An optional string that must not be empty after trimming.
    pub fn opt_string(&mut self, key: &'static str) -> Option<String> {
        let v = self.raw(key)?;
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::String(_) => {
                self.error(key, "must not be empty");
                None
            }
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                let msg = format!("expected a string, found {}", kind(other));
                self.error(key, msg);
                None
            }
        }
    }

    /// One of a fixed set of names (an enum deriving `strum`'s `EnumString` and `VariantNames`),
    /// `default` when absent. Any other text is recorded with the accepted names, in declaration
    /// order, and yields `default`.
    pub fn choice<T>(&mut self, key: &'static str, default: T) -> T
    where
        T: std::str::FromStr + strum::VariantNames,
    {
        let Some(s) = self.opt_string(key) else {
            return default;
        };
        match s.parse() {
            Ok(t) => t,
            Err(_) => {
                let msg = format!("{s:?} is not one of: {}", T::VARIANTS.join(", "));
                self.error(key, msg);
                default
            }
        }
    }

    /// A human duration (`250ms`, `5s`, `1m 30s`) or an integer number of milliseconds.
    pub fn duration(&mut self, key: &'static str) -> Option<Duration> {
        let v = self.raw(key)?;
        match parse_duration_value(v) {
            Ok(d) => Some(d),
            Err(msg) => {
                self.error(key, msg);
                None
            }
        }
    }

    /// A byte size (`64MiB`, `512KiB`, `1GB`, or a plain integer of bytes).
    pub fn bytes(&mut self, key: &'static str) -> Option<u64> {
        let v = self.raw(key)?;
        match parse_bytes_value(v) {
            Ok(b) => Some(b),
            Err(msg) => {
                self.error(key, msg);
                None
            }
        }
    }

    /// Reports every key that was never read as unknown, naming the accepted keys.
    pub fn finish(self) {
        let mut unknown = Vec::new();
        for k in self.map.keys() {
            match k {
                Value::String(s) if self.seen.contains(&s.as_str()) => {}
                Value::String(s) => unknown.push(s.clone()),
                other => unknown.push(show(other)),
            }
        }
        if unknown.is_empty() {
            return;
        }
        let mut known: Vec<&str> = self.seen.clone();
        known.sort_unstable();
        known.dedup();
        for k in unknown {
            let hint = match closest(&k, &known) {
                Some(c) => format!(" (did you mean `{c}`?)"),
                None => format!(" (expected one of: {})", known.join(", ")),
            };
            self.errors.push(ConfigError::new(
                join(&self.path, &k),
                format!("unknown key{hint}"),
            ));
        }
    }
}

/// Parses a duration leaf: a string understood by `humantime` or an integer of milliseconds.
pub fn parse_duration_value(v: &Value) -> Result<Duration, String> {
    match v {
        Value::Number(n) => n.as_u64().map(Duration::from_millis).ok_or_else(|| {
            format!("invalid duration {n} (a whole number of milliseconds or e.g. \"5s\")")
        }),
        Value::String(s) => parse_duration(s).ok_or_else(|| {
            format!("invalid duration {s:?} (examples: \"250ms\", \"5s\", \"1m30s\")")
        }),
        other => Err(format!(
            "invalid duration: expected e.g. \"5s\", found {}",
            kind(other)
        )),
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `1d` and concatenations such as `1m30s`. Deliberately strict
/// (no spaces, no `secs`): one spelling per unit keeps configs greppable and typos loud.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "d" => Duration::from_secs(n.checked_mul(86_400)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Parses a byte size leaf.
pub fn parse_bytes_value(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            format!("invalid byte size {n} (a whole number of bytes or e.g. \"64MiB\")")
        }),
        Value::String(s) => parse_byte_size(s).ok_or_else(|| {
            format!("invalid byte size {s:?} (examples: \"512KiB\", \"64MiB\", \"1GB\")")
        }),
        other => Err(format!(
            "invalid byte size: expected e.g. \"64MiB\", found {}",
            kind(other)
        )),
    }
}

/// `"64MiB"` → 67108864. Accepts B, KB/MB/GB (powers of 1000) and KiB/MiB/GiB (powers of 1024).
pub fn parse_byte_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "mb" | "m" => 1_000_000,
        "gb" | "g" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The known key closest to `key` by edit distance (Levenshtein, counted in characters), if it is
/// close enough to be a typo. The mapping compiler uses it for transform names too.
pub fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml_ng::from_str(s).expect("test yaml")
    }

    #[test]
    fn collects_every_error_with_its_path() {
        let v = yaml("a: 1\nb: five\nd: 5 secs\ntimout: 3\n");
        let mut errors = Vec::new();
        let mut r = MapReader::new(&v, "mcm.retry", &mut errors).expect("mapping");
        assert_eq!(r.opt::<u32>("a"), Some(1));
        assert_eq!(r.opt::<u32>("b"), None);
        assert_eq!(r.req::<u32>("c", "a number"), None);
        assert_eq!(r.duration("d"), None);
        let _ = r.duration("timeout");
        r.finish();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "mcm.retry.b",
                "mcm.retry.c",
                "mcm.retry.d",
                "mcm.retry.timout"
            ]
        );
        assert!(errors[2].message.contains("invalid duration \"5 secs\""));
        assert!(errors[3].message.contains("did you mean `timeout`"));
    }

    #[test]
    fn closest_names_a_likely_typo_and_nothing_for_a_different_word() {
        let known = ["commit_interval", "client_id", "timeout", "lower", "upper"];
        assert_eq!(closest("comit_interval", &known), Some("commit_interval"));
        assert_eq!(closest("timout", &known), Some("timeout"));
        assert_eq!(closest("lowr", &known), Some("lower"));
        assert_eq!(closest("retries", &known), None);
        // Distance counts characters, not bytes.
        assert_eq!(closest("tïmeout", &known), Some("timeout"));
    }

    #[test]
    fn parses_durations_and_sizes() {
        assert_eq!(
            parse_duration_value(&yaml("250ms")),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration_value(&yaml("1500")),
            Ok(Duration::from_millis(1500))
        );
        assert!(parse_duration_value(&yaml("-1")).is_err());
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5 secs"), None);
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_byte_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_byte_size("1GB"), Some(1_000_000_000));
        assert_eq!(parse_byte_size("12 parsecs"), None);
        assert_eq!(parse_byte_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn non_mapping_section_is_an_error_and_null_is_empty() {
        let mut errors = Vec::new();
        assert!(MapReader::new(&yaml("[1]"), "kafka", &mut errors).is_none());
        assert_eq!(
            errors[0].to_string(),
            "kafka: expected a mapping, found a list"
        );
        let null = Value::Null;
        let r = MapReader::new(&null, "observe", &mut errors).expect("null is empty");
        r.finish();
        assert_eq!(errors.len(), 1);
    }
}
