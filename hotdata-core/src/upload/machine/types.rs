//! The public types the machine speaks in: what the driver reads from it ([`UploadAction`],
//! [`UploadEvent`], [`SessionShape`]) and what it hands to it ([`UploadSpec`],
//! [`PutResponse`], [`RequestId`]). No logic here beyond small constructors.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use std::fmt;

use super::super::UploadOptions;
use crate::ops::{CreateUploadSession, FinalizeUpload, MintUploadParts};
use crate::retry::RetryPolicy;
use crate::transport::{HttpRequest, SendOptions};

/// Names one request or read the machine asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What the source is, as the machine needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadSpec {
    /// The size, when known. Known-size sources are read by range
    /// ([`UploadAction::ReadAt`]) and may be read again; others are read in order
    /// ([`UploadAction::ReadNext`]) exactly once.
    pub total: Option<u64>,
    /// The content type sent at create.
    pub content_type: Option<String>,
    /// The content encoding sent at create.
    pub content_encoding: Option<String>,
    /// The file name sent at create.
    pub filename: Option<String>,
}

impl UploadSpec {
    /// A source of `total` bytes that can be read by range.
    pub fn sized(total: u64) -> Self {
        Self { total: Some(total), content_type: None, content_encoding: None, filename: None }
    }

    /// A source of unknown length, read front to back once.
    pub fn streaming() -> Self {
        Self { total: None, content_type: None, content_encoding: None, filename: None }
    }

    /// Takes the content type, encoding and file name of `options` (a file name already
    /// set here is kept unless the options set one).
    #[must_use]
    pub fn with_metadata(mut self, options: &UploadOptions) -> Self {
        self.content_type = options.content_type.clone().or(self.content_type);
        self.content_encoding = options.content_encoding.clone().or(self.content_encoding);
        self.filename = options.filename.clone().or(self.filename);
        self
    }
}

/// The answer of a storage PUT, as the machine needs it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PutResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers (the `ETag` is read from here).
    pub headers: HeaderMap,
    /// The body (kept, truncated, in storage errors).
    pub body: Bytes,
    /// Whether the headers are only those the server exposed to a browser page (see
    /// [`CorsFilteredHeaders`](crate::CorsFilteredHeaders)): a missing `ETag` is then hidden
    /// by the storage's CORS rules, not absent.
    pub headers_filtered: bool,
}

impl PutResponse {
    /// An answer with these status, headers and body.
    pub fn new(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self { status, headers, body, headers_filtered: false }
    }

    /// The answer of a response read whole: `headers_filtered` is set when the transport
    /// marked it with [`CorsFilteredHeaders`](crate::CorsFilteredHeaders).
    pub fn from_parts(parts: http::response::Parts, body: Bytes) -> Self {
        let headers_filtered = parts.extensions.get::<crate::CorsFilteredHeaders>().is_some();
        Self { status: parts.status, headers: parts.headers, body, headers_filtered }
    }

    /// Sets whether the headers were filtered by CORS.
    #[must_use]
    pub fn with_headers_filtered(mut self, filtered: bool) -> Self {
        self.headers_filtered = filtered;
        self
    }
}

/// What the driver must do next. Each action carries what it sends in one piece: the API
/// calls (create, mint, finalize) an endpoint the client completes and sends through its
/// one pipeline (`client.call(endpoint)`: authentication, a token asked per attempt,
/// workspace, retries, tracing), a storage PUT a finished request for the transport.
///
/// `Debug` prints the finalize token of mint and finalize as `<redacted>`.
#[non_exhaustive]
pub enum UploadAction {
    /// Send `POST /v1/uploads` through the API client (`client.call(endpoint)`, its normal
    /// retries apply); report with
    /// [`UploadMachine::handle_session`](super::UploadMachine::handle_session).
    CreateSession {
        /// The create call (its body: metadata, part-size hint, declared size).
        endpoint: CreateUploadSession,
    },
    /// Read exactly `len` bytes at `offset` of the source (fewer only at its end); report
    /// with [`UploadMachine::handle_read`](super::UploadMachine::handle_read).
    ReadAt {
        /// The read.
        id: RequestId,
        /// Offset from the start of the upload.
        offset: u64,
        /// Bytes wanted.
        len: u64,
    },
    /// Read the next `len` bytes of a streaming source (fewer only at its end); report
    /// with [`UploadMachine::handle_read`](super::UploadMachine::handle_read).
    ReadNext {
        /// The read.
        id: RequestId,
        /// Bytes wanted.
        len: u64,
    },
    /// Mint a part URL: send `POST /v1/uploads/{upload_id}/parts` (the finalize token in
    /// `X-Upload-Finalize-Token`) through the API client (`client.call(endpoint)`, its
    /// normal retries apply); report with
    /// [`UploadMachine::handle_mint`](super::UploadMachine::handle_mint).
    Mint {
        /// The request.
        id: RequestId,
        /// The part.
        part: u32,
        /// The mint call: upload id, finalize token, and the part number in its body.
        endpoint: MintUploadParts,
    },
    /// Send this storage request as is, straight to the transport (no authentication, no
    /// client headers, no retries), with these options; read its body and report with
    /// [`UploadMachine::handle_put`](super::UploadMachine::handle_put).
    Put {
        /// The request.
        id: RequestId,
        /// The part (`None` for a single PUT).
        part: Option<u32>,
        /// The storage request.
        request: HttpRequest,
        /// Timeouts: the connect timeout and the attempt's transfer deadline.
        options: SendOptions,
    },
    /// Stop waiting for this request (it was cut off); its answer will be ignored. A driver
    /// that can drop the work in flight should.
    Abort {
        /// The request.
        id: RequestId,
    },
    /// Send finalize once through the API client with `retry`
    /// (`client.call(endpoint).retry(retry)`: retries off, since a finalize that arrived
    /// must not be sent again); report with
    /// [`UploadMachine::handle_finalize`](super::UploadMachine::handle_finalize).
    Finalize {
        /// The request.
        id: RequestId,
        /// The finalize call: upload id, finalize token, and the parts with their ETags.
        endpoint: FinalizeUpload,
        /// The retry policy to send it with ([`RetryPolicy::none`]).
        retry: RetryPolicy,
    },
}

