//! Decode from memory, as the blocking client feeds its decoder: the result's body is
//! downloaded whole first (`results().download(.., Arrow).write_to`, not measured), then
//! decoded (measured) with `hotdata_core::arrow::ArrowDecoder` in the pieces
//! `results().arrow(..).stream()` reads: `ArrowDecoder::wanted()` bytes at a time (a whole
//! batch body in one piece), 64 KiB while the framing is unknown. Slices of one buffer: no
//! copy, no socket. The decode floor: what streaming costs beyond the raw read.
//!
//! new-ureq-arrow-decode --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N]
//!
//! `bytes` is the body size decoded; peak RSS includes the body held in memory.
use bench_util::{err_chain, Bench, Outcome};
use bytes::Bytes;
use hotdata_core::arrow::ArrowDecoder;
use hotdata_core::models::ResultsFormatQuery;
use hotdata_core::results::ResultFetch;

fn main() {
    let mut b = Bench::start("new-ureq-arrow-decode");
    let a = b.args().clone();
    let client = new_ureq_bench::client(&a);
    let (rid, db) = (a.result_id(), a.database_id());
    let fetched = (|| {
        let mut body = Vec::with_capacity(a.u64_or("expect-bytes", 0) as usize);
        match client.results().download(&rid, &db, ResultsFormatQuery::Arrow).write_to(&mut body) {
            Ok(ResultFetch::Ready(_)) => Ok(Bytes::from(body)),
            Ok(ResultFetch::NotReady(n)) => Err(format!("result not ready: {n:?}")),
            Err(e) => Err(err_chain(&e)),
        }
    })();
    b.begin();
    let res = fetched.and_then(|body| {
        let mut decoder = ArrowDecoder::new();
        let (mut rows, mut batches, mut at) = (0u64, 0u64, 0usize);
        loop {
            while let Some(batch) = decoder.next_batch().map_err(|e| err_chain(&e))? {
                rows += batch.num_rows() as u64;
                batches += 1;
            }
            if at == body.len() {
                break;
            }
            let want = match decoder.wanted() {
                Some(0) | None => 64 * 1024,
                Some(n) => n,
            };
            let end = body.len().min(at + want);
            decoder.push(body.slice(at..end));
            at = end;
        }
        decoder.finish().map_err(|e| err_chain(&e))?;
        Ok(Outcome::bytes(body.len() as u64).rows(rows).calls(1).extra("batches", batches))
    });
    b.finish(res)
}
