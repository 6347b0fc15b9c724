//! Databases: CRUD, pagination, bulk batches, forks, lineage, catalogs and contexts.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::{Cx, connections, cursor_page, limit_param};
use crate::http::{ApiError, Obj, Resp};
use crate::state::{Batch, Connection, Database, ForkedFrom, Stamp};
use crate::util::now_rfc3339;

fn forked_json(f: &Option<ForkedFrom>) -> Json {
    match f {
        None => Json::Null,
        Some(f) => json!({
            "database_id": f.database_id,
            "name": f.name,
            "description": f.description,
            "forked_at": f.forked_at,
            "snapshot_id": f.snapshot_id,
        }),
    }
}

pub(crate) fn summary_json(d: &Database) -> Json {
    json!({
        "id": d.id,
        "name": d.name,
        "default_catalog": d.default_catalog,
        "default_schema": d.default_schema,
        "created_at": d.created.rfc3339(),
        "expires_at": d.expires_at,
        "forked_from": forked_json(&d.forked_from),
    })
}

pub(crate) fn detail_json(d: &Database) -> Json {
    let attachments: Vec<Json> =
        d.attachments.iter().map(|(c, a)| json!({"connection_id": c, "alias": a})).collect();
    json!({
        "id": d.id,
        "name": d.name,
        "default_catalog": d.default_catalog,
        "default_connection_id": d.default_connection_id,
        "default_schema": d.default_schema,
        "created_at": d.created.rfc3339(),
        "expires_at": d.expires_at,
        "forked_from": forked_json(&d.forked_from),
        "attachments": attachments,
    })
}

fn create_json(d: &Database, created: bool) -> Json {
    json!({
        "id": d.id,
        "name": d.name,
        "default_catalog": d.default_catalog,
        "default_connection_id": d.default_connection_id,
        "default_schema": d.default_schema,
        "expires_at": d.expires_at,
        "forked_from": forked_json(&d.forked_from),
        "created": created,
    })
}

fn check_timestamp(v: Option<String>, field: &str) -> Result<Option<String>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) => {
            let b = s.as_bytes();
            if b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && (b[10] == b'T' || b[10] == b' ') {
                // Normalise to RFC 3339 (`T` separator, explicit zone).
                let mut t = s.replacen(' ', "T", 1);
                let tail = &t[19..];
                if !(tail.contains('Z') || tail.contains('+') || tail.contains('-')) {
                    t.push('Z');
                }
                Ok(Some(t))
            } else {
                Err(ApiError::bad_request(format!("`{field}` must be an RFC 3339 timestamp")))
            }
        }
    }
}

