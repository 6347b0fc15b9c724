//! Clients and calls: where an [`Endpoint`] becomes HTTP attempts.
//!
//! [`Client<M>`] holds the configuration and, in its mode `M`, the transport and runtime:
//! [`Blocking`] or [`Async`]. Resource handles (`client.databases()`, ...) and every
//! operation method return a [`Call`], which carries per-call options (timeout, workspace,
//! retry policy) and is sent with [`Call::send`] (blocking) or `.await` (async).
//!
//! One call runs this loop, shared by both modes (the private `Attempts` bookkeeping):
//!
//! ```text
//!  prepare (pure: URL, headers, body; config errors here, nothing sent)
//!    └─> token (provider asked once per attempt; failure ends the call)
//!          └─> transport.send + read body ──> Attempts::finish_attempt
//!                                               ├─ Done(response or error)
//!                                               └─ Sleep(delay) ──> runtime.sleep ──┐
//!                      ^────────────────────────────────────────────────────────────┘
//! ```

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{
    ACCEPT, ACCEPT_ENCODING, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT,
};
use http::{HeaderMap, Method, Uri};

use crate::body::{AsyncBody, BlockingBody, RequestBody};
use crate::config::{Config, Credentials, SecretString};
use crate::endpoint::{Endpoint, HeaderWriter, Operation, Paginated, QueryWriter, RawResponse};
use crate::error::Error;
use crate::retry::{Decision, Jitter, Outcome, RetryPolicy, RetryState, retry_after_from_headers};
use crate::runtime::{AsyncRuntime, BlockingRuntime};
use crate::transport::{
    AsyncTransport, BlockingTransport, BoxFuture, HttpRequest, MaybeSend, SendOptions, TransportError,
    collect_blocking,
};

/// The SDK's version, as sent in the default `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A Hotdata client. `M` is [`Blocking`] or [`Async`]; see [`BlockingClient`] and
/// [`AsyncClient`]. Cloning is cheap and clones share the transport.
pub struct Client<M> {
    shared: Arc<Shared>,
    mode: M,
}

/// A client whose calls block the current thread.
pub type BlockingClient = Client<Blocking>;
/// A client whose calls are futures.
pub type AsyncClient = Client<Async>;

struct Shared {
    config: Config,
    user_agent: HeaderValue,
    jitter: Jitter,
}

/// The blocking mode: a [`BlockingTransport`] and a [`BlockingRuntime`].
#[derive(Clone)]
pub struct Blocking {
    transport: Arc<dyn BlockingTransport>,
    runtime: Arc<dyn BlockingRuntime>,
}

/// The async mode: an [`AsyncTransport`] and an [`AsyncRuntime`].
#[derive(Clone)]
pub struct Async {
    transport: Arc<dyn AsyncTransport>,
    runtime: Arc<dyn AsyncRuntime>,
}

impl<M: Clone> Clone for Client<M> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), mode: self.mode.clone() }
    }
}

impl<M> fmt::Debug for Client<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.shared.config.base_url)
            .field("workspace_id", &self.shared.config.workspace_id)
            .field("credentials", &self.shared.config.credentials)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Blocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Blocking")
    }
}

impl fmt::Debug for Async {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Async")
    }
}

fn shared(config: Config, backend: &str, jitter: Jitter) -> Arc<Shared> {
    let default_ua = if backend.is_empty() {
        format!("hotdata-rs/{VERSION}")
    } else {
        format!("hotdata-rs/{VERSION} ({backend})")
    };
    let user_agent =
        config.user_agent.as_deref().and_then(|ua| HeaderValue::from_str(ua).ok()).unwrap_or_else(|| {
            HeaderValue::from_str(&default_ua).unwrap_or(HeaderValue::from_static("hotdata-rs"))
        });
    Arc::new(Shared { config, user_agent, jitter })
}

