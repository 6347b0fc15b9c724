//! A reqwest client that cannot be built never panics: the transport reports the failure
//! on each request, as a permanent local failure (`Request`: never sent, never retried), and
//! `ReqwestTransport::try_new` reports it at once.
//!
//! Its own test binary (one process): it installs a broken process-wide rustls provider
//! (no cipher suites), which makes reqwest's `ClientBuilder::build` fail.

use std::time::Duration;

use hotdata_core::{Config, DynamicRequest, ErrorKind, RetryPolicy, TransportErrorKind};

#[test]
fn a_client_that_cannot_be_built_fails_its_requests_instead_of_panicking() {
    let broken = rustls::crypto::CryptoProvider {
        cipher_suites: Vec::new(),
        ..rustls::crypto::ring::default_provider()
    };
    broken.install_default().expect("the first provider of this process");

    let early = hotdata_reqwest::ReqwestTransport::try_new(Some(Duration::from_secs(5)));
    assert!(early.is_err(), "try_new reports the failure at once");

    // Nothing may reach this listener: the request is never sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let retries = RetryPolicy::default().with_max_retries(3).with_backoff(Duration::ZERO, Duration::ZERO);
    let config = Config::new("hd_key").with_workspace_id("ws_1").with_base_url(url).with_retry(retries);
    let client = hotdata_reqwest::client(config);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err =
        rt.block_on(async { client.call(DynamicRequest::new("list_databases").unwrap()).await }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert_eq!(err.transport_kind(), Some(TransportErrorKind::Request), "{err:?}");
    assert!(err.attempts() <= 1, "a transport that cannot be built is not retried: {err:?}");
    let mut chain = String::new();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!("{s} / "));
        source = s.source();
    }
    assert!(chain.contains("reqwest client could not be built"), "{chain}");
    assert_eq!(
        listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "nothing was sent"
    );
}
