//! `mcm-bridge doctor` / `validate --online` as users run it (issue 18 item 1): the binary against
//! Apache Kafka with a SASL_SSL listener and ACLs (scripts/kafka.py, as in kafka_security.rs) and
//! the MCM sandbox (HTTPS with a generated CA where the TLS check must pass).
//!
//! - Everything right: exit 0, every line PASS — and nothing changed: the group was not joined
//!   (the broker lists no such group), the DLQ got no record, the sandbox stored no event.
//! - A topic that does not exist, a base URL with an extra path segment, a wrong API key: exit 1
//!   and the FAIL line naming it.
//! - A principal with only DESCRIBE on its group and DLQ, one with no ACL on them at all, and a
//!   wrong password: the FAIL lines with the right to grant (the `kafka-acls` command `run` logs).
//! - A broker that is not there: FAIL "unreachable after Ns" and the process ends (a hang guard
//!   of minutes kills it otherwise; no timing is asserted).
//!
//! One cluster serves every test of this binary (it takes long to start); each test has its own
//! user, group and topics.

mod support;

use mcm_bridge::sandbox::{self, SandboxConfig, SandboxHandle, SelfSigned};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use support::apache_kafka::{self, KafkaOptions};
use support::{
    event, produce, wait_all_accepted, ApacheKafka, Bridge, KafkaTarget, Protocol, API_KEY,
    PLATFORM,
};

/// SCRAM users of the shared cluster.
const USERS: [&str; 5] = [
    "doc-ok",
    "doc-missing",
    "doc-describe",
    "doc-none",
    "doc-badpw",
];

fn password(user: &str) -> String {
    format!("{user}-pw-{}", user.len())
}

/// The cluster of this test binary, started by the first test that needs it.
fn cluster() -> Option<Arc<ApacheKafka>> {
    if apache_kafka::skipped() {
        eprintln!("SKIP_APACHE_KAFKA=1: skipping the doctor tests against Apache Kafka");
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
fn allow(k: &ApacheKafka, user: &str, operation: &str, resources: &[(&str, &str)]) {
    let principal = format!("User:{user}");
    let mut args = vec![
        "--bootstrap-server",
        "{bootstrap}",
        "--add",
        "--allow-principal",
        principal.as_str(),
        "--operation",
        operation,
    ];
    for (kind, name) in resources {
        args.extend([*kind, *name]);
    }
    k.tool("org.apache.kafka.tools.AclCommand", &args);
}

/// A test's topic, group and DLQ topic (the topics created).
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
        k.create_topic_with(&n.topic, 2, &[]);
        k.create_topic_with(&n.dlq, 1, &[]);
        n
    }
}

/// The sandbox over HTTPS with a generated CA; returns it and the CA file.
async fn tls_sandbox(dir: &Path) -> (SandboxHandle, PathBuf) {
    let generated = SelfSigned::generate().expect("a CA and a server certificate");
    let files = generated.write_to(&dir.join("pki")).expect("PEM files");
    let mut cfg = SandboxConfig::new(PLATFORM, API_KEY);
    cfg.tls = Some(Arc::new(generated.identity));
    cfg.record = Some(dir.join("accepted.jsonl"));
    let sb = sandbox::spawn(cfg).await.expect("sandbox starts");
    (sb, files.ca)
}

/// The sandbox over plain HTTP (tests about MCM answers, not TLS).
async fn plain_sandbox(dir: &Path) -> SandboxHandle {
    support::sandbox(dir).await
}

/// Where the bridge's Kafka client connects and as whom.
enum Login<'a> {
    /// The PLAINTEXT listener (the harness's super user).
    Plain,
    /// The SASL_SSL listener as `user`, its password from `${DOCTOR_KAFKA_PASSWORD}`.
    Scram { user: &'a str, ca: &'a Path },
}

