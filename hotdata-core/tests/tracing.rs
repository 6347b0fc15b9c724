//! Each attempt emits a `tracing` event with operation, method, path, status, attempt and
//! elapsed time; credentials, finalize tokens and query strings never appear in them.

use std::time::SystemTime;

use hotdata_core::testing::{FakeTransport, ManualRuntime, TraceCapture, response, response_with};
use hotdata_core::{BlockingClient, Config};

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn attempts_are_traced_without_secrets() {
    let capture = TraceCapture::default();
    let transport = FakeTransport::script(vec![
        Ok(response_with(429, "{}", "retry-after", "1")),
        Ok(response(200, r#"{"upload_id":"u","status":"finalized","size_bytes":1,"created_at":"t"}"#)),
    ]);
    let client = BlockingClient::new(
        Config::new("hd_super_secret").with_workspace_id("ws").with_base_url("https://h/x"),
        transport,
        ManualRuntime::new(SystemTime::UNIX_EPOCH),
        "t",
    );
    tracing::subscriber::with_default(capture.clone(), || {
        client
            .uploads()
            .finalize("up_1", "fin_token_secret", hotdata_core::models::FinalizeUploadRequest::new())
            .send()
            .unwrap();
    });
    let lines = capture.lines();
    let attempts: Vec<_> = lines.iter().filter(|l| l.contains("attempt finished")).collect();
    assert_eq!(attempts.len(), 2, "{lines:#?}");
    for field in [
        "operation=\"finalize_upload_handler\"",
        "method=POST",
        "path=\"/x/v1/uploads/up_1/finalize\"",
        "elapsed_ms=",
    ] {
        assert!(attempts[0].contains(field), "missing {field} in {}", attempts[0]);
    }
    assert!(attempts[0].contains("status=429") && attempts[0].contains("attempt=1"), "{}", attempts[0]);
    assert!(attempts[1].contains("status=200") && attempts[1].contains("attempt=2"), "{}", attempts[1]);
    assert!(lines.iter().any(|l| l.contains("retrying") && l.contains("delay_ms=")));
    for l in &lines {
        assert!(!l.contains("secret"), "secret in trace: {l}");
    }
}
