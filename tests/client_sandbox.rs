//! The MCM client and sender against the project's own sandbox (issue 2, section 5): the same
//! validation rules and status codes as the real API, over real HTTP.

use bytes::Bytes;
use mcm_bridge::config::{ApiKey, CircuitConfig, HttpVersion, McmConfig, RetryConfig};
use mcm_bridge::delivery::circuit::CircuitBreaker;
use mcm_bridge::delivery::sender::{Sender, Verdict};
use mcm_bridge::mcm::classify::{Outcome, RetryKind};
use mcm_bridge::mcm::client::McmClient;
use mcm_bridge::mcm::event::{ChannelType, EventType, Item, McmEvent, Money};
use mcm_bridge::sandbox::{Faults, SandboxConfig, SandboxHandle};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sandbox-test-key";
const PLATFORM: &str = "DEMO_TEST";

fn config(base_url: &str, key: &str, platform: &str) -> McmConfig {
    McmConfig {
        base_url: base_url.to_string(),
        platform_id: platform.into(),
        api_key: ApiKey::new(key),
        api_key_source: "test".into(),
        timeout: Duration::from_millis(500),
        max_in_flight: 8,
        allow_insecure_http: true,
        strict_validation: false,
        future_tolerance: Duration::ZERO,
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            multiplier: 2.0,
            max_attempts: 30,
        },
        circuit_breaker: CircuitConfig {
            failure_threshold: 1000,
            probe_interval: Duration::from_millis(200),
        },
        adaptive_concurrency: false,
        min_in_flight: 1,
        rate_limit: 0,
        http_version: mcm_bridge::config::HttpVersion::Auto,
        tls: Default::default(),
    }
}

fn purchase(id: &str, with_items: bool) -> Bytes {
    let mut e = McmEvent::new(
        EventType::Purchase,
        mcm_bridge::mcm::validate::now_ms() - 1000,
        ChannelType::Site,
    );
    e.id = Some(id.into());
    e.user_id = Some("u-1".into());
    if with_items {
        e.items.push(Item {
            id: Some("sku-1".into()),
            price: Some(Money::new("USD", 9.99)),
            quantity: Some(1),
            ..Item::default()
        });
    }
    e.revenue = Some(Money::new("USD", 9.99));
    Bytes::from(e.to_json_bytes())
}

async fn sandbox(faults: Faults) -> SandboxHandle {
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.faults = faults;
    mcm_bridge::sandbox::spawn(cfg).await.expect("sandbox")
}

fn sender(cfg: &McmConfig) -> Sender {
    let breaker = Arc::new(Mutex::new(CircuitBreaker::new(&cfg.circuit_breaker)));
    Sender::new(
        McmClient::new(cfg).expect("client"),
        cfg.retry.clone(),
        breaker,
    )
}

#[tokio::test]
async fn valid_purchase_is_delivered() {
    let sb = sandbox(Faults::default()).await;
    let client = McmClient::new(&config(&sb.base_url(), KEY, PLATFORM)).expect("client");
    let a = client.send(purchase("p-1", true)).await;
    assert_eq!(a.outcome, Outcome::Delivered { status: 200 });
    assert_eq!(sb.stats().await.accepted_by_type.get("PURCHASE"), Some(&1));
}

#[tokio::test]
async fn every_http_version_setting_delivers() {
    // auto and http1 speak HTTP/1.1 to a plain-http URL; http2 speaks HTTP/2 with prior
    // knowledge (the sandbox, like axum, accepts both on one port).
    let sb = sandbox(Faults::default()).await;
    for (n, version) in [HttpVersion::Auto, HttpVersion::Http1, HttpVersion::Http2]
        .into_iter()
        .enumerate()
    {
        let mut cfg = config(&sb.base_url(), KEY, PLATFORM);
        cfg.http_version = version;
        let client = McmClient::new(&cfg).expect("client");
        let sends = (0..20).map(|i| client.send(purchase(&format!("v{n}-{i}"), true)));
        for a in futures::future::join_all(sends).await {
            assert_eq!(a.outcome, Outcome::Delivered { status: 200 }, "{version:?}");
        }
    }
    assert_eq!(sb.stats().await.accepted_by_type.get("PURCHASE"), Some(&60));
}

