//! Classification of one MCM User Event API attempt into an [`Outcome`] (DESIGN.md contract 3).
//!
//! Pure: the inputs are the HTTP status, the raw `Retry-After` header value, the (already capped)
//! response body and the current wall-clock time, or a transport failure kind. The result decides
//! what the pipeline does with the message: ack it (delivered), dead-letter it (permanent), retry it
//! (retryable) or halt delivery without committing (fatal). No I/O, no reqwest types, so every
//! branch is unit-tested here; `client.rs` only extracts the inputs.
//!
//! Guarantees: never panics on any body (bytes need not be UTF-8 or JSON); snippets are at most
//! [`BODY_SNIPPET_MAX`] bytes and cut on a UTF-8 boundary; `retry_after` is never above
//! [`MAX_RETRY_AFTER`].

use std::fmt;
use std::time::{Duration, SystemTime};

/// Largest response-body snippet kept in an outcome (it ends up in DLQ headers and logs).
pub const BODY_SNIPPET_MAX: usize = 512;

/// Upper bound on a server-requested wait. Moloco's failure protocol re-probes every 15 min; a
/// larger `Retry-After` (or a far-future HTTP date) would stall a partition for no benefit.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// The stable class of an outcome, used as a metric label and DLQ header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum OutcomeClass {
    Delivered,
    Permanent,
    Retryable,
    Fatal,
}

impl OutcomeClass {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why a retryable attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RetryKind {
    /// 429: Moloco's throttler ("request denied by throttler, try again later").
    Throttled,
    /// 5xx, or 408 (the server gave up waiting for our request — a server-side condition too).
    ServerError(u16),
    /// No response within `mcm.timeout`.
    Timeout,
    /// Could not connect, or the connection failed before a full response (DNS, TCP, TLS, reset).
    Connect,
}

impl RetryKind {
    /// Stable lowercase name for metric labels (`reason`); the status is a separate label.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for RetryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryKind::ServerError(s) => write!(f, "server_error({s})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// A transport failure (no HTTP response), as seen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    Timeout,
    /// Connect errors and every other I/O failure before a response was read.
    Connect,
}

/// What one attempt means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: Moloco accepted the event; ack it.
    Delivered { status: u16 },
    /// 400 and other 4xx not listed as fatal: this message will never be accepted as it is.
    Permanent {
        status: u16,
        /// Moloco's `message` from the gRPC-status JSON body, else the start of the body text.
        reason: String,
        body_snippet: String,
    },
    /// 429, 408, 5xx, timeouts, connection errors: try the same bytes again later.
    Retryable {
        kind: RetryKind,
        /// `None` for transport failures.
        status: Option<u16>,
        /// Server-requested wait, already capped at [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
        /// Body snippet, or the transport error text.
        detail: String,
    },
    /// 401/403/404/405 and 3xx: the bridge is misconfigured (key, platform id, URL); every message
    /// would fail the same way, so delivery must halt instead of dead-lettering the stream.
    Fatal {
        status: u16,
        /// What to check, for the operator.
        hint: &'static str,
        body_snippet: String,
    },
}

impl Outcome {
    pub fn class(&self) -> OutcomeClass {
        match self {
            Outcome::Delivered { .. } => OutcomeClass::Delivered,
            Outcome::Permanent { .. } => OutcomeClass::Permanent,
            Outcome::Retryable { .. } => OutcomeClass::Retryable,
            Outcome::Fatal { .. } => OutcomeClass::Fatal,
        }
    }

    /// The HTTP status, if a response was received.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status }
            | Outcome::Permanent { status, .. }
            | Outcome::Fatal { status, .. } => Some(*status),
            Outcome::Retryable { status, .. } => *status,
        }
    }

    /// The retry kind for retryable outcomes.
    pub fn retry_kind(&self) -> Option<RetryKind> {
        match self {
            Outcome::Retryable { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Classifies an HTTP response. `retry_after` is the raw header value; `now` anchors HTTP dates.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered { status },
        429 => retryable(RetryKind::Throttled, status, retry_after, body, now),
        408 | 500..=599 => retryable(RetryKind::ServerError(status), status, retry_after, body, now),
        300..=399 => fatal(
            status,
            "redirect: mcm.base_url is wrong (redirects are never followed); use the exact events host",
            body,
        ),
        401 => fatal(status, "unauthorized: check mcm.api_key", body),
        403 => fatal(
            status,
            "forbidden: the API key is not valid for this platform; check mcm.api_key and mcm.platform_id",
            body,
        ),
        404 => fatal(
            status,
            "not found: check mcm.platform_id and mcm.platform_name / mcm.base_url",
            body,
        ),
        405 => fatal(
            status,
            "method not allowed: mcm.base_url does not point at the User Event API",
            body,
        ),
        400..=499 => {
            let body_snippet = snippet(body);
            let reason = grpc_message(body)
                .map(|m| truncate_utf8(&m, BODY_SNIPPET_MAX))
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| {
                    let text = body_snippet.trim();
                    if text.is_empty() {
                        format!("HTTP {status} with an empty body")
                    } else {
                        text.to_string()
                    }
                });
            Outcome::Permanent {
                status,
                reason,
                body_snippet,
            }
        }
        // 1xx as a final status or anything outside 100..=599 is not HTTP we understand; treat it
        // like a wrong endpoint rather than guessing that retrying or dead-lettering is safe.
        _ => fatal(
            status,
            "unexpected HTTP status: mcm.base_url may not point at the MCM API",
            body,
        ),
    }
}

