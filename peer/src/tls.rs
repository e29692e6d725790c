//! Which servers the native peer trusts over TLS (`wss://` trackers,
//! `https://` web seeds and torrents): the Mozilla roots of `webpki-roots`
//! by default, plus any CA certificates of `--ca-file` (a private CA, a
//! test's). rustls with ring, as everywhere in fanswarm.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why the trusted certificates could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The CA file could not be read.
    #[error("cannot read the CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// It holds no PEM certificate, or one rustls refuses as a trust anchor.
    #[error("the CA file {path} has no usable PEM certificate: {detail}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// A client configuration trusting the webpki roots and, if given, the CA
/// certificates in `ca_file` (PEM, any number).
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TrustError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| TrustError::Read {
            path: path.to_owned(),
            source,
        })?;
        let unusable = |detail: String| TrustError::Unusable {
            path: path.to_owned(),
            detail,
        };
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| unusable(e.to_string()))?;
            roots.add(cert).map_err(|e| unusable(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(unusable("no \"-----BEGIN CERTIFICATE-----\" block".into()));
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError::Config(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}
