//! `kafka.security_protocol`, `kafka.sasl` and `kafka.tls`: connecting to a secured cluster
//! (SASL/SCRAM or PLAIN, over TLS with the system's or a private CA), every credential held as a
//! [`Secret`] from the moment it is read.
//!
//! Why sections and not only `kafka.properties`: the password comes from `${VAR}` or from
//! `password_file` (a mounted Kubernetes Secret) and is a [`Secret`] at once, so `Debug`, the
//! `validate` summary, error messages and metrics cannot show it; the mechanism, the protocol and
//! the CA file are checked before the bridge touches Kafka, where a typo would otherwise surface
//! as an authentication failure or an unreadable `ssl.ca.location`. librdkafka itself marks
//! `sasl.password` sensitive and redacts it from its configuration dumps (`debug: conf`), which
//! reach our logs through rdkafka's `tracing` forwarding; `tests/secrets.rs` checks both.
//!
//! `kafka.properties` still passes everything else to librdkafka (mutual TLS, OAUTHBEARER,
//! GSSAPI …). **A secret written there is held as a secret too, not refused** — literal or
//! `${VAR}` alike — whenever the property's name says it holds one ([`is_secret_property`]:
//! `sasl.password`, `ssl.key.password`, `ssl.key.pem`, `sasl.oauthbearer.client.secret`, …). We
//! decided against refusing it, also against refusing only literals: the leaks the contract is
//! about (logs, `Debug`, errors, summary, metrics, DLQ headers) are closed by the type, wherever
//! the value was written; refusing would break configurations pasted from a vendor's snippet that
//! work today; and refusing literals only here would give `kafka.properties.sasl.password` a rule
//! `mcm.api_key` does not have for the same risk. The risk a literal keeps — whoever can read the
//! file can read the secret — is the same for every secret in the file, and gets the same answer:
//! a warning when the file is readable by group or others (see `config::load_with`).
//! The one thing refused is saying it twice: once the sections are used, the properties they set
//! (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`)
//! may not also appear in `kafka.properties`.

