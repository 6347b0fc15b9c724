//! What an upload reads: every source type ([`UploadSource`] for the blocking client,
//! [`AsyncUploadSource`] and [`AsyncRangeSource`] for the async one), the one [`Opened`]
//! form the drivers read parts from, and positional file reads ([`read_file_range`]).
//!
//! A source of known size is read by range (a part may be read again when it is retried);
//! one of unknown size is read front to back once. The drivers and the legacy upload
//! depend on this module; it depends on neither.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use super::machine::UploadSpec;
use super::{UploadError, UploadErrorKind};
use crate::transport::{BoxFuture, MaybeSend, MaybeSync};

/// An opened source, read by the driver of either mode: by range ([`Opened::read_at`]) or
/// in order ([`Opened::read_next`]) on the blocking side, by range
/// ([`Opened::Ranged`], [`Opened::Bytes`]) or in order ([`Opened::read_next_async`]) on the
/// async side.
pub(crate) enum Opened {
    /// A file (blocking).
    File(File),
    /// Bytes in memory (either mode).
    Bytes(Bytes),
    /// A seekable reader and the position the upload starts at (blocking).
    Seekable {
        /// The reader.
        reader: Box<dyn ReadSeek>,
        /// Where the upload starts in it.
        base: u64,
    },
    /// A reader of unknown length (blocking).
    Reader(Box<dyn Read + Send>),
    /// A source read by range asynchronously (async).
    Ranged(Arc<dyn AsyncRangeSource>),
    /// A stream of chunks of unknown length, with the bytes read ahead of the current part
    /// (async).
    Stream {
        /// The stream.
        stream: ChunkStream,
        /// Bytes of the last chunk past the part they were read for.
        leftover: Bytes,
        /// The stream has ended.
        ended: bool,
    },
}

/// A stream of chunks: `Send` off wasm.
#[cfg(not(target_family = "wasm"))]
type ChunkStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;
/// A stream of chunks: unbounded on wasm.
#[cfg(target_family = "wasm")]
type ChunkStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>>>>;

/// A source of known length read by byte range, asynchronously: a browser `Blob` or `File`
/// (`hotdata-wasm`'s `BlobSource`), a remote object, a file read through an async API.
///
/// Parts are read just before they are sent, so at most the parts in flight are held in
/// memory; a range may be read again when its part is retried. `Send + Sync` off wasm,
/// unbounded on `wasm32` (see [`MaybeSend`]).
pub trait AsyncRangeSource: MaybeSend + MaybeSync {
    /// The length in bytes. It must not change during the upload.
    fn len(&self) -> u64;
    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The `len` bytes from `offset` (fewer only at the end of the source).
    fn read_range(&self, offset: u64, len: u64) -> BoxFuture<'_, std::io::Result<Bytes>>;
}

/// What an async upload reads.
#[non_exhaustive]
pub enum AsyncUploadSource {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A source of known length read by range as parts are sent (see [`AsyncRangeSource`]).
    Ranged(Arc<dyn AsyncRangeSource>),
    /// A stream of chunks of unknown length, read front to back once, part by part (never
    /// buffered whole); it always uses a streaming session. Chunks may have any size.
    Stream(ChunkStream),
}

impl AsyncUploadSource {
    /// Bytes in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self::Bytes(bytes.into())
    }

    /// A source of known length read by range (a browser `Blob`, a remote object).
    pub fn ranged(source: impl AsyncRangeSource + 'static) -> Self {
        Self::Ranged(Arc::new(source))
    }

    /// A stream of chunks of unknown length.
    #[cfg(not(target_family = "wasm"))]
    pub fn stream(stream: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static) -> Self {
        Self::Stream(Box::pin(stream))
    }

    /// A stream of chunks of unknown length.
    #[cfg(target_family = "wasm")]
    pub fn stream(stream: impl Stream<Item = std::io::Result<Bytes>> + 'static) -> Self {
        Self::Stream(Box::pin(stream))
    }
}

impl std::fmt::Debug for AsyncUploadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Ranged(r) => write!(f, "Ranged({} bytes)", r.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

impl From<Bytes> for AsyncUploadSource {
    fn from(b: Bytes) -> Self {
        Self::Bytes(b)
    }
}

impl From<Vec<u8>> for AsyncUploadSource {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(Bytes::from(b))
    }
}

impl From<&'static [u8]> for AsyncUploadSource {
    fn from(b: &'static [u8]) -> Self {
        Self::Bytes(Bytes::from_static(b))
    }
}

