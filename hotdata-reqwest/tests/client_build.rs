//! A reqwest client that cannot be built never panics: the transport reports the failure
//! on each request, as a permanent local failure (`Request`: never sent, never retried), and
//! `ReqwestTransport::try_new` reports it at once.
//!
//! The failure is real: the test runs itself again in a child process whose platform has no
//! root certificate (`SSL_CERT_FILE` names a file that does not exist, and rustls-native-certs
//! then reads nothing else), so the TLS configuration cannot be built. Its own test binary:
//! the child is this binary.

use std::time::Duration;

use hotdata_core::{Config, DynamicRequest, ErrorKind, RetryPolicy, TransportErrorKind};

const TEST: &str = "a_client_that_cannot_be_built_fails_its_requests_instead_of_panicking";
const CHILD: &str = "HOTDATA_CLIENT_BUILD_CHILD";

#[test]
fn a_client_that_cannot_be_built_fails_its_requests_instead_of_panicking() {
    if std::env::var_os(CHILD).is_none() {
        let missing = std::env::temp_dir().join(format!("hotdata-no-roots-{}", std::process::id()));
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("SSL_CERT_FILE", missing.join("roots.pem"))
            .env("SSL_CERT_DIR", &missing)
            .output()
            .expect("the test runs again as a child");
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the child failed:\n{text}");
        assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
        return;
    }

    let early = hotdata_reqwest::ReqwestTransport::try_new(Some(Duration::from_secs(5)));
    let early = early.expect_err("try_new reports the failure at once");
    assert!(early.to_string().contains("could not be built"), "{early}");

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
    assert!(chain.contains("CA certificates"), "the cause is named: {chain}");
    assert_eq!(
        listener.accept().map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "nothing was sent"
    );
}
