//! Arrow IPC streams decoded as they arrive (feature `arrow`).
//!
//! [`ArrowDecoder`] is a push decoder over arrow-ipc's `StreamDecoder`: hand it the body's
//! chunks as they come off the transport, of any size (each chunk becomes an Arrow buffer
//! without a copy), and take record batches out as soon as each is complete. The schema is
//! known as soon as its message has been read, before the first batch. At the end of the
//! body, [`ArrowDecoder::finish`] fails unless the stream's end-of-stream marker was seen, so
//! a body cut anywhere (mid-message or between messages) is an error, never a silently
//! short result.
//!
//! Streams as any Arrow writer produces them decode: every type arrow-rs reads, dictionary
//! deltas and replacements across batches, and buffers compressed with LZ4_FRAME or ZSTD
//! (the `arrow` feature has both codecs; `arrow-minimal` has none, `arrow-lz4` and
//! `arrow-zstd` add one each, and a stream compressed with a codec the build lacks fails with
//! an error that names the codec and the feature). A compressed buffer declares the size it
//! decompresses to and arrow-ipc allocates that much first, so the decoder reads every
//! declared size of a message before the message reaches arrow-ipc and refuses one that
//! declares more than [`ArrowLimits::max_decompressed_message_bytes`] (set per client in
//! [`crate::Config::arrow_limits`]; [`crate::ErrorKind::LimitExceeded`]).
//!
//! A corrupt stream is an error too, after the batches before the damage. arrow-ipc panics
//! on some malformed messages, so the decoder checks each batch's buffers against its body
//! before arrow sees it (the common case: an offset or length pointing outside the body) and,
//! where panics unwind (native targets), turns any other panic of arrow's into an error. On
//! wasm32, where panics abort, a buffer length that is not a whole number of values still
//! traps.
//!
//! Fetches ask for the stream as stored (`Accept-Encoding: identity`: the batches may be
//! compressed already); an answer in a content coding the transport did not decode, or of
//! another media type than `application/vnd.apache.arrow.stream`, is an error that says so.
//!
//! [`ArrowBatches`] (blocking, an `Iterator`) and [`ArrowBatchStream`] (async, a `Stream`)
//! drive the decoder from a response body, holding about one batch in memory at a time.
//! [`crate::arrow_rows`] turns batches into lossless JSON cells or your own types.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures_core::Stream;

mod framer;

use framer::Framer;

use crate::body::{AsyncBody, BlockingBody};
use crate::client::{Async, Blocking, Call, Client};
use crate::config::ArrowLimits;
use crate::endpoint::{Endpoint, HeaderWriter, Operation, RawResponse};
use crate::error::Error;
use crate::models::{AsyncQueryResponse, QueryRequest, QueryResponse, ResultsFormatQuery};
use crate::resources::Results;
use crate::results::{ResultDownload, ResultFetch, ResultMeta};
use crate::transport::TransportError;

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// A push decoder for one Arrow IPC stream. See the [module docs](self).
#[derive(Debug, Default)]
pub struct ArrowDecoder {
    inner: StreamDecoder,
    framer: Framer,
    pending: VecDeque<Buffer>,
    /// Bytes handed to `inner` so far.
    decoded: u64,
    batches: u64,
    rows: u64,
    bytes: u64,
    failed: bool,
}

fn arrow_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::decode(format!("Arrow stream: {what}: {e}"), Some(Box::new(e)))
}

/// `inner.decode(buf)`, with arrow's errors and its panics as decode errors: arrow-ipc
/// panics on some malformed input (a buffer length that is not a whole number of values),
/// and a corrupt response must not take the caller's thread down. Where panics abort (the
/// default on wasm32) this cannot help; the framer's checks stop the common cases first.
fn decode_guarded(inner: &mut StreamDecoder, buf: &mut Buffer) -> Result<Option<RecordBatch>, Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.decode(buf))) {
        Ok(decoded) => decoded.map_err(|e| arrow_error("invalid data", e)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            Err(Error::decode(format!("Arrow stream: invalid data (the IPC decoder failed: {what})"), None))
        }
    }
}

