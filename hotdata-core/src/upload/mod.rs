//! Direct-to-storage uploads of any size: a sans-IO machine and its two drivers.
//!
//! [`Client::upload_file`](crate::Client) sends a file, bytes, a reader or (async) a stream of
//! chunks (see [`UploadSource`] and [`AsyncUploadSource`]: both clients take a path as
//! `&str`, `String`, `&Path` or `PathBuf`, and bytes as `Vec<u8>`, `Bytes` or
//! `&'static [u8]`, through `Into`; a path fills the file name and content type) straight
//! to object storage through presigned URLs, then finalizes the upload so
//! that it can be loaded into a table. The whole protocol lives in [`UploadMachine`], which
//! does no I/O and reads no clock: it asks for bytes of the source and for requests to be
//! sent ([`UploadAction`]), is told what happened (`handle_*`), and answers with progress
//! ([`UploadEvent`]) and, at the end, the finalized upload or an [`UploadError`]. The
//! blocking and async drivers in this module share one driver core and only move bytes
//! and sleep.
//!
//! ```text
//!  create session ──┬─ single ─────────── PUT url ───────────────────────────┐
//!  (POST /v1/uploads)├─ multipart, eager ─ PUT part_urls[i] (403: mint, once) ─┤
//!                    └─ multipart, stream ─ mint part i ─> PUT part i ──────────┤
//!                                                                           finalize (once)
//! ```
//!
//! - **Session shape.** A source of at most 8 MiB declares its size (the server answers
//!   `single`, or `multipart` with eager `part_urls`); a larger or unknown-length source asks
//!   for a streaming session whose part URLs are minted one by one just before each PUT.
//!   The part-size hint is [`part_size_hint`]; parts are always sliced by the part size the
//!   server answers. A session missing its URLs, with the wrong URL count or an unknown mode
//!   is an [`UploadErrorKind::MalformedSession`] error.
//! - **Concurrency and memory.** At most [`effective_in_flight`] parts are in flight
//!   (`max_concurrency`, default 10, bounded by the memory budget, default 256 MiB, divided
//!   by the part size), and the bytes held for parts never exceed the budget (one part
//!   larger than the budget still runs, alone). When the budget holds fewer parts than
//!   `max_concurrency` asks for (10 asked, 4 run with 64 MiB parts), the upload says so with
//!   [`UploadEvent::ConcurrencyLimited`]. Part bodies are read from the source as they are
//!   needed; a file's part buffers are reused once their PUT is over (a freed buffer would
//!   otherwise stay with the allocator), so an upload holds about the parts in flight.
//! - **Storage PUTs** carry only `Content-Length` and the session's own headers: no
//!   `Authorization`, workspace header, `User-Agent`, `Accept-Encoding` or `Content-Type`
//!   (see [`storage_put_request`]). ETags are kept byte for byte; a missing or blank one is
//!   [`UploadErrorKind::MissingEtag`]. The connect timeout is 30 s and each attempt is cut
//!   off after [`part_deadline`] (60 s + 1 s per 64 KiB, at most 30 min).
//! - **Two retry tiers.** Per request ([`PartRetryPolicy`]): `429` (honouring
//!   `Retry-After`, capped at 120 s) and failures before any response, 3 retries after 0 s,
//!   0.4 s and 0.8 s. Whole-upload rounds ([`RoundPolicy`]): parts whose failure may heal
//!   (5xx, 403, 408, 429, transport, missing ETag, a transient mint failure) are sent again
//!   in up to 3 more rounds after 2, 4 and 8 s, each at half the concurrency. Errors that
//!   will not heal (400, 404, other 4xx, 3xx, malformed answers) fail at once. A `403` on an
//!   eager part URL mints a fresh URL and retries once, inline.
//! - **Finalize exactly once**: `{}` for single, the parts ascending with their ETags for
//!   multipart, the finalize token in `X-Upload-Finalize-Token`. It is sent again only when
//!   it provably never left (the connection could not be made).
//! - **Progress** is cumulative, monotonic and byte-granular: the drivers hand part bodies
//!   to the transport as counted streams (when it can stream them: not the browser's
//!   `fetch`, where progress moves per stored part), and the machine folds the bytes in
//!   flight into the bytes stored ([`UploadMachine::handle_sent`]). A failed attempt's bytes
//!   stop counting; progress holds, never goes back, until the retry passes them. Events are
//!   delivered on the driver's thread one at a time ([`UploadEvent`], with per-part events;
//!   the callback is `Send + Sync` off wasm), and the count is readable from any thread
//!   through a [`ProgressHandle`].
//! - **Cancellation** ([`CancelToken`]) stops new parts, cuts off the parts in flight at
//!   once (as does a failure that no retry heals: nothing waits for a part's deadline), and
//!   never finalizes afterwards. The async driver drops their futures (in the browser, the
//!   `fetch` is aborted); the blocking driver leaves each to its detached worker, which
//!   ends at its request's own deadline, unobserved.
//! - **Guard rails.** More than 16 GiB ([`MAX_UPLOAD_SIZE`]) is refused before a byte is
//!   sent (for streams of unknown length: before the part that crosses it). A source shorter
//!   or longer than its declared size is an [`UploadErrorKind::SourceSize`] error, never a
//!   corrupt object.
//! - **No lost work.** Every failure after the session was created carries a
//!   [`ResumeState`] ([`UploadError::resume_state`]), except the few [listed
//!   below](#what-cannot-be-resumed); `resume_upload` continues the same session from its
//!   stored parts without re-sending them, and a state whose parts are all stored only
//!   finalizes. With the `serde` feature it can be saved and loaded.
//! - **Finalize at most once.** Finalize is re-sent on its own only when it provably never
//!   left. Refused (any 4xx but 429: credentials, validation), the upload is not finalized
//!   and its resume state finalizes it once the cause is fixed. When it may have arrived
//!   (429, 5xx, a lost or unreadable answer) the error says so
//!   ([`UploadError::finalize_may_have_succeeded`],
//!   [`ResumeState::finalize_may_have_arrived`]) and the SDK does not send it again; a
//!   resume sends it once more, and an "already finalized" answer is then its own outcome,
//!   [`UploadErrorKind::AlreadyFinalized`] (the upload is finalized). The hosted API's
//!   answer to a second finalize is not documented: the SDK assumes the emulator's
//!   `400 ALREADY_FINALIZED` (one constant in `machine/finalize.rs`).
//!
//! # What cannot be resumed
//!
//! The failures after a session exists that carry no [`ResumeState`] (kept in one place,
//! `UploadMachine::resumable` in `machine/finalize.rs`):
//! - [`UploadErrorKind::AlreadyFinalized`]: nothing is left to do;
//! - [`UploadErrorKind::SourceSize`]: the source is not the size it declared, so the parts
//!   stored may not be this source's;
//! - [`UploadErrorKind::SizeLimit`]: the source needs more parts than the protocol allows;
//! - a single-PUT session whose URL storage refused with `403` (expired or revoked): a
//!   single URL cannot be minted again. Start a new upload.
//!
//! # One upload, file by file
//!
//! 1. **`blocking.rs`** (or **`nonblocking.rs`**): `Client::upload_file` checks the cancel
//!    token and opens the source with **`source.rs`** (`Opened::blocking` /
//!    `Opened::nonblocking`: a file is opened and sized (on the async client through the
//!    runtime's [`AsyncRuntime::spawn_blocking`](crate::AsyncRuntime::spawn_blocking), then
//!    read by range through it), bytes are kept, a reader or stream is noted), whose
//!    [`UploadSpec`] tells the machine how to read it and what name and type to send. It
//!    makes an [`UploadMachine`] (**`machine/`**; its module docs walk its own files) and
//!    runs its loop.
//! 2. **`driver.rs`**: each turn of that loop asks the shared `DriverCore::next`, which
//!    forwards events to the callback and progress handle, tells the machine when the
//!    caller cancelled, and turns the machine's next [`UploadAction`]
//!    (**`machine/types.rs`**) into a unit of work: *inline* (create session, reads of
//!    in-memory or in-order sources, finalize) or *spawned* beside the work in flight
//!    (part reads by position, mints, PUTs); or it answers with the result, the stall
//!    error, or what to wait for.
//! 3. Back in **`blocking.rs`** / **`nonblocking.rs`**, the driver performs the work: API
//!    calls go out as `client.call(endpoint)` (**`client.rs`**: the one pipeline with
//!    authentication, a token asked per attempt, workspace, retries, tracing), finalize
//!    with the retry policy its action carries (none); reads go to **`source.rs`**; a PUT's
//!    finished request goes straight to the transport, its body wrapped so the transport's
//!    reads are counted (blocking: a counting `Read`; async: a counting stream). Spawned
//!    work runs on scoped worker threads (blocking) or as futures in the upload's own join
//!    set (async).
//! 4. The socket: the backend's transport (`hotdata-ureq`, `hotdata-reqwest`, or the
//!    browser's `fetch` in `hotdata-wasm`) sends the request and returns the answer.
//! 5. And back: each answer comes to the driver as one `Answer` (through the blocking
//!    driver's channel, or out of the async driver's join set), with the bytes sent so far
//!    and the timeouts the driver waited for, and `DriverCore::answer` hands it to the
//!    machine's `handle_*`. When the machine's result is ready, `DriverCore::next` returns
//!    it and `upload_file` returns the finalized upload or an [`UploadError`]
//!    (**`error.rs`**, with a [`ResumeState`] when it may be resumed); on
//!    `501 PRESIGN_UNSUPPORTED` with [`UploadOptions::legacy_fallback`], **`legacy.rs`**
//!    sends the source to `POST /v1/files` instead.

