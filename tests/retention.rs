//! Loss past retention is never silent (issue 20 item 1), on Apache Kafka with a tiny retention:
//! the group is stopped, the broker deletes offsets it never processed, and the bridge that
//! resumes must count exactly those offsets in `mcm_bridge_messages_expired_total`, log the
//! range, and show the committed position below the log start in
//! `mcm_bridge_retention_headroom_messages` — while offsets that are merely absent (a
//! transaction's commit markers) are not counted.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::time::Duration;
use support::*;

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Produces one `home` event per id to partition 0 with the record timestamp `timestamp_ms`.
fn produce_at(bootstrap: &str, topic: &str, ids: &[String], timestamp_ms: i64) {
    let records: Vec<Record> = ids
        .iter()
        .map(|id| (0, None, Some(event(id, "home"))))
        .collect();
    support::produce_at(bootstrap, topic, &records, Some(timestamp_ms));
}

/// The partition's log start offset (what retention has not deleted yet).
fn log_start(bootstrap: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    c.fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks")
        .0
}

const DAY_MS: &str = "86400000";

/// `mcm_bridge_messages_expired_total` of events[0].
fn expired_of(m: &mcm_bridge::observe::metrics::Metrics) -> u64 {
    m.messages_expired.with_label_values(&["events", "0"]).get()
}

/// `mcm_bridge_retention_headroom_messages` of events[0].
fn headroom_of(m: &mcm_bridge::observe::metrics::Metrics) -> i64 {
    m.retention_headroom_messages
        .with_label_values(&["events", "0"])
        .get()
}

/// The topic `events`, one partition, kept a day; segment.ms 100 makes every produce a while
/// after the previous one start a new segment, so retention can delete the old ones (it never
/// deletes offsets of the active segment).
fn create_events_topic(kafka: &ApacheKafka) {
    kafka.create_topic_with(
        "events",
        1,
        &[("retention.ms", DAY_MS), ("segment.ms", "100")],
    );
}

/// Delivers `a` (produced now) with a bridge on `text` and waits until `group` committed it.
async fn deliver_and_commit(bridge: &Bridge, bootstrap: &str, group: &str, a: &[String]) {
    produce_at(bootstrap, "events", a, chrono_now_ms());
    let n = a.len() as u64;
    bridge
        .wait(Duration::from_secs(60), "the first batch finished", || {
            bridge.finished() >= n
        })
        .await;
    wait_until(Duration::from_secs(30), "the first batch committed", || {
        tokio::task::block_in_place(|| committed(bootstrap, group, "events", 1)) == [Some(n as i64)]
    })
    .await;
}

