//! A message waiting out a retry backoff holds no request slot (the coordinator parks it), and a
//! parked message is never committed past: on shutdown it stays unfinished, the bridge stops at
//! once instead of waiting for the backoff, and the next start delivers it.
//!
//! The sink is wiremock: it answers 500 to the first request for a few chosen event ids and 200
//! to everything else, and its request log gives the order in which events reached "MCM".

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::*;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn payload(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id, "kind": "home", "ts": chrono_now_ms() - 1000, "user": "u-1"
    }))
    .expect("json")
}

fn id(i: usize) -> String {
    format!("p-{i:04}")
}

/// A sink answering 500 to the first request for each of `failing_once`, 200 otherwise.
async fn sink(failing_once: &[String]) -> MockServer {
    let server = MockServer::start().await;
    for id in failing_once {
        Mock::given(method("POST"))
            .and(body_string_contains(format!("\"id\":\"{id}\"")))
            .respond_with(ResponseTemplate::new(500))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .with_priority(2)
        .mount(&server)
        .await;
    server
}

/// Event ids in the order the sink received them.
async fn request_order(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json body");
            v["id"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

fn produce_events(bootstrap: &str, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(id).collect();
    let recs: Vec<Record> = ids.iter().map(|i| (0, None, Some(payload(i)))).collect();
    produce(bootstrap, "events", &recs);
    ids
}

/// `max_in_flight` requests, and a fixed backoff before every retry.
fn config(bootstrap: &str, sink: &str, group: &str, max_in_flight: usize, backoff: &str) -> String {
    config_text(
        bootstrap,
        sink,
        group,
        "",
        &format!("  max_in_flight: {max_in_flight}\n  adaptive_concurrency: false"),
    )
    .replace(
        "initial_backoff: 10ms",
        &format!("initial_backoff: {backoff}"),
    )
    .replace("max_backoff: 200ms", &format!("max_backoff: {backoff}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_waiting_out_a_backoff_hold_no_request_slot() {
    // 10 of 200 events fail once; each then waits 5 s before its retry. With 4 request slots,
    // a delivery that slept through its backoff in its slot would block all four slots after
    // the fourth failure (offset 60), and retries would reach the sink before the healthy
    // events after it.
    let failing: Vec<String> = (0..10).map(|k| id(k * 20 + 5)).collect();
    let server = sink(&failing).await;
    let b = broker("events", 1);
    b.create_topic("park-a.dlq", 1).expect("dlq topic");
    let ids = produce_events(b.bootstrap_servers(), 200);
    let bridge = Bridge::start(&config(
        b.bootstrap_servers(),
        &server.uri(),
        "park-a",
        4,
        "5s",
    ));

    wait_until(Duration::from_secs(90), "all 200 delivered", || {
        bridge.delivered() >= 200
    })
    .await;
    bridge.stop().await;

    let order = request_order(&server).await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in &order {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    for id in &ids {
        let expected = if failing.contains(id) { 2 } else { 1 };
        assert_eq!(seen.get(id.as_str()), Some(&expected), "requests for {id}");
    }
    // Every healthy event went out before the first retry was due.
    let first_retry = order
        .iter()
        .enumerate()
        .position(|(i, id)| failing.contains(id) && order[..i].contains(id))
        .expect("retries happened");
    let healthy_after_retry = order[first_retry..]
        .iter()
        .filter(|id| !failing.contains(id))
        .count();
    assert_eq!(
        healthy_after_retry, 0,
        "healthy events waited behind sleeping retries: {order:?}"
    );
    assert_eq!(
        committed(b.bootstrap_servers(), "park-a", "events", 1),
        vec![Some(200)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parked_message_is_not_committed_past_and_shutdown_does_not_wait_for_it() {
    let failing = vec![id(10)];
    let server = sink(&failing).await;
    let b = broker("events", 1);
    b.create_topic("park-b.dlq", 1).expect("dlq topic");
    let ids = produce_events(b.bootstrap_servers(), 100);

    // A 60 s backoff: the retry of p-0010 cannot happen while this bridge runs.
    let bridge = Bridge::start(&config(
        b.bootstrap_servers(),
        &server.uri(),
        "park-b",
        8,
        "60s",
    ));
    wait_until(
        Duration::from_secs(60),
        "the 99 healthy events delivered",
        || bridge.delivered() >= 99,
    )
    .await;
    let parked = bridge.metrics.in_flight_messages.get();
    assert_eq!(parked, 1, "p-0010 waits, parked, counted in flight");
    assert_eq!(bridge.metrics.retries_waiting.get(), 1);
    let stopping = Instant::now();
    bridge.stop().await;
    let stop_took = stopping.elapsed();
    // The drain has nothing on the wire to wait for; a parked message does not hold it up
    // until the 3 s drain timeout (let alone its 60 s backoff).
    assert!(
        stop_took < Duration::from_secs(3),
        "shutdown waited {stop_took:?} for a parked retry"
    );
    assert_eq!(
        committed(b.bootstrap_servers(), "park-b", "events", 1),
        vec![Some(10)],
        "the watermark stops at the parked message"
    );

    // The next start reads from offset 10 again and delivers p-0010 (the sink now accepts it).
    let bridge = Bridge::start(&config(
        b.bootstrap_servers(),
        &server.uri(),
        "park-b",
        8,
        "10ms",
    ));
    wait_until(
        Duration::from_secs(60),
        "the re-read events delivered",
        || bridge.delivered() >= 90,
    )
    .await;
    bridge.stop().await;
    let order = request_order(&server).await;
    for id in &ids {
        assert!(order.contains(id), "{id} never reached the sink");
    }
    assert_eq!(
        order.iter().filter(|i| *i == &failing[0]).count(),
        2,
        "p-0010: the refused attempt, then the delivery after the restart"
    );
    assert_eq!(
        committed(b.bootstrap_servers(), "park-b", "events", 1),
        vec![Some(100)]
    );
}
