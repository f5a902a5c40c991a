//! What the Kafka answers mean for the bridge: one [`Check`] per question, from plain data (the
//! describe results, a refusal librdkafka reported, the broker's auto-create setting). Pure; the
//! requests are made in [`super`].
//!
//! Rights are read from KIP-430's authorized operations: the broker's authorizer answers for the
//! connection's principal, so "READ on the group" and "WRITE on the DLQ topic" are checked without
//! joining the group or writing a record. Refusals are explained with [`crate::kafka::access`]'s
//! sentences and `kafka-acls` commands, the ones `run` logs when the same right is missing.

use crate::doctor::report::Check;
use crate::kafka::access::{AccessDenied, Names, Refusal, Resource, Right};
use crate::kafka::describe::{
    ClusterDescription, DescribeError, GroupDescription, Operation, TopicDescription,
};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// The `code` of a right missing from the authorized operations (no error was returned: the
/// broker listed what the principal may do, and the right was not among it).
const NOT_AUTHORIZED: &str = "not among its KIP-430 authorized operations";

/// What TOPIC_AUTHORIZATION_FAILED on a describe means.
const NO_DESCRIBE: &str =
    "not even DESCRIBE is granted, so Kafka does not say whether the topic exists";

/// Which principal the checks run as, and the names `access` explains refusals with.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub principal: Option<&'a str>,
    pub group: &'a str,
    pub dlq_topic: &'a str,
}

impl Who<'_> {
    fn names<'a>(&'a self, topics: &'a [String]) -> Names<'a> {
        Names {
            group: self.group,
            topic_candidates: topics,
            dlq_topic: self.dlq_topic,
            principal: self.principal,
        }
    }

    fn denied(
        &self,
        right: Right,
        resource: Resource,
        role: Option<&'static str>,
        has: &[Operation],
    ) -> AccessDenied {
        AccessDenied {
            right,
            resource,
            principal: self.principal.map(str::to_string),
            code: NOT_AUTHORIZED,
            role,
            detail: format!("it may {}", list(has)),
        }
    }
}

