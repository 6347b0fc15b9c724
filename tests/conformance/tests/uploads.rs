//! `upload_file` on both native backends, written once with `hotdata_conformance::both!`:
//! against the local emulator, the sizes around the single-PUT threshold, a multipart upload
//! from a file, a streamed multipart upload of unknown length, the emulator's storage faults,
//! header isolation at storage, finalize called once, byte-granular progress and the legacy
//! fallback when presigning is off; against a scripted local server, what each transport puts
//! on the wire for a storage PUT and for a streaming body.
//!
//! Rounds pause 50 ms (not 2 s), so faults that heal in a later round do not wait.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hotdata_conformance::both;
use hotdata_conformance::server::{Reply, TestServer};
use hotdata_core::upload::{ProgressHandle, RoundPolicy, UploadErrorKind, UploadEvent, UploadOptions};
#[allow(unused_imports)] // each trait serves one half of `both!`
use hotdata_core::{AsyncTransport, BlockingTransport};
use hotdata_core::{Config, RequestBody, SendOptions, TransportErrorKind};
use hotdata_emulator::{Emulator, EmulatorBuilder, EmulatorHandle, Fault, FaultRule, MIB, Target};

/// The `Progress` events of an upload, `(done, total)`, as the callback saw them.
type ProgressLog = Arc<Mutex<Vec<(u64, Option<u64>)>>>;

fn start(builder: EmulatorBuilder) -> EmulatorHandle {
    builder.start().expect("the emulator starts")
}

