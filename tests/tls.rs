//! HTTPS as users run it (issue 22, item 5): the bridge's MCM client against the sandbox serving
//! TLS with a generated CA, over real sockets and real TLS; nothing in the client is mocked.
//!
//! - `mcm.tls.ca_file` makes the generated CA trusted, and without it the client refuses the
//!   certificate with an error that says what to do;
//! - every `http_version` delivers over TLS, and `auto` picks HTTP/1.1 even though the sandbox
//!   offers `h2` (the CPU-per-event measurements behind that are in `src/mcm/client.rs`);
//! - with the sandbox allowing only 4 HTTP/2 streams per connection, `http_version: http2` keeps
//!   more than 4 requests in flight (the client opens more connections), where a single HTTP/2
//!   connection — what the client used before — never exceeds 4. Asserted on the sandbox's
//!   observed peak concurrency, never on timing;
//! - the sandbox answers and injects faults over TLS exactly as over plain HTTP, and its binary
//!   serves a generated certificate with `--tls-self-signed DIR`.

use bytes::Bytes;
use mcm_bridge::config::{ApiKey, CircuitConfig, HttpVersion, McmConfig, McmTls, RetryConfig};
use mcm_bridge::mcm::classify::{Outcome, RetryKind};
use mcm_bridge::mcm::client::McmClient;
use mcm_bridge::mcm::event::{ChannelType, EventType, Item, McmEvent, Money};
use mcm_bridge::sandbox::{self, Faults, SandboxConfig, SandboxHandle, SelfSigned};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "tls-test-key";
const PLATFORM: &str = "DEMO_TEST";

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

/// A generated CA and server certificate, with the CA written where `mcm.tls.ca_file` can read it.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let generated = SelfSigned::generate().expect("generate a CA and a server certificate");
        let dir = tempfile::tempdir().expect("tmp");
        generated.write_to(dir.path()).expect("write the PEM files");
        Pki { dir }
    }

    fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// What `mcm.tls.ca_file: <ca.pem>` loads to.
    fn trust(&self) -> McmTls {
        let path = self.ca_file();
        McmTls {
            extra_roots: mcm_bridge::config::tls::load_ca_bundle(&path).expect("CA bundle"),
            ca_file: Some(path),
        }
    }
}

async fn tls_sandbox(pki: &Pki, h2_max_streams: Option<u32>, faults: Faults) -> SandboxHandle {
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    let files_dir = pki.dir.path();
    cfg.tls = Some(Arc::new(
        sandbox::TlsIdentity::from_pem_files(
            &files_dir.join("server.pem"),
            &files_dir.join("server.key"),
        )
        .expect("server identity"),
    ));
    cfg.h2_max_streams = h2_max_streams;
    cfg.faults = faults;
    sandbox::spawn(cfg).await.expect("TLS sandbox starts")
}

fn config(base_url: &str, tls: McmTls, version: HttpVersion, max_in_flight: usize) -> McmConfig {
    McmConfig {
        base_url: base_url.to_string(),
        platform_id: PLATFORM.into(),
        api_key: ApiKey::new(KEY),
        api_key_source: "test".into(),
        timeout: Duration::from_secs(10),
        max_in_flight,
        allow_insecure_http: false,
        strict_validation: false,
        future_tolerance: Duration::ZERO,
        retry: RetryConfig::default(),
        circuit_breaker: CircuitConfig::default(),
        adaptive_concurrency: false,
        min_in_flight: 1,
        rate_limit: 0,
        http_version: version,
        tls,
    }
}

fn client(cfg: &McmConfig) -> McmClient {
    McmClient::new(cfg).expect("client builds")
}

#[tokio::test]
async fn every_http_version_delivers_over_https_with_the_ca_from_tls_ca_file() {
    let pki = Pki::new();
    let sb = tls_sandbox(&pki, None, Faults::default()).await;
    assert!(
        sb.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        sb.base_url()
    );
    let mut expected = (0, 0);
    for (n, version) in [HttpVersion::Auto, HttpVersion::Http1, HttpVersion::Http2]
        .into_iter()
        .enumerate()
    {
        let c = client(&config(&sb.base_url(), pki.trust(), version, 8));
        let sends = (0..10).map(|i| c.send(purchase(&format!("v{n}-{i}"), true)));
        for a in futures::future::join_all(sends).await {
            assert_eq!(a.outcome, Outcome::Delivered { status: 200 }, "{version:?}");
        }
        // `auto` prefers HTTP/1.1 although the sandbox offers h2 in ALPN.
        match version {
            HttpVersion::Http2 => expected.1 += 10,
            HttpVersion::Auto | HttpVersion::Http1 => expected.0 += 10,
        }
        let t = sb.stats().await.traffic;
        assert_eq!(
            (t.http1_requests, t.http2_requests),
            expected,
            "{version:?}"
        );
    }
    let stats = sb.stats().await;
    assert_eq!(stats.accepted_by_type.get("PURCHASE"), Some(&30));
    assert_eq!(stats.traffic.tls_handshake_failures, 0);
}

