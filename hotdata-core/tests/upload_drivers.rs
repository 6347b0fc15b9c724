//! The blocking and async upload drivers against a fake server (control plane and storage
//! in one scripted transport) on a manual clock. No sockets.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hotdata_core::testing::{
    FakeTransport, ManualRuntime, RecordedRequest, Reply, block_on, response, response_with,
};
use hotdata_core::upload::{
    AsyncRangeSource, AsyncUploadSource, CancelToken, ProgressHandle, UploadErrorKind, UploadEvent,
    UploadOptions, UploadSource,
};
use hotdata_core::{AsyncClient, BlockingClient, Config};
use serde_json::{Value, json};

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// Given a storage path and how many times it was hit, an answer to give instead of 200.
type StorageFault = Box<dyn FnMut(&str, usize) -> Option<(u16, &'static str, &'static str)> + Send>;

#[derive(Default)]
struct State {
    /// Part size of streaming sessions; 0 answers `single` when a size is declared.
    part_size: u64,
    stored: BTreeMap<String, Bytes>,
    finalizes: Vec<Value>,
    mints: usize,
    storage_status: Option<StorageFault>,
    storage_hits: BTreeMap<String, usize>,
    finalize_status: Option<u16>,
    create_status: Option<u16>,
}

type Server = Arc<Mutex<State>>;

fn server(part_size: u64) -> Server {
    Arc::new(Mutex::new(State { part_size, ..State::default() }))
}

fn handle(s: &Server, r: &RecordedRequest) -> Reply {
    let mut st = s.lock().unwrap();
    let path = r.uri.path().to_owned();
    if r.uri.host() == Some("storage.test") {
        assert_eq!(r.method, http::Method::PUT);
        let hits = st.storage_hits.entry(path.clone()).or_default();
        *hits += 1;
        let hits = *hits;
        if let Some(f) = st.storage_status.as_mut()
            && let Some((code, h, v)) = f(&path, hits)
        {
            return Ok(response_with(code, "<Error/>", h, v));
        }
        st.stored.insert(path.clone(), r.body.clone());
        return Ok(response_with(200, "", "etag", &format!("\"{}\"", path.trim_start_matches('/'))));
    }
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    match (r.method.as_str(), path.as_str()) {
        ("POST", "/v1/uploads") => {
            if let Some(code) = st.create_status {
                return Ok(response(
                    code,
                    r#"{"error":{"code":"PRESIGN_UNSUPPORTED","message":"no presigning"}}"#,
                ));
            }
            let session = if st.part_size == 0 {
                json!({"upload_id": "up_1", "finalize_token": "tok", "headers": {}, "mode": "single", "url": "http://storage.test/single"})
            } else {
                json!({"upload_id": "up_1", "finalize_token": "tok", "headers": {}, "mode": "multipart", "part_size": st.part_size})
            };
            Ok(response(201, &session.to_string()))
        }
        ("POST", "/v1/uploads/up_1/parts") => {
            st.mints += 1;
            let n = body["part_numbers"][0].as_i64().unwrap();
            let answer =
                json!({"parts": [{"part_number": n, "url": format!("http://storage.test/part/{n:05}")}]});
            Ok(response(200, &answer.to_string()))
        }
        ("POST", "/v1/uploads/up_1/finalize") => {
            assert_eq!(r.headers["x-upload-finalize-token"], "tok");
            st.finalizes.push(body);
            if let Some(code) = st.finalize_status {
                return Ok(response(code, r#"{"error":{"code":"BUSY","message":"slow down"}}"#));
            }
            let done = json!({"upload_id": "up_1", "status": "finalized", "size_bytes": 1, "created_at": "2026-01-01T00:00:00Z"});
            Ok(response(200, &done.to_string()))
        }
        ("POST", "/v1/files") => {
            st.stored.insert("/v1/files".into(), r.body.clone());
            let done = json!({"id": "file_1", "status": "uploaded", "size_bytes": r.body.len(), "created_at": "2026-01-01T00:00:00Z"});
            Ok(response(201, &done.to_string()))
        }
        _ => Ok(response(404, "{}")),
    }
}

fn setup(part_size: u64) -> (Server, Arc<FakeTransport>, Arc<ManualRuntime>) {
    let s = server(part_size);
    let s2 = s.clone();
    let t = FakeTransport::new(move |r| handle(&s2, r));
    (s, t, ManualRuntime::new(SystemTime::UNIX_EPOCH))
}

fn config() -> Config {
    Config::new("secret-key").with_workspace_id("ws_1").with_base_url("http://api.test")
}

fn blocking(t: &Arc<FakeTransport>, rt: &Arc<ManualRuntime>) -> BlockingClient {
    BlockingClient::new(config(), t.clone(), rt.clone(), "test")
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 256) as u8).collect()
}

fn reassembled(s: &Server) -> Vec<u8> {
    s.lock()
        .unwrap()
        .stored
        .iter()
        .filter(|(k, _)| k.starts_with("/part/"))
        .flat_map(|(_, v)| v.to_vec())
        .collect()
}

fn assert_storage_isolated(t: &FakeTransport) {
    let puts: Vec<_> = t.requests().into_iter().filter(|r| r.uri.host() == Some("storage.test")).collect();
    assert!(!puts.is_empty());
    for r in puts {
        let names: Vec<_> = r.headers.keys().map(|k| k.as_str().to_owned()).collect();
        assert_eq!(names, vec!["content-length"], "{}", r.uri);
        assert_eq!(r.headers["content-length"], r.body.len().to_string());
        assert_eq!(r.timeout.map(|t| t >= Duration::from_secs(60)), Some(true));
        assert_eq!(r.body_idle_timeout, None, "a PUT keeps its size-based deadline: {}", r.uri);
        assert!(r.storage, "{} is sent as a storage request", r.uri);
    }
    for r in t.requests().into_iter().filter(|r| r.uri.host() == Some("api.test")) {
        assert!(!r.storage, "{}", r.uri);
        assert_eq!(r.body_idle_timeout, None, "JSON answers keep the whole-request timeout: {}", r.uri);
        assert_eq!(r.headers["authorization"], "Bearer secret-key");
        assert_eq!(r.headers["x-workspace-id"], "ws_1");
    }
}

