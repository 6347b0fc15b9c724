//! The sans-IO upload machine: see [`UploadMachine`].
//!
//! # States
//!
//! The upload as a whole is in one [`Phase`]; each part in the [`Parts`](parts::Parts)
//! table is in one [`PartState`](parts::PartState). Everything the machine waits for is in
//! one of two tables: a request or read in flight in [`Requests`](requests::Requests) (the
//! only place a [`RequestId`] is kept), a deadline in [`TimerTable`](timers::TimerTable).
//! Whether the upload is stopping (cancelled, or failed for good) is [`Stop`]: not a phase,
//! since a cancel may arrive in any phase and each phase looks at it when it moves.
//!
//! ```text
//! Start ─> Creating ─> Sending ─┬─ sized ──> Probing ─┬─> Finalizing ─> Done
//!                       ↑   │    └─ streaming ─────────┘     ↑    │
//!                       │   ↓                                │    ↓
//!                     RoundPause                           FinalizeWait
//! ```
//!
//! Any phase may also end in `Done` early: a failed session, a cancel, spent rounds, an
//! error that will not heal (its part requests in flight are cut off at once).
//!
//! # One multipart upload, file by file
//!
//! 1. **`mod.rs`**: [`UploadMachine::new`]; every [`poll_action`](UploadMachine::poll_action)
//!    with an empty queue, [`handle_timeout`](UploadMachine::handle_timeout) and
//!    [`cancel`](UploadMachine::cancel) run `advance`, which moves the current phase.
//! 2. **`session.rs`**: in `Start`, `advance` queues `CreateSession` (→ `Creating`);
//!    [`handle_session`](UploadMachine::handle_session) checks the answer, announces
//!    `SessionCreated` and enters `Sending` (a sized source now knows its last part).
//! 3. **`rounds.rs`**: in `Sending`, `pump` starts parts up to the round's cap and the
//!    memory budget (`start_fresh`), and handles the part timers that expired.
//! 4. **`read.rs`**: a part starts by reading its body (`start_part`: `ReadAt`/`ReadNext`);
//!    [`handle_read`](UploadMachine::handle_read) checks its length and holds it.
//! 5. **`put.rs`**: with the body held, `after_body` mints a URL if the session is streaming
//!    ([`handle_mint`](UploadMachine::handle_mint)) and sends the PUT with its transfer
//!    deadline; [`handle_put`](UploadMachine::handle_put) stores the part, backs it off for
//!    an inline retry (`429`, no response), or fails it: for the next round if the failure
//!    may heal, for good otherwise (the upload then stops: no new part; it ends once the
//!    requests in flight are back).
//! 6. **`rounds.rs`** again: when no part is in flight and none is left to re-send,
//!    `end_round` either pauses (`RoundPause`, then the failed parts are sent again at half
//!    the concurrency) or, when nothing failed, hands over to `finalize.rs`.
//! 7. **`finalize.rs`**: `after_last_part` probes a sized source for a byte past its end
//!    (`Probing`), then `send_finalize` (`Finalizing`);
//!    [`handle_finalize`](UploadMachine::handle_finalize) ends the upload, or waits and sends
//!    it again if it provably never left (`FinalizeWait`). Every path ends in `finish`
//!    (`Done`), and [`poll_result`](UploadMachine::poll_result) hands out the outcome.
//!
//! The tables, each keeping its own rules: **`parts.rs`** (part states, with counters kept
//! as parts change: active parts, bytes held, bytes sent, parts and bytes stored),
//! **`requests.rs`** (ids in flight), **`timers.rs`** (deadlines). The public types the
//! driver sees are in **`types.rs`**.
//!
//! # When does finalize start?
//!
//! In `pump` (`rounds.rs`), once a round ends with no part in flight, none left to re-send
//! and none failed, *and* the last part number is known (at once for a sized source; at the
//! first short read for a streaming one) with every part up to it started, hence stored:
//! `after_last_part` (`finalize.rs`) then reads one byte past the declared end of a sized
//! source (it must be empty) and finalizes on that answer; a streaming source is finalized
//! at once. A cancelled upload never finalizes, and one finalize that may have arrived is
//! never sent again.

