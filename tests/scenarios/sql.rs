// The one-call query (`client.sql(..)`) against the emulator, written once and run on every
// backend (natively: tests/conformance/tests/sql.rs; in headless Chromium:
// hotdata-wasm/tests/scenarios.rs): an inline answer, a truncated one (followed through one
// Arrow stream), a query that went asynchronous (202), each guard, a failed result, and a
// wait that gives up (its error names the run and the result so the caller can keep
// waiting).

use std::time::Duration;

use hotdata_core::lifecycle::PollPolicy;
use hotdata_core::models::{CreateDatabaseRequest, QueryRequest};
use hotdata_core::{Config, ErrorKind, FetchLimits, RetryPolicy, RowSource};
use hotdata_emulator::{RequestRecord, Settings};

fn config(emu: &Emu) -> Config {
    Config::new(emu.api_key())
        .with_workspace_id(emu.workspace_id())
        .with_base_url(emu.base_url())
        .with_timeout(Some(Duration::from_secs(20)))
        .with_retry(
            RetryPolicy::default()
                .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
                .with_jitter(0.0),
        )
}

/// Polls every 5-50 ms for at most 10 s.
fn fast_poll() -> PollPolicy {
    PollPolicy::default()
        .with_intervals(Duration::from_millis(5), Duration::from_millis(50))
        .with_timeout(Duration::from_secs(10))
}

/// An emulator whose inline answers hold at most 100 rows.
fn sql_settings() -> Settings {
    Settings::default().preview_rows(100).async_result_delay(Duration::from_millis(50))
}

/// The URIs of the result fetches among `records` that read rows (status polls ask for
/// `limit=0`).
fn row_fetches(records: Vec<RequestRecord>) -> Vec<String> {
    records.into_iter().map(|r| r.uri).filter(|u| !u.contains("limit=0")).collect()
}

#[derive(Debug, serde::Deserialize, PartialEq)]
struct Row {
    id: i64,
    name: String,
}

scenario! {
    fn sql_returns_a_complete_inline_answer_as_sent(backend) {
        let emu = start!(sql_settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("d"))).unwrap().id;
        let rows = wait!(c.sql("SELECT id, name FROM synthetic(50)").database_id(&db).rows()).unwrap();
        assert_eq!(rows.source, RowSource::Inline, "{backend}");
        assert_eq!(rows.columns, ["id", "name"], "{backend}");
        assert_eq!(rows.len(), 50, "{backend}");
        assert_eq!(rows.rows[49][1].as_json(), "\"name-49\"", "{backend}");
        assert!(rows.query_run_id.is_some() && rows.result_id.is_some(), "{backend}: {rows:?}");
        let typed: Vec<Row> = rows.rows_as().unwrap();
        assert_eq!(typed[7], Row { id: 7, name: "name-7".into() }, "{backend}");
        // One exchange: nothing fetched after the inline answer.
        assert_eq!(ctl!(requests(&emu, "query")).len(), 1, "{backend}");
        assert!(ctl!(requests(&emu, "get_result")).is_empty(), "{backend}");

        let typed: Vec<Row> =
            wait!(c.sql("SELECT id, name FROM synthetic(3)").database_id(&db).rows_as()).unwrap();
        assert_eq!(typed.len(), 3, "{backend}");
        let arrow = wait!(c.sql("SELECT id, name FROM synthetic(50)").database_id(&db).arrow()).unwrap();
        assert_eq!(arrow.num_rows(), 50, "{backend}");
        assert!(arrow.bytes_received > 0, "{backend}: bytes received are counted");
    }
}

