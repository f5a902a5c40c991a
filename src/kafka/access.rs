//! Kafka refusing the bridge — a rejected login or a missing ACL — recognised among librdkafka's
//! errors and explained as one error that names the missing right, the resource and the command
//! that grants it.
//!
//! librdkafka reports these like any other error (the client error callback, `poll()` errors,
//! failed produces) and keeps retrying the request behind them, so without this module a wrong
//! password is an endless stream of "kafka client error" warnings, a missing topic ACL two
//! warnings and silence, a missing DLQ right a warning per dead letter per second. Here they are
//! recognised ([`Refusal::of_client_error`], [`Refusal::of_produce_error`]) and explained
//! ([`AccessDenied`]); what the bridge does about each is decided where it acts: the coordinator
//! stops the bridge for consuming rights and holds dead letters for the DLQ's (see
//! `pipeline::coordinator`, `on_access_denied` and `hold_dead_letter`).
//!
//! What each case looks like, measured on Apache Kafka 4.2.1 with librdkafka 2.12.1 (both group
//! protocols unless said):
//! - wrong password: `_AUTHENTICATION` "SASL authentication error: Authentication failed …" from
//!   every client, again on every reconnect (up to every 10 s);
//! - no READ on the group: GROUP_AUTHORIZATION_FAILED "FindCoordinator response error: Group
//!   authorization failed." (under KIP-848 a later heartbeat refusal is librdkafka-fatal);
//! - no ACL on the topic at all: TOPIC_AUTHORIZATION_FAILED "Subscribed topic not available:
//!   `<topic>`: …" (classic), or "ConsumerGroupHeartbeat failed: …" every 5 s naming no topic
//!   (KIP-848);
//! - DESCRIBE but no READ on the topic: TOPIC_AUTHORIZATION_FAILED "Fetch from broker 1 failed: …"
//!   once per partition, naming no topic; the partitions stay assigned and silent;
//! - no WRITE on the DLQ topic (and on no other topic): the idempotent producer cannot get its
//!   producer id (CLUSTER_AUTHORIZATION_FAILED) and becomes librdkafka-fatal at start-up; every
//!   later produce fails with `_FATAL`. With WRITE elsewhere the produce itself fails with
//!   TOPIC_AUTHORIZATION_FAILED.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::fmt;

/// What Kafka refused, as librdkafka reported it, before the resource is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// SASL authentication failed (user, password or mechanism), or the brokers' TLS certificate
    /// is not trusted.
    Authentication { detail: String },
    /// The consumer group (GROUP_AUTHORIZATION_FAILED).
    Group { detail: String },
    /// A consumed topic (TOPIC_AUTHORIZATION_FAILED); `topic` when librdkafka names it.
    Topic {
        topic: Option<String>,
        detail: String,
    },
    /// A produce: TOPIC_AUTHORIZATION_FAILED, or CLUSTER_AUTHORIZATION_FAILED for the idempotent
    /// producer's id (which needs WRITE on some topic).
    Write {
        code: RDKafkaErrorCode,
        detail: String,
    },
}

/// librdkafka's prefix for a subscribed topic the metadata refused (rdkafka_cgrp.c).
const SUBSCRIBED_TOPIC_ERROR: &str = "Subscribed topic not available: ";
/// librdkafka's prefix for an error that made the client unusable (rdkafka.c).
const FATAL_PREFIX: &str = "Fatal error: ";

impl Refusal {
    /// A client error (error callback of any client, or a consumer poll error) that is a refusal.
    pub fn of_client_error(error: &KafkaError, reason: &str) -> Option<Refusal> {
        Refusal::of_code(error.rdkafka_error_code()?, reason)
    }

