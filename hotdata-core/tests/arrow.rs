//! The push decoder: any chunking decodes to the same batches, every strict prefix is an
//! error, and every Arrow type the server may send comes through.
#![cfg(feature = "arrow-minimal")]

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::*;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use bytes::Bytes;
use hotdata_core::arrow::{ArrowBatches, ArrowDecoder, decode_all};
use hotdata_core::{BlockingBody, ErrorKind};
use proptest::prelude::*;

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): `#[test]` is its attribute.
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn encode(schema: &Schema, batches: &[RecordBatch]) -> Bytes {
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new(&mut out, schema).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    Bytes::from(out)
}

/// Every type the API can put in a result: primitives, nulls, time zones, decimals, large
/// strings and binaries, dictionaries, nested lists and structs.
fn all_types(rows: usize, seed: i64) -> (Schema, RecordBatch) {
    let n = rows;
    let opt = |i: usize| (!i.is_multiple_of(3)).then_some(i as i64 + seed);
    let mut dict = StringDictionaryBuilder::<Int32Type>::new();
    let mut list = ListBuilder::new(arrow_array::builder::Int64Builder::new());
    for i in 0..n {
        dict.append_value(["red", "green", "blue"][i % 3]);
        if i.is_multiple_of(4) {
            list.append_null();
        } else {
            for j in 0..(i % 3) {
                list.values().append_value((i * 10 + j) as i64);
            }
            list.append(true);
        }
    }
    let struct_fields =
        Fields::from(vec![Field::new("a", DataType::Int32, true), Field::new("b", DataType::Utf8, true)]);
    let columns: Vec<(Field, ArrayRef)> = vec![
        (
            Field::new("bool", DataType::Boolean, true),
            Arc::new(BooleanArray::from_iter((0..n).map(|i| (!i.is_multiple_of(5)).then_some(i % 2 == 0)))),
        ),
        (
            Field::new("i8", DataType::Int8, true),
            Arc::new(Int8Array::from_iter((0..n).map(|i| opt(i).map(|v| v as i8)))),
        ),
        (
            Field::new("i16", DataType::Int16, false),
            Arc::new(Int16Array::from_iter_values((0..n).map(|i| i as i16))),
        ),
        (
            Field::new("i32", DataType::Int32, true),
            Arc::new(Int32Array::from_iter((0..n).map(|i| opt(i).map(|v| v as i32)))),
        ),
        (
            Field::new("i64", DataType::Int64, true),
            Arc::new(Int64Array::from_iter((0..n).map(|i| opt(i).map(|v| v * 1_000_000_007)))),
        ),
        (
            Field::new("u8", DataType::UInt8, false),
            Arc::new(UInt8Array::from_iter_values((0..n).map(|i| i as u8))),
        ),
        (
            Field::new("u16", DataType::UInt16, false),
            Arc::new(UInt16Array::from_iter_values((0..n).map(|i| i as u16))),
        ),
        (
            Field::new("u32", DataType::UInt32, false),
            Arc::new(UInt32Array::from_iter_values((0..n).map(|i| i as u32))),
        ),
        (
            Field::new("u64", DataType::UInt64, false),
            Arc::new(UInt64Array::from_iter_values((0..n).map(|i| u64::MAX - i as u64))),
        ),
        (
            Field::new("f32", DataType::Float32, true),
            Arc::new(Float32Array::from_iter((0..n).map(|i| opt(i).map(|v| v as f32 / 3.0)))),
        ),
        (
            Field::new("f64", DataType::Float64, true),
            Arc::new(Float64Array::from_iter((0..n).map(|i| opt(i).map(|v| v as f64 / 7.0)))),
        ),
        (
            Field::new("utf8", DataType::Utf8, true),
            Arc::new(StringArray::from_iter((0..n).map(|i| opt(i).map(|v| format!("s{v}ü"))))),
        ),
        (
            Field::new("large_utf8", DataType::LargeUtf8, true),
            Arc::new(LargeStringArray::from_iter(
                (0..n).map(|i| opt(i).map(|v| "x".repeat((v % 50) as usize))),
            )),
        ),
        (
            Field::new("binary", DataType::Binary, true),
            Arc::new(BinaryArray::from_iter((0..n).map(|i| opt(i).map(|v| v.to_le_bytes().to_vec())))),
        ),
        (
            Field::new("large_binary", DataType::LargeBinary, true),
            Arc::new(LargeBinaryArray::from_iter((0..n).map(|i| opt(i).map(|v| vec![v as u8; 3])))),
        ),
        (
            Field::new("date32", DataType::Date32, true),
            Arc::new(Date32Array::from_iter((0..n).map(|i| opt(i).map(|v| v as i32)))),
        ),
        (
            Field::new("ts_utc", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Arc::new(TimestampMicrosecondArray::from_iter((0..n).map(opt)).with_timezone("UTC")),
        ),
        (
            Field::new(
                "ts_paris",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("Europe/Paris".into())),
                true,
            ),
            Arc::new(TimestampNanosecondArray::from_iter((0..n).map(opt)).with_timezone("Europe/Paris")),
        ),
        (
            Field::new("ts_naive", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Arc::new(TimestampMillisecondArray::from_iter((0..n).map(opt))),
        ),
        (
            Field::new("dec128", DataType::Decimal128(38, 2), true),
            Arc::new(
                Decimal128Array::from_iter((0..n).map(|i| opt(i).map(|v| v as i128 * 10i128.pow(30))))
                    .with_precision_and_scale(38, 2)
                    .unwrap(),
            ),
        ),
        (
            Field::new(
                "dict",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
            Arc::new(dict.finish()),
        ),
        (
            Field::new("list", DataType::List(Arc::new(Field::new("item", DataType::Int64, true))), true),
            Arc::new(list.finish()),
        ),
        (
            Field::new("struct", DataType::Struct(struct_fields.clone()), true),
            Arc::new(StructArray::new(
                struct_fields,
                vec![
                    Arc::new(Int32Array::from_iter((0..n).map(|i| opt(i).map(|v| v as i32)))) as ArrayRef,
                    Arc::new(StringArray::from_iter((0..n).map(|i| opt(i).map(|v| v.to_string()))))
                        as ArrayRef,
                ],
                None,
            )),
        ),
        (Field::new("null", DataType::Null, true), Arc::new(NullArray::new(n))),
    ];
    let schema = Schema::new(columns.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>());
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), columns.into_iter().map(|(_, c)| c).collect())
        .unwrap();
    (schema, batch)
}

