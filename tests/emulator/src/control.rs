//! The HTTP control routes, `/_emulator/*`: what a test that cannot reach the in-process
//! [`crate::EmulatorHandle`] (a browser page, another process) uses to drive the emulator.
//!
//! They are off unless a control token is configured ([`crate::Config::control_token`],
//! `--control` / `--control-token`); off, every `/_emulator/*` path answers 404 like any
//! unknown path. On, a request is refused with 403 when its peer is not a loopback address
//! (unless [`crate::Config::control_remote`]), then with 401 when it carries no
//! `X-Emulator-Token` header and 403 when the token is wrong; only then is it routed. Control
//! requests are never faulted and never recorded in the request log.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use serde_json::{Value as Json, json};

use crate::faults::FaultRule;
use crate::http::{ApiError, Req, Resp};
use crate::instance::InstanceError;
use crate::router::Routed;
use crate::server::Shared;
use crate::{Config, InstanceInfo, RequestRecord, Settings, lock};

/// The header that carries the control token.
pub(crate) const TOKEN_HEADER: &str = "x-emulator-token";

/// Whether `path` is one of the control routes' (`/_emulator` and below).
pub(crate) fn is_control_path(path: &str) -> bool {
    path == "/_emulator" || path.starts_with("/_emulator/")
}

/// Whether a control request from `peer` may go on: loopback peers always (IPv4
/// `127.0.0.0/8`, IPv6 `::1`, and `::ffff:127.x.y.z`), others only when `remote` is allowed.
pub(crate) fn peer_allowed(peer: IpAddr, remote: bool) -> bool {
    remote || peer.to_canonical().is_loopback()
}

/// Compare two tokens in time that depends only on their lengths.
pub(crate) fn tokens_equal(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Check a request to a control route against the configuration: 404 when the routes are
/// off, 403 for a peer that is not allowed, 401 without a token, 403 with a wrong one.
pub(crate) fn gate(cfg: &Config, peer: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = cfg.control_token.as_deref() else {
        return Err(ApiError::not_found("control routes are off"));
    };
    if !peer_allowed(peer, cfg.control_remote) {
        return Err(ApiError::new(
            403,
            "FORBIDDEN",
            "the emulator's control routes answer loopback peers only (start it with --control-remote to allow others)",
        ));
    }
    match headers.get(TOKEN_HEADER) {
        None => Err(ApiError::new(
            401,
            "UNAUTHORIZED",
            "missing control token: send `X-Emulator-Token: <token>` (the token given with --control-token, or the one --control printed)",
        )),
        Some(v) if tokens_equal(v.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(403, "FORBIDDEN", "wrong control token")),
    }
}

fn ok(extra: Json) -> Resp {
    let mut v = json!({"ok": true});
    if let (Json::Object(m), Json::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    Resp::json(200, &v)
}

/// The rules of a `POST /_emulator/faults` body: one spec (`--fault` syntax), several
/// separated by `;` or new lines, or JSON: a rule object, a spec string, or an array of them.
pub(crate) fn parse_rules(body: &[u8]) -> Result<Vec<FaultRule>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?.trim();
    if text.starts_with(['{', '[', '"']) {
        let v: Json = serde_json::from_str(text).map_err(|e| format!("invalid JSON body: {e}"))?;
        return match &v {
            Json::Array(all) => all.iter().map(FaultRule::from_json).collect(),
            one => FaultRule::from_json(one).map(|r| vec![r]),
        };
    }
    let rules: Vec<FaultRule> = text
        .split([';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(FaultRule::parse)
        .collect::<Result<_, _>>()?;
    if rules.is_empty() {
        return Err(
            "no fault rule in the body: send a spec such as `op=query,status=429` or its JSON form".into()
        );
    }
    Ok(rules)
}

fn rule_json(rule: &FaultRule) -> Json {
    json!({"rule": rule.to_json(), "spec": rule.to_spec()})
}

/// What `POST /_emulator/reset` clears.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetScope {
    pub faults: bool,
    pub requests: bool,
    pub data: bool,
}

impl ResetScope {
    pub(crate) const ALL: ResetScope = ResetScope { faults: true, requests: true, data: true };

    fn parse(only: Option<&str>) -> Result<ResetScope, ApiError> {
        let Some(only) = only else { return Ok(ResetScope::ALL) };
        let mut s = ResetScope { faults: false, requests: false, data: false };
        for part in only.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "faults" => s.faults = true,
                "requests" => s.requests = true,
                "data" => s.data = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown reset part `{other}` (expected faults, requests, data)"
                    )));
                }
            }
        }
        Ok(s)
    }

    fn names(self) -> Vec<&'static str> {
        [("faults", self.faults), ("requests", self.requests), ("data", self.data)]
            .into_iter()
            .filter_map(|(n, on)| on.then_some(n))
            .collect()
    }
}

