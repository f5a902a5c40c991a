//! The bad-input catalogue (DESIGN.md contract 7), end to end: a real Kafka-protocol broker
//! (librdkafka's mock cluster), the MCM sandbox over real HTTP and the bridge's pipeline.
//!
//! One topic gets every kind of hostile record we could think of — empty, `null`, 10 MB, 10,000
//! levels deep, invalid UTF-8, numbers beyond i64/f64, the wrong JSON type at every mapped field,
//! duplicate keys, binary headers, a tombstone — interleaved with good events. Each bad record has
//! a label as its Kafka key (the DLQ keeps the key), so every dead letter is matched to the input
//! it came from and its `mcm.error.reason` is compared with the exact expected code. Accounting is
//! complete: good events delivered, bad ones dead-lettered or filtered as configured, nothing
//! stalls, and the committed offsets reach the end offsets.

mod support;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use support::*;

/// Ten megabytes, the size class of the largest records Kafka deployments commonly allow.
const BIG: usize = 10 * 1024 * 1024;
/// The largest dead letter the mock broker keeps next to the others: librdkafka's mock cluster
/// keeps at most 5 MiB per partition (`mpart->max_size`, hard-coded in `rdkafka_mock.c`) and drops
/// the oldest record sets beyond that, so a 10 MB dead letter would evict every other one. A real
/// broker has no such limit; the 10 MB record itself is consumed and delivered below.
const BIG_DLQ: usize = 4 * 1024 * 1024;
/// Partitions 0 and 1 carry the interleaved stream; 2 and 3 hold one large record each (alone,
/// so the mock's 5 MiB retention keeps them).
const PARTITIONS: i32 = 4;

/// The mapping under test: every MCM field type is read from the message (string, number, array
/// of objects, header), so each can be given the wrong JSON type. Kinds no rule knows are skipped.
const TOPICS: &str = r#"
topics:
  - topic: events
    on_no_match: skip
    fields:
      id: {path: id}
      timestamp: {path: ts, transform: epoch_millis}
      channel_type: SITE
      user_id: {path: user}
    rules:
      - when: {field: kind, equals: home}
        event_type: HOME
      - when: {field: kind, equals: page}
        event_type: PAGE_VIEW
        fields:
          page_id: {path: page}
      - when: {field: kind, equals: header_page}
        event_type: PAGE_VIEW
        fields:
          page_id: {header: x-page}
      - when: {field: kind, equals: purchase}
        event_type: PURCHASE
        fields:
          page_id: CHECKOUT
          items:
            each: lines
            fields:
              id: {path: sku}
              quantity: {path: qty}
              price:
                amount: {path: cents, transform: {divide: 100}}
                currency: USD
"#;

/// What must happen to one record.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Delivered to MCM with this id.
    Delivered(String),
    /// Dead-lettered with this `mcm.error.reason`.
    Dlq(&'static str),
    /// Skipped by `on_no_match: skip`.
    Filtered,
}

struct Case {
    label: String,
    /// A partition of its own (large records); `None` = interleaved on partitions 0 and 1.
    partition: Option<i32>,
    headers: Vec<(&'static str, Vec<u8>)>,
    payload: Option<Vec<u8>>,
    want: Want,
}

fn ts() -> i64 {
    chrono_now_ms() - 60_000
}

fn json(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).expect("json")
}

fn case(label: &str, payload: Option<Vec<u8>>, want: Want) -> Case {
    Case {
        label: label.to_string(),
        partition: None,
        headers: Vec::new(),
        payload,
        want,
    }
}

/// A good HOME event with `extra` spliced in as additional members (raw JSON text).
fn home_with(id: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","kind":"home","ts":{},"user":"u-{id}"{extra}}}"#,
        ts()
    )
    .into_bytes()
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

