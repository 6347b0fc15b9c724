//! Transport-level behaviour, on both native backends, against a local scripted server:
//! exact headers, retries with `Retry-After`, resets before the response, at-most-once
//! operations, timeouts, error envelopes, path encoding, large bodies, secret hygiene.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hotdata_conformance::server::{Reply, TestServer};

/// The bring-your-own-stack example, run through the same tests as the two backends.
#[path = "../../../examples/hyper_transport.rs"]
mod hyper_transport;
use hotdata_core::{Config, DynamicRequest, Error, ErrorKind, RetryPolicy, SecretString, TransportErrorKind};
use serde_json::{Value, json};

const KEY: &str = "hd_secret_key_0123456789";

fn config(server: &TestServer) -> Config {
    Config::new(KEY).with_workspace_id("ws_1").with_base_url(server.url())
}

/// Runs `request` through the given backend with `config`.
fn send(
    backend: &str,
    config: Config,
    request: DynamicRequest,
    timeout: Option<Duration>,
) -> Result<Value, Error> {
    match backend {
        "ureq" => {
            let call = hotdata_ureq::client(config).call(request);
            let call = if let Some(t) = timeout { call.timeout(Some(t)) } else { call };
            call.send()
        }
        _ => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let client = if backend == "hyper" {
                    hyper_transport::client(config)
                } else {
                    hotdata_reqwest::client(config)
                };
                let call = client.call(request);
                let call = if let Some(t) = timeout { call.timeout(Some(t)) } else { call };
                call.await
            })
        }
    }
}

const BACKENDS: [&str; 3] = ["ureq", "reqwest", "hyper"];

fn database(id: &str) -> Value {
    json!({"id": id, "name": "db", "attachments": [], "created_at": "2026-01-01T00:00:00Z", "default_catalog": "c",
           "default_schema": "s", "default_connection_id": "conn_1"})
}

fn get_database(id: &str) -> DynamicRequest {
    DynamicRequest::new("get_database").unwrap().param("database_id", id).unwrap()
}

fn ok_database() -> Reply {
    Reply::json(200, database("db_1"))
}

#[test]
fn sends_exact_headers() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, _| ok_database());
        send(backend, config(&server), get_database("db_1"), None).unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/v1/databases/db_1");
        assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
        assert_eq!(r.header("x-workspace-id"), Some("ws_1"));
        assert_eq!(r.header("accept"), Some("application/json"));
        assert_eq!(
            r.header("user-agent"),
            Some(format!("hotdata-rs/{} ({backend})", hotdata_core::VERSION).as_str())
        );
        assert_eq!(r.header("content-type"), None, "{backend}: no body, no content type");
        // JSON answers are asked for compressed (`SendOptions::decompress`); the example
        // transport ignores the flag, and so asks for nothing.
        let compressed = if backend == "hyper" { None } else { Some("gzip, deflate") };
        assert_eq!(r.header("accept-encoding"), compressed, "{backend}");
        assert!(r.body.is_empty());

        let server = TestServer::start(|_, _| {
            Reply::json(200, json!({"id": "ws_9", "name": "w", "organization_public_id": "o", "created_at": "2026-01-01T00:00:00Z"}))
                .header("x-ignored", "1")
        });
        let _ = send(
            backend,
            config(&server).with_user_agent("my-tool/2.0"),
            DynamicRequest::new("create_workspace").unwrap().body(json!({"name": "w"})),
            None,
        );
        let r = &server.seen()[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("user-agent"), Some("my-tool/2.0"));
        assert_eq!(r.header("x-workspace-id"), None, "{backend}: workspaces are not workspace-scoped");
        assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["name"], "w");
    }
}