#[test]
fn blocking_single_put_from_bytes() {
    let (s, t, rt) = setup(0);
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let done = blocking(&t, &rt)
        .upload_file(
            UploadSource::bytes(data(100)),
            UploadOptions::new().on_event(move |e| ev.lock().unwrap().push(e.clone())),
        )
        .unwrap();
    assert_eq!(done.upload_id, "up_1");
    assert_eq!(s.lock().unwrap().stored["/single"].to_vec(), data(100));
    assert_eq!(s.lock().unwrap().finalizes, vec![json!({})]);
    assert_storage_isolated(&t);
    let progress: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            UploadEvent::Progress { done, total } => Some((*done, *total)),
            _ => None,
        })
        .collect();
    // Byte-granular: the fake transport reads bodies 32 bytes at a time; a value is never
    // repeated.
    assert_eq!(progress, vec![(0, Some(100)), (32, Some(100)), (64, Some(100)), (100, Some(100))]);
}

#[test]
fn blocking_multipart_on_threads_reassembles_and_finalizes_once() {
    let (s, t, rt) = setup(7);
    let progress = ProgressHandle::new();
    let options = UploadOptions::new().max_concurrency(4).progress_handle(progress.clone());
    blocking(&t, &rt).upload_file(data(100), options).unwrap();
    assert_eq!((progress.done(), progress.total()), (100, Some(100)));
    assert_eq!(reassembled(&s), data(100));
    let st = s.lock().unwrap();
    assert_eq!(st.finalizes.len(), 1);
    let parts = st.finalizes[0]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 15);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["part_number"], json!(i + 1));
        assert_eq!(p["e_tag"], json!(format!("\"part/{:05}\"", i + 1)));
    }
    assert_eq!(st.mints, 15);
    drop(st);
    assert_storage_isolated(&t);
}

#[test]
fn blocking_reader_of_unknown_length_streams() {
    let (s, t, rt) = setup(8);
    struct Trickle(Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(&mut buf[..n])
        }
    }
    let c = blocking(&t, &rt);
    c.upload_file(UploadSource::reader(Trickle(Cursor::new(data(61)))), UploadOptions::new()).unwrap();
    assert_eq!(reassembled(&s), data(61));
    let create = t.requests().into_iter().find(|r| r.uri.path() == "/v1/uploads").unwrap();
    let body: Value = serde_json::from_slice(&create.body).unwrap();
    assert!(body.get("declared_size_bytes").is_none());
}

#[test]
fn blocking_seekable_reads_from_its_current_position() {
    let (s, t, rt) = setup(0);
    let mut cursor = Cursor::new(data(50));
    cursor.seek(SeekFrom::Start(20)).unwrap();
    blocking(&t, &rt).upload_file(UploadSource::seekable(cursor), UploadOptions::new()).unwrap();
    assert_eq!(s.lock().unwrap().stored["/single"].to_vec(), data(50)[20..].to_vec());
}

#[test]
#[cfg(not(target_arch = "wasm32"))] // files on disk: wasm32-unknown-unknown has no filesystem
fn blocking_path_defaults_the_file_name() {
    let (s, t, rt) = setup(16);
    let path = std::env::temp_dir().join(format!("hotdata-upload-test-{}.csv", std::process::id()));
    std::fs::write(&path, data(40)).unwrap();
    let r = blocking(&t, &rt).upload_file(path.as_path(), UploadOptions::new().content_type("text/csv"));
    std::fs::remove_file(&path).unwrap();
    r.unwrap();
    assert_eq!(reassembled(&s), data(40));
    let create = t.requests().into_iter().find(|r| r.uri.path() == "/v1/uploads").unwrap();
    let body: Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(body["filename"], json!(path.file_name().unwrap().to_str().unwrap()));
    assert_eq!(body["content_type"], json!("text/csv"));
    let missing =
        blocking(&t, &rt).upload_file(std::path::PathBuf::from("/nonexistent/x"), UploadOptions::new());
    assert_eq!(missing.unwrap_err().kind(), UploadErrorKind::SourceIo);
}

#[test]
fn blocking_finalize_is_sent_once_even_on_429() {
    let (s, t, rt) = setup(0);
    s.lock().unwrap().finalize_status = Some(429);
    let e = blocking(&t, &rt).upload_file(data(10), UploadOptions::new()).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Finalize);
    assert_eq!(e.status().map(|s| s.as_u16()), Some(429));
    assert_eq!(s.lock().unwrap().finalizes.len(), 1);
    assert!(rt.sleeps().is_empty(), "no retry pause");
}

#[test]
fn blocking_retry_pauses_go_through_the_runtime() {
    let (s, t, rt) = setup(4);
    s.lock().unwrap().storage_status = Some(Box::new(|path, hits| match (path, hits) {
        ("/part/00002", 1) => Some((429, "retry-after", "1")),
        ("/part/00002", 2) => Some((503, "x-a", "b")),
        _ => None,
    }));
    blocking(&t, &rt).upload_file(data(12), UploadOptions::new().max_concurrency(1)).unwrap();
    assert_eq!(rt.sleeps(), vec![Duration::from_secs(1), Duration::from_secs(2)]);
    assert_eq!(reassembled(&s), data(12));
    assert_eq!(s.lock().unwrap().storage_hits["/part/00002"], 3);
}

#[test]
fn blocking_failure_then_resume_in_the_same_session() {
    let (s, t, rt) = setup(4);
    s.lock().unwrap().storage_status =
        Some(Box::new(|path, _| (path == "/part/00003").then_some((400, "x-a", "b"))));
    let c = blocking(&t, &rt);
    let e = c.upload_file(data(16), UploadOptions::new().max_concurrency(1)).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::StorageStatus);
    assert_eq!(e.parts_completed(), 2);
    let state = e.into_resume_state().unwrap();
    s.lock().unwrap().storage_status = None;
    c.resume_upload(state, data(16), UploadOptions::new()).unwrap();
    let st = s.lock().unwrap();
    assert_eq!(st.storage_hits["/part/00001"], 1, "stored parts are not sent again");
    assert_eq!(st.storage_hits["/part/00003"], 2);
    assert_eq!(st.finalizes.len(), 1);
    assert_eq!(st.finalizes[0]["parts"].as_array().unwrap().len(), 4);
    drop(st);
    assert_eq!(t.requests().iter().filter(|r| r.uri.path() == "/v1/uploads").count(), 1);
}

