//! The driver core shared by the blocking driver (`blocking.rs`) and the async driver
//! (`nonblocking.rs`): everything a driver does around the machine except I/O and waiting.
//!
//! A driver holds a [`DriverCore`] and repeats, as quinn's `ConnectionDriver::poll` does
//! around its connection:
//!
//! ```text
//!  loop match core.next(now) {
//!      Step::Inline(work) ─ perform it here (a blocking call or an `.await`) ─┐
//!      Step::Spawn(work)  ─ start it beside the work in flight ───────────────┤ its Answer,
//!      Step::Abort(id)    ─ drop that work if the driver can (core.forget)    │ now or later:
//!      Step::Sleep(at) / Step::Wait(timer) ─ wait for an answer or the time ──┤ core.answer
//!      Step::Done(result) ─ return it                                         │
//!  }                                   <──────────────────────────────────────┘
//! ```
//!
//! The core turns each [`UploadAction`] into a unit of work ([`Inline`] on the driver's own
//! thread or task, or [`Spawn`] beside the others), routes each [`Answer`] to the machine's
//! `handle_*`, forwards events ([`UploadOptions::emit`]), tells the machine when the
//! caller cancelled, takes the result, and ends an upload that stalled with nothing to do.
//! It does no I/O and reads no clock: the time comes with each call. What stays in a driver
//! is its concurrency primitive (threads and a channel, or a join set and one sleep), the
//! calls and reads themselves, and its wait.
//!
//! A request the machine cuts off (a PUT past its transfer deadline, or every part request
//! in flight once the upload is cancelled or fails for good) comes as [`Step::Abort`]:
//! the async driver drops its future, the blocking driver leaves it to its detached worker;
//! both [forget](DriverCore::forget) it, so nothing waits for it (an answer that comes
//! anyway is ignored by the machine).

use std::time::Duration;

use bytes::Bytes;

use super::machine::{PutResponse, RequestId, UploadAction, UploadMachine};
use super::{UploadError, UploadErrorKind, UploadOptions};
use crate::Error;
use crate::models::{FinalizeUploadResponse, MintUploadPartsResponse, UploadSessionResponse};
use crate::ops::{CreateUploadSession, FinalizeUpload, MintUploadParts};
use crate::retry::RetryPolicy;
use crate::transport::{HttpRequest, SendOptions, TransportError};

/// What the driver does next ([`DriverCore::next`]).
#[must_use]
pub(super) enum Step {
    /// Perform this on the driver's own thread or task, then hand its answer to
    /// [`DriverCore::answer`] before the next step.
    Inline(Inline),
    /// Start this beside the work in flight; its answer comes back later, through
    /// [`DriverCore::answer`].
    Spawn(Spawn),
    /// The machine cut off this request: the driver drops the work if it can (or leaves
    /// it to run out unobserved) and calls [`DriverCore::forget`]; an answer that comes
    /// anyway is ignored by the machine.
    Abort(RequestId),
    /// Nothing in flight: sleep until this time, then answer [`Answer::Timeout`].
    Sleep(Duration),
    /// Work in flight: wait for one answer, or until this time (then answer
    /// [`Answer::Timeout`]). A driver whose transport enforces the PUTs' transfer deadlines
    /// may wait for [`DriverCore::retry_timeout`] instead.
    Wait(Option<Duration>),
    /// The upload is over and nothing is in flight.
    Done(Result<FinalizeUploadResponse, UploadError>),
}

/// Work done on the driver's own thread or task, one at a time, before the next step: the
/// calls that open and close the upload (nothing else is in flight then), and reads that
/// are cheap (in memory) or must stay in order (a stream, a reader, one file handle).
pub(super) enum Inline {
    /// `client.call(endpoint)`, answered with [`Answer::Session`].
    CreateSession(CreateUploadSession),
    /// A read by range of a source that is not read by position: in memory (a slice), or
    /// a blocking source (a file on one thread, a seekable reader); [`Answer::Read`].
    ReadAt {
        /// The read.
        id: RequestId,
        /// Offset from the start of the upload.
        offset: u64,
        /// Bytes wanted.
        len: u64,
    },
    /// The next bytes of a source read in order; [`Answer::Read`].
    ReadNext {
        /// The read.
        id: RequestId,
        /// Bytes wanted.
        len: u64,
    },
    /// `client.call(endpoint).retry(retry)`, answered with [`Answer::Finalize`].
    Finalize {
        /// The request.
        id: RequestId,
        /// The finalize call.
        endpoint: FinalizeUpload,
        /// Its retry policy (none).
        retry: RetryPolicy,
    },
}

