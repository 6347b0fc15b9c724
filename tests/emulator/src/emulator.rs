//! The server side: [`Config`], [`Emulator`] / [`EmulatorBuilder`] and the running
//! [`EmulatorHandle`] (feature `server`).

use std::net::{SocketAddr, TcpListener};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::instance::Instances;
use crate::{
    ArrowCompression, DEFAULT_API_KEY, DEFAULT_WORKSPACE_ID, FaultRule, RequestRecord, Settings, api,
    control, lock, router, server, util,
};

/// Everything that can be configured: where the emulator listens and whom it lets in, and
/// its [`Settings`]. Construct with [`Config::default`] or through [`Emulator::builder`].
///
/// A `Config` dereferences to its settings, so `config.preview_rows` (or
/// `config.preview_rows = 5`) reads (or writes) `config.settings.preview_rows`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Address to bind (default `127.0.0.1:0`, an ephemeral port).
    pub bind: SocketAddr,
    /// Accepted bearer tokens; the first is [`EmulatorHandle::api_key`].
    pub api_keys: Vec<String>,
    /// Seeded workspace ids (the first is [`EmulatorHandle::workspace_id`]).
    pub workspaces: Vec<String>,
    /// Organization public id reported for workspaces.
    pub organization_id: String,
    /// What the emulator does: upload shapes, result sizes, job timing, fault rules from the
    /// start, Arrow compression (the part an instance started over `POST /_emulator/instances`
    /// takes from its request body).
    pub settings: Settings,
    /// The token the control routes (`/_emulator/*`, see the [crate docs](crate#control-routes))
    /// require in `X-Emulator-Token`. `None` (the default) turns them off: they answer 404.
    /// Non-empty visible ASCII.
    pub control_token: Option<String>,
    /// Whether the control routes also answer peers that are not loopback addresses
    /// (default false: 403 for them).
    pub control_remote: bool,
    /// How many instances (`POST /_emulator/instances`, see the [crate docs](crate#instances))
    /// may run at once (default [`Config::DEFAULT_MAX_INSTANCES`]); past it the route answers
    /// 429 `TOO_MANY_INSTANCES` (with 0, every time).
    pub max_instances: usize,
}

impl Config {
    /// The default of [`Config::max_instances`]: 64.
    pub const DEFAULT_MAX_INSTANCES: usize = 64;
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_keys: vec![DEFAULT_API_KEY.to_string()],
            workspaces: vec![DEFAULT_WORKSPACE_ID.to_string()],
            organization_id: "org_emulator".to_string(),
            settings: Settings::default(),
            control_token: None,
            control_remote: false,
            max_instances: Config::DEFAULT_MAX_INSTANCES,
        }
    }
}

impl Deref for Config {
    type Target = Settings;

    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl DerefMut for Config {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

/// Entry point: `Emulator::builder().start()`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with default settings.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder { config: Config::default() }
    }

    /// Start with default settings.
    pub fn start() -> std::io::Result<EmulatorHandle> {
        Emulator::builder().start()
    }
}

/// Configures and starts an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    config: Config,
}

impl EmulatorBuilder {
    /// Start from an explicit configuration.
    pub fn from_config(config: Config) -> Self {
        EmulatorBuilder { config }
    }

    /// Bind to this port on 127.0.0.1 (0 = ephemeral).
    pub fn port(mut self, port: u16) -> Self {
        self.config.bind.set_port(port);
        self
    }

