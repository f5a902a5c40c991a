//! What a sandbox pretends to be (platform id, API key), where it records accepted events, and
//! which faults it injects.
//!
//! It also says how clients connect: plain HTTP or TLS, and HTTP/2's stream limit.
//!
//! [`Faults`] is the one description of the fault knobs: the command-line flags build it, `PUT
//! /_sandbox/faults` deserialises it (durations as humantime strings such as `"50ms"`), and
//! [`super::faults`] decides with it. A [`SandboxConfig`] never prints its API key.

use super::tls::TlsIdentity;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Fault-injection knobs. `Default` is "no faults": every request is answered at once, normally.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Probability in `[0, 1]` of answering 500.
    pub fail_rate: f64,
    /// Probability in `[0, 1]` of answering 429. When `throttle_rate + fail_rate > 1`, throttling
    /// wins the overlap (a throttler sits in front of the service that would fail).
    pub throttle_rate: f64,
    /// Fixed delay added to every response on the event route.
    #[serde(with = "duration_str")]
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, latency_jitter]` per response.
    #[serde(with = "duration_str")]
    pub latency_jitter: Duration,
    /// After this many accepted requests (counted from when these knobs were set), start an
    /// outage. `None` = never.
    pub outage_after: Option<u64>,
    /// How long an outage answers 503 to everything on the event route before recovering.
    #[serde(with = "duration_str")]
    pub outage_for: Duration,
    /// `Retry-After` seconds to put on 429 answers. `None` = no header (like the real API, which
    /// documents none).
    pub retry_after: Option<u64>,
}

/// A fault setting that cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsError {
    #[error("{knob} must be a probability between 0 and 1, got {value}")]
    RateOutOfRange { knob: &'static str, value: f64 },
    #[error(
        "outage_after is set but outage_for is zero: give the outage a duration, e.g. \"30s\""
    )]
    OutageWithoutDuration,
}

impl Faults {
    /// Checks the knobs before they reach the hot path, so a bad `PUT` is a 400, not a surprise.
    pub fn check(&self) -> Result<(), FaultsError> {
        for (knob, value) in [
            ("fail_rate", self.fail_rate),
            ("throttle_rate", self.throttle_rate),
        ] {
            // `contains` is false for NaN, so NaN is rejected too.
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultsError::RateOutOfRange { knob, value });
            }
        }
        if self.outage_after.is_some() && self.outage_for.is_zero() {
            return Err(FaultsError::OutageWithoutDuration);
        }
        Ok(())
    }
}

/// Everything a sandbox instance needs to start.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The only platform id the route accepts; any other answers 404.
    pub platform_id: String,
    /// The `X-API-Key` value that is accepted; missing answers 401, different answers 403.
    pub api_key: String,
    /// Append every accepted event (the body as received) as one JSON line to this file. The file
    /// is truncated at start-up so that it holds exactly this run's accepted events.
    pub record: Option<PathBuf>,
    pub faults: Faults,
    /// Serve HTTPS with this identity (ALPN `h2` and `http/1.1`); `None` serves plain HTTP.
    pub tls: Option<Arc<TlsIdentity>>,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` per connection, to stand in for a front end with
    /// a small limit; `None` keeps hyper's default (200).
    pub h2_max_streams: Option<u32>,
}

impl SandboxConfig {
    /// A fault-free, non-recording sandbox for `platform_id` accepting `api_key`.
    pub fn new(platform_id: impl Into<String>, api_key: impl Into<String>) -> SandboxConfig {
        SandboxConfig {
            platform_id: platform_id.into(),
            api_key: api_key.into(),
            record: None,
            faults: Faults::default(),
            tls: None,
            h2_max_streams: None,
        }
    }
}

// Hand-written so that the key never reaches a log line (DESIGN.md contract 8).
impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("platform_id", &self.platform_id)
            .field("api_key", &"<redacted>")
            .field("record", &self.record)
            .field("faults", &self.faults)
            .field("tls", &self.tls)
            .field("h2_max_streams", &self.h2_max_streams)
            .finish()
    }
}

/// Durations as humantime strings (`"50ms"`, `"30s"`), matching the command-line flags.
mod duration_str {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("{s:?} is not a duration like \"50ms\": {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_humantime_durations_and_default_missing_knobs() {
        let f: Faults =
            serde_json::from_str(r#"{"latency":"50ms","outage_after":3,"outage_for":"2s"}"#)
                .expect("valid knobs");
        assert_eq!(f.latency, Duration::from_millis(50));
        assert_eq!(f.outage_after, Some(3));
        assert_eq!(f.outage_for, Duration::from_secs(2));
        assert_eq!(f.fail_rate, 0.0);
        assert_eq!(f.retry_after, None);
        let back = serde_json::to_value(&f).expect("serialise");
        assert_eq!(back["latency"], "50ms");
    }

    #[test]
    fn faults_reject_unknown_knobs_and_bad_durations() {
        assert!(serde_json::from_str::<Faults>(r#"{"fail_rat":0.5}"#).is_err());
        assert!(serde_json::from_str::<Faults>(r#"{"latency":"soon"}"#).is_err());
    }

    #[test]
    fn check_rejects_rates_outside_unit_interval_and_outage_without_duration() {
        let mut f = Faults {
            fail_rate: 1.5,
            ..Faults::default()
        };
        assert!(matches!(
            f.check(),
            Err(FaultsError::RateOutOfRange {
                knob: "fail_rate",
                ..
            })
        ));
        f.fail_rate = f64::NAN;
        assert!(f.check().is_err());
        f.fail_rate = 1.0;
        assert_eq!(f.check(), Ok(()));
        f.outage_after = Some(1);
        assert_eq!(f.check(), Err(FaultsError::OutageWithoutDuration));
    }

    #[test]
    fn debug_never_prints_the_api_key() {
        let c = SandboxConfig::new("DEMO_TEST", "s3cret-key");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret-key"), "{shown}");
        assert!(shown.contains("DEMO_TEST"));
    }
}
