//! Body types crossing the transport seam: our own newtypes, so no HTTP library's body type
//! ever appears in a public signature.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::transport::error::TransportError;

/// The body of a request the core asks a transport to send.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestBody {
    /// No body.
    #[default]
    Empty,
    /// A body held in memory.
    Bytes(Bytes),
    /// A body read while it is sent, never held whole: see [`StreamingBody`].
    Streaming(StreamingBody),
}

impl RequestBody {
    /// The body's length in bytes (for a streaming body: its declared length, or 0).
    pub fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Bytes(b) => b.len(),
            Self::Streaming(s) => s.content_length().and_then(|n| usize::try_from(n).ok()).unwrap_or(0),
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of the body (empty for [`RequestBody::Empty`], and for a streaming body,
    /// which a transport must take with [`StreamingBody::take_reader`] or
    /// [`StreamingBody::take_stream`] instead).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Empty | Self::Streaming(_) => &[],
            Self::Bytes(b) => b,
        }
    }

    /// The streaming body, if this is one.
    pub fn as_streaming(&self) -> Option<&StreamingBody> {
        match self {
            Self::Streaming(s) => Some(s),
            _ => None,
        }
    }
}

/// A source of body chunks for async transports.
#[cfg(not(target_family = "wasm"))]
pub type BodyChunkStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;
/// A source of body chunks for async transports.
#[cfg(target_family = "wasm")]
pub type BodyChunkStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>>>>;

enum BodySource {
    Reader(Box<dyn std::io::Read + Send>),
    Stream(BodyChunkStream),
}

/// A request body read while it is sent: a reader (for blocking transports) or a stream of
/// chunks (for async ones), with its length when known (else the transport sends it
/// chunked). It can be sent **once**: the first transport to take it consumes it, and a
/// clone shares the same source, so a retry finds it gone and must fail with
/// [`crate::TransportErrorKind::Request`]. Equality is identity.
#[derive(Clone)]
pub struct StreamingBody {
    source: std::sync::Arc<std::sync::Mutex<Option<BodySource>>>,
    len: Option<u64>,
}

impl StreamingBody {
    /// A body read from `reader`, of `len` bytes when known.
    pub fn from_reader(reader: impl std::io::Read + Send + 'static, len: Option<u64>) -> Self {
        Self::new(BodySource::Reader(Box::new(reader)), len)
    }

    /// A body made of the chunks of `stream`, of `len` bytes when known.
    #[cfg(not(target_family = "wasm"))]
    pub fn from_stream(
        stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
        len: Option<u64>,
    ) -> Self {
        Self::new(BodySource::Stream(Box::pin(stream)), len)
    }

    /// A body made of the chunks of `stream`, of `len` bytes when known.
    #[cfg(target_family = "wasm")]
    pub fn from_stream(
        stream: impl Stream<Item = std::io::Result<Bytes>> + 'static,
        len: Option<u64>,
    ) -> Self {
        Self::new(BodySource::Stream(Box::pin(stream)), len)
    }

    // On wasm the stream is not `Send` (browser streams hold `JsValue`s) and nothing crosses
    // threads; the `Arc` is what lets clones share the one-shot source everywhere.
    #[cfg_attr(target_family = "wasm", allow(clippy::arc_with_non_send_sync))]
    fn new(source: BodySource, len: Option<u64>) -> Self {
        Self { source: std::sync::Arc::new(std::sync::Mutex::new(Some(source))), len }
    }

    /// The declared length, if known.
    pub fn content_length(&self) -> Option<u64> {
        self.len
    }

    fn take(&self) -> Option<BodySource> {
        self.source.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Takes the reader (blocking transports). `None` when the body was already taken or is
    /// a stream.
    pub fn take_reader(&self) -> Option<Box<dyn std::io::Read + Send>> {
        let mut slot = self.source.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some(BodySource::Reader(r)) => Some(r),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Takes the stream (async transports). `None` when the body was already taken or is a
    /// reader.
    pub fn take_stream(&self) -> Option<BodyChunkStream> {
        let mut slot = self.source.lock().unwrap_or_else(|e| e.into_inner());
        match slot.take() {
            Some(BodySource::Stream(s)) => Some(s),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Drops the source, if not taken yet.
    pub fn discard(&self) {
        drop(self.take());
    }
}

impl PartialEq for StreamingBody {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.source, &other.source)
    }
}

impl Eq for StreamingBody {}

impl fmt::Debug for StreamingBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingBody").field("len", &self.len).finish_non_exhaustive()
    }
}

