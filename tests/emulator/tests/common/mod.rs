//! Shared helpers for the emulator's own tests: a tiny blocking HTTP client and an
//! OpenAPI response validator.

#![allow(dead_code)]

pub mod spec;

use std::time::Duration;

use hotdata_emulator::EmulatorHandle;
use serde_json::Value;

/// A response, fully read.
#[derive(Debug)]
pub struct R {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl R {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("status {} body is not JSON ({e}): {}", self.status, String::from_utf8_lossy(&self.body))
        })
    }

    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(k).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client bound to one emulator, sending auth and the workspace by default.
pub struct Client {
    pub base: String,
    pub key: String,
    pub ws: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(emu: &EmulatorHandle) -> Client {
        Client::at(emu.base_url(), emu.api_key(), emu.workspace_id())
    }

    /// A client for an emulator known by its URL, key and workspace (an instance, say).
    pub fn at(base: &str, key: &str, ws: &str) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client { base: base.to_string(), key: key.to_string(), ws: ws.to_string(), agent }
    }

    /// Any request to an absolute URL with exactly these headers.
    pub fn raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<R, ureq::Error> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = match body {
            Some(data) => self.agent.run(b.body(data).expect("request")),
            None => self.agent.run(b.body(()).expect("request")),
        }?;
        let (parts, mut body) = resp.into_parts();
        let bytes = body.with_config().limit(u64::MAX).read_to_vec()?;
        Ok(R { status: parts.status.as_u16(), headers: parts.headers, body: bytes })
    }

    /// An API request with auth, workspace and any extra headers.
    pub fn call(&self, method: &str, path: &str, extra: &[(&str, &str)], body: Option<Vec<u8>>) -> R {
        let auth = format!("Bearer {}", self.key);
        let mut h: Vec<(&str, &str)> = vec![("authorization", &auth), ("x-workspace-id", &self.ws)];
        if body.is_some() {
            h.push(("content-type", "application/json"));
        }
        h.extend_from_slice(extra);
        self.raw(method, &format!("{}{path}", self.base), &h, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn get(&self, path: &str) -> R {
        self.call("GET", path, &[], None)
    }

    pub fn get_db(&self, path: &str, db: &str) -> R {
        self.call("GET", path, &[("x-database-id", db)], None)
    }

    pub fn post(&self, path: &str, v: Value) -> R {
        self.call("POST", path, &[], Some(serde_json::to_vec(&v).unwrap()))
    }

    pub fn post_db(&self, path: &str, db: &str, v: Value) -> R {
        self.call("POST", path, &[("x-database-id", db)], Some(serde_json::to_vec(&v).unwrap()))
    }

    pub fn put(&self, path: &str, v: Value) -> R {
        self.call("PUT", path, &[], Some(serde_json::to_vec(&v).unwrap()))
    }

    pub fn delete(&self, path: &str) -> R {
        self.call("DELETE", path, &[], None)
    }

    /// Create a database and return its id.
    pub fn database(&self, name: &str) -> String {
        let r = self.post("/v1/databases", serde_json::json!({"name": name}));
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    }

    /// Load inline data into `public.<table>` of a database.
    pub fn load_inline(&self, db: &str, table: &str, format: &str, data: &str) -> Value {
        let r = self.post(
            &format!("/v1/databases/{db}/schemas/public/tables/{table}/loads"),
            serde_json::json!({"mode": "replace", "format": format, "data": data}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Run SQL in a database; returns the JSON body (asserting 200).
    pub fn sql(&self, db: &str, sql: &str) -> Value {
        let r = self.post_db("/v1/query", db, serde_json::json!({"sql": sql}));
        assert_eq!(r.status, 200, "{sql}: {}", r.text());
        r.json()
    }

    /// Upload bytes through a single or multipart session; returns the upload id.
    pub fn upload(&self, data: &[u8], filename: &str) -> String {
        let s = self
            .post("/v1/uploads", serde_json::json!({"declared_size_bytes": data.len(), "filename": filename}))
            .json();
        let id = s["upload_id"].as_str().unwrap().to_string();
        let token = s["finalize_token"].as_str().unwrap().to_string();
        let body = if s["mode"] == "single" {
            let r = self.raw("PUT", s["url"].as_str().unwrap(), &[], Some(data.to_vec())).unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            serde_json::json!({})
        } else {
            let ps = s["part_size"].as_u64().unwrap() as usize;
            let mut parts = vec![];
            for (i, url) in s["part_urls"].as_array().unwrap().iter().enumerate() {
                let chunk = &data[i * ps..((i + 1) * ps).min(data.len())];
                let r = self.raw("PUT", url.as_str().unwrap(), &[], Some(chunk.to_vec())).unwrap();
                assert_eq!(r.status, 200, "{}", r.text());
                parts.push(serde_json::json!({"part_number": i + 1, "e_tag": r.header("etag").unwrap()}));
            }
            serde_json::json!({"parts": parts})
        };
        let r = self.call(
            "POST",
            &format!("/v1/uploads/{id}/finalize"),
            &[("x-upload-finalize-token", &token)],
            Some(serde_json::to_vec(&body).unwrap()),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        id
    }
}

/// Poll `f` every 20 ms until it holds (panics after 20 s).
pub fn wait_until(mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Decode an Arrow IPC stream into (rows, batches, column names).
pub fn decode_arrow(bytes: &[u8]) -> (usize, usize, Vec<String>) {
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).expect("arrow stream");
    let names = reader.schema().fields().iter().map(|f| f.name().clone()).collect();
    let mut rows = 0;
    let mut batches = 0;
    for b in reader {
        rows += b.expect("batch").num_rows();
        batches += 1;
    }
    (rows, batches, names)
}

/// Kills a child process (the emulator binary) when the test ends, pass or fail.
#[allow(dead_code)] // not every test binary that includes this module starts the binary
pub struct Kill(pub std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
