//! # hotdata-wasm: the Hotdata SDK in the browser
//!
//! A thin backend for [`hotdata_core`] on `wasm32-unknown-unknown`: [`FetchTransport`]
//! sends requests with the global `fetch` (so it works in pages, workers and Node), reads
//! response bodies chunk by chunk from their `ReadableStream` (Arrow results decode batch by
//! batch as they arrive), and enforces timeouts and cancellation with an `AbortController`:
//! dropping a call aborts its fetch. A streamed answer (a download, an Arrow result or
//! query) is aborted when its head takes longer than the call's timeout, then only when a
//! read of its body waits longer than the idle timeout (`Config::body_idle_timeout`, re-armed
//! for every read); any other request when the whole exchange takes longer than its
//! timeout. [`BrowserRuntime`] reads `performance.now()` and
//! `Date.now()` and sleeps with `setTimeout`. Everything else (auth, retries, decoding) is
//! the core's, exactly as on native backends.
//!
//! ```ignore
//! let client = hotdata_wasm::client(hotdata_core::Config::new(key).with_workspace_id(ws));
//! let dbs = client.databases().list().await?;
//! ```
//!
//! Uploads read a `Blob` or `File` part by part with `Blob.slice` ([`BlobSource`]): only the
//! parts in flight are copied into wasm memory. Object storage must expose the `ETag`
//! header to the page (its CORS `ExposeHeaders`); when it does not, the upload fails with
//! [`UploadErrorKind::EtagNotExposed`]
//! instead of retrying.
//!
//! ```ignore
//! let file: web_sys::File = input.files().unwrap().get(0).unwrap();
//! // Sent with the file's name and type (or, without a type, the one its name implies).
//! let upload = client.upload_file(hotdata_wasm::BlobSource::from(file), UploadOptions::new()).await?;
//! ```
//!
//! A path is no source here (the browser has no files): uploading one fails with
//! [`UploadErrorKind::SourceIo`] saying so.
//!
//! Browser specifics: the API's CORS rules decide which response headers a page can read;
//! credentials mode, cache mode and extra headers can be set per request with
//! [`FetchTransport::with_request_init`]. There is no separate connect timeout in `fetch`:
//! the whole-request timeout covers connecting.
//!
//! **At most once.** `fetch` rejects every network failure with the same opaque
//! `TypeError`, whether the request never left (refused, DNS, CORS) or its answer was lost;
//! nothing proves it unsent, so it is a `NoResponse` failure: the SDK never sends finalize
//! (or any at-most-once call) again after one, and an upload whose finalize answer was lost
//! fails with its resume state marked "may have arrived". One thing no page controls: the
//! browser itself resends a request, whatever its method, whose *reused* keep-alive
//! connection dropped before any answer (Chromium does). A finalize resent that way is
//! answered "already finalized", which the SDK reports as
//! [`UploadErrorKind::AlreadyFinalized`]:
//! the upload is finalized.
#![cfg(target_arch = "wasm32")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
// The core's client holds its transport in an `Arc` on every target; in the browser the
// transport is `!Send` (it owns JS handles) and there is only one thread.
#![allow(clippy::arc_with_non_send_sync)]

use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_core::Stream;
use hotdata_core::upload::AsyncRangeSource;
use hotdata_core::{
    AsyncBody, AsyncRuntime, AsyncTransport, BoxFuture, CorsFilteredHeaders, HttpRequest, SendOptions,
    TransportError, TransportErrorKind,
};
use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, ReadableStreamDefaultReader, RequestInit};

pub use hotdata_core;
/// The everyday types at the crate root (clients, `Config`, `Error`, `QueryRequest`,
/// `UploadOptions`, result types and, with `arrow`, `arrow_array` and `arrow_schema`): see
/// [`hotdata_core::prelude`].
#[doc(inline)]
pub use hotdata_core::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &web_sys::Request) -> Promise;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, timeout: i32) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// An async client for `config`, over the browser's `fetch`.
pub fn client(config: Config) -> AsyncClient {
    AsyncClient::new(config, Arc::new(FetchTransport::new()), Arc::new(BrowserRuntime::new()), "wasm")
}

type InitHook = Rc<dyn Fn(&RequestInit)>;

/// An [`AsyncTransport`] over the global `fetch`.
///
/// [`SendOptions::decompress`] changes nothing here: the browser negotiates content codings
/// itself (a page may not set `Accept-Encoding`) and hands over every body decoded, so
/// JSON answers come compressed whenever the server offers it, and the head returned has no
/// `Content-Encoding` (the body is not in one any more).
#[derive(Clone, Default)]
pub struct FetchTransport {
    hook: Option<InitHook>,
}

