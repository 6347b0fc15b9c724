//! Endpoints as data.
//!
//! Every operation of the API is a static [`Operation`] descriptor (method, path template,
//! parameters, body, responses, idempotency, scope) and a request type implementing
//! [`Endpoint`]; both are generated from the OpenAPI spec into [`crate::ops`]. An endpoint
//! only describes: how its path, query and headers are written, what its body is, and how
//! each status of the answer decodes. Sending, authentication, retries and timeouts are
//! shared by all of them in [`crate::client`].

use bytes::Bytes;
use http::Method;
use serde::de::DeserializeOwned;

use crate::body::RequestBody;
use crate::error::Error;
pub use crate::wire::RawResponse;

/// Whether an operation may be sent more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Idempotency {
    /// Sending it twice has the effect of sending it once (GET, PUT, DELETE).
    Idempotent,
    /// Not idempotent, but replaying it after the connection failed before any response is
    /// the accepted practice of the API (POST).
    NonIdempotent,
    /// Must never be sent twice once it may have reached the server (upload finalize).
    AtMostOnce,
}

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamLocation {
    /// A `{name}` segment of the path.
    Path,
    /// The query string.
    Query,
    /// A request header.
    Header,
}

/// A parameter of an operation, as the spec declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Param {
    /// The name in the spec (`database_id`, `X-Database-Id`, ...).
    pub name: &'static str,
    /// Where it goes.
    pub location: ParamLocation,
    /// Whether it is required.
    pub required: bool,
}

/// The request body of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BodySpec {
    /// Its content type.
    pub content_type: &'static str,
    /// The schema name, for JSON bodies.
    pub schema: Option<&'static str>,
    /// Whether a body is required.
    pub required: bool,
}

/// One documented response of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseSpec {
    /// The HTTP status.
    pub status: u16,
    /// The JSON schema name of the body, if it has one.
    pub schema: Option<&'static str>,
    /// The content types the body may have.
    pub content_types: &'static [&'static str],
    /// The documented response headers.
    pub headers: &'static [&'static str],
}

/// The static description of one API operation.
#[derive(Debug)]
#[non_exhaustive]
pub struct Operation {
    /// The spec's operationId.
    pub id: &'static str,
    /// The HTTP method.
    pub method: Method,
    /// The path template (`/v1/databases/{database_id}`).
    pub path: &'static str,
    /// The spec tag grouping it.
    pub tag: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Path, query and header parameters (the workspace header excluded; see
    /// [`Operation::workspace_scoped`]).
    pub params: &'static [Param],
    /// The request body, if any.
    pub body: Option<BodySpec>,
    /// Documented responses, by status.
    pub responses: &'static [ResponseSpec],
    /// Whether it may be sent twice.
    pub idempotency: Idempotency,
    /// Whether it needs `X-Workspace-Id`.
    pub workspace_scoped: bool,
    /// Whether the spec marks it deprecated (all retired operations are).
    pub deprecated: bool,
    /// Whether a `409` answer with the error code `RESOURCE_LOCKED` (another load holds
    /// the table) is retried, under [`Config::lock_retry`](crate::Config::lock_retry)
    /// (the table loads).
    pub retry_when_locked: bool,
}

impl Operation {
    /// Finds a current operation by its operationId.
    pub fn find(id: &str) -> Option<&'static Operation> {
        crate::ops::ALL.iter().copied().find(|op| op.id == id).or_else(|| legacy_find(id))
    }
}

#[cfg(feature = "legacy")]
fn legacy_find(id: &str) -> Option<&'static Operation> {
    crate::legacy::LEGACY_ALL.iter().copied().find(|op| op.id == id)
}

#[cfg(not(feature = "legacy"))]
fn legacy_find(_: &str) -> Option<&'static Operation> {
    None
}

/// Collects query parameters, percent-encoded in order.
#[derive(Debug, Default)]
pub struct QueryWriter {
    pairs: Vec<(&'static str, String)>,
}

impl QueryWriter {
    /// Adds `name=value`.
    pub fn push(&mut self, name: &'static str, value: &impl QueryValue) {
        self.pairs.push((name, value.to_query_value()));
    }

    /// Adds `name=value` with a name known only at runtime (dynamic requests).
    pub(crate) fn push_dynamic(&mut self, name: &'static str, value: String) {
        self.pairs.push((name, value));
    }

