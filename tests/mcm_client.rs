//! The MCM client and the retrying sender over real HTTP (wiremock), DESIGN.md contract 3 and 8.
//!
//! Every test talks to a real HTTP server on localhost (wiremock, or a rustls TLS server with
//! certificates generated per run); nothing in the HTTP client is mocked. Backoffs and
//! breaker intervals come from the config and are kept in milliseconds so the suite stays fast.

use bytes::Bytes;
use mcm_bridge::config::{ApiKey, CircuitConfig, McmConfig, RetryConfig};
use mcm_bridge::delivery::circuit::{CircuitBreaker, CircuitState};
use mcm_bridge::delivery::sender::{Sender, Verdict};
use mcm_bridge::mcm::classify::{Outcome, OutcomeClass, RetryKind};
use mcm_bridge::mcm::client::{ClientError, McmClient};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "sk-live-THIS-MUST-NEVER-LEAK-42";
const PLATFORM: &str = "ACME_TEST";
const EVENTS_PATH: &str = "/rmp/event/v1/platforms/ACME_TEST/userevents";
const BODY: &[u8] = br#"{"id":"evt-1","event_type":"PURCHASE","timestamp":1767225600000}"#;

fn config(base_url: &str) -> McmConfig {
    McmConfig {
        base_url: base_url.trim_end_matches('/').to_string(),
        platform_id: PLATFORM.into(),
        api_key: ApiKey::new(KEY),
        api_key_source: "test".into(),
        timeout: Duration::from_secs(2),
        max_in_flight: 8,
        allow_insecure_http: true,
        strict_validation: false,
        future_tolerance: Duration::ZERO,
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            multiplier: 2.0,
            max_attempts: 5,
        },
        circuit_breaker: CircuitConfig {
            failure_threshold: 100,
            probe_interval: Duration::from_millis(200),
        },
        adaptive_concurrency: false,
        min_in_flight: 1,
        rate_limit: 0,
        http_version: mcm_bridge::config::HttpVersion::Auto,
        tls: Default::default(),
    }
}

/// Answers with the given responses in order; the last one repeats.
struct Sequence {
    responses: Vec<ResponseTemplate>,
    next: AtomicUsize,
}

impl Sequence {
    fn new(responses: Vec<ResponseTemplate>) -> Sequence {
        Sequence {
            responses,
            next: AtomicUsize::new(0),
        }
    }
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        self.responses[i.min(self.responses.len() - 1)].clone()
    }
}

async fn server_with(responses: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .respond_with(Sequence::new(responses))
        .mount(&server)
        .await;
    server
}

fn status(code: u16) -> ResponseTemplate {
    ResponseTemplate::new(code)
}

fn client(cfg: &McmConfig) -> McmClient {
    McmClient::new(cfg).expect("client builds for a valid test config")
}

fn sender(cfg: &McmConfig) -> Sender {
    let breaker = Arc::new(Mutex::new(CircuitBreaker::new(&cfg.circuit_breaker)));
    Sender::new(client(cfg), cfg.retry.clone(), breaker)
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is on by default")
}

#[tokio::test]
async fn ok_response_is_delivered() {
    let server = server_with(vec![status(200).set_body_string("{}")]).await;
    let attempt = client(&config(&server.uri()))
        .send(Bytes::from_static(BODY))
        .await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
    assert_eq!(attempt.status, Some(200));
    assert!(attempt.elapsed > Duration::ZERO);
}