    /// Bind to this address.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.config.bind = addr;
        self
    }

    /// Replace the accepted API keys with this one.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_keys = vec![key.into()];
        self
    }

    /// Accept one more API key.
    pub fn add_api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_keys.push(key.into());
        self
    }

    /// Replace the seeded workspace with this id.
    pub fn workspace_id(mut self, id: impl Into<String>) -> Self {
        self.config.workspaces = vec![id.into()];
        self
    }

    /// Seed one more workspace.
    pub fn add_workspace(mut self, id: impl Into<String>) -> Self {
        self.config.workspaces.push(id.into());
        self
    }

    /// Whether presigned uploads are supported (false: 501 `PRESIGN_UNSUPPORTED`).
    pub fn presign(mut self, supported: bool) -> Self {
        self.config.presign = supported;
        self
    }

    /// Declared sizes up to this get a `single` session.
    pub fn single_put_max(mut self, bytes: u64) -> Self {
        self.config.single_put_max = bytes;
        self
    }

    /// Smallest non-final part size (and the floor of the part-size clamp).
    pub fn min_part_size(mut self, bytes: u64) -> Self {
        self.config.min_part_size = bytes;
        self
    }

    /// Part size used when the client sends no hint.
    pub fn default_part_size(mut self, bytes: u64) -> Self {
        self.config.default_part_size = bytes;
        self
    }

    /// Largest upload accepted.
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.config.max_upload_bytes = bytes;
        self
    }

    /// Lifetime of presigned URLs.
    pub fn part_url_ttl(mut self, ttl: Duration) -> Self {
        self.config.part_url_ttl = ttl;
        self
    }

    /// Inline preview rows of `POST /v1/query`.
    pub fn preview_rows(mut self, rows: usize) -> Self {
        self.config.preview_rows = rows;
        self
    }

    /// Largest JSON result page before 413.
    pub fn max_json_result_bytes(mut self, bytes: usize) -> Self {
        self.config.max_json_result_bytes = bytes;
        self
    }

    /// Largest inline `data` of a load before 413.
    pub fn max_inline_load_bytes(mut self, bytes: usize) -> Self {
        self.config.max_inline_load_bytes = bytes;
        self
    }

    /// Duration of each job phase (pending, then running).
    pub fn job_step(mut self, step: Duration) -> Self {
        self.config.job_step = step;
        self
    }

    /// How long async query results stay not ready.
    pub fn async_result_delay(mut self, delay: Duration) -> Self {
        self.config.async_result_delay = delay;
        self
    }

    /// Rows kept across stored results before the oldest are evicted.
    pub fn max_stored_rows(mut self, rows: usize) -> Self {
        self.config.max_stored_rows = rows;
        self
    }

    /// Add a fault rule active from the start.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.config.faults.push(rule);
        self
    }

    /// Compress the record batches of every Arrow IPC stream the emulator writes (result
    /// downloads and `POST /v1/query` as Arrow) with this codec.
    pub fn arrow_compression(mut self, compression: ArrowCompression) -> Self {
        self.config.arrow_compression = compression;
        self
    }

    /// Turn the control routes (`/_emulator/*`, see the [crate docs](crate#control-routes)) on,
    /// guarded by this token (sent as `X-Emulator-Token`). In-process tests rarely need
    /// them: the handle's methods do the same.
    pub fn control_token(mut self, token: impl Into<String>) -> Self {
        self.config.control_token = Some(token.into());
        self
    }

    /// Turn the control routes on with a random token (unless one is set already); read it
    /// with [`EmulatorHandle::control_token`].
    pub fn control(mut self) -> Self {
        self.config.control_token.get_or_insert_with(util::random_token);
        self
    }

    /// Whether the control routes also answer peers that are not loopback addresses
    /// (default false: they are refused with 403).
    pub fn control_remote(mut self, allow: bool) -> Self {
        self.config.control_remote = allow;
        self
    }

    /// Replace every setting (upload shapes, result sizes, job timing, startup fault rules,
    /// Arrow compression) with these; the address, keys, workspaces and control token stay.
    /// The same [`Settings`] a remote test sends to `POST /_emulator/instances`.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.config.settings = settings;
        self
    }

    /// How many instances (`POST /_emulator/instances`, see the
    /// [crate docs](crate#instances)) may run at once (default
    /// [`Config::DEFAULT_MAX_INSTANCES`]).
    pub fn max_instances(mut self, max: usize) -> Self {
        self.config.max_instances = max;
        self
    }

    /// The configuration so far.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Bind, start the server thread, and return once it accepts connections.
    ///
    /// # Errors
    ///
    /// `InvalidInput` when the control token is empty or not visible ASCII; otherwise what
    /// binding the address or starting the thread fails with.
    pub fn start(self) -> std::io::Result<EmulatorHandle> {
        self.start_with(true)
    }

    /// Start an instance for `POST /_emulator/instances`: it runs no instances of its own.
    pub(crate) fn start_instance(self) -> std::io::Result<EmulatorHandle> {
        self.start_with(false)
    }

    fn start_with(self, runs_instances: bool) -> std::io::Result<EmulatorHandle> {
        if let Some(t) = &self.config.control_token
            && (t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the control token must be non-empty visible ASCII (no spaces)",
            ));
        }
        let listener = TcpListener::bind(self.config.bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let instances = runs_instances.then(|| Instances::new(self.config.max_instances));
        let shared = Arc::new(server::Shared::new(self.config.clone(), addr, base_url.clone(), instances));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let sh = shared.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
        let thread = std::thread::Builder::new().name(format!("hotdata-emulator-{}", addr.port())).spawn(
            move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .max_blocking_threads(8)
                    .thread_name("hotdata-emulator-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            let _ = ready_tx.send(Ok(()));
                            server::serve(l, sh, stop_rx).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(200));
            },
        )?;
        ready_rx.recv().map_err(|_| std::io::Error::other("emulator thread exited"))??;
        Ok(EmulatorHandle { shared, base_url, addr, stop: Some(stop_tx), thread: Some(thread) })
    }
}

/// What an upload session was created with (see [`EmulatorHandle::upload_metadata`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadMetadata {
    /// The `content_type` of its `POST /v1/uploads`, if any.
    pub content_type: Option<String>,
    /// The `filename` of its `POST /v1/uploads`, if any.
    pub filename: Option<String>,
}

