//! Arrow record batches as rows: lossless JSON cells, or your own types (feature `arrow`).
//!
//! Each row is written as one JSON object keyed by column name, then kept as
//! [`Cell`]s ([`batch_cells`]) or deserialized into `T` ([`batches_as`], like
//! [`crate::models::rows_as`] does for JSON results). Every Arrow type arrow-rs reads has a
//! cell form, nothing is rounded, and each column is prepared once per batch, so a batch is
//! written in time linear in its size (a dictionary's keys are normalized once, not per
//! cell).
//!
//! | Arrow type | cell |
//! |---|---|
//! | null | `null` (a null of any type too) |
//! | boolean | `true` / `false` |
//! | integers of every width | the exact integer |
//! | `Float16`, `Float32`, `Float64` | the shortest text that reads back to the same value in its own width (`0.1` for an `f32` 0.1, `1e300`); NaN and infinities as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | decimals of every width (32 to 256 bits) | the exact number text with its scale (`12345678901234567890.12`; read it through a `Cell` or a string to keep it whole) |
//! | `Date32`, `Date64` | `"2024-01-31"`; a `Date64` that is not a whole day keeps its time: `"2024-01-31T06:00:00.5"`; years outside 0–9999 as `"+10000-01-01"`, `"-0001-01-01"` |
//! | `Time32`, `Time64` | `"13:45:00"`, with as many fraction digits as needed (`"13:45:00.000001"`); a time outside the day (invalid in Arrow) as its offset from midnight, like a duration |
//! | `Timestamp` without zone | `"2024-01-31T13:45:00.123"` (local date-time, no offset) |
//! | `Timestamp` with zone `UTC` or `Z` | `"2024-01-31T13:45:00.123Z"` |
//! | `Timestamp` with an offset zone (`+05:30`) | the wall time there with its offset: `"2024-01-31T19:15:00.123+05:30"` |
//! | `Timestamp` with a named zone | the instant in UTC with the zone kept as an RFC 9557 suffix: `"2024-01-31T13:45:00Z[America/New_York]"` (the SDK has no time zone database to compute the local time) |
//! | `Duration` (any unit) | ISO 8601 seconds: `"PT90.5S"`, `"-PT0.000000001S"` |
//! | `Interval(YearMonth)` | `{"months": 14}` |
//! | `Interval(DayTime)` | `{"days": 1, "milliseconds": -500}` (parts may differ in sign) |
//! | `Interval(MonthDayNano)` | `{"months": 1, "days": 2, "nanoseconds": 3}` |
//! | strings (plain, large, view) | JSON strings |
//! | binaries (plain, large, view, fixed size) | arrays of byte values: `[0, 255]` |
//! | lists (plain, large, view, large view, fixed size) | arrays |
//! | `Struct` | an object of its fields |
//! | `Map` with string keys | an object, entries in order (duplicate keys stay in the text) |
//! | `Map` with other keys | an array of `[key, value]` pairs |
//! | `Union` (sparse, dense) | `{"<variant field name>": value}`, which deserializes into a Rust enum |
//! | `RunEndEncoded`, `Dictionary` | the value they stand for |
//!
//! Each form is reversible given the column's Arrow type (the schema), which is where the
//! unit, scale, zone and key types live.

use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, RecordBatch, RunArray};
use arrow_schema::{DataType, IntervalUnit, TimeUnit, UnionMode};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::models::Cell;

/// Decodes every row of `batches` into `T`.
pub fn batches_as<'a, T: DeserializeOwned>(
    batches: impl IntoIterator<Item = &'a RecordBatch>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    let mut text = String::new();
    for batch in batches {
        let mut row = RowWriter::new(batch)?;
        for i in 0..batch.num_rows() {
            text.clear();
            row.write(i, &mut text)?;
            let value = serde_json::from_str(&text).map_err(|e| {
                Error::decode(
                    format!("row {} does not fit the target type: {e}", out.len()),
                    Some(Box::new(e)),
                )
            })?;
            out.push(value);
        }
    }
    Ok(out)
}

