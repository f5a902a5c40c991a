//! Secret hygiene (DESIGN.md contract 8): the API key and the Kafka password are never logged,
//! never in metrics, never in a dead letter, never in an error message, `Debug` output or CLI
//! output.
//!
//! The whole flow runs at `trace` level with a distinctive key — deliveries, an MCM 400, a 403
//! (the sandbox's key changed, then fixed), dead letters — and then every output is searched:
//! captured logs (text and JSON), `/metrics`, every DLQ header and payload, the `validate`,
//! `map` and `--help` output of the binary, `run`'s start-up logs, config `Debug` and the errors
//! of broken configurations that contain the key. The Kafka password gets the same: a whole run
//! over SASL_SSL on Apache Kafka with librdkafka's `debug: all` (its configuration dumps and
//! SASL handshake logs reach our logs), a run with a wrong password (the authentication error),
//! `run`'s start-up, `validate`, config `Debug` and broken configurations. The search itself is
//! checked to find a planted marker, so an empty capture cannot pass for a clean one.

mod support;

use mcm_bridge::config::Config;
use mcm_bridge::sandbox::SandboxConfig;
use rdkafka::message::Headers;
use rdkafka::Message;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use support::*;

/// The key under test. `CANARY` is the part searched for, so a truncated or partly redacted key
/// (`sk-LEAKCANARY-7d1e…`) is caught as well as the whole one.
const KEY: &str = "sk-LEAKCANARY-7d1e0c55b2a94f0e";
const CANARY: &str = "LEAKCANARY";
/// The Kafka password under test, and a wrong one (also a secret: it is what the user typed).
const KAFKA_PASSWORD: &str = "kp-KAFKACANARY-91c4e7b2";
const WRONG_KAFKA_PASSWORD: &str = "kp-WRONGCANARY-5e0d3a61";

fn assert_clean(what: &str, text: &str) {
    for needle in [
        KEY,
        CANARY,
        "7d1e0c55b2a94f0e",
        KAFKA_PASSWORD,
        "KAFKACANARY",
        "91c4e7b2",
        WRONG_KAFKA_PASSWORD,
        "WRONGCANARY",
    ] {
        if let Some(at) = text.find(needle) {
            let start = at.saturating_sub(200);
            let end = (at + 200).min(text.len());
            panic!(
                "a secret leaked into {what}: …{}…",
                text.get(start..end).unwrap_or(text)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Log capture: a global subscriber (text + JSON layers) writing into one shared buffer.

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

fn capture_logs() -> Buffer {
    static BUF: OnceLock<Buffer> = OnceLock::new();
    BUF.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let buf = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::TRACE)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(buf.clone())
                    .with_ansi(false),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(buf.clone()),
            );
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buf
    })
    .clone()
}

