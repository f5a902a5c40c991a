//! The MCM half of `doctor`: the endpoint's host resolves, a TCP connection opens, TLS completes
//! with a certificate valid for the host (trusted as `run` trusts it: the platform's store plus
//! `mcm.tls.ca_file`), and MCM accepts the API key and platform id — each step bounded by the
//! timeout, a failed step skipping the ones after it.
//!
//! The key is checked with `run`'s own client ([`McmClient`]: same URL, headers, TLS and HTTP
//! version) sending [`PROBE_BODY`], a request the API must refuse; see there for why that is safe.

pub mod verdict;

use crate::config::McmConfig;
use crate::doctor::report::Check;
use crate::mcm::client::McmClient;
use bytes::Bytes;
use hyper::Uri;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The probe sent to check the API key and platform id: an empty JSON object.
///
/// Why a probe at all: the User Event API has a single operation, storing one event (reference
/// §1, §1.5); there is no read-only or "whoami" call, so the only way to learn whether MCM takes
/// the key is to POST to the events URL.
///
/// Why this one cannot be stored, also on a production platform: `{}` is an event with none of
/// the fields every source marks as required — no `event_type` (its zero value
/// `UNKNOWN_EVENT_TYPE` is documented as never to be sent), no `timestamp` (the server refuses a
/// missing or non-millisecond one: `invalid timestamp`), no `channel_type`, and no identifier
/// (`no available valid identifier to construct Moloco advertising ID`). Where the sources
/// disagree about what is required (`id`, `user_id`, `revenue`…, reference §2.7) we rely on
/// none of it: even the most lenient reading refuses this body with a 400. It is still valid
/// JSON and a JSON *object* (the docs require an object), so the gRPC gateway can decode it and
/// hand it to the service: a body the gateway cannot decode (not JSON, an array, an unknown enum
/// name) could be refused while decoding — before the service checks the key — and its 400
/// would say nothing about the key.
///
/// What the answer proves: Moloco does not document the order of its checks. Its JS client's
/// mock answers a missing key 401, a wrong one 403 and an unknown platform 404 whatever the body,
/// and gRPC services authenticate in an interceptor (or at the edge) before the handler
/// validates the event — an inference, not a documented fact. So we read it strictly (see
/// [`verdict::probe`]): 401/403/404 fail the check; only the API's own validation answer (400
/// with a gRPC INVALID_ARGUMENT status body) passes it; any other answer — a bare 400, a 2xx,
/// a 429, a 5xx — is a warning or a failure, never a pass. Our sandbox answers in that order
/// (key, platform, then the body) and never records a refused event.
pub const PROBE_BODY: &[u8] = b"{}";

/// Runs the MCM checks against `cfg`, each bounded by `timeout`.
pub async fn check(cfg: &McmConfig, timeout: Duration) -> Vec<Check> {
    let url = cfg.events_url();
    let uri: Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => {
            return vec![
                Check::fail("mcm.dns", &url, format!("not a valid URL: {e}"))
                    .fix("correct mcm.base_url / mcm.platform_name"),
            ]
        }
    };
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().unwrap_or_default().to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let later = |from: usize| -> Vec<Check> {
        ["mcm.tcp", "mcm.tls", verdict::NAME][from..]
            .iter()
            .map(|n| Check::skip(n, "", "not checked: an earlier MCM check failed"))
            .collect()
    };

    let mut checks = Vec::new();
    let addrs = match resolve(&host, port, timeout).await {
        Ok(addrs) => {
            checks.push(Check::pass(
                "mcm.dns",
                &host,
                format!("resolves to {}", show(&addrs)),
            ));
            addrs
        }
        Err(e) => {
            checks.push(Check::fail("mcm.dns", &host, e.to_string()).fix(
                "check mcm.platform_name / mcm.base_url (the host Moloco gave you) and this machine's DNS",
            ));
            checks.extend(later(0));
            return checks;
        }
    };
    let stream = match connect(&host, &addrs, timeout).await {
        Ok((stream, addr)) => {
            checks.push(Check::pass(
                "mcm.tcp",
                format!("{host}:{port}"),
                format!("connected to {addr}"),
            ));
            stream
        }
        Err(e) => {
            checks.push(Check::fail("mcm.tcp", format!("{host}:{port}"), e.to_string()).fix(
                "check that this host may open connections to it (firewalls, egress rules; the bridge connects directly, without a proxy)",
            ));
            checks.extend(later(1));
            return checks;
        }
    };
    if https {
        match handshake(cfg, &host, stream, timeout).await {
            Ok(detail) => checks.push(Check::pass("mcm.tls", &host, detail)),
            Err(e) => {
                checks.push(Check::fail("mcm.tls", &host, e.to_string()).fix(
                    "if a TLS-inspecting proxy or a private CA signs the certificate, add that CA to mcm.tls.ca_file; otherwise check mcm.base_url's host",
                ));
                checks.extend(later(2));
                return checks;
            }
        }
    } else {
        drop(stream);
        checks.push(Check::warn(
            "mcm.tls",
            &host,
            "not used: plain http (mcm.allow_insecure_http), so the API key travels unencrypted",
        ));
    }
    checks.push(probe(cfg, timeout, &url).await);
    checks
}

