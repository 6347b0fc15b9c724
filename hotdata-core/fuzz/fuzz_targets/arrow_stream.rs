//! An Arrow IPC stream, cut into chunks where the input says, through `ArrowDecoder` and
//! every batch through `arrow_rows` (cells and serde rows). Must end in batches or an error:
//! never a panic that escapes, never a hang, never an allocation beyond the limits.
#![no_main]

use bytes::Bytes;
use hotdata_core::ArrowLimits;
use hotdata_core::arrow::ArrowDecoder;
use hotdata_core::arrow_rows::{batch_cells, batches_as};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    quiet_caught_panics();
    // First byte: the chunk size (1..=256, or the whole stream when 0).
    let Some((&cut, stream)) = data.split_first() else { return };
    let stream = Bytes::copy_from_slice(stream);
    let mut decoder =
        ArrowDecoder::with_limits(ArrowLimits::DEFAULT.with_max_decompressed_message_bytes(64 << 20));
    let step = if cut == 0 { stream.len().max(1) } else { cut as usize };
    let mut at = 0;
    loop {
        match decoder.next_batch() {
            Ok(Some(batch)) => {
                // Cells take memory for every row a batch declares; a batch without columns
                // (or of null columns) may declare billions in a few bytes, and a caller
                // converting it asked for that. The SDK's own fetches cap rows (FetchLimits).
                if batch.num_rows() <= 1 << 20 {
                    let _ = batch_cells(&batch);
                    let _ = batches_as::<serde_json::Value>([&batch]);
                }
                continue;
            }
            Ok(None) => {}
            Err(_) => return,
        }
        if at == stream.len() {
            break;
        }
        let end = (at + step).min(stream.len());
        decoder.push(stream.slice(at..end));
        at = end;
    }
    let _ = decoder.finish();
});

/// The decoder turns arrow-ipc's panics into errors where panics unwind (documented); the
/// default hook would print each. A panic that escapes still aborts (libfuzzer-sys).
fn quiet_caught_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("FUZZ_STRICT").is_none() {
        ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    }
}
