//! A small HTTP client for the native peer: the web seed's Range requests,
//! their bodies streamed chunk by chunk as the node asks (what to fetch,
//! and when a silent request is given up, is the node's business), and
//! downloading a `.torrent` by URL.
//!
//! `http://` and `https://` (hyper-rustls, trusting what [`crate::tls`]
//! says); any other scheme fails as unsupported and the node carries on
//! with peers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, StatusCode, Uri, header};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use swarm::node::RangeRequest;

/// Longest wait for a whole `.torrent` download.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `.torrent` we download (WebTorrent caps metadata at 10 MB).
pub const MAX_TORRENT_BYTES: usize = 10 * 1024 * 1024;

/// Why an HTTP fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse.
    #[error("bad URL {0:?}")]
    BadUrl(String),
    /// Only `http://` and `https://` are supported by this client.
    #[error("unsupported URL scheme (only http:// and https://): {0}")]
    Unsupported(String),
    /// Connecting or exchanging failed.
    #[error("request to {url} failed: {detail}")]
    Request {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The server answered with an unexpected status.
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// The exchange took longer than the timeout.
    #[error("{0}: timed out")]
    Timeout(String),
}

/// What a streamed body reports, in order.
#[derive(Debug)]
pub(crate) enum BodyEvent {
    /// More bytes.
    Chunk(Bytes),
    /// The body ended (the node tells a short one from a whole one).
    End,
    /// The request or the body failed.
    Failed(String),
}

/// A pooled HTTP/1.1 client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpClient {
    /// A client whose `https://` requests trust `tls`.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// `GET url`, the whole body, at most `limit` bytes.
    pub async fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, HttpError> {
        let request = get_request(url, None)?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| request_error(url, e))?;
            if response.status() != StatusCode::OK {
                return Err(HttpError::Status {
                    url: url.to_owned(),
                    status: response.status(),
                });
            }
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| HttpError::Request {
                    url: url.to_owned(),
                    detail: format!("reading the body (limit {limit} bytes): {e}"),
                })?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| HttpError::Timeout(url.to_owned()))?
    }

    /// Runs one Range request and reports its body to `sink` as it arrives
    /// (`sink` returns `false` once nobody listens, which ends the request).
    pub(crate) async fn stream_range(
        &self,
        range: &RangeRequest,
        sink: impl Fn(BodyEvent) -> bool,
    ) {
        let event = match self.read_range(range, &sink).await {
            Ok(()) => BodyEvent::End,
            Err(e) => BodyEvent::Failed(e.to_string()),
        };
        sink(event);
    }

    async fn read_range(
        &self,
        range: &RangeRequest,
        sink: &impl Fn(BodyEvent) -> bool,
    ) -> Result<(), HttpError> {
        let url = range.url.as_str();
        let request = get_request(url, Some((range.start, range.end)))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| request_error(url, e))?;
        let status = response.status();
        if !range.accepts_status(status.as_u16()) {
            return Err(HttpError::Status {
                url: url.to_owned(),
                status,
            });
        }
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| request_error(url, e))?;
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
                && !sink(BodyEvent::Chunk(data))
            {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// `GET url`, with `Range: bytes=first-last` if given; `http://` or `https://`.
fn get_request(url: &str, range: Option<(u64, u64)>) -> Result<Request<Empty<Bytes>>, HttpError> {
    let uri: Uri = url.parse().map_err(|_| HttpError::BadUrl(url.to_owned()))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(HttpError::Unsupported(url.to_owned()));
    }
    let mut request = Request::get(uri);
    if let Some((first, last)) = range {
        request = request.header(header::RANGE, format!("bytes={first}-{last}"));
    }
    request
        .body(Empty::new())
        .map_err(|_| HttpError::BadUrl(url.to_owned()))
}

/// The error and every cause under it: hyper's own text ("client error
/// (Connect)") hides what went wrong, e.g. an untrusted certificate.
fn request_error(url: &str, e: impl std::error::Error) -> HttpError {
    let mut detail = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        detail.push_str(": ");
        detail.push_str(&inner.to_string());
        cause = inner.source();
    }
    HttpError::Request {
        url: url.to_owned(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers one request with `status` and `body`, sent in
    /// two writes; returns its URL and the request head it received.
    async fn one_shot(
        status: &'static str,
        body: &'static [u8],
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/a.mp3", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = vec![0; 4096];
            let n = socket.read(&mut head).await.unwrap();
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            let (a, b) = body.split_at(body.len() / 2);
            socket.write_all(a).await.unwrap();
            socket.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            socket.write_all(b).await.unwrap();
            String::from_utf8_lossy(&head[..n]).into_owned()
        });
        (url, server)
    }

    async fn stream(url: &str, start: u64, end: u64) -> Vec<String> {
        let events = Mutex::new(Vec::new());
        let range = RangeRequest {
            url: url.to_owned(),
            start,
            end,
        };
        HttpClient::new(crate::tls::client_config(None).unwrap())
            .stream_range(&range, |event| {
                let text = match event {
                    BodyEvent::Chunk(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    BodyEvent::End => "<end>".to_owned(),
                    BodyEvent::Failed(e) => format!("<failed: {e}>"),
                };
                events.lock().unwrap().push(text);
                true
            })
            .await;
        events.into_inner().unwrap()
    }

    #[tokio::test]
    async fn a_range_body_is_streamed_as_it_arrives_then_ends() {
        let (url, server) = one_shot("206 Partial Content", b"0123456789").await;
        let events = stream(&url, 10, 19).await;
        assert!(server.await.unwrap().contains("range: bytes=10-19"));
        assert!(
            events.len() >= 3,
            "two chunks at least, then the end: {events:?}"
        );
        assert_eq!(events.concat(), "0123456789<end>");
    }

    #[tokio::test]
    async fn a_whole_file_answer_to_a_later_range_fails() {
        let (url, _server) = one_shot("200 OK", b"whole file").await;
        let events = stream(&url, 10, 19).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].contains("200"), "{events:?}");
    }

    #[tokio::test]
    async fn only_http_and_https_are_fetched() {
        let events = stream("ftp://cdn.example/a.mp3", 0, 9).await;
        assert!(events[0].starts_with("<failed: unsupported"), "{events:?}");
    }
}
