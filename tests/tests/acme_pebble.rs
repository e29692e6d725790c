//! `signal-server serve --acme localhost --redirect-listen …` against a
//! real ACME server, Debian's `pebble`, which validates the HTTP-01
//! challenge by fetching it from the server's plain-HTTP listener.
//!
//! - the HTTPS listener starts at once with a placeholder, then serves the
//!   certificate pebble issued (a client trusting only pebble's root
//!   accepts it) without a restart;
//! - a certificate that is due (here: always, the renewal margin is longer
//!   than pebble's certificates live) is replaced by a new one, again
//!   without a restart;
//! - the certificate, key and account are cached: a restart serves the
//!   cached certificate with pebble gone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use fanswarm_e2e::acme::Pebble;
use fanswarm_e2e::server::web_dir;
use fanswarm_e2e::tls::https_request;
use signal_server::acme::AcmeConfig;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_from_pebble_are_served_renewed_and_cached() -> anyhow::Result<()> {
    let cache = tempfile::tempdir()?;
    let library = tempfile::tempdir()?;
    let samples = signal_server::demo::synthesize(2, 5);
    std::fs::write(
        library.path().join("acme track.wav"),
        signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE),
    )?;
    let redirect: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let mut pebble = Pebble::start(redirect.port()).await?;
    let pebble_root = pebble.root().await?;
    let acme = AcmeConfig {
        domains: vec!["localhost".into()],
        contact: vec!["mailto:artist@example.com".into()],
        directory: pebble.directory.clone(),
        ca_file: Some(pebble.ca_file.clone()),
        cache_dir: cache.path().join("acme"),
        // Due as soon as issued: renewed every check.
        renew_before: Duration::from_secs(100 * 365 * 86_400),
        check_every: Duration::from_secs(2),
    };
    let config = signal_server::Config {
        listen,
        library: Some(library.path().to_path_buf()),
        index: None,
        web_dir: web_dir(),
        cache_dir: cache.path().to_path_buf(),
        public_url: None,
        limits: fanswarm_tracker::Limits::default(),
        swarms: Default::default(),
        player: signal_server::state::PlayerSettings::default(),
        tls: None,
        acme: Some(acme),
        redirect_listen: Some(redirect),
        redis: None,
        web_seed_mirrors: Vec::new(),
        albums: false,
        webrtc_seed: None,
    };

    let server = tokio::spawn(signal_server::run(config.clone()));
    let issued = match served_by(&pebble_root, listen, Duration::from_secs(90)).await {
        Ok(der) => der,
        Err(e) => bail!("{e}\npebble log:\n{}", pebble.log()),
    };
    let (status, body, _) = https_request(&pebble_root, listen, "/api/tracks", "").await?;
    ensure!(
        status == 200,
        "/api/tracks over the ACME certificate: {status}"
    );
    let tracks: serde_json::Value = serde_json::from_slice(&body)?;
    let torrent_url = tracks[0]["torrent_url"].as_str().context("torrent_url")?;
    ensure!(
        torrent_url.starts_with(&format!("https://localhost:{}/", listen.port())),
        "links name the ACME domain over https: {torrent_url}"
    );
    ensure!(
        cache.path().join("acme/localhost/cert.pem").is_file()
            && cache.path().join("acme/localhost/account.json").is_file(),
        "certificate and account cached"
    );
    // Renewed: another certificate from pebble, and no restart.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, der) = https_request(&pebble_root, listen, "/", "").await?;
        if der != issued {
            break;
        }
        if Instant::now() > until {
            bail!("no renewal within 30 s\npebble log:\n{}", pebble.log());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    server.abort();
    let _ = server.await;
    let cached = {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let pem = std::fs::read(cache.path().join("acme/localhost/cert.pem"))?;
        CertificateDer::from_pem_slice(&pem)?.to_vec()
    };

    // Restart with the ACME server gone: the cached certificate is served.
    pebble.stop();
    let server = tokio::spawn(signal_server::run(config));
    let again = match served_by(&pebble_root, listen, Duration::from_secs(20)).await {
        Ok(der) => der,
        Err(e) if server.is_finished() => bail!("{e}; the server stopped: {:?}", server.await),
        Err(e) => return Err(e),
    };
    ensure!(
        again == cached,
        "after a restart the cached certificate is served"
    );
    server.abort();
    Ok(())
}

/// Waits until a handshake trusting only `root` succeeds on `addr`; the
/// server's certificate (DER).
async fn served_by(
    root: &Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    limit: Duration,
) -> anyhow::Result<Vec<u8>> {
    let until = Instant::now() + limit;
    loop {
        match https_request(root, addr, "/", "").await {
            Ok((_, _, der)) => return Ok(der),
            Err(e) if Instant::now() > until => {
                bail!("no certificate chaining to pebble's root within {limit:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
