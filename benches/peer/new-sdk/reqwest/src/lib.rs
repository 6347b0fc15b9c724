//! Shared setup for the new SDK's async (hotdata-reqwest) peer-bench clients.
use std::time::Duration;

use bench_util::Args;

/// The runtime every async peer-bench client uses: tokio multi-thread with the default
/// worker count (one per core), like `#[tokio::main]`; `--rt current` switches to a
/// current-thread runtime. The same as `official::runtime` and `raw_reqwest::runtime`.
pub fn runtime(a: &Args) -> tokio::runtime::Runtime {
    match a.str_or("rt", "multi").as_str() {
        "current" => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        "multi" => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        other => {
            eprintln!("--rt must be multi or current, not {other:?}");
            std::process::exit(2)
        }
    }
    .expect("tokio runtime")
}

/// The client configuration every new-SDK client uses: the bench credentials and base URL,
/// and a whole-request timeout of `--timeout-s` seconds (default 3600; `0` disables it).
///
/// The SDK's default whole-request timeout is 120 s and covers the response body, so it is
/// raised here: a streamed result or an upload part must never be cut off by it. Connect
/// timeout and retry policy stay at the SDK's defaults.
pub fn config(a: &Args) -> hotdata_core::Config {
    let timeout = match a.u64_or("timeout-s", 3600) {
        0 => None,
        s => Some(Duration::from_secs(s)),
    };
    hotdata_core::Config::new(a.token())
        .with_workspace_id(a.workspace_id())
        .with_base_url(a.base_url())
        .with_timeout(timeout)
}

/// `hotdata_reqwest::client(config(a))`: the SDK's own reqwest client (rustls with ring,
/// given to reqwest explicitly; no process-wide provider is installed), nothing else. Call it before the
/// measured region; it needs no runtime.
pub fn client(a: &Args) -> hotdata_core::AsyncClient {
    hotdata_reqwest::client(config(a))
}
