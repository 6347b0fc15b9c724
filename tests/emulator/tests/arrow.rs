//! Arrow IPC: compressed record batches (`ArrowCompression`) and Arrow streams stored as
//! results and served byte for byte (`store_arrow_result`, `POST /_emulator/results`,
//! `--arrow-result`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_ipc::CompressionType;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use common::{Client, Kill, R};
use hotdata_emulator::{ArrowCompression, Config, Emulator, EmulatorHandle, Fault, FaultRule, Target};
use serde_json::{Value, json};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/arrow");

fn fixture_path(file: &str) -> String {
    format!("{FIXTURES}/{file}")
}

fn fixture(file: &str) -> Bytes {
    Bytes::from(std::fs::read(fixture_path(file)).unwrap_or_else(|e| panic!("{file}: {e}")))
}

fn manifest() -> Value {
    serde_json::from_slice(&fixture("manifest.json")).unwrap()
}

/// Decode a whole Arrow IPC stream with arrow-ipc's reader.
fn decode(bytes: &[u8]) -> (SchemaRef, Vec<RecordBatch>) {
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("arrow stream");
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().expect("batches");
    (schema, batches)
}

/// The body compression codec of every record batch and dictionary batch message, read
/// from the IPC framing (`root_as_message` on each message's metadata).
fn codecs(bytes: &[u8]) -> Vec<Option<CompressionType>> {
    let word = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= bytes.len() {
        let mut len = word(pos);
        pos += 4;
        if len == -1 {
            len = word(pos);
            pos += 4;
        }
        if len == 0 {
            break;
        }
        let msg = arrow_ipc::root_as_message(&bytes[pos..pos + len as usize]).expect("IPC message");
        pos += len as usize;
        if let Some(b) = msg.header_as_record_batch() {
            out.push(b.compression().map(|c| c.codec()));
        } else if let Some(d) = msg.header_as_dictionary_batch() {
            out.push(d.data().and_then(|b| b.compression()).map(|c| c.codec()));
        }
        pos += msg.bodyLength() as usize;
    }
    assert_eq!(pos, bytes.len(), "walked the whole stream, up to and with its end-of-stream marker");
    out
}

/// `GET /v1/results/{id}` with extra query parameters in database `db`.
fn result(c: &Client, db: &str, id: &str, query: &str) -> R {
    c.get_db(&format!("/v1/results/{id}?{query}"), db)
}

/// Rows `[offset, offset + limit)` of `batches`, as one batch per overlapped batch.
fn window(batches: &[RecordBatch], offset: usize, limit: usize) -> Vec<RecordBatch> {
    let (mut out, mut base) = (Vec::new(), 0);
    for b in batches {
        let (lo, hi) = (base, base + b.num_rows());
        base = hi;
        let (s, e) = (offset.max(lo), (offset + limit).min(hi));
        if s < e {
            out.push(b.slice(s - lo, e - s));
        }
    }
    out
}

#[test]
fn arrow_compression_parses_and_defaults_to_none() {
    assert_eq!(Config::default().arrow_compression, ArrowCompression::None);
    assert_eq!(ArrowCompression::default(), ArrowCompression::None);
    for (s, c) in [
        ("none", ArrowCompression::None),
        ("lz4", ArrowCompression::Lz4Frame),
        ("LZ4_FRAME", ArrowCompression::Lz4Frame),
        ("lz4-frame", ArrowCompression::Lz4Frame),
        ("zstd", ArrowCompression::Zstd),
    ] {
        assert_eq!(s.parse::<ArrowCompression>(), Ok(c), "{s}");
    }
    for c in [ArrowCompression::None, ArrowCompression::Lz4Frame, ArrowCompression::Zstd] {
        assert_eq!(c.to_string().parse::<ArrowCompression>(), Ok(c));
    }
    assert!("brotli".parse::<ArrowCompression>().unwrap_err().contains("brotli"));
    let b = Emulator::builder().arrow_compression(ArrowCompression::Zstd);
    assert_eq!(b.config().arrow_compression, ArrowCompression::Zstd);
}

