//! Test doubles (feature `test-util`): a manual runtime and a scripted transport, so that
//! every rule of the client can be tested with no sockets and exact, simulated time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::body::{AsyncBody, BlockingBody};
use crate::runtime::{AsyncRuntime, BlockingRuntime};
use crate::transport::{
    AsyncTransport, BlockingTransport, BoxFuture, HttpRequest, SendOptions, TransportError,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A runtime whose clock only moves when told to, and whose sleeps return at once after
/// advancing the clock by the requested duration (and recording it).
#[derive(Debug)]
pub struct ManualRuntime {
    now: Mutex<Duration>,
    wall_origin: SystemTime,
    sleeps: Mutex<Vec<Duration>>,
}

impl ManualRuntime {
    /// A runtime at time zero whose wall clock starts at `wall_origin`.
    pub fn new(wall_origin: SystemTime) -> Arc<Self> {
        Arc::new(Self { now: Mutex::new(Duration::ZERO), wall_origin, sleeps: Mutex::new(Vec::new()) })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *lock(&self.now) += by;
    }

    /// Every sleep requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        lock(&self.sleeps).clone()
    }

    fn current(&self) -> Duration {
        *lock(&self.now)
    }

    fn do_sleep(&self, d: Duration) {
        lock(&self.sleeps).push(d);
        self.advance(d);
    }
}

impl BlockingRuntime for ManualRuntime {
    fn now(&self) -> Duration {
        self.current()
    }
    fn wall_clock(&self) -> SystemTime {
        self.wall_origin + self.current()
    }
    fn sleep(&self, duration: Duration) {
        self.do_sleep(duration);
    }
}

impl AsyncRuntime for ManualRuntime {
    fn now(&self) -> Duration {
        self.current()
    }
    fn wall_clock(&self) -> SystemTime {
        self.wall_origin + self.current()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.do_sleep(duration);
        Box::pin(std::future::ready(()))
    }
}

/// A request as the fake transport saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method.
    pub method: http::Method,
    /// Full URI.
    pub uri: http::Uri,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
    /// The timeout the client asked for.
    pub timeout: Option<Duration>,
    /// The idle timeout of a streamed body the client asked for
    /// ([`SendOptions::body_idle_timeout`](crate::SendOptions::body_idle_timeout)).
    pub body_idle_timeout: Option<Duration>,
    /// Whether it was sent as a storage request ([`SendOptions::storage`](crate::SendOptions)).
    pub storage: bool,
    /// Whether the transport was asked for a compressed answer it decodes
    /// ([`SendOptions::decompress`](crate::SendOptions::decompress)).
    pub decompress: bool,
}

/// What the fake transport answers.
pub type Reply = Result<http::Response<Bytes>, TransportError>;

type Handler = dyn Fn(&RecordedRequest) -> Reply + Send + Sync;

/// A transport answering from a closure or a script, recording every request.
pub struct FakeTransport {
    handler: Box<Handler>,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl FakeTransport {
    /// Answers every request with `handler`.
    pub fn new(handler: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self { handler: Box::new(handler), requests: Mutex::new(Vec::new()) })
    }

    /// Answers requests with the replies in order; a request past the end of the script
    /// gets a 599 answer, which fails the test visibly.
    pub fn script(replies: Vec<Reply>) -> Arc<Self> {
        let queue = Mutex::new(VecDeque::from(replies));
        Self::new(move |_| lock(&queue).pop_front().unwrap_or_else(|| Ok(response(599, "script exhausted"))))
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    fn answer(&self, request: HttpRequest, options: &SendOptions) -> Reply {
        let (parts, body) = request.into_parts();
        let body = match body.as_streaming() {
            Some(streaming) => drain(streaming)?,
            None => Bytes::copy_from_slice(body.as_bytes()),
        };
        let recorded = RecordedRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            timeout: options.timeout,
            body_idle_timeout: options.body_idle_timeout,
            storage: options.storage,
            decompress: options.decompress,
        };
        lock(&self.requests).push(recorded.clone());
        (self.handler)(&recorded)
    }
}