impl Opened {
    /// The next `len` bytes of the stream (fewer only at its end).
    pub(crate) async fn read_next_async(&mut self, len: u64) -> std::io::Result<Bytes> {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let Opened::Stream { stream, leftover, ended } = self else {
            return Err(std::io::Error::other("only a stream is read in order asynchronously"));
        };
        if leftover.len() >= len {
            return Ok(leftover.split_to(len));
        }
        let mut buf = BytesMut::with_capacity(len.min(64 * 1024 * 1024));
        buf.extend_from_slice(&std::mem::take(leftover));
        while buf.len() < len && !*ended {
            match std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                Some(Ok(mut chunk)) => {
                    let room = len - buf.len();
                    if chunk.len() > room {
                        *leftover = chunk.split_off(room);
                    }
                    buf.extend_from_slice(&chunk);
                }
                Some(Err(e)) => return Err(e),
                None => *ended = true,
            }
        }
        Ok(buf.freeze())
    }
}

/// `len` bytes at `offset` of a ranged source; more than asked is an error.
pub(crate) async fn read_range(
    source: &dyn AsyncRangeSource,
    offset: u64,
    len: u64,
) -> std::io::Result<Bytes> {
    let bytes = source.read_range(offset, len).await?;
    if bytes.len() as u64 > len {
        return Err(std::io::Error::other(format!(
            "the source returned {} bytes for a range of {len}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// A `Read + Seek + Send` source.
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// What a blocking upload reads.
#[non_exhaustive]
pub enum UploadSource {
    /// A file: its size is taken when the upload starts; the file name defaults to its name.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Bytes),
    /// A seekable reader: the upload covers the bytes from its current position to its end,
    /// read by range (so parts may be read again).
    Seekable(Box<dyn ReadSeek>),
    /// A reader of unknown length, read front to back once, part by part: never spooled or
    /// buffered whole. It always uses a streaming session.
    Reader(Box<dyn Read + Send>),
}

impl UploadSource {
    /// A file.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self::Path(path.into())
    }

    /// Bytes in memory.
    pub fn bytes(bytes: impl Into<Bytes>) -> Self {
        Self::Bytes(bytes.into())
    }

    /// A seekable reader, from its current position to its end.
    pub fn seekable(reader: impl Read + Seek + Send + 'static) -> Self {
        Self::Seekable(Box::new(reader))
    }

    /// A reader of unknown length.
    pub fn reader(reader: impl Read + Send + 'static) -> Self {
        Self::Reader(Box::new(reader))
    }
}

impl std::fmt::Debug for UploadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Seekable(_) => f.write_str("Seekable"),
            Self::Reader(_) => f.write_str("Reader"),
        }
    }
}

impl From<PathBuf> for UploadSource {
    fn from(p: PathBuf) -> Self {
        Self::Path(p)
    }
}

impl From<&Path> for UploadSource {
    fn from(p: &Path) -> Self {
        Self::Path(p.to_owned())
    }
}

impl From<Bytes> for UploadSource {
    fn from(b: Bytes) -> Self {
        Self::Bytes(b)
    }
}

impl From<Vec<u8>> for UploadSource {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(Bytes::from(b))
    }
}

impl From<&'static [u8]> for UploadSource {
    fn from(b: &'static [u8]) -> Self {
        Self::Bytes(Bytes::from_static(b))
    }
}

/// A failure to open or measure a source, as an [`UploadErrorKind::SourceIo`] error.
fn source_error(doing: &str, e: std::io::Error) -> UploadError {
    UploadError::new(UploadErrorKind::SourceIo, format!("{doing}: {e}")).with_source(e)
}

impl Opened {
    /// Opens a blocking source: a file is opened and its size read, a seekable reader's
    /// position is taken as the start. The spec says how the machine must read it.
    pub(crate) fn blocking(source: UploadSource) -> Result<(Self, UploadSpec), UploadError> {
        Ok(match source {
            UploadSource::Path(path) => {
                let file =
                    File::open(&path).map_err(|e| source_error(&format!("opening {}", path.display()), e))?;
                let len = file.metadata().map_err(|e| source_error("reading the file's size", e))?.len();
                let mut spec = UploadSpec::sized(len);
                spec.filename = path.file_name().map(|n| n.to_string_lossy().into_owned());
                (Opened::File(file), spec)
            }
            UploadSource::Bytes(b) => {
                let spec = UploadSpec::sized(b.len() as u64);
                (Opened::Bytes(b), spec)
            }
            UploadSource::Seekable(mut reader) => {
                let base = reader.stream_position().map_err(|e| source_error("reading the position", e))?;
                let end = reader.seek(SeekFrom::End(0)).map_err(|e| source_error("seeking to the end", e))?;
                (Opened::Seekable { reader, base }, UploadSpec::sized(end.saturating_sub(base)))
            }
            UploadSource::Reader(r) => (Opened::Reader(r), UploadSpec::streaming()),
        })
    }

