//! A block's own `schema_file:` (issue 19, topics without a registry), Avro (`.avsc`, raw or
//! single-object) and Protobuf (`.proto`, the bare message): the config resolves the file beside
//! itself and refuses what cannot work, values written by fastavro and by Python's protobuf
//! (encoders independent of the bridge) decode through the pipeline's own `process`,
//! and the commands (`validate`, `map`, `test`) read such blocks; and end to end through
//! Apache Kafka with every id accounted for.

mod support;

use mcm_bridge::config;
use mcm_bridge::mapping::{MappingPlan, Processed, SourceMessage};
use mcm_bridge::mcm::validate::ValidateOptions;
use mcm_bridge::pipeline::process;
use mcm_bridge::schema::SchemaBook;
use std::path::Path;
use std::process::Command;
use support::python_serializers::schema_produce;

const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"legacy","fields":[
  {"name":"order_id","type":"string"},
  {"name":"user","type":"string"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"total","type":"double"},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PAID","PENDING"]}}
]}"#;

fn config(topics: &str, registry: bool) -> String {
    let registry = if registry {
        "schema_registry:\n  url: http://127.0.0.1:1\n"
    } else {
        ""
    };
    format!(
        "kafka:\n  bootstrap_servers: 127.0.0.1:9092\n  group_id: g\n\
         mcm:\n  platform_name: Acme\n  platform_id: ACME\n  api_key: k\n{registry}topics:\n{topics}"
    )
}

fn block(topic: &str, extra: &str) -> String {
    format!(
        r#"  - topic: {topic}
    format: avro
{extra}    rules:
      - when: {{field: status, equals: PAID}}
        event_type: PURCHASE
        fields:
          id: {{path: order_id}}
          timestamp: {{path: ts}}
          channel_type: SITE
          user_id: {{path: user}}
          revenue: {{amount: {{path: total}}, currency: USD}}
          items:
            - id: {{path: order_id}}
              price: {{amount: {{path: total}}, currency: USD}}
              quantity: 1
"#
    )
}

/// Writes `config.yaml` and `schemas/order.avsc` to `dir` and loads them as `run` does.
fn load(dir: &Path, text: &str) -> Result<(config::Config, MappingPlan), Vec<String>> {
    std::fs::create_dir_all(dir.join("schemas")).expect("dir");
    std::fs::write(dir.join("schemas/order.avsc"), ORDER).expect("avsc");
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("config");
    config::load_with(&path, mcm_bridge::mapping::compile)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

/// fastavro's encoding of `records` (JSON lines) with `ORDER`, framed as `format` says.
fn fastavro(dir: &Path, format: &str, records: &[String]) -> Vec<Vec<u8>> {
    let schema = dir.join("fastavro.avsc");
    std::fs::write(&schema, ORDER).expect("schema");
    let out = dir.join(format!("{format}.hex"));
    let args = [
        "--format",
        format,
        "--schema-file",
        schema.to_str().expect("utf-8"),
        "--topic",
        "t",
        "--raw-out",
        out.to_str().expect("utf-8"),
    ];
    schema_produce(&args, records);
    std::fs::read_to_string(&out)
        .expect("values")
        .lines()
        .map(|l| hex::decode(l.trim()).expect("hex"))
        .collect()
}

/// The Protobuf form of `ORDER`, importing a file beside it.
const ORDER_PROTO: &str = r#"syntax = "proto3";
package legacy;
import "google/protobuf/timestamp.proto";
import "money.proto";
message Order {
  string order_id = 1;
  string user = 2;
  google.protobuf.Timestamp ts = 3;
  double total = 4;
  Status status = 5;
  legacy.money.Amount amount = 6;
}
enum Status { STATUS_UNSPECIFIED = 0; PAID = 1; PENDING = 2; }
"#;
const MONEY_PROTO: &str =
    "syntax = \"proto3\";\npackage legacy.money;\nmessage Amount { string currency = 1; }\n";

/// Writes `order.proto` and `money.proto` to `dir`; returns the `order.proto` path.
fn write_protos(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("order.proto"), ORDER_PROTO).expect("proto");
    std::fs::write(dir.join("money.proto"), MONEY_PROTO).expect("proto");
    dir.join("order.proto")
}

