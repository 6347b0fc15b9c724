//! Following an Arrow IPC stream's framing byte by byte, ahead of the decoder.
//!
//! An IPC stream is a sequence of messages, each a 4-byte continuation marker
//! (`0xFFFFFFFF`), a 4-byte metadata length, the metadata (a flatbuffer `Message`) and a body
//! of `bodyLength` bytes; a metadata length of 0 is the end-of-stream marker. The
//! [`Framer`] reads the same bytes the decoder will, before it does, and decides how far the
//! decoder may go ([`Framer::release`]):
//!
//! - **Buffers outside their body.** arrow-ipc panics slicing a batch whose buffer offsets
//!   point past its body, so such a message is stopped before its body reaches the decoder.
//! - **Negative counts.** A batch's row count and its columns' lengths and null counts are
//!   signed in the format; arrow-ipc casts them, so -1 rows would be 2^64 - 1, and nothing
//!   bounds that when a batch has no columns or null columns only (turning such a batch
//!   into rows would run out of memory). A negative one stops the message.
//! - **Codecs.** A batch compressed with a codec this build lacks is stopped with an error
//!   that names the codec and the feature that adds it.
//! - **Declared decompressed sizes.** Each buffer of a compressed body starts with the
//!   length it decompresses to, and arrow-ipc allocates that much before decompressing. The
//!   body of a compressed message is held back until all its declared lengths have been
//!   read; if they add up to more than [`ArrowLimits::max_decompressed_message_bytes`], the
//!   message is stopped with [`ErrorKind::LimitExceeded`](crate::ErrorKind).
//! - **The end of the stream.** The framer knows when the end-of-stream marker was read, so
//!   a body that ends anywhere else is a truncated stream.
//!
//! It also tells a reader how many bytes complete the part being read ([`Framer::wanted`]),
//! so a whole batch body can be read into one buffer.

use arrow_ipc::{CompressionType, Message, MessageHeader};

use crate::config::ArrowLimits;
use crate::error::{Error, LimitExceeded};

/// Which part of a message the next bytes belong to.
#[derive(Debug, Default)]
enum Framing {
    /// A 4-byte word: the continuation marker or a metadata length.
    #[default]
    Word,
    /// `size` bytes of message metadata (kept in `Framer::held` until complete).
    Metadata { size: usize },
    /// A message body with `left` bytes to come, and the declared decompressed lengths still
    /// to read from it when it is compressed.
    Body { left: u64, prefixes: Option<Box<Prefixes>> },
    /// The end-of-stream marker was read.
    Ended,
    /// The metadata could not be read: the framing is lost (the decoder reports why).
    Lost,
}

/// The 8-byte length prefixes of one compressed body, collected as its bytes pass.
#[derive(Debug)]
struct Prefixes {
    /// Where the body starts in the stream.
    body_start: u64,
    /// Bytes of the body seen so far.
    seen: u64,
    /// One window per buffer of 8 bytes or more, by offset in the body.
    windows: Vec<Window>,
    /// The first window not yet complete.
    next: usize,
}

/// The first 8 bytes of one buffer of a compressed body.
#[derive(Debug)]
struct Window {
    /// Offset of the buffer in its body.
    start: u64,
    /// The prefix's bytes so far.
    bytes: [u8; 8],
    /// How many of `bytes` have been seen.
    filled: u8,
}

impl Prefixes {
    /// Copies the bytes of `chunk` (the next bytes of the body) into the windows they cover.
    fn observe(&mut self, chunk: &[u8]) {
        let (from, to) = (self.seen, self.seen + chunk.len() as u64);
        for w in &mut self.windows[self.next..] {
            if w.start >= to {
                break;
            }
            let (lo, hi) = (w.start.max(from), (w.start + 8).min(to));
            for at in lo..hi {
                w.bytes[(at - w.start) as usize] = chunk[(at - from) as usize];
                w.filled += 1;
            }
        }
        while self.windows.get(self.next).is_some_and(|w| w.filled == 8) {
            self.next += 1;
        }
        self.seen = to;
    }

    /// The decompressed bytes the body's buffers declare, summed; an error for a length
    /// that is negative (other than -1, "not compressed").
    fn declared(&self) -> Result<u64, String> {
        self.windows.iter().try_fold(0u64, |sum, w| match i64::from_le_bytes(w.bytes) {
            -1 => Ok(sum),
            n if n < 0 => Err(format!("a compressed buffer declares a negative length ({n})")),
            n => Ok(sum.saturating_add(n as u64)),
        })
    }
}

/// Why a message may not reach the decoder.
#[derive(Debug)]
enum Stop {
    /// Corrupt: a decode error with this description.
    Invalid(String),
    /// Compressed with a codec this build lacks.
    Codec(&'static str, &'static str),
    /// Declares more decompressed bytes than the limit.
    Limit(u64, u64),
}