fn check_ident(name: &str, what: &str) -> Result<(), ApiError> {
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

pub(crate) fn name_taken(cx: &Cx<'_>, name: &str) -> bool {
    cx.ws.databases.values().any(|d| d.name.as_deref() == Some(name))
}

/// Create a database with its default managed catalog.
#[allow(clippy::too_many_arguments)]
fn new_database(
    cx: &mut Cx<'_>,
    name: Option<String>,
    default_catalog: Option<String>,
    default_schema: Option<String>,
    expires_at: Option<String>,
    schemas: &[Obj],
    batch_id: Option<String>,
    forked_from: Option<ForkedFrom>,
    description: Option<String>,
) -> Result<String, ApiError> {
    let id = cx.ids.id("db");
    let conn_id = cx.ids.id("conn");
    let default_catalog = default_catalog.unwrap_or_else(|| "main".to_string());
    let default_schema = default_schema.unwrap_or_else(|| "public".to_string());
    check_ident(&default_catalog, "catalog name")?;
    check_ident(&default_schema, "schema name")?;
    let mut conn = Connection {
        id: conn_id.clone(),
        name: id.clone(),
        source_type: "managed".into(),
        config: json!({}),
        database_id: Some(id.clone()),
        schemas: BTreeMap::new(),
    };
    conn.schemas.insert(default_schema.clone(), BTreeMap::new());
    cx.ws.connections.insert(conn_id.clone(), conn);
    let db = Database {
        id: id.clone(),
        name,
        default_catalog,
        default_connection_id: conn_id.clone(),
        default_schema,
        expires_at,
        created: Stamp::now(),
        forked_from,
        description,
        attachments: vec![],
        batch_id,
        contexts: BTreeMap::new(),
    };
    cx.ws.databases.insert(id.clone(), db);
    for s in schemas {
        connections::declare_schema(cx, &conn_id, s)?;
    }
    Ok(id)
}

pub(crate) fn create(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(true)?;
    let name = body.opt_str("name")?;
    let if_not_exists = body.opt_bool("if_not_exists")?.unwrap_or(false);
    if let Some(n) = &name {
        if n.trim().is_empty() {
            return Err(ApiError::bad_request("`name` must not be empty"));
        }
        if let Some(existing) = cx.ws.databases.values().find(|d| d.name.as_ref() == Some(n)) {
            if if_not_exists {
                return Ok(Resp::json(200, &create_json(existing, false)));
            }
            return Err(ApiError::conflict(format!("a database named `{n}` already exists")));
        }
    }
    let schemas = body.objects("schemas")?;
    let expires = check_timestamp(body.opt_str("expires_at")?, "expires_at")?;
    let id = new_database(
        cx,
        name,
        body.opt_str("default_catalog")?,
        body.opt_str("default_schema")?,
        expires,
        &schemas,
        None,
        None,
        None,
    )?;
    Ok(Resp::json(201, &create_json(&cx.ws.databases[&id], true)))
}

fn matches_filters(d: &Database, search: Option<&str>, batch: Option<&str>) -> bool {
    if let Some(s) = search
        && !s.is_empty()
    {
        let s = s.to_lowercase();
        let hit = d.name.as_deref().is_some_and(|n| n.to_lowercase().contains(&s))
            || d.id.to_lowercase().contains(&s);
        if !hit {
            return false;
        }
    }
    if let Some(b) = batch
        && !b.is_empty()
        && d.batch_id.as_deref() != Some(b)
    {
        return false;
    }
    true
}

pub(crate) fn list(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let limit = limit_param(cx.req, 100, 1000)?;
    let (search, batch) = (cx.req.q("search"), cx.req.q("batch"));
    let items: Vec<(String, Json)> = cx
        .ws
        .databases
        .values()
        .filter(|d| matches_filters(d, search, batch))
        .map(|d| (d.id.clone(), summary_json(d)))
        .collect();
    let (page, has_more, next) = cursor_page(items, cx.req.q("cursor"), limit);
    Ok(Resp::json(
        200,
        &json!({"databases": page.clone(), "count": page.len(), "limit": limit, "has_more": has_more, "next_cursor": next}),
    ))
}

pub(crate) fn count(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let (search, batch) = (cx.req.q("search"), cx.req.q("batch"));
    let n = cx.ws.databases.values().filter(|d| matches_filters(d, search, batch)).count();
    Ok(Resp::json(200, &json!({"total": n})))
}

pub(crate) fn get(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let d = cx.database(cx.p(0))?;
    Ok(Resp::json(200, &detail_json(d)))
}

pub(crate) fn by_name(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let name = cx.req.q("name").unwrap_or("").to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request("query parameter `name` is required"));
    }
    let found: Vec<&Database> =
        cx.ws.databases.values().filter(|d| d.name.as_deref() == Some(name.as_str())).collect();
    match found.as_slice() {
        [] => Err(ApiError::not_found(format!("no database named `{name}`"))),
        [d] => Ok(Resp::json(200, &detail_json(d))),
        _ => Err(ApiError::conflict(format!("more than one database is named `{name}`"))),
    }
}

/// Remove a database, its default catalog and its tables.
pub(crate) fn remove_database(cx: &mut Cx<'_>, id: &str) -> bool {
    let Some(db) = cx.ws.databases.remove(id) else {
        return false;
    };
    if let Some(conn) = cx.ws.connections.remove(&db.default_connection_id) {
        for t in conn.schemas.values().flat_map(|s| s.values()) {
            cx.ws.sql.drop_table(&t.storage);
        }
    }
    for d in cx.ws.databases.values_mut() {
        d.attachments.retain(|(c, _)| c != &db.default_connection_id);
    }
    cx.ws.tombstones.insert(id.to_string(), db);
    true
}

