//! The fault soak (issue 12): seeded random fault schedules against the local emulator, on
//! either backend, checking the SDK's failure-path promises after every call.
//!
//! A **schedule** is drawn from a SplitMix64 generator seeded with the run's seed and the
//! schedule's index, so `--seed S --only I` draws schedule `I` again. It has a backend, one to
//! three operations and one to four fault rules ([`FaultRule`], printed in the emulator's
//! `--fault` syntax). Each schedule runs on an emulator of its own (127.0.0.1, ephemeral port,
//! presigned uploads with 16 KiB minimum parts and 64 KiB single PUTs, so multipart uploads
//! have several parts at once), with short client timeouts (3 s per request, 2 s body idle):
//!
//! 1. setup, without faults: databases, and stored results of known row counts;
//! 2. the fault rules are injected and the operations run, each on a watchdog thread;
//! 3. the faults are cleared, and every upload that failed with a resume state is resumed,
//!    every other one from a state saved and loaded first (`serde`, as across a restart);
//!    an upload that failed before its session existed, or in a documented non-resumable
//!    way (a single PUT refused with 403), is started again;
//! 4. the emulator's request log and everything the SDK printed are checked.
//!
//! The operations: uploads from every source kind (blocking: bytes, a file path, a seekable
//! reader, a reader of unknown length; async: bytes, a stream of chunks, a ranged source, a
//! file), `query` (JSON, following a truncated preview or a 202 to the stored result),
//! `query_to_arrow`, the Arrow stream of a stored result, a CSV download, and two listings
//! walked page by page (databases by cursor, results by offset).
//!
//! The faults, drawn per schedule for the requests its operations make: 429 storms with
//! `Retry-After` (seconds or an HTTP date), 5xx, resets before the handler runs and after it
//! committed, stalls past the request timeout, slow bodies and bodies that stop past the idle
//! timeout, truncated bodies (anywhere, and a few bytes before a stored result's end: its
//! Arrow end-of-stream marker, its last CSV line), 403 and expired part URLs, missing ETags,
//! finalize answers lost (reset or 5xx after commit) or refused (401, 403), 202 for a query,
//! not-ready results, closed connections, and faults on whatever request comes k-th.
//!
//! The invariants (a breach is a **violation**, printed with the seed and the schedule):
//! - every upload ends byte-identical in storage (the emulator's stored object against the
//!   source), or as a typed error whose resume state, resumed once the faults are cleared,
//!   finishes it byte-identical; after a finalize whose answer may have been lost, the resume
//!   may end with [`UploadErrorKind::AlreadyFinalized`], and the object must be identical;
//! - an error that says finalize did not arrive never leaves a finalized object behind, and
//!   every failure after the session exists carries a resume state but the documented ones,
//!   and that state saves and loads unchanged;
//! - finalize is sent at most once per SDK call (counted in the emulator's request log);
//! - no panic reaches the caller, and no call outlives its hang bound (60 s; uploads 61 s
//!   more, the part deadline);
//! - no result is silently short: a query, result stream, download or listing either fails
//!   or returns exactly the rows (or items) it should;
//! - upload progress never goes back and never passes the size;
//! - no secret (the API key, a finalize token, a presigned signature) appears in any error's
//!   `Display`, `Debug` or source chain, any upload event, or any `tracing` or `log` line
//!   (captured at TRACE by a subscriber and a logger installed here; ureq's own `trace`
//!   lines, a dump of the wire, and the presigned URLs of its `debug` lines are counted
//!   apart), and no storage PUT carries the API key.
//!
//! Timing decides some outcomes (which part a rule meets first, whether a stall beats a
//! timeout), so a seed draws the same schedule but its run may take another path; every
//! outcome the SDK documents is accepted, so the invariants never depend on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use bytes::Bytes;
use futures_core::Stream as _;
use hotdata_core::arrow::ArrowResult;
use hotdata_core::models::{FinalizeUploadResponse, QueryOutcome, QueryRequest, ResultsFormatQuery};
use hotdata_core::results::ResultFetch;
use hotdata_core::retry::RetryPolicy;
use hotdata_core::transport::BoxFuture;
use hotdata_core::upload::{
    AsyncRangeSource, AsyncUploadSource, PartRetryPolicy, ResumeState, RoundPolicy, SessionShape,
    UploadError, UploadErrorKind, UploadEvent, UploadOptions, UploadSource,
};
use hotdata_core::{AsyncClient, BlockingClient, Config, Error};
use hotdata_emulator::{EmulatorHandle, Fault, FaultRule, RequestRecord, RetryAfter, Target};

use crate::Backend;

/// Smallest non-final part the emulator accepts (16 KiB).
const MIN_PART: u64 = 16 * 1024;
/// Part size hint the uploads send, unless a schedule draws another (32 KiB).
const PART: u64 = 32 * 1024;
/// Declared sizes up to this get a single-PUT session (64 KiB).
const SINGLE_MAX: u64 = 64 * 1024;
/// The largest upload drawn (ten parts of the default hint).
const MAX_UPLOAD: u64 = 10 * PART;
/// Rows the emulator returns inline before `truncated`.
const PREVIEW_ROWS: usize = 100;
/// The client's whole-request timeout.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The client's idle timeout of streamed bodies.
const BODY_IDLE: Duration = Duration::from_secs(2);
/// The hang bound of a call; uploads get 61 s more (the deadline of a stalled part).
pub const HANG_BOUND: Duration = Duration::from_secs(60);
/// What an upload call may take beyond [`HANG_BOUND`]: the SDK's part deadline (60 s and
/// 1 s per 64 KiB) of the largest part drawn.
const UPLOAD_EXTRA: Duration = Duration::from_secs(61);

/// Which backends a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    /// Only one.
    One(Backend),
    /// Schedule `i` runs on ureq when `i` is even, on reqwest when it is odd.
    All,
}

impl std::str::FromStr for Backends {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Self::All),
            other => other
                .parse()
                .map(Self::One)
                .map_err(|_| format!("unknown backend `{other}` (expected ureq, reqwest or all)")),
        }
    }
}

/// What a soak run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The seed every schedule is drawn from.
    pub seed: u64,
    /// How many schedules.
    pub schedules: u32,
    /// On which backends.
    pub backends: Backends,
    /// Run only this schedule (its index under the same seed).
    pub only: Option<u32>,
    /// Print each schedule and each call's outcome.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { seed: 1, schedules: 20, backends: Backends::All, only: None, verbose: false }
    }
}

/// The figures of a run.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Schedules run.
    pub schedules: u64,
    /// Schedules run per backend: ureq, reqwest.
    pub per_backend: [u64; 2],
    /// Requests the emulators saw (setup excluded).
    pub requests: u64,
    /// Fault rules injected.
    pub rules: u64,
    /// Requests a fault was applied to.
    pub faults: u64,
    /// Faults applied, by kind.
    pub faults_by_kind: BTreeMap<String, u64>,
    /// SDK calls made under a watchdog.
    pub calls: u64,
    /// The slowest call.
    pub slowest_call: Duration,
    /// Uploads started.
    pub uploads: u64,
    /// Uploads that succeeded on the first call.
    pub uploads_ok: u64,
    /// Uploads that failed with a resume state.
    pub uploads_failed_resumable: u64,
    /// Resumes that finished the upload (`Ok`).
    pub resumes_completed: u64,
    /// Resumes that ended "already finalized" after a finalize whose answer was lost.
    pub resumes_already_finalized: u64,
    /// Resumes from a state saved and loaded (serde) first.
    pub resumes_from_saved: u64,
    /// Uploads started again: failed before their session existed, or in a documented
    /// non-resumable way (a single PUT refused with 403).
    pub restarts: u64,
    /// Failed first calls whose error said finalize may have succeeded.
    pub finalize_ambiguous: u64,
    /// Failed first calls whose finalize was refused (the upload not finalized).
    pub finalize_refused: u64,
    /// Upload bytes verified byte for byte in storage.
    pub bytes_verified: u64,
    /// Upload sources used, by kind.
    pub sources: BTreeMap<&'static str, u64>,
    /// Query, result and listing calls that returned every row or item.
    pub reads_ok: u64,
    /// Query, result and listing calls that failed with a typed error.
    pub reads_failed: u64,
    /// Reads by operation: (complete, failed).
    pub reads_by_op: BTreeMap<&'static str, (u64, u64)>,
    /// Texts checked for secrets (error renderings, events).
    pub texts_scanned: u64,
    /// `tracing` and `log` lines captured and checked.
    pub log_lines: u64,
    /// Those lines by target (the crate or module that wrote them).
    pub log_targets: BTreeMap<String, u64>,
    /// Whether the `tracing` capture was installed (another global subscriber prevents it).
    pub tracing_captured: bool,
    /// Whether the `log` capture was installed (another logger prevents it).
    pub log_captured: bool,
    /// Log lines that show a secret by a documented exception: ureq's own `debug` lines
    /// (signatures), and its `trace` lines (the wire).
    pub documented_leaks: [u64; 2],
    /// Violations found.
    pub violations: Vec<String>,
}

