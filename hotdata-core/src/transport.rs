//! The transport seam: what a backend implements to move bytes.
//!
//! A backend turns an [`HttpRequest`] into an HTTP exchange and hands back the response head
//! with its body as a stream of chunks. It owns sockets, TLS, pools and the connect timeout;
//! it does not retry, authenticate, decode JSON or interpret status codes: the core does.
//!
//! Two traits, one per world: [`BlockingTransport`] (for example over ureq) and
//! [`AsyncTransport`] (reqwest, browser `fetch`). Futures and bodies are `Send` off wasm and
//! not on wasm, chosen by target through [`MaybeSend`], never by a Cargo feature.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::body::{AsyncBody, BlockingBody, RequestBody};

/// A request as the core hands it to a transport.
pub type HttpRequest = http::Request<RequestBody>;

/// `Send` off wasm; no bound on `wasm32` (browser futures hold `JsValue`s, which are not `Send`).
#[cfg(not(target_family = "wasm"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_family = "wasm"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` off wasm; no bound on `wasm32` (browser futures hold `JsValue`s, which are not `Send`).
#[cfg(target_family = "wasm")]
pub trait MaybeSend {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` off wasm; no bound on `wasm32`.
#[cfg(not(target_family = "wasm"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_family = "wasm"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` off wasm; no bound on `wasm32`.
#[cfg(target_family = "wasm")]
pub trait MaybeSync {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> MaybeSync for T {}

/// A boxed future, `Send` except on wasm.
#[cfg(not(target_family = "wasm"))]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed future, `Send` except on wasm.
#[cfg(target_family = "wasm")]
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A response extension saying its headers were filtered before the transport saw them.
///
/// A browser shows a page only the headers a cross-origin server lists in
/// `Access-Control-Expose-Headers` (CORS). A transport that knows this happened inserts this
/// marker into the response's [extensions](http::Response::extensions_mut); the core then
/// reports a header it needs but cannot see (a storage `ETag`) as hidden rather than absent
/// ([`UploadErrorKind::EtagNotExposed`](crate::upload::UploadErrorKind::EtagNotExposed)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorsFilteredHeaders;

/// A boxed error that can cross threads.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Per-request settings the transport must honour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// Deadline for the whole exchange, from sending the request to the end of the body.
    /// `None` means no limit beyond the transport's own.
    pub timeout: Option<Duration>,
    /// A connect timeout for this request, overriding the transport's own when set (storage
    /// uploads use 30 s). A transport that cannot set it per request keeps its own.
    pub connect_timeout: Option<Duration>,
}

impl SendOptions {
    /// Options with the given whole-request timeout.
    pub fn with_timeout(timeout: Option<Duration>) -> Self {
        Self { timeout, connect_timeout: None }
    }
}

/// A blocking HTTP transport.
pub trait BlockingTransport: Send + Sync {
    /// Sends one request and returns the response head with a streaming body.
    ///
    /// Any HTTP status is a success here; only failures to complete the exchange are errors,
    /// classified by [`TransportErrorKind`] so that the core can decide whether to retry.
    fn send(
        &self,
        request: HttpRequest,
        options: &SendOptions,
    ) -> Result<http::Response<BlockingBody>, TransportError>;

    /// Whether this transport can send a [`RequestBody::Streaming`] body (true by default).
    /// When it cannot, the core never hands it one: upload parts go from memory (progress
    /// then moves per stored part) and the legacy streamed upload is refused with a clear
    /// error.
    fn supports_streaming_bodies(&self) -> bool {
        true
    }
}

/// An async HTTP transport.
pub trait AsyncTransport: MaybeSend + MaybeSync {
    /// Sends one request and returns the response head with a streaming body.
    ///
    /// Any HTTP status is a success here; only failures to complete the exchange are errors,
    /// classified by [`TransportErrorKind`] so that the core can decide whether to retry.
    fn send<'a>(
        &'a self,
        request: HttpRequest,
        options: &'a SendOptions,
    ) -> BoxFuture<'a, Result<http::Response<AsyncBody>, TransportError>>;

    /// Whether this transport can send a [`RequestBody::Streaming`] body (true by default;
    /// the browser's `fetch` cannot). When it cannot, the core never hands it one: upload
    /// parts go from memory (progress then moves per stored part) and the legacy streamed
    /// upload is refused with a clear error.
    fn supports_streaming_bodies(&self) -> bool {
        true
    }
}

/// Where an exchange failed, which decides whether it may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made (DNS, refused, TLS handshake): the request was never sent.
    Connect,
    /// The connection failed while the request was being written, before the server could
    /// have received all of it.
    Send,
    /// The request was sent but the connection failed before any response arrived (reset,
    /// closed): the server may have received and acted on it.
    NoResponse,
    /// The exchange did not finish in time; the server may have received the request.
    Timeout,
    /// The response head arrived but reading its body failed.
    Body,
    /// The request could not be built or was refused locally (invalid URL, header, ...).
    Request,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// True when the request provably never reached the server.
    pub fn never_sent(self) -> bool {
        matches!(self, Self::Connect | Self::Send | Self::Request)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connection failed",
            Self::Send => "sending the request failed",
            Self::NoResponse => "connection closed before any response",
            Self::Timeout => "timed out",
            Self::Body => "reading the response body failed",
            Self::Request => "invalid request",
            Self::Other => "transport error",
        }
    }
}

/// A failure reported by a transport.
pub struct TransportError {
    kind: TransportErrorKind,
    source: Option<BoxError>,
}

impl TransportError {
    /// A transport error of this kind, caused by `source`.
    pub fn new(kind: TransportErrorKind, source: impl Into<BoxError>) -> Self {
        Self { kind, source: Some(source.into()) }
    }

    /// A transport error of this kind with no underlying cause.
    pub fn from_kind(kind: TransportErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// Where the exchange failed.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Classifies an I/O error by its kind: resets and closes before a response are
    /// [`TransportErrorKind::NoResponse`], refusals are [`TransportErrorKind::Connect`],
    /// timeouts are [`TransportErrorKind::Timeout`]. Backends use it on the `io::Error`s
    /// found in their error chains.
    pub fn classify_io(error: &std::io::Error) -> TransportErrorKind {
        use std::io::ErrorKind as K;
        match error.kind() {
            K::ConnectionRefused
            | K::NotFound
            | K::AddrNotAvailable
            | K::HostUnreachable
            | K::NetworkUnreachable => TransportErrorKind::Connect,
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected => TransportErrorKind::NoResponse,
            K::TimedOut | K::WouldBlock => TransportErrorKind::Timeout,
            _ => TransportErrorKind::Other,
        }
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError").field("kind", &self.kind).field("source", &self.source).finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// Reads a whole blocking body into one buffer.
pub(crate) fn collect_blocking(body: BlockingBody) -> Result<Bytes, TransportError> {
    let mut chunks = Vec::new();
    for chunk in body {
        chunks.push(chunk?);
    }
    Ok(concat(chunks))
}

pub(crate) fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in &chunks {
                out.extend_from_slice(c);
            }
            Bytes::from(out)
        }
    }
}