#[test]
fn a_refused_finalize_resumes_with_finalize_alone_on_both_drivers() {
    for blocking_driver in [true, false] {
        let (s, t, rt) = setup(4);
        s.lock().unwrap().finalize_status = Some(401);
        let e = if blocking_driver {
            blocking(&t, &rt).upload_file(data(16), UploadOptions::new()).unwrap_err()
        } else {
            let c = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
            block_on(c.upload_file(data(16), UploadOptions::new())).unwrap_err()
        };
        assert_eq!(e.kind(), UploadErrorKind::Finalize);
        assert!(!e.finalize_may_have_succeeded());
        let state = e.into_resume_state().expect("a finished transfer survives a refused finalize");
        assert!(state.is_complete() && state.finalize_was_refused());
        s.lock().unwrap().finalize_status = None;
        let before = t.requests().len();
        let done = if blocking_driver {
            blocking(&t, &rt).resume_upload(state, data(16), UploadOptions::new()).unwrap()
        } else {
            let c = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
            block_on(c.resume_upload(state, data(16), UploadOptions::new())).unwrap()
        };
        assert_eq!(done.upload_id, "up_1");
        let sent: Vec<String> = t.requests()[before..].iter().map(|r| r.uri.path().to_owned()).collect();
        assert_eq!(sent, vec!["/v1/uploads/up_1/finalize"], "finalize alone");
    }
}

#[test]
fn cancelled_before_start_and_presign_unsupported_send_nothing_to_storage() {
    let (s, t, rt) = setup(0);
    let token = CancelToken::new();
    token.cancel();
    let e = blocking(&t, &rt).upload_file(data(10), UploadOptions::new().cancel_token(token)).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Cancelled);
    assert!(t.requests().is_empty());
    s.lock().unwrap().create_status = Some(501);
    let e = blocking(&t, &rt).upload_file(data(10), UploadOptions::new()).unwrap_err();
    assert!(e.is_presign_unsupported());
    assert!(t.requests().iter().all(|r| r.uri.host() != Some("storage.test")));
}

#[test]
fn blocking_cancel_mid_upload_stops_new_parts_and_skips_finalize() {
    let (s, t, rt) = setup(4);
    let token = CancelToken::new();
    let tk = token.clone();
    let options = UploadOptions::new().max_concurrency(1).cancel_token(token).on_event(move |e| {
        if matches!(e, UploadEvent::PartCompleted { part: Some(2), .. }) {
            tk.cancel();
        }
    });
    let e = blocking(&t, &rt).upload_file(data(40), options).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Cancelled);
    assert_eq!(e.parts_completed(), 2);
    let st = s.lock().unwrap();
    assert_eq!(st.stored.len(), 2);
    assert!(st.finalizes.is_empty());
}

/// A manual clock whose first sleep of `cancel_at` or more cancels the upload (as a caller
/// would, from another thread, during a round pause).
struct CancelDuringPause {
    clock: Arc<ManualRuntime>,
    token: CancelToken,
}

impl hotdata_core::BlockingRuntime for CancelDuringPause {
    fn now(&self) -> Duration {
        hotdata_core::BlockingRuntime::now(&*self.clock)
    }
    fn wall_clock(&self) -> SystemTime {
        hotdata_core::BlockingRuntime::wall_clock(&*self.clock)
    }
    fn sleep(&self, duration: Duration) {
        hotdata_core::BlockingRuntime::sleep(&*self.clock, duration);
        self.token.cancel();
    }
}

#[test]
fn blocking_cancel_cuts_a_round_pause_short() {
    let (s, t, rt) = setup(4);
    s.lock().unwrap().storage_status =
        Some(Box::new(|path, hits| (path == "/part/00001" && hits == 1).then_some((503, "x-a", "b"))));
    let token = CancelToken::new();
    let runtime = Arc::new(CancelDuringPause { clock: rt.clone(), token: token.clone() });
    let client = BlockingClient::new(config(), t.clone(), runtime, "test");
    let options = UploadOptions::new().max_concurrency(1).cancel_token(token);
    let e = client.upload_file(data(10), options).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Cancelled);
    let slept: Duration = rt.sleeps().iter().sum();
    assert!(slept <= Duration::from_millis(50), "the 2 s pause was cut short: {:?}", rt.sleeps());
    assert!(s.lock().unwrap().finalizes.is_empty());
}

struct Chunks(std::vec::IntoIter<std::io::Result<Bytes>>);

impl futures_core::Stream for Chunks {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.next())
    }
}

#[test]
fn async_bytes_and_streams_upload_concurrently() {
    let (s, t, rt) = setup(7);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let progress = Arc::new(Mutex::new(Vec::new()));
    let p = progress.clone();
    let options = UploadOptions::new().on_event(move |e| {
        if let UploadEvent::Progress { done, .. } = e {
            p.lock().unwrap().push(*done);
        }
    });
    block_on(client.upload_file(data(50), options)).unwrap();
    assert_eq!(reassembled(&s), data(50));
    let progress = progress.lock().unwrap().clone();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(progress.last(), Some(&50));
    assert_storage_isolated(&t);

    let (s, t, rt) = setup(7);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let all = data(45);
    let chunks: Vec<_> = all.chunks(5).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    block_on(client.upload_file(AsyncUploadSource::stream(Chunks(chunks.into_iter())), UploadOptions::new()))
        .unwrap();
    assert_eq!(reassembled(&s), all);
    assert_eq!(s.lock().unwrap().finalizes[0]["parts"].as_array().unwrap().len(), 7);

    let (_, t, rt) = setup(7);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let chunks = vec![Ok(Bytes::from_static(b"abcdefghij")), Err(std::io::Error::other("pipe closed"))];
    let e = block_on(
        client.upload_file(AsyncUploadSource::stream(Chunks(chunks.into_iter())), UploadOptions::new()),
    )
    .unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::SourceIo);
}

type Reads = Arc<Mutex<Vec<(u64, u64)>>>;

/// An in-memory source read by range (as a browser `Blob` is), recording the ranges read.
struct Ranges {
    data: Bytes,
    /// The source claims this length (to model a source that changed under the upload).
    claimed: u64,
    reads: Reads,
}

impl Ranges {
    fn new(data: Vec<u8>) -> (Self, Reads) {
        let reads = Arc::new(Mutex::new(Vec::new()));
        let claimed = data.len() as u64;
        (Self { data: data.into(), claimed, reads: reads.clone() }, reads)
    }
}

impl AsyncRangeSource for Ranges {
    fn len(&self) -> u64 {
        self.claimed
    }

    fn read_range(&self, offset: u64, len: u64) -> hotdata_core::BoxFuture<'_, std::io::Result<Bytes>> {
        self.reads.lock().unwrap().push((offset, len));
        let end = (offset + len).min(self.data.len() as u64) as usize;
        let start = (offset as usize).min(end);
        let bytes = self.data.slice(start..end);
        Box::pin(async move { Ok(bytes) })
    }
}

