//! The dead-letter topic: where a message that cannot be delivered goes, with the reason.
//!
//! A DLQ record keeps the original key and value and original headers, plus `mcm.*` headers that
//! say where it came from and why it failed. The source offset counts as finished only after Kafka
//! acknowledged the DLQ write (DESIGN.md contract 1): the producer is idempotent with `acks=all`,
//! and a failed write is retried by the caller while the offset keeps holding the watermark; a
//! write Kafka refuses ([`DlqError::Denied`]) or can never take as things are
//! ([`DlqError::Unwritable`]: the topic is missing, the record too large) is held by the caller
//! and probed later instead.
//! Header building is pure; the API key can never be in a header because only the MCM response
//! body snippet is copied, and it is scrubbed of the key anyway.

use super::access::{AccessDenied, Names, Refusal};
use crate::config::KafkaConfig;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
    /// The registry schema id of a value rejected for its schema (`mcm.schema.id`).
    pub schema_id: Option<u32>,
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
/// A value rejected for its schema also gets `mcm.schema.id`, the id its framing names (to look
/// it up in the registry; set by `pipeline::process` for registry-framed blocks only, so a raw
/// Avro datum that happens to start with byte 0 is not given an id it does not have).
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
    if let Some(id) = why.schema_id {
        h.push(("mcm.schema.id", id.to_string()));
    }
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

/// How long librdkafka waits for a topic it does not see to appear before failing its
/// messages as `_UNKNOWN_TOPIC`; a topic created seconds ago has propagated by then.
const TOPIC_PROPAGATION: &str = "topic.metadata.propagation.max.ms";
const TOPIC_PROPAGATION_MS: &str = "10000";

/// Why a dead letter was not written.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// Kafka refused the write (no WRITE on the DLQ topic): retrying at once cannot help.
    #[error("{0}")]
    Denied(AccessDenied),
    /// Kafka cannot take this write until an operator changes something: retrying at once
    /// cannot help either.
    #[error("{0}")]
    Unwritable(Unwritable),
    /// Anything else (broker unavailable, timeout …): worth retrying.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// A dead letter Kafka will not take as the cluster is configured, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unwritable {
    #[error("the dead-letter topic \"{topic}\" does not exist ({code}): create it (topic auto-creation is off on most clusters) or set delivery.dlq_topic to an existing topic")]
    TopicMissing {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("a dead letter of {bytes} bytes (key and value) is larger than Kafka takes ({code}): raise max.message.bytes on topic \"{topic}\" (and kafka.properties message.max.bytes if the bridge's producer refused it)")]
    TooLarge {
        topic: String,
        bytes: usize,
        code: RDKafkaErrorCode,
    },
}

impl Unwritable {
    /// The produce errors that no retry fixes, with what to change; `None` for the rest
    /// (transient: broker down, timeouts, leader moves), which are retried.
    pub fn of(code: RDKafkaErrorCode, topic: &str, bytes: usize) -> Option<Unwritable> {
        use RDKafkaErrorCode as C;
        match code {
            // Local `_UNKNOWN_TOPIC` after `topic.metadata.propagation.max.ms` (30 s), or the
            // broker's answer; `InvalidTopic` is a name Kafka refuses outright.
            C::UnknownTopic | C::UnknownTopicOrPartition | C::InvalidTopic => {
                Some(Unwritable::TopicMissing {
                    topic: topic.to_string(),
                    code,
                })
            }
            // The producer's own check against `message.max.bytes`, or the broker's against the
            // topic's `max.message.bytes`.
            C::MessageSizeTooLarge | C::InvalidMessageSize | C::MessageBatchTooLarge => {
                Some(Unwritable::TooLarge {
                    topic: topic.to_string(),
                    bytes,
                    code,
                })
            }
            _ => None,
        }
    }
}

/// Writes dead letters.
///
/// A producer that hit a fatal error never recovers (librdkafka), and a missing WRITE right
/// makes the idempotent producer fatal before its first write (it cannot get a producer id).
/// So a write finding the producer fatal replaces it first: after the right is granted, the next
/// attempt (the coordinator's probe) gets through.
#[derive(Clone)]
pub struct DlqProducer {
    inner: Arc<Inner>,
}

struct Inner {
    kafka: KafkaConfig,
    config: ClientConfig,
    current: Mutex<FutureProducer<DlqContext>>,
    topic: String,
    /// The MCM API key, scrubbed from response snippets.
    secret: String,
    /// Set once a refusal was logged, cleared by a write that succeeds: one warning per episode,
    /// however many producers are made meanwhile.
    warned: Arc<AtomicBool>,
}

/// The DLQ producer's client context: a refused write is reported once, with what to grant.
struct DlqContext {
    topic: String,
    principal: Option<String>,
    warned: Arc<AtomicBool>,
}

impl ClientContext for DlqContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match Refusal::of_client_error(&error, reason) {
            Some(refusal @ Refusal::Write { .. }) => {
                if self.warned.swap(true, Ordering::SeqCst) {
                    tracing::debug!(%error, reason, "DLQ producer still refused");
                } else {
                    let denied = explain(refusal, &self.topic, self.principal.as_deref());
                    tracing::warn!(
                        error = %denied,
                        "the dead-letter topic is not writable: a message that needs dead-lettering will wait (its partition paused, its offset not committed) until the right is granted"
                    );
                }
            }
            // Logins and consuming rights: the consumer reports those.
            Some(_) => tracing::debug!(%error, reason, "DLQ producer refused"),
            None => tracing::warn!(%error, reason, "DLQ producer: kafka client error"),
        }
    }
}

fn explain(refusal: Refusal, topic: &str, principal: Option<&str>) -> AccessDenied {
    AccessDenied::explain(
        refusal,
        Names {
            group: "",
            topic_candidates: &[],
            dlq_topic: topic,
            principal,
        },
    )
}

