// The secret sweep (issue 12), written once and run on every backend (natively:
// tests/conformance/tests/secrets.rs; in headless Chromium: hotdata-wasm/tests/scenarios.rs):
// fault scenarios against the emulator, with every `tracing` event captured at TRACE (ours
// and any dependency's), every error's `Display`, `Debug` and source chain, and every upload
// event. None may contain the API key, a finalize token, or a presigned signature; the
// tokens and signatures are read back from the emulator's request log afterwards, so the
// sweep looks for the real ones.
//
// (Dependencies that log through the `log` crate rather than `tracing`, ureq and reqwest,
// are outside what a `tracing` subscriber sees; ureq prints full request URIs at its own
// `trace` level. See hotdata-ureq's docs.)

use std::error::Error as StdError;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hotdata_core::models::{CreateDatabaseRequest, QueryRequest, ResultsFormatQuery};
use hotdata_core::testing::TraceCapture;
use hotdata_core::upload::{RoundPolicy, UploadErrorKind, UploadOptions};
use hotdata_core::{Config, RetryPolicy};
use hotdata_emulator::{Fault, FaultRule, MIB, RequestRecord, Settings, Target};

/// Every text the sweep looks at.
type Texts = Arc<Mutex<Vec<String>>>;

/// The log lines of the whole process (a global subscriber: upload workers log from their
/// own threads), installed once.
fn log_lines() -> TraceCapture {
    static LINES: OnceLock<TraceCapture> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let capture = TraceCapture::default();
            tracing::subscriber::set_global_default(capture.clone()).expect("one global subscriber");
            capture
        })
        .clone()
}

/// `e`'s `Display` and `Debug`, and those of every error in its source chain.
fn chain(e: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        out.push(e.to_string());
        out.push(format!("{e:?}"));
        next = e.source();
    }
    out
}

fn config(emulator: &Emu) -> Config {
    let retry = RetryPolicy::default().with_backoff(Duration::from_millis(1), Duration::from_millis(20));
    Config::new(emulator.api_key())
        .with_workspace_id(emulator.workspace_id())
        .with_base_url(emulator.base_url())
        .with_retry(retry.with_max_retries(2))
}

/// Uploads with an event log; rounds pause 20 ms.
fn options(texts: &Texts) -> UploadOptions {
    let events = texts.clone();
    UploadOptions::new()
        .part_size(MIB)
        .max_concurrency(3)
        .rounds(RoundPolicy::new(2, Duration::from_millis(20)))
        .on_event(move |e| events.lock().unwrap().push(format!("{e:?}")))
}

fn op(id: &str) -> Target {
    Target::Operation(id.to_owned())
}

/// The secrets the emulator saw: the API key, every finalize token sent, and every storage
/// signature (the `X-Signature` of a presigned URL), from its request log.
fn secrets(api_key: &str, requests: &[RequestRecord]) -> Vec<String> {
    let mut out = vec![api_key.to_owned()];
    for r in requests {
        if let Some(token) = r.header("x-upload-finalize-token") {
            out.push(token.to_owned());
        }
        if let Some((_, sig)) = r.uri.split_once("X-Signature=") {
            out.push(sig.split('&').next().unwrap_or(sig).to_owned());
        }
    }
    out.sort();
    out.dedup();
    out.retain(|s| s.len() >= 8);
    out
}

