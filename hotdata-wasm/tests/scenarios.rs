//! The shared scenario suite (`tests/scenarios/*.rs`) in headless Chromium: the scenarios the
//! native backends run (tests/conformance/tests), from the same source, over `fetch`.
//!
//! Each scenario starts an emulator instance of its own (`POST /_emulator/instances` on the
//! emulator `tests/run` starts: own port, state, faults and request log), so scenarios
//! running concurrently in the page cannot see each other's faults, and one that fails
//! leaves the others alone. The parent's URL and control token arrive at compile time
//! (`HOTDATA_TEST_SERVER`, `HOTDATA_TEST_CONTROL_TOKEN`), as for `tests/browser.rs`; the
//! Arrow compression of the run in `HOTDATA_EMULATOR_ARROW_COMPRESSION`.
//!
//! This file defines, under the names the native harness uses
//! (tests/conformance/src/scenarios.rs), what a scenario body reaches the emulator through:
//! `scenario!`, `start!`, `ctl!` (awaits), `pause!`, [`Stopwatch`], [`settings`],
//! [`requests`], and the mode macros (`client!`, `call!`, `wait!`, `pages!`, `next_batch!`,
//! `storage_put!`, `storage_get!`, `stream_source!`). `native_only` scenarios expand to
//! nothing here; `tests/scenarios/check` lists them with their reasons.
#![cfg(target_arch = "wasm32")]
// Not every scenario file uses every helper.
#![allow(dead_code)]

use std::time::Duration;

use hotdata_core::{AsyncTransport, RequestBody, SendOptions};
pub use hotdata_emulator::{ArrowCompression, InstanceInfo, RequestRecord, Settings};
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const SERVER: &str = match option_env!("HOTDATA_TEST_SERVER") {
    Some(s) => s,
    None => "http://127.0.0.1:8787",
};
const CONTROL_TOKEN: &str = match option_env!("HOTDATA_TEST_CONTROL_TOKEN") {
    Some(t) => t,
    None => "",
};

