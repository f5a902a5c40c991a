//! What MCM's answer to the probe means (pure): the probe is a POST of `{}`, an event the API
//! must refuse (see [`super::PROBE_BODY`] for why it is safe), so the status says whether the
//! API key and the platform id were accepted.

use crate::doctor::report::Check;
use crate::mcm::classify::{Outcome, RetryKind};

/// The check's name.
pub const NAME: &str = "mcm.auth";

/// gRPC INVALID_ARGUMENT: the code MCM's gRPC-gateway puts in the body of a 400.
const INVALID_ARGUMENT: i64 = 3;

/// The `code` of a gRPC status body (`{"code":3,"message":…}`), if the body is one.
fn grpc_code(body: &str) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("code")?.as_i64()
}

/// Judges the probe's outcome for `platform` at `url` (the events URL).
pub fn probe(outcome: &Outcome, platform: &str, url: &str) -> Check {
    let subject = format!("platform {platform}");
    match outcome {
        // The stricter reading: only the API's own validation answer counts as "the key was
        // accepted" — a 400 with the gRPC status INVALID_ARGUMENT, which the service gives after
        // authentication. A bare 400 (a proxy, another server at this URL) proves nothing.
        Outcome::Permanent {
            status: 400,
            reason,
            body_snippet,
        } if grpc_code(body_snippet) == Some(INVALID_ARGUMENT) => Check::pass(
            NAME,
            subject,
            format!("API key and platform id accepted (MCM refused the empty probe event as invalid, as it does only after accepting both: 400 \"{reason}\"; nothing was stored)"),
        ),
        Outcome::Permanent { status, reason, .. } => Check::warn(
            NAME,
            subject,
            format!("not verified: the empty probe event got {status} \"{reason}\", not MCM's validation answer (400 with a gRPC INVALID_ARGUMENT status)"),
        )
        .fix(format!("check that mcm.base_url points at the User Event API itself ({url})")),
        Outcome::Fatal {
            status: 401,
            body_snippet,
            ..
        } => Check::fail(
            NAME,
            subject,
            format!("MCM refused the API key (401 unauthenticated: {})", body_snippet.trim()),
        )
        .fix("check mcm.api_key (or mcm.api_key_file): the platform's key from the Moloco portal, Credential Management; keys can expire"),
        Outcome::Fatal {
            status: 403,
            body_snippet,
            ..
        } => Check::fail(
            NAME,
            subject,
            format!("MCM refused the API key for this platform (403 permission denied: {})", body_snippet.trim()),
        )
        .fix(format!("check that mcm.api_key is a key of platform {platform} (test and production platforms have different keys) and that mcm.platform_id is right")),
        Outcome::Fatal {
            status: 404,
            body_snippet,
            ..
        } => {
            let fix = format!("mcm.base_url is the scheme and host only (the bridge appends /rmp/event/v1/platforms/{platform}/userevents); check mcm.platform_id");
            if grpc_code(body_snippet).is_some() {
                // The API's own answer: the route exists, the platform does not.
                Check::fail(
                    NAME,
                    subject,
                    format!("MCM does not know this platform at {url} (404: {})", body_snippet.trim()),
                )
                .fix(format!("check mcm.platform_id ({platform}) against the id Moloco gave you, and mcm.platform_name / mcm.base_url"))
            } else {
                // An unrouted path: a plain-text 404 from the router (reference §1.3).
                Check::fail(
                    NAME,
                    subject,
                    format!("the URL path or platform is wrong: {url} is not served (404: {})", body_snippet.trim()),
                )
                .fix(fix)
            }
        }
        Outcome::Fatal {
            status,
            hint,
            body_snippet,
        } => Check::fail(
            NAME,
            subject,
            format!("MCM answered {status} to the probe ({}): {hint}", body_snippet.trim()),
        ),
        Outcome::Delivered { status } => Check::warn(
            NAME,
            subject,
            format!("the API key was accepted, but MCM accepted an empty event ({status}), which its documented rules refuse"),
        )
        .fix(format!("check that mcm.base_url points at the User Event API ({url}); if it does, tell Moloco")),
        Outcome::Retryable {
            kind: RetryKind::Throttled,
            detail,
            ..
        } => Check::warn(
            NAME,
            subject,
            format!("not verified: MCM throttled the probe (429: {})", detail.trim()),
        )
        .fix("run the check again later"),
        Outcome::Retryable {
            kind: RetryKind::ServerError(status),
            detail,
            ..
        } => Check::fail(
            NAME,
            subject,
            format!("not verified: MCM answered {status} (server error: {})", detail.trim()),
        )
        .fix("run the check again later (the bridge retries such answers with backoff)"),
        Outcome::Retryable { kind, detail, .. } => Check::fail(
            NAME,
            subject,
            format!("no answer to the probe ({kind}: {detail})"),
        )
        .fix("check that this host reaches the MCM endpoint (see the mcm.dns, mcm.tcp and mcm.tls lines)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::report::Status;
    use crate::mcm::classify::{classify_response, classify_transport, TransportFailure};
    use std::time::SystemTime;

    const URL: &str = "https://acme-evt.mcm-api.moloco.com/rmp/event/v1/platforms/ACME/userevents";

    fn answer(status: u16, body: &str) -> Check {
        probe(
            &classify_response(status, None, body.as_bytes(), SystemTime::now()),
            "ACME",
            URL,
        )
    }

    #[test]
    fn moloco_refusing_the_empty_event_means_key_and_platform_were_accepted() {
        let c = answer(
            400,
            r#"{"code":3,"message":"missing event_type","details":[]}"#,
        );
        assert_eq!(c.status, Status::Pass);
        assert!(
            c.detail.contains("API key and platform id accepted"),
            "{}",
            c.detail
        );
        assert!(c.detail.contains("missing event_type"), "{}", c.detail);
    }

    #[test]
    fn a_400_that_is_not_the_apis_validation_answer_proves_nothing() {
        for body in ["Bad Request", r#"{"code":13,"message":"x"}"#, ""] {
            assert_eq!(answer(400, body).status, Status::Warn, "{body:?}");
        }
        assert_eq!(answer(422, r#"{"code":3}"#).status, Status::Warn);
    }

    #[test]
    fn refusals_of_key_platform_and_path_fail_with_what_to_check() {
        let key = answer(401, r#"{"code":16,"message":"missing API key"}"#);
        assert_eq!(key.status, Status::Fail);
        assert!(key.detail.contains("refused the API key"), "{}", key.detail);
        assert!(key
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("mcm.api_key")));
        let wrong = answer(403, r#"{"code":7,"message":"permission denied"}"#);
        assert!(wrong
            .detail
            .contains("refused the API key for this platform"));
        assert!(wrong
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("key of platform ACME")));
        let platform = answer(404, r#"{"code":5,"message":"platform \"ACME\" not found"}"#);
        assert!(
            platform.detail.contains("does not know this platform"),
            "{}",
            platform.detail
        );
        assert!(platform
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("mcm.platform_id")));
        let path = answer(404, "404 page not found\n");
        assert_eq!(path.status, Status::Fail);
        assert!(
            path.detail.contains("the URL path or platform is wrong"),
            "{}",
            path.detail
        );
        assert!(path.detail.contains(URL));
        assert!(path
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("scheme and host only")));
        let redirect = answer(301, "");
        assert_eq!(redirect.status, Status::Fail);
        assert!(
            redirect.detail.contains("mcm.base_url is wrong"),
            "{}",
            redirect.detail
        );
    }

    #[test]
    fn unverifiable_answers_warn_or_fail_but_never_pass() {
        assert_eq!(answer(200, "{}").status, Status::Warn);
        assert_eq!(answer(429, "").status, Status::Warn);
        assert_eq!(answer(503, "").status, Status::Fail);
        let none = probe(
            &classify_transport(TransportFailure::Timeout, "no answer within 5s"),
            "ACME",
            URL,
        );
        assert_eq!(none.status, Status::Fail);
        assert!(
            none.detail.contains("no answer within 5s"),
            "{}",
            none.detail
        );
    }
}
