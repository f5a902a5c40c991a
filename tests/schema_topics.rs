//! Schema'd topics end to end (issue 19): Avro and JSON Schema values written by Confluent's own
//! Python serializers (an encoder independent of the bridge) through the sandbox's schema
//! registry, consumed from Apache Kafka and delivered to the MCM sandbox — with the registry
//! down in the middle of the run. Every id is accounted for: delivered exactly once, or
//! dead-lettered with its exact reason; nothing is dead-lettered because the registry blinked.

mod support;

use mcm_bridge::sandbox::registry::{spawn_registry, RegistryConfig};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use support::python_serializers::schema_produce;
use support::*;

const AVRO_TOPIC: &str = "orders.avro";
const JSON_TOPIC: &str = "orders.json";
const GROUP: &str = "shop";

const AVRO_V1: &str = r#"{"type":"record","name":"PageView","namespace":"acme.shop","fields":[
  {"name":"id","type":"string"},
  {"name":"user","type":"string"},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["home","page"]}},
  {"name":"page","type":["null","string"],"default":null},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}
]}"#;

/// v2 adds a field: a new schema id, which the bridge first meets while the registry is down.
const AVRO_V2: &str = r#"{"type":"record","name":"PageView","namespace":"acme.shop","fields":[
  {"name":"id","type":"string"},
  {"name":"user","type":"string"},
  {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["home","page"]}},
  {"name":"page","type":["null","string"],"default":null},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"price","type":["null","double"],"default":null}
]}"#;

const JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#","title":"PageView",
  "type":"object","properties":{"id":{"type":"string"},"user":{"type":"string"},
  "kind":{"type":"string"},"page":{"type":["string","null"]},"ts":{"type":"integer"}},
  "required":["id","user","kind","ts"]}"#;

fn topics() -> String {
    let block = |topic: &str, format: &str| {
        format!(
            r#"  - topic: {topic}
    format: {format}
    on_no_match: dlq
    fields:
      id: {{path: id}}
      timestamp: {{path: ts}}
      channel_type: SITE
      user_id: {{path: user}}
    rules:
      - when: {{field: kind, equals: home}}
        event_type: HOME
      - when: {{field: kind, equals: page}}
        event_type: PAGE_VIEW
        fields:
          page_id: {{path: page}}
"#
        )
    };
    format!(
        "topics:\n{}{}",
        block(AVRO_TOPIC, "avro"),
        block(JSON_TOPIC, "json_schema")
    )
}

/// JSON lines of `n` records `prefix-i`, alternating home and page views.
fn lines(prefix: &str, n: usize) -> Vec<String> {
    let ts = chrono_now_ms() - 60_000;
    (0..n)
        .map(|i| {
            let id = format!("{prefix}-{i}");
            let mut v =
                serde_json::json!({"id": id, "user": format!("user-{id}"), "ts": ts + i as i64});
            if i % 2 == 0 {
                v["kind"] = "home".into();
                v["page"] = serde_json::Value::Null;
            } else {
                v["kind"] = "page".into();
                v["page"] = format!("p-{i}").into();
            }
            v.to_string()
        })
        .collect()
}

