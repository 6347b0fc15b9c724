//! SQL execution, saved queries, query runs and results.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::{Value as Json, json};

use super::{Cx, cursor_page, limit_param, name_ctx};
use crate::http::{ApiError, Body, Resp};
use crate::lock;
use crate::results::{ArrowStream, ResultSet, encode_ipc};
use crate::server::Shared;
use crate::state::{Database, QueryRun, SavedQuery, Stamp, State, StoredResult};
use crate::util::{hex128, now_rfc3339};

/// The Arrow IPC stream media type.
pub(crate) const ARROW: &str = "application/vnd.apache.arrow.stream";

fn sql_hash(sql: &str) -> String {
    hex128(&[sql.trim().as_bytes()])
}

struct Ran {
    run_id: String,
    result_id: Option<String>,
    outcome: Result<Arc<ResultSet>, String>,
    elapsed_ms: i64,
}

/// Run SQL, record a query run and (unless it failed synchronously) a result.
fn run_sql(
    cx: &mut Cx<'_>,
    db: Option<&Database>,
    sql: &str,
    catalog: Option<&str>,
    schema: Option<&str>,
    is_async: bool,
    saved: Option<(String, i64)>,
) -> Ran {
    let ctx = name_ctx(cx.ws, db, catalog, schema);
    let started = Instant::now();
    let outcome = cx.ws.sql.query(&ctx, sql).map(Arc::new);
    let elapsed_ms = started.elapsed().as_millis() as i64;
    cx.ws.query_count += 1;
    if let Ok(r) = &outcome {
        cx.ws.bytes_scanned += (r.rows as i64) * 8 * r.schema.fields().len().max(1) as i64;
    }
    let now = Stamp::now();
    let done = if is_async { now.plus(cx.sh.cfg.async_result_delay) } else { now };
    let run_id = cx.ids.id("qrun");
    evict(cx, outcome.as_ref().map_or(0, |r| r.rows));
    let result_id = if outcome.is_ok() || is_async {
        let rid = cx.ids.id("res");
        cx.ws.results.insert(
            rid.clone(),
            StoredResult {
                id: rid.clone(),
                database_id: db.map(|d| d.id.clone()),
                created: now,
                ready: done,
                outcome: outcome.clone(),
            },
        );
        Some(rid)
    } else {
        None
    };
    let preview = cx.sh.cfg.preview_rows;
    let warning = match &outcome {
        Ok(r) if r.rows > preview => {
            Some(format!("result truncated to {preview} of {} rows; fetch result_id for all rows", r.rows))
        }
        _ => None,
    };
    cx.ws.runs.insert(
        run_id.clone(),
        QueryRun {
            id: run_id.clone(),
            database_id: db.map(|d| d.id.clone()),
            sql: sql.to_string(),
            created: now,
            done,
            ok: outcome.is_ok(),
            error: outcome.as_ref().err().cloned(),
            result_id: result_id.clone(),
            row_count: outcome.as_ref().ok().map(|r| r.rows as i64),
            execution_time_ms: elapsed_ms,
            saved_query_id: saved.as_ref().map(|s| s.0.clone()),
            saved_query_version: saved.as_ref().map(|s| s.1),
            warning,
        },
    );
    Ran { run_id, result_id, outcome, elapsed_ms }
}

/// Drop the oldest results until `incoming` more rows fit the budget. Results stored from
/// an Arrow stream (`store_arrow`) are pinned: never evicted, not counted.
fn evict(cx: &mut Cx<'_>, incoming: usize) {
    let budget = cx.sh.cfg.max_stored_rows;
    let pinned = |r: &StoredResult| r.outcome.as_ref().is_ok_and(|x| x.ipc.is_some());
    let rows = |r: &StoredResult| if pinned(r) { 0 } else { r.outcome.as_ref().map_or(0, |x| x.rows) };
    let mut total: usize = cx.ws.results.values().map(rows).sum();
    while total + incoming > budget {
        let Some(id) = cx.ws.results.iter().find(|(_, r)| !pinned(r)).map(|(id, _)| id.clone()) else {
            break;
        };
        if let Some(r) = cx.ws.results.remove(&id) {
            total -= rows(&r);
        }
    }
}

