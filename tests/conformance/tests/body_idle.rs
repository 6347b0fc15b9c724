//! `SendOptions::body_idle_timeout` on every native transport, against a raw server on
//! 127.0.0.1 sending slowly (`hotdata_conformance::faults::Paced`): with it set, the
//! request's timeout bounds the exchange until the response head and the body is bounded
//! only by the idle timeout. A body trickling for longer than the timeout completes; the
//! same body without the option fails at the timeout; a body that stalls fails with a
//! timeout once idle for that long; a head slower than the idle timeout but within the
//! timeout is waited for, and a head slower than the timeout still fails.
//!
//! Timeouts are short (a few hundred milliseconds); the only wall-clock checks are hang
//! guards, far from the values under test.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hotdata_conformance::faults::{Exchange, Paced, RawServer, Script, exchange_async, exchange_blocking};
use hotdata_core::{AsyncTransport, RequestBody, SendOptions};
use hotdata_core::{TransportErrorKind as K, config::DEFAULT_TIMEOUT};

/// The bring-your-own-stack example, held to the same rules as the shipped backends.
#[path = "../../../examples/hyper_transport.rs"]
mod hyper_transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// `UreqTransport::new`: the transport's own agent.
    Ureq,
    /// `UreqTransport::with_agent`: an agent the caller built.
    UreqAgent,
    Reqwest,
    Hyper,
}

const BACKENDS: [Backend; 4] = [Backend::Ureq, Backend::UreqAgent, Backend::Reqwest, Backend::Hyper];

/// The whole-request timeout of these tests: shorter than any trickled body here.
const TIMEOUT: Duration = Duration::from_millis(400);

/// A hang guard: every exchange here ends well within it, unless the bound under test is
/// missing.
const GUARD: Duration = Duration::from_secs(10);

/// `GET url` through `backend`, the whole body read.
fn exchange(backend: Backend, url: &str, options: SendOptions) -> Exchange {
    let request =
        http::Request::builder().method("GET").uri(url).body(RequestBody::Bytes(Bytes::new())).unwrap();
    match backend {
        Backend::Ureq => exchange_blocking(&hotdata_ureq::UreqTransport::new(None), request, &options, || {}),
        Backend::UreqAgent => {
            let config = ureq::Agent::config_builder().http_status_as_error(false).build();
            let agent = ureq::Agent::new_with_config(config);
            exchange_blocking(&hotdata_ureq::UreqTransport::with_agent(agent), request, &options, || {})
        }
        Backend::Reqwest | Backend::Hyper => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let transport: Box<dyn AsyncTransport> = match backend {
                Backend::Reqwest => Box::new(hotdata_reqwest::ReqwestTransport::new(None)),
                _ => Box::new(hyper_transport::HyperTransport::new(None)),
            };
            rt.block_on(exchange_async(&*transport, request, &options, || {}))
        }
    }
}

/// 8 KiB of recognisable bytes.
fn payload() -> Vec<u8> {
    (0..8192u32).map(|i| (i % 251) as u8).collect()
}

/// The payload in 8 pieces 150 ms apart: about a second, well past [`TIMEOUT`].
fn trickle() -> Paced {
    Paced::trickle(payload(), 8, Duration::from_millis(150))
}

fn with_idle(timeout: Duration, idle: Duration) -> SendOptions {
    SendOptions::with_timeout(Some(timeout)).with_body_idle_timeout(Some(idle))
}

#[test]
fn a_body_trickling_past_the_timeout_completes_under_an_idle_timeout() {
    for backend in BACKENDS {
        let server = RawServer::start(Script::Paced(trickle()));
        let t0 = Instant::now();
        let body = exchange(backend, &server.url(), with_idle(TIMEOUT, Duration::from_secs(2))).body(backend);
        assert_eq!(body, payload(), "{backend:?}");
        assert!(t0.elapsed() > TIMEOUT, "{backend:?}: the body really outlasted the timeout");
    }
}

#[test]
fn without_an_idle_timeout_the_same_body_fails_at_the_timeout() {
    for backend in BACKENDS {
        let server = RawServer::start(Script::Paced(trickle()));
        let e =
            exchange(backend, &server.url(), SendOptions::with_timeout(Some(TIMEOUT))).body_failure(backend);
        assert_eq!(e.kind(), K::Timeout, "{backend:?}: {e:?}");
    }
}

#[test]
fn a_body_that_stalls_fails_once_idle_for_the_idle_timeout() {
    for backend in BACKENDS {
        let server = RawServer::start(Script::Paced(trickle().stall_after(2)));
        let t0 = Instant::now();
        // The default whole-request timeout (120 s) is far past the guard: only the idle
        // timeout can end this in time.
        let options = with_idle(DEFAULT_TIMEOUT, Duration::from_millis(300));
        let e = exchange(backend, &server.url(), options).body_failure(backend);
        assert_eq!(e.kind(), K::Timeout, "{backend:?}: {e:?}");
        assert!(t0.elapsed() < GUARD, "{backend:?}: hung for {:?}", t0.elapsed());
    }
}

#[test]
fn the_idle_timeout_does_not_bound_the_wait_for_the_head() {
    for backend in BACKENDS {
        if backend == Backend::UreqAgent {
            continue; // see over_a_callers_ureq_agent_the_idle_timeout_bounds_the_head_too
        }
        let server = RawServer::start(Script::Paced(trickle().head_after(Duration::from_millis(700))));
        let options = with_idle(Duration::from_secs(5), Duration::from_millis(300));
        let body = exchange(backend, &server.url(), options).body(backend);
        assert_eq!(body, payload(), "{backend:?}: a head slower than the idle timeout is waited for");
    }
}

#[test]
fn the_head_is_still_bounded_by_the_timeout() {
    for backend in BACKENDS {
        let server = RawServer::start(Script::Paced(trickle().head_after(Duration::from_secs(3))));
        let t0 = Instant::now();
        let options = with_idle(Duration::from_millis(300), Duration::from_secs(20));
        let e = exchange(backend, &server.url(), options).send_failure(backend);
        assert_eq!(e.kind(), K::Timeout, "{backend:?}: {e:?}");
        assert!(t0.elapsed() < GUARD, "{backend:?}: hung for {:?}", t0.elapsed());
    }
}

/// Over an agent the caller built, `hotdata-ureq` cannot tell the head's reads from the
/// body's (see `UreqTransport::with_agent`): ureq's per-read timeout, the idle timeout,
/// bounds every wait for bytes, the head's too.
#[test]
fn over_a_callers_ureq_agent_the_idle_timeout_bounds_the_head_too() {
    let backend = Backend::UreqAgent;
    let server = RawServer::start(Script::Paced(trickle().head_after(Duration::from_millis(700))));
    let options = with_idle(Duration::from_secs(5), Duration::from_millis(300));
    let e = exchange(backend, &server.url(), options).send_failure(backend);
    assert_eq!(e.kind(), K::Timeout, "{e:?}");
}
