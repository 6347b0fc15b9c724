//! # hotdata-web-example: the Hotdata SDK in a web page
//!
//! A page built from Rust to wasm with plain `web-sys` DOM calls (no framework):
//!
//! - a SQL box: **Run** sends the query with [`hotdata_wasm`] and renders the result table.
//!   With the `arrow` feature (on by default) the rows arrive as Arrow IPC and each record
//!   batch is appended to the table as soon as it is decoded off the `fetch` body; without
//!   it the page renders the JSON rows of the answer.
//! - a file picker: **Upload** sends the file straight to storage with
//!   `client.upload_file(..)` from a [`hotdata_wasm::BlobSource`] (parts read with
//!   `Blob.slice`, multipart above the server's single-PUT limit) and drives a
//!   `<progress>` bar from the upload's progress events; the finalized upload id is shown.
//!
//! The API, key and workspace come from the page's query string
//! (`?api=http://127.0.0.1:8787&key=...&workspace=...&database=...`) and default to the local
//! emulator's. `index.html` loads the `wasm-bindgen --target web` output from `./pkg/` and
//! calls [`start`]. See `README.md` beside this crate to build and try it, and
//! `tests/e2e.rs` for the end-to-end test in headless Chromium.
//!
//! Element ids (stable, used by the end-to-end test): `sql`, `run`, `status`, `result`,
//! `file`, `upload`, `upload-progress`, `upload-status`, `upload-result`, `endpoint`, `mode`.
//! `document.body.dataset.ready` is `"true"` once [`start`] has wired the page.
#![cfg(target_arch = "wasm32")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::cell::RefCell;
use std::rc::Rc;

use hotdata_wasm::hotdata_core::models::QueryRequest;
use hotdata_wasm::hotdata_core::upload::UploadEvent;
use hotdata_wasm::hotdata_core::{AsyncClient, Cell, Config, Error};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{
    Document, Element, HtmlButtonElement, HtmlInputElement, HtmlProgressElement, HtmlTextAreaElement,
};

/// The emulator's defaults (`cargo run -p hotdata-emulator -- --port 8787`).
const DEFAULT_API: &str = "http://127.0.0.1:8787";
const DEFAULT_KEY: &str = "hd_emulator_key";
const DEFAULT_WORKSPACE: &str = "ws_emulator";
/// Rows put in the DOM at most; the status line still counts every row received.
const MAX_RENDERED_ROWS: usize = 2_000;

/// The page's state: the client and the database queries run in (picked on first use).
struct App {
    client: AsyncClient,
    doc: Document,
    database: RefCell<Option<String>>,
}

/// Wires the page: reads the query string, builds the client, hooks the buttons. Called by
/// `index.html` once the module is loaded.
#[wasm_bindgen]
pub fn start() -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let doc = window.document().ok_or("no document")?;
    let params = web_sys::UrlSearchParams::new_with_str(&window.location().search()?)?;
    let param = |name: &str, default: &str| {
        params.get(name).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string())
    };
    let api = param("api", DEFAULT_API);
    let workspace = param("workspace", DEFAULT_WORKSPACE);
    let config = Config::new(param("key", DEFAULT_KEY)).with_workspace_id(&workspace).with_base_url(&api);
    let app = Rc::new(App {
        client: hotdata_wasm::client(config),
        doc: doc.clone(),
        database: RefCell::new(params.get("database").filter(|d| !d.is_empty())),
    });
    set_text(&doc, "endpoint", &format!("{api} · workspace {workspace}"));
    set_text(
        &doc,
        "mode",
        if cfg!(feature = "arrow-minimal") { "Arrow (streamed batches)" } else { "JSON rows" },
    );

    let run = app.clone();
    on_click(&doc, "run", move || {
        let app = run.clone();
        wasm_bindgen_futures::spawn_local(async move { app.run_query().await });
    })?;
    let upload = app.clone();
    on_click(&doc, "upload", move || {
        let app = upload.clone();
        wasm_bindgen_futures::spawn_local(async move { app.upload().await });
    })?;
    if let Some(body) = doc.body() {
        body.set_attribute("data-ready", "true")?;
    }
    Ok(())
}