#![warn(clippy::missing_docs_in_private_items)]

use std::collections::VecDeque;
use std::time::Duration;

use super::error::{UploadError, UploadErrorKind as K};
use super::resume::ResumeState;
use super::{PartRetryPolicy, UploadOptions};
use crate::models::FinalizeUploadResponse;

mod finalize;
mod parts;
mod put;
mod read;
mod requests;
mod rounds;
mod session;
mod timers;
mod types;

pub use put::storage_put_request;
pub use types::{PutResponse, RequestId, SessionShape, UploadAction, UploadEvent, UploadSpec};

use parts::Parts;
use requests::Requests;
use rounds::Rounds;
use session::Session;
use timers::TimerTable;

use crate::upload::resume::{MAX_PARTS, Mode};

/// Where the upload stands. Each variant holds what only it needs; the deadlines of the
/// waiting phases are in the [`TimerTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing asked yet: the next `poll_action` queues `CreateSession` (`session.rs`).
    Start,
    /// `CreateSession` is out; waiting for `handle_session`.
    Creating,
    /// Parts are read and sent (`rounds.rs`); also while the upload stops (cancelled, or an
    /// error that will not heal) and waits for the requests in flight.
    Sending,
    /// A round ended with parts to send again: waiting for `Timer::RoundPause`.
    RoundPause,
    /// Every part of a sized source is stored: waiting for the read of one byte past its
    /// declared end (`finalize.rs`).
    Probing,
    /// A finalize that never left waits for `Timer::FinalizeRetry` to be sent again.
    FinalizeWait {
        /// Finalizes sent so far.
        attempts: u32,
    },
    /// Finalize is out; waiting for `handle_finalize`.
    Finalizing {
        /// Finalizes sent so far, this one included.
        attempts: u32,
    },
    /// Over: the outcome waits in `result` until `poll_result` takes it.
    Done,
}

/// Why no new part, retry or finalize may start. It is not a phase: a cancel arrives in any
/// phase and takes effect where that phase looks at it.
#[derive(Debug, Default)]
struct Stop {
    /// The caller cancelled ([`UploadMachine::cancel`]).
    cancelled: bool,
    /// An error that ends the upload (its part requests in flight cut off); the first one
    /// is kept, and it wins over a cancel.
    error: Option<UploadError>,
}

impl Stop {
    /// True once cancelled or failed. Runs from `pump`, `expire_part_timers`,
    /// `inline_retry` and `part_failed`.
    fn is_stopping(&self) -> bool {
        self.cancelled || self.error.is_some()
    }

    /// Takes the error to end the upload with (cancelled if there is none). Runs from
    /// `finish_if_drained`.
    fn take_error(&mut self) -> UploadError {
        self.error.take().unwrap_or_else(cancelled)
    }
}

