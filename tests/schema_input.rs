//! `map` and `test` with schema'd input (issue 19, item 4): a JSON message encoded with a schema
//! taken from the registry by subject and version (framed with the id the registry gives it,
//! references resolved) or from a `.proto` file, then read by the pipeline's own decode. The
//! registry is the sandbox's (Confluent's REST contract) over real HTTP, and the commands run as
//! the shipped binary does.

use mcm_bridge::sandbox::registry::{spawn_registry, Reference, RegistryConfig, SchemaType};
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const COMMON: &str = r#"syntax = "proto3";
package acme.common;
message Device { string os = 1; }
"#;

const PAGE_VIEW: &str = r#"syntax = "proto3";
package acme;
import "google/protobuf/timestamp.proto";
import "common.proto";
message PageView {
  string id = 1;
  string user = 2;
  google.protobuf.Timestamp at = 3;
  acme.common.Device device = 4;
  message Click { string id = 1; string user = 2; int64 at_ms = 3; }
}
"#;

const AVRO_V1: &str = r#"{"type":"record","name":"V","fields":[
  {"name":"id","type":"string"},{"name":"user","type":"string"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

/// v2 renames `user` to `uid`: a message written for v1 does not fit it.
const AVRO_V2: &str = r#"{"type":"record","name":"V","fields":[
  {"name":"id","type":"string"},{"name":"uid","type":"string"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;

fn config(dir: &Path, registry: &str) -> std::path::PathBuf {
    let text = format!(
        r#"kafka:
  bootstrap_servers: 127.0.0.1:9
  group_id: g
mcm:
  platform_name: Acme
  platform_id: ACME
  api_key: k
schema_registry:
  url: {registry}
topics:
  - topic: views.pb
    format: protobuf
    rules:
      - when: {{field: device.os, exists: true}}
        event_type: HOME
        fields:
          id: {{path: id}}
          timestamp: {{path: at}}
          channel_type: APP
          user_id: {{path: user}}
          device: {{os: {{path: device.os}}}}
      - event_type: HOME
        fields:
          id: {{path: id}}
          timestamp: {{first: [{{path: at_ms}}, {{path: at}}]}}
          channel_type: SITE
          user_id: {{path: user}}
  - topic: views.avro
    format: avro
    rules:
      - event_type: HOME
        fields:
          id: {{path: id}}
          timestamp: {{path: ts}}
          channel_type: SITE
          user_id: {{path: user}}
"#
    );
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("config");
    path
}

fn map(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args(["map", "--config"])
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("map");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    child.wait_with_output().expect("map")
}

fn event(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("an event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_and_test_encode_json_with_a_registered_or_file_schema() {
    let registry = spawn_registry(RegistryConfig::default())
        .await
        .expect("registry");
    registry
        .register("common.proto", SchemaType::Protobuf, COMMON, &[])
        .expect("common");
    registry
        .register(
            "views.pb-value",
            SchemaType::Protobuf,
            PAGE_VIEW,
            &[Reference {
                name: "common.proto".into(),
                subject: "common.proto".into(),
                version: 1,
            }],
        )
        .expect("page view");
    registry
        .register("views.avro-value", SchemaType::Avro, AVRO_V1, &[])
        .expect("v1");
    registry
        .register("views.avro-value", SchemaType::Avro, AVRO_V2, &[])
        .expect("v2");
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = config(dir.path(), &registry.base_url());
    let at = "2026-12-06T10:00:00.250Z";
    let at_ms = 1_796_551_200_250_i64;

    // Protobuf, the latest version of the subject, its reference resolved by the registry.
    let json = format!(r#"{{"id":"v-1","user":"u-1","at":"{at}","device":{{"os":"iOS"}}}}"#);
    let out = map(
        &cfg,
        &["--topic", "views.pb", "--schema-subject", "views.pb-value"],
        &json,
    );
    let e = event(&out);
    assert_eq!(
        (e["id"].as_str(), e["timestamp"].as_i64()),
        (Some("v-1"), Some(at_ms))
    );
    assert_eq!(e["device"]["os"], "iOS", "{e}");
    // A nested message type, by name.
    let click = format!(r#"{{"id":"c-1","user":"u-2","atMs":"{at_ms}"}}"#);
    let e = event(&map(
        &cfg,
        &[
            "--topic",
            "views.pb",
            "--schema-subject",
            "views.pb-value",
            "--proto-message",
            "acme.PageView.Click",
        ],
        &click,
    ));
    assert_eq!(e["channel_type"], "SITE", "the second rule: {e}");
    // A .proto file (Google's well-known types need no import path).
    let proto = dir.path().join("pv.proto");
    std::fs::write(
        &proto,
        PAGE_VIEW
            .replace("import \"common.proto\";\n", "")
            .replace("acme.common.Device device = 4;", ""),
    )
    .expect("proto");
    let json_no_device = format!(r#"{{"id":"v-3","user":"u-1","at":"{at}"}}"#);
    let e = event(&map(
        &cfg,
        &[
            "--topic",
            "views.pb",
            "--schema-file",
            proto.to_str().expect("utf-8"),
        ],
        &json_no_device,
    ));
    assert_eq!(e["id"], "v-3");

    // Avro by version: v1 fits the message, latest (v2) does not, and says so.
    let v = format!(r#"{{"id":"a-1","user":"u-9","ts":{at_ms}}}"#);
    let e = event(&map(
        &cfg,
        &[
            "--topic",
            "views.avro",
            "--schema-subject",
            "views.avro-value",
            "--schema-version",
            "1",
        ],
        &v,
    ));
    assert_eq!(e["user_id"], "u-9");
    let out = map(
        &cfg,
        &[
            "--topic",
            "views.avro",
            "--schema-subject",
            "views.avro-value",
        ],
        &v,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not fit the schema"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = map(
        &cfg,
        &[
            "--topic",
            "views.avro",
            "--schema-subject",
            "views.avro-value",
            "--schema-version",
            "7",
        ],
        &v,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no version 7"));

    // Case files: schema_subject/schema_version and proto_message; a wrong expectation fails.
    let cases = dir.path().join("cases.yaml");
    std::fs::write(
        &cases,
        format!(
            r#"- name: protobuf from the registry
  topic: views.pb
  schema_subject: views.pb-value
  message: {json}
  expect: {{event: {{id: v-1, event_type: HOME, timestamp: {at_ms}, channel_type: APP, user_id: u-1, device: {{os: iOS}}}}}}
- name: a nested message
  topic: views.pb
  schema_subject: views.pb-value
  proto_message: acme.PageView.Click
  message: {click}
  expect: {{event: {{id: c-1, event_type: HOME, timestamp: {at_ms}, channel_type: SITE, user_id: u-2}}}}
- name: avro v1
  topic: views.avro
  schema_subject: views.avro-value
  schema_version: 1
  message: {v}
  expect: {{event: {{id: a-1, event_type: HOME, timestamp: {at_ms}, channel_type: SITE, user_id: u-9}}}}
- name: a wrong expectation
  topic: views.avro
  schema_subject: views.avro-value
  schema_version: 1
  message: {v}
  expect: {{event: {{id: a-1, event_type: HOME, timestamp: {at_ms}, channel_type: SITE, user_id: nobody}}}}
"#
        ),
    )
    .expect("cases");
    let out = Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args(["test", "--config"])
        .arg(&cfg)
        .arg(&cases)
        .output()
        .expect("test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 passed, 1 failed"), "{stdout}");
    assert!(stdout.contains("FAIL  a wrong expectation"), "{stdout}");
    registry.shutdown().await.expect("registry stops");
}