/// Follows the framing of the pushed bytes. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Framer {
    state: Framing,
    /// The partial word or metadata being read.
    held: Vec<u8>,
    /// Bytes of the stream seen so far.
    seen: u64,
    /// The start of a compressed body whose declared lengths are still being read: the
    /// decoder may not go past it yet.
    hold_from: Option<u64>,
    /// The first message that may not reach the decoder: where its body starts, and why.
    stop: Option<(u64, Stop)>,
    limits: ArrowLimits,
    /// Where the bodies seen but not yet decoded start, and their lengths.
    bodies: std::collections::VecDeque<(u64, u64)>,
}

/// The codec named in a message's metadata that this build cannot decode, with the feature
/// that adds it.
fn missing_codec(codec: CompressionType) -> Option<(&'static str, &'static str)> {
    match codec {
        CompressionType::LZ4_FRAME if !cfg!(feature = "arrow-lz4") => Some(("LZ4_FRAME", "arrow-lz4")),
        CompressionType::ZSTD if !cfg!(feature = "arrow-zstd") => Some(("ZSTD", "arrow-zstd")),
        _ => None,
    }
}

/// What is wrong with a record or dictionary batch, if anything: a negative row count or
/// column length (arrow-ipc casts it to a count near 2^64, which nothing bounds when a batch
/// has no columns or null columns only), or a buffer that does not lie within its body.
fn check_batch(body: i64, batch: &arrow_ipc::RecordBatch<'_>) -> Option<String> {
    if body < 0 {
        return Some(format!("a message declares a negative body length ({body})"));
    }
    if batch.length() < 0 {
        return Some(format!("a batch declares a negative row count ({})", batch.length()));
    }
    if let Some((i, n)) =
        batch.nodes().into_iter().flatten().enumerate().find(|(_, n)| n.length() < 0 || n.null_count() < 0)
    {
        return Some(format!(
            "column node {i} of a batch declares a negative length or null count ({}, {})",
            n.length(),
            n.null_count()
        ));
    }
    batch.buffers().into_iter().flatten().enumerate().find_map(|(i, b)| {
        let end = b.offset().checked_add(b.length());
        let inside = b.offset() >= 0 && b.length() >= 0 && end.is_some_and(|e| e <= body);
        (!inside).then(|| {
            format!(
                "buffer {i} of a batch lies outside its body (offset {}, length {}, body {body} bytes)",
                b.offset(),
                b.length()
            )
        })
    })
}

/// The batch a record-batch or dictionary-batch message carries.
fn batch_of<'a>(message: &Message<'a>) -> Option<arrow_ipc::RecordBatch<'a>> {
    match message.header_type() {
        MessageHeader::RecordBatch => message.header_as_record_batch(),
        MessageHeader::DictionaryBatch => message.header_as_dictionary_batch().and_then(|d| d.data()),
        _ => None,
    }
}

