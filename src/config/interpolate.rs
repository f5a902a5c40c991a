//! `${VAR}` and `${VAR:-default}` interpolation inside string values of the parsed YAML tree.
//!
//! Done on string leaves *after* parsing, so a secret containing `:` or `#` cannot change the
//! document's structure. `$${` writes a literal `${`. An unset variable without a default is an
//! error at the YAML path where it is used (never silently empty: an empty API key would only
//! surface later as 401s).
//!
//! Error messages quote the offending text to help, except at paths that hold secrets
//! ([`is_secret_path`]: `mcm.api_key`, passwords, tokens, …): a key pasted inside `${…}` by
//! mistake must not end up in `validate` output or start-up logs (DESIGN.md contract 8).

use super::decode::{index, join, ConfigError};
use serde_yaml_ng::Value;

/// Where variable values come from (the process environment in production, a map in tests).
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Interpolates every string leaf of `value` in place, recording errors with their paths.
pub fn interpolate_tree(
    value: &mut Value,
    path: &str,
    env: &dyn Env,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        Value::String(s) if s.contains('$') => match interpolate_str(s, env) {
            Ok(new) => *s = new,
            Err(_) if is_secret_path(path) => {
                errors.push(ConfigError::new(path, redacted_error(s, env)));
            }
            Err(msg) => errors.push(ConfigError::new(path, msg)),
        },
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                interpolate_tree(v, &index(path, i), env, errors);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => super::decode::show(other),
                };
                interpolate_tree(v, &join(path, &key), env, errors);
            }
        }
        Value::Tagged(t) => interpolate_tree(&mut t.value, path, env, errors),
        _ => {}
    }
}

/// Whether the value at `path` may be a secret (its interpolation errors then quote nothing):
/// the last key names one (password, passphrase, secret, token, credential …), or it is a
/// private key or an OAUTHBEARER configuration string among `kafka.properties`. The same rule
/// decides which librdkafka properties are held as secrets (see [`super::kafka_security`]).
pub fn is_secret_path(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    path == "mcm.api_key"
        || [
            "password",
            "passphrase",
            "secret",
            "token",
            "api_key",
            "apikey",
            "credential",
        ]
        .iter()
        .any(|w| last.contains(w))
        || [".key.pem", "sasl.oauthbearer.config"]
            .iter()
            .any(|tail| path.ends_with(tail))
}

/// The error for a secret value: what kind of mistake, where, never the text itself.
fn redacted_error(s: &str, env: &dyn Env) -> String {
    let hint = "the value is not shown because this field holds a secret; expected e.g. \"${MCM_API_KEY}\"";
    // Re-scan only to classify the mistake; nothing of `s` goes into the message but positions.
    let mut rest = s;
    let mut at = 0;
    while let Some(pos) = rest.find("${") {
        if pos > 0 && rest[..pos].ends_with('$') {
            at += pos + 2;
            rest = &rest[pos + 2..];
            continue;
        }
        let tail = &rest[pos + 2..];
        let Some(end) = tail.find('}') else {
            return format!("unterminated ${{ at character {} ({hint})", at + pos + 1);
        };
        let expr = &tail[..end];
        let name = expr.split_once(":-").map_or(expr, |(n, _)| n);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return format!(
                "invalid variable name in the ${{…}} at character {} (names are letters, digits and '_'; {hint})",
                at + pos + 1
            );
        }
        if env.var(name).is_none() && !expr.contains(":-") {
            return format!(
                "the environment variable named in the ${{…}} at character {} is not set ({hint})",
                at + pos + 1
            );
        }
        at += pos + 2 + end + 1;
        rest = &tail[end + 1..];
    }
    format!("cannot interpolate ({hint})")
}

/// Interpolates one string.
pub fn interpolate_str(s: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name {name:?} in ${{{expr}}}"));
            }
            match (env.var(name), default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
                    ))
                }
                (Some(v), None) => out.push_str(&v),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("s3cr:et#1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_variables_defaults_and_escapes() {
        assert_eq!(interpolate_str("${KEY}", &env).as_deref(), Ok("s3cr:et#1"));
        assert_eq!(
            interpolate_str("a-${NOPE:-b}-c", &env).as_deref(),
            Ok("a-b-c")
        );
        assert_eq!(interpolate_str("${EMPTY:-d}", &env).as_deref(), Ok("d"));
        assert_eq!(interpolate_str("${EMPTY}", &env).as_deref(), Ok(""));
        assert_eq!(
            interpolate_str("$${KEY} $5", &env).as_deref(),
            Ok("${KEY} $5")
        );
        assert!(interpolate_str("${NOPE}", &env)
            .unwrap_err()
            .contains("NOPE is not set"));
        assert!(interpolate_str("${KEY", &env).is_err());
        assert!(interpolate_str("${A-B}", &env).is_err());
    }

    #[test]
    fn errors_at_secret_paths_quote_nothing() {
        for (text, what) in [
            ("${sk-live-123}", "invalid variable name"),
            ("${sk_live_123}", "is not set"),
            ("sk-live-123${", "unterminated"),
            ("${BAD NAME:-sk-live-123}", "invalid variable name"),
        ] {
            let mut v: Value = serde_yaml_ng::from_str(&format!(
                "mcm:\n  api_key: \"{text}\"\nkafka:\n  properties:\n    sasl.password: \"{text}\"\n"
            ))
            .expect("yaml");
            let mut errors = Vec::new();
            interpolate_tree(&mut v, "", &env, &mut errors);
            assert_eq!(errors.len(), 2, "{errors:?}");
            for e in &errors {
                let msg = e.to_string();
                assert!(!msg.contains("live"), "{msg}");
                assert!(msg.contains(what), "{msg}");
            }
        }
        // Elsewhere the text is quoted to help.
        assert!(interpolate_str("${A-B}", &env).unwrap_err().contains("A-B"));
        assert!(is_secret_path("kafka.properties.ssl.key.password"));
        assert!(is_secret_path(
            "kafka.properties.sasl.oauthbearer.client.secret"
        ));
        assert!(!is_secret_path("kafka.bootstrap_servers"));
    }

    #[test]
    fn reports_paths_of_unset_variables() {
        let mut v: Value =
            serde_yaml_ng::from_str("mcm:\n  api_key: ${NOPE}\ntopics:\n  - topic: ${NOPE2}\n")
                .expect("yaml");
        let mut errors = Vec::new();
        interpolate_tree(&mut v, "", &env, &mut errors);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["mcm.api_key", "topics[0].topic"]);
    }
}
