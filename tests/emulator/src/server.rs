//! The hyper server: connections, CORS, the control routes' gate, fault application and
//! the request log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::body::EmuBody;
use crate::faults::{Fault, FaultSet, RetryAfter};
use crate::http::{ApiError, Body, Req, Resp};
use crate::state::{State, Workspace};
use crate::util::{http_date, parse_query};
use crate::{Config, RequestRecord, lock};

/// Headers browsers may read.
pub(crate) const EXPOSED: &str = "ETag, X-Total-Row-Count, Link, Retry-After, X-Query-Run-Id, \
X-Result-Id, X-Execution-Time-Ms, X-Query-Warning, Content-Length, Content-Type, Location";

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: Config,
    pub base_url: String,
    pub state: Mutex<State>,
    pub faults: Mutex<FaultSet>,
    pub log: Mutex<Vec<RequestRecord>>,
    pub secret: u64,
    /// The bound address (instances bind its IP, on a port of their own).
    pub addr: SocketAddr,
    /// The instances this emulator runs (`/_emulator/instances`); `None` for an instance,
    /// which runs none.
    pub instances: Option<crate::instance::Instances>,
}

impl Shared {
    pub(crate) fn new(
        cfg: Config,
        addr: SocketAddr,
        base_url: String,
        instances: Option<crate::instance::Instances>,
    ) -> Shared {
        let mut st = State::new(cfg.api_keys.clone(), cfg.organization_id.clone());
        st.workspaces = seeded_workspaces(&cfg);
        let faults = startup_faults(&cfg);
        let secret = crate::util::hash64(
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64,
            &[base_url.as_bytes()],
        );
        Shared {
            cfg,
            base_url,
            state: Mutex::new(st),
            faults: Mutex::new(faults),
            log: Mutex::new(Vec::new()),
            secret,
            addr,
            instances,
        }
    }

    /// The bytes of a finalized upload, in whichever workspace holds it.
    pub(crate) fn uploaded_object(&self, upload_id: &str) -> Option<Bytes> {
        let st = lock(&self.state);
        st.workspaces
            .values()
            .find_map(|ws| ws.uploads.get(upload_id))
            .filter(|u| u.finalized.is_some())
            .and_then(|u| u.object.as_ref().map(|o| o.bytes()))
    }

    /// The content type and file name an upload session was created with, in whichever
    /// workspace holds it.
    pub(crate) fn upload_metadata(&self, upload_id: &str) -> Option<crate::UploadMetadata> {
        let st = lock(&self.state);
        st.workspaces.values().find_map(|ws| ws.uploads.get(upload_id)).map(|u| crate::UploadMetadata {
            content_type: u.content_type.clone(),
            filename: u.filename.clone(),
        })
    }

    /// Back to how the emulator started, in the parts `scope` names: fault rules (the
    /// startup rules again, counters at zero), the request log (emptied), data (the seeded
    /// workspaces, empty; ids keep counting, so no id is ever reused).
    pub(crate) fn reset(&self, scope: crate::control::ResetScope) {
        if scope.faults {
            *lock(&self.faults) = startup_faults(&self.cfg);
        }
        if scope.data {
            lock(&self.state).workspaces = seeded_workspaces(&self.cfg);
        }
        if scope.requests {
            lock(&self.log).clear();
        }
    }
}

/// The configured workspaces, empty.
fn seeded_workspaces(cfg: &Config) -> BTreeMap<String, Workspace> {
    cfg.workspaces
        .iter()
        .enumerate()
        .map(|(i, ws)| {
            let name = if i == 0 { "Emulator".to_string() } else { format!("Emulator {}", i + 1) };
            (ws.clone(), Workspace::new(ws.clone(), name, cfg.organization_id.clone()))
        })
        .collect()
}

/// The configured fault rules, none fired yet.
fn startup_faults(cfg: &Config) -> FaultSet {
    let mut faults = FaultSet::default();
    for f in &cfg.faults {
        faults.push(f.clone());
    }
    faults
}

/// A TCP stream that, when flagged, closes with RST instead of FIN.
struct ResetIo {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResetIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResetIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.reset.load(Ordering::SeqCst) {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.reset.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accept connections until `stop` flips (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let reset = Arc::new(AtomicBool::new(false));
            let io = TokioIo::new(ResetIo { inner: stream, reset: reset.clone() });
            let sh = shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(sh.clone(), reset.clone(), peer, req));
                let _ = http1::Builder::new().keep_alive(true).serve_connection(io, svc).await;
            });
        }
    });
    let _ = stop.changed().await;
    accept.abort();
}

