//! Connections, managed schemas and tables, loads, indexes, profiles and
//! information_schema.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde_json::{Value as Json, json};

use super::{Cx, cursor_page, limit_param, submit_job_json};
use crate::http::{ApiError, Obj, Resp, strip_nulls};
use crate::load::{self, Format};
use crate::results::ResultSet;
use crate::sql::{ColType, Dataset};
use crate::state::{Connection, Index, Stamp, Table};
use crate::util::now_rfc3339;

fn valid_name(name: &str, what: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::bad_request(format!(
            "invalid {what} `{name}`: use 1-128 letters, digits, `_` or `-`"
        )));
    }
    Ok(())
}

fn conn_info(c: &Connection) -> Json {
    json!({"id": c.id, "name": c.name, "source_type": c.source_type})
}

pub(crate) fn list(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let items: Vec<Json> = cx.ws.connections.values().map(conn_info).collect();
    Ok(Resp::json(200, &json!({"connections": items})))
}

pub(crate) fn create(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(false)?;
    let name = body.req_str("name")?;
    let source_type = body.req_str("source_type")?;
    valid_name(&name, "connection name")?;
    let config = match body.raw("config") {
        Some(Json::Object(m)) => Json::Object(m.clone()),
        Some(_) => return Err(ApiError::bad_request("`config` must be an object")),
        None => return Err(ApiError::bad_request("`config` is required")),
    };
    body.opt_str("secret_id")?;
    body.opt_str("secret_name")?;
    if cx.ws.connections.values().any(|c| c.name == name) {
        return Err(ApiError::conflict(format!("a connection named `{name}` already exists")));
    }
    let id = cx.ids.id("conn");
    let managed = source_type == "managed";
    cx.ws.connections.insert(
        id.clone(),
        Connection {
            id: id.clone(),
            name: name.clone(),
            source_type: source_type.clone(),
            config,
            database_id: None,
            schemas: BTreeMap::new(),
        },
    );
    let (status, err) = if managed {
        ("success", Json::Null)
    } else {
        (
            "failed",
            Json::String(format!(
                "the emulator cannot reach external `{source_type}` sources; use a managed connection"
            )),
        )
    };
    Ok(Resp::json(
        201,
        &json!({
            "id": id, "name": name, "source_type": source_type,
            "discovery_status": status, "discovery_error": err, "tables_discovered": 0,
        }),
    ))
}

pub(crate) fn get(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let c = conn(cx, cx.p(0))?;
    let n = c.schemas.values().map(BTreeMap::len).sum::<usize>();
    let synced = c.schemas.values().flat_map(|s| s.values()).filter(|t| t.last_sync.is_some()).count();
    Ok(Resp::json(
        200,
        &json!({"id": c.id, "name": c.name, "source_type": c.source_type, "table_count": n, "synced_table_count": synced}),
    ))
}

pub(crate) fn delete(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0).to_string();
    let c = conn(cx, &id)?;
    if let Some(db) = &c.database_id {
        return Err(ApiError::conflict(format!(
            "connection `{id}` is the default catalog of database `{db}`; delete the database instead"
        )));
    }
    if cx.ws.databases.values().any(|d| d.attachments.iter().any(|(c, _)| c == &id)) {
        return Err(ApiError::conflict(format!(
            "connection `{id}` is attached to a database; detach it first"
        )));
    }
    let c = cx.ws.connections.remove(&id).expect("checked");
    for t in c.schemas.values().flat_map(|s| s.values()) {
        cx.ws.sql.drop_table(&t.storage);
    }
    Ok(Resp::empty(204))
}

fn conn<'a>(cx: &'a Cx<'_>, id: &str) -> Result<&'a Connection, ApiError> {
    cx.ws.connections.get(id).ok_or_else(|| ApiError::not_found(format!("connection `{id}` not found")))
}