/// Each compression: the result download, a window of it, and `POST /v1/query` as Arrow
/// decode to the uncompressed answer, every batch carries the codec, and the body shrinks.
#[test]
fn compressed_arrow_downloads_decode_to_the_plain_answer() {
    let sql = "SELECT * FROM synthetic(5000) ORDER BY id";
    let fetch = |compression: ArrowCompression| -> [Vec<u8>; 3] {
        let emu = Emulator::builder().arrow_compression(compression).start().unwrap();
        assert_eq!(emu.config().arrow_compression, compression);
        let c = Client::new(&emu);
        let db = c.database("z");
        let rid = c.sql(&db, sql)["result_id"].as_str().unwrap().to_string();
        let whole = result(&c, &db, &rid, "format=arrow");
        assert_eq!(whole.status, 200);
        assert_eq!(whole.header("content-type"), Some("application/vnd.apache.arrow.stream"));
        assert_eq!(whole.header("x-total-row-count"), Some("5000"));
        let part = result(&c, &db, &rid, "format=arrow&offset=100&limit=1000");
        assert_eq!(part.status, 200);
        let q = c.call(
            "POST",
            "/v1/query",
            &[("x-database-id", &db), ("accept", "application/vnd.apache.arrow.stream")],
            Some(serde_json::to_vec(&json!({"sql": sql})).unwrap()),
        );
        assert_eq!(q.status, 200);
        assert_eq!(q.header("content-type"), Some("application/vnd.apache.arrow.stream"));
        [whole.body, part.body, q.body]
    };
    let plain = fetch(ArrowCompression::None);
    for body in &plain {
        let cs = codecs(body);
        assert!(!cs.is_empty() && cs.iter().all(Option::is_none), "{cs:?}");
    }
    assert_eq!(decode(&plain[0]).1.iter().map(RecordBatch::num_rows).sum::<usize>(), 5000);
    assert_eq!(decode(&plain[1]).1.iter().map(RecordBatch::num_rows).sum::<usize>(), 1000);
    for (compression, codec) in [
        (ArrowCompression::Lz4Frame, CompressionType::LZ4_FRAME),
        (ArrowCompression::Zstd, CompressionType::ZSTD),
    ] {
        let packed = fetch(compression);
        for (p, z) in plain.iter().zip(&packed) {
            let cs = codecs(z);
            assert!(!cs.is_empty() && cs.iter().all(|c| *c == Some(codec)), "{compression}: {cs:?}");
            assert_eq!(decode(z), decode(p), "{compression}: same schema and batches as uncompressed");
            assert!(z.len() < p.len(), "{compression}: {} bytes, uncompressed {}", z.len(), p.len());
        }
    }
}

