//! Body types crossing the transport seam: our own newtypes, so no HTTP library's body type
//! ever appears in a public signature.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use crate::transport::TransportError;

/// The body of a request the core asks a transport to send.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestBody {
    /// No body.
    #[default]
    Empty,
    /// A body held in memory.
    Bytes(Bytes),
}

impl RequestBody {
    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Bytes(b) => b.len(),
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of the body (empty for [`RequestBody::Empty`]).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Empty => &[],
            Self::Bytes(b) => b,
        }
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
        }
    }
}

type ChunkIter = dyn Iterator<Item = Result<Bytes, TransportError>> + Send;

/// A response body read by a blocking transport: an iterator of chunks.
pub struct BlockingBody(Box<ChunkIter>);

impl BlockingBody {
    /// A body made of the chunks an iterator yields.
    pub fn from_chunks(chunks: impl Iterator<Item = Result<Bytes, TransportError>> + Send + 'static) -> Self {
        Self(Box::new(chunks))
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
}

impl Iterator for BlockingBody {
    type Item = Result<Bytes, TransportError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
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
        Ok(crate::transport::concat(chunks))
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
