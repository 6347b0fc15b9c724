//! No backend touches process-wide state: building either native client, and sending
//! requests through it over HTTP and HTTPS, leaves rustls without a process default crypto
//! provider (`CryptoProvider::install_default` is the caller's to call, not the SDK's).
//!
//! Its own test binary, one test: nothing else in this process may install a provider.

use std::time::Duration;

use hotdata_conformance::faults::TlsServer;
use hotdata_conformance::server::{Reply, TestServer};
use hotdata_core::{Config, DynamicRequest, ErrorKind, RetryPolicy, TransportErrorKind};
use serde_json::json;

fn no_default() -> bool {
    rustls::crypto::CryptoProvider::get_default().is_none()
}

#[test]
fn building_and_using_the_clients_installs_no_process_default_provider() {
    assert!(no_default(), "nothing installed one before the test");
    let http = TestServer::start(|_, _| Reply::json(200, json!({"total": 3})));
    let https = TlsServer::start();
    let config = |url: String| {
        Config::new("hd_key")
            .with_workspace_id("ws_1")
            .with_base_url(url)
            .with_retry(RetryPolicy::default().with_max_retries(0))
    };
    let count = || DynamicRequest::new("count_databases").unwrap();

    let _ = hotdata_ureq::UreqTransport::new(Some(Duration::from_secs(5)));
    let blocking = hotdata_ureq::client(config(http.url()));
    assert_eq!(blocking.call(count()).send().unwrap()["total"], 3);
    let err = hotdata_ureq::client(config(https.url())).call(count()).send().unwrap_err();
    // The handshake ran (with ring) and the client rejected the certificate.
    assert_eq!(
        (err.kind(), err.transport_kind()),
        (ErrorKind::Transport, Some(TransportErrorKind::Tls)),
        "ureq: {err:?}"
    );
    assert!(no_default(), "ureq installed a process default provider");

    let _ = hotdata_reqwest::ReqwestTransport::new(Some(Duration::from_secs(5)));
    let _ = hotdata_reqwest::ReqwestTransport::try_new(None).expect("the transport builds");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let asynchronous = hotdata_reqwest::client(config(http.url()));
        assert_eq!(asynchronous.call(count()).await.unwrap()["total"], 3);
        let err = hotdata_reqwest::client(config(https.url())).call(count()).await.unwrap_err();
        assert_eq!(
            (err.kind(), err.transport_kind()),
            (ErrorKind::Transport, Some(TransportErrorKind::Tls)),
            "reqwest: {err:?}"
        );
    });
    assert!(no_default(), "reqwest installed a process default provider");
}
