//! [`RequestRecord`]: one request as the emulator saw it, and its JSON form, which is what
//! `GET /_emulator/requests` answers. The route writes with [`RequestRecord::log_to_json`]
//! and a remote test reads it back with [`RequestRecord::log_from_json`]: one place for both
//! directions. It needs no server (a browser page reads the log with it).

use serde_json::{Value as Json, json};

/// One request as the emulator saw it (see `EmulatorHandle::requests`, or
/// `GET /_emulator/requests` read with [`RequestRecord::log_from_json`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The operationId it was routed to (`storage_put`, `cors_preflight`, `unknown`, ...).
    pub operation: String,
    /// Status answered (0 when the connection was reset instead).
    pub status: u16,
    /// Whether an `Authorization` header was present.
    pub had_authorization: bool,
    /// The `X-Workspace-Id` header, if any.
    pub workspace_id: Option<String>,
    /// Request body length.
    pub body_len: usize,
    /// The fault applied, if any.
    pub fault: Option<String>,
    /// Every request header (lower-case names, in arrival order).
    pub headers: Vec<(String, String)>,
}

impl RequestRecord {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The record as `GET /_emulator/requests` answers it: an object with the same field
    /// names, `headers` as `[[name, value], ...]`.
    pub fn to_json(&self) -> Json {
        json!({
            "method": self.method,
            "uri": self.uri,
            "operation": self.operation,
            "status": self.status,
            "had_authorization": self.had_authorization,
            "workspace_id": self.workspace_id,
            "body_len": self.body_len,
            "fault": self.fault,
            "headers": self.headers,
        })
    }

    /// Read a record written by [`RequestRecord::to_json`]. Members it does not know are
    /// ignored (a newer emulator may add some).
    ///
    /// # Errors
    ///
    /// A message naming the member that is missing or has the wrong type.
    pub fn from_json(value: &Json) -> Result<RequestRecord, String> {
        let Json::Object(m) = value else {
            return Err(format!("a request record is a JSON object, not `{value}`"));
        };
        let field = |k: &str| m.get(k).ok_or_else(|| format!("request record: no `{k}`"));
        let wrong = |k: &str, what: &str| format!("request record: `{k}` is not {what}");
        let text = |k: &str| -> Result<String, String> {
            field(k)?.as_str().map(str::to_string).ok_or_else(|| wrong(k, "a string"))
        };
        let opt_text = |k: &str| -> Result<Option<String>, String> {
            match m.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(wrong(k, "a string or null")),
            }
        };
        let headers = match field("headers")? {
            Json::Array(pairs) => pairs
                .iter()
                .map(|p| match p.as_array().map(Vec::as_slice) {
                    Some([Json::String(k), Json::String(v)]) => Ok((k.clone(), v.clone())),
                    _ => Err(wrong("headers", "an array of [name, value] string pairs")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(wrong("headers", "an array of [name, value] string pairs")),
        };
        Ok(RequestRecord {
            method: text("method")?,
            uri: text("uri")?,
            operation: text("operation")?,
            status: field("status")?
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(|| wrong("status", "an HTTP status"))?,
            had_authorization: field("had_authorization")?
                .as_bool()
                .ok_or_else(|| wrong("had_authorization", "true or false"))?,
            workspace_id: opt_text("workspace_id")?,
            body_len: field("body_len")?
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| wrong("body_len", "a length"))?,
            fault: opt_text("fault")?,
            headers,
        })
    }

    /// A request log as `GET /_emulator/requests` answers it:
    /// `{"count": N, "requests": [record, ...]}` (records in [`RequestRecord::to_json`]'s
    /// form, in the order given).
    pub fn log_to_json<'a>(records: impl IntoIterator<Item = &'a RequestRecord>) -> Json {
        let list: Vec<Json> = records.into_iter().map(RequestRecord::to_json).collect();
        json!({"count": list.len(), "requests": list})
    }