#![warn(clippy::missing_docs_in_private_items)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

mod error;
mod machine;
mod resume;

mod blocking;
mod driver;
#[cfg(feature = "legacy")]
mod legacy;
mod nonblocking;
mod source;

pub use error::{UploadError, UploadErrorKind};
pub use machine::{
    PutResponse, RequestId, SessionShape, UploadAction, UploadEvent, UploadMachine, UploadSpec,
    storage_put_request,
};
pub use resume::ResumeState;
pub use source::{
    AsyncRangeSource, AsyncUploadSource, ReadSeek, UploadSource, content_type_for, read_file_range,
};

/// Sources of at most this size declare it and get a `single` (or eager multipart)
/// session; larger ones stream (8 MiB).
pub const STREAMING_THRESHOLD: u64 = 8 * MIB;
/// The default part size hint (8 MiB).
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
/// The smallest automatic part size hint (5 MiB).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// The largest automatic part size hint (5 GiB).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// The part count the automatic hint aims to stay under (below S3's 10,000).
pub const TARGET_MAX_PARTS: u64 = 9000;
/// Parts in flight by default.
pub const DEFAULT_MAX_CONCURRENCY: usize = 10;
/// Bytes of part bodies held at once by default (256 MiB).
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * MIB;
/// The largest upload the service accepts by default (16 GiB); larger sources are refused
/// before anything is sent.
pub const MAX_UPLOAD_SIZE: u64 = 16 * 1024 * MIB;
/// Connect timeout of storage requests (30 s).
pub const STORAGE_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Base of the per-attempt transfer deadline of a part (60 s).
pub const PART_TIMEOUT_BASE: Duration = Duration::from_secs(60);
/// The slowest transfer rate tolerated: the deadline grows 1 s per this many bytes (64 KiB).
pub const PART_TIMEOUT_MIN_BYTES_PER_SEC: u64 = 64 * 1024;
/// Cap of the per-attempt transfer deadline (30 min).
pub const PART_TIMEOUT_MAX: Duration = Duration::from_secs(30 * 60);
/// Cap of a storage `Retry-After` (120 s).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// One mebibyte.
const MIB: u64 = 1024 * 1024;

