//! Real network failures on 127.0.0.1, for the transport classifier tests
//! (`tests/failures.rs`): a port nothing listens on, a host name no resolver accepts, a
//! listener whose backlog is full, a TLS server whose certificate nobody trusts, and a raw
//! HTTP/1.1 server scripted per connection (a reset with `SO_LINGER` 0 before any response,
//! a body cut by a reset or left stalled, a head or a body sent slowly ([`Paced`]), requests
//! recorded header by header as they came).
//!
//! Everything binds 127.0.0.1 on an ephemeral port and stops when dropped; every wait is
//! bounded by [`GUARD`], a hang guard, never a timing assertion.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest anything here waits (a stalled body, a client that never sends): a bound
/// against hangs only.
pub const GUARD: Duration = Duration::from_secs(30);

/// How often waiting threads look at their stop flag.
const TICK: Duration = Duration::from_millis(5);

/// `http://127.0.0.1:PORT` where nothing listens: connecting is refused.
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A URL whose host the system resolver cannot resolve, found without any DNS traffic: its
/// first label has 64 characters, one more than DNS allows, so the resolver (glibc's
/// `getaddrinfo`) fails it locally with `EAI_NONAME`, "Name or service not known", the very
/// error an NXDOMAIN answer gives for `nonexistent.invalid`. (Measured with `strace`: no
/// packet leaves the machine; `nonexistent.invalid` sends a query to the configured
/// nameserver.) URL parsers accept the name, so the failure happens where a real one does.
pub fn unresolvable_url() -> String {
    format!("http://{}.invalid/", "a".repeat(64))
}

/// Marks `stream` to be reset when it is dropped: `SO_LINGER` 0 makes the close an RST.
fn reset_on_close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Waits until `flag` is set, `stop` is set or [`GUARD`] has passed.
fn wait_for(flag: &AtomicBool, stop: &AtomicBool) {
    let start = Instant::now();
    while !flag.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) && start.elapsed() < GUARD {
        std::thread::sleep(TICK);
    }
}

/// A listener on 127.0.0.1 with a listen backlog of 0 that never accepts, its queue filled
/// by connections of its own: the kernel drops every further SYN, so a client's connect
/// hangs until its connect timeout. On Linux this is exact: with backlog 0 the accept queue
/// holds one connection, and the next connect times out (measured: the second of six
/// connects, every time; with backlog 1, the third).
pub struct FullBacklog {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

impl FullBacklog {
    /// Binds, listens with backlog 0, and connects until a connect times out (the queue is
    /// then full). Panics if the queue never fills (a platform that does not drop SYNs).
    pub fn start() -> Self {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        listener.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind");
        listener.listen(0).expect("listen");
        let addr = listener.local_addr().expect("address").as_socket().expect("an IP address");
        let mut queued = Vec::new();
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Self { addr, _listener: listener, _queued: queued };
                }
                Err(e) => panic!("filling the backlog: {e}"),
            }
        }
        panic!("the listen queue never filled: this platform accepts SYNs past the backlog")
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A request as the raw server read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names (lowercased) and values, in the order they came.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The header names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<_> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names
    }
}

