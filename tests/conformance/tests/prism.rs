//! Contract tests against a third-party validator: Prism (`@stoplight/prism-cli`, pinned in
//! `tests/package.json`; install it with `npm ci --prefix tests`) mocks the committed spec
//! with `--errors`, so every request that breaks the spec is refused with its violations.
//!
//! Every operation of `hotdata_core::ops::ALL` is sent through both backends (ureq and
//! reqwest) as a `DynamicRequest`, once with only what is required and once with every
//! parameter and body property, the values synthesized from the spec's schemas
//! (`hotdata_conformance::examples`). Prism must accept each request, and its answer must
//! decode into the SDK's typed models:
//!
//! - static answers (every property present) must survive the typed model unchanged;
//! - generated answers (`--dynamic` with a fixed seed: optional properties absent or
//!   `null`) must decode;
//! - operations with several success statuses are also answered with their other one.
//!
//! A handful of operations is also sent through the typed resource API, so the typed
//! request structs are validated too, and a mutated copy of the spec checks that the
//! harness does report refusals, undecodable answers and lossy models.
//!
//! Without Prism installed these tests fail (they never pass silently). Each test runs its
//! own Prism on a free port of 127.0.0.1 and kills it when it ends, even by a panic.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use hotdata_conformance::examples::{Fill, In, Spec};
use hotdata_conformance::prism::{Mode, Prism};
use hotdata_core::endpoint::ParamLocation;
use hotdata_core::models::{
    CreateConnectionRequest, CreateDatabaseRequest, CreateIndexOutcome, CreateIndexRequest,
    CreateSavedQueryRequest, ExecuteSavedQueryRequest, FinalizeUploadRequest, JobType,
    LoadManagedTableRequest, LoadMode, LoadOutcome, MintUploadPartsRequest, QueryOutcome, QueryRequest,
    ResultsFormatQuery, UpdateEmbeddingProviderRequest,
};
use hotdata_core::{Config, DynamicRequest, Error, Operation, RawResponse, RetryPolicy};
use serde_json::Value;

/// The header in which Prism lists the violations of a request.
const VIOLATIONS: &str = "sl-violations";

fn config(prism: &Prism) -> Config {
    Config::new("test-key")
        .with_workspace_id("ws_test")
        .with_base_url(prism.base_url())
        .with_retry(RetryPolicy::none())
}

/// The value of a path parameter or of an id header.
fn id_value(name: &str) -> String {
    match name {
        "database_id" | "X-Database-Id" => "db_1".into(),
        "connection_id" => "conn_1".into(),
        "schema" => "public".into(),
        "table" => "events".into(),
        "index_name" => "idx_1".into(),
        "batch_id" => "batch_1".into(),
        "upload_id" => "upl_1".into(),
        "public_id" => "ws_1".into(),
        "X-Upload-Finalize-Token" => "tok_1".into(),
        other => format!("{}_1", other.trim_end_matches("_id")),
    }
}

/// One request of the suite: an operation with the parameters and body to send.
#[derive(Debug, Clone)]
struct Case {
    op: &'static Operation,
    fill: Fill,
    params: Vec<(&'static str, String)>,
    body: Option<Value>,
}

impl Case {
    fn label(&self) -> String {
        let fill = match self.fill {
            Fill::Required => "required",
            Fill::All => "all",
        };
        format!("{} {} {} [{fill}]", self.op.id, self.op.method, self.op.path)
    }

    fn request(&self) -> DynamicRequest {
        let mut req = DynamicRequest::new(self.op.id).unwrap_or_else(|e| panic!("{}: {e}", self.op.id));
        for (name, value) in &self.params {
            req = req.param(name, value.clone()).unwrap_or_else(|e| panic!("{}: {e}", self.op.id));
        }
        if let Some(body) = &self.body {
            req = req.body(body.clone());
        }
        req
    }

    /// What is sent, for failure messages.
    fn describe(&self) -> String {
        let body = match &self.body {
            Some(b) => {
                let typed = hotdata_core::endpoint::encode_typed(self.op.id, b)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|e| format!("<not encodable: {e}>"));
                format!("\n      body given: {b}\n      body sent:  {typed}")
            }
            None => String::new(),
        };
        format!("      params: {:?}{body}", self.params)
    }
}