#[tokio::test]
async fn bad_request_with_grpc_body_is_permanent_with_moloco_message() {
    let server = server_with(vec![status(400).set_body_raw(
        r#"{"code":3,"message":"invalid item: either id or item_group_id must be set","details":[]}"#,
        "application/json",
    )])
    .await;
    let r = sender(&config(&server.uri()))
        .deliver(Bytes::from_static(BODY), &CancellationToken::new())
        .await;
    match &r.verdict {
        Verdict::Permanent(Outcome::Permanent { status, reason, .. }) => {
            assert_eq!(*status, 400);
            assert_eq!(
                reason,
                "invalid item: either id or item_group_id must be set"
            );
        }
        other => panic!("expected permanent, got {other:?}"),
    }
    assert_eq!(r.attempts, 1, "a 400 is never retried");
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn credential_and_platform_errors_are_fatal_and_never_retried() {
    for code in [401, 403, 404] {
        let server = server_with(vec![status(code).set_body_string(r#"{"code":16}"#)]).await;
        let r = sender(&config(&server.uri()))
            .deliver(Bytes::from_static(BODY), &CancellationToken::new())
            .await;
        assert_eq!(r.verdict.as_str(), "fatal", "status {code}");
        assert_eq!(
            r.verdict.last_outcome().and_then(Outcome::status),
            Some(code)
        );
        assert_eq!(requests(&server).await.len(), 1, "status {code}");
    }
}

#[tokio::test]
async fn unrouted_path_plain_text_404_is_fatal_with_the_text() {
    // Nothing mounted: wiremock answers 404 for every path, like a wrong host would.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(status(404).set_body_raw("404 page not found", "text/plain"))
        .mount(&server)
        .await;
    let attempt = client(&config(&server.uri()))
        .send(Bytes::from_static(BODY))
        .await;
    match attempt.outcome {
        Outcome::Fatal {
            status,
            body_snippet,
            ..
        } => {
            assert_eq!(status, 404);
            assert_eq!(body_snippet, "404 page not found");
        }
        other => panic!("expected fatal, got {other:?}"),
    }
}

#[tokio::test]
async fn redirect_is_fatal_and_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(EVENTS_PATH))
        .respond_with(status(307).insert_header("location", "/elsewhere"))
        .mount(&server)
        .await;
    let attempt = client(&config(&server.uri()))
        .send(Bytes::from_static(BODY))
        .await;
    assert_eq!(attempt.outcome.class(), OutcomeClass::Fatal);
    assert_eq!(attempt.status, Some(307));
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 1, "the redirect must not be followed");
}

#[tokio::test]
async fn throttled_then_ok_is_delivered_after_one_retry() {
    let server = server_with(vec![
        status(429).set_body_string(
            r#"{"code":8,"message":"request denied by throttler, try again later"}"#,
        ),
        status(200),
    ])
    .await;
    let started = Instant::now();
    let r = sender(&config(&server.uri()))
        .deliver(Bytes::from_static(BODY), &CancellationToken::new())
        .await;
    assert_eq!(r.verdict.as_str(), "delivered");
    assert_eq!(r.attempts, 2);
    assert_eq!(r.retry_reasons, vec![RetryKind::Throttled]);
    // Without Retry-After the 10 ms backoff applies (contrast with the Retry-After test).
    assert!(started.elapsed() < Duration::from_millis(800));
}

#[tokio::test]
async fn server_errors_then_ok_is_delivered_on_the_third_attempt_with_the_same_body() {
    let server = server_with(vec![status(500), status(503), status(200)]).await;
    let r = sender(&config(&server.uri()))
        .deliver(Bytes::from_static(BODY), &CancellationToken::new())
        .await;
    assert_eq!(
        r.verdict,
        Verdict::Delivered(Outcome::Delivered { status: 200 })
    );
    assert_eq!(r.attempts, 3);
    assert_eq!(
        r.retry_reasons,
        vec![RetryKind::ServerError(500), RetryKind::ServerError(503)]
    );

    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 3);
    for req in &reqs {
        assert_eq!(req.body, BODY, "every retry sends the same bytes (same id)");
        let h = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(h("x-api-key").as_deref(), Some(KEY));
        assert_eq!(h("content-type").as_deref(), Some("application/json"));
        assert_eq!(h("accept").as_deref(), Some("application/json"));
        assert!(
            h("user-agent").is_some_and(|ua| ua.starts_with("mcm-bridge/")),
            "{:?}",
            h("user-agent")
        );
    }
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = server_with(vec![
        status(503).insert_header("retry-after", "1"),
        status(200),
    ])
    .await;
    let started = Instant::now();
    let r = sender(&config(&server.uri()))
        .deliver(Bytes::from_static(BODY), &CancellationToken::new())
        .await;
    let took = started.elapsed();
    assert_eq!(r.verdict.as_str(), "delivered");
    assert_eq!(r.attempts, 2);
    // initial_backoff is 10 ms, so only Retry-After explains a wait of a second.
    assert!(took >= Duration::from_millis(950), "waited only {took:?}");
    assert!(took < Duration::from_secs(3), "waited {took:?}");
}