impl From<Bytes> for RequestBody {
    fn from(b: Bytes) -> Self {
        Self::Bytes(b)
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(Bytes::from(b))
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("RequestBody::Empty"),
            Self::Bytes(b) => write!(f, "RequestBody::Bytes({} bytes)", b.len()),
            Self::Streaming(s) => write!(f, "RequestBody::Streaming({:?} bytes)", s.content_length()),
        }
    }
}

type ChunkIter = dyn Iterator<Item = Result<Bytes, TransportError>> + Send;
type BodyReader = dyn std::io::Read + Send;

/// Chunks of a body read from a `Read` are this long, unless a reader asks for more.
const READ_CHUNK: usize = 64 * 1024;
/// The first read of a body of unknown length: most answers (JSON) fit; a body that needs
/// more reads is read [`READ_CHUNK`] at a time.
const FIRST_READ: usize = 8 * 1024;
/// The most a single sized read takes at once.
const MAX_SIZED_READ: usize = 64 * 1024 * 1024;

/// A response body read by a blocking transport: an iterator of chunks.
///
/// A transport whose body is a `Read` (ureq) hands it over as is with
/// [`BlockingBody::from_reader`]: the core then reads each chunk into its own buffer, sized
/// to what the consumer needs next when it knows ([`BlockingBody::next_sized`]: the Arrow
/// reader asks for whole record-batch bodies, so they are read once, straight into the
/// memory the batch's arrays then point into).
pub struct BlockingBody(Inner);

enum Inner {
    Chunks(Box<ChunkIter>),
    Reader {
        reader: Box<BodyReader>,
        scratch: Vec<u8>,
        /// The last large chunk handed out: read into again once nobody else holds it.
        last: Option<Bytes>,
        /// Whether a read has returned bytes yet.
        read_any: bool,
        classify: fn(std::io::Error) -> TransportError,
        done: bool,
    },
}

impl BlockingBody {
    /// A body made of the chunks an iterator yields.
    pub fn from_chunks(chunks: impl Iterator<Item = Result<Bytes, TransportError>> + Send + 'static) -> Self {
        Self(Inner::Chunks(Box::new(chunks)))
    }

    /// A body read from `reader`; `classify` turns its I/O errors into transport errors
    /// (telling a timeout from a broken body). Read errors of kind `Interrupted` are retried.
    pub fn from_reader(
        reader: impl std::io::Read + Send + 'static,
        classify: fn(std::io::Error) -> TransportError,
    ) -> Self {
        Self(Inner::Reader {
            reader: Box::new(reader),
            scratch: Vec::new(),
            last: None,
            read_any: false,
            classify,
            done: false,
        })
    }

    /// A body held in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::from_chunks((!bytes.is_empty()).then_some(Ok(bytes)).into_iter())
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from_chunks(std::iter::empty())
    }

    /// The next chunk, when the caller knows it needs `want` bytes next (0: unknown). A body
    /// read from a `Read` reads at most `want` bytes, and more than 64 KiB (up to 64 MiB)
    /// straight into one buffer, without an extra copy; other bodies return their next
    /// chunk, whatever its size.
    ///
    /// That buffer is the previous large chunk's when every copy of it (and of the arrays
    /// made from it) has been dropped, so a reader that drops each record batch before
    /// asking for the next reads them all into the same memory, neither allocating nor
    /// zeroing it again; a chunk still held anywhere is never written to. `None` at the end.
    pub fn next_sized(&mut self, want: usize) -> Option<Result<Bytes, TransportError>> {
        let Inner::Reader { reader, scratch, last, read_any, classify, done } = &mut self.0 else {
            return self.next();
        };
        if *done {
            return None;
        }
        let want = if want == 0 { READ_CHUNK } else { want };
        let read = if want <= READ_CHUNK {
            // One scratch buffer for the whole body; each chunk is a copy of one read
            // (allocating and zeroing a fresh buffer per read costs as much as the data).
            // It starts small (a JSON answer fits in one read) and takes the full chunk size
            // from the second read that brings bytes: the body is not small then (a reader
            // may return less than asked, so a read filling it is no sign).
            if scratch.is_empty() {
                scratch.resize(FIRST_READ, 0);
            }
            let room = want.min(scratch.len());
            read_once(reader, &mut scratch[..room]).map(|n| {
                let chunk = Bytes::copy_from_slice(&scratch[..n]);
                if n > 0 && std::mem::replace(read_any, true) && scratch.len() < READ_CHUNK {
                    scratch.resize(READ_CHUNK, 0);
                }
                chunk
            })
        } else {
            let mut buf = sized_buffer(last.take(), want.min(MAX_SIZED_READ));
            read_full(reader, &mut buf).map(|n| {
                buf.truncate(n);
                let chunk = buf.freeze();
                *last = Some(chunk.clone());
                chunk
            })
        };
        match read {
            Ok(chunk) if chunk.is_empty() => {
                *done = true;
                None
            }
            Ok(chunk) => Some(Ok(chunk)),
            Err(e) => {
                *done = true;
                Some(Err(classify(e)))
            }
        }
    }
}