impl std::fmt::Debug for FetchTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchTransport").field("hook", &self.hook.is_some()).finish()
    }
}

impl FetchTransport {
    /// A transport with default request settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `hook` on every `RequestInit` before sending, to set the credentials mode, the
    /// cache mode or anything else `fetch` takes.
    pub fn with_request_init(mut self, hook: impl Fn(&RequestInit) + 'static) -> Self {
        self.hook = Some(Rc::new(hook));
        self
    }
}

fn js_error(kind: TransportErrorKind, what: &str, value: JsValue) -> TransportError {
    let text = value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"));
    TransportError::new(kind, format!("{what}: {text}"))
}

/// Aborts the fetch (and clears its timer) when dropped: dropping a call cancels it.
///
/// Its timer aborts the fetch when it fires: set once for the whole request, or, for a body
/// with an idle timeout ([`SendOptions::body_idle_timeout`]), once until the head and then
/// again for every read of the body that waits for bytes.
struct AbortGuard {
    controller: AbortController,
    timer: Option<JsValue>,
    on_timeout: Option<Closure<dyn FnMut()>>,
    timed_out: Rc<std::cell::Cell<bool>>,
    finished: bool,
}

impl AbortGuard {
    fn new(timeout: Option<Duration>) -> Result<Self, TransportError> {
        let controller = AbortController::new()
            .map_err(|e| js_error(TransportErrorKind::Request, "AbortController", e))?;
        let timed_out = Rc::new(std::cell::Cell::new(false));
        let mut guard = Self { controller, timer: None, on_timeout: None, timed_out, finished: false };
        if let Some(t) = timeout {
            guard.arm(t);
        }
        Ok(guard)
    }

    /// Aborts the fetch, as timed out, `after` from now unless cleared or armed again first.
    fn arm(&mut self, after: Duration) {
        self.clear();
        let on_timeout = self.on_timeout.get_or_insert_with(|| {
            let c = self.controller.clone();
            let flag = self.timed_out.clone();
            Closure::<dyn FnMut()>::new(move || {
                flag.set(true);
                c.abort();
            })
        });
        let ms = after.as_millis().min(i32::MAX as u128) as i32;
        self.timer = Some(set_timeout(on_timeout.as_ref().unchecked_ref(), ms));
    }

    /// Stops the timer.
    fn clear(&mut self) {
        if let Some(t) = self.timer.take() {
            clear_timeout(&t);
        }
    }

    fn kind(&self, otherwise: TransportErrorKind) -> TransportErrorKind {
        if self.timed_out.get() { TransportErrorKind::Timeout } else { otherwise }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        self.clear();
        if !self.finished {
            self.controller.abort();
        }
    }
}

impl AsyncTransport for FetchTransport {
    /// `fetch` streams request bodies only over HTTP/2 in some browsers: never here.
    fn supports_streaming_bodies(&self) -> bool {
        false
    }