impl ArrowDecoder {
    /// A decoder at the start of a stream, with the default [`ArrowLimits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder at the start of a stream that enforces `limits`.
    pub fn with_limits(limits: ArrowLimits) -> Self {
        Self { framer: Framer::new(limits), ..Self::default() }
    }

    /// Hands the decoder the next chunk of the stream (zero-copy). Empty chunks are fine.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.framer.observe(&chunk);
            self.bytes += chunk.len() as u64;
            self.pending.push_back(Buffer::from(chunk));
        }
    }

    /// How many bytes would complete the part of the stream being read (a length word,
    /// a message's metadata or its body), when the framing is known. A reader that hands the
    /// decoder a whole message body in one chunk saves the decoder from copying it: the
    /// batch's arrays then point into that chunk.
    pub fn wanted(&self) -> Option<usize> {
        self.framer.wanted()
    }

    /// The next complete batch from what was pushed, or `None` when more input is needed.
    /// After an error the decoder stays failed.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>, Error> {
        if self.failed {
            return Err(Error::decode("Arrow stream: decoding already failed", None));
        }
        while let Some(front) = self.pending.front_mut() {
            // Up to what the framer has checked, and no further.
            let mut room = match self.framer.release() {
                (Some(at), Some(stop)) if at <= self.decoded => {
                    self.failed = true;
                    return Err(stop);
                }
                (Some(at), None) if at <= self.decoded => return Ok(None),
                (at, _) => at.map(|at| at - self.decoded),
            };
            // A body that arrow-ipc will take without a copy (whole in this chunk) must sit
            // 8-aligned in memory, as the IPC format lays it out: arrow-ipc reads some
            // buffers (a dense union's offsets) in place and panics on a misaligned one.
            // So the decoder stops at each body's start, and a misaligned whole body is
            // copied into an aligned buffer first (network chunks start anywhere).
            match self.framer.next_body(self.decoded) {
                Some((start, _)) if start > self.decoded => {
                    room = Some(room.map_or(start - self.decoded, |r| r.min(start - self.decoded)));
                }
                Some((_, len))
                    if front.len() as u64 >= len && !(front.as_ptr() as usize).is_multiple_of(8) =>
                {
                    let len = len as usize;
                    let aligned = Buffer::from_slice_ref(&front[..len]);
                    let rest = front.slice(len);
                    *front = aligned;
                    if !rest.is_empty() {
                        self.pending.insert(1, rest);
                    }
                    continue;
                }
                _ => {}
            }
            let Some(front) = self.pending.front_mut() else { break };
            let before = front.len();
            let decoded = match room {
                Some(room) if room < before as u64 => {
                    let mut head = front.slice_with_length(0, room as usize);
                    let decoded = decode_guarded(&mut self.inner, &mut head);
                    *front = front.slice(room as usize - head.len());
                    decoded
                }
                _ => decode_guarded(&mut self.inner, front),
            };
            self.decoded += (before - front.len()) as u64;
            if front.is_empty() {
                self.pending.pop_front();
            }
            match decoded {
                Ok(Some(batch)) => {
                    self.batches += 1;
                    self.rows += batch.num_rows() as u64;
                    return Ok(Some(batch));
                }
                Ok(None) => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// The stream's schema, once its message has been read.
    pub fn schema(&self) -> Option<SchemaRef> {
        self.inner.schema()
    }

    /// Declares the end of the input. Fails if a message was cut, if no schema arrived, or if
    /// the end-of-stream marker was never seen; batches still pending are an error too (take
    /// them with [`ArrowDecoder::next_batch`] first).
    pub fn finish(&mut self) -> Result<(), Error> {
        if self.failed {
            return Err(Error::decode("Arrow stream: decoding already failed", None));
        }
        self.failed = true;
        let truncated = |why: &str| {
            Error::decode(format!("Arrow stream: truncated after {} bytes ({why})", self.bytes), None)
        };
        if self.framer.mid_message() {
            return Err(truncated("the body ends inside a message"));
        }
        if !self.framer.ended() {
            return Err(truncated("no end-of-stream marker"));
        }
        if !self.pending.is_empty() {
            return Err(Error::decode("Arrow stream: finish called with undecoded input", None));
        }
        self.inner.finish().map_err(|e| arrow_error(&format!("truncated after {} bytes", self.bytes), e))?;
        if self.inner.schema().is_none() {
            return Err(Error::decode(format!("Arrow stream: no schema in {} bytes", self.bytes), None));
        }
        self.failed = false;
        Ok(())
    }

    /// Batches decoded so far.
    pub fn batches_decoded(&self) -> u64 {
        self.batches
    }

    /// Rows decoded so far.
    pub fn rows_decoded(&self) -> u64 {
        self.rows
    }

    /// Bytes pushed so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes
    }
}

