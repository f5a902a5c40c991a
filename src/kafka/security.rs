//! What every Kafka client of the bridge shares about a secured cluster — the consumer, the lag
//! sampler, the retention reader, the DLQ producer and `replay-dlq` — and keeping its secrets out
//! of what those clients say.
//!
//! Secrets reach librdkafka only here ([`apply`], from `kafka.sasl` and the secret properties,
//! see `config::kafka_security`). librdkafka redacts its sensitive properties in its own
//! configuration dumps, but a client that cannot be created reports the property it refused
//! *with its value* (`KafkaError::ClientConfig`), so creation errors go through [`scrub`].
//! The auxiliary clients use [`QuietContext`]: a refused login or a missing ACL is the consuming
//! client's to report, once (see [`super::access`]), not four clients' to repeat.

use super::access::Refusal;
use crate::config::KafkaConfig;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

/// Sets the security settings of `k` (protocol, SASL, CA, secret properties) on `c`.
pub fn apply(c: &mut ClientConfig, k: &KafkaConfig) {
    for (key, value) in k.security.librdkafka_properties() {
        c.set(key, value);
    }
}

/// `e` with every secret of `k` replaced by `[redacted]`: the value librdkafka quotes when it
/// refuses a property, and any secret in a creation error's text.
pub fn scrub(e: KafkaError, k: &KafkaConfig) -> KafkaError {
    let hide = |text: String| {
        k.security
            .secrets()
            .filter(|s| !s.is_empty())
            .fold(text, |t, s| t.replace(s.expose(), "[redacted]"))
    };
    match e {
        KafkaError::ClientConfig(res, desc, key, value) => {
            let value = if crate::config::kafka_security::is_secret_property(&key) {
                "[redacted]".to_string()
            } else {
                hide(value)
            };
            KafkaError::ClientConfig(res, hide(desc), key, value)
        }
        KafkaError::ClientCreation(text) => KafkaError::ClientCreation(hide(text)),
        other => other,
    }
}

/// The context of the auxiliary clients (lag sampler, retention reader): their refusals are
/// logged at debug (the consumer reports the same refusal once, and acts on it), other errors
/// as warnings.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietContext {
    /// Which client, for the log line.
    pub client: &'static str,
}

impl ClientContext for QuietContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if Refusal::of_client_error(&error, reason).is_some() {
            tracing::debug!(client = self.client, %error, reason, "kafka refused an auxiliary client (reported by the consumer)");
        } else {
            tracing::warn!(client = self.client, %error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for QuietContext {}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaConfRes;

    fn config() -> KafkaConfig {
        let text = r#"
kafka:
  bootstrap_servers: b:9093
  group_id: g
  sasl: {mechanism: SCRAM-SHA-512, username: u, password: "pw-LEAK-1"}
  properties: {sasl.oauthbearer.client.secret: "cs-LEAK-2"}
mcm: {platform_name: acme, platform_id: ACME_TEST, api_key: k}
topics: []
"#;
        let env = |_: &str| None;
        crate::config::load_str(
            text,
            std::path::Path::new("."),
            &env,
            Vec::<(String, String)>::new(),
        )
        .expect("valid")
        .kafka
    }

    #[test]
    fn sets_the_secrets_and_scrubs_them_from_creation_errors() {
        let k = config();
        let mut c = ClientConfig::new();
        apply(&mut c, &k);
        assert_eq!(c.get("sasl.password"), Some("pw-LEAK-1"));
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        let refused = KafkaError::ClientConfig(
            RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "Invalid value \"pw-LEAK-1\"".into(),
            "sasl.password".into(),
            "pw-LEAK-1".into(),
        );
        let text = format!("{0} {0:?}", scrub(refused, &k));
        assert!(!text.contains("LEAK"), "{text}");
        let created = KafkaError::ClientCreation("bad cs-LEAK-2".into());
        assert!(!scrub(created, &k).to_string().contains("LEAK"));
    }
}
