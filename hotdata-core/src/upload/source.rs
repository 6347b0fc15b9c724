//! What an upload reads: every source type ([`UploadSource`] for the blocking client,
//! [`AsyncUploadSource`] and [`AsyncRangeSource`] for the async one), the one [`Opened`]
//! form the drivers read parts from, positional file reads ([`read_file_range`]), and the
//! content type a file name implies ([`content_type_for`]).
//!
//! Both clients take the same forms through `Into`: a path (`&str`, `String`, `&Path`,
//! `PathBuf`) or bytes (`Vec<u8>`, `Bytes`, `&'static [u8]`). A path fills the file name
//! and the content type of the upload, unless the options set them. The blocking client
//! reads a file on its own threads; the async one through its runtime's
//! [`AsyncRuntime::spawn_blocking`], as an [`AsyncRangeSource`] (`FileRange`).
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
use crate::runtime::AsyncRuntime;
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
    /// The file name recorded with the upload unless the options set one (a browser
    /// `File`'s name). None by default.
    fn file_name(&self) -> Option<String> {
        None
    }
    /// The content type recorded with the upload unless the options set one (a browser
    /// `Blob`'s `type`). None by default; without one, the one [`file_name`](Self::file_name)
    /// implies ([`content_type_for`]) is sent.
    fn content_type(&self) -> Option<String> {
        None
    }
}

/// What an async upload reads: a path or bytes through `Into` (`&str`, `String`, `&Path`,
/// `PathBuf`; `Vec<u8>`, `Bytes`, `&'static [u8]`), a source read by range
/// ([`AsyncUploadSource::ranged`], such as `hotdata_wasm::BlobSource`), or a stream
/// ([`AsyncUploadSource::stream`]).
#[non_exhaustive]
pub enum AsyncUploadSource {
    /// A file on disk, opened when the upload starts (its size taken then) and read part
    /// by part through the runtime's [`AsyncRuntime::spawn_blocking`], never whole. Its name
    /// and the content type its extension implies ([`content_type_for`]) are recorded unless
    /// the options set them. Not in the browser, which has no files: there it is a
    /// [`UploadErrorKind::SourceIo`] error.
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Bytes),
    /// A source of known length read by range as parts are sent (see [`AsyncRangeSource`]).
    Ranged(Arc<dyn AsyncRangeSource>),
    /// A stream of chunks of unknown length, read front to back once, part by part (never
    /// buffered whole); it always uses a streaming session. Chunks may have any size.
    Stream(ChunkStream),
}

impl AsyncUploadSource {
    /// A file on disk (see [`AsyncUploadSource::Path`]).
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self::Path(path.into())
    }

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
            Self::Path(p) => f.debug_tuple("Path").field(p).finish(),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Ranged(r) => write!(f, "Ranged({} bytes)", r.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// `From` each path form, for both source types.
macro_rules! from_paths {
    ($($t:ty),*) => {$(
        impl From<$t> for UploadSource {
            fn from(path: $t) -> Self {
                Self::Path(PathBuf::from(path))
            }
        }
        impl From<$t> for AsyncUploadSource {
            fn from(path: $t) -> Self {
                Self::Path(PathBuf::from(path))
            }
        }
    )*};
}
from_paths!(PathBuf, &PathBuf, &Path, String, &String, &str);

/// `From` each form of bytes in memory, for both source types.
macro_rules! from_bytes {
    ($($t:ty),*) => {$(
        impl From<$t> for UploadSource {
            fn from(bytes: $t) -> Self {
                Self::Bytes(Bytes::from(bytes))
            }
        }
        impl From<$t> for AsyncUploadSource {
            fn from(bytes: $t) -> Self {
                Self::Bytes(Bytes::from(bytes))
            }
        }
    )*};
}
from_bytes!(Bytes, Vec<u8>, &'static [u8]);

impl<const N: usize> From<&'static [u8; N]> for UploadSource {
    fn from(bytes: &'static [u8; N]) -> Self {
        Self::Bytes(Bytes::from_static(bytes))
    }
}

impl<const N: usize> From<&'static [u8; N]> for AsyncUploadSource {
    fn from(bytes: &'static [u8; N]) -> Self {
        Self::Bytes(Bytes::from_static(bytes))
    }
}

