//! Schema'd topics against a real schema registry (issue 19, item 6): Apicurio Registry's
//! Confluent-compatible API (`/apis/ccompat/v7`, built from Maven Central by
//! `scripts/apicurio.sh`), values written by Confluent's own Python serializers registering
//! there (Avro in two versions, JSON Schema, Protobuf with an import registered as a reference),
//! consumed from Apache Kafka and delivered to the MCM sandbox. Mid-run the registry is
//! SIGKILLed while values with a schema id the bridge has not seen arrive: they wait (nothing
//! dead-lettered, nothing committed past them) while the topics whose schemas are cached go on;
//! restarted, it serves them and every id is delivered exactly once. An id the registry never
//! had is dead-lettered as `schema_not_found` on its own 404. `doctor` checks the rules' paths
//! against the subjects there.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::apicurio::Apicurio;
use support::python_serializers::schema_produce;
use support::*;

const AVRO: &str = "orders.avro";
const JSON: &str = "views.json";
const PB: &str = "views.pb";
const GROUP: &str = "apicurio";

const AVRO_V1: &str = r#"{"type":"record","name":"Order","namespace":"acme","fields":[
  {"name":"id","type":"string"},{"name":"user","type":"string"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PAID","PENDING"]}}]}"#;
/// v2 adds a field: a new schema id, which the bridge first meets while the registry is dead.
const AVRO_V2: &str = r#"{"type":"record","name":"Order","namespace":"acme","fields":[
  {"name":"id","type":"string"},{"name":"user","type":"string"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PAID","PENDING"]}},
  {"name":"coupon","type":["null","string"],"default":null}]}"#;
const JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#","title":"View",
  "type":"object","properties":{"id":{"type":"string"},"user":{"type":"string"},
  "ts":{"type":"integer"},"status":{"type":"string"}},"required":["id","user","ts"]}"#;
const VIEW_PROTO: &str = r#"syntax = "proto3";
package acme;
import "google/protobuf/timestamp.proto";
import "common.proto";
message View {
  string id = 1;
  string user = 2;
  google.protobuf.Timestamp ts = 3;
  acme.common.Device device = 4;
  string status = 5;
}
"#;
const COMMON_PROTO: &str =
    "syntax = \"proto3\";\npackage acme.common;\nmessage Device { string os = 1; }\n";

fn block(topic: &str, format: &str) -> String {
    format!(
        r#"  - topic: {topic}
    format: {format}
    on_no_match: dlq
    rules:
      - when: {{field: status, equals: PAID}}
        event_type: HOME
        fields:
          id: {{path: id}}
          timestamp: {{path: ts}}
          channel_type: SITE
          user_id: {{path: user}}
"#
    )
}

/// `n` records `prefix-i` as JSON lines (`ts` as epoch ms, or RFC 3339 for Protobuf).
fn records(prefix: &str, n: usize, rfc3339: bool) -> (Vec<String>, Vec<String>) {
    let ts = chrono_now_ms() - 60_000;
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
    let lines = ids
        .iter()
        .map(|id| {
            let mut v = serde_json::json!({"id": id, "user": "u-1", "status": "PAID", "ts": ts});
            if rfc3339 {
                v["ts"] = chrono::DateTime::from_timestamp_millis(ts)
                    .expect("ts")
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .into();
                v["device"] = serde_json::json!({"os": "iOS"});
            }
            v.to_string()
        })
        .collect();
    (ids, lines)
}

/// Values framed by Confluent's serializer for `format`, registering in the registry at `url`.
fn encode(
    dir: &std::path::Path,
    url: &str,
    topic: &str,
    format: &str,
    schema: &std::path::Path,
    lines: &[String],
) -> Vec<Vec<u8>> {
    let out = dir.join(format!("{topic}-{format}.hex"));
    let mut args = vec![
        "--registry",
        url,
        "--format",
        format,
        "--schema-file",
        schema.to_str().expect("utf-8"),
        "--topic",
        topic,
        "--raw-out",
        out.to_str().expect("utf-8"),
    ];
    if format == "protobuf" {
        args.extend(["--message", "acme.View"]);
    }
    schema_produce(&args, lines);
    std::fs::read_to_string(&out)
        .expect("values")
        .lines()
        .map(|l| hex::decode(l.trim()).expect("hex"))
        .collect()
}

