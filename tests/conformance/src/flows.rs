//! One scenario, written once, run on both native backends: the [`both!`](crate::both)
//! macro, and what the emulator, Prism-proxy and upload tests share (storage PUTs and GETs
//! outside the SDK, a transport wrapper that records every exchange, upload sources for
//! either backend, collecting a `Stream`).
//!
//! Blocking and async calls differ only in how they are awaited (and, for uploads, in the
//! source types), so a scenario is written with small mode macros that
//! [`both!`](crate::both) defines twice: once for the blocking ureq client, once (inside a
//! tokio runtime) for the async reqwest client.

use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use hotdata_core::{
    AsyncBody, AsyncClient, AsyncTransport, BlockingBody, BlockingClient, BlockingTransport, BoxFuture,
    Config, HttpRequest, RequestBody, SendOptions, TransportError,
};

/// Runs a scenario on both native backends: first with ureq (blocking), then with reqwest
/// (async, on a current-thread tokio runtime).
///
/// `both!(|backend| { ... })` binds `backend` to `"ureq"` or `"reqwest"` and defines, for
/// the body, these mode macros:
///
/// - `client!(config)`: the backend's client (`hotdata_ureq::client` / `hotdata_reqwest::client`);
/// - `recording_client!(config, log)`: the backend's client over a [`Recording`] transport;
/// - `call!(call)`: sends a [`hotdata_core::Call`] (`.send()` / `.await`);
/// - `wait!(expr)`: a blocking call as is, an async one awaited (`wait_for_*`, `arrow()`,
///   `write_to(..)`, `query_to_arrow(..)`, `send_raw()`, `upload_file(..)`,
///   `upload_stream(..)`, a bare transport's `send(..)`, ...);
/// - `pages!(call)`: every page of a listing, `Vec<Result<Vec<Item>, Error>>`;
/// - `next_batch!(batches)`: the next Arrow batch of a streamed result, or `None`;
/// - `storage_put!(url, bytes)`: a PUT to a presigned storage URL outside the SDK, giving the
///   `ETag`;
/// - `storage_get!(url)`: a GET of a storage URL outside the SDK, giving the body;
/// - `stream_source!(bytes)`: an upload source of unknown length over `bytes`, read in odd
///   [`Chunks`] (`UploadSource::reader` / `AsyncUploadSource::stream`);
/// - `file_source!(path)`: an upload source of known length reading the file at `path` as
///   parts need it (`UploadSource::path` / `AsyncUploadSource::path`; a bare path is one
///   too, through `Into`);
/// - `transport!(connect_timeout)`: the backend's bare transport (`UreqTransport` /
///   `ReqwestTransport`), for wire-level checks (bring `BlockingTransport` and
///   `AsyncTransport` into scope and send with `wait!(t.send(..))`);
/// - `streaming_body!(bytes, len)`: a [`hotdata_core::StreamingBody`] of `bytes` in odd
///   [`Chunks`], of declared length `len` (`from_reader` / `from_stream`).
///
/// The body must not `return` nor use `?`: it becomes the body of a block and of an `async`
/// block.
#[macro_export]
macro_rules! both {
    (|$backend:ident| $body:block) => {
        $crate::both!(@modes ($) $backend, $body)
    };
    (@modes ($d:tt) $backend:ident, $body:block) => {{
        {
            #[allow(unused_macros)]
            macro_rules! client {
                ($d config:expr) => {
                    ::hotdata_ureq::client($d config)
                };
            }
            #[allow(unused_macros)]
            macro_rules! recording_client {
                ($d config:expr, $d log:expr) => {
                    $crate::flows::recording_blocking($d config, $d log)
                };
            }
            #[allow(unused_macros)]
            macro_rules! call {
                ($d e:expr) => {
                    $d e.send()
                };
            }
            #[allow(unused_macros)]
            macro_rules! wait {
                ($d e:expr) => {
                    $d e
                };
            }
            #[allow(unused_macros)]
            macro_rules! pages {
                ($d e:expr) => {
                    $d e.pages().collect::<::std::vec::Vec<_>>()
                };
            }
            #[allow(unused_macros)]
            macro_rules! next_batch {
                ($d e:expr) => {
                    ::std::iter::Iterator::next(&mut $d e)
                };
            }
            #[allow(unused_macros)]
            macro_rules! storage_put {
                ($d url:expr, $d bytes:expr) => {
                    $crate::flows::storage_put_blocking(&$d url, $d bytes)
                };
            }
            #[allow(unused_macros)]
            macro_rules! storage_get {
                ($d url:expr) => {
                    $crate::flows::storage_get_blocking(&$d url)
                };
            }
            #[allow(unused_macros)]
            macro_rules! stream_source {
                ($d bytes:expr) => {
                    ::hotdata_core::upload::UploadSource::reader($crate::flows::Chunks::new($d bytes))
                };
            }
            #[allow(unused_macros)]
            macro_rules! file_source {
                ($d path:expr) => {
                    ::hotdata_core::upload::UploadSource::path($d path)
                };
            }
            #[allow(unused_macros)]
            macro_rules! transport {
                ($d connect_timeout:expr) => {
                    ::hotdata_ureq::UreqTransport::new($d connect_timeout)
                };
            }
            #[allow(unused_macros)]
            macro_rules! streaming_body {
                ($d bytes:expr, $d len:expr) => {
                    ::hotdata_core::StreamingBody::from_reader($crate::flows::Chunks::new($d bytes), $d len)
                };
            }
            let $backend: &'static str = "ureq";
            $body
        }
        {
            let runtime = $crate::flows::runtime();
            runtime.block_on(async {
                #[allow(unused_macros)]
                macro_rules! client {
                    ($d config:expr) => {
                        ::hotdata_reqwest::client($d config)
                    };
                }
                #[allow(unused_macros)]
                macro_rules! recording_client {
                    ($d config:expr, $d log:expr) => {
                        $crate::flows::recording_async($d config, $d log)
                    };
                }
                #[allow(unused_macros)]
                macro_rules! call {
                    ($d e:expr) => {
                        $d e.await
                    };
                }
                #[allow(unused_macros)]
                macro_rules! wait {
                    ($d e:expr) => {
                        $d e.await
                    };
                }
                #[allow(unused_macros)]
                macro_rules! pages {
                    ($d e:expr) => {
                        $crate::flows::collect_stream($d e.pages()).await
                    };
                }
                #[allow(unused_macros)]
                macro_rules! next_batch {
                    ($d e:expr) => {
                        $d e.next_batch().await
                    };
                }
                #[allow(unused_macros)]
                macro_rules! storage_put {
                    ($d url:expr, $d bytes:expr) => {
                        $crate::flows::storage_put_async(&$d url, $d bytes).await
                    };
                }
                #[allow(unused_macros)]
                macro_rules! storage_get {
                    ($d url:expr) => {
                        $crate::flows::storage_get_async(&$d url).await
                    };
                }
                #[allow(unused_macros)]
                macro_rules! stream_source {
                    ($d bytes:expr) => {
                        ::hotdata_core::upload::AsyncUploadSource::stream($crate::flows::Chunks::new($d bytes))
                    };
                }
                #[allow(unused_macros)]
                macro_rules! file_source {
                    ($d path:expr) => {
                        ::hotdata_core::upload::AsyncUploadSource::path($d path)
                    };
                }
                #[allow(unused_macros)]
                macro_rules! transport {
                    ($d connect_timeout:expr) => {
                        ::hotdata_reqwest::ReqwestTransport::new($d connect_timeout)
                    };
                }
                #[allow(unused_macros)]
                macro_rules! streaming_body {
                    ($d bytes:expr, $d len:expr) => {
                        ::hotdata_core::StreamingBody::from_stream($crate::flows::Chunks::new($d bytes), $d len)
                    };
                }
                let $backend: &'static str = "reqwest";
                $body
            })
        }
    }};
}

