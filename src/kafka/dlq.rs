//! The dead-letter topic: where a message that cannot be delivered goes, with the reason.
//!
//! A DLQ record keeps the original key and value and original headers, plus `mcm.*` headers that
//! say where it came from and why it failed. The source offset counts as finished only after Kafka
//! acknowledged the DLQ write (DESIGN.md contract 1): the producer is idempotent with `acks=all`,
//! and a failed write is retried by the caller while the offset keeps holding the watermark.
//! Header building is pure; the API key can never be in a header because only the MCM response
//! body snippet is copied, and it is scrubbed of the key anyway.

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Message;
use std::time::Duration;

/// Longest response snippet copied into `mcm.response.snippet`.
pub const MAX_SNIPPET: usize = 512;

/// Why a message is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqReason {
    /// `decode`, `mapping`, `validation`, `no_match`, `permanent` (HTTP 400 …) or `exhausted`.
    pub class: String,
    /// Stable snake_case reason code.
    pub reason: String,
    pub http_status: Option<u16>,
    pub response_snippet: Option<String>,
}

/// Truncates to at most `max` bytes on a UTF-8 boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The `mcm.*` headers for a dead-lettered message (pure; `secret` is scrubbed from the snippet).
pub fn dlq_headers(
    topic: &str,
    partition: i32,
    offset: i64,
    why: &DlqReason,
    secret: &str,
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("mcm.source.topic", topic.to_string()),
        ("mcm.source.partition", partition.to_string()),
        ("mcm.source.offset", offset.to_string()),
        ("mcm.error.class", why.class.clone()),
        ("mcm.error.reason", why.reason.clone()),
    ];
    if let Some(status) = why.http_status {
        h.push(("mcm.http.status", status.to_string()));
    }
    if let Some(snippet) = &why.response_snippet {
        let scrubbed = if secret.is_empty() {
            snippet.clone()
        } else {
            snippet.replace(secret, "[redacted]")
        };
        h.push((
            "mcm.response.snippet",
            truncate_utf8(&scrubbed, MAX_SNIPPET).to_string(),
        ));
    }
    h
}

/// Writes dead letters.
#[derive(Clone)]
pub struct DlqProducer {
    producer: FutureProducer,
    topic: String,
    secret: String,
}

impl DlqProducer {
    pub fn new(
        bootstrap: &str,
        properties: &std::collections::BTreeMap<String, String>,
        topic: &str,
        secret: &str,
    ) -> Result<DlqProducer, KafkaError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5");
        for (k, v) in super::shared_properties(properties) {
            c.set(k, v);
        }
        Ok(DlqProducer {
            producer: c.create()?,
            topic: topic.to_string(),
            secret: secret.to_string(),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes one dead letter and waits for Kafka's acknowledgement.
    pub async fn send(&self, msg: &OwnedMessage, why: &DlqReason) -> Result<(), KafkaError> {
        let mut headers = OwnedHeaders::new();
        if let Some(orig) = msg.headers() {
            for h in orig.iter() {
                headers = headers.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
        for (k, v) in dlq_headers(
            msg.topic(),
            msg.partition(),
            msg.offset(),
            why,
            &self.secret,
        ) {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_source_and_reason_and_never_the_key() {
        let why = DlqReason {
            class: "permanent".into(),
            reason: "missing_page_id".into(),
            http_status: Some(400),
            response_snippet: Some(format!("echo sekret {}", "é".repeat(400))),
        };
        let h = dlq_headers("shop.events", 3, 42, &why, "sekret");
        let get = |k: &str| h.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("mcm.source.topic").as_deref(), Some("shop.events"));
        assert_eq!(get("mcm.source.partition").as_deref(), Some("3"));
        assert_eq!(get("mcm.source.offset").as_deref(), Some("42"));
        assert_eq!(get("mcm.error.class").as_deref(), Some("permanent"));
        assert_eq!(get("mcm.error.reason").as_deref(), Some("missing_page_id"));
        assert_eq!(get("mcm.http.status").as_deref(), Some("400"));
        let snippet = get("mcm.response.snippet").expect("snippet");
        assert!(snippet.len() <= MAX_SNIPPET);
        assert!(!snippet.contains("sekret"));
        assert!(snippet.starts_with("echo [redacted]"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
