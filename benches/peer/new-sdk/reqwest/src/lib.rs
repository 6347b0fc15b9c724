//! Shared setup for the new SDK's async (hotdata-reqwest) peer-bench clients.
use bench_util::Args;

/// The runtime every async client uses (`--rt multi|current`).
pub use bench_util::runtime;

#[path = "../../config.rs"]
mod config;
pub use config::config;

/// `hotdata_reqwest::client(config(a))`: the SDK's own reqwest client (rustls with ring,
/// given to reqwest explicitly; no process-wide provider is installed), nothing else. Call it before the
/// measured region; it needs no runtime.
pub fn client(a: &Args) -> hotdata_core::AsyncClient {
    hotdata_reqwest::client(config(a))
}