fn list(ops: &[Operation]) -> String {
    if ops.is_empty() {
        return "do nothing".into();
    }
    ops.iter()
        .map(|o| format!("{o:?}").to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// What happened to the first request, DescribeCluster.
#[derive(Debug)]
pub struct Connection<'a> {
    pub bootstrap: &'a str,
    /// `kafka.security`'s one-line description (never a secret).
    pub security: String,
    pub answer: Result<ClusterDescription, DescribeError>,
    /// A refused login librdkafka reported meanwhile (wrong password, untrusted certificate).
    pub refusal: Option<Refusal>,
    /// The last other client error (connection refused, disconnected …).
    pub last_error: Option<String>,
    pub timeout: Duration,
}

/// `kafka.brokers` and `kafka.auth`; `false` when the other Kafka checks cannot run.
pub fn connection(c: Connection<'_>, who: &Who<'_>) -> (Vec<Check>, bool) {
    let brokers = |detail: String| Check::pass("kafka.brokers", c.bootstrap, detail);
    match (c.answer, c.refusal) {
        (Ok(d), _) => {
            let mut detail = format!("{} reachable", plural(d.nodes.len(), "broker"));
            if let Some(ctl) = &d.controller {
                detail.push_str(&format!(
                    ", controller {} ({}:{})",
                    ctl.id, ctl.host, ctl.port
                ));
            }
            if let Some(id) = &d.cluster_id {
                detail.push_str(&format!(", cluster id {id}"));
            }
            let as_whom = who
                .principal
                .map_or_else(|| "(no SASL login)".to_string(), |p| p.to_string());
            let auth = Check::pass("kafka.auth", as_whom, format!("accepted ({})", c.security));
            (vec![brokers(detail), auth], true)
        }
        (Err(_), Some(refusal @ Refusal::Authentication { .. })) => {
            let denied = AccessDenied::explain(refusal, who.names(&[]));
            let auth = Check::fail(
                "kafka.auth",
                who.principal.unwrap_or("the connection"),
                denied.to_string(),
            );
            let reached = brokers("reached, but the login was refused (see kafka.auth)".into());
            (vec![reached, auth], false)
        }
        (Err(e), _) => {
            let why = c.last_error.unwrap_or_else(|| e.to_string());
            let detail = match e {
                DescribeError::TimedOut { .. }
                | DescribeError::Failed {
                    code:
                        RDKafkaErrorCode::OperationTimedOut
                        | RDKafkaErrorCode::RequestTimedOut
                        | RDKafkaErrorCode::BrokerTransportFailure
                        | RDKafkaErrorCode::AllBrokersDown,
                    ..
                } => format!(
                    "unreachable after {}: {why}",
                    humantime::format_duration(c.timeout)
                ),
                _ => format!("no usable answer: {why}"),
            };
            let unreachable = Check::fail("kafka.brokers", c.bootstrap, detail).fix(
                "check kafka.bootstrap_servers, that this host reaches every broker's advertised listener (firewall, DNS), and that kafka.security_protocol matches that listener",
            );
            let auth = Check::skip("kafka.auth", "", "not checked: no broker answered");
            (vec![unreachable, auth], false)
        }
    }
}

/// `kafka.topic` for one exact topic name.
pub fn topic(d: &TopicDescription, who: &Who<'_>) -> Check {
    let name = "kafka.topic";
    match d.error {
        None => {
            let size = plural(d.partitions, "partition");
            match &d.operations {
                Some(ops) if !ops.contains(&Operation::Read) => {
                    let denied = who.denied(Right::Read, Resource::Topics(vec![d.name.clone()]), None, ops);
                    Check::fail(name, &d.name, format!("{size}; {denied}"))
                }
                Some(_) => Check::pass(name, &d.name, format!("{size}, READ granted")),
                None => Check::pass(
                    name,
                    &d.name,
                    format!("{size} (READ not checked: the broker does not report authorized operations)"),
                ),
            }
        }
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Check::fail(
            name,
            &d.name,
            "does not exist (UNKNOWN_TOPIC_OR_PARTITION)",
        )
        .fix(format!(
            "create it (kafka-topics --bootstrap-server … --create --topic {} --partitions N) or correct the topic name in the mapping",
            d.name
        )),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => {
            let refusal = Refusal::Topic {
                topic: Some(d.name.clone()),
                detail: NO_DESCRIBE.into(),
            };
            Check::fail(name, &d.name, AccessDenied::explain(refusal, who.names(&[])).to_string())
        }
        Some(code) => Check::fail(name, &d.name, format!("cannot be described: {code}")),
    }
}

/// `kafka.pattern` for one `pattern:` block: the topics it matches (as the consumer would
/// subscribe: visible to the principal, internal topics left out) and READ on them.
pub fn pattern(pattern: &str, matched: &[TopicDescription], who: &Who<'_>) -> Check {
    let name = "kafka.pattern";
    if matched.is_empty() {
        return Check::fail(name, pattern, "matches no topic this principal can see").fix(
            "create a matching topic, correct `pattern:`, or grant DESCRIBE on the topics (topics without it are invisible)",
        );
    }
    let shown: Vec<String> = matched
        .iter()
        .take(5)
        .map(|t| format!("{} ({})", t.name, t.partitions))
        .collect();
    let more = matched.len().saturating_sub(shown.len());
    let mut found = format!(
        "matches {}: {}",
        plural(matched.len(), "topic"),
        shown.join(", ")
    );
    if more > 0 {
        found.push_str(&format!(" and {more} more"));
    }
    let unreadable: Vec<String> = matched
        .iter()
        .filter(|t| {
            t.error.is_some()
                || t.operations
                    .as_ref()
                    .is_some_and(|ops| !ops.contains(&Operation::Read))
        })
        .map(|t| t.name.clone())
        .collect();
    if !unreadable.is_empty() {
        let denied = who.denied(Right::Read, Resource::Topics(unreadable), None, &[]);
        let denied = AccessDenied {
            detail: "READ is not granted".into(),
            ..denied
        };
        return Check::fail(name, pattern, format!("{found}; {denied}"));
    }
    if matched.iter().any(|t| t.operations.is_none()) {
        found.push_str(" (READ not checked: the broker does not report authorized operations)");
    } else {
        found.push_str("; READ granted on each");
    }
    Check::pass(name, pattern, found)
}

/// `kafka.group`: READ on the consumer group (joining and committing need it), from a
/// description of the group; nothing joins it.
pub fn group(answer: Result<GroupDescription, DescribeError>, who: &Who<'_>) -> Check {
    let name = "kafka.group";
    let refused = |detail: String| {
        let denied = AccessDenied::explain(Refusal::Group { detail }, who.names(&[]));
        Check::fail(name, who.group, denied.to_string())
    };
    let d = match answer {
        Ok(d) => d,
        Err(DescribeError::Failed {
            code: RDKafkaErrorCode::GroupAuthorizationFailed,
            detail,
            ..
        }) => return refused(detail),
        Err(e) => return Check::fail(name, who.group, format!("cannot be described: {e}")),
    };
    match (&d.error, &d.operations) {
        (Some((RDKafkaErrorCode::GroupAuthorizationFailed, detail)), _) => refused(detail.clone()),
        (Some((code, detail)), _) => {
            Check::fail(name, who.group, format!("cannot be described: {code}: {detail}"))
        }
        (None, Some(ops)) if !ops.contains(&Operation::Read) => {
            let denied = who.denied(Right::Read, Resource::Group(who.group.into()), Some("the consumer group"), ops);
            Check::fail(name, who.group, denied.to_string())
        }
        (None, Some(_)) => Check::pass(
            name,
            who.group,
            format!("READ granted (described, not joined; {} now)", plural(d.members, "member")),
        ),
        (None, None) => Check::warn(
            name,
            who.group,
            format!(
                "described (DESCRIBE granted; {} now), but READ not checked: the broker does not report authorized operations",
                plural(d.members, "member")
            ),
        ),
    }
}

/// Why the broker's `auto.create.topics.enable` is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingUnknown {
    #[error("the cluster description named no broker to ask")]
    NoBroker,
    #[error("cannot create an admin client: {0}")]
    Client(KafkaError),
    #[error("cannot read auto.create.topics.enable: {0}")]
    Request(KafkaError),
    #[error("cannot read auto.create.topics.enable: {0}")]
    Refused(RDKafkaErrorCode),
    /// rdkafka 0.39 turns a refused DescribeConfigs into an empty answer (see
    /// `kafka::topic_retention`).
    #[error("cannot read auto.create.topics.enable: the broker answered nothing, as it does without DESCRIBE_CONFIGS on the cluster")]
    Empty,
    #[error("auto.create.topics.enable is {0:?}")]
    Unexpected(String),
}