    /// The encoded query string, without the `?` (empty when there are no parameters).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            encode_into(&mut out, k);
            out.push('=');
            encode_into(&mut out, v);
        }
        out
    }
}

/// A value that can be written into a query string.
pub trait QueryValue {
    /// Its query-string text, before percent-encoding.
    fn to_query_value(&self) -> String;
}

impl QueryValue for String {
    fn to_query_value(&self) -> String {
        self.clone()
    }
}
impl QueryValue for i32 {
    fn to_query_value(&self) -> String {
        self.to_string()
    }
}
impl QueryValue for i64 {
    fn to_query_value(&self) -> String {
        self.to_string()
    }
}
impl QueryValue for bool {
    fn to_query_value(&self) -> String {
        if *self { "true" } else { "false" }.to_owned()
    }
}

/// Collects the operation's own header parameters.
#[derive(Debug, Default)]
pub struct HeaderWriter {
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl HeaderWriter {
    /// Adds a header.
    pub fn push(&mut self, name: &'static str, value: &str) {
        self.headers.push((name, value.to_owned()));
    }
}

/// A typed API operation: the request half is data, the response half is a decoder.
pub trait Endpoint: Sized {
    /// What a successful call returns.
    type Output;

    /// The operation's static descriptor.
    fn operation(&self) -> &'static Operation;

    /// The path with its parameters filled in and percent-encoded.
    fn path(&self) -> String;

    /// Writes the query parameters.
    fn query(&self, _query: &mut QueryWriter) {}

    /// Writes the header parameters (besides authentication and workspace).
    fn headers(&self, _headers: &mut HeaderWriter) {}

    /// The media type asked for in `Accept`.
    fn accept(&self) -> &'static str {
        "application/json"
    }

    /// The body and its content type.
    fn body(&self) -> Result<Option<(&'static str, RequestBody)>, Error> {
        Ok(None)
    }

    /// Decodes the answer: documented success statuses become the output, anything else an
    /// [`Error`].
    fn parse(&self, response: &RawResponse) -> Result<Self::Output, Error>;
}

/// A listing that can be walked page by page.
pub trait Paginated: Endpoint + Clone {
    /// One element of a page.
    type Item;

    /// The request for the page after `output`, or `None` at the end.
    fn next_page(&self, output: &Self::Output) -> Option<Self>;

    /// The elements of a page.
    fn items(output: Self::Output) -> Vec<Self::Item>;
}

/// Serializes a JSON body.
pub fn json_body<T: serde::Serialize>(body: &T) -> Result<Option<(&'static str, RequestBody)>, Error> {
    encoded_body(serde_json::to_vec(body))
}

fn encoded_body(
    bytes: Result<Vec<u8>, serde_json::Error>,
) -> Result<Option<(&'static str, RequestBody)>, Error> {
    let bytes = bytes.map_err(|e| Error::config(format!("could not encode the request body: {e}")))?;
    Ok(Some(("application/json", RequestBody::Bytes(Bytes::from(bytes)))))
}

/// Decodes a JSON body, naming the path of the offending field on failure (``HTTP 200 body
/// at `columns[1]`: invalid type: ...``). The body is decoded once; a failure is explained
/// from where the decoder stopped. JSON is UTF-8 (RFC 8259): a body that is not is an
/// error, as is anything but whitespace after the value.
pub fn decode_json<T: DeserializeOwned>(response: &RawResponse) -> Result<T, Error> {
    // The generic part is the decoder alone: the rest is compiled once, not per model.
    decode_text(body_text(response)?).map_err(|failure| undecodable(response, failure))
}

fn body_text(response: &RawResponse) -> Result<&str, Error> {
    std::str::from_utf8(&response.body).map_err(|e| {
        let status = response.status.as_u16();
        Error::decode(
            format!("HTTP {status} body is not UTF-8 (byte {})", e.valid_up_to()),
            Some(Box::new(e)),
        )
    })
}

fn undecodable(response: &RawResponse, (path, e): (Option<String>, serde_json::Error)) -> Error {
    let status = response.status.as_u16();
    Error::decode(format!("HTTP {status} body{}: {e}", at_path(path)), Some(Box::new(e)))
}