/// Decodes a whole stream held in memory (tests, small results).
pub fn decode_all(bytes: Bytes) -> Result<(SchemaRef, Vec<RecordBatch>), Error> {
    let mut decoder = ArrowDecoder::new();
    decoder.push(bytes);
    let mut batches = Vec::new();
    while let Some(b) = decoder.next_batch()? {
        batches.push(b);
    }
    decoder.finish()?;
    let schema = decoder.schema().ok_or_else(|| Error::decode("Arrow stream: no schema", None))?;
    Ok((schema, batches))
}

/// What both batch readers share: the decoder, the batch read ahead while looking for the
/// schema, whether the stream is over, and what the response headers said.
#[derive(Debug, Default)]
struct Reading {
    meta: ResultMeta,
    decoder: ArrowDecoder,
    peeked: Option<RecordBatch>,
    done: bool,
}

impl Reading {
    fn new(limits: ArrowLimits) -> Self {
        Self { decoder: ArrowDecoder::with_limits(limits), ..Self::default() }
    }

    /// Takes one pull from the body: a chunk is pushed (`Ok(false)`); the end of the body
    /// finishes the decoder, which fails on a truncated stream (`Ok(true)` otherwise).
    fn feed(&mut self, pulled: Option<Result<Bytes, TransportError>>) -> Result<bool, Error> {
        match pulled {
            Some(Ok(chunk)) => {
                self.decoder.push(chunk);
                Ok(false)
            }
            Some(Err(e)) => Err(Error::transport(e)),
            None => {
                self.done = true;
                self.decoder.finish()?;
                Ok(true)
            }
        }
    }

    /// Once the reader is open, the schema must be known.
    fn opened(self) -> Result<Self, Error> {
        match self.decoder.schema() {
            Some(_) => Ok(self),
            None => Err(Error::decode("Arrow stream: the body ended before its schema", None)),
        }
    }

    /// The read-ahead batch, or `None` when the next one must be pulled (or the stream is
    /// over: see `done`).
    fn take_peeked(&mut self) -> Option<Result<RecordBatch, Error>> {
        self.peeked.take().map(Ok)
    }

    /// What the reader yields for a pull: after an error, nothing more.
    fn settle(&mut self, pulled: Result<Option<RecordBatch>, Error>) -> Option<Result<RecordBatch, Error>> {
        match pulled {
            Ok(batch) => batch.map(Ok),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn schema(&self) -> SchemaRef {
        self.decoder.schema().unwrap_or_else(|| std::sync::Arc::new(arrow_schema::Schema::empty()))
    }
}

/// Record batches decoded from a blocking response body as it is read: an `Iterator`.
/// The schema is read when it is built. Memory: the batch being decoded, plus one chunk.
pub struct ArrowBatches {
    body: BlockingBody,
    reading: Reading,
}

impl std::fmt::Debug for ArrowBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrowBatches").field("decoder", &self.reading.decoder).finish_non_exhaustive()
    }
}

