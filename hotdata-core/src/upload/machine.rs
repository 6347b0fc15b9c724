//! The sans-IO upload machine: see [`UploadMachine`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, ETAG, HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, StatusCode};

use super::error::{ResumeState, UploadError, UploadErrorKind as K};
use super::{
    MAX_UPLOAD_SIZE, PartRetryPolicy, RoundPolicy, STORAGE_CONNECT_TIMEOUT, STREAMING_THRESHOLD,
    UploadOptions, effective_in_flight, part_deadline, part_size_hint,
};
use crate::body::RequestBody;
use crate::models::{
    CreateUploadRequest, FinalizeUploadPart, FinalizeUploadRequest, FinalizeUploadResponse,
    MintUploadPartsRequest, MintUploadPartsResponse, UploadMode, UploadSessionResponse,
};
use crate::retry::parse_retry_after_seconds;
use crate::transport::{HttpRequest, SendOptions, TransportError, TransportErrorKind};
use crate::{Error, Patch};

/// S3's hard limit on the number of parts.
const MAX_PARTS: u64 = 10_000;
/// Attempts of a finalize that provably never left, and the first pause between them.
const FINALIZE_ATTEMPTS: u32 = 3;
const FINALIZE_RETRY_BASE: Duration = Duration::from_millis(500);
/// Bytes of a storage error body kept in the error.
const MAX_ERROR_BODY: usize = 64 * 1024;

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
    pub fn with_headers_filtered(mut self, filtered: bool) -> Self {
        self.headers_filtered = filtered;
        self
    }
}

/// What the driver must do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum UploadAction {
    /// Send `POST /v1/uploads` with this body through the API client (its normal retries
    /// apply); report with [`UploadMachine::handle_session`].
    CreateSession {
        /// The create body.
        request: CreateUploadRequest,
    },
    /// Read exactly `len` bytes at `offset` of the source (fewer only at its end); report
    /// with [`UploadMachine::handle_read`].
    ReadAt {
        /// The read.
        id: RequestId,
        /// Offset from the start of the upload.
        offset: u64,
        /// Bytes wanted.
        len: u64,
    },
    /// Read the next `len` bytes of a streaming source (fewer only at its end); report
    /// with [`UploadMachine::handle_read`].
    ReadNext {
        /// The read.
        id: RequestId,
        /// Bytes wanted.
        len: u64,
    },
    /// Mint a part URL: send `POST /v1/uploads/{upload_id}/parts` with the token through
    /// the API client; report with [`UploadMachine::handle_mint`].
    Mint {
        /// The request.
        id: RequestId,
        /// The part.
        part: u32,
        /// The upload id.
        upload_id: String,
        /// The finalize token (the header `X-Upload-Finalize-Token`).
        token: String,
        /// The body.
        request: MintUploadPartsRequest,
    },
    /// Send this storage request as is, straight to the transport (no authentication, no
    /// client headers, no retries), with these options; read its body and report with
    /// [`UploadMachine::handle_put`].
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
    /// Send finalize once, through the API client **with retries off**; report with
    /// [`UploadMachine::handle_finalize`].
    Finalize {
        /// The request.
        id: RequestId,
        /// The upload id.
        upload_id: String,
        /// The finalize token.
        token: String,
        /// The body.
        request: FinalizeUploadRequest,
    },
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
}

/// Builds a storage PUT: `url`, `Content-Length`, then the session's headers verbatim, and
/// nothing else (no authentication, workspace, `User-Agent`, `Accept-Encoding` or
/// `Content-Type`, which object stores may reject as unsigned headers).
pub fn storage_put_request(
    url: &str,
    body: Bytes,
    session_headers: &[(String, String)],
) -> Result<HttpRequest, UploadError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| UploadError::new(K::MalformedSession, format!("invalid storage URL: {e}")))?;
    let mut request = http::Request::new(RequestBody::Empty);
    *request.method_mut() = http::Method::PUT;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
    for (name, value) in session_headers {
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            return Err(UploadError::new(K::MalformedSession, format!("invalid session header `{name}`")));
        };
        headers.insert(n, v);
    }
    *request.body_mut() = RequestBody::Bytes(body);
    Ok(request)
}

#[derive(Debug, Clone)]
enum Mode {
    Single { url: String },
    Eager { urls: Vec<String> },
    Streaming,
}