#[test]
fn async_ranged_sources_are_read_part_by_part() {
    let (s, t, rt) = setup(7);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let (source, reads) = Ranges::new(data(50));
    block_on(client.upload_file(AsyncUploadSource::ranged(source), UploadOptions::new())).unwrap();
    assert_eq!(reassembled(&s), data(50));
    let mut reads = reads.lock().unwrap().clone();
    reads.sort();
    let mut parts: Vec<(u64, u64)> = (0..50).step_by(7).map(|o| (o, 7.min(50 - o))).collect();
    parts.push((50, 1)); // the probe that proves the source is not longer than it said
    assert_eq!(reads, parts, "each part read once, by range, never the whole source");
    assert_eq!(s.lock().unwrap().finalizes.len(), 1);
    assert_storage_isolated(&t);

    // A source shorter than it claims is an error, never a short object.
    let (s, t, rt) = setup(7);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let (mut source, _) = Ranges::new(data(50));
    source.claimed = 60;
    let e =
        block_on(client.upload_file(AsyncUploadSource::ranged(source), UploadOptions::new())).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::SourceSize);
    assert!(s.lock().unwrap().finalizes.is_empty());

    // Servers without presigning get it through the legacy endpoint, streamed.
    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let (source, _) = Ranges::new(data(40));
    let options = UploadOptions::new().legacy_fallback(true);
    block_on(client.upload_file(AsyncUploadSource::ranged(source), options)).unwrap();
    assert_eq!(s.lock().unwrap().stored["/v1/files"].to_vec(), data(40));
}

/// A clock whose sleeps never end; polling one cancels the upload (a caller cancelling
/// during a round pause) and, polled too often, fails the test (the pause was not cut).
struct EndlessPause {
    clock: Arc<ManualRuntime>,
    token: CancelToken,
}

impl hotdata_core::AsyncRuntime for EndlessPause {
    fn now(&self) -> Duration {
        hotdata_core::AsyncRuntime::now(&*self.clock)
    }
    fn wall_clock(&self) -> SystemTime {
        hotdata_core::AsyncRuntime::wall_clock(&*self.clock)
    }
    fn sleep(&self, _: Duration) -> hotdata_core::BoxFuture<'static, ()> {
        let token = self.token.clone();
        let mut polls = 0;
        Box::pin(std::future::poll_fn(move |_| {
            polls += 1;
            assert!(polls < 1000, "the pause went on after cancellation");
            token.cancel();
            std::task::Poll::Pending
        }))
    }
}

#[test]
fn async_cancel_cuts_a_round_pause_short() {
    let (s, t, rt) = setup(4);
    s.lock().unwrap().storage_status =
        Some(Box::new(|path, hits| (path == "/part/00001" && hits == 1).then_some((503, "x-a", "b"))));
    let token = CancelToken::new();
    let runtime = Arc::new(EndlessPause { clock: rt, token: token.clone() });
    let client = AsyncClient::new(config(), t.clone(), runtime, "test");
    let options = UploadOptions::new().max_concurrency(1).cancel_token(token);
    let e = block_on(client.upload_file(data(10), options)).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Cancelled);
    assert!(s.lock().unwrap().finalizes.is_empty());
}

/// A transport that cannot stream request bodies (as the browser's `fetch`).
struct NoStreaming(Arc<FakeTransport>);

impl hotdata_core::AsyncTransport for NoStreaming {
    fn send<'a>(
        &'a self,
        request: hotdata_core::HttpRequest,
        options: &'a hotdata_core::SendOptions,
    ) -> hotdata_core::BoxFuture<
        'a,
        Result<http::Response<hotdata_core::AsyncBody>, hotdata_core::TransportError>,
    > {
        assert!(
            request.body().as_streaming().is_none(),
            "a streaming body reached a transport that cannot send it"
        );
        hotdata_core::AsyncTransport::send(&*self.0, request, options)
    }

    fn supports_streaming_bodies(&self) -> bool {
        false
    }
}

#[test]
fn transports_that_cannot_stream_get_parts_from_memory_and_no_legacy_upload() {
    let (s, t, rt) = setup(7);
    let client = AsyncClient::new(config(), Arc::new(NoStreaming(t.clone())), rt.clone(), "test");
    block_on(client.upload_file(data(50), UploadOptions::new())).unwrap();
    assert_eq!(reassembled(&s), data(50));

    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let client = AsyncClient::new(config(), Arc::new(NoStreaming(t.clone())), rt.clone(), "test");
    let e = block_on(client.upload_file(data(30), UploadOptions::new().legacy_fallback(true))).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Legacy);
    assert!(e.to_string().contains("cannot stream"), "{e}");
}

/// A blocking transport that cannot stream request bodies.
struct NoStreamingBlocking(Arc<FakeTransport>);

impl hotdata_core::BlockingTransport for NoStreamingBlocking {
    fn send(
        &self,
        request: hotdata_core::HttpRequest,
        options: &hotdata_core::SendOptions,
    ) -> Result<http::Response<hotdata_core::BlockingBody>, hotdata_core::TransportError> {
        assert!(
            request.body().as_streaming().is_none(),
            "a streaming body reached a transport that cannot send it"
        );
        hotdata_core::BlockingTransport::send(&*self.0, request, options)
    }

    fn supports_streaming_bodies(&self) -> bool {
        false
    }
}

#[test]
fn blocking_transports_that_cannot_stream_get_parts_from_memory_and_no_legacy_upload() {
    let (s, t, rt) = setup(7);
    let client = BlockingClient::new(config(), Arc::new(NoStreamingBlocking(t.clone())), rt.clone(), "test");
    client.upload_file(data(50), UploadOptions::new()).unwrap();
    assert_eq!(reassembled(&s), data(50));

    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let client = BlockingClient::new(config(), Arc::new(NoStreamingBlocking(t.clone())), rt.clone(), "test");
    let e = client.upload_file(data(30), UploadOptions::new().legacy_fallback(true)).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Legacy);
    assert!(e.to_string().contains("cannot stream"), "{e}");
    let e = client.upload_stream(UploadSource::reader(Cursor::new(data(5)))).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::Legacy);
    assert!(!s.lock().unwrap().stored.contains_key("/v1/files"));
}

/// A blocking transport that panics on storage PUTs (a bug in someone's backend).
#[cfg(not(target_family = "wasm"))]
struct PanicsOnPut(Arc<FakeTransport>);