/// What the raw server does once it has read a whole request.
#[derive(Debug, Clone)]
pub enum Script {
    /// Answer with this status, these headers and an empty body, and keep the connection.
    Respond(u16, Vec<(String, String)>),
    /// Reset the connection (`SO_LINGER` 0, close): no byte of a response.
    ResetBeforeResponse,
    /// Send a head announcing `Content-Length: 1000` and 100 bytes of body, wait until
    /// [`RawServer::release`], then reset.
    ResetMidBody,
    /// Send a head announcing `Content-Length: 1000` and 100 bytes of body, then nothing
    /// until the server is dropped.
    StallBody,
    /// Answer `200` slowly, as [`Paced`] says, and keep the connection.
    Paced(Paced),
    /// Read the request's head only, answer with this status and body (`application/xml`,
    /// `connection: close`) and close with the body unread, as object storage does with a
    /// request it refuses from its head (a signature that does not verify, an expired URL):
    /// the kernel then resets the connection, and a client still sending the body gets a
    /// broken pipe.
    RefuseBeforeBody(u16, &'static str),
}

/// A `200` answer sent slowly: the head after `head_delay`, then `body` (announced by its
/// `Content-Length`) in `pieces` pieces of about equal size, `pause` apart. With
/// `stall_after: Some(n)`, only the first `n` pieces are sent, then nothing until the server
/// is dropped (the connection then closes).
#[derive(Debug, Clone)]
pub struct Paced {
    /// The `Content-Type` of the answer.
    pub content_type: String,
    /// The whole body.
    pub body: Vec<u8>,
    /// How long to wait before sending the head.
    pub head_delay: Duration,
    /// Pieces the body is sent in (at least 1).
    pub pieces: usize,
    /// The pause after each piece but the last.
    pub pause: Duration,
    /// Stop sending after this many pieces.
    pub stall_after: Option<usize>,
}

impl Paced {
    /// `body` as `application/octet-stream` in `pieces` pieces `pause` apart, head at once.
    pub fn trickle(body: impl Into<Vec<u8>>, pieces: usize, pause: Duration) -> Self {
        Self {
            content_type: "application/octet-stream".to_owned(),
            body: body.into(),
            head_delay: Duration::ZERO,
            pieces,
            pause,
            stall_after: None,
        }
    }

    /// The same answer with another `Content-Type`.
    pub fn content_type(mut self, content_type: &str) -> Self {
        self.content_type = content_type.to_owned();
        self
    }

    /// The same answer, its head sent after `delay`.
    pub fn head_after(mut self, delay: Duration) -> Self {
        self.head_delay = delay;
        self
    }

    /// The same answer, stalled for good after `pieces` pieces.
    pub fn stall_after(mut self, pieces: usize) -> Self {
        self.stall_after = Some(pieces);
        self
    }

