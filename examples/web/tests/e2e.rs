//! The example page end to end in headless Chromium: the emulator in-process, the page served
//! from another origin (so CORS is exercised like in production), ChromeDriver spoken to over
//! the W3C WebDriver protocol. It runs a query and checks the rendered table cell by cell,
//! uploads a multipart-sized file through the file picker and checks the progress bar and the
//! bytes the emulator stored, then saves a screenshot to `target/web-e2e.png`.
//!
//! Needs the built page (`examples/web/build.sh`), Chromium and ChromeDriver (`CHROMEDRIVER`
//! or `chromedriver` on PATH; `CHROME` or `/usr/bin/chromium`). Missing pieces fail the test.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../src/static_files.rs"]
mod static_files;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hotdata_emulator::Emulator;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("../../target"))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(90)))
        .build()
        .into()
}

/// A WebDriver command: the `value` of the answer, or the WebDriver error as text.
fn command(agent: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
    let response = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, body) => agent
            .post(url)
            .header("content-type", "application/json")
            .send(body.unwrap_or_else(|| json!({})).to_string()),
    };
    let mut response = response.map_err(|e| format!("{method} {url}: {e}"))?;
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("{method} {url}: reading the answer: {e}"))?;
    let answer: Value = serde_json::from_str(&text).map_err(|e| format!("{method} {url}: {e}: {text}"))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    match value.get("error").and_then(Value::as_str) {
        Some(error) => Err(format!(
            "{method} {url}: {error}: {}",
            value.get("message").and_then(Value::as_str).unwrap_or("")
        )),
        None => Ok(value),
    }
}

