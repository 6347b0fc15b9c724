//! The one public error type.
//!
//! Every failure of a call is an [`Error`]: its [`ErrorKind`], the operation that failed,
//! and, when the server answered, the HTTP status and the server's error code and message
//! (from either envelope the API uses: `{"error":{"code","message"}}` or `{"error":"..."}`).
//! `Display` prints one readable line for this level only; the cause, if any, is in
//! [`std::error::Error::source`]. Neither `Display` nor `Debug` ever contains a credential.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;

use crate::transport::{BoxError, TransportError, TransportErrorKind};
use crate::wire::{RawResponse, retry_after_from_headers};

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The call could not be made as configured (no credentials, no workspace, bad base URL,
    /// an invalid parameter). Nothing was sent.
    Config,
    /// The token provider failed. Nothing was sent.
    Credentials,
    /// The exchange failed in the transport; see [`Error::transport_kind`].
    Transport,
    /// The exchange did not complete within its timeout.
    Timeout,
    /// The server answered with an error status.
    Api,
    /// The server's answer could not be decoded.
    Decode,
    /// A stored result failed to be produced (HTTP 409 on a result); the message says why.
    ResultFailed,
    /// A local I/O operation of the SDK failed (writing a download, reading a file).
    Io,
    /// An answer went past a limit the SDK guards memory with; [`Error::limit`] says which
    /// limit, its value and how far the answer went.
    LimitExceeded,
    /// A stored result was not ready yet (HTTP 202) where the caller asked for it ready
    /// ([`ResultFetch::into_ready`](crate::results::ResultFetch::into_ready)):
    /// [`Error::not_ready`] carries its status and the server's `Retry-After`.
    NotReady,
    /// An answer holds only part of the rows (a preview), and this build cannot fetch the
    /// rest: following a truncated answer needs the `arrow` feature. The message says what
    /// to enable; nothing partial is returned.
    Incomplete,
}

/// Which guard an answer went past, for [`ErrorKind::LimitExceeded`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitExceeded {
    /// Where the limit is set (for example
    /// `Config::arrow_limits.max_decompressed_message_bytes`).
    pub limit: &'static str,
    /// The limit's value.
    pub max: u64,
    /// What the answer asked for or reached.
    pub actual: u64,
}

/// An error from a Hotdata call. See the [module docs](self).
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    operation: Option<&'static str>,
    status: Option<StatusCode>,
    code: Option<String>,
    message: Option<String>,
    transport_kind: Option<TransportErrorKind>,
    retry_after: Option<Duration>,
    limit: Option<LimitExceeded>,
    not_ready: Option<crate::results::NotReady>,
    query_run_id: Option<String>,
    result_id: Option<String>,
    attempts: u32,
    body: Option<Bytes>,
    source: Option<BoxError>,
}

impl Error {
    fn new(kind: ErrorKind) -> Self {
        Self(Box::new(Inner {
            kind,
            operation: None,
            status: None,
            code: None,
            message: None,
            transport_kind: None,
            retry_after: None,
            limit: None,
            not_ready: None,
            query_run_id: None,
            result_id: None,
            attempts: 0,
            body: None,
            source: None,
        }))
    }