/// Both variants of every operation: only what is required, and everything. Identical
/// variants (no optional parameter, no body) are kept once.
fn cases(spec: &Spec) -> Vec<Case> {
    let mut out: Vec<Case> = Vec::new();
    for op in hotdata_core::ops::ALL.iter().copied() {
        let spec_op = spec.operation(op.id).unwrap_or_else(|| panic!("`{}` is not in the spec", op.id));
        for fill in [Fill::Required, Fill::All] {
            let mut params = Vec::new();
            for p in op.params {
                if !p.required && fill == Fill::Required {
                    continue;
                }
                let value = match p.location {
                    ParamLocation::Path => id_value(p.name),
                    ParamLocation::Header if p.name.eq_ignore_ascii_case("X-Database-Id") => id_value(p.name),
                    ParamLocation::Header if p.name.eq_ignore_ascii_case("X-Upload-Finalize-Token") => {
                        id_value(p.name)
                    }
                    _ => {
                        let sp = spec_op
                            .params
                            .iter()
                            .find(|sp| sp.name.eq_ignore_ascii_case(p.name))
                            .unwrap_or_else(|| {
                                panic!("`{}`: parameter `{}` is not in the spec", op.id, p.name)
                            });
                        spec.param_example(sp)
                    }
                };
                params.push((p.name, value));
            }
            let body = match op.body {
                Some(b) if b.required || fill == Fill::All => spec.body_example(op.id, fill),
                _ => None,
            };
            let case = Case { op, fill, params, body };
            if !out.iter().any(|c| c.op.id == op.id && c.params == case.params && c.body == case.body) {
                out.push(case);
            }
        }
    }
    out
}

/// Why Prism refused a request, from its answer.
fn refusal(raw: &RawResponse) -> String {
    let violations = raw.headers.get(VIOLATIONS).and_then(|v| v.to_str().ok()).unwrap_or("(none)");
    format!(
        "      prism answered HTTP {}\n      {VIOLATIONS}: {violations}\n      body: {}",
        raw.status.as_u16(),
        String::from_utf8_lossy(&raw.body)
    )
}

/// Judges one case from its raw answer and from the SDK's decoded result. With `lossless`,
/// the decoded value must also equal Prism's answer (no field dropped or changed by the
/// typed model); this holds for static answers, where every property is present.
fn judge(
    case: &Case,
    raw: Result<RawResponse, Error>,
    decoded: Result<Value, Error>,
    lossless: bool,
) -> Result<(), String> {
    let raw = raw.map_err(|e| format!("{}: no answer: {e}\n{}", case.label(), case.describe()))?;
    if !raw.status.is_success() || raw.headers.contains_key(VIOLATIONS) {
        return Err(format!("{}: refused by prism\n{}\n{}", case.label(), case.describe(), refusal(&raw)));
    }
    let answer = String::from_utf8_lossy(&raw.body);
    let value = decoded.map_err(|e| {
        format!(
            "{}: accepted (HTTP {}), but the SDK failed: {e}\n{}\n      prism's answer: {answer}",
            case.label(),
            raw.status.as_u16(),
            case.describe(),
        )
    })?;
    if lossless && !raw.body.is_empty() {
        let original: Value = serde_json::from_slice(&raw.body)
            .map_err(|e| format!("{}: prism's answer is not JSON ({e}): {answer}", case.label()))?;
        let mut diff = Vec::new();
        json_diff(&original, &value, "", &mut diff);
        if !diff.is_empty() {
            return Err(format!(
                "{}: the typed response model changed the answer: {}\n      prism's answer: {answer}",
                case.label(),
                diff.join("; ")
            ));
        }
    }
    Ok(())
}

