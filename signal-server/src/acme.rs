//! Certificates over ACME (Let's Encrypt, or any RFC 8555 server): the
//! server proves it holds each `--acme` domain with the HTTP-01 challenge
//! on its plain-HTTP listener (`--redirect-listen`, port 80 of the
//! domains), keeps the certificate, its key and the ACME account on disk,
//! and orders a new certificate before the old one expires, swapping it in
//! without a restart (through [`crate::tls::Certificates`]).
//!
//! Until the first certificate arrives the HTTPS listener serves a
//! self-signed placeholder (browsers refuse it, nothing is sent under it);
//! a cached certificate that still covers the domains is served at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;

use crate::tls::{Certificates, TlsError, TlsFiles};

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// What `--acme` and its companions say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The names the certificate is for (the first one names the cache).
    pub domains: Vec<String>,
    /// `mailto:` contacts for the account (expiry warnings).
    pub contact: Vec<String>,
    /// The ACME directory URL.
    pub directory: String,
    /// Trust this CA (PEM) for the directory's HTTPS instead of the
    /// system's roots: a private or test ACME server.
    pub ca_file: Option<PathBuf>,
    /// Where the account, certificate and key are kept.
    pub cache_dir: PathBuf,
    /// Order a new certificate when the current one has less left than this.
    pub renew_before: Duration,
    /// How often the certificate's remaining life is checked.
    pub check_every: Duration,
}

/// HTTP-01 answers the plain-HTTP listener serves: token → key authorization.
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<Mutex<HashMap<String, String>>>);

impl Challenges {
    /// The key authorization for `token`, while its challenge is open.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    fn open(&self, token: String, answer: String) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, answer);
    }

    fn close(&self, token: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// Why a certificate could not be had over ACME.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The ACME server or the exchange with it failed.
    #[error("ACME ({directory}): {detail}")]
    Protocol {
        /// The directory URL.
        directory: String,
        /// What went wrong.
        detail: String,
    },
    /// The cache directory could not be used.
    #[error("ACME cache {path}: {source}")]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A certificate (issued, cached or placeholder) does not load.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl AcmeConfig {
    fn dir(&self) -> PathBuf {
        let first = self.domains.first().map_or("default", String::as_str);
        // A domain is a safe file name once anything odd is replaced.
        let safe: String = first
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache_dir.join(safe)
    }

    /// The cached certificate and key files.
    pub fn files(&self) -> TlsFiles {
        let dir = self.dir();
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    fn protocol(&self, detail: impl std::fmt::Display) -> AcmeError {
        AcmeError::Protocol {
            directory: self.directory.clone(),
            detail: detail.to_string(),
        }
    }
}

/// What to serve at start: the cached certificate if it loads and still
/// covers the domains, else a self-signed placeholder; and whether it is
/// the cached one.
pub fn initial(config: &AcmeConfig) -> Result<(CertifiedKey, Option<SystemTime>), AcmeError> {
    let files = config.files();
    if let Ok(key) = crate::tls::load(&files)
        && let Some((not_after, names)) = key.cert.first().and_then(|c| describe(c.as_ref()))
        && config.domains.iter().all(|d| names.contains(d))
    {
        return Ok((key, Some(not_after)));
    }
    Ok((placeholder(&config.domains)?, None))
}

/// A self-signed certificate for `domains`, served only until ACME
/// delivers (no browser trusts it).
fn placeholder(domains: &[String]) -> Result<CertifiedKey, AcmeError> {
    let made = rcgen::generate_simple_self_signed(domains.to_vec())
        .map_err(|e| AcmeError::Tls(TlsError::Config(format!("placeholder certificate: {e}"))))?;
    let chain = vec![made.cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.signing_key.serialize_der().into());
    CertifiedKey::from_der(chain, key, &crate::tls::provider())
        .map_err(|e| AcmeError::Tls(TlsError::Config(e.to_string())))
}

/// A certificate's end of validity and its DNS names.
fn describe(der: &[u8]) -> Option<(SystemTime, Vec<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let not_after = u64::try_from(cert.validity().not_after.timestamp()).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some((UNIX_EPOCH + Duration::from_secs(not_after), names))
}

/// Whether a certificate valid until `not_after` is due for renewal at `now`.
pub fn due(not_after: Option<SystemTime>, now: SystemTime, renew_before: Duration) -> bool {
    match not_after {
        None => true,
        Some(end) => end
            .duration_since(now)
            .map_or(true, |left| left < renew_before),
    }
}

/// Keeps `certificates` current for as long as it runs: orders a
/// certificate when the one served is a placeholder or due, then checks
/// every [`AcmeConfig::check_every`]. A failed order is logged and tried
/// again after a back-off (1 min, doubling, at most 1 h); the certificate
/// served meanwhile stays.
pub async fn maintain(
    config: AcmeConfig,
    certificates: Arc<Certificates>,
    challenges: Challenges,
    mut not_after: Option<SystemTime>,
) {
    let mut backoff = Duration::from_secs(60);
    loop {
        if due(not_after, SystemTime::now(), config.renew_before) {
            match order(&config, &challenges).await {
                Ok((key, end)) => {
                    certificates.set(key);
                    not_after = Some(end);
                    backoff = Duration::from_secs(60);
                    tracing::info!(domains = ?config.domains, "ACME certificate in service");
                }
                Err(e) => {
                    tracing::warn!(%e, retry_in = ?backoff, "ACME order failed; still serving the previous certificate");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(3600));
                    continue;
                }
            }
        }
        tokio::time::sleep(config.check_every).await;
    }
}

