//! Parsing upload bodies (CSV, JSON / NDJSON, Parquet) into typed rows.

use std::collections::HashMap;

use arrow_array::{Array, RecordBatch, cast::AsArray, types};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use rusqlite::types::Value;

use crate::sql::{ColType, Dataset};

/// Input formats a load accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Json,
    Parquet,
}

impl Format {
    /// From the request's `format` field.
    pub(crate) fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" | "text/csv" => Some(Format::Csv),
            "json" | "ndjson" | "jsonl" | "application/json" | "application/x-ndjson" => Some(Format::Json),
            "parquet" | "application/vnd.apache.parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// Guess from a content type, a file name, then the bytes.
    pub(crate) fn sniff(content_type: Option<&str>, filename: Option<&str>, data: &[u8]) -> Format {
        if let Some(f) = content_type.and_then(Format::parse) {
            return f;
        }
        if let Some(name) = filename
            && let Some(ext) = name.rsplit('.').next()
            && let Some(f) = Format::parse(ext)
        {
            return f;
        }
        if data.starts_with(b"PAR1") {
            return Format::Parquet;
        }
        match data.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') | Some(b'{') => Format::Json,
            _ => Format::Csv,
        }
    }
}

/// Parse `data` in `format`, then apply explicit column types.
pub(crate) fn parse(
    format: Format,
    data: Bytes,
    overrides: &HashMap<String, ColType>,
) -> Result<Dataset, String> {
    let mut ds = match format {
        Format::Csv => return parse_csv_with(&data, overrides),
        Format::Json => parse_json(&data)?,
        Format::Parquet => parse_parquet(data)?,
    };
    for (i, (name, t)) in ds.columns.iter_mut().enumerate() {
        if let Some(want) = overrides.get(name.as_str()) {
            *t = *want;
            for r in ds.rows.iter_mut() {
                let v = std::mem::replace(&mut r[i], Value::Null);
                r[i] = coerce(v, *want)?;
            }
        }
    }
    Ok(ds)
}

fn coerce(v: Value, t: ColType) -> Result<Value, String> {
    Ok(match (v, t) {
        (Value::Null, _) => Value::Null,
        (Value::Text(s), ColType::Int) => {
            Value::Integer(s.trim().parse().map_err(|_| format!("`{s}` is not an integer"))?)
        }
        (Value::Real(f), ColType::Int) if f.fract() == 0.0 => Value::Integer(f as i64),
        (Value::Text(s), ColType::Float) => {
            Value::Real(s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?)
        }
        (Value::Integer(i), ColType::Float) => Value::Real(i as f64),
        (Value::Text(s), ColType::Bool) => Value::Integer(match s.trim().to_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => 1,
            "false" | "f" | "0" | "no" => 0,
            _ => return Err(format!("`{s}` is not a boolean")),
        }),
        (Value::Integer(i), ColType::Text | ColType::Timestamp | ColType::Date) => Value::Text(i.to_string()),
        (Value::Real(f), ColType::Text) => Value::Text(f.to_string()),
        (v, _) => v,
    })
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        && b[..4].iter().all(u8::is_ascii_digit)
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Infer a column type from text cells and convert them.
fn infer_text_column(cells: &[Option<String>]) -> (ColType, Vec<Value>) {
    let present: Vec<&str> = cells.iter().flatten().map(String::as_str).collect();
    let all = |f: &dyn Fn(&str) -> bool| !present.is_empty() && present.iter().all(|s| f(s));
    let t = if all(&|s| s.parse::<i64>().is_ok()) {
        ColType::Int
    } else if all(&|s| s.parse::<f64>().is_ok()) {
        ColType::Float
    } else if all(&|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "false")) {
        ColType::Bool
    } else if all(&is_timestamp) {
        ColType::Timestamp
    } else if all(&is_date) {
        ColType::Date
    } else {
        ColType::Text
    };
    let vals = cells
        .iter()
        .map(|c| match c {
            None => Value::Null,
            Some(s) => match t {
                ColType::Int => Value::Integer(s.parse().unwrap_or_default()),
                ColType::Float => Value::Real(s.parse().unwrap_or_default()),
                ColType::Bool => Value::Integer(s.eq_ignore_ascii_case("true") as i64),
                _ => Value::Text(s.clone()),
            },
        })
        .collect();
    (t, vals)
}