pub(crate) fn delete(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0).to_string();
    if !remove_database(cx, &id) {
        return Err(ApiError::not_found(format!("database `{id}` not found")));
    }
    Ok(Resp::empty(204))
}

fn expand_template(t: &str, n: i64) -> String {
    let mut s = t.to_string();
    let mut replaced = false;
    for ph in ["{n}", "{i}", "{index}", "{}"] {
        if s.contains(ph) {
            s = s.replace(ph, &n.to_string());
            replaced = true;
        }
    }
    if !replaced {
        s = format!("{s}-{n}");
    }
    s
}

fn batch_json(cx: &Cx<'_>, b: &Batch) -> Json {
    let job = cx.ws.jobs.get(&b.job_id);
    let done = job.is_some_and(|j| j.status() == "succeeded");
    let created = if done {
        b.database_ids.iter().filter(|id| cx.ws.databases.contains_key(*id)).count() as i64
    } else {
        0
    };
    json!({
        "batch_id": b.id,
        "cancel_requested": false,
        "count": b.count,
        "created_count": created,
        "expires_at": b.expires_at,
        "job_id": b.job_id,
        "status_url": format!("/v1/jobs/{}", b.job_id),
    })
}

pub(crate) fn bulk_create(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(false)?;
    let count = body.opt_i64("count")?.ok_or_else(|| ApiError::bad_request("`count` is required"))?;
    if !(1..=10_000).contains(&count) {
        return Err(ApiError::bad_request("`count` must be between 1 and 10000"));
    }
    let key = body.opt_str("idempotency_key")?;
    if let Some(k) = &key
        && let Some(b) = cx.ws.batches.values().find(|b| b.idempotency_key.as_ref() == Some(k))
    {
        if b.count != count {
            return Err(ApiError::new(
                409,
                "IDEMPOTENCY_KEY_CONFLICT",
                "idempotency key reused with a different request",
            ));
        }
        let b = b.clone();
        return Ok(Resp::json(202, &batch_json(cx, &b)));
    }
    let template = body.opt_str("name_template")?;
    let names: Vec<Option<String>> =
        (1..=count).map(|n| template.as_deref().map(|t| expand_template(t, n))).collect();
    for n in names.iter().flatten() {
        if name_taken(cx, n) {
            return Err(ApiError::conflict(format!("a database named `{n}` already exists")));
        }
    }
    let expires = check_timestamp(body.opt_str("expires_at")?, "expires_at")?;
    let schemas = body.objects("schemas")?;
    let batch_id = cx.ids.id("batch");
    let mut ids = Vec::new();
    for name in names {
        ids.push(new_database(
            cx,
            name,
            body.opt_str("default_catalog")?,
            body.opt_str("default_schema")?,
            expires.clone(),
            &schemas,
            Some(batch_id.clone()),
            None,
            None,
        )?);
    }
    let job_id = cx.new_job(
        "bulk_create_databases",
        Ok(json!({"batch_id": batch_id, "cancelled": false, "created": count, "requested": count})),
    );
    let b = Batch {
        id: batch_id.clone(),
        count,
        job_id,
        expires_at: expires,
        idempotency_key: key,
        database_ids: ids,
    };
    cx.ws.batches.insert(batch_id, b.clone());
    Ok(Resp::json(202, &batch_json(cx, &b)))
}

pub(crate) fn get_batch(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let b = cx
        .ws
        .batches
        .get(cx.p(0))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("batch `{}` not found", cx.p(0))))?;
    Ok(Resp::json(200, &batch_json(cx, &b)))
}

pub(crate) fn delete_batch(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0).to_string();
    let b =
        cx.ws.batches.remove(&id).ok_or_else(|| ApiError::not_found(format!("batch `{id}` not found")))?;
    let mut deleted = 0;
    for db in &b.database_ids {
        if remove_database(cx, db) {
            deleted += 1;
        }
    }
    Ok(Resp::json(200, &json!({"batch_id": id, "deleted_count": deleted})))
}

