//! The control routes (`/_emulator/*`): off unless asked for, loopback-only unless allowed,
//! guarded by a token; and what they do (fault rules set, listed and cleared, the request
//! log, stored objects, reset), in process and through the binary's flags.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Client, Kill, R};
use hotdata_emulator::{Emulator, EmulatorBuilder, FaultRule, RequestRecord};
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-t0ken";

/// Every control route, with a body where it takes one.
const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/_emulator/health", None),
    ("GET", "/_emulator/faults", None),
    ("POST", "/_emulator/faults", Some("op=count_databases,status=500,always")),
    ("DELETE", "/_emulator/faults", None),
    ("GET", "/_emulator/requests", None),
    ("DELETE", "/_emulator/requests", None),
    ("GET", "/_emulator/uploads/upl_nope", None),
    ("POST", "/_emulator/results?database_id=db_nope", Some("not arrow")),
    ("POST", "/_emulator/reset", None),
    ("GET", "/_emulator/instances", None),
    ("POST", "/_emulator/instances", Some("{\"bogus\":1}")),
    ("DELETE", "/_emulator/instances", None),
    ("DELETE", "/_emulator/instances/inst_nope", None),
];

fn send(c: &Client, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> R {
    c.raw(method, &format!("{}{path}", c.base), headers, body.map(|b| b.as_bytes().to_vec()))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A control request with the token.
fn control(c: &Client, method: &str, path: &str, body: Option<&str>) -> R {
    send(c, method, path, &[("x-emulator-token", TOKEN)], body)
}

fn on() -> EmulatorBuilder {
    Emulator::builder().control_token(TOKEN)
}

#[test]
fn control_routes_are_unknown_paths_when_off() {
    let emu = Emulator::start().unwrap();
    assert_eq!(emu.control_token(), None);
    assert_eq!(emu.config().control_token, None, "off by default");
    let c = Client::new(&emu);
    let unknown = send(&c, "GET", "/v1/nope", &[], None);
    assert_eq!(unknown.status, 404);
    for (method, path, body) in ROUTES {
        for headers in [&[][..], &[("x-emulator-token", TOKEN)][..]] {
            let r = send(&c, method, path, headers, *body);
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
            let e = r.json();
            assert_eq!(e["error"]["code"], unknown.json()["error"]["code"], "{method} {path}");
            let bare = path.split('?').next().unwrap();
            assert_eq!(e["error"]["message"], format!("no route for {method} {bare}"), "as any unknown path");
        }
    }
    // A method the route does not take is a 404 too, not a 405 that would tell it exists.
    assert_eq!(send(&c, "PUT", "/_emulator/faults", &[], None).status, 404);
    // Nothing happened: no fault was set.
    assert!(emu.faults().is_empty());
    assert_eq!(c.get("/v1/databases/count").status, 200);
    // Logged like any unknown path, the token's value redacted.
    let log = emu.requests();
    let r =
        log.iter().find(|r| r.uri == "/_emulator/health" && r.header("x-emulator-token").is_some()).unwrap();
    assert_eq!(r.operation, "unknown");
    assert_eq!(r.header("x-emulator-token"), Some("[redacted]"));
}

#[test]
fn control_routes_need_the_token() {
    let emu = on().start().unwrap();
    assert_eq!(emu.control_token(), Some(TOKEN));
    let c = Client::new(&emu);
    let wrong_same_length = "s3cret-t0keN";
    for (method, path, body) in ROUTES {
        let r = send(&c, method, path, &[], *body);
        assert_eq!(r.status, 401, "{method} {path} without a token");
        assert_eq!(r.json()["error"]["code"], "UNAUTHORIZED");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("X-Emulator-Token"));
        for wrong in ["nope", wrong_same_length, ""] {
            let r = send(&c, method, path, &[("x-emulator-token", wrong)], *body);
            assert_eq!(r.status, 403, "{method} {path} with `{wrong}`");
            assert_eq!(r.json()["error"]["code"], "FORBIDDEN");
        }
        // The API key is not the control token.
        let auth = format!("Bearer {}", c.key);
        assert_eq!(send(&c, method, path, &[("authorization", &auth)], *body).status, 401);
    }
    // Nothing happened without the token.
    assert!(emu.faults().is_empty());
    assert_eq!(c.get("/v1/databases/count").status, 200);
    // With it, every route answers (the uploads, results and instance probes name things
    // that do not exist or settings that are not, so they answer 404 and 400 from the route
    // itself).
    let expected = [200, 200, 200, 200, 200, 200, 404, 400, 200, 200, 400, 200, 404];
    assert_eq!(expected.len(), ROUTES.len());
    for ((method, path, body), status) in ROUTES.iter().zip(expected) {
        let r = control(&c, method, path, *body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
    assert_eq!(control(&c, "GET", "/_emulator/uploads/upl_nope", None).json()["error"]["code"], "NOT_FOUND");
    // Unknown paths under /_emulator pass the gate first, then answer 404 / 405.
    assert_eq!(send(&c, "GET", "/_emulator/nope", &[], None).status, 401);
    assert_eq!(control(&c, "GET", "/_emulator/nope", None).status, 404);
    assert_eq!(control(&c, "PUT", "/_emulator/faults", None).status, 405);
}

#[test]
fn bad_tokens_are_refused_at_start() {
    for bad in ["", "with space", "tab\there", "naïve"] {
        let e = Emulator::builder().control_token(bad).start().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
    }
    // `control()` draws a random token (and keeps one already set).
    let a = Emulator::builder().control().start().unwrap();
    let b = Emulator::builder().control().start().unwrap();
    let (ta, tb) = (a.control_token().unwrap(), b.control_token().unwrap());
    assert!(ta.len() >= 32 && ta != tb, "{ta} {tb}");
    assert_eq!(on().control().config().control_token.as_deref(), Some(TOKEN));
}

#[test]
fn cors_preflight_allows_the_token_header() {
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    let origin = "http://127.0.0.1:9000";
    for (method, path) in
        [("POST", "/_emulator/faults"), ("DELETE", "/_emulator/requests"), ("GET", "/_emulator/uploads/x")]
    {
        let pre = send(
            &c,
            "OPTIONS",
            path,
            &[
                ("origin", origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", "content-type, x-emulator-token"),
            ],
            None,
        );
        assert_eq!(pre.status, 204, "{path}");
        assert_eq!(pre.header("access-control-allow-origin"), Some(origin));
        assert!(pre.header("access-control-allow-methods").unwrap().contains(method));
        assert!(pre.header("access-control-allow-headers").unwrap().contains("x-emulator-token"));
    }
    // Without a list of headers asked for, the default list has it too.
    let pre = send(
        &c,
        "OPTIONS",
        "/_emulator/faults",
        &[("origin", origin), ("access-control-request-method", "POST")],
        None,
    );
    assert!(pre.header("access-control-allow-headers").unwrap().contains("x-emulator-token"));
    // The answers themselves carry CORS headers, refusals included.
    let r = send(&c, "GET", "/_emulator/health", &[("origin", origin), ("x-emulator-token", TOKEN)], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    let r = send(&c, "GET", "/_emulator/health", &[("origin", origin)], None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some(origin), "the page can read why");
    // Neither the preflights nor the control requests are in the request log.
    assert!(emu.requests().is_empty(), "{:?}", emu.requests());
}

#[test]
fn fault_rules_are_set_listed_and_cleared_in_both_forms() {
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    let r =
        control(&c, "POST", "/_emulator/faults", Some("op=count_databases,status=503,retry-after=1,times=1"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!({"ok": true, "added": [{
            "rule": {"op": "count_databases", "status": 503, "retry-after": 1, "times": 1},
            "spec": "op=count_databases,status=503,retry-after=1,times=1",
        }]})
    );
    let body = json!([
        {"op": "get_usage", "delay-ms": 10, "always": true},
        "path=/v1/results,truncate=100,skip=1",
    ]);
    let r = control(&c, "POST", "/_emulator/faults", Some(&body.to_string()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["added"].as_array().unwrap().len(), 2);
    let r =
        control(&c, "POST", "/_emulator/faults", Some("op=query,force-async; op=query,status=500,times=2\n"));
    assert_eq!(r.json()["added"][1]["spec"], "op=query,status=500,times=2");
    // One model: what went in over HTTP is what the Rust API sees and takes.
    let expected: Vec<FaultRule> = [
        "op=count_databases,status=503,retry-after=1,times=1",
        "op=get_usage,delay-ms=10,always",
        "path=/v1/results,truncate=100,skip=1",
        "op=query,force-async",
        "op=query,status=500,times=2",
    ]
    .iter()
    .map(|s| FaultRule::parse(s).unwrap())
    .collect();
    assert_eq!(emu.faults(), expected);
    // A rule set in process is listed over HTTP; the counters move as rules fire.
    emu.inject(FaultRule::parse("op=get_database,status=418").unwrap());
    assert_eq!(c.get("/v1/databases/count").status, 503);
    assert_eq!(c.get("/v1/databases/count").status, 200);
    let listed = control(&c, "GET", "/_emulator/faults", None).json();
    let listed = listed["faults"].as_array().unwrap();
    assert_eq!(listed.len(), 6);
    assert_eq!(listed[0]["fired"], 1);
    assert_eq!(listed[0]["seen"], 1);
    assert_eq!(listed[1]["fired"], 0);
    assert_eq!(listed[5]["spec"], "op=get_database,status=418,times=1");
    for (l, rule) in listed.iter().zip(emu.faults()) {
        assert_eq!(FaultRule::from_json(&l["rule"]).unwrap(), rule);
        assert_eq!(FaultRule::parse(l["spec"].as_str().unwrap()).unwrap(), rule);
    }
    // A bad rule anywhere in the body adds none of them.
    for bad in
        ["op=x", "reset,status=500", "[{\"reset\":true},{\"bogus\":1}]", "{\"status\":[1]}", "{oops", ""]
    {
        let r = control(&c, "POST", "/_emulator/faults", Some(bad));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "BAD_REQUEST");
    }
    assert_eq!(emu.faults().len(), 6);
    let r = control(&c, "DELETE", "/_emulator/faults", None);
    assert_eq!(r.json(), json!({"ok": true, "cleared": 6}));
    assert_eq!(control(&c, "GET", "/_emulator/faults", None).json(), json!({"faults": []}));
    assert!(emu.faults().is_empty());
}

#[test]
fn the_request_log_as_json() {
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("log");
    control(&c, "POST", "/_emulator/faults", Some("op=count_databases,status=429,times=1"));
    assert_eq!(c.get("/v1/databases/count").status, 429);
    assert_eq!(send(&c, "GET", "/v1/databases/count", &[], None).status, 401);
    let log = control(&c, "GET", "/_emulator/requests", None).json();
    let expected: Vec<Value> = emu.requests().iter().map(|r| r.to_json()).collect();
    assert_eq!(log["count"], 3);
    assert_eq!(log["requests"], Value::Array(expected), "the same records as EmulatorHandle::requests");
    assert_eq!(RequestRecord::log_from_json(&log).unwrap(), emu.requests(), "and they read back");
    let first = &log["requests"][0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["uri"], "/v1/databases");
    assert_eq!(first["operation"], "create_database");
    assert_eq!(first["status"], 201);
    assert_eq!(first["had_authorization"], true);
    assert_eq!(first["workspace_id"], c.ws);
    assert!(first["body_len"].as_u64().unwrap() > 0);
    assert_eq!(first["fault"], Value::Null);
    let headers = first["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-workspace-id", c.ws])), "{headers:?}");
    assert_eq!(log["requests"][1]["status"], 429);
    assert!(log["requests"][1]["fault"].as_str().unwrap().contains("429"));
    assert_eq!(log["requests"][2]["had_authorization"], false);
    assert_eq!(log["requests"][2]["workspace_id"], Value::Null);
    // Filters: by operation, by the start of the path and query.
    let r = control(&c, "GET", "/_emulator/requests?operation=count_databases", None).json();
    assert_eq!(r["count"], 2);
    let r = control(&c, "GET", "/_emulator/requests?path=/v1/databases", None).json();
    assert_eq!(r["count"], 3);
    let r = control(&c, "GET", "/_emulator/requests?path=/v1/databases/c", None).json();
    assert_eq!(r["count"], 2);
    let r =
        control(&c, "GET", "/_emulator/requests?path=/v1/databases/c&operation=create_database", None).json();
    assert_eq!(r["count"], 0, "both filters apply");
    let r = control(&c, "GET", &format!("/_emulator/requests?path=/v1/databases/{db}"), None).json();
    assert_eq!(r["count"], 0);
    let r = control(&c, "DELETE", "/_emulator/requests", None);
    assert_eq!(r.json(), json!({"ok": true, "cleared": 3}));
    assert!(emu.requests().is_empty(), "clearing is not itself logged");
    assert_eq!(control(&c, "GET", "/_emulator/requests", None).json(), json!({"count": 0, "requests": []}));
}

#[test]
fn stored_objects_over_the_control_route() {
    let emu = on().min_part_size(16).single_put_max(64).start().unwrap();
    let c = Client::new(&emu);
    for size in [10, 100] {
        let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let id = c.upload(&data, "f.bin");
        let r = control(&c, "GET", &format!("/_emulator/uploads/{id}"), None);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.body, data);
        assert_eq!(emu.uploaded_object(&id).unwrap(), data);
    }
}

#[test]
fn reset_returns_to_the_start() {
    let startup = FaultRule::parse("op=get_usage,status=503,times=1").unwrap();
    let emu = on().fault(startup.clone()).start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("before");
    let upload = c.upload(b"a,b\n1,2\n", "t.csv");
    assert_eq!(c.get("/v1/usage").status, 503, "the startup rule fires");
    control(&c, "POST", "/_emulator/faults", Some("op=count_databases,status=500,always"));
    assert_eq!(emu.faults().len(), 2);

    // Only the fault rules: the startup ones again, unfired.
    let r = control(&c, "POST", "/_emulator/reset?only=faults", None);
    assert_eq!(r.json(), json!({"ok": true, "reset": ["faults"]}));
    assert_eq!(emu.faults(), std::slice::from_ref(&startup));
    assert_eq!(control(&c, "GET", "/_emulator/faults", None).json()["faults"][0]["fired"], 0);
    assert_eq!(c.get("/v1/usage").status, 503, "it fires again");
    assert_eq!(c.get("/v1/databases/count").json()["total"], 1, "data kept");
    // Only the log.
    assert!(!emu.requests().is_empty());
    control(&c, "POST", "/_emulator/reset?only=requests", None);
    assert!(emu.requests().is_empty());
    assert_eq!(c.get(&format!("/v1/databases/{db}")).status, 200);

    // Everything (the default).
    control(&c, "POST", "/_emulator/faults", Some("op=count_databases,status=500,always"));
    let r = control(&c, "POST", "/_emulator/reset", None);
    assert_eq!(r.json(), json!({"ok": true, "reset": ["faults", "requests", "data"]}));
    assert_eq!(emu.faults(), [startup]);
    assert!(emu.requests().is_empty());
    assert_eq!(c.get(&format!("/v1/databases/{db}")).status, 404);
    assert_eq!(c.get("/v1/databases/count").json()["total"], 0);
    assert_eq!(control(&c, "GET", &format!("/_emulator/uploads/{upload}"), None).status, 404);
    assert!(emu.uploaded_object(&upload).is_none());
    let ws = c.get("/v1/workspaces").json();
    assert_eq!(ws["workspaces"][0]["public_id"], c.ws, "the seeded workspace is back");
    // Ids keep counting: nothing from before is reused.
    let after = c.database("after");
    assert_ne!(after, db);
    assert!(after > db);

    // In process, the same.
    emu.inject(FaultRule::parse("op=get_usage,reset").unwrap());
    emu.reset();
    assert_eq!(emu.faults().len(), 1);
    assert_eq!(c.get(&format!("/v1/databases/{after}")).status, 404);

    let r = control(&c, "POST", "/_emulator/reset?only=faults,bogus", None);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("bogus"));
}

/// Starts the binary; returns it with its first stdout lines (up to `lines`).
fn spawn(args: &[&str], env: &[(&str, &str)], lines: usize) -> (Kill, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotdata-emulator"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).env_remove("HOTDATA_EMULATOR_CONTROL_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Kill(cmd.spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let got = (0..lines)
        .map(|_| {
            let mut l = String::new();
            out.read_line(&mut l).unwrap();
            l.trim_end().to_string()
        })
        .collect();
    (child, got)
}

fn agent_get(url: &str, token: Option<&str>) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("x-emulator-token", t);
    }
    req.call().unwrap().status().as_u16()
}

