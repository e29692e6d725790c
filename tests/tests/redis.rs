//! Tracker instances sharing swarms through one real `redis-server`
//! (`--redis`), started by each test on a free port.
//!
//! In Chromium: two instances with a page on each swarm with each other,
//! each page getting bytes from the other; and, behind a load balancer,
//! an instance killed mid-swarm: its pages re-announce to the other and a
//! late page finishes from them. With plain WebSocket clients (no
//! browser): offers and answers cross instances under the answer rule; a
//! dead instance's peers vanish within one announce interval; a Redis
//! restarted empty has the swarm back within one; a frozen Redis blocks
//! no local swarm, and what cannot reach it is dropped and counted.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use fanswarm_e2e::balancer::Balancer;
use fanswarm_e2e::browser::{Browser, Page};
use fanswarm_e2e::native::{self, Behaviour};
use fanswarm_e2e::netns;
use fanswarm_e2e::player::{self, num};
use fanswarm_e2e::redis::RedisServer;
use fanswarm_e2e::server::{self, InstanceOptions, ServerOptions, TestServer};
use fanswarm_tracker::Limits;
use signal_server::redis_cluster::RedisOptions;

fn native(test: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(test)
}

#[test]
fn two_instances_on_one_redis_a_page_on_each_swarm_with_each_other() -> anyhow::Result<()> {
    netns::run(
        "two_instances_on_one_redis_a_page_on_each_swarm_with_each_other",
        page_on_each(),
    )
}

#[test]
fn an_instance_killed_mid_swarm_its_pages_move_to_the_other_and_finish() -> anyhow::Result<()> {
    netns::run(
        "an_instance_killed_mid_swarm_its_pages_move_to_the_other_and_finish",
        instance_killed(),
    )
}

#[test]
fn offers_and_answers_cross_instances_under_the_answer_rule() -> anyhow::Result<()> {
    native(crossing())
}

#[test]
fn offers_reach_a_peer_that_joined_another_instance_later() -> anyhow::Result<()> {
    native(joined_later())
}

#[test]
fn a_dead_instances_peers_vanish_within_one_announce_interval() -> anyhow::Result<()> {
    native(dead_instance())
}

#[test]
fn a_redis_restarted_empty_has_the_swarm_back_within_one_interval() -> anyhow::Result<()> {
    native(redis_restart())
}

#[test]
fn a_frozen_redis_blocks_no_local_swarm_and_drops_are_counted() -> anyhow::Result<()> {
    native(frozen_redis())
}

/// Two instances, each its own origin (each publishes the same file, so
/// the same info hash), a page on each pressing play together.
async fn page_on_each() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    // 80 s of audio (~3.5 MB, 14 groups of 256 KiB that the web seed's
    // election shares out): the pages finish at about the pace they play,
    // each fetching some groups and getting the rest from the other. Both
    // fetch the first group at start; each later group is won by one page
    // or the other at random (their peer ids), so one page wins them all,
    // gives and never gets, once in 2^12 runs. With 40 s (7 groups) that
    // was once in 32, and it happened (a clean-clone run, 2026-12-07).
    let track = ServerOptions {
        seconds: 80,
        web_seed: true,
    };
    let a = instance(&redis, track, None, Limits::default()).await?;
    let b = instance(&redis, track, None, Limits::default()).await?;
    assert_eq!(a.track.info_hash, b.track.info_hash, "one swarm");
    let mut browser = Browser::launch().await?;
    let pages = open_together(&mut browser, &[&a, &b]).await?;
    let done = player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(150),
        "both pages done",
        |s| s["done"] == true,
    )
    .await?;
    check_assembled(&mut browser, &pages, &a.file).await?;
    let m = |s: &TestServer, k| s.state().metrics.redis_relayed(k);
    println!(
        "pages:{}\ninstance a: offers out {} in {}, answers out {} in {}; \
         instance b: offers out {} in {}, answers out {} in {}",
        player::show(&done),
        m(&a, "offer_out"),
        m(&a, "offer_in"),
        m(&a, "answer_out"),
        m(&a, "answer_in"),
        m(&b, "offer_out"),
        m(&b, "offer_in"),
        m(&b, "answer_out"),
        m(&b, "answer_in"),
    );
    assert!(
        m(&a, "offer_in") + m(&b, "offer_in") > 0 && m(&a, "answer_in") + m(&b, "answer_in") > 0,
        "the pages met through Redis"
    );
    for (i, s) in done.iter().enumerate() {
        assert!(
            num(s, "fromPeers") > 0.0,
            "page {i} got bytes from the page on the other instance: {s}"
        );
    }
    Ok(())
}

