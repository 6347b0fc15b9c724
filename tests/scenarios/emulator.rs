// The SDK's conformance scenarios against the emulator (`hotdata-emulator`), written once
// and run on every backend: natively (tests/conformance/tests/emulator.rs) with ureq
// (blocking), then with reqwest (async), each against its own emulator in process; in
// headless Chromium (hotdata-wasm/tests/scenarios.rs) against an emulator instance of the
// scenario's own. See tests/conformance/src/scenarios.rs for what a body may use.
//
// Faults come from the emulator (`FaultRule`): 429 with `Retry-After` in seconds and as an
// HTTP date, connection resets before the response (retried, except for upload finalize),
// 5xx, slow responses against timeouts, slow bodies, truncated bodies and Arrow streams,
// 429 storms on results, and results that are not ready yet. The emulator's request log is
// the witness of what was sent.
//
// Retries back off 1-20 ms without jitter, so no test waits on its own backoff; the
// emulator's `Retry-After: 1` is waited out only where honouring it is the point.

use std::time::Duration;

use hotdata_core::arrow::{ArrowResult, QueryArrowOutcome};
use hotdata_core::arrow_rows::batches_as;
use hotdata_core::lifecycle::{PollPolicy, QueryRunDone, ResultReady};
use hotdata_core::models::{
    CreateDatabaseRequest, CreateSavedQueryRequest, CreateUploadRequest, FinalizeUploadRequest, QueryOutcome,
    QueryRequest, ResultStatus, ResultsFormatQuery, UploadStatus,
};
use hotdata_core::results::ResultFetch;
use hotdata_core::{Config, DynamicRequest, Error, ErrorKind, RetryPolicy, TransportErrorKind};
use hotdata_emulator::{Fault, FaultRule, RequestRecord, RetryAfter, Settings, Target};
use serde_json::{Value, json};

/// The columns of the emulator's `synthetic(N)` table function.
const SYNTHETIC_COLUMNS: [&str; 6] = ["id", "amount", "name", "flag", "maybe", "ts"];

/// Retries as by default (5), backing off 1-20 ms without jitter.
fn fast_retry() -> RetryPolicy {
    RetryPolicy::default().with_backoff(Duration::from_millis(1), Duration::from_millis(20)).with_jitter(0.0)
}

/// Polls every 5-50 ms for at most 10 s (a `Retry-After` from the server still wins).
fn fast_poll() -> PollPolicy {
    PollPolicy::default()
        .with_intervals(Duration::from_millis(5), Duration::from_millis(50))
        .with_timeout(Duration::from_secs(10))
}

fn config(emu: &Emu) -> Config {
    Config::new(emu.api_key())
        .with_workspace_id(emu.workspace_id())
        .with_base_url(emu.base_url())
        .with_timeout(Some(Duration::from_secs(20)))
        .with_retry(fast_retry())
}

/// The statuses answered (0: the connection was reset instead).
fn statuses(records: &[RequestRecord]) -> Vec<u16> {
    records.iter().map(|r| r.status).collect()
}

fn http_status(e: &Error) -> Option<u16> {
    e.status().map(|s| s.as_u16())
}

fn op(id: &str) -> Target {
    Target::Operation(id.to_owned())
}

fn column_names(result: &ArrowResult) -> Vec<String> {
    result.schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Checks an Arrow result of `synthetic(n)`: every row, in order, with its schema and count.
fn assert_synthetic(backend: &str, result: &ArrowResult, n: usize) {
    assert_eq!(column_names(result), SYNTHETIC_COLUMNS, "{backend}: schema");
    assert_eq!(result.num_rows(), n, "{backend}: every row");
    assert_eq!(result.meta.total_row_count, Some(n as u64), "{backend}: X-Total-Row-Count");
    // The first and the last row (decoding every row to JSON is slow in debug builds).
    let first = batches_as::<Value>([&result.batches[0].slice(0, 1)]).expect("rows decode").remove(0);
    assert_eq!(first["id"], json!(0), "{backend}");
    assert_eq!(first["name"], json!("name-0"), "{backend}");
    assert_eq!(first["maybe"], Value::Null, "{backend}: 0 % 7 == 0 is NULL");
    let last_batch = result.batches.last().expect("a last batch");
    let last = batches_as::<Value>([&last_batch.slice(last_batch.num_rows() - 1, 1)])
        .expect("rows decode")
        .remove(0);
    assert_eq!(last["id"], json!(n - 1), "{backend}: the last row is there");
    assert_eq!(last["name"], json!(format!("name-{}", n - 1)), "{backend}");
}

fn ready<T>(fetch: ResultFetch<T>, what: &str) -> T {
    match fetch {
        ResultFetch::Ready(t) => t,
        ResultFetch::NotReady(n) => panic!("{what}: not ready: {n:?}"),
    }
}

fn inline(outcome: QueryOutcome) -> hotdata_core::models::QueryResponse {
    match outcome {
        QueryOutcome::Inline(r) => r,
        other => panic!("expected rows inline, got {other:?}"),
    }
}

scenario! {
    fn a_429_with_retry_after_in_seconds_or_as_a_date_is_waited_out_then_succeeds(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("d"))).unwrap().id;

        ctl!(emu.inject(FaultRule::status("get_database", 429, Some(RetryAfter::Seconds(1)), 1)));
        let t0 = Stopwatch::start();
        let got = call!(c.databases().get(&db)).unwrap();
        let waited = t0.elapsed();
        assert_eq!(got.id, db, "{backend}");
        assert!(waited >= Duration::from_millis(950), "{backend}: Retry-After: 1 waited {waited:?}");
        assert_eq!(statuses(&ctl!(requests(&emu, "get_database"))), [429, 200], "{backend}");

        // `Retry-After: <date 2 s ahead>`: the date has whole seconds, so the wait is in (1, 2] s.
        ctl!(emu.clear_requests());
        ctl!(emu.inject(FaultRule::status("get_database", 429, Some(RetryAfter::HttpDate(2)), 1)));
        let t0 = Stopwatch::start();
        call!(c.databases().get(&db)).unwrap();
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{backend}: an HTTP-date Retry-After is honoured, waited {waited:?}"
        );
        assert_eq!(statuses(&ctl!(requests(&emu, "get_database"))), [429, 200], "{backend}");

        // A POST is retried after a 429 too: the server refused the work.
        ctl!(emu.clear_requests());
        ctl!(emu.inject(FaultRule::status("query", 429, Some(RetryAfter::Seconds(0)), 2)));
        let q = inline(call!(c.query(QueryRequest::new("SELECT 1 AS x"))).unwrap());
        assert_eq!(q.rows[0][0].as_json(), "1", "{backend}");
        assert_eq!(statuses(&ctl!(requests(&emu, "query"))), [429, 429, 200], "{backend}");

        // A storm longer than the budget ends with the server's error, after every attempt.
        ctl!(emu.clear_requests());
        ctl!(emu.inject(FaultRule::status("get_database", 429, Some(RetryAfter::Seconds(0)), 10)));
        let err = call!(c.databases().get(&db).retry(fast_retry().with_max_retries(2))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Api, "{backend}: {err}");
        assert_eq!(http_status(&err), Some(429), "{backend}");
        assert_eq!(err.code(), Some("OVERLOADED"), "{backend}");
        assert_eq!(err.operation(), Some("get_database"), "{backend}");
        assert_eq!(err.attempts(), 3, "{backend}: 1 attempt + 2 retries");
        assert_eq!(ctl!(requests(&emu, "get_database")).len(), 3, "{backend}");
    }
}