/// Python protobuf's `SerializeToString()` of `records` (JSON lines) as `legacy.Order`.
fn python_protobuf(dir: &Path, records: &[String]) -> Vec<Vec<u8>> {
    use prost::Message as _;
    write_protos(dir);
    let fds = protox::compile(["order.proto"], [dir]).expect("compiles");
    let fds_file = dir.join("order.fds");
    std::fs::write(&fds_file, fds.encode_to_vec()).expect("fds");
    let out = dir.join("pb.hex");
    let args = [
        "--format",
        "protobuf_raw",
        "--schema-file",
        fds_file.to_str().expect("utf-8"),
        "--message",
        "legacy.Order",
        "--topic",
        "t",
        "--raw-out",
        out.to_str().expect("utf-8"),
    ];
    schema_produce(&args, records);
    std::fs::read_to_string(&out)
        .expect("values")
        .lines()
        .map(|l| hex::decode(l.trim()).expect("hex"))
        .collect()
}

/// A paid order in protobuf's JSON mapping.
fn paid_pb(id: &str) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(now_ms() - 60_000)
        .expect("now")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({
        "order_id": id, "user": "u-1", "ts": ts, "total": 19.99, "status": "PAID",
        "amount": {"currency": "USD"},
    })
    .to_string()
}

fn msg<'a>(topic: &'a str, payload: &'a [u8]) -> SourceMessage<'a> {
    SourceMessage {
        topic,
        partition: 0,
        offset: 1,
        key: None,
        headers: &[],
        timestamp_ms: None,
        payload: Some(payload),
    }
}

fn now_ms() -> i64 {
    mcm_bridge::mcm::validate::now_ms()
}

fn paid(id: &str) -> String {
    serde_json::json!({
        "order_id": id, "user": "u-1", "ts": now_ms() - 60_000,
        "total": 19.99, "status": "PAID",
    })
    .to_string()
}

#[test]
fn the_schema_file_is_read_beside_the_config_and_needs_no_registry() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = config(
        &(block("legacy.raw", "    schema_file: schemas/order.avsc\n")
            + &block(
                "legacy.so",
                "    schema_file: schemas/order.avsc\n    framing: single_object\n",
            )),
        false,
    );
    let (cfg, plan) = load(dir.path(), &text).expect("valid without a schema_registry section");
    let opts = ValidateOptions {
        strict: true,
        now_ms: now_ms(),
        future_tolerance_ms: 5_000,
    };
    let book = SchemaBook::new(1);
    let raw = fastavro(dir.path(), "avro_raw", &[paid("o-1")]);
    let so = fastavro(dir.path(), "avro_single_object", &[paid("o-2")]);
    for (topic, value, id) in [("legacy.raw", &raw[0], "o-1"), ("legacy.so", &so[0], "o-2")] {
        match process::process(&plan, &msg(topic, value), &opts, &book) {
            Processed::Deliver(e) => {
                let body: serde_json::Value = serde_json::from_slice(&e.body).expect("json");
                assert_eq!(body["id"], id, "{topic}");
                assert_eq!(body["revenue"]["amount"], 19.99, "{topic}");
            }
            other => panic!("{topic}: {other:?}"),
        }
    }
    // The single-object block refuses a bare datum (no marker) and the raw block refuses the
    // single-object bytes (leftover / undecodable) — neither names a schema id it does not have.
    for (topic, value, reason) in [
        ("legacy.so", &raw[0], "bad_magic_byte"),
        ("legacy.raw", &so[0], "avro_decode"),
        ("legacy.raw", &vec![0u8, 0, 0, 0, 7, 1], "avro_decode"),
    ] {
        match process::process(&plan, &msg(topic, value), &opts, &book) {
            Processed::Reject {
                reason: r,
                schema_id,
                ..
            } => {
                assert_eq!((topic, r.as_str()), (topic, reason));
                assert_eq!(schema_id, None, "{topic}: a local schema has no id");
            }
            other => panic!("{topic}: {other:?}"),
        }
    }
    // Editing the schema file changes the rules' hash (a reload picks it up).
    let before = cfg.fingerprint.topics.clone();
    std::fs::write(
        dir.path().join("schemas/order.avsc"),
        ORDER.replace("PENDING", "PENDING\",\"SHIPPED"),
    )
    .expect("edit");
    let path = dir.path().join("config.yaml");
    let (after, _) = config::load_with(&path, mcm_bridge::mapping::compile).expect("reload");
    assert_ne!(after.fingerprint.topics, before);
}

