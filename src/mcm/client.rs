//! The HTTP client for the MCM User Event API: one POST per event, one classified [`Attempt`].
//!
//! A thin shell around one pooled `reqwest::Client` (rustls, keep-alive, HTTP/2 when the server
//! offers it): it builds the request, reads at most [`BODY_READ_LIMIT`] bytes of the response and
//! hands status, `Retry-After` and body to [`classify`]. It makes exactly one
//! attempt — retries, backoff and the circuit breaker live in `crate::delivery`.
//!
//! Guarantees: redirects are never followed (a redirect means a wrong URL, and following one
//! would send the API key elsewhere); plain `http://` is refused unless `allow_insecure_http`; the
//! API key is only in a sensitive default header and never in an error, `Debug` output or log.

use super::classify::{self, Outcome, TransportFailure};
use crate::config::McmConfig;
use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::Url;
use std::fmt;
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
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
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

/// See the module docs. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct McmClient {
    http: reqwest::Client,
    url: Url,
    timeout: Duration,
}

impl fmt::Debug for McmClient {
    // Hand-written so the inner client's header map can never be printed, even if a future
    // reqwest stops honouring `set_sensitive` in its Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McmClient")
            .field("url", &self.url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl McmClient {
    pub fn new(cfg: &McmConfig) -> Result<McmClient, ClientError> {
        let raw = cfg.events_url();
        let url = Url::parse(&raw).map_err(|e| ClientError::InvalidUrl {
            url: cfg.base_url.clone(),
            reason: e.to_string(),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if cfg.allow_insecure_http => {}
            "http" => {
                return Err(ClientError::InsecureUrl {
                    url: cfg.base_url.clone(),
                })
            }
            _ => {
                return Err(ClientError::UnsupportedScheme {
                    url: cfg.base_url.clone(),
                })
            }
        }

        let mut key =
            HeaderValue::from_str(cfg.api_key.expose()).map_err(|_| ClientError::InvalidApiKey)?;
        // Sensitive values are redacted in reqwest/http Debug output and kept out of HPACK tables.
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));

        let builder = match cfg.http_version {
            crate::config::HttpVersion::Auto => reqwest::Client::builder(),
            crate::config::HttpVersion::Http1 => reqwest::Client::builder().http1_only(),
            crate::config::HttpVersion::Http2 => reqwest::Client::builder().http2_prior_knowledge(),
        };
        let http = builder
            .tls_backend_rustls()
            .https_only(!cfg.allow_insecure_http)
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Keep at least one idle connection per possible in-flight request, so a burst
            // after a lull does not pay a TLS handshake per event.
            .pool_max_idle_per_host(cfg.max_in_flight.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(60))
            .build()
            .map_err(ClientError::Build)?;
        Ok(McmClient {
            http,
            url,
            timeout: cfg.timeout,
        })
    }

    /// The endpoint every event is POSTed to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Makes one attempt and classifies it. Never fails: transport errors become retryable outcomes.
    pub async fn send(&self, body: Bytes) -> Attempt {
        let started = Instant::now();
        let outcome = match self.http.post(self.url.clone()).body(body).send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                // A body read error after the status arrived does not change the verdict: the
                // status is what Moloco decided; the body only explains it.
                let body = read_capped(&mut response).await;
                classify::classify_response(
                    status,
                    retry_after.as_deref(),
                    &body,
                    SystemTime::now(),
                )
            }
            Err(e) => {
                let failure = if e.is_timeout() {
                    TransportFailure::Timeout
                } else {
                    TransportFailure::Connect
                };
                classify::classify_transport(failure, &error_chain(&e))
            }
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
}

impl Transport for McmClient {
    fn send(&self, body: Bytes) -> impl std::future::Future<Output = Attempt> + Send {
        McmClient::send(self, body)
    }
}

async fn read_capped(response: &mut reqwest::Response) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < BODY_READ_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(BODY_READ_LIMIT - out.len());
                out.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// The error and its sources on one line ("error sending request … : connection refused"), since
/// reqwest's top-level message alone rarely says what went wrong. Contains the URL (platform id)
/// but never headers, so never the key.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
