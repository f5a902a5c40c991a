//! TLS for the sandbox: the server identity (certificate chain and key) read from PEM files or
//! generated, and the rustls server configuration built from it.
//!
//! Real MCM is HTTPS only, so tests and benchmarks must be able to reach the sandbox the same way.
//! [`SelfSigned::generate`] makes a throw-away certificate authority and a server certificate for
//! `127.0.0.1` and `localhost` signed by it; the CA's PEM is what the bridge's `mcm.tls.ca_file`
//! then points at. The server offers ALPN `h2` and `http/1.1` (so a client's `auto` can choose),
//! with the aws-lc-rs provider like the bridge's client. Nothing here is meant for production
//! certificates: keys are written without a passphrase.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What went wrong with the sandbox's TLS identity.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Pem { path: PathBuf, problem: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A server certificate chain (leaf first) and its private key.
pub struct TlsIdentity {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

// Hand-written: the private key must not reach a log line.
impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.cert_chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TlsIdentity {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsIdentity, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let pem_error = |path: &Path, problem: String| TlsError::Pem {
            path: path.to_path_buf(),
            problem,
        };
        let cert_chain = CertificateDer::pem_slice_iter(&read(cert)?)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(cert, format!("not a PEM certificate chain: {e}")))?;
        if cert_chain.is_empty() {
            return Err(pem_error(
                cert,
                "holds no certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&read(key)?)
            .map_err(|e| pem_error(key, format!("holds no usable private key: {e}")))?;
        Ok(TlsIdentity { cert_chain, key })
    }

    /// The rustls server configuration: this identity, ALPN `h2` then `http/1.1`.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.cert_chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A generated CA and a server identity it signed, for `127.0.0.1` and `localhost`.
#[derive(Debug)]
pub struct SelfSigned {
    /// The CA certificate in PEM: what clients must trust (`mcm.tls.ca_file`).
    pub ca_pem: String,
    /// The server certificate (PEM), for tools that want the files (nginx in front, curl).
    pub cert_pem: String,
    /// The server key (PKCS#8 PEM).
    key_pem: String,
    pub identity: TlsIdentity,
}

/// Files written by [`SelfSigned::write_to`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSignedFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl SelfSigned {
    /// A fresh CA ("mcm-bridge sandbox CA") and a server certificate it signed.
    pub fn generate() -> Result<SelfSigned, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mcm-bridge sandbox CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate()?;
        // rcgen makes an IP address SAN of a name that parses as one.
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "mcm-bridge sandbox");
        let cert = params.signed_by(&key, &issuer)?;
        let identity = TlsIdentity {
            cert_chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        };
        Ok(SelfSigned {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            identity,
        })
    }

    /// Writes `ca.pem`, `server.pem` and `server.key` (mode 600) into `dir`, creating it.
    pub fn write_to(&self, dir: &Path) -> Result<SelfSignedFiles, TlsError> {
        let write = |name: &str, text: &str, private: bool| {
            let path = dir.join(name);
            write_file(&path, text, private).map_err(|source| TlsError::Write {
                path: path.clone(),
                source,
            })?;
            Ok::<_, TlsError>(path)
        };
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(SelfSignedFiles {
            ca: write("ca.pem", &self.ca_pem, false)?,
            cert: write("server.pem", &self.cert_pem, false)?,
            key: write("server.key", &self.key_pem, true)?,
        })
    }
}

fn write_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_read_back_as_an_identity_with_a_trusted_ca() {
        let dir = tempfile::tempdir().expect("tmp");
        let generated = SelfSigned::generate().expect("generate");
        let files = generated.write_to(&dir.path().join("tls")).expect("write");
        let identity = TlsIdentity::from_pem_files(&files.cert, &files.key).expect("read back");
        assert_eq!(identity.cert_chain, generated.identity.cert_chain);
        let config = identity.server_config().expect("server config");
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let roots = crate::config::tls::load_ca_bundle(&files.ca).expect("ca bundle");
        assert_eq!(roots.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key)
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
        }
        assert!(!format!("{identity:?}").contains("BEGIN"));
    }

    #[test]
    fn missing_or_empty_files_name_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let missing = dir.path().join("missing.pem");
        let e = TlsIdentity::from_pem_files(&missing, &empty).expect_err("missing cert");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = TlsIdentity::from_pem_files(&empty, &empty).expect_err("empty cert");
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        let generated = SelfSigned::generate().expect("generate");
        let files = generated.write_to(dir.path()).expect("write");
        let e = TlsIdentity::from_pem_files(&files.cert, &files.cert).expect_err("no key");
        assert!(e.to_string().contains("no usable private key"), "{e}");
    }
}