    fn of_code(code: RDKafkaErrorCode, reason: &str) -> Option<Refusal> {
        let detail = reason.to_string();
        match code {
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
                Some(Refusal::Authentication { detail })
            }
            // OpenSSL's words for an untrusted certificate; other TLS errors (a broker going
            // away mid-handshake) stay ordinary, retried connection errors.
            RDKafkaErrorCode::SSL if reason.contains("certificate verify failed") => {
                Some(Refusal::Authentication { detail })
            }
            RDKafkaErrorCode::GroupAuthorizationFailed => Some(Refusal::Group { detail }),
            RDKafkaErrorCode::TopicAuthorizationFailed => Some(Refusal::Topic {
                topic: reason
                    .strip_prefix(SUBSCRIBED_TOPIC_ERROR)
                    .and_then(|rest| rest.split(": ").next())
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
                detail,
            }),
            RDKafkaErrorCode::ClusterAuthorizationFailed => Some(Refusal::Write { code, detail }),
            RDKafkaErrorCode::Fatal => {
                // "Fatal error: <librdkafka's text of the cause>: …": find which cause.
                let inner = reason.strip_prefix(FATAL_PREFIX)?;
                [
                    RDKafkaErrorCode::GroupAuthorizationFailed,
                    RDKafkaErrorCode::TopicAuthorizationFailed,
                    RDKafkaErrorCode::ClusterAuthorizationFailed,
                    RDKafkaErrorCode::SaslAuthenticationFailed,
                ]
                .into_iter()
                .find(|c| inner.starts_with(&c.to_string()))
                .and_then(|c| Refusal::of_code(c, inner))
            }
            _ => None,
        }
    }

    /// A failed produce that is a refusal. `fatal` is the producer's fatal error, if any: after
    /// one, every produce fails with `_FATAL` (or was purged with the queue).
    pub fn of_produce_error(
        error: &KafkaError,
        fatal: Option<(RDKafkaErrorCode, String)>,
    ) -> Option<Refusal> {
        let code = error.rdkafka_error_code()?;
        match (code, fatal) {
            (
                RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed,
                _,
            ) => Some(Refusal::Write {
                code,
                detail: code.to_string(),
            }),
            (
                RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::PurgeQueue
                | RDKafkaErrorCode::PurgeInflight,
                Some((
                    cause @ (RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed),
                    detail,
                )),
            ) => Some(Refusal::Write {
                code: cause,
                detail,
            }),
            _ => None,
        }
    }
}

/// An ACL operation (as `kafka-acls --operation` spells it), or logging in at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    Authenticate,
    Read,
    Write,
}

impl Right {
    /// The `right` label of `mcm_bridge_kafka_access_denied_total`.
    pub fn label(self) -> &'static str {
        match self {
            Right::Authenticate => "authenticate",
            Right::Read => "read",
            Right::Write => "write",
        }
    }

    fn acl_operation(self) -> &'static str {
        match self {
            Right::Authenticate => "",
            Right::Read => "Read",
            Right::Write => "Write",
        }
    }
}

/// What the right was denied on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The login itself.
    Brokers,
    Group(String),
    /// One topic, or the candidates when librdkafka did not say which one.
    Topics(Vec<String>),
}

impl Resource {
    /// The `resource` label of `mcm_bridge_kafka_access_denied_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Resource::Brokers => "brokers",
            Resource::Group(_) => "group",
            Resource::Topics(_) => "topic",
        }
    }
}

/// A refusal explained: the right, the resource, who was refused and how to grant it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AccessDenied {
    pub right: Right,
    pub resource: Resource,
    /// `User:<name>` when the bridge logs in with a username, else unknown (mutual TLS: the
    /// certificate's distinguished name).
    pub principal: Option<String>,
    /// Kafka's name of the error, e.g. `GROUP_AUTHORIZATION_FAILED`.
    pub code: &'static str,
    /// What the bridge uses the resource for, e.g. "the dead-letter topic".
    pub role: Option<&'static str>,
    /// librdkafka's words.
    pub detail: String,
}

/// Kafka's protocol name of an error code (what its docs and forums use).
fn kafka_name(code: RDKafkaErrorCode) -> &'static str {
    match code {
        RDKafkaErrorCode::GroupAuthorizationFailed => "GROUP_AUTHORIZATION_FAILED",
        RDKafkaErrorCode::TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED",
        RDKafkaErrorCode::ClusterAuthorizationFailed => "CLUSTER_AUTHORIZATION_FAILED",
        _ => "SASL_AUTHENTICATION_FAILED",
    }
}

/// What the coordinator knows to name a refusal's resource with.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub group: &'a str,
    /// Topics a refusal that names none may be about (assigned and not yet read, or subscribed).
    pub topic_candidates: &'a [String],
    pub dlq_topic: &'a str,
    pub principal: Option<&'a str>,
}

