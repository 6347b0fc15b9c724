//! Queries answered as Arrow: [`QueryArrow`] (`POST /v1/query` with an Arrow `Accept`). The
//! flows that return every row of a query or a stored result as Arrow (`Client::sql(..)
//! .arrow()`, `query_to_arrow`, `stored_result_arrow`, `follow_to_arrow`) live in
//! [`crate::sql`], written once for both client modes.

use super::ARROW_STREAM;
use super::batches::{ArrowBatchStream, ArrowBatches, check_arrow_type};
use crate::client::{Async, Blocking, Call, Client};
use crate::endpoint::{Endpoint, HeaderWriter, Operation, RawResponse};
use crate::error::Error;
use crate::models::{AsyncQueryResponse, QueryRequest};
use crate::results::ResultMeta;

/// What the head of a `200` Arrow answer to a query says, once it is known to announce the
/// plain bytes of an Arrow stream.
fn arrow_head(headers: &http::HeaderMap) -> Result<ResultMeta, Error> {
    let op = crate::ops::QUERY.id;
    crate::results::check_content_encoding(headers, ARROW_STREAM).map_err(|e| e.with_operation(op))?;
    let meta = ResultMeta::from_headers(headers);
    check_arrow_type(&meta, op)?;
    Ok(meta)
}

/// `POST /v1/query` answered directly as an Arrow stream, saving the round trip of fetching
/// the result: [`Client::query_arrow`]. The call's timeout bounds the wait for the answer's
/// head (the query running); its body is then bounded by the idle timeout
/// ([`Config::body_idle_timeout`](crate::Config::body_idle_timeout)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueryArrow {
    /// The query.
    pub body: QueryRequest,
    /// `X-Database-Id`, as an alternative to the body's `database_id`.
    pub database_id: Option<String>,
}

impl QueryArrow {
    /// A query answered as Arrow.
    pub fn new(body: QueryRequest) -> Self {
        Self { body, database_id: None }
    }
}

impl Endpoint for QueryArrow {
    type Output = RawResponse;

    fn operation(&self) -> &'static Operation {
        &crate::ops::QUERY
    }

    fn path(&self) -> String {
        "/v1/query".to_owned()
    }

    fn headers(&self, headers: &mut HeaderWriter) {
        if let Some(db) = &self.database_id {
            headers.push("X-Database-Id", db);
        }
        // The stream as written (its batches may be compressed already); see
        // `ResultDownload`'s headers.
        headers.push("Accept-Encoding", "identity");
    }

    fn accept(&self) -> &'static str {
        ARROW_STREAM
    }

    fn body(&self) -> Result<Option<(&'static str, crate::RequestBody)>, Error> {
        crate::endpoint::json_body(&self.body)
    }

    fn parse(&self, response: &RawResponse) -> Result<RawResponse, Error> {
        Ok(response.clone())
    }
}

/// What the `X-Query-*` headers of an Arrow query answer say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryMeta {
    /// `X-Query-Run-Id`
    pub query_run_id: Option<String>,
    /// `X-Result-Id`: the stored result, fetchable again later.
    pub result_id: Option<String>,
    /// `X-Total-Row-Count`
    pub total_row_count: Option<u64>,
    /// `X-Execution-Time-Ms`
    pub execution_time_ms: Option<u64>,
    /// `X-Query-Warning`
    pub warning: Option<String>,
}

impl QueryMeta {
    /// Reads the `X-Query-*` headers.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned());
        Self {
            query_run_id: text("x-query-run-id"),
            result_id: text("x-result-id"),
            total_row_count: text("x-total-row-count").and_then(|v| v.parse().ok()),
            execution_time_ms: text("x-execution-time-ms").and_then(|v| v.parse().ok()),
            warning: text("x-query-warning"),
        }
    }
}

