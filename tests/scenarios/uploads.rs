// `upload_file` against the emulator, written once and run on every backend (natively:
// tests/conformance/tests/uploads.rs; in headless Chromium: hotdata-wasm/tests/scenarios.rs):
// the sizes around the single-PUT threshold, a streamed multipart upload of unknown length,
// the emulator's storage faults, header isolation at storage, finalize called once,
// byte-granular progress, the legacy fallback when presigning is off, bytes in every form;
// natively only, a multipart upload from a file and the source forms of paths (a page has
// no file system), and, against a scripted local server, what each transport puts on the
// wire for a storage PUT and for a streaming body.
//
// Rounds pause 50 ms (not 2 s), so faults that heal in a later round do not wait.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
#[cfg(not(target_arch = "wasm32"))]
use hotdata_conformance::server::{Reply, TestServer};
use hotdata_core::Config;
#[cfg(not(target_arch = "wasm32"))]
#[allow(unused_imports)] // each trait serves one half of `both!`
use hotdata_core::{AsyncTransport, BlockingTransport, RequestBody, SendOptions, TransportErrorKind};
use hotdata_core::upload::{ProgressHandle, RoundPolicy, UploadErrorKind, UploadEvent, UploadOptions};
use hotdata_emulator::{Fault, FaultRule, MIB, RequestRecord, Settings, Target};

/// The `Progress` events of an upload, `(done, total)`, as the callback saw them.
type ProgressLog = Arc<Mutex<Vec<(u64, Option<u64>)>>>;

fn config(emulator: &Emu) -> Config {
    Config::new(emulator.api_key())
        .with_workspace_id(emulator.workspace_id())
        .with_base_url(emulator.base_url())
}

fn data(n: u64) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Fast rounds, so that faults healing in a later round do not wait 2 s.
fn options() -> UploadOptions {
    UploadOptions::new().rounds(RoundPolicy::new(3, Duration::from_millis(50)))
}

/// How many of `records` went to `operation`.
fn count(records: &[RequestRecord], operation: &str) -> usize {
    records.iter().filter(|r| r.operation == operation).count()
}

/// Storage saw only `Content-Length` (plus `Host`, reqwest's `Accept` and the framing): no
/// `Authorization`, workspace header, user agent, `Accept-Encoding`, `Content-Type`, cookie
/// or `Transfer-Encoding`, and a `Content-Length` equal to the body; finalize ran once.
/// (In the browser, Chromium itself adds `User-Agent` and `Accept-Encoding` to every
/// request, which no page can prevent: the rest holds there too.)
fn check_requests(backend: &str, requests: &[RequestRecord]) {
    let puts: Vec<_> = requests.iter().filter(|r| r.operation == "storage_put").collect();
    assert!(!puts.is_empty(), "{backend}");
    let browser_adds: &[&str] = if backend == "browser" { &["user-agent", "accept-encoding"] } else { &[] };
    for r in puts {
        assert!(!r.had_authorization, "{backend}: {r:?}");
        assert_eq!(r.workspace_id, None, "{backend}");
        assert_eq!(r.header("content-length"), Some(r.body_len.to_string().as_str()), "{backend}: {r:?}");
        for forbidden in ["user-agent", "accept-encoding", "content-type", "cookie", "transfer-encoding"] {
            if !browser_adds.contains(&forbidden) {
                assert_eq!(r.header(forbidden), None, "{backend}: {forbidden} reached storage: {r:?}");
            }
        }
    }
    assert_eq!(count(requests, "finalize_upload_handler"), 1, "{backend}: finalize once");
}

/// The storage URL of the first PUT (presigned, so a plain GET reads the object back).
fn first_put_url(emulator: &Emu, requests: &[RequestRecord]) -> String {
    let put = requests.iter().find(|r| r.operation == "storage_put").expect("a storage PUT");
    format!("{}{}", emulator.base_url().trim_end_matches('/'), put.uri)
}