#[derive(Debug)]
struct Aborted;

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("emulator fault: connection reset")
    }
}

impl std::error::Error for Aborted {}

fn retry_after_value(r: RetryAfter) -> String {
    match r {
        RetryAfter::Seconds(s) => s.to_string(),
        RetryAfter::HttpDate(s) => http_date(SystemTime::now() + std::time::Duration::from_secs(s)),
    }
}

fn fault_error(status: u16, retry_after: Option<RetryAfter>, storage: bool) -> Resp {
    let code = match status {
        429 => "OVERLOADED",
        500..=599 => "INTERNAL",
        _ => "INJECTED",
    };
    let code = if storage {
        match status {
            429 | 503 => "SlowDown",
            500..=599 => "InternalError",
            403 => "AccessDenied",
            _ => "InvalidRequest",
        }
    } else {
        code
    };
    let mut e = ApiError::new(status, code, format!("emulator fault: injected HTTP {status}"));
    if storage {
        e = e.xml();
    }
    if let Some(r) = retry_after {
        e = e.header("retry-after", retry_after_value(r));
    }
    e.into_resp()
}

async fn handle(
    sh: Arc<Shared>,
    reset: Arc<AtomicBool>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<EmuBody>, Aborted> {
    let (parts, body) = req.into_parts();
    let origin = parts.headers.get("origin").and_then(|v| v.to_str().ok()).map(str::to_string);
    let path = parts.uri.path().to_string();
    // A control route (`/_emulator/*`) while they are on: gated, never faulted, never
    // logged. While they are off, these paths are unknown paths like any other.
    let control = crate::control::is_control_path(&path) && sh.cfg.control_token.is_some();
    let mut record = RequestRecord {
        method: parts.method.to_string(),
        uri: parts.uri.path_and_query().map_or(path.clone(), |p| p.to_string()),
        operation: String::new(),
        status: 0,
        had_authorization: parts.headers.contains_key("authorization"),
        workspace_id: parts.headers.get("x-workspace-id").and_then(|v| v.to_str().ok()).map(str::to_string),
        body_len: 0,
        fault: None,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if k.as_str() == crate::control::TOKEN_HEADER {
                    "[redacted]".to_string()
                } else {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                };
                (k.as_str().to_string(), v)
            })
            .collect(),
    };

    // CORS preflight never needs auth and never gets faults.
    if parts.method == http::Method::OPTIONS {
        record.operation = "cors_preflight".into();
        record.status = 204;
        if !control {
            lock(&sh.log).push(record);
        }
        let mut resp = Resp::empty(204)
            .header("access-control-allow-methods", "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS")
            .header("access-control-max-age", "600");
        let req_headers = parts
            .headers
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(
                "authorization, content-type, x-workspace-id, x-database-id, \
                 x-upload-finalize-token, x-emulator-token, accept, user-agent",
            )
            .to_string();
        resp = resp.header("access-control-allow-headers", req_headers);
        // While a `close` rule is set, a preflight closes its connection too: otherwise the
        // request it clears would be sent on it, a reused connection (see `Fault::Close`).
        if control || lock(&sh.faults).closes_connections() {
            resp = resp.header("connection", "close");
        }
        return Ok(finish(resp, origin.as_deref(), None));
    }

    if control && let Err(e) = crate::control::gate(&sh.cfg, peer.ip(), &parts.headers) {
        return Ok(finish(e.into_resp(), origin.as_deref(), None));
    }

    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    record.body_len = body.len();
    let req = Req {
        method: parts.method.clone(),
        path: path.clone(),
        query: parse_query(parts.uri.query().unwrap_or("")),
        headers: parts.headers,
        body,
        force_async: false,
    };
    let mut req = req;
    let routed = if crate::control::is_control_path(&path) && !control {
        crate::router::Routed::unknown()
    } else {
        crate::router::route(&req.method, &path)
    };
    let op = routed.op.clone();
    record.operation = op.clone();
    let storage = path.starts_with("/_storage/");
    let fault = if control { None } else { lock(&sh.faults).take(&op, &path, routed.part) };
    record.fault = fault.as_ref().map(|f| format!("{f:?}"));

    let mut after: Option<Fault> = None;
    let mut body_fault: Option<Fault> = None;
    let mut missing_etag = false;
    let mut hidden_etag = false;
    let mut close = false;
    match fault {
        Some(Fault::Status { status, retry_after }) => {
            let resp = fault_error(status, retry_after, storage);
            record.status = status;
            lock(&sh.log).push(record);
            return Ok(finish(resp, origin.as_deref(), None));
        }
        Some(Fault::Reset) => {
            reset.store(true, Ordering::SeqCst);
            lock(&sh.log).push(record);
            return Err(Aborted);
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::ExpiredUrl) => {
            let resp = ApiError::new(403, "AccessDenied", "Request has expired").xml().into_resp();
            record.status = 403;
            lock(&sh.log).push(record);
            return Ok(finish(resp, origin.as_deref(), None));
        }
        Some(Fault::MissingEtag) => missing_etag = true,
        Some(Fault::HiddenEtag) => hidden_etag = true,
        Some(Fault::ForceAsync) => req.force_async = true,
        Some(Fault::Close) => close = true,
        Some(Fault::NotReady { retry_after }) => {
            let id = path.rsplit('/').next().unwrap_or("").to_string();
            let resp = Resp::json(
                202,
                &serde_json::json!({"result_id": crate::util::percent_decode(&id), "status": "pending"}),
            )
            .header("retry-after", retry_after.map_or("1".to_string(), retry_after_value));
            record.status = 202;
            lock(&sh.log).push(record);
            return Ok(finish(resp, origin.as_deref(), None));
        }
        Some(f @ (Fault::FailAfterCommit { .. } | Fault::ResetAfterCommit)) => after = Some(f),
        Some(f @ (Fault::SlowBody { .. } | Fault::Truncate { .. })) => body_fault = Some(f),
        None => {}
    }

    let sh2 = sh.clone();
    let mut resp =
        match tokio::task::spawn_blocking(move || crate::router::dispatch(&sh2, &routed, &req)).await {
            Ok(r) => r,
            Err(_) => ApiError::new(500, "INTERNAL", "emulator handler panicked").into_resp(),
        };

    match after {
        Some(Fault::FailAfterCommit { status }) => {
            resp = fault_error(status, None, storage);
        }
        Some(Fault::ResetAfterCommit) => {
            reset.store(true, Ordering::SeqCst);
            record.status = 0;
            lock(&sh.log).push(record);
            return Err(Aborted);
        }
        _ => {}
    }
    if missing_etag {
        resp.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("etag"));
    }
    record.status = resp.status;
    if !control {
        lock(&sh.log).push(record);
    }
    let mut out = finish(resp, origin.as_deref(), body_fault);
    if close || control {
        // hyper ends the connection after a response that says so. Control answers always
        // do: a test's own control calls never leave a kept-alive connection that the
        // client's next request would reuse (see `Fault::Close`).
        out.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if hidden_etag {
        let exposed = EXPOSED.replacen("ETag, ", "", 1);
        if let Ok(v) = HeaderValue::from_str(&exposed) {
            out.headers_mut().insert("access-control-expose-headers", v);
        }
    }
    Ok(out)
}