fn by_id<T: JsCast>(doc: &Document, id: &str) -> Result<T, JsValue> {
    doc.get_element_by_id(id)
        .ok_or_else(|| JsValue::from_str(&format!("no #{id} in the page")))?
        .dyn_into::<T>()
        .map_err(|_| JsValue::from_str(&format!("#{id} is not the expected element")))
}

fn set_text(doc: &Document, id: &str, text: &str) {
    if let Some(e) = doc.get_element_by_id(id) {
        e.set_text_content(Some(text));
    }
}

/// Sets the status line `id` and its `data-state` (`running`, `done` or `error`).
fn set_status(doc: &Document, id: &str, state: &str, text: &str) {
    if let Some(e) = doc.get_element_by_id(id) {
        e.set_text_content(Some(text));
        let _ = e.set_attribute("data-state", state);
    }
}

fn set_enabled(doc: &Document, id: &str, enabled: bool) {
    if let Ok(b) = by_id::<HtmlButtonElement>(doc, id) {
        b.set_disabled(!enabled);
    }
}

fn on_click(doc: &Document, id: &str, f: impl FnMut() + 'static) -> Result<(), JsValue> {
    let button: HtmlButtonElement = by_id(doc, id)?;
    let handler = Closure::<dyn FnMut()>::new(f);
    button.set_onclick(Some(handler.as_ref().unchecked_ref()));
    // The handler lives as long as the page.
    handler.forget();
    Ok(())
}

/// The result table being filled: header once, then rows as they come.
struct Table {
    doc: Document,
    table: Element,
    body: Element,
    head: Element,
    rows: usize,
    batches: usize,
}

impl Table {
    /// Empties `#result` and starts a new table.
    fn new(doc: &Document) -> Result<Self, JsValue> {
        let table: Element = by_id(doc, "result")?;
        table.set_inner_html("");
        let head = doc.create_element("thead")?;
        let body = doc.create_element("tbody")?;
        table.append_child(&head)?;
        table.append_child(&body)?;
        Ok(Self { doc: doc.clone(), table, body, head, rows: 0, batches: 0 })
    }

    fn header<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> Result<(), JsValue> {
        let tr = self.doc.create_element("tr")?;
        for name in names {
            let th = self.doc.create_element("th")?;
            th.set_text_content(Some(name));
            tr.append_child(&th)?;
        }
        self.head.append_child(&tr)?;
        Ok(())
    }

    /// Appends `row` (up to [`MAX_RENDERED_ROWS`] rows are put in the DOM) and counts it.
    fn row<'a>(&mut self, row: impl IntoIterator<Item = &'a Cell>) -> Result<(), JsValue> {
        self.rows += 1;
        if self.rows > MAX_RENDERED_ROWS {
            return Ok(());
        }
        let tr = self.doc.create_element("tr")?;
        for cell in row {
            let td = self.doc.create_element("td")?;
            if cell.is_null() {
                td.set_class_name("null");
                td.set_text_content(Some("null"));
            } else {
                td.set_text_content(Some(&cell.to_string()));
            }
            tr.append_child(&td)?;
        }
        self.body.append_child(&tr)?;
        Ok(())
    }

    /// Counts `n` rows received but not put in the DOM.
    #[cfg(feature = "arrow-minimal")]
    fn skip(&mut self, n: usize) {
        self.rows += n;
    }

    /// Counts a batch of rows received (`data-batches` on `#result`).
    fn batch_done(&mut self) {
        self.batches += 1;
        let _ = self.table.set_attribute("data-batches", &self.batches.to_string());
    }

    fn summary(&self) -> String {
        let rows = if self.rows == 1 { "1 row".to_string() } else { format!("{} rows", self.rows) };
        if self.rows > MAX_RENDERED_ROWS { format!("{rows} (first {MAX_RENDERED_ROWS} shown)") } else { rows }
    }
}

/// Why a query or an upload failed, as shown on the page.
enum Failure {
    Sdk(String),
    Page(JsValue),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Sdk(e.to_string())
    }
}

impl From<JsValue> for Failure {
    fn from(e: JsValue) -> Self {
        Failure::Page(e)
    }
}

