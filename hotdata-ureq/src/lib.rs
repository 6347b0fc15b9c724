//! # hotdata-ureq: the blocking Hotdata client over ureq
//!
//! A thin backend for [`hotdata_core`]: [`UreqTransport`] moves bytes with [ureq 3]
//! (rustls with ring; no tokio, no OpenSSL anywhere in the tree) and [`StdRuntime`] supplies
//! the clock and `thread::sleep`. Everything else (auth, retries, timeouts, decoding) is the
//! core's.
//!
//! ```no_run
//! # fn main() -> Result<(), hotdata_core::Error> {
//! let client = hotdata_ureq::from_env(); // HOTDATA_API_KEY, HOTDATA_WORKSPACE_ID, HOTDATA_API_URL
//! for page in client.databases().list().limit(50).pages() {
//!     for db in page? {
//!         println!("{} {:?}", db.id, db.name);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! **Logging.** The SDK's own `tracing` events never show a secret. ureq logs through the
//! `log` crate: at `debug` it prints request URIs, presigned storage URLs with their
//! signatures included, and at `trace` every byte on the wire (the `Authorization` header
//! with the API key, finalize tokens). Keep `ureq` and `ureq_proto` at `info` or above
//! wherever logs are kept.
//!
//! [ureq 3]: https://docs.rs/ureq/3
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hotdata_core::{
    BlockingBody, BlockingRuntime, BlockingTransport, HttpRequest, SendOptions, TransportError,
    TransportErrorKind,
};

pub use hotdata_core;
/// The everyday types at the crate root (clients, `Config`, `Error`, `QueryRequest`,
/// `UploadOptions`, result types and, with `arrow`, `arrow_array` and `arrow_schema`): see
/// [`hotdata_core::prelude`].
#[doc(inline)]
pub use hotdata_core::prelude::*;

mod coding;
mod idle;
mod resolve;

/// A blocking client for `config`, over ureq.
pub fn client(config: Config) -> BlockingClient {
    let transport = UreqTransport::new(config.connect_timeout);
    BlockingClient::new(config, Arc::new(transport), Arc::new(StdRuntime::new()), "ureq")
}

/// A blocking client configured from `HOTDATA_API_KEY`, `HOTDATA_WORKSPACE_ID` and
/// `HOTDATA_API_URL`.
pub fn from_env() -> BlockingClient {
    client(Config::from_env())
}

/// A [`BlockingTransport`] over a [`ureq::Agent`].
///
/// Storage requests ([`SendOptions::storage`]: part PUTs to presigned URLs) carry only the
/// headers the core set, plus `Host`, the body's framing and, with a body,
/// `Expect: 100-continue` (so a refusal storage sends from the head, such as a signature
/// that does not verify, is read as its answer rather than lost to a broken pipe). Over an
/// agent you brought ([`UreqTransport::with_agent`]) they go through an agent of the
/// transport's own (see there).
///
/// Timeouts: [`SendOptions::timeout`] is ureq's global timeout of the request, body
/// included, unless the request has a [`SendOptions::body_idle_timeout`] (a streamed answer:
/// a download, an Arrow result or query). Then the timeout bounds the exchange until the
/// response head, and the body is bounded by ureq's per-read timeout
/// (`timeout_per_read`), set to the idle timeout: each read of the socket fails after that
/// long without a byte, the time between the caller's reads does not count, and a body of
/// any length read at a steady rate completes. The transport's own agents lift the per-read
/// bound while the head is awaited, through ureq's `unversioned` transport API (ureq is
/// pinned to an exact version for it); over an agent you brought, see
/// [`UreqTransport::with_agent`].
///
/// Compression: a request marked [`SendOptions::decompress`] (the JSON answers the core
/// reads whole) is sent with `Accept-Encoding: gzip, deflate` and its answer decoded here
/// (flate2, pure Rust; feature `gzip`, on by default: without it nothing is asked for and
/// nothing decoded). Any other request (storage PUTs, result downloads, Arrow streams) gets
/// no `Accept-Encoding` from this crate and its body is handed on as it arrived,
/// `Content-Encoding` included. ureq's own `gzip` and `brotli` features, if anything in your
/// build turns them on (ureq's default features include `gzip`), make ureq decode every
/// answer in those codings itself: the transport finds that out once per process (from an
/// exchange with an in-memory connection) and then neither decodes such a body again nor
/// reports it encoded, so there such an answer arrives decoded even when not asked for.
///
/// TLS: rustls with ring, given to ureq explicitly: the transport's own agents neither
/// install nor use a process default provider (`CryptoProvider::install_default`).
#[derive(Debug, Clone)]
pub struct UreqTransport {
    /// The agent API requests go through.
    agent: ureq::Agent,
    /// The agent storage requests go through: `agent` itself when it is the transport's
    /// own, a bare one beside a caller's.
    storage: ureq::Agent,
}

