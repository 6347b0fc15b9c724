//! Compressed Arrow batches from untrusted input: declared decompressed sizes are read and
//! capped before arrow-ipc allocates them, a codec the build lacks is named with its
//! feature, and corrupted compressed streams end in errors, never in a panic, an abort or a
//! hang.
#![cfg(feature = "arrow-minimal")]

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_ipc::CompressionType;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use hotdata_core::arrow::ArrowDecoder;
use hotdata_core::{ArrowLimits, ErrorKind};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn batches(n: usize) -> (Arc<Schema>, Vec<RecordBatch>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let batches = (0..n)
        .map(|b| {
            let ints: ArrayRef =
                Arc::new(Int64Array::from_iter((0..500).map(|i| (i % 7 != 0).then_some(i * b as i64))));
            let strs: ArrayRef =
                Arc::new(StringArray::from_iter((0..500).map(|i| Some(format!("row {}", i % 10)))));
            RecordBatch::try_new(schema.clone(), vec![ints, strs]).unwrap()
        })
        .collect();
    (schema, batches)
}

/// The stream written by arrow-rs with `codec`, when this build has the codec (tests that
/// need one return early otherwise: the build without codecs is tested below).
fn compressed(codec: CompressionType, n: usize) -> Option<(Vec<RecordBatch>, Bytes)> {
    let has = match codec {
        CompressionType::LZ4_FRAME => cfg!(feature = "arrow-lz4"),
        _ => cfg!(feature = "arrow-zstd"),
    };
    if !has {
        return None;
    }
    let (schema, batches) = batches(n);
    let options = IpcWriteOptions::default().try_with_compression(Some(codec)).unwrap();
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new_with_options(&mut out, &schema, options).unwrap();
    for b in &batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    Some((batches, Bytes::from(out)))
}

/// Each message: (where its body starts, the body's buffers as (offset, length)).
fn bodies(bytes: &[u8]) -> Vec<(usize, Vec<(usize, usize)>)> {
    let (mut out, mut pos) = (Vec::new(), 0);
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let message = arrow_ipc::root_as_message(&bytes[pos + 8..pos + 8 + len]).unwrap();
        let buffers = message
            .header_as_record_batch()
            .and_then(|b| b.buffers())
            .map(|bs| bs.iter().map(|b| (b.offset() as usize, b.length() as usize)).collect())
            .unwrap_or_default();
        let body = pos + 8 + len;
        out.push((body, buffers));
        pos = body + message.bodyLength() as usize;
    }
    out
}

/// `bytes` with the declared decompressed length of the first compressed buffer of the last
/// batch set to `declared`.
fn declaring(bytes: &Bytes, declared: i64) -> Bytes {
    let (body, buffers) = bodies(bytes).pop().unwrap();
    let (offset, _) = buffers.into_iter().find(|(_, len)| *len >= 8).unwrap();
    let mut v = bytes.to_vec();
    v[body + offset..body + offset + 8].copy_from_slice(&declared.to_le_bytes());
    Bytes::from(v)
}

