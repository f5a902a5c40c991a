//! `kafka.tls`: the CA that signed the brokers' certificates (`ca_file`), checked to be a
//! readable PEM certificate before librdkafka gets it as `ssl.ca.location`. Without it the
//! system's CAs are used.

use crate::config::decode::{ConfigError, MapReader};
use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};

pub(super) fn read_tls(
    v: &Value,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    let mut r = MapReader::new(v, "kafka.tls", errors)?;
    let ca_file = r.opt::<PathBuf>("ca_file");
    r.finish();
    let file = ca_file?;
    let full = if file.is_absolute() {
        file
    } else {
        base_dir.join(file)
    };
    let path = full.display().to_string();
    match std::fs::read_to_string(&full) {
        Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => match full.to_str() {
            Some(s) => Some(s.to_string()),
            None => {
                errors.push(ConfigError::new(
                    "kafka.tls.ca_file",
                    format!("{path}: the path must be valid UTF-8"),
                ));
                None
            }
        },
        Ok(_) => {
            errors.push(ConfigError::new(
                "kafka.tls.ca_file",
                format!("{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA that signed the brokers' certificates, in PEM"),
            ));
            None
        }
        Err(e) => {
            errors.push(ConfigError::new(
                "kafka.tls.ca_file",
                format!("cannot read {path}: {e}"),
            ));
            None
        }
    }
}
