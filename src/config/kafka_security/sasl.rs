//! `kafka.sasl`: the mechanism, the username and the password (inline, `${VAR}` or
//! `password_file`), the password a [`Secret`] from the moment it is read. Only the mechanisms a
//! username and password are enough for; the others are named with where to set them instead.

use crate::config::decode::{ConfigError, MapReader};
use crate::config::secret::{self, Secret};
use serde_yaml_ng::Value;
use std::path::Path;
use strum::{EnumString, IntoStaticStr};

/// `sasl.mechanism`: the mechanisms a username and password are enough for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr)]
pub enum SaslMechanism {
    /// Confluent Cloud (API key and secret), or any broker with PLAIN enabled. The password
    /// travels as is: only over TLS.
    #[strum(serialize = "PLAIN")]
    Plain,
    #[strum(serialize = "SCRAM-SHA-256")]
    ScramSha256,
    /// Amazon MSK (SASL/SCRAM), and what most self-hosted clusters use.
    #[strum(serialize = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The librdkafka value (`sasl.mechanism`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `kafka.sasl`.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    pub mechanism: SaslMechanism,
    /// Not a secret: the principal ACLs are granted to (`User:<username>`), named in errors.
    pub username: String,
    pub password: Secret,
    /// Where the password came from (`kafka.sasl.password` or the file path). Never the password.
    pub password_source: String,
}

pub(super) fn read_sasl(
    v: &Value,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<SaslConfig> {
    let mut r = MapReader::new(v, "kafka.sasl", errors)?;
    let mechanism = r
        .req::<String>(
            "mechanism",
            "SCRAM-SHA-512 (Amazon MSK, most clusters), SCRAM-SHA-256, or PLAIN (Confluent Cloud)",
        )
        .and_then(|m| match mechanism(&m) {
            Ok(mechanism) => Some(mechanism),
            Err(msg) => {
                r.error("mechanism", msg);
                None
            }
        });
    let username = r.req::<String>(
        "username",
        "the SASL user, e.g. \"mcm-bridge\" (Confluent Cloud: the API key)",
    );
    let password = secret::read_inline_or_file(
        &mut r,
        "password",
        "password_file",
        base_dir,
        "usually \"${KAFKA_PASSWORD}\"; or kafka.sasl.password_file: /run/secrets/kafka-password",
    );
    if username.as_deref().is_some_and(|u| u.trim().is_empty()) {
        r.error("username", "is empty (is the environment variable set?)");
    }
    r.finish();
    let (password, password_source) = password?;
    Some(SaslConfig {
        mechanism: mechanism?,
        username: username?.trim().to_string(),
        password,
        password_source,
    })
}

/// `kafka.sasl.mechanism` in any case and with `_` for `-` (`scram_sha_512` is SCRAM-SHA-512).
/// The mechanisms that need more than a password are refused with where to set them instead.
fn mechanism(m: &str) -> Result<SaslMechanism, String> {
    let name = m.to_ascii_uppercase().replace('_', "-");
    name.parse().map_err(|_| match name.as_str() {
        "AWS-MSK-IAM" => "Amazon MSK IAM authentication is not supported (librdkafka has no AWS_MSK_IAM); use MSK's SASL/SCRAM listener with SCRAM-SHA-512 (docs/deployment.md)".to_string(),
        "GSSAPI" | "OAUTHBEARER" => format!("{m} is not a username/password mechanism: set it in kafka.properties (sasl.mechanism and its own sasl.* settings) with kafka.security_protocol"),
        _ => format!("{m:?} is not one of: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_are_read_in_any_case_with_underscores_and_shown_as_librdkafka_names() {
        for (written, want, shown) in [
            ("plain", SaslMechanism::Plain, "PLAIN"),
            ("scram_sha_256", SaslMechanism::ScramSha256, "SCRAM-SHA-256"),
            ("Scram-Sha_512", SaslMechanism::ScramSha512, "SCRAM-SHA-512"),
        ] {
            let v: Value =
                serde_yaml_ng::from_str(&format!("mechanism: {written}\nusername: u\npassword: p"))
                    .expect("yaml");
            let mut errors = Vec::new();
            let sasl = read_sasl(&v, Path::new("."), &mut errors);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(sasl.map(|s| s.mechanism), Some(want), "{written}");
            assert_eq!(want.as_str(), shown);
        }
        for (written, says) in [
            (
                "scram-sha-1",
                "is not one of: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN",
            ),
            ("aws_msk_iam", "not supported"),
            ("oauthbearer", "set it in kafka.properties"),
        ] {
            let v: Value =
                serde_yaml_ng::from_str(&format!("mechanism: {written}\nusername: u\npassword: p"))
                    .expect("yaml");
            let mut errors = Vec::new();
            assert!(read_sasl(&v, Path::new("."), &mut errors).is_none());
            assert!(errors[0].message.contains(says), "{errors:?}");
        }
    }
}
