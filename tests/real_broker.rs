//! Behaviours of the real broker that no stand-in has (issue 22 item 3), on Apache Kafka with
//! both consumer group protocols: a transactional upstream producer (markers and aborted batches
//! leave offset gaps), a compacted topic, a topic created after start that matches a `pattern:`
//! block, a topic deleted while assigned, and a broker restart that moves the group coordinator.
//! Each test accounts for every id and checks the committed offsets against the end offsets.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::Duration;
use support::*;

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Runs `$body(protocol)` on Apache Kafka once per consumer group protocol.
macro_rules! each_protocol {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn classic() {
                if Backend::apache(Protocol::Classic).is_some() {
                    super::$name(Protocol::Classic).await
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn consumer() {
                if Backend::apache(Protocol::Consumer).is_some() {
                    super::$name(Protocol::Consumer).await
                }
            }
        }
    };
}

fn expired_total(bridge: &Bridge) -> u64 {
    bridge
        .metrics
        .messages_expired
        .with_label_values(&["events", "0"])
        .get()
}

each_protocol!(transactional_producer_markers_and_aborts_are_passed_and_lag_returns_to_zero);
/// A producer writing in transactions: committed, aborted, committed. The bridge reads with
/// `read_committed` (librdkafka's default): it delivers the committed events only, and commits
/// past the last commit marker, so the lag returns to 0 instead of sticking at 1.
async fn transactional_producer_markers_and_aborts_are_passed_and_lag_returns_to_zero(
    protocol: Protocol,
) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(protocol).broker("events", 1);
    let bootstrap = b.bootstrap_servers().to_string();
    let committed_ids = ids(30, "t-");
    let aborted_ids = ids(10, "x-");
    tokio::task::spawn_blocking({
        let bootstrap = bootstrap.clone();
        let (c, a) = (committed_ids.clone(), aborted_ids.clone());
        move || {
            let p: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("transactional.id", "shop-orders-tx")
                .create()
                .expect("transactional producer");
            p.init_transactions(Duration::from_secs(30)).expect("init");
            let send = |ids: &[String]| {
                for id in ids {
                    let payload = event(id, "home");
                    p.send(
                        BaseRecord::<'_, [u8], [u8]>::to("events")
                            .partition(0)
                            .payload(&payload),
                    )
                    .map_err(|(e, _)| e)
                    .expect("send");
                }
            };
            p.begin_transaction().expect("begin");
            send(&c[..15]);
            p.commit_transaction(Duration::from_secs(30))
                .expect("commit");
            p.begin_transaction().expect("begin");
            send(&a);
            p.flush(Duration::from_secs(30)).expect("flush");
            p.abort_transaction(Duration::from_secs(30)).expect("abort");
            p.begin_transaction().expect("begin");
            send(&c[15..]);
            p.commit_transaction(Duration::from_secs(30))
                .expect("commit");
        }
    })
    .await
    .expect("producer thread");
    // 15 records, a marker, 10 aborted records, a marker, 15 records, a marker.
    let end = end_offsets(&bootstrap, "events", 1)[0];
    assert_eq!(end, 43);

    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-tx", "", ""));
    wait_all_accepted(&sb, &committed_ids, Duration::from_secs(60), |got| {
        format!("missing {} committed ids", missing(&committed_ids, got))
    })
    .await;
    let lag = || {
        bridge
            .metrics
            .consumer_lag_messages
            .with_label_values(&["events", "0"])
            .get()
    };
    bridge
        .wait(
            Duration::from_secs(30),
            "lag back to 0 past the last marker",
            || {
                lag() == 0
                    && tokio::task::block_in_place(|| committed(&bootstrap, "g-tx", "events", 1))
                        == [Some(end)]
            },
        )
        .await;
    assert_eq!(
        expired_total(&bridge),
        0,
        "markers and aborts are not losses"
    );
    bridge.stop().await;
    let got = accepted_set(&sb).await;
    assert_eq!(
        aborted_ids.iter().filter(|id| got.contains(*id)).count(),
        0,
        "aborted events are never delivered"
    );
    assert_eq!(got.len(), committed_ids.len());
    sb.shutdown().await.expect("sandbox stops");
}