#[test]
fn a_registry_framed_reject_names_its_schema_id_and_a_local_one_does_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = config(&block("reg", ""), true);
    let (_, plan) = load(dir.path(), &text).expect("valid");
    let opts = ValidateOptions::now();
    let mut book = SchemaBook::new(2);
    book.learn(
        7,
        mcm_bridge::schema::Known::Avro(std::sync::Arc::new(
            mcm_bridge::schema::book::AvroSchema::parse(ORDER, &[]).expect("schema"),
        )),
    );
    match process::process(&plan, &msg("reg", &[0, 0, 0, 0, 7, 1]), &opts, &book) {
        Processed::Reject {
            reason, schema_id, ..
        } => assert_eq!((reason.as_str(), schema_id), ("avro_decode", Some(7))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn what_cannot_work_is_a_config_error_at_its_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            "    schema_file: schemas/missing.avsc\n".to_string(),
            "topics[0].schema_file: cannot read",
        ),
        (
            "    schema_file: config.yaml\n".to_string(),
            "topics[0].schema_file:",
        ),
        (
            "    schema_file: schemas/order.avsc\n    framing: confluent\n".to_string(),
            "topics[0].framing: \"confluent\" is not one of: raw, single_object",
        ),
        (
            "    framing: raw\n".to_string(),
            "topics[0].framing: `framing:` goes with `schema_file:`",
        ),
    ];
    for (extra, want) in cases {
        let text = config(&block("t", &extra), true);
        let errors = load(dir.path(), &text).err().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "{extra:?}: want {want:?}, got {errors:?}"
        );
    }
    // Protobuf blocks: the message must exist, values are bare (no framing), and the message
    // name needs a schema file.
    let proto = write_protos(&dir.path().join("protos"));
    let pb = |extra: &str| {
        config(
            &block("t", extra).replace("format: avro", "format: protobuf"),
            true,
        )
    };
    let file = format!("    schema_file: {}\n", proto.display());
    for (extra, want) in [
        (
            format!("{file}    proto_message: legacy.Nope\n"),
            "topics[0].schema_file: ",
        ),
        (
            format!("{file}    framing: single_object\n"),
            "topics[0].framing: a `format: protobuf` block's values are the bare message",
        ),
        (
            "    proto_message: legacy.Order\n".to_string(),
            "topics[0].proto_message: `proto_message:` goes with `schema_file:`",
        ),
    ] {
        let errors = load(dir.path(), &pb(&extra)).err().unwrap_or_default();
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "{extra:?}: want {want:?}, got {errors:?}"
        );
    }
    let errors = load(
        dir.path(),
        &pb(&format!("{file}    proto_message: legacy.Nope\n")),
    )
    .err()
    .unwrap_or_default();
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with("defines no message \"legacy.Nope\"")),
        "{errors:?}"
    );
    let (_, plan) = load(dir.path(), &pb(&file)).expect("the first message by default");
    assert!(plan.blocks()[0].local_schema().is_some());
    let text = config(
        &block("t", "    schema_file: schemas/order.avsc\n")
            .replace("format: avro", "format: json_schema"),
        true,
    );
    let errors = load(dir.path(), &text).err().unwrap_or_default();
    assert!(
        errors.iter().any(|e| e.contains(
            "topics[0].schema_file: a schema file is read for `format: avro` and `protobuf` blocks only"
        )),
        "{errors:?}"
    );
    // Without a schema file, a schema'd block still needs the registry.
    let errors = load(dir.path(), &config(&block("t", ""), false))
        .err()
        .unwrap_or_default();
    assert!(
        errors.iter().any(
            |e| e.starts_with("topics[0].format: `format: avro` reads schemas from a registry")
        ),
        "{errors:?}"
    );
}

