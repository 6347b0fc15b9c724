//! A local, in-memory emulator of the Hotdata HTTP API.
//!
//! It serves all 63 operations of the current API statefully, runs real SQL (SQLite via
//! rusqlite) over managed tables loaded from CSV, JSON and Parquet uploads, serves results
//! as JSON and Arrow IPC, emulates presigned object storage for uploads, and can inject
//! faults. It is meant for tests, examples and benchmarks: no account, no network. Use it as
//! a library ([`Emulator`]) from your own tests, or as a process (the `hotdata-emulator`
//! binary, see [below](crate#the-binary)).
//!
//! The server runs on its own thread with its own tokio runtime, bound to `127.0.0.1` on an
//! ephemeral port by default, so it works from plain `#[test]` functions as well as from
//! async tests, and tests running in parallel each get their own. Dropping the handle stops
//! it.
//!
//! # Testing your own code against it
//!
//! Add the emulator as a dev-dependency next to a client (`hotdata-ureq` here,
//! `hotdata-reqwest` works the same way):
//!
//! ```toml
//! [dev-dependencies]
//! hotdata-emulator = "0.1"
//! ```
//!
//! then point the client at [`EmulatorHandle::base_url`] with the emulator's key and
//! workspace, and inject faults ([`FaultRule`]) to check that your code copes. A complete
//! test (it runs as this crate's doctest):
//!
//! ```
//! use hotdata_emulator::{Emulator, FaultRule, RetryAfter};
//! use hotdata_ureq::hotdata_core::models::{QueryOutcome, QueryRequest};
//! use hotdata_ureq::hotdata_core::{BlockingClient, Config, Error};
//!
//! /// Your code, the code under test: how many rows a query answers.
//! fn count_rows(client: &BlockingClient, sql: &str) -> Result<usize, Error> {
//!     match client.query(QueryRequest::new(sql)).send()? {
//!         QueryOutcome::Inline(answer) => Ok(answer.rows.len()),
//!         _ => Ok(0), // still running (a real app would wait for its result)
//!     }
//! }
//!
//! // In your crate's tests/, as a plain #[test] function.
//! fn count_rows_copes_with_an_overloaded_service() -> Result<(), Box<dyn std::error::Error>> {
//!     let emu = Emulator::builder().start()?; // 127.0.0.1, an ephemeral port
//!     let client = hotdata_ureq::client(
//!         Config::new(emu.api_key()).with_workspace_id(emu.workspace_id()).with_base_url(emu.base_url()),
//!     );
//!     assert_eq!(count_rows(&client, "select * from synthetic(5)")?, 5);
//!
//!     // The next two queries are refused with 429 and `Retry-After: 0`: the SDK waits and
//!     // retries, and your code sees the answer.
//!     emu.inject(FaultRule::status("query", 429, Some(RetryAfter::Seconds(0)), 2));
//!     emu.clear_requests();
//!     assert_eq!(count_rows(&client, "select * from synthetic(3)")?, 3);
//!     let statuses: Vec<u16> = emu.requests().iter().map(|r| r.status).collect();
//!     assert_eq!(statuses, [429, 429, 200]);
//!
//!     // A failure no retry heals (a 500 to a query is not retried): your code gets an
//!     // error that says what happened, after one request.
//!     emu.inject(FaultRule::parse("op=query,status=500")?);
//!     emu.clear_requests();
//!     let err = count_rows(&client, "select 1").unwrap_err();
//!     assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
//!     assert_eq!(emu.requests().len(), 1);
//!     Ok(())
//! }
//! # count_rows_copes_with_an_overloaded_service().unwrap();
//! ```
//!
//! [`EmulatorHandle::requests`] is the log of what your code sent (operation, status,
//! headers, the fault applied), [`EmulatorHandle::uploaded_object`] the bytes an upload left
//! in storage, and [`EmulatorHandle::reset`] puts everything back between tests that share
//! one emulator.
//!
//! # Faults
//!
//! A [`FaultRule`] pairs a [`Target`] (which requests) with a [`Fault`] (what happens to
//! them), and fires once by default:
//!
//! * [`FaultRule::new`]`(target, fault)`, then [`FaultRule::times`]`(n)` (the next `n`
//!   matching requests), [`FaultRule::always`] (every one) and [`FaultRule::skip`]`(n)` (let
//!   the first `n` through); shorthands [`FaultRule::status`]`(op, status, retry_after, n)`
//!   and [`FaultRule::storage_part_fails`]`(part, status, attempts)`;
//! * or parsed from a spec, [`FaultRule::parse`]`("op=query,status=429,retry-after=1,times=2")`,
//!   the syntax of the binary's `--fault` (and [`FaultRule::from_json`], its JSON form).
//!
//! Rules apply from the start ([`EmulatorBuilder::fault`], [`Config::faults`]) or from when
//! they are added ([`EmulatorHandle::inject`]); [`EmulatorHandle::faults`] lists them and
//! [`EmulatorHandle::clear_faults`] removes them. The first rule that matches a request and
//! has budget left fires.
//!
//! Targets: [`Target::Operation`] (`op=<operationId>`: `query`, `get_result`,
//! `create_upload`, ...; storage requests are `storage_put` and `storage_get`),
//! [`Target::PathPrefix`] (`path=<prefix>`, e.g. `path=/v1/results/res_1`),
//! [`Target::StoragePart`] (`part=<n>`: the storage PUTs of multipart part `n`), or
//! [`Target::Any`] (no target item).
//!
//! | [`Fault`] | spec | effect |
//! |---|---|---|
//! | [`Fault::Status`] | `status=<code>` (`retry-after=<secs>`, `retry-after-date=<secs>`) | answer this status (the API's error envelope, S3's XML on storage) instead of running the handler |
//! | [`Fault::Reset`] | `reset` | TCP reset before any byte of the answer |
//! | [`Fault::Delay`] | `delay-ms=<ms>` | wait, then answer |
//! | [`Fault::SlowBody`] | `slow-body-ms=<ms>` (`chunk=<bytes>`, default 1024) | send the body in chunks with a pause between them |
//! | [`Fault::Truncate`] | `truncate` or `truncate=<bytes>` | send part of the body (half by default), then abort the connection |
//! | [`Fault::ExpiredUrl`] | `expired-url` | storage: 403 "Request has expired" |
//! | [`Fault::MissingEtag`] | `missing-etag` | storage: accept the PUT, send no `ETag` |
//! | [`Fault::HiddenEtag`] | `hidden-etag` | storage: send the `ETag` but do not expose it to a browser (CORS) |
//! | [`Fault::FailAfterCommit`] | `fail-after-commit=<code>` | run the handler (a finalize commits), then answer this status |
//! | [`Fault::ResetAfterCommit`] | `reset-after-commit` | run the handler, then reset the connection: an answer lost after the fact |
//! | [`Fault::ForceAsync`] | `force-async` | a query, table load or index creation answers 202 (a job or query run) |
//! | [`Fault::NotReady`] | `not-ready` (`retry-after=<secs>`) | a result answers 202 "pending" |
//! | [`Fault::Close`] | `close` | answer normally with `Connection: close`, then close |
//!
//! Modifiers: `times=<n>` (default 1), `always`, `skip=<n>`.
//!
//! # Other settings
//!
//! Everything is configured through [`Config`] / [`EmulatorBuilder`]: the accepted API keys
//! and seeded workspaces ([`EmulatorBuilder::api_key`], [`EmulatorBuilder::workspace_id`]),
//! uploads ([`EmulatorBuilder::presign`]`(false)` makes upload sessions answer 501
//! `PRESIGN_UNSUPPORTED`, as a server without presigning; [`EmulatorBuilder::single_put_max`],
//! [`EmulatorBuilder::min_part_size`] (lower it for fast multipart tests),
//! [`EmulatorBuilder::part_url_ttl`]), result sizes ([`EmulatorBuilder::preview_rows`],
//! [`EmulatorBuilder::max_json_result_bytes`], [`EmulatorBuilder::max_stored_rows`]), job
//! timing ([`EmulatorBuilder::job_step`], [`EmulatorBuilder::async_result_delay`]), and
//! [`Config::arrow_compression`], which makes every Arrow IPC stream the emulator writes
//! carry LZ4-frame or ZSTD compressed record batches ([`ArrowCompression`]). Arrow streams
//! written elsewhere (pyarrow fixtures, say) become results with
//! [`EmulatorHandle::store_arrow_result`] (or `POST /_emulator/results?database_id=DB`, or
//! the binary's `--arrow-result FILE`): the emulator serves them byte for byte for
//! `format=arrow`, faults included.
//!
//! # The binary
//!
//! `cargo install hotdata-emulator` (or `cargo run -p hotdata-emulator` in the SDK's
//! repository), then `hotdata-emulator --port 0`: it prints `listening http://127.0.0.1:PORT`
//! once it accepts connections, then `api key KEY  workspace ID`, and serves until killed.
//! `--help` lists every flag. The ones for testing clients:
//!
//! | flag | environment | what it does |
//! |---|---|---|
//! | `--port N`, `--host ADDR` | `HOTDATA_EMULATOR_PORT`, `HOTDATA_EMULATOR_HOST` | where to listen (default `127.0.0.1:8787`; port 0 is ephemeral) |
//! | `--api-key KEY`, `--workspace ID` (repeatable) | `HOTDATA_EMULATOR_API_KEYS`, `HOTDATA_EMULATOR_WORKSPACES` (comma-separated) | accepted keys, seeded workspaces (default `hd_emulator_key`, `ws_emulator`) |
//! | `--fault SPEC` (repeatable) | `HOTDATA_EMULATOR_FAULTS` (`;`-separated) | a fault rule active from the start, in the [`FaultRule::parse`] syntax |
//! | `--no-presign` | `HOTDATA_EMULATOR_PRESIGN=0` | upload sessions answer 501 `PRESIGN_UNSUPPORTED`; `POST /v1/files` works |
//! | `--single-put-max`, `--min-part-size`, `--default-part-size` (bytes), `--part-url-ttl-secs` | | upload shapes and presigned URL lifetime |
//! | `--preview-rows`, `--max-json-result-bytes`, `--max-stored-rows` | | result sizes |
//! | `--job-step-ms`, `--async-result-delay-ms` | | job and async result timing |
//! | `--arrow-compression none\|lz4\|zstd` | `HOTDATA_EMULATOR_ARROW_COMPRESSION` | compression of the Arrow streams written |
//! | `--arrow-result FILE` (repeatable) | | serve this Arrow IPC stream as a result (prints `arrow-result FILE RESULT_ID DATABASE_ID`) |
//! | `--control` | | the control routes below, with a random token (printed as `control token TOKEN`) |
//! | `--control-token TOKEN` | `HOTDATA_EMULATOR_CONTROL_TOKEN` | the control routes with this token |
//! | `--control-remote` | | let peers that are not loopback addresses use them |
//!
//! A test in another process (or a browser page) points its client at the printed URL with
//! the printed key and workspace, and changes faults while it runs through the control
//! routes: `curl -H "X-Emulator-Token: $TOKEN" -d 'op=query,status=429,retry-after=1'
//! http://127.0.0.1:PORT/_emulator/faults`.
//!
//! # Control routes
//!
//! A test that cannot reach the handle (a browser page, another process) drives the emulator
//! over HTTP, under `/_emulator/`. The routes are **off** unless a control token is set
//! ([`EmulatorBuilder::control_token`], [`EmulatorBuilder::control`], the binary's
//! `--control` / `--control-token`); off, they answer 404 like any unknown path. On:
//!
//! * a request whose peer is not a loopback address is refused with 403 `FORBIDDEN`, unless
//!   [`EmulatorBuilder::control_remote`] (`--control-remote`) allows other peers;
//! * every request must carry the token in `X-Emulator-Token`: without it 401
//!   `UNAUTHORIZED`, with a wrong one 403 `FORBIDDEN` (the usual
//!   `{"error":{"code","message"}}` envelope), and nothing happens. A foreign web page can
//!   neither read the token nor send the header without a CORS preflight, which the
//!   emulator answers (it allows `X-Emulator-Token` from any origin) but which gives it no
//!   token;
//! * control requests (and their preflights) are never faulted and never recorded in the
//!   request log, so the log shows only what the client under test sent.
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /_emulator/health` | | `200 {"ok":true}` |
//! | `GET /_emulator/faults` | | `200 {"faults":[{"rule","spec","seen","fired"}]}`: the active rules, oldest first |
//! | `POST /_emulator/faults` | rules: a spec (`--fault` syntax; several separated by `;` or new lines) or JSON (a rule object, a spec string, or an array of them) | `200 {"ok":true,"added":[{"rule","spec"}]}`; 400 when any rule does not parse (none is added) |
//! | `DELETE /_emulator/faults` | | `200 {"ok":true,"cleared":N}` |
//! | `GET /_emulator/requests[?operation=OP][&path=PREFIX]` | | `200 {"count":N,"requests":[record]}`, oldest first |
//! | `DELETE /_emulator/requests` | | `200 {"ok":true,"cleared":N}` |
//! | `GET /_emulator/uploads/{id}` | | `200` the stored object of a finalized upload (`application/octet-stream`); 404 otherwise |
//! | `POST /_emulator/results?database_id=DB` | an Arrow IPC stream | `201 {"result_id","rows"}`; 400 `INVALID_ARROW_STREAM` / `DATABASE_NOT_FOUND` / `BAD_REQUEST` |
//! | `POST /_emulator/reset[?only=faults,requests,data]` | | `200 {"ok":true,"reset":[...]}` (see [`EmulatorHandle::reset`]) |
//!
//! A rule's JSON form ([`FaultRule::to_json`], [`FaultRule::from_json`]) has the items of its
//! spec ([`FaultRule::parse`], [`FaultRule::to_spec`]) as members, e.g.
//! `{"op":"query","status":429,"retry-after":1,"times":2}` for
//! `op=query,status=429,retry-after=1,times=2`: both read into the same [`FaultRule`]
//! [`EmulatorHandle::inject`] takes. A request record is [`RequestRecord`] as JSON:
//! `{"method","uri","operation","status","had_authorization","workspace_id","body_len","fault","headers":[[name,value]]}`.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod api;
mod body;
mod control;
pub mod faults;
mod http;
mod load;
mod results;
mod router;
mod server;
mod sql;
mod state;
mod util;

/// The README's code blocks, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use faults::{Fault, FaultRule, RetryAfter, Target};

/// Default accepted API key.
pub const DEFAULT_API_KEY: &str = "hd_emulator_key";
/// Default seeded workspace id.
pub const DEFAULT_WORKSPACE_ID: &str = "ws_emulator";
/// 1 MiB.
pub const MIB: u64 = 1024 * 1024;

/// Body compression of the Arrow IPC streams the emulator writes (see
/// [`Config::arrow_compression`]).
///
/// It applies to every stream the emulator encodes itself: result downloads
/// (`GET /v1/results/{id}?format=arrow`) and `POST /v1/query` answered as
/// `application/vnd.apache.arrow.stream`. Streams stored with
/// [`EmulatorHandle::store_arrow_result`] are served as given, whatever this says.
///
/// Parses from (and displays as) `none`, `lz4` (also `lz4_frame`, `lz4-frame`) and `zstd`,
/// the values of the binary's `--arrow-compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ArrowCompression {
    /// Uncompressed record batches (the default).
    #[default]
    None,
    /// Every record batch (and dictionary batch) buffer compressed as an LZ4 frame
    /// (IPC codec `LZ4_FRAME`).
    Lz4Frame,
    /// Every record batch (and dictionary batch) buffer compressed with Zstandard
    /// (IPC codec `ZSTD`).
    Zstd,
}