/// RFC 4180 CSV with a header row. Empty unquoted fields are NULL.
#[cfg(test)]
pub(crate) fn parse_csv(data: &[u8]) -> Result<Dataset, String> {
    parse_csv_with(data, &HashMap::new())
}

/// CSV with explicit types for some columns (applied to the raw text).
pub(crate) fn parse_csv_with(data: &[u8], overrides: &HashMap<String, ColType>) -> Result<Dataset, String> {
    let text = std::str::from_utf8(data).map_err(|_| "CSV is not valid UTF-8".to_string())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records: Vec<Vec<Option<String>>> = Vec::new();
    let mut rec: Vec<Option<String>> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                rec.push(take_field(&mut field, &mut was_quoted));
            }
            '\r' => {}
            '\n' => {
                rec.push(take_field(&mut field, &mut was_quoted));
                records.push(std::mem::take(&mut rec));
                any = false;
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err("CSV has an unterminated quoted field".into());
    }
    if any {
        rec.push(take_field(&mut field, &mut was_quoted));
        records.push(rec);
    }
    records.retain(|r| !(r.len() == 1 && r[0].is_none()));
    let mut it = records.into_iter();
    let header = it.next().ok_or("CSV has no header row")?;
    let names: Vec<String> = header
        .into_iter()
        .enumerate()
        .map(|(i, h)| h.unwrap_or_else(|| format!("column{}", i + 1)))
        .collect();
    let rows: Vec<Vec<Option<String>>> = it.collect();
    for (i, r) in rows.iter().enumerate() {
        if r.len() != names.len() {
            return Err(format!("CSV row {} has {} fields, expected {}", i + 2, r.len(), names.len()));
        }
    }
    columns_to_dataset(names, rows, overrides)
}

fn take_field(field: &mut String, was_quoted: &mut bool) -> Option<String> {
    let f = std::mem::take(field);
    let q = std::mem::replace(was_quoted, false);
    if f.is_empty() && !q { None } else { Some(f) }
}

fn columns_to_dataset(
    names: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    overrides: &HashMap<String, ColType>,
) -> Result<Dataset, String> {
    let n = names.len();
    let mut cols: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(rows.len()); n];
    for r in rows {
        for (i, c) in r.into_iter().enumerate() {
            cols[i].push(c);
        }
    }
    let mut columns = Vec::with_capacity(n);
    let mut values: Vec<Vec<Value>> = Vec::with_capacity(n);
    for (name, cells) in names.into_iter().zip(cols) {
        let (t, v) = match overrides.get(&name) {
            Some(t) => (
                *t,
                cells
                    .into_iter()
                    .map(|c| c.map_or(Ok(Value::Null), |s| coerce(Value::Text(s), *t)))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => infer_text_column(&cells),
        };
        columns.push((name, t));
        values.push(v);
    }
    Ok(Dataset { columns, rows: transpose(values) })
}

fn transpose(cols: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    let nrows = cols.first().map_or(0, Vec::len);
    let mut iters: Vec<_> = cols.into_iter().map(Vec::into_iter).collect();
    (0..nrows).map(|_| iters.iter_mut().map(|i| i.next().unwrap_or(Value::Null)).collect()).collect()
}

