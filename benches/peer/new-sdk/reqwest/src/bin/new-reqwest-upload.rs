//! New SDK, async (hotdata-reqwest): `upload_file(&Path, UploadOptions).await` of a file
//! (create session, parts or single PUT, finalize). The SDK reads each part by position on
//! tokio's blocking pool (`AsyncRuntime::spawn_blocking`) just before it is sent.
//!
//! new-reqwest-upload --base-url URL --file PATH [--part-size BYTES] [--max-concurrency N] [--expect-bytes N] [--rt multi|current]
//!
//! Defaults are the SDK's own (part-size hint `part_size_hint(size)`, 8 MiB for any size allowed;
//! 10 parts in flight, 256 MiB memory budget); `--part-size` / `--max-concurrency` override
//! them. Content type `application/octet-stream`, as official-upload sends; the file name is
//! taken from the path by the SDK. Opening the file is inside the measured region, as it is
//! for the official and blocking clients (their `upload_file` opens the path). `bytes` is
//! size_bytes from the finalize response; it must equal the file size.
use bench_util::{err_chain, Bench, Outcome};
use hotdata_core::upload::UploadOptions;

fn main() {
    let mut b = Bench::start("new-reqwest-upload");
    let a = b.args().clone();
    let path = a.req("file");
    let rt = new_reqwest_bench::runtime(&a);
    let client = new_reqwest_bench::client(&a);
    let (part_size, max_concurrency) = (a.u64_opt("part-size"), a.u64_opt("max-concurrency"));
    b.begin();
    let res = rt.block_on(async move {
        let size = std::fs::metadata(&path).map_err(|e| format!("{path}: {e}"))?.len();
        let mut opts = UploadOptions::new().content_type("application/octet-stream");
        if let Some(bytes) = part_size {
            opts = opts.part_size(bytes);
        }
        if let Some(n) = max_concurrency {
            opts = opts.max_concurrency(n as usize);
        }
        let fin = client.upload_file(std::path::Path::new(&path), opts).await.map_err(|e| err_chain(&e))?;
        if fin.size_bytes as u64 != size {
            return Err(format!("finalize size_bytes {} != file size {size}", fin.size_bytes));
        }
        Ok(Outcome::bytes(size).extra("upload_id", fin.upload_id).extra("status", fin.status))
    });
    b.finish(res)
}