scenario! {
    fn sql_follows_a_truncated_answer_through_one_arrow_stream(backend) {
        let emu = start!(sql_settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("d"))).unwrap().id;
        // The raw call gives the preview and says so.
        let raw = call!(
            c.query(QueryRequest::new("SELECT id, name FROM synthetic(2500)")).map(|q| q.x_database_id(&db))
        )
        .unwrap();
        let hotdata_core::models::QueryOutcome::Inline(raw) = raw else { panic!("{backend}: inline") };
        assert!(raw.truncated && raw.rows.len() == 100, "{backend}");
        ctl!(emu.clear_requests());

        let rows = wait!(c.sql("SELECT id, name FROM synthetic(2500)").database_id(&db).rows()).unwrap();
        assert_eq!(rows.source, RowSource::Arrow, "{backend}");
        assert_eq!(rows.len(), 2500, "{backend}: every row, not the preview");
        let ids: Vec<i64> = rows.rows.iter().map(|r| r[0].as_json().parse().unwrap()).collect();
        assert_eq!(ids, (0..2500).collect::<Vec<_>>(), "{backend}: in order, each once");
        // The rest came from one Arrow stream of the stored result.
        let fetches = row_fetches(ctl!(requests(&emu, "get_result")));
        assert_eq!(fetches.len(), 1, "{backend}: {fetches:?}");
        assert!(fetches[0].contains("format=arrow"), "{backend}: {fetches:?}");
        assert_eq!(
            Some(fetches[0].split('/').nth(3).unwrap().split('?').next().unwrap()),
            rows.result_id.as_deref()
        );

        let typed: Vec<Row> =
            wait!(c.sql("SELECT id, name FROM synthetic(2500)").database_id(&db).rows_as()).unwrap();
        assert_eq!(typed.len(), 2500, "{backend}");
        assert_eq!(typed[2499], Row { id: 2499, name: "name-2499".into() }, "{backend}");
    }
}

scenario! {
    fn sql_waits_for_a_query_that_went_asynchronous(backend) {
        let emu = start!(sql_settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("d"))).unwrap().id;
        let query = || QueryRequest::new("SELECT id, name FROM synthetic(300)").run_async(true);
        let rows = wait!(c.sql(query()).database_id(&db).poll_policy(fast_poll()).rows()).unwrap();
        assert_eq!(rows.len(), 300, "{backend}");
        assert!(rows.query_run_id.is_some() && rows.result_id.is_some(), "{backend}: {rows:?}");
        assert!(!ctl!(requests(&emu, "get_query_run")).is_empty(), "{backend}: the run was waited for");

        let typed: Vec<Row> =
            wait!(c.sql(query()).database_id(&db).poll_policy(fast_poll()).rows_as()).unwrap();
        assert_eq!(typed.len(), 300, "{backend}");
        let all = wait!(c.sql(query()).database_id(&db).poll_policy(fast_poll()).arrow()).unwrap();
        assert_eq!(all.num_rows(), 300, "{backend}");
        let mut stream =
            wait!(c.sql(query()).database_id(&db).poll_policy(fast_poll()).arrow_stream()).unwrap();
        let mut n = 0;
        while let Some(batch) = next_batch!(stream) {
            n += batch.unwrap().num_rows();
        }
        assert_eq!(n, 300, "{backend}");
        // The database can come from the request body too.
        let rows = wait!(
            c.sql(QueryRequest::new("SELECT id FROM synthetic(5)").run_async(true).database_id(db.as_str()))
                .poll_policy(fast_poll())
                .rows()
        )
        .unwrap();
        assert_eq!(rows.len(), 5, "{backend}");
    }
}

