//! Instances (`/_emulator/instances`): isolated emulators a running one starts in its own
//! process, with the settings of the request body, for tests that cannot start one themselves
//! (a browser page runs one per scenario).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Client, Kill, R};
use hotdata_emulator::{
    Config, Emulator, EmulatorBuilder, EmulatorHandle, FaultRule, InstanceInfo, RequestRecord, RetryAfter,
    Settings,
};
use serde_json::json;

const TOKEN: &str = "inst-t0ken";

fn on() -> EmulatorBuilder {
    Emulator::builder().control_token(TOKEN)
}

fn send(c: &Client, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> R {
    c.raw(method, &format!("{}{path}", c.base), headers, body.map(|b| b.as_bytes().to_vec()))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// A control request with the token.
fn control(c: &Client, method: &str, path: &str, body: Option<&str>) -> R {
    send(c, method, path, &[("x-emulator-token", TOKEN), ("content-type", "application/json")], body)
}

/// Start an instance of the emulator behind `c` with these settings (asserting 201).
fn start(c: &Client, settings: &Settings) -> InstanceInfo {
    let r = control(c, "POST", "/_emulator/instances", Some(&settings.to_json().to_string()));
    assert_eq!(r.status, 201, "{}", r.text());
    InstanceInfo::from_json(&r.json()).unwrap()
}

fn client_of(info: &InstanceInfo) -> Client {
    Client::at(&info.base_url, &info.api_key, &info.workspace_id)
}

fn addr_of(base_url: &str) -> SocketAddr {
    base_url.strip_prefix("http://").unwrap().parse().unwrap()
}

/// Whether something accepts connections at `base_url`.
fn listening(base_url: &str) -> bool {
    TcpStream::connect_timeout(&addr_of(base_url), Duration::from_secs(2)).is_ok()
}

fn query(c: &Client, sql: &str) -> R {
    c.post("/v1/query", json!({"sql": sql}))
}

/// The request log of the emulator behind `c`, read over its control route.
fn log_of(c: &Client) -> Vec<RequestRecord> {
    let r = control(c, "GET", "/_emulator/requests", None);
    assert_eq!(r.status, 200, "{}", r.text());
    RequestRecord::log_from_json(&r.json()).unwrap()
}

#[test]
fn an_instance_starts_with_its_settings() {
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    let settings = Settings::default()
        .preview_rows(2)
        .min_part_size(16)
        .single_put_max(64)
        .default_part_size(32)
        .fault(FaultRule::status("count_databases", 503, Some(RetryAfter::Seconds(7)), 1));
    let info = start(&c, &settings);
    assert_eq!(info.id, "inst_1");
    assert_eq!(info.api_key, emu.api_key(), "the parent's key");
    assert_eq!(info.workspace_id, emu.workspace_id(), "the parent's workspace");
    let (parent, inst) = (addr_of(emu.base_url()), addr_of(&info.base_url));
    assert_eq!(inst.ip(), parent.ip(), "the parent's address");
    assert_ne!(inst.port(), parent.port(), "a port of its own");
    let i = client_of(&info);

    // preview_rows: 2 inline rows of 5 on the instance, all 5 on the parent.
    let r = query(&i, "select * from synthetic(5)").json();
    assert_eq!(r["rows"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["truncated"], true);
    let r = query(&c, "select * from synthetic(5)").json();
    assert_eq!(r["rows"].as_array().unwrap().len(), 5);
    // The startup fault rule, once.
    let r = i.get("/v1/databases/count");
    assert_eq!((r.status, r.header("retry-after")), (503, Some("7")));
    assert_eq!(i.get("/v1/databases/count").status, 200);
    assert_eq!(c.get("/v1/databases/count").status, 200, "not on the parent");
    // Upload shapes: 100 bytes are multipart with 32-byte parts on the instance.
    let s = i.post("/v1/uploads", json!({"declared_size_bytes": 100})).json();
    assert_eq!((s["mode"].as_str(), s["part_size"].as_u64()), (Some("multipart"), Some(32)), "{s}");
    let s = c.post("/v1/uploads", json!({"declared_size_bytes": 100})).json();
    assert_eq!(s["mode"], "single");
    let id = i.upload(&[7u8; 40], "x.bin");
    assert_eq!(control(&i, "GET", &format!("/_emulator/uploads/{id}"), None).body, [7u8; 40]);

    // Its control routes are on, with the parent's token.
    assert_eq!(send(&i, "GET", "/_emulator/health", &[], None).status, 401);
    assert_eq!(send(&i, "GET", "/_emulator/health", &[("x-emulator-token", "nope")], None).status, 403);
    assert_eq!(control(&i, "GET", "/_emulator/health", None).status, 200);
    let faults = control(&i, "GET", "/_emulator/faults", None).json();
    assert_eq!(FaultRule::from_json(&faults["faults"][0]["rule"]).unwrap(), settings.faults[0]);
    // It runs no instances of its own.
    let r = control(&i, "POST", "/_emulator/instances", Some("{}"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("instance"), "{}", r.text());

    // The parent lists it; an empty body is the default settings.
    let listed = control(&c, "GET", "/_emulator/instances", None).json();
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["max"], Config::DEFAULT_MAX_INSTANCES);
    assert_eq!(InstanceInfo::from_json(&listed["instances"][0]).unwrap(), info);
    let r = control(&c, "POST", "/_emulator/instances", None);
    assert_eq!(r.status, 201, "{}", r.text());
    let d = client_of(&InstanceInfo::from_json(&r.json()).unwrap());
    assert_eq!(query(&d, "select * from synthetic(5)").json()["rows"].as_array().unwrap().len(), 5);
    assert_eq!(r.json()["id"], "inst_2");
}

#[test]
fn the_builder_takes_the_same_settings() {
    let settings = Settings::default().preview_rows(3).job_step(Duration::from_millis(5));
    let emu = Emulator::builder().settings(settings.clone()).start().unwrap();
    assert_eq!(emu.config().settings, settings);
    assert_eq!(emu.config().preview_rows, 3, "Config reads its settings as its own fields");
    let c = Client::new(&emu);
    assert_eq!(query(&c, "select * from synthetic(5)").json()["rows"].as_array().unwrap().len(), 3);
    // The builder's setters write the same settings.
    let b = Emulator::builder().preview_rows(3).job_step(Duration::from_millis(5));
    assert_eq!(b.config().settings, settings);
}

#[test]
fn instances_are_isolated() {
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    let (a_info, b_info) = (start(&c, &Settings::default()), start(&c, &Settings::default()));
    let (a, b) = (client_of(&a_info), client_of(&b_info));
    assert_ne!(a.base, b.base);

    // Faults: set on one, nowhere else.
    let r = control(&a, "POST", "/_emulator/faults", Some("op=count_databases,status=500,always"));
    assert_eq!(r.status, 200, "{}", r.text());
    emu.inject(FaultRule::parse("op=get_usage,status=418,always").unwrap());
    assert_eq!(a.get("/v1/databases/count").status, 500);
    assert_eq!(b.get("/v1/databases/count").status, 200);
    assert_eq!(c.get("/v1/databases/count").status, 200);
    assert_eq!(c.get("/v1/usage").status, 418);
    assert_eq!(a.get("/v1/usage").status, 200);
    assert_eq!(b.get("/v1/usage").status, 200);
    assert_eq!(control(&b, "GET", "/_emulator/faults", None).json()["faults"], json!([]));
    assert_eq!(emu.faults().len(), 1);

    // Data: a database made in one is in no other (ids may coincide: each counts its own).
    let db = a.database("only_in_a");
    assert_eq!(a.get(&format!("/v1/databases/{db}")).status, 200);
    assert_eq!(b.get("/v1/databases").json()["databases"], json!([]));
    assert_eq!(c.get("/v1/databases").json()["databases"], json!([]));

    // Request logs: each its own (control requests, to any of them, in none).
    let a_log = log_of(&a);
    let ops: Vec<&str> = a_log.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["count_databases", "get_usage", "create_database", "get_database"]);
    assert_eq!(a_log[0].status, 500);
    assert!(a_log[0].fault.as_deref().unwrap().contains("500"));
    let b_ops: Vec<String> = log_of(&b).into_iter().map(|r| r.operation).collect();
    assert_eq!(b_ops, ["count_databases", "get_usage", "list_databases"]);
    let parent_ops: Vec<String> = emu.requests().into_iter().map(|r| r.operation).collect();
    assert_eq!(parent_ops, ["count_databases", "get_usage", "list_databases"]);
    assert_eq!(log_of(&c), emu.requests(), "the route's JSON reads back into the handle's records");

    // Reset of one resets only it; clearing one log clears only it.
    assert_eq!(control(&a, "POST", "/_emulator/reset", None).status, 200);
    assert_eq!(a.get(&format!("/v1/databases/{db}")).status, 404);
    assert_eq!(a.get("/v1/databases/count").status, 200);
    assert_eq!(log_of(&b).len(), 3);
    control(&b, "DELETE", "/_emulator/requests", None);
    assert!(log_of(&b).is_empty());
    assert_eq!(emu.requests().len(), 3);
    assert_eq!(c.get("/v1/usage").status, 418, "the parent's faults stay");
}

/// Every instance route, with a body where it takes one.
const ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/_emulator/instances", None),
    ("POST", "/_emulator/instances", Some("{\"preview_rows\":1}")),
    ("DELETE", "/_emulator/instances", None),
    ("DELETE", "/_emulator/instances/inst_1", None),
];

#[test]
fn instance_routes_need_the_token() {
    // Off (no control token): unknown paths, nothing starts.
    let off = Emulator::start().unwrap();
    let c = Client::new(&off);
    for (method, path, body) in ROUTES {
        for headers in [&[][..], &[("x-emulator-token", TOKEN)][..]] {
            let r = send(&c, method, path, headers, *body);
            assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
            assert_eq!(r.json()["error"]["message"], format!("no route for {method} {path}"));
        }
    }
    // On: 401 without the token, 403 with a wrong one, and nothing starts.
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    for (method, path, body) in ROUTES {
        let r = send(&c, method, path, &[], *body);
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (401, Some("UNAUTHORIZED")),
            "{method} {path}"
        );
        let r = send(&c, method, path, &[("x-emulator-token", "inst-t0keN")], *body);
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (403, Some("FORBIDDEN")),
            "{method} {path}"
        );
    }
    assert_eq!(control(&c, "GET", "/_emulator/instances", None).json()["count"], 0);
    // A preflight lets a page send the token and JSON.
    let pre = send(
        &c,
        "OPTIONS",
        "/_emulator/instances/inst_1",
        &[
            ("origin", "http://127.0.0.1:9"),
            ("access-control-request-method", "DELETE"),
            ("access-control-request-headers", "content-type, x-emulator-token"),
        ],
        None,
    );
    assert_eq!(pre.status, 204);
    assert!(pre.header("access-control-allow-methods").unwrap().contains("DELETE"));
    // With the token: every route answers.
    let expected = [200, 201, 200, 404];
    for ((method, path, body), status) in ROUTES.iter().zip(expected) {
        let r = control(&c, method, path, *body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
    }
    // The instance inherits the gate: a remote-peer refusal is the gate's own unit test; its
    // token is the parent's (an_instance_starts_with_its_settings).
    assert!(emu.requests().is_empty(), "control requests are not logged: {:?}", emu.requests());
}