/// The mapping of [`TEST_TOPICS`] for other topic blocks.
fn block(route: &str) -> String {
    format!(
        r#"  - {route}
    on_no_match: dlq
    fields:
      id: {{path: id}}
      timestamp: {{path: ts, transform: epoch_millis}}
      channel_type: SITE
      user_id: {{path: user}}
    rules:
      - event_type: HOME
"#
    )
}

each_protocol!(compacted_topic_delivers_the_surviving_records_and_commits_to_the_end);
/// A compacted topic: the cleaner has removed overwritten records, so the log has holes above
/// its start. The bridge delivers what survived, commits the end offset, and counts no loss.
async fn compacted_topic_delivers_the_surviving_records_and_commits_to_the_end(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(protocol).start();
    let kafka = b.apache().expect("Apache Kafka");
    let bootstrap = b.bootstrap_servers().to_string();
    kafka.create_topic_with(
        "events",
        1,
        &[
            ("cleanup.policy", "compact"),
            ("segment.ms", "100"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "0"),
        ],
    );
    // Three rounds over the same 50 keys (a product catalogue being updated); only the last
    // round's records survive compaction. Ids are unique per round.
    let mut last_round = Vec::new();
    for round in 0..3 {
        let round_ids = ids(50, &format!("k{round}-"));
        let recs: Vec<Record> = round_ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    0,
                    Some(format!("key-{i}").into_bytes()),
                    Some(event(id, "home")),
                )
            })
            .collect();
        produce(&bootstrap, "events", &recs);
        tokio::time::sleep(Duration::from_millis(300)).await;
        last_round = round_ids;
    }
    // One more record rolls the segment that holds the last round, so it can be cleaned.
    produce(
        &bootstrap,
        "events",
        &[(0, Some(b"roll".to_vec()), Some(event("roll", "home")))],
    );
    let end = end_offsets(&bootstrap, "events", 1)[0];
    assert_eq!(end, 151);
    wait_until(Duration::from_secs(60), "the cleaner to compact", || {
        tokio::task::block_in_place(|| read_all(&bootstrap, "events", 1).len()) <= 51
    })
    .await;

    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-compact", "", ""));
    let mut want = last_round.clone();
    want.push("roll".into());
    wait_all_accepted(&sb, &want, Duration::from_secs(60), |got| {
        format!("missing {} surviving ids", missing(&want, got))
    })
    .await;
    wait_until(Duration::from_secs(30), "committed to the end", || {
        tokio::task::block_in_place(|| committed(&bootstrap, "g-compact", "events", 1))
            == [Some(end)]
    })
    .await;
    assert_eq!(expired_total(&bridge), 0, "compaction is not a loss");
    bridge.stop().await;
    let got = accepted_set(&sb).await;
    assert_eq!(got.len(), want.len(), "only the survivors: {}", got.len());
    sb.shutdown().await.expect("sandbox stops");
}