/// Injects a reset rule. In the browser every answer then also closes its connection: Chromium
/// itself resends a request whose *reused* connection was reset (any method), which no page
/// can prevent, so the SDK would never see the reset; on a fresh connection it does.
macro_rules! reset {
    ($emu:expr, $backend:expr, $rule:expr) => {{
        ctl!($emu.clear_faults());
        ctl!($emu.inject($rule));
        if $backend == "browser" {
            ctl!($emu.inject(FaultRule::new(Target::Any, Fault::Close).always()));
        }
    }};
}

scenario! {
    fn a_reset_before_the_response_is_retried_but_finalize_is_never_sent_twice(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));

        // GET: retried.
        reset!(emu, backend, FaultRule::new(op("list_databases"), Fault::Reset));
        call!(c.databases().list()).unwrap();
        assert_eq!(statuses(&ctl!(requests(&emu, "list_databases"))), [0, 200], "{backend}");

        // POST: replayed (the reset came before the handler, so it ran once).
        reset!(emu, backend, FaultRule::new(op("create_database"), Fault::Reset));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("resets"))).unwrap().id;
        assert_eq!(statuses(&ctl!(requests(&emu, "create_database"))), [0, 201], "{backend}");
        assert_eq!(call!(c.databases().count()).unwrap().total, 1, "{backend}: created once");

        reset!(emu, backend, FaultRule::new(op("query"), Fault::Reset));
        let q = inline(call!(c.query(QueryRequest::new("SELECT 41 + 1 AS x")).x_database_id(&db)).unwrap());
        assert_eq!(q.rows[0][0].as_json(), "42", "{backend}");
        assert_eq!(statuses(&ctl!(requests(&emu, "query"))), [0, 200], "{backend}");

        // Finalize is at-most-once: a reset is reported, never re-sent.
        let data = b"id,name\n1,a\n2,b\n".to_vec();
        let session = call!(c.uploads().create_session(
            CreateUploadRequest::new().declared_size_bytes(data.len() as i64).content_type("text/csv")
        ))
        .unwrap();
        storage_put!(session.url.clone().expect("a single-PUT URL"), data.clone());
        reset!(emu, backend, FaultRule::new(op("finalize_upload_handler"), Fault::Reset));
        let finalize = || {
            c.uploads().finalize(
                &session.upload_id,
                session.finalize_token.expose(),
                FinalizeUploadRequest::new(),
            )
        };
        let err = call!(finalize()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport, "{backend}: {err:?}");
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::NoResponse), "{backend}: {err:?}");
        assert_eq!(err.operation(), Some("finalize_upload_handler"), "{backend}");
        assert_eq!(statuses(&ctl!(requests(&emu, "finalize_upload_handler"))), [0], "{backend}: sent once");
        // That reset came before the handler: the caller may finalize again, knowingly.
        let done = call!(finalize()).unwrap();
        assert_eq!(done.status, UploadStatus::Finalized, "{backend}");
        assert_eq!(done.size_bytes, data.len() as i64, "{backend}");

        // A reset after the finalize committed: still sent once; asking again finds it done.
        let session = call!(
            c.uploads().create_session(CreateUploadRequest::new().declared_size_bytes(data.len() as i64))
        )
        .unwrap();
        storage_put!(session.url.clone().expect("a single-PUT URL"), data.clone());
        ctl!(emu.clear_requests());
        reset!(emu, backend, FaultRule::new(op("finalize_upload_handler"), Fault::ResetAfterCommit));
        let finalize = || {
            c.uploads().finalize(
                &session.upload_id,
                session.finalize_token.expose(),
                FinalizeUploadRequest::new(),
            )
        };
        let err = call!(finalize()).unwrap_err();
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::NoResponse), "{backend}: {err:?}");
        assert_eq!(ctl!(requests(&emu, "finalize_upload_handler")).len(), 1, "{backend}: sent once");
        let again = call!(finalize()).unwrap_err();
        assert_eq!(http_status(&again), Some(400), "{backend}: {again}");
        assert_eq!(again.code(), Some("ALREADY_FINALIZED"), "{backend}");
    }
}

