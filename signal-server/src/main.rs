//! `signal-server`: flags, environment and logging; the work is in the library.
//!
//! `signal-server [serve] --library DIR --listen ADDR` runs the server;
//! `signal-server publish PATH… --out DIR` writes `.torrent` files.
//! With the `native-peer` feature (default), `signal-server seed PATH…
//! --tracker URL` and `signal-server get TORRENT --tracker URL --out DIR`
//! run the native WebRTC peer (`fanswarm-peer`), and `serve --webrtc-seed`
//! seeds the catalog with it.

use std::ffi::OsString;
#[cfg(feature = "native-peer")]
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
#[cfg(feature = "native-peer")]
use fanswarm_peer::get::{self, GetCommand};
#[cfg(feature = "native-peer")]
use fanswarm_peer::{IceServer, PeerOptions, RtcConfig};
use fanswarm_tracker::Limits;
use indicatif::{ProgressBar, ProgressStyle};
use signal_server::catalog::{Links, encode_path};
use signal_server::publish::{self, TorrentOptions};
#[cfg(feature = "native-peer")]
use signal_server::webrtc_seed::{self, SeedCommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "signal-server",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Flags of `serve`, which runs when no subcommand is given.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Publish a music folder and serve tracker, web seed, player and metrics (default).
    Serve(Box<ServeArgs>),
    /// Write `.torrent` files without serving; prints magnet links and embed snippets.
    Publish(PublishArgs),
    /// Seed files (or `.torrent` + data) over WebRTC to WebTorrent trackers until Ctrl-C.
    #[cfg(feature = "native-peer")]
    Seed(SeedArgs),
    /// Download a torrent over WebRTC (and its web seed), verify, then seed until Ctrl-C.
    #[cfg(feature = "native-peer")]
    Get(GetArgs),
}

/// Flags of the native WebRTC peer shared by `seed` and `get`.
#[cfg(feature = "native-peer")]
#[derive(Args, Debug)]
struct PeerArgs {
    /// WebSocket tracker URL (repeatable), e.g. wss://music.example/announce.
    #[arg(long = "tracker", env = "FANSWARM_TRACKERS", value_delimiter = ',')]
    trackers: Vec<String>,
    /// STUN server URL (repeatable), e.g. stun:stun.example:3478. Without
    /// --stun and --turn, the tracker's fanswarm server is asked (/api/ice).
    #[arg(long = "stun", env = "FANSWARM_STUN", value_delimiter = ',')]
    stun: Vec<String>,
    /// TURN server URL (repeatable), e.g. turn:turn.example:3478?transport=udp.
    #[arg(long = "turn", env = "FANSWARM_TURN", value_delimiter = ',')]
    turn: Vec<String>,
    /// TURN user name.
    #[arg(long, env = "FANSWARM_TURN_USERNAME", default_value = "")]
    turn_username: String,
    /// TURN password.
    #[arg(long, env = "FANSWARM_TURN_CREDENTIAL", default_value = "")]
    turn_credential: String,
    /// Local address for WebRTC sockets; 0.0.0.0 = every non-loopback interface.
    #[arg(long, env = "FANSWARM_WEBRTC_BIND", default_value = "0.0.0.0")]
    webrtc_bind: IpAddr,
    /// Most peer connections at once.
    #[arg(long, env = "FANSWARM_MAX_PEERS", default_value_t = 40)]
    max_peers: usize,
    /// Also trust these CA certificates (PEM) for wss:// trackers and
    /// https:// web seeds, beside the usual public roots: a private CA.
    #[arg(long, env = "FANSWARM_CA_FILE")]
    ca_file: Option<PathBuf>,
}

#[cfg(feature = "native-peer")]
#[derive(Args, Debug)]
struct SeedArgs {
    /// Data files (a torrent is made for each) or `.torrent` files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where the data of `.torrent` arguments lives [default: beside each .torrent].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Write the `.torrent` made for each data file into this directory.
    #[arg(long)]
    torrent_out: Option<PathBuf>,
    #[command(flatten)]
    peer: PeerArgs,
}