each_protocol!(topic_created_after_start_that_matches_a_pattern_is_consumed);
/// A `pattern:` block subscribes before any matching topic exists; a topic created later that
/// matches is picked up (metadata refresh under classic, the broker's regex under KIP-848).
async fn topic_created_after_start_that_matches_a_pattern_is_consumed(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(protocol).broker("events", 1);
    let kafka = b.apache().expect("Apache Kafka");
    let bootstrap = b.bootstrap_servers().to_string();
    let topics = format!(
        "topics:\n{}{}",
        block("topic: events"),
        block(r"pattern: 'shop\..*'")
    );
    let bridge = Bridge::start(&config_text_with_topics(
        &b,
        &sb.base_url(),
        "g-pattern",
        "",
        "",
        &topics,
    ));
    let first = ids(50, "e-");
    produce(
        &bootstrap,
        "events",
        &first
            .iter()
            .map(|id| (0, None, Some(event(id, "home"))))
            .collect::<Vec<_>>(),
    );
    wait_all_accepted(&sb, &first, Duration::from_secs(60), |got| {
        format!("missing {}", missing(&first, got))
    })
    .await;

    kafka.create_topic_with("shop.late", 2, &[]);
    kafka.create_topic_with("shopping.other", 1, &[]); // `shop\.` does not match it
    let late = ids(200, "late-");
    let recs: Vec<Record> = late
        .iter()
        .enumerate()
        .map(|(i, id)| ((i % 2) as i32, None, Some(event(id, "home"))))
        .collect();
    produce(&bootstrap, "shop.late", &recs);
    produce(
        &bootstrap,
        "shopping.other",
        &[(0, None, Some(event("other-0", "home")))],
    );
    wait_all_accepted(&sb, &late, Duration::from_secs(90), |got| {
        format!(
            "the new topic was not consumed: {} of {} missing ({} partitions assigned)",
            missing(&late, got),
            late.len(),
            bridge.health.assigned()
        )
    })
    .await;
    wait_until(
        Duration::from_secs(30),
        "shop.late committed to the end",
        || {
            tokio::task::block_in_place(|| committed(&bootstrap, "g-pattern", "shop.late", 2))
                == [Some(100), Some(100)]
        },
    )
    .await;
    assert_eq!(
        bridge.health.assigned(),
        3,
        "events[0] and shop.late[0,1], not shopping.other"
    );
    bridge.stop().await;
    assert!(!accepted_set(&sb).await.contains("other-0"));
    sb.shutdown().await.expect("sandbox stops");
}

each_protocol!(topic_deleted_while_assigned_does_not_stall_the_others_or_shutdown);
/// An operator deletes one of the subscribed topics while the bridge owns its partitions: the
/// bridge gives them up, keeps delivering the other topic, and still shuts down cleanly.
async fn topic_deleted_while_assigned_does_not_stall_the_others_or_shutdown(protocol: Protocol) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = Backend::Apache(protocol).broker("events", 2);
    let kafka = b.apache().expect("Apache Kafka");
    let bootstrap = b.bootstrap_servers().to_string();
    kafka.create_topic_with("retired", 2, &[]);
    let topics = format!(
        "topics:\n{}{}",
        block("topic: events"),
        block("topic: retired")
    );
    let bridge = Bridge::start(&config_text_with_topics(
        &b,
        &sb.base_url(),
        "g-deleted",
        "",
        "",
        &topics,
    ));
    let recs = |ids: &[String]| -> Vec<Record> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| ((i % 2) as i32, None, Some(event(id, "home"))))
            .collect()
    };
    let before = ids(100, "b-");
    let retired = ids(100, "r-");
    produce(&bootstrap, "events", &recs(&before));
    produce(&bootstrap, "retired", &recs(&retired));
    let all: Vec<String> = before.iter().chain(&retired).cloned().collect();
    wait_all_accepted(&sb, &all, Duration::from_secs(60), |got| {
        format!("missing {}", missing(&all, got))
    })
    .await;
    bridge
        .wait(Duration::from_secs(30), "4 partitions assigned", || {
            bridge.health.assigned() == 4
        })
        .await;

    kafka.delete_topic("retired");
    bridge
        .wait(
            Duration::from_secs(90),
            "the deleted topic's partitions given up",
            || bridge.health.assigned() == 2,
        )
        .await;
    let after = ids(200, "a-");
    produce(&bootstrap, "events", &recs(&after));
    wait_all_accepted(&sb, &after, Duration::from_secs(60), |got| {
        format!("the other topic stalled: {} missing", missing(&after, got))
    })
    .await;
    wait_until(
        Duration::from_secs(30),
        "events committed to the end",
        || {
            tokio::task::block_in_place(|| committed(&bootstrap, "g-deleted", "events", 2))
                == [Some(150), Some(150)]
        },
    )
    .await;
    let rendered = bridge.metrics.render();
    assert!(
        !rendered.contains("consumer_lag_messages{partition=\"0\",topic=\"retired\"}"),
        "no lag series left for the deleted topic"
    );
    let exit = bridge.stop().await;
    assert_eq!(exit, mcm_bridge::pipeline::coordinator::Exit::Shutdown);
    sb.shutdown().await.expect("sandbox stops");
}

