//! `upload_file` over ureq against the emulator: the sizes around the single-PUT threshold,
//! a multipart upload, the emulator's storage faults, header isolation at storage, finalize
//! called once, and the legacy fallback when presigning is off.

use std::time::Duration;

use hotdata_core::upload::{RoundPolicy, UploadErrorKind, UploadOptions};
use hotdata_core::{BlockingClient, Config};
use hotdata_emulator::{Emulator, EmulatorBuilder, EmulatorHandle, Fault, FaultRule, MIB, Target};

fn start(builder: EmulatorBuilder) -> (EmulatorHandle, BlockingClient) {
    let emulator = builder.start().expect("emulator");
    let config = Config::new(emulator.api_key())
        .with_workspace_id(emulator.workspace_id())
        .with_base_url(emulator.base_url());
    (emulator, hotdata_ureq::client(config))
}

fn data(n: u64) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Fast rounds, so that faults healing in a later round do not wait 2 s.
fn options() -> UploadOptions {
    UploadOptions::new().rounds(RoundPolicy::new(3, Duration::from_millis(50)))
}

/// Storage saw only `Content-Length` (plus `Host` and the framing); finalize ran once.
fn check_requests(emulator: &EmulatorHandle) {
    let requests = emulator.requests();
    let puts: Vec<_> = requests.iter().filter(|r| r.operation == "storage_put").collect();
    assert!(!puts.is_empty());
    for r in puts {
        assert!(!r.had_authorization, "{r:?}");
        assert_eq!(r.workspace_id, None);
        assert_eq!(r.header("content-length"), Some(r.body_len.to_string().as_str()), "{r:?}");
        for forbidden in ["user-agent", "accept-encoding", "content-type", "cookie", "transfer-encoding"] {
            assert_eq!(r.header(forbidden), None, "{forbidden} reached storage: {r:?}");
        }
    }
    let finalizes = requests.iter().filter(|r| r.operation == "finalize_upload_handler").count();
    assert_eq!(finalizes, 1);
}

fn get_object(emulator: &EmulatorHandle) -> Vec<u8> {
    let put = emulator.requests().into_iter().find(|r| r.operation == "storage_put").unwrap();
    let url = format!("{}{}", emulator.base_url().trim_end_matches('/'), put.uri);
    let mut body = ureq::get(&url).call().expect("GET object").into_body();
    body.with_config().limit(64 * MIB).read_to_vec().unwrap()
}

#[test]
fn sizes_around_the_single_put_threshold() {
    for size in [0, 1, 8 * MIB, 8 * MIB + 1] {
        let (emulator, client) = start(Emulator::builder());
        let done = client.upload_file(data(size), options()).unwrap_or_else(|e| panic!("{size}: {e:?}"));
        assert_eq!(done.size_bytes as u64, size);
        check_requests(&emulator);
        let puts = emulator.requests().iter().filter(|r| r.operation == "storage_put").count();
        if size <= 8 * MIB {
            assert_eq!(puts, 1);
            assert_eq!(get_object(&emulator), data(size), "{size}: byte-identical");
        } else {
            assert_eq!(puts, 2);
        }
        let object = emulator.uploaded_object(&done.upload_id).expect("the finalized object");
        assert!(object == data(size), "{size}: the assembled object is byte-identical");
    }
}

#[test]
fn a_multipart_upload_from_a_file() {
    let (emulator, client) = start(Emulator::builder().min_part_size(MIB));
    let path = std::env::temp_dir().join(format!("hotdata-ureq-upload-{}.bin", std::process::id()));
    std::fs::write(&path, data(9 * MIB + 3)).unwrap();
    let r = client.upload_file(path.as_path(), options().part_size(2 * MIB).max_concurrency(4));
    std::fs::remove_file(&path).unwrap();
    let done = r.unwrap();
    assert_eq!(done.size_bytes as u64, 9 * MIB + 3);
    assert!(emulator.uploaded_object(&done.upload_id).unwrap() == data(9 * MIB + 3), "byte-identical");
    check_requests(&emulator);
    let requests = emulator.requests();
    assert_eq!(requests.iter().filter(|r| r.operation == "storage_put").count(), 5);
    assert_eq!(requests.iter().filter(|r| r.operation == "mint_upload_parts_handler").count(), 5);
}

#[test]
fn storage_faults_heal_or_fail_as_they_should() {
    let heal = [
        FaultRule::storage_part_fails(2, 503, 1),
        FaultRule::new(Target::StoragePart(1), Fault::ExpiredUrl),
        FaultRule::new(Target::StoragePart(2), Fault::MissingEtag),
        FaultRule::new(Target::StoragePart(3), Fault::Reset),
        FaultRule::storage_part_fails(1, 429, 2),
    ];
    for rule in heal {
        let (emulator, client) = start(Emulator::builder().min_part_size(MIB).fault(rule.clone()));
        let done = client.upload_file(data(9 * MIB), options().part_size(3 * MIB));
        let done = done.unwrap_or_else(|e| panic!("{rule:?}: {e:?}"));
        assert_eq!(done.size_bytes as u64, 9 * MIB);
        assert!(
            emulator.uploaded_object(&done.upload_id).unwrap() == data(9 * MIB),
            "{rule:?}: byte-identical"
        );
        check_requests(&emulator);
    }
    let (emulator, client) =
        start(Emulator::builder().min_part_size(MIB).fault(FaultRule::storage_part_fails(2, 400, 1)));
    let e = client.upload_file(data(9 * MIB), options().part_size(3 * MIB).max_concurrency(1)).unwrap_err();
    assert_eq!(e.kind(), UploadErrorKind::StorageStatus);
    assert_eq!(e.part_number(), Some(2));
    let requests = emulator.requests();
    assert_eq!(requests.iter().filter(|r| r.operation == "finalize_upload_handler").count(), 0);
    assert_eq!(requests.iter().filter(|r| r.operation == "storage_put").count(), 2, "400 is not retried");
}

#[test]
fn without_presigning_the_legacy_endpoint_takes_the_stream() {
    let (emulator, client) = start(Emulator::builder().presign(false));
    let e = client.upload_file(data(1000), options()).unwrap_err();
    assert!(e.is_presign_unsupported(), "{e:?}");
    let done = client.upload_file(data(1000), options().legacy_fallback(true)).unwrap();
    assert_eq!(done.size_bytes, 1000);
    let legacy = emulator.requests().into_iter().find(|r| r.operation == "upload_file").unwrap();
    assert_eq!(legacy.body_len, 1000);
    let r = client
        .upload_stream(hotdata_core::upload::UploadSource::reader(std::io::Cursor::new(data(70_000))))
        .unwrap();
    assert_eq!(r.size_bytes, 70_000);
}