impl fmt::Debug for UploadAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateSession { endpoint } => {
                f.debug_struct("CreateSession").field("endpoint", endpoint).finish()
            }
            Self::ReadAt { id, offset, len } => {
                f.debug_struct("ReadAt").field("id", id).field("offset", offset).field("len", len).finish()
            }
            Self::ReadNext { id, len } => {
                f.debug_struct("ReadNext").field("id", id).field("len", len).finish()
            }
            // The endpoints' finalize token is a `SecretString`: their own `Debug` hides it.
            Self::Mint { id, part, endpoint } => f
                .debug_struct("Mint")
                .field("id", id)
                .field("part", part)
                .field("endpoint", endpoint)
                .finish(),
            Self::Put { id, part, request, options } => f
                .debug_struct("Put")
                .field("id", id)
                .field("part", part)
                .field("request", &StorageRequest(request))
                .field("options", options)
                .finish(),
            Self::Abort { id } => f.debug_struct("Abort").field("id", id).finish(),
            Self::Finalize { id, endpoint, retry } => f
                .debug_struct("Finalize")
                .field("id", id)
                .field("endpoint", endpoint)
                .field("retry", retry)
                .finish(),
        }
    }
}

/// A storage request as `Debug` prints it: its URL without the presigned query, its
/// header names (a storage header may carry a key), and its body by length.
struct StorageRequest<'a>(&'a HttpRequest);

impl fmt::Debug for StorageRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        let uri = r.uri().to_string();
        f.debug_struct("HttpRequest")
            .field("method", r.method())
            .field("uri", &crate::transport::redact_url(&uri))
            .field("headers", &r.headers().keys().map(|k| k.as_str()).collect::<Vec<_>>())
            .field("body_len", &r.body().as_bytes().len())
            .finish()
    }
}

/// The session the server opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionShape {
    /// One PUT of the whole source.
    Single,
    /// Parts of `part_size` bytes; `parts` when the count is known; `streaming` when part
    /// URLs are minted one by one.
    Multipart {
        /// The server's part size.
        part_size: u64,
        /// The part count, when the size is known.
        parts: Option<u32>,
        /// URLs minted just before each PUT.
        streaming: bool,
    },
}

/// What happened, for progress reporting. Events come in order, one at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadEvent {
    /// The session is open.
    SessionCreated {
        /// The upload id.
        upload_id: String,
        /// Its shape.
        shape: SessionShape,
    },
    /// Bytes sent so far: cumulative, never decreasing. It counts stored parts and, when
    /// the driver reports them (the native drivers do), the bytes that PUTs in flight have
    /// handed to storage; a failed attempt's bytes stop counting and progress holds until
    /// the retry passes them. `total` is `None` until the end of a source of unknown length
    /// is reached.
    Progress {
        /// Bytes sent (and, once every part is stored, stored).
        done: u64,
        /// The size of the source.
        total: Option<u64>,
    },
    /// A part was stored.
    PartCompleted {
        /// The part (`None` for a single PUT).
        part: Option<u32>,
        /// Its length.
        len: u64,
    },
    /// A part attempt failed; `will_retry` tells whether it will be sent again.
    PartFailed {
        /// The part (`None` for a single PUT).
        part: Option<u32>,
        /// Why.
        message: String,
        /// Whether a later round (or an inline retry) sends it again.
        will_retry: bool,
    },
    /// A retry round starts, at this concurrency.
    RoundStarted {
        /// The round (1 is the first re-send).
        round: u32,
        /// Parts in flight at most in this round.
        concurrency: usize,
    },
    /// The memory budget holds fewer parts than `max_concurrency` asked for: at most
    /// `allowed` parts are in flight (their bodies are held in memory while they are sent).
    /// Raise [`UploadOptions::memory_budget`](crate::upload::UploadOptions::memory_budget)
    /// or ask for smaller parts to send more at once. Comes once, after the session opens.
    ConcurrencyLimited {
        /// `max_concurrency` as asked.
        requested: usize,
        /// Parts in flight at most.
        allowed: usize,
        /// The session's part size.
        part_size: u64,
        /// The memory budget.
        memory_budget: u64,
    },
}
