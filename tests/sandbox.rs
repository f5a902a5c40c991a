//! The sandbox over real HTTP: status codes and envelopes, counters, the record file, fault
//! injection and runtime control, and the `mcm-bridge sandbox` binary's start-up line.

use mcm_bridge::sandbox::{self, Faults, SandboxConfig, SandboxHandle};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PLATFORM: &str = "DEMO_TEST";
const KEY: &str = "test-key";

fn now_ms() -> i64 {
    mcm_bridge::mcm::validate::now_ms()
}

fn purchase(id: &str) -> Value {
    json!({
        "id": id,
        "event_type": "PURCHASE",
        "timestamp": (now_ms() - 1000).to_string(),
        "channel_type": "SITE",
        "user_id": "u-1",
        "items": [{"id": "sku-1", "price": {"currency": "USD", "amount": 50}, "quantity": 2}],
        "revenue": {"currency": "USD", "amount": 100}
    })
}

async fn start(cfg: SandboxConfig) -> SandboxHandle {
    sandbox::spawn(cfg).await.expect("sandbox starts")
}

async fn start_default() -> SandboxHandle {
    start(SandboxConfig::new(PLATFORM, KEY)).await
}

async fn post(
    sb: &SandboxHandle,
    key: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    post_to(&sb.events_url(), key, body).await
}

async fn post_to(
    url: &str,
    key: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key {
        req = req.header("X-API-Key", k);
    }
    req.send().await.expect("request reaches the sandbox")
}

async fn post_json(sb: &SandboxHandle, body: &Value) -> reqwest::Response {
    post(sb, Some(KEY), body.to_string()).await
}

async fn envelope(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body = resp.json::<Value>().await.expect("JSON body");
    (status, body)
}

async fn http_stats(sb: &SandboxHandle) -> Value {
    Client::new()
        .get(format!("{}/_sandbox/stats", sb.base_url()))
        .send()
        .await
        .expect("stats reachable")
        .json()
        .await
        .expect("stats JSON")
}

async fn put_faults(sb: &SandboxHandle, body: Value) -> reqwest::Response {
    Client::new()
        .put(format!("{}/_sandbox/faults", sb.base_url()))
        .json(&body)
        .send()
        .await
        .expect("faults reachable")
}

