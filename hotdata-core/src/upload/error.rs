//! The one upload error family, and the state needed to resume a failed upload.

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::StatusCode;

use super::resume::ResumeState;
use crate::transport::{BoxError, TransportErrorKind};

/// What kind of failure an [`UploadError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UploadErrorKind {
    /// Creating the session (`POST /v1/uploads`) failed; see [`UploadError::status`] and
    /// [`UploadError::is_presign_unsupported`]. Nothing was sent to storage.
    CreateSession,
    /// Storage answered a part PUT with a status outside 2xx.
    StorageStatus,
    /// A storage PUT failed before any HTTP status (connect, reset, stall cut-off).
    StorageTransport,
    /// A part PUT succeeded without a usable `ETag`.
    MissingEtag,
    /// A part PUT succeeded but the browser hid its `ETag`: the storage's CORS rules do not
    /// list `ETag` in `Access-Control-Expose-Headers` (S3 `ExposeHeaders`). Retrying cannot
    /// help; the bucket's CORS configuration must change.
    EtagNotExposed,
    /// Minting a part URL (`POST /v1/uploads/{id}/parts`) failed.
    Mint,
    /// Finalize failed; see [`UploadError::finalize_may_have_succeeded`].
    Finalize,
    /// The server's session or mint answer cannot be used (missing URLs, wrong counts,
    /// unknown mode, duplicate or unrequested parts).
    MalformedSession,
    /// A size is beyond what the protocol or the service accepts (more than 16 GiB, or a
    /// value that does not fit the wire's signed 64 bits).
    SizeLimit,
    /// The caller cancelled the upload.
    Cancelled,
    /// Reading the source failed.
    SourceIo,
    /// The source was shorter or longer than its declared size.
    SourceSize,
    /// The legacy `POST /v1/files` fallback failed.
    Legacy,
    /// Finalize was answered "already finalized": **the upload is finalized**. This comes
    /// when a finalize whose answer was lost (see
    /// [`ResumeState::finalize_may_have_arrived`]) is sent again by a resume: the first one
    /// arrived, only its answer did not. [`UploadError::upload_id`] names the upload; its
    /// details (size, time) are not known to the SDK. Not a failure of the data.
    AlreadyFinalized,
}

/// An upload failure. Every failure of an upload is one of these: its
/// [`kind`](Self::kind), the upload id when a session exists, the parts completed, and the
/// details of the failing step. `Display` prints this level only; the cause is in
/// [`source`](StdError::source).
pub struct UploadError(Box<Inner>);

/// What an [`UploadError`] holds (boxed, so the error stays one pointer wide).
struct Inner {
    /// What kind of failure.
    kind: UploadErrorKind,
    /// What failed, for `Display`.
    message: String,
    /// The upload id, once a session exists.
    upload_id: Option<String>,
    /// Parts stored before the failure.
    parts_completed: u32,
    /// The part that failed, if one did.
    part_number: Option<u32>,
    /// The HTTP status of the failing answer.
    status: Option<StatusCode>,
    /// The server's error code (control-plane calls).
    code: Option<String>,
    /// The failing answer's body (storage errors, truncated).
    body: Option<Bytes>,
    /// How the transport failed, when it did.
    transport_kind: Option<TransportErrorKind>,
    /// The retry rounds were spent.
    exhausted: bool,
    /// Retry rounds run.
    rounds_attempted: u32,
    /// Finalize was sent and may have arrived.
    finalize_may_have_succeeded: bool,
    /// What a resume needs, when the upload may be resumed.
    resume: Option<ResumeState>,
    /// The cause.
    source: Option<BoxError>,
}

