//! The client's rules on a scripted transport and a manual clock: retry timing, what is
//! retried, pagination, scoping, per-call options. No sockets, exact time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hotdata_core::testing::{FakeTransport, ManualRuntime, block_on, response, response_with};
use hotdata_core::{
    AsyncClient, BlockingClient, Config, ErrorKind, Jitter, RetryPolicy, TransportError, TransportErrorKind,
};

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const WALL: Duration = Duration::from_secs(1_750_000_000);

fn blocking(transport: Arc<FakeTransport>, runtime: Arc<ManualRuntime>, config: Config) -> BlockingClient {
    BlockingClient::new(config, transport, runtime, "fake").with_jitter(Jitter::from_seed(1))
}

fn cfg() -> Config {
    Config::new("k").with_workspace_id("ws").with_base_url("https://api.example.test/prefix/")
}

fn db_json(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","attachments":[],"default_catalog":"c","default_schema":"s","default_connection_id":"x"}}"#
    )
}

#[test]
fn backoff_sequence_on_a_manual_clock() {
    let transport = FakeTransport::script(
        (0..5).map(|_| Ok(response(429, r#"{"error":{"code":"OVERLOADED","message":"busy"}}"#))).collect(),
    );
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let policy = RetryPolicy::default().with_jitter(0.0).with_max_retries(4);
    let client = blocking(transport.clone(), rt.clone(), cfg().with_retry(policy));
    let err = client.databases().get("db").send().unwrap_err();
    assert_eq!(err.attempts(), 5);
    assert_eq!(rt.sleeps(), [500, 1000, 2000, 4000].map(Duration::from_millis));
    assert_eq!(transport.requests().len(), 5);
}

#[test]
fn an_error_counts_one_attempt_when_one_was_sent_and_none_when_nothing_was() {
    // `Error::attempts` is 0 only when nothing was sent.
    let transport =
        FakeTransport::script(vec![Ok(response(404, r#"{"error":{"code":"NOT_FOUND","message":"no"}}"#))]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client = blocking(transport.clone(), rt.clone(), cfg());
    let err = client.databases().get("db").send().unwrap_err();
    assert_eq!((err.kind(), err.attempts()), (ErrorKind::Api, 1), "{err:?}");
    assert!(!err.to_string().contains("attempts"), "one attempt is not worth saying: {err}");
    let transport = FakeTransport::script(vec![Err(TransportError::from_kind(TransportErrorKind::Request))]);
    let client = blocking(transport, rt.clone(), cfg());
    let err = client.databases().get("db").send().unwrap_err();
    assert_eq!((err.kind(), err.attempts()), (ErrorKind::Transport, 1), "{err:?}");
    let client = blocking(
        FakeTransport::script(vec![]),
        rt,
        Config::new("k").with_base_url("https://api.example.test"),
    );
    let err = client.databases().get("db").send().unwrap_err();
    assert_eq!((err.kind(), err.attempts()), (ErrorKind::Config, 0), "{err:?}");
}

#[test]
fn retry_after_in_both_forms_drives_the_delay() {
    let date = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + WALL + Duration::from_secs(9));
    let transport = FakeTransport::script(vec![
        Ok(response_with(429, "{}", "retry-after", "3")),
        Ok(response_with(503, "{}", "retry-after", &date)),
        Ok(response(200, &db_json("db"))),
    ]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let policy = RetryPolicy::default().with_jitter(0.0).with_server_error_retries(true);
    let client = blocking(transport.clone(), rt.clone(), cfg().with_retry(policy));
    client.databases().get("db").send().unwrap();
    // 3 s, then the date 9 s after the start minus the 3 s already slept.
    assert_eq!(rt.sleeps(), [Duration::from_secs(3), Duration::from_secs(6)]);
}

#[test]
fn budget_stops_retries() {
    let transport =
        FakeTransport::script((0..3).map(|_| Ok(response_with(429, "{}", "retry-after", "100"))).collect());
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client =
        blocking(transport.clone(), rt.clone(), cfg().with_retry(RetryPolicy::default().with_jitter(0.0)));
    let err = client.databases().get("db").send().unwrap_err();
    assert_eq!(rt.sleeps(), [Duration::from_secs(100)], "a second 100 s wait would pass the 120 s budget");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(100)));
}

#[test]
fn server_errors_are_opt_in_and_idempotent_only() {
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let t = FakeTransport::script(vec![Ok(response(503, "{}")), Ok(response(200, &db_json("db")))]);
    let err = blocking(t.clone(), rt.clone(), cfg()).databases().get("db").send().unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(t.requests().len(), 1, "off by default");

    let on = cfg().with_retry(RetryPolicy::default().with_server_error_retries(true));
    let t = FakeTransport::script(vec![Ok(response(503, "{}")), Ok(response(200, &db_json("db")))]);
    blocking(t.clone(), rt.clone(), on.clone()).databases().get("db").send().unwrap();
    assert_eq!(t.requests().len(), 2);

    let t = FakeTransport::script(vec![Ok(response(503, "{}")), Ok(response(201, "{}"))]);
    let body = hotdata_core::models::CreateDatabaseRequest::new();
    let err = blocking(t.clone(), rt, on).databases().create(body).send().unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(t.requests().len(), 1, "POST is not retried on 503");
}

#[test]
fn finalize_is_never_resent_once_it_may_have_arrived() {
    use hotdata_core::models::FinalizeUploadRequest;
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    for kind in [TransportErrorKind::NoResponse, TransportErrorKind::Timeout, TransportErrorKind::Body] {
        let t = FakeTransport::script(vec![Err(TransportError::from_kind(kind)), Ok(response(200, "{}"))]);
        let err = blocking(t.clone(), rt.clone(), cfg())
            .uploads()
            .finalize("up", "tok", FinalizeUploadRequest::new())
            .send()
            .unwrap_err();
        assert_eq!(t.requests().len(), 1, "{kind:?}");
        assert_eq!(err.transport_kind(), Some(kind));
    }
    // Provably never sent: safe to send again.
    let body =
        r#"{"upload_id":"up","status":"finalized","size_bytes":1,"created_at":"2026-01-01T00:00:00Z"}"#;
    let t = FakeTransport::script(vec![
        Err(TransportError::from_kind(TransportErrorKind::Connect)),
        Ok(response(200, body)),
    ]);
    blocking(t.clone(), rt, cfg())
        .uploads()
        .finalize("up", "tok", FinalizeUploadRequest::new())
        .send()
        .unwrap();
    assert_eq!(t.requests().len(), 2);
}

#[test]
fn urls_headers_and_per_call_options() {
    let t = FakeTransport::script(vec![Ok(response(200, r#"{"databases":[],"has_more":false}"#))]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    blocking(t.clone(), rt, cfg())
        .databases()
        .list()
        .limit(10)
        .search("a b")
        .workspace_id("ws_other")
        .timeout(Some(Duration::from_secs(5)))
        .send()
        .unwrap();
    let r = &t.requests()[0];
    assert_eq!(r.uri.to_string(), "https://api.example.test/prefix/v1/databases?limit=10&search=a%20b");
    assert_eq!(r.headers["x-workspace-id"], "ws_other");
    assert_eq!(r.headers["user-agent"], format!("hotdata-rs/{} (fake)", hotdata_core::VERSION));
    assert!(r.headers["authorization"].is_sensitive());
    assert_eq!(r.timeout, Some(Duration::from_secs(5)));
}

#[test]
fn the_api_key_is_sent_as_a_bearer_and_a_key_no_header_can_carry_is_refused() {
    let t = FakeTransport::script(vec![Ok(response(200, r#"{"databases":[],"has_more":false}"#))]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let with_key = |key: &str| cfg().with_api_key(key);
    blocking(t.clone(), rt.clone(), with_key("hd_key\twith tab~")).databases().list().send().unwrap();
    assert_eq!(t.requests()[0].headers["authorization"], "Bearer hd_key\twith tab~");
    // A line break (header injection), a control byte, DEL and non-ASCII text: refused before
    // anything is sent, and the error does not show the key.
    for key in ["k\r\nX-Evil: 1", "k\u{1}", "k\u{7f}", "clé"] {
        let t = FakeTransport::script(vec![]);
        let err = blocking(t.clone(), rt.clone(), with_key(key)).databases().list().send().unwrap_err();
        assert_eq!((err.kind(), err.attempts()), (ErrorKind::Config, 0), "{key:?}: {err:?}");
        assert!(!format!("{err} {err:?}").contains(key), "{err:?}");
        assert!(t.requests().is_empty());
    }
}

#[test]
fn database_header_and_required_params() {
    let t = FakeTransport::script(vec![Ok(response(
        200,
        r#"{"count":0,"has_more":false,"limit":5,"offset":0,"results":[]}"#,
    ))]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    blocking(t.clone(), rt, cfg()).results().list("db_9").limit(5).send().unwrap();
    assert_eq!(t.requests()[0].headers["x-database-id"], "db_9");
}

#[test]
fn cursor_pagination_walks_to_the_end() {
    let t = FakeTransport::new(|r| {
        let q = r.uri.query().unwrap_or("");
        Ok(if !q.contains("cursor=") {
            response(
                200,
                r#"{"databases":[{"id":"a","default_catalog":"c","default_schema":"s"}],"next_cursor":"c1","has_more":true}"#,
            )
        } else if q.contains("cursor=c1") {
            response(
                200,
                r#"{"databases":[{"id":"b","default_catalog":"c","default_schema":"s"}],"next_cursor":"c2","has_more":true}"#,
            )
        } else {
            response(
                200,
                r#"{"databases":[{"id":"c","default_catalog":"c","default_schema":"s"}],"next_cursor":null,"has_more":false}"#,
            )
        })
    });
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client = blocking(t.clone(), rt.clone(), cfg());
    let ids: Vec<String> = client.databases().list().limit(1).items().map(|d| d.unwrap().id).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(t.requests()[2].uri.query(), Some("limit=1&cursor=c2"));

    let aclient = AsyncClient::new(cfg(), t.clone(), rt, "fake");
    let pages = block_on(async {
        use std::future::poll_fn;
        use std::pin::Pin;
        let mut stream = aclient.databases().list().limit(1).pages();
        let mut out = Vec::new();
        while let Some(page) = poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut stream), cx)).await
        {
            out.push(page.unwrap().len());
        }
        out
    });
    assert_eq!(pages, [1, 1, 1]);
}

#[test]
fn offset_pagination_walks_to_the_end() {
    let t = FakeTransport::new(|r| {
        let q = r.uri.query().unwrap_or("");
        let offset: i32 =
            q.split('&').find_map(|p| p.strip_prefix("offset=")).map_or(0, |v| v.parse().unwrap());
        let n = (5 - offset).clamp(0, 2);
        let queries: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"id":"q{}","name":"n","description":"","latest_version":1,"created_at":"t","updated_at":"t","tags":[]}}"#, offset + i))
            .collect();
        Ok(response(
            200,
            &format!(
                r#"{{"count":{n},"has_more":{},"limit":2,"offset":{offset},"queries":[{}]}}"#,
                offset + n < 5,
                queries.join(",")
            ),
        ))
    });
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client = blocking(t.clone(), rt, cfg());
    let pages: Vec<usize> =
        client.saved_queries().list().limit(2).pages().map(|p| p.unwrap().len()).collect();
    assert_eq!(pages, [2, 2, 1]);
}

#[test]
fn pagination_stops_at_the_first_error() {
    let t = FakeTransport::script(vec![
        Ok(response(
            200,
            r#"{"jobs":[{"id":"j","job_type":"noop","status":"succeeded","attempts":1,"created_at":"t"}]}"#,
        )),
        Ok(response(500, r#"{"error":{"code":"INTERNAL","message":"boom"}}"#)),
    ]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let pages: Vec<_> = blocking(t, rt, cfg()).jobs().list().limit(1).pages().collect();
    assert_eq!(pages.len(), 2);
    assert!(pages[0].is_ok());
    assert_eq!(pages[1].as_ref().unwrap_err().kind(), ErrorKind::Api);
}

#[test]
fn async_token_provider_is_refused_by_the_blocking_client() {
    struct P;
    impl hotdata_core::AsyncTokenProvider for P {
        fn token(
            &self,
        ) -> hotdata_core::BoxFuture<'_, Result<hotdata_core::SecretString, hotdata_core::BoxError>> {
            Box::pin(async { Ok("t".into()) })
        }
    }
    let t = FakeTransport::script(vec![]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let err = blocking(t.clone(), rt.clone(), cfg().with_async_token_provider(P))
        .databases()
        .get("d")
        .send()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(t.requests().is_empty());
    let t = FakeTransport::script(vec![Ok(response(200, &db_json("d")))]);
    let client = AsyncClient::new(cfg().with_async_token_provider(P), t.clone(), rt, "fake");
    block_on(client.databases().get("d").send()).unwrap();
    assert_eq!(t.requests()[0].headers["authorization"], "Bearer t");
}

#[test]
fn config_from_env_treats_blank_as_unset() {
    let c = Config::from_lookup(|k| match k {
        "HOTDATA_API_KEY" => Some("  key ".into()),
        "HOTDATA_WORKSPACE_ID" => Some("   ".into()),
        "HOTDATA_API_URL" => Some(String::new()),
        _ => None,
    });
    assert!(matches!(c.credentials, hotdata_core::Credentials::ApiKey(ref k) if k.expose() == "key"));
    assert_eq!(c.workspace_id, None);
    assert_eq!(c.base_url, "https://api.hotdata.dev");
    assert!(c.timeout.is_some() && c.connect_timeout.is_some(), "timeouts are on by default");
}

#[test]
fn every_operation_is_described() {
    use hotdata_core::{Idempotency, ops};
    assert_eq!(ops::ALL.len(), 63);
    assert_eq!(ops::ALL.iter().filter(|o| o.workspace_scoped).count(), 60);
    let once: Vec<_> =
        ops::ALL.iter().filter(|o| o.idempotency == Idempotency::AtMostOnce).map(|o| o.id).collect();
    assert_eq!(once, ["finalize_upload_handler"]);
    let ids: std::collections::HashSet<_> = ops::ALL.iter().map(|o| o.id).collect();
    assert_eq!(ids.len(), 63);
    let load = ops::ALL.iter().find(|o| o.id == "load_database_table").unwrap();
    assert!(load.responses.iter().any(|r| r.status == 202 && r.schema == Some("SubmitJobResponse")));
}

#[test]
fn empty_and_dot_path_parameters_are_refused_before_sending() {
    let t = FakeTransport::script(vec![]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client = blocking(t.clone(), rt, cfg());
    for bad in ["", ".", ".."] {
        let err = client.database_context().delete("db_1", bad).send().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
        assert!(err.to_string().contains("`name`"), "{err}");
        let err = client.databases().get(bad).send().unwrap_err();
        assert!(err.to_string().contains("`database_id`"), "{err}");
    }
    assert!(t.requests().is_empty());
    let t = FakeTransport::script(vec![Ok(response(204, ""))]);
    let client = blocking(t.clone(), ManualRuntime::new(SystemTime::UNIX_EPOCH), cfg());
    client.database_context().delete("db_1", "...").send().unwrap();
    assert_eq!(t.requests()[0].uri.path(), "/prefix/v1/databases/db_1/context/...");
}

#[test]
fn an_empty_required_header_is_refused_before_sending() {
    let t = FakeTransport::script(vec![]);
    let client = blocking(t.clone(), ManualRuntime::new(SystemTime::UNIX_EPOCH), cfg());
    let err = client.results().list(" ").send().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("X-Database-Id"), "{err}");
    assert!(t.requests().is_empty());
}

/// A base URL given with the API's `/v1` (as the API's own docs write it) is its root: the
/// `/v1` every path starts with is not doubled.
#[test]
fn a_base_url_ending_in_v1_is_not_doubled() {
    for base in [
        "https://api.example.test/v1",
        "https://api.example.test/v1/",
        "https://api.example.test/prefix/v1//",
    ] {
        let t = FakeTransport::script(vec![Ok(response(200, r#"{"databases":[],"has_more":false}"#))]);
        let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
        let config = Config::new("k").with_workspace_id("ws").with_base_url(base);
        blocking(t.clone(), rt, config).databases().list().send().unwrap();
        let uri = t.requests()[0].uri.to_string();
        assert!(
            uri.ends_with(".test/v1/databases") || uri.ends_with("/prefix/v1/databases"),
            "{base}: {uri}"
        );
        assert!(!uri.contains("/v1/v1"), "{base}: {uri}");
    }
}

/// A `409` whose error code is `code`.
fn conflict(code: &str) -> hotdata_core::testing::Reply {
    Ok(response(409, &format!(r#"{{"error":{{"code":"{code}","message":"table is being loaded"}}}}"#)))
}

fn load_done() -> hotdata_core::testing::Reply {
    Ok(response(
        200,
        r#"{"arrow_schema_json":"{}","connection_id":"c","row_count":1,"schema_name":"s","table_name":"t"}"#,
    ))
}

fn load_body() -> hotdata_core::models::LoadManagedTableRequest {
    hotdata_core::models::LoadManagedTableRequest::new(hotdata_core::models::LoadMode::Replace)
}

#[test]
fn table_loads_retry_a_locked_table_with_their_own_policy() {
    // python-sdk-behaviour.md §2.8: only 409 RESOURCE_LOCKED, on the two load operations,
    // 1 s doubling to 15 s at most (no jitter here), 60 s in all.
    let transport =
        FakeTransport::script(vec![conflict("RESOURCE_LOCKED"), conflict("RESOURCE_LOCKED"), load_done()]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let config = cfg().with_lock_retry(RetryPolicy::locked_table().with_jitter(0.0));
    let client = blocking(transport.clone(), rt.clone(), config);
    let done = client.databases().load_table("db", "s", "t", load_body()).send().unwrap();
    let hotdata_core::models::LoadOutcome::Loaded(done) = done else { panic!("{done:?}") };
    assert_eq!(done.row_count, 1);
    assert_eq!(rt.sleeps(), [1, 2].map(Duration::from_secs));
    assert_eq!(transport.requests().len(), 3);

    // The connection's load too, and the same on the async client.
    let transport = FakeTransport::script(vec![conflict("RESOURCE_LOCKED"), load_done()]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client = AsyncClient::new(cfg(), transport.clone(), rt.clone(), "fake");
    block_on(client.connections().load_table("c", "s", "t", load_body()).send()).unwrap();
    assert_eq!(transport.requests().len(), 2);
}

#[test]
fn a_locked_table_stops_at_the_lock_policy_and_other_conflicts_fail_at_once() {
    let transport = FakeTransport::script((0..20).map(|_| conflict("RESOURCE_LOCKED")).collect());
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client = blocking(transport.clone(), rt.clone(), cfg());
    let e = client.databases().load_table("db", "s", "t", load_body()).send().unwrap_err();
    assert_eq!(e.code(), Some("RESOURCE_LOCKED"));
    // Defaults: 1, 2, 4, 8, 15, 15 s (jitter up to +50% each) stop within the 60 s budget.
    let slept: Duration = rt.sleeps().iter().sum();
    assert!(slept <= Duration::from_secs(60), "{slept:?}");
    assert!(e.attempts() >= 4 && e.attempts() <= 11, "{}", e.attempts());

    for code in ["CONFLICT", "IDEMPOTENCY_KEY_CONFLICT"] {
        let transport = FakeTransport::script(vec![conflict(code), load_done()]);
        let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
        let client = blocking(transport.clone(), rt.clone(), cfg());
        let e = client.databases().load_table("db", "s", "t", load_body()).send().unwrap_err();
        assert_eq!((e.code(), transport.requests().len()), (Some(code), 1));
    }
    // Another operation answered RESOURCE_LOCKED is not retried.
    let transport =
        FakeTransport::script(vec![conflict("RESOURCE_LOCKED"), Ok(response(200, &db_json("db")))]);
    let rt = ManualRuntime::new(SystemTime::UNIX_EPOCH + WALL);
    let client = blocking(transport.clone(), rt.clone(), cfg());
    client.databases().get("db").send().unwrap_err();
    assert_eq!(transport.requests().len(), 1);
}