scenario! {
    fn server_errors_are_retried_only_when_enabled_and_only_for_idempotent_operations(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("five"))).unwrap().id;
        let with_5xx = fast_retry().with_server_error_retries(true);

        ctl!(emu.inject(FaultRule::status("get_database", 503, None, 2)));
        let err = call!(c.databases().get(&db)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Api, "{backend}");
        assert_eq!(http_status(&err), Some(503), "{backend}");
        assert_eq!(err.code(), Some("INTERNAL"), "{backend}");
        assert_eq!(statuses(&ctl!(requests(&emu, "get_database"))), [503], "{backend}: off by default");

        let got = call!(c.databases().get(&db).retry(with_5xx.clone())).unwrap();
        assert_eq!(got.id, db, "{backend}");
        assert_eq!(statuses(&ctl!(requests(&emu, "get_database"))), [503, 503, 200], "{backend}");

        // A POST is never retried on a 5xx: the server may have done the work.
        ctl!(emu.inject(FaultRule::status("create_database", 502, None, 1)));
        let err = call!(c.databases().create(CreateDatabaseRequest::new().name("x")).retry(with_5xx.clone()))
            .unwrap_err();
        assert_eq!(http_status(&err), Some(502), "{backend}");
        assert_eq!(statuses(&ctl!(requests(&emu, "create_database"))), [201, 502], "{backend}");

        // 500 is not a transient status.
        ctl!(emu.inject(FaultRule::status("get_database", 500, None, 1)));
        let err = call!(c.databases().get(&db).retry(with_5xx.clone())).unwrap_err();
        assert_eq!(http_status(&err), Some(500), "{backend}");
        assert_eq!(ctl!(requests(&emu, "get_database")).len(), 4, "{backend}: 500 not retried");
    }
}

scenario! {
    fn a_slow_response_times_out_and_is_retried_only_when_idempotent(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("slow"))).unwrap().id;
        let timeout = Some(Duration::from_millis(250));
        let slow = || FaultRule::new(op("get_database"), Fault::Delay(Duration::from_millis(1500)));

        ctl!(emu.inject(slow()));
        let t0 = Stopwatch::start();
        let err = call!(c.databases().get(&db).timeout(timeout).retry(RetryPolicy::none())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{backend}: {err:?}");
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::Timeout), "{backend}");
        assert!(t0.elapsed() < Duration::from_millis(1200), "{backend}: gave up at the timeout");

        // Idempotent: the attempt after the timeout succeeds.
        ctl!(emu.inject(slow()));
        let t0 = Stopwatch::start();
        let got = call!(c.databases().get(&db).timeout(timeout)).unwrap();
        assert_eq!(got.id, db, "{backend}");
        assert!(t0.elapsed() < Duration::from_millis(1200), "{backend}: {:?}", t0.elapsed());

        // Not idempotent: a timed-out query is reported, not run again.
        ctl!(emu.inject(FaultRule::new(op("query"), Fault::Delay(Duration::from_millis(1500)))));
        let t0 = Stopwatch::start();
        let err =
            call!(c.query(QueryRequest::new("SELECT 1")).x_database_id(&db).timeout(timeout)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{backend}: {err:?}");
        assert!(err.attempts() <= 1, "{backend}: one attempt, got {}", err.attempts());
        assert!(t0.elapsed() < Duration::from_millis(1200), "{backend}: not retried");
        // Let the delayed handler finish, then check the query was received once.
        pause!(Duration::from_millis(1400));
        assert!(ctl!(requests(&emu, "query")).len() <= 1, "{backend}: {:?}", ctl!(requests(&emu, "query")));
    }
}

scenario! {
    fn a_slow_body_completes(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("slowbody"))).unwrap().id;
        let q = inline(
            call!(c.query(QueryRequest::new("SELECT * FROM synthetic(5000)")).x_database_id(&db)).unwrap(),
        );
        let rid = q.result_id.expect("a stored result");
        let slow_body = || {
            FaultRule::new(
                op("get_result"),
                Fault::SlowBody { chunk: 8 * 1024, delay: Duration::from_millis(10) },
            )
        };

        ctl!(emu.inject(slow_body()));
        let t0 = Stopwatch::start();
        let result = ready(wait!(c.results().arrow(&rid, &db).collect()).unwrap(), "slow Arrow");
        assert_synthetic(backend, &result, 5000);
        assert!(t0.elapsed() >= Duration::from_millis(100), "{backend}: the body was slow");
        assert!(ctl!(requests(&emu, "get_result")).last().unwrap().fault.is_some(), "{backend}");

        // Slow JSON too, through the buffered path.
        ctl!(emu.inject(FaultRule::new(
            op("list_databases"),
            Fault::SlowBody { chunk: 16, delay: Duration::from_millis(5) },
        )));
        let list = call!(c.databases().list()).unwrap();
        assert_eq!(list.databases.len(), 1, "{backend}");
    }
}

