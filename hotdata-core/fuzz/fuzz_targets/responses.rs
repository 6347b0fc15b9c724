//! Whatever a server (or something posing as one) answers, through the client's flows on a
//! scripted transport and a manual clock: every operation's decoder, retries and
//! `Retry-After`, pagination, the one-call query (`sql`), Arrow and CSV fetches, waiting for
//! a query run, a small upload, and resuming an upload from a saved `ResumeState` (the first
//! reply's bytes are the state's JSON: a saved state is read back from a file). Each flow must end (libFuzzer's `-timeout` catches a
//! hang) in a value or an error: never a panic.
//!
//! Input: one byte choosing the flow, one choosing the operation, then the replies, split
//! by `\x1e`. A reply is its status line (`200`), header lines (`name: value`), an empty
//! line and the body; a reply that does not parse is a connection reset.
#![no_main]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hotdata_core::endpoint::Endpoint;
use hotdata_core::models::{QueryRequest, ResultsFormatQuery};
use hotdata_core::testing::{FakeTransport, ManualRuntime, Reply};
use hotdata_core::upload::{ResumeState, UploadOptions, UploadSource};
use hotdata_core::{
    BlockingClient, Config, DynamicRequest, RawResponse, RetryPolicy, TransportError, TransportErrorKind,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flow, op, rest @ ..] = data else { return };
    let mut parts = rest.split(|&b| b == 0x1e);
    let state = if flow % 9 == 8 { parts.next() } else { None };
    let replies: Vec<Reply> = parts.take(64).map(reply).collect();
    match flow % 9 {
        0 => parse_directly(*op, &replies),
        8 => resume(state.unwrap_or_default(), replies),
        flow => through_the_client(flow, replies),
    }
});

fn reply(text: &[u8]) -> Reply {
    let reset = || Err(TransportError::from_kind(TransportErrorKind::NoResponse));
    let (head, body) = match text.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&text[..at], &text[at + 2..]),
        None => (text, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else { return reset() };
    let mut lines = head.lines();
    let Some(Ok(status)) = lines.next().map(|s| s.trim().parse::<u16>()) else { return reset() };
    let mut builder = http::Response::builder().status(status);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    builder.body(Bytes::copy_from_slice(body)).or_else(|_| reset())
}

/// Every reply decoded as operation `op`'s answer.
fn parse_directly(op: u8, replies: &[Reply]) {
    let all = hotdata_core::ops::ALL;
    let operation = all[op as usize % all.len()];
    let Ok(request) = DynamicRequest::new(operation.id) else { return };
    for r in replies.iter().flatten() {
        let raw = RawResponse { status: r.status(), headers: r.headers().clone(), body: r.body().clone() };
        let _ = request.parse(&raw);
    }
}

fn client(replies: Vec<Reply>) -> BlockingClient {
    let transport = FakeTransport::script(replies);
    let runtime = ManualRuntime::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000));
    let config = Config::new("k")
        .with_workspace_id("w")
        .with_base_url("http://h")
        .with_retry(RetryPolicy::default().with_max_retries(3));
    BlockingClient::new(config, transport, runtime, "fuzz")
}

/// A saved state read back, then resumed against the replies with a 100-byte source.
fn resume(state: &[u8], replies: Vec<Reply>) {
    let Ok(state) = serde_json::from_slice::<ResumeState>(state) else { return };
    let options = UploadOptions::new().max_concurrency(1);
    let _ = client(replies).resume_upload(state, UploadSource::bytes(Bytes::from_static(&[7; 100])), options);
}

fn through_the_client(flow: u8, replies: Vec<Reply>) {
    let client = client(replies);
    match flow {
        1 => {
            let _ = client.sql("select 1").database_id("db").rows();
        }
        2 => {
            let _ = client.query_to_arrow(QueryRequest::new("select 1").database_id("db"), None);
        }
        3 => {
            let _ = client.results().arrow("r", "db").collect();
        }
        4 => {
            for page in client.databases().list().pages().take(16) {
                if page.is_err() {
                    break;
                }
            }
        }
        5 => {
            let _ = client.results().download("r", "db", ResultsFormatQuery::Csv).write_to(&mut Vec::new());
        }
        6 => {
            let _ = client.wait_for_query_run("qr", "db");
        }
        _ => {
            let options = UploadOptions::new().max_concurrency(1);
            let _ = client.upload_file(UploadSource::bytes(Bytes::from_static(&[7; 100])), options);
        }
    }
}