/// A buffer of `len` initialised bytes: `last`'s memory when nothing else holds it (only
/// what it lacks is zeroed), else a new zeroed one.
fn sized_buffer(last: Option<Bytes>, len: usize) -> BytesMut {
    match last.map(Bytes::try_into_mut) {
        Some(Ok(mut buf)) if buf.capacity() >= len => {
            if buf.len() >= len {
                buf.truncate(len);
            } else {
                buf.resize(len, 0);
            }
            buf
        }
        _ => BytesMut::zeroed(len),
    }
}

/// One read (retrying `Interrupted`): 0 at the end.
fn read_once(reader: &mut BodyReader, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Reads until `buf` is full or the body ends; how many bytes were read.
fn read_full(reader: &mut BodyReader, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read_once(reader, &mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

impl Iterator for BlockingBody {
    type Item = Result<Bytes, TransportError>;
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::Chunks(chunks) => chunks.next(),
            Inner::Reader { .. } => self.next_sized(0),
        }
    }
}

impl fmt::Debug for BlockingBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockingBody")
    }
}

#[cfg(not(target_family = "wasm"))]
type ChunkStream = dyn Stream<Item = Result<Bytes, TransportError>> + Send;
#[cfg(target_family = "wasm")]
type ChunkStream = dyn Stream<Item = Result<Bytes, TransportError>>;

/// A response body read by an async transport: a stream of chunks.
pub struct AsyncBody(Pin<Box<ChunkStream>>);

impl AsyncBody {
    /// A body made of the chunks a stream yields.
    #[cfg(not(target_family = "wasm"))]
    pub fn from_stream(stream: impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static) -> Self {
        Self(Box::pin(stream))
    }

    /// A body made of the chunks a stream yields.
    #[cfg(target_family = "wasm")]
    pub fn from_stream(stream: impl Stream<Item = Result<Bytes, TransportError>> + 'static) -> Self {
        Self(Box::pin(stream))
    }

    /// A body held in memory.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::from_stream(Once(Some(bytes).filter(|b| !b.is_empty())))
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from_stream(Once(None))
    }

    /// Reads the whole body into one buffer.
    pub async fn collect(mut self) -> Result<Bytes, TransportError> {
        let mut chunks = Vec::new();
        while let Some(chunk) = std::future::poll_fn(|cx| self.0.as_mut().poll_next(cx)).await {
            chunks.push(chunk?);
        }
        Ok(concat(chunks))
    }
}

impl Stream for AsyncBody {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for AsyncBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncBody")
    }
}

struct Once(Option<Bytes>);

