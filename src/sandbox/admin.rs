//! The sandbox's own control routes, under `/_sandbox/` (a prefix the real API never uses):
//!
//! - `GET /_sandbox/stats`: flushes the recorder, then answers the counters as JSON, so a test can
//!   read the record file right after and see every accepted event;
//! - `GET /_sandbox/wait?answered=N[&timeout_ms=T]`: holds the request until N events have been
//!   answered (accepted + rejected) or T ms passed (default 30 000, at most 600 000), then answers
//!   like `stats`. A benchmark waits on this instead of polling `stats` from a shell loop, whose
//!   `curl` and `jq` processes took about a tenth of a 2-core machine's CPU at 10 polls a second;
//!   with `first_answer_unix_ms` / `last_answer_unix_ms` the run's span is exact too;
//! - `POST /_sandbox/reset`: zeroes counters and the id set (the record file is kept);
//! - `GET /_sandbox/faults`: the current fault knobs;
//! - `PUT /_sandbox/faults`: replaces every fault knob (absent knobs go back to "off") and, with an
//!   optional `"api_key"` member, the accepted API key. Answers the knobs now in force (never the
//!   key).

use super::config::Faults;
use super::envelope;
use super::state::Shared;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `GET /_sandbox/wait` without `timeout_ms`.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);
/// The longest `GET /_sandbox/wait` holds a request.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// How often a waiting request looks at the counter: one atomic load, so short is cheap.
const WAIT_POLL: Duration = Duration::from_millis(5);

pub async fn stats(State(s): State<Arc<Shared>>) -> Response {
    if let Some(recorder) = &s.recorder {
        if recorder.flush().await.is_err() {
            // Counted, not hidden: `record_errors` tells the test the file may be incomplete.
            s.counters.record_error();
        }
    }
    json(StatusCode::OK, &s.snapshot())
}

/// The query of `GET /_sandbox/wait`.
#[derive(Debug, Deserialize)]
pub struct WaitQuery {
    /// Wait until at least this many events were answered (200 or 400).
    answered: u64,
    timeout_ms: Option<u64>,
}

pub async fn wait(State(s): State<Arc<Shared>>, Query(q): Query<WaitQuery>) -> Response {
    let timeout = q
        .timeout_ms
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(MAX_WAIT);
    let deadline = Instant::now() + timeout;
    while s.counters.answered() < q.answered && Instant::now() < deadline {
        tokio::time::sleep(WAIT_POLL).await;
    }
    stats(State(s)).await
}

pub async fn reset(State(s): State<Arc<Shared>>) -> Response {
    s.reset();
    envelope::ok()
}

pub async fn get_faults(State(s): State<Arc<Shared>>) -> Response {
    json(StatusCode::OK, &s.faults())
}

pub async fn put_faults(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    match apply(&s, &body) {
        Ok(()) => json(StatusCode::OK, &s.faults()),
        Err(message) => envelope::error(StatusCode::BAD_REQUEST, &message),
    }
}

/// Parses and applies a `PUT /_sandbox/faults` body; nothing changes unless all of it is valid.
fn apply(s: &Shared, body: &[u8]) -> Result<(), String> {
    let mut map = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err("body must be a JSON object of fault knobs".into()),
        Err(e) => return Err(format!("body is not valid JSON: {e}")),
    };
    let api_key = match map.remove("api_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k),
        Some(_) => return Err("api_key must be a non-empty string".into()),
    };
    let faults: Faults =
        serde_json::from_value(Value::Object(map)).map_err(|e| format!("invalid knobs: {e}"))?;
    s.set_faults(&faults).map_err(|e| e.to_string())?;
    if let Some(key) = api_key {
        s.set_api_key(&key);
    }
    Ok(())
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => envelope::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::config::SandboxConfig;
    use std::time::Duration;

    fn shared() -> Shared {
        Shared::new(&SandboxConfig::new("P", "old"), None).expect("state")
    }

    #[test]
    fn put_replaces_all_knobs_and_can_change_the_key() {
        let s = shared();
        apply(&s, br#"{"fail_rate":0.5,"latency":"5ms","api_key":"new"}"#).expect("valid");
        assert_eq!(s.faults().fail_rate, 0.5);
        assert_eq!(s.faults().latency, Duration::from_millis(5));
        assert!(s.key_matches(b"new"));
        apply(&s, b"{}").expect("valid");
        assert_eq!(
            s.faults(),
            Faults::default(),
            "absent knobs are switched off"
        );
        assert!(s.key_matches(b"new"), "the key stays when not given");
    }

    #[test]
    fn invalid_put_changes_nothing() {
        let s = shared();
        assert!(apply(&s, br#"{"fail_rate":2,"api_key":"new"}"#).is_err());
        assert!(apply(&s, br#"{"nope":1}"#).is_err());
        assert!(apply(&s, br#"{"api_key":5}"#).is_err());
        assert!(apply(&s, b"[]").is_err());
        assert!(s.key_matches(b"old"));
        assert_eq!(s.faults(), Faults::default());
    }
}
