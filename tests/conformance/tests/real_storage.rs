//! Uploads into a real S3 implementation that checks every request's signature: s3s-fs
//! (installed by `tests/run`), behind Hotdata's upload control plane in
//! `tests/storage/control.py`, whose URLs botocore presigns (AWS Signature V4, query
//! string) and whose finalize completes the multipart upload in S3 with the ETags the SDK
//! sends. Our emulator shares our assumptions about storage; this does not: a storage PUT
//! with a header, path or query the signature does not cover, an ETag not kept byte for
//! byte, or parts S3 would not assemble fail here.
//!
//! On both native backends: a single PUT whose URL signs a header the session asks for,
//! eager and minted multipart sessions (from bytes, a file and a stream of unknown length),
//! a wrong signature on a part's URL healed by a fresh URL, and one that never verifies:
//! the error shows no presigned URL and keeps the stored parts for `resume_upload`.
//!
//! Without s3s-fs or boto3 these tests fail (they never pass silently): run `tests/run`, or
//! `cargo install s3s-fs --version 0.14.1 --features binary --locked` and
//! `python3 -m pip install -r tests/storage/requirements.txt`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hotdata_conformance::both;
use hotdata_core::Config;
use hotdata_core::upload::{RoundPolicy, UploadOptions};

const MIB: usize = 1 << 20;

/// The control plane and the S3 server behind it; both stop when this is dropped (the
/// control plane also stops when its standard input closes, or after 10 minutes).
struct Storage {
    child: Child,
    base_url: String,
}

fn s3s_fs() -> PathBuf {
    if let Some(path) = std::env::var_os("HOTDATA_S3S_FS") {
        return path.into();
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(std::env::var_os("CARGO_HOME").map(|h| Path::new(&h).join("bin")))
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin")))
        .map(|dir| dir.join("s3s-fs"))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "s3s-fs is not installed: run tests/run, or \
             `cargo install s3s-fs --version 0.14.1 --features binary --locked`"
        )
    })
}

