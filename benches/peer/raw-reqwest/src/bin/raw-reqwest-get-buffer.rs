//! GET an Arrow result with reqwest into one buffer of the body's size: the floor of a
//! buffered read (a fresh allocation as large as the body, faulted in as it fills, each
//! chunk copied into it).
//!
//! raw-reqwest-get-buffer --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N]
//!
//! Same request as raw-reqwest-get; the buffer is sized from Content-Length (or
//! --expect-bytes) and every chunk appended; rows = the X-Total-Row-Count header.
use bench_util::{err_chain, Bench, Outcome};

fn main() {
    let mut b = Bench::start("raw-reqwest-get-buffer");
    let a = b.args().clone();
    let rt = raw_reqwest::runtime(&a);
    let client = raw_reqwest::client();
    b.begin();
    let res = rt.block_on(async move {
        let (mut resp, rows) = raw_reqwest::arrow_get(&client, &a).await?;
        let size = resp.content_length().unwrap_or_else(|| a.u64_or("expect-bytes", 0));
        let mut body = Vec::with_capacity(size as usize);
        while let Some(c) = resp.chunk().await.map_err(|e| err_chain(&e))? {
            body.extend_from_slice(&c);
        }
        let mut o = Outcome::bytes(body.len() as u64).calls(1);
        o.rows = rows;
        drop(body);
        Ok(o)
    });
    b.finish(res)
}