#[tokio::test]
async fn without_tls_ca_file_the_certificate_is_refused_as_an_unknown_authority() {
    let pki = Pki::new();
    let sb = tls_sandbox(&pki, None, Faults::default()).await;
    for version in [HttpVersion::Auto, HttpVersion::Http2] {
        let c = client(&config(&sb.base_url(), McmTls::default(), version, 8));
        let a = c.send(purchase("untrusted", true)).await;
        assert_eq!(
            a.outcome.retry_kind(),
            Some(RetryKind::Connect),
            "{version:?}"
        );
        let Outcome::Retryable { detail, .. } = &a.outcome else {
            panic!("expected a retryable connect error, got {:?}", a.outcome)
        };
        assert!(
            detail.contains("unknown certificate authority") && detail.contains("mcm.tls.ca_file"),
            "{version:?}: {detail}"
        );
        assert!(detail.contains("UnknownIssuer"), "{version:?}: {detail}");
        assert!(!detail.contains(KEY));
    }
    // The server notes a failed handshake when it reads the client's alert, which may be just
    // after the client reported its error: wait for it (bounded), then check.
    let mut stats = sb.stats().await;
    for _ in 0..100 {
        if stats.traffic.tls_handshake_failures >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = sb.stats().await;
    }
    assert_eq!(
        stats.traffic.tls_handshake_failures, 2,
        "{:?}",
        stats.traffic
    );
    assert_eq!(
        stats.requests_total, 0,
        "no request without a trusted handshake"
    );
}

#[tokio::test]
async fn http2_keeps_more_requests_in_flight_than_one_connections_stream_limit() {
    // A front end allowing 4 streams per connection and a 200 ms sink: 32 requests at once. One
    // HTTP/2 connection would hold at most 4 of them in the sandbox (see the next test).
    let pki = Pki::new();
    let faults = Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    };
    let sb = tls_sandbox(&pki, Some(4), faults).await;
    let c = client(&config(&sb.base_url(), pki.trust(), HttpVersion::Http2, 32));
    let sends = (0..32).map(|i| c.send(purchase(&format!("h2-{i}"), true)));
    for a in futures::future::join_all(sends).await {
        // A stream beyond the server's limit would be refused (REFUSED_STREAM): every request
        // delivered means the limit was honoured on every connection.
        assert_eq!(a.outcome, Outcome::Delivered { status: 200 });
    }
    let t = sb.stats().await.traffic;
    assert_eq!(t.http2_requests, 32, "{t:?}");
    assert!(
        t.peak_concurrent_requests > 4,
        "more than one connection's 4 streams in flight at once: {t:?}"
    );
    assert!(t.connections_total >= 2, "{t:?}");
    assert!(
        t.connections_total <= 32,
        "at most max_in_flight connections: {t:?}"
    );
}