/// Run one control operation (the request has passed [`gate`]).
pub(crate) fn dispatch(sh: &Shared, r: &Routed, req: &Req) -> Result<Resp, ApiError> {
    match r.op.as_str() {
        "emulator_health" => Ok(ok(json!({}))),
        "emulator_faults_list" => {
            let faults = lock(&sh.faults);
            let list: Vec<Json> = faults
                .rules()
                .map(|(rule, seen, fired)| {
                    let mut v = rule_json(rule);
                    v["seen"] = json!(seen);
                    v["fired"] = json!(fired);
                    v
                })
                .collect();
            Ok(Resp::json(200, &json!({"faults": list})))
        }
        "emulator_faults_add" => {
            let rules = parse_rules(&req.body).map_err(ApiError::bad_request)?;
            let added: Vec<Json> = rules.iter().map(rule_json).collect();
            let mut faults = lock(&sh.faults);
            for rule in rules {
                faults.push(rule);
            }
            Ok(ok(json!({"added": added})))
        }
        "emulator_faults_clear" => {
            let mut faults = lock(&sh.faults);
            let n = faults.len();
            faults.clear();
            Ok(ok(json!({"cleared": n})))
        }
        "emulator_requests_list" => {
            let operation = req.q("operation").filter(|s| !s.is_empty());
            let path = req.q("path").filter(|s| !s.is_empty());
            let log = lock(&sh.log);
            let list = log
                .iter()
                .filter(|rec| operation.is_none_or(|o| rec.operation == o))
                .filter(|rec| path.is_none_or(|p| rec.uri.starts_with(p)));
            Ok(Resp::json(200, &RequestRecord::log_to_json(list)))
        }
        "emulator_requests_clear" => {
            let mut log = lock(&sh.log);
            let n = log.len();
            log.clear();
            Ok(ok(json!({"cleared": n})))
        }
        // The stored object of a finalized upload.
        "emulator_upload_object" => {
            let id = r.params.first().map(String::as_str).unwrap_or_default();
            match sh.uploaded_object(id) {
                Some(bytes) => Ok(Resp::raw(200, "application/octet-stream", bytes)),
                None => Err(ApiError::not_found(format!("no finalized upload {id}"))),
            }
        }
        // The body (an Arrow IPC stream) as a result of `?database_id=` (or the
        // `X-Database-Id` header).
        "emulator_store_result" => {
            let db = req
                .q("database_id")
                .or_else(|| req.header("x-database-id"))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "missing `database_id`: POST /_emulator/results?database_id=DB with an Arrow IPC stream as the body",
                    )
                })?;
            let (id, rows) = crate::api::queries::store_arrow(sh, db, req.body.clone())?;
            Ok(Resp::json(201, &json!({"result_id": id, "rows": rows})))
        }
        "emulator_reset" => {
            let scope = ResetScope::parse(req.q("only"))?;
            sh.reset(scope);
            Ok(ok(json!({"reset": scope.names()})))
        }
        op if op.starts_with("emulator_instances_") => instances(sh, op, r, req),
        _ => Err(ApiError::not_found(format!("no route for {} {}", req.method, req.path))),
    }
}