    /// A configuration error: the call was not sent.
    pub fn config(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Config);
        e.0.message = Some(message.into());
        e
    }

    /// The token provider failed: the call was not sent.
    pub fn credentials(source: impl Into<BoxError>) -> Self {
        let mut e = Self::new(ErrorKind::Credentials);
        e.0.message = Some("the token provider failed".into());
        e.0.source = Some(source.into());
        e
    }

    /// A decoding error with a description of what could not be decoded.
    pub fn decode(message: impl Into<String>, source: Option<BoxError>) -> Self {
        let mut e = Self::new(ErrorKind::Decode);
        e.0.message = Some(message.into());
        e.0.source = source;
        e
    }

    /// An error for a transport failure.
    pub fn transport(error: TransportError) -> Self {
        let kind = if error.kind() == TransportErrorKind::Timeout {
            ErrorKind::Timeout
        } else {
            ErrorKind::Transport
        };
        let mut e = Self::new(kind);
        e.0.transport_kind = Some(error.kind());
        e.0.source = Some(Box::new(error));
        e
    }

    /// An API error from a response with an error status: reads the server's code and
    /// message from either error envelope, and `Retry-After` if present (an HTTP date is
    /// resolved against the answer's `Date`; the client's calls fall back to their runtime's
    /// wall clock when there is none).
    pub fn from_response(response: &RawResponse) -> Self {
        let mut e = Self::new(ErrorKind::Api);
        e.0.status = Some(response.status);
        let (code, message) = parse_envelope(&response.body);
        e.0.code = code;
        e.0.message = message;
        e.0.retry_after = retry_after_from_headers(&response.headers, None);
        e.0.body = Some(response.body.slice(..response.body.len().min(64 * 1024)));
        e
    }

    /// [`from_response`](Self::from_response), with an HTTP-date `Retry-After` the answer's
    /// own `Date` could not resolve resolved against the client's wall clock `wall`.
    pub(crate) fn from_response_at(response: &RawResponse, wall: std::time::SystemTime) -> Self {
        Self::from_response(response).resolve_retry_after(&response.headers, wall)
    }

    /// Resolves an HTTP-date `Retry-After` against the client's wall clock `wall` when
    /// [`from_response`](Self::from_response) could not (the answer carried no `Date` a
    /// client can read: a browser hides it from a page unless the server exposes it).
    pub(crate) fn resolve_retry_after(self, headers: &http::HeaderMap, wall: std::time::SystemTime) -> Self {
        self.or_retry_after(retry_after_from_headers(headers, Some(wall)))
    }

    /// Sets `retry_after` to `fallback` unless it is known already.
    pub(crate) fn or_retry_after(mut self, fallback: Option<Duration>) -> Self {
        if self.0.retry_after.is_none() {
            self.0.retry_after = fallback;
        }
        self
    }

    /// A local I/O failure while `doing` something.
    pub fn io(doing: &str, source: std::io::Error) -> Self {
        let mut e = Self::new(ErrorKind::Io);
        e.0.message = Some(format!("{doing}: {source}"));
        e.0.source = Some(Box::new(source));
        e
    }

    /// A result that failed to be produced, with the server's reason.
    pub fn result_failed(operation: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::ResultFailed);
        e.0.message = Some(message.into());
        e.with_operation(operation)
    }

    /// An answer that went past one of the SDK's memory guards; `what` says what was being
    /// read and how to raise the limit or avoid it.
    pub fn limit_exceeded(limit: LimitExceeded, what: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::LimitExceeded);
        e.0.message = Some(what.into());
        e.0.limit = Some(limit);
        e
    }

    /// A wait that reached its deadline.
    pub fn wait_timeout(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Timeout);
        e.0.message = Some(message.into());
        e
    }

    /// A stored result that was not ready where it had to be ([`ErrorKind::NotReady`]).
    pub fn not_ready_yet(not_ready: crate::results::NotReady) -> Self {
        let mut e = Self::new(ErrorKind::NotReady);
        e.0.retry_after = not_ready.retry_after;
        e.0.result_id = Some(not_ready.result_id.clone());
        e.0.message = Some(format!("result {} is not ready yet ({})", not_ready.result_id, not_ready.status));
        e.0.not_ready = Some(not_ready);
        e.with_operation(crate::ops::GET_RESULT.id)
    }

    /// A partial answer this build cannot complete ([`ErrorKind::Incomplete`]); `message`
    /// says what is missing and what to enable.
    pub fn incomplete(operation: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::Incomplete);
        e.0.message = Some(message.into());
        e.with_operation(operation)
    }

    /// Records the query run and stored result a failure belongs to (each kept if already
    /// set), so that a caller can go on waiting for them or fetch them later.
    pub fn with_query_ids(mut self, query_run_id: Option<&str>, result_id: Option<&str>) -> Self {
        if self.0.query_run_id.is_none() {
            self.0.query_run_id = query_run_id.map(str::to_owned);
        }
        if self.0.result_id.is_none() {
            self.0.result_id = result_id.map(str::to_owned);
        }
        self
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    /// Records the operation this error belongs to (kept if already set).
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        self.0.operation.get_or_insert(operation);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.0.attempts = attempts;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The operation id (as in the API spec) of the call that failed.
    pub fn operation(&self) -> Option<&'static str> {
        self.0.operation
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// The server's error code (for example `NOT_FOUND`, `OVERLOADED`), when it sent one.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The server's error message, or the description of a local failure.
    pub fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// Where the exchange failed, for transport errors and timeouts.
    pub fn transport_kind(&self) -> Option<TransportErrorKind> {
        self.0.transport_kind
    }

    /// The delay the server asked for (`Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The limit an answer went past, for [`ErrorKind::LimitExceeded`].
    pub fn limit(&self) -> Option<&LimitExceeded> {
        self.0.limit.as_ref()
    }

    /// For [`ErrorKind::NotReady`]: the result's id, status and the server's `Retry-After`.
    pub fn not_ready(&self) -> Option<&crate::results::NotReady> {
        self.0.not_ready.as_ref()
    }

    /// The query run the failed call was part of, when known: a one-call query
    /// ([`Client::sql`](crate::Client::sql)) that gave up waiting says which run to keep
    /// waiting for ([`Client::wait_for_query_run`](crate::Client::wait_for_query_run)).
    pub fn query_run_id(&self) -> Option<&str> {
        self.0.query_run_id.as_deref()
    }

    /// The stored result the failed call was reading or waiting for, when known: fetch it
    /// later with `client.results()`, or wait for it with
    /// [`Client::wait_for_result`](crate::Client::wait_for_result).
    pub fn result_id(&self) -> Option<&str> {
        self.0.result_id.as_deref()
    }

    /// How many attempts the call made before giving up (a connection that failed counts as
    /// one); 0 when it stopped before trying, on a configuration or credentials error.
    pub fn attempts(&self) -> u32 {
        self.0.attempts
    }

    /// The raw body of the error response (at most 64 KiB).
    pub fn body(&self) -> Option<&[u8]> {
        self.0.body.as_deref()
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.0.status == Some(StatusCode::NOT_FOUND)
    }
}