/// Two instances behind a balancer (one public base), no web seed. Two
/// pages join; the instance holding a page is killed once a seeder on the
/// other has served them; every peer re-announces to the survivor; with
/// the seeder gone, a late page finishes from the two pages alone (and
/// from what its origin's cache kept of theirs: the same origin).
async fn instance_killed() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let track = ServerOptions {
        seconds: 40,
        web_seed: false,
    };
    // Reserve the balancer's port first: the instances publish its base.
    let probe = std::net::TcpListener::bind("0.0.0.0:0")?;
    let port = probe.local_addr()?.port();
    drop(probe);
    let base = format!("http://localhost:{port}");
    let limits = Limits {
        // Browsers announce at least every 10 s.
        announce_interval: Duration::from_secs(10),
        ..Limits::default()
    };
    let mut x = instance(&redis, track, Some(base.clone()), limits.clone()).await?;
    let mut y = instance(&redis, track, Some(base.clone()), limits).await?;
    let balancer = Balancer::start_on(port, vec![x.addr, y.addr]).await?;
    anyhow::ensure!(balancer.base() == base, "the balancer took the port");

    let mut browser = Browser::launch().await?;
    let embed = format!("{base}/embed/{}", x.track.info_hash.to_hex());
    let mut pages = Vec::new();
    for _ in 0..2 {
        let page = browser.open(&embed).await?;
        player::press_play(&mut browser, &page).await?;
        pages.push(page);
    }
    wait_until("both pages announced", Duration::from_secs(20), || {
        x.tracker_peers() + y.tracker_peers() == 2
    })
    .await?;
    // The victim holds at least one page; the seeder goes on the other.
    let x_is_victim = x.tracker_peers() >= 1;
    let (victim, survivor) = if x_is_victim {
        (&mut x, &mut y)
    } else {
        (&mut y, &mut x)
    };
    let on_victim = victim.tracker_peers();
    let seeder = native::seeder(survivor, Behaviour::Honest).await?;
    player::wait_all(
        &mut browser,
        &pages,
        Duration::from_secs(60),
        "both pages done from the seeder on the other instance",
        |s| s["done"] == true,
    )
    .await?;

    victim.stop();
    let killed = Instant::now();
    wait_until(
        "the seeder and both pages on the surviving instance",
        Duration::from_secs(30),
        || survivor.tracker_peers() == 3,
    )
    .await?;
    let moved_secs = killed.elapsed().as_secs_f64();
    seeder.stop().await;
    wait_until("the seeder gone", Duration::from_secs(10), || {
        survivor.tracker_peers() == 2
    })
    .await?;

    let late = browser.open(&embed).await?;
    player::press_play(&mut browser, &late).await?;
    let late_state = player::wait_all(
        &mut browser,
        std::slice::from_ref(&late),
        Duration::from_secs(60),
        "the late page done from the two pages",
        |s| s["done"] == true,
    )
    .await?;
    pages.push(late);
    check_assembled(&mut browser, &pages, &survivor.file).await?;
    println!(
        "killed the instance holding {on_victim} page(s); all peers on the survivor \
         {moved_secs:.1} s later; late page:{}",
        player::show(&late_state)
    );
    assert!(num(&late_state[0], "fromPeers") > 0.0);
    drop(balancer);
    Ok(())
}