impl ArrowBatches {
    /// Starts decoding `body` with the default [`ArrowLimits`], reading until the schema is
    /// known.
    pub fn open(body: BlockingBody) -> Result<Self, Error> {
        Self::open_with_limits(body, ArrowLimits::DEFAULT)
    }

    /// Starts decoding `body` under `limits`, reading until the schema is known.
    pub fn open_with_limits(body: BlockingBody, limits: ArrowLimits) -> Result<Self, Error> {
        let mut this = Self { body, reading: Reading::new(limits) };
        while this.reading.decoder.schema().is_none() && !this.reading.done {
            this.reading.peeked = this.pull()?;
        }
        this.reading = this.reading.opened()?;
        Ok(this)
    }

    /// What the response headers said (total rows, next page), when read from a result.
    pub fn meta(&self) -> &ResultMeta {
        &self.reading.meta
    }

    /// The schema of the stream.
    pub fn schema(&self) -> SchemaRef {
        self.reading.schema()
    }

    /// The decoder's counters (rows, batches, bytes so far).
    pub fn decoder(&self) -> &ArrowDecoder {
        &self.reading.decoder
    }

    fn pull(&mut self) -> Result<Option<RecordBatch>, Error> {
        loop {
            if let Some(batch) = self.reading.decoder.next_batch()? {
                return Ok(Some(batch));
            }
            // A whole batch body in one read: no copy between the socket and the arrays.
            let want = self.reading.decoder.wanted().unwrap_or(0);
            if self.reading.feed(self.body.next_sized(want))? {
                return Ok(None);
            }
        }
    }
}

impl Iterator for ArrowBatches {
    type Item = Result<RecordBatch, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(b) = self.reading.take_peeked() {
            return Some(b);
        }
        if self.reading.done {
            return None;
        }
        let pulled = self.pull();
        self.reading.settle(pulled)
    }
}

/// Record batches decoded from an async response body as it is read: a `Stream`.
pub struct ArrowBatchStream {
    body: AsyncBody,
    reading: Reading,
}

impl std::fmt::Debug for ArrowBatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrowBatchStream").field("decoder", &self.reading.decoder).finish_non_exhaustive()
    }
}

impl ArrowBatchStream {
    /// Starts decoding `body` with the default [`ArrowLimits`], reading until the schema is
    /// known.
    pub async fn open(body: AsyncBody) -> Result<Self, Error> {
        Self::open_with_limits(body, ArrowLimits::DEFAULT).await
    }

    /// Starts decoding `body` under `limits`, reading until the schema is known.
    pub async fn open_with_limits(body: AsyncBody, limits: ArrowLimits) -> Result<Self, Error> {
        let mut this = Self { body, reading: Reading::new(limits) };
        while this.reading.decoder.schema().is_none() && !this.reading.done {
            this.reading.peeked = std::future::poll_fn(|cx| this.poll_pull(cx)).await?;
        }
        this.reading = this.reading.opened()?;
        Ok(this)
    }

    /// What the response headers said (total rows, next page), when read from a result.
    pub fn meta(&self) -> &ResultMeta {
        &self.reading.meta
    }

    /// The schema of the stream.
    pub fn schema(&self) -> SchemaRef {
        self.reading.schema()
    }

    /// The decoder's counters (rows, batches, bytes so far).
    pub fn decoder(&self) -> &ArrowDecoder {
        &self.reading.decoder
    }

    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<RecordBatch>, Error>> {
        loop {
            if let Some(batch) = self.reading.decoder.next_batch()? {
                return Poll::Ready(Ok(Some(batch)));
            }
            let Poll::Ready(pulled) = Pin::new(&mut self.body).poll_next(cx) else { return Poll::Pending };
            if self.reading.feed(pulled)? {
                return Poll::Ready(Ok(None));
            }
        }
    }