/// The automatic part-size hint for a source of `size` bytes: the larger of 8 MiB and
/// ⌈size / 9000⌉, rounded up to a whole MiB and clamped to [5 MiB, 5 GiB].
pub fn part_size_hint(size: u64) -> u64 {
    let per_part = size.div_ceil(TARGET_MAX_PARTS).max(DEFAULT_PART_SIZE);
    per_part.div_ceil(MIB).saturating_mul(MIB).clamp(MIN_PART_SIZE, MAX_PART_SIZE)
}

/// The bytes of `b` in `[offset, offset + len)`, cut at its end (a zero-copy slice).
pub(crate) fn slice_range(b: &bytes::Bytes, offset: u64, len: u64) -> bytes::Bytes {
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
    let end = usize::try_from(offset.saturating_add(len)).unwrap_or(usize::MAX).min(b.len());
    b.slice(start..end)
}

/// Parts in flight for a part size: `min(max(budget / part_size, 1), max(max_concurrency, 1))`
/// (a part size of 0 counts as 1).
pub fn effective_in_flight(max_concurrency: usize, memory_budget: u64, part_size: u64) -> usize {
    let by_budget = (memory_budget / part_size.max(1)).max(1);
    let by_budget = usize::try_from(by_budget).unwrap_or(usize::MAX);
    by_budget.min(max_concurrency.max(1))
}