impl Client<Blocking> {
    /// A blocking client over `transport`, sleeping and reading time through `runtime`.
    /// `backend` names the transport in the default `User-Agent` (`"ureq"`, ...).
    pub fn new(
        config: Config,
        transport: Arc<dyn BlockingTransport>,
        runtime: Arc<dyn BlockingRuntime>,
        backend: &str,
    ) -> Self {
        Self { shared: shared(config, backend, Jitter::default()), mode: Blocking { transport, runtime } }
    }
}

impl Client<Blocking> {
    pub(crate) fn blocking_runtime(&self) -> &dyn BlockingRuntime {
        &*self.mode.runtime
    }

    /// The transport and runtime, for flows that send raw requests (storage PUTs).
    pub(crate) fn blocking_parts(&self) -> (Arc<dyn BlockingTransport>, Arc<dyn BlockingRuntime>) {
        (self.mode.transport.clone(), self.mode.runtime.clone())
    }
}

impl Client<Async> {
    pub(crate) fn async_runtime(&self) -> &dyn AsyncRuntime {
        &*self.mode.runtime
    }

    /// The transport and runtime, for flows that send raw requests (storage PUTs).
    pub(crate) fn async_parts(&self) -> (Arc<dyn AsyncTransport>, Arc<dyn AsyncRuntime>) {
        (self.mode.transport.clone(), self.mode.runtime.clone())
    }

    /// An async client over `transport`, sleeping and reading time through `runtime`.
    /// `backend` names the transport in the default `User-Agent` (`"reqwest"`, ...).
    pub fn new(
        config: Config,
        transport: Arc<dyn AsyncTransport>,
        runtime: Arc<dyn AsyncRuntime>,
        backend: &str,
    ) -> Self {
        Self { shared: shared(config, backend, Jitter::default()), mode: Async { transport, runtime } }
    }
}

impl<M> Client<M> {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Replaces the jitter source (tests use [`Jitter::from_seed`] for repeatable delays).
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        let s = &self.shared;
        self.shared = Arc::new(Shared { config: s.config.clone(), user_agent: s.user_agent.clone(), jitter });
        self
    }

    /// The `User-Agent` this client sends.
    pub fn user_agent(&self) -> &str {
        self.shared.user_agent.to_str().unwrap_or_default()
    }
}

impl<M: Clone> Client<M> {
    /// A call of any endpoint (generated request types, or a [`crate::DynamicRequest`]).
    pub fn call<E: Endpoint>(&self, endpoint: E) -> Call<M, E> {
        Call { client: self.clone(), endpoint, options: CallOptions::default() }
    }
}

/// Options of one call, overriding the client's configuration.
#[derive(Debug, Clone, Default)]
struct CallOptions {
    timeout: Option<Option<Duration>>,
    body_idle_timeout: Option<Option<Duration>>,
    workspace_id: Option<String>,
    retry: Option<RetryPolicy>,
}

/// One operation, ready to send: [`Call::send`] on a blocking client, `.await` on an
/// async one. Optional parameters of the operation have setters here too.
pub struct Call<M, E> {
    client: Client<M>,
    endpoint: E,
    options: CallOptions,
}

impl<M: Clone, E: Clone> Clone for Call<M, E> {
    fn clone(&self) -> Self {
        Self { client: self.client.clone(), endpoint: self.endpoint.clone(), options: self.options.clone() }
    }
}

impl<M, E: fmt::Debug> fmt::Debug for Call<M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call").field("endpoint", &self.endpoint).field("options", &self.options).finish()
    }
}

