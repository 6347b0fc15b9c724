//! Example values synthesized from the committed OpenAPI spec, for contract tests.
//!
//! [`Spec`] reads `hotdata-core/openapi/hotdata-openapi.json` and builds, for any schema, a
//! value that the schema accepts: required properties (or all of them with [`Fill::All`]),
//! the first value of enums, RFC 3339 strings for `date-time`, integers within
//! `minimum`/`maximum`, arrays of one item, the first branch of `oneOf`/`anyOf`, and the
//! merge of `allOf`. The same spec always gives the same values.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// How much of an object to fill in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Only the required properties.
    Required,
    /// Every declared property, nullable ones included (with a non-null value).
    All,
}

/// Where a parameter of the spec goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum In {
    /// A `{name}` path segment.
    Path,
    /// The query string.
    Query,
    /// A request header.
    Header,
}

/// A parameter as the spec declares it (references resolved).
#[derive(Debug, Clone)]
pub struct SpecParam {
    /// Its name.
    pub name: String,
    /// Where it goes.
    pub location: In,
    /// Whether it is required.
    pub required: bool,
    /// Its schema (references not resolved).
    pub schema: Value,
}

/// An operation as the spec declares it.
#[derive(Debug, Clone)]
pub struct SpecOperation {
    /// The HTTP method, upper case.
    pub method: String,
    /// The path template.
    pub path: String,
    /// Its parameters, path-level ones included.
    pub params: Vec<SpecParam>,
    /// The JSON request body schema name, and whether the body is required.
    pub body: Option<(String, bool)>,
    /// The documented statuses.
    pub statuses: Vec<u16>,
}

/// The fixed instant used for `date-time` values.
pub const DATE_TIME: &str = "2024-01-02T03:04:05Z";

/// Nesting depth past which only required properties and empty arrays are produced, so
/// recursive schemas terminate.
const MAX_DEPTH: usize = 12;

/// A loaded OpenAPI document.
#[derive(Debug, Clone)]
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// The committed spec of the repository, `hotdata-core/openapi/hotdata-openapi.json`.
    pub fn committed() -> Self {
        Self::load(&Self::committed_path())
    }

    /// Where the committed spec is.
    pub fn committed_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hotdata-core/openapi/hotdata-openapi.json")
    }

    /// Loads a spec from a file. Panics if it cannot be read or parsed.
    pub fn load(path: &Path) -> Self {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        Self { doc }
    }

    /// The whole document.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// A named schema of `components/schemas`.
    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.doc.pointer(&format!("/components/schemas/{name}"))
    }

    /// Follows `$ref`s (local ones, `#/...`) until a non-reference.
    pub fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match value.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref `{r}`"));
                    value = self.doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref `{r}`"));
                }
                None => return value,
            }
        }
        panic!("$ref chain too long")
    }

    /// Every operationId of the spec, in document order.
    pub fn operation_ids(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (_, item) in self.paths() {
            for (method, op) in item {
                if let Some(id) = op.get("operationId").and_then(Value::as_str).filter(|_| is_method(method))
                {
                    out.push(id.to_owned());
                }
            }
        }
        out
    }

    fn paths(&self) -> impl Iterator<Item = (&String, &Map<String, Value>)> {
        self.doc
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(p, item)| item.as_object().map(|o| (p, o)))
    }

    /// The operation with this operationId.
    pub fn operation(&self, id: &str) -> Option<SpecOperation> {
        for (path, item) in self.paths() {
            for (method, op) in item {
                if !is_method(method) || op.get("operationId").and_then(Value::as_str) != Some(id) {
                    continue;
                }
                let shared = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
                let own = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
                let mut params: Vec<SpecParam> = Vec::new();
                for p in shared.iter().chain(own.iter()) {
                    let p = self.resolve(p);
                    let name = p["name"].as_str().unwrap_or_default().to_owned();
                    let location = match p["in"].as_str() {
                        Some("path") => In::Path,
                        Some("query") => In::Query,
                        Some("header") => In::Header,
                        other => panic!("`{id}`: parameter `{name}` in {other:?}"),
                    };
                    let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                    let schema = p.get("schema").cloned().unwrap_or(Value::Null);
                    params.retain(|q| !(q.name == name && q.location == location));
                    params.push(SpecParam { name, location, required, schema });
                }
                let body = op.get("requestBody").map(|b| self.resolve(b)).and_then(|b| {
                    let schema = b.pointer("/content/application~1json/schema")?;
                    let name = schema.get("$ref").and_then(Value::as_str)?.rsplit('/').next()?.to_owned();
                    Some((name, b.get("required").and_then(Value::as_bool).unwrap_or(false)))
                });
                let mut statuses: Vec<u16> = op
                    .get("responses")
                    .and_then(Value::as_object)
                    .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
                    .unwrap_or_default();
                statuses.sort_unstable();
                return Some(SpecOperation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    params,
                    body,
                    statuses,
                });
            }
        }
        None
    }

    /// An example request body for the operation, or `None` when it takes no JSON body.
    pub fn body_example(&self, id: &str, fill: Fill) -> Option<Value> {
        let (name, _) = self.operation(id)?.body?;
        let schema = self.schema(&name).unwrap_or_else(|| panic!("`{id}`: no schema `{name}`"));
        Some(self.example(schema, fill))
    }

    /// An example value of a query or header parameter, as the text that is sent.
    pub fn param_example(&self, param: &SpecParam) -> String {
        match self.example(&param.schema, Fill::Required) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    /// A value that `schema` accepts.
    pub fn example(&self, schema: &Value, fill: Fill) -> Value {
        self.example_at(schema, fill, 0)
    }

    fn example_at(&self, schema: &Value, fill: Fill, depth: usize) -> Value {
        let schema = self.resolve(schema);
        let Some(obj) = schema.as_object() else {
            return json!("example");
        };
        if let Some(v) = obj.get("example") {
            return v.clone();
        }
        if let Some(first) =
            obj.get("enum").and_then(Value::as_array).and_then(|e| e.iter().find(|v| !v.is_null()))
        {
            return first.clone();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(first) = obj.get(key).and_then(Value::as_array).and_then(|b| b.first()) {
                return self.example_at(first, fill, depth + 1);
            }
        }
        if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
            let mut merged: Option<Value> = None;
            for part in parts {
                let v = self.example_at(part, fill, depth + 1);
                merged = Some(match (merged, v) {
                    (Some(Value::Object(mut a)), Value::Object(b)) => {
                        a.extend(b);
                        Value::Object(a)
                    }
                    (_, v) => v,
                });
            }
            if let Some(v) = merged {
                return v;
            }
        }
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or_else(|| {
            if obj.contains_key("properties") || obj.contains_key("additionalProperties") {
                "object"
            } else if obj.contains_key("items") {
                "array"
            } else {
                ""
            }
        });
        match ty {
            "string" => string_example(obj.get("format").and_then(Value::as_str)),
            "integer" => {
                let min = obj.get("minimum").and_then(Value::as_i64);
                let max = obj.get("maximum").and_then(Value::as_i64);
                let mut v = min.unwrap_or(1);
                if let Some(max) = max {
                    v = v.min(max);
                }
                json!(v)
            }
            "number" => {
                let min = obj.get("minimum").and_then(Value::as_f64);
                let max = obj.get("maximum").and_then(Value::as_f64);
                json!(match (min, max) {
                    (Some(a), Some(b)) => (a + b) / 2.0,
                    (Some(a), None) => a + 0.5,
                    (None, Some(b)) => b - 0.5,
                    (None, None) => 1.5,
                })
            }
            "boolean" => json!(true),
            "array" => {
                if depth >= MAX_DEPTH {
                    return json!([]);
                }
                let items = obj.get("items").cloned().unwrap_or(json!({"type": "string"}));
                json!([self.example_at(&items, fill, depth + 1)])
            }
            "object" => self.object_example(obj, fill, depth),
            // No type: anything goes; an object is the most useful value for free-form fields.
            _ => json!({"key": "value"}),
        }
    }

    fn object_example(&self, obj: &Map<String, Value>, fill: Fill, depth: usize) -> Value {
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                let wanted = required.contains(&name.as_str()) || (fill == Fill::All && depth < MAX_DEPTH);
                if wanted {
                    let prop = self.resolve(prop);
                    if prop.get("readOnly").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    out.insert(name.clone(), self.example_at(prop, fill, depth + 1));
                }
            }
        }
        if out.is_empty() && fill == Fill::All && depth < MAX_DEPTH && !obj.contains_key("properties") {
            match obj.get("additionalProperties") {
                Some(Value::Bool(true)) => {
                    out.insert("key".into(), json!("value"));
                }
                Some(schema @ Value::Object(_)) => {
                    out.insert("key".into(), self.example_at(schema, fill, depth + 1));
                }
                _ => {}
            }
        }
        Value::Object(out)
    }
}

