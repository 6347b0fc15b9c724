//! The client configuration both new-SDK client crates use (included by `ureq/src/lib.rs`
//! and `reqwest/src/lib.rs` with `#[path]`).
use std::time::Duration;

use bench_util::Args;

/// The bench credentials and base URL, and a whole-request timeout of `--timeout-s` seconds
/// (default 3600; `0` disables it).
///
/// The SDK's default whole-request timeout is 120 s and bounds a buffered answer's body, so
/// it is raised here: a buffered result or an upload part must never be cut off by it.
/// Connect timeout and retry policy stay at the SDK's defaults.
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
