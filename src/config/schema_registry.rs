//! The `schema_registry` section: where the schemas of `format: avro` and `format: json_schema`
//! topics are fetched (a Confluent-compatible REST API: Confluent Schema Registry, Redpanda,
//! Apicurio's `ccompat` API, Karapace), how to log in, and how many schemas to keep.
//!
//! Credentials are [`Secret`]s read as the MCM API key is (inline, usually `${VAR}`, or from a
//! file), so they never reach a log, `validate`'s summary or a `Debug` of the config.

use super::decode::{ConfigError, MapReader};
use super::secret::{self, Secret};
use super::tls::{read_tls_at, McmTls};
use serde_yaml_ng::Value;
use std::path::Path;
use std::time::Duration;

/// How the bridge logs in to the registry.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryAuth {
    None,
    /// HTTP basic auth (Confluent Cloud: the API key and secret).
    Basic {
        username: String,
        password: Secret,
    },
    /// `Authorization: Bearer …` (an OAuth token minted outside the bridge).
    Bearer(Secret),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SchemaRegistryConfig {
    /// Base URLs, tried in order when one cannot be reached (as Confluent's clients take a
    /// comma-separated list).
    pub urls: Vec<String>,
    pub auth: RegistryAuth,
    pub tls: McmTls,
    /// Bounds one request (connect included).
    pub timeout: Duration,
    /// How many schemas are kept (by id); the oldest is dropped beyond it.
    pub cache_size: usize,
    /// The longest pause between fetch attempts while the registry is unavailable.
    pub max_backoff: Duration,
}

pub(super) fn read_schema_registry(
    v: &Value,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<SchemaRegistryConfig> {
    let mut r = MapReader::new(v, "schema_registry", errors)?;
    let urls: Vec<String> = match (r.opt_string("url"), r.opt::<Vec<String>>("urls")) {
        (Some(u), None) => u.split(',').map(|s| s.trim().to_string()).collect(),
        (None, Some(l)) => l,
        (Some(_), Some(_)) => {
            r.error("urls", "set either schema_registry.url or .urls, not both");
            Vec::new()
        }
        (None, None) => {
            r.error(
                "url",
                "required (the registry's base URL, e.g. http://schema-registry:8081)",
            );
            Vec::new()
        }
    };
    for u in &urls {
        // Credentials belong in basic_auth (a secret), not in a URL that logs and doctor print.
        if u.split_once("://").is_some_and(|(_, rest)| {
            rest.split('/')
                .next()
                .is_some_and(|host| host.contains('@'))
        }) {
            r.error(
                "url",
                "holds credentials (user:password@): put them in schema_registry.basic_auth, \
                 which is kept secret",
            );
            continue;
        }
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && u.parse::<hyper::Uri>()
                .is_ok_and(|x| x.host().is_some_and(|h| !h.is_empty()));
        if !ok {
            r.error(
                "url",
                format!("{u:?} is not an http:// or https:// URL with a host"),
            );
        }
    }
    let basic = r.raw("basic_auth").cloned();
    let bearer_set = r.has("bearer_token") || r.has("bearer_token_file");
    let auth = match (basic, bearer_set) {
        (Some(_), true) => {
            r.error(
                "bearer_token",
                "set either schema_registry.basic_auth or a bearer token, not both",
            );
            RegistryAuth::None
        }
        (Some(b), false) => {
            let at = r.child_path("basic_auth");
            read_basic(&b, &at, base_dir, r.errors()).unwrap_or(RegistryAuth::None)
        }
        (None, true) => secret::read_inline_or_file(
            &mut r,
            "bearer_token",
            "bearer_token_file",
            base_dir,
            "the registry's bearer token",
        )
        .map_or(RegistryAuth::None, |(s, _)| RegistryAuth::Bearer(s)),
        (None, false) => RegistryAuth::None,
    };
    let tls_v = r.raw("tls").cloned().unwrap_or(Value::Null);
    let tls = read_tls_at(&tls_v, "schema_registry.tls", base_dir, r.errors());
    let timeout = r.duration("timeout").unwrap_or(Duration::from_secs(10));
    if timeout < Duration::from_millis(100) {
        r.error(
            "timeout",
            "must be at least 100ms (every fetch would time out)",
        );
    }
    let cache_size = r.opt::<usize>("cache_size").unwrap_or(1000);
    if cache_size == 0 {
        r.error("cache_size", "must be at least 1");
    }
    let max_backoff = r.duration("max_backoff").unwrap_or(Duration::from_secs(30));
    if max_backoff < Duration::from_millis(100) {
        r.error(
            "max_backoff",
            "must be at least 100ms (retries would hammer a registry that is down)",
        );
    }
    r.finish();
    Some(SchemaRegistryConfig {
        urls,
        auth,
        tls,
        timeout,
        cache_size: cache_size.max(1),
        max_backoff,
    })
}

fn read_basic(
    v: &Value,
    path: &str,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<RegistryAuth> {
    let mut r = MapReader::new(v, path.to_string(), errors)?;
    let username = r.req::<String>(
        "username",
        "the registry user (Confluent Cloud: the API key)",
    );
    let password = secret::read_inline_or_file(
        &mut r,
        "password",
        "password_file",
        base_dir,
        "usually \"${SCHEMA_REGISTRY_PASSWORD}\"",
    );
    r.finish();
    Some(RegistryAuth::Basic {
        username: username?,
        password: password?.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Option<SchemaRegistryConfig>, Vec<ConfigError>) {
        let v: Value = serde_yaml_ng::from_str(text).expect("yaml");
        let mut errors = Vec::new();
        let c = read_schema_registry(&v, Path::new("."), &mut errors);
        (c, errors)
    }

    #[test]
    fn defaults_and_a_comma_separated_url_list() {
        let (c, e) = read("url: http://a:8081, https://b:8081");
        assert!(e.is_empty(), "{e:?}");
        let c = c.expect("read");
        assert_eq!(c.urls, ["http://a:8081", "https://b:8081"]);
        assert_eq!(c.auth, RegistryAuth::None);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.cache_size, 1000);
    }

    #[test]
    fn basic_auth_is_a_secret_and_mistakes_name_their_path() {
        let (c, e) = read("url: http://a\nbasic_auth: {username: u, password: p4ss}");
        assert!(e.is_empty(), "{e:?}");
        let c = c.expect("read");
        assert!(!format!("{c:?}").contains("p4ss"));
        let (_, e) = read("url: http://u:p@a\ntimeout: 0s");
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["schema_registry.url", "schema_registry.timeout"]);
        assert!(
            !format!("{e:?}").contains("u:p"),
            "the credentials are not echoed"
        );
        let (_, e) = read("url: ftp://a\nbasic_auth: {username: u}\nbearer_tokn: x");
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"schema_registry.url"), "{paths:?}");
        assert!(
            paths.contains(&"schema_registry.basic_auth.password"),
            "{paths:?}"
        );
        assert!(paths.contains(&"schema_registry.bearer_tokn"), "{paths:?}");
    }
}
