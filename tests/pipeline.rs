//! Whole-pipeline tests (issue 4 a–c, e–g): a real Kafka-protocol broker (librdkafka's mock
//! cluster), the MCM sandbox (or wiremock) over real HTTP, and the bridge's pipeline. Each test
//! accounts for every produced id: delivered (sandbox record), dead-lettered (DLQ topic), and the
//! committed offsets against the partitions' end offsets.

mod support;

use mcm_bridge::kafka::mock::MockBroker;
use mcm_bridge::sandbox::SandboxHandle;
use std::time::Duration;
use support::*;

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn records(ids: &[String], partitions: i32, kind: &str) -> Vec<Record> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let p = (i % partitions as usize) as i32;
            (
                p,
                Some(format!("k{}", i % 97).into_bytes()),
                Some(event(id, kind)),
            )
        })
        .collect()
}

/// Revoked and lost assignments across `bridges`: each lets the next owner repeat the requests
/// that were in flight.
fn revokes(bridges: &[&Bridge]) -> u64 {
    bridges
        .iter()
        .map(|x| {
            x.metrics.rebalances.with_label_values(&["revoke"]).get()
                + x.metrics.rebalances.with_label_values(&["lost"]).get()
        })
        .sum()
}

/// Deliveries beyond the first of each id, from the sandbox's record.
async fn duplicates(sb: &SandboxHandle) -> usize {
    let got = sb.accepted_ids().await.expect("record");
    counts(&got).values().map(|n| n - 1).sum()
}

fn assert_committed_to_end(bootstrap: &str, group: &str, topic: &str, partitions: i32) {
    let ends = end_offsets(bootstrap, topic, partitions);
    let committed = committed(bootstrap, group, topic, partitions);
    let want: Vec<Option<i64>> = ends.iter().map(|e| Some(*e)).collect();
    assert_eq!(
        committed, want,
        "committed offsets must equal the end offsets"
    );
}

