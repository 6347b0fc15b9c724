//! The SDK in headless Chromium against the local emulator: operations, errors, retries
//! with `Retry-After`, pagination, Arrow streaming and truncation, waiting for a result,
//! timeouts (a streamed body's idle timeout too), uploads from
//! bytes and `Blob`s with storage faults (a `File`'s name and type sent on their own, a
//! path refused), and an `ETag` hidden by storage's CORS rules.
//!
//! The emulator's URL arrives at compile time in `HOTDATA_TEST_SERVER`, and the token of its
//! control routes in `HOTDATA_TEST_CONTROL_TOKEN` (`tests/run` starts
//! `hotdata-emulator --port 0 --control` with a fresh token and exports both); faults are
//! set, stored objects read and Arrow results stored over those routes (`/_emulator/*`,
//! with `X-Emulator-Token`), since the page cannot reach an in-process handle.
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
/// The emulator's control token (`X-Emulator-Token`); without it the control routes answer
/// 401 (or 404 when the emulator was started without `--control`).
const CONTROL_TOKEN: &str = match option_env!("HOTDATA_TEST_CONTROL_TOKEN") {
    Some(t) => t,
    None => "",
};
const KEY: &str = "hd_emulator_key";
const WORKSPACE: &str = "ws_emulator";

fn config() -> Config {
    Config::new(KEY).with_workspace_id(WORKSPACE).with_base_url(SERVER)
}

fn client() -> AsyncClient {
    hotdata_wasm::client(config())
}

/// A request to one of the emulator's control routes (`/_emulator/...`), with the control
/// token, through fetch: the status and the body.
async fn control(method: http::Method, path: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
    use hotdata_core::{AsyncTransport, RequestBody, SendOptions};
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{SERVER}/_emulator/{path}"))
        .header("x-emulator-token", CONTROL_TOKEN)
        .body(body.map_or(RequestBody::Empty, RequestBody::from))
        .unwrap();
    let transport = hotdata_wasm::FetchTransport::new();
    let response = transport.send(request, &SendOptions::default()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_vec();
    if status == 401 || status == 403 {
        panic!(
            "/_emulator/{path}: {status} {} (build with HOTDATA_TEST_CONTROL_TOKEN set to the token of an \
             emulator started with --control)",
            String::from_utf8_lossy(&body)
        );
    }
    (status, body)
}

/// Sets a fault on the emulator (`--fault` syntax), through fetch.
async fn fault(spec: &str) {
    let (status, body) = control(http::Method::POST, "faults", Some(spec.as_bytes().to_vec())).await;
    assert_eq!(status, 200, "setting fault {spec}: {}", String::from_utf8_lossy(&body));
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

/// A streamed answer is bounded by the call's timeout until its head, then by the idle
/// timeout (`Config::body_idle_timeout`): a body outlasting the timeout completes, one that
/// stops for longer than the idle timeout fails with a timeout, and a JSON answer as slow
/// still fails at the call's timeout.
#[wasm_bindgen_test]
async fn a_streamed_body_is_bounded_by_the_idle_timeout_and_a_json_body_by_the_timeout() {
    use hotdata_core::models::ResultsFormatQuery;
    let c = hotdata_wasm::client(config().with_retry(RetryPolicy::none()));
    let db = database(&c, "idle").await;
    let sql = QueryRequest::new("select * from synthetic(2000)").database_id(db.as_str());
    let QueryOutcome::Inline(q) = c.query(sql).await.unwrap() else { panic!("inline answer expected") };
    let rid = q.result_id.expect("a stored result");
    let mut whole = Vec::new();
    c.results().download(&rid, &db, ResultsFormatQuery::Arrow).write_to(&mut whole).await.unwrap();
    // The body in 6 chunks 150 ms apart: it outlasts the 300 ms timeout of the calls. (The
    // faults target this test's result only: the browser runs the tests concurrently.)
    let timeout = Some(Duration::from_millis(300));
    let slow =
        |ms: u32| format!("path=/v1/results/{rid},slow-body-ms={ms},chunk={},times=1", whole.len() / 6 + 1);

    fault(&slow(150)).await;
    let t0 = js_sys::Date::now();
    let fetched = c.results().arrow(&rid, &db).timeout(timeout).collect().await.unwrap();
    assert_eq!(fetched.into_ready().expect("ready").num_rows(), 2000);
    assert!(js_sys::Date::now() - t0 > 300.0, "the body outlasted the timeout");

    fault(&slow(5000)).await;
    let idle = Some(Duration::from_millis(300));
    let fetched = c.results().arrow(&rid, &db).body_idle_timeout(idle).collect().await;
    let err = fetched.map(|_| ()).expect_err("a stalled body must fail");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");

    fault(&slow(150)).await;
    let err = c.results().get(&rid, &db).timeout(timeout).await.unwrap_err();
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

    // The lifecycle: a result that is not ready twice (Retry-After: 1 s) is waited for with
    // `limit=0` polls, sleeping through setTimeout. (The faults target this test's result
    // only: the browser runs the tests concurrently.)
    fault(&format!("path=/v1/results/{result_id},not-ready,retry-after=1,times=2")).await;
    let t0 = js_sys::Date::now();
    let ready = c.wait_for_result(&result_id, &db).await.unwrap();
    assert_eq!(ready.result_id, result_id);
    assert!(js_sys::Date::now() - t0 >= 1900.0, "both 1 s Retry-After waits were honoured");

    fault(&format!("path=/v1/results/{result_id},truncate=200000,times=1")).await;
    let fetched = c.results().arrow(result_id, db).collect().await;
    assert!(fetched.is_err(), "a truncated stream is an error, never a short result");
}

/// The stored object of a finalized upload, read back from the emulator.
async fn stored_object(upload_id: &str) -> Vec<u8> {
    let (status, body) = control(http::Method::GET, &format!("uploads/{upload_id}"), None).await;
    assert_eq!(status, 200, "upload {upload_id} is stored");
    body
}

async fn clear_faults() {
    let (status, body) = control(http::Method::DELETE, "faults", None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// `n` bytes that differ from part to part.
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i >> 20) as u8).collect()
}

fn blob(bytes: &[u8], content_type: &str) -> web_sys::Blob {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(content_type);
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).unwrap()
}

