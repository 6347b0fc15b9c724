//! Benchmark: streaming results from the local emulator, SDK against raw HTTP.
//!
//! ```text
//! cargo run --release --example bench_results -- [--arrow-rows N] [--json-rows N]
//! ```
//!
//! The parent process starts the emulator, stores an Arrow result of `--arrow-rows`
//! synthetic rows (default 15,000,000, a little over 1 GiB) and a JSON one of `--json-rows`
//! (default 1,000,000), then runs each measurement in a fresh child process so that each
//! one's peak RSS is its own:
//!
//! - `raw-ureq` / `raw-reqwest`: the Arrow bytes read and discarded with the bare HTTP
//!   library (the ceiling);
//! - `sdk-ureq` / `sdk-reqwest`: the same result through the SDK, decoded into record batches
//!   off the socket (`arrow_stream`);
//! - `json-ureq` / `json-reqwest`: the JSON result through the SDK in pages of 100,000 rows.
//!
//! It prints throughput, rows and peak RSS above the child's baseline (RSS measured after
//! setup, before the first byte), and the CPU seconds (user + system) the child and the
//! emulator (this process) spent during the measurement. `--modes raw-ureq,sdk-ureq` runs a
//! subset; `--repeat N` runs N interleaved rounds and adds a table of medians, with each SDK
//! mode's throughput as a share of the raw read. `BENCH_WRAP="taskset -c 1"` runs each child
//! under that command (with `taskset -c 0` on this program: emulator and client pinned to
//! cores of their own). `--pace-ms MS` paces every result body like a slower link: pieces of
//! `--pace-chunk` bytes (default 1 MiB), each followed by an `MS` millisecond pause.

use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hotdata_core::Config;
use hotdata_core::models::{CreateDatabaseRequest, QueryOutcome, QueryRequest};
use hotdata_core::results::ResultFetch;
use hotdata_examples::bench::{cpu_secs, flag, run_child, status_kib};

struct Target {
    url: String,
    key: String,
    workspace: String,
    database: String,
    result: String,
}

impl Target {
    fn config(&self) -> Config {
        Config::new(self.key.as_str())
            .with_workspace_id(self.workspace.as_str())
            .with_base_url(self.url.as_str())
            .with_timeout(Some(Duration::from_secs(3600)))
    }

    fn arrow_url(&self) -> String {
        format!("{}/v1/results/{}?format=arrow", self.url, self.result)
    }
}

