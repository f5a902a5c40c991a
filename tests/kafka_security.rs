//! Security as users run it (issue 22 item 3): Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512
//! over TLS, a generated CA) and ACLs enforced (`allow.everyone.if.no.acl.found=false`), the
//! bridge connecting through it with `kafka.sasl` and `kafka.tls.ca_file`.
//!
//! - It delivers and commits end to end with the password from an environment variable and from
//!   a file.
//! - A wrong password, or a principal without READ on its group or topic, gets one clear error
//!   naming what is missing (the log line, `mcm_bridge_kafka_access_denied_total`, `/readyz`),
//!   and the bridge stops (exit code 3 for the binary) instead of retrying for ever.
//! - Without WRITE on the DLQ topic, the dead letter is held: nothing is committed past it until
//!   the right is granted, then it is written and everything is committed.
//!
//! Every test has its own user, group and topics on one cluster shared by the tests of this
//! binary (a SASL_SSL cluster with ACLs takes long to start on the CI machines); the harness's
//! PLAINTEXT listener is a super user and produces, reads and checks offsets.

mod support;

use mcm_bridge::pipeline::coordinator::Exit;
use mcm_bridge::sandbox::SandboxHandle;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use support::apache_kafka::{self, KafkaOptions};
use support::*;

/// Every SCRAM user of the shared cluster, created at format time: `(name, password)`. The
/// password is the name reversed plus a suffix, so no two tests share one.
const USERS: [&str; 11] = [
    "sec-env",
    "sec-file",
    "sec-badpw",
    "sec-badpw-bin",
    "sec-nogroup-classic",
    "sec-nogroup-consumer",
    "sec-noread-classic",
    "sec-noread-consumer",
    "sec-unseen-classic",
    "sec-unseen-consumer",
    "sec-nodlq",
];

fn password(user: &str) -> String {
    format!(
        "{}-pw-{}",
        user.chars().rev().collect::<String>(),
        user.len()
    )
}

/// The SASL_SSL cluster of this test binary: started by the first test that needs it, stopped
/// when the last test holding it ends.
fn cluster() -> Option<Arc<ApacheKafka>> {
    if apache_kafka::skipped() {
        eprintln!("SKIP_APACHE_KAFKA=1: skipping the SASL_SSL tests");
        return None;
    }
    static SHARED: Mutex<Weak<ApacheKafka>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = shared.upgrade() {
        return Some(k);
    }
    let k = Arc::new(ApacheKafka::start(&KafkaOptions {
        sasl_ssl: true,
        scram_users: USERS.iter().map(|u| (u.to_string(), password(u))).collect(),
        ..KafkaOptions::default()
    }));
    *shared = Arc::downgrade(&k);
    Some(k)
}

/// Adds an allow ACL for `user` (on the harness's super-user listener).
fn allow(k: &ApacheKafka, user: &str, operations: &[&str], resources: &[(&str, &str)]) {
    let principal = format!("User:{user}");
    let mut args = vec![
        "--bootstrap-server",
        "{bootstrap}",
        "--add",
        "--allow-principal",
        principal.as_str(),
    ];
    for op in operations {
        args.extend(["--operation", op]);
    }
    for (kind, name) in resources {
        args.extend([*kind, *name]);
    }
    k.tool("org.apache.kafka.tools.AclCommand", &args);
}

/// What a test's bridge reads, and where its dead letters go.
struct Names {
    topic: String,
    group: String,
    dlq: String,
}

impl Names {
    fn new(k: &ApacheKafka, tag: &str) -> Names {
        let n = Names {
            topic: format!("{tag}.events"),
            group: format!("g-{tag}"),
            dlq: format!("g-{tag}.dlq"),
        };
        k.create_topic_with(&n.topic, 1, &[]);
        k.create_topic_with(&n.dlq, 1, &[]);
        n
    }

    /// Everything the bridge needs: READ on its group and topic, WRITE on its DLQ topic.
    fn grant_all(&self, k: &ApacheKafka, user: &str) {
        allow(
            k,
            user,
            &["Read"],
            &[("--group", &self.group), ("--topic", &self.topic)],
        );
        allow(k, user, &["Write"], &[("--topic", &self.dlq)]);
    }
}