#[tokio::test]
async fn purchase_without_items_is_permanent_with_the_reason() {
    let sb = sandbox(Faults::default()).await;
    let client = McmClient::new(&config(&sb.base_url(), KEY, PLATFORM)).expect("client");
    let a = client.send(purchase("p-2", false)).await;
    match a.outcome {
        Outcome::Permanent {
            status,
            reason,
            body_snippet,
        } => {
            assert_eq!(status, 400);
            assert!(reason.contains("items"), "{reason}");
            assert!(body_snippet.contains("missing_items"), "{body_snippet}");
        }
        other => panic!("expected permanent, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_key_missing_key_and_unknown_platform_are_fatal() {
    let sb = sandbox(Faults::default()).await;
    for (key, platform, want) in [("wrong", PLATFORM, 403), (KEY, "NOPE_TEST", 404)] {
        let client = McmClient::new(&config(&sb.base_url(), key, platform)).expect("client");
        match client.send(purchase("p-3", true)).await.outcome {
            Outcome::Fatal { status, .. } => assert_eq!(status, want),
            other => panic!("expected fatal {want}, got {other:?}"),
        }
    }
    // No key at all: the header is required, so talk to the endpoint directly.
    let r = reqwest::Client::new()
        .post(sb.events_url())
        .body(purchase("p-4", true).to_vec())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_until_delivered() {
    let sb = sandbox(Faults {
        fail_rate: 0.3,
        throttle_rate: 0.3,
        ..Faults::default()
    })
    .await;
    let s = sender(&config(&sb.base_url(), KEY, PLATFORM));
    let mut retried = 0;
    for i in 0..40 {
        let r = s
            .deliver(purchase(&format!("r-{i}"), true), &CancellationToken::new())
            .await;
        assert!(matches!(r.verdict, Verdict::Delivered(_)), "{r:?}");
        retried += r.retry_reasons.len();
    }
    assert!(retried > 10, "faults were injected and retried ({retried})");
    let stats = sb.stats().await;
    assert_eq!(stats.unique_ids, 40);
    assert!(stats.faults.get("fail_500").copied().unwrap_or(0) > 0);
    assert!(stats.faults.get("throttle_429").copied().unwrap_or(0) > 0);
}

#[tokio::test]
async fn retry_after_from_the_sandbox_is_honoured() {
    let sb = sandbox(Faults {
        throttle_rate: 1.0,
        retry_after: Some(1),
        ..Faults::default()
    })
    .await;
    let client = McmClient::new(&config(&sb.base_url(), KEY, PLATFORM)).expect("client");
    match client.send(purchase("ra-1", true)).await.outcome {
        Outcome::Retryable {
            kind, retry_after, ..
        } => {
            assert_eq!(kind, RetryKind::Throttled);
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // The sender waits what the server asked before the next attempt, then delivers.
    let s = sender(&config(&sb.base_url(), KEY, PLATFORM));
    let sb2 = sb.faults();
    let start = Instant::now();
    let handle = tokio::spawn(async move {
        s.deliver(purchase("ra-2", true), &CancellationToken::new())
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    sb.set_faults(&Faults {
        throttle_rate: 0.0,
        ..sb2
    })
    .expect("faults");
    let r = handle.await.expect("task");
    assert!(matches!(r.verdict, Verdict::Delivered(_)), "{r:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn slow_sandbox_is_a_retryable_timeout() {
    let sb = sandbox(Faults {
        latency: Duration::from_millis(1500),
        ..Faults::default()
    })
    .await;
    let client = McmClient::new(&config(&sb.base_url(), KEY, PLATFORM)).expect("client");
    match client.send(purchase("t-1", true)).await.outcome {
        Outcome::Retryable { kind, .. } => assert_eq!(kind, RetryKind::Timeout),
        other => panic!("expected timeout, got {other:?}"),
    }
}