/// The managed connection a table route addresses (database routes use the default
/// catalog).
fn target_conn(cx: &Cx<'_>, via_db: bool) -> Result<String, ApiError> {
    let id = if via_db { cx.database(cx.p(0))?.default_connection_id.clone() } else { cx.p(0).to_string() };
    let c = conn(cx, &id)?;
    if !c.is_managed() {
        return Err(ApiError::bad_request(format!("connection `{id}` is not a managed connection")));
    }
    Ok(id)
}

/// `partition_by` / `sorted_by` items: objects with the required string fields.
fn keys(d: &Obj, field: &str, required: &[&str], optional: &[&str]) -> Result<Vec<Json>, ApiError> {
    let mut out = Vec::new();
    for item in d.objects(field)? {
        let mut m = serde_json::Map::new();
        for k in required {
            m.insert(k.to_string(), Json::String(item.req_str(k)?));
        }
        for k in optional {
            if let Some(v) = item.opt_str(k)? {
                m.insert(k.to_string(), Json::String(v));
            }
        }
        out.push(Json::Object(m));
    }
    Ok(out)
}

fn table_from_decl(cx: &mut Cx<'_>, d: &Obj) -> Result<Table, ApiError> {
    let name = d.req_str("name")?;
    valid_name(&name, "table name")?;
    let partition_by = keys(d, "partition_by", &["column", "transform"], &[])?;
    let sorted_by = keys(d, "sorted_by", &["column"], &["direction", "nulls"])?;
    let storage = cx.ws.storage_name();
    cx.ws.sql.create_table(&storage, &[]).map_err(|e| ApiError::new(500, "INTERNAL", e))?;
    Ok(Table {
        name,
        storage,
        columns: vec![],
        key: d.str_list("key")?.unwrap_or_default(),
        partition_by,
        sorted_by,
        constant_per_key: d.str_list("constant_per_key")?.unwrap_or_default(),
        row_count: 0,
        last_sync: None,
        locked_until: None,
        indexes: BTreeMap::new(),
    })
}

/// Declare a schema (and its tables) on a managed connection.
pub(crate) fn declare_schema(cx: &mut Cx<'_>, conn_id: &str, s: &Obj) -> Result<Vec<String>, ApiError> {
    let name = s.req_str("name")?;
    valid_name(&name, "schema name")?;
    let decls = s.objects("tables")?;
    let mut tables = BTreeMap::new();
    for d in &decls {
        let t = table_from_decl(cx, d)?;
        if tables.contains_key(&t.name) {
            return Err(ApiError::bad_request(format!("table `{}` declared twice", t.name)));
        }
        tables.insert(t.name.clone(), t);
    }
    let names: Vec<String> = tables.keys().cloned().collect();
    let c = cx.ws.connections.get_mut(conn_id).expect("checked");
    let entry = c.schemas.entry(name).or_default();
    for (k, v) in tables {
        entry.entry(k).or_insert(v);
    }
    Ok(names)
}

pub(crate) fn add_schema(cx: &mut Cx<'_>, via_db: bool) -> Result<Resp, ApiError> {
    let conn_id = target_conn(cx, via_db)?;
    let body = cx.req.json_obj(false)?;
    let name = body.req_str("name")?;
    valid_name(&name, "schema name")?;
    if cx.ws.connections[&conn_id].schemas.contains_key(&name) {
        return Err(ApiError::conflict(format!("schema `{name}` already exists")));
    }
    let tables = declare_schema(cx, &conn_id, &body)?;
    Ok(Resp::json(201, &json!({"connection_id": conn_id, "schema": name, "tables": tables})))
}

