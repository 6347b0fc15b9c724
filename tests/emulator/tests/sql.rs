//! The emulator's SQL: loads in CSV, JSON and Parquet, name resolution, synthetic rows,
//! results as JSON and Arrow, pagination and result lifecycle.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::{Client, decode_arrow, wait_until};
use hotdata_emulator::Emulator;
use serde_json::json;

fn parquet_bytes() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("score", DataType::Float64, true),
        Field::new("tag", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            Arc::new(Float64Array::from(vec![Some(0.5), None, Some(2.25), Some(9.0)])),
            Arc::new(StringArray::from(vec![Some("x"), Some("y"), None, Some("x")])),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    buf
}

#[test]
fn loads_csv_json_parquet_and_joins_them() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("shop");
    c.load_inline(
        &db,
        "customers",
        "csv",
        "id,name,vip,joined\n1,\"Ann, A.\",true,2024-01-02T03:04:05Z\n2,Bob,false,\n3,Cy,true,2024-02-01T00:00:00Z\n",
    );
    c.load_inline(
        &db,
        "orders",
        "json",
        r#"[{"id":10,"customer":1,"total":9.5},{"id":11,"customer":3,"total":1},{"id":12,"customer":1,"total":null}]"#,
    );
    let up = c.upload(&parquet_bytes(), "scores.parquet");
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/scores/loads"),
        json!({"mode": "replace", "upload_id": up}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["row_count"], 4);

    let q = c.sql(
        &db,
        "SELECT c.name, COUNT(o.id) AS n, SUM(o.total) AS spent, s.score \
         FROM customers c LEFT JOIN orders o ON o.customer = c.id \
         LEFT JOIN public.scores s ON s.id = c.id \
         GROUP BY c.id ORDER BY c.id",
    );
    assert_eq!(q["rows"], json!([["Ann, A.", 2, 9.5, 0.5], ["Bob", 0, null, null], ["Cy", 1, 1.0, 2.25]]));
    assert_eq!(q["columns"], json!(["name", "n", "spent", "score"]));

    // Three-part names and booleans / timestamps survive.
    let q = c.sql(&db, "SELECT vip, joined FROM main.public.customers ORDER BY id");
    assert_eq!(
        q["rows"],
        json!([[true, "2024-01-02T03:04:05Z"], [false, null], [true, "2024-02-01T00:00:00Z"]])
    );

    // information_schema reflects inferred types.
    let is = c.get("/v1/information_schema?include_columns=true&table=customers").json();
    let cols: Vec<String> = is["tables"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}:{}", c["name"].as_str().unwrap(), c["data_type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cols,
        vec!["id:Int64", "name:Utf8", "vip:Boolean", "joined:Timestamp(Microsecond, Some(\"UTC\"))"]
    );
}