#[derive(Debug)]
struct Session {
    upload_id: String,
    token: String,
    headers: Vec<(String, String)>,
    mode: Mode,
    part_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PState {
    Idle,
    Reading(RequestId),
    Minting(RequestId),
    Putting { id: RequestId, deadline: Duration },
    Backoff { until: Duration },
    Done,
    Failed,
}

#[derive(Debug)]
struct Part {
    offset: u64,
    len: u64,
    body: Option<Bytes>,
    url: Option<String>,
    state: PState,
    retries: u32,
    reminted: bool,
    etag: Option<String>,
    /// Bytes the current attempt has handed to storage (see `handle_sent`).
    sent: u64,
}

#[derive(Debug, Clone, Copy)]
enum Pending {
    Read(u32),
    Skip(u32),
    Probe,
    Mint(u32),
    Put(u32),
    Finalize,
}

#[derive(Debug)]
enum Phase {
    Start,
    Creating,
    Parts,
    Probing,
    FinalizeWait { until: Duration },
    Finalizing,
    Done,
}

/// The upload protocol as a state machine.
///
/// [`UploadMachine`] holds the whole protocol and does no I/O: time is passed in as the
/// monotonic [`Duration`] of the runtime. A driver repeats:
///
/// 1. [`poll_action`](UploadMachine::poll_action) until `None`, performing each
///    [`UploadAction`] (send a request, read bytes of the source) and reporting its result
///    with the matching `handle_*` method (at once, or later for concurrent work);
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
/// token between the two never starts a part after the caller cancelled.
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
///             UploadAction::CreateSession { request } => {
///                 assert_eq!(request.declared_size_bytes, hotdata_core::Patch::Value(14));
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
///             UploadAction::Finalize { id, .. } => {
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
    spec: UploadSpec,
    hint: Option<u64>,
    max_concurrency: usize,
    budget: u64,
    part_retry: PartRetryPolicy,
    rounds: RoundPolicy,
    phase: Phase,
    next_id: u64,
    actions: VecDeque<UploadAction>,
    events: VecDeque<UploadEvent>,
    result: Option<Result<FinalizeUploadResponse, UploadError>>,
    session: Option<Session>,
    parts: BTreeMap<u32, Part>,
    pending: HashMap<RequestId, Pending>,
    end: Option<u32>,
    next_fresh: u32,
    seq_offset: u64,
    held: u64,
    round: u32,
    base_cap: usize,
    retry_set: BTreeSet<u32>,
    failed: BTreeSet<u32>,
    last_failure: Option<UploadError>,
    terminal: Option<UploadError>,
    cancelled: bool,
    pause_until: Option<Duration>,
    done_bytes: u64,
    /// The last `done` reported: progress never goes back.
    reported: u64,
    finalize_attempts: u32,
    finalize_sent: bool,
    resume_total: Option<u64>,
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
            rounds: options.rounds.clone(),
            spec,
            phase: Phase::Start,
            next_id: 0,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            result: None,
            session: None,
            parts: BTreeMap::new(),
            pending: HashMap::new(),
            end: None,
            next_fresh: 1,
            seq_offset: 0,
            held: 0,
            round: 0,
            base_cap: 1,
            retry_set: BTreeSet::new(),
            failed: BTreeSet::new(),
            last_failure: None,
            terminal: None,
            cancelled: false,
            pause_until: None,
            done_bytes: 0,
            reported: 0,
            finalize_attempts: 0,
            finalize_sent: false,
            resume_total: None,
        }
    }

    /// Continues a failed multipart upload in its session: the parts in `state` are not
    /// sent again (a streaming source is read past them). `spec` describes the same source
    /// again, from its start.
    pub fn resume(state: ResumeState, spec: UploadSpec, options: &UploadOptions) -> Self {
        let mut m = Self::new(spec, options);
        m.resume_total = state.total;
        let mode = match state.part_urls {
            Some(urls) => Mode::Eager { urls },
            None => Mode::Streaming,
        };
        m.base_cap = effective_in_flight(m.max_concurrency, m.budget, state.part_size);
        for (n, (etag, len)) in state.completed {
            m.done_bytes += len;
            let offset = u64::from(n - 1) * state.part_size;
            m.parts.insert(n, Part::done(offset, len, etag));
        }
        m.session = Some(Session {
            upload_id: state.upload_id,
            token: state.finalize_token,
            headers: state.headers,
            mode,
            part_size: state.part_size,
        });
        m.phase = Phase::Parts;
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
        m
    }

    /// The next thing to do, or `None` when the machine waits for answers or time.
    pub fn poll_action(&mut self, now: Duration) -> Option<UploadAction> {
        if self.actions.is_empty() {
            self.advance(now);
        }
        self.actions.pop_front()
    }

    /// The next progress event, if any.
    pub fn poll_event(&mut self) -> Option<UploadEvent> {
        self.events.pop_front()
    }

    /// The outcome, once the upload is over and nothing is in flight (returned once).
    pub fn poll_result(&mut self) -> Option<Result<FinalizeUploadResponse, UploadError>> {
        if !self.actions.is_empty() {
            return None;
        }
        self.result.take()
    }

    /// True once the outcome is known (whether or not it was taken).
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) has work: a retry
    /// pause, a round pause, or the transfer deadline of a PUT in flight.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let deadlines = self.parts.values().filter_map(|p| match p.state {
            PState::Putting { deadline, .. } => Some(deadline),
            _ => None,
        });
        self.poll_retry_timeout().into_iter().chain(deadlines).min()
    }

    /// Like [`poll_timeout`](Self::poll_timeout) without the transfer deadlines of PUTs in
    /// flight: enough for a driver whose transport enforces [`SendOptions::timeout`].
    pub fn poll_retry_timeout(&self) -> Option<Duration> {
        let backoffs = self.parts.values().filter_map(|p| match p.state {
            PState::Backoff { until } => Some(until),
            _ => None,
        });
        let finalize = match self.phase {
            Phase::FinalizeWait { until } => Some(until),
            _ => None,
        };
        backoffs.chain(self.pause_until).chain(finalize).min()
    }

    /// Requests and reads in flight.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of part bodies the machine holds or has asked to read.
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    /// Time passed: retries, round pauses and transfer deadlines due at `now` proceed.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.advance(now);
    }

    /// The caller cancelled: no new part starts, no retry, no finalize; the parts in flight
    /// are waited for. Once finalize was sent, cancelling has no effect.
    pub fn cancel(&mut self, now: Duration) {
        if self.cancelled || matches!(self.phase, Phase::Done | Phase::Finalizing) {
            return;
        }
        self.cancelled = true;
        self.advance(now);
    }

    /// The answer to [`UploadAction::CreateSession`].
    pub fn handle_session(&mut self, result: Result<UploadSessionResponse, Error>, now: Duration) {
        let _ = now; // new parts start on the next `poll_action`
        if !matches!(self.phase, Phase::Creating) {
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

    /// The answer to [`UploadAction::ReadAt`] or [`UploadAction::ReadNext`].
    pub fn handle_read(&mut self, id: RequestId, result: std::io::Result<Bytes>, now: Duration) {
        let Some(what) = self.pending.remove(&id) else { return };
        let bytes = match result {
            Ok(b) => b,
            Err(e) => {
                let part = match what {
                    Pending::Read(n) | Pending::Skip(n) => Some(n),
                    _ => None,
                };
                if let Pending::Read(n) = what {
                    self.release_reservation(n);
                }
                let e = UploadError::new(K::SourceIo, format!("reading the source failed: {e}"))
                    .with_part(part)
                    .with_source(e);
                if matches!(what, Pending::Probe) {
                    self.phase = Phase::Parts;
                    self.finish(Err(e));
                    return;
                }
                self.set_terminal(e);
                return;
            }
        };
        match what {
            Pending::Read(n) => self.on_part_read(n, bytes, now),
            Pending::Skip(n) => self.on_skip_read(n, bytes),
            Pending::Probe => self.on_probe(bytes, now),
            _ => {}
        }
    }

    /// The answer to [`UploadAction::Mint`] (after the API client's own retries).
    pub fn handle_mint(
        &mut self,
        id: RequestId,
        result: Result<MintUploadPartsResponse, Error>,
        now: Duration,
    ) {
        let Some(Pending::Mint(n)) = self.pending.remove(&id) else { return };
        match result {
            Ok(resp) => match pick_minted(n, resp) {
                Ok(url) => {
                    if let Some(p) = self.parts.get_mut(&n) {
                        p.url = Some(url);
                    }
                    self.issue_put(n, now);
                }
                Err(e) => self.part_failed(n, e.with_part(Some(n)), false),
            },
            Err(e) => {
                let heals = heals_api(&e);
                let malformed = e.kind() == crate::ErrorKind::Decode;
                let kind = if malformed { K::MalformedSession } else { K::Mint };
                let e = UploadError::from_api(kind, &format!("minting the URL of part {n} failed"), e);
                self.part_failed(n, e.with_part(Some(n)), heals && !malformed);
            }
        }
    }

    /// The answer to [`UploadAction::Put`].
    pub fn handle_put(&mut self, id: RequestId, result: Result<PutResponse, TransportError>, now: Duration) {
        let Some(Pending::Put(n)) = self.pending.remove(&id) else { return };
        match self.parts.get(&n).map(|p| p.state) {
            Some(PState::Putting { id: current, .. }) if current == id => {}
            _ => return,
        }
        match result {
            Ok(r) => self.on_put_answer(n, r, now),
            Err(e) => self.on_put_transport(n, e.kind(), Some(e), now),
        }
    }

    /// How many bytes of its body the PUT `id` has handed to storage so far (cumulative for
    /// the attempt). Optional: a driver that calls it makes progress byte-granular within a
    /// part; progress still counts stored parts without it. Bytes of an attempt that fails
    /// stop counting, and progress holds (never goes back) until the retry passes them.
    pub fn handle_sent(&mut self, id: RequestId, sent: u64) {
        let Some(Pending::Put(n)) = self.pending.get(&id) else { return };
        let Some(p) = self.parts.get_mut(n) else { return };
        if !matches!(p.state, PState::Putting { id: current, .. } if current == id) || sent <= p.sent {
            return;
        }
        p.sent = sent.min(p.len);
        self.report_progress();
    }

    /// Bytes stored plus bytes sent by attempts in flight, as a `Progress` event when it
    /// moved.
    fn report_progress(&mut self) {
        let in_flight: u64 =
            self.parts.values().filter(|p| matches!(p.state, PState::Putting { .. })).map(|p| p.sent).sum();
        let done = (self.done_bytes + in_flight).max(self.reported);
        if done > self.reported {
            self.reported = done;
            let total = self.spec.total.or(self.end.map(|_| self.seq_offset));
            self.events.push_back(UploadEvent::Progress { done, total });
        }
    }

    /// The answer to [`UploadAction::Finalize`] (sent once, with retries off).
    pub fn handle_finalize(
        &mut self,
        id: RequestId,
        result: Result<FinalizeUploadResponse, Error>,
        now: Duration,
    ) {
        let Some(Pending::Finalize) = self.pending.remove(&id) else { return };
        match result {
            Ok(r) => {
                self.phase = Phase::Finalizing;
                self.finish(Ok(r));
            }
            Err(e) => {
                let never_sent = e.transport_kind().is_some_and(TransportErrorKind::never_sent);
                if never_sent && self.finalize_attempts < FINALIZE_ATTEMPTS && !self.cancelled {
                    let pause = FINALIZE_RETRY_BASE.saturating_mul(1 << (self.finalize_attempts - 1));
                    self.phase = Phase::FinalizeWait { until: now.saturating_add(pause) };
                } else {
                    // Did it reach the server? An answer says yes; a transport failure after
                    // connecting may; a local failure (credentials, configuration) says no.
                    let sent = match (e.status(), e.transport_kind()) {
                        (Some(_), _) => true,
                        (None, Some(k)) => !k.never_sent(),
                        (None, None) => false,
                    };
                    let ambiguous = sent
                        && (e.status().is_none_or(|s| s.is_server_error() || s.is_success())
                            || e.kind() == crate::ErrorKind::Decode);
                    self.finalize_sent = sent;
                    let err = UploadError::from_api(K::Finalize, "finalize failed", e)
                        .finalize_ambiguous(ambiguous);
                    self.finish(Err(err));
                }
            }
        }
    }

    // ---- internals --------------------------------------------------------------------

    fn id(&mut self, what: Pending) -> RequestId {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.pending.insert(id, what);
        id
    }

    fn part_size(&self) -> u64 {
        self.session.as_ref().map_or(1, |s| s.part_size)
    }

    fn is_single(&self) -> bool {
        matches!(self.session.as_ref().map(|s| &s.mode), Some(Mode::Single { .. }))
    }

    fn parts_completed(&self) -> u32 {
        self.parts.values().filter(|p| p.state == PState::Done).count() as u32
    }

    fn cap(&self) -> usize {
        (self.base_cap >> self.round.min(63)).max(1)
    }

    fn active(&self) -> usize {
        self.parts
            .values()
            .filter(|p| {
                matches!(
                    p.state,
                    PState::Reading(_) | PState::Minting(_) | PState::Putting { .. } | PState::Backoff { .. }
                )
            })
            .count()
    }

    fn finish(&mut self, result: Result<FinalizeUploadResponse, UploadError>) {
        if matches!(self.phase, Phase::Done) {
            return;
        }
        let upload_id = self.session.as_ref().map(|s| s.upload_id.clone());
        let completed = self.parts_completed();
        let resume = if result.is_err() { self.resume_state() } else { None };
        self.result = Some(result.map_err(|e| {
            let e = e.with_upload(upload_id.as_deref(), completed);
            let e = if e.rounds_attempted() == 0 && !self.parts.is_empty() {
                e.with_rounds(self.round + 1)
            } else {
                e
            };
            e.with_resume(resume)
        }));
        self.phase = Phase::Done;
        self.retry_set.clear();
        for p in self.parts.values_mut() {
            if matches!(p.state, PState::Backoff { .. }) {
                p.state = PState::Failed;
            }
        }
    }

    fn resume_state(&self) -> Option<ResumeState> {
        let s = self.session.as_ref()?;
        if self.finalize_sent {
            return None;
        }
        let part_urls = match &s.mode {
            Mode::Single { .. } => return None,
            Mode::Eager { urls } => Some(urls.clone()),
            Mode::Streaming => None,
        };
        let completed = self
            .parts
            .iter()
            .filter_map(|(n, p)| p.etag.clone().filter(|_| p.state == PState::Done).map(|e| (*n, (e, p.len))))
            .collect();
        Some(ResumeState {
            upload_id: s.upload_id.clone(),
            finalize_token: s.token.clone(),
            part_size: s.part_size,
            headers: s.headers.clone(),
            part_urls,
            total: self.spec.total.or(self.resume_total),
            completed,
        })
    }

    fn set_terminal(&mut self, e: UploadError) {
        if self.terminal.is_none() {
            self.terminal = Some(e);
        }
        self.retry_set.clear();
    }

    fn start_request(&mut self) -> Result<UploadAction, UploadError> {
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
        Ok(UploadAction::CreateSession { request })
    }

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
        self.base_cap = match mode {
            Mode::Single { .. } => 1,
            _ => effective_in_flight(self.max_concurrency, self.budget, part_size),
        };
        self.session = Some(Session {
            upload_id: s.upload_id,
            token: s.finalize_token.expose().to_owned(),
            headers,
            mode,
            part_size,
        });
        Ok(())
    }

    fn start_parts_phase(&mut self) {
        self.phase = Phase::Parts;
        if let (Some(t), Some(s)) = (self.spec.total, &self.session) {
            self.end = Some(match s.mode {
                Mode::Single { .. } => 1,
                _ => t.div_ceil(s.part_size).max(1) as u32,
            });
        }
        let total = self.spec.total;
        self.events.push_back(UploadEvent::Progress { done: self.done_bytes, total });
    }

    /// Moves everything that can move at `now`.
    fn advance(&mut self, now: Duration) {
        match self.phase {
            Phase::Start => {
                if self.cancelled {
                    self.finish(Err(cancelled()));
                    return;
                }
                match self.start_request() {
                    Ok(a) => {
                        self.phase = Phase::Creating;
                        self.actions.push_back(a);
                    }
                    Err(e) => self.finish(Err(e)),
                }
            }
            Phase::Parts => self.pump(now),
            Phase::FinalizeWait { until } => {
                if self.cancelled {
                    self.finish(Err(cancelled()));
                } else if now >= until {
                    self.send_finalize();
                }
            }
            Phase::Creating | Phase::Probing | Phase::Finalizing | Phase::Done => {}
        }
    }

    fn pump(&mut self, now: Duration) {
        // Transfer deadlines and due retries.
        let due: Vec<(u32, PState)> = self
            .parts
            .iter()
            .filter(|(_, p)| match p.state {
                PState::Putting { deadline, .. } => deadline <= now,
                PState::Backoff { until } => until <= now,
                _ => false,
            })
            .map(|(n, p)| (*n, p.state))
            .collect();
        for (n, state) in due {
            match state {
                PState::Putting { id, .. } => {
                    self.pending.remove(&id);
                    self.actions.push_back(UploadAction::Abort { id });
                    self.on_put_transport(n, TransportErrorKind::Timeout, None, now);
                }
                PState::Backoff { .. } if self.terminal.is_none() && !self.cancelled => {
                    self.issue_put(n, now)
                }
                _ => {}
            }
        }
        if self.terminal.is_some() || self.cancelled {
            for p in self.parts.values_mut() {
                if matches!(p.state, PState::Backoff { .. }) {
                    p.state = PState::Failed;
                }
            }
            if self.pending.is_empty() {
                let e = self.terminal.take().unwrap_or_else(cancelled);
                self.finish(Err(e));
            }
            return;
        }
        if let Some(until) = self.pause_until {
            if now < until {
                return;
            }
            self.pause_until = None;
            self.round += 1;
            self.retry_set = std::mem::take(&mut self.failed);
            for n in &self.retry_set {
                if let Some(p) = self.parts.get_mut(n) {
                    p.retries = 0;
                    p.reminted = false;
                    p.state = PState::Idle;
                }
            }
            self.events.push_back(UploadEvent::RoundStarted { round: self.round, concurrency: self.cap() });
        }
        while self.active() < self.cap() && matches!(self.phase, Phase::Parts) && self.terminal.is_none() {
            if let Some(n) = self.retry_set.first().copied() {
                let need = self.parts.get(&n).map_or(0, |p| if p.body.is_some() { 0 } else { p.len });
                if need > 0 && self.held > 0 && self.held + need > self.budget {
                    break;
                }
                self.retry_set.remove(&n);
                self.start_part(n, now);
                continue;
            }
            if !self.start_fresh(now) {
                break;
            }
        }
        if self.terminal.is_some() {
            // A failure while starting (a malformed URL): drain and stop.
            if self.pending.is_empty() {
                let e = self.terminal.take().unwrap_or_else(cancelled);
                self.finish(Err(e));
            }
            return;
        }
        if self.active() == 0 && self.retry_set.is_empty() && matches!(self.phase, Phase::Parts) {
            self.round_end(now);
        }
    }

    /// Starts the next part never attempted; false when there is none or the budget is full.
    fn start_fresh(&mut self, now: Duration) -> bool {
        let sequential = self.spec.total.is_none();
        let ps = self.part_size();
        loop {
            let n = self.next_fresh;
            if self.end.is_some_and(|e| n > e) {
                return false;
            }
            if sequential && self.pending.values().any(|p| matches!(p, Pending::Read(_) | Pending::Skip(_))) {
                return false;
            }
            if let Some(p) = self.parts.get(&n)
                && p.state == PState::Done
            {
                self.next_fresh += 1;
                if sequential {
                    // Resuming a stream: read past a stored part without sending it.
                    let len = p.len;
                    let id = self.id(Pending::Skip(n));
                    self.actions.push_back(UploadAction::ReadNext { id, len });
                    return true;
                }
                continue;
            }
            if u64::from(n) > MAX_PARTS {
                self.set_terminal(UploadError::new(
                    K::SizeLimit,
                    format!("the source needs more than {MAX_PARTS} parts"),
                ));
                return false;
            }
            let offset = u64::from(n - 1) * ps;
            let len = match self.spec.total {
                Some(t) if self.is_single() => t,
                Some(t) => ps.min(t.saturating_sub(offset)),
                None => ps,
            };
            if len > 0 && self.held > 0 && self.held + len > self.budget {
                return false;
            }
            self.next_fresh += 1;
            self.parts.insert(n, Part::new(offset, len));
            self.start_part(n, now);
            return true;
        }
    }

    fn start_part(&mut self, n: u32, now: Duration) {
        let sequential = self.spec.total.is_none();
        let Some(p) = self.parts.get(&n) else { return };
        if p.body.is_some() {
            self.after_body(n, now);
            return;
        }
        let (offset, len) = (p.offset, p.len);
        let id = self.id(Pending::Read(n));
        self.held += len;
        if let Some(p) = self.parts.get_mut(&n) {
            p.state = PState::Reading(id);
        }
        self.actions.push_back(if sequential {
            UploadAction::ReadNext { id, len }
        } else {
            UploadAction::ReadAt { id, offset, len }
        });
    }

    fn release_reservation(&mut self, n: u32) {
        if let Some(p) = self.parts.get_mut(&n) {
            self.held = self.held.saturating_sub(p.len);
            p.state = PState::Failed;
        }
    }

    fn on_part_read(&mut self, n: u32, bytes: Bytes, now: Duration) {
        let sequential = self.spec.total.is_none();
        let Some(p) = self.parts.get_mut(&n) else { return };
        let (offset, wanted) = (p.offset, p.len);
        let got = bytes.len() as u64;
        self.held = self.held.saturating_sub(wanted);
        let part = if self.session.as_ref().is_some_and(|s| matches!(s.mode, Mode::Single { .. })) {
            None
        } else {
            Some(n)
        };
        if got > wanted || (!sequential && got != wanted) {
            p.state = PState::Failed;
            let e = UploadError::new(
                K::SourceSize,
                format!(
                    "the source returned {got} bytes for part {n} (expected {wanted} at offset {offset}): it is shorter than its declared size"
                ),
            )
            .with_part(part);
            self.set_terminal(e);
            return;
        }
        if sequential {
            self.seq_offset += got;
            if got < wanted {
                self.end = Some(if got == 0 && n > 1 { n - 1 } else { n });
                if got == 0 && n > 1 {
                    self.parts.remove(&n);
                    return;
                }
            }
            if self.seq_offset > MAX_UPLOAD_SIZE {
                p.state = PState::Failed;
                self.set_terminal(UploadError::new(
                    K::SizeLimit,
                    "the source is longer than the 16 GiB an upload may hold",
                ));
                return;
            }
            p.len = got;
        }
        self.held += got;
        p.body = Some(bytes);
        p.state = PState::Idle;
        self.after_body(n, now);
    }

    fn on_skip_read(&mut self, n: u32, bytes: Bytes) {
        let expected = self.parts.get(&n).map_or(0, |p| p.len);
        self.seq_offset += bytes.len() as u64;
        if bytes.len() as u64 != expected {
            self.set_terminal(UploadError::new(
                K::SourceSize,
                format!(
                    "the source returned {} bytes for stored part {n}, which has {expected}",
                    bytes.len()
                ),
            ));
        }
    }

    fn on_probe(&mut self, bytes: Bytes, _now: Duration) {
        if !bytes.is_empty() {
            let total = self.spec.total.unwrap_or(0);
            self.phase = Phase::Parts;
            self.finish(Err(UploadError::new(
                K::SourceSize,
                format!("the source is longer than its declared size of {total} bytes"),
            )));
            return;
        }
        self.begin_finalize();
    }

    /// With the part's body in hand: get its URL, then PUT.
    fn after_body(&mut self, n: u32, now: Duration) {
        let Some(session) = &self.session else { return };
        let url = match &session.mode {
            Mode::Single { url } => Some(url.clone()),
            Mode::Eager { urls } => {
                self.parts.get(&n).and_then(|p| p.url.clone()).or_else(|| urls.get(n as usize - 1).cloned())
            }
            Mode::Streaming => None,
        };
        match url {
            Some(url) => {
                if let Some(p) = self.parts.get_mut(&n) {
                    p.url = Some(url);
                }
                self.issue_put(n, now);
            }
            None => self.issue_mint(n),
        }
    }

    fn issue_mint(&mut self, n: u32) {
        let Some(s) = &self.session else { return };
        let (upload_id, token) = (s.upload_id.clone(), s.token.clone());
        let id = self.id(Pending::Mint(n));
        if let Some(p) = self.parts.get_mut(&n) {
            p.state = PState::Minting(id);
        }
        let request = MintUploadPartsRequest::new(vec![n as i32]);
        self.actions.push_back(UploadAction::Mint { id, part: n, upload_id, token, request });
    }

    fn issue_put(&mut self, n: u32, now: Duration) {
        let single = self.is_single();
        let Some(s) = &self.session else { return };
        let Some(p) = self.parts.get(&n) else { return };
        let (Some(url), Some(body)) = (p.url.clone(), p.body.clone()) else {
            // A re-sent seekable part dropped its body: read it again.
            if p.body.is_none() {
                self.start_part(n, now);
            }
            return;
        };
        let len = p.len;
        let request = match storage_put_request(&url, body, &s.headers) {
            Ok(r) => r,
            Err(e) => {
                self.part_failed(n, e.with_part((!single).then_some(n)), false);
                return;
            }
        };
        let deadline = part_deadline(len);
        let id = self.id(Pending::Put(n));
        if let Some(p) = self.parts.get_mut(&n) {
            p.state = PState::Putting { id, deadline: now.saturating_add(deadline) };
            p.sent = 0;
        }
        let mut options = SendOptions::with_timeout(Some(deadline));
        options.connect_timeout = Some(STORAGE_CONNECT_TIMEOUT);
        self.actions.push_back(UploadAction::Put { id, part: (!single).then_some(n), request, options });
    }

    fn on_put_answer(&mut self, n: u32, r: PutResponse, now: Duration) {
        let single = self.is_single();
        let part = (!single).then_some(n);
        let eager = matches!(self.session.as_ref().map(|s| &s.mode), Some(Mode::Eager { .. }));
        let status = r.status;
        if status.is_success() {
            let etag = if single {
                Some(String::new())
            } else {
                r.headers
                    .get(ETAG)
                    .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
                    .filter(|v| !v.trim().is_empty())
                    .map(str::to_owned)
            };
            match etag {
                Some(etag) => self.part_done(n, etag),
                None if r.headers_filtered => {
                    let e = UploadError::new(
                        K::EtagNotExposed,
                        format!(
                            "storage stored part {n}, but the browser hid its ETag header: the bucket's \
                             CORS rules must expose it (ExposeHeaders / Access-Control-Expose-Headers: ETag)"
                        ),
                    )
                    .with_part(part)
                    .with_status(status, Bytes::new());
                    self.part_failed(n, e, false);
                }
                None => {
                    let e = UploadError::new(
                        K::MissingEtag,
                        format!("storage stored part {n} without a usable ETag"),
                    )
                    .with_part(part);
                    self.part_failed(n, e, true);
                }
            }
            return;
        }
        let body = r.body.slice(..r.body.len().min(MAX_ERROR_BODY));
        let what = part.map_or_else(|| "the upload".to_owned(), |n| format!("part {n}"));
        let err = UploadError::new(K::StorageStatus, format!("storage answered HTTP {status} to {what}"))
            .with_part(part)
            .with_status(status, body);
        if status == StatusCode::FORBIDDEN && eager && self.parts.get(&n).is_some_and(|p| !p.reminted) {
            if let Some(p) = self.parts.get_mut(&n) {
                p.reminted = true;
            }
            self.events.push_back(UploadEvent::PartFailed {
                part,
                message: err.message().to_owned(),
                will_retry: true,
            });
            self.issue_mint(n);
            return;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let ra =
                r.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after_seconds);
            if self.inline_retry(n, ra, now, err.message()) {
                return;
            }
        }
        let heals = status == StatusCode::FORBIDDEN
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error();
        self.part_failed(n, err, heals);
    }

    fn on_put_transport(
        &mut self,
        n: u32,
        kind: TransportErrorKind,
        source: Option<TransportError>,
        now: Duration,
    ) {
        let part = (!self.is_single()).then_some(n);
        let what = part.map_or_else(|| "the upload".to_owned(), |n| format!("part {n}"));
        let message = match kind {
            TransportErrorKind::Timeout => format!("storage PUT of {what} timed out"),
            _ => format!("storage PUT of {what} failed: {}", kind_text(kind)),
        };
        let mut err =
            UploadError::new(K::StorageTransport, message).with_part(part).with_transport_kind(kind);
        if let Some(s) = source {
            err = err.with_source(s);
        }
        if kind == TransportErrorKind::Request {
            self.part_failed(n, err, false);
            return;
        }
        let before_response = matches!(
            kind,
            TransportErrorKind::Connect
                | TransportErrorKind::Send
                | TransportErrorKind::NoResponse
                | TransportErrorKind::Timeout
                | TransportErrorKind::Body
        );
        if before_response && self.inline_retry(n, None, now, err.message()) {
            return;
        }
        self.part_failed(n, err, true);
    }

    /// The per-request tier: schedules the retry of this PUT, or false when spent.
    fn inline_retry(&mut self, n: u32, retry_after: Option<Duration>, now: Duration, message: &str) -> bool {
        if self.cancelled || self.terminal.is_some() {
            return false;
        }
        let part = (!self.is_single()).then_some(n);
        let policy = &self.part_retry;
        let Some(p) = self.parts.get_mut(&n) else { return false };
        if p.retries >= policy.max_retries {
            return false;
        }
        p.retries += 1;
        let delay = policy.delay(p.retries, retry_after);
        p.state = PState::Backoff { until: now.saturating_add(delay) };
        self.events.push_back(UploadEvent::PartFailed {
            part,
            message: message.to_owned(),
            will_retry: true,
        });
        true
    }

    fn part_done(&mut self, n: u32, etag: String) {
        let single = self.is_single();
        let Some(p) = self.parts.get_mut(&n) else { return };
        p.state = PState::Done;
        p.etag = Some(etag);
        p.body = None;
        p.sent = 0;
        let len = p.len;
        self.held = self.held.saturating_sub(len);
        self.done_bytes += len;
        self.events.push_back(UploadEvent::PartCompleted { part: (!single).then_some(n), len });
        self.report_progress();
    }

    fn part_failed(&mut self, n: u32, err: UploadError, heals: bool) {
        let sequential = self.spec.total.is_none();
        if let Some(p) = self.parts.get_mut(&n) {
            p.state = PState::Failed;
            if !sequential && let Some(b) = p.body.take() {
                self.held = self.held.saturating_sub(b.len() as u64);
            }
        }
        let will_retry = heals && !self.cancelled && self.terminal.is_none();
        self.events.push_back(UploadEvent::PartFailed {
            part: err.part_number(),
            message: err.message().to_owned(),
            will_retry,
        });
        if heals {
            self.failed.insert(n);
            self.last_failure = Some(err);
        } else {
            self.set_terminal(err);
        }
    }

    fn round_end(&mut self, now: Duration) {
        if !self.failed.is_empty() {
            if self.round >= self.rounds.max_extra_rounds {
                let rounds = self.round + 1;
                let e = self
                    .last_failure
                    .take()
                    .unwrap_or_else(|| UploadError::new(K::StorageTransport, "parts failed"))
                    .exhausted_after(rounds);
                self.finish(Err(e));
            } else {
                self.pause_until = Some(now.saturating_add(self.rounds.pause(self.round + 1)));
            }
            return;
        }
        let Some(end) = self.end else { return };
        if self.next_fresh <= end {
            return;
        }
        if self.cancelled {
            self.finish(Err(cancelled()));
            return;
        }
        match self.spec.total {
            Some(total) => {
                let id = self.id(Pending::Probe);
                self.phase = Phase::Probing;
                self.actions.push_back(UploadAction::ReadAt { id, offset: total, len: 1 });
            }
            None => self.begin_finalize(),
        }
    }

    fn begin_finalize(&mut self) {
        if self.cancelled {
            self.phase = Phase::Parts;
            self.finish(Err(cancelled()));
            return;
        }
        self.send_finalize();
    }

    fn send_finalize(&mut self) {
        let single = self.is_single();
        let end = self.end.unwrap_or(1);
        let mut list = Vec::new();
        if !single {
            for n in 1..=end {
                match self.parts.get(&n).filter(|p| p.state == PState::Done).and_then(|p| p.etag.clone()) {
                    Some(etag) => list.push(FinalizeUploadPart::new(etag, n as i32)),
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
        let request =
            if single { FinalizeUploadRequest::new() } else { FinalizeUploadRequest::new().parts(list) };
        let (upload_id, token) = (s.upload_id.clone(), s.token.clone());
        self.finalize_attempts += 1;
        let id = self.id(Pending::Finalize);
        self.phase = Phase::Finalizing;
        self.actions.push_back(UploadAction::Finalize { id, upload_id, token, request });
    }
}

impl Part {
    fn new(offset: u64, len: u64) -> Self {
        Self {
            offset,
            len,
            body: None,
            url: None,
            state: PState::Idle,
            retries: 0,
            reminted: false,
            etag: None,
            sent: 0,
        }
    }

    fn done(offset: u64, len: u64, etag: String) -> Self {
        Self { state: PState::Done, etag: Some(etag), ..Self::new(offset, len) }
    }
}

fn cancelled() -> UploadError {
    UploadError::new(K::Cancelled, "upload cancelled by caller")
}

fn kind_text(kind: TransportErrorKind) -> String {
    TransportError::from_kind(kind).to_string()
}

/// Whether a failed control-plane call may succeed later: 408, 429, 5xx, or a transport
/// failure.
fn heals_api(e: &Error) -> bool {
    match e.status() {
        Some(s) => {
            s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
        }
        None => e.transport_kind().is_some(),
    }
}

/// The one URL a mint answer must carry for part `n`.
fn pick_minted(n: u32, resp: MintUploadPartsResponse) -> Result<String, UploadError> {
    let malformed = |m: String| UploadError::new(K::MalformedSession, m);
    let mut url = None;
    for p in resp.parts {
        if p.part_number as i64 != i64::from(n) {
            return Err(malformed(format!("mint returned part {}, which was not requested", p.part_number)));
        }
        if url.replace(p.url).is_some() {
            return Err(malformed(format!("mint returned a duplicate URL for part {n}")));
        }
    }
    url.filter(|u| !u.is_empty()).ok_or_else(|| malformed(format!("mint did not return a URL for part {n}")))
}