/// The rows of `batch` as lossless JSON [`Cell`]s, one per column (see the [module
/// docs](self) for each type's form).
pub fn batch_cells(batch: &RecordBatch) -> Result<Vec<Vec<Cell>>, Error> {
    let mut columns: Vec<Encoder<'_>> =
        batch.columns().iter().map(|c| Encoder::new(c.as_ref())).collect::<Result<_, _>>()?;
    let mut text = String::new();
    (0..batch.num_rows())
        .map(|row| {
            columns
                .iter_mut()
                .map(|c| {
                    text.clear();
                    c.write(row, &mut text)?;
                    Cell::from_json(&text)
                        .ok_or_else(|| Error::decode(format!("Arrow cell is not JSON: {text}"), None))
                })
                .collect()
        })
        .collect()
}

/// Writes the rows of one batch as JSON objects.
struct RowWriter<'a> {
    /// Each column's name as a JSON string, with its `:`.
    keys: Vec<String>,
    columns: Vec<Encoder<'a>>,
}

impl<'a> RowWriter<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Self, Error> {
        let schema = batch.schema();
        let keys = schema.fields().iter().map(|f| format!("{}:", json_str(f.name()))).collect();
        let columns = batch.columns().iter().map(|c| Encoder::new(c.as_ref())).collect::<Result<_, _>>()?;
        Ok(Self { keys, columns })
    }

    fn write(&mut self, row: usize, out: &mut String) -> Result<(), Error> {
        out.push('{');
        for (i, (key, column)) in self.keys.iter().zip(&mut self.columns).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(key);
            column.write(row, out)?;
        }
        out.push('}');
        Ok(())
    }
}

fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&json_str(s));
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const NANOS_PER_SEC: i128 = 1_000_000_000;
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SEC;

/// Writes a date (ISO 8601, years outside 0–9999 with a sign), without quotes.
fn write_date(out: &mut String, days: i64) {
    let (y, m, d) = civil(days);
    if (0..=9999).contains(&y) {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    } else {
        let _ = write!(out, "{y:+05}-{m:02}-{d:02}");
    }
}

/// Writes the fraction of a second (`.5`, `.000001`), nothing for a whole second.
fn write_fraction(out: &mut String, nanos: i128) {
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        let _ = write!(out, ".{}", frac.trim_end_matches('0'));
    }
}

