//! The emulator's answers validated by a third party, through the SDK: Prism
//! (`@stoplight/prism-cli`, pinned in `tests/package.json`; install it with
//! `npm ci --prefix tests`) runs as a validating proxy, `prism proxy <spec> <emulator>
//! --errors`, in front of `hotdata-emulator`, and every one of the 63 operations is driven
//! through it by the SDK's typed resource API, on both native backends, in the order a user
//! would: workspaces, a database, an upload loaded into a table, connections and managed
//! tables, indexes (some as jobs), catalogs, SQL, contexts, forks and lineage, bulk creation,
//! embedding providers, the information schema, jobs, saved queries, queries, query runs and
//! results, uploads, usage, and the deletes.
//!
//! Each backend's transport is wrapped to record every exchange with Prism's
//! `sl-violations` header (`hotdata_conformance::flows::Recording`); the test fails on any
//! violation, on any operation never exercised, and on any call that fails (with
//! `--errors`, Prism answers a response that breaks the spec with a 500 instead). A control
//! at the end checks that the harness does see violations: an undocumented status injected
//! by the emulator must come back flagged.
//!
//! Prism re-encodes what it proxies as text, so binary answers (Arrow, Parquet) cannot pass
//! through it intact: results go through Prism as JSON and CSV; Arrow and Parquet are
//! covered against the emulator directly in `tests/emulator.rs`. Storage PUTs go to the
//! emulator's presigned URLs, which are not part of the API, outside the SDK.
//!
//! Without Prism installed this test fails, with the command to install it.

use std::collections::BTreeSet;
use std::time::Duration;

use hotdata_conformance::flows::{ExchangeLog, operation_of};
use hotdata_conformance::prism::{Mode, Prism};
use hotdata_conformance::{both, scenario};
use hotdata_core::lifecycle::{JobDone, PollPolicy};
use hotdata_core::models::{
    AddManagedSchemaRequest, AddManagedTableDecl, AddManagedTableRequest, AttachDatabaseCatalogRequest,
    BatchCreateUploadRequest, BulkCreateDatabasesRequest, CreateConnectionRequest, CreateDatabaseRequest,
    CreateEmbeddingProviderRequest, CreateIndexOutcome, CreateIndexRequest, CreateSavedQueryRequest,
    CreateUploadRequest, CreateWorkspaceRequest, DatabaseDefaultSchemaDecl, DatabaseDefaultTableDecl,
    ExecuteSavedQueryRequest, FinalizeUploadPart, FinalizeUploadRequest, ForkDatabaseRequest, IndexType,
    JobStatus, JobStatusResponse, LoadManagedTableRequest, LoadMode, LoadOutcome, MintUploadPartsRequest,
    QueryOutcome, QueryRequest, QueryResponse, QueryRunStatus, ResultStatus, ResultsFormatQuery,
    UpdateEmbeddingProviderRequest, UpdateManagedTableRequest, UpdateSavedQueryRequest, UploadMode,
    UploadStatus, UpsertDatabaseContextRequest,
};
use hotdata_core::results::ResultFetch;
use hotdata_core::{Config, Error, RetryPolicy};
use hotdata_emulator::{Emulator, EmulatorHandle, FaultRule};
use serde_json::json;

/// The SDK pointed at Prism, with no retries (a retry could hide a refused answer).
fn config(prism: &Prism, emu: &EmulatorHandle) -> Config {
    Config::new(emu.api_key())
        .with_workspace_id(emu.workspace_id())
        .with_base_url(prism.base_url())
        .with_timeout(Some(Duration::from_secs(30)))
        .with_retry(RetryPolicy::none())
}

/// Polls every 5-50 ms (jobs take two 10 ms steps).
fn fast_poll() -> PollPolicy {
    PollPolicy::default()
        .with_intervals(Duration::from_millis(5), Duration::from_millis(50))
        .with_timeout(Duration::from_secs(20))
}

/// The value of a call that must succeed; on failure, what Prism said about it.
fn ok<T>(result: Result<T, Error>, what: &str, log: &ExchangeLog, prism: &Prism) -> T {
    result.unwrap_or_else(|e| {
        let last = log.lock().map(|l| l.last().cloned()).unwrap_or_default();
        let body = e.body().map(String::from_utf8_lossy).unwrap_or_default();
        panic!("{what}: {e}\n  last exchange: {last:?}\n  body: {body}\n  prism log:\n{}", prism.log_tail(30))
    })
}