/// The instance routes: start (`POST`, the body a [`Settings`] JSON object), list (`GET`),
/// stop one (`DELETE .../{id}`) or all (`DELETE`).
fn instances(sh: &Shared, op: &str, r: &Routed, req: &Req) -> Result<Resp, ApiError> {
    let Some(reg) = &sh.instances else {
        return Err(ApiError::not_found(
            "an instance starts no instances of its own: use /_emulator/instances of the emulator that started it",
        ));
    };
    match op {
        "emulator_instances_list" => {
            let list: Vec<Json> = reg.list().iter().map(InstanceInfo::to_json).collect();
            Ok(Resp::json(200, &json!({"count": list.len(), "max": reg.max(), "instances": list})))
        }
        "emulator_instances_start" => {
            let settings = parse_settings(&req.body).map_err(ApiError::bad_request)?;
            let cfg = Config {
                bind: SocketAddr::new(sh.addr.ip(), 0),
                api_keys: sh.cfg.api_keys.clone(),
                workspaces: sh.cfg.workspaces.clone(),
                organization_id: sh.cfg.organization_id.clone(),
                settings,
                control_token: sh.cfg.control_token.clone(),
                control_remote: sh.cfg.control_remote,
                max_instances: 0,
            };
            match reg.start(cfg) {
                Ok(info) => Ok(Resp::json(201, &info.to_json())),
                Err(InstanceError::Full(max)) => Err(ApiError::new(
                    429,
                    "TOO_MANY_INSTANCES",
                    format!(
                        "{max} instances are running, the most allowed (--max-instances): stop one with DELETE /_emulator/instances/{{id}} first"
                    ),
                )),
                Err(InstanceError::Closed) => Err(ApiError::new(
                    503,
                    "SHUTTING_DOWN",
                    "the emulator is stopping: no new instance starts",
                )),
                Err(InstanceError::Start(e)) => {
                    Err(ApiError::new(500, "INTERNAL", format!("the instance did not start: {e}")))
                }
            }
        }
        "emulator_instances_stop" => {
            let id = r.params.first().map(String::as_str).unwrap_or_default();
            if reg.stop(id) {
                Ok(ok(json!({"stopped": id})))
            } else {
                Err(ApiError::not_found(format!("no instance {id}")))
            }
        }
        "emulator_instances_stop_all" => Ok(ok(json!({"stopped": reg.stop_all(false)}))),
        _ => Err(ApiError::not_found(format!("no route for {} {}", req.method, req.path))),
    }
}

/// The settings of a `POST /_emulator/instances` body: empty for the defaults, or a JSON
/// object in [`Settings::to_json`]'s form.
fn parse_settings(body: &[u8]) -> Result<Settings, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?.trim();
    if text.is_empty() {
        return Ok(Settings::default());
    }
    let v: Json = serde_json::from_str(text).map_err(|e| format!("invalid JSON body: {e}"))?;
    Settings::from_json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_peers_only_unless_remote() {
        for ip in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(peer_allowed(ip.parse().unwrap(), false), "{ip}");
        }
        for ip in ["192.0.2.2", "10.0.0.1", "0.0.0.0", "::", "fd00::2", "::ffff:192.0.2.2", "169.254.1.1"] {
            assert!(!peer_allowed(ip.parse().unwrap(), false), "{ip}");
            assert!(peer_allowed(ip.parse().unwrap(), true), "{ip} with remote allowed");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(tokens_equal(b"abc", b"abc"));
        assert!(!tokens_equal(b"abd", b"abc"));
        assert!(!tokens_equal(b"ab", b"abc"));
        assert!(!tokens_equal(b"", b"abc"));
    }

    #[test]
    fn gate_order_and_answers() {
        let mut cfg = Config::default();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.2".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(gate(&cfg, lo, &h).unwrap_err().status, 404, "off");
        cfg.control_token = Some("t0ken".into());
        assert_eq!(gate(&cfg, lo, &h).unwrap_err().status, 401, "no token");
        h.insert(TOKEN_HEADER, "wrong".parse().unwrap());
        assert_eq!(gate(&cfg, lo, &h).unwrap_err().status, 403, "wrong token");
        h.insert(TOKEN_HEADER, "t0ken".parse().unwrap());
        assert!(gate(&cfg, lo, &h).is_ok());
        let e = gate(&cfg, remote, &h).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (403, "FORBIDDEN"), "a remote peer, even with the token");
        cfg.control_remote = true;
        assert!(gate(&cfg, remote, &h).is_ok());
    }

    #[test]
    fn fault_bodies() {
        let one = parse_rules(b"op=query,status=429,times=2").unwrap();
        assert_eq!(one, [FaultRule::parse("op=query,status=429,times=2").unwrap()]);
        let two = parse_rules(b"op=a,reset; op=b,status=500\n").unwrap();
        assert_eq!(two.len(), 2);
        let json = parse_rules(br#"[{"op":"query","status":429,"times":2}, "op=b,reset"]"#).unwrap();
        assert_eq!(json[0], one[0]);
        assert_eq!(json[1], FaultRule::parse("op=b,reset").unwrap());
        assert_eq!(parse_rules(br#"{"op":"query","status":429,"times":2}"#).unwrap(), one);
        assert!(parse_rules(b"").is_err());
        assert!(parse_rules(b"op=x").is_err());
        assert!(parse_rules(b"[1]").is_err());
        assert!(parse_rules(b"{nope").is_err());
    }
}