/// P on instance X, Q on Y: Q's offer reaches P through Redis; R, who
/// joins X later and never got it, cannot answer it; P's answer reaches Q,
/// once.
async fn crossing() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let x = instance(&redis, headless(), None, Limits::default()).await?;
    let y = instance(&redis, headless(), None, Limits::default()).await?;
    let mut p = Client::connect(&x).await?;
    let mut q = Client::connect(&y).await?;
    p.announce("P", &[]).await?;
    let key = format!("fanswarm:swarm:{}", hex_of(&id("H")));
    wait_for_members(&mut redis.client().await?, &key, 1, Duration::from_secs(5)).await?;
    let q_reply = q.announce("Q", &["o1"]).await?;
    assert_eq!(q_reply["interval"], 120, "{q_reply}");

    let offered = p.next(Duration::from_secs(5)).await?;
    assert_eq!(offered["peer_id"], id("Q"), "{offered}");
    assert_eq!(offered["offer_id"], id("o1"));
    assert_eq!(offered["offer"]["sdp"], "v=0 offer o1");
    let mut r = Client::connect(&x).await?;
    r.announce("R", &[]).await?;
    r.answer("R", "Q", "o1").await?;
    let refused = r.next(Duration::from_secs(2)).await?;
    assert_eq!(
        refused["failure reason"], "unknown or expired offer",
        "{refused}"
    );
    p.answer("P", "Q", "o1").await?;
    let answered = q.next(Duration::from_secs(5)).await?;
    assert_eq!(answered["peer_id"], id("P"), "{answered}");
    assert_eq!(answered["offer_id"], id("o1"));
    assert_eq!(answered["answer"]["sdp"], "v=0 answer");
    // Only once.
    p.answer("P", "Q", "o1").await?;
    let again = p.next(Duration::from_secs(2)).await?;
    assert_eq!(
        again["failure reason"], "unknown or expired offer",
        "{again}"
    );
    q.expect_silence(Duration::from_millis(500)).await?;

    // Counts include the other instance's peers once Y heard of them (an
    // offer's pick brings the swarm's totals back).
    wait_for_members(&mut redis.client().await?, &key, 3, Duration::from_secs(5)).await?;
    q.announce("Q", &["o4"]).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = q.announce("Q", &[]).await?;
    assert_eq!(reply["incomplete"], 3, "P and R on X, Q on Y: {reply}");
    Ok(())
}

/// Q1 and Q2 on Y, then P on X: Y first saw a swarm of its own peers
/// only, yet within a few announces Q2's offers also go to P (an announce
/// whose offers all stayed local fetches the swarm's totals).
async fn joined_later() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let x = instance(&redis, headless(), None, Limits::default()).await?;
    let y = instance(&redis, headless(), None, Limits::default()).await?;
    let key = format!("fanswarm:swarm:{}", hex_of(&id("H")));
    let mut conn = redis.client().await?;
    let mut q1 = Client::connect(&y).await?;
    let mut q2 = Client::connect(&y).await?;
    q1.announce("Q1", &[]).await?;
    q2.announce("Q2", &[]).await?;
    wait_for_members(&mut conn, &key, 2, Duration::from_secs(5)).await?;
    let mut p = Client::connect(&x).await?;
    p.announce("P", &[]).await?;
    wait_for_members(&mut conn, &key, 3, Duration::from_secs(5)).await?;
    for round in 1..=20 {
        let offers: Vec<String> = (0..5).map(|i| format!("m{round}.{i}")).collect();
        let offers: Vec<&str> = offers.iter().map(String::as_str).collect();
        q2.announce("Q2", &offers).await?;
        if let Ok(m) = p.next(Duration::from_millis(300)).await {
            assert_eq!(m["peer_id"], id("Q2"), "{m}");
            println!("an offer reached the later peer on the other instance in round {round}");
            return Ok(());
        }
    }
    bail!("20 announces of 5 offers from Y, none reached the peer on X")
}