/// The settings of the transport's own agents: every status returned as a response, no
/// redirects, no header of ureq's own beyond `Host` and the body framing, and rustls with
/// ring given to ureq (not the process default provider, which ureq would take if there is
/// one).
fn bare_config() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    // rustls 0.23.48 deprecates ring's provider (it has no post-quantum key exchange). ring
    // is this crate's choice (no C toolchain beyond ring's own, builds wherever the SDK does),
    // so a newer rustls in a user's lock file must not turn the choice into a warning.
    #[allow(deprecated)]
    let ring = Arc::new(rustls::crypto::ring::default_provider());
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(ureq::config::AutoHeaderValue::None)
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .accept(ureq::config::AutoHeaderValue::None)
        .tls_config(ureq::tls::TlsConfig::builder().unversioned_rustls_crypto_provider(ring).build())
}

impl UreqTransport {
    /// A transport with its own agent: rustls with ring and the webpki roots, the given
    /// connect timeout, no redirects, every status returned as a response, and no header of
    /// its own beyond `Host` and the body framing (storage PUTs must carry only what the core
    /// set). Nothing global is touched.
    ///
    /// Name resolution: an IP literal is used as it is, and a host name's addresses are
    /// reused for 10 s (ureq resolves every request's host, pooled connection or not, and
    /// its resolver starts a thread per lookup when a timeout is set, as the SDK's always
    /// is); a lookup is ureq's own, bounded by the request's timeout.
    pub fn new(connect_timeout: Option<Duration>) -> Self {
        use ureq::unversioned::transport::{Connector, DefaultConnector};
        // ureq's own connector, each connection wrapped so that a streamed call's head is
        // bounded by its timeout alone (see `idle`).
        let connector = DefaultConnector::new().chain(idle::HeadPhase);
        let resolver = resolve::CachingResolver::<ureq::unversioned::resolver::DefaultResolver>::default();
        let config = bare_config().timeout_connect(connect_timeout).build();
        let agent = ureq::Agent::with_parts(config, connector, resolver);
        Self { storage: agent.clone(), agent }
    }

