//! Waiting for results, query runs and jobs, on a scripted transport and a manual clock.

use std::time::{Duration, SystemTime};

use hotdata_core::lifecycle::{PollPolicy, Poller};
use hotdata_core::testing::{FakeTransport, ManualRuntime, response, response_with};
use hotdata_core::{BlockingClient, Config, ErrorKind};

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn client(t: std::sync::Arc<FakeTransport>, rt: std::sync::Arc<ManualRuntime>) -> BlockingClient {
    BlockingClient::new(Config::new("k").with_workspace_id("w").with_base_url("http://h"), t, rt, "t")
}

fn result(status: &str) -> String {
    format!(r#"{{"result_id":"r1","status":"{status}"}}"#)
}

#[test]
fn poller_doubles_to_the_cap_and_stops_at_the_deadline() {
    let mut p = Poller::new(PollPolicy::default(), Duration::ZERO);
    let mut now = Duration::ZERO;
    let mut delays = Vec::new();
    while let Some(d) = p.next_delay(None, now) {
        delays.push(d.as_millis());
        now += d;
    }
    assert_eq!(&delays[..5], &[500, 1000, 2000, 4000, 5000]);
    assert!(delays[5..].iter().all(|d| *d == 5000));
    assert!(now <= Duration::from_secs(120));
    assert!(
        now + Duration::from_secs(5) > Duration::from_secs(120),
        "stops only when the next poll would pass it"
    );
    let mut p = Poller::new(PollPolicy::default().with_timeout(Duration::ZERO), Duration::ZERO);
    assert_eq!(p.next_delay(None, Duration::ZERO), None, "a zero timeout never sleeps");
}

#[test]
fn result_wait_polls_status_only_and_honours_retry_after() {
    let t = FakeTransport::script(vec![
        Ok(response_with(202, &result("pending"), "retry-after", "3")),
        Ok(response(202, &result("processing"))),
        Ok(response(200, &result("ready"))),
    ]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH);
    let ready = client(t.clone(), rt.clone()).wait_for_result("r1", "db").unwrap();
    assert_eq!(ready.status.as_str(), "ready");
    assert_eq!(rt.sleeps(), [Duration::from_secs(3), Duration::from_secs(1)]);
    for r in t.requests() {
        assert_eq!(r.uri.query(), Some("limit=0"), "never downloads the rows while waiting");
        assert_eq!(r.headers["x-database-id"], "db");
    }
}

#[test]
fn failed_results_are_errors_with_the_server_message() {
    for reply in [
        response(409, r#"{"result_id":"r1","status":"failed","error_message":"bad cast"}"#),
        response(200, r#"{"result_id":"r1","status":"failed","error_message":"bad cast"}"#),
    ] {
        let t = FakeTransport::script(vec![Ok(reply)]);
        let err =
            client(t, ManualRuntime::new(SystemTime::UNIX_EPOCH)).wait_for_result("r1", "db").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResultFailed);
        assert_eq!(err.message(), Some("bad cast"));
    }
}

#[test]
fn a_result_that_never_gets_ready_times_out() {
    let t = FakeTransport::new(|_| Ok(response(202, &result("processing"))));
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH);
    let err = client(t.clone(), rt.clone()).wait_for_result("r1", "db").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.to_string().contains("result r1") && err.to_string().contains("processing"), "{err}");
    let slept: Duration = rt.sleeps().iter().sum();
    assert!(slept <= Duration::from_secs(120));
}