scenario! {
    fn sizes_around_the_single_put_threshold(backend) {
        for size in [0, 1, 8 * MIB, 8 * MIB + 1] {
            let emulator = start!(Settings::default());
            let c = client!(config(&emulator));
            let done = wait!(c.upload_file(data(size), options()))
                .unwrap_or_else(|e| panic!("{backend} {size}: {e:?}"));
            assert_eq!(done.size_bytes as u64, size, "{backend}");
            check_requests(backend, &ctl!(emulator.requests()));
            let puts = count(&ctl!(emulator.requests()), "storage_put");
            if size <= 8 * MIB {
                assert_eq!(puts, 1, "{backend} {size}: one PUT");
                let object = storage_get!(first_put_url(&emulator, &ctl!(emulator.requests())));
                assert!(object == data(size), "{backend} {size}: the stored object is byte-identical");
            } else {
                assert_eq!(puts, 2, "{backend} {size}: two parts");
            }
            let object = ctl!(emulator.uploaded_object(&done.upload_id)).expect("the finalized object");
            assert!(object == data(size), "{backend} {size}: the assembled object is byte-identical");
        }
    }
}

scenario! {
    native_only("a file on disk (UploadSource::path): a page has no file system; the browser uploads Blobs in parts (hotdata-wasm/tests/browser.rs, uploads_from_bytes_and_blobs_survive_storage_faults)")
    fn a_multipart_upload_from_a_file(backend) {
        let emulator = start!(Settings::default().min_part_size(MIB));
        let c = client!(config(&emulator));
        let path = std::env::temp_dir()
            .join(format!("hotdata-conformance-upload-{backend}-{}.bin", std::process::id()));
        std::fs::write(&path, data(9 * MIB + 3)).unwrap();
        let r =
            wait!(c.upload_file(file_source!(path.clone()), options().part_size(2 * MIB).max_concurrency(4)));
        std::fs::remove_file(&path).unwrap();
        let done = r.unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        assert_eq!(done.size_bytes as u64, 9 * MIB + 3, "{backend}");
        let object = ctl!(emulator.uploaded_object(&done.upload_id)).unwrap();
        assert!(object == data(9 * MIB + 3), "{backend}: byte-identical");
        check_requests(backend, &ctl!(emulator.requests()));
        assert_eq!(count(&ctl!(emulator.requests()), "storage_put"), 5, "{backend}");
        assert_eq!(count(&ctl!(emulator.requests()), "mint_upload_parts_handler"), 5, "{backend}");
    }
}

scenario! {
    fn a_streamed_multipart_upload_of_unknown_length(backend) {
        let emulator = start!(Settings::default().min_part_size(MIB));
        let c = client!(config(&emulator));
        let source = stream_source!(data(5 * MIB + 3));
        let done = wait!(c.upload_file(source, options().part_size(MIB).max_concurrency(4)))
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        assert_eq!(done.size_bytes as u64, 5 * MIB + 3, "{backend}");
        let object = ctl!(emulator.uploaded_object(&done.upload_id)).unwrap();
        assert!(object == data(5 * MIB + 3), "{backend}: byte-identical");
        check_requests(backend, &ctl!(emulator.requests()));
        // A streaming session's part size covers 16 GiB in 10,000 parts (about 1.7 MiB here).
        let puts = count(&ctl!(emulator.requests()), "storage_put");
        assert_eq!(puts, 4, "{backend}");
        assert_eq!(count(&ctl!(emulator.requests()), "mint_upload_parts_handler"), puts, "{backend}: one mint per part");
    }
}

scenario! {
    fn storage_faults_that_may_heal_are_healed(backend) {
        let heal = [
            FaultRule::storage_part_fails(2, 503, 1),
            FaultRule::new(Target::StoragePart(1), Fault::ExpiredUrl),
            FaultRule::new(Target::StoragePart(2), Fault::MissingEtag),
            FaultRule::new(Target::StoragePart(3), Fault::Reset),
            FaultRule::storage_part_fails(1, 429, 2),
        ];
        for rule in heal {
            let emulator = start!(Settings::default().min_part_size(MIB).fault(rule.clone()));
            let c = client!(config(&emulator));
            let uploaded = wait!(c.upload_file(data(9 * MIB), options().part_size(3 * MIB)));
            // A page cannot tell an `ETag` storage did not send from one its CORS rules hide:
            // the browser reports the bucket's configuration at once (`EtagNotExposed`)
            // rather than retrying a fault that would not heal there.
            if backend == "browser" && matches!(rule.fault, Fault::MissingEtag) {
                let e = uploaded.expect_err("an ETag the page cannot read");
                assert_eq!(e.kind(), UploadErrorKind::EtagNotExposed, "{backend}: {e:?}");
                continue;
            }
            let done = uploaded.unwrap_or_else(|e| panic!("{backend} {rule:?}: {e:?}"));
            assert_eq!(done.size_bytes as u64, 9 * MIB, "{backend} {rule:?}");
            let object = ctl!(emulator.uploaded_object(&done.upload_id)).unwrap();
            assert!(object == data(9 * MIB), "{backend} {rule:?}: byte-identical");
            check_requests(backend, &ctl!(emulator.requests()));
        }
    }
}

