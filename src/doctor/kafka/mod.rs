//! The Kafka half of `doctor`: connects as `run` does and asks what the bridge will need —
//! brokers and login, its topics, READ on its group, WRITE on its DLQ topic — without changing
//! anything.
//!
//! One client, built from `run`'s consumer settings ([`consumer_config`]: `kafka:` with its
//! security settings and `kafka.properties`), under its own `client.id` (`<client_id>-doctor`).
//! It is never subscribed, so it never joins the group and no running bridge is rebalanced; its
//! static-membership id is dropped so it cannot fence a running member either; it has
//! `allow.auto.create.topics=false` so that no request of it creates a topic. Every question is a
//! read-only request (Metadata, DescribeGroups/ConsumerGroupDescribe, DescribeConfigs), each
//! bounded by the timeout; a refused login ends the wait at once. The answers are judged in
//! [`verdict`].
//!
//! Blocking: runs on a thread of its own (librdkafka calls block). The client is dropped on a
//! detached thread, since closing a consumer whose brokers are gone can take long.

pub mod verdict;

use crate::config::KafkaConfig;
use crate::doctor::report::Check;
use crate::kafka::access::Refusal;
use crate::kafka::consumer::consumer_config;
use crate::kafka::describe::{self, Operation, TopicDescription};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use regex::Regex;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use verdict::{AutoCreate, Connection, SettingUnknown, Who};

/// What the Kafka checks look at.
#[derive(Debug, Clone)]
pub struct Target {
    pub kafka: KafkaConfig,
    /// The consumer's subscriptions (`MappingPlan::subscriptions`): exact names, and `^…`
    /// regexes for `pattern:` blocks.
    pub subscriptions: Vec<String>,
    pub dlq_topic: String,
    /// Bound of each request.
    pub timeout: Duration,
}

/// Records what librdkafka reports while the checks wait.
#[derive(Debug, Default)]
struct Seen {
    refusal: Mutex<Option<Refusal>>,
    last_error: Mutex<Option<String>>,
}

impl Seen {
    fn refusal(&self) -> Option<Refusal> {
        self.refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn login_refused(&self) -> bool {
        matches!(self.refusal(), Some(Refusal::Authentication { .. }))
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ClientContext for Seen {
    fn error(&self, error: KafkaError, reason: &str) {
        match Refusal::of_client_error(&error, reason) {
            Some(refusal) => {
                let mut first = self.refusal.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(refusal);
            }
            None => {
                // librdkafka's words name the broker and the cause ("Connect to ipv4#… failed:
                // Connection refused"); the summary "1/1 brokers are down" that follows them
                // does not replace them.
                let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
                let summary = error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown);
                if !summary || last.is_none() {
                    *last = Some(reason.to_string());
                }
            }
        }
    }
}

impl ConsumerContext for Seen {}

/// The client: `run`'s consumer settings, made unable to join, fence or create.
fn client(k: &KafkaConfig) -> Result<BaseConsumer<Seen>, KafkaError> {
    let mut c = consumer_config(k);
    c.set("client.id", format!("{}-doctor", k.client_id))
        .set("allow.auto.create.topics", "false");
    c.remove("group.instance.id");
    c.remove("statistics.interval.ms");
    c.create_with_context(Seen::default())
        .map_err(|e| crate::kafka::security::scrub(e, k))
}

/// What DescribeCluster told that later checks use.
struct ClusterFacts {
    /// A broker to ask for its configuration (the controller the brokers report, or any).
    broker_id: Option<i32>,
    /// CREATE on the cluster: the principal may have topics created.
    cluster_create: bool,
}

/// The subscriptions split: exact topic names, and `^…` regexes of `pattern:` blocks.
struct Subscribed<'a> {
    exact: Vec<&'a String>,
    patterns: Vec<&'a String>,
}

/// Runs every Kafka check; blocking, bounded by a few times the timeout.
pub fn check(t: &Target) -> Vec<Check> {
    let k = &t.kafka;
    let principal = k.security.principal();
    let who = Who {
        principal: principal.as_deref(),
        group: &k.group_id,
        dlq_topic: &t.dlq_topic,
    };
    let (exact, patterns) = t.subscriptions.iter().partition(|s| !s.starts_with('^'));
    let subs = Subscribed { exact, patterns };
    let consumer = match client(k) {
        Ok(c) => c,
        Err(e) => {
            let mut checks = vec![Check::fail(
                "kafka.brokers",
                &k.bootstrap_servers,
                format!("cannot create the Kafka client: {e}"),
            )
            .fix("correct the kafka.properties entry librdkafka refused")];
            checks.extend(verdict::skipped(&not_run(t, &subs)));
            return checks;
        }
    };
    let (mut checks, facts) = connect(&consumer, t, &who);
    match facts {
        Some(facts) => checks.extend(rights(&consumer, t, &who, &subs, &facts)),
        None => checks.extend(verdict::skipped(&not_run(t, &subs))),
    }
    close(consumer, t.timeout);
    checks
}

/// Serves the client's error callbacks while a request waits, and stops waiting once the login
/// was refused.
fn give_up(consumer: &BaseConsumer<Seen>) -> impl FnMut() -> bool + '_ {
    move || {
        let _ = consumer.poll(Duration::ZERO);
        consumer.context().login_refused()
    }
}