    fn send<'a>(
        &'a self,
        request: HttpRequest,
        options: &'a SendOptions,
    ) -> BoxFuture<'a, Result<http::Response<AsyncBody>, TransportError>> {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut guard = AbortGuard::new(options.timeout)?;
            let init = RequestInit::new();
            init.set_method(parts.method.as_str());
            init.set_signal(Some(&guard.controller.signal()));
            let headers = Headers::new().map_err(|e| js_error(TransportErrorKind::Request, "Headers", e))?;
            for (name, value) in &parts.headers {
                let value =
                    value.to_str().map_err(|e| TransportError::new(TransportErrorKind::Request, e))?;
                headers
                    .append(name.as_str(), value)
                    .map_err(|e| js_error(TransportErrorKind::Request, "header", e))?;
            }
            init.set_headers(&headers);
            if body.as_streaming().is_some() {
                return Err(TransportError::new(
                    TransportErrorKind::Request,
                    "streamed request bodies are not supported by the fetch transport",
                ));
            }
            if !body.is_empty() {
                init.set_body(&Uint8Array::from(body.as_bytes()).into());
            }
            if let Some(hook) = &self.hook {
                hook(&init);
            }
            let url = parts.uri.to_string();
            let request = web_sys::Request::new_with_str_and_init(&url, &init)
                .map_err(|e| js_error(TransportErrorKind::Request, "Request", e))?;
            // fetch rejects with one opaque TypeError for every network failure: refused,
            // DNS, CORS, but also a connection lost after the request was sent. Nothing
            // proves it never left, so it is `NoResponse` (it may have been processed): a
            // finalize is never sent again on its own, and only idempotent calls retry it.
            // (Our own abort at the deadline is `Timeout`.)
            let response = JsFuture::from(global_fetch(&request))
                .await
                .map_err(|e| js_error(guard.kind(TransportErrorKind::NoResponse), "fetch", e))?;
            let response: web_sys::Response =
                response.dyn_into().map_err(|e| js_error(TransportErrorKind::Other, "Response", e))?;
            let mut head = http::Response::builder().status(response.status());
            if response.type_() == web_sys::ResponseType::Cors {
                // Cross-origin: the page sees only the headers the server exposed.
                head = head.extension(CorsFilteredHeaders);
            }
            if let Some(h) = head.headers_mut() {
                let iter = js_sys::try_iter(&response.headers())
                    .map_err(|e| js_error(TransportErrorKind::Other, "headers", e))?;
                for entry in iter.into_iter().flatten().flatten() {
                    let pair: js_sys::Array = entry.unchecked_into();
                    let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
                        continue;
                    };
                    // fetch has already undone any content coding (gzip, br, ...): the body
                    // handed on is the plain one, so its coding is not reported with it.
                    if k.eq_ignore_ascii_case("content-encoding") {
                        continue;
                    }
                    if let (Ok(k), Ok(v)) =
                        (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(&v))
                    {
                        h.append(k, v);
                    }
                }
            }
            let reader = match response.body() {
                Some(stream) => Some(
                    stream
                        .get_reader()
                        .dyn_into::<ReadableStreamDefaultReader>()
                        .map_err(|e| js_error(TransportErrorKind::Other, "reader", e.into()))?,
                ),
                None => None,
            };
            // A body with an idle timeout is no longer under the request's timeout: its timer
            // runs only while a read waits (see `Chunks`).
            let idle = options.body_idle_timeout;
            if idle.is_some() {
                guard.clear();
            }
            let body = AsyncBody::from_stream(Chunks { reader, pending: None, guard, idle });
            head.body(body).map_err(|e| TransportError::new(TransportErrorKind::Other, e))
        })
    }
}

/// A response body read from its `ReadableStream`, one chunk per `read()`.
struct Chunks {
    reader: Option<ReadableStreamDefaultReader>,
    pending: Option<JsFuture>,
    guard: AbortGuard,
    /// The body's idle timeout: armed for every `read()` until it settles.
    idle: Option<Duration>,
}

impl Stream for Chunks {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let Some(reader) = self.reader.clone() else { return Poll::Ready(None) };
            if self.pending.is_none() {
                self.pending = Some(JsFuture::from(reader.read()));
                if let Some(idle) = self.idle {
                    self.guard.arm(idle);
                }
            }
            let Some(fut) = self.pending.as_mut() else { return Poll::Ready(None) };
            let result = match Pin::new(fut).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            };
            self.pending = None;
            if self.idle.is_some() {
                self.guard.clear();
            }
            let chunk = match result {
                Ok(chunk) => chunk,
                Err(e) => {
                    self.reader = None;
                    let kind = self.guard.kind(TransportErrorKind::Body);
                    return Poll::Ready(Some(Err(js_error(kind, "reading the body", e))));
                }
            };
            let done =
                Reflect::get(&chunk, &JsValue::from_str("done")).map(|d| d.is_truthy()).unwrap_or(true);
            if done {
                self.reader = None;
                self.guard.finished = true;
                return Poll::Ready(None);
            }
            let value = Reflect::get(&chunk, &JsValue::from_str("value")).unwrap_or(JsValue::UNDEFINED);
            let Some(bytes) = value.dyn_ref::<Uint8Array>() else { continue };
            if bytes.length() == 0 {
                continue;
            }
            return Poll::Ready(Some(Ok(Bytes::from(bytes.to_vec()))));
        }
    }
}

use std::future::Future;

/// Time and sleep in the browser (or Node): `performance.now()`, `Date.now()`, `setTimeout`.
#[derive(Debug, Clone, Copy)]
pub struct BrowserRuntime {
    origin_ms: f64,
}

fn performance_now() -> f64 {
    let global = js_sys::global();
    Reflect::get(&global, &JsValue::from_str("performance"))
        .ok()
        .and_then(|p| Reflect::get(&p, &JsValue::from_str("now")).ok().map(|now| (p, now)))
        .and_then(|(p, now)| now.dyn_into::<js_sys::Function>().ok().and_then(|f| f.call0(&p).ok()))
        .and_then(|v| v.as_f64())
        .unwrap_or_else(js_sys::Date::now)
}

