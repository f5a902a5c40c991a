//! HTTP answers in the real API's shapes: `{}` on success, the gRPC-gateway error envelope
//! `{"code": <grpc code>, "message": "...", "details": [...]}` on errors (reference §3.2), and the
//! Go router's plain-text `404 page not found\n` for unrouted paths (reference §1.3).

use super::body::Rejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The gRPC status code that grpc-gateway pairs with an HTTP status (reference §3.3).
pub fn grpc_code(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 => 3,  // INVALID_ARGUMENT
        401 => 16, // UNAUTHENTICATED
        403 => 7,  // PERMISSION_DENIED
        404 => 5,  // NOT_FOUND
        405 => 12, // UNIMPLEMENTED (grpc-gateway's answer to a wrong method)
        429 => 8,  // RESOURCE_EXHAUSTED
        503 => 14, // UNAVAILABLE
        _ => 13,   // INTERNAL for 500 and anything unexpected
    }
}

/// The success body: an empty object.
pub fn ok() -> Response {
    json_response(StatusCode::OK, b"{}".to_vec())
}

/// An error envelope with no details.
pub fn error(status: StatusCode, message: &str) -> Response {
    error_with_details(status, message, Vec::new())
}

/// An error envelope with the given `details` entries.
pub fn error_with_details(status: StatusCode, message: &str, details: Vec<Value>) -> Response {
    let body = json!({ "code": grpc_code(status), "message": message, "details": details });
    json_response(status, body.to_string().into_bytes())
}

/// A 400 for a rejected body; `details` lists every problem as `{"reason", "field"}`.
pub fn rejected(r: &Rejection) -> Response {
    let details = r
        .details
        .iter()
        .map(|d| json!({ "reason": d.reason.code(), "field": d.field }))
        .collect();
    error_with_details(StatusCode::BAD_REQUEST, &r.message, details)
}

/// A 429 with `Retry-After` when configured.
pub fn throttled(retry_after: Option<u64>) -> Response {
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        "request denied by throttler, try again later",
    );
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// What the real gateway answers for a path it does not route.
pub fn page_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_grpc_codes() {
        for (http, grpc) in [
            (400, 3),
            (401, 16),
            (403, 7),
            (404, 5),
            (429, 8),
            (500, 13),
            (503, 14),
        ] {
            let s = StatusCode::from_u16(http).expect("valid status");
            assert_eq!(grpc_code(s), grpc, "HTTP {http}");
        }
    }

    #[test]
    fn throttled_carries_retry_after_only_when_configured() {
        let with = throttled(Some(2));
        assert_eq!(with.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            with.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from_static("2"))
        );
        assert!(throttled(None).headers().get(header::RETRY_AFTER).is_none());
    }
}