/// A JSON array of objects, a single object, or newline-delimited objects.
pub(crate) fn parse_json(data: &[u8]) -> Result<Dataset, String> {
    let objects: Vec<serde_json::Map<String, serde_json::Value>> =
        match serde_json::from_slice::<serde_json::Value>(data) {
            Ok(serde_json::Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    serde_json::Value::Object(o) => Ok(o),
                    _ => Err("JSON array items must be objects".to_string()),
                })
                .collect::<Result<_, _>>()?,
            Ok(serde_json::Value::Object(o)) => vec![o],
            Ok(_) => return Err("JSON must be an array of objects or NDJSON".into()),
            Err(_) => {
                let text = std::str::from_utf8(data).map_err(|_| "JSON is not UTF-8")?;
                let mut v = Vec::new();
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<serde_json::Value>(line) {
                        Ok(serde_json::Value::Object(o)) => v.push(o),
                        _ => return Err(format!("invalid JSON on line {}", i + 1)),
                    }
                }
                v
            }
        };
    let mut names: Vec<String> = Vec::new();
    for o in &objects {
        for k in o.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for name in &names {
        let cells: Vec<Option<&serde_json::Value>> =
            objects.iter().map(|o| o.get(name).filter(|v| !v.is_null())).collect();
        let all = |f: &dyn Fn(&serde_json::Value) -> bool| {
            cells.iter().flatten().count() > 0 && cells.iter().flatten().all(|v| f(v))
        };
        let (t, vals): (ColType, Vec<Value>) = if all(&|v| v.is_i64() || v.is_u64()) {
            (
                ColType::Int,
                cells
                    .iter()
                    .map(|c| c.and_then(|v| v.as_i64()).map_or(Value::Null, Value::Integer))
                    .collect(),
            )
        } else if all(&|v| v.is_number()) {
            (
                ColType::Float,
                cells.iter().map(|c| c.and_then(|v| v.as_f64()).map_or(Value::Null, Value::Real)).collect(),
            )
        } else if all(&|v| v.is_boolean()) {
            (
                ColType::Bool,
                cells
                    .iter()
                    .map(|c| c.and_then(|v| v.as_bool()).map_or(Value::Null, |b| Value::Integer(b as i64)))
                    .collect(),
            )
        } else {
            let texts: Vec<Option<String>> = cells
                .iter()
                .map(|c| {
                    c.map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                })
                .collect();
            let all_str = cells.iter().flatten().all(|v| v.is_string());
            if all_str {
                let (t, v) = infer_text_column(&texts);
                // Strings that look numeric stay text in JSON.
                if matches!(t, ColType::Timestamp | ColType::Date) {
                    (t, v)
                } else {
                    (ColType::Text, texts.into_iter().map(|s| s.map_or(Value::Null, Value::Text)).collect())
                }
            } else {
                (ColType::Text, texts.into_iter().map(|s| s.map_or(Value::Null, Value::Text)).collect())
            }
        };
        columns.push((name.clone(), t));
        values.push(vals);
    }
    Ok(Dataset { columns, rows: transpose(values) })
}

/// Parquet through the arrow reader.
pub(crate) fn parse_parquet(data: Bytes) -> Result<Dataset, String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(data).map_err(|e| format!("invalid Parquet file: {e}"))?;
    let schema = builder.schema().clone();
    let reader = builder.build().map_err(|e| format!("invalid Parquet file: {e}"))?;
    let columns: Vec<(String, ColType)> =
        schema.fields().iter().map(|f| (f.name().clone(), arrow_col_type(f.data_type()))).collect();
    let mut rows = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| format!("invalid Parquet data: {e}"))?;
        for r in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|c| arrow_cell(c.as_ref(), r)).collect());
        }
    }
    Ok(Dataset { columns, rows })
}

