//! Decode from memory, as the async client feeds its decoder: the result's body is
//! downloaded first as the very chunks hotdata-reqwest yields
//! (`results().download(.., Arrow).open()`, then `next_chunk()`; not measured), then those
//! chunks are decoded (measured) with `hotdata_core::arrow::ArrowDecoder` as
//! `results().arrow(..).stream()` does: pushed one by one, so a batch body spanning chunks
//! is assembled by a copy. No socket, no runtime in the measured region. The decode floor of
//! this backend: what streaming costs beyond the raw read.
//!
//! new-reqwest-arrow-decode --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N] [--rt multi|current]
//!
//! `bytes` is the body size decoded; peak RSS includes the body held in memory.
use bench_util::{err_chain, Bench, Outcome};
use bytes::Bytes;
use hotdata_core::arrow::ArrowDecoder;
use hotdata_core::models::ResultsFormatQuery;
use hotdata_core::results::ResultFetch;

fn main() {
    let mut b = Bench::start("new-reqwest-arrow-decode");
    let a = b.args().clone();
    let rt = new_reqwest_bench::runtime(&a);
    let client = new_reqwest_bench::client(&a);
    let (rid, db) = (a.result_id(), a.database_id());
    let fetched: Result<Vec<Bytes>, String> = rt.block_on(async {
        let fetch = client
            .results()
            .download(&rid, &db, ResultsFormatQuery::Arrow)
            .open()
            .await
            .map_err(|e| err_chain(&e))?;
        let mut download = match fetch {
            ResultFetch::Ready(d) => d,
            ResultFetch::NotReady(n) => return Err(format!("result not ready: {n:?}")),
        };
        let mut chunks = Vec::new();
        while let Some(chunk) = download.next_chunk().await {
            chunks.push(chunk.map_err(|e| err_chain(&e))?);
        }
        Ok(chunks)
    });
    b.begin();
    let res = fetched.and_then(|chunks| {
        let count = chunks.len();
        let mut decoder = ArrowDecoder::new();
        let (mut rows, mut batches, mut bytes) = (0u64, 0u64, 0u64);
        for chunk in chunks {
            bytes += chunk.len() as u64;
            decoder.push(chunk);
            while let Some(batch) = decoder.next_batch().map_err(|e| err_chain(&e))? {
                rows += batch.num_rows() as u64;
                batches += 1;
            }
        }
        decoder.finish().map_err(|e| err_chain(&e))?;
        Ok(Outcome::bytes(bytes).rows(rows).calls(1).extra("batches", batches).extra("chunks", count))
    });
    b.finish(res)
}
