//! # hotdata-reqwest: the async Hotdata client over reqwest
//!
//! A thin backend for [`hotdata_core`]: [`ReqwestTransport`] moves bytes with reqwest
//! (rustls with ring, given to reqwest explicitly: no process-wide provider is installed or
//! used; no OpenSSL) and [`TokioRuntime`] supplies the clock and
//! `tokio::time::sleep`. Everything else (auth, retries, timeouts, decoding) is the core's.
//! Calls are futures: `.await` them on a tokio runtime. Files are uploaded by path
//! (`client.upload_file("events.csv", options)`), read part by part on tokio's blocking
//! pool ([`TokioRuntime`]'s `spawn_blocking`).
//!
//! ```no_run
//! # async fn run() -> Result<(), hotdata_core::Error> {
//! let client = hotdata_reqwest::from_env(); // HOTDATA_API_KEY, HOTDATA_WORKSPACE_ID, HOTDATA_API_URL
//! let db = client.databases().get("db_123").await?;
//! println!("{:?}", db.name);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use hotdata_core::{
    AsyncBody, AsyncRuntime, AsyncTransport, BoxError, BoxFuture, HttpRequest, SendOptions, TransportError,
    TransportErrorKind,
};

pub use hotdata_core;

mod url;
/// The everyday types at the crate root (clients, `Config`, `Error`, `QueryRequest`,
/// `UploadOptions`, result types and, with `arrow`, `arrow_array` and `arrow_schema`): see
/// [`hotdata_core::prelude`].
#[doc(inline)]
pub use hotdata_core::prelude::*;

/// An async client for `config`, over reqwest. Never panics: a reqwest client that cannot be
/// built fails each request instead (see [`ReqwestTransport::new`]).
pub fn client(config: Config) -> AsyncClient {
    let transport = ReqwestTransport::new(config.connect_timeout);
    AsyncClient::new(config, Arc::new(transport), Arc::new(TokioRuntime::new()), "reqwest")
}

/// An async client configured from `HOTDATA_API_KEY`, `HOTDATA_WORKSPACE_ID` and
/// `HOTDATA_API_URL`.
pub fn from_env() -> AsyncClient {
    client(Config::from_env())
}

/// A file uploaded by path from the async client: its length is taken when it is opened (so
/// the session is sized and parts can go in parallel) and each part is read by range, on
/// tokio's blocking pool, just before it is sent: never the whole file in memory. Its name,
/// and the content type its extension implies, are sent unless the options set them.
///
/// Deprecated: the core's path source does all of this on every async client, with no
/// backend type; pass the path itself.
///
/// ```no_run
/// # async fn run(client: hotdata_core::AsyncClient) -> Result<(), Box<dyn std::error::Error>> {
/// use hotdata_core::upload::UploadOptions;
/// // Instead of `FileSource::open("events.parquet")?`:
/// let done = client.upload_file("events.parquet", UploadOptions::new()).await?;
/// println!("{}", done.upload_id);
/// # Ok(()) }
/// ```
#[deprecated(
    since = "0.1.0",
    note = "pass the path to `upload_file` / `resume_upload` (`&str`, `String`, `&Path`, `PathBuf`): \
            the core reads it on tokio's blocking pool and sends its name and content type"
)]
#[derive(Debug, Clone)]
pub struct FileSource {
    path: std::path::PathBuf,
    file: Arc<std::fs::File>,
    len: u64,
}

#[allow(deprecated)]
impl FileSource {
    /// The file at `path`; fails if it cannot be opened or is not a file.
    pub fn open(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::File::open(&path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(std::io::Error::other(format!("{} is not a file", path.display())));
        }
        Ok(Self { path, file: Arc::new(file), len: meta.len() })
    }

    /// Upload options carrying the file's name. Not needed: the upload sends the name (and
    /// the content type its extension implies) without them.
    pub fn upload_options(&self) -> hotdata_core::upload::UploadOptions {
        let options = hotdata_core::upload::UploadOptions::new();
        match self.path.file_name() {
            Some(name) => options.filename(name.to_string_lossy()),
            None => options,
        }
    }
}