scenario! {
    /// A streamed answer is bounded by the call's timeout until its head, then by the idle
    /// timeout (`Config::body_idle_timeout`): its body may take longer than the timeout, and
    /// fails with a timeout only once no byte has come for the idle timeout. A JSON answer as
    /// slow still fails at the call's timeout, never as a short result.
    fn a_streamed_body_is_bounded_by_the_idle_timeout_and_a_json_body_by_the_timeout(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("idle"))).unwrap().id;
        let sql = "SELECT * FROM synthetic(2000)";
        let rid = inline(call!(c.query(QueryRequest::new(sql)).x_database_id(&db)).unwrap())
            .result_id
            .expect("a stored result");
        let mut whole = Vec::new();
        let fetched = wait!(c.results().download(&rid, &db, ResultsFormatQuery::Arrow).write_to(&mut whole));
        ready(fetched.unwrap(), "the plain download");
        // The body in 6 chunks 150 ms apart: it outlasts the 300 ms timeout of the calls.
        let timeout = Some(Duration::from_millis(300));
        let chunk = whole.len() / 6 + 1;
        let slow = |op_id: &str, delay: u64| {
            FaultRule::new(op(op_id), Fault::SlowBody { chunk, delay: Duration::from_millis(delay) })
        };

        ctl!(emu.inject(slow("get_result", 150)));
        let t0 = Stopwatch::start();
        let result = ready(wait!(c.results().arrow(&rid, &db).timeout(timeout).collect()).unwrap(), "slow");
        assert_synthetic(backend, &result, 2000);
        assert!(t0.elapsed() > Duration::from_millis(300), "{backend}: the body outlasted the timeout");
        assert!(ctl!(requests(&emu, "get_result")).last().unwrap().fault.is_some(), "{backend}");

        ctl!(emu.inject(slow("query", 150)));
        let outcome = wait!(c.query_arrow(QueryRequest::new(sql)).database_id(&db).timeout(timeout).stream());
        let QueryArrowOutcome::Ready { mut batches, .. } = outcome.unwrap() else {
            panic!("{backend}: a small query answered at once");
        };
        let mut rows = 0;
        while let Some(batch) = next_batch!(batches) {
            rows += batch.unwrap().num_rows();
        }
        assert_eq!(rows, 2000, "{backend}: a slow Arrow answer to a query completes too");
        assert!(ctl!(requests(&emu, "query")).last().unwrap().fault.is_some(), "{backend}");

        // A body that stops for longer than the idle timeout fails with a timeout, whatever
        // the call's timeout (the default 20 s of `config` here).
        ctl!(emu.inject(slow("get_result", 5000)));
        let t0 = Stopwatch::start();
        let idle = Some(Duration::from_millis(300));
        let fetched = wait!(c.results().arrow(&rid, &db).body_idle_timeout(idle).collect());
        let err = fetched.map(|_| ()).expect_err("a stalled body must fail");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{backend}: {err:?}");
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::Timeout), "{backend}: {err:?}");
        assert!(t0.elapsed() < Duration::from_secs(4), "{backend}: hung for {:?}", t0.elapsed());

        // The same slow body on a JSON answer fails at the call's timeout, never short.
        ctl!(emu.inject(slow("get_result", 150)));
        let err = call!(c.results().get(&rid, &db).timeout(timeout).retry(RetryPolicy::none())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{backend}: {err:?}");
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::Timeout), "{backend}: {err:?}");
    }
}

/// The emulator's `Truncate` fault only cuts what hyper has flushed: a cut within its write
/// buffer (about 400 KB) loses the whole answer, head included, which a client sees as a
/// connection closed before any response. Real cuts are made past 1 MB.
const FLUSHED: usize = 1_000_000;

scenario! {
    fn a_truncated_body_or_arrow_stream_is_an_error_never_a_short_result(backend) {
        let emu = start!(Settings::default().preview_rows(30_000));
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("trunc"))).unwrap().id;
        // Two Arrow batches (the emulator makes batches of 65,536 rows), about 5 MB.
        let n = 70_000;
        let sql = format!("SELECT * FROM synthetic({n})");
        let rid = inline(call!(c.query(QueryRequest::new(&sql)).x_database_id(&db)).unwrap())
            .result_id
            .expect("a stored result");
        let mut bytes = Vec::new();
        ready(
            wait!(c.results().download(&rid, &db, ResultsFormatQuery::Arrow).write_to(&mut bytes)).unwrap(),
            "Arrow",
        );
        let len = bytes.len();
        assert!(len > 2 * FLUSHED, "{backend}: {len} bytes");

        // Cut anywhere past the flush: mid-message, at the end-of-stream marker, one byte short.
        for at in [FLUSHED, len / 2, len - 8, len - 1] {
            ctl!(emu.clear_requests());
            ctl!(emu.inject(FaultRule::new(op("get_result"), Fault::Truncate { at: Some(at) })));
            let whole = wait!(c.results().arrow(&rid, &db).collect());
            let err = whole
                .and_then(|f| f.into_ready().map(|r| r.num_rows()))
                .expect_err("a cut Arrow stream must fail");
            assert!(
                matches!(err.kind(), ErrorKind::Transport | ErrorKind::Decode),
                "{backend} at {at}: {err:?}"
            );
            assert_eq!(
                ctl!(requests(&emu, "get_result")).len(),
                1,
                "{backend} at {at}: a streamed body is not re-read"
            );
        }

        // Streamed: the batches before the cut arrive, then the stream ends in an error.
        ctl!(emu.inject(FaultRule::new(op("get_result"), Fault::Truncate { at: Some(len - 1000) })));
        let mut batches = ready(wait!(c.results().arrow(&rid, &db).stream()).unwrap(), "streamed Arrow");
        let (mut seen, mut failed) = (0, None);
        while let Some(batch) = next_batch!(batches) {
            match batch {
                Ok(b) => seen += b.num_rows(),
                Err(e) => failed = Some(e),
            }
        }
        let err = failed
            .unwrap_or_else(|| panic!("{backend}: the stream ended without an error after {seen} rows"));
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::Body), "{backend}: {err:?}");
        assert!(
            seen > 0 && seen < n && seen % 65_536 == 0,
            "{backend}: {seen} rows, in whole batches, before the cut"
        );

        // The direct Arrow answer of a query, cut: an error, not a short result.
        ctl!(emu.inject(FaultRule::new(op("query"), Fault::Truncate { at: Some(len / 2) })));
        let err = wait!(c.query_to_arrow(QueryRequest::new(&sql), Some(db.as_str())))
            .map(|r| r.num_rows())
            .unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Transport | ErrorKind::Decode), "{backend}: {err:?}");

        // A cut JSON answer: read again for an idempotent GET, reported for a POST.
        ctl!(emu.clear_requests());
        ctl!(emu.inject(FaultRule::new(op("get_result"), Fault::Truncate { at: Some(FLUSHED) })));
        let page = call!(c.results().get(&rid, &db).limit(30_000)).unwrap();
        assert_eq!(page.rows.map(|r| r.len()), Some(30_000), "{backend}");
        assert_eq!(ctl!(requests(&emu, "get_result")).len(), 2, "{backend}: the GET was read again");
        ctl!(emu.inject(FaultRule::new(op("query"), Fault::Truncate { at: Some(FLUSHED) })));
        let err = call!(c.query(QueryRequest::new(&sql)).x_database_id(&db)).unwrap_err();
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::Body), "{backend}: {err:?}");
        assert_eq!(ctl!(requests(&emu, "query")).len(), 1, "{backend}: the POST was not sent again");

        // A cut a few hundred bytes in: the head and those bytes arrive, then the stream
        // ends early, which is an error (the head was received, so it is not re-sent).
        ctl!(emu.clear_requests());
        ctl!(emu.inject(FaultRule::new(op("get_result"), Fault::Truncate { at: Some(300) })));
        let err = wait!(c.results().arrow(&rid, &db).collect()).map(|_| ()).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Transport | ErrorKind::Decode), "{backend}: {err:?}");
        assert_eq!(statuses(&ctl!(requests(&emu, "get_result"))), [200], "{backend}");
    }
}