/// One measurement: (bytes, rows) read.
fn measure(mode: &str, t: &Target) -> Result<(u64, u64), String> {
    let err = |e: hotdata_core::Error| e.to_string();
    match mode {
        "raw-ureq" => {
            let resp = ureq::get(&t.arrow_url())
                .header("authorization", &format!("Bearer {}", t.key))
                .header("x-workspace-id", &t.workspace)
                .header("x-database-id", &t.database)
                .call()
                .map_err(|e| e.to_string())?;
            let mut reader = resp.into_body().into_reader();
            let mut buf = vec![0u8; 64 * 1024];
            let mut n = 0u64;
            loop {
                let k = reader.read(&mut buf).map_err(|e| e.to_string())?;
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            Ok((n, 0))
        }
        "sdk-ureq" => {
            let client = hotdata_ureq::client(t.config());
            let ResultFetch::Ready(mut batches) =
                client.results().arrow(&t.result, &t.database).stream().map_err(err)?
            else {
                return Err("not ready".into());
            };
            let mut rows = 0u64;
            for b in batches.by_ref() {
                rows += b.map_err(err)?.num_rows() as u64;
            }
            Ok((batches.decoder().bytes_received(), rows))
        }
        "raw-reqwest" | "sdk-reqwest" | "json-reqwest" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                match mode {
                    "raw-reqwest" => {
                        let _ = rustls::crypto::ring::default_provider().install_default();
                        let resp = reqwest::Client::new()
                            .get(t.arrow_url())
                            .header("authorization", format!("Bearer {}", t.key))
                            .header("x-workspace-id", &t.workspace)
                            .header("x-database-id", &t.database)
                            .send()
                            .await
                            .map_err(|e| e.to_string())?;
                        let mut stream = resp.bytes_stream();
                        let mut n = 0u64;
                        while let Some(chunk) = std::future::poll_fn(|cx| {
                            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
                        })
                        .await
                        {
                            n += chunk.map_err(|e| e.to_string())?.len() as u64;
                        }
                        Ok((n, 0))
                    }
                    "sdk-reqwest" => {
                        let client = hotdata_reqwest::client(t.config());
                        let ResultFetch::Ready(mut s) =
                            client.results().arrow(&t.result, &t.database).stream().await.map_err(err)?
                        else {
                            return Err("not ready".into());
                        };
                        let mut rows = 0u64;
                        while let Some(b) = s.next_batch().await {
                            rows += b.map_err(err)?.num_rows() as u64;
                        }
                        Ok((s.decoder().bytes_received(), rows))
                    }
                    _ => {
                        let client = hotdata_reqwest::client(t.config());
                        let (mut rows, mut offset) = (0u64, 0i32);
                        loop {
                            let page = client
                                .results()
                                .get(&t.result, &t.database)
                                .offset(offset)
                                .limit(100_000)
                                .send()
                                .await
                                .map_err(err)?;
                            let n = page.rows.as_ref().map_or(0, Vec::len);
                            rows += n as u64;
                            offset += n as i32;
                            if n < 100_000 {
                                break;
                            }
                        }
                        Ok((0, rows))
                    }
                }
            })
        }
        "json-ureq" => {
            let client = hotdata_ureq::client(t.config());
            let (mut rows, mut offset) = (0u64, 0i32);
            loop {
                let page = client
                    .results()
                    .get(&t.result, &t.database)
                    .offset(offset)
                    .limit(100_000)
                    .send()
                    .map_err(err)?;
                let n = page.rows.as_ref().map_or(0, Vec::len);
                rows += n as u64;
                offset += n as i32;
                if n < 100_000 {
                    break;
                }
            }
            Ok((0, rows))
        }
        other => Err(format!("unknown mode {other}")),
    }
}