#[allow(deprecated)]
impl hotdata_core::upload::AsyncRangeSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn file_name(&self) -> Option<String> {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    fn read_range(&self, offset: u64, len: u64) -> BoxFuture<'_, std::io::Result<Bytes>> {
        let file = self.file.clone();
        Box::pin(async move {
            let read = move || hotdata_core::upload::read_file_range(&file, offset, len);
            tokio::task::spawn_blocking(read).await.map_err(std::io::Error::other)?
        })
    }
}

#[allow(deprecated)]
impl From<FileSource> for hotdata_core::upload::AsyncUploadSource {
    fn from(source: FileSource) -> Self {
        Self::ranged(source)
    }
}

/// An [`AsyncTransport`] over a [`reqwest::Client`].
///
/// reqwest sets the connect timeout and the decoding of compressed answers per client, not
/// per request: a request whose [`SendOptions::connect_timeout`] differs from the
/// transport's (storage PUTs ask for 30 s), or that must not be decoded (see below), goes
/// through another client built the same way with those settings, made on first use and
/// kept (each has its own connection pool, so streamed answers and storage PUTs do not
/// share connections with JSON calls).
///
/// Compression: a request marked [`SendOptions::decompress`] (the JSON answers the core
/// reads whole) is sent with `Accept-Encoding: gzip, deflate` and its answer decoded by
/// reqwest (feature `gzip`, on by default; without it nothing is asked for and nothing
/// decoded). Any other request (storage PUTs, result downloads, Arrow streams) goes through
/// a client with every decoder of reqwest's turned off, whatever features your build gives
/// reqwest: it gets no `Accept-Encoding` from reqwest and its body is handed on as it
/// arrived, `Content-Encoding` included.
///
/// TLS: rustls with ring and the platform's root certificates (rustls-platform-verifier,
/// as reqwest sets them up), handed to reqwest as a ready configuration (HTTP/1.1 by ALPN);
/// no process default provider is installed or read, so building a transport has no effect
/// on the rest of the process, and a provider installed elsewhere does not change it.
///
/// Storage requests ([`SendOptions::storage`]: part PUTs to presigned URLs) carry only the
/// headers the core set, plus `Host`, the body's framing, and the `Accept: */*` reqwest adds
/// to any request without one. Over a client you brought
/// ([`ReqwestTransport::with_client`]) they go through a client of the transport's own (see
/// there).
///
/// Timeouts: [`SendOptions::timeout`] is reqwest's per-request timeout, which runs to the
/// end of the body, unless the request has a [`SendOptions::body_idle_timeout`] (a streamed
/// answer: a download, an Arrow result or query). Then the timeout bounds the exchange until
/// the response head (a tokio timeout around it), and the body is bounded by an idle timer
/// instead: armed while a read of the body waits for bytes, disarmed by each chunk, so the
/// time the caller takes between reads does not count and a body of any length read at a
/// steady rate completes. A body idle for that long fails with
/// [`TransportErrorKind::Timeout`].
///
/// Building a reqwest client can fail (no usable TLS configuration, for example no root
/// certificate found on the platform). [`ReqwestTransport::new`] never panics for it: each
/// request then fails with a [`TransportErrorKind::Request`] error (never sent, never
/// retried) whose source says why. [`ReqwestTransport::try_new`] reports it at once.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    /// The client requests go through, or why it could not be built.
    client: Result<reqwest::Client, BuildFailed>,
    /// How `client` was built when it is the transport's own; `None` for a caller's client,
    /// whose settings cannot be read.
    own: Option<Settings>,
    /// The TLS configuration of the transport's own clients, made once (on first use over a
    /// caller's client: for its first storage request).
    tls: Arc<OnceLock<Result<rustls::ClientConfig, BuildFailed>>>,
    /// Clients of this transport's own by settings, made on first use: for requests asking
    /// for other settings than `client` has, and for storage requests when `client` is a
    /// caller's.
    others: Arc<std::sync::Mutex<Vec<(Settings, reqwest::Client)>>>,
    /// The origins of requests sent, parsed once each.
    origins: Arc<url::Origins>,
}