/// How long one attempt to PUT `len` bytes may take before it is cut off:
/// `min(60 s + len / 64 KiB s, 30 min)`.
pub fn part_deadline(len: u64) -> Duration {
    let extra_micros = u128::from(len) * 1_000_000 / u128::from(PART_TIMEOUT_MIN_BYTES_PER_SEC);
    let extra = Duration::from_micros(u64::try_from(extra_micros).unwrap_or(u64::MAX));
    PART_TIMEOUT_BASE.saturating_add(extra).min(PART_TIMEOUT_MAX)
}

/// The per-request retry tier of storage PUTs: `429` and failures before any response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartRetryPolicy {
    /// Retries after the first attempt (default 3).
    pub max_retries: u32,
    /// The backoff factor: the delay before retry `k` is 0 for `k = 1`, then
    /// `factor * 2^(k-1)` (default 200 ms: 0 s, 0.4 s, 0.8 s).
    pub backoff_factor: Duration,
    /// Cap of a computed delay (default 120 s).
    pub max_backoff: Duration,
    /// Cap of a delay asked for with `Retry-After` (default 120 s).
    pub max_retry_after: Duration,
}

impl Default for PartRetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            backoff_factor: Duration::from_millis(200),
            max_backoff: Duration::from_secs(120),
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

impl PartRetryPolicy {
    /// A policy that never retries a request (rounds still apply).
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// Sets the number of retries.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the backoff factor.
    #[must_use]
    pub fn with_backoff_factor(mut self, factor: Duration) -> Self {
        self.backoff_factor = factor;
        self
    }

    /// The delay before retry `retry` (1-based), given the server's `Retry-After`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after.filter(|d| !d.is_zero()) {
            return ra.min(self.max_retry_after);
        }
        if retry <= 1 {
            return Duration::ZERO;
        }
        let exp = (retry - 1).min(30);
        self.backoff_factor.saturating_mul(1u32 << exp).min(self.max_backoff)
    }
}

/// The whole-upload retry tier: rounds re-sending the parts whose failure may heal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundPolicy {
    /// Rounds after the first (default 3, so 4 in all).
    pub max_extra_rounds: u32,
    /// The pause before round 1; it doubles for each later round (default 2 s: 2, 4, 8 s).
    pub base_delay: Duration,
}

impl Default for RoundPolicy {
    fn default() -> Self {
        Self { max_extra_rounds: 3, base_delay: Duration::from_secs(2) }
    }
}

impl RoundPolicy {
    /// No extra rounds: the first part failure that survives its request retries ends the
    /// upload.
    pub fn none() -> Self {
        Self { max_extra_rounds: 0, ..Self::default() }
    }

    /// Sets the number of extra rounds and the first pause.
    pub fn new(max_extra_rounds: u32, base_delay: Duration) -> Self {
        Self { max_extra_rounds, base_delay }
    }

    /// The pause before round `round` (1-based).
    pub fn pause(&self, round: u32) -> Duration {
        self.base_delay.saturating_mul(1u32 << (round.saturating_sub(1)).min(16))
    }
}

/// The event callback: `Send + Sync` off wasm, unbounded on `wasm32` (where it may hold
/// browser handles, such as the page's `<progress>` element).
#[cfg(not(target_family = "wasm"))]
pub type ProgressCallback = Arc<dyn Fn(&UploadEvent) + Send + Sync>;
/// The event callback: `Send + Sync` off wasm, unbounded on `wasm32` (where it may hold
/// browser handles, such as the page's `<progress>` element).
#[cfg(target_family = "wasm")]
pub type ProgressCallback = Arc<dyn Fn(&UploadEvent)>;