/// Orders, validates (HTTP-01), finalizes and stores one certificate.
async fn order(
    config: &AcmeConfig,
    challenges: &Challenges,
) -> Result<(CertifiedKey, SystemTime), AcmeError> {
    let dir = config.dir();
    std::fs::create_dir_all(&dir).map_err(|source| AcmeError::Cache {
        path: dir.clone(),
        source,
    })?;
    let account = account(config, &dir).await?;
    let identifiers: Vec<Identifier> = config
        .domains
        .iter()
        .map(|d| Identifier::Dns(d.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| config.protocol(format!("new order: {e}")))?;
    let mut opened = Vec::new();
    let mut authorizations = order.authorizations();
    let mut result = Ok(());
    while let Some(next) = authorizations.next().await {
        let mut authz = match next {
            Ok(authz) => authz,
            Err(e) => {
                result = Err(config.protocol(format!("authorization: {e}")));
                break;
            }
        };
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                result = Err(config.protocol(format!("authorization is {other:?}")));
                break;
            }
        }
        let Some(mut challenge) = authz.challenge(ChallengeType::Http01) else {
            result = Err(config.protocol("the server offers no HTTP-01 challenge"));
            break;
        };
        let token = challenge.token.clone();
        challenges.open(
            token.clone(),
            challenge.key_authorization().as_str().to_owned(),
        );
        opened.push(token);
        if let Err(e) = challenge.set_ready().await {
            result = Err(config.protocol(format!("challenge: {e}")));
            break;
        }
    }
    let finished = async {
        result?;
        let status = order
            .poll_ready(&RetryPolicy::default())
            .await
            .map_err(|e| config.protocol(format!("validation: {e}")))?;
        if status != OrderStatus::Ready {
            return Err(config.protocol(format!(
                "the order is {status:?} (is port 80 of {:?} this server's --redirect-listen?)",
                config.domains
            )));
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| config.protocol(format!("finalize: {e}")))?;
        let chain_pem = order
            .poll_certificate(&RetryPolicy::default())
            .await
            .map_err(|e| config.protocol(format!("certificate: {e}")))?;
        Ok((key_pem, chain_pem))
    }
    .await;
    for token in &opened {
        challenges.close(token);
    }
    let (key_pem, chain_pem) = finished?;
    let files = config.files();
    write_private(&files.key, key_pem.as_bytes())?;
    write_private(&files.cert, chain_pem.as_bytes())?;
    let key = crate::tls::load(&files)?;
    let not_after = key
        .cert
        .first()
        .and_then(|c| describe(c.as_ref()))
        .map(|(end, _)| end)
        .ok_or_else(|| config.protocol("the issued certificate does not parse"))?;
    Ok((key, not_after))
}

/// The ACME account: the cached one, or a new one saved for next time.
async fn account(config: &AcmeConfig, dir: &Path) -> Result<Account, AcmeError> {
    let path = dir.join("account.json");
    let builder = || {
        match &config.ca_file {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        }
        .map_err(|e| config.protocol(format!("HTTP client: {e}")))
    };
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(credentials) = serde_json::from_str::<AccountCredentials>(&text)
    {
        match builder()?.from_credentials(credentials).await {
            Ok(account) => return Ok(account),
            Err(e) => tracing::warn!(%e, "cached ACME account refused; making a new one"),
        }
    }
    let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.directory.clone(),
            None,
        )
        .await
        .map_err(|e| config.protocol(format!("new account: {e}")))?;
    let text = serde_json::to_string(&credentials).map_err(|e| config.protocol(e))?;
    write_private(&path, text.as_bytes())?;
    Ok(account)
}

/// Writes `bytes` to `path` through a temporary file (never half-written),
/// readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AcmeError> {
    let cache = |source| AcmeError::Cache {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(cache)?;
        file.write_all(bytes).map_err(cache)?;
        file.sync_all().map_err(cache)?;
    }
    std::fs::rename(&tmp, path).map_err(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_with_less_than_the_margin_left_or_no_certificate() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let day = Duration::from_secs(86_400);
        let margin = 30 * day;
        assert!(due(None, now, margin), "a placeholder is always due");
        assert!(!due(Some(now + 60 * day), now, margin));
        assert!(due(Some(now + 29 * day), now, margin));
        assert!(due(Some(now - day), now, margin), "expired");
    }

    #[test]
    fn a_cached_certificate_is_used_only_if_it_covers_every_domain() {
        let dir = tempfile::tempdir().unwrap();
        let config = AcmeConfig {
            domains: vec!["a.example".into(), "b.example".into()],
            contact: Vec::new(),
            directory: LETS_ENCRYPT.into(),
            ca_file: None,
            cache_dir: dir.path().to_path_buf(),
            renew_before: Duration::from_secs(30 * 86_400),
            check_every: Duration::from_secs(3600),
        };
        let (_, cached) = initial(&config).unwrap();
        assert!(cached.is_none(), "nothing cached: a placeholder");
        let files = config.files();
        std::fs::create_dir_all(files.cert.parent().unwrap()).unwrap();
        let write = |names: Vec<String>| {
            let made = rcgen::generate_simple_self_signed(names).unwrap();
            std::fs::write(&files.cert, made.cert.pem()).unwrap();
            std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        };
        write(vec!["a.example".into()]);
        assert!(initial(&config).unwrap().1.is_none(), "b.example missing");
        write(vec!["a.example".into(), "b.example".into()]);
        let (_, cached) = initial(&config).unwrap();
        assert!(cached.is_some_and(|end| end > SystemTime::now()));
    }
}