pub(crate) fn add_table(cx: &mut Cx<'_>, via_db: bool) -> Result<Resp, ApiError> {
    let conn_id = target_conn(cx, via_db)?;
    let schema = cx.p(1).to_string();
    let body = cx.req.json_obj(false)?;
    if !cx.ws.connections[&conn_id].schemas.contains_key(&schema) {
        return Err(ApiError::not_found(format!("schema `{schema}` not found")));
    }
    let t = table_from_decl(cx, &body)?;
    let c = cx.ws.connections.get_mut(&conn_id).expect("checked");
    let s = c.schemas.get_mut(&schema).expect("checked");
    if s.contains_key(&t.name) {
        return Err(ApiError::conflict(format!("table `{}` already exists", t.name)));
    }
    let name = t.name.clone();
    s.insert(name.clone(), t);
    Ok(Resp::json(201, &json!({"connection_id": conn_id, "schema": schema, "table": name})))
}

fn table_mut<'a>(
    cx: &'a mut Cx<'_>,
    conn_id: &str,
    schema: &str,
    table: &str,
) -> Result<&'a mut Table, ApiError> {
    cx.ws
        .connections
        .get_mut(conn_id)
        .ok_or_else(|| ApiError::not_found(format!("connection `{conn_id}` not found")))?
        .schemas
        .get_mut(schema)
        .ok_or_else(|| ApiError::not_found(format!("schema `{schema}` not found")))?
        .get_mut(table)
        .ok_or_else(|| ApiError::not_found(format!("table `{schema}.{table}` not found")))
}

pub(crate) fn delete_table(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let conn_id = target_conn(cx, false)?;
    let (schema, table) = (cx.p(1).to_string(), cx.p(2).to_string());
    let storage = table_mut(cx, &conn_id, &schema, &table)?.storage.clone();
    if let Some(s) = cx.ws.connections.get_mut(&conn_id).and_then(|c| c.schemas.get_mut(&schema)) {
        s.remove(&table);
    }
    cx.ws.sql.drop_table(&storage);
    Ok(Resp::empty(204))
}

pub(crate) fn constant_per_key(cx: &mut Cx<'_>, via_db: bool) -> Result<Resp, ApiError> {
    let conn_id = target_conn(cx, via_db)?;
    let (schema, table) = (cx.p(1).to_string(), cx.p(2).to_string());
    let body = cx.req.json_obj(true)?;
    let cols = body.str_list("constant_per_key")?.unwrap_or_default();
    let t = table_mut(cx, &conn_id, &schema, &table)?;
    if t.locked_until.is_some_and(|s| !s.reached()) {
        return Err(ApiError::new(409, "RESOURCE_LOCKED", "a load is in progress on this table"));
    }
    if !t.columns.is_empty()
        && let Some(bad) = cols.iter().find(|c| !t.columns.iter().any(|(n, _)| n == *c))
    {
        return Err(ApiError::bad_request(format!("unknown column `{bad}`")));
    }
    t.constant_per_key = cols.clone();
    Ok(Resp::json(
        200,
        &json!({"connection_id": conn_id, "schema": schema, "table": table, "constant_per_key": cols}),
    ))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Replace,
    Append,
    Upsert,
}