    /// The next batch, or `None` at the end of the stream.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Stream for ArrowBatchStream {
    type Item = Result<RecordBatch, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(b) = this.reading.take_peeked() {
            return Poll::Ready(Some(b));
        }
        if this.reading.done {
            return Poll::Ready(None);
        }
        match this.poll_pull(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(pulled) => Poll::Ready(this.reading.settle(pulled)),
        }
    }
}

/// A whole Arrow result in memory.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ArrowResult {
    /// The schema.
    pub schema: SchemaRef,
    /// The batches, in order.
    pub batches: Vec<RecordBatch>,
    /// What the response headers said.
    pub meta: ResultMeta,
}

impl ArrowResult {
    /// Rows in all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// A ready result's body must be an Arrow stream when its type is given.
fn arrow_content_type(meta: &ResultMeta) -> Result<(), Error> {
    let mut headers = http::HeaderMap::new();
    if let Some(ct) = meta.content_type.as_deref().and_then(|c| http::HeaderValue::from_str(c).ok()) {
        headers.insert(http::header::CONTENT_TYPE, ct);
    }
    crate::results::check_content_type(&headers, ARROW_STREAM)
        .map_err(|e| e.with_operation(crate::ops::GET_RESULT.id))
}

/// The head of a `200` Arrow answer to a query: plain bytes of an Arrow stream.
fn check_arrow_head(headers: &http::HeaderMap) -> Result<(), Error> {
    let op = crate::ops::QUERY.id;
    crate::results::check_content_encoding(headers, ARROW_STREAM).map_err(|e| e.with_operation(op))?;
    crate::results::check_content_type(headers, ARROW_STREAM).map_err(|e| e.with_operation(op))
}

fn require_arrow(call: &Call<impl Sized, ResultDownload>) -> Result<(), Error> {
    if call.request().format == ResultsFormatQuery::Arrow {
        Ok(())
    } else {
        Err(Error::config(format!("Arrow decoding asked of a `{}` download", call.request().format)))
    }
}

impl<M: Clone> Results<'_, M> {
    /// `GET /v1/results/{id}?format=arrow`: the result as Arrow record batches, whole
    /// ([`Call::arrow`]) or streamed ([`Call::arrow_stream`]).
    pub fn arrow(&self, id: impl Into<String>, database_id: impl Into<String>) -> Call<M, ResultDownload> {
        self.download(id, database_id, ResultsFormatQuery::Arrow)
    }
}

impl Call<Blocking, ResultDownload> {
    /// The result as record batches decoded off the socket as they arrive.
    pub fn arrow_stream(self) -> Result<ResultFetch<ArrowBatches>, Error> {
        require_arrow(&self)?;
        let limits = self.client().config().arrow_limits;
        match self.open()? {
            ResultFetch::Ready(d) => {
                arrow_content_type(&d.meta)?;
                let mut batches = ArrowBatches::open_with_limits(d.body, limits)?;
                batches.reading.meta = d.meta;
                Ok(ResultFetch::Ready(batches))
            }
            ResultFetch::NotReady(n) => Ok(ResultFetch::NotReady(n)),
        }
    }

    /// The whole result as record batches.
    pub fn arrow(self) -> Result<ResultFetch<ArrowResult>, Error> {
        Ok(match self.arrow_stream()? {
            ResultFetch::Ready(stream) => {
                let schema = stream.schema();
                let meta = stream.meta().clone();
                let batches = stream.collect::<Result<Vec<_>, _>>()?;
                ResultFetch::Ready(ArrowResult { schema, batches, meta })
            }
            ResultFetch::NotReady(n) => ResultFetch::NotReady(n),
        })
    }
}

impl Call<Async, ResultDownload> {
    /// The result as a `Stream` of record batches decoded off the socket as they arrive.
    pub async fn arrow_stream(self) -> Result<ResultFetch<ArrowBatchStream>, Error> {
        require_arrow(&self)?;
        let limits = self.client().config().arrow_limits;
        match self.open().await? {
            ResultFetch::Ready(d) => {
                arrow_content_type(&d.meta)?;
                let mut batches = ArrowBatchStream::open_with_limits(d.body, limits).await?;
                batches.reading.meta = d.meta;
                Ok(ResultFetch::Ready(batches))
            }
            ResultFetch::NotReady(n) => Ok(ResultFetch::NotReady(n)),
        }
    }

