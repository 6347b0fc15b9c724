//! How a transport reports a failure: [`TransportError`] and where the exchange failed
//! ([`TransportErrorKind`]). A leaf module: bodies and the error type read it, and it
//! depends on neither.

use std::error::Error as StdError;
use std::fmt;

/// A boxed error that can cross threads.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

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