/// The content type a file name's extension implies, for the extensions the API loads
/// (case-insensitive): `.csv` `text/csv`; `.parquet` `application/vnd.apache.parquet`;
/// `.json` `application/json`; `.jsonl` and `.ndjson` `application/x-ndjson`; `.arrow` and
/// `.feather` (the Arrow IPC file format) `application/vnd.apache.arrow.file`; `.arrows`
/// (the Arrow IPC stream format) `application/vnd.apache.arrow.stream`. Any other
/// extension, or none, implies none.
///
/// A path source, a browser `File` without a `type`, and an [`AsyncRangeSource`] with a
/// [`file_name`](AsyncRangeSource::file_name) send it unless the options set a content type.
///
/// ```
/// use hotdata_core::upload::content_type_for;
/// assert_eq!(content_type_for("data/events.CSV"), Some("text/csv"));
/// assert_eq!(content_type_for("events.csv.gz"), None);
/// ```
pub fn content_type_for(path: impl AsRef<Path>) -> Option<&'static str> {
    let extension = path.as_ref().extension()?.to_str()?.to_ascii_lowercase();
    Some(match extension.as_str() {
        "csv" => "text/csv",
        "parquet" => "application/vnd.apache.parquet",
        "json" => "application/json",
        "jsonl" | "ndjson" => "application/x-ndjson",
        "arrow" | "feather" => "application/vnd.apache.arrow.file",
        "arrows" => "application/vnd.apache.arrow.stream",
        _ => return None,
    })
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

/// What a blocking upload reads: a path or bytes through `Into` (`&str`, `String`,
/// `&Path`, `PathBuf`; `Vec<u8>`, `Bytes`, `&'static [u8]`), or a reader
/// ([`UploadSource::seekable`], [`UploadSource::reader`]).
#[non_exhaustive]
pub enum UploadSource {
    /// A file: its size is taken when the upload starts. Its name and the content type its
    /// extension implies ([`content_type_for`]) are recorded unless the options set them.
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

/// A failure to open or measure a source, as an [`UploadErrorKind::SourceIo`] error.
fn source_error(doing: &str, e: std::io::Error) -> UploadError {
    UploadError::new(UploadErrorKind::SourceIo, format!("{doing}: {e}")).with_source(e)
}

/// Opens the file at `path` and reads its size. Not a file (a directory) is an error, and so
/// is any path in the browser (`wasm32-unknown-unknown`), which has no file system.
fn open_file(path: &Path) -> Result<(File, u64), UploadError> {
    if cfg!(all(target_family = "wasm", target_os = "unknown")) {
        return Err(UploadError::new(
            UploadErrorKind::SourceIo,
            format!(
                "{} cannot be uploaded by path: the browser has no file system; upload a `Blob` or \
                 `File` (`hotdata_wasm::BlobSource`), bytes or a stream",
                path.display()
            ),
        ));
    }
    let file = File::open(path).map_err(|e| source_error(&format!("opening {}", path.display()), e))?;
    let meta =
        file.metadata().map_err(|e| source_error(&format!("reading the size of {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(UploadError::new(UploadErrorKind::SourceIo, format!("{} is not a file", path.display())));
    }
    Ok((file, meta.len()))
}

/// The spec of the file at `path`, `len` bytes long: its name, and the content type its
/// extension implies.
fn path_spec(path: &Path, len: u64) -> UploadSpec {
    let mut spec = UploadSpec::sized(len);
    spec.filename = path.file_name().map(|n| n.to_string_lossy().into_owned());
    spec.content_type = content_type_for(path).map(str::to_owned);
    spec
}

/// Runs `f` through the runtime's [`AsyncRuntime::spawn_blocking`] and returns its result;
/// a job that did not run to its end (dropped by the runtime, or panicked) is an I/O error.
pub(crate) async fn run_blocking<T: Send + 'static>(
    runtime: &dyn AsyncRuntime,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    let slot = Arc::new(std::sync::Mutex::new(None));
    let out = slot.clone();
    let job = move || {
        let value = f();
        if let Ok(mut slot) = out.lock() {
            *slot = Some(value);
        }
    };
    runtime.spawn_blocking(Box::new(job)).await;
    let value = slot.lock().ok().and_then(|mut slot| slot.take());
    value.ok_or_else(|| {
        std::io::Error::other("the blocking read did not finish (the runtime dropped it, or it panicked)")
    })
}

/// The part buffers of one upload's file reads, reused from part to part: a buffer whose
/// PUT is over (no one else holds it: [`Bytes::is_unique`]) is read into again instead of
/// a new one being allocated. Freed 8 MiB buffers otherwise stay with the allocator, in the
/// arena of whichever thread freed them (glibc keeps one per thread), and an upload's peak
/// RSS grew to twice the parts in flight (174 vs 86 MiB for 1 GiB in 8 MiB parts, 10 at a
/// time, on the async client): with reuse, the buffers alive are the parts in flight and one
/// being read.
/// (Files are read by position on Unix and Windows only: elsewhere nothing takes one.)
#[derive(Debug, Default)]
#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
pub(crate) struct PartBuffers {
    /// Every part read into one of its buffers and not yet reused.
    held: std::sync::Mutex<Vec<Bytes>>,
}

/// Buffers kept at most (more than an upload has in flight: a part is retried with its own).
const MAX_HELD: usize = 64;

#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
impl PartBuffers {
    /// A buffer of `len` bytes to read a part into (its contents are overwritten): a buffer
    /// no PUT holds any more, or a new one.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let reusable = self.held.lock().ok().and_then(|mut held| {
            let i = held.iter().position(Bytes::is_unique)?;
            Some(held.swap_remove(i))
        });
        match reusable {
            // Unique: the allocation is taken back as it is (no copy). Its bytes up to its
            // old length are initialized already; only a longer part zeroes the rest.
            Some(bytes) => {
                let mut buf = Vec::from(bytes);
                buf.resize(len, 0);
                buf
            }
            None => vec![0u8; len],
        }
    }

    /// Remembers a part read into a buffer from [`take`](Self::take), to reuse its buffer
    /// once the part is sent.
    pub(crate) fn keep(&self, part: &Bytes) {
        if let Ok(mut held) = self.held.lock() {
            if held.len() >= MAX_HELD {
                held.retain(|b| !b.is_unique());
            }
            if held.len() < MAX_HELD {
                held.push(part.clone());
            }
        }
    }
}