    /// The whole result as record batches.
    pub async fn arrow(self) -> Result<ResultFetch<ArrowResult>, Error> {
        Ok(match self.arrow_stream().await? {
            ResultFetch::Ready(mut stream) => {
                let schema = stream.schema();
                let meta = stream.meta().clone();
                let mut batches = Vec::new();
                while let Some(b) = stream.next_batch().await {
                    batches.push(b?);
                }
                ResultFetch::Ready(ArrowResult { schema, batches, meta })
            }
            ResultFetch::NotReady(n) => ResultFetch::NotReady(n),
        })
    }
}

/// `POST /v1/query` answered directly as an Arrow stream, saving the round trip of fetching
/// the result: [`Client::query_arrow`].
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

fn submitted(raw: RawResponse) -> Result<QueryArrowOutcome<std::convert::Infallible>, Error> {
    let op = crate::ops::QUERY.id;
    if raw.status.as_u16() != 202 {
        return Err(Error::from_response(&raw).with_operation(op));
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
    /// `POST /v1/query` answered as an Arrow stream: see [`QueryArrow`].
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
        let (parts, body) = self.send_streaming()?.into_parts();
        if parts.status != http::StatusCode::OK {
            let body = crate::transport::collect_blocking(body).map_err(Error::transport)?;
            return submitted(RawResponse { status: parts.status, headers: parts.headers, body })
                .map(relabel);
        }
        check_arrow_head(&parts.headers)?;
        let meta = QueryMeta::from_headers(&parts.headers);
        let mut batches = ArrowBatches::open_with_limits(body, limits)?;
        batches.reading.meta = ResultMeta::from_headers(&parts.headers);
        Ok(QueryArrowOutcome::Ready { meta, batches })
    }
}

impl Call<Async, QueryArrow> {
    /// Runs the query; its batches are decoded off the socket as they arrive.
    pub async fn stream(self) -> Result<QueryArrowOutcome<ArrowBatchStream>, Error> {
        let limits = self.client().config().arrow_limits;
        let (parts, body) = self.send_streaming().await?.into_parts();
        if parts.status != http::StatusCode::OK {
            let body = body.collect().await.map_err(Error::transport)?;
            return submitted(RawResponse { status: parts.status, headers: parts.headers, body })
                .map(relabel);
        }
        check_arrow_head(&parts.headers)?;
        let meta = QueryMeta::from_headers(&parts.headers);
        let mut batches = ArrowBatchStream::open_with_limits(body, limits).await?;
        batches.reading.meta = ResultMeta::from_headers(&parts.headers);
        Ok(QueryArrowOutcome::Ready { meta, batches })
    }
}

/// The database the rows of a query that went asynchronous are read from: the header given,
/// else the body's `database_id`.
fn follow_database(client_db: Option<&str>, body: &QueryRequest) -> String {
    client_db.map(str::to_owned).or_else(|| body.database_id.as_value().cloned()).unwrap_or_default()
}

impl Client<Blocking> {
    /// Runs a query and returns all its rows as Arrow, however the server answers: directly
    /// as a stream, or, when the query goes asynchronous, by waiting for its result and
    /// fetching it as Arrow (never through 50k-row JSON pages).
    pub fn query_to_arrow(
        &self,
        body: QueryRequest,
        database_id: Option<&str>,
    ) -> Result<ArrowResult, Error> {
        let mut call = self.query_arrow(body.clone());
        if let Some(db) = database_id {
            call = call.database_id(db);
        }
        match call.stream()? {
            QueryArrowOutcome::Ready { batches, .. } => {
                let schema = batches.schema();
                let meta = batches.meta().clone();
                Ok(ArrowResult { schema, batches: batches.collect::<Result<_, _>>()?, meta })
            }
            QueryArrowOutcome::Submitted { run, result_id } => {
                let db = follow_database(database_id, &body);
                let result_id = match result_id {
                    Some(id) => id,
                    None => self.wait_for_query_run(&run.query_run_id, &db)?.result_id.ok_or_else(|| {
                        Error::result_failed(crate::ops::QUERY.id, "the query run ended without a result")
                    })?,
                };
                self.stored_result_arrow(&result_id, &db)
            }
        }
    }

