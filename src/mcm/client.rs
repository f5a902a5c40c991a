//! The HTTP client for the MCM User Event API: one POST per event, one classified [`Attempt`].
//!
//! A thin shell around a connection pool (rustls with the platform's trust store plus
//! `mcm.tls.ca_file`, keep-alive): hyper's pooled HTTP/1.1 client, or for `http_version: http2`
//! our [`H2Pool`], which opens as many HTTP/2 connections as `max_in_flight` needs under the
//! server's stream limit. It builds the request, reads at most [`BODY_READ_LIMIT`] bytes of the
//! response and hands status, `Retry-After` and body to [`classify`]. It makes exactly one attempt
//! — retries, backoff and the circuit breaker live in `crate::delivery`.
//!
//! Why hyper's pooled client and not reqwest (which runs on it): MCM takes one event per request,
//! so the per-request cost of the client is the bridge's largest CPU cost. Measured against the
//! sandbox (100k POSTs, 256 in flight, HTTP/1.1, same runtime and allocator): reqwest 29–30 µs of
//! CPU per request, hyper's client 19–20 µs. reqwest adds a URL parse and IDNA pass, a header map
//! merge, its redirect and timeout layers and a larger future per request; we need none of them
//! (we never follow redirects and time out the whole attempt ourselves).
//!
//! Guarantees: redirects are never followed (a redirect means a wrong URL, and following one
//! would send the API key elsewhere); plain `http://` is refused unless `allow_insecure_http`; the
//! API key is only in a sensitive header and never in an error, `Debug` output or log; extra CAs
//! only add to the trusted roots, certificate verification is never turned off.

use super::classify::{self, Outcome, TransportFailure};
use super::h2_pool::{H2Error, H2Pool, H2Settings};
use crate::config::{HttpVersion, McmConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How much of a response body is read. Moloco's bodies are tiny (`{}` or a gRPC status); a
/// misbehaving proxy must not make us buffer megabytes per in-flight request.
pub const BODY_READ_LIMIT: usize = 8 * 1024;

/// `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("mcm-bridge/", env!("CARGO_PKG_VERSION"));

/// Why the client could not be built. Never contains the API key.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("mcm.base_url: {url:?} is not a valid URL ({reason})")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "mcm.base_url: {url:?} uses plain http, which would send the API key unencrypted; use https, or set mcm.allow_insecure_http: true for a local sandbox"
    )]
    InsecureUrl { url: String },
    #[error("mcm.base_url: {url:?} must use https (or http with mcm.allow_insecure_http)")]
    UnsupportedScheme { url: String },
    #[error(
        "mcm.api_key: not usable as an HTTP header value (it contains control or non-ASCII characters)"
    )]
    InvalidApiKey,
    #[error("cannot set up TLS with the platform's certificate store and mcm.tls.ca_file: {0}")]
    Tls(#[source] rustls::Error),
}

/// The result of one HTTP attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// From sending the request to having read (the capped) response body.
    pub elapsed: Duration,
    /// The HTTP status, `None` if no response arrived.
    pub status: Option<u16>,
}

/// One attempt at delivering a body. [`McmClient`] implements it over HTTP; the delivery sender is
/// generic over it so its retry logic can be tested with scripted outcomes as well.
pub trait Transport: Send + Sync {
    fn send(&self, body: Bytes) -> impl std::future::Future<Output = Attempt> + Send;
}

type HttpClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The connection pool requests go through.
#[derive(Clone)]
enum Pool {
    /// hyper's pooled client, HTTP/1.1: one request per connection at a time. (Boxed: it is
    /// 40 times the size of the other variant.)
    Http1(Box<HttpClient>),
    /// HTTP/2, as many connections as the server's stream limit and `max_in_flight` need.
    Http2(H2Pool),
}

/// Why a request got no response: the error of whichever pool carried it.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error(transparent)]
    Http1(#[from] hyper_util::client::legacy::Error),
    #[error(transparent)]
    Http2(#[from] H2Error),
}

/// How long an HTTP/2 connection with requests open may go without answering a PING before it
/// is closed (its requests fail and are retried on another connection), at most.
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How often an HTTP/2 connection with requests open is PINGed.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// See the module docs. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct McmClient {
    pool: Pool,
    uri: Uri,
    /// Every request's headers, API key included (marked sensitive).
    headers: Arc<HeaderMap>,
    timeout: Duration,
}