#[wasm_bindgen_test]
async fn uploads_from_bytes_and_blobs_survive_storage_faults() {
    use hotdata_core::upload::{ProgressHandle, UploadOptions};
    let c = client();

    let small = b"id,name\n1,ada\n".to_vec();
    let done = c.upload_file(small.clone(), UploadOptions::new().content_type("text/csv")).await.unwrap();
    assert_eq!(stored_object(&done.upload_id).await, small);

    // A `File` sends its name and type with no `upload_options()`: without a type (browsers
    // give `.parquet` files none) the one its name implies; a `Blob` its type; the options
    // still win. (Here, before any storage fault is set: they apply to every PUT.)
    let file = || {
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(&small[..]));
        hotdata_wasm::BlobSource::from(
            web_sys::File::new_with_u8_array_sequence(&parts, "events.parquet").unwrap(),
        )
    };
    let done = c.upload_file(file(), UploadOptions::new()).await.unwrap();
    assert_eq!(done.content_type.as_deref(), Some("application/vnd.apache.parquet"), "from the name");
    assert_eq!(stored_object(&done.upload_id).await, small);
    let typed = hotdata_wasm::BlobSource::new(blob(&small, "text/csv"));
    let done = c.upload_file(typed, UploadOptions::new()).await.unwrap();
    assert_eq!(done.content_type.as_deref(), Some("text/csv"), "the Blob's type");
    let done =
        c.upload_file(file(), UploadOptions::new().content_type("application/x-ndjson")).await.unwrap();
    assert_eq!(done.content_type.as_deref(), Some("application/x-ndjson"), "the options win");
    // A path is no source in the browser: a source error saying what to upload instead.
    let e = c.upload_file("events.csv", UploadOptions::new()).await.unwrap_err();
    assert_eq!(e.kind(), hotdata_core::upload::UploadErrorKind::SourceIo);
    assert!(e.to_string().contains("BlobSource"), "{e}");

    // 9 MiB + 123: a streaming multipart session, parts cut with Blob.slice. Part 2 is
    // refused with 429 once (retried at once) and part 1 with 503 once (sent again in the
    // next round, 2 s later). (A reset connection is not used here: Chromium itself
    // retries a request whose reused connection was reset, so the SDK never sees it.)
    let bytes = data(9 * 1024 * 1024 + 123);
    fault("part=2,status=429,times=1").await;
    fault("part=1,status=503,times=1").await;
    let source = hotdata_wasm::BlobSource::new(blob(&bytes, "application/octet-stream"));
    assert_eq!(source.content_type().as_deref(), Some("application/octet-stream"));
    let progress = ProgressHandle::new();
    let failures = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = failures.clone();
    let options = source.upload_options().progress_handle(progress.clone()).on_event(move |e| {
        if let hotdata_core::upload::UploadEvent::PartFailed { part, will_retry, .. } = e {
            seen.lock().unwrap().push((*part, *will_retry));
        }
    });
    let done = c.upload_file(source, options).await.unwrap();
    clear_faults().await;
    let mut failures = failures.lock().unwrap().clone();
    failures.sort();
    assert_eq!(failures, [(Some(1), true), (Some(2), true)], "both faults hit and were retried");
    assert_eq!(progress.done(), bytes.len() as u64);
    assert!(stored_object(&done.upload_id).await == bytes, "byte-identical object");

    // Storage whose CORS rules do not expose ETag: a typed error at once, not 14 s of
    // rounds ending in "missing ETag". (In this test, not its own: the browser runs tests
    // concurrently and the fault applies to every storage PUT.)
    use hotdata_core::upload::UploadErrorKind;
    fault("op=storage_put,hidden-etag,always").await;
    let source = hotdata_wasm::BlobSource::new(blob(&data(9 * 1024 * 1024), ""));
    let err = c.upload_file(source, UploadOptions::new()).await.unwrap_err();
    clear_faults().await;
    assert_eq!(err.kind(), UploadErrorKind::EtagNotExposed, "{err}");
    assert!(err.to_string().contains("Access-Control-Expose-Headers"), "{err}");
    assert!(err.upload_id().is_some());

    // Finalize's answer is lost (the emulator finalizes, then resets the connection): fetch
    // rejects, which cannot prove the request never left, so finalize is never sent again
    // on its own. The error says it may have succeeded and keeps the resume state; a
    // resume sends it once more and learns the upload is already finalized. Every answer
    // closes its connection meanwhile: Chromium itself resends a request (any method)
    // whose *reused* connection dropped before an answer, which no page can prevent.
    fault("op=finalize_upload_handler,reset-after-commit,times=1").await;
    fault("close,always").await;
    let err = c.upload_file(small.clone(), UploadOptions::new()).await.unwrap_err();
    clear_faults().await;
    let id = err.upload_id().expect("the session exists").to_owned();
    let finalizes = format!("requests?operation=finalize_upload_handler&path=/v1/uploads/{id}/finalize");
    let (status, body) = control(http::Method::GET, &finalizes, None).await;
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["count"], 1, "finalize was sent once: {err}");
    assert_eq!(err.kind(), UploadErrorKind::Finalize, "{err}");
    assert!(err.finalize_may_have_succeeded(), "{err}");
    let state = err.into_resume_state().expect("a lost answer keeps the finished transfer");
    assert!(state.is_complete() && state.finalize_may_have_arrived());
    let again = c.resume_upload(state, small.clone(), UploadOptions::new()).await.unwrap_err();
    assert_eq!(again.kind(), UploadErrorKind::AlreadyFinalized, "{again}");
    assert_eq!(stored_object(&id).await, small);

    // A cancel while a PUT hangs at storage (answered only after 60 s) ends the upload at
    // once: its fetch is aborted, nothing waits for the part's deadline or the answer.
    use hotdata_core::AsyncRuntime;
    fault("op=storage_put,delay-ms=60000,always").await;
    let token = hotdata_core::upload::CancelToken::new();
    let cancel = token.clone();
    wasm_bindgen_futures::spawn_local(async move {
        hotdata_wasm::BrowserRuntime::new().sleep(Duration::from_millis(1500)).await;
        cancel.cancel();
    });
    let t0 = js_sys::Date::now();
    let err = c.upload_file(small.clone(), UploadOptions::new().cancel_token(token)).await.unwrap_err();
    let waited = js_sys::Date::now() - t0;
    clear_faults().await;
    assert_eq!(err.kind(), UploadErrorKind::Cancelled, "{err}");
    assert!(err.resume_state().is_some(), "a cancelled upload can be resumed");
    // A hang guard, far from both the 1.5 s cancel and the 60 s answer.
    assert!(waited < 30_000.0, "the cancel waited {waited} ms for the stalled PUT");
}

