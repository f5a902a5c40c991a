//! Issue 4 (d): the bridge *process* is killed with SIGKILL mid-stream and restarted. The broker
//! (librdkafka's mock cluster) lives in this test process, so it outlives the bridge and expires
//! the dead member's session. Every id must be delivered at least once, and the duplicates are
//! bounded by the in-flight window (messages taken but not yet committed).

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const MAX_IN_FLIGHT: usize = 64;

fn spawn_bridge(config: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("bridge process starts")
}

each_broker!(sigkill_mid_stream_loses_nothing_and_duplicates_stay_within_the_window);
async fn sigkill_mid_stream_loses_nothing_and_duplicates_stay_within_the_window(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let mut faults = sb.faults();
    faults.latency = Duration::from_millis(5);
    sb.set_faults(&faults).expect("faults");
    let b = backend.broker("events", 4);
    let produced: Vec<String> = (0..20_000).map(|i| format!("d-{i}")).collect();
    let recs: Vec<Record> = produced
        .iter()
        .enumerate()
        .map(|(i, id)| ((i % 4) as i32, None, Some(event(id, "home"))))
        .collect();
    produce(b.bootstrap_servers(), "events", &recs);

    let config = dir.path().join("bridge.yaml");
    let text = config_text(
        &b,
        &sb.base_url(),
        "g-d",
        "",
        &format!("  max_in_flight: {MAX_IN_FLIGHT}"),
    );
    std::fs::write(&config, text).expect("config");

    let mut first = spawn_bridge(&config, &dir.path().join("first.log"));
    let start = Instant::now();
    while sb.stats().await.accepted_total < 5_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "first bridge made no progress"
        );
        assert!(
            first.try_wait().expect("wait").is_none(),
            "first bridge exited early"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
    let _ = first.wait();
    let at_kill = sb.stats().await.accepted_total;

    let mut second = spawn_bridge(&config, &dir.path().join("second.log"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let all: HashSet<&String> = produced.iter().collect();
    loop {
        let got = accepted_set(&sb).await;
        let missing = all.iter().filter(|id| !got.contains(**id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} ids never delivered after the restart; log: {}",
            std::fs::read_to_string(dir.path().join("second.log")).unwrap_or_default()
        );
        assert!(
            second.try_wait().expect("wait").is_none(),
            "second bridge exited early"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A clean stop: SIGTERM → drain, commit, exit 0.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = second.wait().expect("wait");
    assert!(exit.success(), "SIGTERM must end in exit 0, got {exit:?}");

    let ids = sb.accepted_ids().await.expect("record");
    let dups: usize = counts(&ids).values().map(|n| n - 1).sum();
    eprintln!(
        "accepted at kill: {at_kill}; total accepted {}; duplicates {dups}",
        ids.len()
    );
    // Re-delivered after the kill: what was taken (≤ 2 × max_in_flight) but not committed; the
    // count-triggered commit keeps finished-but-uncommitted work within one more window.
    let bound = 3 * MAX_IN_FLIGHT;
    assert!(
        dups <= bound,
        "{dups} duplicates exceed the in-flight window bound {bound}"
    );
    let ends = end_offsets(b.bootstrap_servers(), "events", 4);
    let committed = committed(b.bootstrap_servers(), "g-d", "events", 4);
    assert_eq!(committed, ends.iter().map(|e| Some(*e)).collect::<Vec<_>>());
    sb.shutdown().await.expect("sandbox stops");
}