fn emulator_bin(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotdata-emulator"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `POST /v1/query` of 100 synthetic rows answered as Arrow, in database `db` if given: the
/// body.
fn query_arrow(agent: &ureq::Agent, base: &str, db: Option<&str>) -> Vec<u8> {
    let mut request = agent
        .post(format!("{base}/v1/query"))
        .header("authorization", "Bearer hd_emulator_key")
        .header("x-workspace-id", "ws_emulator")
        .header("accept", "application/vnd.apache.arrow.stream");
    if let Some(db) = db {
        request = request.header("x-database-id", db);
    }
    let mut r =
        request.content_type("application/json").send(r#"{"sql":"SELECT * FROM synthetic(100)"}"#).unwrap();
    assert_eq!(r.status(), 200);
    r.body_mut().read_to_vec().unwrap()
}

#[test]
fn binary_arrow_compression_and_arrow_result_flags() {
    let files = ["compressed_lz4.arrows", "types_temporal.arrows"];
    let paths: Vec<String> = files.iter().map(|f| fixture_path(f)).collect();
    let child = emulator_bin(
        &[
            "--port",
            "0",
            "--arrow-compression",
            "zstd",
            "--arrow-result",
            &paths[0],
            &format!("--arrow-result={}", paths[1]),
        ],
        &[("HOTDATA_EMULATOR_ARROW_COMPRESSION", "lz4")],
    )
    .spawn()
    .unwrap();
    let mut child = Kill(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = || {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    };
    let first = line();
    let base = first.strip_prefix("listening ").unwrap_or_else(|| panic!("first line: {first}")).to_string();
    assert!(line().starts_with("api key "));
    let stored: Vec<Vec<String>> =
        (0..2).map(|_| line().split(' ').map(str::to_string).collect::<Vec<_>>()).collect();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = |path: &str, db: &str| {
        let mut r = agent
            .get(format!("{base}{path}"))
            .header("authorization", "Bearer hd_emulator_key")
            .header("x-workspace-id", "ws_emulator")
            .header("x-database-id", db)
            .call()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.body_mut().read_to_vec().unwrap()
    };
    for (fields, (file, path)) in stored.iter().zip(files.iter().zip(&paths)) {
        assert_eq!(fields.len(), 4, "{fields:?}");
        assert_eq!(fields[0], "arrow-result");
        assert_eq!(&fields[1], path);
        assert!(fields[2].starts_with("res_"), "{fields:?}");
        assert_eq!(fields[3], stored[0][3], "one `fixtures` database");
        assert_eq!(
            get(&format!("/v1/results/{}?format=arrow", fields[2]), &fields[3]),
            fixture(file),
            "{file}"
        );
    }
    let db = &stored[0][3];
    let dbs: Value = serde_json::from_slice(&get("/v1/databases", db)).unwrap();
    assert_eq!(dbs["databases"][0]["name"], "fixtures");
    // The flag wins over the environment.
    let body = query_arrow(&agent, &base, Some(db));
    assert!(codecs(&body).iter().all(|c| *c == Some(CompressionType::ZSTD)));
    drop(child);

    // The environment alone.
    let child =
        emulator_bin(&["--port", "0"], &[("HOTDATA_EMULATOR_ARROW_COMPRESSION", "lz4")]).spawn().unwrap();
    let mut child = Kill(child);
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let base = first.trim().strip_prefix("listening ").unwrap().to_string();
    let body = query_arrow(&agent, &base, None);
    assert!(codecs(&body).iter().all(|c| *c == Some(CompressionType::LZ4_FRAME)));
    drop(child);

    // Bad values stop the process with a message.
    for args in [
        vec!["--port", "0", "--arrow-compression", "brotli"],
        vec!["--port", "0", "--arrow-result", &format!("{FIXTURES}/manifest.json")],
        vec!["--port", "0", "--arrow-result", &format!("{FIXTURES}/no-such-file.arrows")],
    ] {
        let out = emulator_bin(&args, &[]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout, no `listening`");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with(&format!("hotdata-emulator: {}", args[2])), "{args:?}: {err}");
    }
}

/// Through the Rust API: the exact bytes come back (the emulator's own compression does not
/// touch them), with the usual headers, and the status poll and listing see the result.
#[test]
fn stored_arrow_result_is_served_byte_for_byte() {
    let emu = Emulator::builder().arrow_compression(ArrowCompression::Lz4Frame).start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("fx");
    let other = c.database("other");
    let bytes = fixture("compressed_zstd.arrows");
    let rid = emu.store_arrow_result(&db, bytes.clone()).unwrap();

    let r = result(&c, &db, &rid, "format=arrow");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes, "byte for byte");
    assert_eq!(r.header("content-type"), Some("application/vnd.apache.arrow.stream"));
    assert_eq!(r.header("x-total-row-count"), Some("3000"));
    assert_eq!(r.header("content-length"), Some(bytes.len().to_string().as_str()));
    assert!(r.header("access-control-expose-headers").unwrap().contains("X-Total-Row-Count"));
    assert!(codecs(&r.body).iter().all(|c| *c == Some(CompressionType::ZSTD)));
    assert_eq!(decode(&r.body), decode(&fixture("compressed.plain.arrows")));
    // Accept negotiation and a limit covering every row serve the same bytes.
    let r = c.call(
        "GET",
        &format!("/v1/results/{rid}"),
        &[("x-database-id", &db), ("accept", "application/vnd.apache.arrow.stream")],
        None,
    );
    assert_eq!(r.body, bytes);
    assert_eq!(result(&c, &db, &rid, "format=arrow&offset=0&limit=3000").body, bytes);

    // The status poll (`?limit=0`): ready, columns by name, the row count.
    let (schema, _) = decode(&bytes);
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let meta = result(&c, &db, &rid, "limit=0");
    assert_eq!(meta.status, 200, "{}", meta.text());
    let meta = meta.json();
    assert_eq!(meta["status"], "ready");
    assert_eq!(meta["result_id"], json!(rid));
    assert_eq!(meta["columns"], json!(names));
    assert_eq!(meta["nullable"].as_array().unwrap().len(), names.len());
    assert_eq!(meta["total_row_count"], 3000);
    assert_eq!(meta["row_count"], 0);
    assert_eq!(meta["rows"], json!([]));
    let list = c.get_db("/v1/results", &db).json();
    let listed = list["results"].as_array().unwrap().iter().find(|r| r["id"] == json!(rid)).unwrap();
    assert_eq!(listed["status"], "ready");

    // Scoped to its database, like any result.
    assert_eq!(result(&c, &other, &rid, "format=arrow").status, 404);
    assert_eq!(c.get(&format!("/v1/results/{rid}?format=arrow")).status, 400);
}

#[test]
fn stored_arrow_result_over_the_control_route() {
    let emu = Emulator::builder().control_token("tok").start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("fx");
    let bytes = fixture("types_temporal_zstd.arrows");
    let origin = "http://127.0.0.1:9000";
    let url = format!("{}/_emulator/results?database_id={db}", c.base);
    // A browser's preflight, then the POST from another origin with the control token.
    let pre = c
        .raw(
            "OPTIONS",
            &url,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type, x-emulator-token"),
            ],
            None,
        )
        .unwrap();
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some(origin));
    assert!(pre.header("access-control-allow-methods").unwrap().contains("POST"));
    assert!(pre.header("access-control-allow-headers").unwrap().contains("x-emulator-token"));
    // Without the token nothing is stored.
    let r = c.raw("POST", &url, &[("origin", origin)], Some(bytes.to_vec())).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(c.get_db("/v1/results", &db).json()["count"], 0);
    let r = c
        .raw(
            "POST",
            &url,
            &[
                ("origin", origin),
                ("content-type", "application/vnd.apache.arrow.stream"),
                ("x-emulator-token", "tok"),
            ],
            Some(bytes.to_vec()),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    let body = r.json();
    assert_eq!(body["rows"], 8);
    let rid = body["result_id"].as_str().unwrap();
    let got = result(&c, &db, rid, "format=arrow");
    assert_eq!(got.body, bytes);
    assert_eq!(got.header("x-total-row-count"), Some("8"));
    // `X-Database-Id` names the database too.
    let r = c
        .raw(
            "POST",
            &format!("{}/_emulator/results", c.base),
            &[("x-database-id", &db), ("x-emulator-token", "tok")],
            Some(bytes.to_vec()),
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    // Control requests (and their preflights) stay out of the request log.
    let log = emu.requests();
    assert!(log.iter().all(|r| !r.uri.starts_with("/_emulator")), "{log:?}");
    assert!(log.iter().any(|r| r.operation == "get_result" && r.status == 200));
}

/// Every pyarrow fixture is accepted, and served verbatim with the manifest's row count.
#[test]
fn every_fixture_is_stored_and_served_verbatim() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("all");
    for f in manifest()["fixtures"].as_array().unwrap() {
        let file = f["file"].as_str().unwrap();
        let bytes = fixture(file);
        let rid = emu.store_arrow_result(&db, bytes.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let r = result(&c, &db, &rid, "format=arrow");
        assert_eq!(r.status, 200, "{file}");
        assert!(r.body == bytes, "{file}: not byte for byte");
        assert_eq!(r.header("x-total-row-count"), Some(f["rows"].to_string().as_str()), "{file}");
        let meta = result(&c, &db, &rid, "limit=0");
        assert_eq!(meta.status, 200, "{file}: {}", meta.text());
        let meta = meta.json();
        assert_eq!(
            meta["columns"].as_array().unwrap().len() as u64,
            f["columns"].as_u64().unwrap(),
            "{file}"
        );
        assert_eq!(meta["total_row_count"], f["rows"], "{file}");
    }
}

#[test]
fn storing_rejects_unreadable_streams_and_unknown_databases() {
    let emu = Emulator::builder().control_token("tok").start().unwrap();
    let t = [("x-emulator-token", "tok")];
    let c = Client::new(&emu);
    let db = c.database("fx");
    let good = fixture("compressed_zstd.arrows");
    let mut trailing = good.to_vec();
    trailing.extend_from_slice(b"junk");
    let cut = good.slice(..good.len() - 9); // no end marker, last body one byte short
    let bad: [(&str, Bytes); 5] = [
        ("garbage", Bytes::from_static(b"this is not an arrow stream")),
        ("empty", Bytes::new()),
        ("a parquet-ish magic", Bytes::from_static(b"PAR1\0\0\0\0PAR1")),
        ("cut inside a batch", cut),
        ("bytes after the end", Bytes::from(trailing)),
    ];
    for (what, bytes) in &bad {
        let e = emu.store_arrow_result(&db, bytes.clone()).unwrap_err();
        assert!(e.contains("Arrow IPC stream"), "{what}: {e}");
        let r = c.raw(
            "POST",
            &format!("{}/_emulator/results?database_id={db}", c.base),
            &t,
            Some(bytes.to_vec()),
        );
        let r = r.unwrap();
        assert_eq!(r.status, 400, "{what}");
        assert_eq!(r.json()["error"]["code"], "INVALID_ARROW_STREAM", "{what}");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("Arrow IPC stream"), "{what}");
    }
    let e = emu.store_arrow_result("db_nope", good.clone()).unwrap_err();
    assert!(e.contains("db_nope") && e.contains("not found"), "{e}");
    let post = |q: &str| {
        c.raw("POST", &format!("{}/_emulator/results{q}", c.base), &t, Some(good.to_vec())).unwrap()
    };
    let r = post("?database_id=db_nope");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "DATABASE_NOT_FOUND");
    let r = post("");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "BAD_REQUEST");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("database_id"));
    assert_eq!(c.raw("GET", &format!("{}/_emulator/results", c.base), &t, None).unwrap().status, 405);
    // Nothing was stored by the failures.
    assert_eq!(c.get_db("/v1/results", &db).json()["count"], 0);
}

