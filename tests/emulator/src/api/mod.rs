//! Operation handlers.

pub(crate) mod connections;
pub(crate) mod databases;
pub(crate) mod misc;
pub(crate) mod queries;
pub(crate) mod uploads;
pub(crate) mod workspaces;

use serde_json::{Value as Json, json};

use crate::http::{ApiError, Req, Resp};
use crate::server::Shared;
use crate::sql::NameCtx;
use crate::state::{Database, IdGen, Job, Stamp, Workspace};

/// Everything a workspace-scoped handler needs.
pub(crate) struct Cx<'a> {
    pub sh: &'a Shared,
    pub ids: &'a mut IdGen,
    pub ws: &'a mut Workspace,
    pub req: &'a Req,
    pub params: &'a [String],
    /// The `X-Database-Id` header.
    pub db: Option<String>,
}

impl Cx<'_> {
    /// Path parameter `i`.
    pub(crate) fn p(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// Register a job that goes pending -> running -> done over two job steps.
    pub(crate) fn new_job(&mut self, job_type: &str, outcome: Result<Json, String>) -> String {
        let id = self.ids.id("job");
        let now = Stamp::now();
        let step = self.sh.cfg.job_step;
        self.ws.jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                job_type: job_type.to_string(),
                created: now,
                running_at: now.plus(step),
                done_at: now.plus(step * 2),
                outcome,
            },
        );
        id
    }

    /// When a job registered now would finish.
    pub(crate) fn job_done_at(&self) -> Stamp {
        Stamp::now().plus(self.sh.cfg.job_step * 2)
    }

    /// A database by id (404 otherwise).
    pub(crate) fn database(&self, id: &str) -> Result<&Database, ApiError> {
        self.ws.databases.get(id).ok_or_else(|| ApiError::not_found(format!("database `{id}` not found")))
    }
}

/// `SubmitJobResponse` for a job id.
pub(crate) fn submit_job_json(job: &Job) -> Json {
    json!({"id": job.id, "status": job.status(), "status_url": format!("/v1/jobs/{}", job.id)})
}

/// `JobStatusResponse`.
pub(crate) fn job_json(job: &Job) -> Json {
    let status = job.status();
    let done = matches!(status, "succeeded" | "failed");
    json!({
        "id": job.id,
        "job_type": job.job_type,
        "status": status,
        "attempts": 1,
        "created_at": job.created.rfc3339(),
        "completed_at": if done { Json::String(job.done_at.rfc3339()) } else { Json::Null },
        "error_message": match (&job.outcome, done) { (Err(e), true) => Json::String(e.clone()), _ => Json::Null },
        "result": match (&job.outcome, done) { (Ok(v), true) if !v.is_null() => v.clone(), _ => Json::Null },
    })
}

/// Name resolution for a query in an optional database.
pub(crate) fn name_ctx(
    ws: &Workspace,
    db: Option<&Database>,
    default_catalog: Option<&str>,
    default_schema: Option<&str>,
) -> NameCtx {
    let mut ctx = NameCtx::default();
    let mut add = |alias: &str, conn_id: &str| {
        if let Some(c) = ws.connections.get(conn_id) {
            let cat = ctx.catalogs.entry(alias.to_lowercase()).or_default();
            for (sname, tables) in &c.schemas {
                let s = cat.entry(sname.to_lowercase()).or_default();
                for (tname, t) in tables {
                    s.insert(tname.to_lowercase(), t.storage.clone());
                }
            }
        }
    };
    match db {
        Some(d) => {
            add(&d.default_catalog, &d.default_connection_id);
            for (cid, alias) in &d.attachments {
                let name = match alias {
                    Some(a) => a.clone(),
                    None => ws.connections.get(cid).map_or(cid.clone(), |c| c.name.clone()),
                };
                add(&name, cid);
            }
            ctx.default_catalog = Some(d.default_catalog.to_lowercase());
            ctx.default_schema = Some(d.default_schema.to_lowercase());
        }
        None => {
            for c in ws.connections.values() {
                add(&c.name, &c.id);
            }
        }
    }
    if let Some(c) = default_catalog {
        ctx.default_catalog = Some(c.to_lowercase());
    }
    if let Some(s) = default_schema {
        ctx.default_schema = Some(s.to_lowercase());
    }
    if ctx.default_schema.is_none() && ctx.default_catalog.is_some() {
        ctx.default_schema = Some("public".into());
    }
    ctx
}

