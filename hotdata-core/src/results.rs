//! Stored results fetched whole or streamed, in any format the API serves.
//!
//! `GET /v1/results/{id}` answers `200` with the rows, `202` (with `Retry-After`) while the
//! result is being produced, `409` when producing it failed. [`ResultDownload`] is that
//! request for streamed formats (Arrow, CSV, Parquet, Markdown, JSON bytes); its calls give
//! a [`ResultFetch`]: [`ResultFetch::Ready`] with the body still streaming, or
//! [`ResultFetch::NotReady`] with the server's `Retry-After`. A failed result is an
//! [`Error`] of kind [`ErrorKind::ResultFailed`] carrying the server's message. The total
//! row count (`X-Total-Row-Count`) and the next page (`Link: <...>; rel="next"`) are read
//! from the headers into [`ResultMeta`].
//!
//! A download is bounded by the call's timeout ([`Config::timeout`](crate::Config::timeout))
//! until the response head, then by the idle timeout
//! ([`Config::body_idle_timeout`](crate::Config::body_idle_timeout), 60 s by default;
//! per call [`Call::body_idle_timeout`]): a body of any size read at any steady rate
//! completes, and one that stalls fails with a timeout.

use std::io::Write;
use std::time::{Duration, SystemTime};

use http::HeaderMap;

use crate::body::{AsyncBody, BlockingBody};
use crate::client::{Async, Blocking, Call};
use crate::config::{Cap, FetchLimits};
use crate::endpoint::{Endpoint, HeaderWriter, Operation, QueryWriter, RawResponse, encode_path_segment};
use crate::error::{Error, ErrorKind};
use crate::models::{ResultStatus, ResultsFormatQuery};
use crate::resources::Results;
use crate::transport::collect_blocking;
pub use crate::wire::link_next;
use crate::wire::retry_after_from_headers;

/// What a result fetch found.
#[derive(Debug)]
pub enum ResultFetch<T> {
    /// The result is ready; here it is.
    Ready(T),
    /// The result is still being produced.
    NotReady(NotReady),
}

impl<T> ResultFetch<T> {
    /// The ready value, or an [`ErrorKind::NotReady`] error carrying the result's status and
    /// the server's `Retry-After` ([`Error::not_ready`]).
    pub fn into_ready(self) -> Result<T, Error> {
        match self {
            Self::Ready(t) => Ok(t),
            Self::NotReady(n) => Err(Error::not_ready_yet(n)),
        }
    }

    /// Whether the result was ready.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready(_))
    }

    /// The ready value, or `None` if the result is not ready (which throws away the status
    /// and `Retry-After`).
    #[deprecated(since = "0.1.0", note = "use `into_ready()`: its error says why the result was not ready")]
    pub fn ready(self) -> Option<T> {
        match self {
            Self::Ready(t) => Some(t),
            Self::NotReady(_) => None,
        }
    }

    /// Transforms the ready value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ResultFetch<U> {
        match self {
            Self::Ready(t) => ResultFetch::Ready(f(t)),
            Self::NotReady(n) => ResultFetch::NotReady(n),
        }
    }
}

/// A result that is not ready yet (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotReady {
    /// The result id.
    pub result_id: String,
    /// Its status (`pending` or `processing`).
    pub status: ResultStatus,
    /// How long the server asked to wait before asking again.
    pub retry_after: Option<Duration>,
}

/// What the headers of a ready result say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResultMeta {
    /// All rows of the result, regardless of offset and limit (`X-Total-Row-Count`).
    pub total_row_count: Option<u64>,
    /// The URL of the next page when a limit did not reach the end (`Link: rel="next"`).
    pub next_page: Option<String>,
    /// The body's content type.
    pub content_type: Option<String>,
}

impl ResultMeta {
    /// Reads the metadata from response headers.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            total_row_count: text("x-total-row-count").and_then(|v| v.trim().parse().ok()),
            next_page: headers
                .get_all(http::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(link_next),
            content_type: text("content-type").map(str::to_owned),
        }
    }
}