each_broker!(healthy_sink_delivers_every_event_once_and_commits_to_the_end);
async fn healthy_sink_delivers_every_event_once_and_commits_to_the_end(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = backend.broker("events", 4);
    let produced = ids(10_000, "a-");
    produce(
        b.bootstrap_servers(),
        "events",
        &records(&produced, 4, "home"),
    );

    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-a", "", ""));
    wait_until(Duration::from_secs(120), "10k deliveries", || {
        bridge.finished() >= 10_000
    })
    .await;
    // 10k events through a 512-message budget fill it many times over; a healthy sink frees it
    // within milliseconds, so the intake gate must absorb that without librdkafka pauses (each
    // pause/resume cost ~1 s of fetching and capped the bridge at ~1.8k events/s).
    assert_eq!(
        bridge.metrics.partition_pauses.get(),
        0,
        "a healthy run never pauses partitions"
    );
    b.assert_group_type("g-a");
    bridge.stop().await;

    let got = sb.accepted_ids().await.expect("record");
    let c = counts(&got);
    let lost: Vec<_> = produced.iter().filter(|id| !c.contains_key(*id)).collect();
    let dups: usize = c.values().map(|n| n - 1).sum();
    assert!(
        lost.is_empty(),
        "lost {} ids, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    assert_eq!(dups, 0, "a healthy run delivers each event exactly once");
    assert_eq!(got.len(), 10_000);
    assert_committed_to_end(b.bootstrap_servers(), "g-a", "events", 4);
    sb.shutdown().await.expect("sandbox stops");
}

each_broker!(failing_and_throttling_sink_loses_nothing);
async fn failing_and_throttling_sink_loses_nothing(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let mut faults = sb.faults();
    faults.fail_rate = 0.2;
    faults.throttle_rate = 0.1;
    sb.set_faults(&faults).expect("faults");
    let b = backend.broker("events", 4);
    let produced = ids(3_000, "b-");
    produce(
        b.bootstrap_servers(),
        "events",
        &records(&produced, 4, "page"),
    );

    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-b", "", ""));
    wait_until(Duration::from_secs(120), "3k deliveries", || {
        bridge.finished() >= 3_000
    })
    .await;
    let retries: u64 = ["server_error", "throttled"]
        .iter()
        .map(|r| bridge.metrics.retries.with_label_values(&[*r]).get())
        .sum();
    let limit = bridge.metrics.concurrency_limit.get();
    bridge.stop().await;

    let got = accepted_set(&sb).await;
    let lost = produced.iter().filter(|id| !got.contains(*id)).count();
    assert_eq!(
        lost, 0,
        "every event is delivered despite 20% 500s and 10% 429s"
    );
    assert!(
        retries > 300,
        "faults were injected and retried ({retries} retries)"
    );
    let stats = sb.stats().await;
    assert!(stats.faults.values().sum::<u64>() > 300, "{stats:?}");
    assert!(
        limit < 256,
        "adaptive concurrency backs off under 429/5xx (limit {limit})"
    );
    assert_committed_to_end(b.bootstrap_servers(), "g-b", "events", 4);
    sb.shutdown().await.expect("sandbox stops");
}

each_broker!(bad_messages_go_to_the_dlq_with_reasons_and_nothing_stalls);
async fn bad_messages_go_to_the_dlq_with_reasons_and_nothing_stalls(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = backend.broker("events", 2);
    b.create_topic("g-c.dlq", 1);
    let good = ids(400, "c-");
    let mut recs = records(&good, 2, "home");
    let future_ts = chrono_now_ms() + 10 * 60_000; // passes the bridge (1h tolerance), 400 at MCM
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("invalid_json", b"{not json".to_vec()),
        (
            "no_matching_rule",
            serde_json::to_vec(
                &serde_json::json!({"id":"x1","kind":"refund","ts":chrono_now_ms(),"user":"u"}),
            )
            .expect("json"),
        ),
        (
            "no_identifier",
            serde_json::to_vec(&serde_json::json!({"id":"x2","kind":"home","ts":chrono_now_ms()}))
                .expect("json"),
        ),
        (
            "missing_page_id",
            serde_json::to_vec(
                &serde_json::json!({"id":"x3","kind":"page","ts":chrono_now_ms(),"user":"u"}),
            )
            .expect("json"),
        ),
        (
            "http_400",
            serde_json::to_vec(
                &serde_json::json!({"id":"x4","kind":"home","ts":future_ts,"user":"u"}),
            )
            .expect("json"),
        ),
    ];
    // Interleave the bad ones with good ones on both partitions.
    for (i, (_, payload)) in bad.iter().enumerate() {
        recs.insert(i * 50, ((i % 2) as i32, None, Some(payload.clone())));
    }
    recs.push((1, None, None)); // a tombstone
    produce(b.bootstrap_servers(), "events", &recs);
    let total = recs.len() as u64;

    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-c", "", ""));
    wait_until(Duration::from_secs(60), "every message finished", || {
        bridge.finished() >= total
    })
    .await;
    assert_eq!(bridge.dead_lettered(), bad.len() as u64 + 1);
    bridge.stop().await;

    let got = accepted_set(&sb).await;
    assert!(
        good.iter().all(|id| got.contains(id)),
        "every good event delivered"
    );
    let dlq = read_all(b.bootstrap_servers(), "g-c.dlq", 1);
    assert_eq!(dlq.len(), bad.len() + 1);
    let reasons: Vec<String> = dlq
        .iter()
        .map(|m| headers(m)["mcm.error.reason"].clone())
        .collect();
    for (want, _) in &bad {
        assert!(
            reasons.iter().any(|r| r == want),
            "{want} not in {reasons:?}"
        );
    }
    for m in &dlq {
        let h = headers(m);
        assert_eq!(h["mcm.source.topic"], "events");
        assert!(h.contains_key("mcm.source.partition") && h.contains_key("mcm.source.offset"));
        assert!(h.contains_key("mcm.error.class"));
        if h["mcm.error.reason"] == "http_400" {
            assert_eq!(h["mcm.http.status"], "400");
            assert!(h["mcm.response.snippet"].contains("timestamp"), "{h:?}");
            assert_eq!(h["mcm.error.class"], "permanent");
        }
        assert!(
            !h.values().any(|v| v.contains(API_KEY)),
            "the API key never reaches a DLQ header"
        );
    }
    // The original value is kept byte for byte.
    assert!(dlq
        .iter()
        .any(|m| rdkafka::Message::payload(m) == Some(&b"{not json"[..])));
    assert_committed_to_end(b.bootstrap_servers(), "g-c", "events", 2);
    sb.shutdown().await.expect("sandbox stops");
}