/// Store an Arrow IPC stream as a ready result of database `database_id`, in whichever
/// workspace holds it; returns the result id and its row count. The bytes are decoded once
/// (before taking the state lock) and kept to be served verbatim.
pub(crate) fn store_arrow(
    sh: &Shared,
    database_id: &str,
    stream: Bytes,
) -> Result<(String, usize), ApiError> {
    let rs = ResultSet::from_ipc(stream).map_err(|e| ApiError::new(400, "INVALID_ARROW_STREAM", e))?;
    let rows = rs.rows;
    let mut st = lock(&sh.state);
    let State { ids, workspaces, .. } = &mut *st;
    let ws = workspaces.values_mut().find(|w| w.databases.contains_key(database_id)).ok_or_else(|| {
        ApiError::new(400, "DATABASE_NOT_FOUND", format!("database `{database_id}` not found"))
    })?;
    let id = ids.id("res");
    let now = Stamp::now();
    ws.results.insert(
        id.clone(),
        StoredResult {
            id: id.clone(),
            database_id: Some(database_id.to_string()),
            created: now,
            ready: now,
            outcome: Ok(Arc::new(rs)),
        },
    );
    Ok((id, rows))
}

/// The 400 for renderings a stored Arrow stream's column types do not allow.
fn unsupported_for_fixture(id: &str, rs: &ResultSet, what: &str) -> ApiError {
    ApiError::new(
        400,
        "UNSUPPORTED_FOR_ARROW_FIXTURE",
        match rs.foreign_types() {
            t if t.is_empty() => format!(
                "result `{id}` was stored from an Arrow IPC stream; the emulator cannot serve it {what}; \
                 fetch it whole with format=arrow"
            ),
            t => format!(
                "result `{id}` was stored from an Arrow IPC stream with column types the emulator cannot \
                 serve {what} ({}); fetch it with format=arrow",
                t.join(", ")
            ),
        },
    )
}

fn query_response(cx: &Cx<'_>, ran: &Ran, rs: &ResultSet) -> Json {
    let preview = cx.sh.cfg.preview_rows;
    let shown = rs.rows.min(preview);
    let truncated = rs.rows > preview;
    json!({
        "query_run_id": ran.run_id,
        "result_id": ran.result_id,
        "columns": rs.columns(),
        "nullable": rs.nullable(),
        "rows": rs.json_value_rows(preview),
        "row_count": shown,
        "preview_row_count": shown,
        "total_row_count": rs.rows,
        "truncated": truncated,
        "execution_time_ms": ran.elapsed_ms,
        "warning": cx.ws.runs.get(&ran.run_id).and_then(|r| r.warning.clone()),
    })
}

fn wants(req: &crate::http::Req, media: &str) -> bool {
    req.header("accept").is_some_and(|a| a.split(',').any(|p| p.trim().starts_with(media)))
}

fn resolve_db(cx: &Cx<'_>, body_db: Option<String>) -> Result<Option<Database>, ApiError> {
    let id = match (cx.db.clone(), body_db) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::bad_request(
                "X-Database-Id and body `database_id` disagree; send one of them",
            ));
        }
        (Some(h), _) => Some(h),
        (None, b) => b,
    };
    match id {
        None => Ok(None),
        Some(id) => Ok(Some(cx.database(&id)?.clone())),
    }
}

