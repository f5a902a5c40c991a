//! `kafka.group_protocol`: which consumer group protocol the bridge speaks, and the settings that
//! belong to each.
//!
//! - **`classic`** (the default, every broker): the members agree on an assignment among
//!   themselves (`assignment_strategy`, cooperative-sticky by default) and the client keeps the
//!   session alive (`session_timeout`, heartbeats). Works with Kafka 2.4+, Redpanda, MSK, Confluent
//!   Cloud, and librdkafka's mock cluster.
//! - **`consumer`** (KIP-848, Apache Kafka 4.0+, librdkafka 2.12+): the broker computes the
//!   assignment (`remote_assignor`: `uniform` or `range`) and owns the session and heartbeat
//!   settings (`group.consumer.session.timeout.ms`, 45 s by default). Rebalances are incremental
//!   by construction and no longer stop the whole group; the price is that the session timeout is
//!   no longer the bridge's to choose, and commits racing a reconciliation can be refused with
//!   `STALE_MEMBER_EPOCH`.
//!
//! librdkafka refuses `partition.assignment.strategy`, `session.timeout.ms`,
//! `heartbeat.interval.ms` and `group.protocol.type` at client creation under `consumer`, with an
//! error that names a librdkafka property the user never wrote. So the bridge checks the
//! combination itself, with the YAML path, before touching Kafka — and the type below makes "a
//! session timeout under the consumer protocol" impossible to carry further.

use std::time::Duration;

/// The consumer group protocol and the settings that only exist under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupProtocol {
    /// Client-side assignment, client-side session.
    Classic {
        /// `partition.assignment.strategy`; cooperative-sticky keeps unaffected partitions flowing
        /// during rebalances and lets the revoke-time commit succeed.
        assignment_strategy: String,
        /// `session.timeout.ms`: how long the group waits for a member that stopped heart-beating.
        session_timeout: Duration,
    },
    /// KIP-848: the broker assigns partitions and keeps the session.
    Consumer {
        /// `group.remote.assignor` (`uniform` or `range`); the broker's default when absent.
        remote_assignor: Option<String>,
    },
}

/// The default classic assignment strategy.
pub const DEFAULT_ASSIGNMENT_STRATEGY: &str = "cooperative-sticky";
/// The default classic session timeout (librdkafka's own default, 45 s).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(45);
/// The broker's default `group.consumer.session.timeout.ms` (Kafka 4.x): what the drain must
/// stay under when the broker's setting is unknown.
pub const BROKER_DEFAULT_CONSUMER_SESSION_TIMEOUT: Duration = Duration::from_secs(45);

/// librdkafka properties that do not exist under `group.protocol=consumer`: librdkafka refuses
/// the client when any of them is set.
pub const CLASSIC_ONLY_PROPERTIES: [&str; 4] = [
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "group.protocol.type",
];

/// What the `kafka` section said about the group protocol, before it is checked.
#[derive(Debug, Default)]
pub struct GroupProtocolKeys {
    pub group_protocol: Option<String>,
    pub assignment_strategy: Option<String>,
    pub session_timeout: Option<Duration>,
    pub remote_assignor: Option<String>,
}

/// One problem with the group protocol settings: the key (under `kafka.`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupProtocolError {
    pub key: String,
    pub message: String,
}