/// Reads `(code, message)` from the API's error envelopes.
fn parse_envelope(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().chars().take(512).collect::<String>();
        return (None, (!text.is_empty()).then_some(text));
    };
    let str_of = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    match value.get("error") {
        Some(serde_json::Value::Object(detail)) => {
            (str_of(detail.get("code")), str_of(detail.get("message")))
        }
        Some(serde_json::Value::String(message)) => (str_of(value.get("code")), Some(message.clone())),
        _ => (
            str_of(value.get("code")),
            str_of(value.get("message")).or_else(|| str_of(value.get("error_message"))),
        ),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        if let Some(op) = i.operation {
            write!(f, "{op}: ")?;
        }
        match i.kind {
            ErrorKind::Api => {
                let status = i.status.map(|s| s.to_string()).unwrap_or_default();
                write!(f, "server answered HTTP {status}")?;
                if let Some(code) = &i.code {
                    write!(f, " {code}")?;
                }
                if let Some(message) = &i.message {
                    write!(f, ": {message}")?;
                }
            }
            ErrorKind::Config => {
                write!(f, "not sent: {}", i.message.as_deref().unwrap_or("invalid configuration"))?
            }
            ErrorKind::Credentials => f.write_str("not sent: the token provider failed")?,
            ErrorKind::Timeout if i.transport_kind.is_none() => {
                write!(f, "{}", i.message.as_deref().unwrap_or("timed out"))?
            }
            ErrorKind::Transport | ErrorKind::Timeout => {
                let what = match i.transport_kind {
                    Some(TransportErrorKind::Connect) => "could not connect",
                    Some(TransportErrorKind::Tls) => {
                        "the TLS handshake failed (certificate rejected or no common protocol)"
                    }
                    Some(TransportErrorKind::Send) => "sending the request failed",
                    Some(TransportErrorKind::NoResponse) => "the connection closed before any response",
                    Some(TransportErrorKind::Timeout) => "timed out",
                    Some(TransportErrorKind::Body) => "reading the response body failed",
                    Some(TransportErrorKind::Request) => "the request was refused locally",
                    _ => "transport error",
                };
                f.write_str(what)?;
            }
            ErrorKind::ResultFailed => {
                write!(f, "the result failed: {}", i.message.as_deref().unwrap_or("no reason given"))?
            }
            ErrorKind::Io => write!(f, "{}", i.message.as_deref().unwrap_or("I/O error"))?,
            ErrorKind::NotReady | ErrorKind::Incomplete => {
                write!(f, "{}", i.message.as_deref().unwrap_or("the result is not complete"))?
            }
            ErrorKind::LimitExceeded => {
                write!(f, "{}", i.message.as_deref().unwrap_or("over a limit"))?;
                if let Some(l) = &i.limit {
                    write!(f, " ({} = {}, reached {})", l.limit, l.max, l.actual)?;
                }
            }
            ErrorKind::Decode => write!(
                f,
                "could not decode the response: {}",
                i.message.as_deref().unwrap_or("invalid body")
            )?,
        }
        match (&i.query_run_id, &i.result_id) {
            (Some(run), Some(result)) => write!(f, " [query run {run}, result {result}]")?,
            (Some(run), None) => write!(f, " [query run {run}]")?,
            (None, Some(result)) if i.kind != ErrorKind::NotReady => write!(f, " [result {result}]")?,
            _ => {}
        }
        if i.attempts > 1 {
            write!(f, " (after {} attempts)", i.attempts)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind);
        if let Some(op) = i.operation {
            d.field("operation", &op);
        }
        if let Some(s) = i.status {
            d.field("status", &s.as_u16());
        }
        if let Some(c) = &i.code {
            d.field("code", c);
        }
        if let Some(m) = &i.message {
            d.field("message", m);
        }
        if let Some(l) = &i.limit {
            d.field("limit", l);
        }
        if let Some(t) = i.transport_kind {
            d.field("transport_kind", &t);
        }
        if let Some(r) = i.retry_after {
            d.field("retry_after", &r);
        }
        if let Some(n) = &i.not_ready {
            d.field("not_ready", n);
        }
        if let Some(r) = &i.query_run_id {
            d.field("query_run_id", r);
        }
        if let Some(r) = &i.result_id {
            d.field("result_id", r);
        }
        if i.attempts > 0 {
            d.field("attempts", &i.attempts);
        }
        if let Some(s) = &i.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    fn response(status: u16, body: &str) -> RawResponse {
        RawResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn reads_both_envelopes() {
        let e = Error::from_response(&response(
            404,
            r#"{"error":{"code":"NOT_FOUND","message":"no such database"}}"#,
        ))
        .with_operation("get_database");
        assert_eq!(e.code(), Some("NOT_FOUND"));
        assert_eq!(e.message(), Some("no such database"));
        assert_eq!(
            e.to_string(),
            "get_database: server answered HTTP 404 Not Found NOT_FOUND: no such database"
        );
        let e = Error::from_response(&response(401, r#"{"error":"invalid token"}"#));
        assert_eq!(e.code(), None);
        assert_eq!(e.message(), Some("invalid token"));
        assert_eq!(e.to_string(), "server answered HTTP 401 Unauthorized: invalid token");
        let e = Error::from_response(&response(
            409,
            r#"{"result_id":"r","status":"failed","error_message":"boom"}"#,
        ));
        assert_eq!(e.message(), Some("boom"));
        let e = Error::from_response(&response(502, "<html>bad gateway</html>"));
        assert_eq!(e.message(), Some("<html>bad gateway</html>"));
    }
}