#[cfg(not(target_family = "wasm"))]
impl hotdata_core::BlockingTransport for PanicsOnPut {
    fn send(
        &self,
        request: hotdata_core::HttpRequest,
        options: &hotdata_core::SendOptions,
    ) -> Result<http::Response<hotdata_core::BlockingBody>, hotdata_core::TransportError> {
        if request.method() == http::Method::PUT {
            panic!("backend bug");
        }
        hotdata_core::BlockingTransport::send(&*self.0, request, options)
    }
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn a_transport_that_panics_on_a_worker_panics_the_upload_instead_of_hanging_it() {
    let (_, t, rt) = setup(7);
    let client = BlockingClient::new(config(), Arc::new(PanicsOnPut(t)), rt, "test");
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            client.upload_file(data(50), UploadOptions::new().max_concurrency(4))
        }));
        let _ = done.send(r.map(|_| ()).map_err(|p| p.downcast_ref::<&str>().map(|s| s.to_string())));
    });
    let r = finished.recv_timeout(Duration::from_secs(60)).expect("the upload hung after a worker panicked");
    assert_eq!(r, Err(Some("backend bug".to_string())));
}

#[test]
fn async_retries_sleep_on_the_runtime() {
    let (s, t, rt) = setup(4);
    s.lock().unwrap().storage_status =
        Some(Box::new(|path, hits| (path == "/part/00001" && hits == 1).then_some((503, "x-a", "b"))));
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    block_on(client.upload_file(data(10), UploadOptions::new())).unwrap();
    assert_eq!(rt.sleeps(), vec![Duration::from_secs(2)]);
    assert_eq!(reassembled(&s), data(10));
}

#[test]
fn presign_unsupported_falls_back_to_the_legacy_endpoint_only_when_asked() {
    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let c = blocking(&t, &rt);
    let e = c.upload_file(data(30), UploadOptions::new()).unwrap_err();
    assert!(e.is_presign_unsupported());
    assert!(!s.lock().unwrap().stored.contains_key("/v1/files"));

    let done = c.upload_file(data(30), UploadOptions::new().legacy_fallback(true)).unwrap();
    assert_eq!(done.upload_id, "file_1");
    assert_eq!(s.lock().unwrap().stored["/v1/files"].to_vec(), data(30));
    let legacy = t.requests().into_iter().find(|r| r.uri.path() == "/v1/files").unwrap();
    assert_eq!(legacy.headers["content-length"], "30");
    assert_eq!(legacy.headers["content-type"], "application/octet-stream");
    assert_eq!(legacy.headers["authorization"], "Bearer secret-key");
    assert!(t.requests().iter().all(|r| r.uri.host() != Some("storage.test")));
}

#[test]
fn legacy_upload_stream_streams_readers_of_unknown_length_chunked() {
    let (s, t, rt) = setup(0);
    let c = blocking(&t, &rt);
    let r = c.upload_stream(UploadSource::reader(Cursor::new(data(77)))).unwrap();
    assert_eq!(r.id, "file_1");
    assert_eq!(s.lock().unwrap().stored["/v1/files"].to_vec(), data(77));
    let legacy = t.requests().into_iter().find(|r| r.uri.path() == "/v1/files").unwrap();
    assert!(!legacy.headers.contains_key("content-length"), "sent chunked");

    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let chunks: Vec<_> = data(33).chunks(4).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let source = AsyncUploadSource::stream(Chunks(chunks.into_iter()));
    let done = block_on(client.upload_file(source, UploadOptions::new().legacy_fallback(true)));
    assert_eq!(done.unwrap().upload_id, "file_1");
    assert_eq!(s.lock().unwrap().stored["/v1/files"].to_vec(), data(33));
}

#[test]
fn a_streaming_body_can_be_sent_only_once() {
    use hotdata_core::{BlockingTransport, RequestBody, SendOptions, StreamingBody, TransportErrorKind};
    let (_, t, _) = setup(0);
    let body = RequestBody::Streaming(StreamingBody::from_reader(Cursor::new(data(5)), Some(5)));
    let request = |b: RequestBody| {
        let mut r = http::Request::new(b);
        *r.method_mut() = http::Method::PUT;
        *r.uri_mut() = "http://storage.test/x".parse().unwrap();
        r
    };
    assert!(BlockingTransport::send(&*t, request(body.clone()), &SendOptions::default()).is_ok());
    let again = BlockingTransport::send(&*t, request(body), &SendOptions::default()).unwrap_err();
    assert_eq!(again.kind(), TransportErrorKind::Request);
}

#[test]
fn blocking_threads_wait_for_retries_while_other_parts_are_in_flight() {
    let (s, t, rt) = setup(4);
    s.lock().unwrap().storage_status = Some(Box::new(|path, hits| match (path, hits) {
        ("/part/00002", 1) => Some((429, "retry-after", "1")),
        ("/part/00005", 1) => Some((500, "x-a", "b")),
        _ => None,
    }));
    blocking(&t, &rt).upload_file(data(40), UploadOptions::new().max_concurrency(4)).unwrap();
    assert_eq!(reassembled(&s), data(40));
    let st = s.lock().unwrap();
    assert_eq!(st.storage_hits["/part/00002"], 2);
    assert_eq!(st.storage_hits["/part/00005"], 2);
    assert_eq!(st.finalizes.len(), 1);
    assert_eq!(st.finalizes[0]["parts"].as_array().unwrap().len(), 10);
}

/// The legacy fallback sends the caller's content type (the one the session would have
/// carried), not a generic one; without one it stays `application/octet-stream`.
#[test]
fn the_legacy_fallback_keeps_the_callers_content_type() {
    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let c = blocking(&t, &rt);
    let options = UploadOptions::new().legacy_fallback(true).content_type("text/csv");
    c.upload_file(data(30), options).unwrap();
    let legacy = t.requests().into_iter().find(|r| r.uri.path() == "/v1/files").unwrap();
    assert_eq!(legacy.headers["content-type"], "text/csv");

    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let options = UploadOptions::new().legacy_fallback(true).content_type("application/vnd.apache.parquet");
    block_on(client.upload_file(data(40), options)).unwrap();
    let legacy = t.requests().into_iter().find(|r| r.uri.path() == "/v1/files").unwrap();
    assert_eq!(legacy.headers["content-type"], "application/vnd.apache.parquet");
}