/// What tells the transport's own clients apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    connect_timeout: Option<Duration>,
    /// Asks for compressed answers and decodes them ([`SendOptions::decompress`]).
    decode: bool,
}

/// Whether this build decodes compressed answers (feature `gzip`).
const DECODES: bool = cfg!(feature = "gzip");

/// Why a reqwest client could not be built; every request through it reports this.
#[derive(Debug, Clone)]
struct BuildFailed(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for BuildFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the reqwest client could not be built")
    }
}

impl std::error::Error for BuildFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl BuildFailed {
    /// The transport error a request through the unbuilt client fails with: a local,
    /// permanent failure.
    fn to_transport_error(&self) -> TransportError {
        TransportError::new(TransportErrorKind::Request, self.clone())
    }
}

impl BuildFailed {
    fn new(e: impl Into<BoxError>) -> Self {
        Self(Arc::from(e.into()))
    }
}

/// The TLS configuration of this transport's own clients: rustls with ring, given to
/// reqwest explicitly (reqwest is built without a provider of its own and would otherwise
/// take the process default, or panic without one), TLS 1.2 and 1.3, and the platform's
/// root certificates through rustls-platform-verifier, as reqwest sets them up itself.
/// ALPN offers HTTP/1.1, the only version this crate's reqwest speaks.
fn tls_config() -> Result<rustls::ClientConfig, BuildFailed> {
    // rustls 0.23.48 deprecates ring's provider (it has no post-quantum key exchange). ring
    // is this crate's choice (no C toolchain beyond ring's own, builds wherever the SDK does),
    // so a newer rustls in a user's lock file must not turn the choice into a warning.
    #[allow(deprecated)]
    let ring = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(ring.clone()).map_err(BuildFailed::new)?;
    let mut config = rustls::ClientConfig::builder_with_provider(ring)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(BuildFailed::new)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client of this transport's own: `tls`, the connect timeout of `settings`, no
/// redirects, and reqwest's decoders of compressed answers on as `settings` says, every
/// other off whatever features the build gives reqwest.
fn builder(settings: Settings, tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(tls)
        .no_gzip()
        .no_deflate()
        .no_brotli()
        .no_zstd();
    #[cfg(feature = "gzip")]
    let builder = builder.gzip(settings.decode).deflate(settings.decode);
    match settings.connect_timeout {
        Some(t) => builder.connect_timeout(t),
        None => builder,
    }
}

/// A client of this transport's own, or why it could not be built.
fn build(
    settings: Settings,
    tls: &Result<rustls::ClientConfig, BuildFailed>,
) -> Result<reqwest::Client, BuildFailed> {
    let tls = tls.as_ref().map_err(BuildFailed::clone)?.clone();
    builder(settings, tls).build().map_err(BuildFailed::new)
}

impl ReqwestTransport {
    /// A transport with its own reqwest client: rustls with ring and the platform's root
    /// certificates, the given connect timeout, and no redirects. Nothing global is touched:
    /// no process default crypto provider is installed.
    ///
    /// Never panics: if the client cannot be built, every request fails with a
    /// [`TransportErrorKind::Request`] error saying why (use [`ReqwestTransport::try_new`]
    /// to find out here instead).
    pub fn new(connect_timeout: Option<Duration>) -> Self {
        let settings = Settings { connect_timeout, decode: DECODES };
        let tls = tls_config();
        Self {
            client: build(settings, &tls),
            own: Some(settings),
            tls: Arc::new(OnceLock::from(tls)),
            others: Arc::default(),
            origins: Arc::default(),
        }
    }

    /// Like [`ReqwestTransport::new`], but a client that cannot be built is an error here
    /// (its source says why: the TLS configuration, or reqwest's builder).
    pub fn try_new(connect_timeout: Option<Duration>) -> Result<Self, BoxError> {
        let transport = Self::new(connect_timeout);
        match &transport.client {
            Ok(_) => Ok(transport),
            Err(e) => Err(Box::new(e.clone())),
        }
    }

    /// A transport over a client you configured, for API requests. Redirects it follows and
    /// timeouts it applies add to the core's; its connect timeout applies to every API
    /// request (a per-request one cannot be honoured).
    ///
    /// Storage requests ([`SendOptions::storage`]) never go through it: its default headers
    /// (an `Authorization`, a cookie, its user agent) must not reach object storage, and a
    /// `reqwest::Client` cannot be asked for its settings. They go through a client of the
    /// transport's own, built as [`ReqwestTransport::new`] builds one (no redirects, the
    /// request's connect timeout, rustls with the platform's roots), so none of your
    /// client's settings apply to them: not its proxy (reqwest's own proxy settings from the
    /// environment, `HTTPS_PROXY` and the like, still do), nor its root certificates or
    /// client identity. Storage that only your settings reach needs a transport of your own.
    ///
    /// Compression over your client is your client's: [`SendOptions::decompress`] changes
    /// nothing for API requests. With reqwest's `gzip`/`deflate` features (this crate's
    /// `gzip` feature turns them on for the whole build) and your client not opting out, it
    /// asks for compressed answers on every request without an `Accept-Encoding` of its own
    /// and decodes them (result downloads and Arrow streams carry `Accept-Encoding: identity`,
    /// so they stay uncompressed); without, nothing is compressed.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self {
            client: Ok(client),
            own: None,
            tls: Arc::default(),
            others: Arc::default(),
            origins: Arc::default(),
        }
    }

    /// The client for a request sent with `options`, and whether it is one of the
    /// transport's own that decodes compressed answers; or why it cannot be had.
    fn client_for(&self, options: &SendOptions) -> Result<(reqwest::Client, bool), TransportError> {
        let client = self.client.as_ref().map_err(BuildFailed::to_transport_error)?;
        let wanted = match self.own {
            // A caller's client: as it is, except for storage, which it must not reach.
            None if options.storage => Settings { connect_timeout: options.connect_timeout, decode: false },
            None => return Ok((client.clone(), false)),
            Some(own) => {
                let wanted = Settings {
                    connect_timeout: options.connect_timeout.or(own.connect_timeout),
                    decode: DECODES && options.decompress,
                };
                if wanted == own {
                    return Ok((client.clone(), own.decode));
                }
                wanted
            }
        };
        let mut others = self.others.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = others.iter().find(|(s, _)| *s == wanted) {
            return Ok((c.clone(), wanted.decode));
        }
        let tls = self.tls.get_or_init(tls_config);
        let c = build(wanted, tls).map_err(|e| e.to_transport_error())?;
        others.push((wanted, c.clone()));
        Ok((c, wanted.decode))
    }
}

