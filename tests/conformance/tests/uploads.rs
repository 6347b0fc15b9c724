//! `upload_file` on both native backends: the scenarios of `tests/scenarios/uploads.rs`
//! (the browser runs the same file, `hotdata-wasm/tests/scenarios.rs`, but for the
//! native-only ones: file paths, a scripted server seeing the wire).

#[allow(unused_imports)]
use hotdata_conformance::scenarios::*;
#[allow(unused_imports)]
use hotdata_conformance::{ctl, pause, scenario, start};

include!("../../scenarios/uploads.rs");
