//! Golden tests of every status a result fetch can meet, on a scripted transport.
#![cfg(feature = "arrow-minimal")]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::{Int64Array, RecordBatch};
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use hotdata_core::models::{ResultStatus, ResultsFormatQuery};
use hotdata_core::results::ResultFetch;
use hotdata_core::testing::{FakeTransport, ManualRuntime, Reply, response, response_with};
use hotdata_core::{AsyncClient, BlockingClient, Config, ErrorKind, RetryPolicy};

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn arrow_body(rows: i64) -> Bytes {
    let schema = Schema::new(vec![Field::new("n", DataType::Int64, false)]);
    let batch =
        RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(Int64Array::from_iter_values(0..rows))])
            .unwrap();
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, &schema).unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    drop(w);
    Bytes::from(out)
}

fn client(replies: Vec<Reply>) -> (BlockingClient, Arc<FakeTransport>) {
    let t = FakeTransport::script(replies);
    let c = BlockingClient::new(
        Config::new("k")
            .with_workspace_id("w")
            .with_base_url("http://h")
            .with_retry(RetryPolicy::default().with_max_retries(1)),
        t.clone(),
        ManualRuntime::new(SystemTime::UNIX_EPOCH),
        "t",
    );
    (c, t)
}

fn ready(rows: i64) -> Reply {
    let mut r = http::Response::builder()
        .status(200)
        .header("content-type", "application/vnd.apache.arrow.stream")
        .header("x-total-row-count", "1000")
        .header("link", r#"</v1/results/r1?offset=3&limit=3&format=arrow>; rel="next""#)
        .body(arrow_body(rows))
        .unwrap();
    r.headers_mut().insert("x-extra", "1".parse().unwrap());
    Ok(r)
}

#[test]
fn status_200_decodes_with_metadata_and_exact_request() {
    let (c, t) = client(vec![ready(3)]);
    let ResultFetch::Ready(result) = c.results().arrow("r1", "db1").offset(0).limit(3).collect().unwrap()
    else {
        panic!("ready expected")
    };
    assert_eq!(result.num_rows(), 3);
    assert_eq!(result.meta.total_row_count, Some(1000));
    assert_eq!(result.meta.next_page.as_deref(), Some("/v1/results/r1?offset=3&limit=3&format=arrow"));
    let r = &t.requests()[0];
    assert_eq!(r.uri.to_string(), "http://h/v1/results/r1?offset=0&limit=3&format=arrow");
    assert_eq!(r.headers["accept"], "application/vnd.apache.arrow.stream");
    assert_eq!(r.headers["x-database-id"], "db1");
}

#[test]
fn status_202_is_not_ready_with_retry_after() {
    let (c, _) = client(vec![Ok(response_with(
        202,
        r#"{"result_id":"r1","status":"processing"}"#,
        "retry-after",
        "2",
    ))]);
    let ResultFetch::NotReady(n) = c.results().arrow("r1", "db").collect().unwrap() else {
        panic!("not ready expected")
    };
    assert_eq!(n.status, ResultStatus::Processing);
    assert_eq!(n.result_id, "r1");
    assert_eq!(n.retry_after, Some(Duration::from_secs(2)));
    let (c, _) = client(vec![Ok(response(202, "not json"))]);
    let ResultFetch::NotReady(n) = c.results().arrow("r9", "db").collect().unwrap() else { panic!() };
    assert_eq!((n.status, n.result_id.as_str(), n.retry_after), (ResultStatus::Pending, "r9", None));
}

#[test]
fn not_ready_turns_into_a_typed_error_that_keeps_the_status_and_retry_after() {
    let (c, _) = client(vec![Ok(response_with(
        202,
        r#"{"result_id":"r1","status":"processing"}"#,
        "retry-after",
        "3",
    ))]);
    let fetch = c.results().arrow("r1", "db").stream().unwrap();
    assert!(!fetch.is_ready());
    let e = fetch.into_ready().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotReady);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(e.result_id(), Some("r1"));
    let n = e.not_ready().expect("the not-ready answer");
    assert_eq!((n.status.clone(), n.result_id.as_str()), (ResultStatus::Processing, "r1"));
    assert!(e.to_string().contains("result r1 is not ready yet (processing)"), "{e}");
    let (c, _) = client(vec![ready(2)]);
    let all = c.results().arrow("r1", "db").collect().unwrap().into_ready().unwrap();
    assert_eq!(all.num_rows(), 2);
    assert!(
        all.bytes_received > 0 && all.bytes_received == arrow_body(2).len() as u64,
        "{}",
        all.bytes_received
    );
}