impl Storage {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../storage/control.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(s3s_fs())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("could not run python3 {}: {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            panic!(
                "the storage control plane did not start (is boto3 installed? \
                 `python3 -m pip install -r tests/storage/requirements.txt`): {line:?}"
            );
        };
        Self { base_url: format!("http://{address}"), child }
    }

    fn config(&self) -> Config {
        Config::new("test-key").with_workspace_id("ws_test").with_base_url(&self.base_url)
    }

    /// How the next session is answered (see `control.py`).
    fn next(&self, plan: serde_json::Value) {
        ureq::post(format!("{}/_test/next", self.base_url))
            .header("content-type", "application/json")
            .send(plan.to_string())
            .expect("POST /_test/next");
    }

    /// Every URL signed right from now on.
    fn heal(&self) {
        ureq::post(format!("{}/_test/heal", self.base_url)).send_empty().expect("POST /_test/heal");
    }

    /// The object S3 holds for an upload, and its content type.
    fn object(&self, upload_id: &str) -> (Vec<u8>, String) {
        let mut response =
            ureq::get(format!("{}/_test/object/{upload_id}", self.base_url)).call().expect("the object");
        let content_type =
            response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let mut bytes = Vec::new();
        response.body_mut().as_reader().read_to_end(&mut bytes).unwrap();
        (bytes, content_type)
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn data(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

/// Rounds pause 50 ms (not 2 s), so a part healed in a later round does not wait.
fn options() -> UploadOptions {
    UploadOptions::new().rounds(RoundPolicy::new(3, Duration::from_millis(50)))
}

/// Every upload shape into s3s-fs, on both backends, one control plane for the test. Not a
/// scenario of the emulator suite: `tests/scenarios/check` lists this file among its
/// third-party oracles (a page cannot start the processes).
#[test]
fn uploads_into_a_real_s3_that_checks_every_signature() {
    let storage = Storage::start();
    both!(|backend| {
        let c = client!(storage.config());
        // A single PUT carries the header its URL signs (`Content-Type`).
        {
            storage.next(
                    serde_json::json!({"mode": "single", "headers": {"Content-Type": "application/x-hotdata-test"}}),
                );
            let source = data(MIB + 3, 1);
            let done = wait!(c.upload_file(source.clone(), options()))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            let (stored, content_type) = storage.object(&done.upload_id);
            assert!(
                stored == source,
                "{backend}: S3 holds other bytes ({} of {})",
                stored.len(),
                source.len()
            );
            assert_eq!(content_type, "application/x-hotdata-test", "{backend}");
        }
        // Multipart sessions, eager and minted, assemble in S3.
        {
            // 8 MiB declares its size: eager part URLs, two parts (5 MiB + 3 MiB).
            storage.next(serde_json::json!({"mode": "eager", "part_size": 5 * MIB, "headers": {}}));
            let source = data(8 * MIB, 2);
            let done = wait!(c.upload_file(source.clone(), options()))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert!(storage.object(&done.upload_id).0 == source, "{backend}: eager");

            // Above 8 MiB, from a file: a streaming session, each part's URL minted before its PUT.
            storage.next(serde_json::json!({"mode": "minted", "part_size": 5 * MIB, "headers": {}}));
            let dir =
                std::env::temp_dir().join(format!("hotdata-real-storage-{backend}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("eleven.bin");
            let source = data(11 * MIB + 5, 3);
            std::fs::write(&path, &source).unwrap();
            let done = wait!(c.upload_file(file_source!(path.clone()), options().max_concurrency(2)))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert!(storage.object(&done.upload_id).0 == source, "{backend}: minted, from a file");
            std::fs::remove_dir_all(&dir).unwrap();

            // A stream of unknown length.
            let source = data(6 * MIB + 7, 4);
            let done = wait!(c.upload_file(stream_source!(source.clone()), options()))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert!(storage.object(&done.upload_id).0 == source, "{backend}: minted, a stream");
        }
        // A part URL whose signature S3 refuses is replaced.
        {
            // Eager: a 403 on a part URL mints a fresh one and retries at once.
            storage.next(serde_json::json!({"mode": "eager", "part_size": 5 * MIB, "break_part": 2}));
            let source = data(7 * MIB, 5);
            let done = wait!(c.upload_file(source.clone(), options()))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert!(storage.object(&done.upload_id).0 == source, "{backend}: eager");
            // Minted: the part goes again in the next round, with a URL minted again.
            storage.next(serde_json::json!({"mode": "minted", "part_size": 5 * MIB, "break_part": 2}));
            let source = data(12 * MIB, 6);
            let done = wait!(c.upload_file(source.clone(), options()))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert!(storage.object(&done.upload_id).0 == source, "{backend}: minted");
        }
        // A signature that never verifies: the upload fails without showing the URL, and resumes.
        {
            storage.next(
                    serde_json::json!({"mode": "minted", "part_size": 5 * MIB, "break_part": 2, "break_times": 1000}),
                );
            let source = data(11 * MIB, 7);
            let e = wait!(c.upload_file(source.clone(), options())).expect_err("part 2 never verifies");
            for shown in [format!("{e}"), format!("{e:?}")] {
                for secret in ["X-Amz-Signature", "X-Amz-Credential", "HOTDATATESTKEY", "tok_upl_"] {
                    assert!(!shown.contains(secret), "{backend}: the error shows {secret}: {shown}");
                }
            }
            // S3's refusal is named. reqwest (hyper, no `100-continue`) may lose an answer
            // storage sends before reading the body (see storage_requests.rs): for it, the
            // failure may be the reset that followed.
            let text = format!("{e}");
            let lost = backend == "reqwest" && text.contains("connection closed before any response");
            assert!(text.contains("403") || lost, "{backend}: S3's status is named: {e}");
            let state =
                e.into_resume_state().unwrap_or_else(|| panic!("{backend}: the stored parts are kept"));
            let stored: Vec<u32> = state.completed_parts().map(|(n, _)| n).collect();
            assert!(
                stored.contains(&1) && stored.contains(&3) && !stored.contains(&2),
                "{backend}: {stored:?}"
            );
            // The storage side is mended: resuming sends part 2 only, then finalizes.
            storage.heal();
            let done = wait!(c.resume_upload(state, source.clone(), options()))
                .unwrap_or_else(|e| panic!("{backend}: {e:?}"));
            assert!(storage.object(&done.upload_id).0 == source, "{backend}: resumed");
        }
    });
}