impl BrowserRuntime {
    /// A runtime whose monotonic time starts now.
    pub fn new() -> Self {
        Self { origin_ms: performance_now() }
    }
}

impl Default for BrowserRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl AsyncRuntime for BrowserRuntime {
    fn now(&self) -> Duration {
        Duration::from_secs_f64(((performance_now() - self.origin_ms) / 1000.0).max(0.0))
    }

    fn wall_clock(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64((js_sys::Date::now() / 1000.0).max(0.0))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let ms = duration.as_millis().min(i32::MAX as u128) as i32;
        let promise = Promise::new(&mut |resolve, _| {
            set_timeout(&resolve, ms);
        });
        Box::pin(async move {
            let _ = JsFuture::from(promise).await;
        })
    }
}

/// An upload source over a browser `Blob` or `File`, read part by part with `Blob.slice`:
/// only the parts in flight are copied into wasm memory, never the whole file.
///
/// `BlobSource::from(file)` then
/// [`AsyncClient::upload_file`](hotdata_core::Client::upload_file): the upload is sent with
/// the file's name and its type, or without one the type its name implies
/// ([`content_type_for`](hotdata_core::upload::content_type_for)), unless the options set
/// them. (`From<File>` for the core's source type itself is not possible: neither type is
/// this crate's.)
#[derive(Debug, Clone)]
pub struct BlobSource {
    blob: web_sys::Blob,
}

impl BlobSource {
    /// A source reading `blob` (a `File` is a `Blob`: see the `From` impls).
    pub fn new(blob: web_sys::Blob) -> Self {
        Self { blob }
    }

    /// The blob's MIME type, when the browser knows one; otherwise, for a `File`, the one its
    /// name's extension implies ([`content_type_for`](hotdata_core::upload::content_type_for):
    /// browsers give `.parquet` and `.ndjson` files no type).
    pub fn content_type(&self) -> Option<String> {
        Some(self.blob.type_()).filter(|t| !t.is_empty()).or_else(|| {
            let name = self.file_name()?;
            hotdata_core::upload::content_type_for(name).map(str::to_owned)
        })
    }

    /// The file name, when the blob is a `File`.
    pub fn file_name(&self) -> Option<String> {
        self.blob.dyn_ref::<web_sys::File>().map(|f| f.name()).filter(|n| !n.is_empty())
    }

    /// Upload options carrying the blob's content type and file name (when known). Not
    /// needed: the upload sends them without these options.
    pub fn upload_options(&self) -> UploadOptions {
        let mut options = UploadOptions::new();
        if let Some(t) = self.content_type() {
            options = options.content_type(t);
        }
        if let Some(n) = self.file_name() {
            options = options.filename(n);
        }
        options
    }
}

impl From<web_sys::Blob> for BlobSource {
    fn from(blob: web_sys::Blob) -> Self {
        Self::new(blob)
    }
}

impl From<web_sys::File> for BlobSource {
    fn from(file: web_sys::File) -> Self {
        Self::new(file.into())
    }
}

impl From<BlobSource> for AsyncUploadSource {
    fn from(source: BlobSource) -> Self {
        AsyncUploadSource::ranged(source)
    }
}

fn io_error(what: &str, value: JsValue) -> std::io::Error {
    let e = js_error(TransportErrorKind::Other, what, value);
    std::io::Error::other(e.to_string())
}

impl AsyncRangeSource for BlobSource {
    fn len(&self) -> u64 {
        // A Blob's size is an integral number of bytes below 2^53.
        self.blob.size().max(0.0) as u64
    }

    fn file_name(&self) -> Option<String> {
        BlobSource::file_name(self)
    }

    fn content_type(&self) -> Option<String> {
        BlobSource::content_type(self)
    }

    fn read_range(&self, offset: u64, len: u64) -> BoxFuture<'_, std::io::Result<Bytes>> {
        let slice = self.blob.slice_with_f64_and_f64(offset as f64, offset.saturating_add(len) as f64);
        Box::pin(async move {
            let slice = slice.map_err(|e| io_error("Blob.slice", e))?;
            let buffer = JsFuture::from(slice.array_buffer())
                .await
                .map_err(|e| io_error("reading the Blob (was the file changed or removed?)", e))?;
            Ok(Bytes::from(Uint8Array::new(&buffer).to_vec()))
        })
    }
}
