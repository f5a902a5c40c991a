//! Fetching schemas from a Confluent-compatible schema registry: `GET /schemas/ids/{id}`, then
//! each reference's `GET /subjects/{subject}/versions/{version}` (recursively), and what each
//! failure means for the messages that wait on it.
//!
//! The classes follow Moloco's failure protocol for MCM, applied to the registry:
//! - **retry** ([`FetchError::Unavailable`]): no connection, a timeout, 5xx, 408 or 429 — the
//!   registry blinked, the message is healthy, so the pipeline pauses and tries again;
//! - **halt** ([`FetchError::Refused`]): 401/403 (the credentials), or an answer that is not a
//!   registry's (a 404 without the registry's error code, another 4xx, a body that is not its
//!   JSON) — the configuration is wrong, and dead-lettering would throw away every message of
//!   the topic, so the pipeline stays paused and says so until it is fixed;
//! - **permanent** ([`Known::NotFound`], [`Known::Invalid`]): the registry itself says there is
//!   no such schema (404 with error code 40403), or gives one that does not parse — those
//!   messages can never be decoded and go to the DLQ with that reason.
//!
//! Stricter than Confluent's own deserializers, which fail the message on any registry error:
//! only the registry's own "not found" dead-letters.

use super::book::{AvroSchema, Known};
use super::proto::ProtoSchema;
use crate::config::schema_registry::{RegistryAuth, SchemaRegistryConfig};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;

