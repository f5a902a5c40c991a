//! The sandbox's Schema Registry against an independent client: confluent-kafka-python's own
//! `SchemaRegistryClient`, `AvroSerializer` and `JSONSerializer` (tests/support/python_serializers.rs
//! builds their venv once per machine), plus raw HTTP for the answers' exact shapes.

mod support;

use mcm_bridge::sandbox::registry::{
    spawn_registry, RegistryConfig, RegistryHandle, RouteKind, SchemaType,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use support::python_serializers::{run_python, schema_produce, schema_produce_output};

const USER_V1: &str = r#"{"type": "record", "name": "User", "namespace": "com.acme",
  "fields": [{"name": "id", "type": "string"}, {"name": "clicks", "type": "long"}]}"#;
const USER_V2: &str = r#"{"type": "record", "name": "User", "namespace": "com.acme",
  "fields": [{"name": "id", "type": "string"}, {"name": "clicks", "type": "long"},
             {"name": "country", "type": "string", "default": "US"}]}"#;
const USER_JSON_SCHEMA: &str = r#"{"$schema": "http://json-schema.org/draft-07/schema#",
  "title": "User", "type": "object",
  "properties": {"id": {"type": "string"}, "clicks": {"type": "integer"}},
  "required": ["id", "clicks"]}"#;

fn records() -> Vec<String> {
    (1..=3)
        .map(|i| json!({"id": format!("u{i}"), "clicks": i * 10}).to_string())
        .collect()
}