impl AsyncTransport for ReqwestTransport {
    /// Sends `request`. No error it returns, nor any error of its body, shows the URL's query
    /// (a presigned URL's signature) or user info: reqwest's errors carry the URL redacted
    /// ([`hotdata_core::transport::redact_url`]), and [`TransportError::redacting`] rewrites
    /// anything else that would show it.
    fn send<'a>(
        &'a self,
        request: HttpRequest,
        options: &'a SendOptions,
    ) -> BoxFuture<'a, Result<http::Response<AsyncBody>, TransportError>> {
        Box::pin(async move {
            // The URL is formatted for redaction only when there is an error to redact.
            let url = Arc::new(request.uri().clone());
            self.exchange(request, options, url.clone()).await.map_err(|e| e.redacting(&url.to_string()))
        })
    }
}

impl ReqwestTransport {
    /// One exchange, up to the response head; the body's chunks are read later, through
    /// [`Chunks`].
    async fn exchange(
        &self,
        request: HttpRequest,
        options: &SendOptions,
        url: Arc<http::Uri>,
    ) -> Result<http::Response<AsyncBody>, TransportError> {
        let (parts, body) = request.into_parts();
        let body = match body.as_streaming() {
            // A body read while it is sent (its length, when known, is in the headers).
            Some(streaming) => reqwest::Body::wrap_stream(streaming.take_stream().ok_or_else(|| {
                TransportError::new(TransportErrorKind::Request, "the streaming body was already sent")
            })?),
            None => match body {
                hotdata_core::RequestBody::Bytes(b) => reqwest::Body::from(b),
                _ => reqwest::Body::from(Bytes::new()),
            },
        };
        let (client, decodes) = self.client_for(options)?;
        let mut parts = parts;
        // Compressed answers, asked for in the same words as on ureq (reqwest's own would be
        // `gzip,deflate`) when the client decodes them.
        if decodes && !parts.headers.contains_key(http::header::ACCEPT_ENCODING) {
            parts
                .headers
                .insert(http::header::ACCEPT_ENCODING, http::HeaderValue::from_static("gzip, deflate"));
        }
        let mut request = match self.origins.url(&parts.uri) {
            Some(url) => {
                let mut request = reqwest::Request::new(parts.method, url);
                *request.headers_mut() = parts.headers;
                *request.version_mut() = parts.version;
                *request.body_mut() = Some(body);
                request
            }
            None => reqwest::Request::try_from(http::Request::from_parts(parts, body))
                .map_err(|e| TransportError::new(TransportErrorKind::Request, redact(e)))?,
        };
        let mut response = match options.body_idle_timeout {
            // reqwest's per-request timeout runs to the end of the body.
            None => {
                *request.timeout_mut() = options.timeout;
                client.execute(request).await
            }
            // The timeout bounds the exchange until the head only; the body is then bounded
            // by the idle timer of `Chunks`.
            Some(_) => match options.timeout {
                Some(t) => tokio::time::timeout(t, client.execute(request)).await.map_err(|_| {
                    TransportError::new(
                        TransportErrorKind::Timeout,
                        format!("no response head within {} ms", t.as_millis()),
                    )
                })?,
                None => client.execute(request).await,
            },
        }
        .map_err(|e| classify(e, false))?;
        let mut head = http::Response::builder().status(response.status()).version(response.version());
        if let Some(h) = head.headers_mut() {
            // Taken, not cloned: the body stream below needs nothing of the head.
            *h = std::mem::take(response.headers_mut());
        }
        let idle = options.body_idle_timeout.map(IdleTimer::new);
        let body =
            AsyncBody::from_stream(Chunks { stream: Some(Box::pin(response.bytes_stream())), url, idle });
        head.body(body).map_err(|e| TransportError::new(TransportErrorKind::Other, e))
    }
}

type ReqwestStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// A response body's chunks, their errors classified as body failures and redacted.
struct Chunks {
    /// `None` once the body was given up.
    stream: Option<ReqwestStream>,
    /// The request's URL, whose secrets no error may show.
    url: Arc<http::Uri>,
    /// The body's idle timeout ([`SendOptions::body_idle_timeout`]), when it has one.
    idle: Option<IdleTimer>,
}

impl Stream for Chunks {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(stream) = self.stream.as_mut() else { return Poll::Ready(None) };
        let polled = stream.as_mut().poll_next(cx);
        if let Some(idle) = self.idle.as_mut() {
            match polled {
                Poll::Pending => {
                    if let Some(e) = idle.poll_expired(cx) {
                        // The body is given up: nothing more is read from it.
                        self.stream = None;
                        return Poll::Ready(Some(Err(e.redacting(&self.url.to_string()))));
                    }
                }
                Poll::Ready(_) => idle.disarm(),
            }
        }
        polled.map(|c| c.map(|r| r.map_err(|e| classify(e, true).redacting(&self.url.to_string()))))
    }
}

/// About 30 years: as far as tokio's timers reach.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// The idle timeout of a body: armed when a read of the body finds nothing to read, and
/// disarmed by the next chunk (or the end). The time the caller takes between reads does
/// not count, only the time spent waiting for bytes (as ureq's per-read timeout).
struct IdleTimer {
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl IdleTimer {
    fn new(idle: Duration) -> Self {
        Self { idle, sleep: Box::pin(tokio::time::sleep(idle.min(FAR_FUTURE))), armed: false }
    }

    /// The body is waited for: arms the timer if it was not, and says whether it expired.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Option<TransportError> {
        if !self.armed {
            self.armed = true;
            let now = tokio::time::Instant::now();
            // An idle timeout too long to represent waits about as long as tokio's own.
            let deadline = now.checked_add(self.idle).unwrap_or(now + FAR_FUTURE);
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx).is_ready().then(|| {
            TransportError::new(
                TransportErrorKind::Timeout,
                format!("no byte of the body for {} ms (the body's idle timeout)", self.idle.as_millis()),
            )
        })
    }

