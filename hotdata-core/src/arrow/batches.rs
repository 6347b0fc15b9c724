//! Record batches read from a response body as it arrives: [`ArrowBatches`] (blocking, an
//! `Iterator`) and [`ArrowBatchStream`] (async, a `Stream`), whole results
//! ([`ArrowResult`]), and stored results fetched as Arrow (`results().arrow(..)`).

use std::pin::Pin;
use std::task::{Context, Poll};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use futures_core::Stream;

use super::ARROW_STREAM;
use super::decoder::ArrowDecoder;
use crate::body::{AsyncBody, BlockingBody};
use crate::client::{Async, Blocking, Call};
use crate::config::{ArrowLimits, Cap};
use crate::error::Error;
use crate::models::ResultsFormatQuery;
use crate::resources::Results;
use crate::results::{ResultDownload, ResultFetch, ResultMeta};
use crate::transport::TransportError;

/// What both batch readers share: the decoder, the batch read ahead while looking for the
/// schema, whether the stream is over, and what the response headers said.
#[derive(Debug, Default)]
struct Reading {
    meta: ResultMeta,
    decoder: ArrowDecoder,
    peeked: Option<RecordBatch>,
    done: bool,
    /// Caps on the rows and bytes read, when the reader is read whole on the caller's
    /// behalf ([`FetchLimits`](crate::FetchLimits)).
    cap: Option<Cap>,
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
                if let Some(cap) = &self.cap {
                    cap.check_bytes(self.decoder.bytes_received())?;
                }
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

    /// A batch decoded: counted against the row cap.
    fn decoded(&self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        if let Some(cap) = &self.cap {
            cap.check_rows(self.decoder.rows_decoded(), false)?;
        }
        Ok(batch)
    }