#[test]
fn bad_settings_are_a_400_naming_the_key() {
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    for (body, needle) in [
        ("{\"preview_row\":5}", "unknown setting `preview_row`"),
        ("{\"api_keys\":[\"k\"]}", "unknown setting `api_keys`"),
        ("{\"preview_rows\":-1}", "setting `preview_rows`"),
        ("{\"faults\":[\"op=x\"]}", "setting `faults`"),
        ("{\"arrow_compression\":\"gzip\"}", "setting `arrow_compression`"),
        ("[1]", "a JSON object"),
        ("preview_rows=5", "invalid JSON body"),
    ] {
        let r = control(&c, "POST", "/_emulator/instances", Some(body));
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = r.json();
        assert_eq!(e["error"]["code"], "BAD_REQUEST");
        assert!(e["error"]["message"].as_str().unwrap().contains(needle), "{body}: {e}");
    }
    assert_eq!(control(&c, "GET", "/_emulator/instances", None).json()["count"], 0, "none started");
}

#[test]
fn delete_stops_an_instance() {
    let emu = on().start().unwrap();
    let c = Client::new(&emu);
    let (one, two, three) =
        (start(&c, &Settings::default()), start(&c, &Settings::default()), start(&c, &Settings::default()));
    assert!(listening(&one.base_url) && listening(&two.base_url) && listening(&three.base_url));
    let r = control(&c, "DELETE", &format!("/_emulator/instances/{}", one.id), None);
    assert_eq!(r.json(), json!({"ok": true, "stopped": one.id}));
    assert!(!listening(&one.base_url), "stopped once DELETE answers");
    assert!(listening(&two.base_url));
    let r = control(&c, "DELETE", &format!("/_emulator/instances/{}", one.id), None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    let listed = control(&c, "GET", "/_emulator/instances", None).json();
    let ids: Vec<&str> =
        listed["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [two.id.as_str(), three.id.as_str()]);
    // All at once.
    assert_eq!(control(&c, "DELETE", "/_emulator/instances", None).json(), json!({"ok": true, "stopped": 2}));
    assert!(!listening(&two.base_url) && !listening(&three.base_url));
    assert_eq!(control(&c, "GET", "/_emulator/instances", None).json()["count"], 0);
    // Ids are not reused; the parent goes on.
    assert_eq!(start(&c, &Settings::default()).id, "inst_4");
    assert_eq!(c.get("/v1/databases/count").status, 200);
}

#[test]
fn instances_stop_with_the_parent() {
    let emu: EmulatorHandle = on().start().unwrap();
    let c = Client::new(&emu);
    let (a, b) = (start(&c, &Settings::default()), start(&c, &Settings::default()));
    assert!(listening(&a.base_url) && listening(&b.base_url));
    drop(emu);
    assert!(!listening(&a.base_url) && !listening(&b.base_url));
}

#[test]
fn the_cap_holds() {
    assert_eq!(Config::default().max_instances, 64);
    let emu = on().max_instances(2).start().unwrap();
    let c = Client::new(&emu);
    let first = start(&c, &Settings::default());
    start(&c, &Settings::default());
    let r = control(&c, "POST", "/_emulator/instances", Some("{}"));
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "TOO_MANY_INSTANCES");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("2 instances"), "{}", r.text());
    assert_eq!(control(&c, "GET", "/_emulator/instances", None).json()["count"], 2);
    // Stopping one makes room for one.
    control(&c, "DELETE", &format!("/_emulator/instances/{}", first.id), None);
    start(&c, &Settings::default());
    assert_eq!(control(&c, "POST", "/_emulator/instances", Some("{}")).status, 429);
    // None at all with 0.
    let none = on().max_instances(0).start().unwrap();
    assert_eq!(control(&Client::new(&none), "POST", "/_emulator/instances", None).status, 429);
}

#[test]
fn the_binary_runs_instances_until_it_ends() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotdata-emulator"));
    cmd.args(["--port", "0", "--max-instances", "1"])
        .env("HOTDATA_EMULATOR_CONTROL_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Kill(cmd.spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let base = line.trim_end().strip_prefix("listening ").unwrap_or_else(|| panic!("{line}")).to_string();
    let c = Client::at(&base, hotdata_emulator::DEFAULT_API_KEY, hotdata_emulator::DEFAULT_WORKSPACE_ID);
    let info = start(&c, &Settings::default().preview_rows(1));
    let i = client_of(&info);
    assert_eq!(query(&i, "select * from synthetic(3)").json()["rows"].as_array().unwrap().len(), 1);
    let r = control(&c, "POST", "/_emulator/instances", None);
    assert_eq!(r.status, 429, "--max-instances 1: {}", r.text());
    // The end of the process is the end of its instances.
    drop(child);
    assert!(!listening(&info.base_url));
}