macro_rules! fixtures {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_bytes!(concat!("../../tests/fixtures/arrow/", $file)) as &[u8])),*]
    };
}

/// Arrow streams written by pyarrow (`tests/fixtures/arrow/`), each with its plain twin
/// when it has one: compressed (LZ4_FRAME, ZSTD), dictionary deltas and replacements, and
/// the type families most likely to differ (unions, temporal types, nested, views).
const FIXTURES: &[(&str, &[u8])] = fixtures![
    "compressed_lz4.arrows",
    "compressed_zstd.arrows",
    "compressed.plain.arrows",
    "types_temporal_zstd.arrows",
    "types_temporal.arrows",
    "types_nested_lz4.arrows",
    "types_nested.arrows",
    "dict_delta.arrows",
    "dict_delta_zstd.arrows",
    "dict_replacement.arrows",
    "types_union.arrows",
    "types_list_view.arrows",
    "types_binary_view.arrows",
    "types_decimal128_256.arrows",
    "types_run_end_encoded.arrows",
    "empty_zero_rows.arrows",
    "zero_columns.arrows",
];

/// Stores an Arrow stream as a result of `db` through the emulator's control route.
async fn store_arrow(db: &str, bytes: &'static [u8]) -> String {
    let (status, body) =
        control(http::Method::POST, &format!("results?database_id={db}"), Some(bytes.to_vec())).await;
    assert_eq!(status, 201, "storing an Arrow result: {}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["result_id"].as_str().unwrap().to_owned()
}

#[wasm_bindgen_test]
async fn arrow_streams_written_by_pyarrow_stream_through_fetch() {
    use hotdata_core::arrow::decode_all;
    let c = client();
    let db = database(&c, "fixtures").await;
    let local = |file: &str| {
        let (_, bytes) = FIXTURES.iter().find(|(f, _)| *f == file).unwrap();
        decode_all(bytes::Bytes::from_static(bytes)).unwrap()
    };
    for (file, bytes) in FIXTURES {
        let rid = store_arrow(&db, bytes).await;
        let ready = c.results().arrow(rid, db.as_str()).stream().await.unwrap();
        let hotdata_core::results::ResultFetch::Ready(mut stream) = ready else {
            panic!("{file}: not ready")
        };
        let mut got = Vec::new();
        while let Some(b) = stream.next_batch().await {
            got.push(b.unwrap_or_else(|e| panic!("{file}: {e}")));
        }
        let (schema, expected) = local(file);
        assert_eq!(stream.schema(), schema, "{file}");
        assert_eq!(got, expected, "{file}");
        let twin = match *file {
            "compressed_lz4.arrows" | "compressed_zstd.arrows" => Some("compressed.plain.arrows"),
            "types_temporal_zstd.arrows" => Some("types_temporal.arrows"),
            "types_nested_lz4.arrows" => Some("types_nested.arrows"),
            _ => None,
        };
        if let Some(twin) = twin {
            assert_eq!(got, local(twin).1, "{file}: its plain twin");
        }
    }
}

/// The one-call query in the browser: an inline answer, a truncated one followed through one
/// Arrow stream, a query that went asynchronous (202), a guard, and a failed run.
#[wasm_bindgen_test]
async fn one_call_sql_returns_every_row_or_says_why_not() {
    use hotdata_core::{FetchLimits, RowSource};
    let c = client();
    let db = database(&c, "sql").await;

    let rows = c.sql("SELECT id, name FROM synthetic(20)").database_id(&db).rows().await.unwrap();
    assert_eq!((rows.source, rows.len()), (RowSource::Inline, 20));

    // Past the emulator's 1,000-row preview: every row, from the stored result as Arrow.
    let rows = c.sql("SELECT id, name FROM synthetic(2500)").database_id(&db).rows().await.unwrap();
    assert_eq!((rows.source, rows.len()), (RowSource::Arrow, 2500));
    let last: Vec<serde_json::Value> = rows.rows_as().unwrap();
    assert_eq!(last[2499]["name"], "name-2499");

    let run_async = || QueryRequest::new("SELECT id FROM synthetic(50)").run_async(true);
    assert_eq!(c.sql(run_async()).database_id(&db).rows().await.unwrap().len(), 50);
    assert_eq!(c.sql(run_async()).database_id(&db).arrow().await.unwrap().num_rows(), 50);

    let err = c
        .sql("SELECT id FROM synthetic(2500)")
        .database_id(&db)
        .fetch_limits(FetchLimits::NONE.with_max_rows(2000))
        .rows()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(err.result_id().is_some(), "{err:?}");

    let bad = QueryRequest::new("SELECT * FROM no_such_table").run_async(true);
    let err = c.sql(bad).database_id(&db).rows().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResultFailed, "{err:?}");
    assert!(err.query_run_id().is_some() && err.to_string().contains("no_such_table"), "{err}");
}