scenario! {
    fn sql_guards_stop_before_fetching_past_a_cap(backend) {
        let emu = start!(sql_settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("d"))).unwrap().id;
        let big = "SELECT id, name FROM synthetic(2500)";

        // The row cap, per call: the announced total is checked before any row is fetched.
        ctl!(emu.clear_requests());
        let err =
            wait!(c.sql(big).database_id(&db).fetch_limits(FetchLimits::NONE.with_max_rows(1000)).rows())
                .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{backend}: {err}");
        let limit = err.limit().unwrap();
        assert_eq!(
            (limit.limit, limit.max, limit.actual),
            ("Sql::fetch_limits.max_rows", 1000, 2500),
            "{backend}"
        );
        assert!(row_fetches(ctl!(requests(&emu, "get_result"))).is_empty(), "{backend}: nothing fetched past the cap");
        assert!(err.result_id().is_some() && err.query_run_id().is_some(), "{backend}: {err:?}");
        assert!(err.to_string().contains("arrow_stream"), "{backend}: says how to stream: {err}");

        // The client's row cap, on the Arrow form (announced in the Arrow answer's head).
        let capped = client!(config(&emu).with_fetch_limits(FetchLimits::NONE.with_max_rows(2000)));
        let err = wait!(capped.sql(big).database_id(&db).arrow()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{backend}: {err}");
        assert_eq!(err.limit().unwrap().limit, "Config::fetch_limits.max_rows", "{backend}");

        // The byte cap, while reading.
        let err =
            wait!(c.sql(big).database_id(&db).fetch_limits(FetchLimits::NONE.with_max_bytes(4096)).rows())
                .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{backend}: {err}");
        assert_eq!(err.limit().unwrap().limit, "Sql::fetch_limits.max_bytes", "{backend}");

        // A stream is not capped: it holds one batch at a time.
        let mut stream = wait!(capped.sql(big).database_id(&db).arrow_stream()).unwrap();
        let mut n = 0;
        while let Some(batch) = next_batch!(stream) {
            n += batch.unwrap().num_rows();
        }
        assert_eq!(n, 2500, "{backend}");
    }
}

scenario! {
    fn sql_reports_a_failed_query_and_a_wait_that_gives_up_with_the_ids_to_go_on(backend) {
        let emu = start!(sql_settings());
        let c = client!(config(&emu));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("d"))).unwrap().id;

        // A query that fails at once is the server's error.
        let err = wait!(c.sql("SELECT * FROM no_such_table").database_id(&db).rows()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Api, "{backend}: {err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(400), "{backend}");

        // One that fails after going asynchronous: the run's reason, with its ids.
        let bad = || QueryRequest::new("SELECT * FROM no_such_table").run_async(true);
        for form in ["rows", "arrow"] {
            let err = match form {
                "rows" => wait!(c.sql(bad()).database_id(&db).poll_policy(fast_poll()).rows()).map(|_| ()),
                _ => wait!(c.sql(bad()).database_id(&db).poll_policy(fast_poll()).arrow()).map(|_| ()),
            }
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ResultFailed, "{backend} {form}: {err:?}");
            assert!(err.to_string().contains("no_such_table"), "{backend} {form}: {err}");
            assert!(err.query_run_id().is_some(), "{backend} {form}: {err:?}");
        }

        // A wait that reaches its deadline names the run (and the result, when the server
        // named it) so the caller can keep waiting.
        let slow = start!(Settings::default().async_result_delay(Duration::from_millis(1500)));
        let c = client!(config(&slow));
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("d"))).unwrap().id;
        let short = PollPolicy::default()
            .with_intervals(Duration::from_millis(5), Duration::from_millis(20))
            .with_timeout(Duration::from_millis(100));
        let query = QueryRequest::new("SELECT id FROM synthetic(10)").run_async(true);
        let err =
            wait!(c.sql(query.clone()).database_id(&db).poll_policy(short.clone()).arrow()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{backend}: {err:?}");
        let (run, result) = (err.query_run_id().unwrap().to_owned(), err.result_id().unwrap().to_owned());
        assert!(err.to_string().contains(&run), "{backend}: {err}");
        let err = wait!(c.sql(query).database_id(&db).poll_policy(short).rows()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{backend}: {err:?}");
        assert!(err.query_run_id().is_some(), "{backend}: {err:?}");
        // ... and the caller goes on waiting where the SDK stopped.
        let done = wait!(c.wait_for_query_run(&run, &db)).unwrap();
        assert_eq!(done.result_id.as_deref(), Some(result.as_str()), "{backend}");
        let all = wait!(c.stored_result_arrow(&result, &db)).unwrap();
        assert_eq!(all.num_rows(), 10, "{backend}");
    }
}