#[tokio::test]
async fn slow_server_is_a_retryable_timeout() {
    let server = server_with(vec![status(200).set_delay(Duration::from_secs(2))]).await;
    let mut cfg = config(&server.uri());
    cfg.timeout = Duration::from_millis(200);
    let started = Instant::now();
    let attempt = client(&cfg).send(Bytes::from_static(BODY)).await;
    assert_eq!(attempt.outcome.retry_kind(), Some(RetryKind::Timeout));
    assert_eq!(attempt.status, None);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn refused_connection_is_a_retryable_connect_error() {
    // Bind and drop a listener to get a local port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port();
    let attempt = client(&config(&format!("http://127.0.0.1:{port}")))
        .send(Bytes::from_static(BODY))
        .await;
    assert_eq!(attempt.outcome.retry_kind(), Some(RetryKind::Connect));
    let Outcome::Retryable { detail, .. } = &attempt.outcome else {
        panic!("expected retryable")
    };
    assert!(!detail.is_empty());
    assert!(!detail.contains(KEY));
}

#[tokio::test]
async fn exhausted_after_max_attempts() {
    let server = server_with(vec![status(502)]).await;
    let mut cfg = config(&server.uri());
    cfg.retry.max_attempts = 3;
    let r = sender(&cfg)
        .deliver(Bytes::from_static(BODY), &CancellationToken::new())
        .await;
    match &r.verdict {
        Verdict::Exhausted(o) => assert_eq!(o.retry_kind(), Some(RetryKind::ServerError(502))),
        other => panic!("expected exhausted, got {other:?}"),
    }
    assert_eq!(r.attempts, 3);
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn breaker_opens_after_threshold_and_a_probe_closes_it() {
    // Two failures open the breaker (threshold 2). The first probe fails (re-open), the second
    // succeeds. max_attempts is 3, so this only delivers because probes do not count (the failed
    // probe would otherwise have been the third and last attempt).
    let server = server_with(vec![status(500), status(500), status(500), status(200)]).await;
    let mut cfg = config(&server.uri());
    cfg.retry.max_attempts = 3;
    cfg.circuit_breaker = CircuitConfig {
        failure_threshold: 2,
        probe_interval: Duration::from_millis(200),
    };
    let s = sender(&cfg);
    let task = {
        let s = s.clone();
        tokio::spawn(async move {
            s.deliver(Bytes::from_static(BODY), &CancellationToken::new())
                .await
        })
    };

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.circuit_state(), CircuitState::Open);
    assert_eq!(
        requests(&server).await.len(),
        2,
        "nothing is sent while the breaker is open"
    );
    // A second message arriving during the outage waits instead of hitting the API.
    let second = {
        let s = s.clone();
        tokio::spawn(async move {
            s.deliver(Bytes::from_static(BODY), &CancellationToken::new())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(requests(&server).await.len(), 2, "still open: nothing sent");

    let r = task.await.expect("deliver task does not panic");
    let r2 = second.await.expect("deliver task does not panic");
    assert_eq!(r.verdict.as_str(), "delivered", "{r:?}");
    assert_eq!(r2.verdict.as_str(), "delivered", "{r2:?}");
    assert_eq!(s.circuit_state(), CircuitState::Closed);
    // Either message may win a probe, but only the two closed-breaker attempts of the first
    // count, one probe fails and one succeeds, and the loser then sends once more: 5 requests.
    assert_eq!(r.counted_attempts, 2, "{r:?}");
    assert_eq!(r.attempts + r2.attempts, 5, "{r:?} {r2:?}");
    assert!(r.breaker_wait >= Duration::from_millis(150), "{r:?}");
    assert_eq!(requests(&server).await.len(), 5);
}

#[tokio::test]
async fn cancel_aborts_a_message_waiting_on_the_breaker() {
    let server = server_with(vec![status(503)]).await;
    let mut cfg = config(&server.uri());
    cfg.circuit_breaker = CircuitConfig {
        failure_threshold: 1,
        probe_interval: Duration::from_secs(60),
    };
    let s = sender(&cfg);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        c.cancel();
    });
    let started = Instant::now();
    let r = s.deliver(Bytes::from_static(BODY), &cancel).await;
    assert_eq!(r.verdict.as_str(), "cancelled");
    assert_eq!(r.attempts, 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn plain_http_is_refused_unless_allowed() {
    let mut cfg = config("http://127.0.0.1:9");
    cfg.allow_insecure_http = false;
    let err = McmClient::new(&cfg).expect_err("http:// without allow_insecure_http");
    assert!(matches!(err, ClientError::InsecureUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("allow_insecure_http"));

    cfg.allow_insecure_http = true;
    assert!(McmClient::new(&cfg).is_ok());
    cfg.base_url = "https://acme-evt.mcm-api.moloco.com".into();
    cfg.allow_insecure_http = false;
    let c = McmClient::new(&cfg).expect("https is always allowed");
    assert_eq!(
        c.url(),
        "https://acme-evt.mcm-api.moloco.com/rmp/event/v1/platforms/ACME_TEST/userevents"
    );
}

#[tokio::test]
async fn api_key_never_appears_in_debug_output_or_errors() {
    let server = server_with(vec![status(500), status(401)]).await;
    let cfg = config(&server.uri());
    let c = client(&cfg);
    let s = sender(&cfg);
    let r = s
        .deliver(Bytes::from_static(BODY), &CancellationToken::new())
        .await;
    assert_eq!(r.verdict.as_str(), "fatal");

    let mut bad = config("https://example.invalid");
    bad.api_key = ApiKey::new(&format!("{KEY}\u{7}"));
    let key_err = McmClient::new(&bad).expect_err("control character in key");
    let mut insecure = config("http://127.0.0.1:9");
    insecure.allow_insecure_http = false;
    let url_err = McmClient::new(&insecure).expect_err("insecure");
    let timeout = {
        let slow = server_with(vec![status(200).set_delay(Duration::from_secs(2))]).await;
        let mut cfg = config(&slow.uri());
        cfg.timeout = Duration::from_millis(100);
        client(&cfg).send(Bytes::from_static(BODY)).await
    };

    for text in [
        format!("{c:?}"),
        format!("{s:?}"),
        format!("{r:?}"),
        format!("{key_err:?} {key_err}"),
        format!("{url_err:?} {url_err}"),
        format!("{timeout:?}"),
        format!("{cfg:?}"),
    ] {
        assert!(!text.contains(KEY), "key leaked in: {text}");
        assert!(!text.contains("NEVER-LEAK"), "key leaked in: {text}");
    }
    // The secret was really sent, so the absence above is not an accident of an empty key.
    let reqs = requests(&server).await;
    assert_eq!(
        reqs[0]
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok()),
        Some(KEY)
    );
}

#[tokio::test]
async fn https_is_really_tls_and_never_falls_back_to_plain_http() {
    // A plain-HTTP server behind an https:// URL: the TLS handshake must fail (a retryable
    // connect error) and the server must never see a request, so never the key in clear text.
    let server = server_with(vec![status(200)]).await;
    let mut cfg = config(&server.uri().replace("http://", "https://"));
    cfg.allow_insecure_http = false;
    let attempt = client(&cfg).send(Bytes::from_static(BODY)).await;
    assert_eq!(attempt.outcome.retry_kind(), Some(RetryKind::Connect));
    assert_eq!(attempt.status, None);
    let Outcome::Retryable { detail, .. } = &attempt.outcome else {
        panic!("expected retryable")
    };
    assert!(!detail.contains(KEY));
    assert!(requests(&server).await.is_empty(), "no plaintext request");
}

/// A certificate authority generated for this test binary. Its certificate is the only root in
/// `SSL_CERT_FILE`, which the platform verifier reads on Linux: servers whose certificate it
/// signed are trusted, any other is not.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    _dir: tempfile::TempDir,
}

fn new_ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let key = rcgen::KeyPair::generate().expect("ca key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("ca certificate");
    let pem = cert.pem();
    (rcgen::Issuer::new(params, key), pem)
}

fn trusted_ca() -> &'static TestCa {
    static CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        let (issuer, pem) = new_ca("mcm-bridge test root");
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("roots.pem");
        std::fs::write(&file, pem).expect("write roots");
        // Set once, before any client of this binary verifies a certificate.
        std::env::set_var("SSL_CERT_FILE", &file);
        TestCa { issuer, _dir: dir }
    })
}