/// Reads a streaming body to its end, as a transport sending it would (a stream must be
/// ready whenever polled, as test streams are). A body already taken fails like a real
/// transport's second send.
fn drain(body: &crate::body::StreamingBody) -> Result<Bytes, TransportError> {
    use std::io::Read;
    let failed = |e: std::io::Error| TransportError::new(crate::TransportErrorKind::Send, e);
    if let Some(mut reader) = body.take_reader() {
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(failed)?;
        return Ok(Bytes::from(out));
    }
    let Some(mut stream) = body.take_stream() else {
        return Err(TransportError::new(
            crate::TransportErrorKind::Request,
            "the streaming body was already sent",
        ));
    };
    let mut out = Vec::new();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        match stream.as_mut().poll_next(&mut cx) {
            std::task::Poll::Ready(Some(chunk)) => out.extend_from_slice(&chunk.map_err(failed)?),
            std::task::Poll::Ready(None) => return Ok(Bytes::from(out)),
            std::task::Poll::Pending => std::thread::yield_now(),
        }
    }
}

impl std::fmt::Debug for FakeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTransport").field("requests", &lock(&self.requests).len()).finish()
    }
}

impl BlockingTransport for FakeTransport {
    fn send(
        &self,
        request: HttpRequest,
        options: &SendOptions,
    ) -> Result<http::Response<BlockingBody>, TransportError> {
        self.answer(request, options).map(|r| r.map(BlockingBody::from_bytes))
    }
}

impl AsyncTransport for FakeTransport {
    fn send<'a>(
        &'a self,
        request: HttpRequest,
        options: &'a SendOptions,
    ) -> BoxFuture<'a, Result<http::Response<AsyncBody>, TransportError>> {
        let reply = self.answer(request, options).map(|r| r.map(AsyncBody::from_bytes));
        Box::pin(std::future::ready(reply))
    }
}

/// A response with a status and a body (JSON content type when it parses as JSON).
pub fn response(status: u16, body: &str) -> http::Response<Bytes> {
    let mut builder = http::Response::builder().status(status);
    if serde_json::from_str::<serde_json::Value>(body).is_ok() {
        builder = builder.header("content-type", "application/json");
    }
    builder.body(Bytes::from(body.to_owned())).unwrap_or_default()
}

/// A response with a status, a body and one extra header.
pub fn response_with(status: u16, body: &str, header: &str, value: &str) -> http::Response<Bytes> {
    let mut r = response(status, body);
    if let (Ok(n), Ok(v)) =
        (http::HeaderName::from_bytes(header.as_bytes()), http::HeaderValue::from_str(value))
    {
        r.headers_mut().insert(n, v);
    }
    r
}

/// Runs `future` to completion on the calling thread by polling it in a loop (a no-op
/// waker). For futures over [`FakeTransport`] and [`ManualRuntime`], which are always ready
/// or become ready by being polled again; never for real I/O.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// A `tracing` subscriber that keeps every event and span, each formatted as one line: its
/// target (or `span NAME` / `record`) followed by ` field=value` for every field. Install it
/// with `tracing::subscriber::with_default` (one thread) or `set_global_default` (the whole
/// process: upload workers log from their own threads), then read [`TraceCapture::lines`].
#[derive(Debug, Clone, Default)]
pub struct TraceCapture(Arc<Mutex<Vec<String>>>);

impl TraceCapture {
    /// The lines captured so far, in order.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.0).clone()
    }

    /// Keeps one line.
    fn push(&self, line: String) {
        lock(&self.0).push(line);
    }
}

/// One event's or span's fields, formatted.
struct TraceLine(String);

impl tracing::field::Visit for TraceLine {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for TraceCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attributes: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut line = TraceLine(format!("span {}", attributes.metadata().name()));
        attributes.record(&mut line);
        self.push(line.0);
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = TraceLine("record".to_owned());
        values.record(&mut line);
        self.push(line.0);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = TraceLine(event.metadata().target().to_owned());
        event.record(&mut line);
        self.push(line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
