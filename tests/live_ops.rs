//! Changing and checking a bridge live (issue 18): shadow mode and live reload of the mapping
//! rules, on Apache Kafka with the MCM sandbox, every id accounted for.
//!
//! - Shadow mode consumes under its own group, maps and validates everything, and counts what
//!   would be delivered and dead-lettered — while the sandbox receives no request, the DLQ topic
//!   stays empty, and the production group's offsets are never written.
//! - A reload under load swaps the rules between two messages: no id lost or delivered twice,
//!   every message mapped by the rules in force when it was taken (so per partition the rules
//!   change at most once per reload), and everything taken after a reload returned uses its rules.

mod support;

use mcm_bridge::observe::metrics::Metrics;
use mcm_bridge::pipeline::reload::Reloader;
use mcm_bridge::pipeline::Controls;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const TOPIC: &str = "events";

/// A `topics:` section whose PAGE_VIEW events carry `marker` as their page id.
fn topics_marked(marker: &str) -> String {
    format!(
        r#"topics:
  - topic: {TOPIC}
    on_no_match: dlq
    fields:
      id: {{path: id}}
      timestamp: {{path: ts, transform: epoch_millis}}
      channel_type: SITE
      user_id: {{path: user}}
    rules:
      - when: {{field: kind, equals: page}}
        event_type: PAGE_VIEW
        fields:
          page_id: "{marker}"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shadow_mode_delivers_nothing_writes_no_dead_letter_and_commits_only_its_own_group() {
    if Backend::apache(Protocol::Classic).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(Protocol::Classic).broker(TOPIC, 2);
    b.create_topic("shop.dlq", 1);
    let bootstrap = b.bootstrap_servers().to_string();
    let mut records: Vec<Record> = Vec::new();
    for i in 0..300 {
        records.push((i % 2, None, Some(event(&format!("h-{i}"), "home"))));
    }
    for i in 0..50 {
        // No rule matches: `on_no_match: dlq`.
        records.push((i % 2, None, Some(event(&format!("x-{i}"), "unknown-kind"))));
    }
    for i in 0..20 {
        records.push((i % 2, None, Some(format!("{{not json {i}").into_bytes())));
    }
    produce(&bootstrap, TOPIC, &records);
    let text = config_text(&b, &sb.base_url(), "shop", "  mode: shadow", "");
    let (cfg, plan) = load(&text);
    assert_eq!(
        cfg.kafka.group_id, "shop.shadow",
        "shadow mode consumes as its own group"
    );
    let bridge = Bridge::start_loaded(cfg, plan);
    bridge
        .wait(Duration::from_secs(60), "every message judged", || {
            bridge.finished() == 370
        })
        .await;
    // Committed: the shadow group up to the end of every partition.
    let ends = end_offsets(&bootstrap, TOPIC, 2);
    bridge
        .wait(
            Duration::from_secs(30),
            "the shadow group committed",
            || {
                committed(&bootstrap, "shop.shadow", TOPIC, 2)
                    .iter()
                    .zip(&ends)
                    .all(|(c, e)| *c == Some(*e))
            },
        )
        .await;
    let m = &bridge.metrics;
    let would_deliver = m
        .shadow_would_deliver
        .with_label_values(&[TOPIC, "HOME"])
        .get();
    let rendered = m.render();
    let exit = bridge.stop().await;
    assert_eq!(exit, mcm_bridge::pipeline::coordinator::Exit::Shutdown);

    let stats = sb.stats().await;
    assert_eq!(
        stats.requests_total, 0,
        "shadow mode must not POST: {stats:?}"
    );
    assert_eq!(would_deliver, 300);
    let dead: BTreeMap<String, u64> = rendered
        .lines()
        .filter(|l| l.starts_with("mcm_bridge_shadow_would_dead_letter_total{"))
        .filter_map(|l| {
            let reason = l.split("reason=\"").nth(1)?.split('"').next()?;
            Some((reason.to_string(), l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(dead.values().sum::<u64>(), 70, "{dead:?}");
    assert_eq!(dead.get("invalid_json"), Some(&20), "{dead:?}");
    assert!(rendered.contains("mcm_bridge_shadow_mode 1"));
    assert!(
        !rendered.contains("mcm_bridge_events_delivered_total{")
            && !rendered.contains("mcm_bridge_messages_dead_lettered_total{"),
        "the live families stay empty in shadow mode"
    );
    assert_eq!(
        end_offsets(&bootstrap, "shop.dlq", 1),
        vec![0],
        "no dead letter written"
    );
    assert_eq!(
        committed(&bootstrap, "shop", TOPIC, 2),
        vec![None, None],
        "the production group's offsets are never written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_under_load_loses_and_duplicates_nothing_and_maps_each_message_once() {
    if Backend::apache(Protocol::Classic).is_none() {
        return;
    }
    const PARTITIONS: i32 = 4;
    const PER_PARTITION: usize = 4_000;
    const TAIL: usize = 100;
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(Protocol::Classic).broker(TOPIC, PARTITIONS);
    b.create_topic("reload.dlq", 1);
    let bootstrap = b.bootstrap_servers().to_string();
    let file = dir.path().join("bridge.yaml");
    let write = |marker: &str| {
        let text =
            config_text_with_topics(&b, &sb.base_url(), "reload", "", "", &topics_marked(marker));
        std::fs::write(&file, text).expect("write config");
    };
    write("A");
    let (cfg, plan) = mcm_bridge::cli::load_config_and_plan(&file).expect("config");
    let metrics = Arc::new(Metrics::new());
    let (mut reloader, reloads) = Reloader::new(file.clone(), &cfg, &plan, metrics.clone());
    let bridge = Bridge::start_with(
        cfg,
        plan,
        metrics,
        Controls {
            reloads: Some(reloads),
            tap: None,
        },
    );
    // Ids name their partition and their position in it: the order of the ids of a partition is
    // its offset order.
    let id = |p: i32, seq: usize| format!("r{p}-{seq:06}");
    let producer = tokio::task::spawn_blocking({
        let bootstrap = bootstrap.clone();
        move || {
            for chunk in 0..(PER_PARTITION / 200) {
                let records: Vec<Record> = (0..PARTITIONS)
                    .flat_map(|p| {
                        (chunk * 200..(chunk + 1) * 200)
                            .map(move |s| (p, None, Some(event(&id(p, s), "page"))))
                    })
                    .collect();
                produce(&bootstrap, TOPIC, &records);
                // On a blocking thread: spreads the load over the reloads.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(Duration::from_millis(30));
            }
        }
    });
    // Reload while the producer and the bridge run, each time to rules of its own (marker M001,
    // M002, …). After each reload returns, a probe produced then must carry that reload's
    // marker or a later one: the new rules are in force for everything taken from then on.
    let mut applied = 0usize;
    let mut probes: Vec<(String, usize)> = Vec::new();
    while !producer.is_finished() {
        applied += 1;
        write(&format!("M{applied:03}"));
        assert_eq!(reloader.reload("test").await, "applied");
        let probe = format!("q-{applied:03}");
        produce(&bootstrap, TOPIC, &[(1, None, Some(event(&probe, "page")))]);
        probes.push((probe, applied));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    producer.await.expect("producer");
    // A last reload, then a tail produced after it returned: all of it under the new rules.
    applied += 1;
    write(&format!("M{applied:03}"));
    assert_eq!(reloader.reload("test").await, "applied");
    // An unchanged file and a broken one change nothing.
    assert_eq!(reloader.reload("test").await, "unchanged");
    std::fs::write(&file, "kafka: [").expect("write");
    assert_eq!(reloader.reload("test").await, "invalid");
    let tail: Vec<Record> = (0..TAIL)
        .map(|s| (0, None, Some(event(&id(0, PER_PARTITION + s), "page"))))
        .collect();
    produce(&bootstrap, TOPIC, &tail);

    let all: Vec<String> = (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION).map(move |s| id(p, s)))
        .chain((0..TAIL).map(|s| id(0, PER_PARTITION + s)))
        .chain(probes.iter().map(|(p, _)| p.clone()))
        .collect();
    let total = all.len();
    wait_all_accepted(&sb, &all, Duration::from_secs(120), |got| {
        format!("{} of {total} accepted", got.len())
    })
    .await;
    let reloads_applied = bridge
        .metrics
        .config_reloads
        .with_label_values(&["applied"])
        .get();
    bridge.stop().await;

    // Every id exactly once, with the page id the rules of its time gave it.
    let text = std::fs::read_to_string(dir.path().join("accepted.jsonl")).expect("record");
    let mut marker_of: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("recorded JSON");
        let id = v["id"].as_str().expect("id").to_string();
        *seen.entry(id.clone()).or_default() += 1;
        marker_of.insert(id, v["page_id"].as_str().unwrap_or("?").to_string());
    }
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    assert_eq!(missing(&all, &seen.keys().cloned().collect()), 0);
    eprintln!("{total} ids, {applied} reloads applied, {duplicates} duplicates");
    assert_eq!(duplicates, 0, "no message delivered twice");
    assert_eq!(seen.len(), total);
    assert_eq!(reloads_applied, applied as u64);
    // Per partition, in offset order, the rules never go back to an older reload's: a message
    // mapped by older rules after newer ones would show a smaller marker after a larger one.
    let number = |m: &str| -> usize {
        m.strip_prefix('M')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("page id {m:?} is no reload's marker"))
    };
    for p in 0..PARTITIONS {
        let sequence: Vec<usize> = (0..PER_PARTITION)
            .map(|s| number(&marker_of[&id(p, s)]))
            .collect();
        if let Some(w) = sequence.windows(2).find(|w| w[1] < w[0]) {
            panic!(
                "partition {p}: rules M{:03} after M{:03} in offset order",
                w[1], w[0]
            );
        }
    }
    for (probe, reload) in &probes {
        let got = number(&marker_of[probe]);
        assert!(
            got >= *reload,
            "{probe}, produced after reload {reload} returned, was mapped by M{got:03}"
        );
    }
    let last = format!("M{applied:03}");
    for s in 0..TAIL {
        assert_eq!(
            marker_of[&id(0, PER_PARTITION + s)],
            last,
            "taken after the last reload returned"
        );
    }
}

/// A free loopback port for a bridge process's observe listener.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The sum of the values of the samples of `/metrics` at `port` whose line starts with `series`.
async fn metric(port: u16, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The `hash` labels of `mcm_bridge_mapping_info` at `port`.
async fn mapping_hashes(port: u16) -> Vec<String> {
    let text = match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("mcm_bridge_mapping_info{hash=\""))
        .filter_map(|l| l.split('"').next().map(str::to_string))
        .collect()
}

struct Process {
    child: std::process::Child,
    log: std::path::PathBuf,
    port: u16,
}

impl Process {
    fn start(config: &std::path::Path, port: u16, extra: &[&str]) -> Process {
        let log = config.with_extension(format!("{port}.log"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
            .args(["run", "--config"])
            .arg(config)
            .args(extra)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("bridge process starts");
        Process { child, log, port }
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `series` sums to `value`; the log on failure.
    async fn wait_metric(&mut self, series: &str, value: f64) {
        let mut last = None;
        for _ in 0..600 {
            assert!(
                self.child.try_wait().expect("try_wait").is_none(),
                "the bridge exited; log:\n{}",
                self.log()
            );
            last = metric(self.port, series).await;
            if last == Some(value) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{series} = {last:?}, not {value}; log:\n{}", self.log());
    }

    async fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the bridge did not stop within 30 s; log:\n{}", self.log());
    }
}

impl Drop for Process {
    /// A failing test must not leave its bridge running (`stop` consumed the child already).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The page ids of the accepted events whose id starts with `prefix`.
fn accepted_markers(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("accepted.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .map(|v| v["page_id"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_process_reloads_on_sighup_and_on_a_watched_file_and_dry_run_sends_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let broker = broker(TOPIC, 1);
    let bootstrap = broker.bootstrap_servers().to_string();
    let file = dir.path().join("bridge.yaml");
    let port = free_port();
    let text = |group: &str, topic: &str, marker: &str| {
        config_text_with_topics(
            bootstrap.as_str(),
            &sb.base_url(),
            group,
            "",
            "",
            &topics_marked(marker).replace(&format!("topic: {TOPIC}"), &format!("topic: {topic}")),
        )
        .replace("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{port}"))
    };
    let page = |prefix: &str, n: usize| -> Vec<Record> {
        (0..n)
            .map(|i| (0, None, Some(event(&format!("{prefix}{i}"), "page"))))
            .collect()
    };
    std::fs::write(&file, text("live", TOPIC, "A")).expect("config");
    let mut bridge = Process::start(&file, port, &[]);
    produce(&bootstrap, TOPIC, &page("a-", 10));
    bridge
        .wait_metric("mcm_bridge_events_delivered_total{", 10.0)
        .await;
    let hash_a = mapping_hashes(port).await;
    assert_eq!(hash_a.len(), 1, "one rules hash from the start: {hash_a:?}");

    // SIGHUP with new rules: applied, and the next events carry them.
    std::fs::write(&file, text("live", TOPIC, "B")).expect("config");
    bridge.signal("-HUP");
    bridge
        .wait_metric(r#"mcm_bridge_config_reloads_total{result="applied"}"#, 1.0)
        .await;
    let hash_b = mapping_hashes(port).await;
    assert!(
        hash_b.len() == 1 && hash_b != hash_a,
        "{hash_a:?} then {hash_b:?}"
    );
    produce(&bootstrap, TOPIC, &page("b-", 10));
    bridge
        .wait_metric("mcm_bridge_events_delivered_total{", 20.0)
        .await;
    // A broken file, another group, other topics: the B rules stay in force.
    std::fs::write(&file, "topics: [").expect("config");
    bridge.signal("-HUP");
    bridge
        .wait_metric(r#"mcm_bridge_config_reloads_total{result="invalid"}"#, 1.0)
        .await;
    std::fs::write(&file, text("other-group", TOPIC, "B")).expect("config");
    bridge.signal("-HUP");
    bridge
        .wait_metric(
            r#"mcm_bridge_config_reloads_total{result="unchanged"}"#,
            1.0,
        )
        .await;
    bridge
        .wait_metric("mcm_bridge_config_restart_pending", 1.0)
        .await;
    std::fs::write(&file, text("live", "elsewhere", "C")).expect("config");
    bridge.signal("-HUP");
    bridge
        .wait_metric(
            r#"mcm_bridge_config_reloads_total{result="restart_required"}"#,
            1.0,
        )
        .await;
    produce(&bootstrap, TOPIC, &page("c-", 10));
    bridge
        .wait_metric("mcm_bridge_events_delivered_total{", 30.0)
        .await;
    let status = bridge.stop().await;
    assert!(status.success(), "exit {status:?}");
    assert_eq!(accepted_markers(dir.path(), "a-"), vec!["A"; 10]);
    assert_eq!(accepted_markers(dir.path(), "b-"), vec!["B"; 10]);
    assert_eq!(
        accepted_markers(dir.path(), "c-"),
        vec!["B"; 10],
        "refused reloads keep B"
    );

    // --dry-run --watch-config: a changed file is picked up by itself, and nothing is sent.
    std::fs::write(&file, text("live", TOPIC, "D")).expect("config");
    let before = sb.stats().await.requests_total;
    let port2 = free_port();
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .expect("config")
            .replace(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port2}")),
    )
    .expect("config");
    let mut shadow = Process::start(
        &file,
        port2,
        &["--dry-run", "--watch-config", "--watch-interval", "200ms"],
    );
    shadow.wait_metric("mcm_bridge_shadow_mode", 1.0).await;
    // The shadow group reads the topic from the start: 30 events.
    shadow
        .wait_metric("mcm_bridge_shadow_would_deliver_total{", 30.0)
        .await;
    let edited = std::fs::read_to_string(&file)
        .expect("config")
        .replace("page_id: \"D\"", "page_id: \"E\"");
    std::fs::write(&file, edited).expect("config");
    shadow
        .wait_metric(r#"mcm_bridge_config_reloads_total{result="applied"}"#, 1.0)
        .await;
    let status = shadow.stop().await;
    assert!(status.success(), "exit {status:?}");
    assert_eq!(
        sb.stats().await.requests_total,
        before,
        "--dry-run sent nothing"
    );
    assert!(
        shadow_log_names_group(&dir),
        "the shadow run names its group"
    );
}

fn shadow_log_names_group(dir: &tempfile::TempDir) -> bool {
    std::fs::read_dir(dir.path())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .any(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains("live.shadow")
        })
}

/// Runs `mcm-bridge tap` with `args` while `feed` keeps producing, until the tap exits by itself
/// (its `--limit` reached); its stdout.
async fn tap_while(args: &[&str], mut feed: impl FnMut(usize)) -> String {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .arg("tap")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("tap starts");
    // The tap sees only what is judged while it watches: keep messages coming until it has seen
    // its limit (a hang detector bounds the wait, not a timing assertion).
    for round in 0..300 {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        feed(round);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if child.try_wait().expect("try_wait").is_none() {
        let _ = child.kill().await;
        let out = child.wait_with_output().await.expect("tap output");
        panic!(
            "the tap did not reach its limit in 30 s; it printed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = child.wait_with_output().await.expect("tap output");
    assert!(
        out.status.success(),
        "tap failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tap_shows_live_messages_next_to_the_events_sent_and_only_rejects_when_asked() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let broker = broker(TOPIC, 1);
    let bootstrap = broker.bootstrap_servers().to_string();
    let (port, tap_port) = (free_port(), free_port());
    let topics = topics_marked("T").replace(
        "user_id: {path: user}",
        "user_id: {path: user, transform: {sha256: {normalize: true}}}",
    );
    let text = config_text_with_topics(bootstrap.as_str(), &sb.base_url(), "tap", "", "", &topics)
        .replace(
            "listen: 127.0.0.1:0",
            &format!("listen: 127.0.0.1:{port}\n  tap: true\n  tap_listen: 127.0.0.1:{tap_port}"),
        );
    let file = dir.path().join("bridge.yaml");
    std::fs::write(&file, text).expect("config");
    let mut bridge = Process::start(&file, port, &[]);
    bridge.wait_metric("mcm_bridge_ready", 1.0).await;
    let config = file.to_str().expect("path");

    let out = tap_while(
        &["--config", config, "--limit", "5", "--format", "json"],
        |round| {
            produce(
                &bootstrap,
                TOPIC,
                &[(
                    0,
                    Some(b"k".to_vec()),
                    Some(event(&format!("t-{round}"), "page")),
                )],
            );
        },
    )
    .await;
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 5, "{out}");
    let tapped: Vec<String> = lines
        .iter()
        .filter_map(|l| l["source"]["id"].as_str().map(str::to_string))
        .collect();
    wait_all_accepted(&sb, &tapped, Duration::from_secs(30), |got| {
        format!("tapped {tapped:?}, accepted {got:?}")
    })
    .await;
    let sent: HashMap<String, serde_json::Value> =
        std::fs::read_to_string(dir.path().join("accepted.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| (v["id"].as_str().unwrap_or("").to_string(), v))
            .collect();
    for line in &lines {
        assert_eq!(line["topic"], TOPIC);
        assert_eq!(line["key"], "k");
        assert_eq!(line["outcome"], "deliver");
        let id = line["source"]["id"].as_str().expect("the source record");
        assert_eq!(
            line["source"]["user"],
            format!("user-{id}"),
            "the source as produced"
        );
        // The event as sent: byte-for-byte the body the sandbox accepted, user id hashed.
        let event = &line["event"];
        assert_eq!(Some(event), sent.get(id));
        let user = event["user_id"].as_str().expect("user_id");
        assert_eq!(user.len(), 64, "hashed as sent: {user}");
    }
    assert!(!out.contains(API_KEY), "the API key never appears");

    // Only rejects, as columns: good and bad messages flow, the rejects are shown.
    let out = tap_while(
        &[
            "--config",
            config,
            "--limit",
            "3",
            "--rejected-only",
            "--width",
            "120",
        ],
        |round| {
            produce(
                &bootstrap,
                TOPIC,
                &[
                    (0, None, Some(event(&format!("g-{round}"), "page"))),
                    (0, None, Some(format!("{{broken {round}").into_bytes())),
                ],
            );
        },
    )
    .await;
    let heads: Vec<&str> = out.lines().filter(|l| l.starts_with("── ")).collect();
    assert_eq!(heads.len(), 3, "{out}");
    assert!(
        heads
            .iter()
            .all(|h| h.contains("→ REJECT decode/invalid_json")),
        "{out}"
    );
    assert!(out.lines().all(|l| l.chars().count() <= 120), "{out}");
    assert!(bridge.stop().await.success());

    // A configuration without observe.tap: the tap says how to turn it on.
    let off_file = dir.path().join("off.yaml");
    // Without the bridge's secrets too: the tap reads only the observe section.
    let off_text = std::fs::read_to_string(&file)
        .expect("config")
        .replace("  tap: true\n", "")
        .replace(API_KEY, "${MCM_KEY_NOT_SET_FOR_THE_TAP}");
    std::fs::write(&off_file, off_text).expect("config");
    let off = std::process::Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args(["tap", "--config"])
        .arg(&off_file)
        .output()
        .expect("tap runs");
    assert_eq!(off.status.code(), Some(1));
    let why = String::from_utf8_lossy(&off.stderr);
    assert!(why.contains("observe.tap is off"), "{why}");
}