/// A peer on an instance that dies stays in Redis until its expiry (one
/// interval after the instance's last refresh), then vanishes.
async fn dead_instance() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let interval = Duration::from_secs(4);
    let limits = Limits {
        announce_interval: interval,
        ..Limits::default()
    };
    let mut x = instance(&redis, headless(), None, limits.clone()).await?;
    let y = instance(&redis, headless(), None, limits).await?;
    let mut p = Client::connect(&x).await?;
    let mut q = Client::connect(&y).await?;
    p.announce("P", &[]).await?;
    q.announce("Q", &[]).await?;
    let key = format!("fanswarm:swarm:{}", hex_of(&id("H")));
    let mut conn = redis.client().await?;
    wait_for_members(&mut conn, &key, 2, Duration::from_secs(5)).await?;

    x.stop();
    let killed = Instant::now();
    wait_for_members(&mut conn, &key, 1, interval + Duration::from_secs(2)).await?;
    let gone = killed.elapsed();
    println!(
        "a dead instance's peer vanished {:.1} s after it died",
        gone.as_secs_f64()
    );
    assert!(gone <= interval + Duration::from_secs(1), "{gone:?}");
    // Y no longer counts it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let reply = q.announce("Q", &[]).await?;
    assert_eq!(reply["incomplete"], 1, "{reply}");
    Ok(())
}

/// Redis is killed and comes back empty: within one announce interval
/// every live member is back, and offers cross instances again.
async fn redis_restart() -> anyhow::Result<()> {
    let mut redis = RedisServer::start().await?;
    let interval = Duration::from_secs(4);
    let limits = Limits {
        announce_interval: interval,
        ..Limits::default()
    };
    let x = instance(&redis, headless(), None, limits.clone()).await?;
    let y = instance(&redis, headless(), None, limits).await?;
    let mut p = Client::connect(&x).await?;
    let mut q = Client::connect(&y).await?;
    p.announce("P", &[]).await?;
    q.announce("Q", &[]).await?;
    let key = format!("fanswarm:swarm:{}", hex_of(&id("H")));
    wait_for_members(&mut redis.client().await?, &key, 2, Duration::from_secs(5)).await?;

    redis.restart().await?;
    let restarted = Instant::now();
    let mut conn = redis.client().await?;
    wait_for_members(&mut conn, &key, 2, interval + Duration::from_secs(2)).await?;
    let back = restarted.elapsed();
    println!(
        "the swarm was back in Redis {:.2} s after it restarted empty",
        back.as_secs_f64()
    );
    assert!(back <= interval, "{back:?}");

    q.announce("Q", &["o2"]).await?;
    let offered = p.next(Duration::from_secs(5)).await?;
    assert_eq!(offered["offer_id"], id("o2"), "{offered}");
    p.answer("P", "Q", "o2").await?;
    let answered = q.next(Duration::from_secs(5)).await?;
    assert_eq!(answered["peer_id"], id("P"), "{answered}");
    Ok(())
}