scenario! {
    fn a_storage_400_fails_at_once_without_finalize(backend) {
        let emulator = start!(Settings::default().min_part_size(MIB).fault(FaultRule::storage_part_fails(2, 400, 1)));
        let c = client!(config(&emulator));
        let e = wait!(c.upload_file(data(9 * MIB), options().part_size(3 * MIB).max_concurrency(1)))
            .expect_err("a 400 at storage does not heal");
        assert_eq!(e.kind(), UploadErrorKind::StorageStatus, "{backend}: {e:?}");
        assert_eq!(e.part_number(), Some(2), "{backend}");
        assert_eq!(count(&ctl!(emulator.requests()), "finalize_upload_handler"), 0, "{backend}: no finalize");
        assert_eq!(count(&ctl!(emulator.requests()), "storage_put"), 2, "{backend}: 400 is not retried");
    }
}

scenario! {
    fn progress_is_byte_granular_within_a_part_and_monotonic(backend) {
        // (size, part size, PUTs): one 8 MiB single PUT; 9 MiB in three 3 MiB parts.
        for (size, part, puts) in [(8 * MIB, 8 * MIB, 1), (9 * MIB, 3 * MIB, 3)] {
            let emulator = start!(Settings::default().min_part_size(MIB));
            // Over loopback, on a single-threaded runtime too: the part body yields between
            // its chunks, so the upload sees the bytes go out.
            let c = client!(config(&emulator));
            let progress: ProgressLog = Arc::default();
            let seen = progress.clone();
            let handle = ProgressHandle::new();
            let opts =
                options().part_size(part).progress_handle(handle.clone()).on_event(move |e: &UploadEvent| {
                    if let UploadEvent::Progress { done, total } = e {
                        seen.lock().unwrap().push((*done, *total));
                    }
                });
            let done =
                wait!(c.upload_file(data(size), opts)).unwrap_or_else(|e| panic!("{backend} {size}: {e:?}"));
            assert_eq!(done.size_bytes as u64, size, "{backend} {size}");
            assert_eq!(count(&ctl!(emulator.requests()), "storage_put"), puts, "{backend} {size}: the session shape");

            let progress = progress.lock().unwrap().clone();
            let what = format!("{backend} {size}: {} Progress events", progress.len());
            assert!(progress.iter().all(|(_, total)| *total == Some(size)), "{what}: the total is known");
            assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "{what}: increasing: {progress:?}");
            assert_eq!(progress.last().map(|p| p.0), Some(size), "{what}: ends at the total");
            // Byte granularity: some value lies strictly inside a part, not on a part boundary
            // (nor at 0 or at the total). Not in the browser: fetch reports no upload
            // progress, so a part counts when its PUT is answered.
            if backend != "browser" {
                let within_a_part = progress.iter().filter(|(done, _)| done % part != 0).count();
                assert!(within_a_part > 0, "{what}: progress moved only by whole parts: {progress:?}");
                let step = progress.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0);
                assert!(step <= 2 * MIB, "{what}: a step of {step} bytes: {progress:?}");
            }

            assert_eq!(handle.done(), size, "{what}: the handle ends at the total");
            assert_eq!(handle.total(), Some(size), "{what}");
        }
    }
}