impl ArrowCompression {
    /// The name `--arrow-compression` takes: `none`, `lz4` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArrowCompression::None => "none",
            ArrowCompression::Lz4Frame => "lz4",
            ArrowCompression::Zstd => "zstd",
        }
    }

    /// The IPC codec, for `IpcWriteOptions::try_with_compression`.
    pub(crate) fn ipc_type(self) -> Option<arrow_ipc::CompressionType> {
        match self {
            ArrowCompression::None => None,
            ArrowCompression::Lz4Frame => Some(arrow_ipc::CompressionType::LZ4_FRAME),
            ArrowCompression::Zstd => Some(arrow_ipc::CompressionType::ZSTD),
        }
    }
}

impl fmt::Display for ArrowCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ArrowCompression {
    type Err = String;

    /// `none`, `lz4` / `lz4_frame` / `lz4-frame`, or `zstd` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(ArrowCompression::None),
            "lz4" | "lz4_frame" | "lz4-frame" => Ok(ArrowCompression::Lz4Frame),
            "zstd" => Ok(ArrowCompression::Zstd),
            other => Err(format!("unknown Arrow compression `{other}` (expected none, lz4 or zstd)")),
        }
    }
}

/// Everything that can be configured. Construct with [`Config::default`] or through
/// [`Emulator::builder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to bind (default `127.0.0.1:0`, an ephemeral port).
    pub bind: SocketAddr,
    /// Accepted bearer tokens; the first is [`EmulatorHandle::api_key`].
    pub api_keys: Vec<String>,
    /// Seeded workspace ids (the first is [`EmulatorHandle::workspace_id`]).
    pub workspaces: Vec<String>,
    /// Organization public id reported for workspaces.
    pub organization_id: String,
    /// When false, upload sessions answer 501 `PRESIGN_UNSUPPORTED`; use `POST /v1/files`.
    pub presign: bool,
    /// Declared sizes up to this get a `single` session (default 8 MiB).
    pub single_put_max: u64,
    /// Smallest non-final part (default 5 MiB; lower it for fast tests).
    pub min_part_size: u64,
    /// Largest part (default 5 GiB).
    pub max_part_size: u64,
    /// Part size when the client gives no hint (default 8 MiB).
    pub default_part_size: u64,
    /// Most parts per upload (default 10,000).
    pub max_parts: u32,
    /// Largest upload (default 16 GiB).
    pub max_upload_bytes: u64,
    /// Lifetime of presigned URLs (default 30 min).
    pub part_url_ttl: Duration,
    /// Rows returned inline by `POST /v1/query` before `truncated` (default 1,000).
    pub preview_rows: usize,
    /// Largest JSON result page before 413 `RESULT_TOO_LARGE` (default 64 MiB).
    pub max_json_result_bytes: usize,
    /// Largest inline `data` of a load before 413 (default 16 MiB).
    pub max_inline_load_bytes: usize,
    /// Each job phase (pending, running) lasts this long (default 50 ms).
    pub job_step: Duration,
    /// Async query results stay not-ready for this long (default 100 ms).
    pub async_result_delay: Duration,
    /// Rows kept across stored results before the oldest are evicted (default 50 million).
    pub max_stored_rows: usize,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// Compression of the record batches in the Arrow IPC streams the emulator writes
    /// (default [`ArrowCompression::None`]).
    pub arrow_compression: ArrowCompression,
    /// The token the control routes (`/_emulator/*`, see the [crate docs](crate#control-routes))
    /// require in `X-Emulator-Token`. `None` (the default) turns them off: they answer 404.
    /// Non-empty visible ASCII.
    pub control_token: Option<String>,
    /// Whether the control routes also answer peers that are not loopback addresses
    /// (default false: 403 for them).
    pub control_remote: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            workspaces: vec![DEFAULT_WORKSPACE_ID.to_string()],
            organization_id: "org_emulator".to_string(),
            presign: true,
            single_put_max: 8 * MIB,
            min_part_size: 5 * MIB,
            max_part_size: 5 * 1024 * MIB,
            default_part_size: 8 * MIB,
            max_parts: 10_000,
            max_upload_bytes: 16 * 1024 * MIB,
            part_url_ttl: Duration::from_secs(30 * 60),
            preview_rows: 1_000,
            max_json_result_bytes: 64 * MIB as usize,
            max_inline_load_bytes: 16 * MIB as usize,
            job_step: Duration::from_millis(50),
            async_result_delay: Duration::from_millis(100),
            max_stored_rows: 50_000_000,
            faults: Vec::new(),
            arrow_compression: ArrowCompression::None,
            control_token: None,
            control_remote: false,
        }
    }
}

