//! `POST /rmp/event/v1/platforms/{platform_id}/userevents`: the emulated User Event API.
//!
//! Order of answers, modelled on the real gateway and the JS mock (reference §3.3): latency first
//! (every answer is delayed), then an active outage (503, the whole service is down), then
//! authentication (401 missing key, 403 wrong key), the platform id (404), injected throttling
//! (429) and server errors (500), and finally the body (400 or 200 `{}`). Faulted requests are
//! never counted as accepted. Nothing here logs per request: this handler is the sink of every
//! benchmark.

use super::body;
use super::envelope;
use super::faults::{self, Verdict};
use super::state::Shared;
use super::stats::{AuthFailure, FaultKind};
use crate::mcm::validate::ValidateOptions;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Version};
use axum::response::Response;
use bytes::Bytes;
use std::sync::Arc;

/// The API key header (header names are case-insensitive; `HeaderMap` lookups already are).
const API_KEY: &str = "x-api-key";

pub async fn post_event(
    State(s): State<Arc<Shared>>,
    Path(platform_id): Path<String>,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.counters.request();
    // In flight until this answer is returned (or the client goes away), latency included.
    let _in_flight = s.traffic.request(version);
    let f = s.faults();
    // `rand::rng()` is thread-local and not `Send`, so it is taken in short scopes, never held
    // across an await.
    let delay = faults::delay(&f, &mut rand::rng());
    if !delay.is_zero() {
        s.delays.sleep(delay).await;
    }
    let outage = faults::outage_active(&f, s.outage_started_at(), s.now());
    let verdict = faults::verdict(&f, &mut rand::rng(), outage);

    if verdict == Verdict::Outage {
        s.counters.fault(FaultKind::Outage);
        return envelope::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is currently unavailable (sandbox outage)",
        );
    }
    if let Err(f) = authorize(&s, &platform_id, &headers) {
        return refuse(&s, f, &platform_id);
    }
    match verdict {
        Verdict::Throttle => {
            s.counters.fault(FaultKind::Throttle);
            return envelope::throttled(f.retry_after);
        }
        Verdict::Fail => {
            s.counters.fault(FaultKind::Fail);
            return envelope::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error (sandbox fail_rate)",
            );
        }
        Verdict::Proceed | Verdict::Outage => {}
    }

    let event = match body::check(&body, &ValidateOptions::now()) {
        Ok(event) => event,
        Err(rejection) => {
            s.counters
                .rejected(rejection.details.iter().map(|d| d.reason));
            return envelope::rejected(&rejection);
        }
    };
    if let Some(recorder) = &s.recorder {
        // Queued before the 200 is sent, so a later flush covers every event a client saw
        // accepted.
        if recorder.record(body).await.is_err() {
            s.counters.record_error();
            return envelope::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "sandbox recorder has stopped",
            );
        }
    }
    let new_id = event.id.as_deref().map(|id| s.ids.insert(id));
    s.counters.accepted(event.event_type, new_id);
    s.note_accepted_for_outage(&f);
    envelope::ok()
}

/// 401 / 403 / 404, in that order: without a valid key the caller learns nothing about which
/// platforms exist.
fn authorize(s: &Shared, platform_id: &str, headers: &HeaderMap) -> Result<(), AuthFailure> {
    match headers.get(API_KEY) {
        None => Err(AuthFailure::MissingKey),
        Some(v) if v.is_empty() => Err(AuthFailure::MissingKey),
        Some(v) if !s.key_matches(v.as_bytes()) => Err(AuthFailure::WrongKey),
        Some(_) if platform_id != s.platform_id => Err(AuthFailure::UnknownPlatform),
        Some(_) => Ok(()),
    }
}

fn refuse(s: &Shared, f: AuthFailure, platform_id: &str) -> Response {
    s.counters.auth_failure(f);
    let status = StatusCode::from_u16(f.status()).unwrap_or(StatusCode::FORBIDDEN);
    match f {
        AuthFailure::MissingKey => envelope::error(status, "missing API key (X-API-Key header)"),
        AuthFailure::WrongKey => envelope::error(status, "permission denied: invalid API key"),
        AuthFailure::UnknownPlatform => {
            envelope::error(status, &format!("platform {platform_id:?} not found"))
        }
    }
}

/// Any method other than POST on the event path.
pub async fn method_not_allowed(State(s): State<Arc<Shared>>) -> Response {
    s.counters.method_not_allowed();
    let mut resp = envelope::error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    resp
}
