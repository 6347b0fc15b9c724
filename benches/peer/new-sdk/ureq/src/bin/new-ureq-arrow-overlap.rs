//! An experiment, not an SDK feature: streamed Arrow with the read and the decode on two
//! threads. A reader thread follows the IPC framing itself and reads each message's
//! metadata and whole body into buffers of their own (`Download::body.next_sized`, as the
//! SDK's one-thread reader does), handing them over a bounded channel (16 pieces); this
//! thread decodes them with `hotdata_core::arrow::ArrowDecoder` (whole bodies: no copy).
//! Against `new-ureq-arrow-stream` (the same reads and decode on one thread), it tells
//! whether overlapping beats the serial floor when a core is free (run with and without
//! `PIN=1`).
//!
//! new-ureq-arrow-overlap --base-url URL [--result-id big] [--database-id D] [--expect-bytes N] [--expect-rows N]
use std::sync::mpsc::{sync_channel, SyncSender};

use bench_util::{err_chain, Bench, Outcome};
use bytes::{Bytes, BytesMut};
use hotdata_core::arrow::ArrowDecoder;
use hotdata_core::body::BlockingBody;
use hotdata_core::models::ResultsFormatQuery;
use hotdata_core::results::ResultFetch;

/// Exactly `n` bytes of `body` (one piece when the transport gives them in one read).
fn read_exact(body: &mut BlockingBody, n: usize) -> Result<Bytes, String> {
    let mut pieces = Vec::new();
    let mut got = 0;
    while got < n {
        match body.next_sized(n - got) {
            Some(Ok(piece)) => {
                got += piece.len();
                pieces.push(piece);
            }
            Some(Err(e)) => return Err(err_chain(&e)),
            None => return Err(format!("the body ended {} bytes short", n - got)),
        }
    }
    if pieces.len() == 1 {
        return Ok(pieces.pop().unwrap_or_default());
    }
    let mut all = BytesMut::with_capacity(n);
    pieces.iter().for_each(|p| all.extend_from_slice(p));
    Ok(all.freeze())
}

/// Reads the stream message by message and sends each piece; returns the bytes read.
fn read_messages(mut body: BlockingBody, tx: SyncSender<Bytes>) -> Result<u64, String> {
    let mut total = 0u64;
    loop {
        let head = read_exact(&mut body, 8)?;
        let meta_len = i32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        total += 8;
        tx.send(head).map_err(|e| e.to_string())?;
        if meta_len <= 0 {
            return Ok(total);
        }
        let meta = read_exact(&mut body, meta_len as usize)?;
        let body_len = arrow_ipc::root_as_message(&meta).map_err(|e| format!("metadata: {e}"))?.bodyLength();
        total += meta.len() as u64;
        tx.send(meta).map_err(|e| e.to_string())?;
        if body_len > 0 {
            let data = read_exact(&mut body, body_len as usize)?;
            total += data.len() as u64;
            tx.send(data).map_err(|e| e.to_string())?;
        }
    }
}

fn main() {
    let mut b = Bench::start("new-ureq-arrow-overlap");
    let a = b.args().clone();
    let client = new_ureq_bench::client(&a);
    let (rid, db) = (a.result_id(), a.database_id());
    b.begin();
    let res = (|| {
        let download = match client
            .results()
            .download(&rid, &db, ResultsFormatQuery::Arrow)
            .open()
            .map_err(|e| err_chain(&e))?
        {
            ResultFetch::Ready(d) => d,
            ResultFetch::NotReady(n) => return Err(format!("result not ready: {n:?}")),
        };
        let (tx, rx) = sync_channel::<Bytes>(16);
        let reader = std::thread::spawn(move || read_messages(download.body, tx));
        let mut decoder = ArrowDecoder::new();
        let (mut rows, mut batches) = (0u64, 0u64);
        for piece in rx {
            decoder.push(piece);
            while let Some(batch) = decoder.next_batch().map_err(|e| err_chain(&e))? {
                rows += batch.num_rows() as u64;
                batches += 1;
            }
        }
        let bytes = reader.join().map_err(|_| "the reader panicked".to_owned())??;
        decoder.finish().map_err(|e| err_chain(&e))?;
        Ok(Outcome::bytes(bytes).rows(rows).calls(1).extra("batches", batches))
    })();
    b.finish(res)
}