/// The answer to [`Client::query_arrow`].
#[derive(Debug)]
pub enum QueryArrowOutcome<S> {
    /// The query ran; its rows stream as Arrow.
    Ready {
        /// The `X-Query-*` headers.
        meta: QueryMeta,
        /// The batches.
        batches: S,
    },
    /// The query continues asynchronously (202).
    Submitted {
        /// The server's acknowledgement.
        run: AsyncQueryResponse,
        /// `X-Result-Id`, when the server named the result to come.
        result_id: Option<String>,
    },
}

fn submitted(
    raw: RawResponse,
    wall: std::time::SystemTime,
) -> Result<QueryArrowOutcome<std::convert::Infallible>, Error> {
    let op = crate::ops::QUERY.id;
    if raw.status.as_u16() != 202 {
        return Err(Error::from_response_at(&raw, wall).with_operation(op));
    }
    let run: AsyncQueryResponse = crate::endpoint::decode_json(&raw).map_err(|e| e.with_operation(op))?;
    let result_id = raw.headers.get("x-result-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    Ok(QueryArrowOutcome::Submitted { run, result_id })
}

fn relabel<S>(o: QueryArrowOutcome<std::convert::Infallible>) -> QueryArrowOutcome<S> {
    match o {
        QueryArrowOutcome::Submitted { run, result_id } => QueryArrowOutcome::Submitted { run, result_id },
        QueryArrowOutcome::Ready { batches, .. } => match batches {},
    }
}

impl<M: Clone> Client<M> {
    /// `POST /v1/query` answered as an Arrow stream: see [`QueryArrow`] (the body is bounded
    /// by [`Config::body_idle_timeout`](crate::Config::body_idle_timeout)).
    pub fn query_arrow(&self, body: QueryRequest) -> Call<M, QueryArrow> {
        self.call(QueryArrow::new(body))
    }
}

impl<M> Call<M, QueryArrow> {
    /// Sets `X-Database-Id`.
    pub fn database_id(self, database_id: impl Into<String>) -> Self {
        self.map(|mut r| {
            r.database_id = Some(database_id.into());
            r
        })
    }
}

impl Call<Blocking, QueryArrow> {
    /// Runs the query; its batches are decoded off the socket as they arrive.
    pub fn stream(self) -> Result<QueryArrowOutcome<ArrowBatches>, Error> {
        let limits = self.client().config().arrow_limits;
        let (_, rt) = self.client().blocking_parts();
        let (parts, body) = self.send_streaming()?.into_parts();
        if parts.status != http::StatusCode::OK {
            let body = crate::transport::collect_blocking(body).map_err(Error::transport)?;
            let raw = RawResponse { status: parts.status, headers: parts.headers, body };
            return submitted(raw, rt.wall_clock()).map(relabel);
        }
        let result_meta = arrow_head(&parts.headers)?;
        let meta = QueryMeta::from_headers(&parts.headers);
        let mut batches = ArrowBatches::open_with_limits(body, limits)?;
        batches.set_meta(result_meta);
        Ok(QueryArrowOutcome::Ready { meta, batches })
    }
}

impl Call<Async, QueryArrow> {
    /// Runs the query; its batches are decoded off the socket as they arrive.
    pub async fn stream(self) -> Result<QueryArrowOutcome<ArrowBatchStream>, Error> {
        let limits = self.client().config().arrow_limits;
        let (_, rt) = self.client().async_parts();
        let (parts, body) = self.send_streaming().await?.into_parts();
        if parts.status != http::StatusCode::OK {
            let body = body.collect().await.map_err(Error::transport)?;
            let raw = RawResponse { status: parts.status, headers: parts.headers, body };
            return submitted(raw, rt.wall_clock()).map(relabel);
        }
        let result_meta = arrow_head(&parts.headers)?;
        let meta = QueryMeta::from_headers(&parts.headers);
        let mut batches = ArrowBatchStream::open_with_limits(body, limits).await?;
        batches.set_meta(result_meta);
        Ok(QueryArrowOutcome::Ready { meta, batches })
    }
}