/// An HTTPS server on localhost with a certificate for "localhost" signed by `issuer`; answers
/// every request 200 and records each request's `x-api-key` header.
async fn tls_server(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    use hyper::service::service_fn;
    let key = rcgen::KeyPair::generate().expect("server key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let cert = params.signed_by(&key, issuer).expect("server certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .expect("server tls config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let key = req
                        .headers()
                        .get("x-api-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    log.lock().expect("log").push(key);
                    async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(Bytes::from_static(b"{}")),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn https_delivers_to_a_server_whose_certificate_chains_to_a_trusted_root() {
    let ca = trusted_ca();
    let (port, seen) = tls_server(&ca.issuer).await;
    let mut cfg = config(&format!("https://localhost:{port}"));
    cfg.allow_insecure_http = false;
    let attempt = client(&cfg).send(Bytes::from_static(BODY)).await;
    assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
    assert_eq!(*seen.lock().expect("log"), vec![KEY.to_string()]);
}

#[tokio::test]
async fn https_refuses_a_certificate_from_an_unknown_authority() {
    let _trusted = trusted_ca();
    let (rogue, _) = new_ca("somebody else's root");
    let (port, seen) = tls_server(&rogue).await;
    let mut cfg = config(&format!("https://localhost:{port}"));
    cfg.allow_insecure_http = false;
    let attempt = client(&cfg).send(Bytes::from_static(BODY)).await;
    assert_eq!(attempt.outcome.retry_kind(), Some(RetryKind::Connect));
    let Outcome::Retryable { detail, .. } = &attempt.outcome else {
        panic!("expected retryable")
    };
    assert!(detail.to_lowercase().contains("certificate"), "{detail}");
    assert!(
        detail.contains("unknown certificate authority") && detail.contains("mcm.tls.ca_file"),
        "the error says what to do: {detail}"
    );
    assert!(!detail.contains(KEY));
    assert!(seen.lock().expect("log").is_empty(), "no request sent");
}

#[tokio::test]
async fn https_trusts_a_private_ca_from_tls_ca_file_next_to_the_platform_roots() {
    let trusted = trusted_ca();
    let (private, private_pem) = new_ca("a TLS-inspecting proxy's root");
    let dir = tempfile::tempdir().expect("tmp");
    let bundle = dir.path().join("proxy-ca.pem");
    std::fs::write(&bundle, private_pem).expect("write bundle");
    let mut cfg = config("https://localhost:1");
    cfg.allow_insecure_http = false;
    cfg.tls = mcm_bridge::config::McmTls {
        extra_roots: mcm_bridge::config::tls::load_ca_bundle(&bundle).expect("bundle"),
        ca_file: Some(bundle),
    };
    // Signed by the extra CA, and by a platform root: both are trusted.
    for issuer in [&private, &trusted.issuer] {
        let (port, seen) = tls_server(issuer).await;
        cfg.base_url = format!("https://localhost:{port}");
        let attempt = client(&cfg).send(Bytes::from_static(BODY)).await;
        assert_eq!(attempt.outcome, Outcome::Delivered { status: 200 });
        assert_eq!(seen.lock().expect("log").len(), 1);
    }
}
