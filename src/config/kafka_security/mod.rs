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
//! a warning when the file is readable by group or others (see `config::exposed_secrets`).
//! The one thing refused is saying it twice: once the sections are used, the properties they set
//! (`security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`)
//! may not also appear in `kafka.properties`.
//!
//! The sections are read in [`sasl`] and [`ca_file`], and checked against each other and against
//! `kafka.properties` in [`check`]; this module holds what they produce.

pub mod ca_file;
pub mod check;
pub mod sasl;

use super::secret::Secret;
pub use check::{read, SecurityKeys};
pub use sasl::{SaslConfig, SaslMechanism};
use std::collections::BTreeMap;
use strum::{EnumString, IntoStaticStr};

/// `security.protocol`: spelled in upper case as librdkafka and Kafka's own clients do, read in
/// any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE", ascii_case_insensitive)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`, in any case.
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        s.parse().ok()
    }

    /// The librdkafka value (also how Kafka's own clients spell it).
    pub fn as_str(self) -> &'static str {
        self.into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_read_in_any_case_and_shown_as_librdkafka_spells_them() {
        for (written, want, shown) in [
            ("plaintext", SecurityProtocol::Plaintext, "PLAINTEXT"),
            ("Ssl", SecurityProtocol::Ssl, "SSL"),
            (
                "SASL_plaintext",
                SecurityProtocol::SaslPlaintext,
                "SASL_PLAINTEXT",
            ),
            ("SASL_SSL", SecurityProtocol::SaslSsl, "SASL_SSL"),
        ] {
            assert_eq!(SecurityProtocol::parse(written), Some(want), "{written}");
            assert_eq!(want.as_str(), shown);
        }
        for wrong in ["sasl-ssl", "tls", ""] {
            assert_eq!(SecurityProtocol::parse(wrong), None, "{wrong}");
        }
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
