//! Loss past retention is never silent (issue 20 item 1), on Apache Kafka with a tiny retention:
//! the group is stopped, the broker deletes offsets it never processed, and the bridge that
//! resumes must count exactly those offsets in `mcm_bridge_messages_expired_total`, log the
//! range, and show the committed position below the log start in
//! `mcm_bridge_retention_headroom_messages` — while offsets that are merely absent (a
//! transaction's commit markers) are not counted.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;
use support::*;

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Produces one `home` event per id to partition 0 with the record timestamp `timestamp_ms`.
fn produce_at(bootstrap: &str, topic: &str, ids: &[String], timestamp_ms: i64) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for id in ids {
        let payload = event(id, "home");
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(0)
            .payload(payload.as_slice())
            .timestamp(timestamp_ms);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    p.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
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

async fn offsets_deleted_while_the_group_was_away_are_counted_logged_and_shown(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(protocol).start();
    let kafka = b.apache().expect("Apache Kafka");
    let bootstrap = b.bootstrap_servers().to_string();
    // segment.ms 100: every produce a while after the previous one starts a new segment, so
    // retention can delete the old ones (it never deletes offsets from the active segment).
    kafka.create_topic_with(
        "events",
        1,
        &[("retention.ms", DAY_MS), ("segment.ms", "100")],
    );
    let group = match protocol {
        Protocol::Classic => "g-exp-classic",
        Protocol::Consumer => "g-exp-consumer",
    };
    let text = config_text(&b, &sb.base_url(), group, "", "");
    let now = chrono_now_ms;

    // A: delivered and committed (offsets 0..100).
    let a = ids(100, "a-");
    produce_at(&bootstrap, "events", &a, now());
    let bridge = Bridge::start(&text);
    bridge
        .wait(Duration::from_secs(60), "A finished", || {
            bridge.finished() >= 100
        })
        .await;
    wait_until(Duration::from_secs(30), "A committed", || {
        tokio::task::block_in_place(|| committed(&bootstrap, group, "events", 1)) == [Some(100)]
    })
    .await;
    bridge.stop().await;

    // B (100..300) arrives while the group is away, and retention shrinks to 2 s.
    let lost = ids(200, "b-");
    produce_at(&bootstrap, "events", &lost, now());
    kafka.alter_topic("events", &[("retention.ms", "2000"), ("segment.ms", "100")]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // C (300..350) carries timestamps 10 minutes ahead: it outlives the 2 s retention, and its
    // append rolls the segment that holds B, so B can go.
    let c = ids(50, "c-");
    produce_at(&bootstrap, "events", &c, now() + 600_000);
    wait_until(
        Duration::from_secs(60),
        "retention to delete A and B",
        || tokio::task::block_in_place(|| log_start(&bootstrap, "events")) == 300,
    )
    .await;
    kafka.alter_topic("events", &[("retention.ms", DAY_MS), ("segment.ms", "100")]);

    // The group comes back (MCM rejecting its key, so C waits): it resumes at the log start
    // (300) and finds 100..300 gone.
    sb.set_api_key("rotated-meanwhile");
    let bridge = Bridge::start(&text);
    let metrics = bridge.metrics.clone();
    let expired = || {
        metrics
            .messages_expired
            .with_label_values(&["events", "0"])
            .get()
    };
    let headroom = || {
        metrics
            .retention_headroom_messages
            .with_label_values(&["events", "0"])
            .get()
    };
    bridge
        .wait(
            Duration::from_secs(60),
            "the skipped offsets to be counted",
            || expired() > 0,
        )
        .await;
    assert_eq!(expired(), 200, "exactly the deleted offsets 100..300");
    // The shipped alert fires on it, evaluated by a real Prometheus scraping this bridge.
    if alerting::wanted() {
        let prom = alerting::Prometheus::start(&bridge.serve_metrics().await);
        prom.wait_firing(
            "McmBridgeEventsExpired",
            &[
                ("topic", "events"),
                ("partition", "0"),
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
    kafka.create_topic_with(
        "events",
        1,
        &[("retention.ms", DAY_MS), ("segment.ms", "100")],
    );
    // One request at a time: the halt holds only a few messages in memory, the rest stays in
    // Kafka, where retention can take it.
    let text = config_text(
        &b,
        &sb.base_url(),
        "g-halt",
        "",
        "  max_in_flight: 1\n  min_in_flight: 1\n  adaptive_concurrency: false",
    );
    let now = chrono_now_ms;
    let a = ids(100, "a-");
    produce_at(&bootstrap, "events", &a, now());
    let bridge = Bridge::start(&text);
    let metrics = bridge.metrics.clone();
    bridge
        .wait(Duration::from_secs(60), "A finished", || {
            bridge.finished() >= 100
        })
        .await;
    wait_until(Duration::from_secs(30), "A committed", || {
        tokio::task::block_in_place(|| committed(&bootstrap, "g-halt", "events", 1)) == [Some(100)]
    })
    .await;
    // The key is rotated at MCM: the bridge halts on B's first message.
    sb.set_api_key("rotated-meanwhile");
    // More than the halt can hold in memory (its budget plus the poll channel, a few hundred).
    let b_ids = ids(2_000, "b-");
    produce_at(&bootstrap, "events", &b_ids, now());
    bridge
        .wait(Duration::from_secs(30), "the halt", || {
            metrics.halted.get() == 1
        })
        .await;
    kafka.alter_topic("events", &[("retention.ms", "2000"), ("segment.ms", "100")]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let c = ids(50, "c-");
    produce_at(&bootstrap, "events", &c, now() + 600_000);
    wait_until(
        Duration::from_secs(60),
        "retention to delete A and B",
        || tokio::task::block_in_place(|| log_start(&bootstrap, "events")) == 2_100,
    )
    .await;
    kafka.alter_topic("events", &[("retention.ms", DAY_MS), ("segment.ms", "100")]);
    let headroom = || {
        metrics
            .retention_headroom_messages
            .with_label_values(&["events", "0"])
            .get()
    };
    bridge
        .wait(
            Duration::from_secs(30),
            "negative headroom while halted",
            || headroom() == 100 - 2_100,
        )
        .await;
    assert_eq!(
        metrics
            .messages_expired
            .with_label_values(&["events", "0"])
            .get(),
        0,
        "nothing skipped yet: the halted bridge has not read past its position"
    );
    if alerting::wanted() {
        let prom = alerting::Prometheus::start(&bridge.serve_metrics().await);
        prom.wait_firing(
            "McmBridgeRetentionExceeded",
            &[("topic", "events"), ("partition", "0")],
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
    let expired = metrics
        .messages_expired
        .with_label_values(&["events", "0"])
        .get();
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
