//! # hotdata-core: the sans-IO core of the Hotdata SDK
//!
//! This crate is the whole Hotdata API (a hosted SQL data platform: workspaces,
//! connections, databases and managed tables, SQL queries, results, query runs, saved
//! queries, uploads, indexes, jobs, embedding providers, database context, usage) without
//! any I/O of its own. It has no sockets, no async runtime, never reads a clock and draws no
//! random numbers, so it builds for `wasm32-unknown-unknown` and runs the same logic on
//! every platform. Backends plug in the bytes:
//!
//! | crate | mode | HTTP stack |
//! |---|---|---|
//! | `hotdata-ureq` | blocking | ureq 3 + rustls (no tokio anywhere) |
//! | `hotdata-reqwest` | async | reqwest + rustls on tokio |
//! | `hotdata-wasm` | async | the browser's `fetch` (`wasm32-unknown-unknown`) |
//! | your own | either | implement [`BlockingTransport`] or [`AsyncTransport`] |
//!
//! ## Layers
//!
//! ```text
//!   client.databases().list().limit(10)      resources (generated): group operations by tag
//!                │ returns
//!   Call<Mode, ops::ListDatabases>           a request + per-call options (timeout, retry, ...)
//!                │ .send() / .await
//!   client: prepare ─ token ─ attempt loop   shared driver: auth, workspace, UA, retries, tracing
//!                │                 │
//!   Endpoint (generated)     RetryState      pure: path/query/headers/body, decode by status;
//!                │                 │         pure: retry decisions from outcome + time
//!   BlockingTransport / AsyncTransport       backends: move bytes, classify failures
//!   BlockingRuntime / AsyncRuntime           backends: clock and sleep
//! ```
//!
//! - [`models`]: one type per schema. Open enums (`Other(String)`), [`Patch`] for tri-state
//!   update fields, [`Cell`] for lossless result cells.
//! - [`ops`]: one request type per operation implementing [`Endpoint`], and the static
//!   [`Operation`] descriptors ([`ops::ALL`]): method, path, parameters, body, responses per
//!   status, idempotency, workspace scope. [`DynamicRequest`] runs any operation by its id.
//! - [`client`]: [`Client`], [`Call`], pagination ([`Call::pages`] as an `Iterator` or a
//!   `Stream`).
//! - [`retry`]: [`RetryPolicy`] and the pure [`RetryState::decide`].
//! - [`transport`] and [`runtime`]: the traits a backend implements; [`transport`]'s
//!   `error` leaf holds [`TransportError`], which bodies ([`body`]) and [`Error`] read. The
//!   private `wire` leaf holds what is read off a response without the rest of the core
//!   ([`RawResponse`], `Retry-After`, `Link: rel="next"`), so errors, retries and endpoints
//!   depend on it and not on one another in a circle.
//! - [`sql`]: the one-call query, [`Client::sql`]: runs a statement and returns **all** its
//!   rows (JSON-like cells, your own types, Arrow batches collected or streamed), resolving a
//!   `202` and following a truncated answer through one Arrow stream, under [`FetchLimits`];
//!   [`Client::query`] is the raw call whose inline answer may be a preview.
//! - [`prelude`]: the everyday types in one `use`; each backend re-exports it at its root.
//! - [`results`]: stored results in any format, streamed, with the `202` (not ready) and
//!   `409` (failed) answers typed; [`lifecycle`]: waiting for results, query runs and jobs
//!   with a pure poller. With the `arrow` feature, `arrow` (a push Arrow IPC decoder, results
//!   and queries as record batches, whole or streamed; its `framer` module reads each
//!   message's framing, buffer bounds and declared decompressed sizes before arrow-ipc does)
//!   and `arrow_rows` (batches as lossless JSON cells or rows of any serde type).
//! - [`upload`]: direct-to-storage uploads of any size (`client.upload_file(..)`), as a
//!   sans-IO [`upload::UploadMachine`] with a blocking and an async driver around one
//!   shared driver core (its `driver` module); every source type and the one opened form
//!   the drivers read live in its `source` module.
//! - [`Error`]: the one error type ([`upload::UploadError`] for uploads).
//!
//! ## A call, start to end
//!
//! 1. The endpoint writes its path, query and headers; the client adds `User-Agent`,
//!    `Accept`, and `X-Workspace-Id` on the 60 workspace-scoped operations (missing: a
//!    [`ErrorKind::Config`] error before anything is sent).
//! 2. Per attempt, the bearer token is taken from the API key or asked from the token
//!    provider (a provider failure ends the call; nothing is sent unauthenticated).
//! 3. The transport sends it with the call's timeout and returns the head and body chunks.
//!    A streamed answer (a download, an Arrow result or query) is bounded by the timeout
//!    until its head only, then by [`Config::body_idle_timeout`] (no byte for 60 s).
//! 4. [`RetryState::decide`] looks at the status or the transport failure kind, the
//!    operation's [`Idempotency`], the budget and `Retry-After`; the driver sleeps through
//!    the runtime and tries again, or stops.
//! 5. The endpoint decodes the answer by status into its output type, or an [`Error`]
//!    carrying status, server code and message, and the operation id.
//!
//! ## An upload, start to end
//!
//! ```text
//!   client.upload_file(source, options)     drivers (blocking: detached threads; async: a join
//!                │                          set of futures, no spawning): move bytes, sleep
//!   DriverCore  next / answer               shared by both drivers: actions into work,
//!                │                          answers to handle_*, events, cancel, stall error
//!   UploadMachine  poll_action / handle_*   pure: session shape, part slicing, in-flight and
//!                │                          memory bounds, two retry tiers, deadlines, finalize
//!   ├─ create session, mint part URLs, finalize (once): endpoints sent through Call, with
//!   │  auth and workspace
//!   └─ storage PUTs: straight to the transport, only Content-Length + the session's headers
//! ```
//!
//! The machine asks for byte ranges (or the next bytes of a stream) of the source and for
//! requests to be sent, and is told their outcomes with the time (and, optionally, how much
//! of each PUT's body the transport has read: `handle_sent`, which makes progress
//! byte-granular); it answers with progress events and, once nothing is in flight (a cancel
//! or a failure no retry heals cuts off what is), the finalized upload or an
//! [`upload::UploadError`], which keeps the finished work as an [`upload::ResumeState`]
//! (finalize included: one that may have arrived is never re-sent on its own). Sources: paths, bytes, readers, streams,
//! and any [`upload::AsyncRangeSource`] (a browser `Blob`, read part by part). On
//! `501 PRESIGN_UNSUPPORTED` the `legacy` feature can send the source to `POST /v1/files` in
//! one streamed request ([`RequestBody::Streaming`]).
//!
//! ## A streamed Arrow result, start to end
//!
//! The transport's body goes to `arrow::ArrowDecoder` (feature `arrow`), a push
//! decoder over arrow-ipc's `StreamDecoder` that also follows the IPC framing
//! (`wanted()`: how many bytes complete the current length word, metadata or batch body).
//! The framing is read ahead of arrow-ipc, which is only handed what has been checked: a
//! batch whose buffers leave its body, a codec this build lacks, or compressed buffers that
//! declare more decompressed bytes than [`ArrowLimits`] allows stop the stream with an error
//! before arrow-ipc would panic or allocate.
//! An async body's chunks are pushed as they come, without a copy. A blocking body that is
//! a `Read` ([`BlockingBody::from_reader`]) is read a whole batch body at a time
//! ([`BlockingBody::next_sized`]), straight into the buffer the batch's arrays then point
//! into: the previous batch's buffer once the caller has dropped that batch, so a loop that
//! handles one batch at a time reads every batch into the same memory (no allocation, no
//! zeroing). The end of the body must be the stream's end-of-stream marker: anything
//! shorter is an error, never a short result; a corrupt stream is an error too, never a
//! panic on native targets (see the `arrow` module).
//!
//! A whole result the SDK fetches into memory on its own (the one-call queries, following
//! a truncated answer, a stored result once ready) is capped by [`FetchLimits`]
//! ([`Config::fetch_limits`]: 1,000,000 rows and 64 MiB by default), checked against any
//! total announced before the fetch and while the body is read; a stream the caller reads
//! batch by batch has no cap (it holds one batch at a time).
//!
//! ## Plugging in a backend
//!
//! Implement [`BlockingTransport`] (or [`AsyncTransport`]) on your HTTP client: turn the
//! [`HttpRequest`] into your library's request, apply [`SendOptions::timeout`] (when
//! [`SendOptions::body_idle_timeout`] is set, only until the response head, and then that
//! idle timeout to the body: a streamed result must not die at the whole-request timeout
//! however healthy the link), return the
//! status, headers and body chunks, and map failures to a [`TransportErrorKind`] by where
//! they left the request (a connect timeout never sent anything: `Connect`; a rejected TLS
//! certificate is `Tls`, permanent; when unsure whether the request left, say it may have:
//! `NoResponse`, never `Connect`). Send a [`RequestBody::Streaming`] body as it is read (or
//! refuse it as a `Request` failure), and honour [`SendOptions::connect_timeout`] when your
//! library can set it per request. A request marked [`SendOptions::storage`] (a part PUT to
//! a presigned URL) goes out with exactly its own headers, none of a client's defaults
//! (framing aside: where your library supports `Expect: 100-continue`, send a storage PUT
//! with a body with it, because object storage refuses a bad signature or an expired URL
//! from the head and closes without reading the body, and a client still writing loses the
//! answer; `hotdata-ureq` does). A
//! request marked [`SendOptions::decompress`] may be sent with `Accept-Encoding: gzip,
//! deflate` and its body decoded (or the flag ignored: then nothing is compressed); any
//! other body is handed back as it arrived, `Content-Encoding` included. A
//! transport that cannot stream request bodies says so
//! ([`BlockingTransport::supports_streaming_bodies`],
//! [`AsyncTransport::supports_streaming_bodies`]) and is never handed one. A blocking
//! transport whose response body is a `Read` hands it over with [`BlockingBody::from_reader`]
//! (the core then chooses read sizes). A transport that sees only the headers a cross-origin
//! server exposed (a browser) marks responses with [`CorsFilteredHeaders`]. Implement
//! [`BlockingRuntime`] (or [`AsyncRuntime`]) with your clock and sleep. Then
//! [`BlockingClient::new`]`(config, transport, runtime, "my-backend")`. No protocol logic
//! belongs in a backend: `examples/hyper_transport.rs` in the repository is a complete one in
//! about 110 lines.
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `arrow` | `arrow` and `arrow_rows`, with both IPC buffer codecs (`arrow-minimal` + `arrow-lz4` + `arrow-zstd`) |
//! | `arrow-minimal` | Arrow decoding without codecs: a compressed stream is an error naming the feature to add |
//! | `arrow-lz4` | LZ4_FRAME-compressed batches (lz4_flex, pure Rust) |
//! | `arrow-zstd` | ZSTD-compressed batches (zstd's C library; for wasm32 it needs clang) |
//! | `legacy` | operations the hosted service retired, and uploads through `/v1/files` |
//! | `serde` | `Serialize`/`Deserialize` for [`upload::ResumeState`]: save a failed upload, resume it after a restart |
//! | `test-util` | [`testing`]: a scripted transport and a manual clock |
//!
//! ## Testing without I/O
//!
//! With the `test-util` feature, [`testing`] provides a scripted transport and a manual
//! runtime whose sleeps advance time instantly, so retry timing is tested exactly.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
// On wasm the client's shared state holds `!Send` browser handles (token providers,
// transports) by design: there is one thread, and `Arc` keeps one type for both targets.
#![cfg_attr(target_family = "wasm", allow(clippy::arc_with_non_send_sync))]

