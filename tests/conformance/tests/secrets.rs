//! The secret sweep (issue 12) on both native backends: the scenario of
//! `tests/scenarios/secrets.rs` (the browser runs the same file,
//! `hotdata-wasm/tests/scenarios.rs`).

#[allow(unused_imports)]
use hotdata_conformance::scenarios::*;
#[allow(unused_imports)]
use hotdata_conformance::{ctl, pause, scenario, start};

include!("../../scenarios/secrets.rs");