use super::decode::{ConfigError, MapReader};
use super::secret::{self, Secret};
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        match s.to_ascii_lowercase().as_str() {
            "plaintext" => Some(SecurityProtocol::Plaintext),
            "ssl" => Some(SecurityProtocol::Ssl),
            "sasl_plaintext" => Some(SecurityProtocol::SaslPlaintext),
            "sasl_ssl" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// The librdkafka value (also how Kafka's own clients spell it).
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// `sasl.mechanism`: the mechanisms a username and password are enough for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// Confluent Cloud (API key and secret), or any broker with PLAIN enabled. The password
    /// travels as is: only over TLS.
    Plain,
    ScramSha256,
    /// Amazon MSK (SASL/SCRAM), and what most self-hosted clusters use.
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
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

/// How the bridge's Kafka clients authenticate and encrypt, validated.
#[derive(Debug, Clone, Default)]
pub struct KafkaSecurity {
    /// `None` when neither `security_protocol`, `sasl` nor `tls` is set: librdkafka's default
    /// (plaintext) or whatever `kafka.properties` says.
    pub protocol: Option<SecurityProtocol>,
    pub sasl: Option<SaslConfig>,
    /// `kafka.tls.ca_file` (absolute), as `ssl.ca.location`; the system's CAs when `None`.
    pub ca_file: Option<String>,
    /// Properties of `kafka.properties` that hold secrets ([`is_secret_property`]).
    pub secret_properties: BTreeMap<String, Secret>,
    /// `sasl.username` from `kafka.properties`, when the section is not used (for error hints).
    pub properties_username: Option<String>,
}

/// librdkafka properties set by the sections; refused in `kafka.properties` next to them.
pub const SECTION_PROPERTIES: [&str; 6] = [
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
];

/// Whether a librdkafka property holds a secret: its name says so (password, secret, token,
/// credential, passphrase — the rule that also keeps interpolation errors quiet), or it is a
/// private key or an OAUTHBEARER configuration string.
pub fn is_secret_property(key: &str) -> bool {
    super::interpolate::is_secret_path(&format!("kafka.properties.{key}"))
}

impl KafkaSecurity {
    /// Every librdkafka property these settings make, secrets exposed: only for building a
    /// client configuration, never for printing.
    pub fn librdkafka_properties(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        if let Some(p) = self.protocol {
            out.push(("security.protocol", p.as_str()));
        }
        if let Some(s) = &self.sasl {
            out.push(("sasl.mechanism", s.mechanism.as_str()));
            out.push(("sasl.username", s.username.as_str()));
            out.push(("sasl.password", s.password.expose()));
        }
        if let Some(ca) = &self.ca_file {
            out.push(("ssl.ca.location", ca.as_str()));
        }
        for (k, v) in &self.secret_properties {
            out.push((k.as_str(), v.expose()));
        }
        out
    }

    /// Every secret value, for scrubbing text that might echo one (client creation errors).
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.sasl
            .iter()
            .map(|s| &s.password)
            .chain(self.secret_properties.values())
    }

    /// The principal Kafka's ACLs name, when the bridge authenticates with a username.
    pub fn principal(&self) -> Option<String> {
        self.sasl
            .as_ref()
            .map(|s| s.username.as_str())
            .or(self.properties_username.as_deref())
            .map(|u| format!("User:{u}"))
    }

    /// One line for `validate`: protocol, mechanism and user, where the password and the CA come
    /// from; never a secret.
    pub fn describe(&self) -> String {
        let mut parts = vec![self
            .protocol
            .map_or("security from kafka.properties (or plaintext)", |p| {
                p.as_str()
            })
            .to_string()];
        if let Some(s) = &self.sasl {
            parts.push(format!(
                "{} as {:?} (password from {})",
                s.mechanism.as_str(),
                s.username,
                s.password_source
            ));
        }
        if let Some(ca) = &self.ca_file {
            parts.push(format!("CA {ca}"));
        }
        if !self.secret_properties.is_empty() {
            let names: Vec<&str> = self.secret_properties.keys().map(String::as_str).collect();
            parts.push(format!("secret properties {}", names.join(", ")));
        }
        parts.join(", ")
    }
}

/// What the `kafka` section said about security, before it is checked.
#[derive(Debug, Default)]
pub struct SecurityKeys {
    pub security_protocol: Option<String>,
    pub sasl: Option<Value>,
    pub tls: Option<Value>,
}

