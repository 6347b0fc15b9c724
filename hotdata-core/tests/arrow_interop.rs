//! Arrow streams written by a different implementation (C++ Arrow, through pyarrow) decode
//! to the same record batches as their plain twins, under any chunking, compressed or not,
//! with dictionary deltas and replacements; and every type in them has a cell form.
//!
//! The fixtures and the script that writes them are in `tests/fixtures/arrow/` (see its
//! README). They are compiled in (`include_bytes!`) so these tests run on wasm32 too.
#![cfg(feature = "arrow-minimal")]

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, make_array};
use arrow_data::{ArrayData, transform::MutableArrayData};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use hotdata_core::arrow::ArrowDecoder;
use hotdata_core::arrow_rows::{batch_cells, batches_as};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

macro_rules! fixtures {
    ($($file:literal),* $(,)?) => {
        &[$(($file, include_bytes!(concat!("../../tests/fixtures/arrow/", $file)) as &[u8])),*]
    };
}

/// Every fixture file (a native test checks that the directory holds no others).
const FIXTURES: &[(&str, &[u8])] = fixtures![
    "compressed.plain.arrows",
    "compressed_lz4.arrows",
    "compressed_zstd.arrows",
    "dict_delta.arrows",
    "dict_delta.plain.arrows",
    "dict_delta_zstd.arrows",
    "dict_replacement.arrows",
    "dict_replacement.plain.arrows",
    "empty_zero_row_batch.arrows",
    "empty_zero_rows.arrows",
    "many_small_batches.arrows",
    "types_binary.arrows",
    "types_binary_view.arrows",
    "types_boolean.arrows",
    "types_decimal128_256.arrows",
    "types_decimal32_64.arrows",
    "types_dictionary.arrows",
    "types_floats.arrows",
    "types_integers.arrows",
    "types_interval.arrows",
    "types_list_view.arrows",
    "types_nested.arrows",
    "types_nested_lz4.arrows",
    "types_null.arrows",
    "types_run_end_encoded.arrows",
    "types_temporal.arrows",
    "types_temporal_zstd.arrows",
    "types_union.arrows",
    "zero_columns.arrows",
];

const MANIFEST: &str = include_str!("../../tests/fixtures/arrow/manifest.json");

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    name: String,
    file: String,
    twin: Option<String>,
    twin_kind: Option<String>,
    compression: Option<String>,
    rows: usize,
    batches: usize,
    columns: usize,
}

impl Entry {
    /// Whether this build has the fixture's codec (`a_missing_codec_is_named_with_its_feature`
    /// in `arrow_compression.rs` covers a build without).
    // A `matches!` only in builds without both codecs: the match reads the same in all.
    #[allow(clippy::match_like_matches_macro)]
    fn decodable(&self) -> bool {
        match self.compression.as_deref() {
            Some("lz4_frame") => cfg!(feature = "arrow-lz4"),
            Some("zstd") => cfg!(feature = "arrow-zstd"),
            _ => true,
        }
    }
}

fn manifest() -> Manifest {
    serde_json::from_str(MANIFEST).expect("manifest.json")
}

fn bytes_of(file: &str) -> Bytes {
    let (_, bytes) =
        FIXTURES.iter().find(|(f, _)| *f == file).unwrap_or_else(|| panic!("{file} not compiled in"));
    Bytes::from_static(bytes)
}

/// A repeatable sequence of chunk lengths (splitmix64), so a failure names its seed.
fn chunk_lengths(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let z = z ^ (z >> 31);
        // Mostly small cuts (inside words, metadata and buffer prefixes), some large.
        if z.is_multiple_of(4) { (z >> 8) as usize % 4096 + 1 } else { (z >> 8) as usize % 13 + 1 }
    }
}

/// Decodes `bytes` pushed in chunks cut by `seed` (0: one chunk).
fn decode(bytes: &Bytes, seed: u64) -> (Arc<Schema>, Vec<RecordBatch>) {
    let mut decoder = ArrowDecoder::new();
    let mut next = chunk_lengths(seed);
    let mut batches = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = if seed == 0 { bytes.len() } else { next().min(bytes.len() - at) };
        decoder.push(bytes.slice(at..at + n));
        at += n;
        while let Some(b) = decoder.next_batch().unwrap_or_else(|e| panic!("seed {seed}: {e}")) {
            batches.push(b);
        }
    }
    decoder.finish().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    (decoder.schema().unwrap(), batches)
}