#[test]
fn retries_429_with_retry_after_seconds_and_date() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, n| {
            if n == 0 {
                Reply::json(429, json!({"error": {"code": "OVERLOADED", "message": "busy"}}))
                    .header("retry-after", "1")
            } else {
                ok_database()
            }
        });
        let t0 = Instant::now();
        send(
            backend,
            config(&server).with_retry(RetryPolicy::default().with_jitter(0.0)),
            get_database("db_1"),
            None,
        )
        .unwrap();
        assert_eq!(server.seen().len(), 2, "{backend}");
        assert!(t0.elapsed() >= Duration::from_millis(950), "{backend}: waited {:?}", t0.elapsed());

        let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
        let server = TestServer::start(move |_, n| {
            if n == 0 {
                Reply::json(429, json!({"error": "slow down"})).header("retry-after", &date)
            } else {
                ok_database()
            }
        });
        let t0 = Instant::now();
        send(
            backend,
            config(&server).with_retry(RetryPolicy::default().with_jitter(0.0)),
            get_database("db_1"),
            None,
        )
        .unwrap();
        assert_eq!(server.seen().len(), 2, "{backend}");
        assert!(
            t0.elapsed() >= Duration::from_millis(500),
            "{backend}: an HTTP-date Retry-After is honoured"
        );
    }
}

#[test]
fn gives_up_on_persistent_429_with_the_server_error() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, _| {
            Reply::json(429, json!({"error": {"code": "OVERLOADED", "message": "busy"}}))
                .header("retry-after", "0")
        });
        let err = send(
            backend,
            config(&server).with_retry(RetryPolicy::default().with_max_retries(2)),
            get_database("x"),
            None,
        )
        .unwrap_err();
        assert_eq!(server.seen().len(), 3, "{backend}: 1 attempt + 2 retries");
        assert_eq!(err.kind(), ErrorKind::Api);
        assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
        assert_eq!(err.code(), Some("OVERLOADED"));
        assert_eq!(err.operation(), Some("get_database"));
        assert_eq!(err.attempts(), 3);
        assert_eq!(
            err.to_string(),
            "get_database: server answered HTTP 429 Too Many Requests OVERLOADED: busy (after 3 attempts)"
        );
    }
}

#[test]
fn reset_before_response_is_retried_but_finalize_is_never_resent() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, n| if n == 0 { Reply::Reset } else { ok_database() });
        send(backend, config(&server), get_database("db_1"), None).unwrap();
        assert_eq!(server.seen().len(), 2, "{backend}: GET retried after a reset");

        let server = TestServer::start(|_, n| {
            if n == 0 {
                Reply::Reset
            } else {
                Reply::json(
                    202,
                    json!({"query_run_id": "qr_1", "status": "running", "status_url": "/v1/query-runs/qr_1"}),
                )
            }
        });
        let query = DynamicRequest::new("query").unwrap().body(json!({"sql": "select 1"}));
        send(backend, config(&server), query, None).unwrap();
        assert_eq!(server.seen().len(), 2, "{backend}: a POST is replayed after a reset before any response");

        let server = TestServer::start(|_, _| Reply::Reset);
        let finalize = DynamicRequest::new("finalize_upload_handler")
            .unwrap()
            .param("upload_id", "up_1")
            .unwrap()
            .param("X-Upload-Finalize-Token", "fin_secret")
            .unwrap()
            .body(json!({}));
        let err = send(backend, config(&server), finalize, None).unwrap_err();
        assert_eq!(server.seen().len(), 1, "{backend}: finalize is sent at most once");
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::NoResponse), "{backend}: {err:?}");
        assert_eq!(server.seen()[0].header("x-upload-finalize-token"), Some("fin_secret"));
    }
}

#[test]
fn connect_failures_are_retried_then_reported() {
    for backend in BACKENDS {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let config = Config::new(KEY)
            .with_workspace_id("w")
            .with_base_url(format!("http://127.0.0.1:{port}"))
            .with_retry(
                RetryPolicy::default()
                    .with_max_retries(1)
                    .with_backoff(Duration::from_millis(1), Duration::from_millis(1)),
            );
        let err = send(backend, config, get_database("x"), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport, "{backend}: {err:?}");
        assert_eq!(err.transport_kind(), Some(TransportErrorKind::Connect), "{backend}");
        assert_eq!(err.attempts(), 2, "{backend}");
    }
}