/// Classifies a failure that produced no HTTP response.
pub fn classify_transport(failure: TransportFailure, detail: &str) -> Outcome {
    let kind = match failure {
        TransportFailure::Timeout => RetryKind::Timeout,
        TransportFailure::Connect => RetryKind::Connect,
    };
    Outcome::Retryable {
        kind,
        status: None,
        retry_after: None,
        detail: truncate_utf8(detail, BODY_SNIPPET_MAX),
    }
}

/// Parses `Retry-After` as delay-seconds or an HTTP date relative to `now`. A date in the past
/// means "now" (zero); anything above [`MAX_RETRY_AFTER`] is capped; garbage is ignored (`None`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is still "a very long time": cap instead of ignoring it.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// The body as text (lossy), at most [`BODY_SNIPPET_MAX`] bytes, cut on a character boundary.
pub fn snippet(body: &[u8]) -> String {
    // Decode only a little more than we keep: a lossy char is at most 3 bytes per input byte.
    let head = &body[..body.len().min(BODY_SNIPPET_MAX)];
    truncate_utf8(&String::from_utf8_lossy(head), BODY_SNIPPET_MAX)
}

fn truncate_utf8(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Moloco's error envelope is a JSON gRPC status `{"code":3,"message":"…","details":[]}`; the
/// HTTP status already carries the code, so only `message` is useful.
fn grpc_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("message")?.as_str().map(str::to_string)
}