/// Three brokers; the one that coordinates the bridge's group is SIGKILLed mid-stream, so the
/// coordinator moves (offsets topic replicated 3 times) while partition leaders move too. The
/// bridge keeps delivering and committing through the new coordinator; the killed broker comes
/// back on its data. Every id is delivered; the group commits to the end. Both protocols run on
/// one cluster, one after the other (a 3-node cluster per protocol at once is too much for CI's
/// 2 cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_group_coordinator_broker_loses_nothing() {
    if Backend::apache(Protocol::Classic).is_none() {
        return;
    }
    let mut b = Backend::apache_with(
        Protocol::Classic,
        &KafkaOptions {
            brokers: 3,
            ..KafkaOptions::default()
        },
    );
    for protocol in [Protocol::Classic, Protocol::Consumer] {
        b.protocol = protocol;
        coordinator_killed_mid_stream(&b).await;
    }
}

async fn coordinator_killed_mid_stream(b: &TestBroker) {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let mut faults = sb.faults();
    faults.latency = Duration::from_millis(5); // still delivering when the broker dies
    sb.set_faults(&faults).expect("faults");
    let kafka = b.apache().expect("Apache Kafka");
    let bootstrap = b.bootstrap_servers().to_string();
    let (topic, group) = match b.protocol {
        Protocol::Classic => ("events", "g-coordinator-classic"),
        Protocol::Consumer => ("events2", "g-coordinator-consumer"),
    };
    kafka.create_topic_with(topic, 4, &[]);
    let all = ids(4_500, &format!("{group}-"));
    let recs = |ids: &[String]| -> Vec<Record> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| ((i % 4) as i32, None, Some(event(id, "home"))))
            .collect()
    };
    produce(&bootstrap, topic, &recs(&all[..1_500]));
    let topics = format!("topics:\n{}", block(&format!("topic: {topic}")));
    let bridge = Bridge::start(&config_text_with_topics(
        b,
        &sb.base_url(),
        group,
        "",
        "  max_in_flight: 16",
        &topics,
    ));
    bridge
        .wait(Duration::from_secs(60), "delivery under way", || {
            bridge.finished() >= 300
        })
        .await;
    let coordinator = tokio::task::block_in_place(|| b.group_coordinator(group))
        .expect("the group has a coordinator");
    kafka.kill(Some(coordinator));
    produce(&bootstrap, topic, &recs(&all[1_500..3_000]));
    wait_all_accepted(&sb, &all[..3_000], Duration::from_secs(120), |got| {
        format!(
            "with broker {coordinator} (the coordinator) down: {} of 3000 missing",
            missing(&all[..3_000], got)
        )
    })
    .await;
    let moved = tokio::task::block_in_place(|| b.group_coordinator(group));
    assert!(
        moved.is_some_and(|n| n != coordinator),
        "the coordinator moved off the killed broker: {moved:?}"
    );
    tokio::task::block_in_place(|| kafka.start_again(Some(coordinator)));
    produce(&bootstrap, topic, &recs(&all[3_000..]));
    wait_all_accepted(&sb, &all, Duration::from_secs(120), |got| {
        format!("after the restart: {} missing", missing(&all, got))
    })
    .await;
    wait_until(Duration::from_secs(60), "committed to the end", || {
        let ends = tokio::task::block_in_place(|| end_offsets(&bootstrap, topic, 4));
        let done = tokio::task::block_in_place(|| committed(&bootstrap, group, topic, 4));
        done == ends.iter().map(|e| Some(*e)).collect::<Vec<_>>()
    })
    .await;
    bridge.stop().await;
    let got = sb.accepted_ids().await.expect("record");
    let dups: usize = counts(&got).values().map(|n| n - 1).sum();
    eprintln!(
        "{:?}: coordinator {coordinator} killed and restarted, {dups} duplicate deliveries",
        b.protocol
    );
    sb.shutdown().await.expect("sandbox stops");
}