impl<M, E> Call<M, E> {
    /// Sets this call's whole-request timeout per attempt (`None`: no timeout). When the
    /// answer is streamed ([`Call::send_streaming`]: downloads, Arrow results and queries) it
    /// bounds the exchange until the response head, and [`Call::body_idle_timeout`] the body.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Sets the idle timeout of this call's body when it is streamed
    /// ([`Call::send_streaming`]: result downloads, Arrow results, queries answered as
    /// Arrow), instead of [`Config::body_idle_timeout`]: once the head has arrived, the body
    /// fails only when no byte arrives for this long. `None`: the whole-request timeout
    /// covers the body too. Calls whose answer is read whole (JSON) ignore it.
    pub fn body_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.options.body_idle_timeout = Some(timeout);
        self
    }

    /// Sends this call to another workspace than the client's.
    pub fn workspace_id(mut self, workspace_id: impl Into<String>) -> Self {
        self.options.workspace_id = Some(workspace_id.into());
        self
    }

    /// Uses another retry policy for this call.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = Some(policy);
        self
    }

    /// The client this call will be sent through (its configuration, for example).
    pub fn client(&self) -> &Client<M> {
        &self.client
    }

    /// The request this call will send.
    pub fn request(&self) -> &E {
        &self.endpoint
    }

    /// Changes the request (used by the generated setters).
    pub fn map(mut self, f: impl FnOnce(E) -> E) -> Self {
        self.endpoint = f(self.endpoint);
        self
    }

    fn prepare(&self) -> Result<Prepared, Error>
    where
        E: Endpoint,
    {
        self.prepare_as(Answer::Read)
    }

    fn prepare_as(&self, answer: Answer) -> Result<Prepared, Error>
    where
        E: Endpoint,
    {
        prepare(&self.client.shared, &self.endpoint, &self.options, answer)
            .map_err(|e| e.with_operation(self.endpoint.operation().id))
    }

    /// Like `prepare`, for an answer whose body is handed over as a stream: bounded by
    /// the idle timeout once its head is in.
    fn prepare_streaming(&self) -> Result<Prepared, Error>
    where
        E: Endpoint,
    {
        let mut prepared = self.prepare_as(Answer::Streamed)?;
        let idle = self.options.body_idle_timeout.unwrap_or(self.client.shared.config.body_idle_timeout);
        prepared.send = prepared.send.with_body_idle_timeout(idle);
        Ok(prepared)
    }

    fn with_endpoint(&self, endpoint: E) -> Self
    where
        M: Clone,
    {
        Self { client: self.client.clone(), endpoint, options: self.options.clone() }
    }
}

// ---- preparing a request (pure) ---------------------------------------------------------

/// A request with everything but the bearer token, ready for attempts.
struct Prepared {
    op: &'static Operation,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RequestBody,
    send: SendOptions,
    retry: RetryPolicy,
    /// The policy for a `409 RESOURCE_LOCKED` answer, on the operations that retry it.
    lock_retry: Option<RetryPolicy>,
}

/// What becomes of an answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// The client reads it whole (JSON, or the raw answer of `send_raw`).
    Read,
    /// It is handed to the caller as a stream (`send_streaming`).
    Streamed,
}

/// Whether the transport asks for this answer compressed and decodes it
/// ([`SendOptions::decompress`]): yes for a body the client reads whole, unless the endpoint
/// names its own `Accept-Encoding`; never for a streamed one (a download is the stored
/// bytes, an Arrow stream's batches may be compressed already).
fn decompress(answer: Answer, headers: &HeaderMap) -> bool {
    answer == Answer::Read && !headers.contains_key(ACCEPT_ENCODING)
}