    /// A chunk (or the end) arrived.
    fn disarm(&mut self) {
        self.armed = false;
    }
}

/// `e` with its URL redacted to scheme, host, port and path (reqwest's `Display` shows the
/// URL whole, a presigned URL's signature included).
fn redact(e: reqwest::Error) -> reqwest::Error {
    let Some(url) = e.url() else { return e };
    let redacted = hotdata_core::transport::redact_url(url.as_str());
    if redacted == url.as_str() {
        return e;
    }
    match reqwest::Url::parse(&redacted) {
        Ok(u) => e.with_url(u),
        Err(_) => e.without_url(),
    }
}

/// Where a reqwest failure left the request. reqwest knows when it failed while connecting
/// (resolving, connecting, the TLS handshake): that is checked before its timeout flag, since
/// a connect timeout is both and never sent anything. A rustls error while connecting is a
/// rejected handshake, `Tls` (permanent).
fn classify(e: reqwest::Error, in_body: bool) -> TransportError {
    use TransportErrorKind as K;
    let kind = if e.is_builder() {
        K::Request
    } else if e.is_connect() {
        if find_in_chain::<rustls::Error>(&e).is_some() { K::Tls } else { K::Connect }
    } else if e.is_timeout() {
        K::Timeout
    } else if in_body || e.is_body() || e.is_decode() {
        K::Body
    } else {
        match find_in_chain::<std::io::Error>(&e).map(TransportError::classify_io) {
            Some(K::Other) | None => K::NoResponse,
            Some(k) => k,
        }
    };
    TransportError::new(kind, redact(e))
}

