//! The SDK's conformance scenarios against the local emulator (`hotdata-emulator`), on both
//! native backends: the scenarios of `tests/scenarios/emulator.rs`, each run with ureq
//! (blocking), then with reqwest (async), each against its own emulator. The browser runs
//! the same file (`hotdata-wasm/tests/scenarios.rs`).

#[allow(unused_imports)]
use hotdata_conformance::scenarios::*;
#[allow(unused_imports)]
use hotdata_conformance::{ctl, pause, scenario, start};

include!("../../scenarios/emulator.rs");