impl Stream for Once {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

/// Joins body chunks into one buffer (without a copy when there is one chunk).
pub(crate) fn concat(mut chunks: Vec<Bytes>) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => {
            let mut out = Vec::with_capacity(chunks.iter().map(Bytes::len).sum());
            for c in &chunks {
                out.extend_from_slice(c);
            }
            Bytes::from(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A reader of `data` that records the length of every buffer it is given.
    struct Recording {
        data: std::io::Cursor<Vec<u8>>,
        asked: Arc<Mutex<Vec<usize>>>,
    }

    impl std::io::Read for Recording {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.asked.lock().unwrap().push(buf.len());
            self.data.read(buf)
        }
    }

    fn classify(e: std::io::Error) -> TransportError {
        TransportError::new(crate::TransportErrorKind::Body, e)
    }

    fn recording(len: usize) -> (Vec<u8>, BlockingBody, Arc<Mutex<Vec<usize>>>) {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let reader = Recording { data: std::io::Cursor::new(data.clone()), asked: asked.clone() };
        (data, BlockingBody::from_reader(reader, classify), asked)
    }

    /// The body of `len` bytes read chunk by chunk; the buffer lengths the reader was given.
    fn read_chunks(len: usize) -> Vec<usize> {
        let (data, body, asked) = recording(len);
        let mut got = Vec::new();
        for chunk in body {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, data, "the body of {len} bytes, whole and in order");
        asked.lock().unwrap().clone()
    }

    /// The body of `len` bytes read whole; the buffer lengths the reader was given.
    fn read_whole(len: usize) -> Vec<usize> {
        let (data, body, asked) = recording(len);
        let got = crate::transport::collect_blocking(body).unwrap();
        assert_eq!(got, data, "the body of {len} bytes, whole and in order");
        asked.lock().unwrap().clone()
    }

    /// A small answer (most JSON) is read into a small buffer: zeroing a 64 KiB one for a
    /// body of a few hundred bytes cost more than reading it.
    #[test]
    fn a_small_body_is_read_into_a_small_buffer() {
        for asked in [read_chunks(358), read_whole(358)] {
            assert!(asked.iter().all(|&n| n <= 8 * 1024), "{asked:?}");
        }
    }

    /// Chunk by chunk, reads that fill the buffer grow it, up to the chunk size.
    #[test]
    fn a_large_body_grows_the_buffer_to_the_chunk_size() {
        let asked = read_chunks(1 << 20);
        assert_eq!(asked.first(), Some(&FIRST_READ), "{asked:?}");
        assert!(asked.contains(&READ_CHUNK), "{asked:?}");
        assert!(asked.iter().all(|&n| n <= READ_CHUNK), "{asked:?}");
    }

    /// A reader that returns less than asked (ureq hands over what it has buffered) still
    /// gets the full chunk size once the body proves larger than one read.
    #[test]
    fn partial_reads_grow_the_buffer_too() {
        struct Dribble(std::io::Cursor<Vec<u8>>, Arc<Mutex<Vec<usize>>>);
        impl std::io::Read for Dribble {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.1.lock().unwrap().push(buf.len());
                let n = buf.len().min(1000);
                self.0.read(&mut buf[..n])
            }
        }
        let asked = Arc::new(Mutex::new(Vec::new()));
        let body = BlockingBody::from_reader(
            Dribble(std::io::Cursor::new(vec![7; 100_000]), asked.clone()),
            classify,
        );
        assert_eq!(crate::transport::collect_blocking(body).unwrap(), vec![7; 100_000]);
        let asked = asked.lock().unwrap().clone();
        assert_eq!(asked.iter().filter(|&&n| n < READ_CHUNK).count(), 2, "{asked:?}");
    }

    #[test]
    fn every_length_reads_back_whole() {
        for len in [0, 1, FIRST_READ - 1, FIRST_READ, FIRST_READ + 1, READ_CHUNK, READ_CHUNK + 3, 300_001] {
            read_chunks(len);
            read_whole(len);
        }
    }

    /// A body partly read by chunks, then read whole: the rest, nothing lost or repeated.
    #[test]
    fn the_rest_of_a_partly_read_body_reads_whole() {
        let (data, mut body, _) = recording(100_000);
        let first = body.next().unwrap().unwrap();
        let rest = crate::transport::collect_blocking(body).unwrap();
        assert_eq!([&first[..], &rest[..]].concat(), data);
    }

    /// A read error in a body read whole is the transport's error, classified.
    #[test]
    fn a_failing_body_read_whole_is_a_body_error() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
            }
        }
        let err =
            crate::transport::collect_blocking(BlockingBody::from_reader(Failing, classify)).unwrap_err();
        assert_eq!(err.kind(), crate::TransportErrorKind::Body);
    }
}