fn child(args: &[String]) -> ExitCode {
    let get =
        |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned().unwrap_or_default();
    let t = Target {
        url: get("--url"),
        key: get("--key"),
        workspace: get("--workspace"),
        database: get("--database"),
        result: get("--result"),
    };
    let mode = get("--child");
    let baseline = status_kib("VmRSS:");
    let (t0, cpu0) = (Instant::now(), cpu_secs());
    match measure(&mode, &t) {
        Ok((bytes, rows)) => {
            let secs = t0.elapsed().as_secs_f64();
            let peak = status_kib("VmHWM:");
            let cpu = cpu_secs() - cpu0;
            println!("{mode} {bytes} {rows} {secs} {baseline} {peak} {cpu}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{mode}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn stored_result(
    client: &hotdata_core::BlockingClient,
    db: &str,
    rows: u64,
) -> Result<String, hotdata_core::Error> {
    let sql = format!("select * from synthetic({rows})");
    let out = client
        .query(QueryRequest::new(sql).database_id(db))
        .timeout(Some(Duration::from_secs(3600)))
        .send()?;
    let id = match out {
        QueryOutcome::Inline(r) => r.result_id,
        QueryOutcome::Submitted(run) => client.wait_for_query_run(&run.query_run_id, db)?.result_id,
        _ => None,
    };
    let id = id.ok_or_else(|| hotdata_core::Error::config("no result id"))?;
    client.wait_for_result(&id, db)?;
    Ok(id)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--child") {
        return child(&args);
    }
    let number = |k: &str, d: u64| flag(&args, k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (arrow_rows, json_rows) = (number("--arrow-rows", 15_000_000), number("--json-rows", 1_000_000));
    let mut builder = hotdata_emulator::Emulator::builder().preview_rows(10).max_stored_rows(100_000_000);
    if let Some(ms) = flag(&args, "--pace-ms") {
        // A paced link: every result body goes out in `--pace-chunk` pieces (default 1 MiB),
        // each followed by a pause of `ms` milliseconds.
        let chunk = number("--pace-chunk", 1 << 20);
        match hotdata_emulator::FaultRule::parse(&format!(
            "path=/v1/results,slow-body-ms={ms},chunk={chunk},always"
        )) {
            Ok(rule) => builder = builder.fault(rule),
            Err(e) => {
                eprintln!("--pace-ms: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let emu = match builder.start() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::new(emu.api_key())
        .with_workspace_id(emu.workspace_id())
        .with_base_url(emu.base_url())
        .with_timeout(Some(Duration::from_secs(3600)));
    let client = hotdata_ureq::client(config);
    let prepared = (|| {
        let db = client.databases().create(CreateDatabaseRequest::new().name("bench")).send()?.id;
        let t0 = Instant::now();
        let arrow = stored_result(&client, &db, arrow_rows)?;
        eprintln!("stored {arrow_rows} rows in {:.1} s", t0.elapsed().as_secs_f64());
        let json = stored_result(&client, &db, json_rows)?;
        Ok::<_, hotdata_core::Error>((db, arrow, json))
    })();
    let (db, arrow, json) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("setting up: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "| mode | MiB | rows | seconds | MiB/s | rows/s | peak RSS above baseline (MiB) | client CPU s | emulator CPU s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let only = flag(&args, "--modes");
    let modes = ["raw-ureq", "sdk-ureq", "raw-reqwest", "sdk-reqwest", "json-ureq", "json-reqwest"];
    let repeat = number("--repeat", 1);
    let chosen: Vec<&str> =
        modes.into_iter().filter(|m| only.as_deref().is_none_or(|o| o.split(',').any(|x| x == *m))).collect();
    // Per mode: (seconds, peak RSS MiB, client CPU s, emulator CPU s) of each run.
    let mut runs: Vec<(&str, Vec<[f64; 4]>)> = chosen.iter().map(|m| (*m, Vec::new())).collect();
    // Rounds interleave the modes, so a slow spell of the machine hits all of them.
    for mode in (0..repeat).flat_map(|_| chosen.iter().copied()) {
        let result = if mode.starts_with("json") { &json } else { &arrow };
        let child = [
            "--child",
            mode,
            "--url",
            emu.base_url(),
            "--key",
            emu.api_key(),
            "--workspace",
            emu.workspace_id(),
            "--database",
            &db,
            "--result",
            result,
        ];
        let server0 = cpu_secs();
        let f = match run_child(&child) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{mode} failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let server = cpu_secs() - server0;
        let (bytes, rows, secs, base, peak, cpu) = (num(1), num(2), num(3), num(4), num(5), num(6));
        let mib = bytes / 1048576.0;
        println!(
            "| {mode} | {mib:.0} | {rows:.0} | {secs:.2} | {:.0} | {:.0} | {:.1} | {cpu:.2} | {server:.2} |",
            if bytes > 0.0 { mib / secs } else { 0.0 },
            if rows > 0.0 { rows / secs } else { 0.0 },
            (peak - base) / 1024.0
        );
        if let Some((_, r)) = runs.iter_mut().find(|(m, _)| *m == mode) {
            r.push([secs, (peak - base) / 1024.0, cpu, server]);
        }
    }
    if repeat > 1 {
        print_medians(&runs);
    }
    ExitCode::SUCCESS
}

/// The median of each figure over the runs of each mode, and the Arrow modes' throughput as
/// a share of the raw read with the same library.
fn print_medians(runs: &[(&str, Vec<[f64; 4]>)]) {
    let median = |r: &[[f64; 4]], i: usize| {
        let mut v: Vec<f64> = r.iter().map(|x| x[i]).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    println!();
    println!(
        "| mode | runs | median seconds (range) | of raw | peak RSS (MiB) | client CPU s | emulator CPU s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (mode, r) in runs {
        let secs = median(r, 0);
        let raw = mode.strip_prefix("sdk-").and_then(|lib| {
            runs.iter().find(|(m, _)| m.strip_prefix("raw-") == Some(lib)).map(|(_, raw)| median(raw, 0))
        });
        let (lo, hi) = r.iter().fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(x[0]), hi.max(x[0])));
        println!(
            "| {mode} | {} | {secs:.2} ({lo:.2}–{hi:.2}) | {} | {:.1} | {:.2} | {:.2} |",
            r.len(),
            raw.map_or("—".to_string(), |raw| format!("{:.0}%", 100.0 * raw / secs)),
            median(r, 1),
            median(r, 2),
            median(r, 3)
        );
    }
}
