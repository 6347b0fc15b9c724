//! Drive every operation of the spec and validate each response (status listed, JSON body
//! matching the schema) against /work/shared/api/hotdata-openapi.json.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::spec::Spec;
use common::{Client, R, wait_until};
use hotdata_emulator::Emulator;
use serde_json::json;

struct Checker {
    spec: Spec,
    seen: BTreeSet<String>,
    errs: Vec<String>,
}

/// Prism in proxy mode in front of the emulator: `prism proxy <spec> <emulator>`. The binary
/// is `HOTDATA_PRISM`, else the one `npm ci --prefix tests` installs.
/// Its `sl-violations` header reports what it found; the process dies with the test.
struct Prism(std::process::Child);

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_prism(upstream: &str) -> Option<(Prism, String)> {
    let installed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/prism");
    let exe = std::env::var("HOTDATA_PRISM")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| installed.exists().then(|| installed.display().to_string()))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new(exe)
        .args(["proxy", common::spec::spec_path().to_str().unwrap(), upstream])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start prism");
    let prism = Prism(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "prism did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some((prism, format!("http://127.0.0.1:{port}")))
}

impl Checker {
    fn check(&mut self, op: &str, r: &R, want: u16) -> serde_json::Value {
        if r.status != want {
            self.errs.push(format!("{op}: expected {want}, got {} {}", r.status, r.text()));
        }
        self.errs.extend(self.spec.check(op, r.status, r.header("content-type"), &r.body));
        self.seen.insert(op.to_string());
        if r.header("content-type") == Some("application/json") { r.json() } else { json!(null) }
    }
}