/// Work started beside the work in flight: the core counts it until its answer comes back
/// or the driver [forgets](DriverCore::forget) it.
#[allow(clippy::large_enum_variant)] // moved once, from the action to the driver's job, as `UploadAction` is
pub(super) enum Spawn {
    /// A part read by position (a file on the blocking driver's workers, an
    /// [`AsyncRangeSource`](super::AsyncRangeSource)); [`Answer::Read`].
    ReadAt {
        /// The read.
        id: RequestId,
        /// Offset from the start of the upload.
        offset: u64,
        /// Bytes wanted.
        len: u64,
    },
    /// `client.call(endpoint)`, answered with [`Answer::Mint`].
    Mint {
        /// The request.
        id: RequestId,
        /// The mint call.
        endpoint: MintUploadParts,
    },
    /// The storage request sent as is to the transport with `options`, its body read;
    /// answered with [`Answer::Put`] (and, as the body is read, [`Answer::Sent`]).
    Put {
        /// The request.
        id: RequestId,
        /// The storage request.
        request: HttpRequest,
        /// Its timeouts.
        options: SendOptions,
    },
}

/// What came back to the driver, for [`DriverCore::answer`]: the one message type of both
/// drivers (the blocking driver's channel carries it; the async driver's futures yield it).
pub(super) enum Answer {
    /// The answer to [`Inline::CreateSession`].
    Session(Result<UploadSessionResponse, Error>),
    /// The bytes of a read.
    Read(RequestId, std::io::Result<Bytes>),
    /// The answer to [`Spawn::Mint`].
    Mint(RequestId, Result<MintUploadPartsResponse, Error>),
    /// The answer to [`Spawn::Put`].
    Put(RequestId, Result<PutResponse, TransportError>),
    /// Bytes of a PUT's body the transport has read so far.
    Sent(RequestId, u64),
    /// The answer to [`Inline::Finalize`].
    Finalize(RequestId, Result<FinalizeUploadResponse, Error>),
    /// The time the driver waited for has come.
    Timeout,
}

/// The machine of one upload with what every driver keeps beside it.
pub(super) struct DriverCore<'a> {
    /// The upload.
    machine: UploadMachine,
    /// Its options: the event callback, progress handle and cancel token.
    options: &'a UploadOptions,
    /// Whether reads by range run beside the work in flight ([`Spawn::ReadAt`]) rather
    /// than on the driver's own thread ([`Inline::ReadAt`]).
    reads_by_position: bool,
    /// The [`Spawn`] work whose answer has not come back yet: a short list (the parts in
    /// flight, and PUTs cut off that the driver lets run out).
    in_flight: Vec<RequestId>,
    /// The next [`next`](Self::next) starts a pass over the machine's actions, so it looks
    /// at the cancel token first (once per pass, as the machine's docs ask: between
    /// forwarding events and asking for actions).
    pass_start: bool,
}

impl<'a> DriverCore<'a> {
    /// The core around `machine`; `reads_by_position` says whether the driver reads parts
    /// by range beside the work in flight.
    pub(super) fn new(machine: UploadMachine, options: &'a UploadOptions, reads_by_position: bool) -> Self {
        Self { machine, options, reads_by_position, in_flight: Vec::new(), pass_start: true }
    }