/// `GET /v1/results/{id}` for a streamed format: see the [module docs](self).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResultDownload {
    /// The result id.
    pub id: String,
    /// The database the result belongs to (`X-Database-Id`).
    pub database_id: String,
    /// The format.
    pub format: ResultsFormatQuery,
    /// First row to return.
    pub offset: Option<i64>,
    /// Rows to return.
    pub limit: Option<i64>,
    /// Caps on reading it whole (none unless asked: [`Call::fetch_limits`]).
    pub(crate) cap: Option<Cap>,
}

impl ResultDownload {
    /// A download of result `id` of database `database_id` in `format`.
    pub fn new(id: impl Into<String>, database_id: impl Into<String>, format: ResultsFormatQuery) -> Self {
        Self { id: id.into(), database_id: database_id.into(), format, offset: None, limit: None, cap: None }
    }

    /// Starts at row `offset`.
    pub fn offset(mut self, offset: i64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Returns at most `limit` rows.
    pub fn limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// The media type of a result format.
pub fn media_type(format: &ResultsFormatQuery) -> &'static str {
    match format {
        ResultsFormatQuery::Arrow => "application/vnd.apache.arrow.stream",
        ResultsFormatQuery::Csv => "text/csv",
        ResultsFormatQuery::Md => "text/markdown",
        ResultsFormatQuery::Parquet => "application/vnd.apache.parquet",
        _ => "application/json",
    }
}

impl Endpoint for ResultDownload {
    type Output = RawResponse;

    fn operation(&self) -> &'static Operation {
        &crate::ops::GET_RESULT
    }

    fn path(&self) -> String {
        format!("/v1/results/{}", encode_path_segment(&self.id))
    }

    fn query(&self, query: &mut QueryWriter) {
        if let Some(o) = &self.offset {
            query.push("offset", o);
        }
        if let Some(l) = &self.limit {
            query.push("limit", l);
        }
        query.push("format", &self.format);
    }

    fn headers(&self, headers: &mut HeaderWriter) {
        headers.push("X-Database-Id", &self.database_id);
        // The bytes as stored: a download is written out or decoded as it is, and a server
        // may compress any answer to a request without `Accept-Encoding` (RFC 9110 §12.5.3).
        // Browsers ignore this header and decode for themselves.
        headers.push("Accept-Encoding", "identity");
    }

    fn accept(&self) -> &'static str {
        media_type(&self.format)
    }

    fn parse(&self, response: &RawResponse) -> Result<RawResponse, Error> {
        Ok(response.clone())
    }
}

/// Maps a non-200 result answer: a [`NotReady`] for 202, an error for the rest (409 →
/// [`ErrorKind::ResultFailed`] with the server's message).
/// An HTTP-date `Retry-After` the answer's own `Date` could not resolve is resolved against
/// the client's wall clock `wall`.
pub(crate) fn not_ready_or_error(id: &str, raw: RawResponse, wall: SystemTime) -> Result<NotReady, Error> {
    let op = crate::ops::GET_RESULT.id;
    match raw.status.as_u16() {
        202 => {
            let parsed: Option<serde_json::Value> = serde_json::from_slice(&raw.body).ok();
            let field =
                |k: &str| parsed.as_ref().and_then(|v| v.get(k)).and_then(|v| v.as_str()).map(str::to_owned);
            Ok(NotReady {
                result_id: field("result_id").unwrap_or_else(|| id.to_owned()),
                status: field("status").map_or(ResultStatus::Pending, |s| ResultStatus::from(s.as_str())),
                retry_after: retry_after_from_headers(&raw.headers, Some(wall)),
            })
        }
        409 => Err(Error::from_response_at(&raw, wall).with_kind(ErrorKind::ResultFailed).with_operation(op)),
        _ => Err(Error::from_response_at(&raw, wall).with_operation(op)),
    }
}

