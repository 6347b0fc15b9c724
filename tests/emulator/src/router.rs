//! Routing to operations, authentication and scoping, and dispatch to handlers.

use http::Method;

use crate::api;
use crate::http::{ApiError, Req, Resp};
use crate::lock;
use crate::server::Shared;
use crate::state::State;

/// A routed request.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub op: String,
    pub params: Vec<String>,
    /// Storage part number, for fault targeting.
    pub part: Option<u32>,
    /// Path exists but not with this method.
    pub wrong_method: bool,
}

/// (method, pattern, operationId). `{}` is a parameter. Literal routes come first.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/v1/workspaces", "list_workspaces"),
    ("POST", "/v1/workspaces", "create_workspace"),
    ("DELETE", "/v1/workspaces/{}", "delete_workspace"),
    ("GET", "/v1/connections", "list_connections"),
    ("POST", "/v1/connections", "create_connection"),
    ("GET", "/v1/connections/{}", "get_connection"),
    ("DELETE", "/v1/connections/{}", "delete_connection"),
    ("POST", "/v1/connections/{}/schemas", "add_managed_schema"),
    ("POST", "/v1/connections/{}/schemas/{}/tables", "add_managed_table"),
    ("DELETE", "/v1/connections/{}/schemas/{}/tables/{}", "delete_managed_table"),
    ("PUT", "/v1/connections/{}/schemas/{}/tables/{}/constant-per-key", "set_managed_table_constant_per_key"),
    ("POST", "/v1/connections/{}/schemas/{}/tables/{}/loads", "load_managed_table"),
    ("GET", "/v1/connections/{}/tables/{}/{}/indexes", "list_indexes"),
    ("POST", "/v1/connections/{}/tables/{}/{}/indexes", "create_index"),
    ("DELETE", "/v1/connections/{}/tables/{}/{}/indexes/{}", "delete_index"),
    ("GET", "/v1/connections/{}/tables/{}/{}/profile", "get_table_profile"),
    ("GET", "/v1/databases", "list_databases"),
    ("POST", "/v1/databases", "create_database"),
    ("POST", "/v1/databases/bulk", "bulk_create_databases"),
    ("GET", "/v1/databases/bulk/{}", "get_database_batch"),
    ("DELETE", "/v1/databases/bulk/{}", "delete_database_batch"),
    ("GET", "/v1/databases/by-name", "lookup_database_by_name"),
    ("GET", "/v1/databases/count", "count_databases"),
    ("GET", "/v1/databases/{}", "get_database"),
    ("DELETE", "/v1/databases/{}", "delete_database"),
    ("POST", "/v1/databases/{}/catalogs", "attach_database_catalog"),
    ("DELETE", "/v1/databases/{}/catalogs/{}", "detach_database_catalog"),
    ("GET", "/v1/databases/{}/context", "list_database_contexts"),
    ("POST", "/v1/databases/{}/context", "upsert_database_context"),
    ("GET", "/v1/databases/{}/context/{}", "get_database_context"),
    ("DELETE", "/v1/databases/{}/context/{}", "delete_database_context"),
    ("POST", "/v1/databases/{}/fork", "fork_database"),
    ("GET", "/v1/databases/{}/lineage", "get_database_lineage"),
    ("POST", "/v1/databases/{}/schemas", "add_database_schema"),
    ("POST", "/v1/databases/{}/schemas/{}/tables", "add_database_table"),
    ("PUT", "/v1/databases/{}/schemas/{}/tables/{}/constant-per-key", "set_database_table_constant_per_key"),
    ("POST", "/v1/databases/{}/schemas/{}/tables/{}/loads", "load_database_table"),
    ("GET", "/v1/embedding-providers", "list_embedding_providers"),
    ("POST", "/v1/embedding-providers", "create_embedding_provider"),
    ("GET", "/v1/embedding-providers/{}", "get_embedding_provider"),
    ("PUT", "/v1/embedding-providers/{}", "update_embedding_provider"),
    ("DELETE", "/v1/embedding-providers/{}", "delete_embedding_provider"),
    ("GET", "/v1/indexes", "list_indexes_collection"),
    ("GET", "/v1/information_schema", "information_schema"),
    ("GET", "/v1/jobs", "list_jobs"),
    ("GET", "/v1/jobs/{}", "get_job"),
    ("GET", "/v1/queries", "list_saved_queries"),
    ("POST", "/v1/queries", "create_saved_query"),
    ("GET", "/v1/queries/{}", "get_saved_query"),
    ("PUT", "/v1/queries/{}", "update_saved_query"),
    ("DELETE", "/v1/queries/{}", "delete_saved_query"),
    ("POST", "/v1/queries/{}/execute", "execute_saved_query"),
    ("GET", "/v1/queries/{}/versions", "list_saved_query_versions"),
    ("POST", "/v1/query", "query"),
    ("GET", "/v1/query-runs", "list_query_runs"),
    ("GET", "/v1/query-runs/{}", "get_query_run"),
    ("GET", "/v1/results", "list_results"),
    ("GET", "/v1/results/{}", "get_result"),
    ("POST", "/v1/uploads", "create_upload_session_handler"),
    ("POST", "/v1/uploads/batch", "create_upload_sessions_batch_handler"),
    ("POST", "/v1/uploads/{}/finalize", "finalize_upload_handler"),
    ("POST", "/v1/uploads/{}/parts", "mint_upload_parts_handler"),
    ("GET", "/v1/usage", "get_usage"),
    // Retired, still spoken for the presign-unsupported mode.
    ("GET", "/v1/files", "list_uploads"),
    ("POST", "/v1/files", "upload_file"),
    // The control routes (`crate::control`): reached only when they are on and the request
    // passed the gate.
    ("GET", "/_emulator/health", "emulator_health"),
    ("GET", "/_emulator/faults", "emulator_faults_list"),
    ("POST", "/_emulator/faults", "emulator_faults_add"),
    ("DELETE", "/_emulator/faults", "emulator_faults_clear"),
    ("GET", "/_emulator/requests", "emulator_requests_list"),
    ("DELETE", "/_emulator/requests", "emulator_requests_clear"),
    ("GET", "/_emulator/uploads/{}", "emulator_upload_object"),
    ("POST", "/_emulator/results", "emulator_store_result"),
    ("POST", "/_emulator/reset", "emulator_reset"),
    ("GET", "/_emulator/instances", "emulator_instances_list"),
    ("POST", "/_emulator/instances", "emulator_instances_start"),
    ("DELETE", "/_emulator/instances", "emulator_instances_stop_all"),
    ("DELETE", "/_emulator/instances/{}", "emulator_instances_stop"),
];