#[cfg(feature = "arrow-minimal")]
pub mod arrow;
#[cfg(feature = "arrow-minimal")]
pub mod arrow_rows;
pub mod body;
pub mod client;
pub mod config;
pub mod endpoint;
pub mod error;
mod generated;
mod json_path;
pub mod lifecycle;
pub mod models;
pub mod prelude;
pub mod results;
pub mod retry;
pub mod runtime;
pub mod sql;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod transport;
pub mod upload;
mod wire;

/// One request type per API operation, with its [`Endpoint`] impl, and the static
/// [`Operation`] descriptors; [`ops::ALL`] lists all 63.
pub mod ops {
    pub use crate::generated::operations::*;
}

/// Resource handles returned by the client (`client.databases()`, ...).
pub mod resources {
    pub use crate::generated::resources::*;
}

/// Operations the hosted service retired (secrets, connection types, refresh, connection
/// health, cache purges, `/v1/files`), for self-hosted servers that still serve them. All
/// are deprecated.
#[cfg(feature = "legacy")]
pub mod legacy {
    pub use crate::generated::legacy::*;
}

pub use body::{AsyncBody, BlockingBody, RequestBody, StreamingBody};
pub use client::{Async, AsyncClient, Blocking, BlockingClient, Call, Client, PageStream, Pages, VERSION};
pub use config::{
    ArrowLimits, AsyncTokenProvider, Config, Credentials, FetchLimits, SecretString, TokenProvider,
};
pub use endpoint::{DynamicRequest, Endpoint, Idempotency, Operation, Paginated, RawResponse};
pub use error::{Error, ErrorKind, LimitExceeded};
pub use models::{Cell, Patch};
pub use retry::{Jitter, RetryPolicy, RetryState};
pub use runtime::{AsyncRuntime, BlockingRuntime};
pub use sql::{QueryRows, RowSource, Sql};
pub use transport::{
    AsyncTransport, BlockingTransport, BoxError, BoxFuture, CorsFilteredHeaders, HttpRequest, MaybeSend,
    MaybeSync, SendOptions, TransportError, TransportErrorKind,
};
