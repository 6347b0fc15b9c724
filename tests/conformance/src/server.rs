//! A scripted HTTP/1.1 server on 127.0.0.1, on an ephemeral port, on its own thread; it
//! stops when dropped. Each request is recorded and answered by the test's closure.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: http::Method,
    /// Path and query, as sent on the wire.
    pub target: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Seen {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A response.
    Respond { status: u16, headers: Vec<(String, String)>, body: Bytes },
    /// Close the connection without any response.
    Reset,
    /// Wait, then answer.
    Delay(Duration, Box<Reply>),
}

impl Reply {
    /// A JSON response.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
        }
    }

    /// An empty response.
    pub fn status(status: u16) -> Self {
        Self::Respond { status, headers: vec![], body: Bytes::new() }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Self::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// The running server. Dropping it stops it.
pub struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server answering request number `n` (from 0) with `handler(&request, n)`.
    pub fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).expect("send addr");
                loop {
                    let (stream, _) = tokio::select! {
                        _ = &mut stop_rx => break,
                        accepted = listener.accept() => match accepted { Ok(s) => s, Err(_) => continue },
                    };
                    let handler = handler.clone();
                    let seen = seen2.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req: http::Request<Incoming>| {
                            let handler = handler.clone();
                            let seen = seen.clone();
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                let target =
                                    parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
                                let request =
                                    Seen { method: parts.method, target, headers: parts.headers, body };
                                let n = {
                                    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
                                    s.push(request.clone());
                                    s.len() - 1
                                };
                                let mut reply = handler(&request, n);
                                loop {
                                    match reply {
                                        Reply::Delay(d, next) => {
                                            tokio::time::sleep(d).await;
                                            reply = *next;
                                        }
                                        Reply::Reset => {
                                            return Err::<http::Response<Full<Bytes>>, _>("reset");
                                        }
                                        Reply::Respond { status, headers, body } => {
                                            let mut r = http::Response::builder().status(status);
                                            for (k, v) in headers {
                                                r = r.header(k, v);
                                            }
                                            return Ok(r.body(Full::new(body)).expect("response"));
                                        }
                                    }
                                }
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        let addr = addr_rx.recv().expect("server address");
        Self { addr, seen, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