fn apply_load(
    cx: &mut Cx<'_>,
    conn_id: &str,
    schema: &str,
    table: &str,
    mode: Mode,
    key: Option<Vec<String>>,
    ds: Dataset,
) -> Result<(i64, Vec<(String, ColType)>), String> {
    let t = table_mut(cx, conn_id, schema, table).map_err(|e| e.message)?.clone();
    let sql = &mut cx.ws.sql;
    let names: Vec<String> = ds.columns.iter().map(|c| c.0.clone()).collect();
    let mut cols = t.columns.clone();
    let mode = if t.columns.is_empty() { Mode::Replace } else { mode };
    match mode {
        Mode::Replace => {
            sql.create_table(&t.storage, &ds.columns)?;
            cols = ds.columns.clone();
        }
        Mode::Append | Mode::Upsert => {
            for (n, ty) in &ds.columns {
                if !cols.iter().any(|(c, _)| c == n) {
                    sql.add_column(&t.storage, n, *ty)?;
                    cols.push((n.clone(), *ty));
                }
            }
            if mode == Mode::Upsert {
                let key = key.filter(|k| !k.is_empty()).unwrap_or(t.key.clone());
                if key.is_empty() {
                    return Err("upsert needs `key` (in the request or on the table)".into());
                }
                let idx: Vec<usize> = key
                    .iter()
                    .map(|k| {
                        names
                            .iter()
                            .position(|n| n == k)
                            .ok_or_else(|| format!("key column `{k}` is not in the data"))
                    })
                    .collect::<Result<_, _>>()?;
                let keys = ds.rows.iter().map(|r| idx.iter().map(|&i| r[i].clone()).collect()).collect();
                sql.delete_matching(&t.storage, &key, keys)?;
            }
        }
    }
    sql.insert(&t.storage, &names, ds.rows)?;
    let n = sql.count(&t.storage);
    let tm = table_mut(cx, conn_id, schema, table).map_err(|e| e.message)?;
    tm.columns = cols.clone();
    tm.row_count = n;
    tm.last_sync = Some(now_rfc3339());
    Ok((n, cols))
}