scenario! {
    fn a_storm_of_429_on_results_is_ridden_out_within_the_retry_budget(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("storm"))).unwrap().id;
        let rid = inline(
            call!(c.query(QueryRequest::new("SELECT * FROM synthetic(2000)")).x_database_id(&db)).unwrap(),
        )
        .result_id
        .expect("a stored result");
        let storm = || {
            FaultRule::new(
                op("get_result"),
                Fault::Status { status: 429, retry_after: Some(RetryAfter::Seconds(0)) },
            )
        };

        ctl!(emu.inject(storm().times(4)));
        let result = ready(wait!(c.results().arrow(&rid, &db).collect()).unwrap(), "Arrow");
        assert_synthetic(backend, &result, 2000);
        assert_eq!(statuses(&ctl!(requests(&emu, "get_result"))), [429, 429, 429, 429, 200], "{backend}");

        // Waiting for a result rides the storm out too, then the download follows.
        ctl!(emu.clear_requests());
        ctl!(emu.inject(storm().times(3)));
        let status = wait!(c.wait_for_result(&rid, &db)).unwrap();
        assert_eq!(status.status, ResultStatus::Ready, "{backend}");
        let mut csv = Vec::new();
        ready(
            wait!(c.results().download(&rid, &db, ResultsFormatQuery::Csv).write_to(&mut csv)).unwrap(),
            "CSV",
        );
        assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 2001, "{backend}");
        assert_eq!(statuses(&ctl!(requests(&emu, "get_result"))), [429, 429, 429, 200, 200], "{backend}");

        // A storm that outlasts the retries ends with the 429.
        ctl!(emu.clear_requests());
        ctl!(emu.inject(storm().always()));
        let err = wait!(c.results().arrow(&rid, &db).retry(fast_retry().with_max_retries(3)).collect())
            .map(|r| r.map(|_| ()))
            .unwrap_err();
        assert_eq!(http_status(&err), Some(429), "{backend}: {err}");
        assert_eq!(err.code(), Some("OVERLOADED"), "{backend}");
        assert_eq!(ctl!(requests(&emu, "get_result")).len(), 4, "{backend}");
        ctl!(emu.clear_faults());
    }
}

scenario! {
    fn a_result_that_becomes_ready_late_is_awaited_then_fetched_as_arrow(backend) {
        // Async results stay pending for 300 ms; the emulator asks for `Retry-After: 1`.
        let emu = start!(settings().async_result_delay(Duration::from_millis(300)));
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("late"))).unwrap().id;
        let sql = "SELECT * FROM synthetic(1500)";

        let outcome =
            wait!(c.query_arrow(QueryRequest::new(sql).run_async(true)).database_id(&db).stream()).unwrap();
        let (run, rid) = match outcome {
            QueryArrowOutcome::Submitted { run, result_id } => (run, result_id.expect("X-Result-Id")),
            QueryArrowOutcome::Ready { .. } => panic!("{backend}: an async query answered at once"),
        };
        match wait!(c.results().arrow(&rid, &db).collect()).unwrap() {
            ResultFetch::NotReady(n) => {
                assert_eq!(n.result_id, rid, "{backend}");
                assert_eq!(n.retry_after, Some(Duration::from_secs(1)), "{backend}");
                assert!(matches!(n.status, ResultStatus::Pending | ResultStatus::Processing), "{backend}");
            }
            ResultFetch::Ready(_) => panic!("{backend}: ready before its time"),
        }
        let t0 = Stopwatch::start();
        let status = wait!(c.wait_for_result(&rid, &db)).unwrap();
        assert_eq!(status.status, ResultStatus::Ready, "{backend}");
        assert!(t0.elapsed() >= Duration::from_millis(900), "{backend}: Retry-After honoured");
        let polls = ctl!(requests(&emu, "get_result"));
        assert!(
            polls.iter().skip(1).all(|r| r.uri.contains("limit=0")),
            "{backend}: status polls use limit=0"
        );
        let result = ready(wait!(c.results().arrow(&rid, &db).collect()).unwrap(), "late Arrow");
        assert_synthetic(backend, &result, 1500);
        let run =
            wait!(c.wait_for(&QueryRunDone { id: run.query_run_id, database_id: db.clone() }, fast_poll()))
                .unwrap();
        assert_eq!(run.result_id.as_deref(), Some(rid.as_str()), "{backend}");
        assert_eq!(run.row_count, Some(1500), "{backend}");
    }
}

