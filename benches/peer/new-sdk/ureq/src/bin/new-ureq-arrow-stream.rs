//! New SDK, blocking (hotdata-ureq): `results().arrow(id, db).stream()`, which decodes
//! record batches off the socket as they arrive (an `Iterator` of batches); counts rows.
//!
//! new-ureq-arrow-stream --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N]
//!
//! `bytes` is what the SDK's decoder received (`ArrowBatches::decoder().bytes_received()`,
//! i.e. the body bytes, bytes_source=counted); rows are counted from the decoded batches and
//! checked against X-Total-Row-Count (`ArrowBatches::meta().total_row_count`).
use bench_util::{err_chain, Bench, Outcome};
use hotdata_core::results::ResultFetch;

fn main() {
    let mut b = Bench::start("new-ureq-arrow-stream");
    let a = b.args().clone();
    let client = new_ureq_bench::client(&a);
    let (rid, db) = (a.result_id(), a.database_id());
    b.begin();
    let res = (|| {
        let fetch = client.results().arrow(&rid, &db).stream().map_err(|e| err_chain(&e))?;
        let mut batches = match fetch {
            ResultFetch::Ready(batches) => batches,
            ResultFetch::NotReady(n) => return Err(format!("result not ready: {n:?}")),
        };
        let total = batches.meta().total_row_count;
        let mut rows = 0u64;
        let mut count = 0u64;
        for batch in batches.by_ref() {
            let batch = batch.map_err(|e| err_chain(&e))?;
            rows += batch.num_rows() as u64;
            count += 1;
        }
        if let Some(t) = total {
            if t != rows {
                return Err(format!("decoded {rows} rows, X-Total-Row-Count {t}"));
            }
        }
        let bytes = batches.decoder().bytes_received();
        Ok(Outcome::bytes(bytes).rows(rows).calls(1).extra("batches", count))
    })();
    b.finish(res)
}