/// Lists the places where `actual` differs from `expected`.
fn json_diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => json_diff(v, w, &format!("{path}/{k}"), out),
                    None => out.push(format!("{path}/{k}: dropped ({v})")),
                }
            }
            for (k, w) in b {
                if !a.contains_key(k) {
                    out.push(format!("{path}/{k}: added ({w})"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                json_diff(v, w, &format!("{path}/{i}"), out);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} became {b}")),
    }
}

/// Checks that every operation has a case that passed, and reports the failures.
fn verdict(backend: &str, cases: &[Case], results: &[Result<(), String>]) {
    let passed_ops: BTreeSet<&str> =
        cases.iter().zip(results).filter(|(_, r)| r.is_ok()).map(|(c, _)| c.op.id).collect();
    let failed_ops: BTreeSet<&str> =
        cases.iter().zip(results).filter(|(_, r)| r.is_err()).map(|(c, _)| c.op.id).collect();
    let passed = results.iter().filter(|r| r.is_ok()).count();
    let fully_passing = hotdata_core::ops::ALL.iter().filter(|op| !failed_ops.contains(op.id)).count();
    println!(
        "prism/{backend}: {passed} of {} requests accepted and decoded; {fully_passing} of {} operations pass in every variant",
        results.len(),
        hotdata_core::ops::ALL.len()
    );
    let mut report = String::new();
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        let _ = writeln!(report, "  - {r}");
    }
    assert!(
        report.is_empty(),
        "prism/{backend}: {} of {} requests failed ({} operations):\n{report}",
        results.len() - passed,
        results.len(),
        failed_ops.len()
    );
    assert_eq!(passed_ops.len(), hotdata_core::ops::ALL.len(), "every operation is covered");
}

/// A request that breaks the spec (`limit` below its minimum of 1) must be refused, or the
/// suite would prove nothing.
fn assert_refused(backend: &str, result: Result<Value, Error>) {
    match result {
        Ok(v) => panic!(
            "prism/{backend}: `list_databases?limit=0` was accepted ({v}): is prism running with --errors?"
        ),
        Err(e) => {
            let status = e.status().map(|s| s.as_u16());
            assert!(
                matches!(status, Some(400 | 422)),
                "prism/{backend}: `list_databases?limit=0` should be refused with 422, got {e}"
            );
        }
    }
}

fn invalid_request() -> DynamicRequest {
    DynamicRequest::new("list_databases")
        .and_then(|r| r.param("limit", "0"))
        .expect("list_databases has `limit`")
}

/// A request that breaks the spec of an operation documenting 400: Prism answers with that
/// response's example, an `ApiErrorResponse`, whose code and message the error must carry.
fn invalid_documented_request() -> DynamicRequest {
    DynamicRequest::new("list_indexes_collection")
        .and_then(|r| r.param("X-Database-Id", "db_1"))
        .and_then(|r| r.param("limit", "-1"))
        .expect("list_indexes_collection has `limit` and `X-Database-Id`")
}

fn assert_api_error(backend: &str, result: Result<Value, Error>) {
    let e = result.expect_err("`list_indexes_collection?limit=-1` must be refused");
    assert_eq!(e.status().map(|s| s.as_u16()), Some(400), "prism/{backend}: {e}");
    assert_eq!(e.operation(), Some("list_indexes_collection"), "prism/{backend}: {e}");
    assert_eq!((e.code(), e.message()), (Some("string"), Some("string")), "prism/{backend}: {e}");
}

// ---- the spec and the descriptors agree (no prism needed) --------------------------------