#[tokio::test]
async fn one_http2_connection_carries_at_most_the_sandbox_stream_limit() {
    // The control for the test above, and the proof that `h2_max_streams` reaches the wire: 32
    // requests over a single HTTP/2 connection (what hyper's pooled client opens per host) are
    // never more than 4 at once in the sandbox.
    use http_body_util::{BodyExt, Full};
    let pki = Pki::new();
    let faults = Faults {
        latency: Duration::from_millis(100),
        ..Faults::default()
    };
    let sb = tls_sandbox(&pki, Some(4), faults).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(pki.trust().extra_roots[0].clone())
        .expect("the CA is a valid root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(sb.addr())
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the generated CA");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake::<_, Full<Bytes>>(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(connection);
    let url = sb.events_url();
    let send = |id: String| {
        let mut sender = sender.clone();
        let request = hyper::Request::post(url.as_str())
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(Full::new(purchase(&id, true)))
            .expect("request");
        async move {
            let response = sender.send_request(request).await.expect("response");
            let status = response.status();
            let _ = response.into_body().collect().await;
            status
        }
    };
    // One request first: its answer comes after the server's SETTINGS frame, so the client
    // knows the limit before the burst (streams opened earlier would be refused).
    assert_eq!(send("one-first".into()).await, 200);
    let sends = (0..32).map(|i| send(format!("one-{i}")));
    for status in futures::future::join_all(sends).await {
        assert_eq!(status, 200);
    }
    let t = sb.stats().await.traffic;
    assert_eq!((t.connections_total, t.http2_requests), (1, 33), "{t:?}");
    assert_eq!(t.peak_concurrent_requests, 4, "{t:?}");
}

#[tokio::test]
async fn http2_pool_reconnects_after_the_server_closed_its_connections() {
    // The sandbox stops (HTTP/2 GOAWAY, connections closed) and a new one starts on the same
    // address: the pool must drop the dead connections and open new ones, not fail requests.
    let pki = Pki::new();
    let first = tls_sandbox(&pki, Some(4), Faults::default()).await;
    let addr = first.addr();
    let c = client(&config(
        &first.base_url(),
        pki.trust(),
        HttpVersion::Http2,
        16,
    ));
    let sends = (0..8).map(|i| c.send(purchase(&format!("before-{i}"), true)));
    for a in futures::future::join_all(sends).await {
        assert_eq!(a.outcome, Outcome::Delivered { status: 200 });
    }
    first.shutdown().await.expect("clean stop");

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("same address again");
    let mut cfg = SandboxConfig::new(PLATFORM, KEY);
    cfg.tls = Some(Arc::new(
        sandbox::TlsIdentity::from_pem_files(
            &pki.dir.path().join("server.pem"),
            &pki.dir.path().join("server.key"),
        )
        .expect("server identity"),
    ));
    cfg.h2_max_streams = Some(4);
    let second = sandbox::spawn_on(listener, cfg).expect("second sandbox");
    let sends = (0..8).map(|i| c.send(purchase(&format!("after-{i}"), true)));
    for a in futures::future::join_all(sends).await {
        assert_eq!(a.outcome, Outcome::Delivered { status: 200 });
    }
    let t = second.stats().await.traffic;
    assert_eq!(t.http2_requests, 8, "{t:?}");
    assert!(
        t.connections_total >= 2,
        "new connections to the new server: {t:?}"
    );
}

#[tokio::test]
async fn tls_sandbox_validates_and_injects_faults_as_over_plain_http() {
    let pki = Pki::new();
    let sb = tls_sandbox(&pki, None, Faults::default()).await;
    for version in [HttpVersion::Http1, HttpVersion::Http2] {
        let c = client(&config(&sb.base_url(), pki.trust(), version, 8));
        // Validation: a purchase without items is a 400 with the reason.
        match c.send(purchase("no-items", false)).await.outcome {
            Outcome::Permanent { status, reason, .. } => {
                assert_eq!(status, 400, "{version:?}");
                assert!(reason.contains("items"), "{version:?}: {reason}");
            }
            other => panic!("{version:?}: expected a 400, got {other:?}"),
        }
        // Authentication: a wrong key is a 403.
        let mut wrong = config(&sb.base_url(), pki.trust(), version, 8);
        wrong.api_key = ApiKey::new("not-the-key");
        let a = client(&wrong).send(purchase("wrong-key", true)).await;
        assert_eq!(a.status, Some(403), "{version:?}");
        // Faults: every request answered 500.
        sb.set_faults(&Faults {
            fail_rate: 1.0,
            ..Faults::default()
        })
        .expect("valid faults");
        let a = c.send(purchase("fail", true)).await;
        assert_eq!(
            a.outcome.retry_kind(),
            Some(RetryKind::ServerError(500)),
            "{version:?}"
        );
        sb.set_faults(&Faults::default()).expect("valid faults");
    }
    let stats = sb.stats().await;
    assert_eq!(stats.rejected_total, 2);
    assert_eq!(stats.auth_failures.get("403"), Some(&2));
    assert_eq!(stats.faults.get("fail_500"), Some(&2));
    assert_eq!(stats.accepted_total, 0);
}

#[tokio::test]
async fn sandbox_binary_serves_a_generated_certificate_and_writes_its_ca() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("tmp");
    let tls_dir = dir.path().join("tls");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--platform-id",
            PLATFORM,
        ])
        .arg("--tls-self-signed")
        .arg(&tls_dir)
        .args(["--h2-max-streams", "4"])
        .env("MCM_API_KEY", KEY)
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
    let prefix = "sandbox listening on https://";
    assert!(line.starts_with(prefix), "{line}");
    let ca = tls_dir.join("ca.pem");
    assert!(
        line.trim_end()
            .ends_with(&format!("(platform {PLATFORM}, CA {})", ca.display())),
        "{line}"
    );
    let addr = line[prefix.len()..]
        .split_whitespace()
        .next()
        .expect("address");
    let tls = McmTls {
        extra_roots: mcm_bridge::config::tls::load_ca_bundle(Path::new(&ca)).expect("CA"),
        ca_file: Some(ca.clone()),
    };
    for version in [HttpVersion::Auto, HttpVersion::Http2] {
        let c = client(&config(&format!("https://{addr}"), tls.clone(), version, 8));
        let a = c.send(purchase(&format!("bin-{version:?}"), true)).await;
        assert_eq!(a.outcome, Outcome::Delivered { status: 200 }, "{version:?}");
    }
    // The name in the certificate is `localhost` as well as 127.0.0.1.
    let port = addr.rsplit(':').next().expect("port");
    let c = client(&config(
        &format!("https://localhost:{port}"),
        tls,
        HttpVersion::Http1,
        8,
    ));
    let a = c.send(purchase("bin-localhost", true)).await;
    assert_eq!(a.outcome, Outcome::Delivered { status: 200 });
    child.kill().await.expect("stop the child we started");
}