/// Settings of one upload. Every field has a default; see the module docs.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct UploadOptions {
    /// The content type recorded with the upload (advisory). Defaults to the one a path's
    /// extension implies ([`content_type_for`]), or a browser `Blob`'s `type`; set, it wins.
    pub content_type: Option<String>,
    /// The content encoding recorded with the upload (advisory).
    pub content_encoding: Option<String>,
    /// The file name recorded with the upload. Defaults to a path's file name, or a browser
    /// `File`'s name; set, it wins.
    pub filename: Option<String>,
    /// The part size hint sent verbatim (default: [`part_size_hint`] of the size).
    pub part_size: Option<u64>,
    /// Parts in flight at most (default 10), lowered when [`UploadOptions::memory_budget`]
    /// holds fewer parts ([`UploadEvent::ConcurrencyLimited`] says so).
    pub max_concurrency: Option<usize>,
    /// Bytes of part bodies held at once at most (default 256 MiB).
    pub memory_budget: Option<u64>,
    /// The per-request retry tier of storage PUTs.
    pub part_retry: PartRetryPolicy,
    /// The whole-upload retry tier.
    pub rounds: RoundPolicy,
    /// Called with every [`UploadEvent`], in order, on the driver's thread.
    pub on_event: Option<ProgressCallback>,
    /// Cancels the upload when triggered.
    pub cancel: Option<CancelToken>,
    /// Kept up to date with the bytes stored, for readers on other threads.
    pub progress: Option<ProgressHandle>,
    /// On `501 PRESIGN_UNSUPPORTED`, send the source to the legacy `POST /v1/files` instead
    /// (feature `legacy`; default off).
    pub legacy_fallback: bool,
}

impl fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadOptions")
            .field("content_type", &self.content_type)
            .field("content_encoding", &self.content_encoding)
            .field("filename", &self.filename)
            .field("part_size", &self.part_size)
            .field("max_concurrency", &self.max_concurrency)
            .field("memory_budget", &self.memory_budget)
            .field("part_retry", &self.part_retry)
            .field("rounds", &self.rounds)
            .field("on_event", &self.on_event.is_some())
            .field("cancel", &self.cancel)
            .field("progress", &self.progress)
            .field("legacy_fallback", &self.legacy_fallback)
            .finish()
    }
}

impl UploadOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the content type.
    #[must_use]
    pub fn content_type(mut self, value: impl Into<String>) -> Self {
        self.content_type = Some(value.into());
        self
    }

    /// Sets the content encoding.
    #[must_use]
    pub fn content_encoding(mut self, value: impl Into<String>) -> Self {
        self.content_encoding = Some(value.into());
        self
    }

    /// Sets the file name.
    #[must_use]
    pub fn filename(mut self, value: impl Into<String>) -> Self {
        self.filename = Some(value.into());
        self
    }

    /// Sets the part size hint (sent verbatim; the server has the final say).
    #[must_use]
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Sets the maximum number of parts in flight (0 and 1 both mean one at a time).
    #[must_use]
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n);
        self
    }

    /// Sets the memory budget for part bodies.
    #[must_use]
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Sets the per-request retry policy of storage PUTs.
    #[must_use]
    pub fn part_retry(mut self, policy: PartRetryPolicy) -> Self {
        self.part_retry = policy;
        self
    }

    /// Sets the whole-upload retry rounds.
    #[must_use]
    pub fn rounds(mut self, policy: RoundPolicy) -> Self {
        self.rounds = policy;
        self
    }

    /// Calls `f` with every [`UploadEvent`], in order, on the driver's thread.
    #[must_use]
    #[cfg(not(target_family = "wasm"))]
    pub fn on_event(mut self, f: impl Fn(&UploadEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// Calls `f` with every [`UploadEvent`], in order (no `Send` bound in the browser).
    #[must_use]
    #[cfg(target_family = "wasm")]
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn on_event(mut self, f: impl Fn(&UploadEvent) + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    /// Cancels the upload when `token` is triggered.
    #[must_use]
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Keeps `handle` up to date with the bytes stored.
    #[must_use]
    pub fn progress_handle(mut self, handle: ProgressHandle) -> Self {
        self.progress = Some(handle);
        self
    }

    /// Falls back to the legacy `POST /v1/files` on `501 PRESIGN_UNSUPPORTED` (feature
    /// `legacy`).
    #[must_use]
    pub fn legacy_fallback(mut self, on: bool) -> Self {
        self.legacy_fallback = on;
        self
    }

    /// True once the cancel token, if any, was triggered.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }

    /// Hands `event` to the progress handle (progress only) and the callback.
    pub(crate) fn emit(&self, event: &UploadEvent) {
        if let (Some(h), UploadEvent::Progress { done, total }) = (&self.progress, event) {
            h.set(*done, *total);
        }
        if let Some(f) = &self.on_event {
            f(event);
        }
    }
}

/// A cancellation switch shared between the caller and an upload. Cloning shares it;
/// [`CancelToken::cancel`] may be called from any thread, and wakes an async upload that
/// is waiting (for example through a round pause).
#[derive(Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

/// What a [`CancelToken`] shares.
#[derive(Default)]
struct CancelInner {
    /// Set by [`CancelToken::cancel`].
    cancelled: AtomicBool,
    /// The waker of an async upload waiting for something, woken on cancel.
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelToken").field(&self.is_cancelled()).finish()
    }
}

impl CancelToken {
    /// A token not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers cancellation: no new part starts, in-flight parts finish, no finalize.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(w) = self.0.waker.lock().ok().and_then(|mut w| w.take()) {
            w.wake();
        }
    }

    /// True once [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Wakes `waker` when cancelled (the async driver's, while it waits).
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        store_waker(&self.0.waker, waker);
    }
}