    /// Sets the caps: a total announced in the head is checked at once, as are the rows
    /// and bytes already read.
    fn set_cap(&mut self, cap: Cap) -> Result<(), Error> {
        if let Some(total) = self.meta.total_row_count {
            cap.check_rows(total, true)?;
        }
        cap.check_bytes(self.decoder.bytes_received())?;
        cap.check_rows(self.decoder.rows_decoded(), false)?;
        self.cap = Some(cap);
        Ok(())
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

/// The accessors both readers share (each holds its [`Reading`] in `reading`).
macro_rules! reader_accessors {
    () => {
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

        /// Sets what the response headers said.
        pub(super) fn set_meta(&mut self, meta: ResultMeta) {
            self.reading.meta = meta;
        }

        /// Caps what this reader reads (checked at once against a total in its head and
        /// what was read, then as it reads). Runs from the downloads and the flows that
        /// fetch a whole result on the caller's behalf.
        pub(crate) fn capped(mut self, cap: Cap) -> Result<Self, Error> {
            self.reading.set_cap(cap)?;
            Ok(self)
        }
    };
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

    reader_accessors!();

    /// Reads every remaining batch into one [`ArrowResult`].
    pub fn into_result(mut self) -> Result<ArrowResult, Error> {
        let (schema, meta) = (self.schema(), self.meta().clone());
        let batches = self.by_ref().collect::<Result<_, _>>()?;
        Ok(ArrowResult { schema, batches, meta, bytes_received: self.reading.decoder.bytes_received() })
    }

    fn pull(&mut self) -> Result<Option<RecordBatch>, Error> {
        loop {
            if let Some(batch) = self.reading.decoder.next_batch()? {
                return self.reading.decoded(batch).map(Some);
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

    reader_accessors!();

    /// Reads every remaining batch into one [`ArrowResult`].
    pub async fn into_result(mut self) -> Result<ArrowResult, Error> {
        let (schema, meta) = (self.schema(), self.meta().clone());
        let mut batches = Vec::new();
        while let Some(b) = self.next_batch().await {
            batches.push(b?);
        }
        Ok(ArrowResult { schema, batches, meta, bytes_received: self.reading.decoder.bytes_received() })
    }

    fn poll_pull(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<RecordBatch>, Error>> {
        loop {
            if let Some(batch) = self.reading.decoder.next_batch()? {
                return Poll::Ready(self.reading.decoded(batch).map(Some));
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
    /// The bytes of the Arrow stream that arrived (the body as sent: batches compressed by
    /// the writer count at their compressed size).
    pub bytes_received: u64,
}

impl ArrowResult {
    /// Rows in all batches.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// An Arrow answer's `Content-Type`, when it has one, must be the Arrow stream's (parameters
/// aside), so that an HTML error page or a JSON body is reported as what it is, not as a
/// truncated stream.
pub(super) fn check_arrow_type(meta: &ResultMeta, operation: &'static str) -> Result<(), Error> {
    match meta.content_type.as_deref() {
        Some(ct) if !ct.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(ARROW_STREAM) => {
            Err(Error::decode(
                format!("expected a body of type {ARROW_STREAM}, the server sent `{ct}`"),
                None,
            )
            .with_operation(operation))
        }
        _ => Ok(()),
    }
}

fn require_arrow(call: &Call<impl Sized, ResultDownload>) -> Result<(), Error> {
    if call.request().format == ResultsFormatQuery::Arrow {
        Ok(())
    } else {
        Err(Error::config(format!("Arrow decoding asked of a `{}` download", call.request().format)))
    }
}

impl<M: Clone> Results<'_, M> {
    /// `GET /v1/results/{id}?format=arrow`: the result as Arrow record batches, buffered
    /// ([`Call::collect`]) or streamed ([`Call::stream`]). The body is bounded by the
    /// idle timeout ([`Config::body_idle_timeout`](crate::Config::body_idle_timeout)), not by
    /// the whole-request timeout, which bounds the wait for its head.
    pub fn arrow(&self, id: impl Into<String>, database_id: impl Into<String>) -> Call<M, ResultDownload> {
        self.download(id, database_id, ResultsFormatQuery::Arrow)
    }
}

impl Call<Blocking, ResultDownload> {
    /// **Streamed:** the result as record batches decoded off the socket as they arrive (an
    /// `Iterator`, about one batch in memory at a time).
    pub fn stream(self) -> Result<ResultFetch<ArrowBatches>, Error> {
        require_arrow(&self)?;
        let limits = self.client().config().arrow_limits;
        let cap = self.request().cap;
        match self.open()? {
            ResultFetch::Ready(d) => {
                check_arrow_type(&d.meta, crate::ops::GET_RESULT.id)?;
                let mut batches = ArrowBatches::open_with_limits(d.body, limits)?;
                batches.set_meta(d.meta);
                Ok(ResultFetch::Ready(match cap {
                    Some(cap) => batches.capped(cap)?,
                    None => batches,
                }))
            }
            ResultFetch::NotReady(n) => Ok(ResultFetch::NotReady(n)),
        }
    }

    /// **Buffered:** the whole result in memory as record batches.
    pub fn collect(self) -> Result<ResultFetch<ArrowResult>, Error> {
        Ok(match self.stream()? {
            ResultFetch::Ready(stream) => ResultFetch::Ready(stream.into_result()?),
            ResultFetch::NotReady(n) => ResultFetch::NotReady(n),
        })
    }

    /// The result as streamed record batches: renamed [`Call::stream`].
    #[deprecated(since = "0.1.0", note = "renamed `stream()` (streamed) beside `collect()` (buffered)")]
    pub fn arrow_stream(self) -> Result<ResultFetch<ArrowBatches>, Error> {
        self.stream()
    }

    /// The whole result as record batches: renamed [`Call::collect`].
    #[deprecated(since = "0.1.0", note = "renamed `collect()` (buffered) beside `stream()` (streamed)")]
    pub fn arrow(self) -> Result<ResultFetch<ArrowResult>, Error> {
        self.collect()
    }
}

impl Call<Async, ResultDownload> {
    /// **Streamed:** the result as a `Stream` of record batches decoded off the socket as
    /// they arrive (about one batch in memory at a time).
    pub async fn stream(self) -> Result<ResultFetch<ArrowBatchStream>, Error> {
        require_arrow(&self)?;
        let limits = self.client().config().arrow_limits;
        let cap = self.request().cap;
        match self.open().await? {
            ResultFetch::Ready(d) => {
                check_arrow_type(&d.meta, crate::ops::GET_RESULT.id)?;
                let mut batches = ArrowBatchStream::open_with_limits(d.body, limits).await?;
                batches.set_meta(d.meta);
                Ok(ResultFetch::Ready(match cap {
                    Some(cap) => batches.capped(cap)?,
                    None => batches,
                }))
            }
            ResultFetch::NotReady(n) => Ok(ResultFetch::NotReady(n)),
        }
    }

    /// **Buffered:** the whole result in memory as record batches.
    pub async fn collect(self) -> Result<ResultFetch<ArrowResult>, Error> {
        Ok(match self.stream().await? {
            ResultFetch::Ready(stream) => ResultFetch::Ready(stream.into_result().await?),
            ResultFetch::NotReady(n) => ResultFetch::NotReady(n),
        })
    }

    /// The result as streamed record batches: renamed [`Call::stream`].
    #[deprecated(since = "0.1.0", note = "renamed `stream()` (streamed) beside `collect()` (buffered)")]
    pub async fn arrow_stream(self) -> Result<ResultFetch<ArrowBatchStream>, Error> {
        self.stream().await
    }

    /// The whole result as record batches: renamed [`Call::collect`].
    #[deprecated(since = "0.1.0", note = "renamed `collect()` (buffered) beside `stream()` (streamed)")]
    pub async fn arrow(self) -> Result<ResultFetch<ArrowResult>, Error> {
        self.collect().await
    }
}
