//! Which requests ask the transport for a compressed answer it decodes
//! (`SendOptions::decompress`): the answers the client reads whole, and nothing else.
//! Storage PUTs, streamed answers (downloads, Arrow results and queries) and endpoints that
//! name their own `Accept-Encoding` never do. The core adds no `Accept-Encoding` for it: the
//! transport does (or does not, and nothing is compressed).

use std::time::SystemTime;

use hotdata_core::models::{QueryRequest, ResultsFormatQuery};
use hotdata_core::testing::{FakeTransport, ManualRuntime, RecordedRequest, Reply, response, response_with};
use hotdata_core::upload::UploadOptions;
use hotdata_core::{BlockingClient, Config, DynamicRequest};

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn answer(r: &RecordedRequest) -> Reply {
    if r.uri.host() == Some("storage.test") {
        return Ok(response_with(200, "", "etag", "\"e1\""));
    }
    match (r.method.as_str(), r.uri.path()) {
        ("GET", "/v1/databases/db_1") => Ok(response(
            200,
            r#"{"id": "db_1", "name": "db", "attachments": [], "created_at": "2026-01-01T00:00:00Z",
                "default_catalog": "c", "default_schema": "s", "default_connection_id": "conn_1"}"#,
        )),
        ("POST", "/v1/uploads") => Ok(response(
            201,
            r#"{"upload_id": "up_1", "finalize_token": "tok", "headers": {}, "mode": "single",
                "url": "http://storage.test/single"}"#,
        )),
        ("POST", "/v1/uploads/up_1/finalize") => Ok(response(
            200,
            r#"{"upload_id": "up_1", "status": "finalized", "size_bytes": 4, "created_at": "2026-01-01T00:00:00Z"}"#,
        )),
        ("GET", "/v1/results/r1") => Ok(response_with(200, "a,b\n", "content-type", "text/csv")),
        ("POST", "/v1/query") => Ok(response_with(200, "", "content-type", "application/json")),
        _ => Ok(response(404, "{}")),
    }
}

fn client() -> (BlockingClient, std::sync::Arc<FakeTransport>) {
    let t = FakeTransport::new(answer);
    let config = Config::new("k").with_workspace_id("w").with_base_url("http://api.test");
    (BlockingClient::new(config, t.clone(), ManualRuntime::new(SystemTime::UNIX_EPOCH), "t"), t)
}

/// `(method path, decompress, the request's own Accept-Encoding)` of each request sent.
fn sent(t: &FakeTransport) -> Vec<(String, bool, Option<String>)> {
    t.requests()
        .into_iter()
        .map(|r| {
            let host = r.uri.host().unwrap_or_default().to_owned();
            let what = format!(
                "{} {}{}",
                r.method,
                if host == "storage.test" { "storage:" } else { "" },
                r.uri.path()
            );
            let own = r.headers.get("accept-encoding").map(|v| v.to_str().unwrap().to_owned());
            (what, r.decompress, own)
        })
        .collect()
}

#[test]
fn json_answers_ask_for_compression_and_nothing_else_does() {
    let (c, t) = client();
    c.databases().get("db_1").send().unwrap();
    c.call(DynamicRequest::new("get_database").unwrap().param("database_id", "db_1").unwrap())
        .send_raw()
        .unwrap();
    c.upload_file(b"a,b\n".to_vec(), UploadOptions::new()).unwrap();
    c.results().download("r1", "db1", ResultsFormatQuery::Csv).write_to(&mut Vec::new()).unwrap();
    // A download read whole: its endpoint names its own Accept-Encoding (`identity`).
    c.results().download("r1", "db1", ResultsFormatQuery::Csv).send().unwrap();
    let _ = c.query_arrow(QueryRequest::new("select 1")).stream();
    let identity = Some("identity".to_owned());
    assert_eq!(
        sent(&t),
        [
            ("GET /v1/databases/db_1".to_owned(), true, None),
            ("GET /v1/databases/db_1".to_owned(), true, None),
            ("POST /v1/uploads".to_owned(), true, None),
            ("PUT storage:/single".to_owned(), false, None),
            ("POST /v1/uploads/up_1/finalize".to_owned(), true, None),
            ("GET /v1/results/r1".to_owned(), false, identity.clone()),
            ("GET /v1/results/r1".to_owned(), false, identity.clone()),
            ("POST /v1/query".to_owned(), false, identity),
        ]
    );
}