/// Decodes `text` as `T`, once; on failure, the path of the value where it failed (see
/// `json_path`) and serde_json's error. The one decoder of each model the crate
/// instantiates (a second one, for a path-tracking deserializer, would double the code
/// the models' decoding compiles to).
fn decode_text<T: DeserializeOwned>(text: &str) -> Result<T, (Option<String>, serde_json::Error)> {
    // Read as text, so strings are not checked as UTF-8 again one by one.
    let mut de = serde_json::Deserializer::from_str(text);
    match T::deserialize(&mut de) {
        Ok(value) => de.end().map(|()| value).map_err(|e| explain(text, e)),
        Err(e) => Err(explain(text, e)),
    }
}

fn explain(text: &str, e: serde_json::Error) -> (Option<String>, serde_json::Error) {
    let path = crate::json_path::offset_of(text, e.line(), e.column())
        .map(|at| crate::json_path::path_at(text.as_bytes(), at));
    (path, e)
}

fn at_path(path: Option<String>) -> String {
    path.map(|p| format!(" at `{p}`")).unwrap_or_default()
}

/// Characters left unencoded in paths and queries: RFC 3986 "unreserved".
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Percent-encodes one path segment: everything but unreserved characters, so `/`, `?`,
/// `%`, spaces and non-ASCII bytes can never change the path's shape. A segment that is
/// `.` or `..` becomes `%2E` / `%2E%2E`; URL normalization still treats those as dot
/// segments, so the client refuses them (and empty segments) before sending.
pub fn encode_path_segment(s: &str) -> String {
    if s == "." || s == ".." {
        return s.replace('.', "%2E");
    }
    let mut out = String::with_capacity(s.len());
    encode_into(&mut out, s);
    out
}