/// Checks that a `200` answer's body arrives as the bytes the server stored: a body in a
/// content coding the transport did not decode is an error that says so, rather than
/// compressed bytes written to a file or handed to a decoder. (A transport that decodes
/// content codings, as a browser does, removes `Content-Encoding` from the head it returns.)
pub(crate) fn check_content_encoding(headers: &HeaderMap, expected: &str) -> Result<(), Error> {
    let coding = headers.get(http::header::CONTENT_ENCODING).map(|v| String::from_utf8_lossy(v.as_bytes()));
    match coding.as_deref().map(str::trim) {
        Some(coding) if !coding.is_empty() && !coding.eq_ignore_ascii_case("identity") => Err(Error::decode(
            format!(
                "the body is `{coding}`-encoded (Content-Encoding) and the transport did not decode it; \
                 expected the plain bytes of {expected}"
            ),
            None,
        )),
        _ => Ok(()),
    }
}

/// A ready result whose body is still streaming.
#[derive(Debug)]
#[non_exhaustive]
pub struct Download<B> {
    /// What the headers say.
    pub meta: ResultMeta,
    /// The body, as the transport delivers it.
    pub body: B,
}

impl Download<BlockingBody> {
    /// Copies the body into `writer` chunk by chunk; returns the bytes written.
    pub fn write_to(self, writer: &mut impl Write) -> Result<u64, Error> {
        let mut n = 0u64;
        for chunk in self.body {
            let chunk = chunk.map_err(Error::transport)?;
            writer.write_all(&chunk).map_err(|e| Error::io("writing the download", e))?;
            n += chunk.len() as u64;
        }
        writer.flush().map_err(|e| Error::io("writing the download", e))?;
        Ok(n)
    }
}

impl Download<AsyncBody> {
    /// The next chunk of the body, or `None` at its end.
    pub async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, Error>> {
        use futures_core::Stream;
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut self.body).poll_next(cx))
            .await
            .map(|r| r.map_err(Error::transport))
    }

    /// Copies the body into `writer` chunk by chunk; returns the bytes written.
    pub async fn write_to(mut self, writer: &mut impl Write) -> Result<u64, Error> {
        let mut n = 0u64;
        while let Some(chunk) = self.next_chunk().await {
            let chunk = chunk?;
            writer.write_all(&chunk).map_err(|e| Error::io("writing the download", e))?;
            n += chunk.len() as u64;
        }
        writer.flush().map_err(|e| Error::io("writing the download", e))?;
        Ok(n)
    }
}

impl Call<Blocking, ResultDownload> {
    /// Fetches the result; when it is ready, its body is left to stream.
    pub fn open(self) -> Result<ResultFetch<Download<BlockingBody>>, Error> {
        let id = self.request().id.clone();
        let (format, op) = (self.request().format.clone(), crate::ops::GET_RESULT.id);
        let (_, rt) = self.client().blocking_parts();
        let (parts, body) = self.send_streaming()?.into_parts();
        if parts.status != http::StatusCode::OK {
            let body = collect_blocking(body).map_err(Error::transport)?;
            let raw = RawResponse { status: parts.status, headers: parts.headers, body };
            return not_ready_or_error(&id, raw, rt.wall_clock()).map(ResultFetch::NotReady);
        }
        check_content_encoding(&parts.headers, media_type(&format)).map_err(|e| e.with_operation(op))?;
        Ok(ResultFetch::Ready(Download { meta: ResultMeta::from_headers(&parts.headers), body }))
    }

    /// Streams the result into `writer` (a file, a socket) without holding it in memory.
    pub fn write_to(self, writer: &mut impl Write) -> Result<ResultFetch<(ResultMeta, u64)>, Error> {
        Ok(match self.open()? {
            ResultFetch::Ready(d) => {
                let meta = d.meta.clone();
                ResultFetch::Ready((meta, d.write_to(writer)?))
            }
            ResultFetch::NotReady(n) => ResultFetch::NotReady(n),
        })
    }
}