/// Keeps `waker` in `slot` (unless the one there already wakes the same task).
pub(crate) fn store_waker(slot: &std::sync::Mutex<Option<std::task::Waker>>, waker: &std::task::Waker) {
    if let Ok(mut w) = slot.lock()
        && !w.as_ref().is_some_and(|w| w.will_wake(waker))
    {
        *w = Some(waker.clone());
    }
}

/// The bytes stored so far, readable from any thread while an upload runs
/// ([`UploadOptions::progress_handle`]). Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct ProgressHandle(Arc<(AtomicU64, AtomicU64)>);

impl ProgressHandle {
    /// A handle at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes stored so far (cumulative, never decreasing during an upload).
    pub fn done(&self) -> u64 {
        self.0.0.load(Ordering::SeqCst)
    }

    /// The size of the source, once known.
    pub fn total(&self) -> Option<u64> {
        self.0.1.load(Ordering::SeqCst).checked_sub(1)
    }

    /// Records a progress event: `done` only moves forward; `total` is stored plus one (0:
    /// unknown).
    fn set(&self, done: u64, total: Option<u64>) {
        self.0.1.store(total.map_or(0, |t| t.saturating_add(1)), Ordering::SeqCst);
        self.0.0.fetch_max(done, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    #[test]
    fn hint_matches_the_worked_values() {
        for (size, hint) in [
            (0, 8 * MIB),
            (1, 8 * MIB),
            (8 * MIB, 8 * MIB),
            (8 * MIB + 1, 8 * MIB),
            (72_000 * MIB, 8 * MIB),
            (72_000 * MIB + 1, 9 * MIB),
            (100 * 1024 * MIB, 12 * MIB),
            (200 * 1024 * MIB, 23 * MIB),
            (1024 * 1024 * MIB, 117 * MIB),
            (u64::MAX, 5 * 1024 * MIB),
        ] {
            assert_eq!(part_size_hint(size), hint, "size {size}");
        }
    }

    #[test]
    fn in_flight_matches_the_worked_values() {
        for (ps, n) in [(5, 10), (8, 10), (16, 10), (25, 10), (32, 8), (64, 4), (100, 2), (128, 2), (129, 1)]
        {
            assert_eq!(effective_in_flight(10, DEFAULT_MEMORY_BUDGET, ps * MIB), n, "{ps} MiB");
        }
        assert_eq!(effective_in_flight(0, DEFAULT_MEMORY_BUDGET, 0), 1);
        assert_eq!(effective_in_flight(1, DEFAULT_MEMORY_BUDGET, MIB), 1);
    }

    #[test]
    fn deadline_and_backoff() {
        assert_eq!(part_deadline(0), Duration::from_secs(60));
        assert_eq!(part_deadline(8 * MIB), Duration::from_secs(60 + 128));
        assert_eq!(part_deadline(5 * 1024 * MIB), PART_TIMEOUT_MAX);
        let p = PartRetryPolicy::default();
        let d: Vec<_> = (1..=3).map(|k| p.delay(k, None).as_millis()).collect();
        assert_eq!(d, [0, 400, 800]);
        assert_eq!(p.delay(1, Some(Duration::from_secs(1))), Duration::from_secs(1));
        assert_eq!(p.delay(2, Some(Duration::ZERO)), Duration::from_millis(400));
        assert_eq!(p.delay(1, Some(Duration::from_secs(999))), MAX_RETRY_AFTER);
        let r = RoundPolicy::default();
        assert_eq!([r.pause(1), r.pause(2), r.pause(3)].map(|d| d.as_secs()), [2, 4, 8]);
    }
}