/// `kafka.brokers` and `kafka.auth`, and what the other checks need (none when they cannot run).
fn connect(
    consumer: &BaseConsumer<Seen>,
    t: &Target,
    who: &Who<'_>,
) -> (Vec<Check>, Option<ClusterFacts>) {
    let answer = describe::describe_cluster(consumer.client(), t.timeout, &mut give_up(consumer));
    let facts = answer.as_ref().ok().map(|d| ClusterFacts {
        broker_id: d.controller.as_ref().or(d.nodes.first()).map(|n| n.id),
        cluster_create: d
            .operations
            .as_ref()
            .is_some_and(|ops| ops.contains(&Operation::Create)),
    });
    let seen = consumer.context();
    let connection = Connection {
        bootstrap: &t.kafka.bootstrap_servers,
        security: t.kafka.security.describe(),
        answer,
        refusal: seen.refusal(),
        last_error: seen.last_error(),
        timeout: t.timeout,
    };
    let (checks, usable) = verdict::connection(connection, who);
    (checks, facts.filter(|_| usable))
}

/// The checks after the connection: each topic and pattern, the group, the DLQ topic.
fn rights(
    consumer: &BaseConsumer<Seen>,
    t: &Target,
    who: &Who<'_>,
    subs: &Subscribed<'_>,
    facts: &ClusterFacts,
) -> Vec<Check> {
    let matched = pattern_matches(consumer, t, &subs.patterns);
    // One DescribeTopics for the named topics, the pattern's topics and the DLQ topic.
    let mut names: Vec<String> = subs.exact.iter().map(|s| s.to_string()).collect();
    for (_, m) in &matched {
        names.extend(m.iter().flatten().cloned());
    }
    names.push(t.dlq_topic.clone());
    names.sort();
    names.dedup();
    let described =
        describe::describe_topics(consumer.client(), &names, t.timeout, &mut give_up(consumer))
            .map_err(|e| e.to_string());
    let find = |name: &str| -> Result<TopicDescription, String> {
        let all = described.as_ref().map_err(Clone::clone)?;
        all.iter()
            .find(|d| d.name == name)
            .cloned()
            .ok_or_else(|| "missing from the broker's answer".to_string())
    };
    let mut checks = Vec::new();
    for name in &subs.exact {
        checks.push(match find(name) {
            Ok(d) => verdict::topic(&d, who),
            Err(e) => Check::fail("kafka.topic", *name, format!("cannot be described: {e}")),
        });
    }
    for (p, m) in &matched {
        let descs = m
            .clone()
            .and_then(|names| names.iter().map(|n| find(n)).collect::<Result<Vec<_>, _>>());
        checks.push(match descs {
            Ok(d) => verdict::pattern(&shown(p), &d, who),
            Err(e) => Check::fail("kafka.pattern", shown(p), e),
        });
    }
    let group = describe_group(consumer, &t.kafka.group_id, t.timeout);
    checks.push(verdict::group(group, who));
    checks.push(match find(&t.dlq_topic) {
        Ok(d) => {
            let missing = d.error == Some(RDKafkaErrorCode::UnknownTopicOrPartition);
            let auto = missing.then(|| AutoCreate {
                broker: broker_auto_create(&t.kafka, facts.broker_id, t.timeout),
                producer: producer_auto_create(&t.kafka),
                cluster_create: facts.cluster_create,
            });
            verdict::dlq(&d, auto.as_ref(), who)
        }
        Err(e) => Check::fail(
            "kafka.dlq",
            &t.dlq_topic,
            format!("cannot be described: {e}"),
        ),
    });
    checks
}

/// The topics each pattern takes: the ones the principal can see, as the consumer would.
fn pattern_matches<'a>(
    consumer: &BaseConsumer<Seen>,
    t: &Target,
    patterns: &[&'a String],
) -> Vec<(&'a String, Result<Vec<String>, String>)> {
    if patterns.is_empty() {
        return Vec::new();
    }
    let listing = consumer
        .fetch_metadata(None, t.timeout)
        .map(|m| {
            m.topics()
                .iter()
                .map(|t| t.name().to_string())
                .collect::<Vec<_>>()
        })
        .map_err(|e| format!("cannot list the topics: {e}"));
    patterns
        .iter()
        .map(|p| (*p, listing.clone().and_then(|all| matching(p, &all))))
        .collect()
}

