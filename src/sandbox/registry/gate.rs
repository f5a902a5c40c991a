//! What every registry request passes before its handler: it is counted by route kind, refused
//! with 503 while the registry is set unavailable, and refused with 401 when basic auth is
//! configured and the `Authorization` header does not match.
//!
//! The order is deliberate: a request is counted whatever its answer (a test that shows the
//! bridge caches schemas counts attempts, not successes), and an outage answers before auth, as a
//! load balancer in front of a down registry would.

use super::routes::error_body;
use super::Shared;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The kinds of request the registry counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// `POST /subjects/{subject}/versions`
    Register,
    /// `POST /subjects/{subject}`
    Lookup,
    /// `GET /schemas/ids/{id}`
    SchemaById,
    /// `GET /schemas/ids/{id}/schema`
    SchemaByIdRaw,
    /// `GET /schemas/types`
    SchemaTypes,
    /// `GET /subjects`
    Subjects,
    /// `GET /subjects/{subject}/versions`
    SubjectVersions,
    /// `GET /subjects/{subject}/versions/{version}`
    SubjectVersion,
    /// `GET /subjects/{subject}/versions/{version}/schema`
    SubjectVersionRaw,
    /// `GET /config` and `GET /config/{subject}`
    Config,
    /// `GET /associations/resources/{namespace}/{name}`: unrouted (answered 404, as by a registry
    /// without the associations API), but counted, because confluent-kafka-python 2.16's default
    /// subject name strategy asks it first and falls back to the topic name on 404.
    Associations,
    /// Anything else (answered 404 or 405).
    Other,
}

impl RouteKind {
    const COUNT: usize = RouteKind::Other as usize + 1;

    /// The kind of a request, from its method and (still percent-encoded) path, so a subject
    /// holding an encoded `/` stays one segment.
    pub fn classify(method: &Method, path: &str) -> RouteKind {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let post = *method == Method::POST;
        let get = *method == Method::GET;
        match segments.as_slice() {
            ["subjects", _, "versions"] if post => RouteKind::Register,
            ["subjects", _] if post => RouteKind::Lookup,
            ["schemas", "ids", _] if get => RouteKind::SchemaById,
            ["schemas", "ids", _, "schema"] if get => RouteKind::SchemaByIdRaw,
            ["schemas", "types"] if get => RouteKind::SchemaTypes,
            ["subjects"] if get => RouteKind::Subjects,
            ["subjects", _, "versions"] if get => RouteKind::SubjectVersions,
            ["subjects", _, "versions", _] if get => RouteKind::SubjectVersion,
            ["subjects", _, "versions", _, "schema"] if get => RouteKind::SubjectVersionRaw,
            ["config"] | ["config", _] if get => RouteKind::Config,
            ["associations", "resources", _, _] if get => RouteKind::Associations,
            _ => RouteKind::Other,
        }
    }
}

/// Requests seen per [`RouteKind`].
#[derive(Debug, Default)]
pub struct Hits([AtomicU64; RouteKind::COUNT]);

impl Hits {
    fn count(&self, kind: RouteKind) {
        self.0[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, kind: RouteKind) -> u64 {
        self.0[kind as usize].load(Ordering::Relaxed)
    }
}

/// The middleware: count, then outage, then auth.
pub async fn gate(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    shared
        .hits
        .count(RouteKind::classify(req.method(), req.uri().path()));
    if shared.unavailable.load(Ordering::Relaxed) {
        return error_body(
            StatusCode::SERVICE_UNAVAILABLE,
            50003,
            "Error while forwarding the request to the primary (injected: registry unavailable)",
        );
    }
    if let Some(expected) = &shared.expected_authorization {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            let mut answer = error_body(StatusCode::UNAUTHORIZED, 401, "Unauthorized");
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"SchemaRegistry\""),
            );
            return answer;
        }
    }
    next.run(req).await
}

/// The `Authorization` value a client with these credentials sends: `Basic base64(user:pass)`.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding (RFC 4648 §4); a dozen lines instead of a crate for one header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(
            basic_authorization("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn requests_are_classified_by_method_and_shape() {
        use RouteKind::*;
        let cases = [
            (Method::POST, "/subjects/t-value/versions", Register),
            (Method::POST, "/subjects/t-value", Lookup),
            (Method::GET, "/schemas/ids/3", SchemaById),
            (Method::GET, "/schemas/ids/3/schema", SchemaByIdRaw),
            (Method::GET, "/schemas/types", SchemaTypes),
            (Method::GET, "/subjects", Subjects),
            (Method::GET, "/subjects/a%2Fb/versions", SubjectVersions),
            (Method::GET, "/subjects/a/versions/latest", SubjectVersion),
            (
                Method::GET,
                "/subjects/a/versions/1/schema",
                SubjectVersionRaw,
            ),
            (Method::GET, "/config/a", Config),
            (Method::GET, "/associations/resources/-/users", Associations),
            (Method::DELETE, "/subjects/a", Other),
            (Method::GET, "/schemas/ids", Other),
        ];
        for (method, path, kind) in cases {
            assert_eq!(RouteKind::classify(&method, path), kind, "{method} {path}");
        }
    }
}