impl Call<Async, ResultDownload> {
    /// Fetches the result; when it is ready, its body is left to stream.
    pub async fn open(self) -> Result<ResultFetch<Download<AsyncBody>>, Error> {
        let id = self.request().id.clone();
        let (format, op) = (self.request().format.clone(), crate::ops::GET_RESULT.id);
        let (_, rt) = self.client().async_parts();
        let (parts, body) = self.send_streaming().await?.into_parts();
        if parts.status != http::StatusCode::OK {
            let body = body.collect().await.map_err(Error::transport)?;
            let raw = RawResponse { status: parts.status, headers: parts.headers, body };
            return not_ready_or_error(&id, raw, rt.wall_clock()).map(ResultFetch::NotReady);
        }
        check_content_encoding(&parts.headers, media_type(&format)).map_err(|e| e.with_operation(op))?;
        Ok(ResultFetch::Ready(Download { meta: ResultMeta::from_headers(&parts.headers), body }))
    }

    /// Streams the result into `writer` without holding it in memory.
    pub async fn write_to(self, writer: &mut impl Write) -> Result<ResultFetch<(ResultMeta, u64)>, Error> {
        Ok(match self.open().await? {
            ResultFetch::Ready(d) => {
                let meta = d.meta.clone();
                ResultFetch::Ready((meta, d.write_to(writer).await?))
            }
            ResultFetch::NotReady(n) => ResultFetch::NotReady(n),
        })
    }
}

impl<M: Clone> Results<'_, M> {
    /// `GET /v1/results/{id}` in `format` (Arrow, CSV, Parquet, Markdown, JSON), streamed:
    /// see [`ResultDownload`]. The body is bounded by the idle timeout
    /// ([`Config::body_idle_timeout`](crate::Config::body_idle_timeout)), not by the
    /// whole-request timeout, which bounds the wait for its head.
    pub fn download(
        &self,
        id: impl Into<String>,
        database_id: impl Into<String>,
        format: ResultsFormatQuery,
    ) -> Call<M, ResultDownload> {
        self.client.call(ResultDownload::new(id, database_id, format))
    }
}

impl<M> Call<M, ResultDownload> {
    /// Caps reading this result (as Arrow): past `limits` the read fails with
    /// [`crate::ErrorKind::LimitExceeded`]. A download the caller
    /// asks for has no cap otherwise (unlike the SDK's own fetches, capped by
    /// [`Config::fetch_limits`](crate::Config::fetch_limits)).
    pub fn fetch_limits(self, limits: FetchLimits) -> Self {
        self.capped_by(Cap::download(limits))
    }

    /// Caps reading this result with `cap`. Runs from `fetch_limits` and the SDK's own
    /// fetches.
    pub(crate) fn capped_by(self, cap: Cap) -> Self {
        self.map(|mut r| {
            r.cap = Some(cap);
            r
        })
    }

    /// Starts at row `offset`.
    pub fn offset(self, offset: i64) -> Self {
        self.map(|r| r.offset(offset))
    }

    /// Returns at most `limit` rows.
    pub fn limit(self, limit: i64) -> Self {
        self.map(|r| r.limit(limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    #[test]
    fn link_next_is_found() {
        assert_eq!(
            link_next(
                r#"</v1/results/r?offset=10&limit=10>; rel="next", </v1/results/r?offset=0>; rel="first""#
            ),
            Some("/v1/results/r?offset=10&limit=10".into())
        );
        assert_eq!(link_next("<https://h/x>; rel=next"), Some("https://h/x".into()));
        assert_eq!(link_next(r#"<https://h/x>; rel="prev""#), None);
        assert_eq!(link_next("garbage"), None);
    }
}
