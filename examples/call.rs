//! Runs any Hotdata operation by its operationId and prints the response JSON.
//!
//! ```text
//! cargo run --example call -- [--backend ureq|reqwest] <operation_id> [--param NAME=VALUE ...] [--body JSON]
//! cargo run --example call -- --list
//! ```
//!
//! Parameter names are the spec's (path, query and header parameters, e.g. `database_id`,
//! `limit`, `X-Database-Id`). Host and credentials come from `HOTDATA_API_URL`,
//! `HOTDATA_API_KEY` and `HOTDATA_WORKSPACE_ID`. The answer is decoded through the SDK's
//! typed model for the operation, then printed as JSON on stdout; on failure the error goes
//! to stderr and the exit status is 1 (2 for a usage error).

use std::process::ExitCode;

use hotdata_core::{Config, DynamicRequest, Error, ops};
use hotdata_examples::Backend;

fn usage(message: &str) -> ExitCode {
    eprintln!("{message}");
    eprintln!(
        "usage: call [--backend ureq|reqwest] <operation_id> [--param NAME=VALUE ...] [--body JSON]\n       call --list"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut backend = Backend::Ureq;
    let mut op = None;
    let mut params = Vec::new();
    let mut body = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--list" => {
                for o in ops::ALL {
                    println!("{:<40} {:<7} {}", o.id, o.method, o.path);
                }
                return ExitCode::SUCCESS;
            }
            "--backend" => match args.next().map(|b| b.parse()) {
                Some(Ok(b)) => backend = b,
                Some(Err(e)) => return usage(&e),
                None => return usage("--backend needs a value"),
            },
            "--param" => match args.next().as_deref().and_then(|p| p.split_once('=')) {
                Some((k, v)) => params.push((k.to_owned(), v.to_owned())),
                None => return usage("--param needs NAME=VALUE"),
            },
            "--body" => match args.next().map(|b| serde_json::from_str::<serde_json::Value>(&b)) {
                Some(Ok(v)) => body = Some(v),
                Some(Err(e)) => return usage(&format!("--body is not valid JSON: {e}")),
                None => return usage("--body needs a value"),
            },
            a if a.starts_with("--") => return usage(&format!("unknown option {a}")),
            a if op.is_none() => op = Some(a.to_owned()),
            a => return usage(&format!("unexpected argument {a}")),
        }
    }
    let Some(op) = op else {
        return usage("missing operation_id");
    };
    let request = match build(&op, params, body) {
        Ok(r) => r,
        Err(e) => return usage(&e.to_string()),
    };
    let config = Config::from_env();
    let result = match backend {
        Backend::Ureq => hotdata_ureq::client(config).call(request).send(),
        Backend::Reqwest => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(hotdata_reqwest::client(config).call(request).send()),
            Err(e) => {
                eprintln!("could not start tokio: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match result {
        Ok(value) => {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            hotdata_examples::report(&e);
            ExitCode::FAILURE
        }
    }
}

fn build(
    op: &str,
    params: Vec<(String, String)>,
    body: Option<serde_json::Value>,
) -> Result<DynamicRequest, Error> {
    let mut request = DynamicRequest::new(op)?;
    for (k, v) in params {
        request = request.param(&k, v)?;
    }
    if let Some(b) = body {
        request = request.body(b);
    }
    request.validate()?;
    Ok(request)
}
