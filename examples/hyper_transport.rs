//! Bring your own HTTP stack: a complete Hotdata transport on hyper + hyper-util's client.
//!
//! This file is the template for plugging any HTTP library into the SDK: implement
//! `AsyncTransport` (or `BlockingTransport`), map failures to a `TransportErrorKind`, and
//! hand it to `AsyncClient::new` with a runtime. The conformance suite runs its tests through
//! this very transport. `cargo run --example hyper_transport` lists your workspaces.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hotdata_core::{
    AsyncBody, AsyncClient, AsyncRuntime, AsyncTransport, BoxFuture, Config, HttpRequest, SendOptions,
};
use hotdata_core::{TransportError, TransportErrorKind as Kind};
use http_body_util::Full;
use hyper::body::Body as _;
use hyper_util::client::legacy::{Client, connect::HttpConnector};

/// An `AsyncTransport` over hyper-util's pooled client (plain HTTP; add a TLS connector
/// such as hyper-rustls for HTTPS). It ignores `SendOptions::decompress`, which a transport
/// may: it asks for no compression, so every answer arrives uncompressed (to honour it, send
/// `Accept-Encoding: gzip, deflate` on those requests and decode the body, for example with
/// tower-http's `DecompressionLayer`).
pub struct HyperTransport(Client<HttpConnector, Full<Bytes>>);

impl HyperTransport {
    /// A transport with the given connect timeout.
    pub fn new(connect_timeout: Option<Duration>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(connect_timeout);
        Self(Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
    }
}

impl AsyncTransport for HyperTransport {
    fn send<'a>(
        &'a self,
        req: HttpRequest,
        opts: &'a SendOptions,
    ) -> BoxFuture<'a, Result<http::Response<AsyncBody>, TransportError>> {
        Box::pin(async move {
            let req = req.map(|b| Full::new(Bytes::copy_from_slice(b.as_bytes())));
            let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
            let sent = self.0.request(req);
            let response = match deadline {
                Some(d) => tokio::time::timeout_at(d, sent)
                    .await
                    .map_err(|e| TransportError::new(Kind::Timeout, e))?,
                None => sent.await,
            };
            let kind = |e: &hyper_util::client::legacy::Error| {
                if e.is_connect() { Kind::Connect } else { Kind::NoResponse }
            };
            let response = response.map_err(|e| TransportError::new(kind(&e), e))?;
            // A streamed answer's body is bounded by an idle timeout, any other by the deadline.
            let idle = opts.body_idle_timeout;
            let deadline = deadline.filter(|_| idle.is_none()).map(|d| Box::pin(tokio::time::sleep_until(d)));
            Ok(response.map(|body| AsyncBody::from_stream(Chunks { body, deadline, idle })))
        })
    }
}

/// The response body as a stream of data chunks, bounded by the request's deadline, or by
/// an idle timeout restarted by every chunk.
struct Chunks {
    body: hyper::body::Incoming,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    idle: Option<Duration>,
}

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.idle.is_none() && self.deadline.as_mut().is_some_and(|d| d.as_mut().poll(cx).is_ready()) {
            return Poll::Ready(Some(Err(TransportError::from_kind(Kind::Timeout))));
        }
        let polled = loop {
            break match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(TransportError::new(Kind::Body, e)))),
                done => done.map(|_| None),
            };
        };
        if let Some(idle) = self.idle {
            // The idle timer runs only while waiting for bytes.
            if polled.is_ready() {
                self.deadline = None;
            } else if self
                .deadline
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)))
                .as_mut()
                .poll(cx)
                .is_ready()
            {
                return Poll::Ready(Some(Err(TransportError::from_kind(Kind::Timeout))));
            }
        }
        polled
    }
}

/// Tokio's clock and sleep.
pub struct TokioClock(Instant);

impl AsyncRuntime for TokioClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A client over this transport.
pub fn client(config: Config) -> AsyncClient {
    let transport = Arc::new(HyperTransport::new(config.connect_timeout));
    AsyncClient::new(config, transport, Arc::new(TokioClock(Instant::now())), "hyper")
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), hotdata_core::Error> {
    for workspace in client(Config::from_env()).workspaces().list().await?.workspaces {
        println!("{} {}", workspace.public_id, workspace.name);
    }
    Ok(())
}