each_broker!(member_leaving_and_rejoining_loses_nothing);
async fn member_leaving_and_rejoining_loses_nothing(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let mut faults = sb.faults();
    // Slow enough (8 in flight × 20 ms ≈ 400 events/s) that work remains when members come and go.
    faults.latency = Duration::from_millis(20);
    sb.set_faults(&faults).expect("faults");
    let b = backend.broker("events", 4);
    let produced = ids(6_000, "e-");
    let recs = records(&produced, 4, "home");
    let text = config_text(&b, &sb.base_url(), "g-e", "", "  max_in_flight: 8");
    produce(b.bootstrap_servers(), "events", &recs[..2_000]);
    let a = Bridge::start(&text);
    wait_until(Duration::from_secs(60), "A started delivering", || {
        a.finished() >= 200
    })
    .await;
    let second = Bridge::start(&text);
    produce(b.bootstrap_servers(), "events", &recs[2_000..4_000]);
    // B joins mid-stream: wait for its assignment (how much B gets done before it leaves depends
    // on the machine's speed; the claim under test is that nothing is lost either way).
    wait_until(Duration::from_secs(60), "B got partitions", || {
        second.health.assigned() > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.stop().await; // leaves mid-stream
    produce(b.bootstrap_servers(), "events", &recs[4_000..]);
    let again = Bridge::start(&text); // rejoins
    wait_all_accepted(&sb, &produced, Duration::from_secs(120), |got| {
        format!("lost {} ids", missing(&produced, got))
    })
    .await;
    a.stop().await;
    again.stop().await;
    assert_committed_to_end(b.bootstrap_servers(), "g-e", "events", 4);
    sb.shutdown().await.expect("sandbox stops");
}

each_broker!(stalled_sink_turns_the_gate_into_a_pause_and_a_rebalance_meanwhile_loses_nothing);
async fn stalled_sink_turns_the_gate_into_a_pause_and_a_rebalance_meanwhile_loses_nothing(
    backend: Backend,
) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let mut faults = sb.faults();
    // 4 requests in flight, each answered after 3 s: the 8-message budget stays full for longer
    // than the gate may hold it, so consumption must be paused in librdkafka.
    faults.latency = Duration::from_secs(3);
    sb.set_faults(&faults).expect("faults");
    let b = backend.broker("events", 4);
    let produced = ids(1_200, "s-");
    let recs = records(&produced, 4, "home");
    produce(b.bootstrap_servers(), "events", &recs[..600]);
    let text = config_text(
        &b,
        &sb.base_url(),
        "g-s",
        "",
        "  max_in_flight: 4\n  adaptive_concurrency: false",
    );
    let a = Bridge::start(&text);
    wait_until(
        Duration::from_secs(30),
        "the stall to become a pause",
        || a.metrics.partition_pauses.get() > 0,
    )
    .await;
    // A second member joins while the first is paused: librdkafka forgets pause state across
    // assignments, and the partitions it keeps must stay paused (or be re-paused) correctly.
    let second = Bridge::start(&text);
    produce(b.bootstrap_servers(), "events", &recs[600..]);
    wait_until(Duration::from_secs(60), "B got partitions", || {
        second.health.assigned() > 0
    })
    .await;
    faults.latency = Duration::ZERO;
    sb.set_faults(&faults).expect("faults");
    wait_all_accepted(&sb, &produced, Duration::from_secs(120), |got| {
        format!("lost {} ids", missing(&produced, got))
    })
    .await;
    // Only requests in flight when partitions were taken away can be repeated by their next
    // owner: at most the 4-request window per revoke (a loaded machine may see more than the
    // one rebalance this test causes, e.g. a missed heartbeat). The final stops below happen
    // with everything delivered, so they add none.
    let revokes = revokes(&[&a, &second]);
    // A refused commit (the mock broker answers a revoke's commits RebalanceInProgress while
    // the group rebalances, seen in CI) leaves finished messages uncommitted: their next owner
    // replays them too, up to `delivery.max_uncommitted_per_partition` (4 × the 4-request
    // window here) per partition — the design's bound, and no loss.
    let refused: u64 = [&a, &second]
        .iter()
        .map(|x| x.metrics.commits.with_label_values(&["error"]).get())
        .sum();
    a.stop().await;
    second.stop().await;
    assert_committed_to_end(b.bootstrap_servers(), "g-s", "events", 4);
    let dups = duplicates(&sb).await;
    assert!(revokes >= 1, "the second member's join revokes partitions");
    let replay_bound = if refused > 0 { 16 * 4 } else { 0 };
    assert!(
        dups as u64 <= 4 * revokes + replay_bound,
        "{dups} duplicates for {revokes} revokes of a 4-request window ({refused} commits refused)"
    );
    sb.shutdown().await.expect("sandbox stops");
}

/// A revoke arrives while delivered messages are uncommitted (the coordinator refused the
/// periodic commits, as it does while a rebalance round forms) and requests of the revoked
/// partitions hang; then the group refuses the revoke's final commit too. Without the early
/// commit at the start of the revoke, the next owner would repeat everything delivered since the
/// last accepted commit (here 50 events per revoked partition); with it, only the hung requests.
/// The early commit must not pass them either: they never finish before the drain deadline, and
/// every one of them must still arrive.
///
/// The mock broker refuses every commit while a rebalance round is joining or syncing, and a
/// second join (e.g. the new member re-joining once its topic metadata arrives) can put the
/// group back there just as the revoke begins: then the early commit is refused by the broker
/// itself (seen in CI, about one run in four under load) and this run cannot show what it is
/// about. Such a run still checks that nothing is lost, and the scenario is run again on a fresh
/// broker and group, up to 4 times; the early commit must be seen accepted in one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_final_revoke_commit_repeats_only_the_requests_in_flight() {
    for run in 1..=4 {
        if refused_final_revoke_commit_scenario(run).await == EarlyCommit::Accepted {
            return;
        }
        eprintln!("run {run}: the mock broker's own rebalance refused the early revoke commit");
    }
    panic!("the early revoke commit was refused by the broker's rebalance in all 4 runs");
}