/// Why the endpoint could not be reached, with what was tried.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("no DNS answer for {host} after {}", humantime::format_duration(*timeout))]
    DnsTimeout { host: String, timeout: Duration },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("unreachable after {}", humantime::format_duration(*timeout))]
    ConnectTimeout { timeout: Duration },
    #[error("cannot set up TLS with the platform's certificate store and mcm.tls.ca_file: {0}")]
    TlsSetup(rustls::Error),
    #[error("{host:?} is not a valid TLS server name")]
    ServerName { host: String },
    /// `hint` says what to do about a refused certificate (see `mcm::client`).
    #[error("{}: {source}", hint.unwrap_or("TLS handshake failed"))]
    Handshake {
        hint: Option<&'static str>,
        source: std::io::Error,
    },
    #[error("no TLS handshake within {}", humantime::format_duration(*timeout))]
    HandshakeTimeout { timeout: Duration },
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, ReachError> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let host_owned = || host.to_string();
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(ReachError::NoAddress { host: host_owned() })
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(source)) => Err(ReachError::Resolve {
            host: host_owned(),
            source,
        }),
        Err(_) => Err(ReachError::DnsTimeout {
            host: host_owned(),
            timeout,
        }),
    }
}

fn show(addrs: &[SocketAddr]) -> String {
    let ips: Vec<String> = addrs.iter().take(3).map(|a| a.ip().to_string()).collect();
    let more = addrs.len().saturating_sub(ips.len());
    if more > 0 {
        format!("{} and {more} more", ips.join(", "))
    } else {
        ips.join(", ")
    }
}

/// A connection to the first address that takes one, all within `timeout`; `addrs` is not
/// empty ([`resolve`] says so otherwise).
async fn connect(
    host: &str,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), ReachError> {
    let attempt = async {
        let mut last = ReachError::NoAddress {
            host: host.to_string(),
        };
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok((s, *addr)),
                Err(source) => {
                    last = ReachError::Connect {
                        addr: *addr,
                        source,
                    }
                }
            }
        }
        Err(last)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(ReachError::ConnectTimeout { timeout }))
}

/// A TLS handshake with `run`'s trust settings; the certificate must be valid for `host`.
async fn handshake(
    cfg: &McmConfig,
    host: &str,
    stream: TcpStream,
    timeout: Duration,
) -> Result<String, ReachError> {
    let tls = crate::mcm::client::tls_config(&cfg.tls.extra_roots).map_err(ReachError::TlsSetup)?;
    let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|_| ReachError::ServerName {
        host: host.to_string(),
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let conn = tokio::time::timeout(timeout, connector.connect(name, stream))
        .await
        .map_err(|_| ReachError::HandshakeTimeout { timeout })?
        .map_err(|source| ReachError::Handshake {
            hint: crate::mcm::client::certificate_hint(&source),
            source,
        })?;
    // rustls spells them `TLSv1_3`.
    let version = conn
        .get_ref()
        .1
        .protocol_version()
        .and_then(|v| v.as_str())
        .map_or_else(|| "TLS".to_string(), |v| v.replace("TLSv1_", "TLS 1."));
    let trust = if cfg.tls.ca_file.is_some() {
        "the platform's store and mcm.tls.ca_file"
    } else {
        "the platform's certificate store"
    };
    Ok(format!(
        "{version} handshake; certificate valid for {host}, trusted by {trust}"
    ))
}

/// Sends [`PROBE_BODY`] with `run`'s client and judges the answer.
async fn probe(cfg: &McmConfig, timeout: Duration, url: &str) -> Check {
    let mut cfg = cfg.clone();
    cfg.timeout = timeout;
    let client = match McmClient::new(&cfg) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                verdict::NAME,
                format!("platform {}", cfg.platform_id),
                e.to_string(),
            )
        }
    };
    let attempt = client.send(Bytes::from_static(PROBE_BODY)).await;
    verdict::probe(&attempt.outcome, &cfg.platform_id, url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_three_addresses_are_shown() {
        let addrs: Vec<SocketAddr> = (1..=5)
            .map(|i| SocketAddr::from(([10, 0, 0, i], 443)))
            .collect();
        assert_eq!(show(&addrs[..1]), "10.0.0.1");
        assert_eq!(show(&addrs), "10.0.0.1, 10.0.0.2, 10.0.0.3 and 2 more");
    }

    #[test]
    fn reach_errors_say_what_was_tried_and_for_how_long() {
        let t = Duration::from_millis(2500);
        assert_eq!(
            ReachError::ConnectTimeout { timeout: t }.to_string(),
            "unreachable after 2s 500ms"
        );
        let dns = ReachError::DnsTimeout {
            host: "acme-evt.mcm-api.moloco.com".into(),
            timeout: t,
        };
        assert_eq!(
            dns.to_string(),
            "no DNS answer for acme-evt.mcm-api.moloco.com after 2s 500ms"
        );
        let refused = ReachError::Handshake {
            hint: Some("the server's TLS certificate was refused"),
            source: std::io::Error::other("invalid peer certificate"),
        };
        assert_eq!(
            refused.to_string(),
            "the server's TLS certificate was refused: invalid peer certificate"
        );
    }

    #[tokio::test]
    async fn an_ip_address_needs_no_dns() {
        let addrs = resolve("[::1]", 8443, Duration::from_secs(1)).await;
        assert_eq!(
            addrs.ok(),
            Some(vec!["[::1]:8443".parse().expect("a socket address")])
        );
    }
}
