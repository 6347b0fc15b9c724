//! GET an Arrow result with ureq (blocking) into one buffer of the body's size: the floor of
//! a buffered read (a fresh allocation as large as the body, faulted in as it fills).
//!
//! raw-ureq-get-buffer --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N]
//!
//! Same request as raw-ureq-get; the buffer is sized from Content-Length (or --expect-bytes)
//! and filled with `read_to_end`; rows = the X-Total-Row-Count header.
use std::io::Read;

use bench_util::{Bench, Outcome};

fn main() {
    let mut b = Bench::start("raw-ureq-get-buffer");
    let a = b.args().clone();
    let agent = raw_ureq::agent(&a);
    b.begin();
    let res = (|| {
        let (mut resp, rows) = raw_ureq::arrow_get(&agent, &a)?;
        let size =
            raw_ureq::header_u64(&resp, "content-length").unwrap_or_else(|| a.u64_or("expect-bytes", 0));
        let mut body = Vec::with_capacity(size as usize);
        resp.body_mut().as_reader().read_to_end(&mut body).map_err(|e| e.to_string())?;
        let mut o = Outcome::bytes(body.len() as u64).calls(1);
        o.rows = rows;
        drop(body);
        Ok(o)
    })();
    b.finish(res)
}
