//! Materialised query results and their renderings: JSON rows, Arrow IPC stream, CSV,
//! Markdown and Parquet.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use rusqlite::types::Value;

use crate::ArrowCompression;
use crate::sql::ColType;

/// Rows per record batch.
pub(crate) const BATCH_ROWS: usize = 65_536;

/// A finished result: an Arrow schema plus record batches.
#[derive(Debug)]
pub(crate) struct ResultSet {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: usize,
    /// The Arrow IPC stream this result was stored from (`store_arrow_result`), served
    /// verbatim for `format=arrow`; `None` for query results.
    pub ipc: Option<Bytes>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float,
    Text,
    Bool,
    Blob,
}

fn decide(decl: Option<ColType>, vals: &[Value]) -> Kind {
    let (mut i, mut f, mut t, mut b) = (false, false, false, false);
    for v in vals {
        match v {
            Value::Null => {}
            Value::Integer(_) => i = true,
            Value::Real(_) => f = true,
            Value::Text(_) => t = true,
            Value::Blob(_) => b = true,
        }
    }
    match decl {
        Some(ColType::Bool)
            if !f
                && !t
                && !b
                && vals.iter().all(|v| matches!(v, Value::Null | Value::Integer(0) | Value::Integer(1))) =>
        {
            return Kind::Bool;
        }
        Some(ColType::Text | ColType::Timestamp | ColType::Date) if !b => return Kind::Text,
        Some(ColType::Float) if !t && !b => return Kind::Float,
        Some(ColType::Blob) if !i && !f && !t => return Kind::Blob,
        _ => {}
    }
    if t || (b && (i || f)) {
        Kind::Text
    } else if b {
        Kind::Blob
    } else if f {
        Kind::Float
    } else if i {
        Kind::Int
    } else {
        Kind::Text
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(s) => Some(s.clone()),
        Value::Blob(b) => Some(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

fn build(kind: Kind, vals: &[Value]) -> ArrayRef {
    match kind {
        Kind::Int => Arc::new(Int64Array::from_iter(vals.iter().map(|v| match v {
            Value::Integer(i) => Some(*i),
            _ => None,
        }))),
        Kind::Float => Arc::new(Float64Array::from_iter(vals.iter().map(|v| match v {
            Value::Integer(i) => Some(*i as f64),
            Value::Real(f) => Some(*f),
            _ => None,
        }))),
        Kind::Bool => Arc::new(BooleanArray::from_iter(vals.iter().map(|v| match v {
            Value::Integer(i) => Some(*i != 0),
            _ => None,
        }))),
        Kind::Blob => Arc::new(BinaryArray::from_iter(vals.iter().map(|v| match v {
            Value::Blob(b) => Some(b.as_slice()),
            _ => None,
        }))),
        Kind::Text => Arc::new(StringArray::from_iter(vals.iter().map(text_of))),
    }
}

/// A column being read from SQLite: typed while values agree, generic otherwise.
pub(crate) enum ColBuf {
    /// Only NULLs so far.
    Empty(usize),
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Text(StringBuilder),
    Any(Vec<Value>),
}

fn owned(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Null => Value::Null,
        V::Integer(i) => Value::Integer(i),
        V::Real(f) => Value::Real(f),
        V::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        V::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl ColBuf {
    pub(crate) fn new() -> ColBuf {
        ColBuf::Empty(0)
    }

    fn make_any(&mut self) -> &mut Vec<Value> {
        let vals: Vec<Value> = match std::mem::replace(self, ColBuf::Empty(0)) {
            ColBuf::Empty(n) => vec![Value::Null; n],
            ColBuf::Int(v) => v.into_iter().map(|x| x.map_or(Value::Null, Value::Integer)).collect(),
            ColBuf::Float(v) => v.into_iter().map(|x| x.map_or(Value::Null, Value::Real)).collect(),
            ColBuf::Text(mut b) => {
                b.finish().iter().map(|x| x.map_or(Value::Null, |s| Value::Text(s.to_string()))).collect()
            }
            ColBuf::Any(v) => v,
        };
        *self = ColBuf::Any(vals);
        match self {
            ColBuf::Any(v) => v,
            _ => unreachable!(),
        }
    }

    /// Append one cell.
    pub(crate) fn push(&mut self, v: rusqlite::types::ValueRef<'_>) {
        use rusqlite::types::ValueRef as V;
        match (&mut *self, v) {
            (ColBuf::Empty(n), V::Null) => *n += 1,
            (ColBuf::Empty(n), V::Integer(i)) => {
                let mut b = vec![None; *n];
                b.push(Some(i));
                *self = ColBuf::Int(b);
            }
            (ColBuf::Empty(n), V::Real(f)) => {
                let mut b = vec![None; *n];
                b.push(Some(f));
                *self = ColBuf::Float(b);
            }
            (ColBuf::Empty(n), V::Text(t)) => {
                let mut b = StringBuilder::new();
                for _ in 0..*n {
                    b.append_null();
                }
                b.append_value(String::from_utf8_lossy(t));
                *self = ColBuf::Text(b);
            }
            (ColBuf::Int(b), V::Null) => b.push(None),
            (ColBuf::Int(b), V::Integer(i)) => b.push(Some(i)),
            (ColBuf::Int(b), V::Real(f)) => {
                let mut fl: Vec<Option<f64>> = b.iter().map(|x| x.map(|i| i as f64)).collect();
                fl.push(Some(f));
                *self = ColBuf::Float(fl);
            }
            (ColBuf::Float(b), V::Null) => b.push(None),
            (ColBuf::Float(b), V::Real(f)) => b.push(Some(f)),
            (ColBuf::Float(b), V::Integer(i)) => b.push(Some(i as f64)),
            (ColBuf::Text(b), V::Null) => b.append_null(),
            (ColBuf::Text(b), V::Text(t)) => b.append_value(String::from_utf8_lossy(t)),
            (ColBuf::Any(b), v) => b.push(owned(v)),
            (_, v) => self.make_any().push(owned(v)),
        }
    }
}

impl ResultSet {
    /// Build from typed column buffers.
    pub(crate) fn from_bufs(
        names: Vec<String>,
        decls: Vec<Option<ColType>>,
        bufs: Vec<ColBuf>,
        rows: usize,
    ) -> ResultSet {
        let mut fields = Vec::with_capacity(names.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(names.len());
        for ((name, decl), buf) in names.iter().zip(decls).zip(bufs) {
            let arr: ArrayRef = match buf {
                ColBuf::Empty(n) => Arc::new(StringArray::from(vec![None::<&str>; n])),
                ColBuf::Int(v)
                    if decl == Some(ColType::Bool)
                        && v.iter().all(|x| matches!(x, None | Some(0) | Some(1))) =>
                {
                    Arc::new(BooleanArray::from_iter(v.iter().map(|x| x.map(|i| i != 0))))
                }
                ColBuf::Int(v)
                    if matches!(decl, Some(ColType::Text | ColType::Timestamp | ColType::Date)) =>
                {
                    Arc::new(StringArray::from_iter(v.iter().map(|x| x.map(|i| i.to_string()))))
                }
                ColBuf::Int(v) if decl == Some(ColType::Float) => {
                    Arc::new(Float64Array::from_iter(v.iter().map(|x| x.map(|i| i as f64))))
                }
                ColBuf::Int(v) => Arc::new(Int64Array::from(v)),
                ColBuf::Float(v) => Arc::new(Float64Array::from(v)),
                ColBuf::Text(mut b) => Arc::new(b.finish()),
                ColBuf::Any(v) => build(decide(decl, &v), &v),
            };
            fields.push(Field::new(name, arr.data_type().clone(), true));
            arrays.push(arr);
        }
        let schema = Arc::new(Schema::new(fields));
        let mut batches = Vec::new();
        let mut start = 0;
        while start < rows {
            let len = BATCH_ROWS.min(rows - start);
            let cols: Vec<ArrayRef> = arrays.iter().map(|a| a.slice(start, len)).collect();
            let batch = if cols.is_empty() {
                RecordBatch::try_new_with_options(
                    schema.clone(),
                    cols,
                    &arrow_array::RecordBatchOptions::new().with_row_count(Some(len)),
                )
            } else {
                RecordBatch::try_new(schema.clone(), cols)
            }
            .expect("consistent batch");
            batches.push(batch);
            start += len;
        }
        ResultSet { schema, batches, rows, ipc: None }
    }

    /// Decode a whole Arrow IPC stream once (schema, batches, rows) and keep its bytes.
    /// Fails on anything `StreamReader` cannot read, and on bytes after the end-of-stream
    /// marker (they would be served too).
    pub(crate) fn from_ipc(stream: Bytes) -> Result<ResultSet, String> {
        let mut cursor = std::io::Cursor::new(stream.as_ref());
        let mut reader = StreamReader::try_new(&mut cursor, None)
            .map_err(|e| format!("not a readable Arrow IPC stream: {e}"))?;
        let schema = reader.schema();
        let mut batches = Vec::new();
        for (i, b) in reader.by_ref().enumerate() {
            batches.push(
                b.map_err(|e| format!("not a readable Arrow IPC stream: record batch {}: {e}", i + 1))?,
            );
        }
        let finished = reader.is_finished();
        drop(reader);
        let read = cursor.position() as usize;
        if !finished || read != stream.len() {
            return Err(format!(
                "not a readable Arrow IPC stream: {} bytes after the end of the stream at byte {read}",
                stream.len().saturating_sub(read)
            ));
        }
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        Ok(ResultSet { schema, batches, rows, ipc: Some(stream) })
    }

    /// Whether every column has a type the JSON, CSV, Markdown and Parquet renderings (and
    /// loads from a result) handle: the types query results have (Int64, Float64, Boolean,
    /// Utf8, Binary).
    pub(crate) fn native_types(&self) -> bool {
        self.schema.fields().iter().all(|f| is_native(f.data_type()))
    }

    /// The distinct column types that are not native (see [`ResultSet::native_types`]).
    pub(crate) fn foreign_types(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in self.schema.fields().iter().filter(|f| !is_native(f.data_type())) {
            let t = f.data_type().to_string();
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Column names.
    pub(crate) fn columns(&self) -> Vec<String> {
        self.schema.fields().iter().map(|f| f.name().clone()).collect()
    }

    /// Column nullability.
    pub(crate) fn nullable(&self) -> Vec<bool> {
        self.schema.fields().iter().map(|f| f.is_nullable()).collect()
    }

    /// Column (name, type) pairs in emulator types.
    pub(crate) fn col_types(&self) -> Vec<(String, ColType)> {
        self.schema
            .fields()
            .iter()
            .map(|f| {
                let t = match f.data_type() {
                    DataType::Int64 => ColType::Int,
                    DataType::Float64 => ColType::Float,
                    DataType::Boolean => ColType::Bool,
                    DataType::Binary => ColType::Blob,
                    _ => ColType::Text,
                };
                (f.name().clone(), t)
            })
            .collect()
    }

    /// Row-major SQLite values (for loading a result into a table).
    pub(crate) fn to_rows(&self) -> Vec<Vec<Value>> {
        let mut out = Vec::with_capacity(self.rows);
        for b in &self.batches {
            for r in 0..b.num_rows() {
                out.push(b.columns().iter().map(|c| cell_value(c.as_ref(), r)).collect());
            }
        }
        out
    }

    /// The batches covering rows `[offset, offset + limit)`, sliced.
    pub(crate) fn window(&self, offset: usize, limit: Option<usize>) -> Vec<RecordBatch> {
        let end = match limit {
            Some(l) => offset.saturating_add(l).min(self.rows),
            None => self.rows,
        };
        let mut out = Vec::new();
        let mut base = 0;
        for b in &self.batches {
            let n = b.num_rows();
            let (lo, hi) = (base, base + n);
            base = hi;
            if hi <= offset || lo >= end {
                continue;
            }
            let s = offset.max(lo) - lo;
            let e = end.min(hi) - lo;
            out.push(b.slice(s, e - s));
        }
        out
    }

    /// JSON rows (`[[...],[...]]`) for a window; `None` when larger than `max_bytes`.
    pub(crate) fn json_rows(&self, offset: usize, limit: Option<usize>, max_bytes: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(1024);
        out.push(b'[');
        let mut first = true;
        for b in self.window(offset, limit) {
            for r in 0..b.num_rows() {
                if !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'[');
                for (ci, c) in b.columns().iter().enumerate() {
                    if ci > 0 {
                        out.push(b',');
                    }
                    write_json_cell(&mut out, c.as_ref(), r);
                }
                out.push(b']');
                if out.len() > max_bytes {
                    return None;
                }
            }
        }
        out.push(b']');
        Some(out)
    }

    /// Rows of a window as `serde_json::Value` arrays (for small previews).
    pub(crate) fn json_value_rows(&self, limit: usize) -> serde_json::Value {
        let raw = self.json_rows(0, Some(limit), usize::MAX).unwrap_or_else(|| b"[]".to_vec());
        serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Array(vec![]))
    }

    /// CSV (header + rows) for a window.
    pub(crate) fn csv(&self, offset: usize, limit: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        let cols = self.columns();
        let line: Vec<String> = cols.iter().map(|c| csv_field(c)).collect();
        let _ = writeln!(out, "{}", line.join(","));
        for b in self.window(offset, limit) {
            for r in 0..b.num_rows() {
                let line: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| cell_text(c.as_ref(), r).map_or(String::new(), |s| csv_field(&s)))
                    .collect();
                let _ = writeln!(out, "{}", line.join(","));
            }
        }
        out
    }

    /// Markdown table for a window.
    pub(crate) fn markdown(&self, offset: usize, limit: Option<usize>) -> Vec<u8> {
        let mut out = Vec::new();
        let cols = self.columns();
        let esc = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(out, "| {} |", cols.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | "));
        let _ = writeln!(out, "|{}", " --- |".repeat(cols.len().max(1)));
        for b in self.window(offset, limit) {
            for r in 0..b.num_rows() {
                let cells: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| cell_text(c.as_ref(), r).map_or(String::new(), |s| esc(&s)))
                    .collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
        out
    }

    /// The whole result as a Parquet file.
    pub(crate) fn parquet(&self) -> Result<Vec<u8>, String> {
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, self.schema.clone(), None)
            .map_err(|e| e.to_string())?;
        for b in &self.batches {
            w.write(b).map_err(|e| e.to_string())?;
        }
        w.close().map_err(|e| e.to_string())?;
        Ok(buf)
    }

    /// The arrow-rs JSON form of the schema (for `arrow_schema_json`).
    pub(crate) fn schema_json(cols: &[(String, ColType)]) -> String {
        let fields: Vec<serde_json::Value> = cols
            .iter()
            .map(|(n, t)| {
                serde_json::json!({
                    "name": n, "data_type": t.api_name(), "nullable": true,
                    "dict_id": 0, "dict_is_ordered": false, "metadata": {}
                })
            })
            .collect();
        serde_json::json!({"fields": fields, "metadata": {}}).to_string()
    }
}

/// A type the emulator's own renderings handle (the types query results have).
fn is_native(t: &DataType) -> bool {
    matches!(t, DataType::Int64 | DataType::Float64 | DataType::Boolean | DataType::Utf8 | DataType::Binary)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn cell_value(c: &dyn Array, r: usize) -> Value {
    if c.is_null(r) {
        return Value::Null;
    }
    let any = c.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        Value::Integer(a.value(r))
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        Value::Real(a.value(r))
    } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
        Value::Integer(a.value(r) as i64)
    } else if let Some(a) = any.downcast_ref::<BinaryArray>() {
        Value::Blob(a.value(r).to_vec())
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        Value::Text(a.value(r).to_string())
    } else {
        Value::Null
    }
}

fn cell_text(c: &dyn Array, r: usize) -> Option<String> {
    text_of(&cell_value(c, r)).map(|s| {
        if let Some(a) = c.as_any().downcast_ref::<BooleanArray>() { a.value(r).to_string() } else { s }
    })
}

fn write_json_cell(out: &mut Vec<u8>, c: &dyn Array, r: usize) {
    if c.is_null(r) {
        out.extend_from_slice(b"null");
        return;
    }
    let any = c.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        let _ = write!(out, "{}", a.value(r));
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        match serde_json::Number::from_f64(a.value(r)) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None => out.extend_from_slice(b"null"),
        }
    } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
        out.extend_from_slice(if a.value(r) { b"true" } else { b"false" });
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        let _ = serde_json::to_writer(&mut *out, a.value(r));
    } else if let Some(a) = any.downcast_ref::<BinaryArray>() {
        let hex: String = a.value(r).iter().map(|x| format!("{x:02x}")).collect();
        let _ = serde_json::to_writer(&mut *out, &hex);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// IPC write options for a compression setting.
fn write_options(compression: ArrowCompression) -> Result<IpcWriteOptions, String> {
    IpcWriteOptions::default().try_with_compression(compression.ipc_type()).map_err(|e| e.to_string())
}

/// Encode a whole Arrow IPC stream eagerly, reporting any writer error.
pub(crate) fn encode_ipc(
    schema: &Schema,
    batches: &[RecordBatch],
    compression: ArrowCompression,
) -> Result<Bytes, String> {
    let mut w = StreamWriter::try_new_with_options(Vec::new(), schema, write_options(compression)?)
        .map_err(|e| e.to_string())?;
    for b in batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    w.into_inner().map(Bytes::from).map_err(|e| e.to_string())
}

/// Lazily encodes an Arrow IPC stream, one message per item.
pub(crate) struct ArrowStream {
    writer: Option<StreamWriter<Vec<u8>>>,
    batches: std::vec::IntoIter<RecordBatch>,
    done: bool,
}

impl ArrowStream {
    /// Stream `batches` with `schema`, their bodies compressed as `compression` says.
    pub(crate) fn new(
        schema: &Schema,
        batches: Vec<RecordBatch>,
        compression: ArrowCompression,
    ) -> ArrowStream {
        ArrowStream {
            writer: write_options(compression)
                .ok()
                .and_then(|o| StreamWriter::try_new_with_options(Vec::new(), schema, o).ok()),
            batches: batches.into_iter(),
            done: false,
        }
    }
}

impl Iterator for ArrowStream {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let w = self.writer.as_mut()?;
        if w.get_mut().is_empty() {
            match self.batches.next() {
                Some(b) => {
                    if w.write(&b).is_err() {
                        self.done = true;
                    }
                }
                None => {
                    let _ = w.finish();
                    self.done = true;
                }
            }
        }
        let buf = std::mem::take(w.get_mut());
        Some(Bytes::from(buf))
    }
}