pub(crate) fn attach(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let db_id = cx.p(0).to_string();
    let body = cx.req.json_obj(false)?;
    let conn_id = body.req_str("connection_id")?;
    let alias = body.opt_str("alias")?;
    let db = cx.database(&db_id)?.clone();
    let conn = cx
        .ws
        .connections
        .get(&conn_id)
        .ok_or_else(|| ApiError::not_found(format!("connection `{conn_id}` not found")))?;
    if conn_id == db.default_connection_id {
        return Err(ApiError::bad_request("a database's default catalog cannot be attached to itself"));
    }
    let name = alias.clone().unwrap_or_else(|| conn.name.clone());
    if let Some(a) = &alias {
        check_ident(a, "alias")?;
    }
    if db.attachments.iter().any(|(c, _)| c == &conn_id) {
        return Err(ApiError::conflict("connection already attached"));
    }
    let clash = name.eq_ignore_ascii_case(&db.default_catalog)
        || db.attachments.iter().any(|(c, a)| {
            let n =
                a.clone().unwrap_or_else(|| cx.ws.connections.get(c).map_or(c.clone(), |x| x.name.clone()));
            n.eq_ignore_ascii_case(&name)
        });
    if clash {
        return Err(ApiError::conflict(format!("catalog name `{name}` already in use")));
    }
    if let Some(d) = cx.ws.databases.get_mut(&db_id) {
        d.attachments.push((conn_id, alias));
    }
    Ok(Resp::empty(204))
}

pub(crate) fn detach(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let (db_id, conn_id) = (cx.p(0).to_string(), cx.p(1).to_string());
    cx.database(&db_id)?;
    let d = cx.ws.databases.get_mut(&db_id).expect("checked");
    if conn_id == d.default_connection_id {
        return Err(ApiError::bad_request("the default catalog cannot be detached"));
    }
    let before = d.attachments.len();
    d.attachments.retain(|(c, _)| c != &conn_id);
    if d.attachments.len() == before {
        return Err(ApiError::not_found(format!("connection `{conn_id}` is not attached")));
    }
    Ok(Resp::empty(204))
}

fn context_json(name: &str, content: &str, updated: &str) -> Json {
    json!({"name": name, "content": content, "updated_at": updated})
}

pub(crate) fn list_contexts(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let d = cx.database(cx.p(0))?;
    let items: Vec<Json> = d.contexts.iter().map(|(n, (c, u))| context_json(n, c, u)).collect();
    Ok(Resp::json(200, &json!({"contexts": items})))
}

pub(crate) fn upsert_context(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let db_id = cx.p(0).to_string();
    cx.database(&db_id)?;
    let body = cx.req.json_obj(false)?;
    let name = body.req_str("name")?;
    let content = body.req_str("content")?;
    check_context_name(&name)?;
    let now = now_rfc3339();
    let d = cx.ws.databases.get_mut(&db_id).expect("checked");
    d.contexts.insert(name.clone(), (content.clone(), now.clone()));
    Ok(Resp::json(200, &json!({"context": context_json(&name, &content, &now)})))
}

fn check_context_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 128
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ApiError::bad_request(format!("invalid context name `{name}`")));
    }
    Ok(())
}

pub(crate) fn get_context(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let name = cx.p(1).to_string();
    check_context_name(&name)?;
    let d = cx.database(cx.p(0))?;
    let (c, u) =
        d.contexts.get(&name).ok_or_else(|| ApiError::not_found(format!("context `{name}` not found")))?;
    Ok(Resp::json(200, &json!({"context": context_json(&name, c, u)})))
}

pub(crate) fn delete_context(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let (db_id, name) = (cx.p(0).to_string(), cx.p(1).to_string());
    check_context_name(&name)?;
    cx.database(&db_id)?;
    let d = cx.ws.databases.get_mut(&db_id).expect("checked");
    if d.contexts.remove(&name).is_none() {
        return Err(ApiError::not_found(format!("context `{name}` not found")));
    }
    Ok(Resp::empty(204))
}