scenario! {
    fn a_query_forced_async_and_a_result_not_ready_are_followed_to_all_rows_as_arrow(backend) {
        let emu = start!(settings().async_result_delay(Duration::ZERO));
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("forced"))).unwrap().id;

        ctl!(emu.inject(FaultRule::new(op("query"), Fault::ForceAsync)));
        ctl!(emu.inject(
            FaultRule::new(op("get_result"), Fault::NotReady { retry_after: Some(RetryAfter::Seconds(0)) })
                .times(2),
        ));
        let result =
            wait!(c.query_to_arrow(QueryRequest::new("SELECT * FROM synthetic(2500)"), Some(db.as_str())))
                .unwrap();
        assert_synthetic(backend, &result, 2500);
        assert_eq!(statuses(&ctl!(requests(&emu, "query"))), [202], "{backend}: the query went async");
        let gets = ctl!(requests(&emu, "get_result"));
        assert_eq!(statuses(&gets), [202, 202, 200, 200], "{backend}");
        assert!(gets[..3].iter().all(|r| r.uri.contains("limit=0")), "{backend}: {gets:?}");
        assert!(gets[3].uri.contains("format=arrow"), "{backend}: rows through Arrow, not JSON pages");

        // A failed async query: the wait and the fetch report the server's message.
        let outcome = wait!(
            c.query_arrow(QueryRequest::new("SELECT * FROM no_such_table").run_async(true))
                .database_id(&db)
                .stream()
        )
        .unwrap();
        let QueryArrowOutcome::Submitted { result_id: Some(bad), .. } = outcome else {
            panic!("{backend}: expected a submitted query with a result id");
        };
        let err = wait!(c.wait_for_result(&bad, &db)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResultFailed, "{backend}: {err:?}");
        assert!(err.message().unwrap_or_default().contains("no_such_table"), "{backend}: {err:?}");
        let err = wait!(c.results().arrow(&bad, &db).collect()).map(|r| r.map(|_| ())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResultFailed, "{backend}: {err:?}");
        assert_eq!(http_status(&err), Some(409), "{backend}");
    }
}

scenario! {
    fn query_to_arrow_returns_every_row_of_a_large_result(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("big"))).unwrap().id;
        let t0 = Stopwatch::start();
        let result =
            wait!(c.query_to_arrow(QueryRequest::new("SELECT * FROM synthetic(200000)"), Some(db.as_str())))
                .unwrap();
        let took = t0.elapsed();
        assert_synthetic(backend, &result, 200_000);
        assert!(result.batches.len() > 1, "{backend}: streamed in several batches");
        eprintln!("{backend}: 200000 rows in {} batches, {took:?}", result.batches.len());

        // The same rows, streamed off the socket batch by batch, with the X-Query-* headers.
        let outcome = wait!(
            c.query_arrow(QueryRequest::new("SELECT * FROM synthetic(20000)")).database_id(&db).stream()
        )
        .unwrap();
        let QueryArrowOutcome::Ready { meta, mut batches } = outcome else {
            panic!("{backend}: a small query answered at once");
        };
        assert_eq!(meta.total_row_count, Some(20_000), "{backend}");
        assert!(meta.query_run_id.is_some() && meta.result_id.is_some(), "{backend}: {meta:?}");
        let mut rows = 0;
        while let Some(batch) = next_batch!(batches) {
            rows += batch.unwrap().num_rows();
        }
        assert_eq!(rows, 20_000, "{backend}");
        // ... and fetched again later by its result id.
        let again =
            ready(wait!(c.results().arrow(meta.result_id.unwrap(), &db).collect()).unwrap(), "stored");
        assert_synthetic(backend, &again, 20_000);
    }
}

scenario! {
    fn listings_are_walked_to_the_end_by_cursor_and_by_offset(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let mut created = Vec::new();
        for i in 0..7 {
            created.push(
                call!(c.databases().create(CreateDatabaseRequest::new().name(format!("db{i}")))).unwrap().id,
            );
        }
        let pages = pages!(c.databases().list().limit(2));
        let pages: Vec<Vec<String>> =
            pages.into_iter().map(|p| p.unwrap().into_iter().map(|d| d.id).collect()).collect();
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2, 1], "{backend}");
        let mut seen: Vec<String> = pages.concat();
        seen.sort();
        created.sort();
        assert_eq!(seen, created, "{backend}: every database once");
        let uris: Vec<String> = ctl!(requests(&emu, "list_databases")).into_iter().map(|r| r.uri).collect();
        assert_eq!(uris.len(), 4, "{backend}");
        assert!(!uris[0].contains("cursor="), "{backend}: {uris:?}");
        assert!(
            uris[1..].iter().all(|u| u.contains("cursor=") && u.contains("limit=2")),
            "{backend}: {uris:?}"
        );

        for i in 0..5 {
            call!(
                c.saved_queries()
                    .create(CreateSavedQueryRequest::new(format!("q{i}"), format!("SELECT {i}")))
            )
            .unwrap();
        }
        let pages = pages!(c.saved_queries().list().limit(2));
        let names: Vec<Vec<String>> =
            pages.into_iter().map(|p| p.unwrap().into_iter().map(|q| q.name).collect()).collect();
        assert_eq!(names.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1], "{backend}");
        let mut all = names.concat();
        all.sort();
        assert_eq!(all, ["q0", "q1", "q2", "q3", "q4"], "{backend}");
        let uris: Vec<String> = ctl!(requests(&emu, "list_saved_queries")).into_iter().map(|r| r.uri).collect();
        assert!(uris[1].contains("offset=2") && uris[2].contains("offset=4"), "{backend}: {uris:?}");

        // An empty listing is one empty page.
        let emu2 = start!(settings());
        let c2 = client!(config(&emu2));
        let pages = pages!(c2.saved_queries().list());
        assert_eq!(pages.len(), 1, "{backend}");
        assert!(pages[0].as_ref().unwrap().is_empty(), "{backend}");
    }
}