/// Shrinks retention to 2 s, then produces `c` with timestamps 10 minutes ahead (they outlive
/// the 2 s, and their append rolls the segment holding everything before them, so it can go),
/// waits until the log starts at `c`'s first offset, and restores a day's retention.
async fn expire_everything_before(kafka: &ApacheKafka, bootstrap: &str, c: &[String], start: i64) {
    kafka.alter_topic("events", &[("retention.ms", "2000"), ("segment.ms", "100")]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    produce_at(bootstrap, "events", c, chrono_now_ms() + 600_000);
    wait_until(
        Duration::from_secs(60),
        "retention to delete the old segments",
        || tokio::task::block_in_place(|| log_start(bootstrap, "events")) == start,
    )
    .await;
    kafka.alter_topic("events", &[("retention.ms", DAY_MS), ("segment.ms", "100")]);
}

async fn offsets_deleted_while_the_group_was_away_are_counted_logged_and_shown(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(protocol).start();
    let kafka = b.apache().expect("Apache Kafka");
    let bootstrap = b.bootstrap_servers().to_string();
    create_events_topic(kafka);
    let group = match protocol {
        Protocol::Classic => "g-exp-classic",
        Protocol::Consumer => "g-exp-consumer",
    };
    let text = config_text(&b, &sb.base_url(), group, "", "");

    // A: delivered and committed (offsets 0..100).
    let a = ids(100, "a-");
    let bridge = Bridge::start(&text);
    deliver_and_commit(&bridge, &bootstrap, group, &a).await;
    bridge.stop().await;

    // B (100..300) arrives while the group is away; retention deletes A and B, C (300..350)
    // stays.
    let lost = ids(200, "b-");
    produce_at(&bootstrap, "events", &lost, chrono_now_ms());
    let c = ids(50, "c-");
    expire_everything_before(kafka, &bootstrap, &c, 300).await;

    // The group comes back (MCM rejecting its key, so C waits): it resumes at the log start
    // (300) and finds 100..300 gone.
    sb.set_api_key("rotated-meanwhile");
    let bridge = Bridge::start(&text);
    let metrics = bridge.metrics.clone();
    let expired = || expired_of(&metrics);
    let headroom = || headroom_of(&metrics);
    bridge
        .wait(
            Duration::from_secs(60),
            "the skipped offsets to be counted",
            || expired() > 0,
        )
        .await;
    assert_eq!(expired(), 200, "exactly the deleted offsets 100..300");
    // The shipped alert fires on it, evaluated by a real Prometheus scraping this bridge: one
    // alert for the topic, labelled with the consumer group (joined from platform_info).
    if alerting::wanted() {
        let prom = alerting::Prometheus::start(&bridge.serve_metrics().await);
        prom.wait_firing(
            "McmBridgeEventsExpired",
            &[
                ("topic", "events"),
                ("group", group),
                ("severity", "critical"),
            ],
            Duration::from_secs(60),
        )
        .await;
    }
    let lines = log_lines_with(&[
        "deleted by the broker",
        "partition=events[0]",
        &format!("group={group}"),
    ]);
    assert_eq!(lines.len(), 1, "one error line for the loss: {lines:?}");
    assert!(
        lines[0].contains("ERROR")
            && lines[0].contains("from=100")
            && lines[0].contains("to=300")
            && lines[0].contains("lost=200"),
        "{}",
        lines[0]
    );

    // The key is fixed: C is delivered, the committed offset passes the log start again.
    sb.set_api_key(API_KEY);
    bridge
        .wait(Duration::from_secs(60), "C delivered", || {
            bridge.delivered() >= 50
        })
        .await;
    bridge
        .wait(Duration::from_secs(30), "headroom back above zero", || {
            headroom() == 50
        })
        .await;
    assert_eq!(
        bridge
            .metrics
            .topic_retention_seconds
            .with_label_values(&["events"])
            .get(),
        86_400
    );
    bridge.stop().await;

    // Accounting: A and C delivered, B never, and B is exactly what the counter says.
    let got = accepted_set(&sb).await;
    assert_eq!(missing(&a, &got) + missing(&c, &got), 0);
    assert_eq!(lost.iter().filter(|id| got.contains(*id)).count(), 0);
    assert_eq!(lost.len() as u64, expired());
    assert_eq!(
        committed(&bootstrap, group, "events", 1),
        [Some(350)],
        "committed to the end"
    );
    sb.shutdown().await.expect("sandbox stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_deleted_by_retention_are_counted_and_logged_classic_protocol() {
    if Backend::apache(Protocol::Classic).is_some() {
        offsets_deleted_while_the_group_was_away_are_counted_logged_and_shown(Protocol::Classic)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offsets_deleted_by_retention_are_counted_and_logged_consumer_protocol() {
    if Backend::apache(Protocol::Consumer).is_some() {
        offsets_deleted_while_the_group_was_away_are_counted_logged_and_shown(Protocol::Consumer)
            .await;
    }
}

/// A running bridge halted by a rejected key holds its committed offset while retention deletes
/// past it: the headroom gauge goes negative (the alertable moment), and once the key is fixed
/// the offsets it never took are counted as expired — exactly the events never delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn halted_bridge_shows_negative_headroom_then_counts_what_retention_took() {
    if Backend::apache(Protocol::Classic).is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(Protocol::Classic).start();
    let kafka = b.apache().expect("Apache Kafka");
    let bootstrap = b.bootstrap_servers().to_string();
    create_events_topic(kafka);
    // One request at a time: the halt holds only a few messages in memory, the rest stays in
    // Kafka, where retention can take it.
    let text = config_text(
        &b,
        &sb.base_url(),
        "g-halt",
        "",
        "  max_in_flight: 1\n  min_in_flight: 1\n  adaptive_concurrency: false",
    );
    let a = ids(100, "a-");
    let bridge = Bridge::start(&text);
    let metrics = bridge.metrics.clone();
    deliver_and_commit(&bridge, &bootstrap, "g-halt", &a).await;
    // The key is rotated at MCM: the bridge halts on B's first message.
    sb.set_api_key("rotated-meanwhile");
    // More than the halt can hold in memory (its budget plus the poll channel, a few hundred).
    let b_ids = ids(2_000, "b-");
    produce_at(&bootstrap, "events", &b_ids, chrono_now_ms());
    bridge
        .wait(Duration::from_secs(30), "the halt", || {
            metrics.halted.get() == 1
        })
        .await;
    let c = ids(50, "c-");
    expire_everything_before(kafka, &bootstrap, &c, 2_100).await;
    let headroom = || headroom_of(&metrics);
    bridge
        .wait(
            Duration::from_secs(30),
            "negative headroom while halted",
            || headroom() == 100 - 2_100,
        )
        .await;
    assert_eq!(
        expired_of(&metrics),
        0,
        "nothing skipped yet: the halted bridge has not read past its position"
    );
    if alerting::wanted() {
        let prom = alerting::Prometheus::start(&bridge.serve_metrics().await);
        prom.wait_firing(
            "McmBridgeRetentionExceeded",
            &[("topic", "events"), ("group", "g-halt")],
            Duration::from_secs(60),
        )
        .await;
    }

    sb.set_api_key(API_KEY);
    bridge
        .wait(Duration::from_secs(60), "C delivered", || {
            bridge.delivered() >= 100 + 50
        })
        .await;
    bridge
        .wait(Duration::from_secs(30), "headroom back above zero", || {
            headroom() == 50
        })
        .await;
    bridge.stop().await;
    let got = accepted_set(&sb).await;
    assert_eq!(missing(&a, &got) + missing(&c, &got), 0);
    let never_delivered = missing(&b_ids, &got) as u64;
    let expired = expired_of(&metrics);
    assert!(
        never_delivered > 0,
        "retention took part of B (the halt held only a few messages)"
    );
    assert_eq!(
        expired, never_delivered,
        "the counter is exactly the B events never delivered"
    );
    sb.shutdown().await.expect("sandbox stops");
}