pub(crate) fn fork(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let src_id = cx.p(0).to_string();
    let src = cx.database(&src_id)?.clone();
    let body = cx.req.json_obj(true)?;
    let name = body.opt_str("name")?;
    if let Some(n) = &name
        && name_taken(cx, n)
    {
        return Err(ApiError::conflict(format!("a database named `{n}` already exists")));
    }
    let description = body.opt_str("description")?;
    let expires = check_timestamp(body.opt_str("expires_at")?, "expires_at")?;
    let snapshot = cx.ws.next_table as i64 + 1;
    let forked = ForkedFrom {
        database_id: src.id.clone(),
        name: src.name.clone(),
        description: description.clone(),
        forked_at: now_rfc3339(),
        snapshot_id: snapshot,
    };
    let id = new_database(
        cx,
        name,
        Some(src.default_catalog.clone()),
        Some(src.default_schema.clone()),
        expires,
        &[],
        None,
        Some(forked),
        description,
    )?;
    // Copy tables of the default catalog.
    let new_conn = cx.ws.databases[&id].default_connection_id.clone();
    let schemas =
        cx.ws.connections.get(&src.default_connection_id).map(|c| c.schemas.clone()).unwrap_or_default();
    let mut copied = BTreeMap::new();
    for (sname, tables) in schemas {
        let mut out = BTreeMap::new();
        for (tname, mut t) in tables {
            let storage = cx.ws.storage_name();
            cx.ws
                .sql
                .copy_table(&t.storage, &storage, &t.columns)
                .map_err(|e| ApiError::new(500, "INTERNAL", e))?;
            t.storage = storage;
            t.locked_until = None;
            out.insert(tname, t);
        }
        copied.insert(sname, out);
    }
    if let Some(c) = cx.ws.connections.get_mut(&new_conn) {
        for (k, v) in copied {
            c.schemas.insert(k, v);
        }
    }
    let d = cx.ws.databases.get_mut(&id).expect("created");
    d.attachments = src.attachments.clone();
    d.contexts = src.contexts.clone();
    Ok(Resp::json(201, &create_json(&cx.ws.databases[&id], true)))
}

pub(crate) fn lineage(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0).to_string();
    let d = cx.database(&id)?.clone();
    let forks_limit = cx.req.q_usize("forks_limit")?.unwrap_or(100);
    let lookup =
        |x: &str| -> Option<Database> { cx.ws.databases.get(x).or_else(|| cx.ws.tombstones.get(x)).cloned() };
    let mut ancestors = Vec::new();
    let mut cur = d.forked_from.clone();
    let mut root = d.id.clone();
    let mut truncated = false;
    while let Some(f) = cur {
        if ancestors.len() >= 100 {
            truncated = true;
            break;
        }
        let rec = lookup(&f.database_id);
        ancestors.push(json!({
            "database_id": f.database_id,
            "name": rec.as_ref().and_then(|r| r.name.clone()).or(f.name.clone()),
            "description": rec.as_ref().and_then(|r| r.forked_from.as_ref().and_then(|x| x.description.clone())),
            "exists": cx.ws.databases.contains_key(&f.database_id),
            "forked_at": f.forked_at,
            "snapshot_id": f.snapshot_id,
        }));
        root = f.database_id.clone();
        cur = rec.and_then(|r| r.forked_from);
    }
    let children: Vec<&Database> = cx
        .ws
        .databases
        .values()
        .chain(cx.ws.tombstones.values())
        .filter(|c| c.forked_from.as_ref().is_some_and(|f| f.database_id == id))
        .collect();
    let forks: Vec<Json> = children
        .iter()
        .take(forks_limit)
        .map(|c| {
            let f = c.forked_from.as_ref().expect("filtered");
            json!({
                "database_id": c.id,
                "name": c.name,
                "description": f.description,
                "exists": cx.ws.databases.contains_key(&c.id),
                "forked_at": f.forked_at,
                "snapshot_id": f.snapshot_id,
            })
        })
        .collect();
    Ok(Resp::json(
        200,
        &json!({
            "database_id": id,
            "root_id": root,
            "ancestors": ancestors,
            "ancestors_truncated": truncated,
            "forks": forks,
            "fork_count": children.len(),
        }),
    ))
}