/// Entry point: `Emulator::builder().start()`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with default settings.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder { config: Config::default() }
    }

    /// Start with default settings.
    pub fn start() -> std::io::Result<EmulatorHandle> {
        Emulator::builder().start()
    }
}

/// Configures and starts an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    config: Config,
}

impl EmulatorBuilder {
    /// Start from an explicit configuration.
    pub fn from_config(config: Config) -> Self {
        EmulatorBuilder { config }
    }

    /// Bind to this port on 127.0.0.1 (0 = ephemeral).
    pub fn port(mut self, port: u16) -> Self {
        self.config.bind.set_port(port);
        self
    }

    /// Bind to this address.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.config.bind = addr;
        self
    }

    /// Replace the accepted API keys with this one.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_keys = vec![key.into()];
        self
    }

    /// Accept one more API key.
    pub fn add_api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_keys.push(key.into());
        self
    }

    /// Replace the seeded workspace with this id.
    pub fn workspace_id(mut self, id: impl Into<String>) -> Self {
        self.config.workspaces = vec![id.into()];
        self
    }

    /// Seed one more workspace.
    pub fn add_workspace(mut self, id: impl Into<String>) -> Self {
        self.config.workspaces.push(id.into());
        self
    }

    /// Whether presigned uploads are supported (false: 501 `PRESIGN_UNSUPPORTED`).
    pub fn presign(mut self, supported: bool) -> Self {
        self.config.presign = supported;
        self
    }

    /// Declared sizes up to this get a `single` session.
    pub fn single_put_max(mut self, bytes: u64) -> Self {
        self.config.single_put_max = bytes;
        self
    }

    /// Smallest non-final part size (and the floor of the part-size clamp).
    pub fn min_part_size(mut self, bytes: u64) -> Self {
        self.config.min_part_size = bytes;
        self
    }

    /// Part size used when the client sends no hint.
    pub fn default_part_size(mut self, bytes: u64) -> Self {
        self.config.default_part_size = bytes;
        self
    }

    /// Largest upload accepted.
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.config.max_upload_bytes = bytes;
        self
    }

    /// Lifetime of presigned URLs.
    pub fn part_url_ttl(mut self, ttl: Duration) -> Self {
        self.config.part_url_ttl = ttl;
        self
    }

    /// Inline preview rows of `POST /v1/query`.
    pub fn preview_rows(mut self, rows: usize) -> Self {
        self.config.preview_rows = rows;
        self
    }

    /// Largest JSON result page before 413.
    pub fn max_json_result_bytes(mut self, bytes: usize) -> Self {
        self.config.max_json_result_bytes = bytes;
        self
    }

    /// Largest inline `data` of a load before 413.
    pub fn max_inline_load_bytes(mut self, bytes: usize) -> Self {
        self.config.max_inline_load_bytes = bytes;
        self
    }

    /// Duration of each job phase (pending, then running).
    pub fn job_step(mut self, step: Duration) -> Self {
        self.config.job_step = step;
        self
    }

    /// How long async query results stay not ready.
    pub fn async_result_delay(mut self, delay: Duration) -> Self {
        self.config.async_result_delay = delay;
        self
    }

    /// Rows kept across stored results before the oldest are evicted.
    pub fn max_stored_rows(mut self, rows: usize) -> Self {
        self.config.max_stored_rows = rows;
        self
    }

    /// Add a fault rule active from the start.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.config.faults.push(rule);
        self
    }

    /// Compress the record batches of every Arrow IPC stream the emulator writes (result
    /// downloads and `POST /v1/query` as Arrow) with this codec.
    pub fn arrow_compression(mut self, compression: ArrowCompression) -> Self {
        self.config.arrow_compression = compression;
        self
    }

    /// Turn the control routes (`/_emulator/*`, see the [crate docs](crate#control-routes)) on,
    /// guarded by this token (sent as `X-Emulator-Token`). In-process tests rarely need
    /// them: the handle's methods do the same.
    pub fn control_token(mut self, token: impl Into<String>) -> Self {
        self.config.control_token = Some(token.into());
        self
    }

    /// Turn the control routes on with a random token (unless one is set already); read it
    /// with [`EmulatorHandle::control_token`].
    pub fn control(mut self) -> Self {
        self.config.control_token.get_or_insert_with(util::random_token);
        self
    }

    /// Whether the control routes also answer peers that are not loopback addresses
    /// (default false: they are refused with 403).
    pub fn control_remote(mut self, allow: bool) -> Self {
        self.config.control_remote = allow;
        self
    }

    /// The configuration so far.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bind, start the server thread, and return once it accepts connections.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the control token is empty or not visible ASCII; otherwise what
    /// binding the address or starting the thread fails with.
    pub fn start(self) -> std::io::Result<EmulatorHandle> {
        if let Some(t) = &self.config.control_token
            && (t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the control token must be non-empty visible ASCII (no spaces)",
            ));
        }
        let listener = TcpListener::bind(self.config.bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let shared = Arc::new(server::Shared::new(self.config.clone(), base_url.clone()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let sh = shared.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new().name(format!("hotdata-emulator-{}", addr.port())).spawn(
            move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .max_blocking_threads(8)
                    .thread_name("hotdata-emulator-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            server::serve(l, sh, stop_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            },
        )?;
        ready_rx.recv().map_err(|_| std::io::Error::other("emulator thread exited"))??;
        Ok(EmulatorHandle { shared, base_url, addr, stop: Some(stop_tx), thread: Some(thread) })
    }
}

/// One request as the emulator saw it (see [`EmulatorHandle::requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The operationId it was routed to (`storage_put`, `cors_preflight`, `unknown`, ...).
    pub operation: String,
    /// Status answered (0 when the connection was reset instead).
    pub status: u16,
    /// Whether an `Authorization` header was present.
    pub had_authorization: bool,
    /// The `X-Workspace-Id` header, if any.
    pub workspace_id: Option<String>,
    /// Request body length.
    pub body_len: usize,
    /// The fault applied, if any.
    pub fault: Option<String>,
    /// Every request header (lower-case names, in arrival order).
    pub headers: Vec<(String, String)>,
}

impl RequestRecord {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The record as `GET /_emulator/requests` answers it: an object with the same field
    /// names, `headers` as `[[name, value], ...]`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "method": self.method,
            "uri": self.uri,
            "operation": self.operation,
            "status": self.status,
            "had_authorization": self.had_authorization,
            "workspace_id": self.workspace_id,
            "body_len": self.body_len,
            "fault": self.fault,
            "headers": self.headers,
        })
    }
}

