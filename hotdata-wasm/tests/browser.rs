//! The SDK in headless Chromium against the local emulator: operations, errors, retries
//! with `Retry-After`, pagination, Arrow streaming and truncation, timeouts.
//!
//! The emulator's URL arrives at compile time in `HOTDATA_TEST_SERVER` (`.ci/run` starts
//! `hotdata-emulator --port 0` and exports it); faults are set over its HTTP control
//! endpoint, since the page cannot reach an in-process handle.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use hotdata_core::models::{CreateDatabaseRequest, QueryOutcome, QueryRequest};
use hotdata_core::{AsyncClient, Config, ErrorKind, RetryPolicy};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: &str = match option_env!("HOTDATA_TEST_SERVER") {
    Some(s) => s,
    None => "http://127.0.0.1:8787",
};
const KEY: &str = "hd_emulator_key";
const WORKSPACE: &str = "ws_emulator";

fn config() -> Config {
    Config::new(KEY).with_workspace_id(WORKSPACE).with_base_url(SERVER)
}

fn client() -> AsyncClient {
    hotdata_wasm::client(config())
}

/// Sets a fault on the emulator (`--fault` syntax), through fetch.
async fn fault(spec: &str) {
    use hotdata_core::{AsyncTransport, RequestBody, SendOptions};
    let request = http::Request::post(format!("{SERVER}/_emulator/faults"))
        .body(RequestBody::from(spec.as_bytes().to_vec()))
        .unwrap();
    let transport = hotdata_wasm::FetchTransport::new();
    let response = transport.send(request, &SendOptions::default()).await.unwrap();
    assert_eq!(response.status(), 200, "setting fault {spec}");
}

async fn database(c: &AsyncClient, name: &str) -> String {
    c.databases().create(CreateDatabaseRequest::new().name(name)).await.unwrap().id
}

#[wasm_bindgen_test]
async fn operations_and_json_queries() {
    let c = client();
    let workspaces = c.workspaces().list().await.unwrap();
    assert!(workspaces.workspaces.iter().any(|w| w.public_id == WORKSPACE));
    let db = database(&c, "browser").await;
    let out = c.query(QueryRequest::new("select 1 as one, 'x' as s").database_id(db.as_str())).await.unwrap();
    let QueryOutcome::Inline(rows) = out else { panic!("inline answer expected") };
    assert_eq!(rows.columns, ["one", "s"]);
    assert_eq!(rows.rows[0][0].as_json(), "1");
    c.databases().delete(db).await.unwrap();
}

#[wasm_bindgen_test]
async fn errors_carry_the_server_envelope() {
    let bad = hotdata_wasm::client(Config::new("wrong").with_workspace_id(WORKSPACE).with_base_url(SERVER));
    let err = bad.databases().list().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    let err = client().databases().get("db_missing").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(!format!("{err:?}").contains(KEY));
}

#[wasm_bindgen_test]
async fn retries_honour_retry_after() {
    let c = client();
    fault("op=count_databases,status=429,retry-after=1,times=1").await;
    let t0 = js_sys::Date::now();
    c.databases().count().await.unwrap();
    assert!(js_sys::Date::now() - t0 >= 900.0, "the 1 s Retry-After was waited out");
}

#[wasm_bindgen_test]
async fn timeouts_abort_the_fetch() {
    let c = hotdata_wasm::client(config().with_retry(RetryPolicy::none()));
    fault("op=get_usage,delay-ms=3000,times=1").await;
    let err = c.usage().get().timeout(Some(Duration::from_millis(300))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
}

#[wasm_bindgen_test]
async fn listings_walk_page_by_page() {
    use futures_core::Stream;
    let c = client();
    let ids = [database(&c, "page-a").await, database(&c, "page-b").await, database(&c, "page-c").await];
    let mut pages = c.databases().list().limit(1).pages();
    let mut seen = Vec::new();
    while let Some(page) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut pages).poll_next(cx)).await {
        seen.extend(page.unwrap().into_iter().map(|d| d.id));
    }
    for id in &ids {
        assert!(seen.contains(id), "{id} in {seen:?}");
    }
}

#[wasm_bindgen_test]
async fn arrow_results_stream_batch_by_batch_and_truncation_is_an_error() {
    use hotdata_core::arrow::QueryArrowOutcome;
    let c = client();
    let db = database(&c, "arrow").await;
    let out = c
        .query_arrow(QueryRequest::new("select * from synthetic(200000)"))
        .database_id(db.as_str())
        .stream()
        .await
        .unwrap();
    let QueryArrowOutcome::Ready { meta, mut batches } = out else { panic!("a stream expected") };
    assert_eq!(meta.total_row_count, Some(200_000));
    let (mut rows, mut count) = (0, 0);
    while let Some(b) = batches.next_batch().await {
        rows += b.unwrap().num_rows();
        count += 1;
    }
    assert_eq!(rows, 200_000);
    assert!(count > 1, "several batches");
    let result_id = meta.result_id.expect("a stored result");

    fault("op=get_result,truncate=200000,times=1").await;
    let fetched = c.results().arrow(result_id, db).arrow().await;
    assert!(fetched.is_err(), "a truncated stream is an error, never a short result");
}