scenario! {
    fn no_secret_reaches_a_log_line_an_error_or_an_upload_event(backend) {
        let logs = log_lines();
        let texts = Texts::default();
        let emulator = start!(Settings::default().min_part_size(MIB));
        let c = client!(config(&emulator));
        let bytes: Vec<u8> = (0..3 * MIB + 5).map(|i| (i % 251) as u8).collect();

        // Storage faults that heal: a reset, an expired URL (403, minted again), a 500.
        for rule in [
            FaultRule::new(Target::StoragePart(1), Fault::Reset),
            FaultRule::new(Target::StoragePart(2), Fault::ExpiredUrl),
            FaultRule::storage_part_fails(3, 500, 1),
        ] {
            ctl!(emulator.inject(rule));
        }
        wait!(c.upload_file(bytes.clone(), options(&texts))).unwrap_or_else(|e| panic!("{backend}: {e:?}"));

        // Storage that never heals: every PUT reset, then every PUT refused as expired.
        for fault in [Fault::Reset, Fault::ExpiredUrl] {
            ctl!(emulator.inject(FaultRule::new(op("storage_put"), fault).always()));
            let e = wait!(c.upload_file(bytes.clone(), options(&texts))).expect_err("storage never heals");
            ctl!(emulator.clear_faults());
            texts.lock().unwrap().extend(chain(&e));
            if let Some(state) = e.resume_state() {
                texts.lock().unwrap().push(format!("{state:?}"));
            }
        }

        // Finalize's answer lost, then the resume told it is already finalized; finalize
        // refused. (In the browser every answer closes its connection meanwhile: Chromium
        // itself resends a request whose reused connection dropped before an answer.)
        ctl!(emulator.inject(FaultRule::new(op("finalize_upload_handler"), Fault::ResetAfterCommit)));
        if backend == "browser" {
            ctl!(emulator.inject(FaultRule::new(Target::Any, Fault::Close).always()));
        }
        let e = wait!(c.upload_file(bytes.clone(), options(&texts))).expect_err("the answer is lost");
        texts.lock().unwrap().extend(chain(&e));
        let state = e.into_resume_state().expect("a finished transfer survives");
        texts.lock().unwrap().push(format!("{state:?}"));
        let e = wait!(c.resume_upload(state, bytes.clone(), options(&texts))).expect_err("already finalized");
        assert_eq!(e.kind(), UploadErrorKind::AlreadyFinalized, "{backend}: {e:?}");
        texts.lock().unwrap().extend(chain(&e));
        ctl!(emulator.clear_faults());
        ctl!(emulator.inject(FaultRule::new(
            op("finalize_upload_handler"),
            Fault::Status { status: 403, retry_after: None },
        )));
        let e = wait!(c.upload_file(bytes.clone(), options(&texts))).expect_err("finalize refused");
        texts.lock().unwrap().extend(chain(&e));

        // A query storm past the retry budget, a reset result fetch, a truncated Arrow stream.
        let db = call!(c.databases().create(CreateDatabaseRequest::new().name("secrets"))).unwrap().id;
        ctl!(emulator.inject(FaultRule::status("query", 429, None, 10)));
        let e = call!(c.query(QueryRequest::new("SELECT 1")).x_database_id(&db)).expect_err("429 storm");
        ctl!(emulator.clear_faults());
        texts.lock().unwrap().extend(chain(&e));
        let outcome =
            call!(c.query(QueryRequest::new("SELECT * FROM synthetic(100)")).x_database_id(&db)).unwrap();
        let hotdata_core::models::QueryOutcome::Inline(answer) = outcome else { panic!("{backend}: inline") };
        let rid = answer.result_id.expect("a stored result");
        for fault in [Fault::Reset, Fault::Truncate { at: Some(64) }] {
            ctl!(emulator.inject(FaultRule::new(op("get_result"), fault).times(3)));
            let mut sink = Vec::new();
            let fetched =
                wait!(c.results().download(&rid, &db, ResultsFormatQuery::Arrow).write_to(&mut sink));
            ctl!(emulator.clear_faults());
            if let Err(e) = fetched {
                texts.lock().unwrap().extend(chain(&e));
            }
        }

        let secrets = secrets(emulator.api_key(), &ctl!(emulator.requests()));
        assert!(secrets.len() > 3, "{backend}: the sweep found the secrets to look for: {secrets:?}");
        let texts = texts.lock().unwrap();
        let logs = logs.lines();
        assert!(!logs.is_empty(), "{backend}: log lines were captured");
        for text in texts.iter().chain(logs.iter()) {
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{backend}: a secret in {text}");
            }
        }
    }
}