#[cfg(feature = "native-peer")]
#[derive(Args, Debug)]
struct GetArgs {
    /// A `.torrent` path, an http:// URL, or a magnet link (metadata from
    /// its `xs` torrent URL if that loads, else from peers over ut_metadata).
    torrent: String,
    /// Directory the files are written to.
    #[arg(long, default_value = ".")]
    out: PathBuf,
    /// Exit once the download is complete instead of seeding.
    #[arg(long)]
    exit_when_done: bool,
    /// Do not use the torrent's web seed, peers only.
    #[arg(long)]
    no_web_seed: bool,
    /// Fetch only this file of an album (multi-file torrent), by its index
    /// in the torrent's file list, counted from 0 (repeatable). Pieces it
    /// shares with its neighbours are fetched whole, but only its own bytes
    /// are written: the output is exactly the file.
    #[arg(long = "file", value_name = "N")]
    files: Vec<usize>,
    #[command(flatten)]
    peer: PeerArgs,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Settings file: one FANSWARM_NAME=value per line (the variables of
    /// the flags below; `#` comments). Flags and the environment win over it.
    #[arg(long, env = "FANSWARM_CONFIG")]
    config: Option<PathBuf>,
    /// Music folder to publish (mp3, ogg, opus, flac, m4a, wav); none: a synthesized demo track.
    #[arg(long, env = "FANSWARM_LIBRARY")]
    library: Option<PathBuf>,
    /// The library's index: what was hashed, so a restart hashes only new
    /// and changed files [default: LIBRARY/.fanswarm-index if the library
    /// is writable, else a file under the cache dir].
    #[arg(long, env = "FANSWARM_INDEX")]
    index: Option<PathBuf>,
    /// Address to listen on (0.0.0.0:8080 accepts other machines, and then
    /// needs --public-url).
    #[arg(long, env = "FANSWARM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL in published links: how fans reach this server, e.g.
    /// http://192.168.1.20:8080 or https://music.example behind a proxy.
    /// Required when --listen is 0.0.0.0 or [::] [default: http://<listen>].
    #[arg(long, env = "FANSWARM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Directory served at `/` (player, service worker, demo page).
    #[arg(long, env = "FANSWARM_WEB_DIR", default_value = "web")]
    web_dir: PathBuf,
    /// Where the generated demo track is kept [default: $XDG_CACHE_HOME/fanswarm].
    #[arg(long, env = "FANSWARM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Most peers in one swarm.
    #[arg(long, env = "FANSWARM_MAX_PEERS_PER_SWARM")]
    max_peers_per_swarm: Option<usize>,
    /// Most swarms one connection may join.
    #[arg(long, env = "FANSWARM_MAX_SWARMS_PER_CONNECTION")]
    max_swarms_per_connection: Option<usize>,
    /// Sustained tracker messages per second per connection.
    #[arg(long, env = "FANSWARM_MESSAGES_PER_SECOND")]
    messages_per_second: Option<u32>,
    /// Tracker messages a connection may send in one burst.
    #[arg(long, env = "FANSWARM_MESSAGE_BURST")]
    message_burst: Option<u32>,
    /// Tracker sockets open at once from one address (IPv6: one /64), over
    /// it 429; fans behind one NAT (a venue's Wi-Fi) share it, so keep it
    /// generous. 0: no cap (behind a reverse proxy, where every fan has the
    /// proxy's address) [default: 1024].
    #[arg(long, env = "FANSWARM_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// Tracker sockets open at once in all, over it 503. 0: no cap
    /// [default: the file-descriptor limit, its soft value raised to the
    /// hard one at start, less a quarter kept for the web seed and files].
    #[arg(long, env = "FANSWARM_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds of silence after which a tracker socket is closed.
    #[arg(long, env = "FANSWARM_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Announce interval told to peers, in seconds.
    #[arg(long, env = "FANSWARM_ANNOUNCE_INTERVAL_SECS")]
    announce_interval_secs: Option<u64>,
    /// STUN server for fans' browsers (repeatable), e.g.
    /// stun:stun.example:3478; "none" for none (a LAN, a private network)
    /// [default: stun:stun.l.google.com:19302].
    #[arg(long = "stun", env = "FANSWARM_STUN", value_delimiter = ',')]
    stun: Vec<String>,
    /// TURN server for fans' browsers (repeatable), e.g.
    /// turn:turn.example:3478?transport=udp; needs --turn-secret.
    #[arg(
        long = "turn",
        env = "FANSWARM_TURN",
        value_delimiter = ',',
        requires = "turn_secret"
    )]
    turn: Vec<String>,
    /// The TURN server's shared secret (coturn: use-auth-secret,
    /// static-auth-secret): fans get credentials made from it that expire.
    #[arg(long, env = "FANSWARM_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
    /// How long a fan's TURN credentials stay valid, in seconds.
    #[arg(long, env = "FANSWARM_TURN_TTL_SECS", default_value_t = 6 * 3600)]
    turn_ttl_secs: u64,
    /// Fans connect through the TURN server only (they never see each
    /// other's addresses).
    #[arg(long, env = "FANSWARM_RELAY_ONLY", requires = "turn")]
    relay_only: bool,
    /// Which swarms the tracker and the player serve: `published`, only
    /// this server's tracks (announces for others get a `failure reason`,
    /// their /embed page a refusal); `open`, any swarm: fans share their
    /// own files from /share, and any magnet plays in /embed.
    #[arg(long, env = "FANSWARM_SWARMS", value_enum, default_value_t = signal_server::share::Swarms::Published)]
    swarms: signal_server::share::Swarms,
    /// Serve HTTPS and WSS with this certificate chain (PEM, leaf first, e.g.
    /// certbot's fullchain.pem); read again when it changes. Needs --tls-key.
    #[arg(long, env = "FANSWARM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM). Needs --tls-cert.
    #[arg(long, env = "FANSWARM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Get the certificate for this domain over ACME (Let's Encrypt by
    /// default), renewed before it expires (repeatable: one certificate
    /// for all). Needs --redirect-listen on port 80 for the HTTP-01
    /// challenge; excludes --tls-cert.
    #[arg(
        long = "acme",
        env = "FANSWARM_ACME",
        value_delimiter = ',',
        conflicts_with = "tls_cert"
    )]
    acme: Vec<String>,
    /// Contact for the ACME account (repeatable), e.g. mailto:me@example.com.
    #[arg(
        long = "acme-contact",
        env = "FANSWARM_ACME_CONTACT",
        value_delimiter = ','
    )]
    acme_contact: Vec<String>,
    /// ACME directory URL [default: Let's Encrypt's production directory].
    #[arg(long, env = "FANSWARM_ACME_DIRECTORY")]
    acme_directory: Option<String>,
    /// Trust this CA (PEM) for the ACME directory's HTTPS: a private or
    /// test ACME server.
    #[arg(long, env = "FANSWARM_ACME_CA_FILE")]
    acme_ca_file: Option<PathBuf>,
    /// With TLS: also accept plain HTTP here and redirect it to HTTPS
    /// (e.g. 0.0.0.0:80); with --acme, HTTP-01 challenges are answered here.
    #[arg(long, env = "FANSWARM_REDIRECT_LISTEN")]
    redirect_listen: Option<SocketAddr>,
    /// Share swarms with every other instance using this Redis, e.g.
    /// redis://10.0.0.5:6379 (several instances behind one load balancer:
    /// fans find each other whichever instance they reach). Membership
    /// expires one announce interval after an instance stops refreshing it.
    #[arg(long, env = "FANSWARM_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// Another web seed for every track (repeatable, or comma-separated):
    /// a base URL serving the library's files at the same relative paths,
    /// e.g. https://cdn.example/music/ (a CDN or an object store holding a
    /// copy of the library). Torrents list this server's /media/ first,
    /// then these; players spread their fetches and skip one that fails.
    #[arg(
        long = "web-seed-mirror",
        env = "FANSWARM_WEB_SEED_MIRRORS",
        value_delimiter = ','
    )]
    web_seed_mirrors: Vec<String>,
    /// Publish each folder of two or more tracks as one album (a
    /// multi-file torrent: one swarm for the whole album; its embed lists
    /// the tracks, a track's embed is `/embed/<album>?file=N`). On by
    /// default; `--albums=false` (`FANSWARM_ALBUMS=0`) publishes every
    /// file as a torrent of its own.
    #[arg(
        long,
        env = "FANSWARM_ALBUMS",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    albums: bool,
    /// Tracker events that may wait for a slow Redis; more are dropped
    /// and counted (fanswarm_redis_dropped).
    #[arg(long, env = "FANSWARM_REDIS_QUEUE", default_value_t = signal_server::redis_cluster::DEFAULT_QUEUE)]
    redis_queue: usize,
    /// Also seed every track over WebRTC from this process (a native peer).
    #[cfg(feature = "native-peer")]
    #[arg(long, env = "FANSWARM_WEBRTC_SEED")]
    webrtc_seed: bool,
    /// Local address for the WebRTC seed's sockets; 0.0.0.0 = every non-loopback interface.
    #[cfg(feature = "native-peer")]
    #[arg(long, env = "FANSWARM_WEBRTC_BIND", default_value = "0.0.0.0")]
    webrtc_bind: IpAddr,
}