pub(crate) fn query(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(false)?;
    let sql = body.req_str("sql")?;
    if sql.trim().is_empty() {
        return Err(ApiError::bad_request("`sql` must not be empty"));
    }
    let is_async = body.opt_bool("async")?.unwrap_or(false) || cx.req.force_async;
    if let Some(ms) = body.opt_i64("async_after_ms")?
        && ms < 1000
    {
        return Err(ApiError::bad_request("`async_after_ms` must be at least 1000"));
    }
    if let Some(d) = body.opt_str("dialect")?
        && !matches!(
            d.to_lowercase().as_str(),
            "" | "postgres" | "postgresql" | "generic" | "sqlite" | "duckdb" | "ansi"
        )
    {
        return Err(ApiError::bad_request(format!("unsupported dialect `{d}`")));
    }
    let db = resolve_db(cx, body.opt_str("database_id")?)?;
    let catalog = body.opt_str("default_catalog")?;
    let schema = body.opt_str("default_schema")?;
    let ran = run_sql(cx, db.as_ref(), &sql, catalog.as_deref(), schema.as_deref(), is_async, None);
    if is_async {
        let mut r = Resp::json(
            202,
            &json!({
                "query_run_id": ran.run_id,
                "status": "running",
                "status_url": format!("/v1/query-runs/{}", ran.run_id),
                "reason": if cx.req.force_async { "async_after_ms exceeded" } else { "async requested" },
            }),
        );
        if let Some(rid) = &ran.result_id {
            r = r.header("x-result-id", rid.clone());
        }
        return Ok(r);
    }
    let rs = match &ran.outcome {
        Ok(rs) => rs.clone(),
        Err(e) => return Err(ApiError::new(400, "QUERY_ERROR", e.clone())),
    };
    if wants(cx.req, ARROW) {
        let batches = rs.window(0, None);
        let mut r = Resp {
            status: 200,
            headers: vec![("content-type".into(), ARROW.into())],
            body: Body::Stream(Box::new(ArrowStream::new(&rs.schema, batches, cx.sh.cfg.arrow_compression))),
        }
        .header("x-query-run-id", ran.run_id.clone())
        .header("x-total-row-count", rs.rows.to_string())
        .header("x-execution-time-ms", ran.elapsed_ms.to_string());
        if let Some(rid) = &ran.result_id {
            r = r.header("x-result-id", rid.clone());
        }
        if let Some(w) = cx.ws.runs.get(&ran.run_id).and_then(|r| r.warning.clone()) {
            r = r.header("x-query-warning", w);
        }
        return Ok(r);
    }
    Ok(Resp::json(200, &query_response(cx, &ran, &rs)))
}

fn flags(sql: &str) -> Json {
    let u = sql.to_uppercase();
    let has = |w: &str| u.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').any(|t| t == w);
    let agg = ["COUNT(", "SUM(", "AVG(", "MIN(", "MAX("].iter().any(|f| u.replace(' ', "").contains(f));
    let tables = u.matches(" FROM ").count() + u.matches(" JOIN ").count();
    json!({
        "has_aggregation": agg,
        "has_group_by": u.contains("GROUP BY"),
        "has_join": has("JOIN"),
        "has_limit": has("LIMIT"),
        "has_order_by": u.contains("ORDER BY"),
        "has_predicate": has("WHERE"),
        "num_tables": tables,
    })
}

fn saved_detail(q: &SavedQuery) -> Json {
    let (sql, _) = q.versions.last().cloned().unwrap_or_default();
    let mut v = json!({
        "id": q.id, "name": q.name, "description": q.description, "tags": q.tags,
        "sql": sql, "sql_hash": sql_hash(&sql), "latest_version": q.versions.len(),
        "created_at": q.created_at, "updated_at": q.updated_at,
        "category": q.category, "table_size": q.table_size,
    });
    if let (Json::Object(m), Json::Object(f)) = (&mut v, flags(&sql)) {
        m.extend(f);
    }
    v
}

fn saved_summary(q: &SavedQuery) -> Json {
    json!({
        "id": q.id, "name": q.name, "description": q.description, "tags": q.tags,
        "latest_version": q.versions.len(), "created_at": q.created_at, "updated_at": q.updated_at,
    })
}

fn saved<'a>(cx: &'a mut Cx<'_>) -> Result<&'a mut SavedQuery, ApiError> {
    let id = cx.p(0).to_string();
    cx.ws.saved.get_mut(&id).ok_or_else(|| ApiError::not_found(format!("saved query `{id}` not found")))
}

pub(crate) fn list_saved(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let limit = limit_param(cx.req, 100, 1000)?;
    let offset = cx.req.q_usize("offset")?.unwrap_or(0);
    let all: Vec<Json> = cx.ws.saved.values().map(saved_summary).collect();
    let page: Vec<Json> = all.iter().skip(offset).take(limit).cloned().collect();
    Ok(Resp::json(
        200,
        &json!({"queries": page.clone(), "count": page.len(), "limit": limit, "offset": offset,
                "has_more": offset + page.len() < all.len()}),
    ))
}