impl UploadError {
    /// An error of `kind` with nothing but its message.
    pub(crate) fn new(kind: UploadErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            upload_id: None,
            parts_completed: 0,
            part_number: None,
            status: None,
            code: None,
            body: None,
            transport_kind: None,
            exhausted: false,
            rounds_attempted: 0,
            finalize_may_have_succeeded: false,
            resume: None,
            source: None,
        }))
    }

    /// From a client [`crate::Error`] of a control-plane call.
    pub(crate) fn from_api(kind: UploadErrorKind, doing: &str, e: crate::Error) -> Self {
        let mut u = Self::new(kind, format!("{doing}: {e}"));
        u.0.status = e.status();
        u.0.code = e.code().map(str::to_owned);
        u.0.transport_kind = e.transport_kind();
        u.0.source = Some(Box::new(e));
        u
    }

    /// Names the failing part.
    pub(crate) fn with_part(mut self, part: Option<u32>) -> Self {
        self.0.part_number = part;
        self
    }

    /// Keeps the failing answer's status and body.
    pub(crate) fn with_status(mut self, status: StatusCode, body: Bytes) -> Self {
        self.0.status = Some(status);
        self.0.body = Some(body);
        self
    }

    /// Keeps how the transport failed.
    pub(crate) fn with_transport_kind(mut self, kind: TransportErrorKind) -> Self {
        self.0.transport_kind = Some(kind);
        self
    }

    /// Keeps the cause.
    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Names the upload (unless it already is) and the parts it stored.
    pub(crate) fn with_upload(mut self, upload_id: Option<&str>, parts_completed: u32) -> Self {
        if self.0.upload_id.is_none() {
            self.0.upload_id = upload_id.map(str::to_owned);
        }
        self.0.parts_completed = parts_completed;
        self
    }

    /// Marks the retry rounds as spent after `rounds`.
    pub(crate) fn exhausted_after(mut self, rounds: u32) -> Self {
        self.0.exhausted = true;
        self.0.rounds_attempted = rounds;
        self
    }

    /// Records the retry rounds run.
    pub(crate) fn with_rounds(mut self, rounds: u32) -> Self {
        self.0.rounds_attempted = rounds;
        self
    }

    /// Records whether finalize may have arrived.
    pub(crate) fn finalize_ambiguous(mut self, ambiguous: bool) -> Self {
        self.0.finalize_may_have_succeeded = ambiguous;
        self
    }

    /// Keeps what a resume needs.
    pub(crate) fn with_resume(mut self, resume: Option<ResumeState>) -> Self {
        self.0.resume = resume;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> UploadErrorKind {
        self.0.kind
    }

    /// A description of the failure.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The upload id, once the session was created.
    pub fn upload_id(&self) -> Option<&str> {
        self.0.upload_id.as_deref()
    }

    /// How many parts were stored successfully before the failure.
    pub fn parts_completed(&self) -> u32 {
        self.0.parts_completed
    }

    /// The part that failed (`None` for the single PUT and for failures of no part).
    pub fn part_number(&self) -> Option<u32> {
        self.0.part_number
    }

    /// The HTTP status of the failing answer (storage, create, mint or finalize).
    pub fn status(&self) -> Option<StatusCode> {
        self.0.status
    }

    /// The API's error code (for example `PRESIGN_UNSUPPORTED`), for control-plane calls.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The body of a failing storage answer (often S3 XML), at most 64 KiB.
    pub fn body(&self) -> Option<&[u8]> {
        self.0.body.as_deref()
    }

    /// Where a transport failure happened.
    pub fn transport_kind(&self) -> Option<TransportErrorKind> {
        self.0.transport_kind
    }

    /// True when the failure survived every retry round.
    pub fn is_exhausted(&self) -> bool {
        self.0.exhausted
    }

    /// Rounds run before giving up (0 when the failure came before any part).
    pub fn rounds_attempted(&self) -> u32 {
        self.0.rounds_attempted
    }

    /// For [`UploadErrorKind::Finalize`]: the finalize request may have reached the server
    /// (the connection failed after sending, or the answer was lost), so the upload may be
    /// finalized after all. Check its status before trying anything else.
    pub fn finalize_may_have_succeeded(&self) -> bool {
        self.0.finalize_may_have_succeeded
    }

    /// True for a `501 PRESIGN_UNSUPPORTED` answer at session creation: this server cannot
    /// presign storage URLs (use the legacy `POST /v1/files`, feature `legacy`).
    pub fn is_presign_unsupported(&self) -> bool {
        self.0.kind == UploadErrorKind::CreateSession
            && (self.0.status == Some(StatusCode::NOT_IMPLEMENTED)
                || self.0.code.as_deref() == Some("PRESIGN_UNSUPPORTED"))
    }

    /// The state to resume this upload from ([`Client::resume_upload`](crate::Client)).
    /// Every failure after the session was created carries one, except those listed in the
    /// [module docs](crate::upload#what-cannot-be-resumed).
    pub fn resume_state(&self) -> Option<&ResumeState> {
        self.0.resume.as_ref()
    }

    /// Takes the resume state out of the error.
    pub fn into_resume_state(self) -> Option<ResumeState> {
        self.0.resume
    }
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.0.upload_id {
            write!(f, "upload {id}: ")?;
        } else {
            f.write_str("upload: ")?;
        }
        f.write_str(&self.0.message)?;
        if self.0.exhausted {
            write!(f, " (after {} rounds)", self.0.rounds_attempted)?;
        }
        Ok(())
    }
}

impl fmt::Debug for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        let mut d = f.debug_struct("UploadError");
        d.field("kind", &i.kind).field("message", &i.message);
        d.field("upload_id", &i.upload_id).field("parts_completed", &i.parts_completed);
        if let Some(p) = i.part_number {
            d.field("part_number", &p);
        }
        if let Some(s) = i.status {
            d.field("status", &s.as_u16());
        }
        if let Some(k) = i.transport_kind {
            d.field("transport_kind", &k);
        }
        if i.exhausted {
            d.field("rounds_attempted", &i.rounds_attempted);
        }
        if i.finalize_may_have_succeeded {
            d.field("finalize_may_have_succeeded", &true);
        }
        d.field("resumable", &i.resume.is_some());
        if let Some(s) = &i.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl StdError for UploadError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}