impl fmt::Debug for McmClient {
    // Hand-written so the header map (with the key) can never be printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McmClient")
            .field("url", &self.uri.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl McmClient {
    pub fn new(cfg: &McmConfig) -> Result<McmClient, ClientError> {
        let raw = cfg.events_url();
        let uri: Uri =
            raw.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| ClientError::InvalidUrl {
                    url: cfg.base_url.clone(),
                    reason: e.to_string(),
                })?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if cfg.allow_insecure_http => false,
            Some("http") => {
                return Err(ClientError::InsecureUrl {
                    url: cfg.base_url.clone(),
                })
            }
            _ => {
                return Err(ClientError::UnsupportedScheme {
                    url: cfg.base_url.clone(),
                })
            }
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(ClientError::InvalidUrl {
                url: cfg.base_url.clone(),
                reason: "no host".into(),
            });
        }

        let mut key =
            HeaderValue::from_str(cfg.api_key.expose()).map_err(|_| ClientError::InvalidApiKey)?;
        // Sensitive values are redacted in Debug output and kept out of HPACK tables.
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));

        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false); // the TLS layer above handles https
        tcp.set_connect_timeout(Some(cfg.timeout));
        tcp.set_keepalive(Some(Duration::from_secs(60)));
        tcp.set_nodelay(true);
        let tls = tls_config(&cfg.tls.extra_roots).map_err(ClientError::Tls)?;
        let schemes = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let schemes = if https {
            schemes.https_only()
        } else {
            schemes.https_or_http()
        };
        let pool = match cfg.http_version {
            // `auto` is HTTP/1.1, also when the server offers h2 in ALPN: a pool of HTTP/1.1
            // connections costs less CPU per event than HTTP/2 and has no per-connection stream
            // cap. Measured end to end over TLS, bridge CPU per delivered event (user+sys, start-up
            // included), alternating runs on a busy shared 2-core machine, so ranges:
            // - nginx terminating TLS in front of the sandbox, 150k events, HTTP/2 then over one
            //   connection: HTTPS/1.1 22.3–23.1 µs, HTTP/2 26.6–28.2 µs;
            // - 5 Dec, the TLS sandbox itself (`--tls-self-signed`), librdkafka mock broker,
            //   8 partitions, max_in_flight 512, 100k events, 3 pairs: no sink latency (CPU
            //   bound, ~29k events/s either way) HTTP/1.1 19.3–20.1 µs, HTTP/2 (this pool, 3
            //   connections) 20.5–21.4 µs, and the sandbox 11.4–11.9 against 13.7–14.2 µs;
            //   50 ms latency and 16 streams per connection, 2 pairs: HTTP/1.1 36.9–43.9 µs,
            //   HTTP/2 (40 connections) 40.7–41.8 µs, within the noise.
            // Plain http is HTTP/1.1 as well (about 3× the events/s of HTTP/2 over one
            // connection against the sandbox; the README's `http_version` row).
            HttpVersion::Auto | HttpVersion::Http1 => Pool::Http1(Box::new(http1_client(
                cfg,
                schemes.enable_http1().wrap_connector(tcp),
            ))),
            // ALPN offers only h2 on https; plain http speaks HTTP/2 with prior knowledge.
            HttpVersion::Http2 => Pool::Http2(H2Pool::new(
                uri.clone(),
                schemes.enable_http2().wrap_connector(tcp),
                H2Settings {
                    max_connections: cfg.max_in_flight.max(1),
                    keep_alive_interval: H2_KEEP_ALIVE_INTERVAL,
                    keep_alive_timeout: cfg.timeout.min(H2_KEEP_ALIVE_TIMEOUT),
                },
            )),
        };
        Ok(McmClient {
            pool,
            uri,
            headers: Arc::new(headers),
            timeout: cfg.timeout,
        })
    }

    /// The endpoint every event is POSTed to.
    pub fn url(&self) -> String {
        self.uri.to_string()
    }

    /// Makes one attempt and classifies it. Never fails: transport errors become retryable
    /// outcomes. The timeout covers the whole attempt: connecting, sending and reading the answer.
    pub async fn send(&self, body: Bytes) -> Attempt {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(Ok((status, retry_after, body))) => classify::classify_response(
                status,
                retry_after.as_deref(),
                &body,
                SystemTime::now(),
            ),
            Ok(Err(e)) => {
                let failure = if is_timeout(&e) {
                    TransportFailure::Timeout
                } else {
                    TransportFailure::Connect
                };
                classify::classify_transport(failure, &describe(&e))
            }
            Err(_) => classify::classify_transport(
                TransportFailure::Timeout,
                &format!("no answer within {:?}", self.timeout),
            ),
        };
        let elapsed = started.elapsed();
        let status = outcome.status();
        tracing::debug!(
            class = outcome.class().as_str(),
            status,
            elapsed_ms = elapsed.as_millis() as u64,
            "mcm attempt"
        );
        Attempt {
            outcome,
            elapsed,
            status,
        }
    }

    /// One request and its (capped) answer: status, `Retry-After`, body.
    async fn exchange(&self, body: Bytes) -> Result<(u16, Option<String>, Vec<u8>), ExchangeError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = HeaderMap::clone(&self.headers);
        // An HTTP/2 lease is held until the body is read: the stream counts against the
        // server's limit until then.
        let (response, _lease) = match &self.pool {
            Pool::Http1(client) => (client.request(request).await?, None),
            Pool::Http2(pool) => {
                let (response, lease) = pool.send(request).await?;
                (response, Some(lease))
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // A body read error after the status arrived does not change the verdict: the status is
        // what Moloco decided; the body only explains it.
        let body = read_capped(response.into_body()).await;
        Ok((status, retry_after, body))
    }
}