fn stream(batches: usize) -> (Schema, Vec<RecordBatch>, Bytes) {
    let (schema, _) = all_types(1, 0);
    let list: Vec<_> = (0..batches).map(|i| all_types(5 + i * 7, i as i64).1).collect();
    let bytes = encode(&schema, &list);
    (schema, list, bytes)
}

fn decode_chunked(
    bytes: &Bytes,
    cuts: &[usize],
) -> Result<(Option<arrow_schema::SchemaRef>, Vec<RecordBatch>), hotdata_core::Error> {
    let mut d = ArrowDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort();
    points.push(bytes.len());
    for p in points {
        d.push(bytes.slice(start..p.max(start)));
        start = p.max(start);
        while let Some(b) = d.next_batch()? {
            out.push(b);
        }
    }
    d.finish()?;
    Ok((d.schema(), out))
}

#[test]
fn every_type_round_trips() {
    let (schema, batches, bytes) = stream(3);
    let (got_schema, got) = decode_all(bytes).unwrap();
    assert_eq!(got_schema.as_ref(), &schema);
    assert_eq!(got, batches);
}

#[test]
fn empty_result_keeps_its_schema() {
    let (schema, _) = all_types(1, 0);
    let (got_schema, got) = decode_all(encode(&schema, &[])).unwrap();
    assert_eq!(got_schema.as_ref(), &schema);
    assert!(got.is_empty());
}