fn retryable(
    kind: RetryKind,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Outcome {
    Outcome::Retryable {
        kind,
        status: Some(status),
        retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
        detail: snippet(body),
    }
}

fn fatal(status: u16, hint: &'static str, body: &[u8]) -> Outcome {
    Outcome::Fatal {
        status,
        hint,
        body_snippet: snippet(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        // 2026-01-01T00:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
    }

    fn classify(status: u16, body: &[u8]) -> Outcome {
        classify_response(status, None, body, now())
    }

    #[test]
    fn every_2xx_is_delivered() {
        for s in [200, 201, 202, 204, 299] {
            assert_eq!(classify(s, b"{}"), Outcome::Delivered { status: s });
            assert_eq!(classify(s, b"{}").class().as_str(), "delivered");
        }
    }

    #[test]
    fn bad_request_with_grpc_json_is_permanent_with_the_message_as_reason() {
        let body = br#"{"code":3,"message":"page_id is empty","details":[]}"#;
        match classify(400, body) {
            Outcome::Permanent {
                status,
                reason,
                body_snippet,
            } => {
                assert_eq!(status, 400);
                assert_eq!(reason, "page_id is empty");
                assert_eq!(body_snippet.as_bytes(), body);
            }
            other => panic!("expected permanent, got {other:?}"),
        }
    }

    #[test]
    fn other_client_errors_are_permanent_with_a_text_reason() {
        for s in [409, 413, 422, 400, 418] {
            let o = classify(s, b"  payload too large\n");
            assert_eq!(o.class(), OutcomeClass::Permanent, "status {s}");
            let Outcome::Permanent { reason, .. } = o else {
                unreachable!()
            };
            assert_eq!(reason, "payload too large");
        }
    }

    #[test]
    fn permanent_with_empty_body_or_json_without_message_still_has_a_reason() {
        let Outcome::Permanent { reason, .. } = classify(422, b"") else {
            panic!("expected permanent")
        };
        assert_eq!(reason, "HTTP 422 with an empty body");
        let Outcome::Permanent { reason, .. } = classify(400, br#"{"code":3}"#) else {
            panic!("expected permanent")
        };
        assert_eq!(reason, r#"{"code":3}"#);
    }

    #[test]
    fn throttling_is_retryable() {
        let o = classify(429, b"request denied by throttler, try again later");
        assert_eq!(o.class().as_str(), "retryable");
        assert_eq!(o.retry_kind(), Some(RetryKind::Throttled));
        assert_eq!(o.status(), Some(429));
    }

    #[test]
    fn server_errors_and_request_timeout_are_retryable_with_their_status() {
        for s in [408, 500, 502, 503, 504, 599] {
            let o = classify(s, b"");
            assert_eq!(o.retry_kind(), Some(RetryKind::ServerError(s)), "{s}");
        }
        assert_eq!(RetryKind::ServerError(503).as_str(), "server_error");
        assert_eq!(RetryKind::ServerError(503).to_string(), "server_error(503)");
        assert_eq!(RetryKind::Throttled.as_str(), "throttled");
        assert_eq!(RetryKind::Timeout.as_str(), "timeout");
        assert_eq!(RetryKind::Connect.as_str(), "connect");
        assert_eq!(RetryKind::Connect.to_string(), "connect");
        assert_eq!(OutcomeClass::Fatal.as_str(), "fatal");
    }

    #[test]
    fn auth_platform_url_and_method_errors_are_fatal() {
        for s in [401, 403, 404, 405] {
            let o = classify(s, b"{}");
            assert_eq!(o.class().as_str(), "fatal", "{s}");
            assert_eq!(o.status(), Some(s));
        }
    }

    #[test]
    fn plain_text_404_is_fatal_with_the_text_as_snippet() {
        match classify(404, b"404 page not found\n") {
            Outcome::Fatal {
                status,
                body_snippet,
                hint,
            } => {
                assert_eq!(status, 404);
                assert_eq!(body_snippet, "404 page not found\n");
                assert!(hint.contains("platform_id"));
            }
            other => panic!("expected fatal, got {other:?}"),
        }
    }

    #[test]
    fn redirects_are_fatal_because_they_are_never_followed() {
        for s in [301, 302, 307, 308] {
            let o = classify(s, b"");
            assert_eq!(o.class(), OutcomeClass::Fatal, "{s}");
        }
    }

    #[test]
    fn nonsense_statuses_are_fatal() {
        assert_eq!(classify(101, b"").class(), OutcomeClass::Fatal);
        assert_eq!(classify(600, b"").class(), OutcomeClass::Fatal);
    }

    #[test]
    fn transport_failures_are_retryable() {
        let t = classify_transport(TransportFailure::Timeout, "operation timed out");
        assert_eq!(t.retry_kind(), Some(RetryKind::Timeout));
        assert_eq!(t.status(), None);
        let c = classify_transport(TransportFailure::Connect, "connection refused");
        assert_eq!(c.retry_kind(), Some(RetryKind::Connect));
        assert_eq!(c.class().as_str(), "retryable");
    }

    #[test]
    fn snippet_is_capped_on_a_utf8_boundary() {
        // 511 ASCII bytes then a 3-byte char straddling the 512 limit.
        let mut body = vec![b'a'; 511];
        body.extend_from_slice("€€".as_bytes());
        let s = snippet(&body);
        assert_eq!(s.len(), 511);
        assert!(s.chars().all(|c| c == 'a'));
        let long = "é".repeat(1000);
        let s = snippet(long.as_bytes());
        assert!(s.len() <= BODY_SNIPPET_MAX);
        assert_eq!(s.len(), 512);
    }

    #[test]
    fn snippet_survives_invalid_utf8() {
        let s = snippet(&[0xff, 0xfe, b'o', b'k']);
        assert!(s.ends_with("ok"));
        assert!(s.len() <= BODY_SNIPPET_MAX);
        let s = snippet(&[0xff; 2000]);
        assert!(s.len() <= BODY_SNIPPET_MAX);
    }

    #[test]
    fn long_grpc_message_is_capped() {
        let body = format!(r#"{{"code":3,"message":"{}"}}"#, "x".repeat(2000));
        let Outcome::Permanent { reason, .. } = classify(400, body.as_bytes()) else {
            panic!("expected permanent")
        };
        assert_eq!(reason.len(), BODY_SNIPPET_MAX);
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999", now()), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("999999999999999999999999", now()),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_http_date_is_relative_to_now() {
        let at = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&at, now()), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now() - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now()), Some(Duration::ZERO));
        let far = httpdate::fmt_http_date(now() + Duration::from_secs(86_400));
        assert_eq!(parse_retry_after(&far, now()), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn retry_after_garbage_is_ignored() {
        for v in ["", "soon", "-5", "1.5", "Mon, 99 Foo 2026"] {
            assert_eq!(parse_retry_after(v, now()), None, "{v:?}");
        }
    }

    #[test]
    fn retry_after_is_carried_on_429_and_5xx() {
        let o = classify_response(429, Some("7"), b"", now());
        let Outcome::Retryable { retry_after, .. } = o else {
            panic!("expected retryable")
        };
        assert_eq!(retry_after, Some(Duration::from_secs(7)));
        let o = classify_response(503, Some("nonsense"), b"", now());
        let Outcome::Retryable { retry_after, .. } = o else {
            panic!("expected retryable")
        };
        assert_eq!(retry_after, None);
    }

    #[test]
    fn class_names_are_stable() {
        assert_eq!(OutcomeClass::Delivered.to_string(), "delivered");
        assert_eq!(OutcomeClass::Permanent.to_string(), "permanent");
        assert_eq!(OutcomeClass::Retryable.to_string(), "retryable");
        assert_eq!(OutcomeClass::Fatal.to_string(), "fatal");
    }
}