    /// All rows of a stored result as Arrow, once it is ready: waits for it (status polls,
    /// never the rows), then fetches it as one Arrow stream.
    pub fn stored_result_arrow(&self, result_id: &str, database_id: &str) -> Result<ArrowResult, Error> {
        self.wait_for_result(result_id, database_id)?;
        ready_or_timeout(self.results().arrow(result_id, database_id).arrow()?)
    }

    /// The full row set behind an inline answer of [`Client::query`] (a preview when
    /// `truncated`), through Arrow rather than JSON pages.
    pub fn follow_to_arrow(&self, response: &QueryResponse, database_id: &str) -> Result<ArrowResult, Error> {
        self.stored_result_arrow(result_of(response)?, database_id)
    }
}

impl Client<Async> {
    /// Runs a query and returns all its rows as Arrow; see the blocking
    /// [`Client::query_to_arrow`].
    pub async fn query_to_arrow(
        &self,
        body: QueryRequest,
        database_id: Option<&str>,
    ) -> Result<ArrowResult, Error> {
        let mut call = self.query_arrow(body.clone());
        if let Some(db) = database_id {
            call = call.database_id(db);
        }
        match call.stream().await? {
            QueryArrowOutcome::Ready { mut batches, .. } => {
                let schema = batches.schema();
                let meta = batches.meta().clone();
                let mut all = Vec::new();
                while let Some(b) = batches.next_batch().await {
                    all.push(b?);
                }
                Ok(ArrowResult { schema, batches: all, meta })
            }
            QueryArrowOutcome::Submitted { run, result_id } => {
                let db = follow_database(database_id, &body);
                let result_id = match result_id {
                    Some(id) => id,
                    None => {
                        self.wait_for_query_run(&run.query_run_id, &db).await?.result_id.ok_or_else(|| {
                            Error::result_failed(crate::ops::QUERY.id, "the query run ended without a result")
                        })?
                    }
                };
                self.stored_result_arrow(&result_id, &db).await
            }
        }
    }

    /// All rows of a stored result as Arrow, once it is ready: see the blocking
    /// [`Client::stored_result_arrow`].
    pub async fn stored_result_arrow(
        &self,
        result_id: &str,
        database_id: &str,
    ) -> Result<ArrowResult, Error> {
        self.wait_for_result(result_id, database_id).await?;
        ready_or_timeout(self.results().arrow(result_id, database_id).arrow().await?)
    }

    /// The full row set behind an inline answer of [`Client::query`], through Arrow.
    pub async fn follow_to_arrow(
        &self,
        response: &QueryResponse,
        database_id: &str,
    ) -> Result<ArrowResult, Error> {
        self.stored_result_arrow(result_of(response)?, database_id).await
    }
}

fn ready_or_timeout(fetch: ResultFetch<ArrowResult>) -> Result<ArrowResult, Error> {
    match fetch {
        ResultFetch::Ready(r) => Ok(r),
        ResultFetch::NotReady(n) => {
            Err(Error::wait_timeout(format!("result {} was ready, then not ({})", n.result_id, n.status)))
        }
    }
}

fn result_of(response: &QueryResponse) -> Result<&str, Error> {
    response.result_id.as_deref().ok_or_else(|| {
        let why = response.warning.as_deref().unwrap_or("the server kept no result for this query");
        Error::result_failed(crate::ops::QUERY.id, why)
    })
}