/// The upload protocol as a state machine.
///
/// [`UploadMachine`] holds the whole protocol and does no I/O: time is passed in as the
/// monotonic [`Duration`] of the runtime. A driver repeats:
///
/// 1. [`poll_action`](UploadMachine::poll_action) until `None`, performing each
///    [`UploadAction`] (send a request, read bytes of the source) and reporting its result
///    with the matching `handle_*` method (at once, or later for concurrent work). An API
///    call comes as the endpoint to send through the client (`client.call(endpoint)`, so
///    authentication, retries and tracing are the client's); a storage PUT as a finished
///    request for the transport;
/// 2. [`poll_event`](UploadMachine::poll_event) to forward progress;
/// 3. [`poll_result`](UploadMachine::poll_result): once it is `Some`, the upload is over and
///    nothing is in flight;
/// 4. otherwise it waits for one in-flight request to finish or for
///    [`poll_timeout`](UploadMachine::poll_timeout), then calls
///    [`handle_timeout`](UploadMachine::handle_timeout).
///
/// Requests are named by [`RequestId`]; an answer for an id the machine no longer waits
/// for (a request it cut off with [`UploadAction::Abort`]) is ignored. `handle_*` only
/// records an answer (and continues the part it belongs to); new parts, retries and
/// finalize start in `poll_action`, so a driver that forwards events and checks its cancel
/// token between the two never starts a part after the caller cancelled. The SDK's own
/// blocking and async drivers share this loop (the `upload` module's private `driver.rs`).
///
/// A complete single-PUT upload, answered in memory:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use hotdata_core::upload::{PutResponse, UploadAction, UploadMachine, UploadOptions, UploadSpec};
///
/// let source = b"hello, storage";
/// let mut m = UploadMachine::new(UploadSpec::sized(source.len() as u64), &UploadOptions::new());
/// let now = Duration::ZERO;
/// let result = loop {
///     while let Some(action) = m.poll_action(now) {
///         match action {
///             // A real driver sends `client.call(endpoint)`.
///             UploadAction::CreateSession { endpoint } => {
///                 assert_eq!(endpoint.body.declared_size_bytes, hotdata_core::Patch::Value(14));
///                 let session = serde_json::from_str(
///                     r#"{"upload_id":"up_1","finalize_token":"t","headers":{},
///                         "mode":"single","url":"https://storage.example/up_1"}"#,
///                 );
///                 m.handle_session(Ok(session.unwrap()), now);
///             }
///             UploadAction::ReadAt { id, offset, len } => {
///                 let end = (offset + len).min(source.len() as u64) as usize;
///                 let bytes = Bytes::copy_from_slice(&source[offset as usize..end]);
///                 m.handle_read(id, Ok(bytes), now);
///             }
///             UploadAction::Put { id, request, .. } => {
///                 assert_eq!(request.headers().len(), 1, "Content-Length only");
///                 let status = http::StatusCode::OK;
///                 let ok = PutResponse::new(status, Default::default(), Bytes::new());
///                 m.handle_put(id, Ok(ok), now);
///             }
///             // A real driver sends `client.call(endpoint).retry(retry)`.
///             UploadAction::Finalize { id, endpoint, retry } => {
///                 assert_eq!(endpoint.x_upload_finalize_token.expose(), "t");
///                 assert_eq!(retry, hotdata_core::RetryPolicy::none());
///                 let done = serde_json::from_str(
///                     r#"{"upload_id":"up_1","status":"finalized","size_bytes":14,
///                         "created_at":"2026-01-01T00:00:00Z"}"#,
///                 );
///                 m.handle_finalize(id, Ok(done.unwrap()), now);
///             }
///             other => unreachable!("{other:?}"),
///         }
///     }
///     if let Some(result) = m.poll_result() {
///         break result;
///     }
/// };
/// assert_eq!(result.unwrap().upload_id, "up_1");
/// ```
#[derive(Debug)]
pub struct UploadMachine {
    /// What the source is.
    spec: UploadSpec,
    /// The part-size hint sent at create (`None`: [`part_size_hint`](super::part_size_hint)).
    hint: Option<u64>,
    /// Parts in flight at most (before the memory budget and the rounds cut it down).
    max_concurrency: usize,
    /// Bytes of part bodies held at most.
    budget: u64,
    /// The per-request retry tier of storage PUTs.
    part_retry: PartRetryPolicy,
    /// The whole-upload retry tier: the round running and the parts it re-sends.
    rounds: Rounds,
    /// Where the upload stands.
    phase: Phase,
    /// Whether (and why) the upload is stopping.
    stop: Stop,
    /// The session, once opened (or resumed).
    session: Option<Session>,
    /// The parts, with their counters.
    parts: Parts,
    /// The requests and reads in flight.
    requests: Requests,
    /// The deadlines the machine waits for.
    timers: TimerTable,
    /// Actions queued for `poll_action`.
    actions: VecDeque<UploadAction>,
    /// Events queued for `poll_event`.
    events: VecDeque<UploadEvent>,
    /// The outcome, once known, until `poll_result` takes it.
    result: Option<Result<FinalizeUploadResponse, UploadError>>,
    /// The last `done` reported: progress never goes back.
    reported: u64,
    /// The size recorded in the [`ResumeState`] being resumed, if any.
    resume_total: Option<u64>,
    /// Every part is stored and the source was checked against its size (a complete
    /// [`ResumeState`]): finalize follows without reading the source again.
    finalize_ready: bool,
}