fn catalogue() -> Vec<Case> {
    use Want::*;
    let now = ts();
    let purchase = |id: &str, lines: serde_json::Value| {
        json(
            serde_json::json!({"id": id, "kind": "purchase", "ts": now, "user": "u", "lines": lines}),
        )
    };
    let mut cases = vec![
        // --- decoding ---
        case("empty", Some(Vec::new()), Dlq("invalid_json")),
        case("null", Some(b"null".to_vec()), Dlq("not_an_object")),
        case("array", Some(b"[1,2]".to_vec()), Dlq("not_an_object")),
        case("string", Some(b"\"home\"".to_vec()), Dlq("not_an_object")),
        case(
            "truncated",
            Some(b"{\"id\":\"t\",".to_vec()),
            Dlq("invalid_json"),
        ),
        case("tombstone", None, Dlq("tombstone")),
        case(
            "invalid_utf8",
            Some(b"{\"id\":\"\xff\xfe\",\"kind\":\"home\"}".to_vec()),
            Dlq("invalid_utf8"),
        ),
        case(
            "lone_surrogate_escape",
            Some(home_with("bad-sur", "").replace_user("\\ud800")),
            Dlq("invalid_json"),
        ),
        // 10,000 levels: at the root, inside a field a rule reads, and inside one it ignores (the
        // projection skips unread members iteratively, so that one is a good event).
        case(
            "deep_root",
            Some(nested_arrays(10_000).into_bytes()),
            Dlq("nesting_too_deep"),
        ),
        case(
            "deep_mapped",
            Some(
                format!(
                    r#"{{"id":"deep-m","kind":"home","ts":{now},"user":{}}}"#,
                    nested_objects(10_000)
                )
                .into_bytes(),
            ),
            Dlq("nesting_too_deep"),
        ),
        case(
            "deep_unmapped",
            Some(home_with(
                "deep-u",
                &format!(r#","extra":{}"#, nested_arrays(10_000)),
            )),
            Delivered("deep-u".into()),
        ),
        // --- numbers beyond i64 / f64 ---
        case(
            "ts_1e400",
            Some(br#"{"id":"n1","kind":"home","ts":1e400,"user":"u"}"#.to_vec()),
            Dlq("invalid_json"),
        ),
        case(
            "ts_beyond_i64",
            Some(br#"{"id":"n2","kind":"home","ts":99999999999999999999999,"user":"u"}"#.to_vec()),
            Dlq("number_out_of_range"),
        ),
        case(
            "qty_beyond_i64",
            Some(purchase(
                "n3",
                serde_json::json!([{"sku": "s", "qty": 99999999999999999999999_f64, "cents": 100}]),
            )),
            Dlq("number_out_of_range"),
        ),
        case(
            "unmapped_1e400",
            Some(home_with("n4", r#","extra":1e400"#)),
            Delivered("n4".into()),
        ),
        // --- the wrong JSON type at every mapped field ---
        case(
            "id_object",
            Some(json(
                serde_json::json!({"id": {"x": 1}, "kind": "home", "ts": now, "user": "u"}),
            )),
            Dlq("type_mismatch"),
        ),
        case(
            "ts_string",
            Some(json(
                serde_json::json!({"id": "w2", "kind": "home", "ts": "yesterday", "user": "u"}),
            )),
            Dlq("invalid_number"),
        ),
        case(
            "ts_bool",
            Some(json(
                serde_json::json!({"id": "w3", "kind": "home", "ts": true, "user": "u"}),
            )),
            Dlq("type_mismatch"),
        ),
        case(
            "user_array",
            Some(json(
                serde_json::json!({"id": "w4", "kind": "home", "ts": now, "user": ["u"]}),
            )),
            Dlq("type_mismatch"),
        ),
        case(
            "page_object",
            Some(json(
                serde_json::json!({"id": "w5", "kind": "page", "ts": now, "user": "u", "page": {}}),
            )),
            Dlq("type_mismatch"),
        ),
        case(
            "lines_string",
            Some(purchase("w6", serde_json::json!("SKU-1"))),
            Dlq("type_mismatch"),
        ),
        case(
            "sku_array",
            Some(purchase(
                "w7",
                serde_json::json!([{"sku": [1], "qty": 1, "cents": 100}]),
            )),
            Dlq("type_mismatch"),
        ),
        case(
            "qty_text",
            Some(purchase(
                "w8",
                serde_json::json!([{"sku": "s", "qty": "two", "cents": 100}]),
            )),
            Dlq("invalid_number"),
        ),
        case(
            "cents_object",
            Some(purchase(
                "w9",
                serde_json::json!([{"sku": "s", "qty": 1, "cents": {"v": 1}}]),
            )),
            Dlq("type_mismatch"),
        ),
        case(
            "kind_number",
            Some(json(
                serde_json::json!({"id": "w10", "kind": 5, "ts": now, "user": "u"}),
            )),
            Filtered,
        ),
        case(
            "good_purchase",
            Some(purchase(
                "p-ok",
                serde_json::json!([{"sku": "s", "qty": 2, "cents": 150}]),
            )),
            Delivered("p-ok".into()),
        ),
        // --- duplicate keys: the last one wins, both ways ---
        case(
            "dup_kind_last_unknown",
            Some(
                format!(r#"{{"id":"d1","kind":"home","kind":"refund","ts":{now},"user":"u"}}"#)
                    .into_bytes(),
            ),
            Filtered,
        ),
        case(
            "dup_kind_last_home",
            Some(
                format!(r#"{{"id":"d2","kind":"refund","kind":"home","ts":{now},"user":"u"}}"#)
                    .into_bytes(),
            ),
            Delivered("d2".into()),
        ),
        // --- 10 MB: ignored padding is fine, a 10 MB identifier is not ---
        Case {
            partition: Some(2),
            ..case(
                "big_padding",
                Some(home_with(
                    "big-ok",
                    &format!(r#","padding":"{}""#, "x".repeat(BIG)),
                )),
                Delivered("big-ok".into()),
            )
        },
        Case {
            partition: Some(3),
            ..case(
                "big_user",
                Some(
                    format!(
                        r#"{{"id":"big-bad","kind":"home","ts":{now},"user":"{}"}}"#,
                        "u".repeat(BIG_DLQ)
                    )
                    .into_bytes(),
                ),
                Dlq("field_too_long"),
            )
        },
    ];
    // --- binary (non-UTF-8) headers: harmless where unread, an error where a rule reads one ---
    let mut unread = case(
        "binary_header_unread",
        Some(home_with("h1", "")),
        Delivered("h1".into()),
    );
    unread.headers = vec![("x-trace", vec![0xff, 0x00, 0xfe])];
    cases.push(unread);
    let mut read = case(
        "binary_header_read",
        Some(json(
            serde_json::json!({"id": "h2", "kind": "header_page", "ts": now, "user": "u"}),
        )),
        Dlq("invalid_utf8"),
    );
    read.headers = vec![("x-page", vec![0xc3, 0x28])];
    cases.push(read);
    let mut text = case(
        "text_header_read",
        Some(json(
            serde_json::json!({"id": "h3", "kind": "header_page", "ts": now, "user": "u"}),
        )),
        Delivered("h3".into()),
    );
    text.headers = vec![("x-page", b"PAGE_FROM_HEADER".to_vec())];
    cases.push(text);
    cases
}

trait ReplaceUser {
    fn replace_user(self, with: &str) -> Vec<u8>;
}

impl ReplaceUser for Vec<u8> {
    /// Puts a raw JSON string body into `user` (for escapes serde_json would refuse to write).
    fn replace_user(self, with: &str) -> Vec<u8> {
        let text = String::from_utf8(self).expect("utf8");
        let start = text.find(r#""user":""#).expect("user") + 8;
        let end = start + text[start..].find('"').expect("end");
        format!("{}{with}{}", &text[..start], &text[end..]).into_bytes()
    }
}

/// Produces `(partition, key, headers, payload)` records, large ones included.
fn produce_with_headers(bootstrap: &str, topic: &str, records: &[(i32, &Case)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("message.max.bytes", "20000000")
        .create()
        .expect("producer");
    for (part, c) in records {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &c.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_slice()),
            });
        }
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(*part)
            .key(c.label.as_bytes())
            .headers(headers);
        if let Some(v) = &c.payload {
            rec = rec.payload(v);
        }
        let mut rec = rec;
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e.rdkafka_error_code(),
                            Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "producing {}: {e}",
                        c.label
                    );
                    p.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

fn bad_input_config(bootstrap: &str, sandbox_url: &str, group: &str) -> String {
    // Record-size limits raised to take (and dead-letter) 10 MB records: `message.max.bytes`
    // applies to the consumer and, through `kafka.properties`, to the DLQ producer.
    config_text_with_topics(bootstrap, sandbox_url, group, "", "", TOPICS).replace(
        "heartbeat.interval.ms: 500",
        "heartbeat.interval.ms: 500\n    message.max.bytes: 20000000\n    max.partition.fetch.bytes: 20000000",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_bad_input_is_dead_lettered_or_filtered_with_its_reason_and_nothing_stalls() {
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = broker("events", PARTITIONS);
    b.create_topic("g-bad.dlq", 1).expect("dlq topic");

    let bad = catalogue();
    let labels: HashSet<&str> = bad.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels.len(), bad.len(), "labels are unique");
    let good: Vec<Case> = (0..300)
        .map(|i| {
            let id = format!("good-{i}");
            case(
                &format!("good:{i}"),
                Some(event(&id, "home")),
                Want::Delivered(id),
            )
        })
        .collect();
    // Interleave: a bad record every few good ones, alternating partitions.
    let mut records: Vec<(i32, &Case)> = Vec::new();
    let mut bad_iter = bad.iter().filter(|c| c.partition.is_none());
    for (i, g) in good.iter().enumerate() {
        records.push(((i % 2) as i32, g));
        if i % 9 == 4 {
            if let Some(c) = bad_iter.next() {
                records.push((((i / 9) % 2) as i32, c));
            }
        }
    }
    for c in bad_iter {
        records.push((1, c));
    }
    for c in &bad {
        if let Some(p) = c.partition {
            records.push((p, c));
        }
    }
    records.push((0, &good[0])); // a redelivered good record after everything else
    assert_eq!(records.len(), good.len() + bad.len() + 1);
    produce_with_headers(b.bootstrap_servers(), "events", &records);
    let total = records.len() as u64;

    let started = std::time::Instant::now();
    let bridge = Bridge::start(&bad_input_config(
        b.bootstrap_servers(),
        &sb.base_url(),
        "g-bad",
    ));
    let deadline = started + Duration::from_secs(60);
    while bridge.finished() < total {
        if std::time::Instant::now() > deadline {
            let text = bridge.metrics.render();
            let interesting: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.contains("_bucket"))
                .filter(|l| l.contains("total") || l.contains("in_flight") || l.contains("halted"))
                .collect::<Vec<_>>();
            panic!(
                "stalled: {} of {total} records finished after 60 s\n{}",
                bridge.finished(),
                interesting.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let want_dlq: Vec<&Case> = bad
        .iter()
        .filter(|c| matches!(c.want, Want::Dlq(_)))
        .collect();
    // Dead-lettered: exactly the expected records, each with its exact reason, bytes intact.
    let dlq = read_all_large(b.bootstrap_servers(), "g-bad.dlq");
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for m in &dlq {
        let label = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        let h = headers(m);
        let reason = h.get("mcm.error.reason").cloned().unwrap_or_default();
        let c = bad
            .iter()
            .find(|c| c.label == label)
            .unwrap_or_else(|| panic!("unexpected dead letter {label:?} ({reason})"));
        assert!(m.payload() == c.payload.as_deref(), "{label}: value kept");
        assert_eq!(h["mcm.source.topic"], "events");
        assert!(!h["mcm.error.class"].is_empty());
        for (k, v) in &c.headers {
            let orig = rdkafka::message::Headers::iter(
                rdkafka::Message::headers(m).expect("headers kept"),
            )
            .find(|x| x.key == *k)
            .and_then(|x| x.value);
            assert_eq!(
                orig,
                Some(v.as_slice()),
                "{label}: header {k} kept byte for byte"
            );
        }
        assert!(
            seen.insert(label.clone(), reason).is_none(),
            "{label} dead-lettered twice"
        );
    }
    let want: BTreeMap<String, String> = want_dlq
        .iter()
        .map(|c| match c.want {
            Want::Dlq(r) => (c.label.clone(), r.to_string()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(seen, want, "dead letters and their reasons");

    let filtered_metric = bridge
        .metrics
        .messages_filtered
        .with_label_values(&["events", "no_matching_rule"])
        .get();
    let dlq_metric = |reason: &str| {
        bridge
            .metrics
            .messages_dead_lettered
            .with_label_values(&["events", reason])
            .get()
    };
    let mut reason_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &want_dlq {
        if let Want::Dlq(r) = c.want {
            *reason_counts.entry(r).or_default() += 1;
        }
    }
    for (reason, n) in &reason_counts {
        assert_eq!(dlq_metric(reason), *n, "dead-letter count for {reason}");
    }
    let want_filtered = bad.iter().filter(|c| c.want == Want::Filtered).count() as u64;
    assert_eq!(filtered_metric, want_filtered, "filtered count");
    assert_eq!(bridge.dead_lettered(), want_dlq.len() as u64);
    bridge.stop().await;
    eprintln!("bad-input catalogue finished in {:?}", started.elapsed());

    // Delivered: every good record and every bad-looking record that must pass.
    let got = accepted_set(&sb).await;
    for c in good.iter().chain(&bad) {
        if let Want::Delivered(id) = &c.want {
            assert!(got.contains(id), "{} ({id}) was not delivered", c.label);
        }
    }
    for c in &bad {
        if let Some(id) = c.payload.as_deref().and_then(id_of) {
            if !matches!(c.want, Want::Delivered(_)) {
                assert!(!got.contains(&id), "{} must not be delivered", c.label);
            }
        }
    }

    let ends = end_offsets(b.bootstrap_servers(), "events", PARTITIONS);
    assert_eq!(ends.iter().sum::<i64>(), total as i64);
    for (topic, n) in [("events", PARTITIONS), ("g-bad.dlq", 1)] {
        assert_eq!(
            log_starts(b.bootstrap_servers(), topic, n),
            vec![0; n as usize],
            "the mock broker kept every record of {topic} (its 5 MiB retention evicted none)"
        );
    }
    let committed = committed(b.bootstrap_servers(), "g-bad", "events", PARTITIONS);
    assert_eq!(
        committed,
        ends.iter().map(|e| Some(*e)).collect::<Vec<_>>(),
        "committed offsets reach the end offsets"
    );
    sb.shutdown().await.expect("sandbox stops");
}

/// The `id` of a JSON payload, when it has a string one.
fn id_of(payload: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    v.get("id")?.as_str().map(str::to_string)
}

/// Every record of a one-partition topic, with fetch limits raised for 10 MB records (the
/// harness's `read_all` keeps librdkafka's 1 MB per-partition default).
fn read_all_large(bootstrap: &str, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let total = end_offsets(bootstrap, topic, 1)[0];
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-reader-large")
        .set("enable.auto.commit", "false")
        .set("max.partition.fetch.bytes", "20000000")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .expect("tpl");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let start = std::time::Instant::now();
    while (out.len() as i64) < total && start.elapsed() < Duration::from_secs(30) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
    }
    out
}

/// The first offset still in each partition's log (moves up when a broker evicts records).
fn log_starts(bootstrap: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .0
        })
        .collect()
}