#[test]
fn every_operation_conforms_to_the_spec() {
    let emu = Emulator::builder()
        .job_step(Duration::from_millis(1000))
        .async_result_delay(Duration::from_millis(2000))
        .max_json_result_bytes(4000)
        .min_part_size(16)
        .single_put_max(64)
        .start()
        .unwrap();
    let mut c = Client::new(&emu);
    let prism = start_prism(emu.base_url());
    if let Some((_, url)) = &prism {
        c.base = url.clone();
    }
    let mut k = Checker { spec: Spec::load(), seen: BTreeSet::new(), errs: vec![] };

    // Workspaces (Error envelope).
    let r = c.raw("GET", &format!("{}/v1/workspaces", c.base), &[], None).unwrap();
    let v = k.check("list_workspaces", &r, 401);
    assert!(v["error"].is_string(), "plain envelope: {v}");
    k.check("list_workspaces", &c.get("/v1/workspaces"), 200);
    let ws = k.check("create_workspace", &c.post("/v1/workspaces", json!({"name": "other"})), 201);
    k.check("create_workspace", &c.post("/v1/workspaces", json!({"name": ""})), 422);
    let ws_id = ws["workspace"]["public_id"].as_str().unwrap().to_string();
    k.check("delete_workspace", &c.delete(&format!("/v1/workspaces/{ws_id}")), 204);
    k.check("delete_workspace", &c.delete(&format!("/v1/workspaces/{ws_id}")), 404);

    // Databases.
    let d = k.check(
        "create_database",
        &c.post(
            "/v1/databases",
            json!({"name": "main_db", "schemas": [{"name": "sales", "tables": [{"name": "t0"}]}]}),
        ),
        201,
    );
    let db = d["id"].as_str().unwrap().to_string();
    k.check(
        "create_database",
        &c.post("/v1/databases", json!({"name": "main_db", "if_not_exists": true})),
        200,
    );
    let v = k.check("create_database", &c.post("/v1/databases", json!({"name": "main_db"})), 409);
    assert!(v["error"]["code"].is_string(), "api envelope: {v}");
    k.check("create_database", &c.post("/v1/databases", json!({"name": 5})), 400);
    k.check("create_database", &c.post("/v1/databases", json!({})), 201);
    let p1 = k.check("list_databases", &c.get("/v1/databases?limit=1"), 200);
    assert_eq!(p1["has_more"], true);
    let cur = p1["next_cursor"].as_str().unwrap();
    let p2 = k.check("list_databases", &c.get(&format!("/v1/databases?limit=1&cursor={cur}")), 200);
    assert_ne!(p1["databases"][0]["id"], p2["databases"][0]["id"]);
    k.check("list_databases", &c.get("/v1/databases?search=main"), 200);
    let n = k.check("count_databases", &c.get("/v1/databases/count"), 200);
    assert_eq!(n["total"], 2);
    k.check("lookup_database_by_name", &c.get("/v1/databases/by-name?name=main_db"), 200);
    k.check("lookup_database_by_name", &c.get("/v1/databases/by-name?name=nope"), 404);
    k.check("lookup_database_by_name", &c.get("/v1/databases/by-name"), 400);
    k.check("get_database", &c.get(&format!("/v1/databases/{db}")), 200);
    k.check("get_database", &c.get("/v1/databases/db_missing"), 404);

    // Database-default-catalog tables.
    k.check(
        "add_database_schema",
        &c.post(&format!("/v1/databases/{db}/schemas"), json!({"name": "extra"})),
        201,
    );
    k.check(
        "add_database_schema",
        &c.post(&format!("/v1/databases/{db}/schemas"), json!({"name": "extra"})),
        409,
    );
    k.check(
        "add_database_table",
        &c.post(
            &format!("/v1/databases/{db}/schemas/public/tables"),
            json!({"name": "orders", "key": ["id"]}),
        ),
        201,
    );
    k.check(
        "add_database_table",
        &c.post(&format!("/v1/databases/{db}/schemas/public/tables"), json!({"name": "orders"})),
        409,
    );
    k.check(
        "add_database_table",
        &c.post(&format!("/v1/databases/{db}/schemas/nope/tables"), json!({"name": "x"})),
        404,
    );
    let l = k.check("load_database_table", &c.post(&format!("/v1/databases/{db}/schemas/public/tables/orders/loads"), json!({"mode": "replace", "format": "csv", "data": "id,amount,city\n1,2.5,Oslo\n2,3.5,Rome\n3,,Oslo\n"})), 200);
    assert_eq!(l["row_count"], 3);
    k.check(
        "load_database_table",
        &c.post(
            &format!("/v1/databases/{db}/schemas/public/tables/orders/loads"),
            json!({"mode": "bogus", "data": "a\n1\n"}),
        ),
        400,
    );
    k.check(
        "set_database_table_constant_per_key",
        &c.put(
            &format!("/v1/databases/{db}/schemas/public/tables/orders/constant-per-key"),
            json!({"constant_per_key": ["city"]}),
        ),
        200,
    );
    k.check(
        "set_database_table_constant_per_key",
        &c.put(
            &format!("/v1/databases/{db}/schemas/public/tables/orders/constant-per-key"),
            json!({"constant_per_key": ["nope"]}),
        ),
        400,
    );
    let job = k.check("load_database_table", &c.post(&format!("/v1/databases/{db}/schemas/public/tables/events/loads"), json!({"mode": "replace", "format": "json", "data": "[{\"id\":1,\"kind\":\"a\"},{\"id\":2,\"kind\":\"b\"}]", "async": true})), 202);
    let job_id = job["id"].as_str().unwrap().to_string();
    k.check(
        "load_database_table",
        &c.post(
            &format!("/v1/databases/{db}/schemas/public/tables/events/loads"),
            json!({"mode": "append", "data": "[{\"id\":3}]"}),
        ),
        409,
    );

    // Connections and managed tables.
    let conn = k.check(
        "create_connection",
        &c.post("/v1/connections", json!({"name": "lake", "source_type": "managed", "config": {}})),
        201,
    );
    let cid = conn["id"].as_str().unwrap().to_string();
    k.check(
        "create_connection",
        &c.post("/v1/connections", json!({"name": "lake", "source_type": "managed", "config": {}})),
        409,
    );
    k.check(
        "create_connection",
        &c.post("/v1/connections", json!({"name": "pg", "source_type": "postgres", "config": {"host": "x"}})),
        201,
    );
    k.check(
        "create_connection",
        &c.post("/v1/connections", json!({"name": "bad name!", "source_type": "managed", "config": {}})),
        400,
    );
    k.check("list_connections", &c.get("/v1/connections"), 200);
    k.check("get_connection", &c.get(&format!("/v1/connections/{cid}")), 200);
    k.check("get_connection", &c.get("/v1/connections/nope"), 404);
    k.check(
        "add_managed_schema",
        &c.post(
            &format!("/v1/connections/{cid}/schemas"),
            json!({"name": "raw", "tables": [{"name": "people", "sorted_by": [{"column": "id"}]}]}),
        ),
        201,
    );
    k.check(
        "add_managed_schema",
        &c.post(&format!("/v1/connections/{cid}/schemas"), json!({"name": "raw"})),
        409,
    );
    k.check("add_managed_schema", &c.post("/v1/connections/nope/schemas", json!({"name": "raw"})), 404);
    k.check(
        "add_managed_table",
        &c.post(&format!("/v1/connections/{cid}/schemas/raw/tables"), json!({"name": "pets"})),
        201,
    );
    k.check(
        "add_managed_table",
        &c.post(&format!("/v1/connections/{cid}/schemas/raw/tables"), json!({"name": "pets"})),
        409,
    );
    let l = k.check("load_managed_table", &c.post(&format!("/v1/connections/{cid}/schemas/raw/tables/people/loads"), json!({"mode": "replace", "data": "id,name,age,active\n1,Ann,31,true\n2,Bob,,false\n3,Cy,45,true\n"})), 200);
    assert_eq!(l["row_count"], 3);
    k.check(
        "load_managed_table",
        &c.post(
            &format!("/v1/connections/{cid}/schemas/raw/tables/people/loads"),
            json!({"mode": "replace"}),
        ),
        400,
    );
    k.check(
        "load_managed_table",
        &c.post(
            "/v1/connections/nope/schemas/raw/tables/people/loads",
            json!({"mode": "replace", "data": "a\n1\n"}),
        ),
        404,
    );
    let lj = k.check(
        "load_managed_table",
        &c.post(
            &format!("/v1/connections/{cid}/schemas/raw/tables/pets/loads"),
            json!({"mode": "replace", "data": "name\nrex\n", "async": true}),
        ),
        202,
    );
    k.check(
        "set_managed_table_constant_per_key",
        &c.put(
            &format!("/v1/connections/{cid}/schemas/raw/tables/people/constant-per-key"),
            json!({"constant_per_key": ["name"]}),
        ),
        200,
    );
    k.check(
        "set_managed_table_constant_per_key",
        &c.put(
            &format!("/v1/connections/{cid}/schemas/raw/tables/nope/constant-per-key"),
            json!({"constant_per_key": []}),
        ),
        404,
    );
    k.check(
        "create_index",
        &c.post(
            &format!("/v1/connections/{cid}/tables/raw/people/indexes"),
            json!({"index_name": "by_age", "columns": ["age"]}),
        ),
        201,
    );
    k.check(
        "create_index",
        &c.post(
            &format!("/v1/connections/{cid}/tables/raw/people/indexes"),
            json!({"index_name": "by_age", "columns": ["age"]}),
        ),
        400,
    );
    k.check(
        "create_index",
        &c.post(
            &format!("/v1/connections/{cid}/tables/raw/nope/indexes"),
            json!({"index_name": "x", "columns": ["age"]}),
        ),
        404,
    );
    k.check(
        "create_index",
        &c.post(
            &format!("/v1/connections/{cid}/tables/raw/people/indexes"),
            json!({"index_name": "vec", "columns": ["name"], "index_type": "vector", "async": true}),
        ),
        202,
    );
    k.check("list_indexes", &c.get(&format!("/v1/connections/{cid}/tables/raw/people/indexes")), 200);
    k.check("list_indexes", &c.get(&format!("/v1/connections/{cid}/tables/raw/nope/indexes")), 404);
    k.check("delete_index", &c.delete(&format!("/v1/connections/{cid}/tables/raw/people/indexes/vec")), 409);
    k.check(
        "delete_index",
        &c.delete(&format!("/v1/connections/{cid}/tables/raw/people/indexes/by_age")),
        204,
    );
    k.check(
        "delete_index",
        &c.delete(&format!("/v1/connections/{cid}/tables/raw/people/indexes/by_age")),
        404,
    );
    let prof = k.check(
        "get_table_profile",
        &c.get(&format!("/v1/connections/{cid}/tables/raw/people/profile")),
        200,
    );
    assert_eq!(prof["row_count"], 3);
    k.check("get_table_profile", &c.get(&format!("/v1/connections/{cid}/tables/raw/nope/profile")), 404);
    let d_conn = d["default_connection_id"].as_str().unwrap().to_string();
    k.check(
        "get_table_profile",
        &c.get(&format!("/v1/connections/{d_conn}/tables/public/orders/profile")),
        200,
    );

    // Catalogs.
    k.check(
        "attach_database_catalog",
        &c.post(&format!("/v1/databases/{db}/catalogs"), json!({"connection_id": cid, "alias": "lake"})),
        204,
    );
    k.check(
        "attach_database_catalog",
        &c.post(&format!("/v1/databases/{db}/catalogs"), json!({"connection_id": cid})),
        409,
    );
    k.check(
        "attach_database_catalog",
        &c.post(&format!("/v1/databases/{db}/catalogs"), json!({"connection_id": "nope"})),
        404,
    );
    k.check("attach_database_catalog", &c.post(&format!("/v1/databases/{db}/catalogs"), json!({})), 400);
    let q = k.check("query", &c.post_db("/v1/query", &db, json!({"sql": "SELECT o.id, p.name FROM orders o JOIN lake.raw.people p ON p.id = o.id ORDER BY o.id"})), 200);
    assert_eq!(q["rows"], json!([[1, "Ann"], [2, "Bob"], [3, "Cy"]]));
    k.check("delete_connection", &c.delete(&format!("/v1/connections/{cid}")), 409);

    // Contexts.
    k.check(
        "upsert_database_context",
        &c.post(
            &format!("/v1/databases/{db}/context"),
            json!({"name": "glossary", "content": "orders are sales"}),
        ),
        200,
    );
    k.check(
        "upsert_database_context",
        &c.post(&format!("/v1/databases/{db}/context"), json!({"name": "bad name", "content": "x"})),
        400,
    );
    k.check("list_database_contexts", &c.get(&format!("/v1/databases/{db}/context")), 200);
    k.check("list_database_contexts", &c.get("/v1/databases/nope/context"), 404);
    k.check("get_database_context", &c.get(&format!("/v1/databases/{db}/context/glossary")), 200);
    k.check("get_database_context", &c.get(&format!("/v1/databases/{db}/context/none")), 404);
    k.check("delete_database_context", &c.delete(&format!("/v1/databases/{db}/context/glossary")), 204);
    k.check("delete_database_context", &c.delete(&format!("/v1/databases/{db}/context/glossary")), 404);

    // Forks and lineage.
    let f = k.check(
        "fork_database",
        &c.post(&format!("/v1/databases/{db}/fork"), json!({"name": "fork1", "description": "try"})),
        201,
    );
    let fork = f["id"].as_str().unwrap().to_string();
    k.check("fork_database", &c.post(&format!("/v1/databases/{db}/fork"), json!({"name": "fork1"})), 409);
    k.check("fork_database", &c.post("/v1/databases/nope/fork", json!({})), 404);
    let f2 = k.check("fork_database", &c.post(&format!("/v1/databases/{fork}/fork"), json!({})), 201);
    let lin = k.check(
        "get_database_lineage",
        &c.get(&format!("/v1/databases/{}/lineage", f2["id"].as_str().unwrap())),
        200,
    );
    assert_eq!(lin["ancestors"].as_array().unwrap().len(), 2);
    assert_eq!(lin["root_id"], json!(db));
    k.check("get_database_lineage", &c.get(&format!("/v1/databases/{db}/lineage")), 200);
    k.check("get_database_lineage", &c.get("/v1/databases/nope/lineage"), 404);
    let fq = c.sql(&fork, "SELECT COUNT(*) FROM orders");
    assert_eq!(fq["rows"], json!([[3]]));

    // Bulk.
    let b = k.check(
        "bulk_create_databases",
        &c.post(
            "/v1/databases/bulk",
            json!({"count": 3, "name_template": "tenant-{n}", "idempotency_key": "k1"}),
        ),
        202,
    );
    let bid = b["batch_id"].as_str().unwrap().to_string();
    let bjob = b["job_id"].as_str().unwrap().to_string();
    wait_until(|| c.get(&format!("/v1/jobs/{bjob}")).json()["status"] == "succeeded");
    let bj = k.check("get_job", &c.get(&format!("/v1/jobs/{bjob}")), 200);
    assert_eq!(bj["result"]["created"], 3, "{bj}");
    let bb = k.check("get_database_batch", &c.get(&format!("/v1/databases/bulk/{bid}")), 200);
    assert_eq!(bb["created_count"], 3);
    k.check(
        "bulk_create_databases",
        &c.post(
            "/v1/databases/bulk",
            json!({"count": 3, "name_template": "tenant-{n}", "idempotency_key": "k1"}),
        ),
        202,
    );
    k.check("bulk_create_databases", &c.post("/v1/databases/bulk", json!({"count": 0})), 400);
    k.check(
        "bulk_create_databases",
        &c.post("/v1/databases/bulk", json!({"count": 1, "name_template": "tenant-{n}"})),
        409,
    );
    k.check("get_database_batch", &c.get(&format!("/v1/databases/bulk/{bid}")), 200);
    k.check("get_database_batch", &c.get("/v1/databases/bulk/nope"), 404);
    let n = c.get(&format!("/v1/databases/count?batch={bid}")).json();
    assert_eq!(n["total"], 3);
    let del = k.check("delete_database_batch", &c.delete(&format!("/v1/databases/bulk/{bid}")), 200);
    assert_eq!(del["deleted_count"], 3);
    k.check("delete_database_batch", &c.delete(&format!("/v1/databases/bulk/{bid}")), 404);

    // Embedding providers.
    let ep = k.check(
        "create_embedding_provider",
        &c.post(
            "/v1/embedding-providers",
            json!({"name": "oai", "provider_type": "openai", "api_key": "sk", "config": {"model": "m"}}),
        ),
        201,
    );
    let ep_id = ep["id"].as_str().unwrap().to_string();
    k.check(
        "create_embedding_provider",
        &c.post("/v1/embedding-providers", json!({"name": "oai", "provider_type": "openai"})),
        409,
    );
    k.check("create_embedding_provider", &c.post("/v1/embedding-providers", json!({"name": "x"})), 400);
    k.check("list_embedding_providers", &c.get("/v1/embedding-providers"), 200);
    k.check("get_embedding_provider", &c.get(&format!("/v1/embedding-providers/{ep_id}")), 200);
    k.check("get_embedding_provider", &c.get("/v1/embedding-providers/nope"), 404);
    k.check(
        "update_embedding_provider",
        &c.put(&format!("/v1/embedding-providers/{ep_id}"), json!({"name": "oai2"})),
        200,
    );
    k.check("update_embedding_provider", &c.put("/v1/embedding-providers/nope", json!({})), 404);
    k.check("delete_embedding_provider", &c.delete(&format!("/v1/embedding-providers/{ep_id}")), 204);
    k.check("delete_embedding_provider", &c.delete(&format!("/v1/embedding-providers/{ep_id}")), 404);

    // Indexes across a database, information_schema.
    k.check("list_indexes_collection", &c.get_db("/v1/indexes", &db), 200);
    k.check("list_indexes_collection", &c.get("/v1/indexes"), 400);
    k.check("list_indexes_collection", &c.get_db("/v1/indexes", "nope"), 404);
    k.check("list_indexes_collection", &c.get_db("/v1/indexes?index_type=weird", &db), 400);
    let is =
        k.check("information_schema", &c.get("/v1/information_schema?include_columns=true&limit=2"), 200);
    assert_eq!(is["has_more"], true);
    k.check("information_schema", &c.get(&format!("/v1/information_schema?connection_id={cid}")), 200);
    k.check("information_schema", &c.get("/v1/information_schema?connection_id=nope"), 404);

    // Jobs (wait for the async ones to finish).
    wait_until(|| c.get(&format!("/v1/jobs/{job_id}")).json()["status"] == "succeeded");
    let j = k.check("get_job", &c.get(&format!("/v1/jobs/{job_id}")), 200);
    assert_eq!(j["status"], "succeeded", "{j}");
    k.check("get_job", &c.get(&format!("/v1/jobs/{}", lj["id"].as_str().unwrap())), 200);
    k.check("get_job", &c.get("/v1/jobs/nope"), 404);
    k.check("list_jobs", &c.get("/v1/jobs?job_type=managed_load&status=succeeded"), 200);
    k.check("list_jobs", &c.get("/v1/jobs"), 200);
    wait_until(|| {
        c.get("/v1/jobs").json()["jobs"].as_array().unwrap().iter().all(|j| j["status"] == "succeeded")
    });
    let all = k.check("list_jobs", &c.get("/v1/jobs"), 200);
    let types: BTreeSet<&str> =
        all["jobs"].as_array().unwrap().iter().map(|j| j["job_type"].as_str().unwrap()).collect();
    assert!(types.contains("create_index") && types.contains("managed_load"), "{types:?}");

    // Saved queries.
    let s = k.check("create_saved_query", &c.post("/v1/queries", json!({"name": "top", "sql": "SELECT id FROM orders WHERE amount > 1 ORDER BY id LIMIT 2", "tags": ["a"]})), 201);
    let sq = s["id"].as_str().unwrap().to_string();
    k.check("create_saved_query", &c.post("/v1/queries", json!({"name": "x"})), 400);
    k.check("list_saved_queries", &c.get("/v1/queries?limit=10"), 200);
    k.check("get_saved_query", &c.get(&format!("/v1/queries/{sq}")), 200);
    k.check("get_saved_query", &c.get("/v1/queries/nope"), 404);
    let u = k.check(
        "update_saved_query",
        &c.put(&format!("/v1/queries/{sq}"), json!({"sql": "SELECT COUNT(*) AS n FROM orders"})),
        200,
    );
    assert_eq!(u["latest_version"], 2);
    k.check("update_saved_query", &c.put(&format!("/v1/queries/{sq}"), json!({"name": ""})), 400);
    k.check("update_saved_query", &c.put("/v1/queries/nope", json!({})), 404);
    k.check("list_saved_query_versions", &c.get(&format!("/v1/queries/{sq}/versions")), 200);
    k.check("list_saved_query_versions", &c.get("/v1/queries/nope/versions"), 404);
    let e =
        k.check("execute_saved_query", &c.post_db(&format!("/v1/queries/{sq}/execute"), &db, json!({})), 200);
    assert_eq!(e["rows"], json!([[3]]));
    let e = k.check(
        "execute_saved_query",
        &c.post_db(&format!("/v1/queries/{sq}/execute"), &db, json!({"version": 1})),
        200,
    );
    assert_eq!(e["rows"], json!([[1], [2]]));
    k.check(
        "execute_saved_query",
        &c.post_db(&format!("/v1/queries/{sq}/execute"), &db, json!({"version": 9})),
        404,
    );
    k.check("execute_saved_query", &c.post(&format!("/v1/queries/{sq}/execute"), json!({})), 400);

    // Query and results.
    let q =
        k.check("query", &c.post_db("/v1/query", &db, json!({"sql": "SELECT * FROM synthetic(300)"})), 200);
    let rid = q["result_id"].as_str().unwrap().to_string();
    let run_id = q["query_run_id"].as_str().unwrap().to_string();
    k.check("query", &c.post_db("/v1/query", &db, json!({"sql": "SELEC nonsense"})), 400);
    k.check("query", &c.post_db("/v1/query", "nope", json!({"sql": "SELECT 1"})), 404);
    let arrow = c.call(
        "POST",
        "/v1/query",
        &[("x-database-id", &db), ("accept", "application/vnd.apache.arrow.stream")],
        Some(serde_json::to_vec(&json!({"sql": "SELECT 1 AS x"})).unwrap()),
    );
    k.check("query", &arrow, 200);
    let a = k.check(
        "query",
        &c.post_db("/v1/query", &db, json!({"sql": "SELECT * FROM synthetic(10)", "async": true})),
        202,
    );
    let async_rid = result_of_run(&c, &db, &a);
    let bad = c.post_db("/v1/query", &db, json!({"sql": "SELECT * FROM missing_table", "async": true}));
    k.check("query", &bad, 202);
    let bad_rid = bad.header("x-result-id").unwrap().to_string();
    k.check("get_result", &c.get_db(&format!("/v1/results/{async_rid}"), &db), 202);
    k.check("list_query_runs", &c.get_db("/v1/query-runs?limit=2", &db), 200);
    k.check("list_query_runs", &c.get("/v1/query-runs"), 400);
    k.check("list_query_runs", &c.get_db("/v1/query-runs?status=weird", &db), 400);
    k.check("list_query_runs", &c.get_db("/v1/query-runs", "nope"), 404);
    k.check("get_query_run", &c.get_db(&format!("/v1/query-runs/{run_id}"), &db), 200);
    k.check(
        "get_query_run",
        &c.get_db(&format!("/v1/query-runs/{}", a["query_run_id"].as_str().unwrap()), &db),
        200,
    );
    k.check("get_query_run", &c.get_db("/v1/query-runs/nope", &db), 404);
    k.check("get_query_run", &c.get(&format!("/v1/query-runs/{run_id}")), 400);
    k.check("list_results", &c.get_db("/v1/results?limit=5", &db), 200);
    k.check("list_results", &c.get("/v1/results"), 400);
    k.check("list_results", &c.get_db("/v1/results", "nope"), 404);
    k.check("get_result", &c.get_db(&format!("/v1/results/{rid}?limit=10&offset=5"), &db), 200);
    k.check("get_result", &c.get_db(&format!("/v1/results/{rid}?format=arrow"), &db), 200);
    k.check("get_result", &c.get_db(&format!("/v1/results/{rid}?format=csv"), &db), 200);
    k.check("get_result", &c.get_db(&format!("/v1/results/{rid}?format=md"), &db), 200);
    k.check("get_result", &c.get_db(&format!("/v1/results/{rid}?format=parquet"), &db), 200);
    k.check("get_result", &c.get_db(&format!("/v1/results/{rid}"), &db), 413);
    k.check("get_result", &c.get_db(&format!("/v1/results/{rid}?limit=-1"), &db), 400);
    k.check("get_result", &c.get_db("/v1/results/nope", &db), 404);
    k.check("get_result", &c.get(&format!("/v1/results/{rid}")), 400);
    wait_until(|| c.get_db(&format!("/v1/results/{async_rid}"), &db).status == 200);
    k.check("get_result", &c.get_db(&format!("/v1/results/{async_rid}"), &db), 200);
    wait_until(|| c.get_db(&format!("/v1/results/{bad_rid}"), &db).status != 202);
    k.check("get_result", &c.get_db(&format!("/v1/results/{bad_rid}"), &db), 409);

    // Uploads.
    let s = k.check(
        "create_upload_session_handler",
        &c.post("/v1/uploads", json!({"declared_size_bytes": 10, "content_type": "text/csv"})),
        201,
    );
    assert_eq!(s["mode"], "single");
    let m = k.check(
        "create_upload_session_handler",
        &c.post("/v1/uploads", json!({"declared_size_bytes": 100, "part_size": 40})),
        201,
    );
    assert_eq!(m["part_urls"].as_array().unwrap().len(), 3);
    let st = k.check("create_upload_session_handler", &c.post("/v1/uploads", json!({"part_size": 40})), 201);
    assert!(st.get("part_urls").is_none());
    k.check("create_upload_session_handler", &c.post("/v1/uploads", json!({"declared_size_bytes": -1})), 400);
    k.check(
        "create_upload_sessions_batch_handler",
        &c.post("/v1/uploads/batch", json!({"uploads": [{"declared_size_bytes": 1}, {}]})),
        201,
    );
    k.check(
        "create_upload_sessions_batch_handler",
        &c.post("/v1/uploads/batch", json!({"uploads": []})),
        400,
    );
    let sid = st["upload_id"].as_str().unwrap();
    let tok = st["finalize_token"].as_str().unwrap();
    let mint = c.call(
        "POST",
        &format!("/v1/uploads/{sid}/parts"),
        &[("x-upload-finalize-token", tok)],
        Some(br#"{"part_numbers":[2,1]}"#.to_vec()),
    );
    let mv = k.check("mint_upload_parts_handler", &mint, 200);
    assert_eq!(mv["parts"][0]["part_number"], 1);
    k.check(
        "mint_upload_parts_handler",
        &c.call(
            "POST",
            &format!("/v1/uploads/{sid}/parts"),
            &[("x-upload-finalize-token", tok)],
            Some(br#"{"part_numbers":[0]}"#.to_vec()),
        ),
        400,
    );
    k.check(
        "mint_upload_parts_handler",
        &c.call(
            "POST",
            "/v1/uploads/nope/parts",
            &[("x-upload-finalize-token", tok)],
            Some(br#"{"part_numbers":[1]}"#.to_vec()),
        ),
        404,
    );
    let url = mv["parts"][0]["url"].as_str().unwrap();
    let put = c.raw("PUT", url, &[], Some(b"hello,world\n1,2\n".to_vec())).unwrap();
    let etag = put.header("etag").unwrap().to_string();
    let fin = c.call(
        "POST",
        &format!("/v1/uploads/{sid}/finalize"),
        &[("x-upload-finalize-token", tok)],
        Some(serde_json::to_vec(&json!({"parts": [{"part_number": 1, "e_tag": etag}]})).unwrap()),
    );
    k.check("finalize_upload_handler", &fin, 200);
    k.check(
        "finalize_upload_handler",
        &c.call(
            "POST",
            &format!("/v1/uploads/{sid}/finalize"),
            &[("x-upload-finalize-token", tok)],
            Some(b"{}".to_vec()),
        ),
        400,
    );
    k.check(
        "finalize_upload_handler",
        &c.call(
            "POST",
            "/v1/uploads/nope/finalize",
            &[("x-upload-finalize-token", tok)],
            Some(b"{}".to_vec()),
        ),
        404,
    );
    let l = c.post(
        &format!("/v1/databases/{db}/schemas/public/tables/hello/loads"),
        json!({"mode": "replace", "upload_id": sid, "format": "csv"}),
    );
    let lv = k.check("load_database_table", &l, 200);
    assert_eq!(lv["row_count"], 1);

    k.check("get_usage", &c.get("/v1/usage"), 200);

    // Deletes.
    k.check(
        "delete_managed_table",
        &c.delete(&format!("/v1/connections/{cid}/schemas/raw/tables/pets")),
        204,
    );
    k.check(
        "delete_managed_table",
        &c.delete(&format!("/v1/connections/{cid}/schemas/raw/tables/pets")),
        404,
    );
    k.check("detach_database_catalog", &c.delete(&format!("/v1/databases/{db}/catalogs/{cid}")), 204);
    k.check("detach_database_catalog", &c.delete(&format!("/v1/databases/{db}/catalogs/{cid}")), 404);
    // Forks inherited the attachment, so `lake` stays attached elsewhere.
    k.check("delete_connection", &c.delete(&format!("/v1/connections/{cid}")), 409);
    let tmp =
        c.post("/v1/connections", json!({"name": "tmp", "source_type": "managed", "config": {}})).json();
    let tmp = tmp["id"].as_str().unwrap();
    k.check("delete_connection", &c.delete(&format!("/v1/connections/{tmp}")), 204);
    k.check("delete_connection", &c.delete(&format!("/v1/connections/{tmp}")), 404);
    k.check("delete_saved_query", &c.delete(&format!("/v1/queries/{sq}")), 204);
    k.check("delete_saved_query", &c.delete(&format!("/v1/queries/{sq}")), 404);
    k.check("delete_database", &c.delete(&format!("/v1/databases/{fork}")), 204);
    k.check("delete_database", &c.delete(&format!("/v1/databases/{fork}")), 404);
    let lin = c.get(&format!("/v1/databases/{}/lineage", f2["id"].as_str().unwrap())).json();
    assert_eq!(lin["ancestors"][0]["exists"], false);

    // Presign unsupported.
    let emu2 = Emulator::builder().presign(false).start().unwrap();
    let c2 = Client::new(&emu2);
    let v = k.check(
        "create_upload_session_handler",
        &c2.post("/v1/uploads", json!({"declared_size_bytes": 1})),
        501,
    );
    assert_eq!(v["error"]["code"], "PRESIGN_UNSUPPORTED");
    k.check(
        "create_upload_sessions_batch_handler",
        &c2.post("/v1/uploads/batch", json!({"uploads": [{}]})),
        501,
    );

    let missing: Vec<String> = k.spec.operation_ids().difference(&k.seen).cloned().collect();
    assert!(missing.is_empty(), "operations never exercised: {missing:?}");
    assert_eq!(k.seen.len(), 63);
    assert!(k.errs.is_empty(), "spec violations:\n{}", k.errs.join("\n"));
}

/// The result id recorded on the query run of an async acknowledgement.
fn result_of_run(c: &Client, db: &str, a: &serde_json::Value) -> String {
    let run = a["query_run_id"].as_str().unwrap();
    let r = c.get_db(&format!("/v1/query-runs/{run}"), db).json();
    r["result_id"].as_str().unwrap().to_string()
}
