//! How each native backend classifies real failures, made on 127.0.0.1 (see
//! `hotdata_conformance::faults`): a refused port, an unresolvable host, a connect timeout
//! (a listener whose backlog is full), a rejected TLS certificate, a reset before any
//! response, a reset mid-body and a stalled body. The kinds are what the core's retry rules
//! read: "never sent" failures are retried on every operation, permanent ones (a rejected
//! certificate) never, and a failure after the request may have arrived only where an
//! operation allows it. Then the same failures through a client with a retry policy.

use std::time::Duration;

use bytes::Bytes;
use hotdata_conformance::faults::{self, Exchange, FullBacklog, RawServer, Script, TlsServer};
use hotdata_core::{
    Config, DynamicRequest, Error, ErrorKind, RequestBody, RetryPolicy, SendOptions, TransportError,
    TransportErrorKind as K,
};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Ureq,
    Reqwest,
}

const BACKENDS: [Backend; 2] = [Backend::Ureq, Backend::Reqwest];

/// A connect timeout short enough for a test, long enough for loopback.
const CONNECT: Duration = Duration::from_millis(300);

/// Sends `request` through the backend's own transport (`connect_timeout` = [`CONNECT`])
/// and reads the whole body, calling `between` once the head has arrived.
fn exchange(backend: Backend, request: http::Request<RequestBody>, options: SendOptions) -> Exchange {
    exchange_then(backend, request, options, || {})
}

fn exchange_then(
    backend: Backend,
    request: http::Request<RequestBody>,
    options: SendOptions,
    between: impl FnOnce(),
) -> Exchange {
    match backend {
        Backend::Ureq => {
            let transport = hotdata_ureq::UreqTransport::new(Some(CONNECT));
            faults::exchange_blocking(&transport, request, &options, between)
        }
        Backend::Reqwest => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let transport = hotdata_reqwest::ReqwestTransport::new(Some(CONNECT));
            rt.block_on(faults::exchange_async(&transport, request, &options, between))
        }
    }
}

fn get(url: &str) -> http::Request<RequestBody> {
    http::Request::builder().method("GET").uri(url).body(RequestBody::Bytes(Bytes::new())).unwrap()
}

/// A hang guard, never a timing assertion.
fn options() -> SendOptions {
    SendOptions::with_timeout(Some(Duration::from_secs(20)))
}

/// The whole source chain, `Display` and `Debug` of each link.
fn chain(e: &TransportError) -> String {
    let mut text = format!("{e} / {e:?}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(" / {s} / {s:?}"));
        source = s.source();
    }
    text
}

#[test]
fn a_refused_connection_was_never_sent() {
    for backend in BACKENDS {
        let e = exchange(backend, get(&faults::refused_url()), options()).send_failure(backend);
        assert_eq!(e.kind(), K::Connect, "{backend:?}: {}", chain(&e));
    }
}

#[test]
fn an_unresolvable_host_was_never_sent_and_stays_retryable() {
    for backend in BACKENDS {
        let e = exchange(backend, get(&faults::unresolvable_url()), options()).send_failure(backend);
        assert_eq!(e.kind(), K::Connect, "{backend:?}: {}", chain(&e));
        assert!(!e.kind().is_permanent(), "DNS failures are often passing");
    }
}

#[test]
fn a_connect_timeout_was_never_sent() {
    for backend in BACKENDS {
        let backlog = FullBacklog::start();
        let e = exchange(backend, get(&backlog.url()), options()).send_failure(backend);
        assert_eq!(e.kind(), K::Connect, "{backend:?}: a connect timeout never sent anything: {}", chain(&e));
    }
}

#[test]
fn a_rejected_certificate_was_never_sent_and_is_permanent() {
    for backend in BACKENDS {
        let server = TlsServer::start();
        let e = exchange(backend, get(&format!("{}/v1/workspaces", server.url())), options())
            .send_failure(backend);
        assert_eq!(e.kind(), K::Tls, "{backend:?}: {}", chain(&e));
        assert!(e.kind().never_sent() && e.kind().is_permanent());
        assert_eq!(server.accepted(), 1, "{backend:?}: one connection, no retry inside the transport");
    }
}

