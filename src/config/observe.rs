//! The `observe` section: the address of the metrics and health listener, and the log format
//! and level.

use super::decode::{ConfigError, MapReader};
use serde_yaml_ng::Value;
use std::net::SocketAddr;
use strum::{EnumString, VariantNames};

/// `text` or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, VariantNames)]
#[strum(serialize_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct ObserveConfig {
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `mcm_bridge=debug,librdkafka=warn`.
    pub log_level: String,
    /// Where `GET /tap` is served (`observe.tap: true`), `None` when off (the default).
    pub tap: Option<SocketAddr>,
}

/// `observe.tap_listen` by default: loopback only, since the tap shows source records as the
/// producers wrote them (reach it with `kubectl port-forward` or an SSH tunnel).
pub const DEFAULT_TAP_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9465);

pub(super) fn read_observe(
    v: &Value,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) -> Option<ObserveConfig> {
    let mut r = MapReader::new(v, "observe", errors)?;
    let listen = match r.opt_string("listen") {
        None => SocketAddr::from(([0, 0, 0, 0], 9464)),
        Some(s) => match s.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                r.error(
                    "listen",
                    format!("{s:?} is not an address like \"0.0.0.0:9464\""),
                );
                SocketAddr::from(([0, 0, 0, 0], 9464))
            }
        },
    };
    let log_format = r.choice("log_format", LogFormat::Text);
    let log_level = r.opt_string("log_level").unwrap_or_else(|| "info".into());
    let tap_on = r.opt::<bool>("tap").unwrap_or(false);
    let tap_listen = match r.opt_string("tap_listen") {
        None => DEFAULT_TAP_LISTEN,
        Some(s) => match s.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                r.error(
                    "tap_listen",
                    format!("{s:?} is not an address like \"127.0.0.1:9465\""),
                );
                DEFAULT_TAP_LISTEN
            }
        },
    };
    if tap_on && !tap_listen.ip().is_loopback() {
        warnings.push(format!(
            "observe.tap_listen {tap_listen} is not a loopback address: anyone who reaches it can read the source records (they may hold personal data)"
        ));
    }
    if tap_on && tap_listen == listen {
        r.error(
            "tap_listen",
            "must differ from observe.listen (the tap has its own listener)",
        );
    }
    r.finish();
    Some(ObserveConfig {
        listen,
        log_format,
        log_level,
        tap: tap_on.then_some(tap_listen),
    })
}
