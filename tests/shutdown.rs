//! Issue 21 item 3: SIGTERM ends the process within its bound whatever the broker does, and an
//! exit code tells whether the offsets were stored.
//!
//! On Apache Kafka: a bridge process delivers 20 messages with no commit yet (a long commit
//! interval), the broker is SIGKILLed, and the bridge gets SIGTERM. It must exit on its own
//! within the 45 s grace of the shipped manifests, with exit code 4 and one log line counting
//! the 20 messages of 2 partitions the next owner reads again — and that line must be true: with
//! the broker back, nothing is committed, and a second bridge delivers exactly those 20 again
//! (no loss; the duplicates are the ones announced), then stops cleanly with exit 0 after its
//! own final commit stores the end of both partitions.

mod support;

use mcm_bridge::sandbox::SandboxHandle;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const MESSAGES: usize = 20;
const PARTITIONS: i32 = 2;

/// Longer than the whole bound (drain + final commit + close): the grace period of the shipped
/// Kubernetes manifests, after which the process would be SIGKILLed. A hang detector, not a
/// timing assertion: the process must end on its own rather than be killed.
const GRACE: Duration = Duration::from_secs(45);

fn spawn_bridge(config: &Path, log: &Path) -> Child {
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

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
}

/// Waits for the process to end on its own within [`GRACE`]; SIGKILLs it and fails otherwise.
async fn exit_within_grace(child: &mut Child, log: &Path) -> std::process::ExitStatus {
    let deadline = Instant::now() + GRACE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the bridge did not exit within {GRACE:?} of SIGTERM; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_accepted(sb: &SandboxHandle, at_least: u64, bridge: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while sb.stats().await.accepted_total < at_least {
        assert!(
            bridge.try_wait().expect("try_wait").is_none(),
            "the bridge exited early; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} events accepted; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sigterm_with_the_broker_killed(protocol: Protocol) {
    let Some(backend) = Backend::apache(protocol) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let broker = backend.broker("events", PARTITIONS);
    let ids: Vec<String> = (0..MESSAGES).map(|i| format!("s-{i}")).collect();
    let records: Vec<Record> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ((i as i32) % PARTITIONS, None, Some(event(id, "home"))))
        .collect();
    produce(broker.bootstrap_servers(), "events", &records);

    // No periodic commit during the test (1 h), and a count-triggered one only after 64
    // finished messages: the 20 delivered ones stay uncommitted until the final commit.
    let text = config_text(
        &broker,
        &sb.base_url(),
        "g-shutdown",
        "",
        "  max_in_flight: 64",
    )
    .replace("commit_interval: 200ms", "commit_interval: 1h");
    let config = dir.path().join("bridge.yaml");
    std::fs::write(&config, text).expect("config");

    let first_log = dir.path().join("first.log");
    let mut first = spawn_bridge(&config, &first_log);
    wait_accepted(&sb, MESSAGES as u64, &mut first, &first_log).await;

    let kafka = broker.apache().expect("Apache Kafka");
    kafka.kill(None);
    let signalled = Instant::now();
    sigterm(&first);
    let status = exit_within_grace(&mut first, &first_log).await;
    eprintln!(
        "SIGTERM with the broker killed: {status:?} after {:.1}s",
        signalled.elapsed().as_secs_f64()
    );
    let log = std::fs::read_to_string(&first_log).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(4),
        "a final commit that cannot land must end in exit code 4; log:\n{log}"
    );
    let announced = format!("final commit failed: {MESSAGES} messages of {PARTITIONS} partitions");
    assert_eq!(
        log.lines().filter(|l| l.contains(&announced)).count(),
        1,
        "one line announcing the redelivery ({announced}); log:\n{log}"
    );

    kafka.start_again(None);
    assert_eq!(
        committed(
            broker.bootstrap_servers(),
            "g-shutdown",
            "events",
            PARTITIONS
        ),
        vec![None; PARTITIONS as usize],
        "exit code 4 said the offsets were not stored"
    );

    let second_log = dir.path().join("second.log");
    let mut second = spawn_bridge(&config, &second_log);
    wait_accepted(&sb, 2 * MESSAGES as u64, &mut second, &second_log).await;
    sigterm(&second);
    let status = exit_within_grace(&mut second, &second_log).await;
    assert!(
        status.success(),
        "a final commit that lands must end in exit 0, got {status:?}; log:\n{}",
        std::fs::read_to_string(&second_log).unwrap_or_default()
    );

    let accepted = sb.accepted_ids().await.expect("record");
    let per_id = counts(&accepted);
    let lost = missing(&ids, &accepted.iter().cloned().collect());
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    eprintln!("lost {lost}, duplicates {duplicates} (announced {MESSAGES})");
    assert_eq!(lost, 0);
    assert!(
        ids.iter().all(|id| per_id.get(id) == Some(&2)),
        "every message delivered once by each bridge: {per_id:?}"
    );
    let ends = end_offsets(broker.bootstrap_servers(), "events", PARTITIONS);
    assert_eq!(
        committed(
            broker.bootstrap_servers(),
            "g-shutdown",
            "events",
            PARTITIONS
        ),
        ends.iter().map(|e| Some(*e)).collect::<Vec<_>>(),
        "the second bridge's final commit stored the end of both partitions"
    );
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_broker_killed_exits_4_within_the_grace_and_says_what_is_redelivered_classic(
) {
    sigterm_with_the_broker_killed(Protocol::Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_the_broker_killed_exits_4_within_the_grace_and_says_what_is_redelivered_consumer(
) {
    sigterm_with_the_broker_killed(Protocol::Consumer).await;
}
