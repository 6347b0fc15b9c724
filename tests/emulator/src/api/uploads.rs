//! Upload sessions, presigned-style object storage, and the legacy raw upload.
//!
//! Storage URLs look like `{base}/_storage/{workspace}/{upload_id}` (single PUT) and
//! `{base}/_storage/{workspace}/{upload_id}/{part_number}` (multipart), with
//! `X-Expires` (unix seconds) and `X-Signature` query parameters.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};

use super::Cx;
use crate::http::{ApiError, Obj, Req, Resp};
use crate::lock;
use crate::router::Routed;
use crate::server::Shared;
use crate::state::{Object, Upload, UploadMode};
use crate::util::{hash64, hex128, now_rfc3339, percent_encode};

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn storage_path(ws: &str, upload: &str, part: Option<u32>) -> String {
    match part {
        Some(n) => format!("/_storage/{}/{}/{n}", percent_encode(ws), percent_encode(upload)),
        None => format!("/_storage/{}/{}", percent_encode(ws), percent_encode(upload)),
    }
}

fn signature(sh: &Shared, path: &str, expires: u64) -> String {
    format!("{:016x}", hash64(sh.secret, &[path.as_bytes(), &expires.to_le_bytes()]))
}

/// A presigned URL for an upload (and part).
pub(crate) fn presign(sh: &Shared, ws: &str, upload: &str, part: Option<u32>) -> String {
    let path = storage_path(ws, upload, part);
    let exp = unix_now() + sh.cfg.part_url_ttl.as_secs();
    let sig = signature(sh, &path, exp);
    format!("{}{path}?X-Expires={exp}&X-Signature={sig}", sh.base_url)
}

fn unsupported() -> ApiError {
    ApiError::new(
        501,
        "PRESIGN_UNSUPPORTED",
        "this server cannot presign storage URLs; send the data inline on the load endpoint \
         or use POST /v1/files",
    )
}

fn new_session(cx: &mut Cx<'_>, b: &Obj) -> Result<Json, ApiError> {
    let cfg = &cx.sh.cfg;
    let declared = b.opt_i64("declared_size_bytes")?;
    let hint = b.opt_i64("part_size")?;
    if declared.is_some_and(|d| d < 0) || hint.is_some_and(|h| h < 0) {
        return Err(ApiError::bad_request("sizes must be non-negative"));
    }
    let algo = b.opt_str("checksum_algo")?;
    let value = b.opt_str("checksum_value")?;
    match (&algo, &value) {
        (Some(a), Some(_)) if a.eq_ignore_ascii_case("sha256") => {}
        (None, None) => {}
        (Some(a), _) if !a.eq_ignore_ascii_case("sha256") => {
            return Err(ApiError::bad_request(format!("unsupported checksum_algo `{a}` (only sha256)")));
        }
        _ => {
            return Err(ApiError::bad_request("checksum_algo and checksum_value go together"));
        }
    }
    let declared = declared.map(|d| d as u64);
    if let Some(d) = declared
        && d > cfg.max_upload_bytes
    {
        return Err(ApiError::new(
            400,
            "UPLOAD_TOO_LARGE",
            format!(
                "declared size {d} exceeds the {} byte limit; split into several uploads",
                cfg.max_upload_bytes
            ),
        ));
    }
    let mode = match declared {
        Some(d) if d <= cfg.single_put_max => UploadMode::Single,
        _ => UploadMode::Multipart,
    };
    let mut part_size = hint
        .map(|h| h as u64)
        .filter(|h| *h > 0)
        .unwrap_or(cfg.default_part_size)
        .clamp(cfg.min_part_size.max(1), cfg.max_part_size);
    let ceiling = declared.unwrap_or(cfg.max_upload_bytes);
    part_size = part_size.max(ceiling.div_ceil(u64::from(cfg.max_parts)));
    let id = cx.ids.id("upl");
    let token = cx.ids.token("uft");
    let up = Upload {
        id: id.clone(),
        finalize_token: token.clone(),
        mode,
        declared,
        part_size,
        content_type: b.opt_str("content_type")?,
        filename: b.opt_str("filename")?,
        parts: BTreeMap::new(),
        object: None,
        finalized: None,
        created_at: now_rfc3339(),
    };
    let ws = cx.ws.public_id.clone();
    let mut out = json!({
        "upload_id": id, "finalize_token": token,
        "mode": if mode == UploadMode::Single { "single" } else { "multipart" },
        "headers": {},
    });
    match mode {
        UploadMode::Single => out["url"] = json!(presign(cx.sh, &ws, &id, None)),
        UploadMode::Multipart => {
            out["part_size"] = json!(part_size);
            if let Some(n) = up.expected_parts() {
                let urls: Vec<String> = (1..=n).map(|i| presign(cx.sh, &ws, &id, Some(i))).collect();
                out["part_urls"] = json!(urls);
            }
        }
    }
    cx.ws.uploads.insert(id, up);
    Ok(out)
}

