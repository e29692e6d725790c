//! HTTPS and WSS from the one binary: rustls (ring), a certificate and key
//! read from PEM files and read again when either file changes.
//!
//! [`Certificates`] is the server's certificate resolver: every handshake
//! takes the pair that is current at that moment, so [`watch`] can swap in a
//! renewed certificate (certbot, an operator's `cp`) while connections are
//! open and without a restart. A pair that fails to load (a half-written
//! file, a key that does not match) is logged and the old pair kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the certificate chain and its private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (e.g. certbot's `fullchain.pem`).
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{path}: no PEM certificate (\"-----BEGIN CERTIFICATE-----\") in it")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no PEM private key, or one that does not parse.
    #[error("{path}: no usable PEM private key in it ({detail})")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The key does not belong to the certificate, or its kind is not supported.
    #[error("{cert} and {key} do not go together: {detail}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The crypto everything TLS here uses: ring, rustls' defaults otherwise.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a certificate chain and its key.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: files.key.clone(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        detail: e.to_string(),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The certificate every new handshake gets; replaceable at any time.
#[derive(Debug)]
pub struct Certificates {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// A resolver serving `key` until [`Certificates::set`] replaces it.
    pub fn new(key: CertifiedKey) -> Arc<Self> {
        Arc::new(Certificates {
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Serves `key` to every handshake from now on.
    pub fn set(&self, key: CertifiedKey) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
    }

    /// The certificate chain served now.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .cert
            .clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

/// rustls' server side for `certificates`: HTTP/1.1 only (what the server
/// speaks; a browser's WebSocket needs nothing else).
pub fn server_config(certificates: Arc<Certificates>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Checks `files` every `every` and loads them again when either one's size
/// or modification time changed; runs until the task is dropped.
pub async fn watch(files: TlsFiles, certificates: Arc<Certificates>, every: Duration) {
    let mut seen = stamp(&files);
    // The last change that did not load: said once, tried again only when
    // the files change again.
    let mut failed = None;
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = stamp(&files);
        if now == seen || Some(now) == failed {
            continue;
        }
        // A renewal tool may write the two files one after the other: a
        // pair that does not load yet is tried again once the other lands.
        let loaded = {
            let files = files.clone();
            tokio::task::spawn_blocking(move || load(&files)).await
        };
        match loaded {
            Ok(Ok(key)) => {
                certificates.set(key);
                seen = now;
                failed = None;
                tracing::info!(cert = %files.cert.display(), "certificate reloaded");
            }
            Ok(Err(e)) => {
                failed = Some(now);
                tracing::warn!(%e, "certificate files changed but do not load; still serving the previous one");
            }
            Err(e) => tracing::warn!(%e, "certificate reload task failed"),
        }
    }
}

type Stamp = [Option<(u64, SystemTime)>; 2];

fn stamp(files: &TlsFiles) -> Stamp {
    let of = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)))
    };
    [of(&files.cert), of(&files.key)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_matching_pair_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a");
        let loaded = load(&TlsFiles { cert, key }).unwrap();
        assert_eq!(loaded.cert.len(), 1);
    }

    #[test]
    fn each_bad_file_gets_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = pair(dir.path(), "a");
        let (_, key_b) = pair(dir.path(), "b");
        let missing = dir.path().join("missing.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();

        let e = load(&TlsFiles {
            cert: missing.clone(),
            key: key_a.clone(),
        })
        .unwrap_err();
        assert!(
            matches!(&e, TlsError::Read { path, .. } if *path == missing),
            "{e}"
        );

        let e = load(&TlsFiles {
            cert: junk.clone(),
            key: key_a.clone(),
        })
        .unwrap_err();
        assert!(
            matches!(&e, TlsError::NoCertificate { path } if *path == junk),
            "{e}"
        );
        assert!(e.to_string().contains("junk.pem"), "{e}");

        let e = load(&TlsFiles {
            cert: cert_a.clone(),
            key: junk.clone(),
        })
        .unwrap_err();
        assert!(
            matches!(&e, TlsError::BadKey { path, .. } if *path == junk),
            "{e}"
        );

        // The certificate file given as the key: no key in it.
        let e = load(&TlsFiles {
            cert: cert_a.clone(),
            key: cert_a.clone(),
        })
        .unwrap_err();
        assert!(matches!(&e, TlsError::BadKey { .. }), "{e}");

        let e = load(&TlsFiles {
            cert: cert_a,
            key: key_b,
        })
        .unwrap_err();
        assert!(matches!(&e, TlsError::Mismatch { .. }), "{e}");
        assert!(e.to_string().contains("do not go together"), "{e}");
    }

    #[test]
    fn a_new_pair_replaces_the_served_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = pair(dir.path(), "a");
        let (cert_b, key_b) = pair(dir.path(), "b");
        let a = load(&TlsFiles {
            cert: cert_a,
            key: key_a,
        })
        .unwrap();
        let b = load(&TlsFiles {
            cert: cert_b,
            key: key_b,
        })
        .unwrap();
        let expected = b.cert.clone();
        let certificates = Certificates::new(a);
        assert_ne!(certificates.chain(), expected);
        certificates.set(b);
        assert_eq!(certificates.chain(), expected);
    }
}
