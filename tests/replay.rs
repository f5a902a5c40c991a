//! Issue 6: `replay-dlq` re-runs dead-lettered messages through a fixed mapping; what still fails
//! stays in the DLQ; a dry run changes nothing.

mod support;

use mcm_bridge::kafka::replay::{replay, ReplayOptions};
use mcm_bridge::observe::metrics::Metrics;
use mcm_bridge::pipeline::deliver::Deliverer;
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn payload(id: &str, kind: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"id": id, "kind": kind, "ts": chrono_now_ms() - 1000, "user": "u"}),
    )
    .expect("json")
}

each_broker!(replay_delivers_fixed_messages_and_keeps_failures_in_the_dlq);
async fn replay_delivers_fixed_messages_and_keeps_failures_in_the_dlq(backend: Backend) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = backend.broker("events", 1);
    b.create_topic("g-r.dlq", 1);
    let mut recs: Vec<Record> = Vec::new();
    for i in 0..5 {
        recs.push((0, None, Some(payload(&format!("ok-{i}"), "home"))));
    }
    for i in 0..10 {
        recs.push((
            0,
            Some(b"k".to_vec()),
            Some(payload(&format!("refund-{i}"), "refund")),
        ));
    }
    for _ in 0..3 {
        recs.push((0, None, Some(b"{broken".to_vec())));
    }
    produce(b.bootstrap_servers(), "events", &recs);
    let text = config_text(&b, &sb.base_url(), "g-r", "", "");
    let bridge = Bridge::start(&text);
    wait_until(Duration::from_secs(60), "first pass", || {
        bridge.finished() >= 18
    })
    .await;
    bridge.stop().await;
    assert_eq!(end_offsets(b.bootstrap_servers(), "g-r.dlq", 1), vec![13]);

    // The operator fixes the mapping: refunds are now sent (as HOME, for the test).
    let fixed = text.replace(
        "{field: kind, equals: home}",
        "{field: kind, in: [home, refund]}",
    );
    let (cfg, plan) = load(&fixed);
    let client = mcm_bridge::mcm::client::McmClient::new(&cfg.mcm).expect("client");
    let deliverer = Deliverer::new(client, &cfg.mcm, Arc::new(Metrics::new()));
    let mut opts = ReplayOptions {
        dlq_topic: "g-r.dlq".into(),
        since_ms: None,
        dry_run: true,
    };
    let dry = replay(&cfg, &plan, &deliverer, &opts)
        .await
        .expect("dry run");
    assert_eq!(
        (
            dry.read,
            dry.would_deliver,
            dry.still_failing,
            dry.delivered
        ),
        (13, 10, 3, 0)
    );
    assert_eq!(
        end_offsets(b.bootstrap_servers(), "g-r.dlq", 1),
        vec![13],
        "dry run appends nothing"
    );
    assert_eq!(sb.stats().await.accepted_total, 5, "dry run sends nothing");

    opts.dry_run = false;
    let real = replay(&cfg, &plan, &deliverer, &opts)
        .await
        .expect("replay");
    assert_eq!((real.read, real.delivered, real.still_failing), (13, 10, 3));
    assert_eq!(real.reasons.get("invalid_json"), Some(&3));
    let got = accepted_set(&sb).await;
    assert!((0..10).all(|i| got.contains(&format!("refund-{i}"))));
    // The 3 broken ones were appended again, with their origin and a replay count.
    let dlq = read_all(b.bootstrap_servers(), "g-r.dlq", 1);
    assert_eq!(dlq.len(), 16);
    for m in &dlq[13..] {
        let h = headers(m);
        assert_eq!(h["mcm.replay.count"], "1");
        assert_eq!(h["mcm.source.topic"], "events");
        assert_eq!(h["mcm.error.reason"], "invalid_json");
        assert!(h["mcm.source.offset"].parse::<i64>().expect("offset") >= 15);
    }

    // A second replay resumes where the first stopped: only the re-appended three.
    let again = replay(&cfg, &plan, &deliverer, &opts)
        .await
        .expect("replay again");
    assert_eq!(
        (again.read, again.delivered, again.still_failing),
        (3, 0, 3)
    );
    let dlq = read_all(b.bootstrap_servers(), "g-r.dlq", 1);
    assert_eq!(headers(&dlq[18])["mcm.replay.count"], "2");
    sb.shutdown().await.expect("sandbox stops");
}