/// Why a fetch gave no answer about the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Worth retrying: the registry may be back soon.
    #[error("schema registry unavailable at {url}: {why}")]
    Unavailable { url: String, why: String },
    /// Not worth retrying until the configuration changes (credentials, URL).
    #[error("schema registry at {url} refused: {why}")]
    Refused { url: String, why: String },
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistryClientError {
    #[error("schema_registry.url {url:?}: {why}")]
    InvalidUrl { url: String, why: String },
    #[error("schema_registry TLS: {0}")]
    Tls(#[source] rustls::Error),
    #[error("schema_registry credentials cannot be sent in an HTTP header")]
    InvalidCredentials,
}

type Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// At most this many schemas are fetched for one id (itself and its references, transitively).
const MAX_SCHEMAS_PER_ID: usize = 64;

/// An answer body larger than this is not a schema the bridge will use.
const MAX_BODY: usize = 8 << 20;

/// Path segment characters kept as they are (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Clone)]
pub struct RegistryClient {
    client: Client,
    urls: Vec<String>,
    /// The URL that answered last: asked first next time, so a registry node that is down costs
    /// one timeout, not one per fetch.
    preferred: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    auth: Option<HeaderValue>,
    timeout: Duration,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("urls", &self.urls)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `GET /schemas/ids/{id}` and `GET /subjects/{s}/versions/{v}` answers (extra fields ignored).
#[derive(Debug, Deserialize)]
struct SchemaAnswer {
    /// In `/subjects/{s}/versions/{v}` answers (not in `/schemas/ids/{id}`, which is asked by id).
    #[serde(default)]
    id: Option<u32>,
    schema: String,
    /// Absent for AVRO, as Confluent's registry answers.
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
struct Reference {
    name: String,
    subject: String,
    version: i64,
}

#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error_code: i64,
}

/// One request's outcome, before it is judged for an id or a reference.
enum Got {
    Schema(SchemaAnswer),
    /// The registry's own 404 (its error code says what is missing).
    NotFound(i64),
}

impl RegistryClient {
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<RegistryClient, RegistryClientError> {
        let mut urls = Vec::new();
        for u in &cfg.urls {
            let trimmed = u.trim_end_matches('/').to_string();
            let uri: Uri = trimmed.parse().map_err(|e: hyper::http::uri::InvalidUri| {
                RegistryClientError::InvalidUrl {
                    url: u.clone(),
                    why: e.to_string(),
                }
            })?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(RegistryClientError::InvalidUrl {
                    url: u.clone(),
                    why: "expected an http:// or https:// URL with a host".into(),
                });
            }
            urls.push(trimmed);
        }
        let auth = match &cfg.auth {
            RegistryAuth::None => None,
            RegistryAuth::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                let text = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                );
                Some(
                    HeaderValue::from_str(&text)
                        .map_err(|_| RegistryClientError::InvalidCredentials)?,
                )
            }
            RegistryAuth::Bearer(token) => Some(
                HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| RegistryClientError::InvalidCredentials)?,
            ),
        }
        .map(|mut v| {
            v.set_sensitive(true);
            v
        });
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(cfg.timeout));
        tcp.set_nodelay(true);
        let tls = crate::mcm::client::tls_config(&cfg.tls.extra_roots)
            .map_err(RegistryClientError::Tls)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(RegistryClient {
            client,
            urls,
            preferred: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            auth,
            timeout: cfg.timeout,
        })
    }

    /// What the registry says of schema `id`, with its references resolved; `Err` when it
    /// could not say (see the module docs for which errors are retried).
    pub async fn fetch(&self, id: u32) -> Result<Known, FetchError> {
        match self.get(&format!("/schemas/ids/{id}")).await? {
            Got::Schema(s) => self.resolve(s).await,
            Got::NotFound(_) => Ok(Known::NotFound),
        }
    }

    /// The schema registered under `subject` at `version` (`latest` or a number), with its id
    /// and references resolved (`None`: no such subject or version): what `map` and `test`
    /// frame a JSON message with, as a producer's serializer would.
    pub async fn version(
        &self,
        subject: &str,
        version: &str,
    ) -> Result<Option<(u32, Known)>, FetchError> {
        let path = format!(
            "/subjects/{}/versions/{}",
            utf8_percent_encode(subject, SEGMENT),
            utf8_percent_encode(version, SEGMENT)
        );
        match self.get(&path).await? {
            Got::Schema(s) => {
                let id = s.id.ok_or_else(|| FetchError::Refused {
                    url: path.clone(),
                    why: "the answer names no schema id: not a schema registry's".into(),
                })?;
                Ok(Some((id, self.resolve(s).await?)))
            }
            Got::NotFound(_) => Ok(None),
        }
    }

    /// The text of the latest JSON Schema registered under `subject` (`None`: no such subject,
    /// or its latest schema is of another type): `validate --online` checks the paths a
    /// `json_schema` block reads against it.
    pub async fn latest_json_schema(&self, subject: &str) -> Result<Option<String>, FetchError> {
        let path = format!(
            "/subjects/{}/versions/latest",
            utf8_percent_encode(subject, SEGMENT)
        );
        match self.get(&path).await? {
            Got::Schema(s)
                if s.schema_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("JSON")) =>
            {
                Ok(Some(s.schema))
            }
            _ => Ok(None),
        }
    }

    /// The latest schema registered under `subject` (`None`: no such subject), with its
    /// references resolved: what `validate --online` checks the rules' paths against.
    pub async fn latest(&self, subject: &str) -> Result<Option<Known>, FetchError> {
        let path = format!(
            "/subjects/{}/versions/latest",
            utf8_percent_encode(subject, SEGMENT)
        );
        match self.get(&path).await? {
            Got::Schema(s) => self.resolve(s).await.map(Some),
            Got::NotFound(_) => Ok(None),
        }
    }

    /// Whether the registry answers with these credentials (`GET /subjects`, the cheapest call
    /// that needs them).
    pub async fn ping(&self) -> Result<(), FetchError> {
        let mut last = None;
        for base in &self.urls {
            match self.get_raw(base, "/subjects").await {
                Ok((status, body)) => {
                    return match judge(status, &body) {
                        // A list of subjects is not a schema answer: a 200 is enough here.
                        _ if status == StatusCode::OK => Ok(()),
                        Err((true, why)) => Err(FetchError::Unavailable {
                            url: format!("{base}/subjects"),
                            why,
                        }),
                        _ => Err(FetchError::Refused {
                            url: format!("{base}/subjects"),
                            why: format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(200)])
                            ),
                        }),
                    };
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| FetchError::Refused {
            url: String::new(),
            why: "no schema_registry.url".into(),
        }))
    }

    /// `main` with its references fetched and parsed.
    async fn resolve(&self, main: SchemaAnswer) -> Result<Known, FetchError> {
        let kind = main
            .schema_type
            .as_deref()
            .unwrap_or("AVRO")
            .to_ascii_uppercase();
        match kind.as_str() {
            "AVRO" | "PROTOBUF" => {}
            "JSON" => return Ok(Known::Json),
            _ => return Ok(Known::Other(kind)),
        }
        // References, depth first, each name fetched once (a diamond of references is common).
        let mut texts = Vec::new();
        // By name, as Confluent's clients resolve them: the same type referenced at two versions
        // (or twice) is taken once, the first met, instead of colliding when parsed.
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: Vec<Reference> = main.references.clone();
        while let Some(r) = queue.pop() {
            if !seen.insert(r.name.clone()) {
                continue;
            }
            if seen.len() > MAX_SCHEMAS_PER_ID {
                return Ok(Known::Invalid(format!(
                    "more than {MAX_SCHEMAS_PER_ID} referenced schemas"
                )));
            }
            let path = format!(
                "/subjects/{}/versions/{}",
                utf8_percent_encode(&r.subject, SEGMENT),
                r.version
            );
            match self.get(&path).await? {
                Got::Schema(s) => {
                    queue.extend(s.references.iter().cloned());
                    texts.push((r.name.clone(), s.schema));
                }
                Got::NotFound(code) => {
                    return Ok(Known::Invalid(format!(
                        "its reference {:?} (subject {:?} version {}) is not in the registry \
                         (error code {code})",
                        r.name, r.subject, r.version
                    )))
                }
            }
        }
        if kind == "PROTOBUF" {
            // Imports are resolved by the references' names, in any order.
            return Ok(match ProtoSchema::parse(&main.schema, &texts) {
                Ok(s) => Known::Protobuf(std::sync::Arc::new(s)),
                Err(why) => Known::Invalid(why),
            });
        }
        // Deepest references last fetched: first to resolve.
        let mut texts: Vec<String> = texts.into_iter().map(|(_, t)| t).collect();
        texts.reverse();
        Ok(match AvroSchema::parse(&main.schema, &texts) {
            Ok(s) => Known::Avro(std::sync::Arc::new(s)),
            Err(why) => Known::Invalid(why),
        })
    }

    /// One GET, tried against each URL in turn while they are unavailable, starting with the
    /// one that answered last.
    async fn get(&self, path: &str) -> Result<Got, FetchError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut last = None;
        let start = self.preferred.load(Relaxed);
        for i in 0..self.urls.len() {
            let at = (start + i) % self.urls.len();
            match self.get_from(&self.urls[at], path).await {
                Err(e @ FetchError::Unavailable { .. }) => last = Some(e),
                other => {
                    self.preferred.store(at, Relaxed);
                    return other;
                }
            }
        }
        Err(last.unwrap_or_else(|| FetchError::Refused {
            url: String::new(),
            why: "no schema_registry.url".into(),
        }))
    }

    async fn get_from(&self, base: &str, path: &str) -> Result<Got, FetchError> {
        let (status, body) = self.get_raw(base, path).await?;
        let url = format!("{base}{path}");
        judge(status, &body).map_err(|(retry, why)| {
            if retry {
                FetchError::Unavailable { url, why }
            } else {
                FetchError::Refused { url, why }
            }
        })
    }

    /// Registers an Avro `schema` under `subject` (`POST /subjects/{subject}/versions`) and
    /// returns its id (the same id for a schema registered before): what a producer's serializer
    /// does with auto-registration, for `generate --format avro`.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, FetchError> {
        let path = format!(
            "/subjects/{}/versions",
            utf8_percent_encode(subject, SEGMENT)
        );
        let body = serde_json::json!({ "schema": schema }).to_string();
        let base = self.urls.first().map(String::as_str).unwrap_or_default();
        let url = format!("{base}{path}");
        let (status, answer) = self.send(base, &path, Some(Bytes::from(body))).await?;
        #[derive(Deserialize)]
        struct Registered {
            id: u32,
        }
        match (status, serde_json::from_slice::<Registered>(&answer)) {
            (StatusCode::OK, Ok(r)) => Ok(r.id),
            _ => Err(FetchError::Refused {
                url,
                why: format!(
                    "{status}: {}",
                    String::from_utf8_lossy(&answer[..answer.len().min(200)])
                ),
            }),
        }
    }

    /// One GET's status and body; `Err` only when no answer came (always worth retrying).
    async fn get_raw(&self, base: &str, path: &str) -> Result<(StatusCode, Bytes), FetchError> {
        self.send(base, path, None).await
    }

    /// A GET, or a POST of `body` (JSON).
    async fn send(
        &self,
        base: &str,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), FetchError> {
        let url = format!("{base}{path}");
        let unavailable = |why: String| FetchError::Unavailable {
            url: url.clone(),
            why,
        };
        let refused = |why: String| FetchError::Refused {
            url: url.clone(),
            why,
        };
        let mut req = Request::builder()
            .method(if body.is_some() {
                hyper::Method::POST
            } else {
                hyper::Method::GET
            })
            .uri(&url)
            .header(
                header::CONTENT_TYPE,
                "application/vnd.schemaregistry.v1+json",
            )
            .header(
                header::ACCEPT,
                "application/vnd.schemaregistry.v1+json, application/json",
            )
            .header(header::USER_AGENT, crate::mcm::client::USER_AGENT);
        if let Some(auth) = &self.auth {
            req = req.header(header::AUTHORIZATION, auth.clone());
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| refused(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| unavailable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, FetchError>((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| unavailable(format!("no answer within {:?}", self.timeout)))?
    }
}

/// An answer's meaning; `Err((retry, why))` when it says nothing about the schema.
fn judge(status: StatusCode, body: &[u8]) -> Result<Got, (bool, String)> {
    let snippet = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    match status.as_u16() {
        200 => serde_json::from_slice::<SchemaAnswer>(body)
            .map(Got::Schema)
            .map_err(|e| {
                (
                    false,
                    format!("200 but not a schema answer ({e}): {}", snippet()),
                )
            }),
        // 40401 subject, 40402 version, 40403 schema not found: the registry's own words.
        404 => match serde_json::from_slice::<ErrorAnswer>(body) {
            Ok(e) if (40400..40500).contains(&e.error_code) => Ok(Got::NotFound(e.error_code)),
            _ => Err((
                false,
                format!(
                    "404 without a registry error code (is the URL a schema registry's?): {}",
                    snippet()
                ),
            )),
        },
        401 | 403 => Err((
            false,
            format!("{status}: check schema_registry credentials"),
        )),
        408 | 429 | 500..=599 => Err((true, format!("{status}: {}", snippet()))),
        _ => Err((false, format!("{status}: {}", snippet()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_registrys_own_not_found_is_permanent() {
        let nf = judge(
            StatusCode::NOT_FOUND,
            br#"{"error_code":40403,"message":"Schema 7 not found"}"#,
        );
        assert!(matches!(nf, Ok(Got::NotFound(40403))));
        assert!(matches!(
            judge(StatusCode::NOT_FOUND, b"<html>nginx</html>"),
            Err((false, _))
        ));
        assert!(matches!(
            judge(StatusCode::UNAUTHORIZED, b""),
            Err((false, _))
        ));
        assert!(matches!(
            judge(StatusCode::SERVICE_UNAVAILABLE, b""),
            Err((true, _))
        ));
        assert!(matches!(
            judge(StatusCode::TOO_MANY_REQUESTS, b""),
            Err((true, _))
        ));
        assert!(matches!(judge(StatusCode::OK, b"<html>"), Err((false, _))));
        let ok = judge(
            StatusCode::OK,
            br#"{"schema":"\"string\"","references":[]}"#,
        );
        assert!(matches!(ok, Ok(Got::Schema(_))));
    }
}