#[test]
fn descriptors_match_the_committed_spec() {
    let spec = Spec::committed();
    let spec_ids: BTreeSet<String> = spec.operation_ids().into_iter().collect();
    let sdk_ids: BTreeSet<String> = hotdata_core::ops::ALL.iter().map(|op| op.id.to_owned()).collect();
    assert_eq!(sdk_ids, spec_ids, "ops::ALL and the spec's operations");
    assert_eq!(sdk_ids.len(), 63);
    for op in hotdata_core::ops::ALL.iter().copied() {
        let s = spec.operation(op.id).expect("checked above");
        assert_eq!(op.method.as_str(), s.method, "{}: method", op.id);
        assert_eq!(op.path, s.path, "{}: path", op.id);
        let sdk: BTreeSet<(String, &str, bool)> = op
            .params
            .iter()
            .map(|p| {
                let loc = match p.location {
                    ParamLocation::Path => "path",
                    ParamLocation::Query => "query",
                    ParamLocation::Header => "header",
                    _ => "other",
                };
                (p.name.to_ascii_lowercase(), loc, p.required)
            })
            .collect();
        let expected: BTreeSet<(String, &str, bool)> = s
            .params
            .iter()
            .filter(|p| !p.name.eq_ignore_ascii_case("X-Workspace-Id"))
            .map(|p| {
                let loc = match p.location {
                    In::Path => "path",
                    In::Query => "query",
                    In::Header => "header",
                };
                (p.name.to_ascii_lowercase(), loc, p.required)
            })
            .collect();
        assert_eq!(sdk, expected, "{}: parameters", op.id);
        let workspace = s.params.iter().any(|p| p.name.eq_ignore_ascii_case("X-Workspace-Id"));
        assert_eq!(op.workspace_scoped, workspace, "{}: workspace_scoped", op.id);
        assert_eq!(
            op.body.and_then(|b| b.schema.map(|n| (n.to_owned(), b.required))),
            s.body,
            "{}: request body",
            op.id
        );
        let statuses: Vec<u16> = op.responses.iter().map(|r| r.status).collect();
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, s.statuses, "{}: documented statuses", op.id);
    }
}

#[test]
fn every_operation_has_examples() {
    let spec = Spec::committed();
    let cases = cases(&spec);
    for op in hotdata_core::ops::ALL.iter().copied() {
        let mine: Vec<_> = cases.iter().filter(|c| c.op.id == op.id).collect();
        assert!(!mine.is_empty(), "{}: no case", op.id);
        for c in mine {
            c.request().validate().unwrap_or_else(|e| panic!("{}: {e}", c.label()));
            if let Some(body) = &c.body {
                let sent = hotdata_core::endpoint::encode_typed(op.id, body).unwrap_or_else(|e| {
                    panic!("{}: the example body does not fit the model: {e}", c.label())
                });
                let mut diff = Vec::new();
                json_diff(body, &sent, "", &mut diff);
                assert!(
                    diff.is_empty(),
                    "{}: the typed request model changed the body: {}",
                    c.label(),
                    diff.join("; ")
                );
            }
        }
    }
}

// ---- every operation, through both backends ----------------------------------------------

/// The seed of the dynamic runs: fixed, so every run gets the same answers.
const SEED: u64 = 20_241_126;

fn blocking_suite(backend: &str, mode: Mode) {
    let prism = Prism::start_mode(mode.clone());
    let client = hotdata_ureq::client(config(&prism));
    assert_refused(backend, client.call(invalid_request()).send());
    if mode == Mode::Static {
        assert_api_error(backend, client.call(invalid_documented_request()).send());
    }
    let spec = Spec::committed();
    let cases = cases(&spec);
    let results: Vec<_> = cases
        .iter()
        .map(|case| {
            let raw = client.call(case.request()).send_raw();
            let decoded = client.call(case.request()).send();
            judge(case, raw, decoded, mode == Mode::Static)
        })
        .collect();
    verdict(backend, &cases, &results);
}

async fn async_suite(backend: &str, mode: Mode) {
    let prism = Prism::start_mode(mode.clone());
    let client = hotdata_reqwest::client(config(&prism));
    assert_refused(backend, client.call(invalid_request()).send().await);
    if mode == Mode::Static {
        assert_api_error(backend, client.call(invalid_documented_request()).send().await);
    }
    let spec = Spec::committed();
    let cases = cases(&spec);
    let mut results = Vec::new();
    for case in &cases {
        let raw = client.call(case.request()).send_raw().await;
        let decoded = client.call(case.request()).send().await;
        results.push(judge(case, raw, decoded, mode == Mode::Static));
    }
    verdict(backend, &cases, &results);
}