    /// The next step at `now`: forwards the events so far, tells the machine if the caller
    /// cancelled (at the start of a pass), and turns its next action into work; with no
    /// action left, the result, the stall error, or what to wait for. Runs at the top of
    /// every turn of a driver's loop.
    pub(super) fn next(&mut self, now: Duration) -> Step {
        self.emit_events();
        if std::mem::take(&mut self.pass_start) && self.options.is_cancelled() {
            self.machine.cancel(now);
        }
        let Some(action) = self.machine.poll_action(now) else {
            return self.settle();
        };
        match action {
            UploadAction::CreateSession { endpoint } => Step::Inline(Inline::CreateSession(endpoint)),
            UploadAction::ReadAt { id, offset, len } if self.reads_by_position => {
                self.in_flight.push(id);
                Step::Spawn(Spawn::ReadAt { id, offset, len })
            }
            UploadAction::ReadAt { id, offset, len } => Step::Inline(Inline::ReadAt { id, offset, len }),
            UploadAction::ReadNext { id, len } => Step::Inline(Inline::ReadNext { id, len }),
            UploadAction::Mint { id, endpoint, .. } => {
                self.in_flight.push(id);
                Step::Spawn(Spawn::Mint { id, endpoint })
            }
            UploadAction::Put { id, request, options, .. } => {
                self.in_flight.push(id);
                Step::Spawn(Spawn::Put { id, request, options })
            }
            UploadAction::Abort { id } => Step::Abort(id),
            UploadAction::Finalize { id, endpoint, retry } => {
                Step::Inline(Inline::Finalize { id, endpoint, retry })
            }
        }
    }

    /// No action left in this pass: forwards the events, then the result if the upload is
    /// over, the stall error if nothing is in flight and no time is awaited, or what to
    /// wait for. Runs from [`next`](Self::next).
    fn settle(&mut self) -> Step {
        self.emit_events();
        if let Some(result) = self.machine.poll_result() {
            return Step::Done(result);
        }
        self.pass_start = true;
        let timeout = self.machine.poll_timeout();
        match timeout {
            _ if !self.in_flight.is_empty() => Step::Wait(timeout),
            Some(at) => Step::Sleep(at),
            None => Step::Done(Err(UploadError::new(
                UploadErrorKind::Cancelled,
                "the upload stalled with nothing to do",
            ))),
        }
    }

    /// Hands `answer` to the machine at `now` (the `handle_*` it belongs to); a [`Spawn`]
    /// answer is no longer in flight. Runs whenever a driver has an answer: after inline
    /// work, and after each wait.
    pub(super) fn answer(&mut self, answer: Answer, now: Duration) {
        if let Answer::Read(id, _) | Answer::Mint(id, _) | Answer::Put(id, _) = &answer {
            self.forget(*id);
        }
        let m = &mut self.machine;
        match answer {
            Answer::Session(r) => m.handle_session(r, now),
            Answer::Read(id, r) => m.handle_read(id, r, now),
            Answer::Mint(id, r) => m.handle_mint(id, r, now),
            Answer::Put(id, r) => m.handle_put(id, r, now),
            Answer::Sent(id, n) => m.handle_sent(id, n),
            Answer::Finalize(id, r) => m.handle_finalize(id, r, now),
            Answer::Timeout => m.handle_timeout(now),
        }
    }

    /// The work under `id` is no longer in flight: its answer came back, or the driver
    /// dropped it after [`Step::Abort`] (its answer will never come).
    pub(super) fn forget(&mut self, id: RequestId) {
        self.in_flight.retain(|i| *i != id);
    }

    /// The machine's next retry or round pause, without the PUTs' transfer deadlines (see
    /// [`UploadMachine::poll_retry_timeout`]).
    pub(super) fn retry_timeout(&self) -> Option<Duration> {
        self.machine.poll_retry_timeout()
    }

    /// The upload's options (its cancel token, for a driver's wait).
    pub(super) fn options(&self) -> &'a UploadOptions {
        self.options
    }

    /// Forwards the machine's queued events to the caller's callback and progress handle,
    /// in order.
    fn emit_events(&mut self) {
        while let Some(e) = self.machine.poll_event() {
            self.options.emit(&e);
        }
    }
}
