//! A Prism mock server (`@stoplight/prism-cli`, pinned in `tests/package.json`) running the
//! committed OpenAPI spec on 127.0.0.1, for contract tests.
//!
//! [`Prism::start`] runs `prism mock --errors` on a free port and waits until it answers;
//! dropping the [`Prism`] kills the process (also when the test panics). With `--errors`,
//! a request that breaks the spec is answered with an error status and its violations in
//! the `sl-violations` header, instead of a mock response.
//!
//! The file depends on nothing else of this package, so a test can include it with
//! `#[path = "../src/prism.rs"] mod prism;`.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long Prism may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How many log lines are kept for failure messages.
const LOG_LINES: usize = 400;

/// How Prism makes up its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Static: the spec's examples, or one fixed value per schema (every property present).
    Static,
    /// Generated from the schemas by json-schema-faker, seeded so that the same request
    /// always gets the same answer (optional properties absent or `null` at random).
    Dynamic {
        /// The seed.
        seed: u64,
    },
    /// Not a mock: `prism proxy`, forwarding to `upstream` and validating both the requests
    /// and the upstream's answers against the spec.
    Proxy {
        /// The server behind Prism (`http://127.0.0.1:PORT`).
        upstream: String,
    },
}

/// A running Prism mock server. Killed on drop.
#[derive(Debug)]
pub struct Prism {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// Where `npm ci --prefix tests` installs the Prism binary.
pub fn prism_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/.bin/prism")
}

impl Prism {
    /// Starts `prism mock --errors` on the committed spec. Panics, with the command to run,
    /// when Prism is not installed, and with Prism's output when it does not start.
    pub fn start() -> Self {
        Self::start_with(&committed_spec(), Mode::Static)
    }

    /// Starts `prism mock --errors` on the committed spec, answering in `mode`.
    pub fn start_mode(mode: Mode) -> Self {
        Self::start_with(&committed_spec(), mode)
    }

    /// Starts `prism mock --errors` on `spec`, answering in `mode`.
    pub fn start_with(spec: &Path, mode: Mode) -> Self {
        let bin = prism_binary();
        assert!(
            bin.exists(),
            "Prism is not installed ({} is missing): run `npm ci --prefix tests` from the repository root",
            bin.display()
        );
        // The port is picked by binding to port 0 and releasing it; another process could
        // take it in between, so a start that fails is tried again on a new port.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin, spec, &mode) {
                Ok(prism) => return prism,
                Err(e) => last_error = e,
            }
        }
        panic!("Prism did not start:\n{last_error}")
    }

    fn try_start(bin: &Path, spec: &Path, mode: &Mode) -> Result<Self, String> {
        let port = free_port();
        let mut command = Command::new(bin);
        match mode {
            Mode::Proxy { upstream } => command.arg("proxy").arg(spec).arg(upstream),
            _ => command.arg("mock"),
        };
        command
            .arg("--errors")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--cors", "false"]);
        if let Mode::Dynamic { seed } = mode {
            command
                .arg("--dynamic")
                .args(["--seed", &seed.to_string()])
                .arg("--json-schema-faker-fillProperties=false");
        }
        if !matches!(mode, Mode::Proxy { .. }) {
            command.arg(spec);
        }
        let mut child = command
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(spawn_reader(out, log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(spawn_reader(err, log.clone()));
        }
        let mut prism = Self { child, port, log, readers };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = prism.child.try_wait() {
                return Err(format!("prism exited with {status}:\n{}", prism.log_tail(60)));
            }
            let listening = prism
                .log
                .lock()
                .map(|l| l.iter().any(|line| line.contains("Prism is listening")))
                .unwrap_or(false);
            if listening && answers(port) {
                return Ok(prism);
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "prism did not listen within {START_TIMEOUT:?}:\n{}",
                    prism.log_tail(60)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last `n` lines Prism printed.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        log[log.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

/// The committed spec, `hotdata-core/openapi/hotdata-openapi.json`.
fn committed_spec() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hotdata-core/openapi/hotdata-openapi.json")
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local address of a bound listener").port()
}

/// Whether something answers HTTP on the port.
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    use std::io::Write;
    if stream.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 ")
}

fn spawn_reader(stream: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut log) = log.lock() {
                if log.len() >= LOG_LINES {
                    log.drain(..LOG_LINES / 2);
                }
                log.push(line);
            }
        }
    })
}
