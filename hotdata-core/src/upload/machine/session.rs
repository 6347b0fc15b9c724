//! The upload session: the create request ([`Phase::Start`]), the server's answer checked
//! and kept ([`UploadMachine::handle_session`], [`Phase::Creating`]), the start of the parts
//! phase, and the [`ResumeState`] a failed upload leaves behind.

use std::time::Duration;

use super::{Phase, SessionShape, UploadAction, UploadEvent, UploadMachine, cancelled};
use crate::models::{CreateUploadRequest, UploadMode, UploadSessionResponse};
use crate::ops::CreateUploadSession;
use crate::upload::error::{UploadError, UploadErrorKind as K};
use crate::upload::resume::MAX_PARTS;
use crate::upload::resume::{FinalizeSent, Mode, ResumeState};
use crate::upload::{MAX_UPLOAD_SIZE, STREAMING_THRESHOLD, effective_in_flight, part_size_hint};
use crate::{Error, Patch, SecretString};

/// The session the server opened (or the one being resumed). `Debug` leaves out the
/// finalize token, the URLs and the storage headers' values.
pub(super) struct Session {
    /// The upload id.
    pub(super) upload_id: String,
    /// The finalize token (sent with mint and finalize).
    pub(super) token: SecretString,
    /// Headers every storage PUT carries verbatim.
    pub(super) headers: Vec<(String, String)>,
    /// Where the part URLs come from.
    pub(super) mode: Mode,
    /// The server's part size (the whole source for a single PUT).
    pub(super) part_size: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("upload_id", &self.upload_id)
            .field("token", &"<redacted>")
            // Names only: a storage header may carry a key (SSE-C).
            .field("headers", &self.headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
            .field("mode", &self.mode)
            .field("part_size", &self.part_size)
            .finish()
    }
}

impl UploadMachine {
    /// The answer to [`UploadAction::CreateSession`].
    pub fn handle_session(&mut self, result: Result<UploadSessionResponse, Error>, now: Duration) {
        let _ = now; // new parts start on the next `poll_action`
        if self.phase != Phase::Creating {
            return;
        }
        match result
            .map_err(|e| UploadError::from_api(K::CreateSession, "creating the upload session failed", e))
        {
            Err(e) => self.finish(Err(e)),
            Ok(s) => match self.open_session(s) {
                Ok(()) => self.start_parts_phase(),
                Err(e) => self.finish(Err(e)),
            },
        }
    }

    /// Asks for the session (or ends the upload at once: cancelled, or too large). Runs
    /// from `advance` in [`Phase::Start`], so from the first `poll_action` (or `cancel`).
    pub(super) fn start(&mut self) {
        if self.stop.cancelled {
            self.finish(Err(cancelled()));
            return;
        }
        match self.create_request() {
            Ok(a) => {
                self.phase = Phase::Creating;
                self.actions.push_back(a);
            }
            Err(e) => self.finish(Err(e)),
        }
    }

    /// The create request: metadata, the part-size hint and, up to 8 MiB, the declared
    /// size. Runs from `start`.
    fn create_request(&mut self) -> Result<UploadAction, UploadError> {
        let total = self.spec.total;
        if let Some(t) = total
            && t > MAX_UPLOAD_SIZE
        {
            return Err(UploadError::new(
                K::SizeLimit,
                format!("the source has {t} bytes, more than the 16 GiB an upload may hold"),
            ));
        }
        let hint = self.hint.unwrap_or_else(|| part_size_hint(total.unwrap_or(0)));
        let hint = i64::try_from(hint).map_err(|_| {
            UploadError::new(K::SizeLimit, format!("part_size {hint} does not fit in 63 bits"))
        })?;
        let mut request = CreateUploadRequest::new();
        let set = |v: &Option<String>| v.clone().map_or(Patch::Omit, Patch::Value);
        request.content_type = set(&self.spec.content_type);
        request.content_encoding = set(&self.spec.content_encoding);
        request.filename = set(&self.spec.filename);
        request.part_size = Patch::Value(hint);
        if let Some(t) = total.filter(|t| *t <= STREAMING_THRESHOLD) {
            request.declared_size_bytes = Patch::Value(t as i64);
        }
        Ok(UploadAction::CreateSession { endpoint: CreateUploadSession::new(request) })
    }