/// Stored bytes go through the same body machinery as every result: truncation cuts them
/// at the given byte (with the full `Content-Length`), slow bodies pace them, resets reset.
#[test]
fn faults_apply_to_stored_arrow_results() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("fx");
    let bytes = fixture("compressed_lz4.arrows");
    let rid = emu.store_arrow_result(&db, bytes.clone()).unwrap();
    let path = format!("/v1/results/{rid}?format=arrow");
    let auth = format!("Bearer {}", c.key);
    let h =
        [("authorization", auth.as_str()), ("x-workspace-id", c.ws.as_str()), ("x-database-id", db.as_str())];

    // Truncated (half by default): the client sees a failed read.
    emu.inject(FaultRule::new(Target::Operation("get_result".into()), Fault::Truncate { at: None }));
    assert!(c.raw("GET", &format!("{}{path}", c.base), &h, None).is_err(), "truncated body must fail");
    assert_eq!(result(&c, &db, &rid, "format=arrow").body, bytes, "intact once the fault is spent");

    // Truncated at a byte: exactly the stored prefix arrives, under the full length.
    emu.inject(FaultRule::new(Target::PathPrefix("/v1/results".into()), Fault::Truncate { at: Some(100) }));
    let addr = emu.base_url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: {auth}\r\nx-workspace-id: {}\r\nx-database-id: {db}\r\n\r\n",
        c.ws
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {}", bytes.len())), "{head}");
    assert_eq!(&got[split + 4..], &bytes[..100]);

    // Slow body: paced, intact.
    emu.inject(FaultRule::new(
        Target::Operation("get_result".into()),
        Fault::SlowBody { chunk: bytes.len() / 4 + 1, delay: Duration::from_millis(50) },
    ));
    let t = Instant::now();
    assert_eq!(result(&c, &db, &rid, "format=arrow").body, bytes);
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());

    // Reset, status and not-ready faults answer instead of the bytes.
    emu.inject(FaultRule::new(Target::Operation("get_result".into()), Fault::Reset));
    assert!(c.raw("GET", &format!("{}{path}", c.base), &h, None).is_err());
    emu.inject(FaultRule::parse("op=get_result,status=503").unwrap());
    assert_eq!(result(&c, &db, &rid, "format=arrow").status, 503);
    emu.inject(FaultRule::parse("op=get_result,not-ready").unwrap());
    assert_eq!(result(&c, &db, &rid, "format=arrow").status, 202);
    assert_eq!(result(&c, &db, &rid, "format=arrow").body, bytes);
}