#[test]
fn many_small_batches_and_a_few_huge_ones() {
    let schema = Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new("s", DataType::LargeUtf8, false),
    ]);
    let make = |n: usize, k: i64| {
        RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i * k))),
                Arc::new(LargeStringArray::from_iter_values((0..n).map(|i| format!("row {i}")))),
            ],
        )
        .unwrap()
    };
    let mut batches: Vec<_> = (0..2000).map(|i| make(1 + i % 3, i as i64)).collect();
    batches.push(make(1_000_000, 3));
    batches.push(make(300_000, 5));
    let bytes = encode(&schema, &batches);
    // Transport-sized chunks.
    let cuts: Vec<usize> = (1..bytes.len() / 65_536).map(|i| i * 65_536).collect();
    let (_, got) = decode_chunked(&bytes, &cuts).unwrap();
    assert_eq!(got.len(), batches.len());
    assert_eq!(
        got.iter().map(|b| b.num_rows()).sum::<usize>(),
        batches.iter().map(|b| b.num_rows()).sum::<usize>()
    );
    assert_eq!(got.last(), batches.last());
}

#[test]
fn one_byte_chunks_and_empty_chunks() {
    let (schema, batches, bytes) = stream(2);
    let mut d = ArrowDecoder::new();
    let mut got = Vec::new();
    for i in 0..bytes.len() {
        d.push(Bytes::new());
        d.push(bytes.slice(i..i + 1));
        while let Some(b) = d.next_batch().unwrap() {
            got.push(b);
        }
    }
    d.finish().unwrap();
    assert_eq!(d.schema().unwrap().as_ref(), &schema);
    assert_eq!(got, batches);
}

#[test]
fn every_strict_prefix_is_an_error() {
    let (_, _, bytes) = stream(2);
    for len in 0..bytes.len() {
        let r = decode_chunked(&bytes.slice(..len), &[]);
        let err =
            r.err().unwrap_or_else(|| panic!("a {len}-byte prefix of {} decoded without error", bytes.len()));
        assert_eq!(err.kind(), ErrorKind::Decode);
    }
}

#[test]
fn blocking_reader_streams_batches_and_reports_truncation() {
    let (schema, batches, bytes) = stream(3);
    let chunks: Vec<_> = bytes.chunks(100).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let reader = ArrowBatches::open(BlockingBody::from_chunks(chunks.into_iter())).unwrap();
    assert_eq!(reader.schema().as_ref(), &schema);
    let got: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(got, batches);

    let cut = bytes.slice(..bytes.len() - 20);
    let reader = ArrowBatches::open(BlockingBody::from_bytes(cut)).unwrap();
    let results: Vec<_> = reader.collect();
    assert!(results.last().unwrap().is_err(), "a truncated stream ends in an error");
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2);
}

/// A `Read` that records the size of every read asked of it.
struct Recording {
    inner: std::io::Cursor<Bytes>,
    asked: std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
}

impl std::io::Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.asked.lock().unwrap().push(buf.len());
        self.inner.read(buf)
    }
}

#[test]
fn a_reader_body_is_read_one_whole_message_part_at_a_time() {
    // A transport whose body is a `Read` (ureq) lets the Arrow reader ask for each batch
    // body in one read, straight into the buffer the arrays then use: a 64 KiB-chunked
    // read would take hundreds of reads here, and the decoder would copy every body again.
    let schema =
        Schema::new(vec![Field::new("v", DataType::Int64, false), Field::new("s", DataType::Utf8, false)]);
    let batches: Vec<_> = (0..5)
        .map(|k| {
            let n = 200_000;
            RecordBatch::try_new(
                Arc::new(schema.clone()),
                vec![
                    Arc::new(Int64Array::from_iter_values((0..n).map(|i| i * k))),
                    Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("row {i}")))),
                ],
            )
            .unwrap()
        })
        .collect();
    let bytes = encode(&schema, &batches);
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = Recording { inner: std::io::Cursor::new(bytes.clone()), asked: asked.clone() };
    let classify = |e| hotdata_core::TransportError::new(hotdata_core::TransportErrorKind::Body, e);
    let got: Vec<_> = ArrowBatches::open(BlockingBody::from_reader(reader, classify))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, batches);
    let asked = asked.lock().unwrap().clone();
    // Per message: the continuation word, the length word, the metadata, the body.
    assert!(asked.len() <= 4 * (batches.len() + 1) + 2, "{} reads: {asked:?}", asked.len());
    assert!(asked.iter().filter(|&&n| n > 1024 * 1024).count() >= batches.len(), "{asked:?}");

    // Cut inside a batch body: an error, not a short result.
    let cut = bytes.slice(..bytes.len() / 2);
    let reader = Recording { inner: std::io::Cursor::new(cut), asked: Default::default() };
    let results: Vec<_> = ArrowBatches::open(BlockingBody::from_reader(reader, classify)).unwrap().collect();
    assert!(results.last().unwrap().is_err(), "a truncated stream ends in an error");
}

