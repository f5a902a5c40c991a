//! Liveness and readiness of a running bridge, as Kubernetes sees them through `/healthz` and
//! `/readyz` (src/observe/health.rs says what each means and why):
//! - an idle member (more members than partitions) is ready, on both group protocols: it has
//!   joined and takes partitions over as soon as another member leaves;
//! - an open circuit (MCM down, every replica alike) keeps a member ready, with a note, so that a
//!   rollout during an outage is not stalled;
//! - both loops keep beating while the bridge runs, so `/healthz` stays 200 (the 503 side of a
//!   stopped heartbeat is tested on the router in src/observe/server.rs).
//!
//! A rejected API key making a member not ready is tested in tests/pipeline.rs
//! (`wrong_api_key_halts_without_dead_lettering_and_resumes_when_fixed`).

mod support;

use mcm_bridge::observe::health::Liveness;
use std::time::Duration;
use support::*;

async fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("http://{addr}{path}"))
        .await
        .expect("GET over loopback");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

/// Both loops beat after arming: some look at liveness, at least 2 s after the start (longer
/// than arming's own stamp could explain), finds each silent for less than a second.
async fn wait_for_fresh_heartbeats(bridge: &Bridge) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_until(
        Duration::from_secs(30),
        "fresh heartbeats of both loops",
        || {
            matches!(bridge.health.liveness(), Liveness::Alive { silence, .. }
            if silence.iter().all(|(_, quiet)| *quiet < Duration::from_secs(1)))
        },
    )
    .await;
}

each_broker!(idle_member_is_ready_and_both_members_stay_alive);
async fn idle_member_is_ready_and_both_members_stay_alive(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = backend.broker("events", 1);
    let text = config_text(&b, &sb.base_url(), "g-idle", "", "");
    let first = Bridge::start(&text);
    wait_until(
        Duration::from_secs(60),
        "the first member's partition",
        || first.health.assigned() == 1,
    )
    .await;
    // One partition, two members: the second joins with nothing to do.
    let second = Bridge::start(&text);
    wait_until(
        Duration::from_secs(60),
        "the idle member to be ready",
        || second.health.readiness().is_ok(),
    )
    .await;
    // The group may have moved the partition to the newcomer: one of the two is idle.
    let (busy, idle) = if first.health.assigned() == 1 {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert_eq!(idle.health.assigned(), 0);
    wait_for_fresh_heartbeats(idle).await;
    wait_for_fresh_heartbeats(busy).await;

    let idle_addr = idle.serve_metrics().await;
    let (status, body) = get(&idle_addr, "/readyz").await;
    assert_eq!(status, 200, "an idle member is a ready standby: {body}");
    assert_eq!(body["assigned_partitions"], 0, "{body}");
    assert!(body["notes"].to_string().contains("idle"), "{body}");
    let (status, body) = get(&idle_addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["alive"], true, "{body}");

    let busy_addr = busy.serve_metrics().await;
    let (status, body) = get(&busy_addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assigned_partitions"], 1, "{body}");
    let (status, _) = get(&busy_addr, "/healthz").await;
    assert_eq!(status, 200);

    first.stop().await;
    second.stop().await;
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_circuit_keeps_the_member_ready_and_alive() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let mut faults = sb.faults();
    faults.fail_rate = 1.0; // MCM down: every attempt is a 500
    sb.set_faults(&faults).expect("faults");
    let b = Backend::Mock.broker("events", 2);
    let records: Vec<Record> = (0..50)
        .map(|i| (i % 2, None, Some(event(&format!("c-{i}"), "home"))))
        .collect();
    produce(b.bootstrap_servers(), "events", &records);
    let text = config_text(&b, &sb.base_url(), "g-circuit", "", "")
        .replace("failure_threshold: 1000", "failure_threshold: 5");
    let bridge = Bridge::start(&text);
    wait_until(Duration::from_secs(60), "the circuit to open", || {
        bridge.metrics.circuit_state.get() != 0
    })
    .await;
    wait_until(Duration::from_secs(30), "the health to see it", || {
        bridge
            .health
            .readiness()
            .is_ok_and(|r| r.notes.iter().any(|n| n.starts_with("circuit open")))
    })
    .await;
    wait_for_fresh_heartbeats(&bridge).await;
    let addr = bridge.serve_metrics().await;
    let (status, body) = get(&addr, "/readyz").await;
    assert_eq!(status, 200, "an MCM outage is alerted, not unready: {body}");
    assert!(body["notes"].to_string().contains("circuit open"), "{body}");
    let (status, body) = get(&addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bridge.delivered(), 0);

    faults.fail_rate = 0.0;
    sb.set_faults(&faults).expect("faults");
    wait_until(
        Duration::from_secs(60),
        "delivery after MCM is back",
        || bridge.finished() >= 50,
    )
    .await;
    bridge.stop().await;
    sb.shutdown().await.expect("sandbox stops");
}