    /// Sends the answer on `stream`; false when the connection or the server is gone.
    fn send(&self, stream: &mut TcpStream, shared: &Shared) -> bool {
        if !pause(self.head_delay, &shared.stop) {
            return false;
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
            self.content_type,
            self.body.len()
        );
        if stream.write_all(head.as_bytes()).and_then(|()| stream.flush()).is_err() {
            return false;
        }
        let size = self.body.len().div_ceil(self.pieces.max(1)).max(1);
        let pieces: Vec<&[u8]> = self.body.chunks(size).collect();
        for (i, piece) in pieces.iter().enumerate() {
            if self.stall_after == Some(i) {
                wait_for(&AtomicBool::new(false), &shared.stop);
                return false;
            }
            if stream.write_all(piece).and_then(|()| stream.flush()).is_err() {
                return false;
            }
            if i + 1 < pieces.len() && !pause(self.pause, &shared.stop) {
                return false;
            }
        }
        true
    }
}

/// Sleeps `duration` in [`TICK`]s; false when `stop` was set meanwhile.
fn pause(duration: Duration, stop: &AtomicBool) -> bool {
    let start = Instant::now();
    while start.elapsed() < duration {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(TICK.min(duration.saturating_sub(start.elapsed())));
    }
    !stop.load(Ordering::SeqCst)
}

/// The head and first 100 bytes of a body announced as 1000 bytes.
const PARTIAL: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 1000\r\n\r\n\
0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789";

/// State shared by a server's threads.
#[derive(Default)]
struct Shared {
    accepted: AtomicUsize,
    seen: Mutex<Vec<RawRequest>>,
    released: AtomicBool,
    stop: AtomicBool,
}

/// An HTTP/1.1 server on 127.0.0.1 speaking raw bytes, each request answered by its
/// [`Script`]. Dropping it stops it (connection threads end within a few milliseconds).
pub struct RawServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl RawServer {
    /// Starts a server answering every request with `script`.
    pub fn start(script: Script) -> Self {
        let (addr, shared, thread) = serve(move |stream, shared| handle_http(stream, shared, &script));
        Self { addr, shared, thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// TCP connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every request read so far.
    pub fn seen(&self) -> Vec<RawRequest> {
        self.shared.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lets a [`Script::ResetMidBody`] connection go on to its reset.
    pub fn release(&self) {
        self.shared.released.store(true, Ordering::SeqCst);
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TLS server on 127.0.0.1 presenting a self-signed certificate for `127.0.0.1` (made by
/// rcgen on start, so trusted by no client): every handshake is rejected by the client, for
/// the certificate itself ("unknown issuer"), not for its name. Counts TCP connections.
pub struct TlsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl TlsServer {
    /// Makes the certificate and starts the server.
    pub fn start() -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("a self-signed certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .expect("server certificate");
        let config = Arc::new(config);
        let (addr, shared, thread) = serve(move |mut stream, shared| {
            let Ok(mut tls) = rustls::ServerConnection::new(config.clone()) else { return };
            let start = Instant::now();
            while tls.is_handshaking() && !shared.stop.load(Ordering::SeqCst) && start.elapsed() < GUARD {
                match tls.complete_io(&mut stream) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return,
                }
            }
        });
        Self { addr, shared, thread: Some(thread) }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// TCP connections accepted so far: one per attempt a client made.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds 127.0.0.1 and accepts on a thread until stopped, each connection handled by
/// `handle` on a thread of its own (reads time out every [`TICK`], so handlers can watch
/// the stop flag).
fn serve(
    handle: impl Fn(TcpStream, &Shared) + Send + Sync + 'static,
) -> (SocketAddr, Arc<Shared>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking accept");
    let addr = listener.local_addr().expect("address");
    let shared = Arc::new(Shared::default());
    let handle = Arc::new(handle);
    let s = shared.clone();
    let thread = std::thread::spawn(move || {
        while !s.stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    s.accepted.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(TICK));
                    let (handle, s) = (handle.clone(), s.clone());
                    std::thread::spawn(move || handle(stream, &s));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(TICK),
                Err(_) => std::thread::sleep(TICK),
            }
        }
    });
    (addr, shared, thread)
}

/// Reads some bytes, waiting through read timeouts until data, the end, the stop flag or
/// [`GUARD`]. `None` when the connection ended or the server stopped.
fn read_some(stream: &mut TcpStream, shared: &Shared, buf: &mut Vec<u8>) -> Option<usize> {
    let start = Instant::now();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) || start.elapsed() > GUARD {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Some(n);
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return None,
        }
    }
}

/// Reads a request's head from `buf` and the stream (what follows it stays in `buf`): the
/// request with no body yet.
fn read_head(stream: &mut TcpStream, shared: &Shared, buf: &mut Vec<u8>) -> Option<RawRequest> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        read_some(stream, shared, buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(RawRequest { method, target, headers, body: Vec::new() })
}

/// Reads the body of `request` (by `Content-Length` or chunked) from `buf` and the stream;
/// what follows it stays in `buf`. `None` when the connection or the server is gone.
fn read_body(
    stream: &mut TcpStream,
    shared: &Shared,
    buf: &mut Vec<u8>,
    request: &mut RawRequest,
) -> Option<()> {
    // An HTTP/1.1 server answers `Expect: 100-continue` before the body comes.
    if request.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        && stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
    {
        return None;
    }
    if request.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                read_some(stream, shared, buf)?;
            };
            let size = usize::from_str_radix(String::from_utf8_lossy(&buf[..line_end]).trim(), 16).ok()?;
            while buf.len() < line_end + 2 + size + 2 {
                read_some(stream, shared, buf)?;
            }
            request.body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    } else {
        let len: usize = request.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while buf.len() < len {
            read_some(stream, shared, buf)?;
        }
        request.body = buf.drain(..len).collect();
    }
    Some(())
}

/// Serves requests on one connection by `script`.
fn handle_http(mut stream: TcpStream, shared: &Shared, script: &Script) {
    let mut buf = Vec::new();
    while let Some(mut request) = read_head(&mut stream, shared, &mut buf) {
        // A refusal from the head never reads the body.
        let refused = matches!(script, Script::RefuseBeforeBody(..));
        if !refused && read_body(&mut stream, shared, &mut buf, &mut request).is_none() {
            return;
        }
        shared.seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
        match script {
            Script::Respond(status, headers) => {
                let mut head = format!("HTTP/1.1 {status} Scripted\r\n");
                for (n, v) in headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str("content-length: 0\r\n\r\n");
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
            }
            Script::ResetBeforeResponse => {
                reset_on_close(&stream);
                return;
            }
            Script::ResetMidBody => {
                let _ = stream.write_all(PARTIAL);
                let _ = stream.flush();
                wait_for(&shared.released, &shared.stop);
                reset_on_close(&stream);
                return;
            }
            Script::StallBody => {
                let _ = stream.write_all(PARTIAL);
                let _ = stream.flush();
                wait_for(&AtomicBool::new(false), &shared.stop);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Script::RefuseBeforeBody(status, body) => {
                let answer = format!(
                    "HTTP/1.1 {status} Refused\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).and_then(|()| stream.flush());
                return;
            }
            Script::Paced(paced) => {
                if !paced.send(&mut stream, shared) {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
    }
}

/// What became of one exchange through a bare transport (see [`exchange_blocking`] and
/// [`exchange_async`]).
#[derive(Debug)]
pub enum Exchange {
    /// The transport failed before handing back a response head.
    SendFailed(hotdata_core::TransportError),
    /// The head arrived; reading the body failed.
    BodyFailed(hotdata_core::TransportError),
    /// The status and the whole body.
    Done(http::StatusCode, bytes::Bytes),
}

impl Exchange {
    /// The whole body, or a panic naming `backend` and what came instead.
    pub fn body(self, backend: impl std::fmt::Debug) -> bytes::Bytes {
        match self {
            Self::Done(_, b) => b,
            other => panic!("{backend:?}: expected the whole body, got {other:?}"),
        }
    }

    /// The failure reading the body, or a panic naming `backend` and what came instead.
    pub fn body_failure(self, backend: impl std::fmt::Debug) -> hotdata_core::TransportError {
        match self {
            Self::BodyFailed(e) => e,
            other => panic!("{backend:?}: expected a failure reading the body, got {other:?}"),
        }
    }

    /// The failure before any response, or a panic naming `backend` and what came instead.
    pub fn send_failure(self, backend: impl std::fmt::Debug) -> hotdata_core::TransportError {
        match self {
            Self::SendFailed(e) => e,
            other => panic!("{backend:?}: expected a failure before any response, got {other:?}"),
        }
    }
}

/// Sends `request` through a blocking transport and reads the whole body, calling `between`
/// once the head has arrived.
pub fn exchange_blocking(
    transport: &dyn hotdata_core::BlockingTransport,
    request: hotdata_core::HttpRequest,
    options: &hotdata_core::SendOptions,
    between: impl FnOnce(),
) -> Exchange {
    let response = match transport.send(request, options) {
        Ok(r) => r,
        Err(e) => return Exchange::SendFailed(e),
    };
    between();
    let status = response.status();
    let mut body = Vec::new();
    for chunk in response.into_body() {
        match chunk {
            Ok(c) => body.extend_from_slice(&c),
            Err(e) => return Exchange::BodyFailed(e),
        }
    }
    Exchange::Done(status, body.into())
}

/// Sends `request` through an async transport and reads the whole body, calling `between`
/// once the head has arrived.
pub async fn exchange_async(
    transport: &dyn hotdata_core::AsyncTransport,
    request: hotdata_core::HttpRequest,
    options: &hotdata_core::SendOptions,
    between: impl FnOnce(),
) -> Exchange {
    let response = match transport.send(request, options).await {
        Ok(r) => r,
        Err(e) => return Exchange::SendFailed(e),
    };
    between();
    let status = response.status();
    match response.into_body().collect().await {
        Ok(b) => Exchange::Done(status, b),
        Err(e) => Exchange::BodyFailed(e),
    }
}