fn is_method(m: &str) -> bool {
    matches!(m, "get" | "put" | "post" | "delete" | "patch" | "head" | "options" | "trace")
}

fn string_example(format: Option<&str>) -> Value {
    json!(match format {
        Some("date-time") => DATE_TIME,
        Some("date") => "2024-01-02",
        Some("time") => "03:04:05Z",
        Some("uuid") => "00000000-0000-4000-8000-000000000001",
        Some("email") => "user@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("byte") => "ZXhhbXBsZQ==",
        Some("binary") => "",
        _ => "example",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            doc: json!({
                "components": {"schemas": {
                    "Inner": {"type": "object", "required": ["at"], "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "note": {"type": "string", "nullable": true}
                    }},
                    "Outer": {"type": "object", "required": ["kind", "n", "items"], "properties": {
                        "kind": {"type": "string", "enum": ["b", "a"]},
                        "n": {"type": "integer", "minimum": 5, "maximum": 9},
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Inner"}},
                        "choice": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
                        "wrapped": {"allOf": [{"$ref": "#/components/schemas/Inner"}], "nullable": true},
                        "free": {"type": "object", "additionalProperties": true}
                    }}
                }}
            }),
        }
    }

    #[test]
    fn required_only() {
        let s = spec();
        let v = s.example(s.schema("Outer").unwrap(), Fill::Required);
        assert_eq!(v, json!({"kind": "b", "n": 5, "items": [{"at": DATE_TIME}]}));
    }

    #[test]
    fn everything() {
        let s = spec();
        let v = s.example(s.schema("Outer").unwrap(), Fill::All);
        assert_eq!(
            v,
            json!({
                "kind": "b", "n": 5,
                "items": [{"at": DATE_TIME, "note": "example"}],
                "choice": true,
                "wrapped": {"at": DATE_TIME, "note": "example"},
                "free": {"key": "value"}
            })
        );
    }
}