/// A current-thread tokio runtime with I/O and time, for the async half of [`both!`](crate::both).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// Every item of a `Stream`, in order.
pub async fn collect_stream<S: Stream + Unpin>(mut stream: S) -> Vec<S::Item> {
    let mut out = Vec::new();
    while let Some(item) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
        out.push(item);
    }
    out
}

fn storage_request(url: &str, body: Vec<u8>) -> HttpRequest {
    http::Request::builder()
        .method(http::Method::PUT)
        .uri(url)
        .body(RequestBody::from(body))
        .expect("a storage PUT request")
}

fn etag_of(status: http::StatusCode, headers: &http::HeaderMap, url: &str) -> String {
    assert!(status.is_success(), "storage PUT {url}: HTTP {status}");
    headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("storage PUT {url}: no ETag"))
        .to_owned()
}

/// PUTs `body` to a presigned storage URL with a bare ureq transport (no `Authorization`,
/// no `X-Workspace-Id`), as object storage wants it; returns the `ETag`, quotes included.
pub fn storage_put_blocking(url: &str, body: Vec<u8>) -> String {
    let transport = hotdata_ureq::UreqTransport::new(None);
    let response = transport
        .send(storage_request(url, body), &SendOptions::default())
        .unwrap_or_else(|e| panic!("storage PUT {url}: {e}"));
    let etag = etag_of(response.status(), response.headers(), url);
    for chunk in response.into_body() {
        chunk.unwrap_or_else(|e| panic!("storage PUT {url}: {e}"));
    }
    etag
}