#[test]
fn timeouts_end_the_call() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, _| Reply::Delay(Duration::from_secs(3), Box::new(ok_database())));
        let query = DynamicRequest::new("query").unwrap().body(json!({"sql": "select 1"}));
        let t0 = Instant::now();
        let err = send(backend, config(&server), query, Some(Duration::from_millis(300))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{backend}: {err:?}");
        assert_eq!(server.seen().len(), 1, "{backend}: a timed-out POST is not replayed");
        assert!(t0.elapsed() < Duration::from_secs(3), "{backend}");

        let server = TestServer::start(|_, n| {
            if n == 0 { Reply::Delay(Duration::from_secs(3), Box::new(ok_database())) } else { ok_database() }
        });
        send(
            backend,
            config(&server).with_timeout(Some(Duration::from_millis(300))),
            get_database("db_1"),
            None,
        )
        .unwrap();
        assert_eq!(server.seen().len(), 2, "{backend}: a timed-out GET is retried");
    }
}

#[test]
fn error_envelopes_are_read() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, _| {
            Reply::json(404, json!({"error": {"code": "NOT_FOUND", "message": "database db_x not found"}}))
        });
        let err = send(backend, config(&server), get_database("db_x"), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Api);
        assert!(err.is_not_found());
        assert_eq!(err.code(), Some("NOT_FOUND"));
        assert_eq!(err.message(), Some("database db_x not found"));
        assert_eq!(
            err.to_string(),
            "get_database: server answered HTTP 404 Not Found NOT_FOUND: database db_x not found"
        );

        let server = TestServer::start(|_, _| Reply::json(401, json!({"error": "invalid API key"})));
        let err = send(backend, config(&server), DynamicRequest::new("list_workspaces").unwrap(), None)
            .unwrap_err();
        assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
        assert_eq!(err.code(), None);
        assert_eq!(err.message(), Some("invalid API key"));

        let server = TestServer::start(|_, _| Reply::json(200, json!({"id": 5})));
        let err = send(backend, config(&server), get_database("db_1"), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Decode);
        assert!(err.to_string().contains("`id`"), "{err}");
    }
}

#[test]
fn path_segments_are_encoded_exactly() {
    let id = "a b/c%d?e#f&g=h ü €";
    for backend in BACKENDS {
        let server = TestServer::start(|_, _| ok_database());
        send(backend, config(&server), get_database(id), None).unwrap();
        let target = server.seen()[0].target.clone();
        assert_eq!(target, "/v1/databases/a%20b%2Fc%25d%3Fe%23f%26g%3Dh%20%C3%BC%20%E2%82%AC", "{backend}");
        let segment = target.rsplit('/').next().unwrap();
        assert_eq!(hotdata_core::endpoint::decode_percent(segment).as_deref(), Some(id));

        let server = TestServer::start(|_, _| Reply::json(200, json!({"total": 0})));
        let req = DynamicRequest::new("count_databases").unwrap().param("search", "x & y=z/ü").unwrap();
        send(backend, config(&server), req, None).unwrap();
        assert_eq!(server.seen()[0].target, "/v1/databases/count?search=x%20%26%20y%3Dz%2F%C3%BC");
    }
}

#[test]
fn large_json_bodies_round_trip() {
    let databases: Vec<Value> = (0..20_000)
        .map(|i| json!({"id": format!("db_{i}"), "name": format!("database number {i}"), "created_at": "2026-01-01T00:00:00Z",
                        "default_catalog": "c", "default_schema": "s", "updated_at": "2026-01-01T00:00:00Z"}))
        .collect();
    let body = json!({"databases": databases, "has_more": false});
    assert!(body.to_string().len() > 2_000_000);
    for backend in BACKENDS {
        let body = body.clone();
        let server = TestServer::start(move |_, _| Reply::json(200, body.clone()));
        let v = send(backend, config(&server), DynamicRequest::new("list_databases").unwrap(), None).unwrap();
        assert_eq!(v["databases"].as_array().unwrap().len(), 20_000, "{backend}");
        assert_eq!(v["databases"][19_999]["id"], "db_19999");

        let big_sql = "select ".to_owned() + &"1, ".repeat(1_000_000) + "1";
        let server = TestServer::start(|_, _| {
            Reply::json(
                202,
                json!({"query_run_id": "qr", "status": "queued", "status_url": "/v1/query-runs/qr"}),
            )
        });
        send(
            backend,
            config(&server),
            DynamicRequest::new("query").unwrap().body(json!({"sql": big_sql})),
            None,
        )
        .unwrap();
        let sent: Value = serde_json::from_slice(&server.seen()[0].body).unwrap();
        assert_eq!(sent["sql"].as_str().map(str::len), Some(big_sql.len()), "{backend}");
    }
}

