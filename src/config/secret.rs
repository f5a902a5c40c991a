//! Secrets (the MCM API key, the Kafka password, secret librdkafka properties) as a type that
//! cannot leak by accident (DESIGN.md contract 8), and reading one from the config or a file.

use super::decode::{kind, MapReader};
use serde_yaml_ng::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret string. `Debug` and `Display` print `[redacted]`; the only way to the value is
/// [`Secret::expose`], called where an HTTP header or a Kafka client configuration is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// The MCM API key.
pub type ApiKey = Secret;

impl Secret {
    /// Wraps a key or password, trimming whitespace and CR/LF (keys pasted into files or env vars
    /// often carry a trailing newline, which would make every request 401/403 and every Kafka
    /// connection fail authentication).
    pub fn new(raw: &str) -> Secret {
        Secret(raw.trim().replace(['\r', '\n'], ""))
    }

    /// Wraps a value as written (a PEM key keeps its line breaks).
    pub fn verbatim(raw: &str) -> Secret {
        Secret(raw.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A secret given inline (`inline_key`, usually `${VAR}`) or in a file (`file_key`, e.g. a
/// Kubernetes Secret mounted as a file), exactly one of the two: the secret and where it came
/// from (the inline key's YAML path or the file path, for the `validate` summary; never the
/// value). Errors are recorded at their YAML paths and never quote the value; `required` says
/// what to put there when neither is set.
pub fn read_inline_or_file(
    r: &mut MapReader<'_, '_>,
    inline_key: &'static str,
    file_key: &'static str,
    base_dir: &Path,
    required: &str,
) -> Option<(Secret, String)> {
    let inline = r.raw(inline_key).cloned();
    let file = r.opt::<PathBuf>(file_key);
    match (inline, file) {
        (Some(_), Some(_)) => {
            let (a, b) = (r.child_path(inline_key), r.child_path(file_key));
            r.error(file_key, format!("set either {a} or {b}, not both"));
            None
        }
        (None, None) => {
            r.error(inline_key, format!("required ({required})"));
            None
        }
        (Some(Value::String(s)), None) => {
            let secret = Secret::new(&s);
            if secret.is_empty() {
                r.error(inline_key, "is empty (is the environment variable set?)");
                None
            } else {
                Some((secret, r.child_path(inline_key)))
            }
        }
        (Some(other), None) => {
            let msg = format!("expected a string, found {}", kind(&other));
            r.error(inline_key, msg);
            None
        }
        (None, Some(file)) => {
            let full = if file.is_absolute() {
                file
            } else {
                base_dir.join(file)
            };
            match std::fs::read_to_string(&full) {
                Ok(s) if !Secret::new(&s).is_empty() => {
                    Some((Secret::new(&s), full.display().to_string()))
                }
                Ok(_) => {
                    r.error(file_key, format!("{} is empty", full.display()));
                    None
                }
                Err(e) => {
                    r.error(file_key, format!("cannot read {}: {e}", full.display()));
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_key() {
        let k = Secret::new(" abc123\r\n");
        assert_eq!(k.expose(), "abc123");
        assert!(!format!("{k:?} {k}").contains("abc123"));
    }

    #[test]
    fn verbatim_keeps_line_breaks() {
        let pem = "-----BEGIN-----\nabc\n-----END-----\n";
        assert_eq!(Secret::verbatim(pem).expose(), pem);
        assert!(!format!("{:?}", Secret::verbatim(pem)).contains("abc"));
    }
}
