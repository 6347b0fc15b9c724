//! Request and response values used by handlers, plus the two error envelopes.

use bytes::Bytes;
use http::{HeaderMap, Method};
use serde_json::{Map, Value as Json, json};

/// A fully read request.
#[derive(Debug)]
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Set by the `ForceAsync` fault: answer as if the server escalated to async.
    pub force_async: bool,
}

impl Req {
    /// First query parameter named `k`.
    pub(crate) fn q(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub(crate) fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }

    /// An integer query parameter (400 when malformed or negative).
    pub(crate) fn q_usize(&self, k: &str) -> Result<Option<usize>, ApiError> {
        match self.q(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<usize>().map(Some).map_err(|_| {
                ApiError::bad_request(format!("query parameter `{k}` must be a non-negative integer"))
            }),
        }
    }

    /// A boolean query parameter.
    pub(crate) fn q_bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.q(k) {
            None | Some("") => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(_) => Err(ApiError::bad_request(format!("query parameter `{k}` must be true or false"))),
        }
    }

    /// The body as a JSON object (400 otherwise). An empty body is `{}` when `allow_empty`.
    pub(crate) fn json_obj(&self, allow_empty: bool) -> Result<Obj, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            if allow_empty {
                return Ok(Obj(Map::new()));
            }
            return Err(ApiError::bad_request("request body must be a JSON object"));
        }
        match serde_json::from_slice::<Json>(&self.body) {
            Ok(Json::Object(m)) => Ok(Obj(m)),
            Ok(_) => Err(ApiError::bad_request("request body must be a JSON object")),
            Err(e) => Err(ApiError::bad_request(format!("invalid JSON body: {e}"))),
        }
    }
}

/// A JSON object with typed accessors that turn type errors into 400s.
#[derive(Debug, Clone)]
pub(crate) struct Obj(pub Map<String, Json>);

impl Obj {
    fn present(&self, k: &str) -> Option<&Json> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    pub(crate) fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    pub(crate) fn raw(&self, k: &str) -> Option<&Json> {
        self.present(k)
    }

    pub(crate) fn opt_str(&self, k: &str) -> Result<Option<String>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!("`{k}` must be a string"))),
        }
    }

    pub(crate) fn req_str(&self, k: &str) -> Result<String, ApiError> {
        self.opt_str(k)?.ok_or_else(|| ApiError::bad_request(format!("`{k}` is required")))
    }

    pub(crate) fn opt_bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::bad_request(format!("`{k}` must be a boolean"))),
        }
    }

    pub(crate) fn opt_i64(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(v) => {
                v.as_i64().map(Some).ok_or_else(|| ApiError::bad_request(format!("`{k}` must be an integer")))
            }
        }
    }

    pub(crate) fn opt_f64(&self, k: &str) -> Result<Option<f64>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(v) => {
                v.as_f64().map(Some).ok_or_else(|| ApiError::bad_request(format!("`{k}` must be a number")))
            }
        }
    }

    pub(crate) fn opt_list(&self, k: &str) -> Result<Option<Vec<Json>>, ApiError> {
        match self.present(k) {
            None => Ok(None),
            Some(Json::Array(a)) => Ok(Some(a.clone())),
            Some(_) => Err(ApiError::bad_request(format!("`{k}` must be an array"))),
        }
    }

    pub(crate) fn str_list(&self, k: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.opt_list(k)? {
            None => Ok(None),
            Some(a) => a
                .into_iter()
                .map(|v| match v {
                    Json::String(s) => Ok(s),
                    _ => Err(ApiError::bad_request(format!("`{k}` must be an array of strings"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    pub(crate) fn objects(&self, k: &str) -> Result<Vec<Obj>, ApiError> {
        self.opt_list(k)?
            .unwrap_or_default()
            .into_iter()
            .map(|v| match v {
                Json::Object(m) => Ok(Obj(m)),
                _ => Err(ApiError::bad_request(format!("`{k}` must be an array of objects"))),
            })
            .collect()
    }
}

/// A response body.
pub(crate) enum Body {
    Empty,
    Full(Bytes),
    Stream(Box<dyn Iterator<Item = Bytes> + Send>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Full(b) => write!(f, "Full({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// A response produced by a handler.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Resp {
    pub(crate) fn json(status: u16, v: &Json) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Body::Full(Bytes::from(serde_json::to_vec(v).unwrap_or_default())),
        }
    }

    pub(crate) fn raw(status: u16, content_type: &str, data: impl Into<Bytes>) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: Body::Full(data.into()),
        }
    }

    pub(crate) fn empty(status: u16) -> Resp {
        Resp { status, headers: vec![], body: Body::Empty }
    }

    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

/// Which error envelope an error uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Envelope {
    /// `ApiErrorResponse`: `{"error":{"code","message"}}`.
    Api,
    /// `Error`: `{"error":"..."}` (workspace management).
    Plain,
    /// S3-style XML (storage).
    Xml,
}

/// An error answer.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub envelope: Envelope,
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            envelope: Envelope::Api,
            headers: vec![],
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BAD_REQUEST", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, "NOT_FOUND", message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, "CONFLICT", message)
    }

    pub(crate) fn plain(mut self) -> ApiError {
        self.envelope = Envelope::Plain;
        self
    }

    pub(crate) fn xml(mut self) -> ApiError {
        self.envelope = Envelope::Xml;
        self
    }

    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> ApiError {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    pub(crate) fn into_resp(self) -> Resp {
        let mut r = match self.envelope {
            Envelope::Api => {
                Resp::json(self.status, &json!({"error": {"code": self.code, "message": self.message}}))
            }
            Envelope::Plain => Resp::json(self.status, &json!({"error": self.message})),
            Envelope::Xml => Resp::raw(
                self.status,
                "application/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
                    self.code,
                    self.message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
                ),
            ),
        };
        r.headers.extend(self.headers);
        r
    }
}

/// Drop `null` members of an object (for optional, non-nullable fields).
pub(crate) fn strip_nulls(mut v: Json) -> Json {
    if let Json::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}