#[derive(Args, Debug)]
struct PublishArgs {
    /// Audio files or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Directory the `.torrent` files are written to.
    #[arg(long, env = "FANSWARM_OUT", default_value = ".")]
    out: PathBuf,
    /// Tracker URL (repeatable), e.g. wss://music.example/announce.
    #[arg(long = "tracker", env = "FANSWARM_TRACKERS", value_delimiter = ',')]
    trackers: Vec<String>,
    /// Web seed URL (repeatable); one ending in `/` gets the file's path
    /// appended (under the folder given, for a folder).
    #[arg(long = "webseed", env = "FANSWARM_WEBSEEDS", value_delimiter = ',')]
    webseeds: Vec<String>,
    /// Server base URL used in the printed embed snippet.
    #[arg(
        long,
        env = "FANSWARM_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    public_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = parse_cli()?;
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Publish(args)) => tokio::task::spawn_blocking(move || publish_files(&args))
            .await
            .context("publishing task")?,
        #[cfg(feature = "native-peer")]
        Some(Command::Seed(args)) => {
            let command = SeedCommand {
                paths: args.paths,
                data_dir: args.data,
                torrent_out: args.torrent_out,
                options: peer_options(args.peer, true)?,
            };
            Ok(webrtc_seed::seed(command).await?)
        }
        #[cfg(feature = "native-peer")]
        Some(Command::Get(args)) => {
            let command = GetCommand {
                torrent: args.torrent,
                out: args.out,
                exit_when_done: args.exit_when_done,
                options: PeerOptions {
                    files: (!args.files.is_empty()).then_some(args.files),
                    ..peer_options(args.peer, !args.no_web_seed)?
                },
            };
            get::get(command).await?;
            Ok(())
        }
    }
}

