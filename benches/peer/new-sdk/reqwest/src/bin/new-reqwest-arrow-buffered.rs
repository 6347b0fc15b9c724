//! New SDK, async (hotdata-reqwest): `results().arrow(id, db).collect().await`, the whole
//! result as an `ArrowResult` (every batch held in a Vec; the SDK decodes them off the socket
//! while collecting, it does not buffer the raw body first).
//!
//! new-reqwest-arrow-buffered --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N] [--rt multi|current]
//!
//! `bytes` is the body size the SDK read (`ArrowResult::bytes_received`, bytes_source=counted);
//! rows are summed over the held batches and checked against X-Total-Row-Count
//! (`ArrowResult::meta.total_row_count`).
use bench_util::{err_chain, Bench, Outcome};
use hotdata_core::results::ResultFetch;

fn main() {
    let mut b = Bench::start("new-reqwest-arrow-buffered");
    let a = b.args().clone();
    let rt = new_reqwest_bench::runtime(&a);
    let client = new_reqwest_bench::client(&a);
    let (rid, db) = (a.result_id(), a.database_id());
    b.begin();
    let res = rt.block_on(async move {
        let fetch = client.results().arrow(&rid, &db).collect().await.map_err(|e| err_chain(&e))?;
        let result = match fetch {
            ResultFetch::Ready(result) => result,
            ResultFetch::NotReady(n) => return Err(format!("result not ready: {n:?}")),
        };
        let rows = result.num_rows() as u64;
        if let Some(t) = result.meta.total_row_count {
            if t != rows {
                return Err(format!("decoded {rows} rows, X-Total-Row-Count {t}"));
            }
        }
        let (batches, bytes) = (result.batches.len(), result.bytes_received);
        drop(result);
        Ok(Outcome::bytes(bytes).rows(rows).calls(1).extra("batches", batches))
    });
    b.finish(res)
}
