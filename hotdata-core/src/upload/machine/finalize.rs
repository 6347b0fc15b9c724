//! The end of an upload: once every part is stored, a sized source is probed for bytes past
//! its declared size ([`Phase::Probing`]), then finalize is sent once
//! ([`Phase::Finalizing`]), and again only when it provably never left
//! ([`Phase::FinalizeWait`]); and [`UploadMachine::finish`], where every path ends.

use std::time::Duration;

use bytes::Bytes;

use super::requests::Waiting;
use super::timers::Timer;
use super::{Phase, RequestId, UploadAction, UploadMachine, cancelled};
use crate::Error;
use crate::models::{FinalizeUploadPart, FinalizeUploadRequest, FinalizeUploadResponse};
use crate::ops::FinalizeUpload;
use crate::retry::RetryPolicy;
use crate::transport::TransportErrorKind;
use crate::upload::error::{UploadError, UploadErrorKind as K};
use crate::upload::resume::FinalizeSent;
use http::StatusCode;

/// Attempts of a finalize that provably never left.
const FINALIZE_ATTEMPTS: u32 = 3;
/// The pause before the second attempt of a finalize that never left; it doubles after.
const FINALIZE_RETRY_BASE: Duration = Duration::from_millis(500);

impl UploadMachine {
    /// The answer to [`UploadAction::Finalize`] (sent once, with retries off).
    pub fn handle_finalize(
        &mut self,
        id: RequestId,
        result: Result<FinalizeUploadResponse, Error>,
        now: Duration,
    ) {
        let Some(Waiting::Finalize) = self.requests.take(id) else { return };
        let Phase::Finalizing { attempts } = self.phase else {
            debug_assert!(false, "a finalize in flight outside Phase::Finalizing");
            return;
        };
        let e = match result {
            Ok(r) => return self.finish(Ok(r)),
            Err(e) => e,
        };
        let never_sent = e.transport_kind().is_some_and(TransportErrorKind::never_sent);
        let permanent = e.transport_kind().is_some_and(TransportErrorKind::is_permanent);
        if never_sent && !permanent && attempts < FINALIZE_ATTEMPTS && !self.stop.cancelled {
            let pause = FINALIZE_RETRY_BASE.saturating_mul(1 << (attempts - 1));
            self.timers.set(Timer::FinalizeRetry, now.saturating_add(pause));
            self.phase = Phase::FinalizeWait { attempts };
            return;
        }
        if is_already_finalized(&e) {
            let err = UploadError::from_api(
                K::AlreadyFinalized,
                "the upload is already finalized (an earlier finalize arrived; its answer was lost)",
                e,
            );
            return self.conclude(Err(err), FinalizeSent::No);
        }
        let sent = finalize_outcome(&e);
        let err = UploadError::from_api(K::Finalize, "finalize failed", e)
            .finalize_ambiguous(sent == FinalizeSent::Ambiguous);
        self.conclude(Err(err), sent);
    }

    /// **When finalize starts.** A round ended with no part in flight, none to re-send and
    /// none failed: if the last part is known and every part up to it was started (so
    /// stored), a sized source is probed for bytes past its end and a streaming one is
    /// finalized; otherwise parts are still to come (a streaming source not at its end yet,
    /// or the budget holding them back) and nothing happens. Runs from `end_round`.
    pub(super) fn after_last_part(&mut self) {
        let Some(end) = self.parts.end else { return };
        if self.parts.next_fresh <= end {
            return;
        }
        if self.stop.cancelled {
            self.finish(Err(cancelled()));
            return;
        }
        match self.spec.total {
            Some(total) if !self.finalize_ready => {
                let id = self.requests.issue(Waiting::Probe);
                self.phase = Phase::Probing;
                self.actions.push_back(UploadAction::ReadAt { id, offset: total, len: 1 });
            }
            _ => self.begin_finalize(),
        }
    }