/// Column types the emulator's renderers do not know: Arrow windows are re-encoded from the
/// decoded batches, rows in other formats are refused, empty windows are served.
#[test]
fn stored_arrow_result_windows_and_other_formats() {
    let emu = Emulator::builder().arrow_compression(ArrowCompression::Zstd).start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("fx");
    let bytes = fixture("types_temporal.arrows");
    let (schema, batches) = decode(&bytes);
    let rid = emu.store_arrow_result(&db, bytes.clone()).unwrap();

    let r = result(&c, &db, &rid, "format=arrow&offset=2&limit=3");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-total-row-count"), Some("8"));
    assert!(r.header("link").unwrap().contains("offset=5&limit=3"));
    assert!(codecs(&r.body).iter().all(|c| *c == Some(CompressionType::ZSTD)), "re-encoded as configured");
    let (got_schema, got) = decode(&r.body);
    assert_eq!(got_schema, schema);
    assert_eq!(got, window(&batches, 2, 3));

    for q in ["format=json", "format=csv", "format=md", "format=parquet", "format=json&offset=1&limit=2"] {
        let r = result(&c, &db, &rid, q);
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["error"]["code"], "UNSUPPORTED_FOR_ARROW_FIXTURE", "{q}");
        assert!(r.json()["error"]["message"].as_str().unwrap().contains("format=arrow"), "{q}");
    }
    let r = result(&c, &db, &rid, "format=csv&limit=0");
    assert_eq!(r.status, 200);
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(r.text(), format!("{}\n", names.join(",")));
    let r = result(&c, &db, &rid, "offset=8");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["rows"], json!([]));

    // Loading it into a table would lose the values: refused.
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/t/loads"),
        json!({"mode": "replace", "result_id": rid}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "UNSUPPORTED_FOR_ARROW_FIXTURE");
}