impl UploadMachine {
    /// A new upload of `spec` with `options` (its callbacks and cancel token are the
    /// driver's business and are not used here).
    pub fn new(spec: UploadSpec, options: &UploadOptions) -> Self {
        Self {
            hint: options.part_size,
            max_concurrency: options.max_concurrency.unwrap_or(super::DEFAULT_MAX_CONCURRENCY),
            budget: options.memory_budget.unwrap_or(super::DEFAULT_MEMORY_BUDGET),
            part_retry: options.part_retry.clone(),
            rounds: Rounds::new(options.rounds.clone()),
            spec,
            phase: Phase::Start,
            stop: Stop::default(),
            session: None,
            parts: Parts::new(),
            requests: Requests::default(),
            timers: TimerTable::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            result: None,
            reported: 0,
            resume_total: None,
            finalize_ready: false,
        }
    }

    /// Continues a failed upload in its session: the parts in `state` are not sent again (a
    /// streaming source is read past them), and a state whose parts are all stored only
    /// finalizes, reading nothing. `spec` describes the same source again, from its start.
    pub fn resume(state: ResumeState, spec: UploadSpec, options: &UploadOptions) -> Self {
        let mut m = Self::new(spec, options);
        m.resume_total = state.total;
        m.finalize_ready = state.is_complete();
        m.set_in_flight(matches!(state.mode, Mode::Single { .. }), state.part_size);
        for (n, (etag, len)) in state.completed {
            let offset = u64::from(n - 1).saturating_mul(state.part_size);
            m.parts.insert_done(n, offset, len, etag);
        }
        m.session = Some(Session {
            upload_id: state.upload_id,
            token: state.finalize_token,
            headers: state.headers,
            mode: state.mode,
            part_size: state.part_size,
        });
        m.phase = Phase::Sending;
        if let (Some(a), Some(b)) = (m.resume_total, m.spec.total)
            && a != b
        {
            let e = UploadError::new(
                K::SourceSize,
                format!("the source has {b} bytes but the upload being resumed has {a}"),
            );
            m.finish(Err(e));
            return m;
        }
        m.start_parts_phase();
        if m.finalize_ready {
            // Every part is stored: no part is read or sent again.
            m.parts.end = state.end;
            m.parts.next_fresh = state.end.map_or(1, |e| e.saturating_add(1));
        }
        m
    }

    /// The next thing to do, or `None` when the machine waits for answers or time.
    #[must_use]
    pub fn poll_action(&mut self, now: Duration) -> Option<UploadAction> {
        if self.actions.is_empty() {
            self.advance(now);
        }
        self.debug_check();
        self.actions.pop_front()
    }