/// A scenario of `tests/scenarios` as one `#[wasm_bindgen_test]`, with `backend` bound to
/// `"browser"`; a `native_only` one is not compiled here.
macro_rules! scenario {
    ($(#[$meta:meta])* native_only($reason:literal) fn $name:ident($backend:ident) $body:block) => {};
    ($(#[$meta:meta])* native_only($reason:literal) fn $name:ident() $body:block) => {};
    ($(#[$meta:meta])* fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        #[::wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() {
            #[allow(unused_variables)]
            let $backend: &'static str = "browser";
            $body
        }
    };
}

/// A call on the emulator (or a helper taking it): awaited.
macro_rules! ctl {
    ($e:expr) => {
        $e.await
    };
}

/// An emulator instance of the scenario's own, with these settings.
macro_rules! start {
    ($settings:expr) => {
        RemoteEmulator::start($settings).await
    };
}

/// Sleeps this long (`setTimeout`).
#[allow(unused_macros)]
macro_rules! pause {
    ($d:expr) => {
        ::hotdata_core::AsyncRuntime::sleep(&::hotdata_wasm::BrowserRuntime::new(), $d).await
    };
}

#[allow(unused_macros)]
macro_rules! client {
    ($config:expr) => {
        hotdata_wasm::client($config)
    };
}
#[allow(unused_macros)]
macro_rules! call {
    ($e:expr) => {
        $e.await
    };
}
#[allow(unused_macros)]
macro_rules! wait {
    ($e:expr) => {
        $e.await
    };
}
#[allow(unused_macros)]
macro_rules! pages {
    ($e:expr) => {
        collect_stream($e.pages()).await
    };
}
#[allow(unused_macros)]
macro_rules! next_batch {
    ($e:expr) => {
        $e.next_batch().await
    };
}
#[allow(unused_macros)]
macro_rules! storage_put {
    ($url:expr, $bytes:expr) => {
        storage_put(&$url, $bytes).await
    };
}
#[allow(unused_macros)]
macro_rules! storage_get {
    ($url:expr) => {
        storage_get(&$url).await
    };
}
#[allow(unused_macros)]
macro_rules! stream_source {
    ($bytes:expr) => {
        hotdata_core::upload::AsyncUploadSource::stream(Chunks::new($bytes))
    };
}

/// The emulator a scenario runs against here: an instance the parent emulator started for
/// it, driven over its control routes. The same method names as `EmulatorHandle`, async.
#[derive(Debug)]
pub struct RemoteEmulator {
    info: InstanceInfo,
}

/// The emulator type of a scenario body.
pub type Emu = RemoteEmulator;

/// A request through fetch: the status and the body.
async fn fetch(method: http::Method, url: &str, token: bool, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
    let mut request = http::Request::builder().method(method).uri(url);
    if token {
        request = request.header("x-emulator-token", CONTROL_TOKEN);
    }
    let request = request.body(body.map_or(RequestBody::Empty, RequestBody::from)).unwrap();
    let transport = hotdata_wasm::FetchTransport::new();
    let response =
        transport.send(request, &SendOptions::default()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap_or_else(|e| panic!("{url}: {e}")).to_vec();
    if token && (status == 401 || status == 403) {
        panic!(
            "{url}: {status} {} (build with HOTDATA_TEST_CONTROL_TOKEN set to the token of an emulator \
             started with --control)",
            String::from_utf8_lossy(&body)
        );
    }
    (status, body)
}

impl RemoteEmulator {
    /// Asks the parent emulator for an instance with `settings`.
    pub async fn start(settings: Settings) -> RemoteEmulator {
        let body = settings.to_json().to_string().into_bytes();
        let (status, body) =
            fetch(http::Method::POST, &format!("{SERVER}/_emulator/instances"), true, Some(body)).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 201, "starting an emulator instance: {text}");
        let info = InstanceInfo::from_json(&serde_json::from_slice(&body).unwrap()).unwrap();
        RemoteEmulator { info }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.info.base_url
    }

    /// Its API key.
    pub fn api_key(&self) -> &str {
        &self.info.api_key
    }

    /// Its workspace.
    pub fn workspace_id(&self) -> &str {
        &self.info.workspace_id
    }

    async fn control(&self, method: http::Method, path: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
        fetch(method, &format!("{}/_emulator/{path}", self.info.base_url), true, body).await
    }

    /// Adds a fault rule.
    pub async fn inject(&self, rule: hotdata_emulator::FaultRule) {
        let body = rule.to_json().to_string().into_bytes();
        let (status, body) = self.control(http::Method::POST, "faults", Some(body)).await;
        assert_eq!(status, 200, "adding fault {rule}: {}", String::from_utf8_lossy(&body));
    }

    /// Removes every fault rule.
    pub async fn clear_faults(&self) {
        let (status, body) = self.control(http::Method::DELETE, "faults", None).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// The request log, oldest first.
    pub async fn requests(&self) -> Vec<RequestRecord> {
        let (status, body) = self.control(http::Method::GET, "requests", None).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        RequestRecord::log_from_json(&serde_json::from_slice(&body).unwrap()).unwrap()
    }

    /// Empties the request log.
    pub async fn clear_requests(&self) {
        let (status, body) = self.control(http::Method::DELETE, "requests", None).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// Stores an Arrow IPC stream as a result of `database_id`; its id.
    pub async fn store_arrow_result(
        &self,
        database_id: &str,
        stream: bytes::Bytes,
    ) -> Result<String, String> {
        let path = format!("results?database_id={database_id}");
        let (status, body) = self.control(http::Method::POST, &path, Some(stream.to_vec())).await;
        if status != 201 {
            return Err(String::from_utf8_lossy(&body).into_owned());
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        v["result_id"].as_str().map(str::to_owned).ok_or_else(|| format!("no result_id in {v}"))
    }

    /// The stored object of a finalized upload.
    pub async fn uploaded_object(&self, upload_id: &str) -> Option<bytes::Bytes> {
        let (status, body) = self.control(http::Method::GET, &format!("uploads/{upload_id}"), None).await;
        (status == 200).then(|| bytes::Bytes::from(body))
    }
}

impl Drop for RemoteEmulator {
    /// Stops the instance (in the background: a failed scenario leaves its instance to the
    /// parent, which stops them all when it ends).
    fn drop(&mut self) {
        let url = format!("{SERVER}/_emulator/instances/{}", self.info.id);
        wasm_bindgen_futures::spawn_local(async move {
            fetch(http::Method::DELETE, &url, true, None).await;
        });
    }
}

/// The default settings, with the Arrow compression of the run
/// (`HOTDATA_EMULATOR_ARROW_COMPRESSION` at compile time; `tests/run` runs with each).
pub fn settings() -> Settings {
    let compression = option_env!("HOTDATA_EMULATOR_ARROW_COMPRESSION").unwrap_or("");
    let compression =
        if compression.trim().is_empty() { ArrowCompression::None } else { compression.parse().unwrap() };
    Settings::default().arrow_compression(compression)
}

/// Every request the emulator routed to `op`, oldest first.
pub async fn requests(emu: &Emu, op: &str) -> Vec<RequestRecord> {
    emu.requests().await.into_iter().filter(|r| r.operation == op).collect()
}

/// Elapsed time since it started (`Date.now()`; `std::time::Instant` panics here).
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(f64);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Self(js_sys::Date::now())
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(((js_sys::Date::now() - self.0) / 1000.0).max(0.0))
    }
}

/// Every item of a `Stream`, in order.
pub async fn collect_stream<S: futures_core::Stream + Unpin>(mut stream: S) -> Vec<S::Item> {
    let mut out = Vec::new();
    while let Some(item) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx)).await {
        out.push(item);
    }
    out
}

/// PUTs `body` to a presigned storage URL with a bare fetch (no `Authorization`, no
/// `X-Workspace-Id`); the `ETag`, quotes included.
pub async fn storage_put(url: &str, body: Vec<u8>) -> String {
    let request = http::Request::builder()
        .method(http::Method::PUT)
        .uri(url)
        .body(RequestBody::from(body))
        .expect("a storage PUT request");
    let response = hotdata_wasm::FetchTransport::new()
        .send(request, &SendOptions::default())
        .await
        .unwrap_or_else(|e| panic!("storage PUT {url}: {e}"));
    assert!(response.status().is_success(), "storage PUT {url}: HTTP {}", response.status());
    let etag = response
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("storage PUT {url}: no ETag"))
        .to_owned();
    let _ = response.into_body().collect().await;
    etag
}

/// GETs a storage URL with a bare fetch; the body.
pub async fn storage_get(url: &str) -> Vec<u8> {
    let request =
        http::Request::builder().method(http::Method::GET).uri(url).body(RequestBody::Empty).expect("a GET");
    let response = hotdata_wasm::FetchTransport::new()
        .send(request, &SendOptions::default())
        .await
        .unwrap_or_else(|e| panic!("storage GET {url}: {e}"));
    assert!(response.status().is_success(), "storage GET {url}: HTTP {}", response.status());
    response.into_body().collect().await.unwrap_or_else(|e| panic!("storage GET {url}: {e}")).to_vec()
}

/// Bytes handed out as a `Stream` in odd-sized chunks (at most 100,003 bytes): an upload
/// source of unknown length.
#[derive(Debug)]
pub struct Chunks {
    data: bytes::Bytes,
    at: usize,
}

impl Chunks {
    /// The longest chunk handed out.
    pub const CHUNK: usize = 100_003;

    /// Chunks of `data`, from its start.
    pub fn new(data: impl Into<bytes::Bytes>) -> Self {
        Self { data: data.into(), at: 0 }
    }
}

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<bytes::Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let end = self.data.len().min(self.at + Self::CHUNK);
        let chunk = self.data.slice(self.at..end);
        self.at = end;
        std::task::Poll::Ready(if chunk.is_empty() { None } else { Some(Ok(chunk)) })
    }
}

mod emulator {
    #[allow(unused_imports)]
    use super::*;
    include!("../../tests/scenarios/emulator.rs");
}

mod sql {
    #[allow(unused_imports)]
    use super::*;
    include!("../../tests/scenarios/sql.rs");
}

mod uploads {
    #[allow(unused_imports)]
    use super::*;
    include!("../../tests/scenarios/uploads.rs");
}

mod secrets {
    #[allow(unused_imports)]
    use super::*;
    include!("../../tests/scenarios/secrets.rs");
}
