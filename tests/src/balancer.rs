//! An ordinary TCP load balancer in front of several server instances:
//! each new connection goes to the next instance in turn, skipping one
//! that refuses it (a dead instance), and bytes are copied both ways
//! until either side closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};

/// The balancer; it stops when dropped.
pub struct Balancer {
    /// Where it listens (every interface of the namespace).
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free port and spreads connections over `backends`.
    pub async fn start(backends: Vec<SocketAddr>) -> anyhow::Result<Balancer> {
        Self::start_on(0, backends).await
    }

    /// Listens on `port` (0: a free one) and spreads connections over
    /// `backends`.
    pub async fn start_on(port: u16, backends: Vec<SocketAddr>) -> anyhow::Result<Balancer> {
        anyhow::ensure!(!backends.is_empty(), "a balancer needs a backend");
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        let addr = listener.local_addr()?;
        let backends = Arc::new(backends);
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let backends = Arc::clone(&backends);
                let first = next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    for i in 0..backends.len() {
                        let backend = backends[(first + i) % backends.len()];
                        if let Ok(mut upstream) = TcpStream::connect(backend).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(Balancer { addr, task })
    }

    /// `http://localhost:<port>`: the one base every instance publishes.
    pub fn base(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
