//! The native half of the shared scenario suite (`tests/scenarios/*.rs`): what a scenario
//! body reaches the emulator through, under the same names the browser harness
//! (`hotdata-wasm/tests/scenarios.rs`) defines.
//!
//! A scenario file is `include!`d by a test file here, which first brings these into scope
//! (`use hotdata_conformance::scenarios::*; use hotdata_conformance::{both, ctl, pause,
//! scenario, start};`); the browser harness includes the same file with its own
//! definitions. A body reaches the emulator only through:
//!
//! - [`start!`](crate::start)`(settings)`: an emulator of its own with these
//!   [`Settings`] (in the browser, an instance started over `POST /_emulator/instances`);
//! - [`ctl!`](crate::ctl)`(expr)` around every call on the emulator (`inject`, `requests`,
//!   `clear_requests`, `clear_faults`, `store_arrow_result`, `uploaded_object`) and on the
//!   helpers taking it ([`requests`]): as is here, awaited in the browser;
//! - [`pause!`](crate::pause)`(duration)`: a sleep;
//! - [`Stopwatch`] for elapsed time (`std::time::Instant` panics on wasm32);
//! - [`settings`]: the default settings with the Arrow compression of the run.
//!
//! plus the mode macros of [`both!`](crate::both) (`client!`, `call!`, `wait!`, `pages!`,
//! `next_batch!`, `storage_put!`, `storage_get!`, `stream_source!`).

use std::time::{Duration, Instant};

pub use hotdata_emulator::{ArrowCompression, EmulatorHandle as Emu, RequestRecord, Settings};

/// A scenario of `tests/scenarios`, run on both native backends (ureq, then reqwest) as one
/// `#[test]`: `scenario! { fn name(backend) { body } }`. The browser harness runs the same
/// body in headless Chromium; `scenario! { native_only("reason") fn name(backend) { body } }`
/// runs here only (the reason is read by `tests/scenarios/check`), and so does
/// `scenario! { native_only("reason") fn name() { body } }`, a plain `#[test]` whose body
/// calls `both!` itself after setup the two backends share (it may stay outside
/// `tests/scenarios`: the check reads `scenario!` in `tests/conformance/tests` too).
#[macro_export]
macro_rules! scenario {
    // A native-only test whose body runs `both!` itself (with setup the two backends share).
    ($(#[$meta:meta])* native_only($reason:literal) fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() $body
    };
    ($(#[$meta:meta])* native_only($reason:literal) fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::both!(|$backend| $body)
        }
    };
    ($(#[$meta:meta])* fn $name:ident($backend:ident) $body:block) => {
        $(#[$meta])*
        #[test]
        fn $name() {
            $crate::both!(|$backend| $body)
        }
    };
}

/// A call on the emulator (or a helper taking it): as is (the browser awaits it).
#[macro_export]
macro_rules! ctl {
    ($e:expr) => {
        $e
    };
}

/// An emulator of the scenario's own, started in process with these settings.
#[macro_export]
macro_rules! start {
    ($settings:expr) => {
        $crate::scenarios::start_emulator($settings)
    };
}

/// Sleeps this long (blocking: the async half runs on a current-thread runtime whose only
/// task is the scenario).
#[macro_export]
macro_rules! pause {
    ($d:expr) => {
        ::std::thread::sleep($d)
    };
}

/// Starts an emulator in process with `settings`.
pub fn start_emulator(settings: Settings) -> Emu {
    hotdata_emulator::Emulator::builder().settings(settings).start().expect("the emulator starts")
}

/// The default settings, with the emulator's Arrow batches compressed as
/// `HOTDATA_EMULATOR_ARROW_COMPRESSION` says (`none`, `lz4`, `zstd`; `tests/run` runs the
/// Arrow scenarios with each).
pub fn settings() -> Settings {
    let compression = std::env::var("HOTDATA_EMULATOR_ARROW_COMPRESSION").unwrap_or_default();
    let compression =
        if compression.trim().is_empty() { ArrowCompression::None } else { compression.parse().unwrap() };
    Settings::default().arrow_compression(compression)
}

/// Every request the emulator routed to `op`, oldest first.
pub fn requests(emu: &Emu, op: &str) -> Vec<RequestRecord> {
    emu.requests().into_iter().filter(|r| r.operation == op).collect()
}

/// Elapsed time since it started.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Self(Instant::now())
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
