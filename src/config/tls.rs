//! `mcm.tls`: extra certificate authorities the MCM client trusts, next to the platform's store.
//!
//! Users behind a TLS-inspecting proxy (and our own tests and benchmarks, which serve the sandbox
//! with a generated CA) need the client to trust a CA that is not in the system store. `ca_file`
//! names a PEM bundle of one or more CA certificates; it is read and every certificate parsed
//! while the configuration loads, so an unreadable file, a file without a certificate, or a
//! certificate rustls cannot use is an error at `mcm.tls.ca_file` before anything starts. The
//! certificates *add* to the platform's roots; they never replace them, and nothing here can turn
//! verification off.

use super::decode::{ConfigError, MapReader};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_yaml_ng::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// The `mcm.tls` section, read and checked.
#[derive(Clone, Default, PartialEq)]
pub struct McmTls {
    /// Where the extra roots came from (resolved against the config file's folder), if anywhere.
    pub ca_file: Option<PathBuf>,
    /// The CA certificates of `ca_file`, in file order, each known to parse as a trust anchor.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

// Hand-written: the DER bytes would make every `Debug` of the config unreadable.
impl fmt::Debug for McmTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McmTls")
            .field("ca_file", &self.ca_file)
            .field("extra_roots", &self.extra_roots.len())
            .finish()
    }
}

/// Reads `mcm.tls` (`v` is its value; `Null` when absent). `base_dir` resolves a relative path.
pub fn read_tls(v: &Value, base_dir: &Path, errors: &mut Vec<ConfigError>) -> McmTls {
    read_tls_at(v, "mcm.tls", base_dir, errors)
}

/// Like [`read_tls`], for a `tls:` section at `path` (the schema registry's has the same keys).
pub fn read_tls_at(
    v: &Value,
    path: &str,
    base_dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> McmTls {
    let Some(mut r) = MapReader::new(v, path.to_string(), errors) else {
        return McmTls::default();
    };
    let ca_file = r.opt::<PathBuf>("ca_file");
    let tls = match ca_file {
        None => McmTls::default(),
        Some(file) => {
            let full = if file.is_absolute() {
                file
            } else {
                base_dir.join(file)
            };
            match load_ca_bundle(&full) {
                Ok(extra_roots) => McmTls {
                    ca_file: Some(full),
                    extra_roots,
                },
                Err(problem) => {
                    r.error("ca_file", problem);
                    McmTls::default()
                }
            }
        }
    };
    r.finish();
    tls
}

/// Every certificate of a PEM bundle, each checked to be usable as a root, or what is wrong with
/// the file (the message names the file and says what to put there).
pub fn load_ca_bundle(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut certs = Vec::new();
    for (i, item) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert =
            item.map_err(|e| format!("{shown}: certificate {} is not valid PEM: {e}", i + 1))?;
        // The same parse the verifier does later, so a broken certificate is a config error now
        // and not a TLS error on the first request.
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|e| {
                format!(
                    "{shown}: certificate {} cannot be used as a trusted root: {e}",
                    i + 1
                )
            })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(format!(
            "{shown} holds no certificate (expected a PEM bundle of CA certificates, each starting with -----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.self_signed(&key).expect("self-signed").pem()
    }

    fn read(text: &str, dir: &Path) -> (McmTls, Vec<ConfigError>) {
        let v: Value = serde_yaml_ng::from_str(text).expect("yaml");
        let mut errors = Vec::new();
        let tls = read_tls(&v, dir, &mut errors);
        (tls, errors)
    }

    #[test]
    fn absent_section_trusts_only_the_platform_store() {
        let (tls, errors) = read("~", Path::new("."));
        assert_eq!(tls, McmTls::default());
        assert!(errors.is_empty());
    }

    #[test]
    fn bundle_with_two_cas_is_read_relative_to_the_config_folder() {
        let dir = tempfile::tempdir().expect("tmp");
        let bundle = format!("# corporate proxy\n{}{}", ca_pem("one"), ca_pem("two"));
        std::fs::write(dir.path().join("ca.pem"), bundle).expect("write");
        let (tls, errors) = read("ca_file: ca.pem", dir.path());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(tls.extra_roots.len(), 2);
        assert_eq!(tls.ca_file, Some(dir.path().join("ca.pem")));
        assert_eq!(
            format!("{tls:?}"),
            format!(
                "McmTls {{ ca_file: Some({:?}), extra_roots: 2 }}",
                dir.path().join("ca.pem")
            )
        );
    }

    #[test]
    fn unreadable_file_is_an_error_at_its_path() {
        let (tls, errors) = read("ca_file: /nonexistent/ca.pem", Path::new("."));
        assert_eq!(tls, McmTls::default());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "mcm.tls.ca_file");
        assert!(
            errors[0]
                .message
                .starts_with("cannot read /nonexistent/ca.pem"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn file_without_a_certificate_says_what_belongs_there() {
        let dir = tempfile::tempdir().expect("tmp");
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        for (name, text) in [("empty.pem", String::new()), ("key.pem", key)] {
            std::fs::write(dir.path().join(name), text).expect("write");
            let (_, errors) = read(&format!("ca_file: {name}"), dir.path());
            assert_eq!(errors.len(), 1, "{name}");
            assert_eq!(errors[0].path, "mcm.tls.ca_file");
            assert!(
                errors[0].message.contains("holds no certificate")
                    && errors[0].message.contains("BEGIN CERTIFICATE"),
                "{}",
                errors[0]
            );
        }
    }

    #[test]
    fn certificate_that_is_not_der_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let junk = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("junk.pem"), junk).expect("write");
        let (_, errors) = read("ca_file: junk.pem", dir.path());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "mcm.tls.ca_file");
        assert!(
            errors[0].message.contains("certificate 1 cannot be used"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let (_, errors) = read("ca_fil: x.pem\nverify: false", Path::new("."));
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["mcm.tls.ca_fil", "mcm.tls.verify"]);
    }
}