#[test]
fn a_reset_before_any_response_may_have_arrived() {
    for backend in BACKENDS {
        let server = RawServer::start(Script::ResetBeforeResponse);
        let put = http::Request::builder()
            .method("PUT")
            .uri(format!("{}/bucket/part", server.url()))
            .header("content-length", "5")
            .body(RequestBody::Bytes(Bytes::from_static(b"12345")))
            .unwrap();
        let e = exchange(backend, put, options()).send_failure(backend);
        assert_eq!(e.kind(), K::NoResponse, "{backend:?}: {}", chain(&e));
        assert_eq!(server.seen().len(), 1, "{backend:?}: the server read the whole request");
        assert_eq!(server.seen()[0].body, b"12345");
    }
}

#[test]
fn a_reset_mid_body_is_a_body_failure() {
    for backend in BACKENDS {
        let server = RawServer::start(Script::ResetMidBody);
        // The reset comes once the head is in the client's hands.
        let e =
            exchange_then(backend, get(&server.url()), options(), || server.release()).body_failure(backend);
        assert_eq!(e.kind(), K::Body, "{backend:?}: {}", chain(&e));
    }
}

#[test]
fn a_stalled_body_times_out() {
    for backend in BACKENDS {
        let server = RawServer::start(Script::StallBody);
        let options = SendOptions::with_timeout(Some(Duration::from_millis(500)));
        let e = exchange(backend, get(&server.url()), options).body_failure(backend);
        assert_eq!(e.kind(), K::Timeout, "{backend:?}: {}", chain(&e));
    }
}

/// Runs `request` through a client of `backend` for `config`.
fn call(backend: Backend, config: Config, request: DynamicRequest) -> Result<serde_json::Value, Error> {
    match backend {
        Backend::Ureq => hotdata_ureq::client(config).call(request).send(),
        Backend::Reqwest => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move { hotdata_reqwest::client(config).call(request).await })
        }
    }
}

/// Three retries, 1 ms apart.
fn retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(3)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(1))
}

#[test]
fn a_rejected_certificate_is_tried_once() {
    for backend in BACKENDS {
        let server = TlsServer::start();
        let config =
            Config::new("hd_key").with_workspace_id("ws_1").with_base_url(server.url()).with_retry(retries());
        let request = DynamicRequest::new("list_databases").unwrap();
        let err = call(backend, config, request).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport, "{backend:?}: {err:?}");
        assert_eq!(err.transport_kind(), Some(K::Tls), "{backend:?}: {err:?}");
        // `attempts` is counted from the second attempt on (0 or 1 for a single one).
        assert!(err.attempts() <= 1, "{backend:?}: a permanent failure is not retried: {err:?}");
        assert_eq!(server.accepted(), 1, "{backend:?}: one TCP connection in all");
    }
}

#[test]
fn a_connect_timeout_is_retried_even_for_a_post() {
    for backend in BACKENDS {
        let backlog = FullBacklog::start();
        let config = Config::new("hd_key")
            .with_workspace_id("ws_1")
            .with_base_url(backlog.url())
            .with_connect_timeout(Some(CONNECT))
            .with_retry(retries().with_max_retries(1));
        let query = DynamicRequest::new("query").unwrap().body(json!({"sql": "select 1"}));
        let err = call(backend, config, query).unwrap_err();
        assert_eq!(err.transport_kind(), Some(K::Connect), "{backend:?}: {err:?}");
        assert_eq!(err.kind(), ErrorKind::Transport, "{backend:?}: not a timeout of the request");
        assert_eq!(err.attempts(), 2, "{backend:?}: a POST that was never sent is sent again");
    }
}
