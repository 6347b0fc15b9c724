//! Property tests: encoding of identifiers into paths and queries, and serde round trips of
//! tri-state fields and raw cells.

use std::time::SystemTime;

use hotdata_core::endpoint::{decode_percent, encode_path_segment};
use hotdata_core::models::{Cell, Patch, UpdateSavedQueryRequest};
use hotdata_core::testing::{FakeTransport, ManualRuntime, response};
use hotdata_core::{BlockingClient, Config};
use proptest::prelude::*;

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

proptest! {
    /// Whatever a server answers, decoding it is a value or an error: never a panic. Bodies
    /// are a valid answer cut and spliced with JSON-ish bytes, so most fail deep inside.
    #[test]
    fn any_answer_decodes_or_is_an_error(
        cut in 0usize..400,
        splice in proptest::collection::vec(
            prop_oneof![proptest::sample::select(b"{}[]\",:\\ 0-9ae".to_vec()), any::<u8>()],
            0..24,
        ),
    ) {
        let mut body = VALID_ANSWER.as_bytes()[..cut.min(VALID_ANSWER.len())].to_vec();
        body.extend_from_slice(&splice);
        decode_result_page(body);
    }

    #[test]
    fn path_segments_round_trip(id in any::<String>()) {
        let enc = encode_path_segment(&id);
        prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        prop_assert!(enc != "." && enc != "..");
        prop_assert_eq!(decode_percent(&enc), Some(id));
    }

    #[test]
    fn built_uris_parse_and_keep_identifiers(db in any::<String>(), search in any::<String>()) {
        prop_assume!(!matches!(db.as_str(), "" | "." | ".."));
        let t = FakeTransport::script(vec![Ok(response(200, r#"{"total":1}"#)), Ok(response(404, "{}"))]);
        let client = BlockingClient::new(
            Config::new("k").with_workspace_id("w").with_base_url("http://h:1/p"),
            t.clone(),
            ManualRuntime::new(SystemTime::UNIX_EPOCH),
            "t",
        );
        client.databases().count().search(search.clone()).send().unwrap();
        let _ = client.databases().get(db.clone()).send();
        let reqs = t.requests();
        let query = reqs[0].uri.query().unwrap();
        let value = query.strip_prefix("search=").unwrap();
        prop_assert_eq!(decode_percent(value), Some(search));
        let path = reqs[1].uri.path();
        let seg = path.strip_prefix("/p/v1/databases/").unwrap();
        prop_assert!(!seg.contains('/'));
        prop_assert_eq!(decode_percent(seg), Some(db));
    }

    #[test]
    fn tri_state_fields_round_trip(name in proptest::option::of(proptest::option::of(".*")), tags in proptest::option::of(proptest::collection::vec(".*", 0..3))) {
        let mut req = UpdateSavedQueryRequest::new();
        req.name = match &name { None => Patch::Omit, Some(None) => Patch::Null, Some(Some(v)) => Patch::Value(v.clone()) };
        if let Some(t) = &tags { req = req.tags(t.clone()); }
        let json = serde_json::to_value(&req).unwrap();
        match &name {
            None => prop_assert!(json.get("name").is_none()),
            Some(None) => prop_assert_eq!(&json["name"], &serde_json::Value::Null),
            Some(Some(v)) => prop_assert_eq!(json["name"].as_str(), Some(v.as_str())),
        }
        let back: UpdateSavedQueryRequest = serde_json::from_value(json).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn cells_keep_numbers_exactly(int in any::<i128>(), frac in 0u64..10_000_000_000, digits in 1usize..38) {
        let text = format!("{int}.{frac:0>digits$}", digits = digits.min(10));
        let row = format!("[[{text}, {int}, \"{text}\", null]]");
        let cells: Vec<Vec<Cell>> = serde_json::from_str(&row).unwrap();
        prop_assert_eq!(cells[0][0].as_json(), text.as_str());
        prop_assert_eq!(cells[0][0].as_number_text(), Some(text.as_str()));
        let int_text = int.to_string();
        prop_assert_eq!(cells[0][1].as_json(), int_text.as_str());
        prop_assert_eq!(cells[0][2].as_str(), Some(text.clone()));
        prop_assert!(cells[0][3].is_null());
        let again = serde_json::to_string(&cells).unwrap();
        let reparsed: Vec<Vec<Cell>> = serde_json::from_str(&again).unwrap();
        prop_assert_eq!(reparsed, cells);
    }
}

/// A result page as the server answers it.
const VALID_ANSWER: &str = r#"{"result_id":"r1","status":"ready","columns":["a","b"],"nullable":[true,false],
    "rows":[[1,"x"],[null,"\u00e9\"q"],[2.5e3,{"k":[]}]],"row_count":3,"total_row_count":3}"#;

/// Decodes `body` as a result page: a value or an error (a panic fails the test).
fn decode_result_page(body: Vec<u8>) {
    let reply = http::Response::builder().status(200).body(bytes::Bytes::from(body)).unwrap();
    let c = BlockingClient::new(
        Config::new("k").with_workspace_id("w").with_base_url("http://h"),
        FakeTransport::script(vec![Ok(reply)]),
        ManualRuntime::new(SystemTime::UNIX_EPOCH),
        "t",
    );
    let _ = c.results().get("r1", "db").send();
}

/// Every prefix of an answer (a body cut off anywhere: inside a key, a string, an escape).
#[test]
fn every_prefix_of_an_answer_decodes_or_is_an_error() {
    for cut in 0..=VALID_ANSWER.len() {
        decode_result_page(VALID_ANSWER.as_bytes()[..cut].to_vec());
    }
}

#[test]
fn open_enums_accept_unknown_values() {
    use hotdata_core::models::{JobStatus, JobType, ResultStatus};
    let s: JobStatus = serde_json::from_str("\"paused\"").unwrap();
    assert_eq!(s, JobStatus::Other("paused".into()));
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"paused\"");
    assert_eq!(serde_json::from_str::<JobType>("\"managed_load\"").unwrap(), JobType::ManagedLoad);
    assert_eq!(serde_json::from_str::<ResultStatus>("\"ready\"").unwrap(), ResultStatus::Ready);
}

#[test]
fn job_results_are_chosen_by_job_type() {
    use hotdata_core::models::{JobResult, JobStatusResponse};
    let load = r#"{"id":"j","job_type":"managed_load","status":"succeeded","attempts":1,"created_at":"t",
        "result":{"connection_id":"c","schema_name":"s","table_name":"t","row_count":3,"arrow_schema_json":"{}"},"future_field":1}"#;
    let job: JobStatusResponse = serde_json::from_str(load).unwrap();
    let Some(JobResult::Load(loaded)) = job.result else { panic!("a managed_load result decodes as Load") };
    assert_eq!(loaded.row_count, 3);
    let other = r#"{"id":"j","job_type":"brand_new","status":"running","attempts":0,"created_at":"t","result":{"x":1}}"#;
    let job: JobStatusResponse = serde_json::from_str(other).unwrap();
    assert_eq!(job.result, Some(JobResult::Other(serde_json::json!({"x": 1}))));
}

#[test]
fn column_definitions_and_profiles() {
    use hotdata_core::models::{ColumnDefinition, ColumnProfileDetail};
    let d: ColumnDefinition = serde_json::from_str("\"BIGINT\"").unwrap();
    assert_eq!(d, ColumnDefinition::from("BIGINT"));
    let d: ColumnDefinition = serde_json::from_str(r#"{"type":"DECIMAL","precision":38,"scale":2}"#).unwrap();
    assert!(matches!(d, ColumnDefinition::Spec(_)));
    let p: ColumnProfileDetail =
        serde_json::from_str(r#"{"type":"boolean","true_count":1,"false_count":2}"#).unwrap();
    assert_eq!(p.type_name(), "boolean");
    let p: ColumnProfileDetail = serde_json::from_str(r#"{"type":"geo","cells":4}"#).unwrap();
    assert!(matches!(p, ColumnProfileDetail::Other(_)));
    assert_eq!(p.type_name(), "geo");
}

#[test]
fn secret_fields_stay_out_of_debug_but_round_trip() {
    use hotdata_core::models::{CreateEmbeddingProviderRequest, UploadSessionResponse};
    let s: UploadSessionResponse = serde_json::from_str(
        r#"{"upload_id":"u","finalize_token":"fin_tok_secret","headers":{},"mode":"single","url":"http://x"}"#,
    )
    .unwrap();
    assert!(!format!("{s:?}").contains("fin_tok_secret"));
    assert_eq!(s.finalize_token.expose(), "fin_tok_secret");
    assert!(serde_json::to_string(&s).unwrap().contains("\"finalize_token\":\"fin_tok_secret\""));
    let req = CreateEmbeddingProviderRequest::new("p", "openai").api_key("sk-very-secret");
    assert!(!format!("{req:?}").contains("sk-very-secret"));
    assert_eq!(serde_json::to_value(&req).unwrap()["api_key"], "sk-very-secret");
}