pub(crate) fn create(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let b = cx.req.json_obj(false)?;
    if !cx.sh.cfg.presign {
        return Err(unsupported());
    }
    let out = new_session(cx, &b)?;
    Ok(Resp::json(201, &out))
}

pub(crate) fn create_batch(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let b = cx.req.json_obj(false)?;
    if !cx.sh.cfg.presign {
        return Err(unsupported());
    }
    let items = b.objects("uploads")?;
    if items.is_empty() || items.len() > 100 {
        return Err(ApiError::bad_request("`uploads` must hold 1 to 100 items"));
    }
    let mut out = Vec::new();
    for i in &items {
        out.push(new_session(cx, i)?);
    }
    Ok(Resp::json(201, &json!({"uploads": out})))
}

fn session<'a>(cx: &'a mut Cx<'_>) -> Result<&'a mut Upload, ApiError> {
    let id = cx.p(0).to_string();
    let token = cx.req.header("x-upload-finalize-token").unwrap_or("").to_string();
    if token.is_empty() {
        return Err(ApiError::bad_request("missing X-Upload-Finalize-Token header"));
    }
    let u =
        cx.ws.uploads.get_mut(&id).ok_or_else(|| ApiError::not_found(format!("upload `{id}` not found")))?;
    if u.finalize_token != token {
        return Err(ApiError::new(
            400,
            "INVALID_FINALIZE_TOKEN",
            "X-Upload-Finalize-Token does not match this upload",
        ));
    }
    Ok(u)
}

pub(crate) fn mint(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let b = cx.req.json_obj(false)?;
    if !cx.sh.cfg.presign {
        return Err(unsupported());
    }
    let nums =
        b.opt_list("part_numbers")?.ok_or_else(|| ApiError::bad_request("`part_numbers` is required"))?;
    let max_parts = cx.sh.cfg.max_parts;
    let u = session(cx)?.clone();
    if u.finalized.is_some() {
        return Err(ApiError::new(400, "ALREADY_FINALIZED", "upload already finalized"));
    }
    if u.mode != UploadMode::Multipart {
        return Err(ApiError::bad_request("part URLs exist only for multipart uploads"));
    }
    if nums.is_empty() || nums.len() > 1000 {
        return Err(ApiError::bad_request("`part_numbers` must hold 1 to 1000 numbers"));
    }
    let limit = u.expected_parts().unwrap_or(max_parts);
    let mut set = std::collections::BTreeSet::new();
    for n in nums {
        let n = n
            .as_i64()
            .filter(|n| *n >= 1 && *n <= i64::from(limit))
            .ok_or_else(|| ApiError::bad_request(format!("part numbers must be between 1 and {limit}")))?;
        set.insert(n as u32);
    }
    let ws = cx.ws.public_id.clone();
    let parts: Vec<Json> = set
        .into_iter()
        .map(|n| json!({"part_number": n, "url": presign(cx.sh, &ws, &u.id, Some(n))}))
        .collect();
    Ok(Resp::json(200, &json!({"parts": parts})))
}

fn finalize_json(u: &Upload) -> Json {
    json!({
        "upload_id": u.id,
        "status": "finalized",
        "size_bytes": u.object.as_ref().map_or(0, Object::len),
        "created_at": u.created_at,
        "content_type": u.content_type,
    })
}