/// Checks the security keys against each other and against `kafka.properties` (`properties`
/// without its secrets, `secret_properties` with them), recording errors at their YAML paths.
pub fn read(
    keys: SecurityKeys,
    base_dir: &Path,
    properties: &BTreeMap<String, String>,
    secret_properties: BTreeMap<String, Secret>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> Option<KafkaSecurity> {
    let before = errors.len();
    let explicit = keys.security_protocol.as_deref().and_then(|s| {
        let p = SecurityProtocol::parse(s);
        if p.is_none() {
            errors.push(ConfigError::new(
                "kafka.security_protocol",
                format!("{s:?} is not one of: plaintext, ssl, sasl_plaintext, sasl_ssl"),
            ));
        }
        p
    });
    let sasl = keys
        .sasl
        .as_ref()
        .and_then(|v| read_sasl(v, base_dir, errors));
    let ca_file = keys
        .tls
        .as_ref()
        .and_then(|v| read_tls(v, base_dir, errors));
    let protocol = explicit.or(match (&keys.sasl, &keys.tls) {
        (Some(_), _) => Some(SecurityProtocol::SaslSsl),
        (None, Some(_)) => Some(SecurityProtocol::Ssl),
        (None, None) => None,
    });
    if let Some(p) = explicit {
        if keys.sasl.is_some() && !p.uses_sasl() {
            errors.push(ConfigError::new(
                "kafka.sasl",
                format!(
                    "kafka.security_protocol {} does not authenticate with SASL: use sasl_ssl (or remove security_protocol, sasl_ssl is the default with kafka.sasl)",
                    p.as_str().to_ascii_lowercase()
                ),
            ));
        }
        if keys.tls.is_some() && !p.uses_tls() {
            errors.push(ConfigError::new(
                "kafka.tls",
                format!(
                    "only used with kafka.security_protocol ssl or sasl_ssl, not {}",
                    p.as_str().to_ascii_lowercase()
                ),
            ));
        }
        if p.uses_sasl()
            && keys.sasl.is_none()
            && !properties.contains_key("sasl.mechanism")
            && !properties.contains_key("sasl.mechanisms")
        {
            errors.push(ConfigError::new(
                "kafka.sasl",
                format!(
                    "required with kafka.security_protocol {} (mechanism, username, password or password_file)",
                    p.as_str().to_ascii_lowercase()
                ),
            ));
        }
    }
    if protocol.is_some() {
        let managed = properties
            .keys()
            .chain(secret_properties.keys())
            .filter(|k| SECTION_PROPERTIES.contains(&k.as_str()));
        for key in managed {
            if keys.sasl.is_none() && key.starts_with("sasl.") {
                continue; // SASL from properties (OAUTHBEARER, GSSAPI) under security_protocol
            }
            errors.push(ConfigError::new(
                format!("kafka.properties.{key}"),
                "set by kafka.security_protocol / kafka.sasl / kafka.tls: remove it here (say it once)",
            ));
        }
    }
    if let (Some(SecurityProtocol::SaslPlaintext), Some(s)) = (protocol, &sasl) {
        if s.mechanism == SaslMechanism::Plain {
            warnings.push("kafka.sasl: PLAIN over sasl_plaintext sends the password unencrypted: use sasl_ssl outside a lab".into());
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(KafkaSecurity {
        protocol,
        sasl,
        ca_file,
        properties_username: properties.get("sasl.username").cloned(),
        secret_properties,
    })
}

fn read_sasl(v: &Value, base_dir: &Path, errors: &mut Vec<ConfigError>) -> Option<SaslConfig> {
    let mut r = MapReader::new(v, "kafka.sasl", errors)?;
    let mechanism = r
        .req::<String>(
            "mechanism",
            "SCRAM-SHA-512 (Amazon MSK, most clusters), SCRAM-SHA-256, or PLAIN (Confluent Cloud)",
        )
        .and_then(|m| match m.to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Some(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Some(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(SaslMechanism::ScramSha512),
            "AWS-MSK-IAM" => {
                r.error(
                    "mechanism",
                    "Amazon MSK IAM authentication is not supported (librdkafka has no AWS_MSK_IAM); use MSK's SASL/SCRAM listener with SCRAM-SHA-512 (docs/deployment.md)",
                );
                None
            }
            "GSSAPI" | "OAUTHBEARER" => {
                r.error(
                    "mechanism",
                    format!("{m} is not a username/password mechanism: set it in kafka.properties (sasl.mechanism and its own sasl.* settings) with kafka.security_protocol"),
                );
                None
            }
            _ => {
                r.error(
                    "mechanism",
                    format!("{m:?} is not one of: SCRAM-SHA-512, SCRAM-SHA-256, PLAIN"),
                );
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

fn read_tls(v: &Value, base_dir: &Path, errors: &mut Vec<ConfigError>) -> Option<String> {
    let mut r = MapReader::new(v, "kafka.tls", errors)?;
    let ca_file = r.opt::<PathBuf>("ca_file");
    r.finish();
    let file = ca_file?;
    let full = if file.is_absolute() {
        file
    } else {
        base_dir.join(file)
    };
    let path = full.display().to_string();
    match std::fs::read_to_string(&full) {
        Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => match full.to_str() {
            Some(s) => Some(s.to_string()),
            None => {
                errors.push(ConfigError::new(
                    "kafka.tls.ca_file",
                    format!("{path}: the path must be valid UTF-8"),
                ));
                None
            }
        },
        Ok(_) => {
            errors.push(ConfigError::new(
                "kafka.tls.ca_file",
                format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA that signed the brokers' certificates, in PEM"),
            ));
            None
        }
        Err(e) => {
            errors.push(ConfigError::new(
                "kafka.tls.ca_file",
                format!("cannot read {path}: {e}"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Option<Value> {
        Some(serde_yaml_ng::from_str(s).expect("yaml"))
    }

    fn check(
        keys: SecurityKeys,
        dir: &Path,
        properties: &[(&str, &str)],
    ) -> (Option<KafkaSecurity>, Vec<ConfigError>, Vec<String>) {
        let mut plain = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (k, v) in properties {
            if is_secret_property(k) {
                secrets.insert(k.to_string(), Secret::verbatim(v));
            } else {
                plain.insert(k.to_string(), v.to_string());
            }
        }
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let s = read(keys, dir, &plain, secrets, &mut errors, &mut warnings);
        (s, errors, warnings)
    }

    fn paths(errors: &[ConfigError]) -> Vec<&str> {
        errors.iter().map(|e| e.path.as_str()).collect()
    }

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn sasl_defaults_to_sasl_ssl_and_sets_what_librdkafka_needs() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("ca.pem"), CA).expect("write");
        let keys = SecurityKeys {
            sasl: yaml("mechanism: scram-sha-512\nusername: bridge\npassword: \" s3cret\\n\""),
            tls: yaml("ca_file: ca.pem"),
            ..SecurityKeys::default()
        };
        let (s, errors, _) = check(keys, dir.path(), &[]);
        assert!(errors.is_empty(), "{errors:?}");
        let s = s.expect("valid");
        let ca = dir.path().join("ca.pem").display().to_string();
        assert_eq!(
            s.librdkafka_properties(),
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "bridge"),
                ("sasl.password", "s3cret"),
                ("ssl.ca.location", ca.as_str()),
            ]
        );
        assert_eq!(s.principal().as_deref(), Some("User:bridge"));
        let shown = format!("{s:?} {}", s.describe());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("kafka.sasl.password"), "{shown}");
    }

    #[test]
    fn password_from_a_file_is_trimmed_and_its_path_is_the_source() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("pw"), "from-file\n").expect("write");
        let keys = SecurityKeys {
            sasl: yaml("mechanism: PLAIN\nusername: KEY1\npassword_file: pw"),
            ..SecurityKeys::default()
        };
        let (s, errors, _) = check(keys, dir.path(), &[]);
        assert!(errors.is_empty(), "{errors:?}");
        let sasl = s.expect("valid").sasl.expect("sasl");
        assert_eq!(sasl.password.expose(), "from-file");
        assert_eq!(
            sasl.password_source,
            dir.path().join("pw").display().to_string()
        );
    }

    #[test]
    fn each_mistake_is_reported_at_its_path_with_what_to_do() {
        let dir = tempfile::tempdir().expect("tmp");
        for (keys, props, want, says) in [
            (
                SecurityKeys {
                    sasl: yaml("mechanism: SCRAM-SHA-512\nusername: u"),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.sasl.password",
                "${KAFKA_PASSWORD}",
            ),
            (
                SecurityKeys {
                    sasl: yaml(
                        "mechanism: SCRAM-SHA-512\nusername: u\npassword: p\npassword_file: f",
                    ),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.sasl.password_file",
                "not both",
            ),
            (
                SecurityKeys {
                    sasl: yaml("mechanism: AWS_MSK_IAM\nusername: u\npassword: p"),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.sasl.mechanism",
                "SCRAM-SHA-512",
            ),
            (
                SecurityKeys {
                    sasl: yaml("mechanism: SCRAM-SHA-512\nusername: u\npassword: p\npasword: q"),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.sasl.pasword",
                "did you mean",
            ),
            (
                SecurityKeys {
                    security_protocol: Some("ssl".into()),
                    sasl: yaml("mechanism: PLAIN\nusername: u\npassword: p"),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.sasl",
                "sasl_ssl",
            ),
            (
                SecurityKeys {
                    security_protocol: Some("sasl_ssl".into()),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.sasl",
                "required",
            ),
            (
                SecurityKeys {
                    security_protocol: Some("tls".into()),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.security_protocol",
                "sasl_ssl",
            ),
            (
                SecurityKeys {
                    tls: yaml("ca_file: /nonexistent/ca.pem"),
                    ..SecurityKeys::default()
                },
                vec![],
                "kafka.tls.ca_file",
                "cannot read",
            ),
            (
                SecurityKeys {
                    sasl: yaml("mechanism: PLAIN\nusername: u\npassword: p"),
                    ..SecurityKeys::default()
                },
                vec![("sasl.password", "q")],
                "kafka.properties.sasl.password",
                "say it once",
            ),
        ] {
            let (s, errors, _) = check(keys, dir.path(), &props);
            assert!(s.is_none());
            assert_eq!(paths(&errors), [want], "{errors:?}");
            assert!(errors[0].message.contains(says), "{errors:?}");
        }
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("key.pem"), "-----BEGIN PRIVATE KEY-----\n").expect("w");
        let keys = SecurityKeys {
            tls: yaml("ca_file: key.pem"),
            ..SecurityKeys::default()
        };
        let (_, errors, _) = check(keys, dir.path(), &[]);
        assert_eq!(paths(&errors), ["kafka.tls.ca_file"]);
        assert!(
            !errors[0].message.contains("PRIVATE KEY-----\n"),
            "{errors:?}"
        );
    }

    #[test]
    fn properties_alone_still_work_and_their_secrets_are_held_as_secrets() {
        let (s, errors, _) = check(
            SecurityKeys::default(),
            Path::new("."),
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "KEY1"),
                ("sasl.password", "pw-123"),
                ("ssl.key.password", "kp-456"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let s = s.expect("valid");
        assert_eq!(s.protocol, None);
        assert_eq!(s.principal().as_deref(), Some("User:KEY1"));
        let names: Vec<&str> = s.secret_properties.keys().map(String::as_str).collect();
        assert_eq!(names, ["sasl.password", "ssl.key.password"]);
        let shown = format!("{s:?} {}", s.describe());
        assert!(
            !shown.contains("pw-123") && !shown.contains("kp-456"),
            "{shown}"
        );
    }

    #[test]
    fn oauthbearer_from_properties_under_an_explicit_protocol_is_allowed() {
        let keys = SecurityKeys {
            security_protocol: Some("SASL_SSL".into()),
            ..SecurityKeys::default()
        };
        let (s, errors, _) = check(
            keys,
            Path::new("."),
            &[
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.oauthbearer.client.secret", "cs"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.expect("valid").protocol, Some(SecurityProtocol::SaslSsl));
    }

    #[test]
    fn plain_over_sasl_plaintext_is_warned_about() {
        let keys = SecurityKeys {
            security_protocol: Some("sasl_plaintext".into()),
            sasl: yaml("mechanism: PLAIN\nusername: u\npassword: p"),
            ..SecurityKeys::default()
        };
        let (_, errors, warnings) = check(keys, Path::new("."), &[]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(warnings[0].contains("unencrypted"), "{warnings:?}");
    }

    #[test]
    fn secret_properties_are_recognised_by_name() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.assertion.private.key.passphrase",
        ] {
            assert!(is_secret_property(k), "{k}");
        }
        for k in [
            "sasl.username",
            "ssl.ca.location",
            "security.protocol",
            "debug",
        ] {
            assert!(!is_secret_property(k), "{k}");
        }
    }
}
