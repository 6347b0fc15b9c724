//! The backends' own clients use ring, given to rustls explicitly: a process default crypto
//! provider installed by someone else (here a broken one, without cipher suites) changes
//! nothing for them. The handshake with a local TLS server runs, and fails only because the
//! client rejects the server's self-signed certificate.
//!
//! Its own test binary, one test: it installs a process-wide provider.

use std::time::Duration;

use hotdata_conformance::faults::TlsServer;
use hotdata_core::{Config, DynamicRequest, ErrorKind, RetryPolicy, TransportErrorKind};

#[test]
fn a_process_default_provider_does_not_change_the_backends_tls() {
    let broken = rustls::crypto::CryptoProvider {
        cipher_suites: Vec::new(),
        ..rustls::crypto::ring::default_provider()
    };
    broken.install_default().expect("the first provider of this process");

    let https = TlsServer::start();
    let config = Config::new("hd_key")
        .with_workspace_id("ws_1")
        .with_base_url(https.url())
        .with_retry(RetryPolicy::default().with_max_retries(0));
    let count = || DynamicRequest::new("count_databases").unwrap();

    let err = hotdata_ureq::client(config.clone()).call(count()).send().unwrap_err();
    assert_eq!(
        (err.kind(), err.transport_kind()),
        (ErrorKind::Transport, Some(TransportErrorKind::Tls)),
        "ureq: {err:?}"
    );

    assert!(
        hotdata_reqwest::ReqwestTransport::try_new(Some(Duration::from_secs(5))).is_ok(),
        "reqwest builds"
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(async { hotdata_reqwest::client(config).call(count()).await }).unwrap_err();
    assert_eq!(
        (err.kind(), err.transport_kind()),
        (ErrorKind::Transport, Some(TransportErrorKind::Tls)),
        "reqwest: {err:?}"
    );
    assert_eq!(https.accepted(), 2, "each backend reached the server once");
}