impl Framer {
    /// A framer that enforces `limits`.
    pub(super) fn new(limits: ArrowLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Follows the next bytes of the stream.
    pub(super) fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let taken = match &mut self.state {
                Framing::Word => {
                    let take = (4 - self.held.len()).min(bytes.len());
                    self.held.extend_from_slice(&bytes[..take]);
                    if self.held.len() == 4 {
                        let word =
                            u32::from_le_bytes([self.held[0], self.held[1], self.held[2], self.held[3]]);
                        self.held.clear();
                        self.state = match word {
                            0xFFFF_FFFF => Framing::Word,
                            0 => Framing::Ended,
                            size => Framing::Metadata { size: size as usize },
                        };
                    }
                    take
                }
                Framing::Metadata { size } => {
                    let size = *size;
                    let take = (size - self.held.len()).min(bytes.len());
                    self.held.extend_from_slice(&bytes[..take]);
                    if self.held.len() == size {
                        self.seen += take as u64;
                        self.end_metadata();
                        bytes = &bytes[take..];
                        continue;
                    }
                    take
                }
                Framing::Body { left, prefixes } => {
                    let take = (*left).min(bytes.len() as u64) as usize;
                    *left -= take as u64;
                    if let Some(p) = prefixes {
                        p.observe(&bytes[..take]);
                    }
                    if *left == 0 {
                        let prefixes = prefixes.take();
                        self.state = Framing::Word;
                        if let Some(p) = prefixes {
                            self.end_compressed_body(&p);
                        }
                    }
                    take
                }
                // Past the end or lost: the decoder reports trailing bytes or bad metadata.
                Framing::Ended | Framing::Lost => bytes.len(),
            };
            self.seen += taken as u64;
            bytes = &bytes[taken..];
        }
    }

    /// A message's metadata is complete (in `held`; `seen` is where its body starts): checks
    /// it and moves on to its body.
    fn end_metadata(&mut self) {
        let body_start = self.seen;
        let Ok(message) = arrow_ipc::root_as_message(&self.held) else {
            self.held.clear();
            self.state = Framing::Lost;
            return;
        };
        let body = message.bodyLength();
        let batch = batch_of(&message);
        let mut prefixes = None;
        if let Some(batch) = batch {
            let stop = match (check_batch(body, &batch), batch.compression()) {
                (Some(why), _) => Some(Stop::Invalid(why)),
                (None, Some(c)) => match missing_codec(c.codec()) {
                    Some((codec, feature)) => Some(Stop::Codec(codec, feature)),
                    None => {
                        let windows = batch
                            .buffers()
                            .into_iter()
                            .flatten()
                            .filter(|b| b.length() >= 8)
                            .map(|b| Window { start: b.offset() as u64, bytes: [0; 8], filled: 0 })
                            .collect::<Vec<_>>();
                        let mut windows = windows;
                        windows.sort_by_key(|w| w.start);
                        if !windows.is_empty() {
                            prefixes = Some(Box::new(Prefixes { body_start, seen: 0, windows, next: 0 }));
                        }
                        None
                    }
                },
                (None, None) => None,
            };
            if let Some(stop) = stop {
                self.stop.get_or_insert((body_start, stop));
            }
        }
        self.held.clear();
        self.state = match u64::try_from(body) {
            Ok(0) => Framing::Word,
            Ok(left) => {
                self.bodies.push_back((body_start, left));
                if prefixes.is_some() {
                    self.hold_from = Some(body_start);
                }
                Framing::Body { left, prefixes }
            }
            Err(_) => Framing::Lost,
        };
    }

    /// A compressed body has passed: its declared lengths are known.
    fn end_compressed_body(&mut self, p: &Prefixes) {
        self.hold_from = None;
        let limit = self.limits.max_decompressed_message_bytes;
        let stop = match p.declared() {
            Err(why) => Some(Stop::Invalid(why)),
            Ok(n) if n > limit => Some(Stop::Limit(n, limit)),
            Ok(_) => None,
        };
        if let Some(stop) = stop {
            self.stop.get_or_insert((p.body_start, stop));
        }
    }

    /// How far (a stream offset) the decoder may read, and the error to report once it has
    /// read that far, if the stream may not go on from there.
    pub(super) fn release(&self) -> (Option<u64>, Option<Error>) {
        match (&self.stop, self.hold_from) {
            (Some((at, _)), Some(hold)) if hold < *at => (Some(hold), None),
            (Some((at, stop)), _) => (Some(*at), Some(stop.error())),
            (None, hold) => (hold, None),
        }
    }

    /// The next message body that starts at or after stream offset `at`: (start, length).
    pub(super) fn next_body(&mut self, at: u64) -> Option<(u64, u64)> {
        while self.bodies.front().is_some_and(|(start, _)| *start < at) {
            self.bodies.pop_front();
        }
        self.bodies.front().copied()
    }

    /// How many bytes would complete the part of the stream being read, when known.
    pub(super) fn wanted(&self) -> Option<usize> {
        match &self.state {
            Framing::Word => Some(4 - self.held.len()),
            Framing::Metadata { size } => Some(size - self.held.len()),
            Framing::Body { left, .. } => Some(usize::try_from(*left).unwrap_or(usize::MAX)),
            Framing::Ended | Framing::Lost => None,
        }
    }

    /// True once the end-of-stream marker has been read.
    pub(super) fn ended(&self) -> bool {
        matches!(self.state, Framing::Ended)
    }

    /// True while a message is partly read (a cut here is a truncated stream).
    pub(super) fn mid_message(&self) -> bool {
        match self.state {
            Framing::Word => !self.held.is_empty(),
            Framing::Metadata { .. } | Framing::Body { .. } => true,
            Framing::Ended | Framing::Lost => false,
        }
    }
}

impl Stop {
    fn error(&self) -> Error {
        match self {
            Stop::Invalid(why) => Error::decode(format!("Arrow stream: invalid data: {why}"), None),
            Stop::Codec(codec, feature) => Error::decode(
                format!(
                    "Arrow stream: its batches are {codec}-compressed and this build has no {codec} codec: \
                     enable the `{feature}` feature of hotdata-core (or `arrow`, which has both codecs)"
                ),
                None,
            ),
            Stop::Limit(declared, limit) => Error::limit_exceeded(
                LimitExceeded {
                    limit: "Config::arrow_limits.max_decompressed_message_bytes",
                    max: *limit,
                    actual: *declared,
                },
                format!(
                    "Arrow stream: a batch declares {declared} bytes once decompressed, more than the \
                     {limit} allowed per message (raise ArrowLimits::max_decompressed_message_bytes \
                     if the server really sends batches this large)"
                ),
            ),
        }
    }
}