#[test]
fn query_runs_and_jobs_wait_for_a_final_status() {
    let run = |status: &str| {
        format!(
            r#"{{"id":"qr","status":"{status}","created_at":"t","snapshot_id":"s","sql_hash":"h","sql_text":"select 1","trace_id":null}}"#
        )
    };
    let t = FakeTransport::script(vec![
        Ok(response(200, &run("queued"))),
        Ok(response(200, &run("running"))),
        Ok(response(200, &run("succeeded"))),
    ]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH);
    let done = client(t, rt.clone()).wait_for_query_run("qr", "db").unwrap();
    assert_eq!(done.status.as_str(), "succeeded");
    assert_eq!(rt.sleeps().len(), 2);

    let job = |status: &str, result: &str| {
        format!(
            r#"{{"id":"j","job_type":"create_index","status":"{status}","attempts":1,"created_at":"t","result":{result}}}"#
        )
    };
    let index = r#"{"index_name":"i","index_type":"sorted","columns":["a"],"status":"ready","created_at":"t","updated_at":"t"}"#;
    let t = FakeTransport::script(vec![
        Ok(response(200, &job("pending", "null"))),
        Ok(response(200, &job("succeeded", index))),
    ]);
    let done = client(t, ManualRuntime::new(SystemTime::UNIX_EPOCH)).wait_for_job("j").unwrap();
    assert!(matches!(done.result, Some(hotdata_core::models::JobResult::Index(_))), "{:?}", done.result);
}

/// A `Retry-After` given as an HTTP date on an answer without a visible `Date` header (a
/// browser hides `Date` from a page unless the server exposes it) is resolved against the
/// runtime's wall clock: on a not-ready poll, a not-ready download, and an error, on both
/// clients.
#[test]
fn an_http_date_retry_after_without_a_date_header_is_resolved_against_the_wall_clock() {
    use hotdata_core::models::ResultsFormatQuery;
    use hotdata_core::results::ResultFetch;
    use hotdata_core::testing::{Reply, block_on};
    use hotdata_core::{AsyncClient, RetryPolicy};

    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let secs = Duration::from_secs;
    // Dates as seen from the start: the wait sleeps 7 s first, so the later answers are
    // read 7 s in.
    let at = |s: u64| httpdate::fmt_http_date(wall + secs(s));
    let script = || -> Vec<Reply> {
        vec![
            Ok(response_with(202, &result("pending"), "retry-after", &at(7))),
            Ok(response(200, &result("ready"))),
            Ok(response_with(202, &result("pending"), "retry-after", &at(7 + 5))),
            Ok(response_with(400, r#"{"error":{"code":"X","message":"m"}}"#, "retry-after", &at(7 + 9))),
        ]
    };
    let config = || {
        Config::new("k")
            .with_workspace_id("w")
            .with_base_url("http://h")
            .with_retry(RetryPolicy::default().with_max_retries(0))
    };

    let rt = ManualRuntime::new(wall);
    let c = BlockingClient::new(config(), FakeTransport::script(script()), rt.clone(), "t");
    c.wait_for_result("r1", "db").unwrap();
    assert_eq!(rt.sleeps(), [secs(7)], "blocking: the wait honours the date");
    let fetch = c.results().download("r1", "db", ResultsFormatQuery::Csv).open().unwrap();
    let ResultFetch::NotReady(n) = fetch else { panic!("202 is not ready") };
    assert_eq!(n.retry_after, Some(secs(5)), "blocking: {n:?}");
    let e = c.databases().get("db").send().unwrap_err();
    assert_eq!(e.retry_after(), Some(secs(9)), "blocking: {e:?}");

    let rt = ManualRuntime::new(wall);
    let c = AsyncClient::new(config(), FakeTransport::script(script()), rt.clone(), "t");
    block_on(c.wait_for_result("r1", "db")).unwrap();
    assert_eq!(rt.sleeps(), [secs(7)], "async: the wait honours the date");
    let fetch = block_on(c.results().download("r1", "db", ResultsFormatQuery::Csv).open()).unwrap();
    let ResultFetch::NotReady(n) = fetch else { panic!("202 is not ready") };
    assert_eq!(n.retry_after, Some(secs(5)), "async: {n:?}");
    let e = block_on(c.databases().get("db").send()).unwrap_err();
    assert_eq!(e.retry_after(), Some(secs(9)), "async: {e:?}");
}