/// A caller's `on_event` callback that panics (here at the first stored part) stops the
/// upload: the panic reaches the caller, nothing hangs, and finalize is never sent. On both
/// drivers, the blocking one with parts in flight on its workers.
#[cfg(not(target_family = "wasm"))] // catching a panic needs unwinding
#[test]
fn a_panicking_event_callback_reaches_the_caller_without_finalize() {
    let panics = |e: &hotdata_core::upload::UploadEvent| {
        if matches!(e, hotdata_core::upload::UploadEvent::PartCompleted { .. }) {
            panic!("the caller's callback failed");
        }
    };
    let (s, t, rt) = setup(7);
    let options = UploadOptions::new().max_concurrency(4).on_event(panics);
    let client = blocking(&t, &rt);
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| client.upload_file(data(100), options)));
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the caller's callback failed"));
    assert!(s.lock().unwrap().finalizes.is_empty(), "no finalize after the callback failed");

    let (s, t, rt) = setup(7);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let options = UploadOptions::new().max_concurrency(4).on_event(panics);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(client.upload_file(data(100), options))
    }));
    assert!(caught.is_err(), "the panic reaches the caller");
    assert!(s.lock().unwrap().finalizes.is_empty(), "no finalize after the callback failed");
}

/// A transport whose PUT of one storage path never answers on its own: the blocking one
/// waits until the test releases it, the async one stays pending and says when it is
/// dropped. Other requests go to the fake server.
#[cfg(not(target_family = "wasm"))]
struct StallsOnePut {
    inner: Arc<FakeTransport>,
    path: &'static str,
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    dropped: Arc<std::sync::atomic::AtomicBool>,
    /// Told when the stalled PUT was sent.
    entered: Mutex<std::sync::mpsc::Sender<()>>,
}

#[cfg(not(target_family = "wasm"))]
impl StallsOnePut {
    /// The transport, the sender that releases the stalled PUT, and the receiver told when
    /// it was sent.
    fn new(
        inner: Arc<FakeTransport>,
        path: &'static str,
    ) -> (Arc<Self>, std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (entered, on_entered) = std::sync::mpsc::channel();
        let release = Mutex::new(Some(rx));
        let t = Self { inner, path, release, dropped: Arc::default(), entered: Mutex::new(entered) };
        (Arc::new(t), tx, on_entered)
    }
}

#[cfg(not(target_family = "wasm"))]
impl hotdata_core::BlockingTransport for StallsOnePut {
    fn send(
        &self,
        request: hotdata_core::HttpRequest,
        options: &hotdata_core::SendOptions,
    ) -> Result<http::Response<hotdata_core::BlockingBody>, hotdata_core::TransportError> {
        if request.uri().path() == self.path {
            let rx = self.release.lock().unwrap().take().expect("the stalled PUT is sent once");
            let _ = self.entered.lock().unwrap().send(());
            let _ = rx.recv();
            return Err(hotdata_core::TransportError::from_kind(hotdata_core::TransportErrorKind::Timeout));
        }
        hotdata_core::BlockingTransport::send(&*self.inner, request, options)
    }
}

#[cfg(not(target_family = "wasm"))]
impl hotdata_core::AsyncTransport for StallsOnePut {
    fn send<'a>(
        &'a self,
        request: hotdata_core::HttpRequest,
        options: &'a hotdata_core::SendOptions,
    ) -> hotdata_core::BoxFuture<
        'a,
        Result<http::Response<hotdata_core::AsyncBody>, hotdata_core::TransportError>,
    > {
        if request.uri().path() == self.path {
            struct Dropped(Arc<std::sync::atomic::AtomicBool>);
            impl Drop for Dropped {
                fn drop(&mut self) {
                    self.0.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            let guard = Dropped(self.dropped.clone());
            return Box::pin(async move {
                let _guard = guard;
                std::future::pending().await
            });
        }
        hotdata_core::AsyncTransport::send(&*self.inner, request, options)
    }
}

/// Part 1 is refused for good (400) while part 2's PUT hangs.
#[cfg(not(target_family = "wasm"))]
fn part_one_refused(s: &Server) {
    s.lock().unwrap().storage_status =
        Some(Box::new(|path, _| (path == "/part/00001").then_some((400, "x-test", "refused"))));
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn blocking_a_terminal_failure_returns_without_waiting_for_a_stalled_put() {
    let (s, t, rt) = setup(8);
    part_one_refused(&s);
    let (stall, release, _) = StallsOnePut::new(t, "/part/00002");
    let client = BlockingClient::new(config(), stall, rt, "test");
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = client.upload_file(data(16), UploadOptions::new().max_concurrency(2));
        let _ = done.send(r.map(|_| ()).map_err(|e| (e.kind(), e.resume_state().is_some())));
    });
    // A hang guard, not a timing assertion: before the fix, the upload joined its stalled
    // worker and never returned while the PUT was held.
    let r = finished.recv_timeout(Duration::from_secs(60)).expect("the upload waited for a stalled PUT");
    assert_eq!(r, Err((UploadErrorKind::StorageStatus, true)));
    assert!(s.lock().unwrap().finalizes.is_empty());
    let _ = release.send(()); // the detached worker ends; its answer goes nowhere
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn blocking_cancel_returns_without_waiting_for_a_stalled_put() {
    let (s, t, rt) = setup(8);
    let (stall, release, _) = StallsOnePut::new(t, "/part/00001");
    let client = BlockingClient::new(config(), stall, rt, "test");
    let token = CancelToken::new();
    let cancel = token.clone();
    let options = UploadOptions::new().max_concurrency(2).cancel_token(token).on_event(move |e| {
        if matches!(e, UploadEvent::Progress { done, .. } if *done >= 8) {
            cancel.cancel(); // part 2 is stored; part 1 hangs
        }
    });
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(client.upload_file(data(16), options).map(|_| ()).map_err(|e| e.kind()));
    });
    let r = finished.recv_timeout(Duration::from_secs(60)).expect("the upload waited for a stalled PUT");
    assert_eq!(r, Err(UploadErrorKind::Cancelled));
    assert!(s.lock().unwrap().finalizes.is_empty());
    let _ = release.send(());
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn async_a_terminal_failure_drops_the_stalled_put() {
    let (s, t, rt) = setup(8);
    // Part 1's PUT hangs (it is sent first); part 2 is refused for good.
    s.lock().unwrap().storage_status =
        Some(Box::new(|path, _| (path == "/part/00002").then_some((400, "x-test", "refused"))));
    let (stall, _release, _) = StallsOnePut::new(t, "/part/00001");
    let client = AsyncClient::new(config(), stall.clone(), rt, "test");
    let e = block_on(client.upload_file(data(16), UploadOptions::new().max_concurrency(2))).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::StorageStatus);
    let paths: Vec<String> = stall.inner.requests().iter().map(|r| r.uri.path().to_owned()).collect();
    assert!(
        stall.dropped.load(std::sync::atomic::Ordering::SeqCst),
        "the PUT in flight was dropped: {paths:?}"
    );
    assert!(s.lock().unwrap().finalizes.is_empty());
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn blocking_cancel_from_another_thread_ends_an_upload_of_one_part_at_a_time_with_a_stalled_put() {
    let (s, t, rt) = setup(8);
    let (stall, release, entered) = StallsOnePut::new(t, "/part/00001");
    let client = BlockingClient::new(config(), stall.clone(), rt, "test");
    let token = CancelToken::new();
    let options = UploadOptions::new().max_concurrency(1).cancel_token(token.clone());
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(client.upload_file(data(16), options).map(|_| ()).map_err(|e| e.kind()));
    });
    entered.recv_timeout(Duration::from_secs(60)).expect("the PUT was never sent");
    token.cancel();
    let r = finished.recv_timeout(Duration::from_secs(60)).expect("cancel waited for a stalled PUT");
    assert_eq!(r, Err(UploadErrorKind::Cancelled));
    assert!(s.lock().unwrap().finalizes.is_empty());
    let _ = release.send(());
}