fn config(emulator: &EmulatorHandle) -> Config {
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

fn count(emulator: &EmulatorHandle, operation: &str) -> usize {
    emulator.requests().iter().filter(|r| r.operation == operation).count()
}

/// Storage saw only `Content-Length` (plus `Host`, reqwest's `Accept` and the framing): no
/// `Authorization`, workspace header, user agent, `Accept-Encoding`, `Content-Type`, cookie
/// or `Transfer-Encoding`, and a `Content-Length` equal to the body; finalize ran once.
fn check_requests(backend: &str, emulator: &EmulatorHandle) {
    let requests = emulator.requests();
    let puts: Vec<_> = requests.iter().filter(|r| r.operation == "storage_put").collect();
    assert!(!puts.is_empty(), "{backend}");
    for r in puts {
        assert!(!r.had_authorization, "{backend}: {r:?}");
        assert_eq!(r.workspace_id, None, "{backend}");
        assert_eq!(r.header("content-length"), Some(r.body_len.to_string().as_str()), "{backend}: {r:?}");
        for forbidden in ["user-agent", "accept-encoding", "content-type", "cookie", "transfer-encoding"] {
            assert_eq!(r.header(forbidden), None, "{backend}: {forbidden} reached storage: {r:?}");
        }
    }
    assert_eq!(count(emulator, "finalize_upload_handler"), 1, "{backend}: finalize once");
}

/// The storage URL of the first PUT (presigned, so a plain GET reads the object back).
fn first_put_url(emulator: &EmulatorHandle) -> String {
    let put = emulator.requests().into_iter().find(|r| r.operation == "storage_put").expect("a storage PUT");
    format!("{}{}", emulator.base_url().trim_end_matches('/'), put.uri)
}

#[test]
fn sizes_around_the_single_put_threshold() {
    both!(|backend| {
        for size in [0, 1, 8 * MIB, 8 * MIB + 1] {
            let emulator = start(Emulator::builder());
            let c = client!(config(&emulator));
            let done = wait!(c.upload_file(data(size), options()))
                .unwrap_or_else(|e| panic!("{backend} {size}: {e:?}"));
            assert_eq!(done.size_bytes as u64, size, "{backend}");
            check_requests(backend, &emulator);
            let puts = count(&emulator, "storage_put");
            if size <= 8 * MIB {
                assert_eq!(puts, 1, "{backend} {size}: one PUT");
                let object = storage_get!(first_put_url(&emulator));
                assert!(object == data(size), "{backend} {size}: the stored object is byte-identical");
            } else {
                assert_eq!(puts, 2, "{backend} {size}: two parts");
            }
            let object = emulator.uploaded_object(&done.upload_id).expect("the finalized object");
            assert!(object == data(size), "{backend} {size}: the assembled object is byte-identical");
        }
    });
}

#[test]
fn a_multipart_upload_from_a_file() {
    both!(|backend| {
        let emulator = start(Emulator::builder().min_part_size(MIB));
        let c = client!(config(&emulator));
        let path = std::env::temp_dir()
            .join(format!("hotdata-conformance-upload-{backend}-{}.bin", std::process::id()));
        std::fs::write(&path, data(9 * MIB + 3)).unwrap();
        let r =
            wait!(c.upload_file(file_source!(path.clone()), options().part_size(2 * MIB).max_concurrency(4)));
        std::fs::remove_file(&path).unwrap();
        let done = r.unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        assert_eq!(done.size_bytes as u64, 9 * MIB + 3, "{backend}");
        let object = emulator.uploaded_object(&done.upload_id).unwrap();
        assert!(object == data(9 * MIB + 3), "{backend}: byte-identical");
        check_requests(backend, &emulator);
        assert_eq!(count(&emulator, "storage_put"), 5, "{backend}");
        assert_eq!(count(&emulator, "mint_upload_parts_handler"), 5, "{backend}");
    });
}

#[test]
fn a_streamed_multipart_upload_of_unknown_length() {
    both!(|backend| {
        let emulator = start(Emulator::builder().min_part_size(MIB));
        let c = client!(config(&emulator));
        let source = stream_source!(data(5 * MIB + 3));
        let done = wait!(c.upload_file(source, options().part_size(MIB).max_concurrency(4)))
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        assert_eq!(done.size_bytes as u64, 5 * MIB + 3, "{backend}");
        let object = emulator.uploaded_object(&done.upload_id).unwrap();
        assert!(object == data(5 * MIB + 3), "{backend}: byte-identical");
        check_requests(backend, &emulator);
        // A streaming session's part size covers 16 GiB in 10,000 parts (about 1.7 MiB here).
        let puts = count(&emulator, "storage_put");
        assert_eq!(puts, 4, "{backend}");
        assert_eq!(count(&emulator, "mint_upload_parts_handler"), puts, "{backend}: one mint per part");
    });
}

#[test]
fn storage_faults_that_may_heal_are_healed() {
    both!(|backend| {
        let heal = [
            FaultRule::storage_part_fails(2, 503, 1),
            FaultRule::new(Target::StoragePart(1), Fault::ExpiredUrl),
            FaultRule::new(Target::StoragePart(2), Fault::MissingEtag),
            FaultRule::new(Target::StoragePart(3), Fault::Reset),
            FaultRule::storage_part_fails(1, 429, 2),
        ];
        for rule in heal {
            let emulator = start(Emulator::builder().min_part_size(MIB).fault(rule.clone()));
            let c = client!(config(&emulator));
            let done = wait!(c.upload_file(data(9 * MIB), options().part_size(3 * MIB)))
                .unwrap_or_else(|e| panic!("{backend} {rule:?}: {e:?}"));
            assert_eq!(done.size_bytes as u64, 9 * MIB, "{backend} {rule:?}");
            let object = emulator.uploaded_object(&done.upload_id).unwrap();
            assert!(object == data(9 * MIB), "{backend} {rule:?}: byte-identical");
            check_requests(backend, &emulator);
        }
    });
}

#[test]
fn a_storage_400_fails_at_once_without_finalize() {
    both!(|backend| {
        let emulator =
            start(Emulator::builder().min_part_size(MIB).fault(FaultRule::storage_part_fails(2, 400, 1)));
        let c = client!(config(&emulator));
        let e = wait!(c.upload_file(data(9 * MIB), options().part_size(3 * MIB).max_concurrency(1)))
            .expect_err("a 400 at storage does not heal");
        assert_eq!(e.kind(), UploadErrorKind::StorageStatus, "{backend}: {e:?}");
        assert_eq!(e.part_number(), Some(2), "{backend}");
        assert_eq!(count(&emulator, "finalize_upload_handler"), 0, "{backend}: no finalize");
        assert_eq!(count(&emulator, "storage_put"), 2, "{backend}: 400 is not retried");
    });
}

#[test]
fn progress_is_byte_granular_within_a_part_and_monotonic() {
    both!(|backend| {
        // (size, part size, PUTs): one 8 MiB single PUT; 9 MiB in three 3 MiB parts.
        for (size, part, puts) in [(8 * MIB, 8 * MIB, 1), (9 * MIB, 3 * MIB, 3)] {
            let emulator = start(Emulator::builder().min_part_size(MIB));
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
            assert_eq!(count(&emulator, "storage_put"), puts, "{backend} {size}: the session shape");

            let progress = progress.lock().unwrap().clone();
            let what = format!("{backend} {size}: {} Progress events", progress.len());
            assert!(progress.iter().all(|(_, total)| *total == Some(size)), "{what}: the total is known");
            assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "{what}: increasing: {progress:?}");
            assert_eq!(progress.last().map(|p| p.0), Some(size), "{what}: ends at the total");
            // Byte granularity: some value lies strictly inside a part, not on a part boundary
            // (nor at 0 or at the total).
            let within_a_part = progress.iter().filter(|(done, _)| done % part != 0).count();
            assert!(within_a_part > 0, "{what}: progress moved only by whole parts: {progress:?}");
            let step = progress.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0);
            assert!(step <= 2 * MIB, "{what}: a step of {step} bytes: {progress:?}");

            assert_eq!(handle.done(), size, "{what}: the handle ends at the total");
            assert_eq!(handle.total(), Some(size), "{what}");
        }
    });
}

