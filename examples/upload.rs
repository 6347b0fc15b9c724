//! Uploads a file straight to object storage with a progress bar, and prints the finalized
//! upload id on its last line.
//!
//! ```text
//! cargo run --example upload -- [--backend ureq|reqwest] <PATH> [--content-type TYPE]
//! ```
//!
//! Without `HOTDATA_API_KEY` it uploads to the local emulator. Files above 8 MiB go up in
//! parts, several at once, read from disk as they are needed (never held whole in memory).

use std::path::PathBuf;
use std::process::ExitCode;

use hotdata_core::upload::{UploadEvent, UploadOptions};
use hotdata_examples::{Backend, Session};
use indicatif::{ProgressBar, ProgressStyle};

fn usage(message: &str) -> ExitCode {
    eprintln!("{message}\nusage: upload [--backend ureq|reqwest] <PATH> [--content-type TYPE]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let (mut backend, mut path, mut content_type) = (Backend::Ureq, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--backend" => match args.next().map(|b| b.parse()) {
                Some(Ok(b)) => backend = b,
                Some(Err(e)) => return usage(&e),
                None => return usage("--backend needs a value"),
            },
            "--content-type" => match args.next() {
                Some(t) => content_type = Some(t),
                None => return usage("--content-type needs a value"),
            },
            s if s.starts_with("--") => return usage(&format!("unknown option {s}")),
            s if path.is_none() => path = Some(PathBuf::from(s)),
            s => return usage(&format!("unexpected argument {s}")),
        }
    }
    let Some(path) = path else { return usage("missing PATH") };
    let size = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let session = match Session::connect() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("Uploading {} ({size} bytes) to {}.", path.display(), session.describe());

    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = bar.clone();
    let mut options = UploadOptions::new().on_event(move |event| match event {
        UploadEvent::Progress { done, total } => {
            if let Some(t) = total {
                progress.set_length(*t);
            }
            progress.set_position(*done);
        }
        UploadEvent::PartFailed { .. } | UploadEvent::RoundStarted { .. } => {
            progress.println(format!("{event:?}"))
        }
        _ => {}
    });
    // The path fills the file name and the content type its extension implies; an
    // explicit --content-type wins.
    if let Some(t) = content_type {
        options = options.content_type(t);
    }
    let result = match backend {
        Backend::Ureq => session
            .blocking()
            .upload_file(path.as_path(), options)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>),
        Backend::Reqwest => {
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Into::into).and_then(
                |rt| {
                    rt.block_on(async {
                        // Sized, read part by part on tokio's blocking pool.
                        Ok(session.asynchronous().upload_file(path.as_path(), options).await?)
                    })
                },
            )
        }
    };
    bar.finish_and_clear();
    match result {
        Ok(done) => {
            eprintln!("Uploaded {} bytes; status {}.", done.size_bytes, done.status);
            println!("{}", done.upload_id);
            ExitCode::SUCCESS
        }
        Err(e) => {
            hotdata_examples::report(e.as_ref());
            ExitCode::FAILURE
        }
    }
}