/// The create-session body of the upload `t` saw.
fn created(t: &FakeTransport) -> Value {
    let create = t.requests().into_iter().find(|r| r.uri.path() == "/v1/uploads").expect("a session");
    serde_json::from_slice(&create.body).unwrap()
}

/// A manual clock whose blocking jobs ([`hotdata_core::AsyncRuntime::spawn_blocking`]) are
/// counted and run at once, or dropped without running.
#[cfg(not(target_arch = "wasm32"))] // files on disk only
struct CountedJobs {
    clock: Arc<ManualRuntime>,
    jobs: Arc<std::sync::atomic::AtomicUsize>,
    run: bool,
}

#[cfg(not(target_arch = "wasm32"))] // files on disk only
impl hotdata_core::AsyncRuntime for CountedJobs {
    fn now(&self) -> Duration {
        hotdata_core::AsyncRuntime::now(&*self.clock)
    }
    fn wall_clock(&self) -> SystemTime {
        hotdata_core::AsyncRuntime::wall_clock(&*self.clock)
    }
    fn sleep(&self, d: Duration) -> hotdata_core::BoxFuture<'static, ()> {
        hotdata_core::AsyncRuntime::sleep(&*self.clock, d)
    }
    fn spawn_blocking(
        &self,
        job: Box<dyn FnOnce() + Send + 'static>,
    ) -> hotdata_core::BoxFuture<'static, ()> {
        self.jobs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.run {
            job();
        }
        Box::pin(std::future::ready(()))
    }
}

/// An async client over `t` whose runtime counts its blocking jobs (running them, or not).
#[cfg(not(target_arch = "wasm32"))]
fn counted(t: &Arc<FakeTransport>, run: bool) -> (AsyncClient, Arc<std::sync::atomic::AtomicUsize>) {
    let jobs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rt = CountedJobs { clock: ManualRuntime::new(SystemTime::UNIX_EPOCH), jobs: jobs.clone(), run };
    (AsyncClient::new(config(), t.clone(), Arc::new(rt), "test"), jobs)
}