impl AccessDenied {
    /// Names the resource of `refusal` with what the bridge knows.
    pub fn explain(refusal: Refusal, names: Names<'_>) -> AccessDenied {
        let principal = names.principal.map(str::to_string);
        let (right, resource, code, role, detail) = match refusal {
            Refusal::Authentication { detail } => (
                Right::Authenticate,
                Resource::Brokers,
                "SASL_AUTHENTICATION_FAILED",
                None,
                detail,
            ),
            Refusal::Group { detail } => (
                Right::Read,
                Resource::Group(names.group.to_string()),
                "GROUP_AUTHORIZATION_FAILED",
                Some("the consumer group"),
                detail,
            ),
            Refusal::Topic { topic, detail } => (
                Right::Read,
                Resource::Topics(
                    topic.map_or_else(|| names.topic_candidates.to_vec(), |t| vec![t]),
                ),
                "TOPIC_AUTHORIZATION_FAILED",
                None,
                detail,
            ),
            Refusal::Write { code, detail } => (
                Right::Write,
                Resource::Topics(vec![names.dlq_topic.to_string()]),
                kafka_name(code),
                Some("the dead-letter topic"),
                detail,
            ),
        };
        AccessDenied {
            right,
            resource,
            principal,
            code,
            role,
            detail,
        }
    }

