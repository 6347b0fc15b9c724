//! Benchmark: `upload_file` to the local emulator on both backends, beside a raw PUT of
//! the same bytes with the same HTTP library.
//!
//! ```text
//! cargo run --release --example bench_uploads -- [--sizes 64,1024]   # MiB
//! ```
//!
//! The parent writes a file of each size and starts two emulators: one that answers every
//! session with a single PUT URL (for the raw baseline: one streamed PUT of the whole file,
//! read from disk), and a default one (8 MiB single-PUT limit, so the SDK uploads in parts,
//! several at once). Each measurement runs in a fresh child process, which reports its
//! throughput and its peak RSS above its baseline.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use hotdata_core::Config;
use hotdata_core::models::CreateUploadRequest;
use hotdata_core::upload::UploadOptions;
use hotdata_examples::bench::{flag, run_child, status_kib};

fn arg(args: &[String], k: &str) -> String {
    flag(args, k).unwrap_or_default()
}

fn measure(mode: &str, path: &str, config: Config) -> Result<u64, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    match mode {
        "raw-ureq" | "raw-reqwest" => {
            // One session, one PUT of the whole file (the emulator behind answers `single`).
            let client = hotdata_ureq::client(config);
            let session = client
                .uploads()
                .create_session(CreateUploadRequest::new().declared_size_bytes(size as i64))
                .send()
                .map_err(|e| e.to_string())?;
            let url = session.url.ok_or("no single PUT url")?;
            if mode == "raw-ureq" {
                let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
                ureq::put(&url)
                    .header("content-length", &size.to_string())
                    .send(ureq::SendBody::from_owned_reader(file))
                    .map_err(|e| e.to_string())?;
            } else {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async {
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    let file = tokio::fs::File::open(path).await.map_err(|e| e.to_string())?;
                    let body = reqwest::Body::wrap_stream(tokio_util_free_stream(file));
                    reqwest::Client::new()
                        .put(&url)
                        .header("content-length", size)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(())
                })?;
            }
            Ok(size)
        }
        "sdk-ureq" => {
            let done = hotdata_ureq::client(config)
                .upload_file(std::path::Path::new(path), UploadOptions::new())
                .map_err(|e| e.to_string())?;
            Ok(done.size_bytes as u64)
        }
        "sdk-reqwest" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let done = hotdata_reqwest::client(config)
                    .upload_file(path, UploadOptions::new())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(done.size_bytes as u64)
            })
        }
        other => Err(format!("unknown mode {other}")),
    }
}

/// A file as a stream of 1 MiB chunks.
fn tokio_util_free_stream(
    file: tokio::fs::File,
) -> impl futures_core::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    struct S(tokio::fs::File);
    impl futures_core::Stream for S {
        type Item = std::io::Result<bytes::Bytes>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            use tokio::io::AsyncRead;
            let mut buf = vec![0u8; 1 << 20];
            let mut read = tokio::io::ReadBuf::new(&mut buf);
            match std::pin::Pin::new(&mut self.0).poll_read(cx, &mut read) {
                std::task::Poll::Pending => std::task::Poll::Pending,
                std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Some(Err(e))),
                std::task::Poll::Ready(Ok(())) if read.filled().is_empty() => std::task::Poll::Ready(None),
                std::task::Poll::Ready(Ok(())) => {
                    let n = read.filled().len();
                    buf.truncate(n);
                    std::task::Poll::Ready(Some(Ok(bytes::Bytes::from(buf))))
                }
            }
        }
    }
    S(file)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--child") {
        let config = Config::new(arg(&args, "--key"))
            .with_workspace_id(arg(&args, "--workspace"))
            .with_base_url(arg(&args, "--url"))
            .with_timeout(Some(Duration::from_secs(3600)));
        let mode = arg(&args, "--child");
        let baseline = status_kib("VmRSS:");
        let t0 = Instant::now();
        return match measure(&mode, &arg(&args, "--path"), config) {
            Ok(bytes) => {
                println!("{bytes} {} {baseline} {}", t0.elapsed().as_secs_f64(), status_kib("VmHWM:"));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{mode}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let sizes: Vec<u64> = {
        let s = arg(&args, "--sizes");
        if s.is_empty() { vec![64, 1024] } else { s.split(',').filter_map(|v| v.parse().ok()).collect() }
    };
    let start = |single_max: u64| {
        hotdata_emulator::Emulator::builder().single_put_max(single_max).max_upload_bytes(64 << 30).start()
    };
    let (raw_emu, sdk_emu) = match (start(64 << 30), start(8 << 20)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => {
            eprintln!("could not start the emulators");
            return ExitCode::FAILURE;
        }
    };
    println!("| size | mode | seconds | MiB/s | peak RSS above baseline (MiB) |");
    println!("|---|---|---|---|---|");
    for mib in sizes {
        let path = std::env::temp_dir().join(format!("hotdata-bench-{mib}MiB.bin"));
        {
            let mut f = std::fs::File::create(&path).expect("temp file");
            let block: Vec<u8> =
                (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
            for _ in 0..mib {
                f.write_all(&block).expect("write");
            }
        }
        for mode in ["raw-ureq", "sdk-ureq", "raw-reqwest", "sdk-reqwest"] {
            let emu = if mode.starts_with("raw") { &raw_emu } else { &sdk_emu };
            let path = path.to_string_lossy();
            let child = [
                "--child",
                mode,
                "--url",
                emu.base_url(),
                "--key",
                emu.api_key(),
                "--workspace",
                emu.workspace_id(),
                "--path",
                &path,
            ];
            let f = match run_child(&child) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{mode} failed: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            let (bytes, secs, base, peak) = (num(0), num(1), num(2), num(3));
            println!(
                "| {mib} MiB | {mode} | {secs:.2} | {:.0} | {:.1} |",
                bytes / 1048576.0 / secs,
                (peak - base) / 1024.0
            );
        }
        let _ = std::fs::remove_file(&path);
    }
    ExitCode::SUCCESS
}