/// A stream written elsewhere whose columns are the emulator's own types renders in every
/// format, and loads into a table.
#[test]
fn stored_arrow_result_with_native_types_renders_every_format() {
    let emu: EmulatorHandle = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("fx");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
        Arc::new(StringArray::from(vec![Some("a,b"), Some("c"), None])),
        Arc::new(Float64Array::from(vec![Some(0.5), Some(1.5), None])),
        Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
    ];
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", arrow_schema::DataType::Int64, true),
        arrow_schema::Field::new("name", arrow_schema::DataType::Utf8, true),
        arrow_schema::Field::new("x", arrow_schema::DataType::Float64, true),
        arrow_schema::Field::new("ok", arrow_schema::DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let opts = arrow_ipc::writer::IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::LZ4_FRAME))
        .unwrap();
    let mut w = arrow_ipc::writer::StreamWriter::try_new_with_options(Vec::new(), &schema, opts).unwrap();
    w.write(&batch.slice(0, 2)).unwrap();
    w.write(&batch.slice(2, 1)).unwrap();
    w.finish().unwrap();
    let bytes = Bytes::from(w.into_inner().unwrap());
    let rid = emu.store_arrow_result(&db, bytes.clone()).unwrap();

    assert_eq!(result(&c, &db, &rid, "format=arrow").body, bytes);
    let r = result(&c, &db, &rid, "format=json").json();
    assert_eq!(r["columns"], json!(["id", "name", "x", "ok"]));
    assert_eq!(r["rows"], json!([[1, "a,b", 0.5, true], [null, "c", 1.5, false], [3, null, null, null]]));
    let r = result(&c, &db, &rid, "format=json&offset=1&limit=1").json();
    assert_eq!(r["rows"], json!([[null, "c", 1.5, false]]));
    assert_eq!(
        result(&c, &db, &rid, "format=csv").text(),
        "id,name,x,ok\n1,\"a,b\",0.5,true\n,c,1.5,false\n3,,,\n"
    );
    assert!(result(&c, &db, &rid, "format=md").text().starts_with("| id | name | x | ok |"));
    let pq = result(&c, &db, &rid, "format=parquet");
    assert_eq!(pq.status, 200);
    assert!(pq.body.starts_with(b"PAR1"));
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/t/loads"),
        json!({"mode": "replace", "result_id": rid}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.sql(&db, "SELECT SUM(id) FROM t")["rows"], json!([[4]]));
}

/// Stored streams are pinned: the row budget neither counts nor evicts them.
#[test]
fn stored_arrow_results_are_never_evicted() {
    let emu = Emulator::builder().max_stored_rows(100).start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("fx");
    let bytes = fixture("compressed_zstd.arrows"); // 3000 rows: over the budget on its own
    let rid = emu.store_arrow_result(&db, bytes.clone()).unwrap();
    let a = c.sql(&db, "SELECT * FROM synthetic(60)")["result_id"].as_str().unwrap().to_string();
    let b = c.sql(&db, "SELECT * FROM synthetic(60)")["result_id"].as_str().unwrap().to_string();
    assert_eq!(result(&c, &db, &a, "limit=0").status, 404, "the older query result went");
    assert_eq!(result(&c, &db, &b, "limit=0").status, 200, "the newer one fits beside the pinned stream");
    assert_eq!(result(&c, &db, &rid, "format=arrow").body, bytes);
}
