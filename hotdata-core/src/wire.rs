//! What the wire says, read without any other part of the core: a response read whole
//! ([`RawResponse`]), `Retry-After` in both its forms, and `Link: rel="next"`.
//!
//! A leaf module: the error type, the retry decisions, the endpoints and the result readers
//! all read these, and it depends on none of them.

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

/// A response with its body read whole, as endpoints decode it.
#[derive(Clone)]
pub struct RawResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Parses a `Retry-After` value given in seconds (integer or decimal). Negative, infinite
/// or absurd values are rejected, never a panic.
pub fn parse_retry_after_seconds(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    if !(0.0..=86_400.0 * 365.0).contains(&secs) {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// Parses a `Retry-After` value in either form: seconds, or an HTTP date, resolved against
/// the wall clock `now` (a date in the past means no wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    parse_retry_after_seconds(value).or_else(|| {
        let at = httpdate::parse_http_date(value.trim()).ok()?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    })
}

/// The `Retry-After` of a response, in either form. An HTTP date is resolved against the
/// response's own `Date` header (the server's clock, so client clock skew does not matter);
/// without one, against `fallback_now` when given. The client passes its runtime's wall
/// clock everywhere it reads an answer (retries, errors, not-ready results, waits), so a date
/// is honoured in a browser too, where `Date` is hidden from a page unless the server exposes it.
pub fn retry_after_from_headers(
    headers: &http::HeaderMap,
    fallback_now: Option<SystemTime>,
) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    if let Some(d) = parse_retry_after_seconds(value) {
        return Some(d);
    }
    let server_now = headers
        .get(http::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok());
    parse_retry_after(value, server_now.or(fallback_now)?)
}

/// The target of the `rel="next"` link in a `Link` header value (RFC 8288), if any.
pub fn link_next(value: &str) -> Option<String> {
    value.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';').unwrap_or((link.trim(), ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim().trim_matches('"').split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
        });
        is_next.then(|| target.to_owned())
    })
}
