//! Issue 4 (g): in `per_key` mode, a key whose events keep failing does not block the other keys
//! of its partition, and each key's events reach MCM in offset order. The sink is wiremock: it
//! answers 503 for the failing user and 200 for everyone else.

mod support;

use std::collections::HashMap;
use std::time::Duration;
use support::*;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn payload(id: &str, user: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id, "kind": "home", "ts": chrono_now_ms() - 1000, "user": user
    }))
    .expect("json")
}

each_broker!(failing_key_does_not_block_other_keys_and_keys_stay_in_order);
async fn failing_key_does_not_block_other_keys_and_keys_stay_in_order(backend: Backend) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("\"user_id\":\"stuck\""))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .with_priority(2)
        .mount(&server)
        .await;
    let b = backend.broker("events", 1);
    b.create_topic("g-g.dlq", 1);
    let mut recs: Vec<Record> = Vec::new();
    let mut good = 0;
    for i in 0..600 {
        let (key, user) = if i % 10 == 0 {
            ("stuck".to_string(), "stuck".to_string())
        } else {
            (format!("k{}", i % 7), format!("user-k{}", i % 7))
        };
        if key != "stuck" {
            good += 1;
        }
        recs.push((
            0,
            Some(key.into_bytes()),
            Some(payload(&format!("g-{i:04}"), &user)),
        ));
    }
    produce(b.bootstrap_servers(), "events", &recs);
    // 5 attempts (~150 ms of backoff) per stuck event; its 60 events run one after another.
    let text = config_text(&b, &server.uri(), "g-g", "  ordering: per_key", "")
        .replace("max_attempts: 50", "max_attempts: 5");
    let bridge = Bridge::start(&text);

    wait_until(Duration::from_secs(60), "all good keys delivered", || {
        bridge.delivered() >= good
    })
    .await;
    // The stuck key is still retrying (its events go one by one), yet every other
    // key of the same partition got through.
    assert!(
        bridge.dead_lettered() < 60,
        "the stuck key's events must still be in retry when the others are done"
    );
    wait_until(Duration::from_secs(120), "stuck key dead-lettered", || {
        bridge.finished() >= 600
    })
    .await;
    assert_eq!(bridge.dead_lettered(), 60);
    bridge.stop().await;

    // Per key, ids arrived in offset (= id) order.
    let mut per_user: HashMap<String, Vec<String>> = HashMap::new();
    for r in server.received_requests().await.unwrap_or_default() {
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json body");
        let user = v["user_id"].as_str().unwrap_or_default().to_string();
        if user == "stuck" {
            continue;
        }
        per_user
            .entry(user)
            .or_default()
            .push(v["id"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(per_user.len(), 7);
    for (user, ids) in per_user {
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "events of {user} completed out of order");
    }
    assert_eq!(
        committed(b.bootstrap_servers(), "g-g", "events", 1),
        vec![Some(600)]
    );
}