/// A file on the async client: read by position, each read a job of the runtime's
/// [`AsyncRuntime::spawn_blocking`] (so parts are read concurrently, beside the PUTs).
struct FileRange {
    /// The open file (read by position: its cursor never moves).
    file: Arc<File>,
    /// Its size when it was opened.
    len: u64,
    /// Where its reads run.
    runtime: Arc<dyn AsyncRuntime>,
    /// Its part buffers.
    buffers: Arc<PartBuffers>,
}

impl AsyncRangeSource for FileRange {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_range(&self, offset: u64, len: u64) -> BoxFuture<'_, std::io::Result<Bytes>> {
        let (file, runtime, buffers) = (self.file.clone(), self.runtime.clone(), self.buffers.clone());
        Box::pin(async move {
            #[cfg(any(unix, windows))]
            {
                // Taken here, on the caller's task, not on the runtime's blocking threads.
                let buf = buffers.take(usize::try_from(len).map_err(std::io::Error::other)?);
                run_blocking(&*runtime, move || read_part_at(&file, offset, buf, &buffers)).await?
            }
            #[cfg(not(any(unix, windows)))]
            {
                let _ = buffers;
                run_blocking(&*runtime, move || read_file_range(&file, offset, len)).await?
            }
        })
    }
}

impl Opened {
    /// Opens a blocking source: a file is opened and its size read, a seekable reader's
    /// position is taken as the start. The spec says how the machine must read it.
    pub(crate) fn blocking(source: UploadSource) -> Result<(Self, UploadSpec), UploadError> {
        Ok(match source {
            UploadSource::Path(path) => {
                let (file, len) = open_file(&path)?;
                (Opened::File(file), path_spec(&path, len))
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

    /// Opens an async source: a file is opened and its size read through `runtime`'s
    /// [`AsyncRuntime::spawn_blocking`], and is then read by range through it; the rest
    /// needs nothing but noting how it is read (and a ranged source's name and type).
    pub(crate) async fn nonblocking(
        source: AsyncUploadSource,
        runtime: &Arc<dyn AsyncRuntime>,
    ) -> Result<(Self, UploadSpec), UploadError> {
        Ok(match source {
            AsyncUploadSource::Path(path) => {
                let opening = path.clone();
                let (file, len) = run_blocking(&**runtime, move || open_file(&opening))
                    .await
                    .map_err(|e| source_error(&format!("opening {}", path.display()), e))??;
                let file = FileRange {
                    file: Arc::new(file),
                    len,
                    runtime: runtime.clone(),
                    buffers: Arc::default(),
                };
                (Opened::Ranged(Arc::new(file)), path_spec(&path, len))
            }
            AsyncUploadSource::Bytes(b) => {
                let spec = UploadSpec::sized(b.len() as u64);
                (Opened::Bytes(b), spec)
            }
            AsyncUploadSource::Ranged(r) => {
                let mut spec = UploadSpec::sized(r.len());
                spec.filename = r.file_name();
                let implied = || spec.filename.as_deref().and_then(content_type_for).map(str::to_owned);
                spec.content_type = r.content_type().or_else(implied);
                (Opened::Ranged(r), spec)
            }
            AsyncUploadSource::Stream(stream) => {
                (Opened::Stream { stream, leftover: Bytes::new(), ended: false }, UploadSpec::streaming())
            }
        })
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
/// blocking driver's workers, the async client's path source). Positional reads exist on Unix
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

/// [`read_file_at`] into `buf`, a buffer from `buffers`, which keeps the part to reuse its
/// buffer once it is sent.
#[cfg(any(unix, windows))]
pub(crate) fn read_part_at(
    file: &File,
    offset: u64,
    buf: Vec<u8>,
    buffers: &PartBuffers,
) -> std::io::Result<Bytes> {
    let part = read_file_at(file, offset, buf)?;
    buffers.keep(&part);
    Ok(part)
}

/// Fills `buf` from `offset` of `file` without moving its cursor (fewer bytes only at its
/// end).
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

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    #[test]
    fn a_part_buffer_is_reused_once_no_one_holds_its_part() {
        let buffers = PartBuffers::default();
        let mut first = buffers.take(8);
        first.copy_from_slice(b"part one");
        let at = first.as_ptr();
        let part = Bytes::from(first);
        buffers.keep(&part);
        // Still held (the PUT is in flight, or a retry keeps it): another buffer.
        let in_flight = part.slice(2..4);
        drop(part);
        let second = buffers.take(8);
        assert_ne!(second.as_ptr(), at, "a buffer still held is never written into");
        assert_eq!(&in_flight[..], b"rt");
        // Its PUT over: the same allocation comes back, and a shorter part fits in it.
        drop(in_flight);
        let third = buffers.take(5);
        assert_eq!((third.as_ptr(), third.len()), (at, 5), "reused, not allocated");
        let fourth = Bytes::from(buffers.take(8));
        assert_ne!(fourth.as_ptr(), at);
        assert_eq!(fourth.len(), 8);
    }

    #[test]
    fn the_buffers_kept_are_bounded() {
        let buffers = PartBuffers::default();
        let parts: Vec<Bytes> = (0..MAX_HELD + 10).map(|_| Bytes::from(buffers.take(4))).collect();
        parts.iter().for_each(|p| buffers.keep(p));
        assert_eq!(buffers.held.lock().unwrap().len(), MAX_HELD, "all in flight: no more kept");
        drop(parts);
        buffers.keep(&Bytes::from(vec![1, 2, 3]));
        assert_eq!(buffers.held.lock().unwrap().len(), 1, "the unused ones were let go");
    }

    #[test]
    fn the_extension_implies_the_content_type() {
        for (name, expected) in [
            ("events.csv", Some("text/csv")),
            ("dir.d/EVENTS.CSV", Some("text/csv")),
            ("events.parquet", Some("application/vnd.apache.parquet")),
            ("events.json", Some("application/json")),
            ("events.jsonl", Some("application/x-ndjson")),
            ("events.ndjson", Some("application/x-ndjson")),
            ("events.arrow", Some("application/vnd.apache.arrow.file")),
            ("events.feather", Some("application/vnd.apache.arrow.file")),
            ("events.arrows", Some("application/vnd.apache.arrow.stream")),
            ("events.csv.gz", None),
            ("events.bin", None),
            ("README", None),
            (".csv", None),
            ("csv.d/events", None),
        ] {
            assert_eq!(content_type_for(name), expected, "{name}");
        }
    }

    #[test]
    fn a_path_spec_has_the_name_and_the_type() {
        let spec = path_spec(Path::new("/data/Rows.NDJSON"), 12);
        assert_eq!(spec.total, Some(12));
        assert_eq!(spec.filename.as_deref(), Some("Rows.NDJSON"));
        assert_eq!(spec.content_type.as_deref(), Some("application/x-ndjson"));
        let spec = path_spec(Path::new("blob"), 0);
        assert_eq!((spec.filename.as_deref(), spec.content_type), (Some("blob"), None));
    }

    #[test]
    fn every_path_and_bytes_form_converts() {
        let path = PathBuf::from("a/events.csv");
        let name = String::from("a/events.csv");
        for s in [
            UploadSource::from("a/events.csv"),
            UploadSource::from(name.clone()),
            UploadSource::from(&name),
            UploadSource::from(path.as_path()),
            UploadSource::from(&path),
            UploadSource::from(path.clone()),
        ] {
            assert!(matches!(&s, UploadSource::Path(p) if *p == path), "{s:?}");
        }
        for s in [
            AsyncUploadSource::from("a/events.csv"),
            AsyncUploadSource::from(name.clone()),
            AsyncUploadSource::from(&name),
            AsyncUploadSource::from(path.as_path()),
            AsyncUploadSource::from(&path),
            AsyncUploadSource::from(path.clone()),
        ] {
            assert!(matches!(&s, AsyncUploadSource::Path(p) if *p == path), "{s:?}");
        }
        static B: &[u8] = b"ab";
        for s in [UploadSource::from(B), UploadSource::from(b"ab"), UploadSource::from(B.to_vec())] {
            assert!(matches!(&s, UploadSource::Bytes(b) if b == B), "{s:?}");
        }
        for s in [AsyncUploadSource::from(Bytes::from_static(B)), AsyncUploadSource::from(b"ab")] {
            assert!(matches!(&s, AsyncUploadSource::Bytes(b) if b == B), "{s:?}");
        }
    }
}