/// A configuration; secrets come from the environment (see [`doctor`]).
fn config_text(bootstrap: &str, login: Login<'_>, n: &Names, mcm: &str, topics: &[&str]) -> String {
    let security = match login {
        Login::Plain => String::new(),
        Login::Scram { user, ca } => format!(
            "  sasl: {{mechanism: SCRAM-SHA-512, username: {user}, password: \"${{DOCTOR_KAFKA_PASSWORD}}\"}}\n  tls: {{ca_file: {}}}\n",
            ca.display()
        ),
    };
    let blocks: String = topics
        .iter()
        .map(|t| format!("  - topic: {t}\n    rules: *rules\n"))
        .collect();
    format!(
        r#"kafka:
  bootstrap_servers: "{bootstrap}"
  group_id: {group}
{security}mcm:
{mcm}
  platform_id: {PLATFORM}
  api_key: "${{DOCTOR_MCM_KEY}}"
delivery:
  dlq_topic: {dlq}
x-rules: &rules
  - event_type: HOME
    fields:
      timestamp: {{path: ts, transform: epoch_millis}}
      channel_type: SITE
      user_id: {{path: user}}
topics:
{blocks}"#,
        group = n.group,
        dlq = n.dlq,
    )
}

/// `mcm:` lines for the TLS sandbox.
fn tls_mcm(sb: &SandboxHandle, ca: &Path) -> String {
    format!(
        "  base_url: {}\n  tls: {{ca_file: {}}}",
        sb.base_url(),
        ca.display()
    )
}

/// `mcm:` lines for the plain-HTTP sandbox, with `path` after the host.
fn plain_mcm(sb: &SandboxHandle, path: &str) -> String {
    format!(
        "  base_url: {}{path}\n  allow_insecure_http: true",
        sb.base_url()
    )
}

/// What the binary printed and how it ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The one line of `check` about `subject`.
    fn line(&self, check: &str, subject: &str) -> &str {
        let head = format!("  {check} {subject}");
        let found: Vec<&str> = self.stdout.lines().filter(|l| l.contains(&head)).collect();
        assert_eq!(
            found.len(),
            1,
            "one {check} line for {subject}:\n{}",
            self.stdout
        );
        found[0]
    }
}