fn bridge_config(bootstrap: &str, sandbox_url: &str, group: &str) -> String {
    let text = config_text(bootstrap, sandbox_url, group, "", "");
    assert!(text.contains(API_KEY));
    text.replace(API_KEY, KEY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_key_appears_in_no_log_metric_or_dead_letter_of_a_whole_run() {
    let logs = capture_logs();
    let dir = tempfile::tempdir().expect("tmp");
    let mut sb_cfg = SandboxConfig::new(PLATFORM, KEY);
    sb_cfg.record = Some(dir.path().join("accepted.jsonl"));
    let sb = mcm_bridge::sandbox::spawn(sb_cfg).await.expect("sandbox");
    let b = broker("events", 1);
    b.create_topic("g-secret.dlq", 1).expect("dlq topic");

    let future_ts = chrono_now_ms() + 10 * 60_000; // the bridge allows 1 h, MCM answers 400
    let mut recs: Vec<Record> = (0..20)
        .map(|i| {
            (
                0,
                Some(b"k".to_vec()),
                Some(event(&format!("s-{i}"), "home")),
            )
        })
        .collect();
    recs.push((0, None, Some(b"{not json".to_vec())));
    recs.push((
        0,
        None,
        Some(
            serde_json::to_vec(
                &serde_json::json!({"id":"s-400","kind":"home","ts":future_ts,"user":"u"}),
            )
            .expect("json"),
        ),
    ));
    recs.push((0, None, None)); // tombstone
    produce(b.bootstrap_servers(), "events", &recs);
    let first = recs.len() as u64;

    let bridge = Bridge::start(&bridge_config(
        b.bootstrap_servers(),
        &sb.base_url(),
        "g-secret",
    ));
    wait_until(Duration::from_secs(60), "first batch finished", || {
        bridge.finished() >= first
    })
    .await;
    assert_eq!(bridge.dead_lettered(), 3, "invalid JSON, 400, tombstone");

    // The sandbox now expects another key: 403, delivery halts; then the operator fixes it.
    sb.set_api_key("some-other-key");
    let more: Vec<Record> = (0..5)
        .map(|i| (0, None, Some(event(&format!("t-{i}"), "home"))))
        .collect();
    produce(b.bootstrap_servers(), "events", &more);
    wait_until(Duration::from_secs(30), "halted on 403", || {
        bridge.metrics.halted.get() == 1
    })
    .await;
    sb.set_api_key(KEY);
    wait_until(Duration::from_secs(30), "resumed after the fix", || {
        bridge.finished() >= first + 5 && bridge.metrics.halted.get() == 0
    })
    .await;
    let metrics_text = bridge.metrics.render();
    bridge.stop().await;

    // The capture works: a planted marker is found, and the run logged at trace level.
    tracing::trace!(target: "secrets_test", "planted marker {}", "PLANTED-7c1b");
    let log_text = logs.text();
    assert!(log_text.contains("PLANTED-7c1b"), "the log capture works");
    assert!(
        log_text.contains("TRACE"),
        "trace-level events were captured"
    );
    assert!(
        log_text.contains("halted") || log_text.contains("rejected our configuration"),
        "the 403 was logged"
    );
    assert_clean("the logs", &log_text);

    assert!(metrics_text.contains("mcm_bridge_"), "metrics rendered");
    assert!(
        metrics_text.contains(r#"status_class="4xx""#),
        "the 400 and 403 were counted"
    );
    assert_clean("/metrics", &metrics_text);

    let dlq = read_all(b.bootstrap_servers(), "g-secret.dlq", 1);
    assert_eq!(dlq.len(), 3);
    for m in &dlq {
        for h in m.headers().expect("dlq headers").iter() {
            assert_clean("a DLQ header name", h.key);
            assert_clean(
                "a DLQ header value",
                &String::from_utf8_lossy(h.value.unwrap_or_default()),
            );
        }
        assert_clean(
            "a DLQ payload",
            &String::from_utf8_lossy(m.payload().unwrap_or_default()),
        );
        assert_clean(
            "a DLQ key",
            &String::from_utf8_lossy(m.key().unwrap_or_default()),
        );
    }
    let recorded = std::fs::read_to_string(dir.path().join("accepted.jsonl")).expect("record");
    assert!(recorded.contains("s-0"));
    assert_clean("the delivered events", &recorded);
    sb.shutdown().await.expect("sandbox stops");
}

/// Adds an allow ACL on the harness's super-user listener.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kafka_password_appears_in_no_log_metric_dead_letter_or_readiness_of_a_whole_run() {
    if support::apache_kafka::skipped() {
        eprintln!("SKIP_APACHE_KAFKA=1: skipping the SASL_SSL secrets run");
        return;
    }
    let logs = capture_logs();
    let k = ApacheKafka::start(&support::apache_kafka::KafkaOptions {
        sasl_ssl: true,
        scram_users: vec![("bridge".into(), KAFKA_PASSWORD.into())],
        ..Default::default()
    });
    let group = "g-kafka-secret";
    let dlq_topic = format!("{group}.dlq");
    k.create_topic_with("events", 1, &[]);
    k.create_topic_with(&dlq_topic, 1, &[]);
    allow(
        &k,
        "bridge",
        "Read",
        &[("--group", group), ("--topic", "events")],
    );
    allow(&k, "bridge", "Write", &[("--topic", &dlq_topic)]);
    let dir = tempfile::tempdir().expect("tmp");
    let mut sb_cfg = SandboxConfig::new(PLATFORM, KEY);
    sb_cfg.record = Some(dir.path().join("accepted.jsonl"));
    let sb = mcm_bridge::sandbox::spawn(sb_cfg).await.expect("sandbox");
    let mut recs: Vec<Record> = (0..20)
        .map(|i| (0, None, Some(event(&format!("kp-{i}"), "home"))))
        .collect();
    recs.push((0, None, Some(b"{not json".to_vec())));
    produce(k.bootstrap_servers(), "events", &recs);

    let sasl_ssl = k.sasl_ssl_bootstrap().expect("SASL_SSL listener");
    let ca = k.ca_file().expect("CA").display().to_string();
    // librdkafka's every debug context: its configuration dumps and SASL handshakes included.
    let text = bridge_config(sasl_ssl, &sb.base_url(), group)
        .replace(
            &format!("  group_id: {group}\n"),
            &format!("  group_id: {group}\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: bridge\n    password: ${{KAFKA_PASSWORD}}\n  tls:\n    ca_file: {ca}\n"),
        )
        .replace(
            "    heartbeat.interval.ms: 500",
            "    heartbeat.interval.ms: 500\n    debug: all",
        );
    let right = |n: &str| (n == "KAFKA_PASSWORD").then(|| KAFKA_PASSWORD.to_string());
    let (cfg, plan) = load_env(&text, &right);
    let bridge = Bridge::start_loaded(cfg, plan);
    wait_until(Duration::from_secs(120), "every event finished", || {
        bridge.finished() >= 21
    })
    .await;
    assert_eq!(bridge.dead_lettered(), 1);
    let mut outputs = vec![("/metrics", bridge.metrics.render())];
    bridge.stop().await;

    // The same bridge with a wrong password: the authentication error, readiness, the metric.
    let wrong = |n: &str| (n == "KAFKA_PASSWORD").then(|| WRONG_KAFKA_PASSWORD.to_string());
    let (cfg, plan) = load_env(&text, &wrong);
    let bridge = Bridge::start_loaded(cfg, plan);
    wait_until(
        Duration::from_secs(120),
        "the wrong password stops the bridge",
        || bridge.has_exited(),
    )
    .await;
    let refused = bridge.health.readiness().expect_err("not ready");
    assert!(
        refused.contains("rejected the bridge's credentials"),
        "{refused}"
    );
    outputs.push(("/readyz", refused));
    outputs.push(("/metrics of the refused bridge", bridge.metrics.render()));
    bridge.stop().await;

    tracing::trace!(target: "secrets_test", "planted marker {}", "PLANTED-5a2e");
    let log_text = logs.text();
    assert!(log_text.contains("PLANTED-5a2e"), "the log capture works");
    assert!(
        log_text.contains("sasl.password"),
        "librdkafka's configuration dump was captured"
    );
    assert!(
        log_text.contains("Kafka rejected the bridge's credentials"),
        "the authentication error was logged"
    );
    assert_clean("the logs", &log_text);
    for (what, text) in &outputs {
        assert_clean(what, text);
    }
    let dlq = read_all(k.bootstrap_servers(), &dlq_topic, 1);
    assert_eq!(dlq.len(), 1);
    for m in &dlq {
        for h in m.headers().expect("dlq headers").iter() {
            assert_clean("a DLQ header name", h.key);
            assert_clean(
                "a DLQ header value",
                &String::from_utf8_lossy(h.value.unwrap_or_default()),
            );
        }
        assert_clean(
            "a DLQ payload",
            &String::from_utf8_lossy(m.payload().unwrap_or_default()),
        );
    }
    sb.shutdown().await.expect("sandbox stops");
}

// ---------------------------------------------------------------------------------------------
// Configuration: Debug, error messages, the http:// refusal, file permissions.

const CONFIG: &str = r#"
kafka:
  bootstrap_servers: 127.0.0.1:1
  group_id: g
mcm:
  base_url: https://mcm.example.test
  platform_id: ACME_TEST
  api_key: API_KEY_HERE
topics:
  - topic: events
    rules:
      - event_type: HOME
        fields:
          timestamp: {path: ts}
          channel_type: SITE
          user_id: {path: user}
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load_with(text: &str, env: &dyn mcm_bridge::config::interpolate::Env) -> Result<Config, String> {
    mcm_bridge::config::load_str(text, Path::new("."), env, Vec::<(String, String)>::new())
        .map_err(|e| e.to_string())
}

#[test]
fn config_debug_shows_no_key() {
    let cfg = load_with(&CONFIG.replace("API_KEY_HERE", KEY), &no_env).expect("valid");
    assert_eq!(cfg.mcm.api_key.expose(), KEY);
    assert_clean("Config Debug", &format!("{cfg:?} {cfg:#?}"));
    assert_clean("McmConfig Debug", &format!("{:?}", cfg.mcm));
    assert_clean("api_key_source", &cfg.mcm.api_key_source);
    assert_clean("warnings", &cfg.warnings.join("\n"));
}

#[test]
fn errors_of_broken_configs_that_contain_the_key_never_show_it() {
    let with = |line: &str| CONFIG.replace("api_key: API_KEY_HERE", line);
    let broken = [
        // Wrong types.
        with(&format!("api_key: [{KEY}]")),
        with(&format!("api_key: {{{KEY}: 1}}")),
        with(&format!("api_key:\n    value: {KEY}")),
        // YAML syntax errors on or after the key's line.
        with(&format!("api_key: \"{KEY}")),
        with(&format!("api_key: '{KEY}")),
        with(&format!("api_key: {KEY}\n\tplatform_id: X")),
        with(&format!("api_key: {KEY}\n  api_key: {KEY}")),
        with(&format!("api_key: {KEY}\n   : bad")),
        // Interpolation mistakes: the key pasted inside `${…}`, a `$` in a literal key.
        with(&format!("api_key: ${{{KEY}}}")),
        with(&format!("api_key: \"${{{KEY}\"")),
        with(&format!("api_key: \"${{MCM_API_KEY:-{KEY}\"")),
        with(&format!("api_key: \"${{BAD NAME:-{KEY}}}\"")),
        with(&format!("api_key: \"{KEY}${{\"")),
        // Both key and key file, the key next to other errors, plain http.
        with(&format!("api_key: {KEY}\n  api_key_file: /nonexistent/key")),
        with(&format!("api_key: {KEY}\n  api_kye: {KEY}")),
        with(&format!("api_key: {KEY}\n  timeout: 5 parsecs")),
        with(&format!("api_key: {KEY}"))
            .replace("https://mcm.example.test", "http://mcm.example.test"),
        with(&format!("api_key: {KEY}")).replace("group_id: g", "group_id: [g]"),
    ];
    for text in &broken {
        let err = match load_with(text, &no_env) {
            Err(e) => e,
            Ok(_) => panic!("expected an error for:\n{text}"),
        };
        assert!(!err.is_empty());
        assert_clean(&format!("the error for\n{text}\n→ {err}\n"), &err);
    }
    // The key from the environment, with another error in the file.
    let env = |n: &str| (n == "MCM_API_KEY").then(|| KEY.to_string());
    let text = with("api_key: ${MCM_API_KEY}").replace("group_id: g", "group_id: [g]");
    let err = load_with(&text, &env).expect_err("group_id is invalid");
    assert_clean("an error with the key from the environment", &err);
}

/// [`CONFIG`] with `kafka.sasl` (`password_line` inside it) on a SASL_SSL cluster.
fn with_kafka_password(password_line: &str) -> String {
    CONFIG.replace(
        "group_id: g\n",
        &format!("group_id: g\n  sasl:\n    mechanism: SCRAM-SHA-512\n    username: bridge\n    {password_line}\n"),
    )
}

#[test]
fn config_debug_and_the_validate_summary_show_no_kafka_password() {
    let env = |n: &str| (n == "KAFKA_PASSWORD").then(|| KAFKA_PASSWORD.to_string());
    for text in [
        with_kafka_password(&format!("password: {KAFKA_PASSWORD}")),
        with_kafka_password("password: ${KAFKA_PASSWORD}"),
        // The same secret through kafka.properties: held as a secret too.
        CONFIG.replace(
            "group_id: g\n",
            &format!("group_id: g\n  properties:\n    security.protocol: SASL_SSL\n    sasl.mechanism: PLAIN\n    sasl.username: bridge\n    sasl.password: {KAFKA_PASSWORD}\n    ssl.key.password: {KAFKA_PASSWORD}\n"),
        ),
    ] {
        let cfg = load_with(&text, &env).expect("valid");
        assert_clean("Config Debug", &format!("{cfg:?} {cfg:#?}"));
        assert_clean("warnings", &cfg.warnings.join("\n"));
        let mut errors = Vec::new();
        let plan = mcm_bridge::mapping::compile(&cfg.topics, &mut errors);
        let summary = mcm_bridge::cli::validate::summary(Path::new("c.yaml"), &cfg, &plan);
        assert!(summary.contains("security: SASL_SSL") || summary.contains("secret properties sasl.password, ssl.key.password"), "{summary}");
        assert_clean("the validate summary", &summary);
        let exposed: Vec<&str> = cfg
            .kafka
            .security
            .librdkafka_properties()
            .into_iter()
            .filter(|(_, v)| *v == KAFKA_PASSWORD)
            .map(|(k, _)| k)
            .collect();
        assert!(exposed.contains(&"sasl.password"), "librdkafka gets it: {exposed:?}");
    }
}

#[test]
fn errors_of_broken_configs_that_contain_the_kafka_password_never_show_it() {
    let pw = KAFKA_PASSWORD;
    let broken = [
        // Wrong types.
        with_kafka_password(&format!("password: [{pw}]")),
        with_kafka_password(&format!("password: {{{pw}: 1}}")),
        // YAML syntax errors on or after the password's line.
        with_kafka_password(&format!("password: \"{pw}")),
        with_kafka_password(&format!("password: {pw}\n\tmechanism: PLAIN")),
        with_kafka_password(&format!("password: {pw}\n    password: {pw}")),
        // Interpolation mistakes: the password pasted inside `${…}`.
        with_kafka_password(&format!("password: ${{{pw}}}")),
        with_kafka_password(&format!("password: \"${{KAFKA_PASSWORD:-{pw}\"")),
        with_kafka_password(&format!("password: \"${{BAD NAME:-{pw}}}\"")),
        // Both password and file, a typo next to it, a wrong mechanism, a missing CA file.
        with_kafka_password(&format!(
            "password: {pw}\n    password_file: /nonexistent/pw"
        )),
        with_kafka_password(&format!("password: {pw}\n    pasword: {pw}")),
        with_kafka_password(&format!("password: {pw}")).replace("SCRAM-SHA-512", "SCRAM-SHA-1"),
        with_kafka_password(&format!("password: {pw}"))
            .replace("  sasl:", "  tls: {ca_file: /nonexistent/ca.pem}\n  sasl:"),
        // Said twice, in the section and in kafka.properties.
        with_kafka_password(&format!("password: {pw}")).replace(
            "  sasl:",
            &format!("  properties:\n    sasl.password: {pw}\n  sasl:"),
        ),
        // A secret property with a wrong type, or a typo in its name.
        CONFIG.replace(
            "group_id: g\n",
            &format!("group_id: g\n  properties:\n    sasl.password: [{pw}]\n"),
        ),
    ];
    for text in &broken {
        let err = match load_with(text, &no_env) {
            Err(e) => e,
            Ok(_) => panic!("expected an error for:\n{text}"),
        };
        assert!(!err.is_empty());
        assert_clean(&format!("the error for\n{text}\n→ {err}\n"), &err);
    }
}

#[test]
fn plain_http_base_url_needs_allow_insecure_http() {
    let text = CONFIG.replace("https://mcm.example.test", "http://mcm.example.test");
    let err = load_with(&text, &no_env).expect_err("http:// is refused");
    assert!(err.contains("mcm.base_url"), "{err}");
    assert!(err.contains("allow_insecure_http"), "{err}");
    let ok = text.replace("api_key:", "allow_insecure_http: true\n  api_key:");
    let cfg = load_with(&ok, &no_env).expect("allowed explicitly");
    assert!(cfg.warnings.iter().any(|w| w.contains("http://")));
}

#[cfg(unix)]
#[test]
fn a_literal_key_in_a_group_or_world_readable_file_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, text: &str, mode: u32| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    };
    let literal = CONFIG.replace("API_KEY_HERE", KEY);
    let from_env = CONFIG.replace("API_KEY_HERE", "${MCM_SECRETS_TEST_UNSET:-from-default}");
    let warned = |p: &Path| {
        let cfg = mcm_bridge::config::load(p).expect("valid");
        assert_clean("warnings", &cfg.warnings.join("\n"));
        cfg.warnings.iter().any(|w| w.contains("readable"))
    };
    assert!(warned(&write("world.yaml", &literal, 0o644)));
    assert!(warned(&write("group.yaml", &literal, 0o640)));
    assert!(!warned(&write("private.yaml", &literal, 0o600)));
    assert!(!warned(&write("env.yaml", &from_env, 0o644)));
    let msg = mcm_bridge::config::load(&write("w2.yaml", &literal, 0o604))
        .expect("valid")
        .warnings
        .join("\n");
    assert!(
        msg.contains("chmod 600"),
        "the warning says what to do: {msg}"
    );
    // The Kafka password, in kafka.sasl or kafka.properties, is warned about the same way.
    let env_key = CONFIG.replace("API_KEY_HERE", "${MCM_SECRETS_TEST_UNSET:-from-default}");
    let kafka_literal = env_key.replace(
        "group_id: g\n",
        &format!("group_id: g\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: {KAFKA_PASSWORD}\n"),
    );
    let in_properties = env_key.replace(
        "group_id: g\n",
        &format!("group_id: g\n  properties:\n    sasl.password: {KAFKA_PASSWORD}\n"),
    );
    for (name, text, path) in [
        ("k1.yaml", &kafka_literal, "kafka.sasl.password"),
        ("k2.yaml", &in_properties, "kafka.properties.sasl.password"),
    ] {
        let cfg = mcm_bridge::config::load(&write(name, text, 0o644)).expect("valid");
        let msg = cfg.warnings.join("\n");
        assert!(msg.contains(path) && msg.contains("readable"), "{msg}");
        assert_clean("warnings", &msg);
    }
    let kafka_from_env = env_key.replace(
        "group_id: g\n",
        "group_id: g\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: ${MCM_SECRETS_TEST_UNSET:-x}\n",
    );
    assert!(!warned(&write("k3.yaml", &kafka_from_env, 0o644)));
}