impl DlqProducer {
    pub fn new(k: &KafkaConfig, topic: &str, secret: &str) -> Result<DlqProducer, KafkaError> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &k.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .set("linger.ms", "5")
            // A missing DLQ topic must fail as `_UNKNOWN_TOPIC` (held, with the fix named: see
            // `Unwritable`) before the 30 s message timeout turns it into a retried timeout;
            // librdkafka waits `topic.metadata.propagation.max.ms` (30 s by default) first.
            .set(TOPIC_PROPAGATION, TOPIC_PROPAGATION_MS)
            // And a DLQ topic the operator then creates is seen within seconds, not the
            // default 5 minutes (the consumer's setting, for the same reason).
            .set(
                super::consumer::METADATA_REFRESH,
                super::consumer::METADATA_REFRESH_MS,
            );
        for (key, value) in super::shared_properties(&k.properties) {
            c.set(key, value);
        }
        super::security::apply(&mut c, k);
        let warned = Arc::new(AtomicBool::new(false));
        let producer = create(&c, k, topic, &warned)?;
        Ok(DlqProducer {
            inner: Arc::new(Inner {
                kafka: k.clone(),
                config: c,
                current: Mutex::new(producer),
                topic: topic.to_string(),
                secret: secret.to_string(),
                warned,
            }),
        })
    }

    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The producer to write with: the current one, or a new one when it went fatal.
    fn usable(&self) -> Result<FutureProducer<DlqContext>, KafkaError> {
        let i = &self.inner;
        let mut current = i.current.lock().unwrap_or_else(|p| p.into_inner());
        let Some((code, reason)) = current.client().fatal_error() else {
            return Ok(current.clone());
        };
        let fresh = create(&i.config, &i.kafka, &i.topic, &i.warned)?;
        let old = std::mem::replace(&mut *current, fresh.clone());
        drop(current);
        tracing::debug!(error = %code, reason, "DLQ producer was unusable after a fatal error; made a new one");
        // Dropping a producer flushes and joins its thread: not on a runtime worker.
        tokio::task::spawn_blocking(move || drop(old));
        Ok(fresh)
    }

    /// Writes one dead letter and waits for Kafka's acknowledgement.
    pub async fn send(&self, msg: &OwnedMessage, why: &DlqReason) -> Result<(), DlqError> {
        let producer = self.usable()?;
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
            &self.inner.secret,
        ) {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.inner.topic).headers(headers);
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {
                self.inner.warned.store(false, Ordering::SeqCst);
                Ok(())
            }
            Err((e, _)) => match Refusal::of_produce_error(&e, producer.client().fatal_error()) {
                Some(refusal) => Err(DlqError::Denied(explain(
                    refusal,
                    &self.inner.topic,
                    self.inner.kafka.security.principal().as_deref(),
                ))),
                None => {
                    let bytes =
                        msg.payload().map_or(0, <[u8]>::len) + msg.key().map_or(0, <[u8]>::len);
                    match e
                        .rdkafka_error_code()
                        .and_then(|code| Unwritable::of(code, &self.inner.topic, bytes))
                    {
                        Some(u) => Err(DlqError::Unwritable(u)),
                        None => Err(DlqError::Kafka(e)),
                    }
                }
            },
        }
    }
}

fn create(
    c: &ClientConfig,
    k: &KafkaConfig,
    topic: &str,
    warned: &Arc<AtomicBool>,
) -> Result<FutureProducer<DlqContext>, KafkaError> {
    c.create_with_context(DlqContext {
        topic: topic.to_string(),
        principal: k.security.principal(),
        warned: warned.clone(),
    })
    .map_err(|e| super::security::scrub(e, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_topic_and_an_oversized_record_are_unwritable_with_the_fix_named() {
        let missing =
            Unwritable::of(RDKafkaErrorCode::UnknownTopic, "g.dlq", 10).expect("missing topic");
        assert!(matches!(missing, Unwritable::TopicMissing { .. }));
        let text = missing.to_string();
        assert!(text.contains("\"g.dlq\" does not exist"), "{text}");
        assert!(text.contains("delivery.dlq_topic"), "{text}");
        let large = Unwritable::of(RDKafkaErrorCode::MessageSizeTooLarge, "g.dlq", 2_000_000)
            .expect("too large");
        let text = large.to_string();
        assert!(text.contains("2000000 bytes"), "{text}");
        assert!(
            text.contains("max.message.bytes on topic \"g.dlq\""),
            "{text}"
        );
    }

    #[test]
    fn transient_produce_errors_stay_retryable() {
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::QueueFull,
        ] {
            assert_eq!(Unwritable::of(code, "g.dlq", 1), None, "{code:?}");
        }
    }

    #[test]
    fn headers_carry_source_and_reason_and_never_the_key() {
        let why = DlqReason {
            class: "permanent".into(),
            reason: "missing_page_id".into(),
            http_status: Some(400),
            response_snippet: Some(format!("echo sekret {}", "é".repeat(400))),
            schema_id: None,
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
    fn a_value_rejected_for_its_schema_names_the_schema_id() {
        let why = |schema_id| DlqReason {
            class: "decode".into(),
            reason: "avro_decode".into(),
            http_status: None,
            response_snippet: None,
            schema_id,
        };
        let id = |h: Vec<(&str, String)>| {
            h.into_iter()
                .find(|(k, _)| *k == "mcm.schema.id")
                .map(|(_, v)| v)
        };
        assert_eq!(
            id(dlq_headers("t", 0, 0, &why(Some(258)), "")).as_deref(),
            Some("258")
        );
        assert_eq!(id(dlq_headers("t", 0, 0, &why(None), "")), None);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("abc", 10), "abc");
    }
}