impl GroupProtocol {
    /// Builds the protocol from the section's keys and its pass-through `properties`, or every
    /// problem found (each with its key).
    pub fn from_keys<'p>(
        keys: GroupProtocolKeys,
        properties: impl IntoIterator<Item = &'p str>,
    ) -> Result<GroupProtocol, Vec<GroupProtocolError>> {
        let mut errors = Vec::new();
        let mut err = |key: String, message: String| {
            errors.push(GroupProtocolError { key, message });
        };
        let protocol = match keys.group_protocol.as_deref().unwrap_or("classic") {
            "classic" => {
                if keys.remote_assignor.is_some() {
                    err(
                        "remote_assignor".into(),
                        "only used with group_protocol: consumer (the broker-side assignor); \
                         the classic protocol uses assignment_strategy"
                            .into(),
                    );
                }
                GroupProtocol::Classic {
                    assignment_strategy: keys
                        .assignment_strategy
                        .unwrap_or_else(|| DEFAULT_ASSIGNMENT_STRATEGY.into()),
                    session_timeout: keys.session_timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT),
                }
            }
            "consumer" => {
                if keys.assignment_strategy.is_some() {
                    err(
                        "assignment_strategy".into(),
                        "not used with group_protocol: consumer: the broker assigns partitions; \
                         choose its assignor with kafka.remote_assignor (uniform or range)"
                            .into(),
                    );
                }
                if keys.session_timeout.is_some() {
                    err(
                        "session_timeout".into(),
                        "not used with group_protocol: consumer: the session timeout is the \
                         broker's group.consumer.session.timeout.ms (45s by default); remove it"
                            .into(),
                    );
                }
                if let Some(a) = &keys.remote_assignor {
                    if a != "uniform" && a != "range" {
                        err(
                            "remote_assignor".into(),
                            format!("{a:?} is not one of: uniform, range"),
                        );
                    }
                }
                for p in properties {
                    if CLASSIC_ONLY_PROPERTIES.contains(&p) {
                        err(
                            format!("properties.{p}"),
                            "not allowed with group_protocol: consumer (librdkafka refuses it; \
                             the broker owns assignment, session and heartbeat)"
                                .into(),
                        );
                    }
                }
                GroupProtocol::Consumer {
                    remote_assignor: keys.remote_assignor,
                }
            }
            other => {
                err(
                    "group_protocol".into(),
                    format!(
                        "{other:?} is not one of: classic, consumer (KIP-848, Kafka 4.0+ brokers)"
                    ),
                );
                GroupProtocol::Consumer {
                    remote_assignor: None,
                }
            }
        };
        if errors.is_empty() {
            Ok(protocol)
        } else {
            Err(errors)
        }
    }

    /// `classic` or `consumer`, as written in the config and in librdkafka's `group.protocol`.
    pub fn name(&self) -> &'static str {
        match self {
            GroupProtocol::Classic { .. } => "classic",
            GroupProtocol::Consumer { .. } => "consumer",
        }
    }

    /// How long the group waits for a silent member, as far as the bridge knows: the configured
    /// session timeout (classic) or the broker's default (consumer; the broker may be set lower).
    pub fn session_timeout(&self) -> Duration {
        match self {
            GroupProtocol::Classic {
                session_timeout, ..
            } => *session_timeout,
            GroupProtocol::Consumer { .. } => BROKER_DEFAULT_CONSUMER_SESSION_TIMEOUT,
        }
    }

    /// The librdkafka properties this protocol needs, in order.
    pub fn librdkafka_properties(&self) -> Vec<(&'static str, String)> {
        match self {
            GroupProtocol::Classic {
                assignment_strategy,
                session_timeout,
            } => vec![
                ("group.protocol", "classic".into()),
                ("partition.assignment.strategy", assignment_strategy.clone()),
                (
                    "session.timeout.ms",
                    session_timeout.as_millis().to_string(),
                ),
            ],
            GroupProtocol::Consumer { remote_assignor } => {
                let mut v = vec![("group.protocol", "consumer".into())];
                if let Some(a) = remote_assignor {
                    v.push(("group.remote.assignor", a.clone()));
                }
                v
            }
        }
    }

    /// A short description for the `validate` summary.
    pub fn describe(&self) -> String {
        match self {
            GroupProtocol::Classic {
                assignment_strategy,
                session_timeout,
            } => format!(
                "classic protocol, {assignment_strategy}, session {}",
                humantime::format_duration(*session_timeout)
            ),
            GroupProtocol::Consumer { remote_assignor } => format!(
                "consumer protocol (KIP-848), {} assignor",
                remote_assignor.as_deref().unwrap_or("broker's default")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(protocol: Option<&str>) -> GroupProtocolKeys {
        GroupProtocolKeys {
            group_protocol: protocol.map(str::to_string),
            ..GroupProtocolKeys::default()
        }
    }

    #[test]
    fn classic_is_the_default_with_cooperative_sticky_and_45s() {
        let p = GroupProtocol::from_keys(keys(None), []).expect("valid");
        assert_eq!(
            p,
            GroupProtocol::Classic {
                assignment_strategy: "cooperative-sticky".into(),
                session_timeout: Duration::from_secs(45)
            }
        );
        let props = p.librdkafka_properties();
        assert!(props.contains(&("group.protocol", "classic".into())));
        assert!(props.contains(&("session.timeout.ms", "45000".into())));
    }

    #[test]
    fn consumer_protocol_sets_no_classic_property() {
        let mut k = keys(Some("consumer"));
        k.remote_assignor = Some("range".into());
        let p = GroupProtocol::from_keys(k, ["security.protocol"]).expect("valid");
        let props = p.librdkafka_properties();
        assert_eq!(
            props,
            vec![
                ("group.protocol", "consumer".to_string()),
                ("group.remote.assignor", "range".to_string())
            ]
        );
        for (name, _) in props {
            assert!(!CLASSIC_ONLY_PROPERTIES.contains(&name));
        }
    }

    #[test]
    fn consumer_protocol_refuses_every_classic_setting_with_its_key() {
        let k = GroupProtocolKeys {
            group_protocol: Some("consumer".into()),
            assignment_strategy: Some("range".into()),
            session_timeout: Some(Duration::from_secs(10)),
            remote_assignor: Some("sticky".into()),
        };
        let errs = GroupProtocol::from_keys(
            k,
            ["heartbeat.interval.ms", "session.timeout.ms", "client.rack"],
        )
        .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "assignment_strategy",
                "session_timeout",
                "remote_assignor",
                "properties.heartbeat.interval.ms",
                "properties.session.timeout.ms"
            ]
        );
    }

    #[test]
    fn classic_refuses_a_remote_assignor_and_unknown_protocols_are_named() {
        let mut k = keys(Some("classic"));
        k.remote_assignor = Some("uniform".into());
        let errs = GroupProtocol::from_keys(k, []).expect_err("invalid");
        assert_eq!(errs[0].key, "remote_assignor");
        let errs = GroupProtocol::from_keys(keys(Some("kip848")), []).expect_err("invalid");
        assert_eq!(errs[0].key, "group_protocol");
        assert!(errs[0].message.contains("classic, consumer"), "{errs:?}");
    }
}
