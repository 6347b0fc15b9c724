//! The push decoder: bytes in, record batches out, checked by the [framer](super::framer)
//! before arrow-ipc sees them.

use std::collections::VecDeque;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::SchemaRef;
use bytes::Bytes;

use super::framer::Framer;
use crate::config::ArrowLimits;
use crate::error::Error;

/// A push decoder for one Arrow IPC stream. See the [module docs](super).
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