impl Failure {
    fn text(&self) -> String {
        match self {
            Failure::Sdk(s) => s.clone(),
            Failure::Page(v) => v
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .or_else(|| v.as_string())
                .unwrap_or_else(|| format!("{v:?}")),
        }
    }
}

impl App {
    /// The database queries run in: `?database=`, else the first one listed, else a new one.
    async fn database(&self) -> Result<String, Error> {
        if let Some(db) = self.database.borrow().clone() {
            return Ok(db);
        }
        let listed = self.client.databases().list().limit(1).await?;
        let id = match listed.databases.into_iter().next() {
            Some(db) => db.id,
            None => {
                use hotdata_wasm::hotdata_core::models::CreateDatabaseRequest;
                self.client.databases().create(CreateDatabaseRequest::new().name("web-example")).await?.id
            }
        };
        *self.database.borrow_mut() = Some(id.clone());
        Ok(id)
    }

    async fn run_query(&self) {
        let doc = &self.doc;
        set_enabled(doc, "run", false);
        set_status(doc, "status", "running", "running…");
        let sql = by_id::<HtmlTextAreaElement>(doc, "sql").map(|t| t.value()).unwrap_or_default();
        let started = js_sys::Date::now();
        match self.query(&sql).await {
            Ok(summary) => {
                let ms = js_sys::Date::now() - started;
                set_status(doc, "status", "done", &format!("{summary} in {ms:.0} ms"));
            }
            Err(e) => set_status(doc, "status", "error", &format!("error: {}", e.text())),
        }
        set_enabled(doc, "run", true);
    }

    /// Runs `sql` and streams its rows into the table as Arrow batches arrive.
    #[cfg(feature = "arrow-minimal")]
    async fn query(&self, sql: &str) -> Result<String, Failure> {
        use hotdata_wasm::hotdata_core::arrow::QueryArrowOutcome;
        use hotdata_wasm::hotdata_core::results::ResultFetch;
        let db = self.database().await?;
        let mut table = Table::new(&self.doc)?;
        let mut batches =
            match self.client.query_arrow(QueryRequest::new(sql)).database_id(db.as_str()).stream().await? {
                QueryArrowOutcome::Ready { batches, .. } => batches,
                QueryArrowOutcome::Submitted { run, result_id } => {
                    // Long queries go asynchronous: wait for the result, then stream it.
                    set_status(&self.doc, "status", "running", "running asynchronously…");
                    let result_id = match result_id {
                        Some(id) => id,
                        None => self
                            .client
                            .wait_for_query_run(&run.query_run_id, &db)
                            .await?
                            .result_id
                            .ok_or(Failure::Sdk("the query run ended without a result".into()))?,
                    };
                    self.client.wait_for_result(&result_id, &db).await?;
                    match self.client.results().arrow(result_id, db.as_str()).stream().await? {
                        ResultFetch::Ready(batches) => batches,
                        ResultFetch::NotReady(n) => {
                            return Err(Failure::Sdk(format!(
                                "result {} is not ready ({})",
                                n.result_id, n.status
                            )));
                        }
                    }
                }
            };
        let schema = batches.schema();
        table.header(schema.fields().iter().map(|f| f.name().as_str()))?;
        while let Some(batch) = batches.next_batch().await {
            let batch = batch?;
            // Only the rows that go into the DOM are turned into cells; the rest are counted.
            let shown = batch.num_rows().min(MAX_RENDERED_ROWS.saturating_sub(table.rows));
            let rows: Vec<OrderedRow> =
                hotdata_wasm::hotdata_core::arrow_rows::batches_as(std::iter::once(&batch.slice(0, shown)))?;
            for row in &rows {
                table.row(&row.0)?;
            }
            table.skip(batch.num_rows() - shown);
            table.batch_done();
            set_status(&self.doc, "status", "running", &format!("{}… (streaming)", table.summary()));
        }
        Ok(table.summary())
    }

