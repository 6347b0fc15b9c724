//! The one-call query in a build without the `arrow` feature, against the emulator: a
//! complete answer is returned as sent, a query that went asynchronous is read whole as JSON,
//! and a truncated answer is an `Incomplete` error that says to enable `arrow`, never a
//! preview passed off as every row.

use std::time::Duration;

use hotdata_emulator::{Emulator, EmulatorHandle};
use hotdata_ureq::hotdata_core::lifecycle::PollPolicy;
use hotdata_ureq::hotdata_core::models::CreateDatabaseRequest;
use hotdata_ureq::{BlockingClient, Config, ErrorKind, QueryRequest, RowSource};

fn setup() -> (EmulatorHandle, BlockingClient, String) {
    let emu = Emulator::builder()
        .preview_rows(100)
        .async_result_delay(Duration::from_millis(20))
        .start()
        .expect("the emulator starts");
    let c = hotdata_ureq::client(
        Config::new(emu.api_key()).with_workspace_id(emu.workspace_id()).with_base_url(emu.base_url()),
    );
    let db = c.databases().create(CreateDatabaseRequest::new().name("d")).send().unwrap().id;
    (emu, c, db)
}

fn fast_poll() -> PollPolicy {
    PollPolicy::default().with_intervals(Duration::from_millis(5), Duration::from_millis(50))
}

#[derive(Debug, serde::Deserialize)]
struct Row {
    id: i64,
    name: String,
}

#[test]
fn this_build_has_no_arrow() {
    // The premise of the other tests: a workspace-wide build would turn `arrow` on.
    let (_emu, c, db) = setup();
    let err = c.sql("SELECT id FROM synthetic(101)").database_id(&db).rows().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Incomplete, "run this package alone (`-p`): {err}");
}

#[test]
fn a_complete_answer_is_returned_as_sent() {
    let (_emu, c, db) = setup();
    let rows = c.sql("SELECT id, name FROM synthetic(100)").database_id(&db).rows().unwrap();
    assert_eq!((rows.source, rows.len()), (RowSource::Inline, 100));
    let typed: Vec<Row> = rows.rows_as().unwrap();
    assert_eq!((typed[99].id, typed[99].name.as_str()), (99, "name-99"));
}

#[test]
fn a_truncated_answer_is_an_error_that_says_to_enable_arrow() {
    let (emu, c, db) = setup();
    emu.clear_requests();
    let err = c.sql("SELECT id, name FROM synthetic(2500)").database_id(&db).rows().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Incomplete, "{err}");
    let text = err.to_string();
    assert!(text.contains("100 of 2500") && text.contains("`arrow` feature"), "{text}");
    assert!(err.query_run_id().is_some() && err.result_id().is_some(), "{err:?}");
    let typed = c.sql("SELECT id, name FROM synthetic(2500)").database_id(&db).rows_as::<Row>();
    assert_eq!(typed.unwrap_err().kind(), ErrorKind::Incomplete);
    // Nothing but the queries was sent: no JSON pages stitched together.
    assert!(emu.requests().iter().all(|r| r.operation == "query"), "{:?}", emu.requests());
}

#[test]
fn a_query_that_went_asynchronous_is_read_whole_as_json() {
    let (emu, c, db) = setup();
    let query = || QueryRequest::new("SELECT id, name FROM synthetic(2500)").run_async(true);
    let rows = c.sql(query()).database_id(&db).poll_policy(fast_poll()).rows().unwrap();
    assert_eq!((rows.source, rows.len()), (RowSource::ResultJson, 2500));
    let ids: Vec<i64> = rows.rows.iter().map(|r| r[0].as_json().parse().unwrap()).collect();
    assert_eq!(ids, (0..2500).collect::<Vec<_>>());
    let fetches: Vec<String> = emu
        .requests()
        .into_iter()
        .filter(|r| r.operation == "get_result" && !r.uri.contains("limit=0"))
        .map(|r| r.uri)
        .collect();
    assert_eq!(fetches.len(), 1, "one whole JSON answer: {fetches:?}");

    // The row cap is checked against the result's total before its rows are fetched.
    emu.clear_requests();
    let capped = hotdata_ureq::FetchLimits::NONE.with_max_rows(1000);
    let err =
        c.sql(query()).database_id(&db).poll_policy(fast_poll()).fetch_limits(capped).rows().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(
        emu.requests().iter().all(|r| r.operation != "get_result" || r.uri.contains("limit=0")),
        "no rows fetched past the cap"
    );

    // A failed run says why, with its id.
    let bad = QueryRequest::new("SELECT * FROM no_such_table").run_async(true);
    let err = c.sql(bad).database_id(&db).poll_policy(fast_poll()).rows().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResultFailed, "{err:?}");
    assert!(err.query_run_id().is_some(), "{err:?}");
}
