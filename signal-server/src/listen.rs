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
    loop {
        let (stream, remote) = match listener.accept().await {
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
        match &tls {
            None => {
                tokio::spawn(serve_connection(
                    stream,
                    remote,
                    router,
                    header_read_timeout,
                ));
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                tokio::spawn(async move {
                    match tokio::time::timeout(header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, remote, router, header_read_timeout).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%remote, %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Tracker sockets open per address, capped.
#[derive(Debug)]
pub struct AddressTable {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One tracker socket's place in the [`AddressTable`]; dropping it frees it.
#[derive(Debug)]
pub struct AddressSlot {
    table: Arc<AddressTable>,
    key: IpAddr,
}

impl AddressTable {
    /// A table allowing `max` sockets per address; 0 allows any number.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(AddressTable {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more socket from `ip`, or `None` if it has `max` already.
    pub fn claim(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if self.max != 0 && *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: Arc::clone(self),
            key,
        })
    }

    /// Sockets open from `ip` (its /64 for IPv6).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&address_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
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
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(request.map(Body::new))
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        tracing::debug!(%remote, %e, "connection ended with an error");
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
        let table = AddressTable::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = table.claim(a).unwrap();
        let _second = table.claim(a).unwrap();
        assert!(table.claim(a).is_none(), "a third socket from one address");
        assert!(table.claim(b).is_some(), "another address is unaffected");
        drop(first);
        assert_eq!(table.open_from(a), 1);
        assert!(
            table.claim(a).is_some(),
            "a freed slot can be claimed again"
        );
    }

    #[test]
    fn zero_means_no_cap() {
        let table = AddressTable::new(0);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let slots: Vec<AddressSlot> = (0..1000).map(|_| table.claim(ip).unwrap()).collect();
        assert_eq!(table.open_from(ip), 1000);
        drop(slots);
        assert_eq!(table.open_from(ip), 0);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let table = AddressTable::new(1);
        let _one = table.claim("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            table
                .claim("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_none(),
            "same /64"
        );
        assert!(table.claim("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = table.claim("198.51.100.7".parse().unwrap()).unwrap();
        assert!(
            table
                .claim("::ffff:198.51.100.7".parse().unwrap())
                .is_none(),
            "IPv4-mapped is the same address"
        );
    }
}
