//! How a transport reports a failure: [`TransportError`] and where the exchange failed
//! ([`TransportErrorKind`]). A leaf module: bodies and the error type read it, and it
//! depends on neither (only on `redact`, another leaf).

use std::error::Error as StdError;
use std::fmt;

/// A boxed error that can cross threads.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Where an exchange failed, which decides whether it may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made: the host name did not resolve, the connection was
    /// refused or reset while connecting, or connecting timed out. The request was never
    /// sent, and it is retried on every operation: an unresolvable host is retried too, since
    /// DNS failures are often passing (a resolver restarting, a record being published).
    Connect,
    /// The TLS handshake failed: the server's certificate was rejected (untrusted, expired,
    /// for another name) or the two sides share no protocol, for example an `https` URL
    /// answered by a plain-HTTP server. The request was never sent, and sending it again
    /// would fail the same way: it is permanent, never retried. A connection lost during the
    /// handshake is [`TransportErrorKind::Connect`].
    Tls,
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
    /// The request could not be built or was refused locally (invalid URL, header, a
    /// transport that could not be set up, ...): never sent, and permanent.
    Request,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// True when the request provably never reached the server.
    pub fn never_sent(self) -> bool {
        matches!(self, Self::Connect | Self::Tls | Self::Send | Self::Request)
    }

    /// True when sending the same request again would fail the same way (a rejected
    /// certificate, an invalid URL): such failures are never retried, on any operation.
    pub fn is_permanent(self) -> bool {
        matches!(self, Self::Tls | Self::Request)
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connection failed",
            Self::Tls => "TLS handshake failed",
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

    /// This error with nothing secret of `url` (the URL of the failed request) left in it.
    ///
    /// When the `Display` or `Debug` of any error in the source chain shows what
    /// [`redact_url`](super::redact_url) removes (the query, where a presigned storage URL
    /// keeps its signature; the user info), the chain is replaced by its own text with the
    /// URL shown redacted (scheme, host, port, path) and any other trace of those parts as
    /// `[redacted]`. The kind is kept; the typed sources are lost only then. Backends call
    /// it on every failure of a request, so that no error, log or event shows a signature.
    #[must_use]
    pub fn redacting(mut self, url: &str) -> Self {
        if let Some(clean) = self.source.as_deref().and_then(|s| super::redact::scrub(s, url)) {
            self.source = Some(Box::new(clean));
        }
        self
    }

    /// Classifies an I/O error by its kind: resets and closes before a response are
    /// [`TransportErrorKind::NoResponse`], refusals and the system resolver's failures (an
    /// unresolvable host) are [`TransportErrorKind::Connect`], timeouts are
    /// [`TransportErrorKind::Timeout`]. Backends use it on the `io::Error`s found in their
    /// error chains.
    pub fn classify_io(error: &std::io::Error) -> TransportErrorKind {
        use std::io::ErrorKind as K;
        if is_resolver_failure(error) {
            return TransportErrorKind::Connect;
        }
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

/// Whether `error` is the system resolver failing to resolve a host name. std reports
/// `getaddrinfo` failures with no kind of their own ("failed to lookup address information:
/// Name or service not known"), so the text is the only mark on Unix; Windows keeps the
/// `WSAHOST_NOT_FOUND`..`WSANO_DATA` codes.
fn is_resolver_failure(error: &std::io::Error) -> bool {
    (cfg!(windows) && matches!(error.raw_os_error(), Some(11001..=11004)))
        || error.to_string().starts_with("failed to lookup address information")
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

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    #[test]
    fn io_errors_are_classified_by_where_they_leave_the_request() {
        use std::io::{Error, ErrorKind as K};
        let kind = |e: Error| TransportError::classify_io(&e);
        assert_eq!(kind(Error::from(K::ConnectionRefused)), TransportErrorKind::Connect);
        assert_eq!(kind(Error::from(K::ConnectionReset)), TransportErrorKind::NoResponse);
        assert_eq!(kind(Error::from(K::TimedOut)), TransportErrorKind::Timeout);
        assert_eq!(kind(Error::other("something else")), TransportErrorKind::Other);
        let dns = Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(kind(dns), TransportErrorKind::Connect, "an unresolvable host was never sent");
    }

    #[test]
    fn redacting_rewrites_only_a_chain_that_shows_the_urls_secrets() {
        let url = "http://127.0.0.1:9/bucket/key?X-Amz-Signature=SECRET0123456789";
        let leaky = TransportError::new(TransportErrorKind::NoResponse, format!("error sending {url}"));
        let clean = leaky.redacting(url);
        assert_eq!(clean.kind(), TransportErrorKind::NoResponse);
        let source = StdError::source(&clean).expect("the source stays");
        assert_eq!(source.to_string(), "error sending http://127.0.0.1:9/bucket/key");
        assert!(!format!("{clean:?}").contains("SECRET"), "{clean:?}");

        let io = TransportError::new(
            TransportErrorKind::Connect,
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        );
        let kept = io.redacting(url);
        let source = StdError::source(&kept).expect("the source stays");
        assert!(
            source.downcast_ref::<std::io::Error>().is_some(),
            "nothing to hide: the typed source is kept"
        );
        assert!(TransportError::from_kind(TransportErrorKind::Other).redacting(url).source.is_none());
    }

    /// The real resolver's failure, found without DNS traffic: a 64-character label is one
    /// more than DNS allows, and the resolver refuses it locally as it would an NXDOMAIN.
    #[cfg(not(target_family = "wasm"))]
    #[test]
    fn the_system_resolvers_failure_is_a_connect_failure() {
        use std::net::ToSocketAddrs;
        let host = format!("{}.invalid:80", "a".repeat(64));
        let e = host.to_socket_addrs().expect_err("no such host");
        assert_eq!(TransportError::classify_io(&e), TransportErrorKind::Connect, "{e:?}");
    }
}