/// Encodes `records` with Confluent's serializer for `format` (registering `schema` under
/// `<topic>-value`) and returns the framed values.
fn encode(
    registry: &str,
    topic: &str,
    format: &str,
    schema: &str,
    records: &[String],
) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("tmp");
    let schema_file = dir.path().join("schema.json");
    std::fs::write(&schema_file, schema).expect("schema file");
    let out = dir.path().join("values.hex");
    let args = [
        "--registry",
        registry,
        "--format",
        format,
        "--schema-file",
        schema_file.to_str().expect("utf-8 path"),
        "--topic",
        topic,
        "--raw-out",
        out.to_str().expect("utf-8 path"),
    ];
    schema_produce(&args, records);
    std::fs::read_to_string(&out)
        .expect("values")
        .lines()
        .map(|l| hex::decode(l.trim()).expect("hex"))
        .collect()
}

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn keyed(values: Vec<Vec<u8>>, ids: &[String]) -> Vec<Record> {
    values
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (v, id))| ((i % 2) as i32, Some(id.as_bytes().to_vec()), Some(v)))
        .collect()
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn schema_id(value: &[u8]) -> u32 {
    u32::from_be_bytes([value[1], value[2], value[3], value[4]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn avro_and_json_schema_topics_are_delivered_and_a_registry_outage_dead_letters_nothing() {
    let Some(backend) = Backend::apache(Protocol::Classic) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let registry = spawn_registry(RegistryConfig::default())
        .await
        .expect("registry");
    let url = registry.base_url();
    let b = backend.broker(AVRO_TOPIC, 2);
    b.create_topic(JSON_TOPIC, 2);
    b.create_topic(&format!("{GROUP}.dlq"), 1);
    let bootstrap = b.bootstrap_servers().to_string();

    // Encoded up front, while the registry is up: v1 and v2 get their ids here.
    let first = ids("a1", 200);
    let second = ids("a2", 200);
    // JSON Schema values: the first 100 before the outage, the rest during it.
    let mut json = ids("j", 200);
    let json_late = json.split_off(100);
    let v1 = encode(&url, AVRO_TOPIC, "avro", AVRO_V1, &lines("a1", 200));
    let v2 = encode(&url, AVRO_TOPIC, "avro", AVRO_V2, &lines("a2", 200));
    let mut js = encode(
        &url,
        JSON_TOPIC,
        "json_schema",
        JSON_SCHEMA,
        &lines("j", 200),
    );
    let js_late = js.split_off(100);
    let (id1, id2, json_id) = (schema_id(&v1[0]), schema_id(&v2[0]), schema_id(&js[0]));
    assert_ne!(id1, id2, "v2 is a new schema id");
    // Permanently undecodable, each with its reason (keyed by label).
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        ("plain-json", event("bad-1", "home"), "bad_magic_byte"),
        ("unknown-id", framed(9_999, &v1[0][5..]), "schema_not_found"),
        ("cut-datum", v2[0][..8].to_vec(), "avro_decode"),
        ("three-bytes", vec![0, 0, 0], "truncated_frame"),
        (
            "json-on-avro-id",
            framed(json_id, &v1[0][5..]),
            "schema_type_mismatch",
        ),
    ];

    let text = config_text_with_topics(&b, &sb.base_url(), GROUP, "", "", &topics())
        + &format!("schema_registry:\n  url: {url}\n  max_backoff: 500ms\n");
    let bridge = Bridge::start(&text);
    produce(&bootstrap, AVRO_TOPIC, &keyed(v1, &first));
    produce(&bootstrap, JSON_TOPIC, &keyed(js, &json));
    let early: Vec<String> = first.iter().chain(&json).cloned().collect();
    wait_all_accepted(&sb, &early, Duration::from_secs(60), |got| {
        format!("lost {} of the first ids", missing(&early, got))
    })
    .await;
    let hits_before = registry.schema_by_id_hits();
    eprintln!("registry GET /schemas/ids hits before the outage: {hits_before}");

    // The registry goes down; v2 values (a schema the bridge has not seen) and the bad records
    // arrive meanwhile.
    registry.set_unavailable(true);
    let held_from = end_offsets(&bootstrap, AVRO_TOPIC, 2);
    produce(&bootstrap, AVRO_TOPIC, &keyed(v2, &second));
    let bad_records: Vec<Record> = bad
        .iter()
        .map(|(label, v, _)| (0, Some(label.as_bytes().to_vec()), Some(v.clone())))
        .collect();
    produce(&bootstrap, AVRO_TOPIC, &bad_records);
    bridge
        .wait(
            Duration::from_secs(30),
            "fetches failing while the registry is down",
            || {
                bridge
                    .metrics
                    .schema_fetches
                    .with_label_values(&["unavailable"])
                    .get()
                    >= 3
            },
        )
        .await;
    assert!(
        bridge.metrics.schema_wait_messages.get() > 0,
        "messages wait for v2"
    );
    // Only the partitions that met the new id wait: the JSON Schema topic, whose schema is
    // known, is delivered while the registry is still down.
    produce(&bootstrap, JSON_TOPIC, &keyed(js_late, &json_late));
    wait_all_accepted(&sb, &json_late, Duration::from_secs(30), |got| {
        format!(
            "{} JSON Schema ids not delivered during the outage",
            missing(&json_late, got)
        )
    })
    .await;
    // A few commit intervals (200 ms) with messages held: no commit may pass them (the poll
    // thread's idle positions say they were handed over; a commit there would lose them on a
    // crash).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let committed_now = committed(&bootstrap, GROUP, AVRO_TOPIC, 2);
    for (p, (c, held)) in committed_now.iter().zip(&held_from).enumerate() {
        assert!(
            c.unwrap_or(0) <= *held,
            "partition {p}: committed {c:?} past the held messages from {held}"
        );
    }
    assert_eq!(
        bridge.dead_lettered(),
        0,
        "nothing dead-lettered while the registry is down"
    );
    let got = accepted_set(&sb).await;
    assert!(
        second.iter().all(|id| !got.contains(id)),
        "no v2 message can be delivered before its schema is fetched"
    );

    registry.set_unavailable(false);
    let all: Vec<String> = first
        .iter()
        .chain(&second)
        .chain(&json)
        .chain(&json_late)
        .cloned()
        .collect();
    wait_all_accepted(&sb, &all, Duration::from_secs(60), |got| {
        format!("lost {} ids", missing(&all, got))
    })
    .await;
    bridge
        .wait(
            Duration::from_secs(30),
            "every bad record dead-lettered",
            || bridge.dead_lettered() == bad.len() as u64,
        )
        .await;
    assert_eq!(bridge.metrics.schema_wait_messages.get(), 0);
    bridge.stop().await;

    // Exactly once each.
    let delivered = sb.accepted_ids().await.expect("record");
    let counts = counts(&delivered);
    let dups: usize = counts.values().map(|n| n - 1).sum();
    assert_eq!(dups, 0, "duplicates");
    let want: HashSet<&String> = all.iter().collect();
    assert!(
        counts.keys().all(|id| want.contains(id)),
        "only the good ids are delivered"
    );
    // Each bad record once, with its reason, and the schema id it named.
    let dlq = read_all(&bootstrap, &format!("{GROUP}.dlq"), 1);
    let seen: BTreeMap<String, String> = dlq
        .iter()
        .map(|m| {
            let h = headers(m);
            (
                String::from_utf8_lossy(rdkafka::Message::key(m).unwrap_or_default()).into_owned(),
                h.get("mcm.error.reason").cloned().unwrap_or_default(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = bad
        .iter()
        .map(|(l, _, r)| (l.to_string(), r.to_string()))
        .collect();
    assert_eq!(seen, want, "dead letters and their reasons");
    for m in &dlq {
        let h = headers(m);
        let label =
            String::from_utf8_lossy(rdkafka::Message::key(m).unwrap_or_default()).into_owned();
        let want_id = match label.as_str() {
            "unknown-id" => Some("9999".to_string()),
            "cut-datum" => Some(id2.to_string()),
            "json-on-avro-id" => Some(json_id.to_string()),
            _ => None,
        };
        assert_eq!(
            h.get("mcm.schema.id").cloned(),
            want_id,
            "{label}: mcm.schema.id"
        );
    }
    assert_eq!(dlq.len(), bad.len(), "each dead letter once");
    // Cached: v1, v2, the JSON schema and the unknown id, each fetched once it answered.
    let fetched_ok = registry.schema_by_id_hits() - hits_before;
    assert!(
        fetched_ok >= 3,
        "v2, the unknown id and retries were fetched after the outage began ({fetched_ok})"
    );
    assert_eq!(
        hits_before, 2,
        "v1 and the JSON schema fetched once each for 300 messages (the encoders register, they \
         do not fetch by id)"
    );
    for topic in [AVRO_TOPIC, JSON_TOPIC] {
        let ends = end_offsets(&bootstrap, topic, 2);
        let committed = committed(&bootstrap, GROUP, topic, 2);
        assert_eq!(
            committed,
            ends.iter().map(|e| Some(*e)).collect::<Vec<_>>(),
            "{topic}: committed to the end"
        );
    }
    let _ = (id1, id2);
    registry.shutdown().await.expect("registry stops");
    sb.shutdown().await.expect("sandbox stops");
}

/// `validate --online` / `doctor` with a registry: it answers with the credentials, and each
/// schema'd block's rule paths are checked against the latest schema of `<topic>-value`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_registry_and_the_rules_paths_against_the_latest_schema() {
    use mcm_bridge::doctor::Status;
    use mcm_bridge::sandbox::registry::SchemaType;
    let registry = spawn_registry(RegistryConfig {
        basic_auth: Some(("bridge".into(), "s3cret".into())),
    })
    .await
    .expect("registry");
    let url = registry.base_url();
    registry
        .register(
            &format!("{AVRO_TOPIC}-value"),
            SchemaType::Avro,
            AVRO_V1,
            &[],
        )
        .expect("register avro");
    registry
        .register(
            &format!("{JSON_TOPIC}-value"),
            SchemaType::Json,
            JSON_SCHEMA,
            &[],
        )
        .expect("register json");
    // Both blocks also read a field their schema does not have (declare, for JSON Schema).
    let topics = topics().replace(
        "      user_id: {path: user}",
        "      user_id: {first: [{path: user}, {path: customer.phone}]}",
    );
    let config = |password: &str| {
        config_text_with_topics("127.0.0.1:9", "http://127.0.0.1:9", GROUP, "", "", &topics)
            + &format!(
                "schema_registry:\n  url: {url}\n  basic_auth: {{username: bridge, password: {password}}}\n"
            )
    };
    let (cfg, plan) = load(&config("s3cret"));
    let checks =
        mcm_bridge::doctor::registry::check(cfg.schema_registry.as_ref().expect("registry"), &plan)
            .await;
    let shown: Vec<String> = checks
        .iter()
        .map(|c| format!("{:?} {} {}: {}", c.status, c.name, c.subject, c.detail))
        .collect();
    assert_eq!(checks.len(), 3, "{shown:#?}");
    assert_eq!(checks[0].status, Status::Pass, "{shown:#?}");
    assert_eq!(checks[1].status, Status::Warn, "{shown:#?}");
    assert!(
        checks[1].detail.contains("customer.phone") && !checks[1].detail.contains("user,"),
        "{shown:#?}"
    );
    assert_eq!(checks[2].status, Status::Warn, "{shown:#?}");
    assert!(
        checks[2].detail.contains("JSON Schema")
            && checks[2]
                .detail
                .ends_with("does not declare: customer.phone"),
        "only the undeclared path is named: {shown:#?}"
    );

    let (cfg, plan) = load(&config("wrong"));
    let checks =
        mcm_bridge::doctor::registry::check(cfg.schema_registry.as_ref().expect("registry"), &plan)
            .await;
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, Status::Fail);
    assert!(checks[0].detail.contains("refuses"), "{}", checks[0].detail);

    registry.set_unavailable(true);
    let (cfg, plan) = load(&config("s3cret"));
    let checks =
        mcm_bridge::doctor::registry::check(cfg.schema_registry.as_ref().expect("registry"), &plan)
            .await;
    assert_eq!(checks[0].status, Status::Fail);
    assert!(
        checks[0].detail.contains("unreachable or failing"),
        "{}",
        checks[0].detail
    );
    registry.shutdown().await.expect("registry stops");
}

/// `generate --format avro` registers the shop schemas as a serializer would: the bridge's
/// registry client's `register` against the sandbox registry gives the id the registry holds,
/// the same id again for the same schema, and the schema fetched by that id decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_the_generators_schemas_gives_stable_ids_the_bridge_can_fetch() {
    use mcm_bridge::config::schema_registry::{RegistryAuth, SchemaRegistryConfig};
    use mcm_bridge::generator::avro::{AvroWriter, SHOP_EVENTS_AVSC};
    use mcm_bridge::schema::{Known, RegistryClient};
    let registry = spawn_registry(RegistryConfig::default())
        .await
        .expect("registry");
    let client = RegistryClient::new(&SchemaRegistryConfig {
        urls: vec![registry.base_url()],
        auth: RegistryAuth::None,
        tls: Default::default(),
        timeout: Duration::from_secs(5),
        cache_size: 10,
        max_backoff: Duration::from_secs(1),
    })
    .expect("client");
    let id = client
        .register("shop.events-value", SHOP_EVENTS_AVSC)
        .await
        .expect("register");
    assert_eq!(
        client
            .register("shop.events-value", SHOP_EVENTS_AVSC)
            .await
            .expect("again"),
        id
    );
    let Ok(Known::Avro(schema)) = client.fetch(id).await else {
        panic!("schema {id} fetched as Avro");
    };
    let value = AvroWriter::new(SHOP_EVENTS_AVSC, id)
        .expect("writer")
        .encode(br#"{"kind":"search","event_id":"e1","query":"shoes"}"#)
        .expect("encode");
    let doc = schema.decode(&value[5..]).expect("decode");
    assert!(doc.get(doc.root(), "query").is_some());
    assert!(matches!(client.fetch(id + 100).await, Ok(Known::NotFound)));
    registry.shutdown().await.expect("registry stops");
}

fn spawn_bridge(config: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    let log = std::fs::File::create(log).expect("log file");
    std::process::Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("bridge process starts")
}

/// The bridge process is SIGKILLed while it holds messages for a schema the registry (down)
/// cannot give; a new process starts while the registry is still down, then it comes back.
/// Nothing held was committed, so nothing is lost, and nothing held was sent, so nothing is
/// delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_messages_wait_for_their_schema_loses_and_duplicates_nothing() {
    let Some(backend) = Backend::apache(Protocol::Classic) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let registry = spawn_registry(RegistryConfig::default())
        .await
        .expect("registry");
    let url = registry.base_url();
    let b = backend.broker(AVRO_TOPIC, 2);
    b.create_topic(JSON_TOPIC, 2);
    b.create_topic(&format!("{GROUP}.dlq"), 1);
    let bootstrap = b.bootstrap_servers().to_string();
    let first = ids("k1", 300);
    let second = ids("k2", 300);
    let v1 = encode(&url, AVRO_TOPIC, "avro", AVRO_V1, &lines("k1", 300));
    let v2 = encode(&url, AVRO_TOPIC, "avro", AVRO_V2, &lines("k2", 300));
    let text = config_text_with_topics(&b, &sb.base_url(), GROUP, "", "", &topics())
        + &format!("schema_registry:\n  url: {url}\n  max_backoff: 500ms\n");
    let config = dir.path().join("bridge.yaml");
    std::fs::write(&config, &text).expect("config");

    let mut a = spawn_bridge(&config, &dir.path().join("a.log"));
    produce(&bootstrap, AVRO_TOPIC, &keyed(v1, &first));
    wait_all_accepted(&sb, &first, Duration::from_secs(90), |got| {
        format!("lost {} of the first ids", missing(&first, got))
    })
    .await;
    let ends = end_offsets(&bootstrap, AVRO_TOPIC, 2);
    wait_until(Duration::from_secs(30), "the first ids committed", || {
        committed(&bootstrap, GROUP, AVRO_TOPIC, 2)
            == ends.iter().map(|e| Some(*e)).collect::<Vec<_>>()
    })
    .await;

    registry.set_unavailable(true);
    let hits = registry.schema_by_id_hits();
    produce(&bootstrap, AVRO_TOPIC, &keyed(v2, &second));
    wait_until(Duration::from_secs(30), "the bridge asking for v2", || {
        registry.schema_by_id_hits() >= hits + 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.kill().expect("SIGKILL");
    let _ = a.wait();
    assert_eq!(
        committed(&bootstrap, GROUP, AVRO_TOPIC, 2),
        ends.iter().map(|e| Some(*e)).collect::<Vec<_>>(),
        "nothing held was committed"
    );

    let mut b2 = spawn_bridge(&config, &dir.path().join("b.log"));
    let hits = registry.schema_by_id_hits();
    wait_until(
        Duration::from_secs(60),
        "the new process asking for v2",
        || registry.schema_by_id_hits() >= hits + 2,
    )
    .await;
    registry.set_unavailable(false);
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    wait_all_accepted(&sb, &all, Duration::from_secs(90), |got| {
        format!("lost {} ids", missing(&all, got))
    })
    .await;
    let end = end_offsets(&bootstrap, AVRO_TOPIC, 2);
    wait_until(Duration::from_secs(30), "everything committed", || {
        committed(&bootstrap, GROUP, AVRO_TOPIC, 2)
            == end.iter().map(|e| Some(*e)).collect::<Vec<_>>()
    })
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &b2.id().to_string()])
        .status();
    let _ = b2.wait();
    let delivered = sb.accepted_ids().await.expect("record");
    let dups: usize = counts(&delivered).values().map(|n| n - 1).sum();
    assert_eq!(dups, 0, "nothing held was sent, so nothing is sent twice");
    registry.shutdown().await.expect("registry stops");
    sb.shutdown().await.expect("sandbox stops");
}

const PROTO_TOPIC: &str = "views.proto";

const PAGE_VIEW_PROTO: &str = r#"syntax = "proto3";
package acme;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "common.proto";
message PageView {
  string id = 1;
  string user = 2;
  Kind kind = 3;
  google.protobuf.Timestamp at = 4;
  google.protobuf.StringValue page = 5;
  repeated acme.common.Item items = 6;
  map<string, string> attrs = 7;
  oneof who { string email = 8; int64 customer_id = 9; }
}
enum Kind { KIND_UNSPECIFIED = 0; HOME = 1; PAGE = 2; }
"#;

const COMMON_PROTO: &str = r#"syntax = "proto3";
package acme.common;
message Item { string sku = 1; int64 qty = 2; }
"#;

/// Protobuf end to end: values written by Confluent's own `ProtobufSerializer` (which registers
/// the schema as a base64 FileDescriptorProto with its import `common.proto` as a reference, and
/// writes the message indexes), read by the bridge through the registry from Apache Kafka: every
/// id delivered once with its enum, Timestamp and wrapper mapped; bad values dead-lettered as
/// `protobuf_decode` with their schema id.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn protobuf_topics_are_delivered_from_values_confluents_serializer_wrote() {
    use prost::Message as _;
    let Some(backend) = Backend::apache(Protocol::Classic) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let registry = spawn_registry(RegistryConfig::default())
        .await
        .expect("registry");
    let url = registry.base_url();
    let b = backend.broker(PROTO_TOPIC, 2);
    b.create_topic(&format!("{GROUP}.dlq"), 1);
    let bootstrap = b.bootstrap_servers().to_string();

    // The descriptor set Confluent's serializer builds its message class from.
    let protos = dir.path().join("protos");
    std::fs::create_dir_all(&protos).expect("dir");
    std::fs::write(protos.join("page_view.proto"), PAGE_VIEW_PROTO).expect("proto");
    std::fs::write(protos.join("common.proto"), COMMON_PROTO).expect("proto");
    let fds = protox::compile(["page_view.proto"], [&protos]).expect("compiles");
    let fds_file = dir.path().join("page_view.fds");
    std::fs::write(&fds_file, fds.encode_to_vec()).expect("fds");

    let views = ids("pv", 200);
    let at = chrono::DateTime::from_timestamp_millis(chrono_now_ms() - 60_000)
        .expect("now")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let records: Vec<String> = views
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut v = serde_json::json!({
                "id": id, "user": format!("user-{id}"), "at": at,
                "items": [{"sku": "s1", "qty": 2}], "attrs": {"color": "red"},
            });
            if i % 2 == 0 {
                v["kind"] = "HOME".into();
                v["email"] = "a@b.c".into();
            } else {
                v["kind"] = "PAGE".into();
                v["page"] = format!("p-{i}").into();
                v["customer_id"] = 42.into();
            }
            v.to_string()
        })
        .collect();
    let out = dir.path().join("values.hex");
    schema_produce(
        &[
            "--registry",
            &url,
            "--format",
            "protobuf",
            "--schema-file",
            fds_file.to_str().expect("utf-8"),
            "--message",
            "acme.PageView",
            "--topic",
            PROTO_TOPIC,
            "--raw-out",
            out.to_str().expect("utf-8"),
        ],
        &records,
    );
    let values: Vec<Vec<u8>> = std::fs::read_to_string(&out)
        .expect("values")
        .lines()
        .map(|l| hex::decode(l.trim()).expect("hex"))
        .collect();
    let id = schema_id(&values[0]);
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            framed(id, &[0, 0xff, 0xff, 0xff]),
            "protobuf_decode",
        ),
        (
            "no-such-message",
            framed(id, &[2, 18, 1]),
            "protobuf_decode",
        ),
    ];
    let topics = format!(
        r#"topics:
  - topic: {PROTO_TOPIC}
    format: protobuf
    on_no_match: dlq
    fields:
      id: {{path: id}}
      timestamp: {{path: at}}
      channel_type: SITE
      user_id: {{path: user}}
    rules:
      - when: {{field: kind, equals: HOME}}
        event_type: HOME
      - when: {{all: [{{field: kind, equals: PAGE}}, {{field: "items[0].sku", equals: s1}}, {{field: attrs.color, equals: red}}]}}
        event_type: PAGE_VIEW
        fields:
          page_id: {{path: page}}
"#
    );
    let text = config_text_with_topics(&b, &sb.base_url(), GROUP, "", "", &topics)
        + &format!("schema_registry:\n  url: {url}\n");
    let bridge = Bridge::start(&text);
    produce(&bootstrap, PROTO_TOPIC, &keyed(values, &views));
    let bad_records: Vec<Record> = bad
        .iter()
        .map(|(label, v, _)| (0, Some(label.as_bytes().to_vec()), Some(v.clone())))
        .collect();
    produce(&bootstrap, PROTO_TOPIC, &bad_records);
    wait_all_accepted(&sb, &views, Duration::from_secs(60), |got| {
        format!("lost {} ids", missing(&views, got))
    })
    .await;
    bridge
        .wait(
            Duration::from_secs(30),
            "the bad values dead-lettered",
            || bridge.dead_lettered() == bad.len() as u64,
        )
        .await;
    bridge.stop().await;
    let delivered = sb.accepted_ids().await.expect("record");
    let counts = counts(&delivered);
    assert_eq!(counts.len(), views.len());
    assert!(counts.values().all(|n| *n == 1), "each once");
    // The PAGE views took their page id from the StringValue wrapper.
    let page_views: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("accepted.jsonl"))
            .expect("record")
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event_type"] == "PAGE_VIEW")
            .collect();
    assert_eq!(page_views.len(), 100);
    assert!(page_views
        .iter()
        .all(|e| e["page_id"].as_str().is_some_and(|p| p.starts_with("p-"))));
    let dlq = read_all(&bootstrap, &format!("{GROUP}.dlq"), 1);
    let seen: BTreeMap<String, (String, String)> = dlq
        .iter()
        .map(|m| {
            let h = headers(m);
            (
                String::from_utf8_lossy(rdkafka::Message::key(m).unwrap_or_default()).into_owned(),
                (
                    h.get("mcm.error.reason").cloned().unwrap_or_default(),
                    h.get("mcm.schema.id").cloned().unwrap_or_default(),
                ),
            )
        })
        .collect();
    let want: BTreeMap<String, (String, String)> = bad
        .iter()
        .map(|(l, _, r)| (l.to_string(), (r.to_string(), id.to_string())))
        .collect();
    assert_eq!(seen, want);
    registry.shutdown().await.expect("registry stops");
    sb.shutdown().await.expect("sandbox stops");
}