scenario! {
    fn error_envelopes_from_the_emulator_surface_as_typed_errors(backend) {
        let emu = start!(settings());
        let good = config(&emu);

        // 401, `{"error":{"code","message"}}` on workspace-scoped operations.
        let c = client!(good.clone().with_api_key("hd_wrong_key"));
        let err = call!(c.databases().list()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Api, "{backend}");
        assert_eq!(http_status(&err), Some(401), "{backend}");
        assert_eq!(err.code(), Some("UNAUTHORIZED"), "{backend}");
        assert_eq!(err.message(), Some("invalid API key"), "{backend}");
        assert!(!err.to_string().contains("hd_wrong_key"), "{backend}: the key never shows: {err}");
        // ... and the plain `{"error":"..."}` envelope of workspace management.
        let err = call!(c.workspaces().list()).unwrap_err();
        assert_eq!(http_status(&err), Some(401), "{backend}");
        assert_eq!(err.code(), None, "{backend}");
        assert!(err.message().is_some_and(|m| !m.is_empty()), "{backend}: {err:?}");

        // 404 WORKSPACE_NOT_FOUND.
        let c = client!(good.clone().with_workspace_id("ws_nope"));
        let err = call!(c.databases().list()).unwrap_err();
        assert_eq!(http_status(&err), Some(404), "{backend}");
        assert_eq!(err.code(), Some("WORKSPACE_NOT_FOUND"), "{backend}");
        assert!(err.is_not_found(), "{backend}");

        // No workspace configured: refused locally, nothing sent.
        let before = ctl!(emu.requests()).len();
        let c = client!(Config::new(emu.api_key()).with_base_url(emu.base_url()));
        let err = call!(c.databases().list()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{backend}: {err:?}");
        assert_eq!(ctl!(emu.requests()).len(), before, "{backend}: nothing sent");

        let c = client!(good.clone());
        let err = call!(c.databases().get("db_missing")).unwrap_err();
        assert_eq!(http_status(&err), Some(404), "{backend}");
        assert!(err.is_not_found(), "{backend}");
        assert_eq!(err.operation(), Some("get_database"), "{backend}");
        call!(c.databases().create(CreateDatabaseRequest::new().name("dup"))).unwrap();
        let err = call!(c.databases().create(CreateDatabaseRequest::new().name("dup"))).unwrap_err();
        assert_eq!(http_status(&err), Some(409), "{backend}");
        assert!(err.code().is_some(), "{backend}: {err:?}");
        let err = call!(c.query(QueryRequest::new("SELEC nonsense"))).unwrap_err();
        assert_eq!(http_status(&err), Some(400), "{backend}");
        assert_eq!(err.code(), Some("QUERY_ERROR"), "{backend}");

        // X-Database-Id: the typed API takes it as an argument, so it cannot be forgotten;
        // the dynamic API refuses its absence, and both refuse an empty value, locally.
        let before = ctl!(emu.requests()).len();
        let err = call!(c.call(DynamicRequest::new("list_results").unwrap())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{backend}: {err:?}");
        let err = call!(c.results().list("")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{backend}: {err:?}");
        assert!(err.to_string().contains("X-Database-Id"), "{backend}: {err}");
        assert_eq!(ctl!(emu.requests()).len(), before, "{backend}: nothing sent");
    }
}

scenario! {
    fn results_download_as_csv_parquet_and_markdown_into_a_writer(backend) {
        let emu = start!(Settings::default().max_json_result_bytes(4000));
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("dl"))).unwrap().id;
        let rid = inline(
            call!(c.query(QueryRequest::new("SELECT * FROM synthetic(1000)")).x_database_id(&db)).unwrap(),
        )
        .result_id
        .expect("a stored result");

        let mut csv = Vec::new();
        let (meta, n) = ready(
            wait!(c.results().download(&rid, &db, ResultsFormatQuery::Csv).write_to(&mut csv)).unwrap(),
            "CSV",
        );
        assert_eq!(n, csv.len() as u64, "{backend}");
        assert_eq!(meta.total_row_count, Some(1000), "{backend}");
        assert!(
            meta.content_type.as_deref().is_some_and(|t| t.starts_with("text/csv")),
            "{backend}: {meta:?}"
        );
        let text = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1001, "{backend}");
        assert_eq!(lines[0], SYNTHETIC_COLUMNS.join(","), "{backend}");
        assert!(lines[1].starts_with("0,0") && lines[1000].starts_with("999,"), "{backend}: {}", lines[1000]);

        // A window, with the link to the next page.
        let mut page = Vec::new();
        let (meta, _) = ready(
            wait!(
                c.results()
                    .download(&rid, &db, ResultsFormatQuery::Csv)
                    .offset(5)
                    .limit(10)
                    .write_to(&mut page)
            )
            .unwrap(),
            "CSV page",
        );
        let page = String::from_utf8(page).unwrap();
        assert_eq!(page.lines().count(), 11, "{backend}");
        assert!(page.lines().nth(1).unwrap().starts_with("5,"), "{backend}");
        let next = meta.next_page.expect("a next page");
        assert!(next.contains("offset=15") && next.contains("limit=10"), "{backend}: {next}");

        let mut parquet = Vec::new();
        let (meta, n) = ready(
            wait!(c.results().download(&rid, &db, ResultsFormatQuery::Parquet).write_to(&mut parquet))
                .unwrap(),
            "Parquet",
        );
        assert_eq!(n, parquet.len() as u64, "{backend}");
        assert!(parquet.len() > 8 && parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"), "{backend}");
        assert_eq!(meta.total_row_count, Some(1000), "{backend}");

        let mut md = Vec::new();
        ready(
            wait!(c.results().download(&rid, &db, ResultsFormatQuery::Md).write_to(&mut md)).unwrap(),
            "Markdown",
        );
        let md = String::from_utf8(md).unwrap();
        assert!(md.lines().next().unwrap().contains("amount"), "{backend}");

        // The whole result is too large for one JSON page (413), but streams as Arrow.
        let err = call!(c.results().get(&rid, &db)).unwrap_err();
        assert_eq!(http_status(&err), Some(413), "{backend}");
        assert_eq!(err.code(), Some("RESULT_TOO_LARGE"), "{backend}");
        let page = call!(c.results().get(&rid, &db).offset(10).limit(3)).unwrap();
        assert_eq!(page.total_row_count, Some(1000), "{backend}");
        assert_eq!(page.rows.as_ref().map(Vec::len), Some(3), "{backend}");
        assert_eq!(page.rows.unwrap()[0][0].as_json(), "10", "{backend}");
        let all = ready(wait!(c.results().arrow(&rid, &db).collect()).unwrap(), "Arrow");
        assert_synthetic(backend, &all, 1000);

        // A download cut short fails (what was written before the cut is the caller's to drop).
        let big = inline(
            call!(c.query(QueryRequest::new("SELECT * FROM synthetic(60000)")).x_database_id(&db)).unwrap(),
        )
        .result_id
        .expect("a stored result");
        ctl!(emu.inject(FaultRule::new(op("get_result"), Fault::Truncate { at: Some(FLUSHED) })));
        let mut cut = Vec::new();
        let err = wait!(c.results().download(&big, &db, ResultsFormatQuery::Csv).write_to(&mut cut))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::Body), "{backend}: {err:?}");
        assert!(cut.len() <= FLUSHED, "{backend}: {} bytes", cut.len());
    }
}

