//! Fault injection, CORS, and the binary's flags.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Kill};
use hotdata_emulator::{Emulator, Fault, FaultRule, RetryAfter, Target};
use serde_json::json;

#[test]
fn status_faults_with_retry_after() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("f");
    emu.inject(FaultRule::status("query", 429, Some(RetryAfter::Seconds(2)), 2));
    for _ in 0..2 {
        let r = c.post_db("/v1/query", &db, json!({"sql": "SELECT 1"}));
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("2"));
        assert_eq!(r.json()["error"]["code"], "OVERLOADED");
    }
    assert_eq!(c.post_db("/v1/query", &db, json!({"sql": "SELECT 1"})).status, 200);

    emu.inject(FaultRule::status("get_database", 429, Some(RetryAfter::HttpDate(5)), 1));
    let r = c.get(&format!("/v1/databases/{db}"));
    assert_eq!(r.status, 429);
    let ra = r.header("retry-after").unwrap();
    assert!(ra.ends_with(" GMT") && ra.len() == 29, "{ra}");

    emu.inject(
        FaultRule::new(
            Target::PathPrefix("/v1/databases".into()),
            Fault::Status { status: 503, retry_after: None },
        )
        .skip(1)
        .times(1),
    );
    assert_eq!(c.get("/v1/databases").status, 200);
    assert_eq!(c.get("/v1/databases").status, 503);
    assert_eq!(c.get("/v1/databases").status, 200);

    // Clearing removes unfired rules.
    emu.inject(FaultRule::status("count_databases", 500, None, 5));
    emu.clear_faults();
    assert_eq!(c.get("/v1/databases/count").status, 200);
}