    /// The next progress event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<UploadEvent> {
        self.events.pop_front()
    }

    /// The outcome, once the upload is over and nothing is in flight (returned once).
    #[must_use]
    pub fn poll_result(&mut self) -> Option<Result<FinalizeUploadResponse, UploadError>> {
        if !self.actions.is_empty() {
            return None;
        }
        self.result.take()
    }

    /// True once the outcome is known (whether or not it was taken).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work: a retry
    /// pause, a round pause, or the transfer deadline of a PUT in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timers.next_timeout()
    }

    /// Like [`poll_timeout`](Self::poll_timeout) without the transfer deadlines of PUTs in
    /// flight: enough for a driver whose transport enforces
    /// [`SendOptions::timeout`](crate::transport::SendOptions::timeout).
    #[must_use]
    pub fn poll_retry_timeout(&self) -> Option<Duration> {
        self.timers.next_retry_timeout()
    }

    /// Requests and reads in flight.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// Bytes of part bodies the machine holds or has asked to read.
    pub fn held_bytes(&self) -> u64 {
        self.parts.held()
    }

    /// Time passed: retries, round pauses and transfer deadlines due at `now` proceed.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.advance(now);
        self.debug_check();
    }

    /// The caller cancelled: no new part starts, no retry, no finalize; the part requests
    /// in flight are cut off ([`UploadAction::Abort`]). Once finalize was sent, cancelling
    /// has no effect.
    pub fn cancel(&mut self, now: Duration) {
        if self.stop.cancelled || matches!(self.phase, Phase::Done | Phase::Finalizing { .. }) {
            return;
        }
        self.stop.cancelled = true;
        self.advance(now);
        self.debug_check();
    }

    /// Moves everything that can move at `now`, by phase. Runs from `poll_action` (when no
    /// action is queued), `handle_timeout` and `cancel`.
    fn advance(&mut self, now: Duration) {
        match self.phase {
            Phase::Start => self.start(),
            Phase::Sending | Phase::RoundPause => self.pump(now),
            Phase::FinalizeWait { .. } => self.finalize_wait(now),
            Phase::Creating | Phase::Probing | Phase::Finalizing { .. } | Phase::Done => {}
        }
    }

    /// Stops the upload with `e` (the first such error is kept): no new part starts, the
    /// round's re-sends are dropped, and the upload ends once the requests in flight are
    /// back. Runs wherever a failure will not heal: `part_failed`, source reads,
    /// `start_fresh` (too many parts).
    fn fail(&mut self, e: UploadError) {
        if self.stop.error.is_none() {
            self.stop.error = Some(e);
        }
        self.rounds.clear_retry();
    }

    /// Debug builds: checks that the tables agree with each other (every part reading,
    /// minting or putting has exactly its one request in flight; every part putting or
    /// backing off has its timer, and no other part has one; the probe and finalize are in
    /// flight exactly in their phases). Runs at the end of `poll_action`, `handle_timeout`
    /// and `cancel`, for tables of at most 1,024 parts.
    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        self.check_tables();
    }
}

#[cfg(debug_assertions)]
impl UploadMachine {
    /// The checks of [`debug_check`](Self::debug_check).
    fn check_tables(&self) {
        use parts::PartState as P;
        use requests::Waiting as W;
        use timers::Timer as T;
        if self.parts.len() > 1024 {
            return;
        }
        let mut asked: Vec<W> = Vec::new();
        let (mut probes, mut finalizes) = (0, 0);
        for (_, w) in self.requests.iter() {
            match w {
                W::Read(_) | W::Mint(_) | W::Put(_) => asked.push(w),
                W::Skip(_) => {}
                W::Probe => probes += 1,
                W::Finalize => finalizes += 1,
            }
        }
        let mut waiting: Vec<W> = Vec::new();
        let mut timed: Vec<T> = Vec::new();
        for (n, p) in self.parts.iter() {
            match p.state() {
                P::Reading => waiting.push(W::Read(n)),
                P::Minting => waiting.push(W::Mint(n)),
                P::Putting { .. } => {
                    waiting.push(W::Put(n));
                    timed.push(T::Transfer(n));
                }
                P::Backoff => timed.push(T::Backoff(n)),
                P::Idle | P::Done { .. } | P::Failed => {}
            }
        }
        asked.sort();
        waiting.sort();
        assert_eq!(asked, waiting, "the requests of parts in flight and the part states disagree");
        let part_timers: Vec<T> =
            self.timers.iter().filter(|t| matches!(t, T::Transfer(_) | T::Backoff(_))).collect();
        timed.sort();
        assert_eq!(part_timers, timed, "the part timers and the part states disagree");
        assert_eq!(probes == 1, self.phase == Phase::Probing, "probe in flight in {:?}", self.phase);
        let finalizing = matches!(self.phase, Phase::Finalizing { .. });
        assert_eq!(finalizes == 1, finalizing, "finalize in flight in {:?}", self.phase);
        let waits = matches!(self.phase, Phase::FinalizeWait { .. });
        assert_eq!(self.timers.iter().any(|t| t == T::FinalizeRetry), waits, "finalize retry timer");
        if self.phase == Phase::RoundPause {
            assert!(self.timers.iter().any(|t| t == T::RoundPause), "a round pause without its timer");
        }
    }
}

/// The error of a cancelled upload. Runs wherever a cancel ends the upload.
fn cancelled() -> UploadError {
    UploadError::new(K::Cancelled, "upload cancelled by caller")
}