// ---------------------------------------------------------------------------------------------
// The binary: validate, map, --help of every subcommand, run's start-up logs.

const BIN: &str = env!("CARGO_BIN_EXE_mcm-bridge");

fn run_bin(args: &[&str], stdin: &[u8]) -> (String, std::process::ExitStatus) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("MCM_API_KEY", KEY)
        .env("KAFKA_PASSWORD", KAFKA_PASSWORD)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("binary output");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status)
}

fn subcommands() -> Vec<String> {
    let (help, status) = run_bin(&["--help"], b"");
    assert!(status.success(), "{help}");
    let mut out = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            match line.split_whitespace().next() {
                Some(name) if line.starts_with("  ") && name != "help" => {
                    out.push(name.to_string())
                }
                Some(_) if !line.starts_with("  ") => break,
                _ => {}
            }
        }
    }
    out
}

#[test]
fn validate_map_and_help_output_never_show_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("bridge.yaml");
    std::fs::write(
        &cfg,
        with_kafka_password("password: ${KAFKA_PASSWORD}")
            .replace("API_KEY_HERE", "${MCM_API_KEY}"),
    )
    .expect("write");
    let cfg = cfg.to_str().expect("utf8 path");

    let (out, status) = run_bin(&["validate", "--config", cfg], b"");
    assert!(status.success(), "validate passes: {out}");
    assert!(out.contains("SCRAM-SHA-512 as \"bridge\""), "{out}");
    assert_clean("`validate`", &out);

    let msg = br#"{"ts": 1717000000000, "user": "u1"}"#;
    let (out, status) = run_bin(&["map", "--config", cfg, "--topic", "events"], msg);
    assert!(status.success(), "map works: {out}");
    assert!(out.contains("HOME"), "{out}");
    assert_clean("`map`", &out);

    // A literal key in a broken file: the errors name the problems, never the key.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        CONFIG
            .replace("API_KEY_HERE", &format!("\"${{{KEY}}}\""))
            .replace("group_id: g", "group_id: [g]"),
    )
    .expect("write");
    let (out, status) = run_bin(&["validate", "--config", bad.to_str().expect("utf8")], b"");
    assert_eq!(status.code(), Some(2), "invalid config exits 2: {out}");
    assert_clean("`validate` of a broken config", &out);

    let subs = subcommands();
    assert!(
        subs.len() >= 5 && subs.iter().any(|s| s == "sandbox"),
        "subcommands found: {subs:?}"
    );
    let (out, _) = run_bin(&["--help"], b"");
    assert_clean("`--help`", &out);
    for sub in &subs {
        let (out, status) = run_bin(&[sub, "--help"], b"");
        assert!(status.success(), "{sub} --help: {out}");
        assert_clean(&format!("`{sub} --help`"), &out);
        let (out, _) = run_bin(&["help", sub], b"");
        assert_clean(&format!("`help {sub}`"), &out);
    }
}

#[test]
fn run_start_up_logs_at_trace_level_never_show_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("bridge.yaml");
    // Nothing listens on port 1 of the loopback: the bridge starts, logs, and keeps retrying.
    let text = with_kafka_password("password: ${KAFKA_PASSWORD}")
        .replace("API_KEY_HERE", "${MCM_API_KEY}")
        .replace("group_id: g", "group_id: g\n  properties:\n    debug: all")
        .replace(
            "topics:",
            "observe:\n  listen: 127.0.0.1:0\n  log_level: trace\n  log_format: json\ntopics:",
        );
    std::fs::write(&cfg, text).expect("write");
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().expect("utf8")])
        .env("MCM_API_KEY", KEY)
        .env("KAFKA_PASSWORD", KAFKA_PASSWORD)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    #[allow(clippy::disallowed_methods)] // a plain #[test] thread, not async code
    std::thread::sleep(Duration::from_secs(3));
    child.kill().expect("stop the bridge");
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.len() > 200, "run logged its start-up: {text}");
    assert_clean("`run` logs", &text);
}
