//! `signal-server serve --tls-cert --tls-key --redirect-listen`, as an
//! artist runs it: the whole server (`signal_server::run`) on real sockets,
//! spoken to by a rustls client that trusts only the test CA.
//!
//! - HTTPS serves the API, the torrent and the web seed, and every published
//!   link says `https://` and `wss://`;
//! - the tracker answers over `wss://`;
//! - plain HTTP on the redirect port answers 308 to the same path on HTTPS;
//! - a renewed certificate written over the files is served to the next
//!   handshake without a restart; files that stop loading keep the last good
//!   certificate in service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;

use fanswarm_e2e::server::web_dir;
use fanswarm_e2e::tls::{TestCa, https_request};

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_wss_redirects_http_and_reloads_its_certificate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let library = tempfile::tempdir()?;
    let samples = signal_server::demo::synthesize(3, 11);
    let file = signal_server::demo::wav_bytes(&samples, signal_server::demo::SAMPLE_RATE);
    std::fs::write(library.path().join("tls track.wav"), &file)?;
    let ca = TestCa::new()?;
    let first = ca.leaf(&["localhost", "127.0.0.1"])?;
    let (cert, key) = first.write(dir.path())?;
    let client = ca.client_config()?;

    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let redirect: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = signal_server::Config {
        listen,
        library: Some(library.path().to_path_buf()),
        index: None,
        web_dir: web_dir(),
        cache_dir: dir.path().join("cache"),
        public_url: None,
        limits: fanswarm_tracker::Limits::default(),
        swarms: Default::default(),
        player: signal_server::state::PlayerSettings::default(),
        tls: Some(signal_server::tls::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        acme: None,
        redirect_listen: Some(redirect),
        redis: None,
        web_seed_mirrors: Vec::new(),
        albums: false,
        webrtc_seed: None,
    };
    let server = tokio::spawn(signal_server::run(config));

    // The API over HTTPS, once the server is up.
    let (status, body, served) = {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            match https_request(&client, listen, "/api/tracks", "").await {
                Ok(answer) => break answer,
                Err(_) if Instant::now() < until && !server.is_finished() => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.context("the HTTPS server never answered")),
            }
        }
    };
    ensure!(status == 200, "GET /api/tracks over HTTPS: {status}");
    ensure!(
        served == first.der,
        "the handshake shows the configured certificate"
    );
    let tracks: serde_json::Value = serde_json::from_slice(&body)?;
    let track = &tracks[0];
    let base = format!("https://{listen}");
    for field in ["torrent_url", "media_url", "embed_url"] {
        let url = track[field].as_str().context(field)?;
        ensure!(url.starts_with(&base), "{field} is {url}, not under {base}");
    }
    let magnet = track["magnet"].as_str().context("magnet")?;
    let tracker = format!("tr=wss%3A%2F%2F127.0.0.1%3A{}%2Fannounce", listen.port());
    ensure!(
        magnet.contains(&tracker),
        "the magnet names the wss tracker: {magnet}"
    );

    // The web seed over HTTPS: a Range of the file.
    let media = track["media_url"].as_str().context("media_url")?;
    let path = media.strip_prefix(&base).context("media path")?;
    let (status, body, _) =
        https_request(&client, listen, path, "Range: bytes=100-1099\r\n").await?;
    ensure!(status == 206, "Range over HTTPS: {status}");
    ensure!(
        body == file[100..1100],
        "the web seed's bytes over HTTPS are the file's"
    );

    // The tracker over WSS: an announce gets an answer.
    let connector = Connector::Rustls(Arc::clone(&client));
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://{listen}/announce"),
        None,
        false,
        Some(connector),
    )
    .await
    .context("wss connect")?;
    let info_hash = track["info_hash"].as_str().context("info_hash")?;
    let binary: String = (0..20)
        .map(|i| {
            let byte = u8::from_str_radix(&info_hash[2 * i..2 * i + 2], 16).unwrap_or(0);
            char::from(byte)
        })
        .collect();
    let announce = serde_json::json!({
        "action": "announce", "info_hash": binary, "peer_id": "-FS0000-tlstest00000",
        "numwant": 0, "uploaded": 0, "downloaded": 0, "left": 0, "event": "started", "offers": []
    });
    ws.send(Message::text(announce.to_string())).await?;
    let answer = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .context("no tracker answer over wss")?
        .context("wss closed")??;
    let answer: serde_json::Value = serde_json::from_str(answer.to_text()?)?;
    ensure!(
        answer["interval"].as_u64().is_some(),
        "announce answer over wss: {answer}"
    );

    // Plain HTTP on the redirect port: 308 to the same path and query on HTTPS.
    let mut plain = TcpStream::connect(redirect).await?;
    plain
        .write_all(b"GET /embed/x?y=1 HTTP/1.1\r\nHost: music.example\r\nConnection: close\r\n\r\n")
        .await?;
    let mut head = Vec::new();
    plain.read_to_end(&mut head).await?;
    let head = String::from_utf8_lossy(&head);
    ensure!(head.starts_with("HTTP/1.1 308"), "redirect answer: {head}");
    ensure!(
        head.to_ascii_lowercase()
            .contains(&format!("location: {base}/embed/x?y=1")),
        "redirect target: {head}"
    );

    // Renewal: new files, no restart; the next handshake shows them.
    let renewed = ca.leaf(&["localhost", "127.0.0.1"])?;
    renewed.write(dir.path())?;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, served) = https_request(&client, listen, "/api/tracks", "").await?;
        if served == renewed.der {
            break;
        }
        ensure!(
            served == first.der,
            "a certificate that is neither the old nor the new"
        );
        if Instant::now() > until {
            bail!("the renewed certificate was not served within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A broken renewal: the last good certificate stays in service.
    std::fs::write(&cert, "not a certificate")?;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (status, _, served) = https_request(&client, listen, "/api/tracks", "").await?;
    ensure!(
        status == 200 && served == renewed.der,
        "after a bad write the server still serves the last good certificate"
    );
    ensure!(!server.is_finished(), "the server is still running");
    server.abort();
    Ok(())
}
