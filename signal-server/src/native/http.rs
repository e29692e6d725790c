//! A small HTTP client for the native peer: BEP 19 web seed range fetches
//! and downloading a `.torrent` by URL.
//!
//! Plain `http://` only (hyper's own client, no TLS stack to build): the web
//! seed of a fanswarm server on the same machine or LAN. An `https://` web
//! seed is reported as unsupported and the engine carries on with peers.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use swarm::metainfo::Info;

/// Longest wait for one HTTP exchange.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `.torrent` we download (WebTorrent caps metadata at 10 MB).
pub const MAX_TORRENT_BYTES: usize = 10 * 1024 * 1024;

/// Why an HTTP fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse.
    #[error("bad URL {0:?}")]
    BadUrl(String),
    /// Only `http://` is supported by this client.
    #[error("unsupported URL scheme (only http://): {0}")]
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
    /// The body was not the length asked for.
    #[error("{url}: expected {expected} bytes, got {got}")]
    Length {
        /// The URL.
        url: String,
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The exchange took longer than the timeout.
    #[error("{0}: timed out")]
    Timeout(String),
}

/// A pooled HTTP/1.1 client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpClient {
    /// `GET url`, the whole body, at most `limit` bytes.
    pub async fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, HttpError> {
        self.fetch(url, None, limit).await
    }

    /// Stream bytes `offset .. offset + length` of a torrent from its web
    /// seed `base`: one Range request per file the run spans.
    pub async fn web_seed_range(
        &self,
        info: &Info,
        base: &str,
        offset: u64,
        length: u32,
    ) -> Result<Vec<u8>, HttpError> {
        let mut data = Vec::with_capacity(length as usize);
        for slice in info.file_slices(offset, u64::from(length)) {
            let url = info
                .web_seed_url(base, slice.file)
                .ok_or_else(|| HttpError::BadUrl(base.to_owned()))?;
            let last = slice.offset + slice.length - 1;
            let part = self
                .fetch(&url, Some((slice.offset, last)), slice.length as usize)
                .await?;
            if part.len() as u64 != slice.length {
                return Err(HttpError::Length {
                    url,
                    expected: slice.length,
                    got: part.len() as u64,
                });
            }
            data.extend_from_slice(&part);
        }
        Ok(data)
    }

    async fn fetch(
        &self,
        url: &str,
        range: Option<(u64, u64)>,
        limit: usize,
    ) -> Result<Vec<u8>, HttpError> {
        let uri: Uri = url.parse().map_err(|_| HttpError::BadUrl(url.to_owned()))?;
        if uri.scheme_str() != Some("http") {
            return Err(HttpError::Unsupported(url.to_owned()));
        }
        let mut request = Request::get(uri);
        if let Some((first, last)) = range {
            request = request.header(header::RANGE, format!("bytes={first}-{last}"));
        }
        let request = request
            .body(Empty::new())
            .map_err(|_| HttpError::BadUrl(url.to_owned()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| HttpError::Request {
                    url: url.to_owned(),
                    detail: e.to_string(),
                })?;
            let expected = if range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            if response.status() != expected {
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
}