    /// The probe's answer: a byte past the declared size means the source is longer than
    /// declared (an error, never a truncated object); none, and finalize starts. Runs from
    /// `handle_read`.
    pub(super) fn on_probe(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            let total = self.spec.total.unwrap_or(0);
            self.finish(Err(UploadError::new(
                K::SourceSize,
                format!("the source is longer than its declared size of {total} bytes"),
            )));
            return;
        }
        self.begin_finalize();
    }

    /// Sends the first finalize, unless the caller cancelled meanwhile. Runs from
    /// `after_last_part` (streaming) and `on_probe` (sized).
    fn begin_finalize(&mut self) {
        if self.stop.cancelled {
            self.finish(Err(cancelled()));
            return;
        }
        self.send_finalize(0);
    }

    /// Waiting to send finalize again: ends at once if the caller cancelled, sends it when
    /// `Timer::FinalizeRetry` expired. Runs from `advance` in [`Phase::FinalizeWait`].
    pub(super) fn finalize_wait(&mut self, now: Duration) {
        let Phase::FinalizeWait { attempts } = self.phase else { return };
        if self.stop.cancelled {
            self.finish(Err(cancelled()));
        } else if self.timers.is_expired(Timer::FinalizeRetry, now) {
            self.timers.stop(Timer::FinalizeRetry);
            self.send_finalize(attempts);
        }
    }

    /// Sends finalize (attempt `attempts + 1`): `{}` for a single PUT, every part with its
    /// ETag for multipart. Runs from `begin_finalize` and `finalize_wait`.
    fn send_finalize(&mut self, attempts: u32) {
        let single = self.is_single();
        let end = self.parts.end.unwrap_or(1);
        let mut list = Vec::new();
        if !single {
            for n in 1..=end {
                match self.parts.get(n).and_then(|p| p.etag()) {
                    Some(etag) => list.push(FinalizeUploadPart::new(etag.to_owned(), n as i32)),
                    None => {
                        self.finish(Err(UploadError::new(
                            K::MalformedSession,
                            format!("part {n} was never uploaded"),
                        )));
                        return;
                    }
                }
            }
        }
        let Some(s) = &self.session else { return };
        let body =
            if single { FinalizeUploadRequest::new() } else { FinalizeUploadRequest::new().parts(list) };
        let endpoint = FinalizeUpload::new(s.upload_id.clone(), s.token.clone(), body);
        let id = self.requests.issue(Waiting::Finalize);
        self.phase = Phase::Finalizing { attempts: attempts + 1 };
        let retry = RetryPolicy::none();
        self.actions.push_back(UploadAction::Finalize { id, endpoint, retry });
    }

    /// Ends the upload with `result` (a failure carries a
    /// [`ResumeState`](crate::upload::ResumeState) unless [`resumable`](Self::resumable)
    /// says otherwise). Runs wherever the outcome is known: a failed session, a drained
    /// stop, spent rounds, the probe, finalize.
    pub(super) fn finish(&mut self, result: Result<FinalizeUploadResponse, UploadError>) {
        self.conclude(result, FinalizeSent::No);
    }

    /// Ends the upload (once: later calls do nothing): the error learns the upload id, the
    /// parts stored, the rounds run and how to resume (with how far `finalize` got); parts
    /// backing off fail; [`Phase::Done`]. Runs from `finish` and `handle_finalize`.
    fn conclude(&mut self, result: Result<FinalizeUploadResponse, UploadError>, finalize: FinalizeSent) {
        if self.phase == Phase::Done {
            return;
        }
        let upload_id = self.session.as_ref().map(|s| s.upload_id.clone());
        let completed = self.parts.completed();
        let resume = match &result {
            Err(e) if self.resumable(e) => self.resume_state(finalize),
            _ => None,
        };
        let rounds = self.rounds.round + 1;
        let started = !self.parts.is_empty();
        self.result = Some(result.map_err(|e| {
            let e = e.with_upload(upload_id.as_deref(), completed);
            let e = if e.rounds_attempted() == 0 && started { e.with_rounds(rounds) } else { e };
            e.with_resume(resume)
        }));
        self.phase = Phase::Done;
        self.timers.stop(Timer::FinalizeRetry);
        self.rounds.clear_retry();
        self.fail_backoffs();
    }

    /// **The failures that carry no resume state** once a session exists; every other one
    /// does. The one list (the `upload` module's docs repeat it):
    /// - the upload is already finalized ([`K::AlreadyFinalized`]): nothing is left to do;
    /// - the source is not the size it declared ([`K::SourceSize`]): the parts stored may
    ///   not be this source's;
    /// - the source needs more parts than the protocol allows ([`K::SizeLimit`]): no resume
    ///   can store it;
    /// - a single-PUT session's URL was refused (`403`): it expired or was revoked, and a
    ///   single URL cannot be minted again.
    ///
    /// Runs from `conclude`.
    fn resumable(&self, e: &UploadError) -> bool {
        match e.kind() {
            K::AlreadyFinalized | K::SourceSize | K::SizeLimit => false,
            K::StorageStatus => !(self.is_single() && e.status() == Some(StatusCode::FORBIDDEN)),
            _ => true,
        }
    }
}

/// The error code of an "already finalized" answer. **An assumption, kept here only:** the
/// hosted API does not document what a second finalize of the same upload answers; our
/// emulator answers `400` with this code (as it does for a mint after finalize), and a
/// server that answers so has finalized the upload.
const ALREADY_FINALIZED: &str = "ALREADY_FINALIZED";

/// True for an "already finalized" answer (see [`ALREADY_FINALIZED`]). Runs from
/// `handle_finalize`.
fn is_already_finalized(e: &Error) -> bool {
    e.code() == Some(ALREADY_FINALIZED) && e.status().is_some_and(|s| s.is_client_error())
}

/// How far a failed finalize got: **refused** when the server answered that it would not
/// act (any 4xx but 429: validation, credentials, not found); **ambiguous** when it may
/// have acted (429 — the spec treats it as possibly processed —, 5xx, an unreadable
/// success, a transport failure after the request may have left); **not sent** for local
/// failures and transport failures that provably never left. Runs from `handle_finalize`.
fn finalize_outcome(e: &Error) -> FinalizeSent {
    match (e.status(), e.transport_kind()) {
        (Some(s), _) if s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS => FinalizeSent::Refused,
        (Some(_), _) => FinalizeSent::Ambiguous,
        (None, Some(k)) if k.never_sent() => FinalizeSent::No,
        (None, Some(_)) => FinalizeSent::Ambiguous,
        (None, None) if e.kind() == crate::ErrorKind::Decode => FinalizeSent::Ambiguous,
        (None, None) => FinalizeSent::No,
    }
}
