//! Secret hygiene (DESIGN.md contract 8): the API key is never logged, never in metrics, never in
//! a dead letter, never in an error message, `Debug` output or CLI output.
//!
//! The whole flow runs at `trace` level with a distinctive key — deliveries, an MCM 400, a 403
//! (the sandbox's key changed, then fixed), dead letters — and then every output is searched:
//! captured logs (text and JSON), `/metrics`, every DLQ header and payload, the `validate`,
//! `map` and `--help` output of the binary, `run`'s start-up logs, config `Debug` and the errors
//! of broken configurations that contain the key. The search itself is checked to find a planted
//! marker, so an empty capture cannot pass for a clean one.

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

fn assert_clean(what: &str, text: &str) {
    for needle in [KEY, CANARY, "7d1e0c55b2a94f0e"] {
        if let Some(at) = text.find(needle) {
            let start = at.saturating_sub(200);
            let end = (at + 200).min(text.len());
            panic!(
                "the API key leaked into {what}: …{}…",
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
}

// ---------------------------------------------------------------------------------------------
// The binary: validate, map, --help of every subcommand, run's start-up logs.

const BIN: &str = env!("CARGO_BIN_EXE_mcm-bridge");

fn run_bin(args: &[&str], stdin: &[u8]) -> (String, std::process::ExitStatus) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("MCM_API_KEY", KEY)
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
    std::fs::write(&cfg, CONFIG.replace("API_KEY_HERE", "${MCM_API_KEY}")).expect("write");
    let cfg = cfg.to_str().expect("utf8 path");

    let (out, status) = run_bin(&["validate", "--config", cfg], b"");
    assert!(status.success(), "validate passes: {out}");
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
    let text = CONFIG
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
