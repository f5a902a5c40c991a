//! The security keys of the `kafka` section checked together: the protocol a `sasl` or `tls`
//! section implies, a protocol that contradicts them, and properties in `kafka.properties` that
//! the sections already set (say it once). Errors go to their YAML paths; warnings for what works
//! but is unsafe (PLAIN over `sasl_plaintext`).

use super::ca_file::read_tls;
use super::sasl::{read_sasl, SaslMechanism};
use super::{KafkaSecurity, SecurityProtocol, SECTION_PROPERTIES};
use crate::config::decode::ConfigError;
use crate::config::secret::Secret;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::kafka_security::is_secret_property;

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
}