pub(crate) fn finalize(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let b = cx.req.json_obj(true)?;
    let min_part = cx.sh.cfg.min_part_size;
    let max_upload = cx.sh.cfg.max_upload_bytes;
    let u = session(cx)?;
    if u.finalized.is_some() {
        return Err(ApiError::new(400, "ALREADY_FINALIZED", "upload already finalized"));
    }
    if b.has("parts") && b.raw("parts").is_none() {
        return Err(ApiError::bad_request("`parts` must be an array when present, not null"));
    }
    let object = match u.mode {
        UploadMode::Single => {
            if b.raw("parts").is_some() {
                return Err(ApiError::bad_request("single uploads are finalized with `{}`"));
            }
            u.object.clone().ok_or_else(|| {
                ApiError::new(400, "OBJECT_MISSING", "nothing was uploaded to the single URL")
            })?
        }
        UploadMode::Multipart => {
            let parts = b.objects("parts")?;
            if parts.is_empty() {
                return Err(ApiError::bad_request("multipart uploads need `parts`"));
            }
            let mut last = 0i64;
            let mut data = Vec::with_capacity(parts.len());
            let count = parts.len();
            for (i, p) in parts.iter().enumerate() {
                let n = p
                    .opt_i64("part_number")?
                    .ok_or_else(|| ApiError::bad_request("each part needs `part_number`"))?;
                let tag = p.req_str("e_tag")?;
                if n <= last {
                    return Err(ApiError::new(
                        400,
                        "INVALID_PART_ORDER",
                        "parts must be listed in ascending part_number order without repeats",
                    ));
                }
                last = n;
                let (bytes, etag) = u.parts.get(&(n as u32)).ok_or_else(|| {
                    ApiError::new(400, "INVALID_PART", format!("part {n} was never uploaded"))
                })?;
                if etag != &tag {
                    return Err(ApiError::new(
                        400,
                        "INVALID_PART",
                        format!("ETag of part {n} does not match (expected {etag}, got {tag})"),
                    ));
                }
                if i + 1 < count && (bytes.len() as u64) < min_part {
                    return Err(ApiError::new(
                        400,
                        "ENTITY_TOO_SMALL",
                        format!(
                            "part {n} is {} bytes; non-final parts must be at least {min_part}",
                            bytes.len()
                        ),
                    ));
                }
                data.push(bytes.clone());
            }
            Object::from_parts(data)
        }
    };
    let size = object.len() as u64;
    match u.declared {
        Some(d) if d != size => {
            return Err(ApiError::new(
                400,
                "SIZE_MISMATCH",
                format!("declared {d} bytes but {size} were uploaded"),
            ));
        }
        None if size == 0 => {
            return Err(ApiError::bad_request("streaming uploads must not be empty"));
        }
        None if size > max_upload => {
            return Err(ApiError::new(
                400,
                "UPLOAD_TOO_LARGE",
                format!("upload is {size} bytes; the limit is {max_upload}"),
            ));
        }
        _ => {}
    }
    u.object = Some(object);
    u.parts.clear();
    u.finalized = Some(now_rfc3339());
    Ok(Resp::json(200, &finalize_json(u)))
}

pub(crate) fn list_files(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let items: Vec<Json> = cx
        .ws
        .uploads
        .values()
        .filter(|u| u.finalized.is_some())
        .map(|u| {
            json!({"id": u.id, "status": "finalized", "size_bytes": u.object.as_ref().map_or(0, Object::len),
                   "created_at": u.created_at, "content_type": u.content_type})
        })
        .collect();
    Ok(Resp::json(200, &json!({"uploads": items})))
}