pub(crate) fn load(cx: &mut Cx<'_>, via_db: bool) -> Result<Resp, ApiError> {
    let conn_id = target_conn(cx, via_db)?;
    let (schema, table) = (cx.p(1).to_string(), cx.p(2).to_string());
    valid_name(&schema, "schema name")?;
    valid_name(&table, "table name")?;
    let body = cx.req.json_obj(false)?;
    let mode = match body.req_str("mode")?.to_ascii_lowercase().as_str() {
        "replace" | "overwrite" | "create_or_replace" => Mode::Replace,
        "append" | "insert" => Mode::Append,
        "upsert" | "merge" => Mode::Upsert,
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown mode `{other}` (use replace, append or upsert)"
            )));
        }
    };
    let is_async = body.opt_bool("async")?.unwrap_or(false) || cx.req.force_async;
    if let Some(ms) = body.opt_i64("async_after_ms")?
        && ms < 1000
    {
        return Err(ApiError::bad_request("`async_after_ms` must be at least 1000"));
    }
    let key = body.str_list("key")?;
    let mut overrides: HashMap<String, ColType> = HashMap::new();
    if let Some(cols) = body.raw("columns") {
        let m = cols.as_object().ok_or_else(|| ApiError::bad_request("`columns` must be an object"))?;
        for (k, v) in m {
            let tname = match v {
                Json::String(s) => s.clone(),
                Json::Object(o) => o
                    .get("type")
                    .and_then(Json::as_str)
                    .ok_or_else(|| ApiError::bad_request(format!("column `{k}` needs a `type`")))?
                    .to_string(),
                _ => return Err(ApiError::bad_request(format!("bad definition for column `{k}`"))),
            };
            let t = ColType::from_user(&tname).ok_or_else(|| {
                ApiError::bad_request(format!("unsupported type `{tname}` for column `{k}`"))
            })?;
            overrides.insert(k.clone(), t);
        }
    }
    let format = match body.opt_str("format")? {
        Some(f) => {
            Some(Format::parse(&f).ok_or_else(|| ApiError::bad_request(format!("unknown format `{f}`")))?)
        }
        None => None,
    };
    let sources = ["upload_id", "data", "result_id"].iter().filter(|k| body.raw(k).is_some()).count();
    if sources != 1 {
        return Err(ApiError::bad_request("give exactly one of `upload_id`, `data` or `result_id`"));
    }
    // Gather the data.
    let ds: Result<Dataset, String> = if let Some(up) = body.opt_str("upload_id")? {
        let u =
            cx.ws.uploads.get(&up).ok_or_else(|| ApiError::not_found(format!("upload `{up}` not found")))?;
        let Some(obj) = u.object.as_ref().filter(|_| u.finalized.is_some()).map(|o| o.bytes()) else {
            return Err(ApiError::bad_request(format!("upload `{up}` is not finalized")));
        };
        let f =
            format.unwrap_or_else(|| Format::sniff(u.content_type.as_deref(), u.filename.as_deref(), &obj));
        load::parse(f, obj, &overrides)
    } else if let Some(data) = body.opt_str("data")? {
        if data.len() > cx.sh.cfg.max_inline_load_bytes {
            return Err(ApiError::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!(
                    "inline data is {} bytes; the limit is {} (use an upload)",
                    data.len(),
                    cx.sh.cfg.max_inline_load_bytes
                ),
            ));
        }
        let bytes = Bytes::from(data.into_bytes());
        let f = format.unwrap_or_else(|| Format::sniff(None, None, &bytes));
        load::parse(f, bytes, &overrides)
    } else {
        let rid = body.req_str("result_id")?;
        let r = cx
            .ws
            .results
            .get(&rid)
            .ok_or_else(|| ApiError::not_found(format!("result `{rid}` not found")))?;
        match (&r.outcome, r.ready.reached()) {
            (Ok(rs), true) if !rs.native_types() => {
                return Err(ApiError::new(
                    400,
                    "UNSUPPORTED_FOR_ARROW_FIXTURE",
                    format!(
                        "result `{rid}` was stored from an Arrow IPC stream with column types a table \
                         cannot hold ({})",
                        rs.foreign_types().join(", ")
                    ),
                ));
            }
            (Ok(rs), true) => Ok(Dataset { columns: rs.col_types(), rows: rs.to_rows() }),
            (Err(e), true) => return Err(ApiError::bad_request(format!("result failed: {e}"))),
            _ => return Err(ApiError::bad_request(format!("result `{rid}` is not ready"))),
        }
    };
    // Make sure the schema and table exist (loads create them on managed catalogs).
    {
        let c = cx.ws.connections.get(&conn_id).expect("checked");
        let exists = c.schemas.get(&schema).is_some_and(|s| s.contains_key(&table));
        if !exists {
            let decl = Obj(serde_json::Map::from_iter([("name".to_string(), Json::String(table.clone()))]));
            let t = table_from_decl(cx, &decl)?;
            let c = cx.ws.connections.get_mut(&conn_id).expect("checked");
            c.schemas.entry(schema.clone()).or_default().insert(table.clone(), t);
        }
    }
    if let Ok(t) = table_mut(cx, &conn_id, &schema, &table)
        && t.locked_until.is_some_and(|s| !s.reached())
    {
        return Err(ApiError::new(
            409,
            "RESOURCE_LOCKED",
            format!("a load into `{schema}.{table}` is in progress; retry later"),
        ));
    }
    let outcome = ds.and_then(|ds| apply_load(cx, &conn_id, &schema, &table, mode, key, ds));
    let to_json = |(n, cols): &(i64, Vec<(String, ColType)>)| {
        json!({
            "connection_id": conn_id, "schema_name": schema, "table_name": table,
            "row_count": n, "arrow_schema_json": ResultSet::schema_json(cols),
        })
    };
    if is_async {
        let done = cx.job_done_at();
        if let Ok(t) = table_mut(cx, &conn_id, &schema, &table) {
            t.locked_until = Some(done);
        }
        let job_id = cx.new_job("managed_load", outcome.as_ref().map(to_json).map_err(Clone::clone));
        return Ok(Resp::json(202, &submit_job_json(&cx.ws.jobs[&job_id])));
    }
    match outcome {
        Ok(v) => Ok(Resp::json(200, &to_json(&v))),
        Err(e) => Err(ApiError::bad_request(format!("load failed: {e}"))),
    }
}