/// Cursor pagination: items after the one keyed `cursor` (or, when that key is gone,
/// after the first key greater than it), at most `limit`.
pub(crate) fn cursor_page<T: Clone>(
    items: Vec<(String, T)>,
    cursor: Option<&str>,
    limit: usize,
) -> (Vec<T>, bool, Option<String>) {
    let start = match cursor {
        Some(c) if !c.is_empty() => match items.iter().position(|(k, _)| k == c) {
            Some(i) => i + 1,
            None => items.iter().position(|(k, _)| k.as_str() > c).unwrap_or(items.len()),
        },
        _ => 0,
    };
    let rest = &items[start..];
    let page: Vec<(String, T)> = rest.iter().take(limit).cloned().collect();
    let has_more = rest.len() > page.len();
    let next = if has_more { page.last().map(|(k, _)| k.clone()) } else { None };
    (page.into_iter().map(|(_, v)| v).collect(), has_more, next)
}

/// Dispatch a workspace-scoped operation.
pub(crate) fn handle(op: &str, mut cx: Cx<'_>) -> Result<Resp, ApiError> {
    match op {
        "list_connections" => connections::list(&mut cx),
        "create_connection" => connections::create(&mut cx),
        "get_connection" => connections::get(&mut cx),
        "delete_connection" => connections::delete(&mut cx),
        "add_managed_schema" => connections::add_schema(&mut cx, false),
        "add_database_schema" => connections::add_schema(&mut cx, true),
        "add_managed_table" => connections::add_table(&mut cx, false),
        "add_database_table" => connections::add_table(&mut cx, true),
        "delete_managed_table" => connections::delete_table(&mut cx),
        "set_managed_table_constant_per_key" => connections::constant_per_key(&mut cx, false),
        "set_database_table_constant_per_key" => connections::constant_per_key(&mut cx, true),
        "load_managed_table" => connections::load(&mut cx, false),
        "load_database_table" => connections::load(&mut cx, true),
        "list_indexes" => connections::list_indexes(&mut cx),
        "create_index" => connections::create_index(&mut cx),
        "delete_index" => connections::delete_index(&mut cx),
        "get_table_profile" => connections::profile(&mut cx),
        "information_schema" => connections::information_schema(&mut cx),
        "list_indexes_collection" => connections::list_indexes_collection(&mut cx),
        "list_databases" => databases::list(&mut cx),
        "create_database" => databases::create(&mut cx),
        "bulk_create_databases" => databases::bulk_create(&mut cx),
        "get_database_batch" => databases::get_batch(&mut cx),
        "delete_database_batch" => databases::delete_batch(&mut cx),
        "lookup_database_by_name" => databases::by_name(&mut cx),
        "count_databases" => databases::count(&mut cx),
        "get_database" => databases::get(&mut cx),
        "delete_database" => databases::delete(&mut cx),
        "attach_database_catalog" => databases::attach(&mut cx),
        "detach_database_catalog" => databases::detach(&mut cx),
        "list_database_contexts" => databases::list_contexts(&mut cx),
        "upsert_database_context" => databases::upsert_context(&mut cx),
        "get_database_context" => databases::get_context(&mut cx),
        "delete_database_context" => databases::delete_context(&mut cx),
        "fork_database" => databases::fork(&mut cx),
        "get_database_lineage" => databases::lineage(&mut cx),
        "list_embedding_providers" => misc::list_providers(&mut cx),
        "create_embedding_provider" => misc::create_provider(&mut cx),
        "get_embedding_provider" => misc::get_provider(&mut cx),
        "update_embedding_provider" => misc::update_provider(&mut cx),
        "delete_embedding_provider" => misc::delete_provider(&mut cx),
        "list_jobs" => misc::list_jobs(&mut cx),
        "get_job" => misc::get_job(&mut cx),
        "get_usage" => misc::usage(&mut cx),
        "list_saved_queries" => queries::list_saved(&mut cx),
        "create_saved_query" => queries::create_saved(&mut cx),
        "get_saved_query" => queries::get_saved(&mut cx),
        "update_saved_query" => queries::update_saved(&mut cx),
        "delete_saved_query" => queries::delete_saved(&mut cx),
        "execute_saved_query" => queries::execute_saved(&mut cx),
        "list_saved_query_versions" => queries::list_versions(&mut cx),
        "query" => queries::query(&mut cx),
        "list_query_runs" => queries::list_runs(&mut cx),
        "get_query_run" => queries::get_run(&mut cx),
        "list_results" => queries::list_results(&mut cx),
        "get_result" => queries::get_result(&mut cx),
        "create_upload_session_handler" => uploads::create(&mut cx),
        "create_upload_sessions_batch_handler" => uploads::create_batch(&mut cx),
        "finalize_upload_handler" => uploads::finalize(&mut cx),
        "mint_upload_parts_handler" => uploads::mint(&mut cx),
        "list_uploads" => uploads::list_files(&mut cx),
        "upload_file" => uploads::upload_file(&mut cx),
        _ => Err(ApiError::not_found(format!("unknown operation {op}"))),
    }
}

/// Parse `limit` with a default and maximum.
pub(crate) fn limit_param(req: &Req, default: usize, max: usize) -> Result<usize, ApiError> {
    Ok(req.q_usize("limit")?.unwrap_or(default).min(max))
}
