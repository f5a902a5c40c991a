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
}

pub(super) fn read_observe(v: &Value, errors: &mut Vec<ConfigError>) -> Option<ObserveConfig> {
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
    r.finish();
    Some(ObserveConfig {
        listen,
        log_format,
        log_level,
    })
}