#[test]
fn every_fixture_decodes_alike_under_any_chunking_with_the_manifest_counts() {
    for e in manifest().fixtures.into_iter().filter(Entry::decodable) {
        let bytes = bytes_of(&e.file);
        let (schema, whole) = decode(&bytes, 0);
        assert_eq!(schema.fields().len(), e.columns, "{}", e.name);
        assert_eq!(whole.len(), e.batches, "{}", e.name);
        assert_eq!(whole.iter().map(RecordBatch::num_rows).sum::<usize>(), e.rows, "{}", e.name);
        for seed in 1..=4 {
            let (s, chunked) = decode(&bytes, seed);
            assert_eq!(s, schema, "{} seed {seed}", e.name);
            assert_eq!(chunked, whole, "{} seed {seed}", e.name);
        }
    }
}

#[test]
fn compressed_and_dictionary_fixtures_equal_their_plain_twins() {
    let mut compared = 0;
    let fixtures = manifest().fixtures;
    let expected = fixtures.iter().filter(|e| e.twin.is_some() && e.decodable()).count();
    for e in fixtures.into_iter().filter(Entry::decodable) {
        let (Some(twin), Some(kind)) = (&e.twin, &e.twin_kind) else { continue };
        let (schema, batches) = decode(&bytes_of(&e.file), 7);
        let (twin_schema, twin_batches) = decode(&bytes_of(twin), 0);
        match kind.as_str() {
            "same" => {
                assert_eq!(schema, twin_schema, "{}", e.name);
                assert_eq!(batches, twin_batches, "{}", e.name);
            }
            "dictionary_decoded" => {
                let plain: Vec<RecordBatch> = batches.iter().map(undictionary_batch).collect();
                assert_eq!(plain.len(), twin_batches.len(), "{}", e.name);
                for (i, (p, t)) in plain.iter().zip(&twin_batches).enumerate() {
                    for (c, (a, b)) in p.columns().iter().zip(t.columns()).enumerate() {
                        assert_eq!(a.data_type(), b.data_type(), "{} batch {i} column {c}", e.name);
                        assert_eq!(a.to_data(), b.to_data(), "{} batch {i} column {c}", e.name);
                    }
                }
            }
            other => panic!("unknown twin kind {other}"),
        }
        compared += 1;
    }
    assert_eq!(compared, expected);
    let all = manifest().fixtures;
    let twinned = all.iter().filter(|e| e.twin.is_some()).count();
    let special = all.iter().filter(|e| e.compression.is_some() || e.file.starts_with("dict_")).count();
    assert_eq!(twinned, 7, "every compressed and dictionary fixture has a twin");
    assert_eq!(special, twinned + 2, "the two plain dictionary twins are the only special files without one");
}

#[test]
fn every_strict_prefix_of_a_compressed_fixture_is_an_error() {
    let files = ["compressed_zstd.arrows", "types_nested_lz4.arrows", "dict_delta_zstd.arrows"];
    for file in
        files.into_iter().filter(|f| manifest().fixtures.iter().any(|e| e.file == *f && e.decodable()))
    {
        let bytes = bytes_of(file);
        let step = (bytes.len() / 97).max(1);
        for len in (0..bytes.len()).step_by(step).chain([bytes.len() - 1, bytes.len() - 4]) {
            let mut d = ArrowDecoder::new();
            d.push(bytes.slice(..len));
            let ok = (|| {
                while d.next_batch()?.is_some() {}
                d.finish()
            })();
            assert!(ok.is_err(), "{file}: a {len}-byte prefix decoded as a whole stream");
        }
    }
}

#[test]
fn every_fixture_type_has_cells_and_typed_rows() {
    for e in manifest().fixtures.into_iter().filter(Entry::decodable) {
        let (_, batches) = decode(&bytes_of(&e.file), 0);
        for b in &batches {
            let cells = batch_cells(b).unwrap_or_else(|err| panic!("{}: {err}", e.name));
            assert_eq!(cells.len(), b.num_rows());
        }
        let rows: Vec<serde_json::Value> =
            batches_as(&batches).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        assert_eq!(rows.len(), e.rows, "{}", e.name);
    }
}

/// The cells of `column` in `file`'s first batch, as JSON text.
fn cells(file: &str, column: &str) -> Vec<String> {
    let (schema, batches) = decode(&bytes_of(file), 0);
    let i = schema.index_of(column).unwrap();
    batch_cells(&batches[0]).unwrap().iter().map(|row| row[i].as_json().to_owned()).collect()
}