/// ChromeDriver as a child process, killed when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for chromedriver")
            .port();
        let log = std::env::temp_dir().join(format!("web-e2e-chromedriver-{}.log", std::process::id()));
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start ChromeDriver `{binary}`: {e}. Install chromium and chromium-driver \
                     (tests/run does) or set CHROMEDRIVER to its path."
                )
            });
        let mut driver = ChromeDriver { child, url: format!("http://127.0.0.1:{port}"), log };
        let agent = agent();
        let t0 = Instant::now();
        loop {
            let ready = command(&agent, "GET", &format!("{}/status", driver.url), None)
                .ok()
                .and_then(|v| v.get("ready").and_then(Value::as_bool));
            if ready == Some(true) {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("ChromeDriver exited at start ({status}): {}", driver.log_tail());
            }
            assert!(t0.elapsed() < Duration::from_secs(20), "ChromeDriver not ready: {}", driver.log_tail());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A WebDriver session in headless Chromium, deleted when dropped.
struct Session {
    agent: ureq::Agent,
    base: String,
}

impl Session {
    fn new(driver: &ChromeDriver) -> Session {
        let agent = agent();
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-default-apps",
                     "--disable-extensions", "--window-size=1100,1000"],
        });
        let chrome = std::env::var("CHROME")
            .ok()
            .or_else(|| Path::new("/usr/bin/chromium").is_file().then(|| "/usr/bin/chromium".to_string()));
        if let Some(binary) = chrome {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let value = command(&agent, "POST", &format!("{}/session", driver.url), Some(capabilities))
            .unwrap_or_else(|e| panic!("no WebDriver session: {e}\n{}", driver.log_tail()));
        let id = value["sessionId"].as_str().expect("a session id").to_string();
        Session { agent, base: format!("{}/session/{id}", driver.url) }
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        command(&self.agent, method, &format!("{}{path}", self.base), body)
    }

    /// Runs `script` (a function body) in the page and returns its value.
    fn script(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", Some(json!({"script": script, "args": []})))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{}", self.diagnostics()))
    }

    fn text(&self, id: &str) -> String {
        let script = format!("const e = document.getElementById({id:?}); return e ? e.textContent : null;");
        self.script(&script).as_str().unwrap_or_default().to_string()
    }

    fn element(&self, css: &str) -> String {
        let value = self
            .cmd("POST", "/element", Some(json!({"using": "css selector", "value": css})))
            .unwrap_or_else(|e| panic!("no element {css}: {e}\n{}", self.diagnostics()));
        value[ELEMENT].as_str().expect("an element reference").to_string()
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})))
            .unwrap_or_else(|e| panic!("click {css}: {e}\n{}", self.diagnostics()));
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        if !css.contains("file") {
            self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})))
                .unwrap_or_else(|e| panic!("clear {css}: {e}\n{}", self.diagnostics()));
        }
        self.cmd("POST", &format!("/element/{id}/value"), Some(json!({"text": text})))
            .unwrap_or_else(|e| panic!("send keys to {css}: {e}\n{}", self.diagnostics()));
    }

    /// Waits until `#id` has a `data-state` of `done` or `error`; returns (state, text).
    fn wait_state(&self, id: &str) -> (String, String) {
        let script = format!(
            "const e = document.getElementById({id:?}); \
             return e && e.dataset.state !== 'running' && e.dataset.state ? [e.dataset.state, e.textContent] : null;"
        );
        let value = self.poll(&format!("#{id} to settle"), || {
            let v = self.script(&script);
            (!v.is_null()).then_some(v)
        });
        (value[0].as_str().unwrap_or("").to_string(), value[1].as_str().unwrap_or("").to_string())
    }

    /// Polls `f` until it gives a value, for at most [`DEADLINE`].
    fn poll<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let t0 = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if t0.elapsed() > DEADLINE {
                panic!("timed out after {DEADLINE:?} waiting for {what}\n{}", self.diagnostics());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the page shows and what the browser logged, for failure messages.
    fn diagnostics(&self) -> String {
        let visible = self
            .cmd(
                "POST",
                "/execute/sync",
                Some(json!({"script": "return document.body.innerText;", "args": []})),
            )
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|e| format!("(page text unavailable: {e})"));
        let log = self
            .cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .map(|v| {
                v.as_array()
                    .map(|entries| {
                        entries
                            .iter()
                            .map(|e| format!("  [{}] {}", e["level"].as_str().unwrap_or(""), e["message"]))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_else(|e| format!("(browser log unavailable: {e})"));
        format!("--- page text ---\n{visible}\n--- browser console ---\n{log}")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = command(&self.agent, "DELETE", &self.base, None);
    }
}

/// A file of `len` bytes: pseudo-random, with runs of odd bytes (NUL, 0xFF, CR LF, UTF-8).
fn test_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
        if out.len() % (1 << 20) < 8 {
            out.extend_from_slice(b"\0\0\xff\xfe\r\n\xc3\xbc\x00");
        }
    }
    out.truncate(len);
    out
}

#[test]
fn page_runs_a_query_and_an_upload_in_headless_chromium() {
    let started = Instant::now();
    let root = manifest_dir();
    let wasm = root.join("pkg/hotdata_web_example_bg.wasm");
    assert!(
        wasm.is_file() && root.join("pkg/hotdata_web_example.js").is_file(),
        "examples/web/pkg/ is missing or incomplete ({} not found): run examples/web/build.sh first",
        wasm.display()
    );

    let emu = Emulator::builder().start().expect("the emulator starts");
    let server = static_files::StaticServer::start(root, SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("the static server starts");
    let driver = ChromeDriver::start();
    let session = Session::new(&driver);
    let page = format!("{}/?api={}", server.url(), emu.base_url());
    session.cmd("POST", "/url", Some(json!({"url": page}))).expect("navigating to the page");
    session.poll("the page to start", || {
        let state = session.script(
            "const s = document.getElementById('status'); \
             return document.body.dataset.ready === 'true' ? 'ready' : (s && s.dataset.state === 'error' ? s.textContent : null);",
        );
        match state.as_str() {
            Some("ready") => Some(()),
            Some(error) => panic!("the page failed to start: {error}\n{}", session.diagnostics()),
            None => None,
        }
    });
    let arrow = session.text("mode").contains("Arrow");
    eprintln!(
        "page ready at {page} ({} mode) after {:.1} s",
        session.text("mode"),
        started.elapsed().as_secs_f64()
    );

    // A large result first: many Arrow batches streamed into the table (the DOM keeps 2,000).
    session.type_into("#sql", "select * from synthetic(100000)");
    session.click("#run");
    let (state, status) = session.wait_state("status");
    assert_eq!(state, "done", "{status}\n{}", session.diagnostics());
    let expected = if arrow { "100000 rows (first 2000 shown)" } else { "1000 rows (of 100000)" };
    assert!(status.starts_with(expected), "status {status:?}, expected {expected:?}");
    let batches = session.script("return Number(document.getElementById('result').dataset.batches);");
    let batches = batches.as_u64().unwrap_or(0);
    if arrow {
        assert!(batches > 1, "the rows were rendered batch by batch as they arrived: {batches} batch(es)");
    }
    let shown = session.script("return document.querySelectorAll('#result tbody tr').length;");
    assert_eq!(shown, json!(if arrow { 2000 } else { 1000 }), "rows put in the table");
    eprintln!("{status} ({batches} batches rendered)");

    // Then a small, known table, checked cell by cell.
    let sql = "select 1 as id, 'Lisbon' as city, 545000 as population, 'PT' as note\n\
               union all select 2, 'Porto', 232000, null\n\
               union all select 3, 'Zürich \"quoted\"', 421000, '<b>ü & ß</b>'";
    session.type_into("#sql", sql);
    session.click("#run");
    let (state, status) = session.wait_state("status");
    assert_eq!(state, "done", "{status}\n{}", session.diagnostics());
    assert!(status.starts_with("3 rows in "), "status {status:?}");
    let table = session.script(
        "const t = document.getElementById('result'); \
         return [...t.querySelectorAll('tr')].map(r => [...r.cells].map(c => c.textContent));",
    );
    assert_eq!(
        table,
        json!([
            ["id", "city", "population", "note"],
            ["1", "Lisbon", "545000", "PT"],
            ["2", "Porto", "232000", "null"],
            ["3", "Zürich \"quoted\"", "421000", "<b>ü & ß</b>"],
        ]),
        "the rendered table"
    );
    assert_eq!(session.script("return document.querySelectorAll('#result td.null').length;"), json!(1));
    eprintln!("query checked after {:.1} s", started.elapsed().as_secs_f64());

    // An upload above the 8 MiB single-PUT limit: multipart, from the file picker.
    let bytes = test_bytes(9 * 1024 * 1024 + 654_321);
    let path = std::env::temp_dir().join(format!("web-e2e-upload-{}.bin", std::process::id()));
    std::fs::write(&path, &bytes).expect("writing the test file");
    emu.clear_requests();
    session.type_into("#file", &path.display().to_string());
    session.click("#upload");
    let (state, status) = session.wait_state("upload-status");
    let _ = std::fs::remove_file(&path);
    assert_eq!(state, "done", "{status}\n{}", session.diagnostics());
    assert!(status.starts_with("uploaded 9.6 MiB in "), "upload status {status:?}");
    let upload_id = session.text("upload-result");
    assert!(!upload_id.is_empty(), "no upload id shown\n{}", session.diagnostics());
    let progress =
        session.script("const p = document.getElementById('upload-progress'); return [p.value, p.max];");
    assert_eq!(
        progress,
        json!([bytes.len(), bytes.len()]),
        "the progress bar ends at its max, the file size"
    );
    let stored = emu.uploaded_object(&upload_id).unwrap_or_else(|| panic!("no finalized upload {upload_id}"));
    assert!(
        stored.as_ref() == bytes.as_slice(),
        "the emulator stored {} bytes, not the file's",
        stored.len()
    );
    let requests = emu.requests();
    let puts = requests.iter().filter(|r| r.operation == "storage_put").count();
    assert!(puts >= 2, "a multipart upload: {puts} storage PUTs");
    let origin = server.url();
    assert!(
        requests
            .iter()
            .filter(|r| r.operation != "cors_preflight")
            .all(|r| r.header("origin") == Some(origin.as_str())),
        "every request came cross-origin from the page ({origin})"
    );
    eprintln!(
        "upload {upload_id} checked ({} bytes, {puts} storage PUTs) after {:.1} s",
        bytes.len(),
        started.elapsed().as_secs_f64()
    );

    let png = session.cmd("GET", "/screenshot", None).expect("a screenshot");
    let png =
        base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or("")).expect("base64 PNG");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::create_dir_all(target_dir()).expect("the target directory");
    let out = target_dir().canonicalize().unwrap_or_else(|_| target_dir()).join("web-e2e.png");
    std::fs::write(&out, &png).expect("saving the screenshot");
    eprintln!("screenshot saved to {} ({} bytes)", out.display(), png.len());
    eprintln!("end to end in {:.1} s", started.elapsed().as_secs_f64());
}