    /// Checks the server's session against the source (URL, part size, URL count, part
    /// limit), announces it (`SessionCreated`) and keeps it. Runs from `handle_session`.
    fn open_session(&mut self, s: UploadSessionResponse) -> Result<(), UploadError> {
        let malformed = |m: String| UploadError::new(K::MalformedSession, m);
        let total = self.spec.total;
        let headers: Vec<(String, String)> = s.headers.into_iter().collect();
        let (mode, part_size, parts) = match &s.mode {
            UploadMode::Single => {
                let url = s
                    .url
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| malformed("single upload missing `url`".into()))?;
                let Some(t) = total else {
                    return Err(malformed(
                        "the server opened a single-PUT session for a source of unknown length".into(),
                    ));
                };
                (Mode::Single { url }, t.max(1), Some(1))
            }
            UploadMode::Multipart => {
                let ps = s
                    .part_size
                    .filter(|p| *p > 0)
                    .ok_or_else(|| malformed("multipart upload without a positive `part_size`".into()))?
                    as u64;
                let expected = total.map(|t| t.div_ceil(ps).max(1));
                if let Some(k) = expected
                    && k > MAX_PARTS
                {
                    return Err(UploadError::new(
                        K::SizeLimit,
                        format!("the source splits into {k} parts of {ps} bytes, more than {MAX_PARTS}"),
                    ));
                }
                match s.part_urls {
                    Some(urls) => {
                        let (Some(t), Some(k)) = (total, expected) else {
                            return Err(malformed("eager part URLs for a source of unknown length".into()));
                        };
                        if urls.len() as u64 != k {
                            return Err(malformed(format!(
                                "multipart upload returned {} part URLs but the file ({t} bytes) splits into {k} parts of {ps} bytes",
                                urls.len()
                            )));
                        }
                        if urls.iter().any(String::is_empty) {
                            return Err(malformed("multipart upload returned an empty part URL".into()));
                        }
                        (Mode::Eager { urls }, ps, expected.map(|k| k as u32))
                    }
                    None => (Mode::Streaming, ps, expected.map(|k| k as u32)),
                }
            }
            other => return Err(malformed(format!("unknown upload mode `{}`", other.as_str()))),
        };
        let shape = match &mode {
            Mode::Single { .. } => SessionShape::Single,
            Mode::Eager { .. } => SessionShape::Multipart { part_size, parts, streaming: false },
            Mode::Streaming => SessionShape::Multipart { part_size, parts, streaming: true },
        };
        self.events.push_back(UploadEvent::SessionCreated { upload_id: s.upload_id.clone(), shape });
        self.set_in_flight(matches!(mode, Mode::Single { .. }), part_size);
        self.session =
            Some(Session { upload_id: s.upload_id, token: s.finalize_token, headers, mode, part_size });
        Ok(())
    }

    /// Enters [`Phase::Sending`]: a sized source knows its last part now, and progress
    /// starts (at the bytes already stored, when resuming). Runs from `handle_session` and
    /// `resume`.
    pub(super) fn start_parts_phase(&mut self) {
        self.phase = Phase::Sending;
        if let (Some(t), Some(s)) = (self.spec.total, &self.session) {
            self.parts.end = Some(match s.mode {
                Mode::Single { .. } => 1,
                _ => t.div_ceil(s.part_size).max(1) as u32,
            });
        }
        let total = self.spec.total;
        self.events.push_back(UploadEvent::Progress { done: self.parts.completed_bytes(), total });
    }

    /// What a failed upload needs to be continued in its session: its parts stored so far,
    /// and how far `finalize` got. `None` before a session exists. Runs from `conclude`,
    /// for the errors [`resumable`](Self::resumable) allows.
    pub(super) fn resume_state(&self, finalize: FinalizeSent) -> Option<ResumeState> {
        let s = self.session.as_ref()?;
        let completed = self.parts.stored().map(|(n, etag, len)| (n, (etag.to_owned(), len))).collect();
        Some(ResumeState {
            upload_id: s.upload_id.clone(),
            finalize_token: s.token.clone(),
            part_size: s.part_size,
            headers: s.headers.clone(),
            mode: s.mode.clone(),
            total: self.spec.total.or(self.resume_total),
            end: self.parts.end,
            completed,
            finalize,
        })
    }

    /// Sets how many parts may be in flight for parts of `part_size` bytes: one for a
    /// single PUT; otherwise `max_concurrency`, lowered so that the bodies in flight fit the
    /// memory budget, which [`UploadEvent::ConcurrencyLimited`] then says. Runs from
    /// `open_session` and `resume`.
    pub(super) fn set_in_flight(&mut self, single: bool, part_size: u64) {
        let cap = if single { 1 } else { effective_in_flight(self.max_concurrency, self.budget, part_size) };
        if !single && cap < self.max_concurrency {
            self.events.push_back(UploadEvent::ConcurrencyLimited {
                requested: self.max_concurrency,
                allowed: cap,
                part_size,
                memory_budget: self.budget,
            });
        }
        self.rounds.set_base_cap(cap);
    }

    /// The server's part size (1 before a session). Runs from `start_fresh`.
    pub(super) fn part_size(&self) -> u64 {
        self.session.as_ref().map_or(1, |s| s.part_size)
    }

    /// True for a single-PUT session (its part is reported as `None`). Runs wherever a
    /// part is named in an event or error.
    pub(super) fn is_single(&self) -> bool {
        matches!(self.session.as_ref().map(|s| &s.mode), Some(Mode::Single { .. }))
    }
}