/// What an endpoint contributes to its request, gathered so that the rest of preparing it
/// is compiled once rather than once per endpoint.
struct EndpointParts {
    op: &'static Operation,
    path: String,
    query: QueryWriter,
    headers: HeaderWriter,
    accept: &'static str,
    body: Result<Option<(&'static str, RequestBody)>, Error>,
}

fn prepare<E: Endpoint>(
    shared: &Shared,
    endpoint: &E,
    options: &CallOptions,
    answer: Answer,
) -> Result<Prepared, Error> {
    let mut query = QueryWriter::default();
    endpoint.query(&mut query);
    let mut headers = HeaderWriter::default();
    endpoint.headers(&mut headers);
    let parts = EndpointParts {
        op: endpoint.operation(),
        path: endpoint.path(),
        query,
        headers,
        accept: endpoint.accept(),
        body: endpoint.body(),
    };
    prepare_parts(shared, parts, options, answer)
}

fn prepare_parts(
    shared: &Shared,
    parts: EndpointParts,
    options: &CallOptions,
    answer: Answer,
) -> Result<Prepared, Error> {
    let config = &shared.config;
    let EndpointParts { op, path, query, headers: own, accept, body } = parts;
    check_path(op, &path)?;
    let query = query.encode();
    let base = config.base_url.trim_end_matches('/');
    // Every path starts with `/v1/`: a base given with it (as the API's docs write the root)
    // is taken without it, so the version is never doubled.
    let base = match base.strip_suffix("/v1") {
        Some(root) if path.starts_with("/v1/") => root,
        _ => base,
    };
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Error::config(format!("base URL `{base}` must start with http:// or https://")));
    }
    let url = if query.is_empty() { format!("{base}{path}") } else { format!("{base}{path}?{query}") };
    let uri: Uri = url.parse().map_err(|e| Error::config(format!("invalid URL from base `{base}`: {e}")))?;

    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, shared.user_agent.clone());
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    if op.workspace_scoped {
        let ws = options.workspace_id.as_deref().or(config.workspace_id.as_deref()).ok_or_else(|| {
            Error::config(
                "no workspace: set HOTDATA_WORKSPACE_ID, Config::with_workspace_id, or Call::workspace_id",
            )
        })?;
        headers.insert(HeaderName::from_static("x-workspace-id"), header_value("X-Workspace-Id", ws)?);
    }
    for (name, value) in own.headers {
        let required = op.params.iter().any(|p| p.required && p.name.eq_ignore_ascii_case(name));
        if value.trim().is_empty() {
            if required {
                return Err(Error::config(format!("the header parameter `{name}` is empty")));
            }
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Error::config(format!("header {name}: {e}")))?;
        let mut v = header_value(name.as_str(), &value)?;
        if name.as_str().contains("token") {
            v.set_sensitive(true);
        }
        headers.insert(name, v);
    }
    let body = match body? {
        Some((content_type, body)) => {
            // An endpoint that names its body's type among its headers (an upload of the
            // caller's file) keeps it.
            if !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            }
            body
        }
        None => RequestBody::Empty,
    };
    let timeout = options.timeout.unwrap_or(config.timeout);
    let send = SendOptions::with_timeout(timeout).with_decompress(decompress(answer, &headers));
    Ok(Prepared {
        op,
        method: op.method.clone(),
        uri,
        headers,
        body,
        send,
        retry: options.retry.clone().unwrap_or_else(|| config.retry.clone()),
        lock_retry: op.retry_when_locked.then(|| config.lock_retry.clone()),
    })
}

/// Refuses path parameters that cannot be sent faithfully: an empty value, `.` or `..` would
/// make URL normalization (in clients, proxies and servers) address another resource.
fn check_path(op: &Operation, path: &str) -> Result<(), Error> {
    if !op.path.contains('{') {
        return Ok(());
    }
    let template = op.path.split('/');
    for (t, actual) in template.zip(path.split('/')) {
        let name = t.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
        if let Some(name) = name
            && (actual.is_empty() || actual == "%2E" || actual == "%2E%2E")
        {
            return Err(Error::config(format!(
                "the path parameter `{name}` is empty, `.` or `..`, which would address another resource"
            )));
        }
    }
    Ok(())
}

fn header_value(name: &str, value: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(value)
        .map_err(|_| Error::config(format!("the value of `{name}` is not a valid header value")))
}

