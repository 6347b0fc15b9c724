//! A local, in-memory emulator of the Hotdata HTTP API.
//!
//! It serves all 63 operations of the current API statefully, runs real SQL (SQLite via
//! rusqlite) over managed tables loaded from CSV, JSON and Parquet uploads, serves results
//! as JSON and Arrow IPC, emulates presigned object storage for uploads, and can inject
//! faults. It is meant for tests, examples and benchmarks: no account, no network. Use it as
//! a library ([`Emulator`]) from your own tests, or as a process (the `hotdata-emulator`
//! binary, see [below](crate#the-binary)). A test that cannot start one itself (a browser
//! page) asks a running emulator for an isolated [instance](crate#instances) of its own.
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
//! Rules apply from the start ([`EmulatorBuilder::fault`], [`Settings::faults`]) or from when
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
//! Everything is configured through [`Config`] / [`EmulatorBuilder`]: where it listens and
//! whom it lets in (the address, the control token), the accepted API keys
//! and seeded workspaces ([`EmulatorBuilder::api_key`], [`EmulatorBuilder::workspace_id`]),
//! uploads ([`EmulatorBuilder::presign`]`(false)` makes upload sessions answer 501
//! `PRESIGN_UNSUPPORTED`, as a server without presigning; [`EmulatorBuilder::single_put_max`],
//! [`EmulatorBuilder::min_part_size`] (lower it for fast multipart tests),
//! [`EmulatorBuilder::part_url_ttl`]), result sizes ([`EmulatorBuilder::preview_rows`],
//! [`EmulatorBuilder::max_json_result_bytes`], [`EmulatorBuilder::max_stored_rows`]), job
//! timing ([`EmulatorBuilder::job_step`], [`EmulatorBuilder::async_result_delay`]), and
//! [`Settings::arrow_compression`], which makes every Arrow IPC stream the emulator writes
//! carry LZ4-frame or ZSTD compressed record batches ([`ArrowCompression`]). Arrow streams
//! written elsewhere (pyarrow fixtures, say) become results with
//! [`EmulatorHandle::store_arrow_result`] (or `POST /_emulator/results?database_id=DB`, or
//! the binary's `--arrow-result FILE`): the emulator serves them byte for byte for
//! `format=arrow`, faults included.
//!
//! All of it but the address, keys and control token is one [`Settings`] value (a
//! [`Config`] holds it and reads its fields as its own): the builder's setters write it,
//! [`EmulatorBuilder::settings`] takes a whole one, and its JSON form ([`Settings::to_json`],
//! [`Settings::from_json`]) is the body that starts an [instance](crate#instances) with it.
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
//! | `POST /_emulator/instances` | [`Settings`] as JSON, or nothing for the defaults | `201 {"id","base_url","api_key","workspace_id"}` ([`InstanceInfo`]); 400 `BAD_REQUEST` naming a setting that is unknown or wrong; 429 `TOO_MANY_INSTANCES` (see [below](crate#instances)) |
//! | `GET /_emulator/instances` | | `200 {"count":N,"max":M,"instances":[{"id","base_url","api_key","workspace_id"}]}`, oldest first |
//! | `DELETE /_emulator/instances/{id}` | | `200 {"ok":true,"stopped":"ID"}` once it has stopped; 404 `NOT_FOUND` for no such instance |
//! | `DELETE /_emulator/instances` | | `200 {"ok":true,"stopped":N}`: every instance |
//!
//! A rule's JSON form ([`FaultRule::to_json`], [`FaultRule::from_json`]) has the items of its
//! spec ([`FaultRule::parse`], [`FaultRule::to_spec`]) as members, e.g.
//! `{"op":"query","status":429,"retry-after":1,"times":2}` for
//! `op=query,status=429,retry-after=1,times=2`: both read into the same [`FaultRule`]
//! [`EmulatorHandle::inject`] takes. A request record is [`RequestRecord`] as JSON:
//! `{"method","uri","operation","status","had_authorization","workspace_id","body_len","fault","headers":[[name,value]]}`;
//! [`RequestRecord::log_from_json`] reads the answer of `GET /_emulator/requests` back into
//! records (the route writes it with [`RequestRecord::log_to_json`]).
//!
//! # Instances
//!
//! A test that cannot start an emulator in process (a browser page, above all) but needs one
//! of its own, with its own settings (one per scenario, say), asks a running emulator for an
//! **instance**: `POST /_emulator/instances` with a [`Settings`] JSON object as the body
//! (`{"preview_rows":5,"min_part_size":16,"faults":["op=query,status=429,times=2"]}`; members
//! left out keep their defaults, an empty body is all defaults) starts an independent
//! emulator in the same process and answers `201` with where it is:
//! `{"id":"inst_1","base_url":"http://127.0.0.1:PORT","api_key":"…","workspace_id":"…"}`
//! ([`InstanceInfo::from_json`] reads it).
//!
//! * It has its own state: data, fault rules, request log and ids; nothing crosses between
//!   it, its parent and other instances.
//! * It listens on its own ephemeral port on the parent's address, takes the parent's API
//!   keys, workspaces and control token and gating (its control routes are on: faults,
//!   requests, uploads, results, reset), and runs no instances of its own (its
//!   `/_emulator/instances` answers 404).
//! * `DELETE /_emulator/instances/{id}` stops it (its port is closed when the answer comes),
//!   `DELETE /_emulator/instances` stops them all, and they all stop with the parent: when its
//!   [`EmulatorHandle`] is dropped, or its process ends. [`EmulatorHandle::reset`] leaves them
//!   alone.
//! * At most [`Config::max_instances`] run at once (default 64, the binary's
//!   `--max-instances`), so that a runaway test cannot exhaust the machine: past it, `POST`
//!   answers 429 `TOO_MANY_INSTANCES` until one is stopped. Ids count up (`inst_1`, `inst_2`,
//!   ...) and are never reused.
//! * A body member that is not a setting, or a value of the wrong type or range, is a 400
//!   `BAD_REQUEST` whose message names it; nothing starts.
//!
//! In Rust, the body is [`Settings::to_json`] of settings built with the same setters as the
//! builder's, so one scenario can run in process (`Emulator::builder().settings(s)`) and in a
//! browser (`POST /_emulator/instances` with `s.to_json()`):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hotdata_emulator::{Emulator, FaultRule, InstanceInfo, Settings};
//!
//! let settings = Settings::default()
//!     .preview_rows(2)
//!     .fault(FaultRule::parse("op=count_databases,status=503")?);
//! let parent = Emulator::builder().control().start()?;
//! let token = parent.control_token().unwrap();
//!
//! // What a browser page does with fetch().
//! let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
//! let answer = agent
//!     .post(format!("{}/_emulator/instances", parent.base_url()))
//!     .header("x-emulator-token", token)
//!     .send(settings.to_json().to_string())?
//!     .body_mut()
//!     .read_to_string()?;
//! let instance = InstanceInfo::from_json(&serde_json::from_str(&answer)?)?;
//! let count = format!("{}/v1/databases/count", instance.base_url);
//! let status = |url: &str| -> Result<u16, ureq::Error> {
//!     let req = agent.get(url).header("authorization", format!("Bearer {}", instance.api_key));
//!     Ok(req.header("x-workspace-id", &instance.workspace_id).call()?.status().as_u16())
//! };
//! assert_eq!(status(&count)?, 503, "the instance's startup fault");
//! assert_eq!(status(&format!("{}/v1/databases/count", parent.base_url()))?, 200, "not the parent's");
//!
//! let stop = format!("{}/_emulator/instances/{}", parent.base_url(), instance.id);
//! assert_eq!(agent.delete(stop).header("x-emulator-token", token).call()?.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! * `server` (default): the emulator itself ([`Emulator`], [`EmulatorBuilder`],
//!   [`EmulatorHandle`], [`Config`]) and the `hotdata-emulator` binary, with tokio, hyper,
//!   SQLite (bundled), Arrow and Parquet.
//! * Without it (`default-features = false`) the crate is the model a test that drives an
//!   emulator remotely needs, with no dependency but `serde_json`, and it builds for
//!   `wasm32-unknown-unknown`: the fault model ([`FaultRule`], [`Fault`], [`Target`],
//!   [`RetryAfter`]: spec and JSON forms), [`RequestRecord`] (and the request log's JSON),
//!   [`Settings`] (and [`ArrowCompression`]) and [`InstanceInfo`], with their JSON forms.
//!
//! ```toml
//! [dependencies]
//! hotdata-emulator = { version = "0.1", default-features = false } # the model only
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "server")]
mod api;
#[cfg(feature = "server")]
mod body;
#[cfg(feature = "server")]
mod control;
#[cfg(feature = "server")]
mod emulator;
pub mod faults;
#[cfg(feature = "server")]
mod http;
mod instance;
#[cfg(feature = "server")]
mod load;
mod record;
#[cfg(feature = "server")]
mod results;
#[cfg(feature = "server")]
mod router;
#[cfg(feature = "server")]
mod server;
mod settings;
#[cfg(feature = "server")]
mod sql;
#[cfg(feature = "server")]
mod state;
#[cfg(feature = "server")]
mod util;

/// The README's code blocks, compiled and run as doctests so they stay true.
#[cfg(all(doctest, feature = "server"))]
#[doc = include_str!("../README.md")]
mod readme {}

#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use emulator::{Config, Emulator, EmulatorBuilder, EmulatorHandle, UploadMetadata};
pub use faults::{Fault, FaultRule, RetryAfter, Target};
pub use instance::InstanceInfo;
pub use record::RequestRecord;
pub use settings::{ArrowCompression, Settings};

/// Default accepted API key.
pub const DEFAULT_API_KEY: &str = "hd_emulator_key";
/// Default seeded workspace id.
pub const DEFAULT_WORKSPACE_ID: &str = "ws_emulator";
/// 1 MiB.
pub const MIB: u64 = 1024 * 1024;

/// Lock a mutex, ignoring poisoning (a panicking handler must not wedge the emulator).
#[cfg(feature = "server")]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