#[test]
fn cells_keep_zones_units_and_exact_values() {
    let f = "types_temporal.arrows";
    assert_eq!(
        &cells(f, "timestamp_s_utc")[..3],
        ["\"1970-01-01T00:00:00Z\"", "\"1969-12-31T23:59:59Z\"", "\"2023-11-14T22:13:20Z\""]
    );
    assert_eq!(
        &cells(f, "timestamp_s_new_york")[..3],
        [
            "\"1970-01-01T00:00:00Z[America/New_York]\"",
            "\"1969-12-31T23:59:59Z[America/New_York]\"",
            "\"2023-11-14T22:13:20Z[America/New_York]\""
        ]
    );
    assert_eq!(
        &cells(f, "timestamp_s_plus0530")[..3],
        ["\"1970-01-01T05:30:00+05:30\"", "\"1970-01-01T05:29:59+05:30\"", "\"2023-11-15T03:43:20+05:30\""]
    );
    assert_eq!(&cells(f, "timestamp_s_no_tz")[..2], ["\"1970-01-01T00:00:00\"", "\"1969-12-31T23:59:59\""]);
    assert_eq!(&cells(f, "duration_ms")[..3], ["\"PT0S\"", "\"-PT0.001S\"", "\"PT86.4S\""]);
    assert_eq!(&cells(f, "date64_ms")[..3], ["\"1970-01-01\"", "\"1969-12-31\"", "\"2022-01-08\""]);
    let u = cells("types_union.arrows", "dense_union_int32_utf8_codes_5_10");
    assert_eq!(&u[..2], ["{\"int\":1}", "{\"str\":\"a\"}"]);
}

#[test]
fn the_fixture_directory_holds_only_compiled_in_fixtures() {
    if cfg!(target_arch = "wasm32") {
        return; // no file system under the wasm test runner
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/arrow");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".arrows"))
        .collect();
    on_disk.sort();
    let compiled: Vec<String> = FIXTURES.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(on_disk, compiled);
    let listed: std::collections::BTreeSet<String> =
        manifest().fixtures.into_iter().map(|e| e.file).collect();
    assert_eq!(listed.into_iter().collect::<Vec<_>>(), compiled);
}

/// `batch` with every dictionary column (nested ones too) replaced by its values.
fn undictionary_batch(batch: &RecordBatch) -> RecordBatch {
    let columns: Vec<ArrayRef> =
        batch.columns().iter().map(|c| make_array(undictionary(&c.to_data()))).collect();
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// The type with every dictionary replaced by its value type.
fn plain_type(t: &DataType) -> DataType {
    let field = |f: &Arc<Field>| Arc::new(f.as_ref().clone().with_data_type(plain_type(f.data_type())));
    match t {
        DataType::Dictionary(_, v) => plain_type(v),
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(field).collect()),
        other => other.clone(),
    }
}

fn undictionary(data: &ArrayData) -> ArrayData {
    if let DataType::Dictionary(key, _) = data.data_type() {
        let keys = make_array(
            data.clone().into_builder().data_type((**key).clone()).child_data(vec![]).build().unwrap(),
        );
        let keys = widen_keys(keys.as_ref());
        let values = undictionary(&data.child_data()[0]);
        let mut out = MutableArrayData::new(vec![&values], true, keys.len());
        for k in keys.iter() {
            match k {
                Some(k) => out.try_extend(0, k as usize, k as usize + 1).unwrap(),
                None => out.try_extend_nulls(1).unwrap(),
            }
        }
        return out.freeze();
    }
    if data.child_data().is_empty() {
        return data.clone();
    }
    let children: Vec<ArrayData> = data.child_data().iter().map(undictionary).collect();
    data.clone().into_builder().data_type(plain_type(data.data_type())).child_data(children).build().unwrap()
}

/// Dictionary keys of any integer type as `Int64`.
fn widen_keys(keys: &dyn Array) -> arrow_array::Int64Array {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    macro_rules! widen {
        ($t:ty) => {
            keys.as_primitive::<$t>().iter().map(|v| v.map(|v| v as i64)).collect()
        };
    }
    match keys.data_type() {
        DataType::Int8 => widen!(Int8Type),
        DataType::Int16 => widen!(Int16Type),
        DataType::Int32 => widen!(Int32Type),
        DataType::Int64 => widen!(Int64Type),
        DataType::UInt8 => widen!(UInt8Type),
        DataType::UInt16 => widen!(UInt16Type),
        DataType::UInt32 => widen!(UInt32Type),
        DataType::UInt64 => widen!(UInt64Type),
        other => panic!("dictionary keys of type {other}"),
    }
}

#[test]
fn every_fixture_decodes_from_any_memory_alignment() {
    for e in manifest().fixtures.into_iter().filter(Entry::decodable) {
        let bytes = bytes_of(&e.file);
        let (_, expected) = decode(&bytes, 0);
        for shift in 1..16 {
            // The stream starts `shift` bytes into an allocation: its bodies are as misaligned
            // in memory as a network chunk may leave them.
            let mut v = vec![0u8; shift];
            v.extend_from_slice(&bytes);
            let moved = Bytes::from(v).slice(shift..);
            let mut d = ArrowDecoder::new();
            d.push(moved);
            let mut got = Vec::new();
            while let Some(b) = d.next_batch().unwrap_or_else(|err| panic!("{} shift {shift}: {err}", e.name))
            {
                got.push(b);
            }
            d.finish().unwrap();
            assert_eq!(got, expected, "{} shift {shift}", e.name);
        }
    }
}