#[test]
fn status_404_409_413_429() {
    let (c, _) =
        client(vec![Ok(response(404, r#"{"error":{"code":"NOT_FOUND","message":"no result r1"}}"#))]);
    let e = c.results().arrow("r1", "db").collect().unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.operation(), Some("get_result"));

    let (c, _) = client(vec![Ok(response(
        409,
        r#"{"result_id":"r1","status":"failed","error_message":"division by zero"}"#,
    ))]);
    let e = c.results().arrow("r1", "db").collect().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResultFailed);
    assert_eq!(e.message(), Some("division by zero"));
    assert_eq!(e.to_string(), "get_result: the result failed: division by zero");

    let (c, _) =
        client(vec![Ok(response(413, r#"{"error":{"code":"RESULT_TOO_LARGE","message":"use arrow"}}"#))]);
    let e = c.results().download("r1", "db", ResultsFormatQuery::Json).open().unwrap_err();
    assert_eq!((e.status().map(|s| s.as_u16()), e.code()), (Some(413), Some("RESULT_TOO_LARGE")));

    let (c, t) = client(vec![
        Ok(response_with(429, r#"{"error":{"code":"OVERLOADED","message":"busy"}}"#, "retry-after", "1")),
        ready(2),
    ]);
    let ResultFetch::Ready(r) = c.results().arrow("r1", "db").collect().unwrap() else { panic!() };
    assert_eq!(r.num_rows(), 2);
    assert_eq!(t.requests().len(), 2, "429 is retried before the body is handed over");
}

#[test]
fn a_json_body_that_does_not_fit_names_the_offending_field() {
    // Decoded once, without path tracking (it costs on every value); a failure is explained
    // from where the decoder stopped.
    let body = r#"{"result_id":"r1","status":"ready","columns":["a",5],"rows":[[1,"x"]]}"#;
    let (c, _) = client(vec![Ok(response(200, body))]);
    let e = c.results().get("r1", "db").send().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("body at `columns[1]`"), "{e}");

    let body = r#"{"result_id":"r1","status":"ready","columns":["a","b"],"rows":[[1,"x"]]}"#;
    let (c, _) = client(vec![Ok(response(200, body))]);
    let page = c.results().get("r1", "db").send().unwrap();
    assert_eq!(page.rows.unwrap()[0][1].as_str().as_deref(), Some("x"));

    let nested = r#"{"result_id":"r1","status":"ready","columns":["a"],
        "rows":[[1],[2,{"k":[true]}]],"total_row_count":"many"}"#;
    let (c, _) = client(vec![Ok(response(200, nested))]);
    let e = c.results().get("r1", "db").send().unwrap_err();
    assert!(e.to_string().contains("body at `total_row_count`: invalid type: string"), "{e}");
}

#[test]
fn a_body_that_is_not_one_json_value_in_utf8_is_a_decode_error() {
    let ok = r#"{"result_id":"r1","status":"ready","columns":[],"rows":[]}"#;
    let (c, _) = client(vec![Ok(response(200, &format!("{ok} \n")))]);
    c.results().get("r1", "db").send().expect("whitespace after the value is fine");
    let (c, _) = client(vec![Ok(response(200, &format!("{ok} {{}}")))]);
    let e = c.results().get("r1", "db").send().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("trailing characters"), "{e}");
    let mut bytes = ok.as_bytes().to_vec();
    bytes.insert(bytes.len() - 3, 0xff);
    let reply = http::Response::builder().status(200).body(Bytes::from(bytes)).unwrap();
    let (c, _) = client(vec![Ok(reply)]);
    let e = c.results().get("r1", "db").send().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("HTTP 200 body is not UTF-8 (byte 55)"), "{e}");
    // Cut off inside a key: explained, never a panic (the path walker once sliced past it).
    for cut in [r#"{""#, r#"{"\"#, r#"{"result_id":"r1","st"#] {
        let (c, _) = client(vec![Ok(response(200, cut))]);
        let e = c.results().get("r1", "db").send().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode, "{cut}: {e}");
    }
}

#[test]
fn truncated_body_is_an_error_not_a_short_result() {
    let body = arrow_body(100);
    let cut = body.slice(..body.len() - 9);
    let (c, _) = client(vec![Ok(http::Response::builder().status(200).body(cut).unwrap())]);
    let e = c.results().arrow("r1", "db").collect().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
}

#[test]
fn downloads_stream_into_a_writer() {
    let (c, _) =
        client(vec![Ok(http::Response::builder().status(200).body(Bytes::from("a,b\n1,2\n")).unwrap())]);
    let mut out = Vec::new();
    let ResultFetch::Ready((_, n)) =
        c.results().download("r", "db", ResultsFormatQuery::Csv).write_to(&mut out).unwrap()
    else {
        panic!()
    };
    assert_eq!((n, out.as_slice()), (8, &b"a,b\n1,2\n"[..]));
}

#[test]
fn async_arrow_stream() {
    let t = FakeTransport::script(vec![ready(5)]);
    let c = AsyncClient::new(
        Config::new("k").with_workspace_id("w").with_base_url("http://h"),
        t,
        ManualRuntime::new(SystemTime::UNIX_EPOCH),
        "t",
    );
    let fut = async {
        let ResultFetch::Ready(mut s) = c.results().arrow("r", "db").stream().await.unwrap() else {
            panic!()
        };
        assert_eq!(s.schema().field(0).name(), "n");
        let mut rows = 0;
        while let Some(b) = s.next_batch().await {
            rows += b.unwrap().num_rows();
        }
        rows
    };
    assert_eq!(hotdata_core::testing::block_on(fut), 5);
}

#[test]
fn query_answered_as_arrow_with_query_headers() {
    let mut r = ready(4).unwrap();
    for (k, v) in [
        ("x-query-run-id", "qr_1"),
        ("x-result-id", "r_1"),
        ("x-execution-time-ms", "12"),
        ("x-query-warning", "slow"),
    ] {
        r.headers_mut().insert(k, v.parse().unwrap());
    }
    let (c, t) = client(vec![Ok(r)]);
    let out = c
        .query_arrow(hotdata_core::models::QueryRequest::new("select 1"))
        .database_id("db")
        .stream()
        .unwrap();
    let hotdata_core::arrow::QueryArrowOutcome::Ready { meta, batches } = out else { panic!() };
    assert_eq!(meta.query_run_id.as_deref(), Some("qr_1"));
    assert_eq!(meta.result_id.as_deref(), Some("r_1"));
    assert_eq!(meta.total_row_count, Some(1000));
    assert_eq!(meta.execution_time_ms, Some(12));
    assert_eq!(meta.warning.as_deref(), Some("slow"));
    assert_eq!(batches.map(|b| b.unwrap().num_rows()).sum::<usize>(), 4);
    let req = &t.requests()[0];
    assert_eq!(req.headers["accept"], "application/vnd.apache.arrow.stream");
    assert_eq!(req.headers["x-database-id"], "db");
    assert_eq!(req.method, "POST");
}

#[test]
fn an_asynchronous_query_is_followed_to_its_arrow_result() {
    let (c, t) = client(vec![
        Ok(response_with(
            202,
            r#"{"query_run_id":"qr","status":"running","status_url":"/v1/query-runs/qr"}"#,
            "x-result-id",
            "r7",
        )),
        Ok(response(202, r#"{"result_id":"r7","status":"processing"}"#)),
        Ok(response(200, r#"{"result_id":"r7","status":"ready"}"#)),
        ready(6),
    ]);
    let body = hotdata_core::models::QueryRequest::new("select * from big").database_id("db9");
    let all = c.query_to_arrow(body, None).unwrap();
    assert_eq!(all.num_rows(), 6);
    let reqs = t.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[1].uri.to_string(), "http://h/v1/results/r7?limit=0");
    assert_eq!(reqs[3].uri.to_string(), "http://h/v1/results/r7?format=arrow");
    assert!(reqs[1..].iter().all(|r| r.headers["x-database-id"] == "db9"));
}

#[test]
fn query_as_decodes_every_row_through_arrow() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Row {
        n: i64,
    }
    let (c, t) = client(vec![ready(3)]);
    let rows: Vec<Row> = c.query_as(hotdata_core::models::QueryRequest::new("select n"), Some("db")).unwrap();
    assert_eq!(rows, [Row { n: 0 }, Row { n: 1 }, Row { n: 2 }]);
    assert_eq!(t.requests()[0].headers["accept"], "application/vnd.apache.arrow.stream");
}

#[test]
fn a_truncated_inline_answer_is_followed_to_all_its_rows_through_arrow() {
    let (c, t) = client(vec![
        Ok(response(
            200,
            r#"{"columns":["n"],"nullable":[false],"execution_time_ms":1,"preview_row_count":2,"query_run_id":"qr",
                "row_count":2,"rows":[[0],[1]],"truncated":true,"result_id":"r5","total_row_count":6}"#,
        )),
        Ok(response(200, r#"{"result_id":"r5","status":"ready"}"#)),
        ready(6),
    ]);
    let hotdata_core::models::QueryOutcome::Inline(preview) =
        c.query(hotdata_core::models::QueryRequest::new("select n")).send().unwrap()
    else {
        panic!()
    };
    assert!(preview.truncated);
    let all = c.follow_to_arrow(&preview, "db").unwrap();
    assert_eq!(all.num_rows(), 6);
    assert_eq!(t.requests()[2].uri.to_string(), "http://h/v1/results/r5?format=arrow");
}

/// A `200` whose head is wrong for the bytes: an error that says what arrived.
fn ready_with(header: &str, value: &str, body: Bytes) -> Reply {
    Ok(http::Response::builder().status(200).header(header, value).body(body).unwrap())
}

#[test]
fn downloads_ask_for_the_stored_bytes_and_refuse_a_coding_the_transport_left() {
    // The request asks for no content coding (a server may compress any answer otherwise).
    let (c, t) = client(vec![ready(3), Ok(response(200, "a,b\n"))]);
    c.results().arrow("r1", "db1").collect().unwrap();
    c.results().download("r1", "db1", ResultsFormatQuery::Csv).write_to(&mut Vec::new()).unwrap();
    for r in t.requests() {
        assert_eq!(r.headers["accept-encoding"], "identity", "{}", r.uri);
    }
    // A gzip body the transport did not decode: named, for Arrow and for any download.
    let (c, _) = client(vec![
        ready_with("content-encoding", "gzip", arrow_body(3)),
        ready_with("content-encoding", "br", Bytes::from_static(b"x")),
    ]);
    let e = c.results().arrow("r1", "db1").collect().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("`gzip`-encoded"), "{e}");
    let e = c.results().download("r1", "db1", ResultsFormatQuery::Csv).write_to(&mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("`br`-encoded"), "{e}");
    // `identity` is no coding.
    let (c, _) = client(vec![ready_with("content-encoding", "identity", arrow_body(2))]);
    assert_eq!(c.results().arrow("r1", "db1").collect().unwrap().into_ready().unwrap().num_rows(), 2);
}

#[test]
fn an_arrow_fetch_answered_with_another_type_says_so() {
    let html = Bytes::from_static(b"<html><body>Bad gateway</body></html>");
    let (c, _) = client(vec![ready_with("content-type", "text/html; charset=utf-8", html)]);
    let e = c.results().arrow("r1", "db1").stream().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("`text/html; charset=utf-8`"), "{e}");
    assert!(!e.to_string().contains("truncated"), "{e}");
    // Parameters on the Arrow type are fine.
    let (c, _) = client(vec![ready_with(
        "content-type",
        "application/vnd.apache.arrow.stream; charset=binary",
        arrow_body(1),
    )]);
    assert_eq!(c.results().arrow("r1", "db1").collect().unwrap().into_ready().unwrap().num_rows(), 1);
    // The same for a query answered as Arrow.
    let (c, t) = client(vec![ready_with("content-type", "application/json", Bytes::from_static(b"{}"))]);
    let e = c.query_arrow(hotdata_core::models::QueryRequest::new("select 1")).stream().unwrap_err();
    assert!(e.to_string().contains("`application/json`"), "{e}");
    assert_eq!(t.requests()[0].headers["accept-encoding"], "identity");
}

// ---- the caps on what the SDK fetches on its own (issue 12, item 4) -----------------------

fn capped(replies: Vec<Reply>, limits: hotdata_core::FetchLimits) -> (BlockingClient, Arc<FakeTransport>) {
    let t = FakeTransport::script(replies);
    let config = Config::new("k").with_workspace_id("w").with_base_url("http://h").with_fetch_limits(limits);
    (BlockingClient::new(config, t.clone(), ManualRuntime::new(SystemTime::UNIX_EPOCH), "t"), t)
}

/// A ready Arrow result of `rows` rows, without a total in its head.
fn ready_untold(rows: i64) -> Reply {
    ready_with("content-type", "application/vnd.apache.arrow.stream", arrow_body(rows))
}

fn five_rows() -> hotdata_core::FetchLimits {
    hotdata_core::FetchLimits::NONE.with_max_rows(5)
}

fn assert_capped(e: &hotdata_core::Error, limit: &str, max: u64) {
    assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
    let l = e.limit().expect("the limit is named");
    assert_eq!((l.limit, l.max), (limit, max), "{e}");
    assert!(l.actual > max, "{e}");
    let text = e.to_string();
    assert!(text.contains("with_fetch_limits") && text.contains("arrow_stream"), "says how to go on: {text}");
}

#[test]
fn the_default_caps_are_the_python_sdks() {
    let d = hotdata_core::FetchLimits::DEFAULT;
    assert_eq!((d.max_rows, d.max_bytes), (Some(1_000_000), Some(64 * 1024 * 1024)));
    assert_eq!(Config::new("k").fetch_limits, d);
}

#[test]
fn a_result_known_to_be_too_large_is_not_fetched() {
    // The result's status says 6 rows: no Arrow request is made.
    let (c, t) = capped(
        vec![Ok(response(200, r#"{"result_id":"r7","status":"ready","total_row_count":6}"#)), ready(6)],
        five_rows(),
    );
    let e = c.stored_result_arrow("r7", "db").unwrap_err();
    assert_capped(&e, "Config::fetch_limits.max_rows", 5);
    assert_eq!(t.requests().len(), 1);

    // A truncated inline answer that says 6 rows in all: nothing is fetched.
    let (c, t) = capped(vec![], five_rows());
    let preview: hotdata_core::models::QueryResponse = serde_json::from_str(
        r#"{"columns":["n"],"nullable":[false],"execution_time_ms":1,"preview_row_count":2,"query_run_id":"qr",
            "row_count":2,"rows":[[0],[1]],"truncated":true,"result_id":"r5","total_row_count":6}"#,
    )
    .unwrap();
    assert_capped(&c.follow_to_arrow(&preview, "db").unwrap_err(), "Config::fetch_limits.max_rows", 5);
    assert!(t.requests().is_empty());

    // The Arrow answer's head says 1000 rows: its batches are not read.
    let (c, _) =
        capped(vec![Ok(response(200, r#"{"result_id":"r7","status":"ready"}"#)), ready(6)], five_rows());
    assert_capped(&c.stored_result_arrow("r7", "db").unwrap_err(), "Config::fetch_limits.max_rows", 5);
}

#[test]
fn a_result_of_unknown_size_stops_at_the_cap_while_it_is_read() {
    let (c, _) = capped(vec![ready_untold(6)], five_rows());
    let e = c.query_to_arrow(hotdata_core::models::QueryRequest::new("select n"), Some("db")).unwrap_err();
    assert_capped(&e, "Config::fetch_limits.max_rows", 5);

    let bytes = hotdata_core::FetchLimits::NONE.with_max_bytes(64);
    let (c, _) =
        capped(vec![Ok(response(200, r#"{"result_id":"r7","status":"ready"}"#)), ready_untold(6)], bytes);
    assert_capped(&c.stored_result_arrow("r7", "db").unwrap_err(), "Config::fetch_limits.max_bytes", 64);

    // Within the caps, everything arrives; query_as is capped too.
    let (c, _) = capped(vec![ready_untold(5)], five_rows());
    assert_eq!(
        c.query_to_arrow(hotdata_core::models::QueryRequest::new("q"), Some("db")).unwrap().num_rows(),
        5
    );
    let (c, _) = capped(vec![ready_untold(6)], five_rows());
    let rows: Result<Vec<serde_json::Value>, _> =
        c.query_as(hotdata_core::models::QueryRequest::new("q"), Some("db"));
    assert_eq!(rows.unwrap_err().kind(), ErrorKind::LimitExceeded);
}

#[test]
fn a_result_the_caller_names_has_no_cap_unless_asked() {
    let (c, _) = capped(vec![ready_untold(6), ready_untold(6)], five_rows());
    let all = c.results().arrow("r1", "db").collect().unwrap().into_ready().unwrap();
    assert_eq!(all.num_rows(), 6, "the config's caps are for the SDK's own fetches");
    let e = c.results().arrow("r1", "db").fetch_limits(five_rows()).collect().unwrap_err();
    assert_capped(&e, "ResultDownload::fetch_limits.max_rows", 5);
}

/// What the transport was asked to bound each request by: `(timeout, body_idle_timeout)`.
fn bounds(t: &FakeTransport) -> Vec<(Option<Duration>, Option<Duration>)> {
    t.requests().iter().map(|r| (r.timeout, r.body_idle_timeout)).collect()
}

const TOTAL: Option<Duration> = Some(hotdata_core::config::DEFAULT_TIMEOUT);
const IDLE: Option<Duration> = Some(hotdata_core::config::DEFAULT_BODY_IDLE_TIMEOUT);

#[test]
fn streamed_answers_are_bounded_by_an_idle_timeout_and_json_answers_by_the_total() {
    let query = || hotdata_core::models::QueryRequest::new("select 1");
    let (c, t) = client(vec![
        ready(3),
        ready(3),
        Ok(response(200, "a,b\n1,2\n")),
        ready(2),
        Ok(response(200, r#"{"result_id":"r1","status":"ready","columns":[],"rows":[]}"#)),
    ]);
    assert!(c.results().arrow("r1", "db").collect().unwrap().is_ready());
    let ResultFetch::Ready(stream) = c.results().arrow("r1", "db").stream().unwrap() else { panic!() };
    assert_eq!(stream.map(|b| b.unwrap().num_rows()).sum::<usize>(), 3);
    let mut csv = Vec::new();
    c.results().download("r1", "db", ResultsFormatQuery::Csv).write_to(&mut csv).unwrap();
    assert!(matches!(
        c.query_arrow(query()).stream().unwrap(),
        hotdata_core::arrow::QueryArrowOutcome::Ready { .. }
    ));
    c.results().get("r1", "db").send().unwrap();
    assert_eq!(
        bounds(&t),
        [(TOTAL, IDLE), (TOTAL, IDLE), (TOTAL, IDLE), (TOTAL, IDLE), (TOTAL, None)],
        "downloads and Arrow streams: the total until the head, then idle; a JSON call: the total"
    );

    // Per client, per call, and off (the total covers the body again).
    let five = Some(Duration::from_secs(5));
    let t = FakeTransport::script(vec![ready(1), ready(1), ready(1), ready(1)]);
    let config =
        Config::new("k").with_workspace_id("w").with_base_url("http://h").with_body_idle_timeout(five);
    let c = BlockingClient::new(config, t.clone(), ManualRuntime::new(SystemTime::UNIX_EPOCH), "t");
    c.results().arrow("r1", "db").collect().unwrap();
    c.results().arrow("r1", "db").body_idle_timeout(Some(Duration::from_secs(2))).collect().unwrap();
    c.results().arrow("r1", "db").body_idle_timeout(None).collect().unwrap();
    c.query_arrow(query()).timeout(None).stream().unwrap();
    assert_eq!(
        bounds(&t),
        [(TOTAL, five), (TOTAL, Some(Duration::from_secs(2))), (TOTAL, None), (None, five)]
    );
}

#[test]
fn async_streamed_answers_are_bounded_by_an_idle_timeout_too() {
    use hotdata_core::testing::block_on;
    let t = FakeTransport::script(vec![
        ready(3),
        ready(3),
        Ok(response(200, r#"{"result_id":"r1","status":"ready","columns":[],"rows":[]}"#)),
    ]);
    let c = AsyncClient::new(
        Config::new("k").with_workspace_id("w").with_base_url("http://h"),
        t.clone(),
        ManualRuntime::new(SystemTime::UNIX_EPOCH),
        "t",
    );
    assert!(block_on(c.results().arrow("r1", "db").collect()).unwrap().is_ready());
    let query = hotdata_core::models::QueryRequest::new("select 1");
    let hotdata_core::arrow::QueryArrowOutcome::Ready { batches, .. } =
        block_on(c.query_arrow(query).stream()).unwrap()
    else {
        panic!()
    };
    assert_eq!(block_on(batches.into_result()).unwrap().num_rows(), 3);
    block_on(c.results().get("r1", "db").send()).unwrap();
    assert_eq!(bounds(&t), [(TOTAL, IDLE), (TOTAL, IDLE), (TOTAL, None)]);
}