    /// A transport over an agent you configured, for API requests. It must return every
    /// status as a response (`http_status_as_error(false)`), or error statuses surface as
    /// transport errors.
    ///
    /// Storage requests ([`SendOptions::storage`]) never go through it: its `User-Agent`,
    /// `Accept`, `Accept-Encoding`, middleware (which may add an `Authorization` or a cookie)
    /// and cookie jar must not reach object storage. They go through a second agent, made
    /// here as [`UreqTransport::new`] makes one, that keeps the connection settings of yours:
    /// its proxy, TLS configuration (root certificates, client identity, provider), IP family
    /// and connect timeout (each storage request asks for its own, 30 s). Nothing else of
    /// your agent applies to storage.
    ///
    /// A streamed answer ([`SendOptions::body_idle_timeout`]) over your agent is bounded as
    /// over the transport's own, except before its head: your agent's connections cannot be
    /// wrapped, so ureq's per-read timeout (the idle timeout) bounds each wait for the head's
    /// bytes too, and the call's timeout bounds sending the request and waiting for the head
    /// each (ureq's phase budgets) rather than both together. A query answered as Arrow
    /// whose server takes longer than the idle timeout to answer then fails: raise
    /// [`Config::body_idle_timeout`](hotdata_core::Config::body_idle_timeout), or use
    /// [`UreqTransport::new`].
    ///
    /// Compression over your agent: a [`SendOptions::decompress`] request is sent with
    /// `Accept-Encoding: gzip, deflate` (your agent's own setting does not replace a header
    /// the request carries) and decoded as over the transport's own agent. Other API
    /// requests carry your agent's `Accept-Encoding` if it adds one (ureq's default adds
    /// `gzip` when its `gzip` feature is on), and what ureq decodes of their answers arrives
    /// decoded, its `Content-Encoding` removed; storage requests carry none. The TLS
    /// provider is the one your agent's TLS configuration names, or ureq's choice (the
    /// process default if one is installed, else ring).
    pub fn with_agent(agent: ureq::Agent) -> Self {
        let yours = agent.config();
        let storage = bare_config()
            .proxy(yours.proxy().cloned())
            .tls_config(yours.tls_config().clone())
            .ip_family(yours.ip_family())
            .timeout_connect(yours.timeouts().connect)
            .build();
        let storage = ureq::Agent::with_parts(
            storage,
            ureq::unversioned::transport::DefaultConnector::default(),
            resolve::CachingResolver::<ureq::unversioned::resolver::DefaultResolver>::default(),
        );
        Self { agent, storage }
    }
}

impl UreqTransport {
    fn run(
        &self,
        request: http::Request<impl ureq::AsSendBody>,
        options: &SendOptions,
    ) -> Result<http::Response<ureq::Body>, TransportError> {
        let agent = if options.storage { &self.storage } else { &self.agent };
        // Kept to redact an error; formatted only when there is one.
        let uri = request.uri().clone();
        let request = agent.configure_request(request);
        let mut request = match options.body_idle_timeout {
            None => request.timeout_global(options.timeout),
            // No budget that runs into the body: each phase until the head has the call's
            // timeout (the own agents' connections bound it as a whole, see `idle`), and
            // the body each read's.
            Some(idle) => request
                .timeout_global(None)
                .timeout_per_call(None)
                .timeout_resolve(options.timeout)
                .timeout_send_request(options.timeout)
                .timeout_send_body(options.timeout)
                .timeout_recv_response(options.timeout)
                .timeout_recv_body(None)
                .timeout_per_read(Some(idle)),
        };
        if let Some(connect) = options.connect_timeout {
            request = request.timeout_connect(Some(connect));
        }
        let _head = options.body_idle_timeout.map(|_| idle::waiting_for_head(options.timeout));
        agent.run(request.build()).map_err(|e| classify(e).redacting(&uri.to_string()))
    }
}