#[test]
fn a_large_read_reuses_the_previous_buffer_only_once_nothing_holds_it() {
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let reader = std::io::Cursor::new(data.clone());
    let classify = |e| hotdata_core::TransportError::new(hotdata_core::TransportErrorKind::Body, e);
    let mut body = BlockingBody::from_reader(reader, classify);
    let first = body.next_sized(200_000).unwrap().unwrap();
    let first_at = first.as_ptr();
    assert_eq!(first[..], data[..200_000]);
    // Still held: the next read goes elsewhere and the held chunk keeps its bytes.
    let second = body.next_sized(200_000).unwrap().unwrap();
    assert_ne!(second.as_ptr(), first_at);
    assert_eq!(first[..], data[..200_000]);
    assert_eq!(second[..], data[200_000..400_000]);
    let second_at = second.as_ptr();
    drop(first);
    // Dropped: the next read goes into the last chunk's memory once it is free.
    drop(second);
    let third = body.next_sized(150_000).unwrap().unwrap();
    assert_eq!(third.as_ptr(), second_at);
    assert_eq!(third[..], data[400_000..550_000]);
    drop(third);
    // Larger than that memory: a new buffer, the right bytes (and the end of the body).
    let fourth = body.next_sized(300_000).unwrap().unwrap();
    assert_eq!(fourth[..], data[550_000..]);
    assert!(body.next_sized(300_000).is_none());
}

#[test]
fn batches_dropped_as_they_come_and_batches_held_all_decode_intact() {
    let schema = Schema::new(vec![Field::new("s", DataType::Utf8, false)]);
    let batches: Vec<_> = (0..6)
        .map(|k| {
            let values = (0..50_000).map(|i| format!("batch {k} row {i}"));
            RecordBatch::try_new(
                Arc::new(schema.clone()),
                vec![Arc::new(StringArray::from_iter_values(values))],
            )
            .unwrap()
        })
        .collect();
    let bytes = encode(&schema, &batches);
    let classify = |e| hotdata_core::TransportError::new(hotdata_core::TransportErrorKind::Body, e);
    let open = || {
        ArrowBatches::open(BlockingBody::from_reader(std::io::Cursor::new(bytes.clone()), classify)).unwrap()
    };
    // Each batch checked, then dropped (its memory is read into again).
    let mut n = 0;
    for (got, want) in open().zip(&batches) {
        assert_eq!(&got.unwrap(), want);
        n += 1;
    }
    assert_eq!(n, batches.len());
    // Held batches are never overwritten by the ones read after them.
    let held: Vec<_> = open().collect::<Result<_, _>>().unwrap();
    assert_eq!(held, batches);
}

#[test]
fn wanted_follows_the_framing() {
    let (schema, batches, bytes) = stream(3);
    let mut d = ArrowDecoder::new();
    let mut got = Vec::new();
    let mut at = 0;
    // Feeding exactly what the decoder says it wants completes each batch on its body.
    while let Some(want) = d.wanted() {
        assert!(want > 0 && at + want <= bytes.len(), "wanted {want} at {at} of {}", bytes.len());
        d.push(bytes.slice(at..at + want));
        at += want;
        while let Some(b) = d.next_batch().unwrap() {
            got.push(b);
        }
    }
    assert_eq!(at, bytes.len(), "the end-of-stream marker ends the framing");
    d.finish().unwrap();
    assert_eq!(d.schema().unwrap().as_ref(), &schema);
    assert_eq!(got, batches);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_chunking_decodes_the_same(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let (schema, batches, bytes) = stream(3);
        let (got_schema, got) = decode_chunked(&bytes, &cuts).unwrap();
        let got_schema = got_schema.unwrap();
        prop_assert_eq!(got_schema.as_ref(), &schema);
        prop_assert_eq!(got, batches);
    }

    #[test]
    fn any_truncation_is_an_error(len_frac in 0.0f64..1.0, cuts in proptest::collection::vec(any::<usize>(), 0..10)) {
        let (_, _, bytes) = stream(2);
        let len = ((bytes.len() as f64) * len_frac) as usize;
        prop_assert!(decode_chunked(&bytes.slice(..len.min(bytes.len() - 1)), &cuts).is_err());
    }
}