    /// The `kafka-acls` command that grants the right (READ and WRITE imply DESCRIBE).
    pub fn grant_command(&self) -> Option<String> {
        let principal = self
            .principal
            .as_deref()
            .unwrap_or("User:<the bridge's principal>");
        let target = match &self.resource {
            Resource::Brokers => return None,
            Resource::Group(g) => format!("--group {g}"),
            Resource::Topics(ts) => ts
                .iter()
                .map(|t| format!("--topic {t}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        Some(format!(
            "kafka-acls --add --allow-principal {principal} --operation {} {target}",
            self.right.acl_operation()
        ))
    }
}

impl fmt::Display for AccessDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = self.principal.as_deref().unwrap_or("unknown principal");
        let what = match &self.resource {
            Resource::Brokers => {
                return write!(
                    f,
                    "Kafka rejected the bridge's credentials as {who} ({}: {}): check kafka.sasl (mechanism, username, password or password_file) and kafka.tls.ca_file against the cluster",
                    self.code, self.detail
                );
            }
            Resource::Group(g) => format!("group {g:?}"),
            Resource::Topics(ts) if ts.len() == 1 => format!("topic {:?}", ts[0]),
            Resource::Topics(ts) if ts.is_empty() => "a subscribed topic".to_string(),
            Resource::Topics(ts) => format!(
                "one of the topics {}",
                ts.iter()
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let right = self.right.acl_operation().to_ascii_uppercase();
        let role = self.role.map(|r| format!(" ({r})")).unwrap_or_default();
        write!(
            f,
            "Kafka denied {right} on {what}{role} to this principal ({who}, {}: {})",
            self.code, self.detail
        )?;
        if let Some(grant) = self.grant_command() {
            write!(f, ": grant it with {grant}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<'a>(candidates: &'a [String]) -> Names<'a> {
        Names {
            group: "g",
            topic_candidates: candidates,
            dlq_topic: "g.dlq",
            principal: Some("User:bridge"),
        }
    }

    fn global(code: RDKafkaErrorCode) -> KafkaError {
        KafkaError::Global(code)
    }

    #[test]
    fn a_group_refusal_names_the_group_and_the_grant() {
        let r = Refusal::of_client_error(
            &global(RDKafkaErrorCode::GroupAuthorizationFailed),
            "FindCoordinator response error: Group authorization failed.",
        )
        .expect("a refusal");
        let d = AccessDenied::explain(r, names(&[]));
        assert_eq!(
            d.to_string(),
            "Kafka denied READ on group \"g\" (the consumer group) to this principal (User:bridge, GROUP_AUTHORIZATION_FAILED: FindCoordinator response error: Group authorization failed.): grant it with kafka-acls --add --allow-principal User:bridge --operation Read --group g"
        );
        assert_eq!((d.right.label(), d.resource.label()), ("read", "group"));
    }

    #[test]
    fn a_topic_librdkafka_names_is_the_one_reported() {
        let r = Refusal::of_client_error(
            &global(RDKafkaErrorCode::TopicAuthorizationFailed),
            "Subscribed topic not available: shop.events: Broker: Topic authorization failed",
        )
        .expect("a refusal");
        let others = ["a".to_string(), "b".to_string()];
        let d = AccessDenied::explain(r, names(&others));
        assert_eq!(d.resource, Resource::Topics(vec!["shop.events".into()]));
        assert!(d
            .to_string()
            .contains("Kafka denied READ on topic \"shop.events\""));
        assert!(d
            .to_string()
            .ends_with("--operation Read --topic shop.events"));
    }

    #[test]
    fn a_fetch_refusal_names_the_candidates() {
        let r = Refusal::of_client_error(
            &global(RDKafkaErrorCode::TopicAuthorizationFailed),
            "Fetch from broker 1 failed: Broker: Topic authorization failed",
        )
        .expect("a refusal");
        let one = ["events".to_string()];
        assert!(AccessDenied::explain(r.clone(), names(&one))
            .to_string()
            .contains("on topic \"events\""));
        let two = ["a".to_string(), "b".to_string()];
        let d = AccessDenied::explain(r, names(&two));
        assert!(d.to_string().contains("on one of the topics \"a\", \"b\""));
        assert_eq!(
            d.grant_command().as_deref(),
            Some("kafka-acls --add --allow-principal User:bridge --operation Read --topic a --topic b")
        );
    }

    #[test]
    fn authentication_failures_say_what_to_check() {
        let r = Refusal::of_client_error(
            &global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
        )
        .expect("a refusal");
        let d = AccessDenied::explain(r, names(&[]));
        assert_eq!(d.right, Right::Authenticate);
        let msg = d.to_string();
        assert!(
            msg.starts_with("Kafka rejected the bridge's credentials as User:bridge"),
            "{msg}"
        );
        assert!(msg.contains("kafka.sasl"), "{msg}");
        assert_eq!(d.grant_command(), None);
        let tls = Refusal::of_client_error(
            &global(RDKafkaErrorCode::SSL),
            "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
        );
        assert!(matches!(tls, Some(Refusal::Authentication { .. })));
        let transient = Refusal::of_client_error(
            &global(RDKafkaErrorCode::SSL),
            "SSL handshake failed: Disconnected",
        );
        assert_eq!(transient, None);
    }

    #[test]
    fn a_fatal_error_is_recognised_by_its_cause() {
        let r = Refusal::of_client_error(
            &global(RDKafkaErrorCode::Fatal),
            &format!(
                "Fatal error: {}: ConsumerGroupHeartbeat fatal error",
                RDKafkaErrorCode::GroupAuthorizationFailed
            ),
        );
        assert!(matches!(r, Some(Refusal::Group { .. })), "{r:?}");
        let other = Refusal::of_client_error(
            &global(RDKafkaErrorCode::Fatal),
            "Fatal error: Broker: Fenced instance id: …",
        );
        assert_eq!(other, None);
    }

    #[test]
    fn ordinary_errors_are_not_refusals() {
        for code in [
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            assert_eq!(Refusal::of_client_error(&global(code), "x"), None);
        }
    }

    #[test]
    fn a_dlq_produce_refusal_names_the_dlq_topic_also_when_the_producer_went_fatal() {
        let direct = Refusal::of_produce_error(
            &KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed),
            None,
        )
        .expect("a refusal");
        let d = AccessDenied::explain(direct, names(&[]));
        assert_eq!(
            (d.right, d.resource.clone()),
            (Right::Write, Resource::Topics(vec!["g.dlq".into()]))
        );
        assert!(d.to_string().contains("(the dead-letter topic)"));
        assert!(d.to_string().ends_with("--operation Write --topic g.dlq"));
        let fatal = Refusal::of_produce_error(
            &KafkaError::MessageProduction(RDKafkaErrorCode::Fatal),
            Some((
                RDKafkaErrorCode::ClusterAuthorizationFailed,
                "Failed to acquire idempotence PID".into(),
            )),
        )
        .expect("a refusal");
        assert!(AccessDenied::explain(fatal, names(&[]))
            .to_string()
            .contains("CLUSTER_AUTHORIZATION_FAILED"));
        let other = Refusal::of_produce_error(
            &KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            None,
        );
        assert_eq!(other, None);
    }
}
