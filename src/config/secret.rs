//! The MCM API key as a type that cannot leak by accident (DESIGN.md contract 8).

use std::fmt;

/// A secret string. `Debug` and `Display` print `[redacted]`; the only way to the value is
/// [`ApiKey::expose`], called where the HTTP header is built.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, trimming whitespace and CR/LF (keys pasted into files or env vars often carry
    /// a trailing newline, which would make every request 401/403).
    pub fn new(raw: &str) -> ApiKey {
        ApiKey(raw.trim().replace(['\r', '\n'], ""))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_key() {
        let k = ApiKey::new(" abc123\r\n");
        assert_eq!(k.expose(), "abc123");
        assert!(!format!("{k:?} {k}").contains("abc123"));
    }
}