/// Runs `mcm-bridge <args> --config <file>` with the test secrets in the environment; kills it
/// if it runs for minutes (a hang), which fails the test.
async fn doctor(dir: &Path, text: &str, args: &[&str], kafka_password: &str) -> Run {
    let path = dir.join(format!("doctor-{}.yaml", rand::random::<u32>()));
    std::fs::write(&path, text).expect("config written");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcm-bridge"));
    cmd.args(args)
        .arg("--config")
        .arg(&path)
        .env("DOCTOR_KAFKA_PASSWORD", kafka_password)
        .env("DOCTOR_MCM_KEY", API_KEY)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`mcm-bridge {}` hung", args.join(" ")))
        .expect("the binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn groups_on_the_broker(k: &ApacheKafka) -> String {
    k.tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--bootstrap-server", "{bootstrap}", "--list"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_right_passes_every_check_and_changes_nothing() {
    let Some(k) = cluster() else { return };
    let user = "doc-ok";
    let dir = tempfile::tempdir().expect("tmp");
    let (sb, sandbox_ca) = tls_sandbox(dir.path()).await;
    let n = Names::new(&k, user);
    allow(
        &k,
        user,
        "Read",
        &[("--group", &n.group), ("--topic", &n.topic)],
    );
    allow(&k, user, "Write", &[("--topic", &n.dlq)]);
    let ca = k.ca_file().expect("the cluster's CA");
    let bootstrap = k.sasl_ssl_bootstrap().expect("a SASL_SSL listener");
    let text = config_text(
        bootstrap,
        Login::Scram { user, ca },
        &n,
        &tls_mcm(&sb, &sandbox_ca),
        &[&n.topic],
    );

    let run = doctor(dir.path(), &text, &["doctor"], &password(user)).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let lines = run.lines();
    let (summary, checks) = lines.split_last().expect("output");
    assert!(
        summary.starts_with("10 passed, 0 warning(s), 0 failed"),
        "{}",
        run.stdout
    );
    for l in checks {
        assert!(
            l.starts_with("PASS  "),
            "every check passes: {l}\n{}",
            run.stdout
        );
    }
    assert!(run
        .line("kafka.brokers", bootstrap)
        .contains("1 broker reachable"));
    assert!(run.line("kafka.auth", "User:doc-ok").contains("accepted"));
    assert!(run
        .line("kafka.topic", &n.topic)
        .contains("2 partitions, READ granted"));
    assert!(run.line("kafka.group", &n.group).contains("READ granted"));
    assert!(run.line("kafka.dlq", &n.dlq).contains("WRITE granted"));
    assert!(run.line("mcm.dns", "127.0.0.1").contains("resolves"));
    assert!(run
        .line("mcm.tls", "127.0.0.1")
        .contains("certificate valid for 127.0.0.1"));
    assert!(run
        .line("mcm.auth", &format!("platform {PLATFORM}"))
        .contains("API key and platform id accepted"));
    assert!(
        !run.stdout.contains(API_KEY) && !run.stdout.contains(&password(user)),
        "no secret is printed"
    );

    // `validate --online --format json`: the same checks, one JSON object each.
    let json = doctor(
        dir.path(),
        &text,
        &["validate", "--online", "--format", "json"],
        &password(user),
    )
    .await;
    assert_eq!(json.code, Some(0), "{}\n{}", json.stdout, json.stderr);
    let objects: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert_eq!(objects.len(), 10, "{}", json.stdout);
    assert!(
        objects.iter().all(|o| o["status"] == "PASS"),
        "{}",
        json.stdout
    );

    // Nothing changed: the group was never joined, the DLQ holds nothing, no event was stored
    // (the sandbox refused both probes after checking key and platform).
    let groups = groups_on_the_broker(&k);
    assert!(
        !groups.lines().any(|g| g.trim() == n.group),
        "group joined:\n{groups}"
    );
    assert_eq!(support::end_offsets(k.bootstrap_servers(), &n.dlq, 1), [0]);
    let stats = sb.stats().await;
    assert_eq!(stats.accepted_total, 0);
    assert_eq!(
        stats.rejected_total, 2,
        "the two probes, refused as invalid"
    );
    assert!(stats.auth_failures.is_empty());
    assert_eq!(
        sb.accepted_ids().await.expect("recording"),
        Vec::<String>::new()
    );
    sb.shutdown().await.expect("sandbox stops");
}

/// A bridge's Kafka target on the PLAINTEXT listener with a group protocol.
struct Plain(String, Protocol);

impl KafkaTarget for Plain {
    fn bootstrap(&self) -> &str {
        &self.0
    }
    fn protocol(&self) -> Protocol {
        self.1
    }
}

fn rebalances(bridge: &Bridge) -> Vec<u64> {
    ["assign", "revoke", "lost"]
        .iter()
        .map(|kind| bridge.metrics.rebalances.with_label_values(&[kind]).get())
        .collect()
}

/// A bridge runs in the group; the doctor describes the group (seeing that one member) without
/// joining it: the bridge keeps its partitions, goes through no rebalance, and delivers a record
/// produced after the doctor finished.
async fn a_running_bridge_is_described_not_rebalanced(protocol: Protocol, tag: &str) {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = plain_sandbox(dir.path()).await;
    let group = format!("g-{tag}");
    let topic = format!("{tag}.events");
    k.create_topic_with(&topic, 2, &[]);
    k.create_topic_with(&format!("{group}.dlq"), 1, &[]);
    let topics = support::TEST_TOPICS.replace("topic: events", &format!("topic: {topic}"));
    let target = Plain(k.bootstrap_servers().to_string(), protocol);
    let text = support::config_text_with_topics(target, &sb.base_url(), &group, "", "", &topics);
    let bridge = Bridge::start(&text);
    bridge
        .wait(Duration::from_secs(120), "both partitions assigned", || {
            bridge.metrics.assigned_partitions.get() == 2
        })
        .await;
    let before = rebalances(&bridge);

    let run = doctor(dir.path(), &text, &["doctor"], "").await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let line = run.line("kafka.group", &group);
    assert!(
        line.starts_with(&format!(
            "PASS  kafka.group {group}: READ granted (described, not joined; 1 member now)"
        )),
        "{line}"
    );

    let id = format!("{tag}-after-doctor");
    produce(
        k.bootstrap_servers(),
        &topic,
        &[(0, None, Some(event(&id, "home")))],
    );
    wait_all_accepted(
        &sb,
        std::slice::from_ref(&id),
        Duration::from_secs(60),
        |_| "the record produced after the doctor ran".into(),
    )
    .await;
    assert_eq!(
        rebalances(&bridge),
        before,
        "no rebalance: assign, revoke, lost"
    );
    assert_eq!(bridge.metrics.assigned_partitions.get(), 2);
    bridge.stop().await;
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_bridge_is_described_not_rebalanced_classic() {
    a_running_bridge_is_described_not_rebalanced(Protocol::Classic, "doc-run-classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_running_bridge_is_described_not_rebalanced_consumer() {
    a_running_bridge_is_described_not_rebalanced(Protocol::Consumer, "doc-run-consumer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_that_does_not_exist_fails_naming_it() {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = plain_sandbox(dir.path()).await;
    let mut n = Names::new(&k, "doc-missing");
    let nope = "doc-missing.nope";
    n.dlq = "doc-missing.no-dlq".into();
    let text = config_text(
        k.bootstrap_servers(),
        Login::Plain,
        &n,
        &plain_mcm(&sb, ""),
        &[&n.topic, nope],
    );
    let run = doctor(dir.path(), &text, &["doctor"], "").await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let line = run.line("kafka.topic", nope);
    assert!(
        line.starts_with(&format!("FAIL  kafka.topic {nope}: does not exist")),
        "{line}"
    );
    assert!(line.contains(&format!("--create --topic {nope}")), "{line}");
    assert!(run.line("kafka.topic", &n.topic).starts_with("PASS"));
    // The test cluster does not create topics on use (scripts/kafka.py), which the DLQ check
    // reads from the broker's configuration.
    let dlq = run.line("kafka.dlq", &n.dlq);
    assert!(
        dlq.starts_with(&format!("FAIL  kafka.dlq {}: does not exist, and the brokers do not create topics on use (auto.create.topics.enable=false)", n.dlq)),
        "{dlq}"
    );
    assert!(
        dlq.contains(&format!("--create --topic {}", n.dlq)),
        "{dlq}"
    );
    // Described, not created.
    let topics = list_topics(&k);
    assert!(
        !topics.iter().any(|t| t == nope || *t == n.dlq),
        "{topics:?}"
    );
    sb.shutdown().await.expect("sandbox stops");
}

fn list_topics(k: &ApacheKafka) -> Vec<String> {
    k.tool(
        "org.apache.kafka.tools.TopicCommand",
        &["--bootstrap-server", "{bootstrap}", "--list"],
    )
    .lines()
    .map(|l| l.trim().to_string())
    .collect()
}

/// On brokers that create topics on use, the doctor still creates none, and says that a missing
/// DLQ topic would be created on the first dead letter (a warning: with the brokers' defaults).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_created_where_the_brokers_create_topics_on_use() {
    if apache_kafka::skipped() {
        eprintln!("SKIP_APACHE_KAFKA=1: skipping");
        return;
    }
    let k = ApacheKafka::start(&KafkaOptions {
        set: vec![("auto.create.topics.enable".into(), "true".into())],
        ..KafkaOptions::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let sb = plain_sandbox(dir.path()).await;
    let n = Names {
        topic: "auto.events".into(),
        group: "g-auto".into(),
        dlq: "g-auto.dlq".into(),
    };
    k.create_topic_with(&n.topic, 1, &[]);
    let nope = "auto.nope";
    let text = config_text(
        k.bootstrap_servers(),
        Login::Plain,
        &n,
        &plain_mcm(&sb, ""),
        &[&n.topic, nope],
    );
    let run = doctor(dir.path(), &text, &["doctor"], "").await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run
        .line("kafka.topic", nope)
        .starts_with(&format!("FAIL  kafka.topic {nope}: does not exist")));
    let dlq = run.line("kafka.dlq", &n.dlq);
    assert!(
        dlq.starts_with(&format!("WARN  kafka.dlq {}: does not exist; the brokers would create it with their defaults on the first dead letter (auto.create.topics.enable=true; this principal may CREATE topics)", n.dlq)),
        "{dlq}"
    );
    let topics = list_topics(&k);
    assert!(
        !topics.iter().any(|t| t == nope || *t == n.dlq),
        "{topics:?}"
    );
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_with_an_extra_path_fails_about_the_url() {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = plain_sandbox(dir.path()).await;
    let n = Names::new(&k, "doc-path");
    let text = config_text(
        k.bootstrap_servers(),
        Login::Plain,
        &n,
        &plain_mcm(&sb, "/v1"),
        &[&n.topic],
    );
    let run = doctor(dir.path(), &text, &["doctor"], "").await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let line = run.line("mcm.auth", &format!("platform {PLATFORM}"));
    assert!(
        line.starts_with(
            "FAIL  mcm.auth platform TEST_PLATFORM: the URL path or platform is wrong"
        ),
        "{line}"
    );
    assert!(
        line.contains("/v1/rmp/event/v1/platforms/TEST_PLATFORM/userevents"),
        "{line}"
    );
    assert!(line.contains("scheme and host only"), "{line}");
    assert!(run
        .line("mcm.tls", "127.0.0.1")
        .starts_with("WARN  mcm.tls 127.0.0.1: not used: plain http"));
    assert_eq!(sb.stats().await.accepted_total, 0);
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_fails_about_the_key() {
    let Some(k) = cluster() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = plain_sandbox(dir.path()).await;
    sb.set_api_key("another-key");
    let n = Names::new(&k, "doc-key");
    let text = config_text(
        k.bootstrap_servers(),
        Login::Plain,
        &n,
        &plain_mcm(&sb, ""),
        &[&n.topic],
    );
    let run = doctor(dir.path(), &text, &["validate", "--online"], "").await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let line = run.line("mcm.auth", &format!("platform {PLATFORM}"));
    assert!(
        line.starts_with(
            "FAIL  mcm.auth platform TEST_PLATFORM: MCM refused the API key for this platform (403"
        ),
        "{line}"
    );
    assert!(
        line.contains("check that mcm.api_key is a key of platform TEST_PLATFORM"),
        "{line}"
    );
    assert!(!run.stdout.contains(API_KEY), "the key is never printed");
    let stats = sb.stats().await;
    assert_eq!(stats.auth_failures.get("403"), Some(&1));
    assert_eq!(stats.accepted_total, 0);
    sb.shutdown().await.expect("sandbox stops");
}

/// The SASL_SSL config of `user` for its own names, against the plain sandbox.
async fn secured(k: &ApacheKafka, dir: &Path, user: &str, password: &str) -> (Run, Names) {
    let sb = plain_sandbox(dir).await;
    let n = Names::new(k, user);
    allow(k, user, "Read", &[("--topic", &n.topic)]);
    if user == "doc-describe" {
        allow(
            k,
            user,
            "Describe",
            &[("--group", &n.group), ("--topic", &n.dlq)],
        );
    }
    let ca = k.ca_file().expect("the cluster's CA");
    let text = config_text(
        k.sasl_ssl_bootstrap().expect("a SASL_SSL listener"),
        Login::Scram { user, ca },
        &n,
        &plain_mcm(&sb, ""),
        &[&n.topic],
    );
    let run = doctor(dir, &text, &["doctor"], password).await;
    sb.shutdown().await.expect("sandbox stops");
    (run, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_without_read_on_the_group_and_write_on_the_dlq_fails_with_the_grants() {
    let Some(k) = cluster() else { return };
    let user = "doc-describe";
    let dir = tempfile::tempdir().expect("tmp");
    let (run, n) = secured(&k, dir.path(), user, &password(user)).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(run.line("kafka.topic", &n.topic).starts_with("PASS"));
    let group = run.line("kafka.group", &n.group);
    assert!(
        group.contains(&format!(
            "Kafka denied READ on group \"{}\" (the consumer group) to this principal (User:{user}",
            n.group
        )),
        "{group}"
    );
    assert!(group.contains("it may DESCRIBE"), "{group}");
    assert!(
        group.ends_with(&format!("grant it with kafka-acls --add --allow-principal User:{user} --operation Read --group {}", n.group)),
        "{group}"
    );
    let dlq = run.line("kafka.dlq", &n.dlq);
    assert!(
        dlq.contains(&format!(
            "Kafka denied WRITE on topic \"{}\" (the dead-letter topic)",
            n.dlq
        )),
        "{dlq}"
    );
    assert!(
        dlq.ends_with(&format!("grant it with kafka-acls --add --allow-principal User:{user} --operation Write --topic {}", n.dlq)),
        "{dlq}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acl_on_the_group_and_the_dlq_fails_with_the_grants() {
    let Some(k) = cluster() else { return };
    let user = "doc-none";
    let dir = tempfile::tempdir().expect("tmp");
    let (run, n) = secured(&k, dir.path(), user, &password(user)).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let group = run.line("kafka.group", &n.group);
    assert!(group.starts_with("FAIL"), "{group}");
    assert!(group.contains("GROUP_AUTHORIZATION_FAILED"), "{group}");
    assert!(
        group.ends_with(&format!("--operation Read --group {}", n.group)),
        "{group}"
    );
    let dlq = run.line("kafka.dlq", &n.dlq);
    assert!(dlq.contains("TOPIC_AUTHORIZATION_FAILED"), "{dlq}");
    assert!(
        dlq.ends_with(&format!("--operation Write --topic {}", n.dlq)),
        "{dlq}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_login_and_skips_the_rest() {
    let Some(k) = cluster() else { return };
    let user = "doc-badpw";
    let dir = tempfile::tempdir().expect("tmp");
    let wrong = "wrong-LEAKCANARY";
    let (run, n) = secured(&k, dir.path(), user, wrong).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let auth = run.line("kafka.auth", &format!("User:{user}"));
    assert!(
        auth.starts_with(&format!(
            "FAIL  kafka.auth User:{user}: Kafka rejected the bridge's credentials as User:{user}"
        )),
        "{auth}"
    );
    assert!(auth.contains("check kafka.sasl"), "{auth}");
    assert!(run.line("kafka.group", &n.group).starts_with("SKIP"));
    assert!(!run.stdout.contains("LEAKCANARY") && !run.stderr.contains("LEAKCANARY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_not_there_fails_as_unreachable_instead_of_hanging() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = plain_sandbox(dir.path()).await;
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let bootstrap = format!("127.0.0.1:{port}");
    let n = Names {
        topic: "events".into(),
        group: "g-dead".into(),
        dlq: "g-dead.dlq".into(),
    };
    let text = config_text(
        &bootstrap,
        Login::Plain,
        &n,
        &plain_mcm(&sb, ""),
        &[&n.topic],
    );
    let run = doctor(dir.path(), &text, &["doctor", "--timeout", "2s"], "").await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let line = run.line("kafka.brokers", &bootstrap);
    assert!(
        line.starts_with(&format!(
            "FAIL  kafka.brokers {bootstrap}: unreachable after 2s"
        )),
        "{line}"
    );
    assert!(line.contains("kafka.bootstrap_servers"), "{line}");
    for skipped in [
        "kafka.topic events",
        "kafka.group g-dead",
        "kafka.dlq g-dead.dlq",
    ] {
        assert!(
            run.stdout
                .contains(&format!("SKIP  {skipped}: not checked")),
            "{skipped}:\n{}",
            run.stdout
        );
    }
    // MCM is checked all the same.
    assert!(run
        .line("mcm.auth", &format!("platform {PLATFORM}"))
        .starts_with("PASS"));
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test]
async fn an_invalid_config_exits_2_before_contacting_anything() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = doctor(dir.path(), "kafka: {}\n", &["doctor"], "").await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("kafka.bootstrap_servers: required"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "no check ran");
}