#[test]
fn validate_map_and_test_read_a_schema_file_block() {
    let dir = tempfile::tempdir().expect("tmp");
    let text = config(
        &block(
            "legacy.so",
            "    schema_file: schemas/order.avsc\n    framing: single_object\n",
        )
        .replace(
            "{path: user}",
            "{first: [{path: user}, {path: customer.id}]}",
        ),
        false,
    );
    load(dir.path(), &text).expect("valid");
    let cfg = dir.path().join("config.yaml");
    let bin = env!("CARGO_BIN_EXE_mcm-bridge");

    let out = Command::new(bin)
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .expect("validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("avro from ") && stdout.contains("order.avsc (single_object)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("has no field for: customer.id"),
        "the path the schema cannot hold is named: {stdout}"
    );

    let mut map = Command::new(bin)
        .args(["map", "--config"])
        .arg(&cfg)
        .args(["--topic", "legacy.so"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("map");
    {
        use std::io::Write as _;
        let mut stdin = map.stdin.take().expect("stdin");
        stdin
            .write_all(
                serde_json::json!({
                    "order_id": "o-9", "user": "u", "ts": now_ms() - 1_000,
                    "total": 19.99, "status": "PAID"
                })
                .to_string()
                .as_bytes(),
            )
            .expect("write");
    }
    let out = map.wait_with_output().expect("map");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event: serde_json::Value = serde_json::from_str(&stdout).expect("an event");
    assert_eq!(event["id"], "o-9");

    let cases = dir.path().join("cases.yaml");
    let ts = now_ms() - 1_000;
    std::fs::write(
        &cases,
        format!(
            "- name: paid\n  topic: legacy.so\n  message: {{order_id: o-1, user: u, ts: {ts}, total: 19.99, status: PAID}}\n  expect:\n    event: {{id: o-1, event_type: PURCHASE, timestamp: {ts}, channel_type: SITE, user_id: u, revenue: {{amount: 19.99, currency: USD}}, items: [{{id: o-1, price: {{amount: 19.99, currency: USD}}, quantity: 1}}]}}\n\
             - name: pending\n  topic: legacy.so\n  message: {{order_id: o-2, user: u, ts: 1, total: 0.5, status: PENDING}}\n  expect: {{filtered: true}}\n"
        ),
    )
    .expect("cases");
    let out = Command::new(bin)
        .args(["test", "--config"])
        .arg(&cfg)
        .arg(&cases)
        .output()
        .expect("test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
}

/// Through Apache Kafka: a raw-datum and a single-object Avro topic (values by fastavro) and a
/// bare-message Protobuf topic (values by Python's protobuf, the `.proto` importing a file beside
/// it); every id delivered once, and the values that cannot be read dead-lettered with their
/// exact reason and no `mcm.schema.id` (these topics have no registry ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schema_file_topics_are_delivered_through_apache_kafka_with_exact_accounting() {
    use std::collections::BTreeMap;
    use std::time::Duration;
    use support::*;
    let Some(backend) = Backend::apache(Protocol::Classic) else {
        return;
    };
    const RAW: &str = "legacy.orders.raw";
    const SO: &str = "legacy.orders.so";
    const PB: &str = "legacy.orders.pb";
    const GROUP: &str = "legacy";
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = backend.broker(RAW, 2);
    b.create_topic(SO, 2);
    b.create_topic(PB, 2);
    b.create_topic(&format!("{GROUP}.dlq"), 1);
    let bootstrap = b.bootstrap_servers().to_string();
    let avsc = dir.path().join("order.avsc");
    std::fs::write(&avsc, ORDER).expect("avsc");
    let file = format!("    schema_file: {}\n", avsc.display());
    let topics = "topics:\n".to_string()
        + &block(RAW, &file)
        + &block(SO, &format!("{file}    framing: single_object\n"))
        + &block(
            PB,
            &format!(
                "    schema_file: {}\n    proto_message: legacy.Order\n",
                write_protos(&dir.path().join("protos")).display()
            ),
        )
        .replace("format: avro", "format: protobuf");
    let text = config_text_with_topics(&b, &sb.base_url(), GROUP, "", "", &topics);

    let ids = |prefix: &str| {
        (0..150)
            .map(|i| format!("{prefix}-{i}"))
            .collect::<Vec<_>>()
    };
    let (raw_ids, so_ids, pb_ids) = (ids("raw"), ids("so"), ids("pb"));
    let records = |ids: &[String]| ids.iter().map(|id| paid(id)).collect::<Vec<_>>();
    let keyed = |values: Vec<Vec<u8>>, ids: &[String]| -> Vec<Record> {
        values
            .into_iter()
            .zip(ids)
            .enumerate()
            .map(|(i, (v, id))| ((i % 2) as i32, Some(id.as_bytes().to_vec()), Some(v)))
            .collect()
    };
    let raw = fastavro(dir.path(), "avro_raw", &records(&raw_ids));
    let so = fastavro(dir.path(), "avro_single_object", &records(&so_ids));
    let pb = python_protobuf(
        &dir.path().join("python"),
        &pb_ids.iter().map(|id| paid_pb(id)).collect::<Vec<_>>(),
    );
    // Another schema's single-object value: its fingerprint is not the file's.
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).expect("dir");
    let other_schema = other_dir.join("fastavro.avsc");
    let other = {
        let text = ORDER.replace("\"double\"", "\"float\"");
        std::fs::write(&other_schema, &text).expect("schema");
        let out = other_dir.join("v.hex");
        schema_produce(
            &[
                "--format",
                "avro_single_object",
                "--schema-file",
                other_schema.to_str().expect("utf-8"),
                "--topic",
                SO,
                "--raw-out",
                out.to_str().expect("utf-8"),
            ],
            &[paid("other")],
        );
        hex::decode(std::fs::read_to_string(&out).expect("hex").trim()).expect("hex")
    };
    let bad: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            RAW,
            "raw-json",
            br#"{"order_id":"x"}"#.to_vec(),
            "avro_decode",
        ),
        (RAW, "raw-zero", vec![0, 0, 0, 0, 7, 9], "avro_decode"),
        (SO, "so-bare", raw[0].clone(), "bad_magic_byte"),
        (SO, "so-short", vec![0xC3, 0x01, 1], "truncated_frame"),
        (SO, "so-other", other, "schema_fingerprint_mismatch"),
        (PB, "pb-garbage", vec![0x0a, 0xff, 0xff], "protobuf_decode"),
    ];

    let bridge = Bridge::start(&text);
    produce(&bootstrap, RAW, &keyed(raw, &raw_ids));
    produce(&bootstrap, SO, &keyed(so, &so_ids));
    produce(&bootstrap, PB, &keyed(pb, &pb_ids));
    for (topic, label, value, _) in &bad {
        produce(
            &bootstrap,
            topic,
            &[(0, Some(label.as_bytes().to_vec()), Some(value.clone()))],
        );
    }
    let all: Vec<String> = raw_ids
        .iter()
        .chain(&so_ids)
        .chain(&pb_ids)
        .cloned()
        .collect();
    wait_all_accepted(&sb, &all, Duration::from_secs(60), |got| {
        format!("lost {} ids", missing(&all, got))
    })
    .await;
    bridge
        .wait(
            Duration::from_secs(30),
            "the unreadable values dead-lettered",
            || bridge.dead_lettered() == bad.len() as u64,
        )
        .await;
    bridge.stop().await;
    let delivered = sb.accepted_ids().await.expect("record");
    let counts = counts(&delivered);
    assert_eq!(counts.len(), all.len(), "every id delivered");
    assert!(counts.values().all(|n| *n == 1), "each once");
    let seen: BTreeMap<String, (String, Option<String>)> =
        read_all(&bootstrap, &format!("{GROUP}.dlq"), 1)
            .iter()
            .map(|m| {
                let h = headers(m);
                (
                    String::from_utf8_lossy(rdkafka::Message::key(m).unwrap_or_default())
                        .into_owned(),
                    (
                        h.get("mcm.error.reason").cloned().unwrap_or_default(),
                        h.get("mcm.schema.id").cloned(),
                    ),
                )
            })
            .collect();
    let want: BTreeMap<String, (String, Option<String>)> = bad
        .iter()
        .map(|(_, l, _, r)| (l.to_string(), (r.to_string(), None)))
        .collect();
    assert_eq!(seen, want);
    sb.shutdown().await.expect("sandbox stops");
}