#[test]
fn without_presigning_the_legacy_endpoint_takes_the_stream() {
    both!(|backend| {
        let emulator = start(Emulator::builder().presign(false));
        let c = client!(config(&emulator));
        let e = wait!(c.upload_file(data(1000), options())).expect_err("presigning is off");
        assert!(e.is_presign_unsupported(), "{backend}: {e:?}");
        let done = wait!(c.upload_file(data(1000), options().legacy_fallback(true)))
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        assert_eq!(done.size_bytes, 1000, "{backend}");
        let legacy = emulator.requests().into_iter().find(|r| r.operation == "upload_file").unwrap();
        assert_eq!(legacy.body_len, 1000, "{backend}");
        let r = wait!(c.upload_stream(stream_source!(data(300_000))))
            .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
        assert_eq!(r.size_bytes, 300_000, "{backend}");
        let streamed = emulator.requests().into_iter().rfind(|r| r.operation == "upload_file").unwrap();
        assert_eq!(streamed.body_len, 300_000, "{backend}: the whole stream");
    });
}

fn put(url: &str, body: RequestBody, len: Option<usize>) -> http::Request<RequestBody> {
    let mut builder = http::Request::builder().method("PUT").uri(url);
    if let Some(n) = len {
        builder = builder.header("content-length", n);
    }
    builder.body(body).unwrap()
}

fn send_options() -> SendOptions {
    let mut o = SendOptions::with_timeout(Some(Duration::from_secs(10)));
    o.connect_timeout = Some(Duration::from_secs(30));
    o
}

fn etag_server() -> TestServer {
    TestServer::start(|_, _| Reply::status(200).header("etag", "\"abc\""))
}

#[test]
fn a_storage_put_carries_only_what_the_core_set() {
    both!(|backend| {
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
    });
}

#[test]
fn streaming_bodies_are_sent_as_read_chunked_when_the_length_is_unknown() {
    both!(|backend| {
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
    });
}