/// hyper's pooled client for HTTP/1.1.
fn http1_client(cfg: &McmConfig, connector: HttpsConnector<HttpConnector>) -> HttpClient {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        // Keep at least one idle connection per possible in-flight request, so a burst
        // after a lull does not pay a TLS handshake per event.
        .pool_max_idle_per_host(cfg.max_in_flight.max(1))
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// rustls with the platform's certificate store (what browsers and curl on the host trust) plus
/// `extra_roots` (`mcm.tls.ca_file`), and the aws-lc-rs provider, named explicitly so a second
/// provider elsewhere in the dependency tree cannot make the choice ambiguous.
pub(crate) fn tls_config(
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots.iter().cloned(),
        Arc::clone(&provider),
    )?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous() // only to install the verifier above, which verifies fully
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

impl Transport for McmClient {
    fn send(&self, body: Bytes) -> impl std::future::Future<Output = Attempt> + Send {
        McmClient::send(self, body)
    }
}

async fn read_capped(mut body: hyper::body::Incoming) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < BODY_READ_LIMIT {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(chunk) = frame.data_ref() {
                    let take = chunk.len().min(BODY_READ_LIMIT - out.len());
                    out.extend_from_slice(&chunk[..take]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    out
}

/// Whether a client error is a timeout below ours (the connect timeout).
fn is_timeout(e: &ExchangeError) -> bool {
    sources(e).any(|s| {
        s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    })
}

/// The error and its sources on one line ("client error (Connect): tcp connect error: connection
/// refused"), since the top-level message alone rarely says what went wrong; a certificate the
/// client does not trust gets what to do in front. Never contains headers, so never the key.
fn describe(e: &ExchangeError) -> String {
    let mut text = String::new();
    if let Some(hint) = sources(e).find_map(certificate_hint) {
        text.push_str(hint);
        text.push_str(": ");
    }
    text.push_str(&e.to_string());
    for s in sources(e) {
        text.push_str(": ");
        text.push_str(&s.to_string());
    }
    text
}

/// The sources below `e` (not `e` itself).
fn sources<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |s| s.source())
}

/// What to do about a certificate error in the chain, if there is one. rustls' error arrives
/// wrapped in `io::Error`s (tokio-rustls wraps it, hyper-rustls wraps that), whose `source()`
/// skips the wrapped error, so each wrapper is opened with `get_ref`.
pub(crate) fn certificate_hint(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut inner: &(dyn std::error::Error + 'static) = e;
    while let Some(wrapped) = inner
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        inner = wrapped;
    }
    let tls = inner.downcast_ref::<rustls::Error>()?;
    match tls {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => Some(
            "the server's TLS certificate is signed by an unknown certificate authority (if a TLS-inspecting proxy or a private CA signs it, add that CA to mcm.tls.ca_file)",
        ),
        rustls::Error::InvalidCertificate(_) => {
            Some("the server's TLS certificate was refused")
        }
        _ => None,
    }
}