fn index_json(i: &Index) -> Json {
    strip_nulls(json!({
        "index_name": i.name,
        "index_type": i.index_type,
        "columns": i.columns,
        "status": if i.ready.reached() { "ready" } else { "pending" },
        "created_at": i.created.rfc3339(),
        "updated_at": if i.ready.reached() { i.ready.rfc3339() } else { i.created.rfc3339() },
        "algorithm": i.algorithm,
        "metric": i.metric,
        "nlist": i.nlist,
        "probe_fraction": i.probe_fraction,
        "source_column": i.source_column,
        "vector_precision": i.vector_precision,
    }))
}

pub(crate) fn list_indexes(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let conn_id = cx.p(0).to_string();
    let (schema, table) = (cx.p(1).to_string(), cx.p(2).to_string());
    let t = table_mut(cx, &conn_id, &schema, &table)?;
    let items: Vec<Json> = t.indexes.values().map(index_json).collect();
    Ok(Resp::json(200, &json!({"indexes": items})))
}

pub(crate) fn create_index(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let conn_id = cx.p(0).to_string();
    let (schema, table) = (cx.p(1).to_string(), cx.p(2).to_string());
    let body = cx.req.json_obj(false)?;
    table_mut(cx, &conn_id, &schema, &table)?;
    let name = body.req_str("index_name")?;
    valid_name(&name, "index name")?;
    let columns = body.str_list("columns")?.ok_or_else(|| ApiError::bad_request("`columns` is required"))?;
    if columns.is_empty() {
        return Err(ApiError::bad_request("`columns` must not be empty"));
    }
    let index_type = body.opt_str("index_type")?.unwrap_or_else(|| "sorted".into());
    if !matches!(index_type.as_str(), "sorted" | "bm25" | "vector") {
        return Err(ApiError::bad_request(format!("unknown index_type `{index_type}`")));
    }
    let algorithm = body.opt_str("algorithm")?;
    if let Some(a) = &algorithm
        && !matches!(a.as_str(), "hnsw" | "ivf")
    {
        return Err(ApiError::bad_request(format!("unknown algorithm `{a}`")));
    }
    let vp = body.opt_str("vector_precision")?;
    if let Some(p) = &vp
        && !matches!(p.as_str(), "float64" | "float32" | "float16" | "float8" | "int8")
    {
        return Err(ApiError::bad_request(format!("unknown vector_precision `{p}`")));
    }
    let nlist = body.opt_i64("nlist")?;
    if nlist.is_some_and(|n| !(1..=65_536).contains(&n)) {
        return Err(ApiError::bad_request("`nlist` must be between 1 and 65536"));
    }
    let probe = body.opt_f64("probe_fraction")?;
    if probe.is_some_and(|p| !(0.0..=1.0).contains(&p)) {
        return Err(ApiError::bad_request("`probe_fraction` must be between 0 and 1"));
    }
    if let Some(p) = body.opt_str("embedding_provider_id")?
        && !cx.ws.providers.contains_key(&p)
    {
        return Err(ApiError::bad_request(format!("embedding provider `{p}` not found")));
    }
    let is_async = body.opt_bool("async")?.unwrap_or(false) || cx.req.force_async;
    let vector = index_type == "vector";
    let t = table_mut(cx, &conn_id, &schema, &table)?;
    if t.indexes.contains_key(&name) {
        return Err(ApiError::bad_request(format!("index `{name}` already exists")));
    }
    if !t.columns.is_empty()
        && let Some(bad) = columns.iter().find(|c| !t.columns.iter().any(|(n, _)| n == *c))
    {
        return Err(ApiError::bad_request(format!("unknown column `{bad}`")));
    }
    let storage = t.storage.clone();
    let now = Stamp::now();
    let ready = if is_async { now.plus(cx.sh.cfg.job_step * 2) } else { now };
    let idx = Index {
        name: name.clone(),
        columns: columns.clone(),
        index_type: index_type.clone(),
        algorithm: if vector { Some(algorithm.unwrap_or_else(|| "hnsw".into())) } else { algorithm },
        metric: if vector {
            Some(body.opt_str("metric")?.unwrap_or_else(|| "cosine".into()))
        } else {
            body.opt_str("metric")?
        },
        nlist,
        probe_fraction: probe,
        source_column: body.opt_str("output_column")?.map(|_| columns[0].clone()),
        vector_precision: if vector { Some(vp.unwrap_or_else(|| "float32".into())) } else { vp },
        created: now,
        ready,
    };
    if index_type == "sorted" {
        cx.ws.sql.create_index(&format!("ix_{storage}_{name}"), &storage, &columns);
    }
    let mut done_json = index_json(&idx);
    done_json["status"] = json!("ready");
    table_mut(cx, &conn_id, &schema, &table)?.indexes.insert(name, idx.clone());
    if is_async {
        let job = cx.new_job("create_index", Ok(done_json));
        return Ok(Resp::json(202, &submit_job_json(&cx.ws.jobs[&job])));
    }
    Ok(Resp::json(201, &index_json(&idx)))
}