/// [`storage_put_blocking`] with a bare reqwest transport.
pub async fn storage_put_async(url: &str, body: Vec<u8>) -> String {
    let transport = hotdata_reqwest::ReqwestTransport::new(None);
    let options = SendOptions::default();
    let response = transport
        .send(storage_request(url, body), &options)
        .await
        .unwrap_or_else(|e| panic!("storage PUT {url}: {e}"));
    let etag = etag_of(response.status(), response.headers(), url);
    let _ = response.into_body().collect().await;
    etag
}

fn storage_get_request(url: &str) -> HttpRequest {
    http::Request::builder()
        .method(http::Method::GET)
        .uri(url)
        .body(RequestBody::Empty)
        .expect("a storage GET")
}

/// GETs a storage URL with a bare ureq transport; returns the body.
pub fn storage_get_blocking(url: &str) -> Vec<u8> {
    let transport = hotdata_ureq::UreqTransport::new(None);
    let response = transport
        .send(storage_get_request(url), &SendOptions::default())
        .unwrap_or_else(|e| panic!("storage GET {url}: {e}"));
    assert!(response.status().is_success(), "storage GET {url}: HTTP {}", response.status());
    let mut out = Vec::new();
    for chunk in response.into_body() {
        out.extend_from_slice(&chunk.unwrap_or_else(|e| panic!("storage GET {url}: {e}")));
    }
    out
}

/// [`storage_get_blocking`] with a bare reqwest transport.
pub async fn storage_get_async(url: &str) -> Vec<u8> {
    let transport = hotdata_reqwest::ReqwestTransport::new(None);
    let options = SendOptions::default();
    let response = transport
        .send(storage_get_request(url), &options)
        .await
        .unwrap_or_else(|e| panic!("storage GET {url}: {e}"));
    assert!(response.status().is_success(), "storage GET {url}: HTTP {}", response.status());
    response.into_body().collect().await.unwrap_or_else(|e| panic!("storage GET {url}: {e}")).to_vec()
}

/// Bytes handed out in odd-sized chunks (at most 100,003 bytes), as a `Read` or a `Stream`:
/// a source of unknown length for uploads, or a streaming request body.
#[derive(Debug)]
pub struct Chunks {
    data: Bytes,
    at: usize,
}

impl Chunks {
    /// The longest chunk handed out.
    pub const CHUNK: usize = 100_003;

    /// Chunks of `data`, from its start.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self { data: data.into(), at: 0 }
    }

    fn next_chunk(&mut self, max: usize) -> Bytes {
        let end = self.data.len().min(self.at + max.min(Self::CHUNK));
        let chunk = self.data.slice(self.at..end);
        self.at = end;
        chunk
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.next_chunk(buf.len());
        buf[..chunk.len()].copy_from_slice(&chunk);
        Ok(chunk.len())
    }
}