impl Figures {
    fn merge(&mut self, o: Figures) {
        self.schedules += o.schedules;
        for i in 0..2 {
            self.per_backend[i] += o.per_backend[i];
        }
        self.requests += o.requests;
        self.rules += o.rules;
        self.faults += o.faults;
        for (k, v) in o.faults_by_kind {
            *self.faults_by_kind.entry(k).or_default() += v;
        }
        self.calls += o.calls;
        self.slowest_call = self.slowest_call.max(o.slowest_call);
        self.uploads += o.uploads;
        self.uploads_ok += o.uploads_ok;
        self.uploads_failed_resumable += o.uploads_failed_resumable;
        self.resumes_completed += o.resumes_completed;
        self.resumes_already_finalized += o.resumes_already_finalized;
        self.resumes_from_saved += o.resumes_from_saved;
        self.restarts += o.restarts;
        self.finalize_ambiguous += o.finalize_ambiguous;
        self.finalize_refused += o.finalize_refused;
        self.bytes_verified += o.bytes_verified;
        for (k, v) in o.sources {
            *self.sources.entry(k).or_default() += v;
        }
        self.reads_ok += o.reads_ok;
        self.reads_failed += o.reads_failed;
        for (k, (a, b)) in o.reads_by_op {
            let e = self.reads_by_op.entry(k).or_default();
            e.0 += a;
            e.1 += b;
        }
        self.texts_scanned += o.texts_scanned;
        self.log_lines += o.log_lines;
        self.documented_leaks[0] += o.documented_leaks[0];
        self.documented_leaks[1] += o.documented_leaks[1];
        for (k, v) in o.log_targets {
            *self.log_targets.entry(k).or_default() += v;
        }
        self.violations.extend(o.violations);
    }

    /// The figures as lines of text; the last is `soak: N schedules, M faults, V violations`.
    pub fn write(&self, out: &mut dyn std::io::Write) {
        let _ = writeln!(
            out,
            "schedules: {} (ureq {}, reqwest {})",
            self.schedules, self.per_backend[0], self.per_backend[1]
        );
        let _ = writeln!(out, "requests: {} (setup excluded)", self.requests);
        let _ = writeln!(out, "fault rules injected: {}; faults applied: {}", self.rules, self.faults);
        let kinds: Vec<String> = self.faults_by_kind.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  by kind: {}", kinds.join(", "));
        let _ = writeln!(
            out,
            "calls: {} (slowest {:.1} s; hang bound {} s)",
            self.calls,
            self.slowest_call.as_secs_f64(),
            HANG_BOUND.as_secs()
        );
        let sources: Vec<String> = self.sources.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "uploads: {} ({})", self.uploads, sources.join(", "));
        let _ = writeln!(
            out,
            "  done on the first call {}, failed with a resume state {} (finalize may have \
             arrived {}, refused {}), restarted {}",
            self.uploads_ok,
            self.uploads_failed_resumable,
            self.finalize_ambiguous,
            self.finalize_refused,
            self.restarts
        );
        let _ = writeln!(
            out,
            "  resumes completed: {} finished, {} already finalized ({} from a saved state); {} bytes \
             verified in storage",
            self.resumes_completed,
            self.resumes_already_finalized,
            self.resumes_from_saved,
            self.bytes_verified
        );
        let _ = writeln!(
            out,
            "queries, result streams, downloads, listings: {} complete, {} failed (typed)",
            self.reads_ok, self.reads_failed
        );
        for (op, (ok, failed)) in &self.reads_by_op {
            let _ = writeln!(out, "  {op}: {ok} complete, {failed} failed");
        }
        let _ = writeln!(
            out,
            "secrets: {} texts and {} log lines checked (tracing capture {}, log capture {})",
            self.texts_scanned,
            self.log_lines,
            if self.tracing_captured { "on" } else { "OFF: another subscriber was installed" },
            if self.log_captured { "on" } else { "OFF: another logger was installed" }
        );
        let targets: Vec<String> = self.log_targets.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  log lines by target: {}", targets.join(", "));
        let _ = writeln!(
            out,
            "  documented exception, ureq's own log: {} debug lines show a presigned URL, {} trace lines \
             (its dump of the wire) a secret",
            self.documented_leaks[0], self.documented_leaks[1]
        );
        let _ = writeln!(out, "violations: {}", self.violations.len());
        let _ = writeln!(
            out,
            "soak: {} schedules, {} faults, {} violations",
            self.schedules,
            self.faults,
            self.violations.len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------

/// SplitMix64: a tiny, fast, seedable generator (Steele, Lea, Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Bytes {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        Bytes::from(v)
    }
}

/// The seed of schedule `index` of a run seeded with `seed`.
fn schedule_seed(seed: u64, index: u32) -> u64 {
    SplitMix64::new(seed ^ (u64::from(index) + 1).wrapping_mul(0xd1b5_4a32_d192_ed03)).next_u64()
}

// ---------------------------------------------------------------------------------------
// Schedules
// ---------------------------------------------------------------------------------------

/// What an upload reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    /// Blocking: bytes in memory.
    Bytes,
    /// Blocking: a file by path.
    Path,
    /// Blocking: a seekable reader, positioned past a prefix that is not uploaded.
    Seekable,
    /// Blocking: a reader of unknown length, read in random-sized pieces.
    Reader,
    /// Async: bytes in memory.
    AsyncBytes,
    /// Async: a stream of random-sized chunks.
    AsyncStream,
    /// Async: an [`AsyncRangeSource`] over bytes in memory.
    AsyncRanged,
    /// Async: a file by path (read on tokio's blocking pool).
    AsyncFile,
}

impl SourceKind {
    fn name(self) -> &'static str {
        match self {
            Self::Bytes => "bytes",
            Self::Path => "path",
            Self::Seekable => "seekable",
            Self::Reader => "reader",
            Self::AsyncBytes => "async-bytes",
            Self::AsyncStream => "async-stream",
            Self::AsyncRanged => "async-ranged",
            Self::AsyncFile => "async-file",
        }
    }

    /// Sources of unknown length get a streaming session (part URLs minted one by one).
    fn streams(self) -> bool {
        matches!(self, Self::Reader | Self::AsyncStream)
    }
}

/// One operation of a schedule.
#[derive(Debug, Clone)]
enum Op {
    /// An upload of `size` random bytes.
    Upload {
        /// The source.
        kind: SourceKind,
        /// Its size.
        size: u64,
        /// The part size hint.
        part: u64,
        /// Parts in flight at most.
        concurrency: usize,
        /// Seeds the bytes and the chunking.
        seed: u64,
    },
    /// `query` answered as JSON (following a truncated preview or a 202 through Arrow).
    QueryJson {
        /// `synthetic(rows)`.
        rows: u64,
    },
    /// `query_to_arrow`.
    QueryArrow {
        /// `synthetic(rows)`.
        rows: u64,
    },
    /// The stored result as an Arrow stream, batch by batch.
    ResultStream,
    /// The stored result downloaded as CSV.
    Download,
    /// `databases().list()` walked by pages.
    ListDatabases {
        /// Page size.
        limit: i32,
    },
    /// `results().list(db)` walked by pages.
    ListResults {
        /// Page size.
        limit: i32,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Upload { kind, size, part, concurrency, .. } => write!(
                f,
                "upload {} of {size} bytes (part hint {part}, concurrency {concurrency})",
                kind.name()
            ),
            Op::QueryJson { rows } => write!(f, "query (json) of synthetic({rows})"),
            Op::QueryArrow { rows } => write!(f, "query_to_arrow of synthetic({rows})"),
            Op::ResultStream => f.write_str("arrow stream of the stored result"),
            Op::Download => f.write_str("csv download of the stored result"),
            Op::ListDatabases { limit } => write!(f, "list databases, pages of {limit}"),
            Op::ListResults { limit } => write!(f, "list results, pages of {limit}"),
        }
    }
}

/// One schedule: a backend, operations and fault rules.
#[derive(Debug, Clone)]
struct Schedule {
    /// The run's seed.
    seed: u64,
    /// Its index in the run.
    index: u32,
    /// The backend it runs on.
    backend: Backend,
    /// Whether the client retries 502/503/504 on idempotent operations.
    retry_server_errors: bool,
    /// Rows of the stored result (setup).
    stored_rows: u64,
    /// Databases created at setup (besides the results' database).
    databases: u32,
    /// Results stored at setup in the listing database.
    listed_results: u32,
    /// The operations, in order.
    ops: Vec<Op>,
    /// The fault rules, injected together after setup.
    faults: Vec<FaultRule>,
    /// A cut of the first stored-result read's body just before its end, injected before
    /// that read.
    tail_cut: Option<TailCut>,
}

/// Where a stored result's body is cut, close to its end: where a careless reader could
/// take the cut for the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TailCut {
    /// This many bytes before the end (8: the Arrow stream's end-of-stream marker).
    Bytes(u64),
    /// At the start of the last line (CSV), or before the end-of-stream marker (Arrow).
    LastLine,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.backend {
            Backend::Ureq => "ureq",
            Backend::Reqwest => "reqwest",
        };
        writeln!(
            f,
            "schedule {} of seed {} on {backend} (reproduce: cargo run --release --example soak -- \
             --seed {} --only {} --backend {backend})",
            self.index, self.seed, self.seed, self.index
        )?;
        writeln!(
            f,
            "  setup: {} databases, {} listed results, a stored result of {} rows; 5xx retries {}",
            self.databases + 1,
            self.listed_results,
            self.stored_rows,
            if self.retry_server_errors { "on" } else { "off" }
        )?;
        for op in &self.ops {
            writeln!(f, "  op: {op}")?;
        }
        for rule in &self.faults {
            writeln!(f, "  fault: {}", rule.to_spec())?;
        }
        if let Some(cut) = self.tail_cut {
            writeln!(f, "  fault: the first stored-result read's body cut {cut:?} before its end")?;
        }
        Ok(())
    }
}