pub(crate) fn create_saved(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(false)?;
    let name = body.req_str("name")?;
    let sql = body.req_str("sql")?;
    if name.trim().is_empty() || sql.trim().is_empty() {
        return Err(ApiError::bad_request("`name` and `sql` must not be empty"));
    }
    let id = cx.ids.id("sq");
    let now = now_rfc3339();
    let q = SavedQuery {
        id: id.clone(),
        name,
        description: body.opt_str("description")?.unwrap_or_default(),
        tags: body.str_list("tags")?.unwrap_or_default(),
        category: None,
        table_size: None,
        created_at: now.clone(),
        updated_at: now.clone(),
        versions: vec![(sql, now)],
    };
    let out = saved_detail(&q);
    cx.ws.saved.insert(id, q);
    Ok(Resp::json(201, &out))
}

pub(crate) fn get_saved(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let q = saved(cx)?;
    Ok(Resp::json(200, &saved_detail(q)))
}

pub(crate) fn update_saved(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(true)?;
    let name = body.opt_str("name")?;
    let sql = body.opt_str("sql")?;
    let description = body.opt_str("description")?;
    let tags = body.str_list("tags")?;
    let category = body.opt_str("category_override")?;
    let size = body.opt_str("table_size_override")?;
    if name.as_deref().is_some_and(|n| n.trim().is_empty())
        || sql.as_deref().is_some_and(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad_request("`name` and `sql` must not be empty"));
    }
    let q = saved(cx)?;
    let now = now_rfc3339();
    if let Some(n) = name {
        q.name = n;
    }
    if let Some(d) = description {
        q.description = d;
    }
    if let Some(t) = tags {
        q.tags = t;
    }
    if category.is_some() {
        q.category = category;
    }
    if size.is_some() {
        q.table_size = size;
    }
    if let Some(s) = sql
        && q.versions.last().map(|v| &v.0) != Some(&s)
    {
        q.versions.push((s, now.clone()));
    }
    q.updated_at = now;
    Ok(Resp::json(200, &saved_detail(q)))
}

pub(crate) fn delete_saved(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0).to_string();
    if cx.ws.saved.remove(&id).is_none() {
        return Err(ApiError::not_found(format!("saved query `{id}` not found")));
    }
    Ok(Resp::empty(204))
}

pub(crate) fn list_versions(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let limit = limit_param(cx.req, 100, 1000)?;
    let offset = cx.req.q_usize("offset")?.unwrap_or(0);
    let q = saved(cx)?.clone();
    let all: Vec<Json> = q
        .versions
        .iter()
        .enumerate()
        .rev()
        .map(|(i, (sql, at))| {
            let mut v = json!({"version": i + 1, "sql": sql, "sql_hash": sql_hash(sql), "created_at": at,
                               "category": q.category, "table_size": q.table_size});
            if let (Json::Object(m), Json::Object(f)) = (&mut v, flags(sql)) {
                m.extend(f);
            }
            v
        })
        .collect();
    let page: Vec<Json> = all.iter().skip(offset).take(limit).cloned().collect();
    Ok(Resp::json(
        200,
        &json!({"saved_query_id": q.id, "versions": page.clone(), "count": page.len(), "limit": limit,
                "offset": offset, "has_more": offset + page.len() < all.len()}),
    ))
}

pub(crate) fn execute_saved(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(true)?;
    let version = body.opt_i64("version")?;
    let q = saved(cx)?.clone();
    let v = version.unwrap_or(q.versions.len() as i64);
    if v < 1 || v as usize > q.versions.len() {
        return Err(ApiError::not_found(format!("version {v} of `{}` not found", q.id)));
    }
    let sql = q.versions[v as usize - 1].0.clone();
    let db = resolve_db(cx, None)?;
    let ran = run_sql(cx, db.as_ref(), &sql, None, None, false, Some((q.id.clone(), v)));
    match &ran.outcome {
        Ok(rs) => {
            let rs = rs.clone();
            Ok(Resp::json(200, &query_response(cx, &ran, &rs)))
        }
        Err(e) => Err(ApiError::new(400, "QUERY_ERROR", e.clone())),
    }
}