#[cfg(feature = "native-peer")]
fn peer_options(args: PeerArgs, web_seed: bool) -> anyhow::Result<PeerOptions> {
    let tls = fanswarm_peer::tls::client_config(args.ca_file.as_deref())?;
    // Without servers of its own it asks the tracker's server (`/api/ice`).
    let ice_from_tracker = args.stun.is_empty() && args.turn.is_empty();
    let stun = args.stun.into_iter().map(|url| IceServer {
        url,
        ..IceServer::default()
    });
    let turn = args.turn.into_iter().map(|url| IceServer {
        url,
        username: args.turn_username.clone(),
        credential: args.turn_credential.clone(),
    });
    Ok(PeerOptions {
        trackers: args.trackers,
        rtc: RtcConfig {
            bind: args.webrtc_bind,
            ice_servers: stun.chain(turn).collect(),
            ..RtcConfig::default()
        },
        max_peers: args.max_peers,
        web_seed,
        tls: Some(tls),
        ice_from_tracker,
        ..PeerOptions::default()
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let defaults = Limits::default();
    let limits = Limits {
        max_peers_per_swarm: args
            .max_peers_per_swarm
            .unwrap_or(defaults.max_peers_per_swarm),
        max_swarms_per_connection: args
            .max_swarms_per_connection
            .unwrap_or(defaults.max_swarms_per_connection),
        messages_per_second: args
            .messages_per_second
            .unwrap_or(defaults.messages_per_second),
        message_burst: args.message_burst.unwrap_or(defaults.message_burst),
        max_connections_per_address: args
            .max_connections_per_address
            .unwrap_or(defaults.max_connections_per_address),
        max_connections: signal_server::descriptors::max_connections(
            args.max_connections,
            defaults.max_connections,
        ),
        idle_timeout: args
            .idle_timeout_secs
            .map_or(defaults.idle_timeout, Duration::from_secs),
        announce_interval: args
            .announce_interval_secs
            .map_or(defaults.announce_interval, Duration::from_secs),
        ..defaults
    };
    let cache_dir = args.cache_dir.unwrap_or_else(default_cache_dir);
    let acme = (!args.acme.is_empty()).then(|| signal_server::acme::AcmeConfig {
        domains: args.acme,
        contact: args.acme_contact,
        directory: args
            .acme_directory
            .unwrap_or_else(|| signal_server::acme::LETS_ENCRYPT.to_owned()),
        ca_file: args.acme_ca_file,
        cache_dir: cache_dir.join("acme"),
        renew_before: Duration::from_secs(30 * 86_400),
        check_every: Duration::from_secs(12 * 3600),
    });
    let config = signal_server::Config {
        listen: args.listen,
        library: args.library,
        index: args.index,
        web_dir: args.web_dir,
        cache_dir,
        public_url: args.public_url,
        limits,
        swarms: args.swarms,
        player: signal_server::state::PlayerSettings {
            ice: signal_server::ice::IceConfig {
                stun: match args.stun.as_slice() {
                    [] => vec![signal_server::ice::DEFAULT_STUN.to_owned()],
                    [none] if none == "none" => Vec::new(),
                    urls => urls.to_vec(),
                },
                turn: args.turn,
                turn_secret: args.turn_secret,
                turn_ttl: Duration::from_secs(args.turn_ttl_secs.max(10)),
                relay_only: args.relay_only,
            },
        },
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| signal_server::tls::TlsFiles { cert, key }),
        acme,
        redirect_listen: args.redirect_listen,
        redis: args
            .redis
            .map(|url| signal_server::redis_cluster::RedisOptions {
                url,
                queue: args.redis_queue,
            }),
        web_seed_mirrors: args
            .web_seed_mirrors
            .iter()
            .map(|url| signal_server::mirror_base(url).map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<_>>()?,
        albums: args.albums,
        #[cfg(feature = "native-peer")]
        webrtc_seed: args.webrtc_seed.then(|| RtcConfig {
            bind: args.webrtc_bind,
            ..RtcConfig::default()
        }),
    };
    signal_server::run_until(config, stop_signal()).await?;
    Ok(())
}

/// The command line, with `serve --config FILE` read in: each setting of
/// the file becomes its flag, unless the command line or the environment
/// already gave that flag a value.
fn parse_cli() -> anyhow::Result<Cli> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let matches = Cli::command().get_matches_from(&argv);
    let (serve, at) = match matches.subcommand() {
        None => (&matches, 1),
        Some(("serve", sub)) => {
            let at = argv.iter().position(|a| a == "serve").map_or(1, |i| i + 1);
            (sub, at)
        }
        Some(_) => return Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())),
    };
    let Some(path) = serve.get_one::<PathBuf>("config") else {
        return Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()));
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the settings file {}", path.display()))?;
    let command = ServeArgs::augment_args(clap::Command::new("serve"));
    let flags: Vec<&clap::Arg> = command.get_arguments().collect();
    let env_of = |arg: &clap::Arg| arg.get_env().and_then(|e| e.to_str()).map(str::to_owned);
    let settings = signal_server::config_file::parse(&text, |name| {
        name != "FANSWARM_CONFIG" && flags.iter().any(|f| env_of(f).as_deref() == Some(name))
    })
    .with_context(|| format!("settings file {}", path.display()))?;
    let mut extra = Vec::new();
    for setting in settings {
        let Some(flag) = flags
            .iter()
            .find(|f| env_of(f).as_deref() == Some(setting.name.as_str()))
        else {
            continue;
        };
        let given = matches!(
            serve.value_source(flag.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        let Some(long) = flag.get_long() else {
            continue;
        };
        if given {
            continue;
        }
        if matches!(flag.get_action(), clap::ArgAction::SetTrue) {
            match setting.value.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => extra.push(OsString::from(format!("--{long}"))),
                "0" | "false" | "no" | "off" | "" => {}
                other => anyhow::bail!(
                    "settings file {}: line {}: {} is on or off, not {other:?}",
                    path.display(),
                    setting.line,
                    setting.name
                ),
            }
        } else {
            extra.push(OsString::from(format!("--{long}={}", setting.value)));
        }
    }
    let mut full = argv;
    let at = at.min(full.len());
    full.splice(at..at, extra);
    let matches = Cli::command().get_matches_from(full);
    Ok(Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()))
}