impl Stream for Chunks {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let chunk = self.next_chunk(Self::CHUNK);
        Poll::Ready(if chunk.is_empty() { None } else { Some(Ok(chunk)) })
    }
}

/// One exchange seen by a [`Recording`] transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request method.
    pub method: http::Method,
    /// The request path (no query).
    pub path: String,
    /// The request's query string, if any.
    pub query: Option<String>,
    /// The answer's status, or `None` when the transport failed.
    pub status: Option<u16>,
    /// The answer's `sl-violations` header (Prism's findings), if any.
    pub violations: Option<String>,
}

/// What a [`Recording`] transport saw, shared with the test.
pub type ExchangeLog = Arc<Mutex<Vec<Exchange>>>;

/// A transport that forwards to `inner` and records every exchange: method, path, status and
/// Prism's `sl-violations` header.
#[derive(Debug)]
pub struct Recording<T> {
    inner: T,
    log: ExchangeLog,
}

impl<T> Recording<T> {
    /// Wraps `inner`, recording into `log`.
    pub fn new(inner: T, log: ExchangeLog) -> Self {
        Self { inner, log }
    }
}

fn record<B>(
    log: &ExchangeLog,
    method: http::Method,
    uri: &http::Uri,
    result: &Result<http::Response<B>, TransportError>,
) {
    let (status, violations) = match result {
        Ok(r) => (
            Some(r.status().as_u16()),
            r.headers().get("sl-violations").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        ),
        Err(_) => (None, None),
    };
    let exchange = Exchange {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        status,
        violations,
    };
    log.lock().unwrap_or_else(|e| e.into_inner()).push(exchange);
}

impl BlockingTransport for Recording<hotdata_ureq::UreqTransport> {
    fn send(
        &self,
        request: HttpRequest,
        options: &SendOptions,
    ) -> Result<http::Response<BlockingBody>, TransportError> {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let result = self.inner.send(request, options);
        record(&self.log, method, &uri, &result);
        result
    }
}

impl AsyncTransport for Recording<hotdata_reqwest::ReqwestTransport> {
    fn send<'a>(
        &'a self,
        request: HttpRequest,
        options: &'a SendOptions,
    ) -> BoxFuture<'a, Result<http::Response<AsyncBody>, TransportError>> {
        Box::pin(async move {
            let (method, uri) = (request.method().clone(), request.uri().clone());
            let result = self.inner.send(request, options).await;
            record(&self.log, method, &uri, &result);
            result
        })
    }
}

/// A blocking ureq client whose exchanges are recorded into `log`.
pub fn recording_blocking(config: Config, log: ExchangeLog) -> BlockingClient {
    let transport = Recording::new(hotdata_ureq::UreqTransport::new(config.connect_timeout), log);
    BlockingClient::new(config, Arc::new(transport), Arc::new(hotdata_ureq::StdRuntime::new()), "ureq")
}

/// An async reqwest client whose exchanges are recorded into `log`.
pub fn recording_async(config: Config, log: ExchangeLog) -> AsyncClient {
    let transport = Recording::new(hotdata_reqwest::ReqwestTransport::new(config.connect_timeout), log);
    AsyncClient::new(config, Arc::new(transport), Arc::new(hotdata_reqwest::TokioRuntime::new()), "reqwest")
}

/// The operation (of [`hotdata_core::ops::ALL`]) a request is for: the one whose method
/// matches and whose path template matches with the most literal segments (so
/// `/v1/databases/count` is `count_databases`, not `get_database`).
pub fn operation_of(method: &http::Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    hotdata_core::ops::ALL
        .iter()
        .filter(|op| op.method == *method)
        .filter_map(|op| {
            let template: Vec<&str> = op.path.split('/').collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (t, s) in template.iter().zip(&segments) {
                if t.starts_with('{') && t.ends_with('}') {
                    if s.is_empty() {
                        return None;
                    }
                } else if t == s {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, op.id))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, id)| id)
}