/// Where the bridge connects: the SASL_SSL listener, with a group protocol.
struct Secured(String, Protocol);

impl KafkaTarget for Secured {
    fn bootstrap(&self) -> &str {
        &self.0
    }
    fn protocol(&self) -> Protocol {
        self.1
    }
}

/// A bridge configuration for the SASL_SSL listener of `k`: the test mapping on `n.topic`, the
/// CA file, and `sasl` (the `kafka.sasl` mapping's inner lines, indented by four).
fn secured_config(
    k: &ApacheKafka,
    sandbox_url: &str,
    n: &Names,
    protocol: Protocol,
    sasl: &str,
) -> String {
    let target = Secured(
        k.sasl_ssl_bootstrap()
            .expect("a SASL_SSL listener")
            .to_string(),
        protocol,
    );
    let ca = k.ca_file().expect("a CA file").display().to_string();
    let topics = TEST_TOPICS.replace("topic: events", &format!("topic: {}", n.topic));
    let text = config_text_with_topics(target, sandbox_url, &n.group, "", "", &topics);
    let group_line = format!("  group_id: {}\n", n.group);
    assert!(text.contains(&group_line));
    text.replacen(
        &group_line,
        &format!("{group_line}  sasl:\n{sasl}\n  tls:\n    ca_file: {ca}\n"),
        1,
    )
}

fn scram(user: &str, password_line: &str) -> String {
    format!("    mechanism: SCRAM-SHA-512\n    username: {user}\n    {password_line}")
}

/// `count` test events on partition 0, ids `{prefix}{i}`.
fn events(count: usize, prefix: &str) -> (Vec<String>, Vec<Record>) {
    let ids: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
    let records = ids
        .iter()
        .map(|id| (0, None, Some(event(id, "home"))))
        .collect();
    (ids, records)
}