#[tokio::test]
async fn valid_purchase_is_accepted_with_an_empty_object() {
    let sb = start_default().await;
    let resp = post_json(&sb, &purchase("e-1")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    assert_eq!(resp.text().await.expect("body"), "{}");
    let stats = sb.stats().await;
    assert_eq!(stats.accepted_total, 1);
    assert_eq!(stats.accepted_by_type.get("PURCHASE"), Some(&1));
    sb.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn purchase_without_items_is_400_with_missing_items() {
    let sb = start_default().await;
    let mut body = purchase("e-1");
    body.as_object_mut().expect("object").remove("items");
    let (status, env) = envelope(post_json(&sb, &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(env["code"], 3);
    assert!(
        env["message"].as_str().expect("message").contains("items"),
        "{env}"
    );
    assert_eq!(
        env["details"],
        json!([{"reason": "missing_items", "field": "items"}])
    );
    let stats = sb.stats().await;
    assert_eq!((stats.accepted_total, stats.rejected_total), (0, 1));
    assert_eq!(stats.rejected_by_reason.get("missing_items"), Some(&1));
}

#[tokio::test]
async fn every_violation_is_listed_in_details() {
    let sb = start_default().await;
    let body =
        json!({"event_type": "PAGE_VIEW", "channel_type": "APP", "timestamp": now_ms() - 1000});
    let (status, env) = envelope(post_json(&sb, &body).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reasons: Vec<&str> = env["details"]
        .as_array()
        .expect("details array")
        .iter()
        .filter_map(|d| d["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["no_identifier", "missing_page_id", "app_os_invalid"]
    );
}

#[tokio::test]
async fn auth_and_platform_errors_use_grpc_codes() {
    let sb = start_default().await;
    let body = purchase("e-1").to_string();

    let (status, env) = envelope(post(&sb, None, body.clone()).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!(16))
    );

    let (status, env) = envelope(post(&sb, Some("wrong"), body.clone()).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::FORBIDDEN, json!(7))
    );

    let other = format!("{}{}", sb.base_url(), sandbox::events_path("OTHER_TEST"));
    let (status, env) = envelope(post_to(&other, Some(KEY), body).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::NOT_FOUND, json!(5))
    );
    assert!(env["message"]
        .as_str()
        .expect("message")
        .contains("OTHER_TEST"));

    let stats = sb.stats().await;
    for status in ["401", "403", "404"] {
        assert_eq!(stats.auth_failures.get(status), Some(&1), "{status}");
    }
    assert_eq!(stats.accepted_total, 0);
}

#[tokio::test]
async fn api_key_header_name_is_case_insensitive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sb = start_default().await;
    let body = purchase("e-1").to_string();
    // reqwest lower-cases header names, so write the request by hand to send a mixed-case one.
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nX-Api-KEY: {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        sandbox::events_path(PLATFORM),
        body.len()
    );
    let mut conn = tokio::net::TcpStream::connect(sb.addr())
        .await
        .expect("connect");
    conn.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn other_methods_are_405_and_unrouted_paths_are_text_404() {
    let sb = start_default().await;
    let resp = Client::new()
        .get(sb.events_url())
        .header("X-API-Key", KEY)
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.headers().get("allow").map(|v| v.as_bytes()),
        Some(&b"POST"[..])
    );
    let resp = Client::new()
        .post(format!("{}/nope", sb.base_url()))
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.text().await.expect("body"), "404 page not found\n");
    assert_eq!(sb.stats().await.method_not_allowed, 1);
}

/// `mcm-bridge doctor` checks the key and platform with `{}` (doctor::mcm::PROBE_BODY), counting
/// on the documented order: the key (401/403), the platform (404), the route (text 404), and
/// only then the body (400 INVALID_ARGUMENT). The probe is never stored.
#[tokio::test]
async fn the_doctor_probe_is_refused_after_key_platform_and_route_and_never_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("accepted.jsonl");
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.record = Some(path.clone());
    let sb = start(cfg).await;
    let probe = || mcm_bridge::doctor::mcm::PROBE_BODY.to_vec();

    let (status, env) = envelope(post(&sb, None, probe()).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!(16))
    );
    let (status, env) = envelope(post(&sb, Some("wrong"), probe()).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::FORBIDDEN, json!(7))
    );
    let other = format!("{}{}", sb.base_url(), sandbox::events_path("OTHER_TEST"));
    let (status, env) = envelope(post_to(&other, Some(KEY), probe()).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::NOT_FOUND, json!(5))
    );
    let extra = format!("{}/v1{}", sb.base_url(), sandbox::events_path(PLATFORM));
    let resp = post_to(&extra, Some(KEY), probe()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.text().await.expect("body"), "404 page not found\n");
    let (status, env) = envelope(post(&sb, Some(KEY), probe()).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(3))
    );
    assert_eq!(env["details"][0]["reason"], "missing_event_type");

    let stats = sb.stats().await;
    assert_eq!(stats.accepted_total, 0);
    assert_eq!(stats.rejected_total, 1);
    assert_eq!(std::fs::read_to_string(&path).expect("record file"), "");
    sb.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn invalid_json_is_400_invalid_json() {
    let sb = start_default().await;
    let (status, env) = envelope(post(&sb, Some(KEY), "{not json").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(env["details"][0]["reason"], "invalid_json");
    let (_, env) = envelope(post(&sb, Some(KEY), "[1]").await).await;
    assert_eq!(env["details"][0]["reason"], "invalid_json");
    let body = json!({"event_type": "BUY", "channel_type": "SITE", "timestamp": now_ms()});
    let (_, env) = envelope(post_json(&sb, &body).await).await;
    assert_eq!(env["details"][0]["reason"], "unknown_event_type");
}

#[tokio::test]
async fn duplicate_ids_are_accepted_and_counted() {
    let sb = start_default().await;
    for id in ["a", "b", "a", "a"] {
        assert_eq!(post_json(&sb, &purchase(id)).await.status(), StatusCode::OK);
    }
    let mut no_id = purchase("x");
    no_id.as_object_mut().expect("object").remove("id");
    assert_eq!(post_json(&sb, &no_id).await.status(), StatusCode::OK);
    let stats = http_stats(&sb).await;
    assert_eq!(stats["accepted_total"], 5);
    assert_eq!(stats["unique_ids"], 2);
    assert_eq!(stats["duplicate_ids"], 2);
    assert_eq!(stats["requests_total"], 5);
}

#[tokio::test]
async fn record_file_holds_exactly_the_accepted_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("accepted.jsonl");
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.record = Some(path.clone());
    let sb = start(cfg).await;

    let mut sent = Vec::new();
    for i in 0..20 {
        let body = purchase(&format!("r-{i}"));
        assert_eq!(post_json(&sb, &body).await.status(), StatusCode::OK);
        sent.push(body);
    }
    // A pretty-printed body is still recorded as one line.
    let pretty = serde_json::to_string_pretty(&purchase("r-pretty")).expect("json");
    assert_eq!(post(&sb, Some(KEY), pretty).await.status(), StatusCode::OK);
    sent.push(purchase("r-pretty"));
    // Rejected and refused requests must not appear.
    assert_eq!(
        post(&sb, Some(KEY), "{}").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_json(&sb, &json!({"id": "bad"})).await.status(),
        StatusCode::BAD_REQUEST
    );
    let wrong = post(&sb, Some("wrong"), purchase("r-denied").to_string()).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);

    let stats = http_stats(&sb).await;
    assert_eq!(stats["accepted_total"], 21);
    let text = std::fs::read_to_string(&path).expect("record file");
    let recorded: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(recorded.len(), 21);
    let ids = |vs: &[Value]| -> Vec<String> {
        vs.iter()
            .map(|v| v["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(ids(&recorded), ids(&sent));
    assert_eq!(recorded[0], sent[0], "bodies are recorded as received");
    assert_eq!(sb.accepted_ids().await.expect("recording"), ids(&sent));
    sb.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn accepted_ids_needs_a_record_file() {
    let sb = start_default().await;
    assert!(matches!(
        sb.accepted_ids().await,
        Err(sandbox::SandboxError::NotRecording)
    ));
}

#[tokio::test]
async fn fail_rate_one_answers_500_to_everything_and_accepts_nothing() {
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.faults.fail_rate = 1.0;
    let sb = start(cfg).await;
    for i in 0..10 {
        let (status, env) = envelope(post_json(&sb, &purchase(&format!("f-{i}"))).await).await;
        assert_eq!(
            (status, env["code"].clone()),
            (StatusCode::INTERNAL_SERVER_ERROR, json!(13))
        );
    }
    let stats = sb.stats().await;
    assert_eq!(stats.accepted_total, 0);
    assert_eq!(stats.faults.get("fail_500"), Some(&10));
    assert_eq!(stats.requests_total, 10);
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.faults.throttle_rate = 1.0;
    cfg.faults.retry_after = Some(2);
    let sb = start(cfg).await;
    let resp = post_json(&sb, &purchase("t-1")).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        resp.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"2"[..])
    );
    let (_, env) = envelope(resp).await;
    assert_eq!(env["code"], 8);
    // Authentication still comes first: a wrong key is 403, not 429.
    assert_eq!(
        post(&sb, Some("wrong"), "{}").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(sb.stats().await.faults.get("throttle_429"), Some(&1));
}

#[tokio::test]
async fn outage_answers_503_after_n_accepts_then_recovers() {
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.faults.outage_after = Some(2);
    // Long enough that a loaded CI machine still sends the next four requests inside it.
    cfg.faults.outage_for = Duration::from_millis(3000);
    let sb = start(cfg).await;
    for i in 0..2 {
        assert_eq!(
            post_json(&sb, &purchase(&format!("o-{i}"))).await.status(),
            StatusCode::OK
        );
    }
    let began = Instant::now();
    for i in 2..5 {
        let (status, env) = envelope(post_json(&sb, &purchase(&format!("o-{i}"))).await).await;
        assert_eq!(
            (status, env["code"].clone()),
            (StatusCode::SERVICE_UNAVAILABLE, json!(14))
        );
    }
    // The outage is in front of everything, authentication included.
    assert_eq!(
        post(&sb, None, "{}").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::sleep(Duration::from_millis(3100).saturating_sub(began.elapsed())).await;
    assert_eq!(
        post_json(&sb, &purchase("o-after")).await.status(),
        StatusCode::OK
    );
    // One-shot: it does not come back after the next two accepts.
    for i in 0..3 {
        assert_eq!(
            post_json(&sb, &purchase(&format!("o-late-{i}")))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let stats = sb.stats().await;
    assert_eq!(stats.accepted_total, 6);
    assert_eq!(stats.faults.get("outage_503"), Some(&4));
}

#[tokio::test]
async fn faults_and_key_change_at_runtime() {
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.faults.outage_after = Some(0);
    cfg.faults.outage_for = Duration::from_secs(3600);
    let sb = start(cfg).await;
    assert_eq!(
        post_json(&sb, &purchase("p-1")).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // End the outage.
    let resp = put_faults(&sb, json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.expect("knobs")["outage_after"],
        Value::Null
    );
    assert_eq!(
        post_json(&sb, &purchase("p-2")).await.status(),
        StatusCode::OK
    );

    // Rotate the key and add latency.
    let resp = put_faults(&sb, json!({"api_key": "rotated", "latency": "150ms"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("body");
    assert!(!text.contains("rotated"), "the key is never echoed: {text}");
    assert_eq!(
        post_json(&sb, &purchase("p-3")).await.status(),
        StatusCode::FORBIDDEN
    );
    let began = Instant::now();
    let resp = post(&sb, Some("rotated"), purchase("p-4").to_string()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        began.elapsed() >= Duration::from_millis(150),
        "{:?}",
        began.elapsed()
    );

    // A bad knob is a 400 and changes nothing.
    let (status, env) = envelope(put_faults(&sb, json!({"fail_rate": 3})).await).await;
    assert_eq!(
        (status, env["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(3))
    );
    assert_eq!(sb.faults().latency, Duration::from_millis(150));

    // The handle can do the same without HTTP.
    sb.set_faults(&Faults {
        fail_rate: 1.0,
        ..Faults::default()
    })
    .expect("valid");
    sb.set_api_key(KEY);
    assert_eq!(
        post_json(&sb, &purchase("p-5")).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn reset_zeroes_counters_and_forgets_ids() {
    let sb = start_default().await;
    assert_eq!(
        post_json(&sb, &purchase("z")).await.status(),
        StatusCode::OK
    );
    let resp = Client::new()
        .post(format!("{}/_sandbox/reset", sb.base_url()))
        .send()
        .await
        .expect("reachable");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sb.stats().await, sandbox::SandboxStats::default());
    assert_eq!(
        post_json(&sb, &purchase("z")).await.status(),
        StatusCode::OK
    );
    let stats = sb.stats().await;
    assert_eq!((stats.unique_ids, stats.duplicate_ids), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_all_counted() {
    let sb = start_default().await;
    let url = sb.events_url();
    let client = Client::new();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut ok = 0;
                for i in 0..100 {
                    // Every id is sent by two tasks: half of the acceptances are duplicates.
                    let body = purchase(&format!("c-{}-{i}", t % 4)).to_string();
                    let resp = client
                        .post(&url)
                        .header("X-API-Key", KEY)
                        .body(body)
                        .send()
                        .await
                        .expect("reachable");
                    ok += usize::from(resp.status() == StatusCode::OK);
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.expect("task");
    }
    assert_eq!(ok, 800);
    let stats = sb.stats().await;
    assert_eq!(stats.accepted_total, 800);
    assert_eq!(stats.unique_ids, 400);
    assert_eq!(stats.duplicate_ids, 400);
}

/// `GET /_sandbox/wait`: answers as soon as the count is reached (not at its timeout), with the
/// span of the answers; answers at its timeout with the lower count when the count is not reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_when_the_answer_count_is_reached_with_the_answers_span() {
    let sb = start_default().await;
    let wait_url = |answered: u64, timeout_ms: u64| {
        format!(
            "{}/_sandbox/wait?answered={answered}&timeout_ms={timeout_ms}",
            sb.base_url()
        )
    };
    let waiter = tokio::spawn({
        let url = wait_url(3, 20_000);
        async move {
            let started = Instant::now();
            let resp = Client::new().get(url).send().await.expect("wait reachable");
            let stats: Value = resp.json().await.expect("stats JSON");
            (stats, started.elapsed())
        }
    });
    let before_ms = u64::try_from(now_ms()).expect("clock after 1970");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "answered before any event was posted"
    );
    let bad = json!({"event_type": "SEARCH"});
    let statuses = [
        post_json(&sb, &purchase("w-1")).await.status(),
        post_json(&sb, &bad).await.status(),
        post_json(&sb, &purchase("w-2")).await.status(),
    ];
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::OK]
    );
    let (stats, waited) = waiter.await.expect("waiter");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    assert_eq!(stats["accepted_total"], 2);
    assert_eq!(stats["rejected_total"], 1);
    let first = stats["first_answer_unix_ms"].as_u64().expect("first stamp");
    let last = stats["last_answer_unix_ms"].as_u64().expect("last stamp");
    assert!(
        before_ms + 200 <= first && first <= last,
        "{before_ms} {first} {last}"
    );

    // Not reached: answered at the timeout, with the count so far.
    let started = Instant::now();
    let stats: Value = Client::new()
        .get(wait_url(4, 300))
        .send()
        .await
        .expect("wait reachable")
        .json()
        .await
        .expect("stats JSON");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(stats["accepted_total"], 2);
}

#[tokio::test]
async fn shutdown_stops_the_listener() {
    let sb = start_default().await;
    let addr = sb.addr();
    sb.shutdown().await.expect("clean stop");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn binary_prints_its_real_address_and_serves_with_key_from_env() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--platform-id",
            PLATFORM,
        ])
        .env("MCM_API_KEY", "env-key")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("start-up line within 10 s")
    .expect("read stdout");
    let prefix = "sandbox listening on http://";
    assert!(line.starts_with(prefix), "{line}");
    assert!(
        line.trim_end().ends_with(&format!("(platform {PLATFORM})")),
        "{line}"
    );
    let addr = line[prefix.len()..]
        .split_whitespace()
        .next()
        .expect("address");
    assert!(!addr.ends_with(":0"), "the real port is printed: {line}");
    let url = format!("http://{addr}{}", sandbox::events_path(PLATFORM));
    let resp = post_to(&url, Some("env-key"), purchase("bin-1").to_string()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    child.kill().await.expect("stop the child we started");
}