/// Decodes percent-encoding (the inverse of [`encode_path_segment`]); `None` on malformed
/// input or invalid UTF-8.
pub fn decode_percent(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Any operation, chosen at runtime by its operationId, with parameters as strings and the
/// body as JSON: what command-line tools and scripts use. Its output is the JSON of the
/// answer after decoding it into the operation's typed model (so a response that does not
/// fit the model is an error here too). The body is passed through the operation's request
/// model, so what is sent is what the typed request would send.
#[derive(Debug, Clone)]
pub struct DynamicRequest {
    operation: &'static Operation,
    params: Vec<(&'static str, String)>,
    body: Option<serde_json::Value>,
}

impl DynamicRequest {
    /// A request for the operation `id`, or a config error naming the unknown operation.
    pub fn new(id: &str) -> Result<Self, Error> {
        let operation =
            Operation::find(id).ok_or_else(|| Error::config(format!("unknown operation `{id}`")))?;
        Ok(Self { operation, params: Vec::new(), body: None })
    }

    /// Sets a parameter by its spec name. Unknown names are a config error.
    pub fn param(mut self, name: &str, value: impl Into<String>) -> Result<Self, Error> {
        let p =
            self.operation.params.iter().find(|p| p.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
                let known: Vec<_> = self.operation.params.iter().map(|p| p.name).collect();
                Error::config(format!(
                    "`{}` has no parameter `{name}` (it has: {})",
                    self.operation.id,
                    known.join(", ")
                ))
            })?;
        self.params.retain(|(n, _)| *n != p.name);
        self.params.push((p.name, value.into()));
        Ok(self)
    }

    /// Sets the JSON body.
    pub fn body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Checks that every required parameter and body is present.
    pub fn validate(&self) -> Result<(), Error> {
        for p in self.operation.params.iter().filter(|p| p.required) {
            if !self.params.iter().any(|(n, _)| *n == p.name) {
                return Err(Error::config(format!(
                    "`{}` needs the parameter `{}`",
                    self.operation.id, p.name
                )));
            }
        }
        if self.operation.body.is_some_and(|b| b.required) && self.body.is_none() {
            return Err(Error::config(format!("`{}` needs a body", self.operation.id)));
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

impl Endpoint for DynamicRequest {
    type Output = serde_json::Value;

    fn operation(&self) -> &'static Operation {
        self.operation
    }

    fn path(&self) -> String {
        let mut out = String::new();
        let mut rest = self.operation.path;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
            let name = &rest[start + 1..end];
            out.push_str(&encode_path_segment(self.get(name).unwrap_or_default()));
            rest = &rest[(end + 1).min(rest.len())..];
        }
        out.push_str(rest);
        out
    }

    fn query(&self, query: &mut QueryWriter) {
        for p in self.operation.params.iter().filter(|p| p.location == ParamLocation::Query) {
            if let Some(v) = self.get(p.name) {
                query.push_dynamic(p.name, v.to_owned());
            }
        }
    }

    fn headers(&self, headers: &mut HeaderWriter) {
        for p in self.operation.params.iter().filter(|p| p.location == ParamLocation::Header) {
            if let Some(v) = self.get(p.name) {
                headers.push(p.name, v);
            }
        }
    }

    fn body(&self) -> Result<Option<(&'static str, RequestBody)>, Error> {
        self.validate()?;
        match (&self.body, self.operation.body) {
            (Some(v), Some(spec)) if spec.content_type == "application/json" => {
                let typed = encode_typed(self.operation.id, v)?;
                json_body(&typed)
            }
            (Some(serde_json::Value::String(s)), Some(spec)) => {
                Ok(Some((spec.content_type, RequestBody::Bytes(Bytes::from(s.clone().into_bytes())))))
            }
            (Some(_), None) => Err(Error::config(format!("`{}` takes no body", self.operation.id))),
            (Some(_), Some(spec)) => {
                Err(Error::config(format!("`{}` takes a {} body", self.operation.id, spec.content_type)))
            }
            (None, _) => Ok(None),
        }
    }

    fn parse(&self, response: &RawResponse) -> Result<Self::Output, Error> {
        let documented = self.operation.responses.iter().any(|r| r.status == response.status.as_u16());
        if !response.status.is_success() || !documented {
            return Err(Error::from_response(response));
        }
        decode_typed(self.operation.id, response)
    }
}

/// Decodes a success response of the operation `op` into its typed model and re-encodes
/// it as JSON.
fn decode_typed(op: &'static str, response: &RawResponse) -> Result<serde_json::Value, Error> {
    let found = crate::ops::decode_typed(op, response);
    #[cfg(feature = "legacy")]
    let found = found.or_else(|| crate::legacy::decode_typed(op, response));
    found.unwrap_or_else(|| Err(Error::from_response(response)))
}

/// Passes a JSON body of the operation `op` through its typed request model, so that what
/// is sent is what the SDK's models produce.
pub fn encode_typed(op: &'static str, body: &serde_json::Value) -> Result<serde_json::Value, Error> {
    let found = crate::ops::encode_typed(op, body);
    #[cfg(feature = "legacy")]
    let found = found.or_else(|| crate::legacy::encode_typed(op, body));
    found.unwrap_or_else(|| Ok(body.clone()))
}

/// Decodes a response into `T` and re-encodes it as JSON (used by [`DynamicRequest`]).
pub fn retype_response<T: DeserializeOwned + serde::Serialize>(
    response: &RawResponse,
) -> Result<serde_json::Value, Error> {
    let typed: T = decode_json(response)?;
    // Through bytes, not `serde_json::to_value`: one encoder per model, the one a typed
    // request body uses, instead of a second one building a `Value` tree.
    reencoded_response(serde_json::to_vec(&typed))
}

fn reencoded_response(bytes: Result<Vec<u8>, serde_json::Error>) -> Result<serde_json::Value, Error> {
    bytes
        .and_then(|bytes| serde_json::from_slice(&bytes))
        .map_err(|e| Error::decode(format!("re-encoding the response: {e}"), Some(Box::new(e))))
}

/// Decodes a JSON body into `T` and re-encodes it, so that what is sent is what the model
/// produces (used by [`DynamicRequest`]). Both steps are the ones the typed requests use.
pub fn retype_body<T: DeserializeOwned + serde::Serialize>(
    op: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let text = body.to_string();
    let typed: T = decode_text(&text).map_err(|failure| unfit_body(op, failure))?;
    reencoded(serde_json::to_vec(&typed))
}

fn unfit_body(op: &str, (path, e): (Option<String>, serde_json::Error)) -> Error {
    Error::config(format!("the body does not fit `{op}`'s request model{}: {e}", at_path(path)))
}

fn reencoded(bytes: Result<Vec<u8>, serde_json::Error>) -> Result<serde_json::Value, Error> {
    bytes
        .and_then(|bytes| serde_json::from_slice(&bytes))
        .map_err(|e| Error::config(format!("could not encode the request body: {e}")))
}