/// A live reload that turns a JSON block into `format: avro` and brings a `schema_registry` in:
/// this process has no registry client (that section needs a restart), so the Avro messages are
/// held — never dead-lettered — and the fetch is counted as refused until it is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reload_to_avro_without_a_restart_holds_the_messages_instead_of_dead_lettering() {
    use mcm_bridge::observe::metrics::Metrics;
    use mcm_bridge::pipeline::reload::Reloader;
    use mcm_bridge::pipeline::Controls;
    use std::sync::Arc;
    let Some(backend) = Backend::apache(Protocol::Classic) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let registry = spawn_registry(RegistryConfig::default())
        .await
        .expect("registry");
    let url = registry.base_url();
    let b = backend.broker(AVRO_TOPIC, 2);
    b.create_topic(JSON_TOPIC, 2);
    b.create_topic(&format!("{GROUP}.dlq"), 1);
    let bootstrap = b.bootstrap_servers().to_string();
    let file = dir.path().join("bridge.yaml");
    let json_topics = topics()
        .replacen("format: avro", "format: json", 1)
        .replacen("format: json_schema", "format: json", 1);
    std::fs::write(
        &file,
        config_text_with_topics(&b, &sb.base_url(), GROUP, "", "", &json_topics),
    )
    .expect("config");
    let (cfg, plan) = mcm_bridge::cli::load_config_and_plan(&file).expect("config");
    let metrics = Arc::new(Metrics::new());
    let (mut reloader, reloads) = Reloader::new(file.clone(), &cfg, &plan, metrics.clone());
    let bridge = Bridge::start_with(
        cfg,
        plan,
        metrics,
        Controls {
            reloads: Some(reloads),
            tap: None,
        },
    );
    // Same topics, now Avro, and a registry section (which only a restart applies).
    std::fs::write(
        &file,
        config_text_with_topics(&b, &sb.base_url(), GROUP, "", "", &topics())
            + &format!("schema_registry:\n  url: {url}\n  max_backoff: 500ms\n"),
    )
    .expect("config");
    assert_eq!(reloader.reload("test").await, "applied");
    let avro_ids = ids("r", 50);
    let values = encode(&url, AVRO_TOPIC, "avro", AVRO_V1, &lines("r", 50));
    produce(&bootstrap, AVRO_TOPIC, &keyed(values, &avro_ids));
    bridge
        .wait(
            Duration::from_secs(30),
            "the fetch refused for want of a client",
            || {
                bridge
                    .metrics
                    .schema_fetches
                    .with_label_values(&["refused"])
                    .get()
                    >= 1
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bridge.dead_lettered(), 0, "nothing dead-lettered for it");
    assert!(bridge.metrics.schema_wait_messages.get() > 0, "held");
    assert!(
        accepted_set(&sb).await.is_empty(),
        "nothing delivered from an Avro topic read without its schema"
    );
    let ends = end_offsets(&bootstrap, AVRO_TOPIC, 2);
    assert!(
        committed(&bootstrap, GROUP, AVRO_TOPIC, 2)
            .iter()
            .zip(&ends)
            .all(|(c, e)| c.unwrap_or(0) < *e || *e == 0),
        "the held messages are not committed"
    );
    bridge.stop().await;
    registry.shutdown().await.expect("registry stops");
    sb.shutdown().await.expect("sandbox stops");
}