pub(crate) fn upload_file(cx: &mut Cx<'_>) -> Result<Resp, ApiError> {
    let data = cx.req.body.clone();
    if data.len() as u64 > cx.sh.cfg.max_upload_bytes {
        return Err(ApiError::bad_request("upload too large"));
    }
    let ct = cx
        .req
        .header("content-type")
        .filter(|c| !c.starts_with("application/octet-stream"))
        .map(str::to_string);
    let id = cx.ids.id("upl");
    let token = cx.ids.token("uft");
    let now = now_rfc3339();
    let u = Upload {
        id: id.clone(),
        finalize_token: token,
        mode: UploadMode::Single,
        declared: Some(data.len() as u64),
        part_size: 0,
        content_type: ct.clone(),
        filename: None,
        parts: BTreeMap::new(),
        object: Some(Object::from_parts(vec![data.clone()])),
        finalized: Some(now.clone()),
        created_at: now.clone(),
    };
    cx.ws.uploads.insert(id.clone(), u);
    Ok(Resp::json(
        201,
        &json!({"id": id, "status": "uploaded", "size_bytes": data.len(), "created_at": now, "content_type": ct}),
    ))
}

fn s3(status: u16, code: &str, msg: impl Into<String>) -> ApiError {
    ApiError::new(status, code, msg).xml()
}

/// `PUT`/`GET` on a presigned URL. No bearer auth: the signature authorises.
pub(crate) fn storage(sh: &Shared, r: &Routed, req: &Req) -> Result<Resp, ApiError> {
    if req.headers.contains_key("authorization") || req.headers.contains_key("x-workspace-id") {
        return Err(s3(
            403,
            "AccessDenied",
            "storage requests must not carry Authorization or X-Workspace-Id",
        ));
    }
    let (ws, upload, part) = match r.params.as_slice() {
        [w, u] => (w.clone(), u.clone(), None),
        [w, u, p] => match p.parse::<u32>() {
            Ok(n) => (w.clone(), u.clone(), Some(n)),
            Err(_) => return Err(s3(400, "InvalidArgument", "bad part number")),
        },
        _ => return Err(s3(404, "NoSuchKey", "no such object")),
    };
    let path = storage_path(&ws, &upload, part);
    let exp: u64 = req
        .q("X-Expires")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| s3(403, "AccessDenied", "missing X-Expires"))?;
    let sig = req.q("X-Signature").unwrap_or("");
    if sig != signature(sh, &path, exp) {
        return Err(s3(403, "SignatureDoesNotMatch", "the request signature does not match"));
    }
    if unix_now() > exp {
        return Err(s3(403, "AccessDenied", "Request has expired"));
    }
    // Hashed before taking the state lock: parts in flight hash in parallel and do not hold
    // up every other request.
    let put_etag = (r.op == "storage_put").then(|| format!("\"{}\"", hex128(&[&req.body])));
    let mut st = lock(&sh.state);
    let u = st
        .workspaces
        .get_mut(&ws)
        .and_then(|w| w.uploads.get_mut(&upload))
        .ok_or_else(|| s3(404, "NoSuchUpload", "the upload does not exist"))?;
    if r.op == "storage_get" {
        return match (&u.object, u.finalized.is_some() || u.mode == UploadMode::Single) {
            (Some(o), true) => {
                let o = o.bytes();
                Ok(Resp::raw(200, "application/octet-stream", o.clone())
                    .header("etag", format!("\"{}\"", hex128(&[&o]))))
            }
            _ => Err(s3(404, "NoSuchKey", "no such object")),
        };
    }
    if r.op != "storage_put" {
        return Err(s3(405, "MethodNotAllowed", "use PUT"));
    }
    if u.finalized.is_some() {
        return Err(s3(404, "NoSuchUpload", "the upload was already completed"));
    }
    let body = req.body.clone();
    let etag = put_etag.unwrap_or_default();
    match (u.mode, part) {
        (UploadMode::Single, None) => {
            u.object = Some(Object::from_parts(vec![body]));
        }
        (UploadMode::Multipart, Some(n)) => {
            let limit = u.expected_parts().unwrap_or(sh.cfg.max_parts);
            if n < 1 || n > limit {
                return Err(s3(400, "InvalidArgument", format!("part number must be between 1 and {limit}")));
            }
            if body.len() as u64 > u.part_size {
                return Err(s3(
                    400,
                    "EntityTooLarge",
                    format!("part is {} bytes; the session part size is {}", body.len(), u.part_size),
                ));
            }
            u.parts.insert(n, (body, etag.clone()));
        }
        _ => return Err(s3(400, "InvalidRequest", "URL does not match the upload mode")),
    }
    Ok(Resp::empty(200).header("etag", etag))
}