fn arrow_col_type(dt: &DataType) -> ColType {
    match dt {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ColType::Int,
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(..) => {
            ColType::Float
        }
        DataType::Boolean => ColType::Bool,
        DataType::Binary | DataType::LargeBinary | DataType::FixedSizeBinary(_) => ColType::Blob,
        DataType::Timestamp(..) => ColType::Timestamp,
        DataType::Date32 | DataType::Date64 => ColType::Date,
        DataType::Dictionary(_, v) => arrow_col_type(v),
        _ => ColType::Text,
    }
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn fmt_date(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn fmt_ts_micros(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let frac = us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}.{:06}Z", fmt_date(days), rem / 3600, (rem % 3600) / 60, rem % 60, frac)
}

fn arrow_cell(c: &dyn Array, r: usize) -> Value {
    if c.is_null(r) {
        return Value::Null;
    }
    match c.data_type() {
        DataType::Int8 => Value::Integer(c.as_primitive::<types::Int8Type>().value(r).into()),
        DataType::Int16 => Value::Integer(c.as_primitive::<types::Int16Type>().value(r).into()),
        DataType::Int32 => Value::Integer(c.as_primitive::<types::Int32Type>().value(r).into()),
        DataType::Int64 => Value::Integer(c.as_primitive::<types::Int64Type>().value(r)),
        DataType::UInt8 => Value::Integer(c.as_primitive::<types::UInt8Type>().value(r).into()),
        DataType::UInt16 => Value::Integer(c.as_primitive::<types::UInt16Type>().value(r).into()),
        DataType::UInt32 => Value::Integer(c.as_primitive::<types::UInt32Type>().value(r).into()),
        DataType::UInt64 => Value::Integer(c.as_primitive::<types::UInt64Type>().value(r) as i64),
        DataType::Float16 => Value::Real(c.as_primitive::<types::Float16Type>().value(r).to_f64()),
        DataType::Float32 => Value::Real(c.as_primitive::<types::Float32Type>().value(r).into()),
        DataType::Float64 => Value::Real(c.as_primitive::<types::Float64Type>().value(r)),
        DataType::Decimal128(_, scale) => {
            let v = c.as_primitive::<types::Decimal128Type>().value(r);
            Value::Real(v as f64 / 10f64.powi(i32::from(*scale)))
        }
        DataType::Boolean => Value::Integer(c.as_boolean().value(r) as i64),
        DataType::Utf8 => Value::Text(c.as_string::<i32>().value(r).to_string()),
        DataType::LargeUtf8 => Value::Text(c.as_string::<i64>().value(r).to_string()),
        DataType::Utf8View => Value::Text(c.as_string_view().value(r).to_string()),
        DataType::Binary => Value::Blob(c.as_binary::<i32>().value(r).to_vec()),
        DataType::LargeBinary => Value::Blob(c.as_binary::<i64>().value(r).to_vec()),
        DataType::FixedSizeBinary(_) => Value::Blob(c.as_fixed_size_binary().value(r).to_vec()),
        DataType::Date32 => Value::Text(fmt_date(c.as_primitive::<types::Date32Type>().value(r).into())),
        DataType::Date64 => {
            Value::Text(fmt_date(c.as_primitive::<types::Date64Type>().value(r) / 86_400_000))
        }
        DataType::Timestamp(unit, _) => {
            let us = match unit {
                TimeUnit::Second => {
                    c.as_primitive::<types::TimestampSecondType>().value(r).saturating_mul(1_000_000)
                }
                TimeUnit::Millisecond => {
                    c.as_primitive::<types::TimestampMillisecondType>().value(r).saturating_mul(1000)
                }
                TimeUnit::Microsecond => c.as_primitive::<types::TimestampMicrosecondType>().value(r),
                TimeUnit::Nanosecond => c.as_primitive::<types::TimestampNanosecondType>().value(r) / 1000,
            };
            Value::Text(fmt_ts_micros(us))
        }
        DataType::Dictionary(_, _) => {
            if let Some(d) = c.as_any_dictionary_opt() {
                let key = d.normalized_keys()[r];
                arrow_cell(d.values().as_ref(), key)
            } else {
                Value::Null
            }
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_types() {
        let ds = parse_csv(b"id,name,score,ok,at\n1,\"a, b\",1.5,true,2024-01-01T00:00:00Z\n2,,2,false,\n")
            .unwrap();
        let types: Vec<ColType> = ds.columns.iter().map(|c| c.1).collect();
        assert_eq!(
            types,
            vec![ColType::Int, ColType::Text, ColType::Float, ColType::Bool, ColType::Timestamp]
        );
        assert_eq!(ds.rows.len(), 2);
        assert_eq!(ds.rows[0][1], Value::Text("a, b".into()));
        assert_eq!(ds.rows[1][1], Value::Null);
    }

    #[test]
    fn json_forms() {
        let a = parse_json(br#"[{"a":1,"b":"x"},{"a":2,"c":true}]"#).unwrap();
        assert_eq!(a.columns.len(), 3);
        assert_eq!(a.rows[1][1], Value::Null);
        let n = parse_json(b"{\"a\":1.5}\n{\"a\":2}\n").unwrap();
        assert_eq!(n.columns[0].1, ColType::Float);
        assert_eq!(n.rows.len(), 2);
    }

    #[test]
    fn dates() {
        assert_eq!(fmt_date(0), "1970-01-01");
        assert_eq!(fmt_ts_micros(86_400_000_001), "1970-01-02T00:00:00.000001Z");
    }
}