fn run_json(r: &QueryRun) -> Json {
    let done = r.done.reached();
    json!({
        "id": r.id,
        "status": r.status(),
        "sql_text": r.sql,
        "sql_hash": sql_hash(&r.sql),
        "snapshot_id": "0",
        "created_at": r.created.rfc3339(),
        "completed_at": if done { Json::String(r.done.rfc3339()) } else { Json::Null },
        "execution_time_ms": if done { json!(r.execution_time_ms) } else { Json::Null },
        "server_processing_ms": if done { json!(r.execution_time_ms) } else { Json::Null },
        "row_count": if done { json!(r.row_count) } else { Json::Null },
        "result_id": r.result_id,
        "error_message": if done { json!(r.error) } else { Json::Null },
        "warning_message": r.warning,
        "saved_query_id": r.saved_query_id,
        "saved_query_version": r.saved_query_version,
        "rows_scanned": if done { json!(r.row_count) } else { Json::Null },
        "bytes_scanned": Json::Null,
        "trace_id": Json::Null,
        "user_public_id": Json::Null,
    })
}

pub(crate) fn list_runs(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let limit = limit_param(cx.req, 100, 1000)?;
    let db = cx.db.clone();
    let (status, sq) = (cx.req.q("status"), cx.req.q("saved_query_id"));
    if let Some(s) = status
        && !s.is_empty()
        && !matches!(s, "running" | "succeeded" | "failed" | "queued" | "pending")
    {
        return Err(ApiError::bad_request(format!("unknown status `{s}`")));
    }
    let items: Vec<(String, Json)> = cx
        .ws
        .runs
        .values()
        .rev()
        .filter(|r| r.database_id.is_none() || r.database_id == db)
        .filter(|r| status.is_none_or(|s| s.is_empty() || s == r.status()))
        .filter(|r| sq.is_none_or(|s| s.is_empty() || Some(s) == r.saved_query_id.as_deref()))
        .map(|r| (r.id.clone(), run_json(r)))
        .collect();
    let (page, has_more, next) = cursor_page(items, cx.req.q("cursor"), limit);
    Ok(Resp::json(
        200,
        &json!({"query_runs": page.clone(), "count": page.len(), "limit": limit, "has_more": has_more, "next_cursor": next}),
    ))
}

pub(crate) fn get_run(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0);
    let r = cx
        .ws
        .runs
        .get(id)
        .filter(|r| r.database_id.is_none() || r.database_id == cx.db)
        .ok_or_else(|| ApiError::not_found(format!("query run `{id}` not found")))?;
    Ok(Resp::json(200, &run_json(r)))
}

pub(crate) fn list_results(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let limit = limit_param(cx.req, 100, 1000)?;
    let offset = cx.req.q_usize("offset")?.unwrap_or(0);
    let db = cx.db.clone();
    let all: Vec<Json> = cx
        .ws
        .results
        .values()
        .rev()
        .filter(|r| r.database_id.is_none() || r.database_id == db)
        .map(|r| {
            json!({"id": r.id, "status": r.status(), "created_at": r.created.rfc3339(),
                   "error_message": if r.ready.reached() { r.outcome.as_ref().err().cloned() } else { None }})
        })
        .collect();
    let page: Vec<Json> = all.iter().skip(offset).take(limit).cloned().collect();
    Ok(Resp::json(
        200,
        &json!({"results": page.clone(), "count": page.len(), "limit": limit, "offset": offset,
                "has_more": offset + page.len() < all.len()}),
    ))
}

