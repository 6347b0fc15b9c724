//! Property test: random schemas drawn from every Arrow type arrow-rs reads, random batches
//! (values anywhere in each type's range, nulls, nesting), written by arrow-rs's
//! `StreamWriter` with and without compression, decode to the same batches under any
//! chunking; every strict prefix is an error; and every cell has a form.
#![cfg(feature = "arrow-minimal")]

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, make_array};
use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use arrow_ipc::CompressionType;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, Field, Fields, IntervalUnit, Schema, TimeUnit, UnionFields, UnionMode};
use bytes::Bytes;
use hotdata_core::arrow::ArrowDecoder;
use hotdata_core::arrow_rows::batch_cells;
use proptest::prelude::*;

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A splitmix64 generator: the whole batch follows from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Up to `max - 1` random bytes.
    fn blob(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A validity bitmap with about a quarter nulls (none when `nullable` is false).
    fn validity(&mut self, n: usize, nullable: bool) -> Option<Buffer> {
        if !nullable {
            return None;
        }
        let mut bits = vec![0u8; n.div_ceil(8)];
        for i in 0..n {
            if self.below(4) != 0 {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        Some(aligned(bits))
    }

    fn text(&mut self) -> String {
        const PARTS: [&str; 8] =
            ["a", "zz", "é", "日本", "\"q\"", "\\", "\n", "a long string over twelve bytes"];
        (0..self.below(4)).map(|_| PARTS[self.below(PARTS.len())]).collect()
    }
}

const ZONES: [Option<&str>; 4] = [None, Some("UTC"), Some("+05:30"), Some("Asia/Tokyo")];
const UNITS: [TimeUnit; 4] =
    [TimeUnit::Second, TimeUnit::Millisecond, TimeUnit::Microsecond, TimeUnit::Nanosecond];

/// A leaf type: every primitive, temporal, decimal, string and binary type.
fn leaf_type(rng: &mut Rng) -> DataType {
    let unit = UNITS[rng.below(4)];
    match rng.below(31) {
        0 => DataType::Null,
        1 => DataType::Boolean,
        2 => DataType::Int8,
        3 => DataType::Int16,
        4 => DataType::Int32,
        5 => DataType::Int64,
        6 => DataType::UInt8,
        7 => DataType::UInt16,
        8 => DataType::UInt32,
        9 => DataType::UInt64,
        10 => DataType::Float16,
        11 => DataType::Float32,
        12 => DataType::Float64,
        13 => DataType::Decimal32(9, 2),
        14 => DataType::Decimal64(18, 3),
        15 => DataType::Decimal128(38, 10),
        16 => DataType::Decimal256(76, 20),
        17 => DataType::Date32,
        18 => DataType::Date64,
        19 => DataType::Time32([TimeUnit::Second, TimeUnit::Millisecond][rng.below(2)]),
        20 => DataType::Time64([TimeUnit::Microsecond, TimeUnit::Nanosecond][rng.below(2)]),
        21 => DataType::Timestamp(unit, ZONES[rng.below(4)].map(Arc::from)),
        22 => DataType::Duration(unit),
        23 => DataType::Interval(
            [IntervalUnit::YearMonth, IntervalUnit::DayTime, IntervalUnit::MonthDayNano][rng.below(3)],
        ),
        24 => DataType::Utf8,
        25 => DataType::LargeUtf8,
        26 => DataType::Utf8View,
        27 => DataType::Binary,
        28 => DataType::LargeBinary,
        29 => DataType::BinaryView,
        _ => DataType::FixedSizeBinary(3),
    }
}

/// Any type: a leaf, or nesting (lists of every kind, struct, map, unions, run-end encoded,
/// dictionary) over smaller types.
fn any_type(rng: &mut Rng, depth: usize) -> DataType {
    if depth == 0 || rng.below(2) == 0 {
        return leaf_type(rng);
    }
    let field = |rng: &mut Rng, name: &str| Arc::new(Field::new(name, any_type(rng, depth - 1), true));
    match rng.below(10) {
        0 => DataType::List(field(rng, "item")),
        1 => DataType::LargeList(field(rng, "item")),
        2 => DataType::ListView(field(rng, "item")),
        3 => DataType::LargeListView(field(rng, "item")),
        4 => DataType::FixedSizeList(field(rng, "item"), 2),
        5 => DataType::Struct(Fields::from(vec![field(rng, "a"), field(rng, "b")])),
        6 => {
            let key = if rng.below(2) == 0 { DataType::Utf8 } else { DataType::Int32 };
            let entries = Fields::from(vec![
                Field::new("keys", key, false),
                Field::new("values", any_type(rng, depth - 1), true),
            ]);
            DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
        }
        7 => {
            let mode = if rng.below(2) == 0 { UnionMode::Sparse } else { UnionMode::Dense };
            let fields = UnionFields::try_new(
                vec![0, 3],
                vec![field(rng, "x").as_ref().clone(), field(rng, "y").as_ref().clone()],
            )
            .unwrap();
            DataType::Union(fields, mode)
        }
        8 => DataType::RunEndEncoded(
            Arc::new(Field::new("run_ends", DataType::Int32, false)),
            Arc::new(Field::new("values", leaf_type(rng), true)),
        ),
        _ => {
            let key = if rng.below(2) == 0 { DataType::Int8 } else { DataType::Int32 };
            let value = if rng.below(2) == 0 { DataType::Utf8 } else { DataType::Int64 };
            DataType::Dictionary(Box::new(key), Box::new(value))
        }
    }
}

/// A buffer with Arrow's alignment (a `Vec<u8>`'s may not suit wider values).
fn aligned(bytes: Vec<u8>) -> Buffer {
    Buffer::from_slice_ref(&bytes)
}

fn offsets32(sizes: &[usize]) -> Buffer {
    let mut at = 0i32;
    let mut v = vec![0i32];
    for s in sizes {
        at += *s as i32;
        v.push(at);
    }
    Buffer::from_vec(v)
}

fn offsets64(sizes: &[usize]) -> Buffer {
    let mut at = 0i64;
    let mut v = vec![0i64];
    for s in sizes {
        at += *s as i64;
        v.push(at);
    }
    Buffer::from_vec(v)
}

/// `n` random values of `t`; `nullable` false for a column that may hold no nulls.
fn array(rng: &mut Rng, t: &DataType, n: usize, nullable: bool) -> ArrayData {
    let width = t.primitive_width();
    let base = ArrayData::builder(t.clone()).len(n);
    let built = match t {
        DataType::Null => base,
        DataType::Boolean => {
            base.add_buffer(aligned(rng.bytes(n.div_ceil(8)))).null_bit_buffer(rng.validity(n, nullable))
        }
        _ if width.is_some() => {
            base.add_buffer(aligned(rng.bytes(n * width.unwrap()))).null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
            let values: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    if matches!(t, DataType::Utf8 | DataType::LargeUtf8) {
                        rng.text().into_bytes()
                    } else {
                        rng.blob(6)
                    }
                })
                .collect();
            let sizes: Vec<usize> = values.iter().map(Vec::len).collect();
            let offsets = if matches!(t, DataType::Utf8 | DataType::Binary) {
                offsets32(&sizes)
            } else {
                offsets64(&sizes)
            };
            base.add_buffer(offsets)
                .add_buffer(aligned(values.concat()))
                .null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::Utf8View => {
            let a: arrow_array::StringViewArray =
                (0..n).map(|i| (!nullable || i % 4 != 0).then(|| rng.text())).collect();
            return a.into_data();
        }
        DataType::BinaryView => {
            let a: arrow_array::BinaryViewArray =
                (0..n).map(|i| (!nullable || i % 4 != 1).then(|| rng.blob(20))).collect();
            return a.into_data();
        }
        DataType::FixedSizeBinary(k) => {
            base.add_buffer(aligned(rng.bytes(n * *k as usize))).null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::List(f) | DataType::LargeList(f) => {
            let sizes: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
            let child = array(rng, f.data_type(), sizes.iter().sum(), true);
            let offsets = if matches!(t, DataType::List(_)) { offsets32(&sizes) } else { offsets64(&sizes) };
            base.add_buffer(offsets).add_child_data(child).null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::ListView(f) | DataType::LargeListView(f) => {
            let m = rng.below(8);
            let child = array(rng, f.data_type(), m, true);
            let (mut offs, mut sizes) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let o = rng.below(m + 1);
                let s = rng.below(m - o + 1);
                offs.push(o);
                sizes.push(s);
            }
            let (o, s) = if matches!(t, DataType::ListView(_)) {
                (
                    Buffer::from_vec(offs.iter().map(|v| *v as i32).collect::<Vec<_>>()),
                    Buffer::from_vec(sizes.iter().map(|v| *v as i32).collect::<Vec<_>>()),
                )
            } else {
                (
                    Buffer::from_vec(offs.iter().map(|v| *v as i64).collect::<Vec<_>>()),
                    Buffer::from_vec(sizes.iter().map(|v| *v as i64).collect::<Vec<_>>()),
                )
            };
            base.add_buffer(o).add_buffer(s).add_child_data(child).null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::FixedSizeList(f, k) => {
            let child = array(rng, f.data_type(), n * *k as usize, true);
            base.add_child_data(child).null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::Struct(fields) => {
            let children: Vec<ArrayData> =
                fields.iter().map(|f| array(rng, f.data_type(), n, f.is_nullable())).collect();
            base.child_data(children).null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::Map(entries, _) => {
            let sizes: Vec<usize> = (0..n).map(|_| rng.below(3)).collect();
            let entries = array(rng, entries.data_type(), sizes.iter().sum(), false);
            base.add_buffer(offsets32(&sizes))
                .add_child_data(entries)
                .null_bit_buffer(rng.validity(n, nullable))
        }
        DataType::Union(fields, mode) => {
            let ids: Vec<i8> = (0..n).map(|_| [0i8, 3][rng.below(2)]).collect();
            match mode {
                UnionMode::Sparse => {
                    let children = fields.iter().map(|(_, f)| array(rng, f.data_type(), n, true)).collect();
                    base.add_buffer(Buffer::from_vec(ids)).child_data(children)
                }
                UnionMode::Dense => {
                    let mut counts = [0i32; 2];
                    let offsets: Vec<i32> = ids
                        .iter()
                        .map(|id| {
                            let slot = usize::from(*id == 3);
                            counts[slot] += 1;
                            counts[slot] - 1
                        })
                        .collect();
                    let children = fields
                        .iter()
                        .enumerate()
                        .map(|(i, (_, f))| array(rng, f.data_type(), counts[i] as usize, true))
                        .collect();
                    base.add_buffer(Buffer::from_vec(ids))
                        .add_buffer(Buffer::from_vec(offsets))
                        .child_data(children)
                }
            }
        }
        DataType::RunEndEncoded(_, values) => {
            let mut ends = Vec::new();
            let mut at = 0;
            while at < n {
                at = (at + 1 + rng.below(3)).min(n);
                ends.push(at as i32);
            }
            let run_ends = ArrayData::builder(DataType::Int32)
                .len(ends.len())
                .add_buffer(Buffer::from_vec(ends.clone()))
                .build()
                .unwrap();
            let values = array(rng, values.data_type(), ends.len(), true);
            base.child_data(vec![run_ends, values])
        }
        DataType::Dictionary(key, value) => {
            let m = 1 + rng.below(5);
            let values = array(rng, value, m, true);
            let keys: Vec<u8> = match key.as_ref() {
                DataType::Int8 => (0..n).map(|_| rng.below(m) as u8).collect(),
                _ => (0..n).flat_map(|_| (rng.below(m) as i32).to_le_bytes()).collect(),
            };
            base.add_buffer(aligned(keys)).add_child_data(values).null_bit_buffer(rng.validity(n, nullable))
        }
        other => panic!("no generator for {other}"),
    };
    built.build().unwrap_or_else(|e| panic!("{t}: {e}"))
}

/// A random schema of 1–4 columns and 1–3 batches of 0–40 rows.
fn random_stream(seed: u64) -> (Arc<Schema>, Vec<RecordBatch>) {
    let mut rng = Rng(seed);
    let types: Vec<DataType> = (0..1 + rng.below(4)).map(|_| any_type(&mut rng, 2)).collect();
    let schema = Arc::new(Schema::new(
        types
            .iter()
            .enumerate()
            .map(|(i, t)| Field::new(format!("c{i}"), t.clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batches = (0..1 + rng.below(3))
        .map(|_| {
            let n = rng.below(41);
            let columns: Vec<ArrayRef> =
                types.iter().map(|t| make_array(array(&mut rng, t, n, true))).collect();
            RecordBatch::try_new(schema.clone(), columns).unwrap()
        })
        .collect();
    (schema, batches)
}

fn write(schema: &Schema, batches: &[RecordBatch], codec: Option<CompressionType>) -> Bytes {
    let options = IpcWriteOptions::default().try_with_compression(codec).unwrap();
    let mut out = Vec::new();
    let mut w = StreamWriter::try_new_with_options(&mut out, schema, options).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    drop(w);
    Bytes::from(out)
}

/// Decodes `bytes` cut at `cuts` (positions, any order, any values).
fn decode(bytes: &Bytes, cuts: &[usize]) -> Result<Vec<RecordBatch>, hotdata_core::Error> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    let mut d = ArrowDecoder::new();
    let mut out = Vec::new();
    for w in points.windows(2) {
        d.push(bytes.slice(w[0]..w[1]));
        while let Some(b) = d.next_batch()? {
            out.push(b);
        }
    }
    d.finish()?;
    Ok(out)
}

fn codecs() -> Vec<Option<CompressionType>> {
    let mut c = vec![None];
    if cfg!(feature = "arrow-lz4") {
        c.push(Some(CompressionType::LZ4_FRAME));
    }
    if cfg!(feature = "arrow-zstd") {
        c.push(Some(CompressionType::ZSTD));
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(target_arch = "wasm32") { 24 } else { 96 }))]

    #[test]
    fn random_schemas_decode_alike_under_any_chunking(
        seed in any::<u64>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
        prefixes in proptest::collection::vec(any::<usize>(), 4),
    ) {
        let (schema, batches) = random_stream(seed);
        for codec in codecs() {
            let bytes = write(&schema, &batches, codec);
            let decoded = decode(&bytes, &cuts).map_err(|e| TestCaseError::fail(format!("{codec:?}: {e}")))?;
            prop_assert_eq!(&decoded, &batches, "{:?}", codec);
            for p in &prefixes {
                let len = p % bytes.len();
                prop_assert!(decode(&bytes.slice(..len), &cuts).is_err(), "{:?}: a {}-byte prefix decoded", codec, len);
            }
        }
        for b in &batches {
            let cells = batch_cells(b).map_err(|e| TestCaseError::fail(format!("{}: {e}", b.schema())))?;
            prop_assert_eq!(cells.len(), b.num_rows());
        }
    }
}