/// The operation ids a fault rule may target for an operation.
fn targets_of(op: &Op) -> Vec<&'static str> {
    match op {
        Op::Upload { kind, .. } => {
            let mut t = vec![
                "create_upload_session_handler",
                "storage_put",
                "storage_put",
                "storage_put",
                "finalize_upload_handler",
                "finalize_upload_handler",
            ];
            if kind.streams() {
                t.push("mint_upload_parts_handler");
            } else {
                // A 403 on an eager part mints a fresh URL.
                t.push("storage_part");
            }
            t
        }
        Op::QueryJson { .. } => vec!["query", "query", "get_result", "get_query_run"],
        Op::QueryArrow { .. } => vec!["query", "query", "get_result", "get_query_run"],
        Op::ResultStream | Op::Download => vec!["get_result"],
        Op::ListDatabases { .. } => vec!["list_databases"],
        Op::ListResults { .. } => vec!["list_results"],
    }
}

/// A fault rule for a target, drawn.
fn draw_rule(rng: &mut SplitMix64, target: &'static str, parts: u32, uploads: u32) -> FaultRule {
    let storage = target == "storage_put" || target == "storage_part";
    let t = if target == "storage_part" {
        Target::StoragePart(rng.range(1, u64::from(parts.max(1))) as u32)
    } else if target == "any" {
        Target::Any
    } else {
        Target::Operation(target.to_string())
    };
    let streamed = matches!(target, "get_result" | "query");
    let retry_after = |rng: &mut SplitMix64| match rng.below(4) {
        0 => None,
        1 => Some(RetryAfter::Seconds(0)),
        2 => Some(RetryAfter::Seconds(1)),
        _ => Some(RetryAfter::HttpDate(1)),
    };
    let stall = Duration::from_millis(TIMEOUT.as_millis() as u64 + rng.range(300, 1200));
    let (fault, times) = if storage {
        match rng.below(10) {
            0 | 1 => (Fault::Status { status: 429, retry_after: retry_after(rng) }, rng.range(1, 4)),
            2 => (Fault::Status { status: rng.pick(&[500, 502, 503]), retry_after: None }, rng.range(1, 3)),
            3 => (Fault::Reset, rng.range(1, 2)),
            4 => (Fault::ResetAfterCommit, rng.range(1, 2)),
            5 => (Fault::ExpiredUrl, rng.range(1, 2)),
            6 => (Fault::MissingEtag, rng.range(1, 2)),
            7 => (Fault::Delay(Duration::from_millis(rng.range(100, 1000))), 1),
            8 => (Fault::Status { status: 403, retry_after: None }, 1),
            _ => (Fault::Close, rng.range(1, 3)),
        }
    } else if target == "finalize_upload_handler" {
        match rng.below(9) {
            0 | 1 => (Fault::ResetAfterCommit, 1),
            2 => (Fault::FailAfterCommit { status: rng.pick(&[500, 502, 503, 504]) }, 1),
            3 => (Fault::Status { status: rng.pick(&[401, 403]), retry_after: None }, 1),
            4 => (Fault::Status { status: 429, retry_after: retry_after(rng) }, 1),
            5 => (Fault::Status { status: rng.pick(&[500, 503]), retry_after: None }, 1),
            6 => (Fault::Reset, 1),
            7 => (Fault::Delay(stall), 1),
            _ => (Fault::Close, 1),
        }
    } else {
        match rng.below(if streamed { 13 } else { 10 }) {
            0 | 1 => (Fault::Status { status: 429, retry_after: retry_after(rng) }, rng.range(1, 5)),
            2 => (
                Fault::Status { status: rng.pick(&[500, 502, 503, 504]), retry_after: None },
                rng.range(1, 2),
            ),
            3 => (Fault::Reset, rng.range(1, 2)),
            4 => (Fault::ResetAfterCommit, 1),
            5 => (Fault::Delay(stall), 1),
            6 => (Fault::FailAfterCommit { status: rng.pick(&[500, 502, 503]) }, 1),
            7 => (
                Fault::SlowBody {
                    chunk: rng.range(512, 8192) as usize,
                    delay: Duration::from_millis(rng.range(2, 20)),
                },
                rng.range(1, 2),
            ),
            8 => {
                (Fault::Truncate { at: rng.chance(50).then(|| rng.range(0, 4000) as usize) }, rng.range(1, 2))
            }
            9 => (Fault::Close, rng.range(1, 3)),
            10 if target == "query" => (Fault::ForceAsync, 1),
            10 => {
                (Fault::NotReady { retry_after: Some(RetryAfter::Seconds(rng.range(0, 1))) }, rng.range(1, 2))
            }
            // A body that stops for longer than the idle timeout.
            11 => (
                Fault::SlowBody {
                    chunk: rng.range(4096, 32768) as usize,
                    delay: BODY_IDLE + Duration::from_millis(rng.range(300, 900)),
                },
                1,
            ),
            12 if target == "query" => (Fault::ForceAsync, 1),
            _ => (Fault::Truncate { at: None }, 1),
        }
    };
    let mut rule = FaultRule::new(t, fault).times(times as u32);
    // Skip a few matching requests first: a later part, a later upload's finalize.
    let skip = match target {
        "storage_put" if rng.chance(50) => rng.range(1, u64::from(parts.max(1))),
        "finalize_upload_handler" | "create_upload_session_handler" => rng.below(u64::from(uploads)),
        _ if rng.chance(20) => rng.range(1, 2),
        _ => 0,
    };
    if skip > 0 {
        rule = rule.skip(skip as u32);
    }
    rule
}

/// Draws schedule `index` of a run.
fn draw_schedule(seed: u64, index: u32, backends: Backends) -> Schedule {
    let mut rng = SplitMix64::new(schedule_seed(seed, index));
    let backend = match backends {
        Backends::One(b) => b,
        Backends::All if index.is_multiple_of(2) => Backend::Ureq,
        Backends::All => Backend::Reqwest,
    };
    let n_ops = rng.range(1, 3) as usize;
    let mut ops = Vec::new();
    for _ in 0..n_ops {
        let op = match rng.below(10) {
            0..=3 => {
                let kind = match backend {
                    Backend::Ureq => rng.pick(&[
                        SourceKind::Bytes,
                        SourceKind::Path,
                        SourceKind::Seekable,
                        SourceKind::Reader,
                    ]),
                    Backend::Reqwest => rng.pick(&[
                        SourceKind::AsyncBytes,
                        SourceKind::AsyncStream,
                        SourceKind::AsyncRanged,
                        SourceKind::AsyncFile,
                    ]),
                };
                // A hint below the emulator's minimum is raised to it: parts are sliced by
                // the size the server answers.
                let part = rng.pick(&[PART, PART, MIN_PART, 48 * 1024, 1000]);
                let size = match rng.below(6) {
                    // An empty source is sized (a single PUT of nothing); a stream of nothing
                    // is refused by the service, so streams get one byte at least.
                    0 if rng.chance(10) && !kind.streams() => 0,
                    0 => rng.range(1, 2048),
                    1 => rng.range(1, SINGLE_MAX),
                    2 => rng.pick(&[
                        SINGLE_MAX,
                        SINGLE_MAX + 1,
                        2 * part,
                        3 * part,
                        3 * part + 1,
                        4 * part - 1,
                    ]),
                    _ => rng.range(SINGLE_MAX + 1, MAX_UPLOAD),
                };
                Op::Upload { kind, size, part, concurrency: rng.range(1, 4) as usize, seed: rng.next_u64() }
            }
            4 => Op::QueryJson { rows: rng.pick(&[1, 7, 100, 101, 250, 2000]) },
            5 => Op::QueryArrow { rows: rng.pick(&[1, 100, 1000, 5000, 20_000]) },
            6 => Op::ResultStream,
            7 => Op::Download,
            8 => Op::ListDatabases { limit: rng.range(1, 4) as i32 },
            _ => Op::ListResults { limit: rng.range(1, 4) as i32 },
        };
        ops.push(op);
    }
    let mut candidates: Vec<&'static str> = ops.iter().flat_map(targets_of).collect();
    candidates.push("any");
    let parts = ops
        .iter()
        .filter_map(|op| match op {
            Op::Upload { size, part, .. } => Some(size.div_ceil(*part) as u32),
            _ => None,
        })
        .max()
        .unwrap_or(1);
    let uploads = ops.iter().filter(|op| matches!(op, Op::Upload { .. })).count() as u32;
    let n_faults = rng.range(1, 4) as usize;
    let mut faults = Vec::new();
    for _ in 0..n_faults {
        let target = rng.pick(&candidates);
        let mut rule = draw_rule(&mut rng, target, parts, uploads);
        if target == "any" {
            // Whatever request comes k-th: reset, or refused, or its answer lost.
            let fault = match rng.below(5) {
                0 => Fault::Reset,
                1 => Fault::ResetAfterCommit,
                2 => Fault::Status { status: 503, retry_after: None },
                3 => Fault::Delay(TIMEOUT + Duration::from_millis(rng.range(300, 1200))),
                _ => Fault::Status { status: 429, retry_after: Some(RetryAfter::Seconds(0)) },
            };
            rule = FaultRule::new(Target::Any, fault).skip(rng.range(0, 12) as u32);
        }
        faults.push(rule);
    }
    Schedule {
        seed,
        index,
        backend,
        retry_server_errors: rng.chance(50),
        stored_rows: rng.pick(&[1, 99, 100, 101, 3000, 12_345]),
        databases: rng.range(1, 6) as u32,
        listed_results: rng.range(1, 6) as u32,
        tail_cut: (ops.iter().any(|op| matches!(op, Op::ResultStream | Op::Download)) && rng.chance(40))
            .then(|| rng.pick(&[TailCut::Bytes(8), TailCut::Bytes(4), TailCut::Bytes(1), TailCut::LastLine])),
        ops,
        faults,
    }
}