/// Issue 21 item 5: a dead-letter topic that does not exist (Apache Kafka does not create topics
/// here, as on most production clusters) holds the dead letter — its offset and everything after
/// it uncommitted, not ready, one error that says what to fix — instead of retrying it every
/// second for ever; once the operator creates the topic, the next probe writes it and
/// everything is committed. The DLQ producer does not depend on the group protocol: classic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_dead_letter_topic_holds_the_dead_letter_until_it_is_created() {
    let Some(backend) = Backend::apache(Protocol::Classic) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = backend.broker("events", 1);
    let before = ids(10, "nodlq-a-");
    let after = ids(10, "nodlq-b-");
    let mut records: Vec<Record> = before
        .iter()
        .map(|id| (0, None, Some(event(id, "home"))))
        .collect();
    records.push((0, None, Some(b"{not json".to_vec()))); // offset 10: a dead letter
    records.extend(after.iter().map(|id| (0, None, Some(event(id, "home")))));
    produce(b.bootstrap_servers(), "events", &records);

    let bridge = Bridge::start(&config_text(&b, &sb.base_url(), "g-nodlq", "", ""));
    bridge
        .wait(Duration::from_secs(120), "the dead letter held", || {
            bridge.metrics.dead_letters_held.get() == 1
        })
        .await;
    bridge
        .wait(Duration::from_secs(60), "the watermark committed", || {
            committed(b.bootstrap_servers(), "g-nodlq", "events", 1) == [Some(10)]
        })
        .await;
    assert_eq!(bridge.metrics.halted.get(), 1);
    let want = "the dead-letter topic \"g-nodlq.dlq\" does not exist";
    let ready = bridge.health.readiness().expect_err("not ready");
    assert!(ready.contains(want), "{ready}");
    let held = log_lines_with(&[want, "holding dead letters"]);
    assert_eq!(held.len(), 1, "one error: {held:#?}");
    assert!(held[0].contains("create it"), "{}", held[0]);
    assert!(
        log_lines_with(&["DLQ write failed; retrying", "events[0]"]).is_empty(),
        "a missing topic is not retried per dead letter"
    );
    assert_eq!(
        missing(&before, &accepted_set(&sb).await),
        0,
        "the messages before the dead letter are delivered"
    );

    // The operator creates the topic: a later probe writes the dead letter and the hold ends.
    b.create_topic("g-nodlq.dlq", 1);
    bridge
        .wait(Duration::from_secs(180), "the dead letter written", || {
            bridge.dead_lettered() == 1
        })
        .await;
    bridge
        .wait(Duration::from_secs(60), "every message finished", || {
            bridge.finished() >= 21
        })
        .await;
    assert_eq!(bridge.metrics.dead_letters_held.get(), 0);
    assert_eq!(bridge.metrics.halted.get(), 0);
    assert!(bridge.health.readiness().is_ok());
    bridge.stop().await;
    let dlq = read_all(b.bootstrap_servers(), "g-nodlq.dlq", 1);
    assert_eq!(dlq.len(), 1, "the dead letter written once");
    assert_eq!(
        headers(&dlq[0])
            .get("mcm.source.offset")
            .map(String::as_str),
        Some("10")
    );
    let all: Vec<String> = before.iter().chain(&after).cloned().collect();
    assert_eq!(missing(&all, &accepted_set(&sb).await), 0);
    assert_eq!(
        committed(b.bootstrap_servers(), "g-nodlq", "events", 1),
        [Some(21)]
    );
    sb.shutdown().await.expect("sandbox stops");
}