#[test]
fn binary_control_flags() {
    // Off without a flag.
    let (_child, lines) = spawn(&["--port", "0"], &[], 2);
    let base = lines[0].strip_prefix("listening ").unwrap();
    assert_eq!(agent_get(&format!("{base}/_emulator/health"), None), 404);

    // --control: a random token, printed after `listening` and `api key`.
    let (_child, lines) = spawn(&["--port", "0", "--control"], &[], 3);
    let base = lines[0].strip_prefix("listening ").unwrap_or_else(|| panic!("first line: {lines:?}"));
    assert!(lines[1].starts_with("api key "));
    let token = lines[2].strip_prefix("control token ").unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(token.len(), 32);
    assert_eq!(agent_get(&format!("{base}/_emulator/health"), None), 401);
    assert_eq!(agent_get(&format!("{base}/_emulator/health"), Some("wrong")), 403);
    assert_eq!(agent_get(&format!("{base}/_emulator/health"), Some(token)), 200);

    // A token given in the environment (which keeps it out of `ps`) with --control, or by
    // flag (which turns the routes on alone); it is not printed.
    for (args, env) in [
        (&["--port", "0", "--control"][..], &[("HOTDATA_EMULATOR_CONTROL_TOKEN", "tok-env")][..]),
        (&["--port", "0", "--control-token", "tok-flag", "--control-remote"][..], &[][..]),
        (&["--port", "0", "--control-token=tok-flag"][..], &[][..]),
    ] {
        let (_child, lines) = spawn(args, env, 3);
        assert_eq!(lines[2], "control on (token as given)", "{args:?}");
        assert!(!lines.iter().any(|l| l.contains("tok-")), "{lines:?}");
        let base = lines[0].strip_prefix("listening ").unwrap();
        let token = if env.is_empty() { "tok-flag" } else { "tok-env" };
        assert_eq!(agent_get(&format!("{base}/_emulator/health"), Some(token)), 200, "{args:?}");
        assert_eq!(agent_get(&format!("{base}/_emulator/health"), None), 401, "{args:?}");
    }

    // --control-remote alone, or an unusable token, stops the process with a message.
    for (args, needle) in [
        (&["--port", "0", "--control-remote"][..], "--control-remote needs --control"),
        (&["--port", "0", "--control-token", "has space"][..], "control token"),
        (&["--port", "0", "--control-token"][..], "--control-token needs a token"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hotdata-emulator"))
            .args(args)
            .env_remove("HOTDATA_EMULATOR_CONTROL_TOKEN")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