    /// Read the answer of `GET /_emulator/requests` (what [`RequestRecord::log_to_json`]
    /// writes) back into records, oldest first. A bare array of records is read too.
    ///
    /// ```
    /// use hotdata_emulator::RequestRecord;
    ///
    /// // The body of `GET /_emulator/requests`, as a browser page or another process gets it.
    /// let body = r#"{"count":1,"requests":[{"method":"POST","uri":"/v1/query","operation":"query",
    ///   "status":429,"had_authorization":true,"workspace_id":"ws_emulator","body_len":27,
    ///   "fault":"Status { status: 429, retry_after: None }","headers":[["x-workspace-id","ws_emulator"]]}]}"#;
    /// let log = RequestRecord::log_from_json(&serde_json::from_str(body).unwrap()).unwrap();
    /// assert_eq!(log[0].status, 429);
    /// assert_eq!(log[0].header("X-Workspace-Id"), Some("ws_emulator"));
    /// assert_eq!(RequestRecord::log_to_json(&log), serde_json::from_str::<serde_json::Value>(body).unwrap());
    /// ```
    ///
    /// # Errors
    ///
    /// A message when the value has no `requests` array or a record does not read (see
    /// [`RequestRecord::from_json`]; the message gives its index).
    pub fn log_from_json(value: &Json) -> Result<Vec<RequestRecord>, String> {
        let list = match value {
            Json::Array(list) => list,
            Json::Object(m) => match m.get("requests") {
                Some(Json::Array(list)) => list,
                _ => return Err("a request log is an object with a `requests` array".into()),
            },
            other => return Err(format!("a request log is a JSON object, not `{other}`")),
        };
        list.iter()
            .enumerate()
            .map(|(i, r)| RequestRecord::from_json(r).map_err(|e| format!("requests[{i}]: {e}")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: u16, ws: Option<&str>, fault: Option<&str>) -> RequestRecord {
        RequestRecord {
            method: "GET".into(),
            uri: "/v1/results/r?format=arrow".into(),
            operation: "get_result".into(),
            status,
            had_authorization: ws.is_some(),
            workspace_id: ws.map(str::to_string),
            body_len: 12,
            fault: fault.map(str::to_string),
            headers: vec![("authorization".into(), "Bearer k".into()), ("x-a".into(), "1, 2".into())],
        }
    }

    #[test]
    fn records_round_trip() {
        let log = vec![record(200, Some("ws"), None), record(0, None, Some("Reset"))];
        let j = RequestRecord::log_to_json(&log);
        assert_eq!(j["count"], 2);
        assert_eq!(j["requests"][1]["workspace_id"], Json::Null);
        assert_eq!(RequestRecord::log_from_json(&j).unwrap(), log);
        assert_eq!(RequestRecord::log_from_json(&j["requests"]).unwrap(), log, "a bare array");
        let text = j.to_string();
        assert_eq!(RequestRecord::log_from_json(&serde_json::from_str(&text).unwrap()).unwrap(), log);
        // Members it does not know are ignored.
        let mut extra = log[0].to_json();
        extra["new_member"] = json!(1);
        assert_eq!(RequestRecord::from_json(&extra).unwrap(), log[0]);
    }

    #[test]
    fn bad_records_name_the_member() {
        let good = record(200, Some("ws"), None).to_json();
        for (k, v, needle) in [
            ("status", json!(70000), "`status`"),
            ("status", json!("200"), "`status`"),
            ("method", json!(null), "`method`"),
            ("headers", json!([["a"]]), "`headers`"),
            ("headers", json!({}), "`headers`"),
            ("fault", json!(1), "`fault`"),
            ("had_authorization", json!("yes"), "`had_authorization`"),
        ] {
            let mut bad = good.clone();
            bad[k] = v;
            let e = RequestRecord::from_json(&bad).unwrap_err();
            assert!(e.contains(needle), "{k}: {e}");
        }
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("uri");
        assert!(RequestRecord::from_json(&missing).unwrap_err().contains("no `uri`"));
        let e = RequestRecord::log_from_json(&json!({"requests": [good, 5]})).unwrap_err();
        assert!(e.starts_with("requests[1]: "), "{e}");
        assert!(RequestRecord::log_from_json(&json!({"count": 0})).is_err());
    }
}