/// SIGTERM (systemd, Docker, Kubernetes) or Ctrl-C.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(e) => {
                tracing::warn!(%e, "cannot watch SIGTERM; Ctrl-C still stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("fanswarm")
}

fn publish_files(args: &PublishArgs) -> anyhow::Result<()> {
    // Each file with its path under the folder named (its web seed URL
    // under a `/` base), or its bare name when named itself.
    let mut files = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            for file in publish::find_audio_files(path)? {
                let relative = publish::relative_path(path, &file)?;
                files.push((file, relative));
            }
        } else {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{}: not a UTF-8 file name", path.display()))?;
            files.push((path.clone(), name.to_owned()));
        }
    }
    anyhow::ensure!(!files.is_empty(), "no audio files found");
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    // Torrent file names written by this run, compared without case (the
    // output folder may not tell `A` from `a`): a second `intro.mp3` must
    // not overwrite the first one's torrent.
    let mut written = std::collections::HashSet::new();
    for (file, relative) in files {
        let stem = relative.replace('/', " - ");
        let mut out = format!("{stem}.torrent");
        let mut n = 1;
        while !written.insert(out.to_lowercase()) {
            n += 1;
            out = format!("{stem} ({n}).torrent");
        }
        if n > 1 {
            eprintln!(
                "{}: another file's torrent is named {stem}.torrent already; writing {out}",
                file.display()
            );
        }
        publish_one(args, &file, &relative, &out)?;
    }
    Ok(())
}