async fn delivers_and_commits(k: &ApacheKafka, n: &Names, bridge: Bridge, sb: &SandboxHandle) {
    let (ids, mut records) = events(200, &format!("{}-", n.topic));
    records.push((0, None, Some(b"{not json".to_vec())));
    produce(k.bootstrap_servers(), &n.topic, &records);
    bridge
        .wait(Duration::from_secs(120), "every event finished", || {
            bridge.finished() >= 201
        })
        .await;
    assert_eq!(bridge.dead_lettered(), 1, "the invalid JSON");
    assert!(bridge.health.readiness().is_ok(), "ready over SASL_SSL");
    assert_eq!(bridge.stop().await, Exit::Shutdown);
    let got = accepted_set(sb).await;
    assert_eq!(missing(&ids, &got), 0, "every event delivered");
    let dlq = read_all(k.bootstrap_servers(), &n.dlq, 1);
    assert_eq!(dlq.len(), 1);
    assert_eq!(
        headers(&dlq[0])
            .get("mcm.source.offset")
            .map(String::as_str),
        Some("200")
    );
    let end = end_offsets(k.bootstrap_servers(), &n.topic, 1);
    assert_eq!(
        committed(k.bootstrap_servers(), &n.group, &n.topic, 1),
        [Some(end[0])],
        "committed to the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivers_and_commits_over_sasl_ssl_with_the_password_from_an_environment_variable() {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let n = Names::new(&k, "sec-env");
    n.grant_all(&k, "sec-env");
    let text = secured_config(
        &k,
        &sb.base_url(),
        &n,
        Protocol::Classic,
        &scram("sec-env", "password: ${SEC_TEST_KAFKA_PASSWORD}"),
    );
    let env = |name: &str| (name == "SEC_TEST_KAFKA_PASSWORD").then(|| password("sec-env"));
    let (cfg, plan) = load_env(&text, &env);
    assert!(!format!("{cfg:?}").contains(&password("sec-env")));
    delivers_and_commits(&k, &n, Bridge::start_loaded(cfg, plan), &sb).await;
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delivers_and_commits_over_sasl_ssl_with_the_password_from_a_file() {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let n = Names::new(&k, "sec-file");
    n.grant_all(&k, "sec-file");
    let file = dir.path().join("kafka-password");
    // As a Kubernetes Secret mounts it, with the trailing newline editors add.
    std::fs::write(&file, format!("{}\n", password("sec-file"))).expect("write");
    let text = secured_config(
        &k,
        &sb.base_url(),
        &n,
        Protocol::Consumer,
        &scram("sec-file", &format!("password_file: {}", file.display())),
    );
    let bridge = Bridge::start(&text);
    delivers_and_commits(&k, &n, bridge, &sb).await;
    sb.shutdown().await.expect("sandbox stops");
}

/// Runs `bridge` until it stops by itself; asserts it stopped for a Kafka refusal.
async fn stops_by_itself(bridge: Bridge) -> Arc<mcm_bridge::observe::metrics::Metrics> {
    bridge
        .wait(
            Duration::from_secs(120),
            "the bridge to stop by itself",
            || bridge.has_exited(),
        )
        .await;
    let metrics = bridge.metrics.clone();
    assert_eq!(bridge.stop().await, Exit::AccessDenied);
    metrics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_stops_the_bridge_with_one_authentication_error() {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let n = Names::new(&k, "sec-badpw");
    n.grant_all(&k, "sec-badpw");
    produce(k.bootstrap_servers(), &n.topic, &events(5, "badpw-").1);
    let text = secured_config(
        &k,
        &sb.base_url(),
        &n,
        Protocol::Classic,
        &scram("sec-badpw", "password: not-the-password"),
    );
    let bridge = Bridge::start(&text);
    let health = bridge.health.clone();
    let metrics = stops_by_itself(bridge).await;
    let lines = log_lines_with(&["Kafka rejected the bridge's credentials as User:sec-badpw"]);
    assert_eq!(lines.len(), 1, "one error, not one per retry: {lines:#?}");
    assert!(
        lines[0].contains("SASL_AUTHENTICATION_FAILED"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("check kafka.sasl"), "{}", lines[0]);
    assert_eq!(
        metrics
            .kafka_access_denied
            .with_label_values(&["authenticate", "brokers"])
            .get(),
        1
    );
    let ready = health.readiness().expect_err("not ready");
    assert!(
        ready.contains("rejected the bridge's credentials"),
        "{ready}"
    );
    assert_eq!(
        committed(k.bootstrap_servers(), &n.group, &n.topic, 1),
        [None],
        "nothing committed"
    );
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_exits_3_after_one_authentication_error_when_the_password_is_wrong() {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let n = Names::new(&k, "sec-badpw-bin");
    n.grant_all(&k, "sec-badpw-bin");
    let config = dir.path().join("bridge.yaml");
    let text = secured_config(
        &k,
        &sb.base_url(),
        &n,
        Protocol::Classic,
        &scram("sec-badpw-bin", "password: ${KAFKA_PASSWORD}"),
    );
    std::fs::write(&config, text).expect("config");
    let wrong = "wrong-LEAKCANARY-pw";
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args(["run", "--config"])
        .arg(&config)
        .env("KAFKA_PASSWORD", wrong)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bridge process starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "the bridge kept running with a wrong password:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let out = child.wait_with_output().expect("output");
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(3), "exit code 3:\n{log}");
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Kafka rejected the bridge's credentials"))
        .collect();
    assert_eq!(ours.len(), 1, "one error:\n{log}");
    assert!(
        !log.lines()
            .any(|l| l.contains("kafka client error") && l.contains("uthentication")),
        "the refusal is not repeated as warnings:\n{log}"
    );
    assert!(!log.contains("LEAKCANARY"), "the password never shows");
    sb.shutdown().await.expect("sandbox stops");
}

/// The principal may read its topic and write its DLQ, but has no ACL on its group.
async fn missing_read_on_the_group(protocol: Protocol) {
    let Some(k) = cluster() else { return };
    let tag = match protocol {
        Protocol::Classic => "sec-nogroup-classic",
        Protocol::Consumer => "sec-nogroup-consumer",
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let n = Names::new(&k, tag);
    allow(&k, tag, &["Read"], &[("--topic", &n.topic)]);
    allow(&k, tag, &["Write"], &[("--topic", &n.dlq)]);
    produce(
        k.bootstrap_servers(),
        &n.topic,
        &events(5, &format!("{tag}-")).1,
    );
    let text = secured_config(
        &k,
        &sb.base_url(),
        &n,
        protocol,
        &scram(tag, &format!("password: {}", password(tag))),
    );
    let bridge = Bridge::start(&text);
    let health = bridge.health.clone();
    let metrics = stops_by_itself(bridge).await;
    let want = format!("Kafka denied READ on group \"{}\"", n.group);
    let lines = log_lines_with(&[&want]);
    assert_eq!(lines.len(), 1, "one error: {lines:#?}");
    assert!(
        lines[0].contains("GROUP_AUTHORIZATION_FAILED"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(&format!(
            "grant it with kafka-acls --add --allow-principal User:{tag} --operation Read --group {}",
            n.group
        )),
        "{}",
        lines[0]
    );
    assert_eq!(
        metrics
            .kafka_access_denied
            .with_label_values(&["read", "group"])
            .get(),
        1
    );
    assert!(health.readiness().expect_err("not ready").contains(&want));
    assert_eq!(sb.stats().await.accepted_total, 0);
    sb.shutdown().await.expect("sandbox stops");
}

/// The principal may use its group and DLQ; on its topic it has `topic_rights` (none, or
/// DESCRIBE without READ).
async fn missing_read_on_the_topic(protocol: Protocol, tag: &str, topic_rights: &[&str]) {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let n = Names::new(&k, tag);
    allow(&k, tag, &["Read"], &[("--group", &n.group)]);
    allow(&k, tag, &["Write"], &[("--topic", &n.dlq)]);
    if !topic_rights.is_empty() {
        allow(&k, tag, topic_rights, &[("--topic", &n.topic)]);
    }
    produce(
        k.bootstrap_servers(),
        &n.topic,
        &events(5, &format!("{tag}-")).1,
    );
    let text = secured_config(
        &k,
        &sb.base_url(),
        &n,
        protocol,
        &scram(tag, &format!("password: {}", password(tag))),
    );
    let bridge = Bridge::start(&text);
    let health = bridge.health.clone();
    let metrics = stops_by_itself(bridge).await;
    let want = format!("Kafka denied READ on topic \"{}\"", n.topic);
    let lines = log_lines_with(&[&want]);
    assert_eq!(lines.len(), 1, "one error: {lines:#?}");
    assert!(
        lines[0].contains("TOPIC_AUTHORIZATION_FAILED"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(&format!(
            "grant it with kafka-acls --add --allow-principal User:{tag} --operation Read --topic {}",
            n.topic
        )),
        "{}",
        lines[0]
    );
    assert_eq!(
        metrics
            .kafka_access_denied
            .with_label_values(&["read", "topic"])
            .get(),
        1
    );
    assert!(health.readiness().expect_err("not ready").contains(&want));
    assert_eq!(sb.stats().await.accepted_total, 0);
    assert_eq!(
        committed(k.bootstrap_servers(), &n.group, &n.topic, 1),
        [None],
        "nothing committed"
    );
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_read_on_the_group_stops_the_bridge_with_one_error_naming_the_group_classic() {
    missing_read_on_the_group(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_read_on_the_group_stops_the_bridge_with_one_error_naming_the_group_consumer() {
    missing_read_on_the_group(Protocol::Consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_read_on_a_visible_topic_stops_the_bridge_with_one_error_naming_it_classic() {
    missing_read_on_the_topic(Protocol::Classic, "sec-noread-classic", &["Describe"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_read_on_a_visible_topic_stops_the_bridge_with_one_error_naming_it_consumer() {
    missing_read_on_the_topic(Protocol::Consumer, "sec-noread-consumer", &["Describe"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topic_without_any_right_stops_the_bridge_with_one_error_naming_it_classic() {
    missing_read_on_the_topic(Protocol::Classic, "sec-unseen-classic", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topic_without_any_right_stops_the_bridge_with_one_error_naming_it_consumer() {
    missing_read_on_the_topic(Protocol::Consumer, "sec-unseen-consumer", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_write_on_the_dlq_topic_holds_the_dead_letter_uncommitted_until_granted() {
    let Some(k) = cluster() else { return };
    let user = "sec-nodlq";
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let n = Names::new(&k, user);
    allow(
        &k,
        user,
        &["Read"],
        &[("--group", &n.group), ("--topic", &n.topic)],
    );
    // DESCRIBE only: the principal sees the DLQ topic but may not write to it (nor to any other
    // topic, so its idempotent producer cannot even get a producer id).
    allow(&k, user, &["Describe"], &[("--topic", &n.dlq)]);
    let (mut ids, mut records) = events(10, "nodlq-a-");
    records.push((0, None, Some(b"{not json".to_vec()))); // offset 10: a dead letter
    let (after, more) = events(10, "nodlq-b-");
    records.extend(more);
    ids.extend(after);
    produce(k.bootstrap_servers(), &n.topic, &records);
    let text = secured_config(
        &k,
        &sb.base_url(),
        &n,
        Protocol::Classic,
        &scram(user, &format!("password: {}", password(user))),
    );
    let bridge = Bridge::start(&text);
    bridge
        .wait(Duration::from_secs(120), "the dead letter held", || {
            bridge.metrics.dead_letters_held.get() == 1
        })
        .await;
    bridge
        .wait(Duration::from_secs(60), "the watermark committed", || {
            committed(k.bootstrap_servers(), &n.group, &n.topic, 1) == [Some(10)]
        })
        .await;
    assert_eq!(bridge.metrics.halted.get(), 1);
    let want = format!(
        "Kafka denied WRITE on topic \"{}\" (the dead-letter topic)",
        n.dlq
    );
    let ready = bridge.health.readiness().expect_err("not ready");
    assert!(ready.contains(&want), "{ready}");
    let held = log_lines_with(&[&want, "holding dead letters"]);
    assert_eq!(held.len(), 1, "one error: {held:#?}");
    assert!(
        held[0].contains(&format!(
            "grant it with kafka-acls --add --allow-principal User:{user} --operation Write --topic {}",
            n.dlq
        )),
        "{}",
        held[0]
    );
    assert_eq!(
        bridge
            .metrics
            .kafka_access_denied
            .with_label_values(&["write", "topic"])
            .get(),
        1
    );
    assert!(
        log_lines_with(&["DLQ write failed; retrying", &n.topic]).is_empty(),
        "no retry per dead letter"
    );

    // The operator grants the right: the next probe writes the dead letter, the hold ends and
    // everything is committed.
    allow(&k, user, &["Write"], &[("--topic", &n.dlq)]);
    bridge
        .wait(Duration::from_secs(180), "the dead letter written", || {
            bridge.dead_lettered() == 1
        })
        .await;
    bridge
        .wait(Duration::from_secs(60), "every message finished", || {
            bridge.finished() >= 21
        })
        .await;
    assert_eq!(bridge.metrics.dead_letters_held.get(), 0);
    assert_eq!(bridge.metrics.halted.get(), 0);
    assert_eq!(
        log_lines_with(&["Kafka takes dead letters again", "more=0"]).len(),
        1,
        "the hold ended by the probe that got through"
    );
    assert!(bridge.health.readiness().is_ok());
    assert_eq!(bridge.stop().await, Exit::Shutdown);
    let dlq = read_all(k.bootstrap_servers(), &n.dlq, 1);
    assert_eq!(dlq.len(), 1);
    let h = headers(&dlq[0]);
    assert_eq!(h.get("mcm.source.offset").map(String::as_str), Some("10"));
    assert_eq!(h.get("mcm.error.class").map(String::as_str), Some("decode"));
    assert_eq!(missing(&ids, &accepted_set(&sb).await), 0);
    assert_eq!(
        committed(k.bootstrap_servers(), &n.group, &n.topic, 1),
        [Some(21)]
    );
    sb.shutdown().await.expect("sandbox stops");
}