impl BlockingTransport for UreqTransport {
    /// Sends `request`. No error it returns shows the URL's query (a presigned URL's
    /// signature) or user info ([`TransportError::redacting`]); ureq's body errors are I/O
    /// errors, which never show the URL.
    fn send(
        &self,
        request: HttpRequest,
        options: &SendOptions,
    ) -> Result<http::Response<BlockingBody>, TransportError> {
        let (mut parts, body) = request.into_parts();
        // Compressed answers, when asked for and this build decodes them (feature `gzip`).
        let decode = cfg!(feature = "gzip") && options.decompress;
        if decode && !parts.headers.contains_key(http::header::ACCEPT_ENCODING) {
            parts.headers.insert(http::header::ACCEPT_ENCODING, coding::ACCEPT_ENCODING);
        }
        // Object storage refuses a PUT from its head (a signature that does not verify, an
        // expired URL) and closes without reading the body: ureq, still writing the part,
        // would get a broken pipe and lose the answer. With `Expect: 100-continue` it waits
        // for the go-ahead (at most a second, ureq's `timeout_await_100`, for a server that
        // sends none) and reads a refusal instead.
        let has_body = body.as_streaming().is_some() || !body.as_bytes().is_empty();
        if options.storage && has_body {
            parts
                .headers
                .entry(http::header::EXPECT)
                .or_insert(http::HeaderValue::from_static("100-continue"));
        }
        let response = match body.as_streaming() {
            // A body read while it is sent (its length, when known, is in the headers).
            Some(streaming) => {
                let reader = streaming.take_reader().ok_or_else(|| {
                    TransportError::new(TransportErrorKind::Request, "the streaming body was already sent")
                })?;
                let body = ureq::SendBody::from_owned_reader(reader);
                self.run(http::Request::from_parts(parts, body), options)?
            }
            // Sent from the body as it is: a part of an upload is not copied.
            None => self.run(http::Request::from_parts(parts, body.as_bytes()), options)?,
        };
        let (mut parts, body) = response.into_parts();
        let body = coding::body(&mut parts.headers, body.into_reader(), decode, coding::ureq_decodes());
        Ok(http::Response::from_parts(parts, BlockingBody::from_reader(body, body_error)))
    }
}

fn body_error(e: std::io::Error) -> TransportError {
    let kind = if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
    {
        TransportErrorKind::Timeout
    } else {
        TransportErrorKind::Body
    };
    TransportError::new(kind, e)
}

/// Where a ureq failure left the request. An I/O error carries no phase: it is read by its
/// kind ([`TransportError::classify_io`]: an unresolvable host is `Connect`), and any other
/// is taken as a failure after sending (`NoResponse`, the safe side for operations sent at
/// most once), except a TLS handshake the client rejected ([`rejected_handshake`]), which
/// is `Tls`: never sent, and permanent.
fn classify(e: ureq::Error) -> TransportError {
    use TransportErrorKind as K;
    let kind = match &e {
        ureq::Error::Timeout(t) => match t {
            ureq::Timeout::Resolve | ureq::Timeout::Connect => K::Connect,
            _ => K::Timeout,
        },
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => K::Connect,
        // Set up failures of ureq's TLS (an invalid server name, a bad configuration).
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => K::Tls,
        ureq::Error::Io(io) if rejected_handshake(io) => K::Tls,
        ureq::Error::Io(io) => match TransportError::classify_io(io) {
            K::Other => K::NoResponse,
            k => k,
        },
        ureq::Error::Protocol(_) => K::NoResponse,
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => K::Request,
        _ => K::Other,
    };
    TransportError::new(kind, e)
}

/// Whether `io` is rustls failing a handshake: the server's certificate rejected, no
/// protocol in common, or the server refusing the handshake with an alert. ureq reports these
/// as I/O errors with no phase, so only failures that can happen in a handshake alone count:
/// a TLS error that may come later, once the request is sent (a record that fails to
/// decrypt, a malformed message), stays a failure after sending.
fn rejected_handshake(io: &std::io::Error) -> bool {
    use rustls::{AlertDescription as A, Error as E};
    let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<E>()) else { return false };
    match tls {
        E::InvalidCertificate(_)
        | E::NoCertificatesPresented
        | E::UnsupportedNameType
        | E::PeerIncompatible(_)
        | E::InappropriateHandshakeMessage { .. }
        | E::InvalidCertRevocationList(_)
        | E::NoApplicationProtocol => true,
        E::AlertReceived(alert) => matches!(
            alert,
            A::HandshakeFailure
                | A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::ProtocolVersion
                | A::InsufficientSecurity
                | A::UnrecognisedName
                | A::CertificateRequired
                | A::NoApplicationProtocol
        ),
        _ => false,
    }
}

/// The real clock and `std::thread::sleep`.
#[derive(Debug, Clone, Copy)]
pub struct StdRuntime {
    origin: Instant,
}

impl StdRuntime {
    /// A runtime whose monotonic time starts now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for StdRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockingRuntime for StdRuntime {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}