/// Redis frozen (SIGSTOP): two peers on one instance still exchange an
/// offer and an answer at once, forty joins are answered at once, and the
/// events that did not fit the small queue are counted; thawed, the
/// instances relay to each other again.
async fn frozen_redis() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let x = server::start_instance(InstanceOptions {
        track: headless(),
        redis: RedisOptions {
            url: redis.url(),
            queue: 16,
        },
        public_base: None,
        limits: Limits::default(),
    })
    .await?;
    let y = instance(&redis, headless(), None, Limits::default()).await?;
    let mut a = Client::connect(&x).await?;
    let mut b = Client::connect(&x).await?;
    a.announce("A", &[]).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    redis.pause()?;
    let frozen = Instant::now();
    let result = async {
        // Local: B's offer goes to A (the only peer here), A's answer back.
        let started = Instant::now();
        b.announce("B", &["o3"]).await?;
        let offered = a.next(Duration::from_secs(1)).await?;
        assert_eq!(offered["peer_id"], id("B"), "{offered}");
        a.answer("A", "B", "o3").await?;
        let answered = b.next(Duration::from_secs(1)).await?;
        assert_eq!(answered["peer_id"], id("A"), "{answered}");
        let local_ms = started.elapsed().as_millis();
        // Forty peers join forty swarms: each a membership event for Redis.
        let started = Instant::now();
        for n in 0..40 {
            let mut c = Client::connect(&x).await?;
            c.announce_in(&format!("swarm{n}"), &format!("C{n}"), &[])
                .await?;
        }
        let joins_ms = started.elapsed().as_millis();
        // Still frozen past the Redis task's timeout: local relays go on.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let started = Instant::now();
        b.announce("B", &["o5"]).await?;
        let offered = a.next(Duration::from_secs(1)).await?;
        assert_eq!(offered["offer_id"], id("o5"), "{offered}");
        a.answer("A", "B", "o5").await?;
        let answered = b.next(Duration::from_secs(1)).await?;
        assert_eq!(answered["peer_id"], id("A"), "{answered}");
        let local_ms = local_ms.max(started.elapsed().as_millis());
        Ok::<_, anyhow::Error>((local_ms, joins_ms))
    }
    .await;
    let dropped = x.state().metrics.redis_dropped_total();
    redis.resume()?;
    let (local_ms, joins_ms) = result?;
    println!(
        "Redis frozen for {:.1} s: a local offer and answer took {local_ms} ms, forty joins {joins_ms} ms; \
         {dropped} events for Redis dropped and counted",
        frozen.elapsed().as_secs_f64()
    );
    assert!(
        local_ms < 1000,
        "the local relay waited for Redis: {local_ms} ms"
    );
    assert!(
        dropped > 0,
        "a full queue drops, and counts, rather than grows"
    );
    let text = x.state().metrics.render();
    assert!(
        text.contains("fanswarm_redis_dropped_total{reason=\"queue_full\"}"),
        "exported at /metrics"
    );

    // Thawed: a peer on Y reaches A on X again (A is re-added within a
    // quarter interval if its join was among the dropped).
    let mut q = Client::connect(&y).await?;
    let until = Instant::now() + Duration::from_secs(20);
    let mut round = 0;
    loop {
        round += 1;
        let offer = format!("r{round}");
        q.announce_in("H", "Q", &[&offer]).await?;
        if let Ok(m) = a.next(Duration::from_secs(1)).await
            && m["peer_id"] == id("Q")
        {
            break;
        }
        if Instant::now() > until {
            let key = format!("fanswarm:swarm:{}", hex_of(&id("H")));
            let members: Vec<String> = redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .query_async(&mut redis.client().await?)
                .await?;
            let m = |s: &TestServer, k| s.state().metrics.redis_relayed(k);
            bail!(
                "no offer from Y reached X after Redis thawed: members {members:?}, y offer_out {}, x offer_in {}, y dropped {}, x {}",
                m(&y, "offer_out"),
                m(&x, "offer_in"),
                y.state().metrics.redis_dropped_total(),
                x.state().metrics.render()
            );
        }
    }
    Ok(())
}

// --- helpers ---------------------------------------------------------------

/// A track without a web seed, for tests that use no browser.
fn headless() -> ServerOptions {
    ServerOptions {
        seconds: 2,
        web_seed: false,
    }
}

async fn instance(
    redis: &RedisServer,
    track: ServerOptions,
    public_base: Option<String>,
    limits: Limits,
) -> anyhow::Result<TestServer> {
    server::start_instance(InstanceOptions {
        track,
        redis: RedisOptions::new(redis.url()),
        public_base,
        limits,
    })
    .await
}

/// One page per server, loading and pressing play together.
async fn open_together(
    browser: &mut Browser,
    servers: &[&TestServer],
) -> anyhow::Result<Vec<Page>> {
    let mut pages = Vec::new();
    for _ in servers {
        pages.push(browser.open_unloaded("about:blank").await?);
    }
    let urls: Vec<String> = servers.iter().map(|s| s.track.embed_url.clone()).collect();
    for (page, url) in pages.iter().zip(&urls) {
        browser.navigate(page, url).await?;
    }
    for (page, url) in pages.iter().zip(&urls) {
        browser.wait_loaded(page, url).await?;
    }
    for page in &pages {
        player::press_play(browser, page).await?;
    }
    Ok(pages)
}

