//! The transport seam: what a backend implements to move bytes.
//!
//! A backend turns an [`HttpRequest`] into an HTTP exchange and hands back the response head
//! with its body as a stream of chunks. It owns sockets, TLS, pools and the connect timeout;
//! it does not retry, authenticate, decode JSON or interpret status codes: the core does.
//!
//! Two traits, one per world: [`BlockingTransport`] (for example over ureq) and
//! [`AsyncTransport`] (reqwest, browser `fetch`). Futures and bodies are `Send` off wasm and
//! not on wasm, chosen by target through [`MaybeSend`], never by a Cargo feature.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use crate::body::{AsyncBody, BlockingBody, RequestBody};

pub(crate) mod error;
mod redact;

pub use error::{BoxError, TransportError, TransportErrorKind};
pub use redact::redact_url;

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

/// Per-request settings the transport must honour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// Deadline for the whole exchange, from sending the request to the end of the body;
    /// with [`SendOptions::body_idle_timeout`] set, from sending the request to the response
    /// head only. `None` means no limit beyond the transport's own.
    pub timeout: Option<Duration>,
    /// When set, the exchange has two bounds instead of one: [`SendOptions::timeout`] until
    /// the response head has arrived, and then, for the body, only this idle timeout: the
    /// body fails when no byte of it arrives for this long (the wait for each read of the
    /// socket, not the time the caller takes between reads), however long the whole body
    /// takes. A body that stalls fails with [`TransportErrorKind::Timeout`]. `None` (the
    /// default): `timeout` covers the body too.
    ///
    /// The client sets it on calls whose body is handed to the caller as a stream (result
    /// downloads, Arrow results and Arrow query answers: `Call::send_streaming`), so that a
    /// large body read at a healthy rate is never cut by the whole-request timeout; calls
    /// whose body it reads itself (JSON answers) and storage PUTs (their size-based
    /// deadline) keep the total. A transport that cannot tell the head from the body may
    /// ignore it and keep `timeout` for the whole exchange: the safe side.
    pub body_idle_timeout: Option<Duration>,
    /// A connect timeout for this request, overriding the transport's own when set (storage
    /// uploads use 30 s). A transport that cannot set it per request keeps its own.
    pub connect_timeout: Option<Duration>,
    /// The request goes to object storage, not to the API: a part PUT to a presigned URL.
    /// The transport must send it with exactly the headers the request carries (plus `Host`
    /// and the body's framing): none of the defaults of an HTTP client a caller brought
    /// (`Authorization`, `Cookie`, `User-Agent`, `Accept`, `Accept-Encoding`, headers its
    /// middleware adds) may reach storage. A transport over a caller's client sends these
    /// through a client of its own (each backend says which of the caller's settings it
    /// keeps). The upload machine sets it on every storage request.
    pub storage: bool,
    /// Ask for the answer compressed and decode it. When set, the transport sends
    /// `Accept-Encoding: gzip, deflate` (unless the request carries an `Accept-Encoding`
    /// already) and hands back a `gzip` or `deflate` (zlib) answer decoded, with
    /// `Content-Encoding` and `Content-Length` removed from the head it returns (they
    /// describe the bytes on the wire, not the body handed on); an answer in another coding
    /// is handed back as it arrived. When unset, the transport adds no `Accept-Encoding` of
    /// its own and passes the body through as it arrived, `Content-Encoding` included,
    /// whatever coding the server chose: the core then sees what was sent and says so if it
    /// cannot use it.
    ///
    /// The client sets it on calls whose answer it reads whole (JSON), the bulk of the
    /// traffic and the part that compresses well; it leaves it unset on storage requests
    /// (storage gets exactly the core's headers), on answers handed to the caller as a
    /// stream (result downloads, Arrow results and queries: written out or decoded as
    /// stored; Arrow batches may be compressed already) and on any request whose endpoint
    /// names its own `Accept-Encoding`. Default: unset.
    ///
    /// A transport may ignore it and ask for nothing: then nothing is compressed and every
    /// answer arrives as is, which is always correct, only larger. The browser's `fetch`
    /// cannot honour either side (it negotiates and decodes content codings itself; a page
    /// may not set `Accept-Encoding`): its bodies arrive decoded, so `Content-Encoding` is
    /// dropped from the head it returns.
    pub decompress: bool,
}

impl SendOptions {
    /// Options with the given whole-request timeout.
    pub fn with_timeout(timeout: Option<Duration>) -> Self {
        Self { timeout, connect_timeout: None, body_idle_timeout: None, storage: false, decompress: false }
    }

    /// These options with the body bounded by an idle timeout once the head has arrived
    /// ([`SendOptions::body_idle_timeout`]); `None` leaves the whole-request timeout over
    /// the body.
    #[must_use]
    pub fn with_body_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.body_idle_timeout = idle;
        self
    }

    /// These options, for a request to object storage ([`SendOptions::storage`]).
    #[must_use]
    pub fn for_storage(mut self) -> Self {
        self.storage = true;
        self
    }

    /// These options asking for a compressed answer, decoded by the transport, or not
    /// ([`SendOptions::decompress`]).
    #[must_use]
    pub fn with_decompress(mut self, decompress: bool) -> Self {
        self.decompress = decompress;
        self
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

/// Reads a whole blocking body into one buffer.
pub(crate) fn collect_blocking(body: BlockingBody) -> Result<Bytes, TransportError> {
    let mut chunks = Vec::new();
    for chunk in body {
        chunks.push(chunk?);
    }
    Ok(crate::body::concat(chunks))
}