#[test]
fn batches_decode_into_rows_of_any_type() {
    let (_, batch) = all_types(4, 0);
    let rows: Vec<serde_json::Value> = hotdata_core::arrow_rows::batches_as([&batch]).unwrap();
    assert_eq!(rows.len(), 4);
    let r1 = &rows[1];
    assert_eq!(r1["i64"], 1_000_000_007);
    assert_eq!(r1["u64"], u64::MAX - 1);
    assert_eq!(r1["utf8"], "s1ü");
    assert_eq!(r1["dict"], "green");
    assert_eq!(r1["list"], serde_json::json!([10]));
    assert_eq!(r1["struct"], serde_json::json!({"a": 1, "b": "1"}));
    assert_eq!(r1["ts_utc"], "1970-01-01T00:00:00.000001Z");
    assert_eq!(r1["ts_naive"], "1970-01-01T00:00:00.001");
    assert_eq!(r1["date32"], "1970-01-02");
    assert_eq!(rows[0]["i32"], serde_json::Value::Null);

    #[derive(serde::Deserialize)]
    struct Row {
        i16: i16,
        dec128: Option<hotdata_core::Cell>,
        large_binary: Option<Vec<u8>>,
    }
    let typed: Vec<Row> = hotdata_core::arrow_rows::batches_as([&batch]).unwrap();
    assert_eq!(typed[2].i16, 2);
    assert_eq!(typed[2].dec128.as_ref().unwrap().as_json(), "20000000000000000000000000000.00");
    assert_eq!(typed[2].large_binary, Some(vec![2, 2, 2]));
    assert!(typed[0].dec128.is_none());
}

/// The messages of an IPC stream: (where the metadata starts, its length, body length).
fn messages(bytes: &[u8]) -> Vec<(usize, usize, usize)> {
    let (mut out, mut pos) = (Vec::new(), 0);
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        let body = arrow_ipc::root_as_message(&bytes[pos + 8..pos + 8 + len]).unwrap().bodyLength() as usize;
        out.push((pos + 8, len, body));
        pos += 8 + len + body;
    }
    out
}

/// `bytes` with buffer `i` of the last batch's metadata moved or resized by `change`
/// (found by its offset and length, which lie side by side in the metadata).
fn with_buffer(bytes: &Bytes, i: usize, change: impl Fn(i64, i64) -> (i64, i64)) -> Option<Bytes> {
    let &(at, len, _) = messages(bytes).last()?;
    let meta = &bytes[at..at + len];
    let message = arrow_ipc::root_as_message(meta).ok()?;
    let buffer = *message.header_as_record_batch()?.buffers()?.get(i);
    let mut pattern = buffer.offset().to_le_bytes().to_vec();
    pattern.extend_from_slice(&buffer.length().to_le_bytes());
    let found = meta.windows(16).position(|w| w == pattern.as_slice())?;
    let (offset, length) = change(buffer.offset(), buffer.length());
    let mut out = bytes.to_vec();
    out[at + found..at + found + 8].copy_from_slice(&offset.to_le_bytes());
    out[at + found + 8..at + found + 16].copy_from_slice(&length.to_le_bytes());
    Some(Bytes::from(out))
}

#[test]
fn a_buffer_outside_its_body_is_an_error_after_the_batches_before_it() {
    let (_, batches, bytes) = stream(3);
    let bad = with_buffer(&bytes, 1, |o, _| (o, 1 << 40)).expect("a buffer to corrupt");
    // The whole stream in one chunk: the two good batches still come out first.
    let mut d = ArrowDecoder::new();
    d.push(bad);
    assert_eq!(d.next_batch().unwrap().as_ref(), Some(&batches[0]));
    assert_eq!(d.next_batch().unwrap().as_ref(), Some(&batches[1]));
    let e = d.next_batch().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.to_string().contains("outside its body"), "{e}");
    assert!(d.next_batch().is_err(), "the decoder stays failed");
}

