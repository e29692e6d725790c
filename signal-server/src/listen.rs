//! Admission: what a connection must do to be served at all.
//!
//! `axum::serve` sets no timer on hyper, so a client that opens TCP and
//! dribbles its request head a byte at a time would hold a socket (and a
//! task) for as long as it likes. [`accept_loop`] serves each connection with
//! hyper's HTTP/1 builder and a header-read timeout instead, and tags every
//! request with the peer's address so [`AddressTable`] can cap the tracker
//! sockets one address holds open.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Accepts connections on `listener` forever, each served by `router` in its
/// own task; over TLS when `tls` is given (the handshake, too, must finish
/// within `header_read_timeout`).
pub async fn accept_loop(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
) {
    let (_never, shutdown) = watch::channel(false);
    accept_until(
        listener,
        router,
        header_read_timeout,
        tls,
        shutdown,
        Duration::ZERO,
    )
    .await;
}

/// [`accept_loop`] until `shutdown` turns true; then it stops accepting,
/// asks every open connection to finish the response it is sending and
/// close (hyper's graceful shutdown: an idle keep-alive connection closes
/// at once), and returns when they have, or after `drain` at the latest.
pub async fn accept_until(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    // Every connection task holds a clone; all dropped = all finished.
    let (open, mut finished) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut shutdown) => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, or a connection reset before accept:
                // the listener itself is fine. Pause so a full table can drain.
                tracing::warn!(%e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let router = router.clone();
        let stop = shutdown.clone();
        let held = open.clone();
        match &tls {
            None => {
                tokio::spawn(async move {
                    serve_connection(stream, remote, router, header_read_timeout, stop).await;
                    drop(held);
                });
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                tokio::spawn(async move {
                    match tokio::time::timeout(header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, remote, router, header_read_timeout, stop)
                                .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                    drop(held);
                });
            }
        }
    }
    drop(listener);
    drop(open);
    if tokio::time::timeout(drain, finished.recv()).await.is_err() {
        tracing::warn!(
            ?drain,
            "connections still open after the drain time; leaving them"
        );
    }
}

/// Tracker sockets open, capped per address and in all.
///
/// Refusals at the overall cap come in bursts (a crowd arriving at a full
/// server): the first of a burst is logged as a warning, and the next
/// socket admitted logs how many the burst refused, not one line each.
#[derive(Debug)]
pub struct AddressTable {
    max: usize,
    max_total: usize,
    open: Mutex<Open>,
}

/// What [`AddressTable`] counts, behind its lock.
#[derive(Debug, Default)]
struct Open {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
    /// Refused at the overall cap since the last socket admitted.
    refused_while_full: u64,
}

/// Why [`AddressTable::claim`] refused a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The address holds its `max_connections_per_address` already (429).
    Address,
    /// The server holds its `max_connections` in all (503).
    Full {
        /// The overall cap.
        max: usize,
    },
}

/// One tracker socket's place in the [`AddressTable`]; dropping it frees it.
#[derive(Debug)]
pub struct AddressSlot {
    table: Arc<AddressTable>,
    key: IpAddr,
}

impl AddressTable {
    /// A table allowing `max` sockets per address and `max_total` in all;
    /// 0 lifts either cap.
    pub fn new(max: usize, max_total: usize) -> Arc<Self> {
        Arc::new(AddressTable {
            max,
            max_total,
            open: Mutex::new(Open::default()),
        })
    }

    /// A slot for one more socket from `ip`, or why not.
    pub fn claim(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, Refused> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_address = open.by_address.get(&key).copied().unwrap_or(0);
        if self.max != 0 && from_address >= self.max {
            return Err(Refused::Address);
        }
        if self.max_total != 0 && open.total >= self.max_total {
            open.refused_while_full += 1;
            if open.refused_while_full == 1 {
                tracing::warn!(
                    max_connections = self.max_total,
                    "tracker sockets at the cap (--max-connections): refusing new ones \
                     with 503 until some close"
                );
            }
            return Err(Refused::Full {
                max: self.max_total,
            });
        }
        *open.by_address.entry(key).or_insert(0) += 1;
        open.total += 1;
        let refused = std::mem::take(&mut open.refused_while_full);
        drop(open);
        if refused > 0 {
            tracing::info!(refused, "tracker sockets below the cap again");
        }
        Ok(AddressSlot {
            table: Arc::clone(self),
            key,
        })
    }

    /// Sockets open from `ip` (its /64 for IPv6).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.by_address.get(&address_key(ip)).copied().unwrap_or(0)
    }

    /// Sockets open in all.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_address.remove(&self.key);
            }
        }
    }
}

/// Serves one HTTP/1 connection (WebSocket upgrades included) until it ends.
async fn serve_connection<S>(
    stream: S,
    remote: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request.map(Body::new))
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = stopped(&mut shutdown) => {
            // Finish the response under way, then close (an upgraded
            // WebSocket is the tracker's to close: ws.rs).
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = served {
        tracing::debug!(%remote, %e, "connection ended with an error");
    }
}

/// Resolves once `shutdown` is true (or its sender is gone without saying so:
/// then never).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// What the cap counts by: the address itself for IPv4 (IPv4-mapped IPv6
/// included), the /64 for IPv6, which one host is usually handed whole.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_freed_on_drop() {
        let table = AddressTable::new(2, 0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = table.claim(a).unwrap();
        let _second = table.claim(a).unwrap();
        assert_eq!(
            table.claim(a).unwrap_err(),
            Refused::Address,
            "a third socket from one address"
        );
        assert!(table.claim(b).is_ok(), "another address is unaffected");
        drop(first);
        assert_eq!(table.open_from(a), 1);
        assert!(table.claim(a).is_ok(), "a freed slot can be claimed again");
    }

    #[test]
    fn zero_means_no_cap() {
        let table = AddressTable::new(0, 0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let slots: Vec<AddressSlot> = (0..1000).map(|_| table.claim(ip).unwrap()).collect();
        assert_eq!(table.open_from(ip), 1000);
        assert_eq!(table.open(), 1000);
        drop(slots);
        assert_eq!(table.open_from(ip), 0);
        assert_eq!(table.open(), 0);
    }

    #[test]
    fn the_overall_cap_counts_every_address_and_frees_on_drop() {
        let table = AddressTable::new(2, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        let first = table.claim(a).unwrap();
        let _second = table.claim(a).unwrap();
        let _third = table.claim(b).unwrap();
        assert_eq!(table.claim(c).unwrap_err(), Refused::Full { max: 3 });
        assert_eq!(
            table.claim(a).unwrap_err(),
            Refused::Address,
            "an address at its own cap is told so first"
        );
        assert_eq!(table.open(), 3);
        drop(first);
        let _fourth = table.claim(c).expect("a freed slot serves any address");
        assert_eq!(table.open(), 3);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let table = AddressTable::new(1, 0);
        let _one = table.claim("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            table
                .claim("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_err(),
            "same /64"
        );
        assert!(table.claim("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let _v4 = table.claim("198.51.100.7".parse().unwrap()).unwrap();
        assert!(
            table.claim("::ffff:198.51.100.7".parse().unwrap()).is_err(),
            "IPv4-mapped is the same address"
        );
    }
}