impl Routed {
    /// No route: 404 like any unknown path.
    pub(crate) fn unknown() -> Routed {
        Routed { op: "unknown".into(), params: vec![], part: None, wrong_method: false }
    }
}

/// Operations that need `X-Database-Id`.
const NEEDS_DATABASE: &[&str] = &[
    "list_indexes_collection",
    "execute_saved_query",
    "list_query_runs",
    "get_query_run",
    "list_results",
    "get_result",
];

fn decode_segment(s: &str) -> String {
    crate::util::percent_decode(&s.replace('+', "%2B"))
}

/// Find the operation for a method and path.
pub(crate) fn route(method: &Method, path: &str) -> Routed {
    if let Some(rest) = path.strip_prefix("/_storage/") {
        let segs: Vec<&str> = rest.split('/').collect();
        let part = if segs.len() == 3 { segs[2].parse().ok() } else { None };
        let op = match *method {
            Method::PUT => "storage_put",
            Method::GET | Method::HEAD => "storage_get",
            _ => "storage_unknown",
        };
        return Routed {
            op: op.into(),
            params: segs.iter().map(|s| decode_segment(s)).collect(),
            part,
            wrong_method: false,
        };
    }
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut path_matched = false;
    for (m, pat, op) in ROUTES {
        let psegs: Vec<&str> = pat.split('/').collect();
        if psegs.len() != segs.len() {
            continue;
        }
        let mut params = Vec::new();
        let mut ok = true;
        for (p, s) in psegs.iter().zip(segs.iter()) {
            if *p == "{}" {
                if s.is_empty() {
                    ok = false;
                    break;
                }
                params.push(decode_segment(s));
            } else if p != s {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        // A literal sibling (e.g. /v1/databases/count) must not fall through to {id}
        // for another method.
        if method.as_str() == *m {
            return Routed { op: op.to_string(), params, part: None, wrong_method: false };
        }
        path_matched = true;
    }
    Routed { wrong_method: path_matched, ..Routed::unknown() }
}

/// Which ops use the `Error` envelope (`{"error":"..."}`).
fn plain_envelope(op: &str) -> bool {
    matches!(op, "list_workspaces" | "create_workspace" | "delete_workspace")
}

/// Authenticate, scope and run one request.
pub(crate) fn dispatch(sh: &Shared, r: &Routed, req: &Req) -> Resp {
    match dispatch_inner(sh, r, req) {
        Ok(resp) => resp,
        Err(mut e) => {
            if plain_envelope(&r.op) {
                e = e.plain();
            }
            e.into_resp()
        }
    }
}

fn check_bearer(st: &State, req: &Req) -> Result<(), ApiError> {
    let h = req.header("authorization").unwrap_or("");
    let token = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")).map(str::trim);
    match token {
        Some(t) if st.api_keys.iter().any(|k| k == t) => Ok(()),
        Some(_) => Err(ApiError::new(401, "UNAUTHORIZED", "invalid API key")),
        None => Err(ApiError::new(
            401,
            "UNAUTHORIZED",
            "missing bearer token: send `Authorization: Bearer <api key>`",
        )),
    }
}

fn dispatch_inner(sh: &Shared, r: &Routed, req: &Req) -> Result<Resp, ApiError> {
    if r.op.starts_with("storage_") {
        return api::uploads::storage(sh, r, req);
    }
    if r.op.starts_with("emulator_") {
        return crate::control::dispatch(sh, r, req);
    }
    if r.op == "unknown" {
        return Err(if r.wrong_method {
            ApiError::new(405, "METHOD_NOT_ALLOWED", "method not allowed")
        } else {
            ApiError::not_found(format!("no route for {} {}", req.method, req.path))
        });
    }
    let mut st = lock(&sh.state);
    check_bearer(&st, req)?;
    if plain_envelope(&r.op) {
        return api::workspaces::handle(sh, &mut st, r, req);
    }
    let ws_id = match req.header("x-workspace-id") {
        Some(w) if !w.trim().is_empty() => w.trim().to_string(),
        _ => {
            return Err(ApiError::new(404, "WORKSPACE_NOT_FOUND", "missing X-Workspace-Id header"));
        }
    };
    let db_header = req.header("x-database-id").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    if NEEDS_DATABASE.contains(&r.op.as_str()) && db_header.is_none() {
        return Err(ApiError::bad_request("missing X-Database-Id header (required for this operation)"));
    }
    let State { ids, workspaces, .. } = &mut *st;
    let ws = workspaces
        .get_mut(&ws_id)
        .ok_or_else(|| ApiError::new(404, "WORKSPACE_NOT_FOUND", format!("workspace `{ws_id}` not found")))?;
    if let Some(db) = &db_header
        && NEEDS_DATABASE.contains(&r.op.as_str())
        && !ws.databases.contains_key(db)
    {
        return Err(ApiError::not_found(format!("database `{db}` not found")));
    }
    let cx = api::Cx { sh, ids, ws, req, params: &r.params, db: db_header };
    api::handle(&r.op, cx)
}