scenario! {
    fn without_presigning_the_legacy_endpoint_takes_the_stream(backend) {
        let emulator = start!(Settings::default().presign(false));
        let c = client!(config(&emulator));
        let e = wait!(c.upload_file(data(1000), options())).expect_err("presigning is off");
        assert!(e.is_presign_unsupported(), "{backend}: {e:?}");
        let fallback = wait!(c.upload_file(data(1000), options().legacy_fallback(true)));
        // The legacy endpoint is behind the `legacy` feature, which the browser tests leave
        // off (tests/run builds them with `arrow`): there the fallback is not taken.
        if backend == "browser" {
            let e = fallback.expect_err("no legacy endpoint in this build");
            assert!(e.is_presign_unsupported(), "{backend}: {e:?}");
            let legacy = ctl!(emulator.requests()).into_iter().filter(|r| r.operation == "upload_file").count();
            assert_eq!(legacy, 0, "{backend}");
        } else {
            let done = fallback.unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert_eq!(done.size_bytes, 1000, "{backend}");
            let legacy =
                ctl!(emulator.requests()).into_iter().find(|r| r.operation == "upload_file").unwrap();
            assert_eq!(legacy.body_len, 1000, "{backend}");
        }
        // A stream straight to the legacy endpoint: natively only (the browser client has no
        // `upload_stream`: the fetch transport refuses a streamed request body).
        #[cfg(not(target_arch = "wasm32"))]
        {
            let r = wait!(c.upload_stream(stream_source!(data(300_000))))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert_eq!(r.size_bytes, 300_000, "{backend}");
            let streamed =
                ctl!(emulator.requests()).into_iter().rfind(|r| r.operation == "upload_file").unwrap();
            assert_eq!(streamed.body_len, 300_000, "{backend}: the whole stream");
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// A fresh directory for the files of test `test` on `backend`.
fn temp_dir(test: &str, backend: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hotdata-conformance-{test}-{backend}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(not(target_arch = "wasm32"))]
/// The content type and file name upload `id` was created with.
fn metadata(emulator: &Emu, id: &str) -> (Option<String>, Option<String>) {
    let m = emulator.upload_metadata(id).expect("the upload exists");
    (m.content_type, m.filename)
}

scenario! {
    /// A path as `&str` is a source on both clients (no backend type, no extra step): the
    /// session carries the file's name and the content type its extension implies; an unknown
    /// extension, or none, sends no content type.
    native_only("a file path as the source: a page has no file system (a path is refused there, checked in hotdata-wasm/tests/browser.rs); a File names its type the same way (browser.rs)")
    fn a_path_given_as_str_uploads_with_its_file_name_and_content_type(backend) {
        let emulator = start!(Settings::default());
        let c = client!(config(&emulator));
        let dir = temp_dir("path-str", backend);
        for (name, content_type) in [
            ("events.csv", Some("text/csv")),
            ("events.parquet", Some("application/vnd.apache.parquet")),
            ("Rows.NDJSON", Some("application/x-ndjson")),
            ("events.bin", None),
            ("README", None),
        ] {
            let file = dir.join(name);
            std::fs::write(&file, data(1000)).unwrap();
            let path: &str = file.to_str().unwrap();
            let done =
                wait!(c.upload_file(path, options())).unwrap_or_else(|e| panic!("{backend} {name}: {e:?}"));
            let expected = (content_type.map(str::to_owned), Some(name.to_owned()));
            assert_eq!(metadata(&emulator, &done.upload_id), expected, "{backend} {name}");
            assert_eq!(done.content_type.as_deref(), content_type, "{backend} {name}: finalize echoes it");
            assert!(ctl!(emulator.uploaded_object(&done.upload_id)).unwrap() == data(1000), "{backend} {name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

scenario! {
    /// `String`, `&Path`, `PathBuf` and `&PathBuf` are paths too, with the same defaults.
    native_only("file paths (String, &Path, PathBuf) as sources: a page has no file system")
    fn every_path_form_is_a_source(backend) {
        let emulator = start!(Settings::default());
        let c = client!(config(&emulator));
        let dir = temp_dir("path-forms", backend);
        let file = dir.join("events.json");
        std::fs::write(&file, data(500)).unwrap();
        let ids = [
            wait!(c.upload_file(file.to_str().unwrap().to_owned(), options())),
            wait!(c.upload_file(file.as_path(), options())),
            wait!(c.upload_file(file.clone(), options())),
            wait!(c.upload_file(&file, options())),
        ]
        .map(|r| r.unwrap_or_else(|e| panic!("{backend}: {e:?}")).upload_id);
        std::fs::remove_dir_all(&dir).unwrap();
        for id in ids {
            let expected = (Some("application/json".to_owned()), Some("events.json".to_owned()));
            assert_eq!(metadata(&emulator, &id), expected, "{backend}");
            assert!(ctl!(emulator.uploaded_object(&id)).unwrap() == data(500), "{backend}");
        }
    }
}

scenario! {
    /// The caller's file name and content type win over the path's; one set alone leaves the
    /// other to the path.
    native_only("a file path's name and type against the options: a page has no file system (a File's name and type against the options: hotdata-wasm/tests/browser.rs)")
    fn explicit_options_win_over_the_paths_name_and_type(backend) {
        let emulator = start!(Settings::default());
        let c = client!(config(&emulator));
        let dir = temp_dir("path-options", backend);
        let file = dir.join("events.csv");
        std::fs::write(&file, data(300)).unwrap();
        let path = file.to_str().unwrap();
        let both_set = options().filename("renamed.parquet").content_type("application/vnd.apache.parquet");
        let done = wait!(c.upload_file(path, both_set)).unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        let expected =
            (Some("application/vnd.apache.parquet".to_owned()), Some("renamed.parquet".to_owned()));
        assert_eq!(metadata(&emulator, &done.upload_id), expected, "{backend}");
        let done = wait!(c.upload_file(path, options().content_type("application/octet-stream")))
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        let expected = (Some("application/octet-stream".to_owned()), Some("events.csv".to_owned()));
        assert_eq!(metadata(&emulator, &done.upload_id), expected, "{backend}");
        let done = wait!(c.upload_file(path, options().filename("other.txt")))
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        let expected = (Some("text/csv".to_owned()), Some("other.txt".to_owned()));
        assert_eq!(metadata(&emulator, &done.upload_id), expected, "{backend}: the type is the path's");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

scenario! {
    /// A path that cannot be opened fails before anything is sent, with a source error naming
    /// the path and the I/O error as its source (no panic, on the async client too).
    native_only("a missing file and a directory: a page has no file system")
    fn a_missing_file_is_a_source_error_naming_the_path(backend) {
        let emulator = start!(Settings::default());
        let c = client!(config(&emulator));
        let missing = temp_dir("missing", backend).join("gone.csv");
        let path = missing.to_str().unwrap();
        let e = wait!(c.upload_file(path, options())).expect_err("no such file");
        assert_eq!(e.kind(), UploadErrorKind::SourceIo, "{backend}: {e:?}");
        assert!(e.to_string().contains(path), "{backend}: the error names the path: {e}");
        let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(io.map(std::io::Error::kind), Some(std::io::ErrorKind::NotFound), "{backend}: {e:?}");
        assert!(ctl!(emulator.requests()).is_empty(), "{backend}: nothing was sent");
        let e = wait!(c.upload_file(missing.parent().unwrap(), options())).expect_err("a directory");
        assert_eq!(e.kind(), UploadErrorKind::SourceIo, "{backend}: {e:?}");
        assert!(ctl!(emulator.requests()).is_empty(), "{backend}: nothing was sent for a directory");
        std::fs::remove_dir_all(missing.parent().unwrap()).unwrap();
    }
}

scenario! {
    /// Bytes in memory, as `Vec<u8>`, `Bytes`, `&'static [u8]` or a static byte string, go in
    /// through `Into` on both clients, with no file name or content type.
    fn bytes_in_every_form_are_a_source(backend) {
        static CSV: &[u8] = b"a,b\n1,2\n";
        let emulator = start!(Settings::default());
        let c = client!(config(&emulator));
        let uploads = [
            (wait!(c.upload_file(data(700), options())), data(700)),
            (wait!(c.upload_file(Bytes::from(data(600)), options())), data(600)),
            (wait!(c.upload_file(CSV, options())), CSV.to_vec()),
            (wait!(c.upload_file(b"x,y\n", options())), b"x,y\n".to_vec()),
        ];
        for (done, bytes) in uploads {
            let id = done.unwrap_or_else(|e| panic!("{backend}: {e:?}")).upload_id;
            assert!(ctl!(emulator.uploaded_object(&id)).unwrap() == bytes, "{backend}");
            // The session's metadata is read in process (no control route serves it).
            #[cfg(not(target_arch = "wasm32"))]
            assert_eq!(metadata(&emulator, &id), (None, None), "{backend}");
        }
    }
}

scenario! {
    /// `resume_upload` takes the same forms: a path as `String` continues an upload started
    /// from the path as `&str`, sending only the missing part.
    native_only("resuming from a file path: a page has no file system")
    fn a_path_resumes_from_any_form(backend) {
        let emulator = start!(Settings::default().min_part_size(MIB).fault(FaultRule::storage_part_fails(2, 400, 1)));
        let c = client!(config(&emulator));
        let dir = temp_dir("path-resume", backend);
        let file = dir.join("events.csv");
        std::fs::write(&file, data(9 * MIB)).unwrap();
        let path = file.to_str().unwrap();
        let opts = || options().part_size(3 * MIB).max_concurrency(1);
        let e = wait!(c.upload_file(path, opts())).expect_err("a 400 at storage does not heal");
        let state = e.into_resume_state().expect("a resumable failure");
        let done = wait!(c.resume_upload(state, path.to_owned(), opts()))
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(ctl!(emulator.uploaded_object(&done.upload_id)).unwrap() == data(9 * MIB), "{backend}");
        let expected = (Some("text/csv".to_owned()), Some("events.csv".to_owned()));
        assert_eq!(metadata(&emulator, &done.upload_id), expected, "{backend}");
        assert_eq!(count(&ctl!(emulator.requests()), "storage_put"), 4, "{backend}: part 1 once, part 2 twice, part 3 once");
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn put(url: &str, body: RequestBody, len: Option<usize>) -> http::Request<RequestBody> {
    let mut builder = http::Request::builder().method("PUT").uri(url);
    if let Some(n) = len {
        builder = builder.header("content-length", n);
    }
    builder.body(body).unwrap()
}

#[cfg(not(target_arch = "wasm32"))]
fn send_options() -> SendOptions {
    let mut o = SendOptions::with_timeout(Some(Duration::from_secs(10)));
    o.connect_timeout = Some(Duration::from_secs(30));
    o
}

#[cfg(not(target_arch = "wasm32"))]
fn etag_server() -> TestServer {
    TestServer::start(|_, _| Reply::status(200).header("etag", "\"abc\""))
}

scenario! {
    native_only("a scripted hyper server (hotdata_conformance::server) that sees every header on the wire, which a page cannot start; Chromium adds headers of its own (the emulator's storage checks what the SDK sets, in every upload scenario)")
    fn a_storage_put_carries_only_what_the_core_set(backend) {
        let server = etag_server();
        let transport = transport!(Some(Duration::from_secs(5)));
        let body = RequestBody::Bytes(Bytes::from_static(b"part bytes"));
        let request = put(&format!("{}/part/1?sig=x", server.url()), body, Some(10));
        let response = wait!(transport.send(request, &send_options())).unwrap();
        assert_eq!(response.status(), 200, "{backend}");
        assert_eq!(response.headers()["etag"], "\"abc\"", "{backend}: the ETag byte for byte");
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{backend}");
        assert_eq!(seen[0].target, "/part/1?sig=x", "{backend}");
        assert_eq!(&seen[0].body[..], b"part bytes", "{backend}");
        let mut names: Vec<_> = seen[0].headers.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        // reqwest adds `Accept: */*`; nothing else beyond `Host`.
        let expected: &[&str] = if backend == "reqwest" {
            &["accept", "content-length", "host"]
        } else {
            &["content-length", "host"]
        };
        assert_eq!(names, expected, "{backend}: {:?}", seen[0].headers);
    }
}

scenario! {
    native_only("streaming request bodies on the wire: the fetch transport refuses a streamed body (a ReadableStream body needs HTTP/2 and half duplex), and the framing is seen by a scripted hyper server a page cannot start")
    fn streaming_bodies_are_sent_as_read_chunked_when_the_length_is_unknown(backend) {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let transport = transport!(None);

        let server = etag_server();
        let body = RequestBody::Streaming(streaming_body!(data.clone(), None));
        wait!(transport.send(put(&server.url(), body, None), &send_options())).unwrap();
        let seen = server.seen();
        assert_eq!(seen[0].header("transfer-encoding"), Some("chunked"), "{backend}: {:?}", seen[0].headers);
        assert_eq!(seen[0].header("content-length"), None, "{backend}");
        assert!(seen[0].body == data, "{backend}: the whole body");

        let server = etag_server();
        let body = RequestBody::Streaming(streaming_body!(data.clone(), Some(data.len() as u64)));
        let sent = body.clone();
        wait!(transport.send(put(&server.url(), body, Some(data.len())), &send_options())).unwrap();
        let seen = server.seen();
        assert_eq!(seen[0].header("content-length"), Some(data.len().to_string().as_str()), "{backend}");
        assert_eq!(seen[0].header("transfer-encoding"), None, "{backend}");
        assert!(seen[0].body == data, "{backend}: the whole body");
        let again = wait!(transport.send(put(&server.url(), sent, Some(data.len())), &send_options()))
            .expect_err("a streaming body is sent once");
        assert_eq!(again.kind(), TransportErrorKind::Request, "{backend}: a streaming body is sent once");
        assert_eq!(server.seen().len(), 1, "{backend}: the second send never reached the server");
    }
}
