//! Embedding providers, jobs and usage.

use serde_json::{Value as Json, json};

use super::{Cx, job_json};
use crate::http::{ApiError, Resp};
use crate::state::Provider;
use crate::util::now_rfc3339;

fn provider_json(p: &Provider) -> Json {
    json!({
        "id": p.id, "name": p.name, "provider_type": p.provider_type, "config": p.config,
        "has_secret": p.has_secret, "source": "user",
        "created_at": p.created_at, "updated_at": p.updated_at,
    })
}

pub(crate) fn list_providers(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let items: Vec<Json> = cx.ws.providers.values().map(provider_json).collect();
    Ok(Resp::json(200, &json!({"embedding_providers": items})))
}

pub(crate) fn create_provider(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(false)?;
    let name = body.req_str("name")?;
    let provider_type = body.req_str("provider_type")?;
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("`name` must not be empty"));
    }
    let config = match body.raw("config") {
        None => json!({}),
        Some(v @ Json::Object(_)) => v.clone(),
        Some(_) => return Err(ApiError::bad_request("`config` must be an object")),
    };
    let has_secret = body.opt_str("api_key")?.is_some() || body.opt_str("secret_name")?.is_some();
    if cx.ws.providers.values().any(|p| p.name == name) {
        return Err(ApiError::conflict(format!("an embedding provider named `{name}` exists")));
    }
    let id = cx.ids.id("ep");
    let now = now_rfc3339();
    let p = Provider {
        id: id.clone(),
        name,
        provider_type,
        config,
        has_secret,
        created_at: now.clone(),
        updated_at: now,
    };
    let out = json!({
        "id": p.id, "name": p.name, "provider_type": p.provider_type,
        "config": p.config, "created_at": p.created_at,
    });
    cx.ws.providers.insert(id, p);
    Ok(Resp::json(201, &out))
}

fn provider<'a>(cx: &'a mut Cx<'_>) -> Result<&'a mut Provider, ApiError> {
    let id = cx.p(0).to_string();
    cx.ws
        .providers
        .get_mut(&id)
        .ok_or_else(|| ApiError::not_found(format!("embedding provider `{id}` not found")))
}

pub(crate) fn get_provider(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let p = provider(cx)?;
    Ok(Resp::json(200, &provider_json(p)))
}

pub(crate) fn update_provider(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let body = cx.req.json_obj(true)?;
    let name = body.opt_str("name")?;
    let api_key = body.opt_str("api_key")?;
    let secret = body.opt_str("secret_name")?;
    provider(cx)?;
    if let Some(n) = &name {
        let me = cx.p(0).to_string();
        if cx.ws.providers.values().any(|p| &p.name == n && p.id != me) {
            return Err(ApiError::conflict(format!("an embedding provider named `{n}` exists")));
        }
    }
    let p = provider(cx)?;
    if let Some(n) = name {
        p.name = n;
    }
    if let Some(c) = body.raw("config") {
        p.config = c.clone();
    }
    if api_key.is_some() || secret.is_some() {
        p.has_secret = true;
    }
    p.updated_at = now_rfc3339();
    Ok(Resp::json(200, &json!({"id": p.id, "name": p.name, "updated_at": p.updated_at})))
}

pub(crate) fn delete_provider(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0).to_string();
    if cx.ws.providers.remove(&id).is_none() {
        return Err(ApiError::not_found(format!("embedding provider `{id}` not found")));
    }
    Ok(Resp::empty(204))
}

pub(crate) fn list_jobs(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let limit = cx.req.q_usize("limit")?.unwrap_or(50).min(1000);
    let offset = cx.req.q_usize("offset")?.unwrap_or(0);
    let (jt, js) = (cx.req.q("job_type"), cx.req.q("status"));
    let mut jobs: Vec<Json> = cx
        .ws
        .jobs
        .values()
        .rev()
        .filter(|j| jt.is_none_or(|t| t.is_empty() || t == j.job_type))
        .filter(|j| js.is_none_or(|s| s.is_empty() || s == j.status()))
        .map(job_json)
        .collect();
    let jobs: Vec<Json> = jobs.drain(..).skip(offset).take(limit).collect();
    Ok(Resp::json(200, &json!({"jobs": jobs})))
}

pub(crate) fn get_job(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let id = cx.p(0);
    let j = cx.ws.jobs.get(id).ok_or_else(|| ApiError::not_found(format!("job `{id}` not found")))?;
    Ok(Resp::json(200, &job_json(j)))
}

pub(crate) fn usage(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let since = cx
        .req
        .q("since")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| cx.ws.created.rfc3339());
    Ok(Resp::json(
        200,
        &json!({
            "since": since,
            "query_count": cx.ws.query_count,
            "bytes_scanned": cx.ws.bytes_scanned,
            "storage_bytes": cx.ws.storage_bytes(),
            "storage_captured_at": now_rfc3339(),
        }),
    ))
}