scenario! {
    /// An HTTP-date `Retry-After` on a not-ready result is resolved (against the server's `Date`)
    /// and waited out, as on the 429 path.
    fn a_not_ready_result_with_an_http_date_retry_after_is_waited_out(backend) {
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("date"))).unwrap().id;
        let rid = inline(call!(c.query(QueryRequest::new("SELECT 1 AS x")).x_database_id(&db)).unwrap())
            .result_id
            .expect("a stored result");
        let not_ready = || {
            FaultRule::new(op("get_result"), Fault::NotReady { retry_after: Some(RetryAfter::HttpDate(2)) })
        };

        // In the browser the answer's `Date` is hidden (CORS: not a safelisted header, and the
        // emulator, like the service, does not expose it): the date is resolved against the
        // runtime's wall clock instead, so the delay is honoured there too.
        ctl!(emu.inject(not_ready()));
        match wait!(c.results().arrow(&rid, &db).collect()).unwrap() {
            ResultFetch::NotReady(n) => assert!(
                n.retry_after.is_some_and(|d| d > Duration::from_millis(500) && d <= Duration::from_secs(2)),
                "{backend}: {n:?}"
            ),
            ResultFetch::Ready(_) => panic!("{backend}: the fault answers 202"),
        }

        ctl!(emu.inject(not_ready()));
        let t0 = Stopwatch::start();
        let target = ResultReady { id: rid.clone(), database_id: db.clone() };
        let state = wait!(c.wait_for(&target, fast_poll())).unwrap();
        assert_eq!(state.status, ResultStatus::Ready, "{backend}");
        assert!(t0.elapsed() >= Duration::from_millis(900), "{backend}: waited {:?}", t0.elapsed());
    }
}

/// The fixtures of `tests/fixtures/arrow/` (pyarrow's streams), compiled in: a page has no
/// file system. The scenario checks that this list is the manifest's.
macro_rules! arrow_fixtures {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_bytes!(concat!("../fixtures/arrow/", $file)) as &[u8])),*]
    };
}
const ARROW_FIXTURES: &[(&str, &[u8])] = arrow_fixtures![
    "types_integers.arrows",
    "types_floats.arrows",
    "types_decimal32_64.arrows",
    "types_decimal128_256.arrows",
    "types_boolean.arrows",
    "types_temporal.arrows",
    "types_interval.arrows",
    "types_binary.arrows",
    "types_binary_view.arrows",
    "types_nested.arrows",
    "types_list_view.arrows",
    "types_union.arrows",
    "types_run_end_encoded.arrows",
    "types_null.arrows",
    "types_dictionary.arrows",
    "empty_zero_rows.arrows",
    "empty_zero_row_batch.arrows",
    "zero_columns.arrows",
    "many_small_batches.arrows",
    "compressed_lz4.arrows",
    "compressed_zstd.arrows",
    "compressed.plain.arrows",
    "types_temporal_zstd.arrows",
    "types_nested_lz4.arrows",
    "dict_delta.arrows",
    "dict_delta_zstd.arrows",
    "dict_delta.plain.arrows",
    "dict_replacement.arrows",
    "dict_replacement.plain.arrows",
];
const ARROW_MANIFEST: &str = include_str!("../fixtures/arrow/manifest.json");

scenario! {
    /// Arrow streams written by pyarrow (`tests/fixtures/arrow/`: every type it writes,
    /// compressed with LZ4_FRAME and ZSTD, dictionary deltas and replacements, zero rows and
    /// zero columns), served byte for byte by the emulator and streamed through
    /// `arrow_stream()`: each decodes to the batches its own bytes decode to in process, and a
    /// compressed fixture to the batches of its plain twin.
    fn arrow_streams_written_by_pyarrow_stream_through_every_backend(backend) {
        let manifest: Value = serde_json::from_str(ARROW_MANIFEST).unwrap();
        let fixtures = manifest["fixtures"].as_array().unwrap();
        let listed: Vec<&str> = ARROW_FIXTURES.iter().map(|(f, _)| *f).collect();
        let named: Vec<&str> = fixtures.iter().map(|f| f["file"].as_str().unwrap()).collect();
        assert_eq!(listed, named, "ARROW_FIXTURES is the manifest's list");
        let bytes_of = |file: &str| {
            let (_, bytes) = ARROW_FIXTURES.iter().find(|(f, _)| *f == file).unwrap();
            bytes::Bytes::from_static(bytes)
        };
        let local = |file: &str| hotdata_core::arrow::decode_all(bytes_of(file)).unwrap();
        let emu = start!(settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("fixtures"))).unwrap().id;
        for f in fixtures {
            let file = f["file"].as_str().unwrap();
            let rid = ctl!(emu.store_arrow_result(&db, bytes_of(file))).unwrap();
            let mut stream = ready(wait!(c.results().arrow(&rid, &db).stream()).unwrap(), file);
            let mut got = Vec::new();
            while let Some(b) = next_batch!(stream) {
                got.push(b.unwrap_or_else(|e| panic!("{backend} {file}: {e}")));
            }
            let (schema, expected) = local(file);
            assert_eq!(stream.schema(), schema, "{backend} {file}");
            assert_eq!(got, expected, "{backend} {file}");
            assert_eq!(got.iter().map(|b| b.num_rows() as u64).sum::<u64>(), f["rows"].as_u64().unwrap());
            if f["twin_kind"] == "same" {
                let (_, twin) = local(f["twin"].as_str().unwrap());
                assert_eq!(got, twin, "{backend} {file}: its plain twin");
            }
            assert_eq!(stream.meta().total_row_count, f["rows"].as_u64(), "{backend} {file}");
        }
    }
}