impl Prepared {
    fn request(&self, token: &SecretString) -> Result<HttpRequest, Error> {
        // Visible ASCII only: `from_str` also takes bytes above 0x7f (a key pasted with a
        // non-ASCII character would be sent as raw UTF-8); `to_str` refuses them.
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .ok()
            .filter(|v| v.to_str().is_ok())
            .ok_or_else(|| Error::config("the API key contains characters not allowed in a header"))?;
        auth.set_sensitive(true);
        let mut builder = http::Request::builder().method(self.method.clone()).uri(self.uri.clone());
        if let Some(h) = builder.headers_mut() {
            h.clone_from(&self.headers);
            h.insert(AUTHORIZATION, auth);
        }
        builder.body(self.body.clone()).map_err(|e| Error::config(format!("invalid request: {e}")))
    }
}

fn missing_credentials() -> Error {
    Error::config("no API key: set HOTDATA_API_KEY, Config::with_api_key, or a token provider")
}

// ---- the attempt loop, shared by both modes ------------------------------------------------

/// The status and headers of an attempt's answer, whatever has been read of its body.
pub(crate) trait ResponseHead {
    fn head_status(&self) -> http::StatusCode;
    fn head_headers(&self) -> &HeaderMap;
    /// True for a `409` whose error code is `RESOURCE_LOCKED`, when the body was read.
    fn is_locked(&self) -> bool {
        false
    }
}

impl ResponseHead for RawResponse {
    fn head_status(&self) -> http::StatusCode {
        self.status
    }
    fn head_headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn is_locked(&self) -> bool {
        self.status == http::StatusCode::CONFLICT
            && Error::from_response(self).code() == Some(RESOURCE_LOCKED)
    }
}

/// The error code of a table load refused because another load holds the table.
const RESOURCE_LOCKED: &str = "RESOURCE_LOCKED";

impl<B> ResponseHead for http::Response<B> {
    fn head_status(&self) -> http::StatusCode {
        self.status()
    }
    fn head_headers(&self) -> &HeaderMap {
        self.headers()
    }
}

/// What to do after an attempt.
enum Step {
    /// The call is over: report this attempt's result.
    Done,
    /// Sleep this long, then attempt again.
    Sleep(Duration),
}

/// Retry bookkeeping and observability for one call: the part of the loop that is the same
/// for blocking and async drivers, and for buffered and streamed answers.
struct Attempts<'a> {
    prepared: &'a Prepared,
    state: RetryState,
    /// The `409 RESOURCE_LOCKED` answers, counted and timed against the lock policy.
    locked: RetryState,
    jitter: &'a Jitter,
    started: Duration,
}

impl<'a> Attempts<'a> {
    fn new(prepared: &'a Prepared, jitter: &'a Jitter, now: Duration) -> Self {
        Self { prepared, state: RetryState::new(now), locked: RetryState::new(now), jitter, started: now }
    }

    fn begin(&mut self, now: Duration) {
        self.started = now;
    }

    /// Attempts made so far, of both kinds.
    fn count(&self) -> u32 {
        self.state.attempts() + self.locked.attempts()
    }

    /// Records an attempt's outcome (a response head, or a transport failure) and decides.
    fn finish_attempt<T: ResponseHead>(
        &mut self,
        result: &Result<T, TransportError>,
        now: Duration,
        wall: std::time::SystemTime,
    ) -> Step {
        let p = self.prepared;
        let attempt = self.count() + 1;
        let elapsed_ms = now.saturating_sub(self.started).as_millis() as u64;
        let path = p.uri.path();
        let outcome = match result {
            Ok(response) => {
                let status = response.head_status();
                tracing::debug!(
                    target: "hotdata",
                    operation = p.op.id, method = %p.method, path, status = status.as_u16(), attempt, elapsed_ms,
                    "attempt finished"
                );
                if status.is_success() {
                    self.state.record_success();
                    return Step::Done;
                }
                let retry_after = retry_after_from_headers(response.head_headers(), Some(wall));
                if let Some(policy) = p.lock_retry.as_ref().filter(|_| response.is_locked()) {
                    let outcome = Outcome::Locked { retry_after };
                    let decision =
                        self.locked.decide(policy, p.op.idempotency, outcome, now, self.jitter.sample());
                    return self.step(decision);
                }
                Outcome::Status { status, retry_after }
            }
            Err(e) => {
                tracing::debug!(
                    target: "hotdata",
                    operation = p.op.id, method = %p.method, path, error = %e, attempt, elapsed_ms,
                    "attempt failed"
                );
                Outcome::Transport(e.kind())
            }
        };
        let decision = self.state.decide(&p.retry, p.op.idempotency, outcome, now, self.jitter.sample());
        self.step(decision)
    }