fn inline(outcome: QueryOutcome) -> QueryResponse {
    match outcome {
        QueryOutcome::Inline(r) => r,
        other => panic!("expected rows inline, got {other:?}"),
    }
}

fn succeeded(job: &JobStatusResponse) {
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
}

fn cells(r: &QueryResponse) -> Vec<Vec<String>> {
    r.rows.iter().map(|row| row.iter().map(|c| c.as_json().to_owned()).collect()).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

scenario! {
    native_only("the Prism proxy: a Node process (prism proxy) the test starts in front of its emulator, \
    which a page cannot start; every operation goes through it on ureq and reqwest")
    fn every_operation_through_a_prism_proxy_conforms_on_both_backends() {
        let emu = Emulator::builder()
            .job_step(Duration::from_millis(10))
            .async_result_delay(Duration::from_millis(200))
            .min_part_size(16)
            .start()
            .expect("the emulator starts");
        let prism = Prism::start_mode(Mode::Proxy { upstream: emu.base_url().to_owned() });

        both!(|backend| {
            let log = ExchangeLog::default();
            let c = recording_client!(config(&prism, &emu), log.clone());
            // The two backends share the emulator: their names differ.
            let name = |s: &str| format!("{backend}_{s}");
            macro_rules! ok {
                ($what:expr, $e:expr) => {
                    ok($e, $what, &log, &prism)
                };
            }

            // Workspaces (not workspace-scoped; the plain error envelope).
            let workspaces = ok!("list workspaces", call!(c.workspaces().list()));
            assert!(workspaces.workspaces.iter().any(|w| w.public_id == emu.workspace_id()), "{backend}");
            let ws = ok!(
                "create workspace",
                call!(c.workspaces().create(CreateWorkspaceRequest::new(name("scratch"))))
            );
            ok!("delete workspace", call!(c.workspaces().delete(&ws.workspace.public_id)));

            // A database with a declared schema, found by id and by name, listed and counted.
            let db = ok!(
                "create database",
                call!(c.databases().create(CreateDatabaseRequest::new().name(name("main")).schemas(vec![
                    DatabaseDefaultSchemaDecl::new("sales").tables(vec![DatabaseDefaultTableDecl::new("t0")])
                ])))
            );
            let db_id = db.id.clone();
            assert_eq!(ok!("get database", call!(c.databases().get(&db_id))).id, db_id, "{backend}");
            assert_eq!(ok!("lookup", call!(c.databases().lookup_by_name(name("main")))).id, db_id, "{backend}");
            let listed: Vec<String> = pages!(c.databases().list().limit(1))
                .into_iter()
                .flat_map(|p| ok!("list databases", p))
                .map(|d| d.id)
                .collect();
            assert!(listed.contains(&db_id), "{backend}: {listed:?}");
            assert!(ok!("count", call!(c.databases().count())).total >= 1, "{backend}");
            ok!(
                "add database schema",
                call!(c.databases().add_schema(&db_id, AddManagedSchemaRequest::new("extra")))
            );
            ok!(
                "add database table",
                call!(c.databases().add_table(
                    &db_id,
                    "public",
                    AddManagedTableRequest::new("orders").key(strings(&["id"]))
                ))
            );

            // A CSV uploaded to storage (session, PUT, finalize) and loaded into the table.
            let csv = b"id,amount,city\n1,2.5,Oslo\n2,3.5,Rome\n3,,Oslo\n".to_vec();
            let session = ok!(
                "create upload session",
                call!(
                    c.uploads().create_session(
                        CreateUploadRequest::new()
                            .declared_size_bytes(csv.len() as i64)
                            .content_type("text/csv")
                            .filename("orders.csv")
                    )
                )
            );
            assert_eq!(session.mode, UploadMode::Single, "{backend}");
            storage_put!(session.url.clone().expect("a single-PUT URL"), csv.clone());
            let finalized = ok!(
                "finalize",
                call!(c.uploads().finalize(
                    &session.upload_id,
                    session.finalize_token.expose(),
                    FinalizeUploadRequest::new()
                ))
            );
            assert_eq!(finalized.status, UploadStatus::Finalized, "{backend}");
            let loaded = ok!(
                "load database table",
                call!(c.databases().load_table(
                    &db_id,
                    "public",
                    "orders",
                    LoadManagedTableRequest::new(LoadMode::Replace).upload_id(&session.upload_id).format("csv")
                ))
            );
            let LoadOutcome::Loaded(loaded) = loaded else { panic!("{backend}: a synchronous load") };
            assert_eq!(loaded.row_count, 3, "{backend}");
            ok!(
                "constant per key (database)",
                call!(c.databases().set_table_constant_per_key(
                    &db_id,
                    "public",
                    "orders",
                    UpdateManagedTableRequest::new().constant_per_key(strings(&["city"]))
                ))
            );
            // An asynchronous load is a job.
            let submitted = ok!(
                "async load",
                call!(
                    c.databases().load_table(
                        &db_id,
                        "public",
                        "events",
                        LoadManagedTableRequest::new(LoadMode::Replace)
                            .format("json")
                            .data(r#"[{"id":1,"kind":"a"},{"id":2,"kind":"b"}]"#)
                            .run_async(true)
                    )
                )
            );
            let LoadOutcome::Submitted(load_job) = submitted else { panic!("{backend}: an async load") };
            succeeded(&ok!(
                "wait for the load",
                wait!(c.wait_for(&JobDone { id: load_job.id.clone() }, fast_poll()))
            ));

            // A managed connection with a schema and tables, loaded inline.
            let conn = ok!(
                "create connection",
                call!(c.connections().create(CreateConnectionRequest::new(
                    serde_json::Map::new(),
                    name("lake"),
                    "managed"
                )))
            );
            let cid = conn.id.clone();
            let connections = ok!("list connections", call!(c.connections().list()));
            assert!(connections.connections.iter().any(|x| x.id == cid), "{backend}");
            ok!("get connection", call!(c.connections().get(&cid)));
            ok!(
                "add managed schema",
                call!(c.connections().add_schema(
                    &cid,
                    AddManagedSchemaRequest::new("raw").tables(vec![AddManagedTableDecl::new("people")])
                ))
            );
            ok!(
                "add managed table",
                call!(c.connections().add_table(&cid, "raw", AddManagedTableRequest::new("pets")))
            );
            let people = "id,name,age,active\n1,Ann,31,true\n2,Bob,,false\n3,Cy,45,true\n";
            ok!(
                "load managed table",
                call!(c.connections().load_table(
                    &cid,
                    "raw",
                    "people",
                    LoadManagedTableRequest::new(LoadMode::Replace).data(people)
                ))
            );
            ok!(
                "load pets",
                call!(c.connections().load_table(
                    &cid,
                    "raw",
                    "pets",
                    LoadManagedTableRequest::new(LoadMode::Replace).data("name\nrex\n")
                ))
            );
            ok!(
                "constant per key (connection)",
                call!(c.connections().set_table_constant_per_key(
                    &cid,
                    "raw",
                    "people",
                    UpdateManagedTableRequest::new().constant_per_key(strings(&["name"]))
                ))
            );

            // Indexes: one built at once, one as a job.
            let created = ok!(
                "create index",
                call!(c.indexes().create(
                    &cid,
                    "raw",
                    "people",
                    CreateIndexRequest::new(strings(&["age"]), "by_age")
                ))
            );
            assert!(matches!(created, CreateIndexOutcome::Created(_)), "{backend}: {created:?}");
            let submitted = ok!(
                "create index as a job",
                call!(
                    c.indexes().create(
                        &cid,
                        "raw",
                        "people",
                        CreateIndexRequest::new(strings(&["name"]), "by_name")
                            .index_type(IndexType::Bm25)
                            .run_async(true)
                    )
                )
            );
            let CreateIndexOutcome::Submitted(index_job) = submitted else { panic!("{backend}: an index job") };
            succeeded(&ok!(
                "wait for the index",
                wait!(c.wait_for(&JobDone { id: index_job.id.clone() }, fast_poll()))
            ));
            let indexes = ok!("list indexes", call!(c.indexes().list(&cid, "raw", "people")));
            assert_eq!(indexes.indexes.len(), 2, "{backend}: {indexes:?}");
            ok!("delete index", call!(c.indexes().delete(&cid, "raw", "people", "by_age")));
            let profile = ok!("table profile", call!(c.connections().table_profile(&cid, "raw", "people")));
            assert_eq!(profile.row_count, 3, "{backend}");

            // The connection attached as a catalog; SQL across both.
            ok!(
                "attach catalog",
                call!(
                    c.databases().attach_catalog(&db_id, AttachDatabaseCatalogRequest::new(&cid).alias("lake"))
                )
            );
            let joined = inline(ok!(
                "query across catalogs",
                call!(
                    c.query(QueryRequest::new(
                        "SELECT o.id, p.name FROM orders o JOIN lake.raw.people p ON p.id = o.id ORDER BY o.id"
                    ))
                    .x_database_id(&db_id)
                )
            ));
            assert_eq!(
                cells(&joined),
                [["1", "\"Ann\""], ["2", "\"Bob\""], ["3", "\"Cy\""]].map(|r| strings(&r)),
                "{backend}"
            );
            ok!("list indexes of the database", call!(c.indexes().list_all(&db_id)));

            // Database context.
            ok!(
                "upsert context",
                call!(
                    c.database_context()
                        .upsert(&db_id, UpsertDatabaseContextRequest::new("orders are sales", "glossary"))
                )
            );
            let contexts = ok!("list contexts", call!(c.database_context().list(&db_id)));
            assert_eq!(contexts.contexts.len(), 1, "{backend}");
            let context = ok!("get context", call!(c.database_context().get(&db_id, "glossary")));
            assert_eq!(context.context.content, "orders are sales", "{backend}");
            ok!("delete context", call!(c.database_context().delete(&db_id, "glossary")));

            // A fork, and its lineage.
            let fork = ok!(
                "fork",
                call!(
                    c.databases().fork(&db_id, ForkDatabaseRequest::new().name(name("fork")).description("try"))
                )
            );
            let lineage = ok!("lineage", call!(c.databases().lineage(&fork.id)));
            assert_eq!(lineage.root_id, db_id, "{backend}");

            // Bulk creation: a batch, its job, then the batch deleted.
            let batch = ok!(
                "bulk create",
                call!(
                    c.databases().bulk_create(
                        BulkCreateDatabasesRequest::new(2)
                            .name_template(format!("{backend}-tenant-{{n}}"))
                            .idempotency_key(name("bulk"))
                    )
                )
            );
            let batch_job = batch.job_id.clone().expect("a batch job");
            succeeded(&ok!("wait for the batch", wait!(c.wait_for(&JobDone { id: batch_job }, fast_poll()))));
            assert_eq!(
                ok!("get batch", call!(c.databases().get_batch(&batch.batch_id))).created_count,
                2,
                "{backend}"
            );
            assert_eq!(
                ok!("delete batch", call!(c.databases().delete_batch(&batch.batch_id))).deleted_count,
                2,
                "{backend}"
            );

            // Embedding providers.
            let mut model = serde_json::Map::new();
            model.insert("model".into(), json!("text-embedding-3-small"));
            let provider = ok!(
                "create embedding provider",
                call!(
                    c.embedding_providers().create(
                        CreateEmbeddingProviderRequest::new(name("openai"), "openai")
                            .api_key("sk-test")
                            .config(model)
                    )
                )
            );
            let providers = ok!("list embedding providers", call!(c.embedding_providers().list()));
            assert!(providers.embedding_providers.iter().any(|p| p.id == provider.id), "{backend}");
            ok!("get embedding provider", call!(c.embedding_providers().get(&provider.id)));
            ok!(
                "update embedding provider",
                call!(
                    c.embedding_providers()
                        .update(&provider.id, UpdateEmbeddingProviderRequest::new().name(name("openai2")))
                )
            );
            ok!("delete embedding provider", call!(c.embedding_providers().delete(&provider.id)));

            // The information schema, walked by cursor.
            let tables: usize = pages!(c.information_schema().list().include_columns(true).limit(2))
                .into_iter()
                .map(|p| ok!("information schema", p).len())
                .sum();
            assert!(tables >= 4, "{backend}: {tables} tables");

            // Jobs.
            let jobs = ok!("list jobs", call!(c.jobs().list()));
            assert!(jobs.jobs.iter().any(|j| j.id == load_job.id), "{backend}");
            succeeded(&ok!("get job", call!(c.jobs().get(&index_job.id))));

            // Saved queries, their versions, executing them.
            let saved = ok!(
                "create saved query",
                call!(
                    c.saved_queries().create(
                        CreateSavedQueryRequest::new(
                            name("top"),
                            "SELECT id FROM orders WHERE amount > 1 ORDER BY id"
                        )
                        .tags(strings(&["a"]))
                    )
                )
            );
            let all: usize =
                pages!(c.saved_queries().list().limit(1)).into_iter().map(|p| ok!("list saved", p).len()).sum();
            assert!(all >= 1, "{backend}");
            ok!("get saved query", call!(c.saved_queries().get(&saved.id)));
            let updated =
                ok!(
                    "update saved query",
                    call!(c.saved_queries().update(
                        &saved.id,
                        UpdateSavedQueryRequest::new().sql("SELECT COUNT(*) AS n FROM orders")
                    ))
                );
            assert_eq!(updated.latest_version, 2, "{backend}");
            let versions = ok!("list versions", call!(c.saved_queries().list_versions(&saved.id)));
            assert_eq!(versions.versions.len(), 2, "{backend}");
            let latest = ok!(
                "execute",
                call!(c.saved_queries().execute(&saved.id, &db_id, ExecuteSavedQueryRequest::new()))
            );
            assert_eq!(cells(&latest), [strings(&["3"])], "{backend}");
            let first = ok!(
                "execute v1",
                call!(c.saved_queries().execute(&saved.id, &db_id, ExecuteSavedQueryRequest::new().version(1)))
            );
            assert_eq!(cells(&first), [strings(&["1"]), strings(&["2"])], "{backend}");

            // A query, its stored result as JSON pages and CSV, its run.
            let q = inline(ok!(
                "query",
                call!(c.query(QueryRequest::new("SELECT * FROM synthetic(300)")).x_database_id(&db_id))
            ));
            let rid = q.result_id.clone().expect("a stored result");
            let page = ok!("get result", call!(c.results().get(&rid, &db_id).offset(5).limit(10)));
            assert_eq!(page.rows.map(|r| r.len()), Some(10), "{backend}");
            let mut csv = Vec::new();
            let fetched = ok!(
                "download CSV",
                wait!(c.results().download(&rid, &db_id, ResultsFormatQuery::Csv).write_to(&mut csv))
            );
            assert!(matches!(fetched, ResultFetch::Ready(_)), "{backend}");
            assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 301, "{backend}");
            let run = ok!("get query run", call!(c.query_runs().get(&q.query_run_id, &db_id)));
            assert_eq!(run.status, QueryRunStatus::Succeeded, "{backend}");

            // An asynchronous query: its result is pending (202) for a moment, then ready.
            let submitted = ok!(
                "async query",
                call!(
                    c.query(QueryRequest::new("SELECT * FROM synthetic(10)").run_async(true))
                        .x_database_id(&db_id)
                )
            );
            let QueryOutcome::Submitted(pending) = submitted else { panic!("{backend}: an async query") };
            let run = ok!("get pending run", call!(c.query_runs().get(&pending.query_run_id, &db_id)));
            let async_rid = run.result_id.clone().expect("the run names its result");
            let early = ok!("pending result", call!(c.results().get(&async_rid, &db_id)));
            assert!(
                matches!(early.status, ResultStatus::Pending | ResultStatus::Processing),
                "{backend}: {early:?}"
            );
            let ready = ok!("wait for result", wait!(c.wait_for_result(&async_rid, &db_id)));
            assert_eq!(ready.status, ResultStatus::Ready, "{backend}");
            let done = ok!("wait for run", wait!(c.wait_for_query_run(&pending.query_run_id, &db_id)));
            assert_eq!(done.row_count, Some(10), "{backend}");
            let runs = ok!("list query runs", call!(c.query_runs().list(&db_id).limit(2)));
            assert!(!runs.query_runs.is_empty(), "{backend}");
            let results = ok!("list results", call!(c.results().list(&db_id).limit(5)));
            assert!(!results.results.is_empty(), "{backend}");

            // Uploads: a batch of sessions; a streaming multipart upload, minted, put, finalized
            // with its parts, and loaded.
            let sessions = ok!(
                "create upload sessions",
                call!(c.uploads().create_sessions_batch(BatchCreateUploadRequest::new(vec![
                    CreateUploadRequest::new().declared_size_bytes(1),
                    CreateUploadRequest::new(),
                ])))
            );
            assert_eq!(sessions.uploads.len(), 2, "{backend}");
            let streaming = ok!(
                "create streaming session",
                call!(
                    c.uploads().create_session(CreateUploadRequest::new().part_size(64).content_type("text/csv"))
                )
            );
            assert_eq!(streaming.mode, UploadMode::Multipart, "{backend}");
            let minted = ok!(
                "mint parts",
                call!(c.uploads().mint_parts(
                    &streaming.upload_id,
                    streaming.finalize_token.expose(),
                    MintUploadPartsRequest::new(vec![1])
                ))
            );
            let etag = storage_put!(minted.parts[0].url.clone(), b"hello,world\n1,2\n".to_vec());
            ok!(
                "finalize multipart",
                call!(c.uploads().finalize(
                    &streaming.upload_id,
                    streaming.finalize_token.expose(),
                    FinalizeUploadRequest::new().parts(vec![FinalizeUploadPart::new(etag, 1)])
                ))
            );
            let loaded = ok!(
                "load from multipart",
                call!(c.databases().load_table(
                    &db_id,
                    "public",
                    "hello",
                    LoadManagedTableRequest::new(LoadMode::Replace).upload_id(&streaming.upload_id).format("csv")
                ))
            );
            assert!(matches!(loaded, LoadOutcome::Loaded(ref l) if l.row_count == 1), "{backend}: {loaded:?}");

            let usage = ok!("usage", call!(c.usage().get()));
            assert!(usage.query_count >= 1, "{backend}");

            // Documented errors pass through Prism too, with their envelopes.
            let err = call!(c.databases().get("db_missing")).unwrap_err();
            assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{backend}: {err:?}");
            let err = call!(c.databases().create(CreateDatabaseRequest::new().name(name("main")))).unwrap_err();
            assert_eq!(err.status().map(|s| s.as_u16()), Some(409), "{backend}: {err:?}");
            let err = call!(c.query(QueryRequest::new("SELEC nonsense")).x_database_id(&db_id)).unwrap_err();
            assert_eq!(err.status().map(|s| s.as_u16()), Some(400), "{backend}: {err:?}");

            // The deletes.
            ok!("delete managed table", call!(c.connections().delete_table(&cid, "raw", "pets")));
            ok!("detach catalog", call!(c.databases().detach_catalog(&db_id, &cid)));
            let spare = ok!(
                "create spare connection",
                call!(c.connections().create(CreateConnectionRequest::new(
                    serde_json::Map::new(),
                    name("spare"),
                    "managed"
                )))
            );
            ok!("delete connection", call!(c.connections().delete(&spare.id)));
            ok!("delete saved query", call!(c.saved_queries().delete(&saved.id)));
            ok!("delete database", call!(c.databases().delete(&fork.id)));

            // Prism found nothing, and every operation was exercised.
            let exchanges = log.lock().unwrap().clone();
            let violations: Vec<String> = exchanges
                .iter()
                .filter_map(|e| {
                    e.violations.as_ref().map(|v| format!("{} {} -> {:?}: {v}", e.method, e.path, e.status))
                })
                .collect();
            assert!(violations.is_empty(), "{backend}: Prism reported violations:\n{}", violations.join("\n"));
            assert!(exchanges.iter().all(|e| e.status.is_some()), "{backend}: every exchange was answered");
            let seen: BTreeSet<&str> =
                exchanges.iter().filter_map(|e| operation_of(&e.method, &e.path)).collect();
            let missing: Vec<&str> =
                hotdata_core::ops::ALL.iter().map(|op| op.id).filter(|id| !seen.contains(id)).collect();
            assert!(missing.is_empty(), "{backend}: operations never exercised: {missing:?}");
            assert_eq!(seen.len(), 63, "{backend}");
            eprintln!(
                "{backend}: {} exchanges through Prism, {} operations, no violation",
                exchanges.len(),
                seen.len()
            );
        });

        // The harness does see violations: an answer the spec does not list (a 418 for
        // `get_usage`, injected by the emulator) is flagged by Prism and recorded.
        let log = ExchangeLog::default();
        let c = hotdata_conformance::flows::recording_blocking(config(&prism, &emu), log.clone());
        emu.inject(FaultRule::status("get_usage", 418, None, 1));
        let err = c.usage().get().send().unwrap_err();
        let last = log.lock().unwrap().last().cloned().expect("an exchange");
        eprintln!("control: {err:?} {last:?}");
        assert!(last.violations.is_some(), "Prism did not flag an undocumented status: {last:?}\n{err:?}");

        // The emulator saw every operation from both backends, through Prism.
        let ops: BTreeSet<String> = emu.requests().into_iter().map(|r| r.operation).collect();
        let missing: Vec<&str> =
            hotdata_core::ops::ALL.iter().map(|op| op.id).filter(|id| !ops.contains(*id)).collect();
        assert!(missing.is_empty(), "the emulator never saw: {missing:?}");
    }
}
