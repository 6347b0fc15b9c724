//! `hotdata-emulator`: run the Hotdata API emulator as a process.
//!
//! Prints `listening http://127.0.0.1:PORT` on stdout once it accepts connections (then
//! `api key ...`, then `control token TOKEN` or `control on (token as given)` with
//! `--control`, then one `arrow-result FILE RESULT_ID DATABASE_ID` line per
//! `--arrow-result`), then serves until killed.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use hotdata_emulator::{ArrowCompression, Config, EmulatorBuilder, FaultRule};

const HELP: &str = "\
hotdata-emulator: a local, in-memory Hotdata API

USAGE: hotdata-emulator [FLAGS]

  --port N                 port on the host (default 8787; 0 = ephemeral)     env HOTDATA_EMULATOR_PORT
  --host ADDR              address to bind (default 127.0.0.1)                env HOTDATA_EMULATOR_HOST
  --api-key KEY            accepted bearer token (repeatable; default hd_emulator_key)
                                                                              env HOTDATA_EMULATOR_API_KEYS (comma-separated)
  --workspace ID           seeded workspace id (repeatable; default ws_emulator)
                                                                              env HOTDATA_EMULATOR_WORKSPACES (comma-separated)
  --no-presign             uploads answer 501 PRESIGN_UNSUPPORTED; POST /v1/files works
                                                                              env HOTDATA_EMULATOR_PRESIGN=0
  --single-put-max BYTES   largest declared size given a single PUT (default 8 MiB)
  --min-part-size BYTES    smallest non-final multipart part (default 5 MiB)
  --default-part-size BYTES
  --part-url-ttl-secs N    presigned URL lifetime (default 1800)
  --preview-rows N         inline rows of POST /v1/query (default 1000)
  --max-json-result-bytes N  JSON result page limit before 413 (default 64 MiB)
  --max-stored-rows N      rows kept across stored results before eviction (default 50M)
  --job-step-ms N          duration of each job phase (default 50)
  --async-result-delay-ms N  time an async result stays not ready (default 100)
  --fault SPEC             inject a fault (repeatable)                         env HOTDATA_EMULATOR_FAULTS (';'-separated)
  --arrow-compression none|lz4|zstd
                           compress the record batches of every Arrow stream written (default none)
                                                                              env HOTDATA_EMULATOR_ARROW_COMPRESSION
  --arrow-result FILE      serve this Arrow IPC stream file byte for byte as a result of database
                           `fixtures` (created at start; repeatable); after `listening ...` and
                           `api key ...`, prints `arrow-result FILE RESULT_ID DATABASE_ID` per file
  --control                turn on the control routes (/_emulator/*: faults, request log, stored
                           objects and results, reset, instances) with a random token, printed after
                           `api key ...` as `control token TOKEN`; off, they answer 404
  --control-token TOKEN    turn them on with this token (visible ASCII)     env HOTDATA_EMULATOR_CONTROL_TOKEN
                           (the environment keeps it out of `ps`)
  --control-remote         let peers that are not loopback addresses use them (default: 403)
  --max-instances N        instances (POST /_emulator/instances) running at once (default 64; past it 429)
  -h, --help

CONTROL ROUTES: every request carries `X-Emulator-Token: TOKEN` (401 without, 403 when wrong);
  loopback peers only unless --control-remote (403); never faulted, never in the request log
  GET /_emulator/health                      {\"ok\":true}
  GET|POST|DELETE /_emulator/faults          list | add (spec, `;`-separated specs, or JSON) | clear
  GET|DELETE /_emulator/requests             the request log as JSON (?operation=OP&path=PREFIX) | clear
  GET /_emulator/uploads/ID                  the stored object of a finalized upload
  POST /_emulator/results?database_id=DB     store the body (an Arrow IPC stream) as a result
  POST /_emulator/reset[?only=faults,requests,data]  back to the start (all three by default)
  POST /_emulator/instances                  start an isolated emulator in this process, on its own
                                             port; the body: settings as JSON (empty: defaults), e.g.
                                             {\"preview_rows\":5,\"faults\":[\"op=query,status=429\"]};
                                             answers 201 {\"id\",\"base_url\",\"api_key\",\"workspace_id\"}
  GET|DELETE /_emulator/instances            list | stop every one
  DELETE /_emulator/instances/ID             stop one (they all stop with this process)

FAULT SPEC: comma-separated items, e.g. `op=query,status=429,retry-after=2,times=3`
  target: op=<operationId> | path=<prefix> | part=<n>   (storage ops: storage_put, storage_get)
  fault:  status=<code> | reset | delay-ms=<ms> | slow-body-ms=<ms>[,chunk=<bytes>] | force-async | not-ready
          | truncate[=<bytes>] | expired-url | missing-etag | hidden-etag | fail-after-commit=<code>
          | reset-after-commit
  extra:  retry-after=<secs> | retry-after-date=<secs> | times=<n> | always | skip=<n>
  JSON form (POST /_emulator/faults, GET lists it): the same items as members, flags as true,
          e.g. {\"op\":\"query\",\"status\":429,\"retry-after\":2,\"times\":3}
";

fn fail(msg: &str) -> ! {
    eprintln!("hotdata-emulator: {msg}\n\n{HELP}");
    std::process::exit(2);
}

fn num(v: Option<String>, flag: &str) -> u64 {
    v.and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| fail(&format!("{flag} needs a number")))
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.trim().is_empty())
}

fn main() {
    let mut cfg = Config::default();
    let mut port: u16 =
        env("HOTDATA_EMULATOR_PORT").map(|p| num(Some(p), "HOTDATA_EMULATOR_PORT") as u16).unwrap_or(8787);
    let mut host: IpAddr = env("HOTDATA_EMULATOR_HOST")
        .map(|h| h.parse().unwrap_or_else(|_| fail("bad HOTDATA_EMULATOR_HOST")))
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    if let Some(k) = env("HOTDATA_EMULATOR_API_KEYS") {
        cfg.api_keys = k.split(',').map(|s| s.trim().to_string()).collect();
    }
    if let Some(w) = env("HOTDATA_EMULATOR_WORKSPACES") {
        cfg.workspaces = w.split(',').map(|s| s.trim().to_string()).collect();
    }
    if env("HOTDATA_EMULATOR_PRESIGN").is_some_and(|v| matches!(v.as_str(), "0" | "false" | "no")) {
        cfg.presign = false;
    }
    if let Some(f) = env("HOTDATA_EMULATOR_FAULTS") {
        for spec in f.split(';').filter(|s| !s.trim().is_empty()) {
            cfg.faults.push(FaultRule::parse(spec).unwrap_or_else(|e| fail(&e)));
        }
    }
    if let Some(t) = env("HOTDATA_EMULATOR_CONTROL_TOKEN") {
        cfg.control_token = Some(t);
    }
    if let Some(c) = env("HOTDATA_EMULATOR_ARROW_COMPRESSION") {
        cfg.arrow_compression =
            c.parse().unwrap_or_else(|e| fail(&format!("HOTDATA_EMULATOR_ARROW_COMPRESSION: {e}")));
    }
    let mut arrow_results: Vec<(String, bytes::Bytes)> = Vec::new();
    let mut keys_from_flags: Vec<String> = Vec::new();
    let mut ws_from_flags: Vec<String> = Vec::new();
    let mut control = cfg.control_token.is_some();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut val = || inline.clone().or_else(|| args.next());
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                return;
            }
            "--port" => port = num(val(), "--port") as u16,
            "--host" => {
                host =
                    val().and_then(|h| h.parse().ok()).unwrap_or_else(|| fail("--host needs an IP address"))
            }
            "--api-key" => keys_from_flags.push(val().unwrap_or_else(|| fail("--api-key needs a value"))),
            "--workspace" => ws_from_flags.push(val().unwrap_or_else(|| fail("--workspace needs a value"))),
            "--no-presign" => cfg.presign = false,
            "--single-put-max" => cfg.single_put_max = num(val(), &flag),
            "--min-part-size" => cfg.min_part_size = num(val(), &flag),
            "--default-part-size" => cfg.default_part_size = num(val(), &flag),
            "--part-url-ttl-secs" => cfg.part_url_ttl = Duration::from_secs(num(val(), &flag)),
            "--preview-rows" => cfg.preview_rows = num(val(), &flag) as usize,
            "--max-json-result-bytes" => cfg.max_json_result_bytes = num(val(), &flag) as usize,
            "--max-stored-rows" => cfg.max_stored_rows = num(val(), &flag) as usize,
            "--job-step-ms" => cfg.job_step = Duration::from_millis(num(val(), &flag)),
            "--async-result-delay-ms" => cfg.async_result_delay = Duration::from_millis(num(val(), &flag)),
            "--fault" => {
                let spec = val().unwrap_or_else(|| fail("--fault needs a spec"));
                cfg.faults.push(FaultRule::parse(&spec).unwrap_or_else(|e| fail(&e)));
            }
            "--arrow-compression" => {
                let v = val().unwrap_or_else(|| fail("--arrow-compression needs none, lz4 or zstd"));
                cfg.arrow_compression = v
                    .parse::<ArrowCompression>()
                    .unwrap_or_else(|e| fail(&format!("--arrow-compression: {e}")));
            }
            "--arrow-result" => {
                let file = val().unwrap_or_else(|| fail("--arrow-result needs a file"));
                let data =
                    std::fs::read(&file).unwrap_or_else(|e| fail(&format!("--arrow-result {file}: {e}")));
                arrow_results.push((file, bytes::Bytes::from(data)));
            }
            "--control" => control = true,
            "--control-token" => {
                cfg.control_token = Some(val().unwrap_or_else(|| fail("--control-token needs a token")));
                control = true;
            }
            "--control-remote" => cfg.control_remote = true,
            "--max-instances" => cfg.max_instances = num(val(), &flag) as usize,
            other => fail(&format!("unknown flag `{other}`")),
        }
    }
    if !keys_from_flags.is_empty() {
        cfg.api_keys = keys_from_flags;
    }
    if !ws_from_flags.is_empty() {
        cfg.workspaces = ws_from_flags;
    }
    if cfg.control_remote && !control {
        fail("--control-remote needs --control or --control-token");
    }
    cfg.bind = std::net::SocketAddr::new(host, port);
    let given_token = cfg.control_token.is_some();
    let mut builder = EmulatorBuilder::from_config(cfg);
    if control {
        builder = builder.control();
    }
    let emu = builder.start().unwrap_or_else(|e| fail(&format!("cannot start: {e}")));
    // Stored before `listening` is printed, so they exist once a script sees it.
    let mut stored: Vec<String> = Vec::new();
    if !arrow_results.is_empty() {
        let db = emu.create_database("fixtures").unwrap_or_else(|e| fail(&format!("--arrow-result: {e}")));
        for (file, data) in arrow_results {
            let id = emu
                .store_arrow_result(&db, data)
                .unwrap_or_else(|e| fail(&format!("--arrow-result {file}: {e}")));
            stored.push(format!("arrow-result {file} {id} {db}"));
        }
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening {}", emu.base_url());
    let _ = writeln!(out, "api key {}  workspace {}", emu.api_key(), emu.workspace_id());
    match emu.control_token() {
        Some(_) if given_token => {
            let _ = writeln!(out, "control on (token as given)");
        }
        Some(token) => {
            let _ = writeln!(out, "control token {token}");
        }
        None => {}
    }
    for line in stored {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