// Catching a panic needs unwinding (wasm32 aborts).
#[cfg(not(target_family = "wasm"))]
#[test]
fn a_buffer_arrow_would_panic_on_is_an_error_not_a_panic() {
    // A length that is not a whole number of values, inside the body: arrow-ipc panics
    // (`typed_data`) instead of returning an error.
    let (_, _, bytes) = stream(3);
    let message = messages(&bytes).last().copied().unwrap();
    let count = arrow_ipc::root_as_message(&bytes[message.0..message.0 + message.1])
        .unwrap()
        .header_as_record_batch()
        .unwrap()
        .buffers()
        .unwrap()
        .len();
    let mut guarded = 0;
    for i in 0..count {
        for grow in [1, 3, 5] {
            let Some(bad) = with_buffer(&bytes, i, |o, n| (o, n + grow)) else { continue };
            let r = std::panic::catch_unwind(|| decode_all(bad)).expect("a panic escaped the decoder");
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::Decode);
                guarded += e.to_string().contains("the IPC decoder failed") as usize;
            }
        }
    }
    assert!(guarded > 0, "no buffer made arrow-ipc panic: the test no longer exercises the guard");
}

// Catching a panic needs unwinding (wasm32 aborts).
#[cfg(not(target_family = "wasm"))]
#[test]
fn corrupted_streams_never_panic() {
    let (_, _, bytes) = stream(3);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut v = bytes.to_vec();
        for _ in 0..1 + next() % 4 {
            let i = next() as usize % v.len();
            v[i] = next() as u8;
        }
        // An error or (a byte of data changed) a result: never a panic.
        let _ = std::panic::catch_unwind(|| decode_all(Bytes::from(v))).expect("a panic escaped the decoder");
    }
}

/// `bytes` with every 8-byte little-endian `from` in the last message's metadata replaced
/// by `to` (a batch's row count and its columns' lengths lie there as i64s).
fn with_i64(bytes: &Bytes, from: i64, to: i64) -> Bytes {
    let &(at, len, _) = messages(bytes).last().unwrap();
    let mut out = bytes.to_vec();
    let meta = &mut out[at..at + len];
    let mut hits = 0;
    for i in 0..meta.len() - 7 {
        if meta[i..i + 8] == from.to_le_bytes() {
            meta[i..i + 8].copy_from_slice(&to.to_le_bytes());
            hits += 1;
        }
    }
    assert!(hits > 0, "{from} not found in the metadata");
    Bytes::from(out)
}

#[test]
fn a_batch_declaring_a_negative_row_count_is_an_error() {
    // Found by fuzzing: a zero-column batch of -1.9e18 rows came out as 16.5e18 rows (arrow-ipc
    // casts the count), and turning it into cells ran out of memory. No buffer bounds the row
    // count of a batch without columns, or with null columns only: the framer must.
    const ROWS: usize = 0x0123_4567;
    let zero_columns = Schema::empty();
    let options = RecordBatchOptions::new().with_row_count(Some(ROWS));
    let batch = RecordBatch::try_new_with_options(Arc::new(zero_columns.clone()), vec![], &options).unwrap();
    let nulls = Schema::new(vec![Field::new("n", DataType::Null, true)]);
    let null_batch =
        RecordBatch::try_new(Arc::new(nulls.clone()), vec![Arc::new(NullArray::new(ROWS))]).unwrap();
    for (schema, batch) in [(zero_columns, batch), (nulls, null_batch)] {
        let bytes = encode(&schema, std::slice::from_ref(&batch));
        assert_eq!(decode_all(bytes.clone()).unwrap().1[0].num_rows(), ROWS, "the untouched stream decodes");
        for negative in [-(ROWS as i64), i64::MIN] {
            let e = decode_all(with_i64(&bytes, ROWS as i64, negative)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Decode, "{e}");
            assert!(e.to_string().contains("negative"), "{e}");
        }
    }
}