/// Writes a time of day from nanoseconds since midnight (`0 <= nanos < 1 day`), without
/// quotes.
fn write_time_of_day(out: &mut String, nanos: i128) {
    let (s, n) = (nanos / NANOS_PER_SEC, nanos % NANOS_PER_SEC);
    let _ = write!(out, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    write_fraction(out, n);
}

/// Writes a date-time from nanoseconds since the epoch, without quotes or offset.
fn write_date_time(out: &mut String, nanos: i128) {
    let (days, rest) = (nanos.div_euclid(NANOS_PER_DAY), nanos.rem_euclid(NANOS_PER_DAY));
    write_date(out, days as i64);
    out.push('T');
    write_time_of_day(out, rest);
}

/// Writes a signed ISO 8601 duration in seconds, without quotes.
fn write_duration(out: &mut String, nanos: i128) {
    if nanos < 0 {
        out.push('-');
    }
    let abs = nanos.unsigned_abs();
    let _ = write!(out, "PT{}", abs / 1_000_000_000);
    write_fraction(out, (abs % 1_000_000_000) as i128);
    out.push('S');
}

fn unit_nanos(unit: &TimeUnit) -> i128 {
    match unit {
        TimeUnit::Second => NANOS_PER_SEC,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// A timestamp column's zone, read once.
enum Zone {
    /// No zone: a local date-time.
    Naive,
    /// UTC: `Z`.
    Utc,
    /// A fixed offset in seconds, and its text as written in the cell (`+05:30`).
    Offset(i32, String),
    /// A named zone, kept as an RFC 9557 suffix.
    Named(String),
}

impl Zone {
    fn new(tz: Option<&str>) -> Self {
        let Some(tz) = tz else { return Zone::Naive };
        if tz.eq_ignore_ascii_case("utc") || tz == "Z" || tz == "z" {
            return Zone::Utc;
        }
        match parse_offset(tz) {
            Some(secs) => {
                let (sign, abs) = (if secs < 0 { '-' } else { '+' }, secs.unsigned_abs());
                Zone::Offset(secs, format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60))
            }
            None => Zone::Named(tz.to_owned()),
        }
    }
}

/// `±HH:MM`, `±HHMM` or `±HH` as seconds east of UTC.
fn parse_offset(tz: &str) -> Option<i32> {
    let sign = match tz.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = tz[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || tz[1..].len() > 5 {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// One column, prepared to write any of its cells: what each type needs is computed once
/// (dictionary keys normalized, union children and map key kinds found).
struct Encoder<'a> {
    array: &'a dyn Array,
    kind: Kind<'a>,
}

enum Kind<'a> {
    Null,
    Bool,
    /// A number written by this function: integers and decimals exactly, floats in their
    /// shortest form (see [`exact`], [`decimal`], [`float`]).
    Number(fn(&dyn Array, usize, &mut String)),
    Date32,
    Date64,
    Time(i128, fn(&dyn Array, usize) -> i64),
    Timestamp(i128, Zone, fn(&dyn Array, usize) -> i64),
    Duration(i128, fn(&dyn Array, usize) -> i64),
    Interval(IntervalUnit),
    Str(fn(&dyn Array, usize) -> &str),
    Bytes(fn(&dyn Array, usize) -> &[u8]),
    /// Any list: the child values and each row's `(start, length)` within them.
    List(Box<Encoder<'a>>, fn(&dyn Array, usize) -> (usize, usize)),
    Struct(Vec<(String, Encoder<'a>)>),
    /// Entries as an object (string keys) or as `[key, value]` pairs.
    Map {
        keys: Box<Encoder<'a>>,
        values: Box<Encoder<'a>>,
        object: bool,
    },
    /// By type id: the variant's key (`"name":`) and its child.
    Union {
        dense: bool,
        variants: Vec<Option<(String, Encoder<'a>)>>,
    },
    /// The values and each row's index into them.
    Indexed(Box<Encoder<'a>>, Vec<usize>),
    RunEnds(Box<Encoder<'a>>, fn(&dyn Array, usize) -> usize),
}

fn exact<T: ArrowPrimitiveType>(a: &dyn Array, row: usize, out: &mut String)
where
    T::Native: std::fmt::Display,
{
    let _ = write!(out, "{}", a.as_primitive::<T>().value(row));
}

/// A float as the shortest text that reads back to the same value in its own width
/// (Rust's `Debug`), or a string for NaN and the infinities.
fn float<T: ArrowPrimitiveType>(a: &dyn Array, row: usize, out: &mut String)
where
    T::Native: std::fmt::Debug,
    f64: From<T::Native>,
{
    let v = a.as_primitive::<T>().value(row);
    let wide = f64::from(v);
    if wide.is_finite() {
        let _ = write!(out, "{v:?}");
    } else if wide.is_nan() {
        out.push_str("\"NaN\"");
    } else {
        out.push_str(if wide > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    }
}

fn decimal<T: DecimalType>(a: &dyn Array, row: usize, out: &mut String) {
    out.push_str(&a.as_primitive::<T>().value_as_string(row));
}

fn prim<T: ArrowPrimitiveType>(a: &dyn Array, row: usize) -> i64
where
    T::Native: Into<i64>,
{
    a.as_primitive::<T>().value(row).into()
}

fn list_range<O: arrow_array::OffsetSizeTrait>(a: &dyn Array, row: usize) -> (usize, usize) {
    let offsets = a.as_list::<O>().value_offsets();
    let (start, end) = (offsets[row].as_usize(), offsets[row + 1].as_usize());
    (start, end.saturating_sub(start))
}

fn list_view_range<O: arrow_array::OffsetSizeTrait>(a: &dyn Array, row: usize) -> (usize, usize) {
    let l = a.as_list_view::<O>();
    (l.value_offsets()[row].as_usize(), l.value_sizes()[row].as_usize())
}

fn fixed_list_range(a: &dyn Array, row: usize) -> (usize, usize) {
    let l = a.as_fixed_size_list();
    let n = l.value_length() as usize;
    (row * n, n)
}

fn map_range(a: &dyn Array, row: usize) -> (usize, usize) {
    let offsets = a.as_map().value_offsets();
    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
    (start, end.saturating_sub(start))
}

fn run_index<R: RunEndIndexType>(a: &dyn Array, row: usize) -> usize {
    let run: &RunArray<R> = a.as_run::<R>();
    run.get_physical_index(row)
}

fn is_string_like(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string_like(v),
        _ => false,
    }
}

impl<'a> Encoder<'a> {
    fn new(array: &'a dyn Array) -> Result<Self, Error> {
        use DataType as D;
        let child = |a: &'a ArrayRef| Encoder::new(a.as_ref()).map(Box::new);
        let kind = match array.data_type() {
            D::Null => Kind::Null,
            D::Boolean => Kind::Bool,
            D::Int8 => Kind::Number(exact::<Int8Type>),
            D::Int16 => Kind::Number(exact::<Int16Type>),
            D::Int32 => Kind::Number(exact::<Int32Type>),
            D::Int64 => Kind::Number(exact::<Int64Type>),
            D::UInt8 => Kind::Number(exact::<UInt8Type>),
            D::UInt16 => Kind::Number(exact::<UInt16Type>),
            D::UInt32 => Kind::Number(exact::<UInt32Type>),
            D::UInt64 => Kind::Number(exact::<UInt64Type>),
            D::Decimal32(..) => Kind::Number(decimal::<Decimal32Type>),
            D::Decimal64(..) => Kind::Number(decimal::<Decimal64Type>),
            D::Decimal128(..) => Kind::Number(decimal::<Decimal128Type>),
            D::Decimal256(..) => Kind::Number(decimal::<Decimal256Type>),
            D::Float16 => Kind::Number(float::<Float16Type>),
            D::Float32 => Kind::Number(float::<Float32Type>),
            D::Float64 => Kind::Number(float::<Float64Type>),
            D::Date32 => Kind::Date32,
            D::Date64 => Kind::Date64,
            D::Time32(TimeUnit::Second) => Kind::Time(NANOS_PER_SEC, prim::<Time32SecondType>),
            D::Time32(TimeUnit::Millisecond) => Kind::Time(1_000_000, prim::<Time32MillisecondType>),
            D::Time64(TimeUnit::Microsecond) => Kind::Time(1_000, prim::<Time64MicrosecondType>),
            D::Time64(TimeUnit::Nanosecond) => Kind::Time(1, prim::<Time64NanosecondType>),
            D::Timestamp(unit, tz) => {
                let value: fn(&dyn Array, usize) -> i64 = match unit {
                    TimeUnit::Second => prim::<TimestampSecondType>,
                    TimeUnit::Millisecond => prim::<TimestampMillisecondType>,
                    TimeUnit::Microsecond => prim::<TimestampMicrosecondType>,
                    TimeUnit::Nanosecond => prim::<TimestampNanosecondType>,
                };
                Kind::Timestamp(unit_nanos(unit), Zone::new(tz.as_deref()), value)
            }
            D::Duration(unit) => {
                let value: fn(&dyn Array, usize) -> i64 = match unit {
                    TimeUnit::Second => prim::<DurationSecondType>,
                    TimeUnit::Millisecond => prim::<DurationMillisecondType>,
                    TimeUnit::Microsecond => prim::<DurationMicrosecondType>,
                    TimeUnit::Nanosecond => prim::<DurationNanosecondType>,
                };
                Kind::Duration(unit_nanos(unit), value)
            }
            D::Interval(unit) => Kind::Interval(*unit),
            D::Utf8 => Kind::Str(|a, row| a.as_string::<i32>().value(row)),
            D::LargeUtf8 => Kind::Str(|a, row| a.as_string::<i64>().value(row)),
            D::Utf8View => Kind::Str(|a, row| a.as_string_view().value(row)),
            D::Binary => Kind::Bytes(|a, row| a.as_binary::<i32>().value(row)),
            D::LargeBinary => Kind::Bytes(|a, row| a.as_binary::<i64>().value(row)),
            D::BinaryView => Kind::Bytes(|a, row| a.as_binary_view().value(row)),
            D::FixedSizeBinary(_) => Kind::Bytes(|a, row| a.as_fixed_size_binary().value(row)),
            D::List(_) => Kind::List(child(array.as_list::<i32>().values())?, list_range::<i32>),
            D::LargeList(_) => Kind::List(child(array.as_list::<i64>().values())?, list_range::<i64>),
            D::ListView(_) => {
                Kind::List(child(array.as_list_view::<i32>().values())?, list_view_range::<i32>)
            }
            D::LargeListView(_) => {
                Kind::List(child(array.as_list_view::<i64>().values())?, list_view_range::<i64>)
            }
            D::FixedSizeList(..) => Kind::List(child(array.as_fixed_size_list().values())?, fixed_list_range),
            D::Struct(fields) => Kind::Struct(
                fields
                    .iter()
                    .zip(array.as_struct().columns())
                    .map(|(f, c)| Ok((format!("{}:", json_str(f.name())), Encoder::new(c.as_ref())?)))
                    .collect::<Result<_, Error>>()?,
            ),
            D::Map(..) => {
                let map = array.as_map();
                Kind::Map {
                    object: is_string_like(map.keys().data_type()),
                    keys: child(map.keys())?,
                    values: child(map.values())?,
                }
            }
            D::Union(fields, mode) => {
                let union = array.as_union();
                let mut variants: Vec<Option<(String, Encoder<'a>)>> = (0..128).map(|_| None).collect();
                for (id, field) in fields.iter() {
                    let key = format!("{{{}:", json_str(field.name()));
                    let slot =
                        usize::try_from(id).ok().and_then(|i| variants.get_mut(i)).ok_or_else(|| {
                            Error::decode(format!("union type id {id} is outside 0..=127"), None)
                        })?;
                    *slot = Some((key, Encoder::new(union.child(id).as_ref())?));
                }
                Kind::Union { dense: *mode == UnionMode::Dense, variants }
            }
            D::Dictionary(..) => {
                let dict = array.as_any_dictionary();
                let values = child(dict.values())?;
                let n = dict.values().len();
                // arrow's normalization asserts there are values; with none, only null keys
                // are valid (and they are never looked up).
                let keys = if n == 0 { vec![usize::MAX; dict.keys().len()] } else { dict.normalized_keys() };
                if let Some(bad) =
                    keys.iter().enumerate().find(|(row, k)| **k >= n && !dict.keys().is_null(*row))
                {
                    return Err(Error::decode(
                        format!("dictionary key {} of row {} is outside its {n} values", bad.1, bad.0),
                        None,
                    ));
                }
                Kind::Indexed(values, keys)
            }
            D::RunEndEncoded(ends, _) => {
                let index: fn(&dyn Array, usize) -> usize = match ends.data_type() {
                    D::Int16 => run_index::<Int16Type>,
                    D::Int32 => run_index::<Int32Type>,
                    _ => run_index::<Int64Type>,
                };
                let values = match ends.data_type() {
                    D::Int16 => array.as_run::<Int16Type>().values(),
                    D::Int32 => array.as_run::<Int32Type>().values(),
                    _ => array.as_run::<Int64Type>().values(),
                };
                Kind::RunEnds(child(values)?, index)
            }
            other => {
                return Err(Error::decode(
                    format!("Arrow type {other} has no cell form in this version"),
                    None,
                ));
            }
        };
        Ok(Self { array, kind })
    }

    /// Writes the cell of `row` as JSON.
    fn write(&mut self, row: usize, out: &mut String) -> Result<(), Error> {
        let a = self.array;
        if a.nulls().is_some_and(|n| n.is_null(row)) {
            out.push_str("null");
            return Ok(());
        }
        match &mut self.kind {
            Kind::Null => out.push_str("null"),
            Kind::Bool => out.push_str(if a.as_boolean().value(row) { "true" } else { "false" }),
            Kind::Number(f) => f(a, row, out),
            Kind::Date32 => {
                out.push('"');
                write_date(out, i64::from(a.as_primitive::<Date32Type>().value(row)));
                out.push('"');
            }
            Kind::Date64 => {
                let ms = i128::from(a.as_primitive::<Date64Type>().value(row));
                out.push('"');
                if ms % 86_400_000 == 0 {
                    write_date(out, (ms / 86_400_000) as i64);
                } else {
                    write_date_time(out, ms * 1_000_000);
                }
                out.push('"');
            }
            Kind::Time(unit, value) => {
                let nanos = i128::from(value(a, row)) * *unit;
                out.push('"');
                if (0..NANOS_PER_DAY).contains(&nanos) {
                    write_time_of_day(out, nanos);
                } else {
                    write_duration(out, nanos);
                }
                out.push('"');
            }
            Kind::Timestamp(unit, zone, value) => {
                let nanos = i128::from(value(a, row)) * *unit;
                out.push('"');
                match zone {
                    Zone::Naive => write_date_time(out, nanos),
                    Zone::Utc => {
                        write_date_time(out, nanos);
                        out.push('Z');
                    }
                    Zone::Offset(secs, text) => {
                        write_date_time(out, nanos + i128::from(*secs) * NANOS_PER_SEC);
                        out.push_str(text);
                    }
                    Zone::Named(name) => {
                        write_date_time(out, nanos);
                        out.push('Z');
                        // The zone name may hold anything: escape it as JSON string content.
                        let quoted = json_str(&format!("[{name}]"));
                        out.push_str(&quoted[1..quoted.len() - 1]);
                    }
                }
                out.push('"');
            }
            Kind::Duration(unit, value) => {
                out.push('"');
                write_duration(out, i128::from(value(a, row)) * *unit);
                out.push('"');
            }
            Kind::Interval(IntervalUnit::YearMonth) => {
                let _ =
                    write!(out, "{{\"months\":{}}}", a.as_primitive::<IntervalYearMonthType>().value(row));
            }
            Kind::Interval(IntervalUnit::DayTime) => {
                let v = a.as_primitive::<IntervalDayTimeType>().value(row);
                let _ = write!(out, "{{\"days\":{},\"milliseconds\":{}}}", v.days, v.milliseconds);
            }
            Kind::Interval(IntervalUnit::MonthDayNano) => {
                let v = a.as_primitive::<IntervalMonthDayNanoType>().value(row);
                let _ = write!(
                    out,
                    "{{\"months\":{},\"days\":{},\"nanoseconds\":{}}}",
                    v.months, v.days, v.nanoseconds
                );
            }
            Kind::Str(value) => push_json_str(out, value(a, row)),
            Kind::Bytes(value) => {
                out.push('[');
                for (i, b) in value(a, row).iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{b}");
                }
                out.push(']');
            }
            Kind::List(values, range) => {
                let (start, len) = range(a, row);
                out.push('[');
                for i in 0..len {
                    if i > 0 {
                        out.push(',');
                    }
                    values.write(start + i, out)?;
                }
                out.push(']');
            }
            Kind::Struct(fields) => {
                out.push('{');
                for (i, (key, field)) in fields.iter_mut().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(key);
                    field.write(row, out)?;
                }
                out.push('}');
            }
            Kind::Map { keys, values, object } => {
                let (start, len) = map_range(a, row);
                out.push(if *object { '{' } else { '[' });
                for i in start..start + len {
                    if i > start {
                        out.push(',');
                    }
                    if *object {
                        let at = out.len();
                        keys.write(i, out)?;
                        if out[at..].starts_with('n') {
                            // A null key (invalid in Arrow) cannot be an object key.
                            out.truncate(at);
                            out.push_str("\"null\"");
                        }
                        out.push(':');
                        values.write(i, out)?;
                    } else {
                        out.push('[');
                        keys.write(i, out)?;
                        out.push(',');
                        values.write(i, out)?;
                        out.push(']');
                    }
                }
                out.push(if *object { '}' } else { ']' });
            }
            Kind::Union { dense, variants } => {
                let union = a.as_union();
                let id = union.type_id(row);
                let index = if *dense { union.value_offset(row) } else { row };
                let variant =
                    usize::try_from(id).ok().and_then(|i| variants.get_mut(i)).and_then(Option::as_mut);
                let Some((key, child)) = variant else {
                    return Err(Error::decode(format!("union row {row} has unknown type id {id}"), None));
                };
                out.push_str(key);
                child.write(index, out)?;
                out.push('}');
            }
            Kind::Indexed(values, keys) => {
                let key = keys[row];
                values.write(key, out)?;
            }
            Kind::RunEnds(values, index) => {
                let i = index(a, row);
                values.write(i, out)?;
            }
        }
        Ok(())
    }
}

impl crate::client::Client<crate::client::Blocking> {
    /// Runs a query and decodes all its rows into `T`, always through Arrow (so a large
    /// result is never truncated and never paged through JSON): [`crate::Client::query_to_arrow`]
    /// then [`batches_as`]. [`Client::sql`](crate::Client::sql)`(..).rows_as()` does the same
    /// but reads a complete inline answer as sent, with per-call options.
    pub fn query_as<T: DeserializeOwned>(
        &self,
        body: crate::models::QueryRequest,
        database_id: Option<&str>,
    ) -> Result<Vec<T>, Error> {
        let result = self.query_to_arrow(body, database_id)?;
        batches_as(&result.batches)
    }
}

impl crate::client::Client<crate::client::Async> {
    /// Runs a query and decodes all its rows into `T`, through Arrow: see the blocking
    /// [`crate::Client::query_as`].
    pub async fn query_as<T: DeserializeOwned>(
        &self,
        body: crate::models::QueryRequest,
        database_id: Option<&str>,
    ) -> Result<Vec<T>, Error> {
        let result = self.query_to_arrow(body, database_id).await?;
        batches_as(&result.batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    fn date_time(nanos: i128) -> String {
        let mut s = String::new();
        write_date_time(&mut s, nanos);
        s
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(date_time(1_700_000_000_123_456_000), "2023-11-14T22:13:20.123456");
        assert_eq!(date_time(-NANOS_PER_SEC), "1969-12-31T23:59:59");
        let mut s = String::new();
        write_date(&mut s, -719_529);
        assert_eq!(s, "-0001-12-31");
        s.clear();
        write_date(&mut s, 2_932_897);
        assert_eq!(s, "+10000-01-01");
    }

    #[test]
    fn durations_and_offsets() {
        let mut s = String::new();
        write_duration(&mut s, -1);
        assert_eq!(s, "-PT0.000000001S");
        s.clear();
        write_duration(&mut s, 90 * NANOS_PER_SEC + 500_000_000);
        assert_eq!(s, "PT90.5S");
        assert_eq!(parse_offset("+05:30"), Some(19_800));
        assert_eq!(parse_offset("-0800"), Some(-28_800));
        assert_eq!(parse_offset("+01"), Some(3_600));
        assert_eq!(parse_offset("America/New_York"), None);
        assert_eq!(parse_offset("+25:00"), None);
        assert_eq!(parse_offset("+"), None);
    }
}