/// A scratch directory holding schema files and the encoder's output.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempdir().expect("a temp dir"))
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).expect("write a scratch file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Encodes `records()` with `schema` through schema_produce.py `--raw-out`; returns the values.
fn encode(reg: &RegistryHandle, format: &str, schema: &str, extra: &[&str]) -> Vec<Vec<u8>> {
    let dir = Scratch::new();
    let schema_file = dir.file("schema", schema);
    let out = dir.path("values.hex");
    let url = reg.base_url();
    let mut args = vec![
        "--registry",
        &url,
        "--format",
        format,
        "--schema-file",
        s(&schema_file),
        "--topic",
        "users",
        "--raw-out",
        s(&out),
    ];
    args.extend_from_slice(extra);
    let stdout = schema_produce(&args, &records());
    assert!(stdout.contains("produced 3"), "{stdout}");
    std::fs::read_to_string(&out)
        .expect("the encoder wrote its values")
        .lines()
        .map(|l| hex::decode(l).expect("hex lines"))
        .collect()
}

/// The schema id in a Confluent-framed value, after checking the magic byte.
fn framed_id(value: &[u8]) -> u32 {
    assert!(value.len() > 5, "value too short: {value:?}");
    assert_eq!(value[0], 0, "magic byte");
    u32::from_be_bytes([value[1], value[2], value[3], value[4]])
}

async fn get(reg: &RegistryHandle, path: &str) -> (u16, Value) {
    let resp = reqwest::get(format!("{}{path}", reg.base_url()))
        .await
        .expect("the registry answers");
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").cloned();
    assert_eq!(
        content_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("application/vnd.schemaregistry.v1+json"),
        "GET {path}"
    );
    (status, resp.json().await.expect("a JSON answer"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("test schemas are JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_serializer_registers_once_and_frames_values_with_the_assigned_id() {
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    let values = encode(&reg, "avro", USER_V1, &["--fastavro-check"]);
    assert_eq!(values.len(), 3);
    let id = framed_id(&values[0]);
    assert!(values.iter().all(|v| framed_id(v) == id));

    let (status, body) = get(&reg, &format!("/schemas/ids/{id}")).await;
    assert_eq!(status, 200);
    let schema = body["schema"].as_str().expect("schema is a string");
    assert_eq!(json_of(schema), json_of(USER_V1));
    assert!(body.get("schemaType").is_none(), "omitted for AVRO: {body}");
    assert!(
        body.get("references").is_none(),
        "omitted when empty: {body}"
    );
    assert_eq!(reg.schema_by_id_hits(), 1);

    // What the serializer called (auto.register.schemas=true, use.latest.version=false): its
    // default subject name strategy asks for the topic's associations (404 here, so it falls back
    // to `<topic>-value`), then one registration, nothing else.
    assert_eq!(reg.hits(RouteKind::Associations), 1);
    assert_eq!(reg.hits(RouteKind::Register), 1);
    for kind in [
        RouteKind::Lookup,
        RouteKind::SubjectVersion,
        RouteKind::Config,
    ] {
        assert_eq!(reg.hits(kind), 0, "{kind:?}");
    }

    // Another process registering the same schema gets the same id and adds no version.
    let again = encode(&reg, "avro", USER_V1, &[]);
    assert_eq!(framed_id(&again[0]), id);
    assert_eq!(get(&reg, "/subjects").await.1, json!(["users-value"]));
    assert_eq!(
        get(&reg, "/subjects/users-value/versions").await.1,
        json!([1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_schema_under_the_subject_is_version_2_with_a_new_id() {
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    let id1 = framed_id(&encode(&reg, "avro", USER_V1, &[])[0]);
    let id2 = framed_id(&encode(&reg, "avro", USER_V2, &[])[0]);
    assert_ne!(id1, id2);
    assert_eq!(
        get(&reg, "/subjects/users-value/versions").await.1,
        json!([1, 2])
    );

    let (status, latest) = get(&reg, "/subjects/users-value/versions/latest").await;
    assert_eq!(status, 200);
    assert_eq!(latest["subject"], "users-value");
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"], id2);
    assert_eq!(
        json_of(latest["schema"].as_str().unwrap()),
        json_of(USER_V2)
    );

    // The raw route answers the schema itself, unescaped.
    let raw = reqwest::get(format!(
        "{}/subjects/users-value/versions/1/schema",
        reg.base_url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(raw, USER_V1);

    // The same schema under another subject keeps its id; the Python client's lookup finds it.
    let code = r#"
import sys
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
c = SchemaRegistryClient({"url": sys.argv[1]})
print(c.register_schema("other-value", Schema(sys.argv[2], "AVRO")))
found = c.lookup_schema("users-value", Schema(sys.argv[2], "AVRO"))
print(found.schema_id, found.version, found.subject)
"#;
    let out = run_python(code, &[&reg.base_url(), USER_V1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, format!("{id1}\n{id1} 1 users-value\n"));
    assert_eq!(reg.hits(RouteKind::Lookup), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_are_stored_and_answered_with_the_schema() {
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    let address = r#"{"type": "record", "name": "Address", "namespace": "com.acme",
      "fields": [{"name": "city", "type": "string"}]}"#;
    let customer = r#"{"type": "record", "name": "Customer", "namespace": "com.acme",
      "fields": [{"name": "id", "type": "string"}, {"name": "home", "type": "com.acme.Address"}]}"#;
    let code = r#"
import sys
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
url, address, customer = sys.argv[1:4]
c = SchemaRegistryClient({"url": url})
print(c.register_schema("address", Schema(address, "AVRO")))
ref = SchemaReference("com.acme.Address", "address", 1)
cid = c.register_schema("customer-value", Schema(customer, "AVRO", [ref]))
fetched = SchemaRegistryClient({"url": url}).get_schema(cid)
print(cid, [(r.name, r.subject, r.version) for r in fetched.references])
"#;
    let out = run_python(code, &[&reg.base_url(), address, customer]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "1", "{stdout}");
    assert_eq!(
        lines[1], "2 [('com.acme.Address', 'address', 1)]",
        "{stdout}"
    );

    let (_, body) = get(&reg, "/schemas/ids/2").await;
    assert_eq!(
        body["references"],
        json!([{"name": "com.acme.Address", "subject": "address", "version": 1}])
    );

    // A reference to a version that does not exist is refused.
    let resp = reqwest::Client::new()
        .post(format!("{}/subjects/x/versions", reg.base_url()))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(
            json!({"schema": customer, "references":
                   [{"name": "com.acme.Address", "subject": "address", "version": 9}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error_code"], 42201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_registry_fails_the_python_client_until_it_is_back() {
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    let dir = Scratch::new();
    let schema = dir.file("user.avsc", USER_V1);
    let out = dir.path("values.hex");
    let url = reg.base_url();
    let args = [
        "--registry",
        &url,
        "--format",
        "avro",
        "--schema-file",
        s(&schema),
        "--topic",
        "users",
        "--raw-out",
        s(&out),
    ];
    reg.set_unavailable(true);
    let failed = schema_produce_output(&args, &records());
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("50003"), "{stderr}");
    // The client's first request (the subject name strategy's association lookup) is retried on
    // 503 (max.retries is 3 in 2.16.2's code, though its docstring says 2), then it gives up
    // before registering: every attempt was seen.
    assert_eq!(reg.hits(RouteKind::Associations), 4);
    assert_eq!(reg.hits(RouteKind::Register), 0);
    let (status, body) = {
        let resp = reqwest::get(format!("{url}/schemas/ids/1")).await.unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!((status, &body["error_code"]), (503, &json!(50003)));
    assert_eq!(reg.schema_by_id_hits(), 1, "refused requests count too");

    reg.set_unavailable(false);
    assert!(schema_produce(&args, &records()).contains("produced 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_required_when_configured() {
    let cfg = RegistryConfig {
        basic_auth: Some(("sr-user".into(), "s3cret:x".into())),
    };
    let reg = spawn_registry(cfg).await.unwrap();
    let dir = Scratch::new();
    let schema = dir.file("user.avsc", USER_V1);
    let out = dir.path("values.hex");
    let url = reg.base_url();
    let args = |auth: &'static str| {
        let mut a = vec![
            "--registry".to_string(),
            url.clone(),
            "--format".into(),
            "avro".into(),
            "--schema-file".into(),
            s(&schema).into(),
            "--topic".into(),
            "users".into(),
            "--raw-out".into(),
            s(&out).into(),
        ];
        if !auth.is_empty() {
            a.extend(["--basic-auth".to_string(), auth.to_string()]);
        }
        a
    };
    for wrong in ["", "sr-user:wrong"] {
        let a = args(wrong);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let failed = schema_produce_output(&a, &records());
        assert!(
            !failed.status.success(),
            "credentials {wrong:?} were accepted"
        );
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains("401"), "{stderr}");
    }
    let resp = reqwest::get(format!("{url}/subjects")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"error_code": 401, "message": "Unauthorized"}));

    let a = args("sr-user:s3cret:x");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    assert!(schema_produce(&a, &records()).contains("produced 3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_serializer_registers_a_json_schema() {
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    let values = encode(&reg, "json_schema", USER_JSON_SCHEMA, &[]);
    let id = framed_id(&values[0]);
    let payload: Value = serde_json::from_slice(&values[0][5..]).expect("a JSON payload");
    assert_eq!(payload, json!({"id": "u1", "clicks": 10}));

    let (_, body) = get(&reg, &format!("/schemas/ids/{id}")).await;
    assert_eq!(body["schemaType"], "JSON");
    assert_eq!(
        json_of(body["schema"].as_str().unwrap()),
        json_of(USER_JSON_SCHEMA)
    );
    // The same text as AVRO would be another schema; as JSON again, the same one.
    let same = reg.register("elsewhere", SchemaType::Json, USER_JSON_SCHEMA, &[]);
    assert_eq!(same, Ok(id));
}

#[tokio::test]
async fn errors_and_fixed_answers_have_confluents_shapes() {
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    let id = reg
        .register("users-value", SchemaType::Avro, USER_V1, &[])
        .unwrap();
    assert_eq!(id, 1);
    let cases = [
        (
            "/schemas/ids/7",
            404,
            json!({"error_code": 40403, "message": "Schema 7 not found"}),
        ),
        ("/schemas/types", 200, json!(["JSON", "PROTOBUF", "AVRO"])),
        ("/config", 200, json!({"compatibilityLevel": "BACKWARD"})),
        (
            "/config/users-value?defaultToGlobal=true",
            200,
            json!({"compatibilityLevel": "BACKWARD"}),
        ),
        (
            "/nope",
            404,
            json!({"error_code": 404, "message": "HTTP 404 Not Found"}),
        ),
    ];
    for (path, status, body) in cases {
        assert_eq!(get(&reg, path).await, (status, body), "GET {path}");
    }
    let codes = [
        ("/subjects/nope/versions", 404, 40401),
        ("/subjects/users-value/versions/2", 404, 40402),
        ("/subjects/users-value/versions/zero", 422, 42202),
        ("/config/users-value", 404, 40408),
    ];
    for (path, status, code) in codes {
        let (got_status, body) = get(&reg, path).await;
        assert_eq!(
            (got_status, &body["error_code"]),
            (status, &json!(code)),
            "{path}: {body}"
        );
        assert!(body["message"].is_string());
    }
    assert_eq!(reg.schema_by_id_hits(), 1);

    let post = |body: &str, content_type: &str| {
        reqwest::Client::new()
            .post(format!("{}/subjects/users-value/versions", reg.base_url()))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
    };
    let invalid = post(r#"{"schema": "{not json"}"#, "application/json")
        .await
        .unwrap();
    assert_eq!(invalid.status().as_u16(), 422);
    assert_eq!(invalid.json::<Value>().await.unwrap()["error_code"], 42201);
    let plain = post(r#"{"schema": "\"string\""}"#, "text/plain")
        .await
        .unwrap();
    assert_eq!(plain.status().as_u16(), 415);
    let ok = post(
        &json!({"schema": USER_V1, "schemaType": "AVRO"}).to_string(),
        "application/vnd.schemaregistry+json",
    )
    .await
    .unwrap();
    assert_eq!(ok.json::<Value>().await.unwrap(), json!({"id": 1}));
    reg.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_records_reach_kafka_keyed_and_framed() {
    use rdkafka::Message;
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    let broker = support::broker("users", 1);
    let dir = Scratch::new();
    let schema = dir.file("user.avsc", USER_V1);
    let url = reg.base_url();
    let args = [
        "--registry",
        &url,
        "--format",
        "avro",
        "--schema-file",
        s(&schema),
        "--topic",
        "users",
        "--bootstrap",
        broker.bootstrap_servers(),
        "--key-field",
        "id",
    ];
    let stdout = schema_produce(&args, &records());
    assert_eq!(stdout.trim(), "produced 3");

    let messages = support::read_all(broker.bootstrap_servers(), "users", 1);
    let keys: Vec<&[u8]> = messages.iter().filter_map(|m| m.key()).collect();
    assert_eq!(keys, [&b"u1"[..], b"u2", b"u3"]);
    let id = reg.register("users-value", SchemaType::Avro, USER_V1, &[]);
    for m in &messages {
        assert_eq!(Ok(framed_id(m.payload().expect("a value"))), id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_fails_the_encoder() {
    let reg = spawn_registry(RegistryConfig::default()).await.unwrap();
    // A port nobody listens on: bound, then released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bootstrap = dead.local_addr().unwrap().to_string();
    drop(dead);
    let dir = Scratch::new();
    let schema = dir.file("user.avsc", USER_V1);
    let url = reg.base_url();
    let args = [
        "--registry",
        &url,
        "--format",
        "avro",
        "--schema-file",
        s(&schema),
        "--topic",
        "users",
        "--bootstrap",
        &bootstrap,
        "--message-timeout-ms",
        "1500",
    ];
    let out = schema_produce_output(&args, &records());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("delivery failed"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("produced"));
}
