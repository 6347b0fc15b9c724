//! New SDK, async (hotdata-reqwest): `results().arrow(id, db).stream().await`, which
//! decodes record batches off the socket as they arrive (`ArrowBatchStream`, read with
//! `next_batch().await`); counts rows.
//!
//! new-reqwest-arrow-stream --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N] [--rt multi|current]
//!
//! `bytes` is what the SDK's decoder received (`ArrowBatchStream::decoder().bytes_received()`,
//! i.e. the body bytes, bytes_source=counted); rows are counted from the decoded batches and
//! checked against X-Total-Row-Count (`ArrowBatchStream::meta().total_row_count`).
use bench_util::{err_chain, Bench, Outcome};
use hotdata_core::results::ResultFetch;

fn main() {
    let mut b = Bench::start("new-reqwest-arrow-stream");
    let a = b.args().clone();
    let rt = new_reqwest_bench::runtime(&a);
    let client = new_reqwest_bench::client(&a);
    let (rid, db) = (a.result_id(), a.database_id());
    b.begin();
    let res = rt.block_on(async move {
        let fetch = client.results().arrow(&rid, &db).stream().await.map_err(|e| err_chain(&e))?;
        let mut stream = match fetch {
            ResultFetch::Ready(stream) => stream,
            ResultFetch::NotReady(n) => return Err(format!("result not ready: {n:?}")),
        };
        let total = stream.meta().total_row_count;
        let mut rows = 0u64;
        let mut count = 0u64;
        while let Some(batch) = stream.next_batch().await {
            let batch = batch.map_err(|e| err_chain(&e))?;
            rows += batch.num_rows() as u64;
            count += 1;
        }
        if let Some(t) = total {
            if t != rows {
                return Err(format!("decoded {rows} rows, X-Total-Row-Count {t}"));
            }
        }
        let bytes = stream.decoder().bytes_received();
        Ok(Outcome::bytes(bytes).rows(rows).calls(1).extra("batches", count))
    });
    b.finish(res)
}