#[test]
fn transport_faults() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("t");

    // Reset before the response: the client sees a transport error, then recovers.
    emu.inject(FaultRule::new(Target::Operation("query".into()), Fault::Reset));
    let auth = format!("Bearer {}", c.key);
    let h = [
        ("authorization", auth.as_str()),
        ("x-workspace-id", c.ws.as_str()),
        ("x-database-id", db.as_str()),
        ("content-type", "application/json"),
    ];
    let url = format!("{}/v1/query", c.base);
    assert!(c.raw("POST", &url, &h, Some(br#"{"sql":"SELECT 1"}"#.to_vec())).is_err());
    assert_eq!(c.raw("POST", &url, &h, Some(br#"{"sql":"SELECT 1"}"#.to_vec())).unwrap().status, 200);

    // Slow response.
    emu.inject(FaultRule::new(
        Target::Operation("get_database".into()),
        Fault::Delay(Duration::from_millis(300)),
    ));
    let t = Instant::now();
    assert_eq!(c.get(&format!("/v1/databases/{db}")).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    // Slow body: intact, but paced.
    emu.inject(FaultRule::new(
        Target::Operation("list_databases".into()),
        Fault::SlowBody { chunk: 64, delay: Duration::from_millis(40) },
    ));
    let t = Instant::now();
    let r = c.get("/v1/databases");
    assert_eq!(r.json()["databases"][0]["id"], json!(db));
    assert!(r.body.len() > 128);
    assert!(t.elapsed() >= Duration::from_millis(80));

    // Truncated JSON body: Content-Length promises more than arrives.
    emu.inject(FaultRule::new(Target::Operation("get_database".into()), Fault::Truncate { at: Some(20) }));
    let r = c.raw("GET", &format!("{}/v1/databases/{db}", c.base), &h[..2], None);
    assert!(r.is_err(), "truncated body must fail: {r:?}");

    // Truncated Arrow stream.
    let q = c.sql(&db, "SELECT * FROM synthetic(5000)");
    let rid = q["result_id"].as_str().unwrap();
    emu.inject(FaultRule::new(Target::Operation("get_result".into()), Fault::Truncate { at: None }));
    let r = c.raw("GET", &format!("{}/v1/results/{rid}?format=arrow", c.base), &h[..3], None);
    assert!(r.is_err(), "truncated arrow must fail");
    let r = c.get_db(&format!("/v1/results/{rid}?format=arrow"), &db);
    assert_eq!(common::decode_arrow(&r.body).0, 5000);

    // Every fault is in the request log.
    let log = emu.requests();
    assert!(log.iter().any(|r| r.fault.as_deref() == Some("Reset") && r.status == 0));
}

#[test]
fn storage_and_finalize_faults() {
    let emu = Emulator::builder().single_put_max(4).min_part_size(4).start().unwrap();
    let c = Client::new(&emu);
    let s = c.post("/v1/uploads", json!({"declared_size_bytes": 12, "part_size": 4})).json();
    let urls: Vec<&str> = s["part_urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
    assert_eq!(urls.len(), 3);
    // Part 2 fails twice with 500, then succeeds.
    emu.inject(FaultRule::storage_part_fails(2, 500, 2));
    // Part 3's first attempt looks like an expired URL; its next lacks an ETag.
    emu.inject(FaultRule::new(Target::StoragePart(3), Fault::ExpiredUrl));
    emu.inject(FaultRule::new(Target::StoragePart(3), Fault::MissingEtag));
    let put = |u: &str| c.raw("PUT", u, &[], Some(b"abcd".to_vec())).unwrap();
    assert_eq!(put(urls[0]).status, 200);
    let r = put(urls[1]);
    assert_eq!(r.status, 500);
    assert!(r.text().contains("<Code>InternalError</Code>"));
    assert_eq!(put(urls[1]).status, 500);
    assert_eq!(put(urls[1]).status, 200);
    let r = put(urls[2]);
    assert_eq!(r.status, 403);
    assert!(r.text().contains("expired"));
    let r = put(urls[2]);
    assert_eq!(r.status, 200);
    assert!(r.header("etag").is_none());
    let r = put(urls[2]);
    let tag = r.header("etag").unwrap().to_string();
    let parts: Vec<_> = (1..=3).map(|n| json!({"part_number": n, "e_tag": tag})).collect();

    // Finalize commits, then the response fails.
    emu.inject(FaultRule::new(
        Target::Operation("finalize_upload_handler".into()),
        Fault::FailAfterCommit { status: 500 },
    ));
    let fin = |body: serde_json::Value| {
        c.call(
            "POST",
            &format!("/v1/uploads/{}/finalize", s["upload_id"].as_str().unwrap()),
            &[("x-upload-finalize-token", s["finalize_token"].as_str().unwrap())],
            Some(serde_json::to_vec(&body).unwrap()),
        )
    };
    assert_eq!(fin(json!({"parts": parts})).status, 500);
    let again = fin(json!({"parts": parts}));
    assert_eq!(again.json()["error"]["code"], "ALREADY_FINALIZED");
    let db = c.database("fz");
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/t/loads"),
        json!({"mode": "replace", "upload_id": s["upload_id"], "format": "csv"}),
    );
    assert_eq!(r.status, 200, "the upload was committed: {}", r.text());
}

#[test]
fn cors_preflight_and_exposed_headers() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let r = c
        .raw(
            "OPTIONS",
            &format!("{}/v1/query", c.base),
            &[
                ("origin", "http://127.0.0.1:9000"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization, x-workspace-id, content-type"),
            ],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("http://127.0.0.1:9000"));
    assert!(r.header("access-control-allow-headers").unwrap().contains("authorization"));
    assert!(r.header("access-control-allow-methods").unwrap().contains("PUT"));
    let r = c.get("/v1/databases");
    let exposed = r.header("access-control-expose-headers").unwrap();
    for h in ["ETag", "X-Total-Row-Count", "Link", "Retry-After", "X-Query-Run-Id", "X-Result-Id"] {
        assert!(exposed.contains(h), "{h} not exposed");
    }
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn binary_flags_and_env_faults() {
    let child = Command::new(env!("CARGO_BIN_EXE_hotdata-emulator"))
        .args([
            "--port",
            "0",
            "--api-key",
            "k1",
            "--workspace",
            "w1",
            "--fault",
            "op=list_databases,status=503,times=1",
        ])
        .env("HOTDATA_EMULATOR_FAULTS", "op=count_databases,status=429,retry-after=7")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Kill(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening ").unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |p: &str| {
        agent
            .get(format!("{base}{p}"))
            .header("authorization", "Bearer k1")
            .header("x-workspace-id", "w1")
            .call()
            .unwrap()
    };
    assert_eq!(get("/v1/databases").status(), 503);
    assert_eq!(get("/v1/databases").status(), 200);
    let r = get("/v1/databases/count");
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers().get("retry-after").unwrap(), "7");
    let r = agent
        .get(format!("{base}/v1/databases"))
        .header("authorization", "Bearer hd_emulator_key")
        .header("x-workspace-id", "w1")
        .call()
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn escalation_and_not_ready_faults() {
    let emu = Emulator::builder()
        .job_step(Duration::from_millis(10))
        .async_result_delay(Duration::from_millis(10))
        .start()
        .unwrap();
    let c = Client::new(&emu);
    let db = c.database("e");
    emu.inject(FaultRule::parse("op=query,force-async").unwrap());
    let r = c.post_db("/v1/query", &db, json!({"sql": "SELECT 7"}));
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["reason"], "async_after_ms exceeded");
    let rid = r.header("x-result-id").unwrap().to_string();
    emu.inject(FaultRule::parse("op=get_result,not-ready,retry-after=3,times=2").unwrap());
    for _ in 0..2 {
        let p = c.get_db(&format!("/v1/results/{rid}?format=arrow"), &db);
        assert_eq!(p.status, 202);
        assert_eq!(p.header("retry-after"), Some("3"));
        assert_eq!(p.json(), json!({"result_id": rid, "status": "pending"}));
    }
    common::wait_until(|| c.get_db(&format!("/v1/results/{rid}"), &db).status == 200);
    let p = c.get_db(&format!("/v1/results/{rid}"), &db);
    assert_eq!(p.json()["rows"], json!([[7]]));
    // Loads escalate to jobs the same way.
    emu.inject(FaultRule::parse("op=load_database_table,force-async").unwrap());
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/t/loads"),
        json!({"mode": "replace", "format": "csv", "data": "a\n1\n"}),
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "pending");
}

#[test]
fn faults_can_be_set_over_http() {
    let emu = Emulator::builder().control_token("tok").start().unwrap();
    let c = Client::new(&emu);
    let base = emu.base_url().to_string();
    let t = [("x-emulator-token", "tok")];
    let r = c.raw(
        "POST",
        &format!("{base}/_emulator/faults"),
        &t,
        Some(b"op=count_databases,status=503,times=1".to_vec()),
    );
    assert_eq!(r.unwrap().status, 200);
    assert_eq!(c.get("/v1/databases/count").status, 503);
    assert_eq!(c.get("/v1/databases/count").status, 200);
    let r = c.raw("POST", &format!("{base}/_emulator/faults"), &t, Some(b"op=nope,bogus".to_vec())).unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    c.raw(
        "POST",
        &format!("{base}/_emulator/faults"),
        &t,
        Some(b"op=count_databases,status=500,always".to_vec()),
    )
    .unwrap();
    assert_eq!(c.raw("DELETE", &format!("{base}/_emulator/faults"), &t, None).unwrap().status, 200);
    assert_eq!(c.get("/v1/databases/count").status, 200);
}

/// A small truncation still delivers the head and the bytes before the cut, then closes:
/// the client must see a short body, not "no response" (which would be retried silently).
#[test]
fn truncation_sends_the_head_and_the_bytes_before_the_cut() {
    use std::io::{Read, Write};
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("cut");
    emu.inject(FaultRule::new(Target::Operation("get_database".into()), Fault::Truncate { at: Some(20) }));
    let addr = emu.base_url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /v1/databases/{db} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\nx-workspace-id: {}\r\n\r\n",
        c.key, c.ws
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    assert_eq!(body.len(), 20, "exactly the bytes before the cut");
    assert!(length > 20);
}

#[test]
fn close_answers_and_ends_the_connection() {
    use std::io::{Read, Write};
    let emu = Emulator::start().unwrap();
    emu.inject(FaultRule::new(Target::Operation("list_workspaces".into()), Fault::Close).always());
    let addr = emu.addr();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // Two requests pipelined on one connection: the first answer closes it, so the second
    // is never answered on it.
    let request = format!(
        "GET /v1/workspaces HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\r\n",
        emu.api_key()
    );
    s.write_all(format!("{request}{request}").as_bytes()).unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap(); // ends: the server closed the connection
    assert_eq!(all.matches("HTTP/1.1 200").count(), 1, "{all}");
    assert!(all.to_ascii_lowercase().contains("connection: close"), "{all}");
}