#[derive(Debug, PartialEq)]
enum EarlyCommit {
    Accepted,
    RefusedByTheBroker,
}

async fn refused_final_revoke_commit_scenario(run: u32) -> EarlyCommit {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let group = format!("g-f{run}");
    let refuse_commits = |b: &MockBroker, n: usize| {
        b.inject_errors(
            RDKafkaApiKey::OffsetCommit,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
            n,
        )
        .expect("inject");
    };
    let group_committed = |b: &MockBroker| {
        tokio::task::block_in_place(|| committed(b.bootstrap_servers(), &group, "events", 4))
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = broker("events", 4);
    let first = ids(400, "f-");
    let middle = ids(200, "m-");
    let later = ids(40, "l-");
    // One request per partition; commits only every 4 finished messages (no timer).
    let text = config_text(
        b.bootstrap_servers(),
        &sb.base_url(),
        &group,
        // The replay bound would stop delivery while commits are refused: this test is about
        // what a revoke commits, so it lifts the bound.
        "  max_in_flight_per_partition: 1\n  max_uncommitted_per_partition: 100000",
        "  max_in_flight: 4\n  adaptive_concurrency: false",
    )
    .replace("commit_interval: 200ms", "commit_interval: 1h");
    let a = Bridge::start(&text);
    produce(b.bootstrap_servers(), "events", &records(&first, 4, "home"));
    wait_all_accepted(&sb, &first, Duration::from_secs(60), |got| {
        format!("lost {} ids", missing(&first, got))
    })
    .await;
    // Delivered, never committed.
    refuse_commits(&b, 100_000);
    produce(
        b.bootstrap_servers(),
        "events",
        &records(&middle, 4, "home"),
    );
    wait_all_accepted(&sb, &middle, Duration::from_secs(60), |got| {
        format!("lost {} ids", missing(&middle, got))
    })
    .await;
    b.clear_errors(RDKafkaApiKey::OffsetCommit).expect("clear");
    let before_revoke = group_committed(&b);
    assert!(
        before_revoke.iter().all(|c| c.unwrap_or(0) <= 100),
        "the middle events must be uncommitted: {before_revoke:?}"
    );
    // Each partition's next request hangs well past the 3 s drain deadline; with nothing
    // finishing, nothing commits until the revoke.
    let mut faults = sb.faults();
    faults.latency = Duration::from_secs(20);
    sb.set_faults(&faults).expect("faults");
    produce(b.bootstrap_servers(), "events", &records(&later, 4, "home"));
    wait_until(
        Duration::from_secs(30),
        "a request on every partition",
        || a.metrics.in_flight_messages.get() >= 4,
    )
    .await;
    // Nothing finishes while every request hangs, so no commit is tried until the revoke.
    let refused_at_start = a.metrics.commits.with_label_values(&["error"]).get();
    let second = Bridge::start(&text);
    // A hang detector: the mock broker's rebalance can take a while on a busy machine.
    wait_until(
        Duration::from_secs(60),
        "the early revoke commit's answer",
        || {
            group_committed(&b) != before_revoke
                || a.metrics.commits.with_label_values(&["error"]).get() > refused_at_start
        },
    )
    .await;
    if group_committed(&b) == before_revoke {
        // Refused by the broker's own rebalance: check only that nothing is lost.
        faults.latency = Duration::ZERO;
        sb.set_faults(&faults).expect("faults");
        let all: Vec<String> = first.iter().chain(&middle).chain(&later).cloned().collect();
        wait_all_accepted(&sb, &all, Duration::from_secs(120), |got| {
            format!("lost {} ids", missing(&all, got))
        })
        .await;
        a.stop().await;
        second.stop().await;
        assert_committed_to_end(b.bootstrap_servers(), &group, "events", 4);
        sb.shutdown().await.expect("sandbox stops");
        return EarlyCommit::RefusedByTheBroker;
    }
    let refused_before = a.metrics.commits.with_label_values(&["error"]).get();
    // Refused until cleared below: the final revoke commit retries for its whole
    // `final_commit_timeout` and gives up, and B gets the partitions after that.
    refuse_commits(&b, 100_000);
    wait_until(Duration::from_secs(60), "B got partitions", || {
        second.health.assigned() > 0
    })
    .await;
    b.clear_errors(RDKafkaApiKey::OffsetCommit).expect("clear");
    assert!(
        a.metrics.commits.with_label_values(&["error"]).get() > refused_before,
        "the final revoke commit must have been refused; if it was not, the commit awaited above \
         was the final one, not an early one"
    );
    faults.latency = Duration::ZERO;
    sb.set_faults(&faults).expect("faults");
    let all: Vec<String> = first.iter().chain(&middle).chain(&later).cloned().collect();
    wait_all_accepted(&sb, &all, Duration::from_secs(120), |got| {
        format!("lost {} ids", missing(&all, got))
    })
    .await;
    let revokes = revokes(&[&a, &second]);
    a.stop().await;
    second.stop().await;
    assert_committed_to_end(b.bootstrap_servers(), &group, "events", 4);
    let dups = duplicates(&sb).await;
    // A hung request the revoke gave up on may still complete on the sandbox's side, and its
    // message is sent again by the next owner: at most one per partition per revoke.
    assert!(
        dups as u64 <= 4 * revokes,
        "{dups} duplicates for {revokes} revokes of a 4-request window"
    );
    sb.shutdown().await.expect("sandbox stops");
    EarlyCommit::Accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offset_reset_mid_stream_restarts_tracking_instead_of_wedging() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = broker("events", 1);
    let first = ids(300, "r-");
    let later = ids(300, "r2-");
    produce(b.bootstrap_servers(), "events", &records(&first, 1, "home"));
    let bridge = Bridge::start(&config_text(
        b.bootstrap_servers(),
        &sb.base_url(),
        "g-r",
        "",
        "",
    ));
    wait_until(Duration::from_secs(60), "the first 300", || {
        bridge.finished() >= 300
    })
    .await;
    // The broker answers the next fetch with OFFSET_OUT_OF_RANGE, as after an unclean leader
    // election or a log lost with its broker: librdkafka resets to the earliest offset, so
    // offsets go backwards within one assignment.
    b.inject_errors(
        rdkafka::types::RDKafkaApiKey::Fetch,
        rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE,
        1,
    )
    .expect("inject");
    produce(b.bootstrap_servers(), "events", &records(&later, 1, "home"));
    let all: Vec<String> = first.iter().chain(&later).cloned().collect();
    wait_all_accepted(&sb, &all, Duration::from_secs(60), |got| {
        format!("wedged: {} ids never delivered", missing(&all, got))
    })
    .await;
    let rewinds = bridge
        .metrics
        .partition_rewinds
        .with_label_values(&["events", "0"])
        .get();
    // The re-read messages count as new work: tracking restarted at the reset position, so
    // they are delivered again (same derived ids: MCM de-duplicates them) and committed.
    wait_until(Duration::from_secs(30), "the re-read messages", || {
        bridge.finished() >= 900
    })
    .await;
    bridge.stop().await;
    assert_eq!(rewinds, 1, "one reset, one rewind");
    assert_committed_to_end(b.bootstrap_servers(), "g-r", "events", 1);
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_circuit_recovers_after_the_session_was_lost_during_an_outage() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = broker("events", 2);
    let produced = ids(400, "o-");
    produce(
        b.bootstrap_servers(),
        "events",
        &records(&produced, 2, "home"),
    );
    let text = config_text(b.bootstrap_servers(), &sb.base_url(), "g-o", "", "")
        .replace("failure_threshold: 1000", "failure_threshold: 5");
    let mut faults = sb.faults();
    faults.fail_rate = 1.0; // MCM down from the start: the circuit opens, deliveries wait at it
    sb.set_faults(&faults).expect("faults");
    let bridge = Bridge::start(&text);
    wait_until(Duration::from_secs(30), "the circuit to open", || {
        bridge.metrics.circuit_state.get() != 0
    })
    .await;
    // The broker goes away for longer than the 6 s session: the assignment is lost, and every
    // delivery waiting at the circuit is cancelled. Nothing is left to probe MCM with.
    b.set_brokers_up(false).expect("down");
    wait_until(Duration::from_secs(30), "the session to be lost", || {
        bridge.metrics.rebalances.with_label_values(&["lost"]).get() > 0
    })
    .await;
    b.set_brokers_up(true).expect("up");
    faults.fail_rate = 0.0; // MCM is back too
    sb.set_faults(&faults).expect("faults");
    wait_all_accepted(&sb, &produced, Duration::from_secs(60), |got| {
        format!(
            "stuck with the circuit in state {}: {} of {} ids delivered \
             ({} assigned, {} taken, {} in flight, {} pauses)",
            bridge.metrics.circuit_state.get(),
            got.len(),
            produced.len(),
            bridge.health.assigned(),
            bridge
                .metrics
                .totals
                .consumed
                .load(std::sync::atomic::Ordering::Relaxed),
            bridge.metrics.in_flight_messages.get(),
            bridge.metrics.partition_pauses.get(),
        )
    })
    .await;
    bridge.stop().await;
    assert_committed_to_end(b.bootstrap_servers(), "g-o", "events", 2);
    sb.shutdown().await.expect("sandbox stops");
}

each_broker!(wrong_api_key_halts_without_dead_lettering_and_resumes_when_fixed);
async fn wrong_api_key_halts_without_dead_lettering_and_resumes_when_fixed(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    sb.set_api_key("a-different-key");
    let b = backend.broker("events", 2);
    let produced = ids(500, "f-");
    produce(
        b.bootstrap_servers(),
        "events",
        &records(&produced, 2, "home"),
    );

    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-f", "", ""));
    wait_until(Duration::from_secs(30), "the halt", || {
        bridge.metrics.halted.get() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        bridge.health.readiness().is_err(),
        "not ready while MCM rejects the key"
    );
    assert_eq!(
        bridge.dead_lettered(),
        0,
        "a configuration error never dead-letters the stream"
    );
    assert_eq!(bridge.delivered(), 0);
    let committed_during = committed(b.bootstrap_servers(), "g-f", "events", 2);
    assert!(
        committed_during.iter().all(|c| c.unwrap_or(0) == 0),
        "nothing committed past undelivered messages: {committed_during:?}"
    );

    sb.set_api_key(API_KEY); // the operator fixes the key
    wait_until(Duration::from_secs(60), "resume after the fix", || {
        bridge.finished() >= 500
    })
    .await;
    assert!(
        bridge.health.readiness().is_ok(),
        "{:?}",
        bridge.health.readiness()
    );
    assert_eq!(bridge.metrics.halted.get(), 0);
    bridge.stop().await;
    let got = accepted_set(&sb).await;
    assert!(produced.iter().all(|id| got.contains(id)));
    assert_committed_to_end(b.bootstrap_servers(), "g-f", "events", 2);
    sb.shutdown().await.expect("sandbox stops");
}

each_broker!(lag_metrics_match_broker_watermarks_and_committed_offsets);
async fn lag_metrics_match_broker_watermarks_and_committed_offsets(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    sb.set_api_key("not-yet"); // halts delivery: lag builds up and stays put
    let b = backend.broker("events", 2);
    let produced = ids(300, "l-");
    produce(
        b.bootstrap_servers(),
        "events",
        &records(&produced, 2, "home"),
    );
    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-l", "", ""));
    let gauge = |g: &prometheus::IntGaugeVec, p: i32| {
        g.with_label_values(&["events", &p.to_string()]).get()
    };
    let lag = |p: i32| gauge(&bridge.metrics.consumer_lag_messages, p);
    let lag_seconds = |p: i32| gauge(&bridge.metrics.consumer_lag_seconds, p);
    bridge
        .wait(Duration::from_secs(30), "lag sampled", || {
            lag(0) > 0 && lag(1) > 0
        })
        .await;
    let ends = end_offsets(b.bootstrap_servers(), "events", 2);
    let committed_now = committed(b.bootstrap_servers(), "g-l", "events", 2);
    for p in 0..2 {
        let expected = ends[p as usize] - committed_now[p as usize].unwrap_or(0);
        assert_eq!(
            lag(p),
            expected,
            "partition {p}: gauge vs high watermark − committed"
        );
    }
    // Producers keep writing while delivery is halted and every partition is paused: the lag
    // must follow the broker's end offsets, not freeze at what the last fetch saw.
    let more = ids(100, "l2-");
    produce(b.bootstrap_servers(), "events", &records(&more, 2, "home"));
    let ends = end_offsets(b.bootstrap_servers(), "events", 2);
    assert_eq!(ends.iter().sum::<i64>(), 400);
    bridge
        .wait(Duration::from_secs(30), "lag follows new messages", || {
            (0..2).all(|p| lag(p) == ends[p as usize] - committed_now[p as usize].unwrap_or(0))
        })
        .await;
    // Lag in seconds covers the messages the bridge has taken: the halt may pause a partition
    // before its first fetch (seen in CI), which then has backlog but nothing taken, and 0 here.
    bridge
        .wait(
            Duration::from_secs(10),
            "lag seconds grow while halted",
            || (0..2).any(|p| lag_seconds(p) >= 1),
        )
        .await;
    sb.set_api_key(API_KEY);
    bridge
        .wait(Duration::from_secs(60), "caught up", || {
            bridge.finished() >= 400
        })
        .await;
    bridge
        .wait(Duration::from_secs(30), "lag back to zero", || {
            lag(0) == 0 && lag(1) == 0
        })
        .await;
    bridge
        .wait(Duration::from_secs(10), "lag seconds back to zero", || {
            (0..2).all(|p| lag_seconds(p) == 0)
        })
        .await;
    let text = bridge.metrics.render();
    assert!(
        !text.contains("consumer_lag_messages{partition=\"0\",topic=\"events\"} -"),
        "never negative"
    );
    bridge.stop().await;
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_caps_requests_per_second() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = broker("events", 2);
    let produced = ids(600, "q-");
    produce(
        b.bootstrap_servers(),
        "events",
        &records(&produced, 2, "home"),
    );
    let bridge = Bridge::start(&config_text(
        b.bootstrap_servers(),
        &sb.base_url(),
        "g-q",
        "",
        "  rate_limit: 200",
    ));
    wait_until(Duration::from_secs(30), "first delivery", || {
        bridge.delivered() > 0
    })
    .await;
    let start = std::time::Instant::now();
    wait_until(Duration::from_secs(60), "all delivered", || {
        bridge.delivered() >= 600
    })
    .await;
    // A burst of one second's quota, then 200/s: the remaining ~400 need about two seconds.
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "quota exceeded: {:?}",
        start.elapsed()
    );
    bridge.stop().await;
    sb.shutdown().await.expect("sandbox stops");
}

/// The group refuses every commit (as it does while a KIP-848 member is fenced, or during a long
/// rebalance). Before, refused async commits counted as stored and delivery went on: a new owner
/// would have replayed everything since. Now a refused commit is seen, the partition stops taking
/// messages once it holds `max_uncommitted_per_partition` finished-but-uncommitted messages (and
/// intake stops altogether when no commit is confirmed for 5 commit intervals), and delivery
/// resumes — to the end, with nothing lost — once commits succeed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_commits_bound_what_a_new_owner_would_replay_and_delivery_resumes() {
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = broker("events", 1);
    let first = ids(20, "v-");
    let later = ids(600, "w-");
    let bound = 40;
    let text = config_text(
        b.bootstrap_servers(),
        &sb.base_url(),
        "g-bound",
        &format!("  max_in_flight_per_partition: 8\n  max_uncommitted_per_partition: {bound}"),
        "  max_in_flight: 8\n  adaptive_concurrency: false",
    );
    let bridge = Bridge::start(&text);
    produce(b.bootstrap_servers(), "events", &records(&first, 1, "home"));
    wait_all_accepted(&sb, &first, Duration::from_secs(60), |got| {
        format!("missing {}", missing(&first, got))
    })
    .await;
    wait_until(Duration::from_secs(30), "the first 20 committed", || {
        tokio::task::block_in_place(|| committed(b.bootstrap_servers(), "g-bound", "events", 1))
            == [Some(20)]
    })
    .await;

    b.inject_errors(
        RDKafkaApiKey::OffsetCommit,
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
        1_000_000,
    )
    .expect("inject");
    // Commits fail from here; the bridge learns it from its first refused commit, which needs a
    // few finished messages. The bound is about commits that keep failing, so the bulk arrives
    // once a refusal was seen (until then a commit in flight may still land, and the bridge
    // cannot tell; what finishes meanwhile is one commit round trip's worth).
    let (early, bulk) = later.split_at(5);
    produce(b.bootstrap_servers(), "events", &records(early, 1, "home"));
    bridge
        .wait(Duration::from_secs(30), "a refused commit", || {
            bridge.metrics.commits.with_label_values(&["error"]).get() >= 1
        })
        .await;
    produce(b.bootstrap_servers(), "events", &records(bulk, 1, "home"));
    bridge
        .wait(
            Duration::from_secs(30),
            "intake to stop at the bound",
            || {
                bridge.metrics.commits.with_label_values(&["error"]).get() >= 3
                    && bridge.metrics.partition_pauses.get() > 0
            },
        )
        .await;
    // Whatever is in flight when the partition pauses still completes; give it time to land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered_uncommitted = accepted_set(&sb).await.len() - first.len();
    assert_eq!(
        tokio::task::block_in_place(|| committed(b.bootstrap_servers(), "g-bound", "events", 1)),
        [Some(20)],
        "every commit refused"
    );
    // The bound, plus what was taken when it was crossed: the partition's in-flight window (8)
    // and the messages already taken behind it (twice that).
    assert!(
        delivered_uncommitted <= bound + 3 * 8,
        "{delivered_uncommitted} delivered while nothing could be committed (bound {bound})"
    );
    assert!(
        bridge.metrics.uncommitted_messages.get() > 0,
        "the gauge shows what a new owner would replay"
    );

    b.clear_errors(RDKafkaApiKey::OffsetCommit).expect("clear");
    wait_all_accepted(&sb, &later, Duration::from_secs(60), |got| {
        format!("not resumed: {} missing", missing(&later, got))
    })
    .await;
    wait_until(Duration::from_secs(30), "committed to the end", || {
        tokio::task::block_in_place(|| committed(b.bootstrap_servers(), "g-bound", "events", 1))
            == [Some(620)]
    })
    .await;
    assert_eq!(bridge.metrics.commits_stalled.get(), 0);
    bridge.stop().await;
    sb.shutdown().await.expect("sandbox stops");
}