    /// What a decision means for the loop.
    fn step(&self, decision: Decision) -> Step {
        match decision {
            Decision::Retry(delay) => {
                tracing::debug!(
                    target: "hotdata",
                    operation = self.prepared.op.id, attempt = self.count(), delay_ms = delay.as_millis() as u64,
                    "retrying"
                );
                Step::Sleep(delay)
            }
            Decision::GiveUp => Step::Done,
        }
    }

    /// The call's result once [`Step::Done`]: transport errors become [`Error`]s carrying
    /// the operation and the number of attempts.
    fn conclude<T>(&self, result: Result<T, TransportError>) -> Result<T, Error> {
        let attempts = self.count();
        result.map_err(|e| {
            let e = Error::transport(e).with_operation(self.prepared.op.id);
            e.with_attempts(attempts)
        })
    }
}

/// Decodes a buffered answer with the endpoint, naming the operation and attempts in errors.
fn finish<E: Endpoint>(
    endpoint: &E,
    attempts: u32,
    result: Result<RawResponse, Error>,
    wall: std::time::SystemTime,
) -> Result<E::Output, Error> {
    let op = endpoint.operation();
    let raw = result.map_err(|e| e.with_operation(op.id))?;
    endpoint.parse(&raw).map_err(|e| {
        let e = e.with_operation(op.id).resolve_retry_after(&raw.headers, wall);
        e.with_attempts(attempts)
    })
}

// ---- blocking driver -------------------------------------------------------------------------

impl Blocking {
    fn token(&self, credentials: &Credentials) -> Result<SecretString, Error> {
        match credentials {
            Credentials::ApiKey(k) => Ok(k.clone()),
            Credentials::Provider(p) => p.token().map_err(Error::credentials),
            Credentials::AsyncProvider(_) => {
                Err(Error::config("an async token provider cannot be used with a blocking client"))
            }
            Credentials::None => Err(missing_credentials()),
        }
    }

    /// Runs the attempt loop; `read` turns each response into what the call keeps (a
    /// buffered body, or the streaming response itself), inside the attempt.
    fn run<T: ResponseHead>(
        &self,
        shared: &Shared,
        prepared: &Prepared,
        read: impl Fn(http::Response<BlockingBody>) -> Result<T, TransportError>,
    ) -> (u32, Result<T, Error>) {
        let rt = &*self.runtime;
        let mut attempts = Attempts::new(prepared, &shared.jitter, rt.now());
        loop {
            let request = match self.token(&shared.config.credentials).and_then(|t| prepared.request(&t)) {
                Ok(r) => r,
                Err(e) => return (attempts.count(), Err(e.with_operation(prepared.op.id))),
            };
            attempts.begin(rt.now());
            let result = self.transport.send(request, &prepared.send).and_then(&read);
            match attempts.finish_attempt(&result, rt.now(), rt.wall_clock()) {
                Step::Done => return (attempts.count(), attempts.conclude(result)),
                Step::Sleep(d) => {
                    drop(result);
                    rt.sleep(d)
                }
            }
        }
    }
}

