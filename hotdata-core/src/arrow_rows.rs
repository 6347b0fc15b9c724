//! Arrow record batches decoded into your own types, row by row (feature `arrow`).
//!
//! Each row becomes one JSON object keyed by column name and is deserialized into `T`, like
//! [`crate::models::rows_as`] does for JSON results: integers and decimals are written as
//! exact number text (a [`crate::Cell`] field keeps a `Decimal128(38, 2)` exactly), strings
//! as strings, dates as `YYYY-MM-DD`, timestamps as RFC 3339 (with `Z` when the column has a
//! time zone, since Arrow stores instants in UTC), binaries as arrays of bytes, lists as
//! arrays, structs as objects, dictionary columns as their values.

use std::fmt::Write as _;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Decodes every row of `batches` into `T`.
pub fn batches_as<'a, T: DeserializeOwned>(
    batches: impl IntoIterator<Item = &'a RecordBatch>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::new();
    let mut text = String::new();
    for batch in batches {
        let schema = batch.schema();
        let keys: Vec<String> =
            schema.fields().iter().map(|f| serde_json::Value::from(f.name().as_str()).to_string()).collect();
        for row in 0..batch.num_rows() {
            text.clear();
            text.push('{');
            for (i, (key, column)) in keys.iter().zip(batch.columns()).enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(key);
                text.push(':');
                write_value(column.as_ref(), row, &mut text)?;
            }
            text.push('}');
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

fn push_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn push_float(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        push_json_str(out, &v.to_string());
    }
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

fn push_date(out: &mut String, days: i64) {
    let (y, m, d) = civil(days);
    let _ = write!(out, "\"{y:04}-{m:02}-{d:02}\"");
}

/// Writes a time of day from nanoseconds since midnight, without quotes.
fn push_time_of_day(out: &mut String, nanos: i64) {
    let (s, n) = (nanos.div_euclid(1_000_000_000), nanos.rem_euclid(1_000_000_000));
    let _ = write!(out, "{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    if n != 0 {
        let frac = format!("{n:09}");
        let _ = write!(out, ".{}", frac.trim_end_matches('0'));
    }
}

fn push_timestamp(out: &mut String, value: i64, unit: &TimeUnit, utc: bool) {
    let nanos: i128 = match unit {
        TimeUnit::Second => i128::from(value) * 1_000_000_000,
        TimeUnit::Millisecond => i128::from(value) * 1_000_000,
        TimeUnit::Microsecond => i128::from(value) * 1_000,
        TimeUnit::Nanosecond => i128::from(value),
    };
    let day = 86_400_000_000_000i128;
    let (days, rest) = (nanos.div_euclid(day), nanos.rem_euclid(day));
    let (y, m, d) = civil(days as i64);
    let _ = write!(out, "\"{y:04}-{m:02}-{d:02}T");
    push_time_of_day(out, rest as i64);
    out.push_str(if utc { "Z\"" } else { "\"" });
}

fn write_value(array: &dyn Array, row: usize, out: &mut String) -> Result<(), Error> {
    if array.is_null(row) {
        out.push_str("null");
        return Ok(());
    }
    macro_rules! num {
        ($t:ty) => {{
            let _ = write!(out, "{}", array.as_primitive::<$t>().value(row));
        }};
    }
    match array.data_type() {
        DataType::Null => out.push_str("null"),
        DataType::Boolean => out.push_str(if array.as_boolean().value(row) { "true" } else { "false" }),
        DataType::Int8 => num!(Int8Type),
        DataType::Int16 => num!(Int16Type),
        DataType::Int32 => num!(Int32Type),
        DataType::Int64 => num!(Int64Type),
        DataType::UInt8 => num!(UInt8Type),
        DataType::UInt16 => num!(UInt16Type),
        DataType::UInt32 => num!(UInt32Type),
        DataType::UInt64 => num!(UInt64Type),
        DataType::Float16 => {
            push_float(out, f64::from(array.as_primitive::<Float16Type>().value(row).to_f32()))
        }
        DataType::Float32 => push_float(out, f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => push_float(out, array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, _) => {
            out.push_str(&array.as_primitive::<Decimal128Type>().value_as_string(row))
        }
        DataType::Decimal256(_, _) => {
            out.push_str(&array.as_primitive::<Decimal256Type>().value_as_string(row))
        }
        DataType::Utf8 => push_json_str(out, array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => push_json_str(out, array.as_string::<i64>().value(row)),
        DataType::Utf8View => push_json_str(out, array.as_string_view().value(row)),
        DataType::Binary => push_bytes(out, array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => push_bytes(out, array.as_binary::<i64>().value(row)),
        DataType::BinaryView => push_bytes(out, array.as_binary_view().value(row)),
        DataType::FixedSizeBinary(_) => push_bytes(out, array.as_fixed_size_binary().value(row)),
        DataType::Date32 => push_date(out, i64::from(array.as_primitive::<Date32Type>().value(row))),
        DataType::Date64 => {
            push_date(out, array.as_primitive::<Date64Type>().value(row).div_euclid(86_400_000))
        }
        DataType::Timestamp(unit, tz) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            push_timestamp(out, v, unit, tz.is_some());
        }
        DataType::Time32(unit) => {
            let v = match unit {
                TimeUnit::Second => {
                    i64::from(array.as_primitive::<Time32SecondType>().value(row)) * 1_000_000_000
                }
                _ => i64::from(array.as_primitive::<Time32MillisecondType>().value(row)) * 1_000_000,
            };
            out.push('"');
            push_time_of_day(out, v);
            out.push('"');
        }
        DataType::Time64(unit) => {
            let v = match unit {
                TimeUnit::Microsecond => array.as_primitive::<Time64MicrosecondType>().value(row) * 1_000,
                _ => array.as_primitive::<Time64NanosecondType>().value(row),
            };
            out.push('"');
            push_time_of_day(out, v);
            out.push('"');
        }
        DataType::List(_) => push_list(out, array.as_list::<i32>().value(row).as_ref())?,
        DataType::LargeList(_) => push_list(out, array.as_list::<i64>().value(row).as_ref())?,
        DataType::FixedSizeList(_, _) => push_list(out, array.as_fixed_size_list().value(row).as_ref())?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            out.push('{');
            for (i, (field, column)) in fields.iter().zip(s.columns()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, field.name());
                out.push(':');
                write_value(column.as_ref(), row, out)?;
            }
            out.push('}');
        }
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let key = dict.normalized_keys()[row];
            write_value(dict.values().as_ref(), key, out)?;
        }
        other => return Err(Error::decode(format!("Arrow type {other} cannot be decoded into rows"), None)),
    }
    Ok(())
}

fn push_bytes(out: &mut String, bytes: &[u8]) {
    out.push('[');
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{b}");
    }
    out.push(']');
}

fn push_list(out: &mut String, values: &dyn Array) -> Result<(), Error> {
    out.push('[');
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        write_value(values, i, out)?;
    }
    out.push(']');
    Ok(())
}

impl crate::client::Client<crate::client::Blocking> {
    /// Runs a query and decodes all its rows into `T`, through Arrow (so a large result is
    /// never truncated and never paged through JSON): [`crate::Client::query_to_arrow`] then
    /// [`batches_as`].
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

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        let mut s = String::new();
        push_timestamp(&mut s, 1_700_000_000_123_456, &TimeUnit::Microsecond, true);
        assert_eq!(s, "\"2023-11-14T22:13:20.123456Z\"");
        s.clear();
        push_timestamp(&mut s, -1, &TimeUnit::Second, false);
        assert_eq!(s, "\"1969-12-31T23:59:59\"");
    }
}