fn keyed(values: Vec<Vec<u8>>, ids: &[String]) -> Vec<Record> {
    values
        .into_iter()
        .zip(ids)
        .enumerate()
        .map(|(i, (v, id))| ((i % 2) as i32, Some(id.as_bytes().to_vec()), Some(v)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn avro_protobuf_and_json_schema_through_apicurio_survive_its_sigkill() {
    use prost::Message as _;
    let Some(backend) = Backend::apache(Protocol::Classic) else {
        return;
    };
    let Some(mut registry) = Apicurio::start().await else {
        return;
    };
    let url = registry.url();
    let dir = tempfile::tempdir().expect("tmp");
    let sb = sandbox(dir.path()).await;
    let b = backend.broker(AVRO, 2);
    b.create_topic(JSON, 2);
    b.create_topic(PB, 2);
    b.create_topic(&format!("{GROUP}.dlq"), 1);
    let bootstrap = b.bootstrap_servers().to_string();

    // Schemas as files, the Protobuf one as the descriptor set Confluent's serializer reads.
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("schema");
        p
    };
    let (v1_file, v2_file, json_file) = (
        file("v1.avsc", AVRO_V1),
        file("v2.avsc", AVRO_V2),
        file("view.json", JSON_SCHEMA),
    );
    let protos = dir.path().join("protos");
    std::fs::create_dir_all(&protos).expect("dir");
    std::fs::write(protos.join("view.proto"), VIEW_PROTO).expect("proto");
    std::fs::write(protos.join("common.proto"), COMMON_PROTO).expect("proto");
    let fds = protox::compile(["view.proto"], [&protos]).expect("compiles");
    let fds_file = file("view.fds", "");
    std::fs::write(&fds_file, fds.encode_to_vec()).expect("fds");

    // Encoded up front, while the registry is up: every schema gets its id here.
    let (v1_ids, v1_lines) = records("a1", 200, false);
    let (v2_ids, v2_lines) = records("a2", 200, false);
    let (json_ids, json_lines) = records("j", 200, false);
    let (pb_ids, pb_lines) = records("p", 200, true);
    let v1 = encode(dir.path(), &url, AVRO, "avro", &v1_file, &v1_lines);
    let v2 = encode(dir.path(), &url, AVRO, "avro", &v2_file, &v2_lines);
    let mut js = encode(
        dir.path(),
        &url,
        JSON,
        "json_schema",
        &json_file,
        &json_lines,
    );
    let mut pb = encode(dir.path(), &url, PB, "protobuf", &fds_file, &pb_lines);
    let id = |v: &[u8]| u32::from_be_bytes([v[1], v[2], v[3], v[4]]);
    assert_ne!(id(&v1[0]), id(&v2[0]), "v2 is a new schema id");
    let (js_late, pb_late) = (js.split_off(100), pb.split_off(100));
    let (json_early, json_late) = json_ids.split_at(100);
    let (pb_early, pb_late_ids) = pb_ids.split_at(100);

    let topics = format!(
        "topics:\n{}{}{}",
        block(AVRO, "avro"),
        block(JSON, "json_schema"),
        block(PB, "protobuf")
    );
    let text = config_text_with_topics(&b, &sb.base_url(), GROUP, "", "", &topics)
        + &format!("schema_registry:\n  url: {url}\n  max_backoff: 500ms\n  timeout: 2s\n");

    // doctor: the registry answers, and each block's paths are in its latest schema there.
    let (cfg, plan) = load(&text);
    let checks =
        mcm_bridge::doctor::registry::check(cfg.schema_registry.as_ref().expect("registry"), &plan)
            .await;
    let shown: Vec<String> = checks
        .iter()
        .map(|c| format!("{:?} {} {}: {}", c.status, c.name, c.subject, c.detail))
        .collect();
    assert_eq!(checks.len(), 4, "{shown:#?}");
    assert!(
        checks
            .iter()
            .all(|c| c.status == mcm_bridge::doctor::Status::Pass),
        "{shown:#?}"
    );

    let bridge = Bridge::start(&text);
    produce(&bootstrap, AVRO, &keyed(v1, &v1_ids));
    produce(&bootstrap, JSON, &keyed(js, json_early));
    produce(&bootstrap, PB, &keyed(pb, pb_early));
    let early: Vec<String> = v1_ids
        .iter()
        .chain(json_early)
        .chain(pb_early)
        .cloned()
        .collect();
    wait_all_accepted(&sb, &early, Duration::from_secs(90), |got| {
        format!("lost {} of the first ids", missing(&early, got))
    })
    .await;

    // SIGKILL the registry; v2 values (an id not seen yet) arrive, and more of the others.
    registry.kill();
    let held_from = end_offsets(&bootstrap, AVRO, 2);
    produce(&bootstrap, AVRO, &keyed(v2, &v2_ids));
    produce(&bootstrap, JSON, &keyed(js_late, json_late));
    produce(&bootstrap, PB, &keyed(pb_late, pb_late_ids));
    bridge
        .wait(
            Duration::from_secs(30),
            "fetches failing while the registry is dead",
            || {
                bridge
                    .metrics
                    .schema_fetches
                    .with_label_values(&["unavailable"])
                    .get()
                    >= 2
            },
        )
        .await;
    // The topics whose schemas are cached are delivered while the registry is dead.
    let late: Vec<String> = json_late.iter().chain(pb_late_ids).cloned().collect();
    wait_all_accepted(&sb, &late, Duration::from_secs(30), |got| {
        format!(
            "{} cached-schema ids not delivered during the outage",
            missing(&late, got)
        )
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (p, (c, held)) in committed(&bootstrap, GROUP, AVRO, 2)
        .iter()
        .zip(&held_from)
        .enumerate()
    {
        assert!(
            c.unwrap_or(0) <= *held,
            "partition {p}: committed {c:?} past the held messages from {held}"
        );
    }
    assert_eq!(
        bridge.dead_lettered(),
        0,
        "nothing dead-lettered for the outage"
    );
    let got = accepted_set(&sb).await;
    assert!(
        v2_ids.iter().all(|i| !got.contains(i)),
        "v2 waits for its schema"
    );

    // Restarted (same database): v2 is fetched and delivered.
    registry.restart().await;
    let all: Vec<String> = early.iter().chain(&late).chain(&v2_ids).cloned().collect();
    wait_all_accepted(&sb, &all, Duration::from_secs(60), |got| {
        format!("lost {} ids", missing(&all, got))
    })
    .await;
    // An id the registry never had: its own 404 (error code 40403), trusted at the third answer.
    let unknown = {
        let mut v = vec![0, 0, 1, 0x86, 0x9f]; // id 99999
        v.extend_from_slice(&[2, b'x']);
        v
    };
    produce(
        &bootstrap,
        AVRO,
        &[(0, Some(b"unknown-id".to_vec()), Some(unknown))],
    );
    bridge
        .wait(
            Duration::from_secs(30),
            "the unknown id dead-lettered",
            || bridge.dead_lettered() == 1,
        )
        .await;
    bridge.stop().await;

    let delivered = sb.accepted_ids().await.expect("record");
    let counts = counts(&delivered);
    assert_eq!(counts.len(), all.len(), "every id delivered");
    assert!(counts.values().all(|n| *n == 1), "each exactly once");
    let dlq: BTreeMap<String, (String, String)> = read_all(&bootstrap, &format!("{GROUP}.dlq"), 1)
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
    assert_eq!(
        dlq,
        BTreeMap::from([(
            "unknown-id".to_string(),
            ("schema_not_found".to_string(), "99999".to_string())
        )])
    );
    sb.shutdown().await.expect("sandbox stops");
}