pub(crate) fn get_result(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0).to_string();
    let offset = cx.req.q_usize("offset")?.unwrap_or(0);
    let limit = cx.req.q_usize("limit")?;
    let explicit = cx.req.q("format").filter(|f| !f.is_empty()).map(str::to_string);
    let format = match explicit.as_deref() {
        Some(f @ ("arrow" | "json" | "csv" | "md" | "parquet")) => f.to_string(),
        Some(f) => return Err(ApiError::bad_request(format!("unknown format `{f}`"))),
        None if wants(cx.req, ARROW) => "arrow".into(),
        None if wants(cx.req, "text/csv") => "csv".into(),
        None if wants(cx.req, "text/markdown") => "md".into(),
        None if wants(cx.req, "application/vnd.apache.parquet") => "parquet".into(),
        None => "json".into(),
    };
    let r = cx
        .ws
        .results
        .get(&id)
        .filter(|r| r.database_id.is_none() || r.database_id == cx.db)
        .ok_or_else(|| ApiError::not_found(format!("result `{id}` not found")))?
        .clone();
    if !r.ready.reached() {
        let left = r.ready.at.saturating_duration_since(Instant::now());
        let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        return Ok(Resp::json(202, &json!({"result_id": id, "status": r.status()}))
            .header("retry-after", secs.max(1).to_string()));
    }
    let rs = match &r.outcome {
        Ok(rs) => rs.clone(),
        Err(e) => {
            return Ok(Resp::json(409, &json!({"result_id": id, "status": "failed", "error_message": e})));
        }
    };
    let total = rs.rows;
    let window_rows = match limit {
        Some(l) => total.saturating_sub(offset).min(l),
        None => total.saturating_sub(offset),
    };
    // A result stored from an Arrow stream: the whole result as Arrow is its bytes, verbatim;
    // other renderings only when the emulator's renderers handle its column types.
    if rs.ipc.is_some() && !rs.native_types() {
        match format.as_str() {
            "parquet" => return Err(unsupported_for_fixture(&id, &rs, "as Parquet")),
            "json" | "csv" | "md" if window_rows > 0 => {
                return Err(unsupported_for_fixture(&id, &rs, &format!("as {format} rows")));
            }
            _ => {}
        }
    }
    let whole = offset == 0 && limit.is_none_or(|l| l >= total);
    let compression = cx.sh.cfg.arrow_compression;
    let mut resp = match format.as_str() {
        "arrow" => match &rs.ipc {
            Some(ipc) if whole => Resp {
                status: 200,
                headers: vec![("content-type".into(), ARROW.into())],
                body: Body::Full(ipc.clone()),
            },
            Some(_) => {
                let window = encode_ipc(&rs.schema, &rs.window(offset, limit), compression).map_err(|e| {
                    unsupported_for_fixture(&id, &rs, &format!("with offset/limit (re-encoding failed: {e})"))
                })?;
                Resp {
                    status: 200,
                    headers: vec![("content-type".into(), ARROW.into())],
                    body: Body::Full(window),
                }
            }
            None => Resp {
                status: 200,
                headers: vec![("content-type".into(), ARROW.into())],
                body: Body::Stream(Box::new(ArrowStream::new(
                    &rs.schema,
                    rs.window(offset, limit),
                    compression,
                ))),
            },
        },
        "csv" => Resp::raw(200, "text/csv; charset=utf-8", rs.csv(offset, limit)),
        "md" => Resp::raw(200, "text/markdown; charset=utf-8", rs.markdown(offset, limit)),
        "parquet" => Resp::raw(
            200,
            "application/vnd.apache.parquet",
            rs.parquet().map_err(|e| ApiError::new(500, "INTERNAL", e))?,
        ),
        _ => {
            let max = cx.sh.cfg.max_json_result_bytes;
            let rows = rs.json_rows(offset, limit, max).ok_or_else(|| {
                ApiError::new(
                    413,
                    "RESULT_TOO_LARGE",
                    format!("the JSON page exceeds {max} bytes; use limit/offset or format=arrow"),
                )
            })?;
            let head = json!({
                "result_id": id, "status": "ready", "columns": rs.columns(),
                "nullable": rs.nullable(), "row_count": window_rows, "total_row_count": total,
            })
            .to_string();
            let mut out = Vec::with_capacity(head.len() + rows.len() + 10);
            out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
            out.extend_from_slice(b",\"rows\":");
            out.extend_from_slice(&rows);
            out.push(b'}');
            Resp::raw(200, "application/json", Bytes::from(out))
        }
    };
    resp = resp.header("x-total-row-count", total.to_string());
    if let Some(l) = limit
        && offset + l < total
        && format != "parquet"
    {
        let mut url = format!(
            "{}/v1/results/{}?offset={}&limit={}",
            cx.sh.base_url,
            crate::util::percent_encode(&id),
            offset + l,
            l
        );
        if let Some(f) = &explicit {
            url.push_str(&format!("&format={f}"));
        }
        resp = resp.header("link", format!("<{url}>; rel=\"next\""));
    }
    Ok(resp)
}
