//! The native peer (`signal-server get` / `seed`) against a server that
//! speaks only TLS: the `.torrent` and the web seed over `https://`, the
//! tracker over `wss://`, trusting a private CA given as `--ca-file` would
//! give it. Without that CA the same download is refused with an error
//! that says why.

use std::time::Duration;

use anyhow::{Context, ensure};

use fanswarm_e2e::tls::TestCa;
use fanswarm_e2e::{netns, server};
use fanswarm_peer::get::{GetCommand, get};
use fanswarm_peer::{NativePeer, PeerOptions, RtcConfig};
use swarm::metainfo::Metainfo;

const TEST: &str = "native_peer_speaks_https_and_wss_with_a_private_ca";

#[test]
fn native_peer_speaks_https_and_wss_with_a_private_ca() -> anyhow::Result<()> {
    netns::run(TEST, run())
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = TestCa::new()?;
    let leaf = ca.leaf(&["localhost", "127.0.0.1"])?;
    let (cert, key) = leaf.write(dir.path())?;
    let ca_file = ca.write(dir.path())?;
    let srv = server::start_tls(8, &server::TlsFiles { cert, key }).await?;
    let length = srv.file.len() as u64;
    let torrent_url = srv.track.torrent_url.replace("localhost", "127.0.0.1");
    ensure!(torrent_url.starts_with("https://"), "{torrent_url}");
    let trusting = fanswarm_peer::tls::client_config(Some(&ca_file))?;
    let options = |web_seed: bool| PeerOptions {
        trackers: vec![srv.tracker_url()],
        rtc: RtcConfig {
            bind: netns::ADDRESS,
            gather_timeout: Duration::from_secs(2),
            ..RtcConfig::default()
        },
        web_seed,
        tls: Some(trusting.clone()),
        ..PeerOptions::default()
    };
    ensure!(srv.tracker_url().starts_with("wss://"));

    // Without the private CA: a clear refusal, not a hang.
    let refused = get(GetCommand {
        torrent: torrent_url.clone(),
        out: dir.path().join("refused"),
        exit_when_done: true,
        options: PeerOptions {
            tls: None,
            ..options(true)
        },
    })
    .await;
    let message = format!(
        "{}",
        refused.err().context("an untrusted server was accepted")?
    );
    ensure!(
        message.to_ascii_lowercase().contains("certificate"),
        "the error says it is the certificate: {message}"
    );

    // The torrent and every byte over https, from the web seed alone.
    let from_web = tokio::time::timeout(
        Duration::from_secs(60),
        get(GetCommand {
            torrent: torrent_url.clone(),
            out: dir.path().join("web"),
            exit_when_done: true,
            options: options(true),
        }),
    )
    .await
    .context("the https download did not finish in 60 s")??;
    ensure!(from_web.done, "web-seed download: {from_web:?}");
    ensure!(
        from_web.from_web_seed >= length,
        "every byte from the https web seed: {from_web:?}"
    );
    let written = std::fs::read(dir.path().join("web").join(&srv.track.name))?;
    ensure!(written == srv.file, "the file written is the track");

    // Signalling over wss: a native seeder and a getter with no web seed.
    let meta = Metainfo::from_bytes(&srv.track.torrent)?;
    let seeder = NativePeer::start(&meta, &srv.track_path, options(false)).await?;
    let from_peer = tokio::time::timeout(
        Duration::from_secs(60),
        get(GetCommand {
            torrent: torrent_url,
            out: dir.path().join("peer"),
            exit_when_done: true,
            options: options(false),
        }),
    )
    .await
    .context("the download over a wss-signalled peer did not finish in 60 s")??;
    ensure!(
        from_peer.done && from_peer.from_peers >= length && from_peer.from_web_seed == 0,
        "every byte from the seeder: {from_peer:?}"
    );
    println!(
        "over TLS: web seed {} B, peer {} B; refused without the CA: {message}",
        from_web.from_web_seed, from_peer.from_peers
    );
    seeder.stop().await;
    Ok(())
}