/// The checks that were not run, by name and subject.
fn not_run(t: &Target, subs: &Subscribed<'_>) -> Vec<(&'static str, String)> {
    let mut names: Vec<(&'static str, String)> = subs
        .exact
        .iter()
        .map(|s| ("kafka.topic", s.to_string()))
        .collect();
    names.extend(subs.patterns.iter().map(|p| ("kafka.pattern", shown(p))));
    names.push(("kafka.group", t.kafka.group_id.clone()));
    names.push(("kafka.dlq", t.dlq_topic.clone()));
    names
}

/// The group's description, asked again while its coordinator is still loading or moving
/// (a fresh cluster creating `__consumer_offsets`, a broker restart), up to `timeout` in all.
fn describe_group(
    consumer: &BaseConsumer<Seen>,
    group: &str,
    timeout: Duration,
) -> Result<describe::GroupDescription, describe::DescribeError> {
    const RETRY_PAUSE: Duration = Duration::from_millis(200);
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = describe::describe_group(
            consumer.client(),
            group,
            left.max(RETRY_PAUSE),
            &mut give_up(consumer),
        );
        let transient = match &answer {
            Ok(d) => d
                .error
                .as_ref()
                .is_some_and(|(code, _)| coordinator_busy(*code)),
            Err(describe::DescribeError::Failed { code, .. }) => coordinator_busy(*code),
            Err(_) => false,
        };
        if !transient || Instant::now() + RETRY_PAUSE >= deadline {
            return answer;
        }
        #[allow(clippy::disallowed_methods)] // the doctor's own blocking thread
        std::thread::sleep(RETRY_PAUSE);
    }
}

fn coordinator_busy(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::NotCoordinator
    )
}

/// A subscription as the user wrote it: `^(p).*` (how `mapping` anchors a `pattern:`) is shown
/// as `^p`.
fn shown(subscription: &str) -> String {
    subscription
        .strip_prefix("^(")
        .and_then(|s| s.strip_suffix(").*"))
        .map_or_else(|| subscription.to_string(), |inner| format!("^{inner}"))
}

/// The topics of `all` a subscription regex takes, as librdkafka matches it: a regex search
/// over the name, internal `__…` topics left out (as in `kafka::topic_partitions`).
fn matching(subscription: &str, all: &[String]) -> Result<Vec<String>, String> {
    let re = Regex::new(subscription).map_err(|e| format!("invalid regex: {e}"))?;
    let mut out: Vec<String> = all
        .iter()
        .filter(|t| !t.starts_with("__") && re.is_match(t))
        .cloned()
        .collect();
    out.sort();
    Ok(out)
}

/// The DLQ producer's `allow.auto.create.topics` (librdkafka's producer default: true).
fn producer_auto_create(k: &KafkaConfig) -> bool {
    k.properties
        .get("allow.auto.create.topics")
        .is_none_or(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0"))
}

/// The broker's `auto.create.topics.enable` (DescribeConfigs, which needs DESCRIBE_CONFIGS on
/// the cluster), through an admin client built as `run` builds its own.
fn broker_auto_create(
    k: &KafkaConfig,
    broker: Option<i32>,
    timeout: Duration,
) -> Result<bool, SettingUnknown> {
    let broker = broker.ok_or(SettingUnknown::NoBroker)?;
    let admin: AdminClient<Seen> = crate::kafka::admin_config(k, "doctor")
        .create_with_context(Seen::default())
        .map_err(|e| SettingUnknown::Client(crate::kafka::security::scrub(e, k)))?;
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let spec = [ResourceSpecifier::Broker(broker)];
    // This thread is the doctor's own: blocking on the admin future is what it is for.
    let answer = futures::executor::block_on(admin.describe_configs(&spec, &opts))
        .map_err(SettingUnknown::Request)?;
    let value = answer
        .into_iter()
        .next()
        .ok_or(SettingUnknown::Empty)?
        .map_err(SettingUnknown::Refused)?
        .get("auto.create.topics.enable")
        .and_then(|e| e.value.clone());
    match value.as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(SettingUnknown::Unexpected(other.to_string())),
        None => Err(SettingUnknown::Empty),
    }
}

/// Drops the client on a thread of its own and waits for it up to `within`: closing a consumer
/// whose brokers are gone can block for a long time, and nothing of it is needed any more. But it
/// must not be left closing while the process exits when it can be helped: exit's clean-up
/// (OpenSSL's among it) under a librdkafka thread still tearing down a TLS connection killed the
/// process with a signal after it had printed its report (seen once in CI, SASL_SSL cluster).
fn close(consumer: BaseConsumer<Seen>, within: Duration) {
    let (closed, wait) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("doctor-close".into())
        .spawn(move || {
            drop(consumer);
            let _ = closed.send(());
        });
    if spawned.is_ok() {
        let _ = wait.recv_timeout(within);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_shown_as_written_and_matches_as_the_consumer_does() {
        assert_eq!(shown(r"^(shop\..*).*"), r"^shop\..*");
        assert_eq!(shown("orders"), "orders");
        let all = ["shop.a", "__consumer_offsets", "billing", "shop.b"].map(String::from);
        assert_eq!(
            matching(r"^(shop\..*).*", &all),
            Ok(vec!["shop.a".to_string(), "shop.b".to_string()])
        );
        assert_eq!(matching("^(.*).*", &all).map(|v| v.len()), Ok(3));
    }
}