/// The first error of type `T` in `e`'s source chain, looking inside `io::Error`s too (whose
/// `source()` skips the error they wrap; hyper nests them).
fn find_in_chain<T: std::error::Error + 'static>(e: &reqwest::Error) -> Option<&T> {
    let mut next = std::error::Error::source(e);
    while let Some(s) = next {
        if let Some(found) = s.downcast_ref::<T>() {
            return Some(found);
        }
        next = match s.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

/// The real clock, `tokio::time::sleep`, and tokio's blocking pool for the file reads of an
/// upload from a path. Needs a tokio runtime with the time driver.
#[derive(Debug, Clone, Copy)]
pub struct TokioRuntime {
    origin: Instant,
}

impl TokioRuntime {
    /// A runtime whose monotonic time starts now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for TokioRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl AsyncRuntime for TokioRuntime {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
    /// Runs `job` (a file read of an upload from a path) on tokio's blocking pool, so it
    /// never holds up the executor; outside a tokio runtime, at once on the calling thread.
    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture<'static, ()> {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let task = handle.spawn_blocking(job);
                Box::pin(async move {
                    let _ = task.await;
                })
            }
            Err(_) => {
                job();
                Box::pin(std::future::ready(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_settings_get_their_own_client_made_once() {
        let options = |t: Option<u64>, decompress: bool| {
            let mut o = SendOptions::with_timeout(None).with_decompress(decompress);
            o.connect_timeout = t.map(Duration::from_secs);
            o
        };
        let made = |t: &ReqwestTransport| {
            t.others.lock().unwrap().iter().map(|(s, _)| (s.connect_timeout, s.decode)).collect::<Vec<_>>()
        };
        let ten = Some(Duration::from_secs(10));
        let thirty = Some(Duration::from_secs(30));
        let t = ReqwestTransport::new(ten);
        let decodes = |o: &SendOptions| t.client_for(o).unwrap().1;
        assert_eq!(decodes(&options(Some(10), true)), DECODES);
        assert_eq!(decodes(&options(None, true)), DECODES);
        assert!(made(&t).is_empty(), "the transport's own settings use its client");
        // Not decoded: a client of its own (unless this build decodes nothing).
        assert!(!decodes(&options(None, false)));
        assert!(!decodes(&options(None, false).for_storage()));
        let undecoded = if DECODES { vec![(ten, false)] } else { vec![] };
        assert_eq!(made(&t), undecoded);
        assert!(!decodes(&options(Some(30), false).for_storage()));
        assert!(!decodes(&options(Some(30), false).for_storage()));
        assert_eq!(made(&t), [undecoded.clone(), vec![(thirty, false)]].concat());

        let mine = ReqwestTransport::with_client(ReqwestTransport::new(None).client.unwrap());
        assert!(
            !mine.client_for(&options(Some(30), true)).unwrap().1,
            "a caller's client decodes as it does"
        );
        assert!(made(&mine).is_empty(), "a caller's client is used as it is");
        assert!(mine.tls.get().is_none(), "no TLS configuration made for it");
        mine.client_for(&options(Some(30), false).for_storage()).unwrap();
        mine.client_for(&options(Some(30), false).for_storage()).unwrap();
        assert_eq!(made(&mine), [(thirty, false)], "storage goes through one of ours");
    }

    #[test]
    #[allow(deprecated)]
    fn a_file_is_read_by_range_and_named() {
        use hotdata_core::upload::AsyncRangeSource;

        let dir = std::env::temp_dir().join(format!("hotdata-file-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.csv");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();

        let source = FileSource::open(&path).unwrap();
        assert_eq!(source.len(), 100_000);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let part = rt.block_on(source.read_range(70_000, 40_000)).unwrap();
        assert_eq!(&part[..], &data[70_000..], "a range past the end stops at the end");
        let part = rt.block_on(source.read_range(10, 5)).unwrap();
        assert_eq!(&part[..], &data[10..15]);
        assert_eq!(source.upload_options().filename.as_deref(), Some("events.csv"));
        assert_eq!(source.file_name().as_deref(), Some("events.csv"), "named without upload_options");

        assert!(FileSource::open(&dir).is_err(), "a directory is not a file");
        assert!(FileSource::open(dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The file reads of an upload from a path run on tokio's blocking pool, not on the
    /// executor's thread; outside a runtime, at once.
    #[test]
    fn blocking_jobs_run_on_the_blocking_pool() {
        let here = std::thread::current().id();
        let ran_on = Arc::new(std::sync::Mutex::new(None));
        let job = |slot: Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>| {
            Box::new(move || *slot.lock().unwrap() = Some(std::thread::current().id()))
        };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { TokioRuntime::new().spawn_blocking(job(ran_on.clone())).await });
        let pool = ran_on.lock().unwrap().take();
        assert!(pool.is_some_and(|t| t != here), "{pool:?} is not the executor's thread");

        let done = TokioRuntime::new().spawn_blocking(job(ran_on.clone()));
        assert_eq!(ran_on.lock().unwrap().take(), Some(here), "outside a runtime: at once");
        drop(done);
    }
}