// ---------------------------------------------------------------------------------------
// Capturing what the SDK prints: tracing lines
// ---------------------------------------------------------------------------------------

/// Every `tracing` line captured since the last [`take_log`].
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A minimal `tracing` subscriber: every span, record and event, at every level, formatted
/// with its fields into [`LOG`].
struct Capture {
    /// The next span id.
    next: AtomicU64,
}

/// Writes fields as ` name=value`.
struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }

    fn record_error(&mut self, field: &tracing::field::Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={} ({:?})", field.name(), value, value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let m = attrs.metadata();
        let mut line = format!("span {} {} {}", m.level(), m.target(), m.name());
        attrs.record(&mut Fields(&mut line));
        lock(&LOG).push(line);
        tracing::span::Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = String::from("record");
        values.record(&mut Fields(&mut line));
        lock(&LOG).push(line);
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let m = event.metadata();
        let mut line = format!("{} {}", m.level(), m.target());
        event.record(&mut Fields(&mut line));
        lock(&LOG).push(line);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// The `log` crate's records (ureq logs through it), at every level, into [`LOG`] as
/// `LEVEL target [log] message`.
struct LogCapture;

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        lock(&LOG).push(format!("{} {} [log] {}", record.level(), record.target(), record.args()));
    }

    fn flush(&self) {}
}

/// Installs the captures, once: the global `tracing` subscriber and the `log` logger; for
/// each, false when another one was installed first.
fn install_capture() -> (bool, bool) {
    static INSTALLED: OnceLock<(bool, bool)> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        static LOGGER: LogCapture = LogCapture;
        let tracing = tracing::subscriber::set_global_default(Capture { next: AtomicU64::new(0) }).is_ok();
        let log = log::set_logger(&LOGGER).is_ok();
        if log {
            log::set_max_level(log::LevelFilter::Trace);
        }
        (tracing, log)
    })
}

/// What a log line may show by a documented exception: ureq's own log (the `log` crate).
/// Its `trace` level dumps the bytes on the wire (`ureq_proto::util`: request heads with
/// `Authorization`, the finalize token header, bodies: everything), which `hotdata-ureq`'s
/// docs warn of; its `debug` level prints full request URIs (`ureq::run`), presigned
/// signatures included. Nothing else is excused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Excused {
    /// Nothing: any secret is a violation.
    Nothing,
    /// Presigned signatures (ureq's `debug`); a key or a token is still a violation.
    Signatures,
    /// Every secret (ureq's `trace`).
    Everything,
}

fn excused(line: &str) -> Excused {
    if !line.contains(" [log] ") {
        Excused::Nothing
    } else if line.starts_with("TRACE ureq") {
        Excused::Everything
    } else if line.starts_with("DEBUG ureq") {
        Excused::Signatures
    } else {
        Excused::Nothing
    }
}

/// The lines captured since the last call.
fn take_log() -> Vec<String> {
    std::mem::take(&mut *lock(&LOG))
}

// ---------------------------------------------------------------------------------------
// Calls under a watchdog
// ---------------------------------------------------------------------------------------

/// How a watched call ended.
enum Watched<T> {
    /// It returned.
    Done(T),
    /// It panicked, with this message.
    Panicked(String),
    /// It was still running at the bound (its thread is left behind).
    Hung,
}

/// Runs `f` on a thread of its own, catching a panic, and waits at most `bound`.
fn watch<T: Send + 'static>(
    bound: Duration,
    figures: &mut Figures,
    f: impl FnOnce() -> T + Send + 'static,
) -> Watched<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    let started = Instant::now();
    let spawned = std::thread::Builder::new().name("soak-call".into()).spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    if let Err(e) = spawned {
        return Watched::Panicked(format!("could not start the call's thread: {e}"));
    }
    figures.calls += 1;
    let r = rx.recv_timeout(bound);
    figures.slowest_call = figures.slowest_call.max(started.elapsed());
    match r {
        Ok(Ok(t)) => Watched::Done(t),
        Ok(Err(payload)) => Watched::Panicked(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into()),
        ),
        Err(_) => Watched::Hung,
    }
}

// ---------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------

/// A reader of unknown length that hands out random-sized pieces.
struct ChunkReader {
    data: Bytes,
    at: usize,
    rng: SplitMix64,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.data.len() - self.at;
        let n = buf.len().min(left).min(self.rng.range(1, 20_000) as usize);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A stream of random-sized chunks.
struct ChunkStream {
    data: Bytes,
    rng: SplitMix64,
}

impl futures_core::Stream for ChunkStream {
    type Item = std::io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        let n = (self.rng.range(1, 24_000) as usize).min(self.data.len());
        let chunk = self.data.split_to(n);
        Poll::Ready(Some(Ok(chunk)))
    }
}

/// A ranged source over bytes in memory.
struct MemRange(Bytes);

impl AsyncRangeSource for MemRange {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_range(&self, offset: u64, len: u64) -> BoxFuture<'_, std::io::Result<Bytes>> {
        let start = (offset as usize).min(self.0.len());
        let end = (offset.saturating_add(len) as usize).min(self.0.len());
        let b = self.0.slice(start..end);
        Box::pin(async move { Ok(b) })
    }
}

/// An upload's bytes and how to open a fresh source of its kind over them.
#[derive(Clone)]
struct Upload {
    kind: SourceKind,
    data: Bytes,
    /// The file of path sources.
    file: Option<PathBuf>,
    /// The bytes before the upload's start, for seekable sources.
    prefix: Bytes,
    seed: u64,
}

impl Upload {
    fn blocking(&self) -> UploadSource {
        match self.kind {
            SourceKind::Path => UploadSource::path(self.file.clone().unwrap_or_default()),
            SourceKind::Seekable => {
                let mut v = self.prefix.to_vec();
                v.extend_from_slice(&self.data);
                let mut c = Cursor::new(v);
                let _ = c.seek(SeekFrom::Start(self.prefix.len() as u64));
                UploadSource::seekable(c)
            }
            SourceKind::Reader => UploadSource::reader(ChunkReader {
                data: self.data.clone(),
                at: 0,
                rng: SplitMix64::new(self.seed),
            }),
            _ => UploadSource::bytes(self.data.clone()),
        }
    }