/// A file in a fresh directory of its own (removed with [`remove_parent`]).
#[cfg(not(target_arch = "wasm32"))]
fn temp_file(test: &str, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hotdata-upload-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[cfg(not(target_arch = "wasm32"))]
fn remove_parent(path: &std::path::Path) {
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// The async client takes a path as `&str` with no backend type: the file is opened and
/// each part read through the runtime's blocking hook (never on the executor itself), and
/// the session carries the file's name and the content type its extension implies.
#[test]
#[cfg(not(target_arch = "wasm32"))] // files on disk: wasm32-unknown-unknown has no filesystem
fn async_path_as_str_is_read_through_the_runtime_and_sends_its_name_and_type() {
    let path = temp_file("async-path", "events.parquet", &data(40));
    let (s, t, _) = setup(16);
    let (client, jobs) = counted(&t, true);
    let r = block_on(client.upload_file(path.to_str().unwrap(), UploadOptions::new()));
    r.unwrap();
    assert_eq!(reassembled(&s), data(40));
    let body = created(&t);
    assert_eq!(body["filename"], json!("events.parquet"));
    assert_eq!(body["content_type"], json!("application/vnd.apache.parquet"));
    let jobs = jobs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(jobs >= 4, "the open and each of the 3 parts went through spawn_blocking: {jobs} jobs");
    assert_storage_isolated(&t);

    // Resume takes the path in the same forms (here a `String`): nothing is left to send but
    // finalize, refused the first time.
    let (s, t, _) = setup(16);
    s.lock().unwrap().finalize_status = Some(400);
    let (client, _) = counted(&t, true);
    let e = block_on(client.upload_file(path.as_path(), UploadOptions::new())).unwrap_err();
    s.lock().unwrap().finalize_status = None;
    let state = e.into_resume_state().expect("a refused finalize resumes");
    block_on(client.resume_upload(state, path.to_str().unwrap().to_owned(), UploadOptions::new())).unwrap();
    assert_eq!(s.lock().unwrap().finalizes.len(), 2);
    remove_parent(&path);
}

/// The caller's file name and content type win over the path's, on both clients; an unknown
/// extension sends none.
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn a_paths_name_and_type_give_way_to_the_options_and_an_unknown_extension_sends_no_type() {
    let csv = temp_file("path-options", "events.csv", &data(10));
    let bin = csv.with_file_name("events.bin");
    std::fs::write(&bin, data(10)).unwrap();
    let explicit = || UploadOptions::new().filename("x.json").content_type("application/json");

    let (_, t, rt) = setup(0);
    blocking(&t, &rt).upload_file(csv.to_str().unwrap(), explicit()).unwrap();
    assert_eq!(
        (created(&t)["filename"].clone(), created(&t)["content_type"].clone()),
        (json!("x.json"), json!("application/json"))
    );
    let (_, t, rt) = setup(0);
    blocking(&t, &rt).upload_file(bin.to_str().unwrap(), UploadOptions::new()).unwrap();
    assert_eq!(created(&t)["filename"], json!("events.bin"));
    assert_eq!(created(&t).get("content_type"), None, "no content type is sent at all");

    let (_, t, _) = setup(0);
    let (client, _) = counted(&t, true);
    block_on(client.upload_file(csv.to_str().unwrap(), explicit())).unwrap();
    assert_eq!(
        (created(&t)["filename"].clone(), created(&t)["content_type"].clone()),
        (json!("x.json"), json!("application/json"))
    );
    let (_, t, _) = setup(0);
    let (client, _) = counted(&t, true);
    block_on(client.upload_file(bin.to_str().unwrap(), UploadOptions::new())).unwrap();
    assert_eq!(created(&t)["filename"], json!("events.bin"));
    assert_eq!(created(&t).get("content_type"), None, "no content type is sent at all");
    remove_parent(&csv);
}

/// A path that cannot be opened is a source error naming it, before anything is sent; a
/// runtime that drops the blocking job instead of running it fails the upload the same way
/// (no panic, no hang).
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn async_path_that_cannot_be_read_is_a_source_error_naming_it() {
    let missing =
        std::env::temp_dir().join(format!("hotdata-upload-missing-{}", std::process::id())).join("x.csv");
    let (_, t, _) = setup(16);
    let (client, _) = counted(&t, true);
    let e = block_on(client.upload_file(missing.to_str().unwrap(), UploadOptions::new())).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::SourceIo);
    assert!(e.to_string().contains(missing.to_str().unwrap()), "{e}");
    let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
    assert_eq!(io.map(std::io::Error::kind), Some(std::io::ErrorKind::NotFound));
    assert!(t.requests().is_empty(), "nothing sent");

    let path = temp_file("dropped-job", "events.csv", &data(40));
    let (_, t, _) = setup(16);
    let (client, jobs) = counted(&t, false);
    let e = block_on(client.upload_file(path.as_path(), UploadOptions::new())).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::SourceIo);
    assert!(e.to_string().contains("events.csv") && e.to_string().contains("did not finish"), "{e}");
    assert_eq!(jobs.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(t.requests().is_empty(), "nothing sent");
    remove_parent(&path);
}

/// Without a presigning server, the legacy fallback sends a path's content type (the one its
/// session would have carried) on both clients.
#[test]
#[cfg(not(target_arch = "wasm32"))]
fn the_legacy_fallback_sends_a_paths_content_type() {
    let path = temp_file("legacy-path", "rows.ndjson", &data(30));
    let (s, t, rt) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    blocking(&t, &rt)
        .upload_file(path.to_str().unwrap(), UploadOptions::new().legacy_fallback(true))
        .unwrap();
    let legacy = t.requests().into_iter().find(|r| r.uri.path() == "/v1/files").unwrap();
    assert_eq!(legacy.headers["content-type"], "application/x-ndjson");

    let (s, t, _) = setup(0);
    s.lock().unwrap().create_status = Some(501);
    let (client, _) = counted(&t, true);
    block_on(client.upload_file(path.to_str().unwrap(), UploadOptions::new().legacy_fallback(true))).unwrap();
    assert_eq!(s.lock().unwrap().stored["/v1/files"].to_vec(), data(30));
    let legacy = t.requests().into_iter().find(|r| r.uri.path() == "/v1/files").unwrap();
    assert_eq!(legacy.headers["content-type"], "application/x-ndjson");
    remove_parent(&path);
}

/// A source read by range (a browser `File`) that names itself sends its name and, when it
/// has no type of its own, the one its name implies; the options still win.
#[test]
fn a_ranged_source_sends_its_file_name_and_type() {
    struct Named(Ranges, Option<&'static str>);
    impl AsyncRangeSource for Named {
        fn len(&self) -> u64 {
            self.0.len()
        }
        fn read_range(&self, offset: u64, len: u64) -> hotdata_core::BoxFuture<'_, std::io::Result<Bytes>> {
            self.0.read_range(offset, len)
        }
        fn file_name(&self) -> Option<String> {
            Some("events.csv".into())
        }
        fn content_type(&self) -> Option<String> {
            self.1.map(str::to_owned)
        }
    }
    for (own, options, expected) in [
        (None, UploadOptions::new(), ("events.csv", "text/csv")),
        (Some("application/octet-stream"), UploadOptions::new(), ("events.csv", "application/octet-stream")),
        (None, UploadOptions::new().filename("y.parquet").content_type("x/y"), ("y.parquet", "x/y")),
    ] {
        let (_, t, rt) = setup(0);
        let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
        let source = Named(Ranges::new(data(20)).0, own);
        block_on(client.upload_file(AsyncUploadSource::ranged(source), options)).unwrap();
        let body = created(&t);
        assert_eq!(
            (body["filename"].clone(), body["content_type"].clone()),
            (json!(expected.0), json!(expected.1))
        );
    }
}

/// Bytes in every form go in through `Into`, on both clients, with no name or type.
#[test]
fn bytes_in_every_form_are_a_source_on_both_clients() {
    static CSV: &[u8] = b"a,b\n1,2\n";
    let (s, t, rt) = setup(0);
    let c = blocking(&t, &rt);
    c.upload_file(CSV, UploadOptions::new()).unwrap();
    c.upload_file(b"a,b\n", UploadOptions::new()).unwrap();
    c.upload_file(Bytes::from_static(CSV), UploadOptions::new()).unwrap();
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    block_on(client.upload_file(CSV, UploadOptions::new())).unwrap();
    block_on(client.upload_file(b"a,b\n", UploadOptions::new())).unwrap();
    block_on(client.upload_file(data(5), UploadOptions::new())).unwrap();
    assert_eq!(s.lock().unwrap().finalizes.len(), 6);
    for r in t.requests().into_iter().filter(|r| r.uri.path() == "/v1/uploads") {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!((body.get("filename"), body.get("content_type")), (None, None));
    }
}

/// In the browser there are no files: a path is a source error saying what to upload
/// instead, on both clients, before anything is sent.
#[test]
#[cfg(target_arch = "wasm32")]
fn a_path_in_the_browser_is_a_source_error_saying_so() {
    let (_, t, rt) = setup(0);
    let client = AsyncClient::new(config(), t.clone(), rt.clone(), "test");
    let e = block_on(client.upload_file("events.csv", UploadOptions::new())).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::SourceIo);
    assert!(e.to_string().contains("events.csv") && e.to_string().contains("BlobSource"), "{e}");
    let e = blocking(&t, &rt).upload_file("events.csv", UploadOptions::new()).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::SourceIo);
    assert!(t.requests().is_empty());
}