async fn check_assembled(browser: &mut Browser, pages: &[Page], file: &[u8]) -> anyhow::Result<()> {
    let expected = player::digest_of(file);
    for (i, page) in pages.iter().enumerate() {
        let got = player::assembled(browser, page).await?;
        assert_eq!(got, expected, "page {i} assembled exactly the file");
    }
    Ok(())
}

async fn wait_until(what: &str, limit: Duration, ready: impl Fn() -> bool) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    while !ready() {
        if Instant::now() > until {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Polls until the swarm's sorted set holds exactly `count` live members
/// (scored after Redis's own clock).
async fn wait_for_members(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    count: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + limit;
    loop {
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
        let now_ms = secs * 1000 + micros / 1000;
        let live: usize = redis::cmd("ZCOUNT")
            .arg(key)
            .arg(format!("({now_ms}"))
            .arg("+inf")
            .query_async(conn)
            .await?;
        if live == count {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("{key}: {live} live members, not {count}, within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 20-character id (one character per byte) from a short name.
fn id(name: &str) -> String {
    format!("{name:-<20}")
}

fn hex_of(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A plain WebSocket tracker client.
struct Client {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Client {
    async fn connect(srv: &TestServer) -> anyhow::Result<Client> {
        let (ws, _) = tokio_tungstenite::connect_async(srv.tracker_url()).await?;
        Ok(Client { ws })
    }

    /// Announces `peer` in swarm "H" with offers named `offers`; returns
    /// the tracker's reply.
    async fn announce(&mut self, peer: &str, offers: &[&str]) -> anyhow::Result<Value> {
        self.announce_in("H", peer, offers).await
    }

    async fn announce_in(
        &mut self,
        swarm: &str,
        peer: &str,
        offers: &[&str],
    ) -> anyhow::Result<Value> {
        let offers: Vec<Value> = offers
            .iter()
            .map(|o| {
                json!({"offer": {"type": "offer", "sdp": format!("v=0 offer {o}")}, "offer_id": id(o)})
            })
            .collect();
        self.send(
            json!({"action": "announce", "info_hash": id(swarm), "peer_id": id(peer),
            "numwant": 5, "uploaded": 0, "downloaded": 0, "left": 1000, "offers": offers}),
        )
        .await?;
        loop {
            let m = self.next(Duration::from_secs(2)).await?;
            if m.get("interval").is_some() || m.get("failure reason").is_some() {
                return Ok(m);
            }
        }
    }

    async fn answer(&mut self, peer: &str, to: &str, offer: &str) -> anyhow::Result<()> {
        self.send(
            json!({"action": "announce", "info_hash": id("H"), "peer_id": id(peer),
            "to_peer_id": id(to), "offer_id": id(offer),
            "answer": {"type": "answer", "sdp": "v=0 answer"}}),
        )
        .await
    }

    async fn send(&mut self, v: Value) -> anyhow::Result<()> {
        self.ws.send(Message::Text(v.to_string().into())).await?;
        Ok(())
    }

    /// The next text message, within `limit`.
    async fn next(&mut self, limit: Duration) -> anyhow::Result<Value> {
        loop {
            let frame = tokio::time::timeout(limit, self.ws.next())
                .await
                .context("no message in time")?
                .context("socket closed")??;
            if let Message::Text(text) = frame {
                return Ok(serde_json::from_str(&text)?);
            }
        }
    }

    async fn expect_silence(&mut self, limit: Duration) -> anyhow::Result<()> {
        match tokio::time::timeout(limit, self.ws.next()).await {
            Err(_) => Ok(()),
            Ok(m) => bail!("expected nothing, got {m:?}"),
        }
    }
}
