//! The `mcm` section: where the User Event API is (`platform_name` or `base_url`, https unless
//! plain http is allowed for a sandbox), the platform id and the API key, timeouts and
//! concurrency, and the retry and circuit-breaker policies of Moloco's failure protocol.

use super::decode::{ConfigError, MapReader};
use super::secret::{self, ApiKey};
use super::tls::{self, McmTls};
use serde_yaml_ng::Value;
use std::path::Path;
use std::time::Duration;
use strum::{EnumString, VariantNames};

#[derive(Debug, Clone)]
pub struct McmConfig {
    /// `https://{platform_name}-evt.mcm-api.moloco.com`, or `base_url` when set (trailing `/` removed).
    pub base_url: String,
    pub platform_id: String,
    pub api_key: ApiKey,
    /// Where the key came from, for the summary (`mcm.api_key` or the file path). Never the key.
    pub api_key_source: String,
    pub timeout: Duration,
    /// Global bound on concurrent requests / in-flight messages.
    pub max_in_flight: usize,
    pub allow_insecure_http: bool,
    /// Also enforce the soft rules (revenue for PURCHASE, referrer_page_id for LAND).
    pub strict_validation: bool,
    /// How far ahead of the clock an event timestamp may be (default 0: Moloco rejects future ones).
    pub future_tolerance: Duration,
    pub retry: RetryConfig,
    pub circuit_breaker: CircuitConfig,
    /// Adapt the number of concurrent requests (AIMD) within `[min_in_flight, max_in_flight]`.
    pub adaptive_concurrency: bool,
    pub min_in_flight: usize,
    /// Requests per second at most (0 = no limit), for platforms with a quota.
    pub rate_limit: u32,
    pub http_version: HttpVersion,
    /// Extra certificate authorities to trust (`mcm.tls.ca_file`), next to the platform's.
    pub tls: McmTls,
}

/// Which HTTP version to speak to the API (`auto`, `http1`, `http2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, VariantNames)]
#[strum(serialize_all = "lowercase")]
pub enum HttpVersion {
    /// Whichever costs less per event; today a pool of HTTP/1.1 connections, also when the server
    /// offers HTTP/2 (the measurements are next to the decision in `crate::mcm::client`).
    Auto,
    Http1,
    /// HTTP/2 only (also over plain http, "prior knowledge"): as many multiplexed connections as
    /// `max_in_flight` needs under the server's `SETTINGS_MAX_CONCURRENT_STREAMS`.
    Http2,
}

impl McmConfig {
    /// The User Event endpoint.
    pub fn events_url(&self) -> String {
        format!(
            "{}/rmp/event/v1/platforms/{}/userevents",
            self.base_url, self.platform_id
        )
    }
}

/// Retry policy for retryable outcomes (429, 5xx, timeouts, connection errors).
///
/// Defaults follow Moloco's failure protocol (reference §3.5): wait at least 5 s before retrying
/// a server error, then back off exponentially (10 s, 20 s, 40 s …, capped at 2 min). Attempts made
/// while the circuit breaker is open do not count against `max_attempts`, so a long outage pauses
/// consumption instead of dead-lettering everything in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    /// Total attempts per message (first try included) before `on_permanent_failure` applies.
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> RetryConfig {
        RetryConfig {
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(120),
            multiplier: 2.0,
            max_attempts: 10,
        }
    }
}

/// Circuit breaker: after `failure_threshold` consecutive retryable failures stop sending, probe
/// every `probe_interval`, close on the first success. Moloco suggests opening after more than
/// five failures and probing every ~15 min; we probe every 30 s by default so short outages heal
/// quickly, and allow up to 15 min.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitConfig {
    pub failure_threshold: u32,
    pub probe_interval: Duration,
}

impl Default for CircuitConfig {
    fn default() -> CircuitConfig {
        CircuitConfig {
            failure_threshold: 5,
            probe_interval: Duration::from_secs(30),
        }
    }
}

/// Maximum probe interval (Moloco's documented 15 min).
pub const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(15 * 60);