/// A running emulator. Dropping it stops the server.
#[derive(Debug)]
pub struct EmulatorHandle {
    shared: Arc<server::Shared>,
    base_url: String,
    addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash, no `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first accepted API key.
    pub fn api_key(&self) -> &str {
        &self.shared.cfg.api_keys[0]
    }

    /// The first seeded workspace id.
    pub fn workspace_id(&self) -> &str {
        &self.shared.cfg.workspaces[0]
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.cfg
    }

    /// Add a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    /// Remove every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// The active fault rules, oldest first (spent ones included), as
    /// `GET /_emulator/faults` lists them.
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.shared.faults).rules().map(|(r, _, _)| r.clone()).collect()
    }

    /// The control token (`X-Emulator-Token`), when the control routes are on.
    pub fn control_token(&self) -> Option<&str> {
        self.shared.cfg.control_token.as_deref()
    }

    /// Back to how the emulator started, as `POST /_emulator/reset` does: the fault rules
    /// are the startup ones again ([`Settings::faults`], none fired), the request log is
    /// empty, and every workspace is the seeded one, empty (databases, connections, tables,
    /// results, query runs, saved queries, jobs, uploads, embedding providers and usage
    /// counters are gone, `--arrow-result` results included). Ids keep counting, so an id
    /// from before is never reused. Configuration (API keys, limits, the control token) is
    /// unchanged, and so are the instances it runs (`/_emulator/instances`).
    pub fn reset(&self) {
        self.shared.reset(control::ResetScope::ALL);
    }

    /// The bytes of a finalized upload as storage assembled them (for checking that an
    /// upload arrived byte for byte), or `None` if there is no such finalized upload.
    pub fn uploaded_object(&self, upload_id: &str) -> Option<bytes::Bytes> {
        self.shared.uploaded_object(upload_id)
    }

    /// The content type and file name upload `upload_id` was created with (the
    /// `content_type` and `filename` of its `POST /v1/uploads`), finalized or not, or `None`
    /// if there is no such upload.
    pub fn upload_metadata(&self, upload_id: &str) -> Option<UploadMetadata> {
        self.shared.upload_metadata(upload_id)
    }

    /// Store an Arrow IPC stream as a ready result of database `database_id` (in whichever
    /// workspace holds it) and return the new result id.
    ///
    /// The bytes are decoded once (schema, record batches, rows) to check they are a
    /// readable Arrow IPC stream with nothing after its end, and for the result's metadata.
    /// `GET /v1/results/{id}?format=arrow` (with `X-Database-Id: database_id`, no `offset`,
    /// no `limit` below the row count) then answers exactly these bytes, with the usual
    /// `Content-Type` and `X-Total-Row-Count`, and fault rules apply to it as to any result
    /// body. Windows (`offset`/`limit`) are re-encoded from the decoded batches. JSON, CSV,
    /// Markdown and Parquet are rendered from the decoded batches when every column is
    /// Int64, Float64, Boolean, Utf8 or Binary; otherwise they answer 400
    /// `UNSUPPORTED_FOR_ARROW_FIXTURE`, except JSON/CSV/Markdown windows with no rows (such
    /// as the `?limit=0` status poll), which need no cells. Such results are never evicted
    /// by `max_stored_rows` and do not count against it.
    ///
    /// The same is available over HTTP as `POST /_emulator/results?database_id=DB`.
    ///
    /// # Errors
    ///
    /// A message when the bytes are not a readable Arrow IPC stream or the database does
    /// not exist.
    pub fn store_arrow_result(&self, database_id: &str, stream: bytes::Bytes) -> Result<String, String> {
        api::queries::store_arrow(&self.shared, database_id, stream).map(|(id, _)| id).map_err(|e| e.message)
    }

    /// Create a database named `name` in the first workspace, or find the one of that name,
    /// as `POST /v1/databases` with `{"name": name, "if_not_exists": true}`, and return its
    /// id.
    ///
    /// # Errors
    ///
    /// The API's error message when the database cannot be created.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let mut headers = ::http::HeaderMap::new();
        let auth = format!("Bearer {}", self.api_key());
        for (k, v) in [("authorization", auth.as_str()), ("x-workspace-id", self.workspace_id())] {
            let v = ::http::HeaderValue::from_str(v).map_err(|e| e.to_string())?;
            headers.insert(k, v);
        }
        let body = serde_json::json!({"name": name, "if_not_exists": true}).to_string();
        let req = crate::http::Req {
            method: ::http::Method::POST,
            path: "/v1/databases".into(),
            query: Vec::new(),
            headers,
            body: bytes::Bytes::from(body),
            force_async: false,
        };
        let routed = router::route(&req.method, &req.path);
        let resp = router::dispatch(&self.shared, &routed, &req);
        let json: serde_json::Value = match resp.body {
            crate::http::Body::Full(b) => serde_json::from_slice(&b).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        match json["id"].as_str() {
            Some(id) if resp.status < 300 => Ok(id.to_string()),
            _ => Err(json["error"]["message"].as_str().unwrap_or("cannot create the database").to_string()),
        }
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Stop the server and wait for its thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // Its instances stop with it (and no new one starts from a request still running).
        if let Some(instances) = &self.shared.instances {
            instances.stop_all(true);
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}
