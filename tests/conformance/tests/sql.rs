//! The one-call query (`client.sql(..)`) against the emulator, on both native backends: the
//! scenarios of `tests/scenarios/sql.rs` (the browser runs the same file,
//! `hotdata-wasm/tests/scenarios.rs`), and what only a native build can check.

#[allow(unused_imports)]
use hotdata_conformance::scenarios::*;
#[allow(unused_imports)]
use hotdata_conformance::{ctl, pause, scenario, start};

include!("../../scenarios/sql.rs");

/// The everyday types are at each backend's root, the arrow crates too: a user names a
/// `RecordBatch` with no second dependency on arrow.
#[test]
fn one_dependency_line_names_everything_a_query_needs() {
    fn first_batch(result: &hotdata_ureq::ArrowResult) -> Option<&hotdata_ureq::arrow_array::RecordBatch> {
        result.batches.first()
    }
    let emu = start!(sql_settings());
    let c: hotdata_ureq::BlockingClient = hotdata_ureq::client(config(&emu));
    let request: hotdata_ureq::QueryRequest = "SELECT id FROM synthetic(3)".into();
    let result = c.sql(request).arrow().unwrap();
    let schema: hotdata_ureq::arrow_schema::SchemaRef = first_batch(&result).unwrap().schema();
    assert_eq!(schema.field(0).name(), "id");
    let _: Option<hotdata_reqwest::UploadOptions> = None;
    let _: Option<hotdata_reqwest::ResultFetch<hotdata_reqwest::ArrowBatchStream>> = None;
    let _: fn(hotdata_reqwest::Error) -> hotdata_reqwest::ErrorKind = |e| e.kind();
}