    /// Runs `sql` and renders the JSON rows of its answer.
    #[cfg(not(feature = "arrow-minimal"))]
    async fn query(&self, sql: &str) -> Result<String, Failure> {
        use hotdata_wasm::hotdata_core::models::QueryOutcome;
        let db = self.database().await?;
        let mut table = Table::new(&self.doc)?;
        let (columns, rows, total) =
            match self.client.query(QueryRequest::new(sql).database_id(db.as_str())).await? {
                QueryOutcome::Inline(r) => (r.columns, r.rows, r.total_row_count),
                QueryOutcome::Submitted(run) => {
                    set_status(&self.doc, "status", "running", "running asynchronously…");
                    let info = self.client.wait_for_query_run(&run.query_run_id, &db).await?;
                    let id =
                        info.result_id.ok_or(Failure::Sdk("the query run ended without a result".into()))?;
                    let r = self.client.wait_for_result(&id, &db).await?;
                    (r.columns.unwrap_or_default(), r.rows.unwrap_or_default(), r.total_row_count)
                }
                _ => return Err(Failure::Sdk("an answer this page does not know".into())),
            };
        table.header(columns.iter().map(String::as_str))?;
        for row in &rows {
            table.row(row)?;
        }
        table.batch_done();
        Ok(match total {
            Some(t) if t > rows.len() as i64 => format!("{} (of {t})", table.summary()),
            _ => table.summary(),
        })
    }

    async fn upload(&self) {
        let doc = &self.doc;
        set_enabled(doc, "upload", false);
        set_text(doc, "upload-result", "");
        set_status(doc, "upload-status", "running", "uploading…");
        let started = js_sys::Date::now();
        match self.upload_file().await {
            Ok((id, size)) => {
                set_text(doc, "upload-result", &id);
                let secs = (js_sys::Date::now() - started) / 1000.0;
                set_status(doc, "upload-status", "done", &format!("uploaded {} in {secs:.1} s", mib(size)));
            }
            Err(e) => set_status(doc, "upload-status", "error", &format!("error: {}", e.text())),
        }
        set_enabled(doc, "upload", true);
    }

    /// Uploads the chosen file; returns the finalized upload id and its size.
    async fn upload_file(&self) -> Result<(String, i64), Failure> {
        let input: HtmlInputElement = by_id(&self.doc, "file")?;
        let file = input.files().and_then(|f| f.get(0)).ok_or(Failure::Sdk("choose a file first".into()))?;
        let progress: HtmlProgressElement = by_id(&self.doc, "upload-progress")?;
        progress.set_max(file.size().max(1.0));
        progress.set_value(0.0);
        // Parts are read from the file with `Blob.slice` as they are sent: the file is never
        // copied into wasm memory whole.
        let source = hotdata_wasm::BlobSource::from(file);
        // In the browser the callback may hold page elements (no `Send` bound on wasm).
        let doc = self.doc.clone();
        let options = source.upload_options().on_event(move |event| {
            if let UploadEvent::Progress { done, total } = event {
                show_progress(&doc, &progress, *done, *total);
            }
        });
        let done = self.client.upload_file(source, options).await.map_err(|e| Failure::Sdk(e.to_string()))?;
        Ok((done.upload_id, done.size_bytes))
    }
}

/// Moves the progress bar and its caption to `done` of `total` bytes.
fn show_progress(doc: &Document, p: &HtmlProgressElement, done: u64, total: Option<u64>) {
    if let Some(t) = total {
        p.set_max((t as f64).max(1.0));
    }
    p.set_value(done as f64);
    let text = match total {
        Some(t) => format!("{} of {}", mib(done as i64), mib(t as i64)),
        None => mib(done as i64),
    };
    set_status(doc, "upload-status", "running", &text);
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// One row of a record batch, its cells in column order (duplicate column names kept).
#[cfg(feature = "arrow-minimal")]
struct OrderedRow(Vec<Cell>);

#[cfg(feature = "arrow-minimal")]
impl<'de> serde::Deserialize<'de> for OrderedRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OrderedRow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<OrderedRow, A::Error> {
                let mut cells = Vec::new();
                while let Some((_, cell)) = map.next_entry::<serde::de::IgnoredAny, Cell>()? {
                    cells.push(cell);
                }
                Ok(OrderedRow(cells))
            }
        }
        d.deserialize_map(Visitor)
    }
}