/// Hashes `file` and writes its torrent as `out_name` in `--out`; a web
/// seed ending in `/` gets `relative` (the file's path under the folder
/// named on the command line) appended.
fn publish_one(
    args: &PublishArgs,
    file: &Path,
    relative: &str,
    out_name: &str,
) -> anyhow::Result<()> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a UTF-8 file name", file.display()))?;
    let options = TorrentOptions {
        trackers: args.trackers.clone(),
        web_seeds: args
            .webseeds
            .iter()
            .map(|url| {
                if url.ends_with('/') {
                    format!("{url}{}", encode_path(relative))
                } else {
                    url.clone()
                }
            })
            .collect(),
    };
    let length = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let bar = ProgressBar::new(length).with_message(name.to_owned());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    let metainfo = publish::make_torrent(file, &options, |done| bar.set_position(done))?;
    bar.finish_and_clear();
    let out = args.out.join(out_name);
    std::fs::write(&out, metainfo.to_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    let links = Links::new(&args.public_url, &metainfo.info_hash, relative);
    println!("{}", out.display());
    println!("  info hash: {}", metainfo.info_hash);
    println!("  magnet:    {}", metainfo.magnet());
    println!("  embed:     {}", links.embed_html);
    println!("  or:        {}", links.embed_script_html);
    Ok(())
}