/// What an upload session was created with (see [`EmulatorHandle::upload_metadata`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadMetadata {
    /// The `content_type` of its `POST /v1/uploads`, if any.
    pub content_type: Option<String>,
    /// The `filename` of its `POST /v1/uploads`, if any.
    pub filename: Option<String>,
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    shared: Arc<server::Shared>,
    base_url: String,
    addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash, no `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first accepted API key.
    pub fn api_key(&self) -> &str {
        &self.shared.cfg.api_keys[0]
    }

    /// The first seeded workspace id.
    pub fn workspace_id(&self) -> &str {
        &self.shared.cfg.workspaces[0]
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.cfg
    }

    /// Add a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    /// Remove every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// The active fault rules, oldest first (spent ones included), as
    /// `GET /_emulator/faults` lists them.
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.shared.faults).rules().map(|(r, _, _)| r.clone()).collect()
    }

    /// The control token (`X-Emulator-Token`), when the control routes are on.
    pub fn control_token(&self) -> Option<&str> {
        self.shared.cfg.control_token.as_deref()
    }

    /// Back to how the emulator started, as `POST /_emulator/reset` does: the fault rules
    /// are the startup ones again ([`Config::faults`], none fired), the request log is
    /// empty, and every workspace is the seeded one, empty (databases, connections, tables,
    /// results, query runs, saved queries, jobs, uploads, embedding providers and usage
    /// counters are gone, `--arrow-result` results included). Ids keep counting, so an id
    /// from before is never reused. Configuration (API keys, limits, the control token) is
    /// unchanged.
    pub fn reset(&self) {
        self.shared.reset(control::ResetScope::ALL);
    }

    /// The bytes of a finalized upload as storage assembled them (for checking that an
    /// upload arrived byte for byte), or `None` if there is no such finalized upload.
    pub fn uploaded_object(&self, upload_id: &str) -> Option<bytes::Bytes> {
        self.shared.uploaded_object(upload_id)
    }

    /// The content type and file name upload `upload_id` was created with (the
    /// `content_type` and `filename` of its `POST /v1/uploads`), finalized or not, or `None`
    /// if there is no such upload.
    pub fn upload_metadata(&self, upload_id: &str) -> Option<UploadMetadata> {
        self.shared.upload_metadata(upload_id)
    }

    /// Store an Arrow IPC stream as a ready result of database `database_id` (in whichever
    /// workspace holds it) and return the new result id.
    ///
    /// The bytes are decoded once (schema, record batches, rows) to check they are a
    /// readable Arrow IPC stream with nothing after its end, and for the result's metadata.
    /// `GET /v1/results/{id}?format=arrow` (with `X-Database-Id: database_id`, no `offset`,
    /// no `limit` below the row count) then answers exactly these bytes, with the usual
    /// `Content-Type` and `X-Total-Row-Count`, and fault rules apply to it as to any result
    /// body. Windows (`offset`/`limit`) are re-encoded from the decoded batches. JSON, CSV,
    /// Markdown and Parquet are rendered from the decoded batches when every column is
    /// Int64, Float64, Boolean, Utf8 or Binary; otherwise they answer 400
    /// `UNSUPPORTED_FOR_ARROW_FIXTURE`, except JSON/CSV/Markdown windows with no rows (such
    /// as the `?limit=0` status poll), which need no cells. Such results are never evicted
    /// by `max_stored_rows` and do not count against it.
    ///
    /// The same is available over HTTP as `POST /_emulator/results?database_id=DB`.
    ///
    /// # Errors
    ///
    /// A message when the bytes are not a readable Arrow IPC stream or the database does
    /// not exist.
    pub fn store_arrow_result(&self, database_id: &str, stream: bytes::Bytes) -> Result<String, String> {
        api::queries::store_arrow(&self.shared, database_id, stream).map(|(id, _)| id).map_err(|e| e.message)
    }

    /// Create a database named `name` in the first workspace, or find the one of that name,
    /// as `POST /v1/databases` with `{"name": name, "if_not_exists": true}`, and return its
    /// id.
    ///
    /// # Errors
    ///
    /// The API's error message when the database cannot be created.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let mut headers = ::http::HeaderMap::new();
        let auth = format!("Bearer {}", self.api_key());
        for (k, v) in [("authorization", auth.as_str()), ("x-workspace-id", self.workspace_id())] {
            let v = ::http::HeaderValue::from_str(v).map_err(|e| e.to_string())?;
            headers.insert(k, v);
        }
        let body = serde_json::json!({"name": name, "if_not_exists": true}).to_string();
        let req = crate::http::Req {
            method: ::http::Method::POST,
            path: "/v1/databases".into(),
            query: Vec::new(),
            headers,
            body: bytes::Bytes::from(body),
            force_async: false,
        };
        let routed = router::route(&req.method, &req.path);
        let resp = router::dispatch(&self.shared, &routed, &req);
        let json: serde_json::Value = match resp.body {
            crate::http::Body::Full(b) => serde_json::from_slice(&b).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        match json["id"].as_str() {
            Some(id) if resp.status < 300 => Ok(id.to_string()),
            _ => Err(json["error"]["message"].as_str().unwrap_or("cannot create the database").to_string()),
        }
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Stop the server and wait for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Lock a mutex, ignoring poisoning (a panicking handler must not wedge the emulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