#[test]
fn ureq_every_operation_is_accepted_by_prism() {
    blocking_suite("ureq", Mode::Static);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_every_operation_is_accepted_by_prism() {
    async_suite("reqwest", Mode::Static).await;
}

/// Generated answers: optional properties absent or `null`, other array lengths, other
/// numbers and dates; they must still decode.
#[test]
fn ureq_every_operation_decodes_generated_answers() {
    blocking_suite("ureq/dynamic", Mode::Dynamic { seed: SEED });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_every_operation_decodes_generated_answers() {
    async_suite("reqwest/dynamic", Mode::Dynamic { seed: SEED }).await;
}

// ---- typed requests -----------------------------------------------------------------------

/// Sends typed calls and collects `(label, Ok | error text)`. `$send` turns a call into its
/// result: `.send()` for blocking clients, `.send().await` for async ones.
macro_rules! typed_suite {
    ($client:expr, |$call:ident| $send:expr) => {{
        let client = &$client;
        let mut results: Vec<(&'static str, Result<(), String>)> = Vec::new();
        macro_rules! run {
            ($label:literal, $c:expr, |$out:ident| $check:expr) => {{
                let $call = $c;
                let outcome = match $send {
                    Ok($out) => $check,
                    Err(e) => Err(format!(
                        "{e}\n      answer: {}",
                        e.body().map(String::from_utf8_lossy).unwrap_or_default()
                    )),
                };
                results.push(($label, outcome));
            }};
        }
        run!("databases.list", client.databases().list().limit(5).cursor("cur_1").search("sales"), |out| {
            if out.databases.is_empty() { Err("no databases in the mock listing".into()) } else { Ok(()) }
        });
        run!("databases.count", client.databases().count().search("sales"), |_out| Ok(()));
        run!(
            "databases.create",
            client.databases().create(CreateDatabaseRequest::new().name("sales")),
            |_out| Ok(())
        );
        run!("databases.get", client.databases().get("db_1"), |_out| Ok(()));
        run!("databases.lineage", client.databases().lineage("db_1").forks_limit(10), |_out| Ok(()));
        run!("databases.delete", client.databases().delete("db_1"), |_out| Ok(()));
        run!(
            "databases.load_table",
            client.databases().load_table(
                "db_1",
                "public",
                "events",
                LoadManagedTableRequest::new(LoadMode::Append).upload_id("upl_1")
            ),
            |_out| Ok(())
        );
        run!("query", client.query(QueryRequest::new("select 1")).x_database_id("db_1"), |_out| Ok(()));
        run!(
            "query (async, nulls)",
            client.query(
                QueryRequest::new("select 1")
                    .run_async(true)
                    .async_after_ms(1000)
                    .clear_default_catalog()
                    .clear_default_schema()
            ),
            |_out| Ok(())
        );
        run!(
            "results.get",
            client.results().get("res_1", "db_1").offset(0).limit(100).format(ResultsFormatQuery::Json),
            |_out| Ok(())
        );
        run!("results.list", client.results().list("db_1").limit(10).offset(0), |_out| Ok(()));
        run!(
            "query_runs.list",
            client.query_runs().list("db_1").limit(10).status("succeeded"),
            |_out| Ok(())
        );
        run!(
            "jobs.list",
            client.jobs().list().job_type(JobType::ManagedLoad).limit(10).offset(0),
            |_out| Ok(())
        );
        run!("jobs.get", client.jobs().get("job_1"), |_out| Ok(()));
        run!(
            "saved_queries.create",
            client.saved_queries().create(CreateSavedQueryRequest::new("daily", "select 1")),
            |_out| Ok(())
        );
        run!(
            "saved_queries.execute",
            client.saved_queries().execute("sq_1", "db_1", ExecuteSavedQueryRequest::new()),
            |_out| Ok(())
        );
        run!(
            "connections.create",
            client.connections().create(CreateConnectionRequest::new(
                serde_json::Map::from_iter([("host".to_owned(), Value::from("db.example.com"))]),
                "warehouse",
                "postgres"
            )),
            |_out| Ok(())
        );
        run!(
            "indexes.create",
            client.indexes().create(
                "conn_1",
                "public",
                "events",
                CreateIndexRequest::new(vec!["id".into()], "idx_1")
            ),
            |_out| Ok(())
        );
        run!("indexes.list_all", client.indexes().list_all("db_1").limit(10), |_out| Ok(()));
        run!(
            "embedding_providers.update",
            client
                .embedding_providers()
                .update("ep_1", UpdateEmbeddingProviderRequest::new().name("openai").clear_secret_name()),
            |_out| Ok(())
        );
        run!(
            "uploads.mint_parts",
            client.uploads().mint_parts("upl_1", "tok_1", MintUploadPartsRequest::new(vec![1, 2])),
            |_out| Ok(())
        );
        run!(
            "uploads.finalize",
            client.uploads().finalize("upl_1", "tok_1", FinalizeUploadRequest::new()),
            |_out| Ok(())
        );
        run!(
            "information_schema.list",
            client.information_schema().list().include_columns(true).limit(10),
            |_out| Ok(())
        );
        run!("usage.get", client.usage().get().since("2024-01-01T00:00:00Z"), |_out| Ok(()));
        run!("workspaces.list", client.workspaces().list(), |_out| Ok(()));
        results
    }};
}

fn typed_verdict(backend: &str, results: &[(&str, Result<(), String>)]) {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(label, r)| r.as_ref().err().map(|e| format!("  - {label}: {e}")))
        .collect();
    println!(
        "prism/{backend}/typed: {} of {} typed calls passed",
        results.len() - failures.len(),
        results.len()
    );
    assert!(
        failures.is_empty(),
        "prism/{backend}/typed: {} calls failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn ureq_typed_requests_are_accepted_by_prism() {
    let prism = Prism::start();
    let client = hotdata_ureq::client(config(&prism));
    let results = typed_suite!(client, |call| call.send());
    typed_verdict("ureq", &results);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_typed_requests_are_accepted_by_prism() {
    let prism = Prism::start();
    let client = hotdata_reqwest::client(config(&prism));
    let results = typed_suite!(client, |call| call.send().await);
    typed_verdict("reqwest", &results);
}

// ---- the harness itself ---------------------------------------------------------------------

/// The suite must be able to fail: on a spec mutated so that the SDK no longer fits it, a
/// refused request, an undecodable answer and a lossy model are each reported.
#[test]
fn harness_reports_refusals_decode_failures_and_lossy_models() {
    let mut doc = Spec::committed().document().clone();
    let schemas = doc.pointer_mut("/components/schemas").expect("schemas");
    // The SDK does not send `alias2`: refused.
    schemas["AttachDatabaseCatalogRequest"]["required"] = serde_json::json!(["connection_id", "alias2"]);
    schemas["AttachDatabaseCatalogRequest"]["properties"]["alias2"] = serde_json::json!({"type": "string"});
    // Connections as integers: not decodable.
    schemas["ListConnectionsResponse"]["properties"]["connections"]["items"] =
        serde_json::json!({"type": "integer", "minimum": 7});
    // A property the model does not know: dropped by the typed model.
    schemas["EmbeddingProviderResponse"]["required"]
        .as_array_mut()
        .expect("EmbeddingProviderResponse has required properties")
        .push("unknown_field".into());
    schemas["EmbeddingProviderResponse"]["properties"]["unknown_field"] =
        serde_json::json!({"type": "string"});
    let path = std::env::temp_dir().join(format!("hotdata-prism-mutated-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&doc).expect("spec encodes")).expect("writing the mutated spec");
    let prism = Prism::start_with(&path, Mode::Static);
    let _ = std::fs::remove_file(&path);
    let client = hotdata_ureq::client(config(&prism));
    let spec = Spec::committed();
    let outcome = |id: &str, fill: Fill| {
        let case = cases(&spec)
            .into_iter()
            .find(|c| c.op.id == id && (c.fill == fill || c.op.body.is_none()))
            .expect("a case");
        judge(&case, client.call(case.request()).send_raw(), client.call(case.request()).send(), true)
    };
    let refused = outcome("attach_database_catalog", Fill::Required).expect_err("must be refused");
    assert!(refused.contains("refused by prism") && refused.contains("alias2"), "{refused}");
    let undecodable = outcome("list_connections", Fill::Required).expect_err("must not decode");
    assert!(undecodable.contains("the SDK failed"), "{undecodable}");
    let lossy = outcome("get_embedding_provider", Fill::Required).expect_err("must be lossy");
    assert!(lossy.contains("changed the answer") && lossy.contains("unknown_field"), "{lossy}");
    println!("{refused}\n{undecodable}\n{lossy}");
}

// ---- the other success statuses --------------------------------------------------------------

/// Prism answers with the first documented success status; operations with several (a
/// 200 or 201 inline, a 202 submitted) are sent again to a copy of the spec that documents
/// only their last one, so every success status is decoded once.
#[test]
fn alternative_success_statuses_decode() {
    let spec = Spec::committed();
    let mut doc = spec.document().clone();
    let mut ids = Vec::new();
    for item in doc["paths"].as_object_mut().expect("paths").values_mut() {
        for op in item.as_object_mut().expect("path item").values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            let mut success: Vec<String> = responses.keys().filter(|k| k.starts_with('2')).cloned().collect();
            success.sort();
            if success.len() > 1 {
                for status in &success[..success.len() - 1] {
                    responses.remove(status);
                }
                ids.push(op["operationId"].as_str().expect("operationId").to_owned());
            }
        }
    }
    assert!(ids.len() >= 5, "operations with several success statuses: {ids:?}");
    let path = std::env::temp_dir().join(format!("hotdata-prism-last-success-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_vec(&doc).expect("spec encodes")).expect("writing the spec copy");
    let prism = Prism::start_with(&path, Mode::Static);
    let _ = std::fs::remove_file(&path);
    let cases: Vec<Case> = cases(&spec).into_iter().filter(|c| ids.iter().any(|id| id == c.op.id)).collect();

    let blocking = hotdata_ureq::client(config(&prism));
    let results: Vec<_> = cases
        .iter()
        .map(|case| {
            judge(case, blocking.call(case.request()).send_raw(), blocking.call(case.request()).send(), true)
        })
        .collect();
    verdict_subset("ureq/last-success", &cases, &results);

    // The typed outcomes tell the statuses apart.
    let query = blocking.query(QueryRequest::new("select 1")).send();
    assert!(matches!(query, Ok(QueryOutcome::Submitted(_))), "query answered 202: {query:?}");
    let index = blocking
        .indexes()
        .create("conn_1", "public", "events", CreateIndexRequest::new(vec!["id".into()], "idx_1"))
        .send();
    assert!(matches!(index, Ok(CreateIndexOutcome::Submitted(_))), "create_index answered 202: {index:?}");
    let load = blocking
        .connections()
        .load_table("conn_1", "public", "events", LoadManagedTableRequest::new(LoadMode::Append))
        .send();
    assert!(matches!(load, Ok(LoadOutcome::Submitted(_))), "load_managed_table answered 202: {load:?}");

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let results = rt.block_on(async {
        let client = hotdata_reqwest::client(config(&prism));
        let mut results = Vec::new();
        for case in &cases {
            let raw = client.call(case.request()).send_raw().await;
            let decoded = client.call(case.request()).send().await;
            results.push(judge(case, raw, decoded, true));
        }
        results
    });
    verdict_subset("reqwest/last-success", &cases, &results);
}

fn verdict_subset(backend: &str, cases: &[Case], results: &[Result<(), String>]) {
    let failures: Vec<String> =
        results.iter().filter_map(|r| r.as_ref().err().map(|e| format!("  - {e}"))).collect();
    let ops: BTreeSet<&str> = cases.iter().map(|c| c.op.id).collect();
    println!(
        "prism/{backend}: {} of {} requests accepted and decoded ({} operations: {})",
        results.len() - failures.len(),
        results.len(),
        ops.len(),
        ops.iter().copied().collect::<Vec<_>>().join(", ")
    );
    assert!(
        failures.is_empty(),
        "prism/{backend}: {} requests failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
