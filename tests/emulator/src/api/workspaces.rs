//! Workspace management (`Error` envelope, no `X-Workspace-Id`).

use serde_json::json;

use crate::http::{ApiError, Req, Resp};
use crate::router::Routed;
use crate::server::Shared;
use crate::state::{State, Workspace};

pub(crate) fn handle(sh: &Shared, st: &mut State, r: &Routed, req: &Req) -> Result<Resp, ApiError> {
    match r.op.as_str() {
        "list_workspaces" => {
            if let Some(org) = req.q("organization_public_id")
                && !org.is_empty()
                && org != st.organization_id
            {
                return Err(ApiError::not_found(format!("organization `{org}` not found")));
            }
            let first = sh.cfg.workspaces.first().cloned().unwrap_or_default();
            let items: Vec<_> = st
                .workspaces
                .values()
                .map(|w| {
                    json!({
                        "public_id": w.public_id,
                        "name": w.name,
                        "active": w.public_id == first,
                        "favorite": false,
                        "provision_status": "ready",
                    })
                })
                .collect();
            Ok(Resp::json(200, &json!({"ok": true, "workspaces": items})))
        }
        "create_workspace" => {
            let body = req.json_obj(false)?;
            let name = body.req_str("name")?;
            if name.trim().is_empty() {
                return Err(ApiError::new(422, "UNPROCESSABLE", "`name` must not be empty"));
            }
            let org = body.opt_str("organization_public_id")?.unwrap_or_else(|| st.organization_id.clone());
            if org != st.organization_id {
                return Err(ApiError::not_found(format!("organization `{org}` not found")));
            }
            let id = st.ids.id("ws");
            st.workspaces.insert(id.clone(), Workspace::new(id.clone(), name.clone(), org));
            Ok(Resp::json(
                201,
                &json!({"ok": true, "workspace": {"public_id": id, "name": name, "provision_status": "ready"}}),
            ))
        }
        "delete_workspace" => {
            let id = r.params.first().cloned().unwrap_or_default();
            if st.workspaces.remove(&id).is_none() {
                return Err(ApiError::not_found(format!("workspace `{id}` not found")));
            }
            Ok(Resp::empty(204))
        }
        _ => Err(ApiError::not_found("unknown operation")),
    }
}