/// Pushes `bytes` in chunks of `chunk` and collects what comes out, up to the first error.
fn run(
    decoder: &mut ArrowDecoder,
    bytes: &Bytes,
    chunk: usize,
) -> (Vec<RecordBatch>, Option<hotdata_core::Error>) {
    let mut out = Vec::new();
    for start in (0..bytes.len()).step_by(chunk) {
        decoder.push(bytes.slice(start..(start + chunk).min(bytes.len())));
        loop {
            match decoder.next_batch() {
                Ok(Some(b)) => out.push(b),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    let end = decoder.finish().err();
    (out, end)
}

#[test]
fn a_declared_length_past_the_limit_is_a_typed_error_after_the_batches_before_it() {
    for codec in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
        let Some((good, bytes)) = compressed(codec, 3) else { continue };
        // 2^62 bytes: arrow-ipc would ask the allocator for it (an abort, not a panic).
        let hostile = declaring(&bytes, 1 << 62);
        for chunk in [1, 7, 4096, hostile.len()] {
            let (out, e) = run(&mut ArrowDecoder::new(), &hostile, chunk);
            assert_eq!(out, good[..2], "{codec:?} chunk {chunk}: the batches before the hostile one");
            let e = e.expect("an error");
            assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{codec:?} chunk {chunk}: {e}");
            let limit = e.limit().unwrap();
            assert_eq!(limit.limit, "Config::arrow_limits.max_decompressed_message_bytes");
            assert_eq!(limit.max, ArrowLimits::DEFAULT.max_decompressed_message_bytes);
            assert!(limit.actual >= 1 << 62);
        }
    }
}

#[test]
fn the_limit_is_configurable_and_counts_a_whole_message() {
    let Some((good, bytes)) = compressed(CompressionType::LZ4_FRAME, 2) else { return };
    // One batch: 500 int64s (4,000 bytes) + validity + offsets + string bytes.
    let mut d = ArrowDecoder::with_limits(ArrowLimits::DEFAULT.with_max_decompressed_message_bytes(4_000));
    let (out, e) = run(&mut d, &bytes, 4096);
    assert!(out.is_empty());
    let e = e.unwrap();
    assert_eq!(e.kind(), ErrorKind::LimitExceeded);
    assert!(e.to_string().contains("max_decompressed_message_bytes"), "{e}");
    let mut d = ArrowDecoder::with_limits(ArrowLimits::DEFAULT.with_max_decompressed_message_bytes(64 << 10));
    let (out, e) = run(&mut d, &bytes, 4096);
    assert!(e.is_none(), "{e:?}");
    assert_eq!(out, good);
}

#[test]
fn a_negative_declared_length_is_a_decode_error() {
    let Some((good, bytes)) = compressed(CompressionType::ZSTD, 3) else { return };
    let (out, e) = run(&mut ArrowDecoder::new(), &declaring(&bytes, -7), 3);
    assert_eq!(out, good[..2]);
    let e = e.unwrap();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("negative length (-7)"), "{e}");
}

/// Without a codec, a compressed stream's error names the codec and the feature to enable
/// (run by `cargo test -p hotdata-core --no-default-features --features arrow-minimal`).
#[test]
fn a_missing_codec_is_named_with_its_feature() {
    const ZSTD_FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/arrow/compressed_zstd.arrows");
    const LZ4_FIXTURE: &[u8] = include_bytes!("../../tests/fixtures/arrow/compressed_lz4.arrows");
    for (bytes, has, codec, feature) in [
        (ZSTD_FIXTURE, cfg!(feature = "arrow-zstd"), "ZSTD", "arrow-zstd"),
        (LZ4_FIXTURE, cfg!(feature = "arrow-lz4"), "LZ4_FRAME", "arrow-lz4"),
    ] {
        let (out, e) = run(&mut ArrowDecoder::new(), &Bytes::from_static(bytes), 1 << 20);
        if has {
            assert!(e.is_none(), "{e:?}");
            assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), 3000);
        } else {
            let e = e.expect("an error without the codec");
            let text = e.to_string();
            assert!(text.contains(codec) && text.contains(&format!("`{feature}`")), "{text}");
        }
    }
}

/// Seeded corruption of compressed streams: errors (or changed data), never a panic, an
/// abort or a hang. Natively anywhere in the stream, with arrow's panics caught; on wasm32
/// (where a panic aborts the test) inside compressed buffers, which only codecs and arrow's
/// validation see.
#[test]
fn corrupted_compressed_streams_never_panic() {
    const FIXTURES: [&[u8]; 3] = [
        include_bytes!("../../tests/fixtures/arrow/compressed_zstd.arrows"),
        include_bytes!("../../tests/fixtures/arrow/types_nested_lz4.arrows"),
        include_bytes!("../../tests/fixtures/arrow/dict_delta_zstd.arrows"),
    ];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let rounds = if cfg!(target_family = "wasm") { 150 } else { 1000 };
    for bytes in FIXTURES {
        let regions: Vec<(usize, usize)> = bodies(bytes)
            .into_iter()
            .flat_map(|(body, buffers)| buffers.into_iter().map(move |(o, l)| (body + o, l)))
            .filter(|(_, l)| *l > 0)
            .collect();
        for _ in 0..rounds {
            let mut v = bytes.to_vec();
            for _ in 0..1 + next() % 4 {
                let i = if cfg!(target_family = "wasm") {
                    let (start, len) = regions[next() as usize % regions.len()];
                    start + next() as usize % len
                } else {
                    next() as usize % v.len()
                };
                v[i] = next() as u8;
            }
            let decode = || {
                let mut d = ArrowDecoder::new();
                d.push(Bytes::from(v.clone()));
                while d.next_batch()?.is_some() {}
                d.finish()
            };
            #[cfg(not(target_family = "wasm"))]
            let _ = std::panic::catch_unwind(decode).expect("a panic escaped the decoder");
            #[cfg(target_family = "wasm")]
            let _ = decode();
        }
    }
}
