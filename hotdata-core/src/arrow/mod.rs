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
//! declares more than [`crate::ArrowLimits::max_decompressed_message_bytes`] (set per client in
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

mod batches;
mod decoder;
mod framer;
mod query;

pub use batches::{ArrowBatchStream, ArrowBatches, ArrowResult};
pub use decoder::{ArrowDecoder, decode_all};
pub use query::{QueryArrow, QueryArrowOutcome, QueryMeta};

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";
