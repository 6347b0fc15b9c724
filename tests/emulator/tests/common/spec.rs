//! A small OpenAPI 3.0 response validator: `$ref`, `type`, `required`, `properties`,
//! `additionalProperties`, `items`, `nullable`, `enum`, `allOf`, `oneOf`, `anyOf`,
//! `minimum`/`maximum`, int32 range.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

pub struct Spec {
    doc: Value,
}

/// Where the shared spec lives (override with `HOTDATA_OPENAPI`).
pub fn spec_path() -> PathBuf {
    if let Ok(p) = std::env::var("HOTDATA_OPENAPI") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../hotdata-core/openapi/hotdata-openapi.json")
}

impl Spec {
    pub fn load() -> Spec {
        let p = spec_path();
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("cannot read the OpenAPI spec at {}: {e}", p.display()));
        Spec { doc: serde_json::from_str(&text).expect("spec JSON") }
    }

    /// Every operationId.
    pub fn operation_ids(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (_, item) in self.doc["paths"].as_object().unwrap() {
            for (m, op) in item.as_object().unwrap() {
                if m == "parameters" {
                    continue;
                }
                out.insert(op["operationId"].as_str().unwrap().to_string());
            }
        }
        out
    }

    fn operation(&self, op_id: &str) -> &Value {
        for (_, item) in self.doc["paths"].as_object().unwrap() {
            for (m, op) in item.as_object().unwrap() {
                if m != "parameters" && op["operationId"] == op_id {
                    return op;
                }
            }
        }
        panic!("no operation {op_id}")
    }

    /// Check one response of `op_id`: the status must be listed, and a JSON body must
    /// match the listed schema. Returns violations.
    pub fn check(&self, op_id: &str, status: u16, content_type: Option<&str>, body: &[u8]) -> Vec<String> {
        let op = self.operation(op_id);
        let Some(resp) = op["responses"].get(status.to_string()) else {
            return vec![format!("{op_id}: status {status} is not listed in the spec")];
        };
        let content = &resp["content"];
        if content.is_null() {
            if !body.is_empty() {
                return vec![format!("{op_id}: status {status} must have no body")];
            }
            return vec![];
        }
        let ct = content_type.unwrap_or("").split(';').next().unwrap_or("").trim();
        let Some(media) = content.get(ct) else {
            return vec![format!("{op_id}: status {status} content type `{ct}` not listed")];
        };
        if ct != "application/json" {
            return vec![];
        }
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return vec![format!("{op_id}: body is not JSON: {e}")],
        };
        let mut errs = vec![];
        self.validate(&media["schema"], &v, &format!("{op_id}[{status}]"), &mut errs);
        errs
    }

    fn resolve<'a>(&'a self, s: &'a Value) -> &'a Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let mut cur = &self.doc;
                for seg in r.trim_start_matches("#/").split('/') {
                    cur = &cur[seg];
                }
                self.resolve(cur)
            }
            None => s,
        }
    }

    pub fn validate(&self, schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
        let s = self.resolve(schema);
        if v.is_null() {
            let nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
            let typed = s.get("type").is_some()
                || s.get("allOf").is_some()
                || s.get("oneOf").is_some()
                || s.get("anyOf").is_some();
            if !nullable && typed {
                errs.push(format!("{path}: null is not allowed"));
            }
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.validate(sub, v, path, errs);
            }
        }
        if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
            let ok = one
                .iter()
                .filter(|sub| {
                    let mut e = vec![];
                    self.validate(sub, v, path, &mut e);
                    e.is_empty()
                })
                .count();
            if ok != 1 {
                errs.push(format!("{path}: matches {ok} oneOf alternatives, expected 1"));
            }
        }
        if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
            let ok = any.iter().any(|sub| {
                let mut e = vec![];
                self.validate(sub, v, path, &mut e);
                e.is_empty()
            });
            if !ok {
                errs.push(format!("{path}: matches no anyOf alternative"));
            }
        }
        if let Some(en) = s.get("enum").and_then(Value::as_array)
            && !en.contains(v)
        {
            errs.push(format!("{path}: {v} not in enum {en:?}"));
        }
        let ty = s.get("type").and_then(Value::as_str);
        match ty {
            Some("object") => {
                let Some(obj) = v.as_object() else {
                    errs.push(format!("{path}: expected object, got {v}"));
                    return;
                };
                for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                    let k = r.as_str().unwrap();
                    if !obj.contains_key(k) {
                        errs.push(format!("{path}: missing required `{k}`"));
                    }
                }
                let props = s.get("properties").and_then(Value::as_object);
                for (k, val) in obj {
                    match props.and_then(|p| p.get(k)) {
                        Some(ps) => self.validate(ps, val, &format!("{path}.{k}"), errs),
                        None => match s.get("additionalProperties") {
                            Some(Value::Bool(false)) => {
                                errs.push(format!("{path}: unexpected property `{k}`"))
                            }
                            Some(ap @ Value::Object(_)) => {
                                self.validate(ap, val, &format!("{path}.{k}"), errs)
                            }
                            _ => {}
                        },
                    }
                }
            }
            Some("array") => {
                let Some(a) = v.as_array() else {
                    errs.push(format!("{path}: expected array, got {v}"));
                    return;
                };
                if let Some(items) = s.get("items") {
                    for (i, x) in a.iter().enumerate() {
                        self.validate(items, x, &format!("{path}[{i}]"), errs);
                    }
                }
            }
            Some("string") => {
                if !v.is_string() {
                    errs.push(format!("{path}: expected string, got {v}"));
                } else if s.get("format").and_then(Value::as_str) == Some("date-time") {
                    let t = v.as_str().unwrap();
                    let b = t.as_bytes();
                    if !(b.len() >= 20
                        && b[4] == b'-'
                        && b[10] == b'T'
                        && (t.ends_with('Z') || t.contains('+')))
                    {
                        errs.push(format!("{path}: `{t}` is not an RFC 3339 date-time"));
                    }
                }
            }
            Some("integer") => match v.as_i64() {
                None => errs.push(format!("{path}: expected integer, got {v}")),
                Some(n) => {
                    if s.get("format").and_then(Value::as_str) == Some("int32")
                        && (n < i64::from(i32::MIN) || n > i64::from(i32::MAX))
                    {
                        errs.push(format!("{path}: {n} out of int32 range"));
                    }
                    if let Some(m) = s.get("minimum").and_then(Value::as_f64)
                        && (n as f64) < m
                    {
                        errs.push(format!("{path}: {n} < minimum {m}"));
                    }
                    if let Some(m) = s.get("maximum").and_then(Value::as_f64)
                        && (n as f64) > m
                    {
                        errs.push(format!("{path}: {n} > maximum {m}"));
                    }
                }
            },
            Some("number") if !v.is_number() => {
                errs.push(format!("{path}: expected number, got {v}"));
            }
            Some("boolean") if !v.is_boolean() => {
                errs.push(format!("{path}: expected boolean, got {v}"));
            }
            _ => {}
        }
    }
}