fn finish(resp: Resp, origin: Option<&str>, body_fault: Option<Fault>) -> Response<EmuBody> {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body_src = resp.body;
    // Truncation needs a known length: materialise streams first.
    if let Some(Fault::Truncate { .. }) = body_fault
        && let Body::Stream(s) = body_src
    {
        let mut all = Vec::new();
        for c in s {
            all.extend_from_slice(&c);
        }
        body_src = Body::Full(Bytes::from(all));
    }
    let mut body = EmuBody::new(body_src);
    match body_fault {
        Some(Fault::SlowBody { chunk, delay }) => body = body.slow(chunk, delay),
        Some(Fault::Truncate { at }) => {
            let n = body.exact_len().unwrap_or(0) as usize;
            body = body.truncate(at.unwrap_or(n / 2).min(n.saturating_sub(1)));
        }
        _ => {}
    }
    let exact = body.exact_len();
    let mut out = Response::new(body);
    *out.status_mut() = status;
    let h = out.headers_mut();
    for (k, v) in resp.headers {
        if let (Ok(k), Ok(v)) =
            (http::header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v))
        {
            h.append(k, v);
        }
    }
    if let Some(n) = exact
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
    {
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    h.insert(
        "access-control-allow-origin",
        HeaderValue::from_str(origin.unwrap_or("*")).unwrap_or(HeaderValue::from_static("*")),
    );
    if origin.is_some() {
        h.append("vary", HeaderValue::from_static("Origin"));
    }
    h.insert("access-control-expose-headers", HeaderValue::from_static(EXPOSED));
    out
}