    fn nonblocking(&self) -> std::io::Result<AsyncUploadSource> {
        Ok(match self.kind {
            SourceKind::AsyncStream => AsyncUploadSource::stream(ChunkStream {
                data: self.data.clone(),
                rng: SplitMix64::new(self.seed),
            }),
            SourceKind::AsyncRanged => AsyncUploadSource::ranged(MemRange(self.data.clone())),
            SourceKind::AsyncFile => AsyncUploadSource::path(self.file.clone().unwrap_or_default()),
            _ => AsyncUploadSource::bytes(self.data.clone()),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Running a schedule
// ---------------------------------------------------------------------------------------

/// The client of a schedule.
#[derive(Clone)]
enum Client {
    Blocking(BlockingClient),
    Async(AsyncClient, tokio::runtime::Handle),
}

/// What one call printed or returned that must hold no secret, and what it found wrong.
#[derive(Default)]
struct Seen {
    texts: Vec<String>,
}

impl Seen {
    /// An error's `Display` and `Debug`, and those of every source in its chain.
    fn error(&mut self, e: &(dyn std::error::Error + 'static)) {
        self.texts.push(e.to_string());
        self.texts.push(format!("{e:?}"));
        let mut source = e.source();
        while let Some(s) = source {
            self.texts.push(s.to_string());
            self.texts.push(format!("{s:?}"));
            source = s.source();
        }
    }
}

/// The outcome of a read (a query, a result stream, a download, a listing).
enum ReadOutcome {
    /// Every row or item came back, as expected.
    Complete,
    /// A typed error.
    Failed(Box<Error>),
    /// Rows or items are missing or wrong: a violation.
    Short(String),
}

fn failed(e: Error) -> ReadOutcome {
    ReadOutcome::Failed(Box::new(e))
}

/// Checks batches of `synthetic(rows)`: exactly `rows` rows, ids `0..rows` in order.
fn check_rows(batches: &[RecordBatch], rows: u64) -> Result<(), String> {
    let got: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if got != rows {
        return Err(format!("{got} rows instead of {rows}"));
    }
    let mut next = 0i64;
    for b in batches {
        if let Some(ids) = b.column(0).as_primitive_opt::<Int64Type>() {
            for id in ids.values().iter() {
                if *id != next {
                    return Err(format!("row {next} has id {id}"));
                }
                next += 1;
            }
        }
    }
    Ok(())
}

fn check_result(r: Result<ArrowResult, Error>, rows: u64) -> ReadOutcome {
    match r {
        Ok(r) => match check_rows(&r.batches, rows) {
            Ok(()) => ReadOutcome::Complete,
            Err(why) => ReadOutcome::Short(why),
        },
        Err(e) => failed(e),
    }
}

/// The inline answer of `query`, checked against `rows`.
fn check_inline(r: &hotdata_core::models::QueryResponse, rows: u64) -> Result<(), String> {
    let want = rows.min(PREVIEW_ROWS as u64);
    if r.rows.len() as u64 != want {
        return Err(format!("{} inline rows instead of {want}", r.rows.len()));
    }
    if r.truncated != (rows > PREVIEW_ROWS as u64) {
        return Err(format!("truncated is {} for {rows} rows", r.truncated));
    }
    if r.total_row_count.is_some_and(|t| t != rows as i64) {
        return Err(format!("total_row_count {:?} for {rows} rows", r.total_row_count));
    }
    Ok(())
}

/// What a schedule needs from its setup.
#[derive(Clone)]
struct Setup {
    db: String,
    list_db: String,
    databases: BTreeSet<String>,
    listed_results: BTreeSet<String>,
    stored_result: String,
    stored_rows: u64,
    /// The stored result's Arrow body, its length.
    arrow_len: u64,
    /// Its CSV body: length, and the length of its last line.
    csv_len: u64,
    csv_last_line: u64,
}

fn synthetic(rows: u64) -> String {
    format!("select * from synthetic({rows}) order by id")
}

/// One read, written once for both clients: `$($aw)*` is what follows each call (nothing on
/// the blocking client, `.await` on the async one), `$pin` readies a stream of batches or
/// pages, and `$next` takes its next item (an `Iterator`'s `next`, or a `Stream` polled).
macro_rules! read_op {
    ($client:ident, $setup:ident, $op:ident, $pin:ident, $next:ident, [$($aw:tt)*]) => {{
        let db = $setup.db.as_str();
        match $op {
            Op::QueryJson { rows } => {
                match $client.query(QueryRequest::new(synthetic(rows)).database_id(db)).send() $($aw)* {
                    Ok(QueryOutcome::Inline(r)) => {
                        if let Err(why) = check_inline(&r, rows) {
                            return ReadOutcome::Short(why);
                        }
                        if r.truncated {
                            return check_result($client.follow_to_arrow(&r, db) $($aw)*, rows);
                        }
                        ReadOutcome::Complete
                    }
                    Ok(QueryOutcome::Submitted(run)) => {
                        match $client.wait_for_query_run(&run.query_run_id, db) $($aw)* {
                            Ok(info) => match info.result_id {
                                Some(id) => check_result($client.stored_result_arrow(&id, db) $($aw)*, rows),
                                None => ReadOutcome::Short("a finished query run without a result".into()),
                            },
                            Err(e) => failed(e),
                        }
                    }
                    Ok(other) => ReadOutcome::Short(format!("an answer the soak does not know: {other:?}")),
                    Err(e) => failed(e),
                }
            }
            Op::QueryArrow { rows } => {
                check_result($client.query_to_arrow(QueryRequest::new(synthetic(rows)), Some(db)) $($aw)*, rows)
            }
            Op::ResultStream => {
                let id = $setup.stored_result.as_str();
                for _ in 0..4 {
                    if let Err(e) = $client.wait_for_result(id, db) $($aw)* {
                        return failed(e);
                    }
                    match $client.results().arrow(id, db).stream() $($aw)* {
                        Ok(ResultFetch::Ready(stream)) => {
                            let mut stream = $pin!(stream);
                            let mut batches = Vec::new();
                            while let Some(b) = $next!(stream) {
                                match b {
                                    Ok(b) => batches.push(b),
                                    Err(e) => return failed(e),
                                }
                            }
                            return match check_rows(&batches, $setup.stored_rows) {
                                Ok(()) => ReadOutcome::Complete,
                                Err(why) => ReadOutcome::Short(why),
                            };
                        }
                        Ok(ResultFetch::NotReady(_)) => continue,
                        Err(e) => return failed(e),
                    }
                }
                failed(Error::wait_timeout("the stored result stayed not ready"))
            }
            Op::Download => {
                let id = $setup.stored_result.as_str();
                let mut out = Vec::new();
                match $client.results().download(id, db, ResultsFormatQuery::Csv).write_to(&mut out) $($aw)* {
                    Ok(ResultFetch::Ready((_, n))) => check_csv(&out, n, $setup.stored_rows),
                    Ok(ResultFetch::NotReady(_)) => {
                        failed(Error::wait_timeout("the stored result was not ready"))
                    }
                    Err(e) => failed(e),
                }
            }
            Op::ListDatabases { limit } => {
                let mut pages = $pin!($client.databases().list().limit(limit).pages());
                let mut ids = Vec::new();
                while let Some(page) = $next!(pages) {
                    match page {
                        Ok(items) => ids.extend(items.into_iter().map(|d| d.id)),
                        Err(e) => return failed(e),
                    }
                }
                check_listing(ids, &$setup.databases)
            }
            Op::ListResults { limit } => {
                let mut pages = $pin!($client.results().list($setup.list_db.as_str()).limit(limit).pages());
                let mut ids = Vec::new();
                while let Some(page) = $next!(pages) {
                    match page {
                        Ok(items) => ids.extend(items.into_iter().map(|r| r.id)),
                        Err(e) => return failed(e),
                    }
                }
                check_listing(ids, &$setup.listed_results)
            }
            Op::Upload { .. } => ReadOutcome::Short("an upload is not a read".into()),
        }
    }};
}

/// An iterator as it is.
macro_rules! as_is {
    ($e:expr) => {
        $e
    };
}

/// An iterator's next item.
macro_rules! iter_next {
    ($i:ident) => {
        $i.next()
    };
}

/// A stream's next item, polled.
macro_rules! stream_next {
    ($s:ident) => {
        std::future::poll_fn(|cx| $s.as_mut().poll_next(cx)).await
    };
}

/// A stream pinned on the heap, to be polled.
macro_rules! pin_boxed {
    ($e:expr) => {
        Box::pin($e)
    };
}

fn sync_read(client: BlockingClient, setup: Setup, op: Op) -> ReadOutcome {
    read_op!(client, setup, op, as_is, iter_next, [])
}

async fn async_read(client: AsyncClient, setup: Setup, op: Op) -> ReadOutcome {
    read_op!(client, setup, op, pin_boxed, stream_next, [.await])
}

/// A CSV download of `synthetic(rows)`: a header and `rows` lines.
fn check_csv(out: &[u8], written: u64, rows: u64) -> ReadOutcome {
    if written != out.len() as u64 {
        return ReadOutcome::Short(format!("write_to said {written} bytes, {} were written", out.len()));
    }
    let text = String::from_utf8_lossy(out);
    let lines = text.lines().count() as u64;
    if lines != rows + 1 || !text.ends_with('\n') {
        return ReadOutcome::Short(format!(
            "a CSV of {lines} lines instead of {} (header and rows)",
            rows + 1
        ));
    }
    ReadOutcome::Complete
}

/// A listing walked to its end: exactly the expected ids, each once.
fn check_listing(ids: Vec<String>, expected: &BTreeSet<String>) -> ReadOutcome {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    if set.len() != ids.len() {
        return ReadOutcome::Short(format!("{} items, {} distinct", ids.len(), set.len()));
    }
    if &set != expected {
        let missing: Vec<_> = expected.difference(&set).collect();
        let extra: Vec<_> = set.difference(expected).collect();
        return ReadOutcome::Short(format!("missing {missing:?}, unexpected {extra:?}"));
    }
    ReadOutcome::Complete
}

/// Upload options of the soak: small parts, fast retries, events captured.
fn upload_options(part: u64, concurrency: usize, events: Arc<Mutex<Vec<UploadEvent>>>) -> UploadOptions {
    UploadOptions::new()
        .part_size(part)
        .max_concurrency(concurrency)
        .part_retry(PartRetryPolicy::default().with_backoff_factor(Duration::from_millis(20)))
        .rounds(RoundPolicy::new(3, Duration::from_millis(50)))
        .filename("soak.bin")
        .content_type("application/octet-stream")
        .on_event(move |e| lock(&events).push(e.clone()))
}

/// An upload or resume call, on either backend.
fn upload_call(
    client: &Client,
    upload: &Upload,
    resume: Option<ResumeState>,
    part: u64,
    concurrency: usize,
    figures: &mut Figures,
) -> (Watched<Result<FinalizeUploadResponse, UploadError>>, Vec<UploadEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let options = upload_options(part, concurrency, events.clone());
    let upload = upload.clone();
    let bound = HANG_BOUND + UPLOAD_EXTRA;
    let watched = match client.clone() {
        Client::Blocking(c) => watch(bound, figures, move || match resume {
            Some(state) => c.resume_upload(state, upload.blocking(), options),
            None => c.upload_file(upload.blocking(), options),
        }),
        Client::Async(c, rt) => watch(bound, figures, move || {
            rt.block_on(async move {
                // Not the SDK's: the soak's own file (a panic here is reported as one).
                let source = upload.nonblocking().unwrap_or_else(|e| panic!("the soak's source: {e}"));
                match resume {
                    Some(state) => c.resume_upload(state, source, options).await,
                    None => c.upload_file(source, options).await,
                }
            })
        }),
    };
    let events = std::mem::take(&mut *lock(&events));
    (watched, events)
}

/// Progress never goes back and never passes the size.
fn check_progress(events: &[UploadEvent], size: u64) -> Result<(), String> {
    let mut last = 0;
    for e in events {
        if let UploadEvent::Progress { done, total } = e {
            if *done < last {
                return Err(format!("progress went back from {last} to {done}"));
            }
            if *done > size || total.is_some_and(|t| t != size) {
                return Err(format!("progress {done} of {total:?} for a source of {size} bytes"));
            }
            last = *done;
        }
    }
    Ok(())
}

/// The state of one schedule's run.
struct Run<'a> {
    schedule: &'a Schedule,
    emu: &'a EmulatorHandle,
    client: Client,
    figures: Figures,
    seen: Seen,
    /// Log ranges of upload calls: (first record, end, what).
    finalize_windows: Vec<(usize, usize, String)>,
    violations: Vec<String>,
    /// Files written for path sources, removed at the end.
    files: Vec<PathBuf>,
    verbose: bool,
}

impl Run<'_> {
    fn violation(&mut self, what: impl Into<String>) {
        self.violations.push(what.into());
    }

    fn note(&self, what: impl fmt::Display) {
        if self.verbose {
            eprintln!("    {what}");
        }
    }

    fn log_len(&self) -> usize {
        self.emu.requests().len()
    }

    /// The stored object of `id` must be `data`.
    fn check_object(&mut self, id: &str, data: &Bytes, what: &str) -> bool {
        match self.emu.uploaded_object(id) {
            Some(o) if o == *data => {
                self.figures.bytes_verified += data.len() as u64;
                true
            }
            Some(o) => {
                let at = o.iter().zip(data.iter()).position(|(a, b)| a != b);
                self.violation(format!(
                    "{what}: upload {id} stored {} bytes differing from the source's {} (first difference at {at:?})",
                    o.len(),
                    data.len()
                ));
                false
            }
            None => {
                self.violation(format!("{what}: upload {id} reported finalized, but storage has no object"));
                false
            }
        }
    }

    /// One upload call under the watchdog, its finalize count window recorded.
    fn upload_call(
        &mut self,
        upload: &Upload,
        resume: Option<ResumeState>,
        part: u64,
        concurrency: usize,
        what: &str,
    ) -> Option<(Result<FinalizeUploadResponse, UploadError>, Vec<UploadEvent>)> {
        let start = self.log_len();
        let (watched, events) =
            upload_call(&self.client, upload, resume, part, concurrency, &mut self.figures);
        let end = self.log_len();
        self.finalize_windows.push((start, end, what.to_string()));
        for e in &events {
            self.seen.texts.push(format!("{e:?}"));
        }
        if let Err(why) = check_progress(&events, upload.data.len() as u64) {
            self.violation(format!("{what}: {why}"));
        }
        match watched {
            Watched::Done(r) => {
                if let Err(e) = &r {
                    self.seen.error(e);
                    if let Some(s) = e.resume_state() {
                        self.seen.texts.push(format!("{s:?}"));
                    }
                }
                Some((r, events))
            }
            Watched::Panicked(m) => {
                self.violation(format!("{what}: panicked: {m}"));
                None
            }
            Watched::Hung => {
                self.violation(format!(
                    "{what}: still running after {} s",
                    (HANG_BOUND + UPLOAD_EXTRA).as_secs()
                ));
                None
            }
        }
    }

    /// Starts an upload again, without faults: it must succeed.
    fn restart(&mut self, upload: &Upload, part: u64, concurrency: usize, what: &str) {
        self.figures.restarts += 1;
        let what = format!("{what}, started again");
        if let Some((r, _)) = self.upload_call(upload, None, part, concurrency, &what) {
            match r {
                Ok(done) => {
                    self.check_object(&done.upload_id, &upload.data, &what);
                }
                Err(e) => self.violation(format!("{what}: failed without faults: {e} ({e:?})")),
            }
        }
    }

    fn run_upload(&mut self, op: &Op, pending: &mut Vec<Pending>, n: usize) {
        let Op::Upload { kind, size, part, concurrency, seed } = *op else { return };
        let mut rng = SplitMix64::new(seed);
        let data = rng.bytes(size as usize);
        let prefix_len = rng.below(100) as usize;
        let prefix = rng.bytes(prefix_len);
        let file = matches!(kind, SourceKind::Path | SourceKind::AsyncFile).then(|| {
            let p = std::env::temp_dir().join(format!(
                "hotdata-soak-{}-{}-{}-{n}.bin",
                std::process::id(),
                self.schedule.seed,
                self.schedule.index
            ));
            std::fs::write(&p, &data).map(|_| p)
        });
        let file = match file.transpose() {
            Ok(f) => f,
            Err(e) => {
                self.violation(format!("the soak could not write its source file: {e}"));
                return;
            }
        };
        self.files.extend(file.clone());
        let upload = Upload { kind, data, file, prefix, seed };
        self.figures.uploads += 1;
        *self.figures.sources.entry(kind.name()).or_default() += 1;
        let what = format!("upload {} of {size} bytes", kind.name());
        let Some((r, events)) = self.upload_call(&upload, None, part, concurrency, &what) else {
            return;
        };
        match r {
            Ok(done) => {
                self.note(format_args!("{what}: done, {}", done.upload_id));
                if self.check_object(&done.upload_id, &upload.data, &what) {
                    self.figures.uploads_ok += 1;
                }
                if done.size_bytes != size as i64 {
                    self.violation(format!("{what}: finalize says {} bytes", done.size_bytes));
                }
            }
            Err(e) => {
                self.note(format_args!("{what}: {e}"));
                let single = events
                    .iter()
                    .any(|e| matches!(e, UploadEvent::SessionCreated { shape: SessionShape::Single, .. }));
                self.upload_failed(e, upload, single, part, concurrency, what, pending);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn upload_failed(
        &mut self,
        e: UploadError,
        upload: Upload,
        single: bool,
        part: u64,
        concurrency: usize,
        what: String,
        pending: &mut Vec<Pending>,
    ) {
        let kind = e.kind();
        if kind == UploadErrorKind::AlreadyFinalized {
            self.violation(format!("{what}: the first call ended already finalized: {e}"));
            return;
        }
        let Some(id) = e.upload_id().map(str::to_owned) else {
            // No session: nothing to resume; the caller starts again.
            if kind != UploadErrorKind::CreateSession {
                self.violation(format!("{what}: a {kind:?} error names no upload: {e}"));
            }
            pending.push(Pending::Restart { upload, part, concurrency, what });
            return;
        };
        let finalized = self.emu.uploaded_object(&id).is_some();
        if finalized && !e.finalize_may_have_succeeded() {
            self.violation(format!(
                "{what}: upload {id} is finalized in storage, but the error says finalize did not arrive: {e:?}"
            ));
        }
        if e.finalize_may_have_succeeded() {
            self.figures.finalize_ambiguous += 1;
        }
        match e.into_resume_state() {
            Some(state) => {
                if state.finalize_was_refused() {
                    self.figures.finalize_refused += 1;
                }
                if state.upload_id() != id {
                    self.violation(format!(
                        "{what}: the resume state is of {}, the error of {id}",
                        state.upload_id()
                    ));
                }
                self.figures.uploads_failed_resumable += 1;
                pending.push(Pending::Resume { upload, state, part, concurrency, what });
            }
            None if kind == UploadErrorKind::StorageStatus && single => {
                // Documented: a single PUT refused with 403 cannot be resumed (its URL cannot
                // be minted again); the caller starts again.
                pending.push(Pending::Restart { upload, part, concurrency, what });
            }
            None => {
                self.violation(format!("{what}: a {kind:?} failure of upload {id} carries no resume state"));
            }
        }
    }

    fn resume(&mut self, upload: Upload, state: ResumeState, part: u64, concurrency: usize, what: String) {
        let ambiguous = state.finalize_may_have_arrived();
        let id = state.upload_id().to_owned();
        // Every other upload's state is saved and loaded first, as across a crash or a
        // redeploy (feature `serde`; the saved form holds secrets by design, so it is not
        // scanned).
        let saved = upload.seed.is_multiple_of(2);
        let state = if saved {
            let loaded = serde_json::to_string(&state)
                .map_err(|e| e.to_string())
                .and_then(|json| serde_json::from_str::<ResumeState>(&json).map_err(|e| e.to_string()));
            match loaded {
                Ok(loaded) if loaded == state => loaded,
                // Lost work after a restart; the resume below goes on from the state in
                // memory, so that what follows is still checked.
                Ok(_) => {
                    self.violation(format!("{what}: the resume state changed when saved and loaded"));
                    state
                }
                Err(e) => {
                    self.violation(format!("{what}: the resume state did not save and load: {e}"));
                    state
                }
            }
        } else {
            state
        };
        self.figures.resumes_from_saved += u64::from(saved);
        let what = format!("{what}, resumed{}", if saved { " from a saved state" } else { "" });
        let Some((r, _)) = self.upload_call(&upload, Some(state), part, concurrency, &what) else {
            return;
        };
        match r {
            Ok(done) => {
                if done.upload_id != id {
                    self.violation(format!("{what}: resumed {id}, finalized {}", done.upload_id));
                }
                if self.check_object(&done.upload_id, &upload.data, &what) {
                    self.figures.resumes_completed += 1;
                }
            }
            Err(e) if e.kind() == UploadErrorKind::AlreadyFinalized => {
                if !ambiguous {
                    self.violation(format!(
                        "{what}: already finalized, but the state said finalize had not arrived: {e}"
                    ));
                }
                if self.check_object(&id, &upload.data, &what) {
                    self.figures.resumes_already_finalized += 1;
                }
            }
            Err(e) => self.violation(format!("{what}: failed without faults: {e} ({e:?})")),
        }
    }

    fn run_read(&mut self, op: &Op, setup: &Setup) {
        let name = match op {
            Op::QueryJson { .. } => "query (json)",
            Op::QueryArrow { .. } => "query_to_arrow",
            Op::ResultStream => "result arrow stream",
            Op::Download => "result csv download",
            Op::ListDatabases { .. } => "list databases",
            Op::ListResults { .. } => "list results",
            Op::Upload { .. } => return,
        };
        let (op, setup) = (op.clone(), setup.clone());
        let watched = match self.client.clone() {
            Client::Blocking(c) => watch(HANG_BOUND, &mut self.figures, move || sync_read(c, setup, op)),
            Client::Async(c, rt) => {
                watch(HANG_BOUND, &mut self.figures, move || rt.block_on(async_read(c, setup, op)))
            }
        };
        match watched {
            Watched::Done(ReadOutcome::Complete) => {
                self.figures.reads_by_op.entry(name).or_default().0 += 1;
                self.figures.reads_ok += 1;
                self.note(format_args!("{name}: complete"));
            }
            Watched::Done(ReadOutcome::Failed(e)) => {
                self.figures.reads_by_op.entry(name).or_default().1 += 1;
                self.figures.reads_failed += 1;
                self.note(format_args!("{name}: {e}"));
                self.seen.error(e.as_ref());
            }
            Watched::Done(ReadOutcome::Short(why)) => {
                self.violation(format!("{name}: silently short: {why}"))
            }
            Watched::Panicked(m) => self.violation(format!("{name}: panicked: {m}")),
            Watched::Hung => {
                self.violation(format!("{name}: still running after {} s", HANG_BOUND.as_secs()))
            }
        }
    }

    /// Finalize at most once per call, and no secret in anything seen.
    fn check_log(&mut self, log: &[RequestRecord], tracing_lines: Vec<String>, api_key: &str) {
        let windows = std::mem::take(&mut self.finalize_windows);
        for (start, end, what) in windows {
            let window = log.get(start..end.min(log.len())).unwrap_or_default();
            for (id, n) in finalizes(window.iter().map(|r| (r.operation.as_str(), r.uri.as_str()))) {
                if n > 1 {
                    self.violation(format!(
                        "{what}: finalize of {id} reached the server {n} times in one call"
                    ));
                }
            }
        }
        let mut secrets = Secrets::default();
        secrets.keys.insert(api_key.to_string());
        for r in log {
            if let Some(t) = r.header("x-upload-finalize-token") {
                secrets.keys.insert(t.to_string());
            }
            if let Some((_, q)) = r.uri.split_once("X-Signature=") {
                let sig: String = q.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                if sig.len() >= 8 {
                    secrets.signatures.insert(sig);
                }
            }
        }
        self.figures.texts_scanned += self.seen.texts.len() as u64;
        self.figures.log_lines += tracing_lines.len() as u64;
        for line in &tracing_lines {
            // `LEVEL target fields...`
            let target = line.split(' ').nth(1).unwrap_or_default().to_string();
            *self.figures.log_targets.entry(target).or_default() += 1;
        }
        let texts = std::mem::take(&mut self.seen.texts);
        for (source, text) in texts
            .iter()
            .map(|t| ("an error or event", t))
            .chain(tracing_lines.iter().map(|t| ("a log line", t)))
        {
            let excused = excused(text);
            if excused == Excused::Everything {
                self.figures.documented_leaks[1] += u64::from(find_leak(text, &secrets, false).is_some());
                continue;
            }
            if let Some(leak) = find_leak(text, &secrets, excused == Excused::Signatures) {
                let excerpt: String = text.chars().take(300).collect();
                self.violation(format!("{leak} appears in {source}: {excerpt}"));
            } else if excused == Excused::Signatures && find_leak(text, &secrets, false).is_some() {
                self.figures.documented_leaks[0] += 1;
            }
        }
    }
}

/// Finalize requests per upload id, from `(operation, uri)` records of the request log.
fn finalizes<'a>(records: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<&'a str, u32> {
    let mut per_upload = BTreeMap::new();
    for (op, uri) in records {
        if op == "finalize_upload_handler" {
            // `/v1/uploads/{id}/finalize`
            *per_upload.entry(uri.split('/').nth(3).unwrap_or("")).or_default() += 1;
        }
    }
    per_upload
}

/// The secrets of a schedule, as seen on the wire.
#[derive(Default)]
struct Secrets {
    /// The API key and the finalize tokens.
    keys: BTreeSet<String>,
    /// The presigned URLs' signatures.
    signatures: BTreeSet<String>,
}

/// What secret `text` shows, if any: a key or token of `secrets`, a finalize token of the
/// emulator's shape (`uft_...`) or, unless `signatures_excused`, a signature of `secrets` or
/// a presigned query's signature parameter.
fn find_leak(text: &str, secrets: &Secrets, signatures_excused: bool) -> Option<String> {
    let seen =
        |set: &BTreeSet<String>| set.iter().find(|s| !s.is_empty() && text.contains(s.as_str())).cloned();
    let secret = |s: String| format!("the secret {}...", s.chars().take(6).collect::<String>());
    if let Some(s) = seen(&secrets.keys) {
        return Some(secret(s));
    }
    if text.contains("uft_") {
        return Some("a finalize token".into());
    }
    if signatures_excused {
        return None;
    }
    if let Some(s) = seen(&secrets.signatures) {
        return Some(secret(s));
    }
    text.to_ascii_lowercase().contains("x-signature").then(|| "a presigned signature".into())
}

/// Work left for after the faults are cleared.
enum Pending {
    Resume { upload: Upload, state: ResumeState, part: u64, concurrency: usize, what: String },
    Restart { upload: Upload, part: u64, concurrency: usize, what: String },
}

/// The emulator of a schedule.
fn start_emulator(api_key: &str) -> std::io::Result<EmulatorHandle> {
    hotdata_emulator::Emulator::builder()
        .api_key(api_key)
        .presign(true)
        .single_put_max(SINGLE_MAX)
        .min_part_size(MIN_PART)
        .default_part_size(PART)
        .preview_rows(PREVIEW_ROWS)
        .job_step(Duration::from_millis(10))
        .async_result_delay(Duration::from_millis(30))
        .start()
}

/// The client configuration of a schedule: short timeouts, fast retries.
fn config(emu: &EmulatorHandle, retry_server_errors: bool) -> Config {
    Config::new(emu.api_key())
        .with_workspace_id(emu.workspace_id())
        .with_base_url(emu.base_url())
        .with_timeout(Some(TIMEOUT))
        .with_connect_timeout(Some(Duration::from_secs(2)))
        .with_body_idle_timeout(Some(BODY_IDLE))
        .with_retry(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(50), Duration::from_secs(1))
                .with_budget(Duration::from_secs(20))
                .with_server_error_retries(retry_server_errors),
        )
}

/// Setup, without faults: databases and stored results.
fn setup(emu: &EmulatorHandle, s: &Schedule) -> Result<Setup, String> {
    let client = hotdata_ureq::client(config(emu, false));
    let db = emu.create_database("soak")?;
    let list_db = emu.create_database("soak_listed")?;
    let mut databases: BTreeSet<String> = [db.clone(), list_db.clone()].into();
    for i in 1..s.databases {
        databases.insert(emu.create_database(&format!("soak_{i}"))?);
    }
    let stored = |sql: String, db: &str| -> Result<String, String> {
        match client.query(QueryRequest::new(sql).database_id(db)).send().map_err(|e| e.to_string())? {
            QueryOutcome::Inline(r) => r.result_id.ok_or_else(|| "a query without a result id".to_string()),
            other => Err(format!("setup query answered {other:?}")),
        }
    };
    let stored_result = stored(synthetic(s.stored_rows), &db)?;
    let mut listed_results = BTreeSet::new();
    for i in 0..s.listed_results {
        listed_results.insert(stored(format!("select {i} as n"), &list_db)?);
    }
    let body = |format: ResultsFormatQuery| -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        match client.results().download(stored_result.as_str(), db.as_str(), format).write_to(&mut out) {
            Ok(ResultFetch::Ready(_)) => Ok(out),
            Ok(_) => Err("the stored result is not ready".into()),
            Err(e) => Err(e.to_string()),
        }
    };
    let arrow_len = body(ResultsFormatQuery::Arrow)?.len() as u64;
    let csv = body(ResultsFormatQuery::Csv)?;
    let trimmed = csv.strip_suffix(b"\n").unwrap_or(&csv);
    let csv_last_line = (csv.len() - trimmed.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)) as u64;
    Ok(Setup {
        db,
        list_db,
        databases,
        listed_results,
        stored_result,
        stored_rows: s.stored_rows,
        arrow_len,
        csv_len: csv.len() as u64,
        csv_last_line,
    })
}

/// The name of a fault as the request log records it (`Status { status: 429, .. }` → `status 429`).
fn fault_kind(fault: &str) -> String {
    let name: String = fault.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    match name.as_str() {
        "Status" | "FailAfterCommit" => {
            let code: String = fault
                .split("status: ")
                .nth(1)
                .map(|s| s.chars().take_while(char::is_ascii_digit).collect())
                .unwrap_or_default();
            format!("{name} {code}")
        }
        _ => name,
    }
}

/// Runs one schedule; its figures and violations.
fn run_schedule(s: &Schedule, rt: Option<&tokio::runtime::Runtime>, verbose: bool) -> Figures {
    let mut figures = Figures { schedules: 1, ..Figures::default() };
    figures.per_backend[usize::from(s.backend == Backend::Reqwest)] = 1;
    let api_key = format!("hd_soak_{:016x}", SplitMix64::new(s.seed ^ u64::from(s.index)).next_u64());
    let fail = |figures: &mut Figures, why: String| {
        figures.violations.push(format!("{why}\n{s}"));
    };
    let emu = match start_emulator(&api_key) {
        Ok(e) => e,
        Err(e) => {
            fail(&mut figures, format!("the emulator did not start: {e}"));
            return figures;
        }
    };
    let setup = match setup(&emu, s) {
        Ok(x) => x,
        Err(e) => {
            fail(&mut figures, format!("setup failed without faults: {e}"));
            return figures;
        }
    };
    emu.clear_requests();
    let _ = take_log();
    let client = match (s.backend, rt) {
        (Backend::Ureq, _) => Client::Blocking(hotdata_ureq::client(config(&emu, s.retry_server_errors))),
        (Backend::Reqwest, Some(rt)) => {
            Client::Async(hotdata_reqwest::client(config(&emu, s.retry_server_errors)), rt.handle().clone())
        }
        (Backend::Reqwest, None) => {
            fail(&mut figures, "no tokio runtime for reqwest".into());
            return figures;
        }
    };
    if verbose {
        eprint!("{s}");
    }
    let mut run = Run {
        schedule: s,
        emu: &emu,
        client,
        figures,
        seen: Seen::default(),
        finalize_windows: Vec::new(),
        violations: Vec::new(),
        files: Vec::new(),
        verbose,
    };
    for rule in &s.faults {
        emu.inject(rule.clone());
        run.figures.rules += 1;
    }
    let mut pending = Vec::new();
    let first_stored_read = s.ops.iter().position(|op| matches!(op, Op::ResultStream | Op::Download));
    for (n, op) in s.ops.iter().enumerate() {
        if let (Some(cut), Some(true)) = (s.tail_cut, first_stored_read.map(|i| i == n)) {
            let (len, back, skip) = match (op, cut) {
                // The Arrow read polls the result's status first.
                (Op::ResultStream, TailCut::Bytes(k)) => (setup.arrow_len, k, 1),
                (Op::ResultStream, TailCut::LastLine) => (setup.arrow_len, 8, 1),
                (_, TailCut::Bytes(k)) => (setup.csv_len, k, 0),
                (_, TailCut::LastLine) => (setup.csv_len, setup.csv_last_line, 0),
            };
            let at = len.saturating_sub(back) as usize;
            emu.inject(
                FaultRule::new(Target::Operation("get_result".into()), Fault::Truncate { at: Some(at) })
                    .skip(skip),
            );
            run.figures.rules += 1;
        }
        match op {
            Op::Upload { .. } => run.run_upload(op, &mut pending, n),
            _ => run.run_read(op, &setup),
        }
    }
    emu.clear_faults();
    for p in pending {
        match p {
            Pending::Resume { upload, state, part, concurrency, what } => {
                run.resume(upload, state, part, concurrency, what)
            }
            Pending::Restart { upload, part, concurrency, what } => {
                run.restart(&upload, part, concurrency, &what)
            }
        }
    }
    let log = emu.requests();
    run.figures.requests += log.len() as u64;
    for r in &log {
        if let Some(f) = &r.fault {
            run.figures.faults += 1;
            *run.figures.faults_by_kind.entry(fault_kind(f)).or_default() += 1;
        }
    }
    for r in log.iter().filter(|r| r.operation == "storage_put") {
        if r.had_authorization || r.headers.iter().any(|(_, v)| v.contains(&api_key)) {
            run.violation(format!(
                "a storage PUT carried the API key or an Authorization header: {}",
                r.method
            ));
        }
    }
    let lines = take_log();
    run.check_log(&log, lines, &api_key);
    for f in &run.files {
        let _ = std::fs::remove_file(f);
    }
    let mut figures = std::mem::take(&mut run.figures);
    let violations = std::mem::take(&mut run.violations);
    for v in violations {
        figures.violations.push(format!("{v}\n{s}"));
    }
    drop(run);
    emu.shutdown();
    figures
}

/// Runs the soak: every schedule, figures at the end (the last line is
/// `soak: N schedules, M faults, V violations`). Violations are printed as they are found,
/// each with its seed and schedule.
pub fn run(options: &Options, out: &mut dyn std::io::Write) -> Figures {
    let (tracing_captured, log_captured) = install_capture();
    let mut total = Figures { tracing_captured, log_captured, ..Figures::default() };
    let needs_tokio = !matches!(options.backends, Backends::One(Backend::Ureq));
    let rt = if needs_tokio {
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(rt) => Some(rt),
            Err(e) => {
                total.violations.push(format!("could not start tokio: {e}"));
                None
            }
        }
    } else {
        None
    };
    let _ = writeln!(
        out,
        "soak: seed {}, {} schedules, backend {}",
        options.seed,
        options.only.map_or(options.schedules, |_| 1),
        match options.backends {
            Backends::One(Backend::Ureq) => "ureq",
            Backends::One(Backend::Reqwest) => "reqwest",
            Backends::All => "all (alternating)",
        }
    );
    let started = Instant::now();
    let indices: Vec<u32> = match options.only {
        Some(i) => vec![i],
        None => (0..options.schedules).collect(),
    };
    for index in indices {
        let schedule = draw_schedule(options.seed, index, options.backends);
        let figures = run_schedule(&schedule, rt.as_ref(), options.verbose);
        for v in &figures.violations {
            let _ = writeln!(out, "VIOLATION: {v}");
        }
        total.merge(figures);
        if options.verbose || (index + 1).is_multiple_of(25) {
            let _ = writeln!(
                out,
                "  .. {} schedules, {} faults, {} violations, {:.0} s",
                total.schedules,
                total.faults,
                total.violations.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(rt) = rt {
        rt.shutdown_timeout(Duration::from_secs(1));
    }
    let _ = writeln!(out, "elapsed: {:.1} s", started.elapsed().as_secs_f64());
    total.write(out);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_the_reference() {
        // The first outputs of SplitMix64 seeded with 1234567 (Vigna's reference code).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn the_checks_catch_what_they_should() {
        let batch = |ids: Vec<i64>| {
            let array: arrow_array::ArrayRef = Arc::new(arrow_array::Int64Array::from(ids));
            RecordBatch::try_from_iter([("id", array)]).unwrap()
        };
        assert!(check_rows(&[batch(vec![0, 1]), batch(vec![2])], 3).is_ok());
        assert!(check_rows(&[batch(vec![0, 1])], 3).is_err(), "short");
        assert!(check_rows(&[batch(vec![0, 2, 1])], 3).is_err(), "out of order");
        assert!(matches!(check_csv(b"id\n0\n1\n", 7, 2), ReadOutcome::Complete));
        assert!(matches!(check_csv(b"id\n0\n", 5, 2), ReadOutcome::Short(_)));
        assert!(matches!(check_csv(b"id\n0\n1", 6, 2), ReadOutcome::Short(_)), "cut mid-line");
        let want: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();
        assert!(matches!(check_listing(vec!["b".into(), "a".into()], &want), ReadOutcome::Complete));
        assert!(matches!(
            check_listing(vec!["a".into(), "a".into(), "b".into()], &want),
            ReadOutcome::Short(_)
        ));
        assert!(matches!(check_listing(vec!["a".into()], &want), ReadOutcome::Short(_)));
        let progress = |d: &[u64]| -> Vec<UploadEvent> {
            d.iter().map(|&done| UploadEvent::Progress { done, total: Some(10) }).collect()
        };
        assert!(check_progress(&progress(&[0, 4, 4, 10]), 10).is_ok());
        assert!(check_progress(&progress(&[0, 4, 3]), 10).is_err(), "backwards");
        assert!(check_progress(&progress(&[11]), 10).is_err(), "past the size");
        let log = [
            ("finalize_upload_handler", "/v1/uploads/upl_1/finalize"),
            ("storage_put", "/_storage/ws/upl_1/1?X-Expires=1&X-Signature=abc"),
            ("finalize_upload_handler", "/v1/uploads/upl_1/finalize"),
        ];
        assert_eq!(finalizes(log.into_iter()).get("upl_1"), Some(&2));
        let secrets =
            Secrets { keys: ["hd_soak_key".to_string()].into(), signatures: ["00ff00ff".to_string()].into() };
        assert!(find_leak("Bearer hd_soak_key", &secrets, false).is_some());
        assert!(find_leak("PUT http://h/_storage/x?X-Signature=00ff", &secrets, false).is_some());
        assert!(find_leak("signed 00ff00ff", &secrets, false).is_some());
        assert!(find_leak("token uft_0123", &secrets, false).is_some());
        assert!(
            find_leak("upload upl_000000000012: storage answered 403 to part 1", &secrets, false).is_none()
        );
        // Excused: a signature, never a key or a token.
        assert!(find_leak("PUT http://h/x?X-Signature=00ff00ff", &secrets, true).is_none());
        assert!(find_leak("Authorization: Bearer hd_soak_key", &secrets, true).is_some());
        assert!(find_leak("X-Upload-Finalize-Token: uft_0123", &secrets, true).is_some());
        assert_eq!(excused("TRACE ureq_proto::util [log] 6f6b  oken:.uft_38b2ea"), Excused::Everything);
        assert_eq!(excused("DEBUG ureq::run [log] PUT http://h/x?X-Signature=1"), Excused::Signatures);
        assert_eq!(excused("INFO ureq::run [log] PUT http://h/x?X-Signature=1"), Excused::Nothing);
        assert_eq!(excused("TRACE hotdata operation=x"), Excused::Nothing);
    }

    #[test]
    fn a_seed_draws_the_same_schedule() {
        let a = draw_schedule(7, 3, Backends::All).to_string();
        let b = draw_schedule(7, 3, Backends::All).to_string();
        assert_eq!(a, b);
        assert_ne!(a, draw_schedule(7, 4, Backends::All).to_string());
    }
}