fn read_blocking(response: http::Response<BlockingBody>) -> Result<RawResponse, TransportError> {
    let (parts, body) = response.into_parts();
    Ok(RawResponse { status: parts.status, headers: parts.headers, body: collect_blocking(body)? })
}

impl<E: Endpoint> Call<Blocking, E> {
    /// Sends the call, retrying as the policy allows, and decodes the answer.
    pub fn send(self) -> Result<E::Output, Error> {
        let prepared = self.prepare()?;
        let (attempts, result) = self.client.mode.run(&self.client.shared, &prepared, read_blocking);
        finish(&self.endpoint, attempts, result, self.client.mode.runtime.wall_clock())
    }

    /// Sends the call and returns the raw answer (any status) with its body read, for
    /// callers that decode themselves. Retries still apply.
    pub fn send_raw(self) -> Result<RawResponse, Error> {
        let prepared = self.prepare()?;
        self.client.mode.run(&self.client.shared, &prepared, read_blocking).1
    }

    /// Sends the call and returns the answer (any status) as soon as its head arrives, with
    /// the body still to read: for large or streamed answers. Retries apply until a head is
    /// received; the body is then the caller's. The call's timeout bounds the exchange until
    /// the head; the body is bounded by the idle timeout ([`Call::body_idle_timeout`],
    /// [`Config::body_idle_timeout`]), however long it takes in all.
    pub fn send_streaming(self) -> Result<http::Response<BlockingBody>, Error> {
        let prepared = self.prepare_streaming()?;
        self.client.mode.run(&self.client.shared, &prepared, Ok).1
    }
}

impl<E: Paginated> Call<Blocking, E> {
    /// Walks the listing page by page, to the end. Stops after the first error.
    pub fn pages(self) -> Pages<E> {
        Pages { next: Some(self) }
    }

    /// Walks the listing item by item, across pages. Stops after the first error.
    pub fn items(self) -> impl Iterator<Item = Result<E::Item, Error>> {
        self.pages().flat_map(|page| match page {
            Ok(items) => items.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        })
    }
}

/// The pages of a listing, fetched lazily: see [`Call::pages`].
pub struct Pages<E> {
    next: Option<Call<Blocking, E>>,
}