#[test]
fn missing_workspace_or_key_fails_before_sending() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, _| ok_database());
        let no_ws = Config::new(KEY).with_base_url(server.url());
        let err = send(backend, no_ws, get_database("x"), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("HOTDATA_WORKSPACE_ID"), "{err}");
        let no_key = Config::default().with_workspace_id("w").with_base_url(server.url());
        let err = send(backend, no_key, get_database("x"), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("HOTDATA_API_KEY"), "{err}");
        assert!(server.seen().is_empty(), "{backend}: nothing was sent");
    }
}

#[test]
fn token_provider_is_asked_per_attempt_and_its_failure_sends_nothing() {
    for backend in BACKENDS {
        let server = TestServer::start(|_, n| {
            if n == 0 {
                Reply::json(429, json!({"error": "busy"})).header("retry-after", "0")
            } else {
                ok_database()
            }
        });
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let with_provider = config(&server).with_token_provider(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            Ok(SecretString::new(format!("token-{n}")))
        });
        send(backend, with_provider, get_database("db_1"), None).unwrap();
        let seen = server.seen();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "{backend}");
        assert_eq!(seen[0].header("authorization"), Some("Bearer token-0"));
        assert_eq!(seen[1].header("authorization"), Some("Bearer token-1"));

        let server = TestServer::start(|_, _| ok_database());
        let failing = config(&server).with_token_provider(|| Err("token service down".into()));
        let err = send(backend, failing, get_database("db_1"), None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Credentials);
        assert_eq!(
            std::error::Error::source(&err).map(|s| s.to_string()).as_deref(),
            Some("token service down")
        );
        assert!(server.seen().is_empty(), "{backend}: never sent unauthenticated");
    }
}

#[test]
fn the_key_never_appears_in_debug_or_display() {
    let server = TestServer::start(|_, _| Reply::json(401, json!({"error": "nope"})));
    let config = config(&server);
    let blocking = hotdata_ureq::client(config.clone());
    let asynchronous = hotdata_reqwest::client(config.clone());
    let call = blocking.databases().get("db_1");
    let err = send("ureq", config.clone(), get_database("db_1"), None).unwrap_err();
    let texts = [
        format!("{config:?}"),
        format!("{blocking:?}"),
        format!("{asynchronous:?}"),
        format!("{call:?}"),
        format!("{err:?}"),
        format!("{err}"),
        format!("{:?}", SecretString::new(KEY)),
    ];
    for t in texts {
        assert!(!t.contains(KEY), "leaked in: {t}");
        assert!(!t.contains("0123456789"), "leaked in: {t}");
    }
}

#[test]
fn typed_calls_work_on_both_backends() {
    let server = TestServer::start(|req, _| match req.target.as_str() {
        "/v1/databases/db_1" => ok_database(),
        _ => Reply::json(
            200,
            json!({"columns": ["n", "d"], "nullable": [false, false], "execution_time_ms": 1, "preview_row_count": 1,
                   "query_run_id": "qr", "row_count": 1, "truncated": false,
                   "rows": [[12345678901234567890_u64, 123456789012345678901234567890.12_f64]]}),
        ),
    });
    let blocking = hotdata_ureq::client(config(&server));
    assert_eq!(blocking.databases().get("db_1").send().unwrap().id, "db_1");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let asynchronous = hotdata_reqwest::client(config(&server));
    let db = rt.block_on(async { asynchronous.databases().get("db_1").await }).unwrap();
    assert_eq!(db.name.as_deref(), Some("db"));
    let out = blocking.query(hotdata_core::models::QueryRequest::new("select 1")).send().unwrap();
    let hotdata_core::models::QueryOutcome::Inline(rows) = out else { panic!("inline expected") };
    assert_eq!(rows.rows[0][0].as_json(), "12345678901234567890");
}