pub(super) fn read_mcm(
    v: &Value,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> Option<McmConfig> {
    let mut r = MapReader::new(v, "mcm", errors)?;
    let platform_name = r.opt_string("platform_name");
    let base_url = r.opt_string("base_url");
    let allow_insecure_http = r.opt::<bool>("allow_insecure_http").unwrap_or(false);
    let base_url = match (platform_name, base_url) {
        (Some(_), Some(_)) => {
            r.error(
                "base_url",
                "set either mcm.platform_name or mcm.base_url, not both",
            );
            None
        }
        (None, None) => {
            r.error(
                "platform_name",
                "required (the platform name Moloco gave you, e.g. \"acme\"; or set mcm.base_url)",
            );
            None
        }
        (Some(name), None) => {
            // Host label convention (reference §1.2): lower-case, `_` and spaces become `-`.
            let label = name.trim().to_ascii_lowercase().replace(['_', ' '], "-");
            if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                r.error(
                    "platform_name",
                    format!("{name:?} cannot form a host name (letters, digits, '-', '_' only)"),
                );
                None
            } else {
                Some(format!("https://{label}-evt.mcm-api.moloco.com"))
            }
        }
        (None, Some(url)) => {
            let url = url.trim().trim_end_matches('/').to_string();
            if let Some(at) = url.find("/rmp/event/") {
                // Moloco's docs show the whole endpoint; the bridge appends the path itself, so
                // this would POST to …/userevents/rmp/event/v1/… and every request would 404.
                // Refused rather than cut silently: the stricter reading of a URL we would
                // otherwise have to guess at.
                r.error(
                    "base_url",
                    format!(
                        "{url:?} holds the endpoint path: set only the address, {:?} (the bridge appends /rmp/event/v1/platforms/{{platform_id}}/userevents)",
                        &url[..at]
                    ),
                );
                None
            } else if url.starts_with("https://") {
                Some(url)
            } else if url.starts_with("http://") {
                if allow_insecure_http {
                    Some(url)
                } else {
                    r.error(
                        "base_url",
                        "plain http:// sends the API key unencrypted; use https:// (or set mcm.allow_insecure_http: true for a local sandbox)",
                    );
                    None
                }
            } else {
                r.error("base_url", format!("{url:?} must start with https://"));
                None
            }
        }
    };
    let platform_id = r.req::<String>(
        "platform_id",
        "the platform id Moloco gave you, e.g. \"ACME_TEST\"",
    );
    if let Some(id) = &platform_id {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            r.error(
                "platform_id",
                format!("{id:?} is not a platform id (letters, digits and '_' only, e.g. \"ACME_TEST\")"),
            );
        }
    }
    let api_key = secret::read_inline_or_file(
        &mut r,
        "api_key",
        "api_key_file",
        base_dir,
        "usually \"${MCM_API_KEY}\"; or mcm.api_key_file: /run/secrets/mcm-api-key",
    );
    let timeout = r.duration("timeout").unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        r.error("timeout", "must be above zero");
    }
    let max_in_flight = r.opt::<usize>("max_in_flight").unwrap_or(256);
    if max_in_flight == 0 {
        r.error("max_in_flight", "must be at least 1");
    }
    let strict_validation = r.opt::<bool>("strict_validation").unwrap_or(false);
    let future_tolerance = r.duration("future_tolerance").unwrap_or(Duration::ZERO);
    let retry = r
        .raw("retry")
        .cloned()
        .map(|v| read_retry(&v, r.errors()))
        .unwrap_or_default();
    let adaptive_concurrency = r.opt::<bool>("adaptive_concurrency").unwrap_or(true);
    let min_in_flight = r
        .opt::<usize>("min_in_flight")
        .unwrap_or(8)
        .clamp(1, max_in_flight.max(1));
    let rate_limit = r.opt::<u32>("rate_limit").unwrap_or(0);
    let http_version = r.choice("http_version", HttpVersion::Auto);
    let circuit_breaker = r
        .raw("circuit_breaker")
        .cloned()
        .map(|v| read_circuit(&v, r.errors()))
        .unwrap_or_default();
    let tls = r
        .raw("tls")
        .cloned()
        .map(|v| tls::read_tls(&v, base_dir, r.errors()))
        .unwrap_or_default();
    r.finish();
    if base_url
        .as_deref()
        .is_some_and(|u| u.starts_with("http://"))
    {
        warnings.push("mcm.base_url uses plain http:// (allowed by mcm.allow_insecure_http): only for a local sandbox".into());
    }
    let (api_key, api_key_source) = api_key?;
    Some(McmConfig {
        base_url: base_url?,
        platform_id: platform_id?,
        api_key,
        api_key_source,
        timeout,
        max_in_flight,
        allow_insecure_http,
        strict_validation,
        future_tolerance,
        retry,
        circuit_breaker,
        adaptive_concurrency,
        min_in_flight,
        rate_limit,
        http_version,
        tls,
    })
}

fn read_retry(v: &Value, errors: &mut Vec<ConfigError>) -> RetryConfig {
    let d = RetryConfig::default();
    let Some(mut r) = MapReader::new(v, "mcm.retry", errors) else {
        return d;
    };
    let initial_backoff = r.duration("initial_backoff").unwrap_or(d.initial_backoff);
    let max_backoff = r.duration("max_backoff").unwrap_or(d.max_backoff);
    let multiplier = r.opt::<f64>("multiplier").unwrap_or(d.multiplier);
    let max_attempts = r.opt::<u32>("max_attempts").unwrap_or(d.max_attempts);
    if initial_backoff.is_zero() {
        r.error("initial_backoff", "must be above zero");
    }
    if max_backoff < initial_backoff {
        r.error("max_backoff", "must not be below mcm.retry.initial_backoff");
    }
    if !(multiplier.is_finite() && multiplier >= 1.0) {
        r.error("multiplier", format!("{multiplier} must be a number ≥ 1"));
    }
    if max_attempts == 0 {
        r.error(
            "max_attempts",
            "must be at least 1 (the first attempt counts)",
        );
    }
    r.finish();
    RetryConfig {
        initial_backoff,
        max_backoff,
        multiplier,
        max_attempts,
    }
}

fn read_circuit(v: &Value, errors: &mut Vec<ConfigError>) -> CircuitConfig {
    let d = CircuitConfig::default();
    let Some(mut r) = MapReader::new(v, "mcm.circuit_breaker", errors) else {
        return d;
    };
    let failure_threshold = r
        .opt::<u32>("failure_threshold")
        .unwrap_or(d.failure_threshold);
    let probe_interval = r.duration("probe_interval").unwrap_or(d.probe_interval);
    if failure_threshold == 0 {
        r.error("failure_threshold", "must be at least 1");
    }
    if probe_interval.is_zero() || probe_interval > MAX_PROBE_INTERVAL {
        r.error(
            "probe_interval",
            "must be above zero and at most 15m (Moloco's failure protocol)",
        );
    }
    r.finish();
    CircuitConfig {
        failure_threshold,
        probe_interval,
    }
}