impl<E: Paginated> Iterator for Pages<E> {
    type Item = Result<Vec<E::Item>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let call = self.next.take()?;
        let endpoint = call.endpoint.clone();
        match call.clone().send() {
            Ok(output) => {
                self.next = endpoint.next_page(&output).map(|e| call.with_endpoint(e));
                Some(Ok(E::items(output)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

// ---- async driver ----------------------------------------------------------------------------

impl Async {
    async fn token(&self, credentials: &Credentials) -> Result<SecretString, Error> {
        match credentials {
            Credentials::ApiKey(k) => Ok(k.clone()),
            Credentials::Provider(p) => p.token().map_err(Error::credentials),
            Credentials::AsyncProvider(p) => p.token().await.map_err(Error::credentials),
            Credentials::None => Err(missing_credentials()),
        }
    }

    /// Runs the attempt loop; `read` turns each response into what the call keeps (a
    /// buffered body, or the streaming response itself), inside the attempt.
    async fn run<T, F, Fut>(&self, shared: &Shared, prepared: &Prepared, read: F) -> (u32, Result<T, Error>)
    where
        T: ResponseHead,
        F: Fn(http::Response<AsyncBody>) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let rt = &*self.runtime;
        let mut attempts = Attempts::new(prepared, &shared.jitter, rt.now());
        loop {
            let request =
                match self.token(&shared.config.credentials).await.and_then(|t| prepared.request(&t)) {
                    Ok(r) => r,
                    Err(e) => return (attempts.count(), Err(e.with_operation(prepared.op.id))),
                };
            attempts.begin(rt.now());
            let result = match self.transport.send(request, &prepared.send).await {
                Ok(response) => read(response).await,
                Err(e) => Err(e),
            };
            match attempts.finish_attempt(&result, rt.now(), rt.wall_clock()) {
                Step::Done => return (attempts.count(), attempts.conclude(result)),
                Step::Sleep(d) => {
                    drop(result);
                    rt.sleep(d).await
                }
            }
        }
    }
}

async fn read_async(response: http::Response<AsyncBody>) -> Result<RawResponse, TransportError> {
    let (parts, body) = response.into_parts();
    Ok(RawResponse { status: parts.status, headers: parts.headers, body: body.collect().await? })
}

async fn keep_async(
    response: http::Response<AsyncBody>,
) -> Result<http::Response<AsyncBody>, TransportError> {
    Ok(response)
}

impl<E: Endpoint> Call<Async, E> {
    /// Sends the call and returns the raw answer (any status) with its body read, for
    /// callers that decode themselves. Retries still apply.
    pub async fn send_raw(self) -> Result<RawResponse, Error> {
        let prepared = self.prepare()?;
        self.client.mode.run(&self.client.shared, &prepared, read_async).await.1
    }

    /// Sends the call and returns the answer (any status) as soon as its head arrives, with
    /// the body still to read: for large or streamed answers. Retries apply until a head is
    /// received; the body is then the caller's. The call's timeout bounds the exchange until
    /// the head; the body is bounded by the idle timeout ([`Call::body_idle_timeout`],
    /// [`Config::body_idle_timeout`]), however long it takes in all.
    pub async fn send_streaming(self) -> Result<http::Response<AsyncBody>, Error> {
        let prepared = self.prepare_streaming()?;
        self.client.mode.run(&self.client.shared, &prepared, keep_async).await.1
    }

    /// Sends the call, retrying as the policy allows, and decodes the answer (the same as
    /// `.await` on the call).
    pub async fn send(self) -> Result<E::Output, Error> {
        let prepared = self.prepare()?;
        let (attempts, result) = self.client.mode.run(&self.client.shared, &prepared, read_async).await;
        finish(&self.endpoint, attempts, result, self.client.mode.runtime.wall_clock())
    }
}

impl<E> IntoFuture for Call<Async, E>
where
    E: Endpoint + MaybeSend + Sync + 'static,
    E::Output: MaybeSend + 'static,
{
    type Output = Result<E::Output, Error>;
    type IntoFuture = BoxFuture<'static, Result<E::Output, Error>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl<E> Call<Async, E>
where
    E: Paginated + MaybeSend + Sync + 'static,
    E::Output: MaybeSend + 'static,
{
    /// Walks the listing page by page, to the end, as a `Stream`. Stops after the first
    /// error.
    pub fn pages(self) -> PageStream<E> {
        PageStream { next: Some(self), pending: None }
    }
}

type PageFuture<E> = BoxFuture<'static, (Call<Async, E>, Result<<E as Endpoint>::Output, Error>)>;

/// The pages of a listing as a `Stream`: see [`Call::pages`].
pub struct PageStream<E: Endpoint> {
    next: Option<Call<Async, E>>,
    pending: Option<PageFuture<E>>,
}

impl<E> futures_core::Stream for PageStream<E>
where
    E: Paginated + MaybeSend + Sync + 'static,
    E::Output: MaybeSend + 'static,
{
    type Item = Result<Vec<E::Item>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            let Some(call) = this.next.take() else {
                return Poll::Ready(None);
            };
            this.pending = Some(Box::pin(async move {
                let result = call.clone().send().await;
                (call, result)
            }));
        }
        let Some(fut) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((call, result)) => {
                this.pending = None;
                Poll::Ready(Some(match result {
                    Ok(output) => {
                        this.next = call.endpoint.next_page(&output).map(|e| call.with_endpoint(e));
                        Ok(E::items(output))
                    }
                    Err(e) => Err(e),
                }))
            }
        }
    }
}

impl<E: Endpoint> Unpin for PageStream<E> {}