    /// Opens an async source (nothing to do but note how it is read).
    pub(crate) fn nonblocking(source: AsyncUploadSource) -> (Self, UploadSpec) {
        match source {
            AsyncUploadSource::Bytes(b) => {
                let spec = UploadSpec::sized(b.len() as u64);
                (Opened::Bytes(b), spec)
            }
            AsyncUploadSource::Ranged(r) => {
                let spec = UploadSpec::sized(r.len());
                (Opened::Ranged(r), spec)
            }
            AsyncUploadSource::Stream(stream) => {
                (Opened::Stream { stream, leftover: Bytes::new(), ended: false }, UploadSpec::streaming())
            }
        }
    }

    /// The async source this was opened from, for the legacy upload (a stream keeps the
    /// bytes read ahead of it, which is none before the first part).
    #[cfg(feature = "legacy")]
    pub(crate) fn into_async(self) -> Option<AsyncUploadSource> {
        match self {
            Opened::Bytes(b) => Some(AsyncUploadSource::Bytes(b)),
            Opened::Ranged(r) => Some(AsyncUploadSource::Ranged(r)),
            Opened::Stream { stream, .. } => Some(AsyncUploadSource::Stream(stream)),
            Opened::File(_) | Opened::Seekable { .. } | Opened::Reader(_) => None,
        }
    }
}

/// Reads up to `len` bytes (fewer only at the end).
fn read_up_to(reader: &mut dyn Read, len: u64) -> std::io::Result<Bytes> {
    let mut buf = Vec::with_capacity(usize::try_from(len.min(64 * 1024 * 1024)).unwrap_or(0));
    reader.take(len).read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// Reads `len` bytes at `offset` of `file` without moving its cursor (fewer only at its
/// end), so that parts of one file can be read on several threads or tasks at once (the
/// blocking driver's workers, `hotdata_reqwest::FileSource`). Positional reads exist on Unix
/// and Windows; elsewhere this is an `Unsupported` error.
pub fn read_file_range(file: &File, offset: u64, len: u64) -> std::io::Result<Bytes> {
    let len = usize::try_from(len).map_err(std::io::Error::other)?;
    #[cfg(any(unix, windows))]
    return read_file_at(file, offset, vec![0u8; len]);
    #[cfg(not(any(unix, windows)))]
    {
        let _ = (file, offset, len);
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "positional file reads"))
    }
}

/// Fills `buf` from `offset` of `file` without moving its cursor (fewer bytes only at its
/// end). The blocking driver allocates `buf` on its own thread: part buffers are then reused
/// from one allocator arena instead of piling up in one per worker thread (peak RSS 88 vs
/// 270 MiB for 1 GiB).
#[cfg(any(unix, windows))]
pub(crate) fn read_file_at(file: &File, offset: u64, mut buf: Vec<u8>) -> std::io::Result<Bytes> {
    #[cfg(unix)]
    use std::os::unix::fs::FileExt;
    #[cfg(windows)]
    use std::os::windows::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        let at = offset + filled as u64;
        #[cfg(unix)]
        let n = file.read_at(&mut buf[filled..], at);
        #[cfg(windows)]
        let n = file.seek_read(&mut buf[filled..], at);
        match n {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

impl Opened {
    /// A handle that reads the source by position on another thread, when it is a file on
    /// a platform with positional reads.
    pub(crate) fn positional(&self) -> Option<File> {
        match self {
            #[cfg(any(unix, windows))]
            Self::File(f) => f.try_clone().ok(),
            _ => None,
        }
    }

    /// `len` bytes at `offset` (fewer only at the end), read on the caller's thread: a slice
    /// of bytes in memory, or a blocking read (a file or seekable reader is sought first; a
    /// reader of unknown length is read on). An async source read by range or a stream
    /// is an error: those are read beside the PUTs, or in order.
    pub(crate) fn read_at(&mut self, offset: u64, len: u64) -> std::io::Result<Bytes> {
        match self {
            Self::File(f) => {
                f.seek(SeekFrom::Start(offset))?;
                read_up_to(f, len)
            }
            Self::Bytes(b) => Ok(super::slice_range(b, offset, len)),
            Self::Seekable { reader, base } => {
                reader.seek(SeekFrom::Start(*base + offset))?;
                read_up_to(reader, len)
            }
            Self::Reader(r) => read_up_to(r, len),
            Self::Ranged(_) => Err(std::io::Error::other("a ranged source is read beside the PUTs")),
            Self::Stream { .. } => Err(std::io::Error::other("a stream cannot be read by range")),
        }
    }

    /// The next `len` bytes of a blocking source read in order (fewer only at its end).
    pub(crate) fn read_next(&mut self, len: u64) -> std::io::Result<Bytes> {
        match self {
            Self::Reader(r) => read_up_to(r, len),
            Self::File(f) => read_up_to(f, len),
            Self::Seekable { reader, .. } => read_up_to(reader, len),
            Self::Bytes(_) | Self::Ranged(_) | Self::Stream { .. } => {
                Err(std::io::Error::other("this source is read by range, or asynchronously"))
            }
        }
    }
}