#[test]
fn append_upsert_overrides_and_result_loads() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("d");
    let path = format!("/v1/databases/{db}/schemas/public/tables/t/loads");
    c.load_inline(&db, "t", "csv", "id,v\n1,a\n2,b\n");
    let r = c.post(&path, json!({"mode": "append", "format": "csv", "data": "id,v,extra\n3,c,x\n"}));
    assert_eq!(r.json()["row_count"], 3);
    let r =
        c.post(&path, json!({"mode": "upsert", "key": ["id"], "format": "csv", "data": "id,v\n2,B\n4,d\n"}));
    assert_eq!(r.json()["row_count"], 4, "{}", r.text());
    let q = c.sql(&db, "SELECT id, v, extra FROM t ORDER BY id");
    assert_eq!(q["rows"], json!([[1, "a", null], [2, "B", null], [3, "c", "x"], [4, "d", null]]));
    // Explicit column types.
    let r = c.post(
        &path,
        json!({"mode": "replace", "format": "csv", "data": "id,code\n1,007\n", "columns": {"code": "VARCHAR", "id": {"type": "DOUBLE"}}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.sql(&db, "SELECT id, code FROM t")["rows"], json!([[1.0, "007"]]));
    let r = c.post(
        &path,
        json!({"mode": "replace", "format": "csv", "data": "id\nx\n", "columns": {"id": "BIGINT"}}),
    );
    assert_eq!(r.status, 400);
    // Load a table from a query result.
    let q = c.sql(&db, "SELECT id * 10 AS big FROM synthetic(5)");
    let r = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/copy/loads"),
        json!({"mode": "replace", "result_id": q["result_id"]}),
    );
    assert_eq!(r.json()["row_count"], 5);
    assert_eq!(c.sql(&db, "SELECT SUM(big) FROM copy")["rows"], json!([[100]]));
    // Writes through SQL are refused.
    let r = c.post_db("/v1/query", &db, json!({"sql": "DELETE FROM t"}));
    assert_eq!(r.status, 400);
    // Inline data over the limit is 413.
    let small = Emulator::builder().max_inline_load_bytes(100).start().unwrap();
    let c2 = Client::new(&small);
    let db2 = c2.database("x");
    let r = c2.post(
        &format!("/v1/databases/{db2}/schemas/public/tables/t/loads"),
        json!({"mode": "replace", "format": "csv", "data": "a\n".repeat(100)}),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[test]
fn numbers_are_lossless_in_json() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("n");
    c.load_inline(&db, "n", "json", r#"[{"big": 9007199254740993, "f": 0.1}]"#);
    let r = c.post_db("/v1/query", &db, json!({"sql": "SELECT big, f FROM n"}));
    let text = r.text();
    assert!(text.contains("[[9007199254740993,0.1]]"), "{text}");
}

#[test]
fn synthetic_rows_arrow_and_paging() {
    let emu = Emulator::builder().preview_rows(100).start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("s");
    let started = Instant::now();
    let q = c.sql(&db, "SELECT * FROM synthetic(100000)");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(q["truncated"], true);
    assert_eq!(q["total_row_count"], 100_000);
    assert_eq!(q["row_count"], 100);
    assert_eq!(q["rows"].as_array().unwrap().len(), 100);
    assert!(q["warning"].is_string());
    let rid = q["result_id"].as_str().unwrap();

    // Arrow: by format and by Accept.
    let r = c.get_db(&format!("/v1/results/{rid}?format=arrow"), &db);
    assert_eq!(r.header("x-total-row-count"), Some("100000"));
    let (rows, batches, names) = decode_arrow(&r.body);
    assert_eq!(rows, 100_000);
    assert!(batches >= 2);
    assert_eq!(names, vec!["id", "amount", "name", "flag", "maybe", "ts"]);
    let r = c.call(
        "GET",
        &format!("/v1/results/{rid}?offset=99990"),
        &[("x-database-id", &db), ("accept", "application/vnd.apache.arrow.stream")],
        None,
    );
    assert_eq!(r.header("content-type"), Some("application/vnd.apache.arrow.stream"));
    assert_eq!(decode_arrow(&r.body).0, 10);

    // JSON pages following Link rel=next.
    let mut url = format!("/v1/results/{rid}?limit=30000&format=json");
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let r = c.get_db(&url, &db);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-total-row-count"), Some("100000"));
        let v = r.json();
        seen += v["rows"].as_array().unwrap().len();
        pages += 1;
        match r.header("link") {
            Some(l) => {
                assert!(l.ends_with("; rel=\"next\""), "{l}");
                let full = &l[1..l.find('>').unwrap()];
                url = full.strip_prefix(&c.base).unwrap().to_string();
            }
            None => break,
        }
    }
    assert_eq!((seen, pages), (100_000, 4));

    // POST /v1/query answering Arrow directly.
    let r = c.call(
        "POST",
        "/v1/query",
        &[("x-database-id", &db), ("accept", "application/vnd.apache.arrow.stream")],
        Some(br#"{"sql":"SELECT * FROM synthetic(250)"}"#.to_vec()),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-total-row-count"), Some("250"));
    assert!(r.header("x-query-run-id").is_some());
    assert!(r.header("x-result-id").is_some());
    assert!(r.header("x-query-warning").is_some(), "250 > preview of 100");
    assert_eq!(decode_arrow(&r.body).0, 250);
}

#[test]
fn result_lifecycle_202_409_413() {
    let emu = Emulator::builder()
        .async_result_delay(Duration::from_millis(1500))
        .max_json_result_bytes(1000)
        .start()
        .unwrap();
    let c = Client::new(&emu);
    let db = c.database("r");
    let r = c.post_db("/v1/query", &db, json!({"sql": "SELECT 42 AS x", "async": true}));
    assert_eq!(r.status, 202);
    let rid = r.header("x-result-id").unwrap().to_string();
    let run = r.json()["query_run_id"].as_str().unwrap().to_string();
    let p = c.get_db(&format!("/v1/results/{rid}"), &db);
    assert_eq!(p.status, 202);
    assert!(p.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert!(matches!(p.json()["status"].as_str(), Some("pending" | "processing")));
    assert_eq!(c.get_db(&format!("/v1/query-runs/{run}"), &db).json()["status"], "running");
    wait_until(|| c.get_db(&format!("/v1/results/{rid}"), &db).status != 202);
    let p = c.get_db(&format!("/v1/results/{rid}"), &db);
    assert_eq!(p.status, 200);
    assert_eq!(p.json()["rows"], json!([[42]]));
    assert_eq!(c.get_db(&format!("/v1/query-runs/{run}"), &db).json()["status"], "succeeded");

    let r = c.post_db("/v1/query", &db, json!({"sql": "SELECT nope FROM nowhere", "async": true}));
    let bad = r.header("x-result-id").unwrap().to_string();
    wait_until(|| c.get_db(&format!("/v1/results/{bad}"), &db).status != 202);
    let p = c.get_db(&format!("/v1/results/{bad}"), &db);
    assert_eq!(p.status, 409);
    assert_eq!(p.json()["status"], "failed");
    assert!(p.json()["error_message"].as_str().unwrap().contains("nowhere"));

    let q = c.sql(&db, "SELECT * FROM synthetic(1000)");
    let rid = q["result_id"].as_str().unwrap();
    let p = c.get_db(&format!("/v1/results/{rid}"), &db);
    assert_eq!(p.status, 413);
    assert_eq!(p.json()["error"]["code"], "RESULT_TOO_LARGE");
    // limit=0 is the cheap readiness probe.
    let p = c.get_db(&format!("/v1/results/{rid}?limit=0"), &db);
    assert_eq!(p.status, 200);
    assert_eq!(p.json()["total_row_count"], 1000);
    // Arrow is never size-limited.
    let p = c.get_db(&format!("/v1/results/{rid}?format=arrow"), &db);
    assert_eq!(decode_arrow(&p.body).0, 1000);
    // Results are scoped to their database.
    let other = c.database("other");
    assert_eq!(c.get_db(&format!("/v1/results/{rid}"), &other).status, 404);
}

#[test]
fn name_resolution_across_catalogs() {
    let emu = Emulator::start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("a");
    c.load_inline(&db, "t", "csv", "x\n1\n");
    let conn =
        c.post("/v1/connections", json!({"name": "ext", "source_type": "managed", "config": {}})).json();
    let cid = conn["id"].as_str().unwrap();
    let r = c.post(
        &format!("/v1/connections/{cid}/schemas/s/tables/u/loads"),
        json!({"mode": "replace", "format": "csv", "data": "y\n2\n"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.post(&format!("/v1/databases/{db}/catalogs"), json!({"connection_id": cid, "alias": "x2"}));
    assert_eq!(r.status, 204);
    let q = c.sql(&db, "SELECT t.x, \"x2\".\"s\".\"u\".y FROM t, x2.s.u");
    assert_eq!(q["rows"], json!([[1, 2]]));
    // Query without a database sees every connection by name.
    let r = c.post("/v1/query", json!({"sql": "SELECT y FROM ext.s.u"}));
    assert_eq!(r.json()["rows"], json!([[2]]));
    // default_schema in the request.
    let r = c.post_db("/v1/query", &db, json!({"sql": "SELECT COUNT(*) FROM t", "default_schema": "public"}));
    assert_eq!(r.json()["rows"], json!([[1]]));
    let r = c.post("/v1/query", json!({"sql": "SELECT 1", "database_id": "db_x"}));
    assert_eq!(r.status, 404);
    let r = c.call(
        "POST",
        "/v1/query",
        &[("x-database-id", &db)],
        Some(serde_json::to_vec(&json!({"sql": "SELECT 1", "database_id": "other"})).unwrap()),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn old_results_are_evicted_past_the_row_budget() {
    let emu = Emulator::builder().max_stored_rows(10).start().unwrap();
    let c = Client::new(&emu);
    let db = c.database("ev");
    let a = c.sql(&db, "SELECT * FROM synthetic(8)");
    let b = c.sql(&db, "SELECT * FROM synthetic(8)");
    let get = |v: &serde_json::Value| {
        c.get_db(&format!("/v1/results/{}", v["result_id"].as_str().unwrap()), &db).status
    };
    assert_eq!(get(&a), 404);
    assert_eq!(get(&b), 200);
}
