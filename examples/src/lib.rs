//! Helpers shared by the examples.
#![forbid(unsafe_code)]

use hotdata_core::{AsyncClient, BlockingClient, Config, Credentials};

pub mod query;
pub mod soak;

/// Where an example's calls go: the hosted service when `HOTDATA_API_KEY` is set, else a
/// local emulator started in-process (stopped when the session is dropped).
pub struct Session {
    config: Config,
    emulator: Option<hotdata_emulator::EmulatorHandle>,
}

impl Session {
    /// Connects as the environment says (`HOTDATA_API_KEY`, `HOTDATA_WORKSPACE_ID`,
    /// `HOTDATA_API_URL`); with no API key, starts a local emulator and points at it.
    pub fn connect() -> Result<Self, String> {
        let config = Config::from_env();
        if !matches!(config.credentials, Credentials::None) {
            return Ok(Self { config, emulator: None });
        }
        Self::local()
    }

    /// A session on a local emulator started in-process, whatever the environment says
    /// (tests).
    pub fn local() -> Result<Self, String> {
        let emulator = hotdata_emulator::Emulator::builder()
            .start()
            .map_err(|e| format!("could not start the local emulator: {e}"))?;
        let config = Config::new(emulator.api_key())
            .with_workspace_id(emulator.workspace_id())
            .with_base_url(emulator.base_url());
        Ok(Self { config, emulator: Some(emulator) })
    }

    /// The local emulator, when the calls go to one.
    pub fn emulator(&self) -> Option<&hotdata_emulator::EmulatorHandle> {
        self.emulator.as_ref()
    }

    /// True when the calls go to the local emulator.
    pub fn is_local(&self) -> bool {
        self.emulator.is_some()
    }

    /// Where the calls go, in words.
    pub fn describe(&self) -> String {
        match &self.emulator {
            Some(e) => format!("the local Hotdata emulator at {} (no HOTDATA_API_KEY set)", e.base_url()),
            None => format!("{} (from HOTDATA_API_KEY)", self.config.base_url),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A blocking client (ureq).
    pub fn blocking(&self) -> BlockingClient {
        hotdata_ureq::client(self.config.clone())
    }

    /// An async client (reqwest); use it inside a tokio runtime.
    pub fn asynchronous(&self) -> AsyncClient {
        hotdata_reqwest::client(self.config.clone())
    }
}

/// The backend an example runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Blocking, over ureq.
    Ureq,
    /// Async, over reqwest and tokio.
    Reqwest,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ureq" => Ok(Self::Ureq),
            "reqwest" => Ok(Self::Reqwest),
            other => Err(format!("unknown backend `{other}` (expected ureq or reqwest)")),
        }
    }
}

/// The README's code blocks, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

/// The backends' READMEs (their pages on crates.io), compiled as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../hotdata-ureq/README.md")]
mod readme_ureq {}

/// The async backend's README, as above.
#[cfg(doctest)]
#[doc = include_str!("../../hotdata-reqwest/README.md")]
mod readme_reqwest {}

/// Prints an error and its causes on stderr.
pub fn report(error: &dyn std::error::Error) {
    eprintln!("error: {error}");
    let mut source = error.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
}

/// Prints rows as an aligned text table on stdout: see [`write_table`].
pub fn print_table(columns: &[String], rows: &[Vec<String>]) {
    write_table(&mut std::io::stdout().lock(), columns, rows);
}

/// Writes rows as an aligned text table: one header line, a rule, then the rows.
pub fn write_table(out: &mut dyn std::io::Write, columns: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count()).min(40);
        }
    }
    let line = |out: &mut dyn std::io::Write, cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let c: String = c.chars().take(*w).collect();
                format!("{c:<w$}")
            })
            .collect();
        let _ = writeln!(out, "  {}", parts.join(" | ").trim_end());
    };
    line(out, columns);
    let _ = writeln!(out, "  {}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
    for row in rows {
        line(out, row);
    }
}

/// A JSON value as a table cell: strings without quotes, `null` as empty.
pub fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Helpers of the benchmark programs: each measurement runs in a child process of its own,
/// so that its peak memory is its own.
pub mod bench {
    use std::process::Command;

    /// A field of `/proc/self/status`, in KiB (`VmRSS:`, `VmHWM:`); 0 where unavailable.
    pub fn status_kib(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU seconds (user + system) this process has used so far, from `/proc/self/stat`
    /// (clock ticks of 1/100 s); 0 where unavailable.
    pub fn cpu_secs() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at field 3 (`state`);
        // utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        (tick(11) + tick(12)) / 100.0
    }

    /// The value following `--name` on the command line.
    pub fn flag(args: &[String], name: &str) -> Option<String> {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
    }

    /// Runs this program again with `args` and returns the fields of what it printed, or its
    /// error output. `BENCH_WRAP` (say `taskset -c 1`, or `perf record -o FILE`) is a command
    /// the child runs under.
    pub fn run_child(args: &[&str]) -> Result<Vec<String>, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let wrap = std::env::var("BENCH_WRAP").unwrap_or_default();
        let mut wrap = wrap.split_whitespace();
        let mut command = match wrap.next() {
            Some(program) => {
                let mut c = Command::new(program);
                c.args(wrap).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let out = command.args(args).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect())
    }
}