/// Whether Kafka would create a missing DLQ topic on the first dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoCreate {
    /// The broker's `auto.create.topics.enable`, or why it could not be read.
    pub broker: Result<bool, SettingUnknown>,
    /// The DLQ producer's `allow.auto.create.topics` (librdkafka's producer default: true).
    pub producer: bool,
    /// CREATE on the cluster (a topic-level CREATE ACL, which this cannot see, would do too).
    pub cluster_create: bool,
}

/// `kafka.dlq`: the dead-letter topic exists and the principal may write to it — read from the
/// authorized operations, so nothing is written.
pub fn dlq(d: &TopicDescription, auto: Option<&AutoCreate>, who: &Who<'_>) -> Check {
    let name = "kafka.dlq";
    let topic = who.dlq_topic;
    let role = Some("the dead-letter topic");
    let create = format!(
        "create it (kafka-topics --bootstrap-server … --create --topic {topic}) or set delivery.dlq_topic to an existing topic"
    );
    match d.error {
        None => {
            let size = plural(d.partitions, "partition");
            match &d.operations {
                Some(ops) if !ops.contains(&Operation::Write) => {
                    let denied = who.denied(Right::Write, Resource::Topics(vec![topic.into()]), role, ops);
                    Check::fail(name, topic, format!("exists ({size}); {denied}"))
                }
                Some(_) => Check::pass(
                    name,
                    topic,
                    format!("exists ({size}), WRITE granted (the broker's authorizer says so; nothing was written)"),
                ),
                None => Check::warn(
                    name,
                    topic,
                    format!("exists ({size}); WRITE not checked: the broker does not report authorized operations, and the check writes nothing (a refused dead letter is reported by `run`)"),
                ),
            }
        }
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => match auto {
            Some(AutoCreate {
                broker: Ok(true),
                producer: true,
                cluster_create,
            }) => {
                let who_may = if *cluster_create {
                    "this principal may CREATE topics"
                } else {
                    "if this principal may CREATE it: no CREATE on the cluster, a topic-level CREATE ACL would do"
                };
                Check::warn(
                    name,
                    topic,
                    format!("does not exist; the brokers would create it with their defaults on the first dead letter (auto.create.topics.enable=true; {who_may})"),
                )
                .fix(format!("create it yourself to choose partitions, replication and retention: {create}"))
            }
            Some(AutoCreate { broker: Ok(true), producer: false, .. }) => Check::fail(
                name,
                topic,
                "does not exist, and kafka.properties allow.auto.create.topics=false keeps the bridge from having it created",
            )
            .fix(create),
            Some(AutoCreate { broker: Ok(false), .. }) => Check::fail(
                name,
                topic,
                "does not exist, and the brokers do not create topics on use (auto.create.topics.enable=false)",
            )
            .fix(create),
            Some(AutoCreate { broker: Err(why), .. }) => Check::fail(
                name,
                topic,
                format!("does not exist; whether the brokers would create it is unknown ({why})"),
            )
            .fix(create),
            None => Check::fail(name, topic, "does not exist").fix(create),
        },
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => {
            let denied = AccessDenied {
                code: "TOPIC_AUTHORIZATION_FAILED",
                detail: NO_DESCRIBE.into(),
                ..who.denied(Right::Write, Resource::Topics(vec![topic.into()]), role, &[])
            };
            Check::fail(name, topic, denied.to_string())
        }
        Some(code) => Check::fail(name, topic, format!("cannot be described: {code}")),
    }
}

/// The remaining checks when the connection failed: each named, none run.
pub fn skipped(names: &[(&'static str, String)]) -> Vec<Check> {
    names
        .iter()
        .map(|(n, s)| Check::skip(n, s.clone(), "not checked: the brokers could not be used"))
        .collect()
}

#[cfg(test)]
mod tests;