pub(crate) fn delete_index(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let conn_id = cx.p(0).to_string();
    let (schema, table, name) = (cx.p(1).to_string(), cx.p(2).to_string(), cx.p(3).to_string());
    let t = table_mut(cx, &conn_id, &schema, &table)?;
    let storage = t.storage.clone();
    match t.indexes.get(&name) {
        None => return Err(ApiError::not_found(format!("index `{name}` not found"))),
        Some(i) if !i.ready.reached() => {
            return Err(ApiError::conflict(format!("index `{name}` is still being built")));
        }
        Some(_) => {}
    }
    t.indexes.remove(&name);
    cx.ws.sql.drop_index(&format!("ix_{storage}_{name}"));
    Ok(Resp::empty(204))
}

pub(crate) fn list_indexes_collection(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let db = cx.database(cx.db.as_deref().unwrap_or(""))?.clone();
    let limit = limit_param(cx.req, 100, 1000)?;
    let (fc, fs, ft, fty) =
        (cx.req.q("connection_id"), cx.req.q("schema"), cx.req.q("table"), cx.req.q("index_type"));
    if let Some(c) = fc
        && !c.is_empty()
        && !cx.ws.connections.contains_key(c)
    {
        return Err(ApiError::not_found(format!("connection `{c}` not found")));
    }
    if let Some(t) = fty
        && !t.is_empty()
        && !matches!(t, "sorted" | "bm25" | "vector")
    {
        return Err(ApiError::bad_request(format!("unknown index_type `{t}`")));
    }
    let mut conns = vec![db.default_connection_id.clone()];
    conns.extend(db.attachments.iter().map(|(c, _)| c.clone()));
    let mut items = Vec::new();
    for cid in conns {
        if fc.is_some_and(|c| !c.is_empty() && c != cid) {
            continue;
        }
        let Some(c) = cx.ws.connections.get(&cid) else {
            continue;
        };
        for (sname, tables) in &c.schemas {
            if fs.is_some_and(|s| !s.is_empty() && s != sname) {
                continue;
            }
            for (tname, t) in tables {
                if ft.is_some_and(|x| !x.is_empty() && x != tname) {
                    continue;
                }
                for (iname, i) in &t.indexes {
                    if fty.is_some_and(|x| !x.is_empty() && x != i.index_type) {
                        continue;
                    }
                    let mut j = index_json(i);
                    j["connection_id"] = json!(cid);
                    j["schema_name"] = json!(sname);
                    j["table_name"] = json!(tname);
                    items.push((format!("{cid}/{sname}/{tname}/{iname}"), j));
                }
            }
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (page, has_more, next) = cursor_page(items, cx.req.q("cursor"), limit);
    Ok(Resp::json(
        200,
        &json!({"indexes": page.clone(), "count": page.len(), "limit": limit, "has_more": has_more, "next_cursor": next}),
    ))
}

pub(crate) fn profile(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let conn_id = cx.p(0).to_string();
    let (schema, table) = (cx.p(1).to_string(), cx.p(2).to_string());
    let conn_name = conn(cx, &conn_id)?.name.clone();
    let t = table_mut(cx, &conn_id, &schema, &table)?.clone();
    let rows = cx.ws.sql.count(&t.storage);
    let mut cols = Vec::new();
    for (name, ty) in &t.columns {
        let st = cx.ws.sql.column_stats(&t.storage, name, *ty);
        let present = rows - st.null_count;
        let profile = if present <= 0 {
            Json::Null
        } else {
            match ty {
                ColType::Int | ColType::Float => json!({
                    "type": "numeric", "min": st.min, "max": st.max, "mean": st.mean.unwrap_or(0.0),
                }),
                ColType::Bool => json!({
                    "type": "boolean", "true_count": st.true_count,
                    "false_count": present - st.true_count,
                }),
                ColType::Timestamp | ColType::Date => {
                    json!({"type": "temporal", "min": st.min, "max": st.max})
                }
                ColType::Text if !st.top.is_empty() => json!({
                    "type": "categorical",
                    "values": st.top.iter().map(|(v, c)| json!({"value": v, "count": c})).collect::<Vec<_>>(),
                }),
                ColType::Text => json!({
                    "type": "text", "min_length": st.min_len.unwrap_or(0),
                    "max_length": st.max_len.unwrap_or(0), "avg_length": st.avg_len.unwrap_or(0.0),
                }),
                ColType::Blob => Json::Null,
            }
        };
        cols.push(json!({
            "name": name,
            "data_type": ty.api_name(),
            "cardinality": st.cardinality,
            "null_count": st.null_count,
            "null_percentage": if rows > 0 { st.null_count as f64 * 100.0 / rows as f64 } else { 0.0 },
            "profile": profile,
        }));
    }
    Ok(Resp::json(
        200,
        &json!({
            "connection": conn_name, "schema": schema, "table": table,
            "row_count": rows.min(i32::MAX as i64), "synced_at": t.last_sync, "columns": cols,
        }),
    ))
}

pub(crate) fn information_schema(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let limit = limit_param(cx.req, 100, 1000)?;
    let include = cx.req.q_bool("include_columns")?.unwrap_or(false);
    let (fc, fs, ft) = (cx.req.q("connection_id"), cx.req.q("schema"), cx.req.q("table"));
    if let Some(c) = fc
        && !c.is_empty()
        && !cx.ws.connections.contains_key(c)
    {
        return Err(ApiError::not_found(format!("connection `{c}` not found")));
    }
    let mut items = Vec::new();
    for c in cx.ws.connections.values() {
        if fc.is_some_and(|x| !x.is_empty() && x != c.id) {
            continue;
        }
        for (sname, tables) in &c.schemas {
            if fs.is_some_and(|x| !x.is_empty() && x != sname) {
                continue;
            }
            for (tname, t) in tables {
                if ft.is_some_and(|x| !x.is_empty() && x != tname) {
                    continue;
                }
                let columns = if include {
                    json!(
                        t.columns
                            .iter()
                            .map(|(n, ty)| json!({"name": n, "data_type": ty.api_name(), "nullable": true}))
                            .collect::<Vec<_>>()
                    )
                } else {
                    Json::Null
                };
                items.push((
                    format!("{}/{sname}/{tname}", c.id),
                    json!({
                        "connection": c.name, "schema": sname, "table": tname,
                        "synced": t.last_sync.is_some(), "last_sync": t.last_sync,
                        "constant_per_key": t.constant_per_key,
                        "partition_by": t.partition_by, "sorted_by": t.sorted_by,
                        "columns": columns,
                    }),
                ));
            }
        }
    }
    let (page, has_more, next) = cursor_page(items, cx.req.q("cursor"), limit);
    Ok(Resp::json(
        200,
        &json!({"tables": page.clone(), "count": page.len(), "limit": limit, "has_more": has_more, "next_cursor": next}),
    ))
}
