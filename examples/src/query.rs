//! The `query` example's program, one code path for both backends: runs SQL (or opens a
//! stored result), shows its schema, row count and first rows, and writes it to a file.
//!
//! Each backend is an [`Api`]: the blocking client as it is, the async client through a
//! tokio runtime it blocks on. Everything after that ([`run`]) is the same: batches are an
//! `Iterator` either way, and the rows shown and the rows written come from the same single
//! read of the result.
//!
//! Outputs (`--out FILE`, by extension):
//! - `.arrow`: an Arrow IPC **file**. The file format holds one dictionary per dictionary
//!   column, extended by deltas; a result whose dictionaries are replaced between batches
//!   (which the stream format allows) is written with each new dictionary appended to the
//!   previous ones and the keys moved past them ([`DictionaryUnifier`]), so the values read
//!   back are the values received. A dictionary that outgrows its key type that way is an
//!   error that suggests `.arrows`.
//! - `.arrows`: an Arrow IPC **stream**, dictionaries as received (deltas and replacements).
//! - `.csv`, `.parquet`, `.json`, `.md`: downloaded from the server in that format (the
//!   server's own writer; for a stored result given with `--result`, the download is the only
//!   read, and no rows are shown).

use arrow_array::{Array, ArrayRef, RecordBatch, make_array};
use arrow_data::ArrayData;
use arrow_data::transform::MutableArrayData;
use arrow_ipc::writer::{DictionaryHandling, FileWriter, IpcWriteOptions, StreamWriter};
use arrow_schema::{DataType, SchemaRef};
use hotdata_core::arrow::QueryArrowOutcome;
use hotdata_core::models::{QueryOutcome, QueryRequest, ResultsFormatQuery};
use hotdata_core::results::ResultFetch;
use hotdata_core::{AsyncClient, BlockingClient, Error};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;

use crate::write_table;

/// Rows shown.
pub const SHOWN: usize = 10;

/// What to run, and where its rows go.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// SQL to run (or `result`).
    pub sql: Option<String>,
    /// The database to run in and read results from.
    pub database: Option<String>,
    /// A stored result to open instead of running SQL.
    pub result: Option<String>,
    /// Use the JSON API (rows as JSON cells) rather than Arrow.
    pub json: bool,
    /// Where to write the whole result (see the [module docs](self)).
    pub out: Option<String>,
}

/// What a run did, for the caller (and tests) to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The stored result, when the server named one.
    pub result_id: Option<String>,
    /// Rows read (shown or written), when the rows were read as Arrow or JSON.
    pub rows: Option<u64>,
    /// Bytes written to `--out`, or rows for Arrow outputs.
    pub written: Option<Written>,
}

/// What was written to `--out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Rows written as Arrow (file or stream).
    ArrowRows(u64),
    /// Bytes downloaded in a server format.
    Bytes(u64),
}

/// Record batches and their schema, from either backend.
pub struct Batches<'a> {
    /// The schema.
    pub schema: SchemaRef,
    /// The batches, as they are decoded.
    pub iter: Box<dyn Iterator<Item = Result<RecordBatch, Error>> + 'a>,
}

/// A query answered as Arrow: its rows, or where they will be.
pub enum ArrowAnswer<'a> {
    /// The rows, and the stored result's id.
    Rows(Batches<'a>, Option<String>),
    /// The query went asynchronous: its result id, once known.
    Later(String),
}

/// A page of a result read through the JSON API: its columns, rows as text, and the total
/// row count of the result.
pub type JsonPage = (Vec<String>, Vec<Vec<String>>, u64);

/// The calls the program makes, on either backend.
pub trait Api {
    /// `POST /v1/query` answered as Arrow; a 202 is waited for until the result id is known.
    fn query_arrow(&self, sql: &str, db: &str) -> Result<ArrowAnswer<'_>, Error>;
    /// `POST /v1/query` answered as JSON; a 202 is waited for until the result id is known.
    fn query_json(&self, sql: &str, db: &str) -> Result<QueryOutcome, Error>;
    /// The result id of a finished query run.
    fn run_result(&self, run_id: &str, db: &str) -> Result<Option<String>, Error>;
    /// A stored result as Arrow, once ready.
    fn result_arrow(&self, id: &str, db: &str) -> Result<Batches<'_>, Error>;
    /// The first `limit` rows of a stored result as JSON: (columns, rows, total rows).
    fn result_json(&self, id: &str, db: &str, limit: usize) -> Result<JsonPage, Error>;
    /// A stored result downloaded in `format` into `file`, once ready; the bytes written.
    fn download(&self, id: &str, db: &str, format: ResultsFormatQuery, file: &mut File)
    -> Result<u64, Error>;
}

/// The value of a fetch made once the result was ready.
fn ready<T>(fetch: ResultFetch<T>, id: &str) -> Result<T, Error> {
    match fetch {
        ResultFetch::Ready(t) => Ok(t),
        ResultFetch::NotReady(_) => Err(Error::wait_timeout(format!("result {id} was ready, then not"))),
    }
}

impl Api for BlockingClient {
    fn query_arrow(&self, sql: &str, db: &str) -> Result<ArrowAnswer<'_>, Error> {
        match self.query_arrow(QueryRequest::new(sql)).database_id(db).stream()? {
            QueryArrowOutcome::Ready { meta, batches } => Ok(ArrowAnswer::Rows(
                Batches { schema: batches.schema(), iter: Box::new(batches) },
                meta.result_id,
            )),
            QueryArrowOutcome::Submitted { run, result_id } => match result_id {
                Some(id) => Ok(ArrowAnswer::Later(id)),
                None => Api::run_result(self, &run.query_run_id, db)?
                    .map(ArrowAnswer::Later)
                    .ok_or_else(|| Error::config("the query run ended without a result")),
            },
        }
    }

    fn query_json(&self, sql: &str, db: &str) -> Result<QueryOutcome, Error> {
        self.query(QueryRequest::new(sql).database_id(db)).send()
    }

    fn run_result(&self, run_id: &str, db: &str) -> Result<Option<String>, Error> {
        Ok(self.wait_for_query_run(run_id, db)?.result_id)
    }

    fn result_arrow(&self, id: &str, db: &str) -> Result<Batches<'_>, Error> {
        self.wait_for_result(id, db)?;
        let b = ready(self.results().arrow(id, db).stream()?, id)?;
        Ok(Batches { schema: b.schema(), iter: Box::new(b) })
    }

    fn result_json(&self, id: &str, db: &str, limit: usize) -> Result<JsonPage, Error> {
        self.wait_for_result(id, db)?;
        let r = self.results().get(id, db).limit(limit as i32).send()?;
        Ok(json_page(r))
    }

    fn download(
        &self,
        id: &str,
        db: &str,
        format: ResultsFormatQuery,
        file: &mut File,
    ) -> Result<u64, Error> {
        self.wait_for_result(id, db)?;
        Ok(ready(self.results().download(id, db, format).write_to(file)?, id)?.1)
    }
}

fn json_page(r: hotdata_core::models::GetResultResponse) -> JsonPage {
    let total = r.total_row_count.or(r.row_count).unwrap_or_default() as u64;
    let rows =
        r.rows.unwrap_or_default().iter().map(|row| row.iter().map(|c| c.to_string()).collect()).collect();
    (r.columns.unwrap_or_default(), rows, total)
}

/// The async client, driven by a runtime of its own: each call blocks on its future, and a
/// batch stream becomes an `Iterator` that blocks on each next batch.
pub struct AsyncApi {
    client: AsyncClient,
    runtime: tokio::runtime::Runtime,
}

impl AsyncApi {
    /// The async client on a current-thread runtime.
    pub fn new(client: AsyncClient) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting tokio", e))?;
        Ok(Self { client, runtime })
    }

    fn batches(&self, mut stream: hotdata_core::arrow::ArrowBatchStream) -> Batches<'_> {
        let schema = stream.schema();
        let iter = std::iter::from_fn(move || self.runtime.block_on(stream.next_batch()));
        Batches { schema, iter: Box::new(iter) }
    }
}

impl Api for AsyncApi {
    fn query_arrow(&self, sql: &str, db: &str) -> Result<ArrowAnswer<'_>, Error> {
        let call = self.client.query_arrow(QueryRequest::new(sql)).database_id(db);
        match self.runtime.block_on(call.stream())? {
            QueryArrowOutcome::Ready { meta, batches } => {
                Ok(ArrowAnswer::Rows(self.batches(batches), meta.result_id))
            }
            QueryArrowOutcome::Submitted { run, result_id } => match result_id {
                Some(id) => Ok(ArrowAnswer::Later(id)),
                None => self
                    .run_result(&run.query_run_id, db)?
                    .map(ArrowAnswer::Later)
                    .ok_or_else(|| Error::config("the query run ended without a result")),
            },
        }
    }

    fn query_json(&self, sql: &str, db: &str) -> Result<QueryOutcome, Error> {
        self.runtime.block_on(self.client.query(QueryRequest::new(sql).database_id(db)).send())
    }

    fn run_result(&self, run_id: &str, db: &str) -> Result<Option<String>, Error> {
        Ok(self.runtime.block_on(self.client.wait_for_query_run(run_id, db))?.result_id)
    }

    fn result_arrow(&self, id: &str, db: &str) -> Result<Batches<'_>, Error> {
        self.runtime.block_on(self.client.wait_for_result(id, db))?;
        Ok(self.batches(ready(self.runtime.block_on(self.client.results().arrow(id, db).stream())?, id)?))
    }

    fn result_json(&self, id: &str, db: &str, limit: usize) -> Result<JsonPage, Error> {
        self.runtime.block_on(self.client.wait_for_result(id, db))?;
        let r = self.runtime.block_on(self.client.results().get(id, db).limit(limit as i32).send())?;
        Ok(json_page(r))
    }

    fn download(
        &self,
        id: &str,
        db: &str,
        format: ResultsFormatQuery,
        file: &mut File,
    ) -> Result<u64, Error> {
        self.runtime.block_on(self.client.wait_for_result(id, db))?;
        Ok(ready(self.runtime.block_on(self.client.results().download(id, db, format).write_to(file))?, id)?
            .1)
    }
}

/// Where `--out` goes, from its extension.
#[derive(Debug, Clone, PartialEq)]
pub enum OutKind {
    /// `.arrow`: an Arrow IPC file.
    ArrowFile,
    /// `.arrows`: an Arrow IPC stream.
    ArrowStream,
    /// A server-side download in this format.
    Download(ResultsFormatQuery),
}

impl OutKind {
    /// The kind of output a path asks for.
    pub fn of(path: &str) -> Result<Self, String> {
        let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        Ok(match ext.as_str() {
            "arrow" | "feather" => Self::ArrowFile,
            "arrows" => Self::ArrowStream,
            "csv" => Self::Download(ResultsFormatQuery::Csv),
            "parquet" => Self::Download(ResultsFormatQuery::Parquet),
            "json" => Self::Download(ResultsFormatQuery::Json),
            "md" => Self::Download(ResultsFormatQuery::Md),
            _ => return Err(format!("--out {path}: use .arrow, .arrows, .csv, .parquet, .json or .md")),
        })
    }
}

/// Keeps the first rows and counts all rows as batches stream by, then prints them.
struct Shower {
    columns: Vec<String>,
    rows: u64,
    shown: Vec<Vec<String>>,
}

impl Shower {
    fn new(schema: &arrow_schema::Schema, out: &mut dyn Write) -> Self {
        let _ = writeln!(out, "schema:");
        for f in schema.fields() {
            let _ = writeln!(
                out,
                "  {}: {}{}",
                f.name(),
                f.data_type(),
                if f.is_nullable() { "" } else { " not null" }
            );
        }
        Self {
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            rows: 0,
            shown: Vec::new(),
        }
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        if self.shown.len() < SHOWN {
            let head = batch.slice(0, batch.num_rows().min(SHOWN - self.shown.len()));
            let cells = hotdata_core::arrow_rows::batch_cells(&head)?;
            self.shown.extend(cells.iter().map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<_>>()));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(self, out: &mut dyn Write) -> u64 {
        let _ = writeln!(out, "rows: {}", self.rows);
        write_table(out, &self.columns, &self.shown);
        self.rows
    }
}

/// An Arrow output being written.
enum ArrowOut {
    File(FileWriter<File>, DictionaryUnifier),
    Stream(StreamWriter<File>),
}

fn write_error(path: &str, e: impl std::fmt::Display) -> Error {
    Error::io(&format!("writing {path}"), std::io::Error::other(e.to_string()))
}

impl ArrowOut {
    fn create(path: &str, kind: &OutKind, schema: &SchemaRef) -> Result<Self, Error> {
        let file = File::create(path).map_err(|e| Error::io(&format!("creating {path}"), e))?;
        let options = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
        Ok(match kind {
            OutKind::ArrowFile => Self::File(
                FileWriter::try_new_with_options(file, schema, options).map_err(|e| write_error(path, e))?,
                DictionaryUnifier::default(),
            ),
            _ => Self::Stream(
                StreamWriter::try_new_with_options(file, schema, options)
                    .map_err(|e| write_error(path, e))?,
            ),
        })
    }

    fn write(&mut self, path: &str, batch: &RecordBatch) -> Result<(), Error> {
        match self {
            Self::File(w, unifier) => {
                let batch = unifier.unify(batch).map_err(|e| write_error(path, e))?;
                w.write(&batch).map_err(|e| write_error(path, e))
            }
            Self::Stream(w) => w.write(batch).map_err(|e| write_error(path, e)),
        }
    }

    fn finish(self, path: &str) -> Result<(), Error> {
        match self {
            Self::File(mut w, _) => w.finish().map_err(|e| write_error(path, e)),
            Self::Stream(mut w) => w.finish().map_err(|e| write_error(path, e)),
        }
    }
}

/// Reads `batches` once: shows the first rows and, when asked, writes every batch.
fn consume(
    batches: Batches<'_>,
    arrow_out: Option<(&str, &OutKind)>,
    out: &mut dyn Write,
) -> Result<(u64, Option<Written>), Error> {
    let mut shower = Shower::new(&batches.schema, out);
    let mut writer = match arrow_out {
        Some((path, kind)) => Some((path, ArrowOut::create(path, kind, &batches.schema)?)),
        None => None,
    };
    for batch in batches.iter {
        let batch = batch?;
        shower.add(&batch)?;
        if let Some((path, w)) = &mut writer {
            w.write(path, &batch)?;
        }
    }
    let rows = shower.finish(out);
    let written = match writer {
        Some((path, w)) => {
            w.finish(path)?;
            Some(Written::ArrowRows(rows))
        }
        None => None,
    };
    Ok((rows, written))
}

/// Runs the program on `api`: see the [module docs](self).
pub fn run(api: &dyn Api, args: &Args, out: &mut dyn Write) -> Result<Summary, Error> {
    let db = args.database.as_deref().ok_or_else(|| Error::config("a database is needed (--database)"))?;
    let kind = args.out.as_deref().map(OutKind::of).transpose().map_err(Error::config)?;
    let arrow_out = match (&args.out, &kind) {
        (Some(path), Some(k @ (OutKind::ArrowFile | OutKind::ArrowStream))) => Some((path.as_str(), k)),
        _ => None,
    };
    let mut summary = Summary::default();
    match (&args.sql, &args.result) {
        (Some(sql), None) if args.json => match api.query_json(sql, db)? {
            QueryOutcome::Inline(r) => {
                let _ = writeln!(out, "columns: {}", r.columns.join(", "));
                let more = if r.truncated { " (a preview: the result is larger)" } else { "" };
                let total = r.total_row_count.unwrap_or(i64::from(r.row_count));
                let _ = writeln!(out, "rows: {total}{more}");
                let shown: Vec<Vec<String>> = r
                    .rows
                    .iter()
                    .take(SHOWN)
                    .map(|row| row.iter().map(|c| c.to_string()).collect())
                    .collect();
                write_table(out, &r.columns, &shown);
                summary.rows = Some(total as u64);
                summary.result_id = r.result_id;
            }
            QueryOutcome::Submitted(run) => {
                let _ =
                    writeln!(out, "query run {} continues asynchronously ({})", run.query_run_id, run.status);
                summary.result_id = api.run_result(&run.query_run_id, db)?;
            }
            _ => return Err(Error::config("an answer this example does not know")),
        },
        (Some(sql), None) => {
            let (batches, id) = match api.query_arrow(sql, db)? {
                ArrowAnswer::Rows(b, id) => (b, id),
                ArrowAnswer::Later(id) => {
                    let _ = writeln!(out, "the query continues asynchronously; reading result {id}");
                    (api.result_arrow(&id, db)?, Some(id))
                }
            };
            let (rows, written) = consume(batches, arrow_out, out)?;
            (summary.rows, summary.written, summary.result_id) = (Some(rows), written, id);
        }
        (None, Some(id)) => {
            summary.result_id = Some(id.clone());
            if matches!(kind, Some(OutKind::Download(_))) {
                // The download is the one read of the result.
            } else if args.json {
                let (columns, rows, total) = api.result_json(id, db, SHOWN)?;
                let _ = writeln!(out, "rows: {total}");
                write_table(out, &columns, &rows);
                summary.rows = Some(total);
            } else {
                let (rows, written) = consume(api.result_arrow(id, db)?, arrow_out, out)?;
                (summary.rows, summary.written) = (Some(rows), written);
            }
        }
        _ => return Err(Error::config("give SQL or --result, not both")),
    }
    if let (Some(path), Some(kind)) = (&args.out, &kind) {
        let stored = || {
            summary
                .result_id
                .clone()
                .ok_or_else(|| Error::config("--out needs a stored result, and the server named none"))
        };
        match kind {
            OutKind::Download(format) => {
                let mut file = File::create(path).map_err(|e| Error::io(&format!("creating {path}"), e))?;
                summary.written =
                    Some(Written::Bytes(api.download(&stored()?, db, format.clone(), &mut file)?));
            }
            // The JSON API showed the rows: the Arrow output is one more read, of the result.
            _ if summary.written.is_none() => {
                summary.written =
                    consume(api.result_arrow(&stored()?, db)?, arrow_out, &mut std::io::sink())?.1;
            }
            _ => {}
        }
        let _ = match &summary.written {
            Some(Written::ArrowRows(n)) => writeln!(out, "wrote {n} rows to {path}"),
            Some(Written::Bytes(n)) => writeln!(out, "wrote {n} bytes to {path}"),
            None => Ok(()),
        };
    }
    Ok(summary)
}

/// Makes a stream's dictionaries fit the IPC file format, which holds one dictionary per
/// dictionary column, only ever extended (deltas): a dictionary that replaces the previous
/// one is appended to it and the batch's keys are moved past the values before it, so
/// every key still points at its own value. Nested dictionaries (in lists, structs, maps,
/// unions) are handled the same way.
#[derive(Debug, Default)]
pub struct DictionaryUnifier {
    /// Per dictionary position (the path of child indexes from the column), the values
    /// written so far.
    written: HashMap<Vec<usize>, ArrayData>,
}

impl DictionaryUnifier {
    /// `batch` with its dictionaries extending the ones of the batches before it.
    pub fn unify(&mut self, batch: &RecordBatch) -> Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| self.unify_data(&mut vec![i], &c.to_data()).map(make_array))
            .collect::<Result<_, _>>()?;
        RecordBatch::try_new(batch.schema(), columns).map_err(|e| e.to_string())
    }

    fn unify_data(&mut self, path: &mut Vec<usize>, data: &ArrayData) -> Result<ArrayData, String> {
        let children: Vec<ArrayData> = data
            .child_data()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                path.push(i);
                let c = self.unify_data(path, c);
                path.pop();
                c
            })
            .collect::<Result<_, _>>()?;
        let DataType::Dictionary(key_type, _) = data.data_type() else {
            return if children.is_empty() {
                Ok(data.clone())
            } else {
                data.clone().into_builder().child_data(children).build().map_err(|e| e.to_string())
            };
        };
        let values = children.into_iter().next().ok_or("a dictionary without values")?;
        let prior = self.written.get(path.as_slice());
        let (values, shift) = match prior {
            // The first dictionary, or one that extends (or repeats) what was written.
            None => (values, 0),
            Some(prev) if prev.len() <= values.len() && values.slice(0, prev.len()) == *prev => (values, 0),
            // A replacement: append it to what was written.
            Some(prev) => {
                let mut joined = MutableArrayData::new(vec![prev, &values], false, prev.len() + values.len());
                joined.try_extend(0, 0, prev.len()).map_err(|e| e.to_string())?;
                joined.try_extend(1, 0, values.len()).map_err(|e| e.to_string())?;
                (joined.freeze(), prev.len())
            }
        };
        let keys = if shift == 0 { data.buffers()[0].clone() } else { shift_keys(data, key_type, shift)? };
        let unified = data
            .clone()
            .into_builder()
            .buffers(vec![keys])
            .child_data(vec![values.clone()])
            .build()
            .map_err(|e| e.to_string())?;
        self.written.insert(path.clone(), values);
        Ok(unified)
    }
}

/// The keys of dictionary `data` plus `shift`, in their own type.
fn shift_keys(data: &ArrayData, key_type: &DataType, shift: usize) -> Result<arrow_buffer::Buffer, String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    let keys = make_array(
        ArrayData::builder(key_type.clone())
            .len(data.len())
            .offset(data.offset())
            .add_buffer(data.buffers()[0].clone())
            .nulls(data.nulls().cloned())
            .build()
            .map_err(|e| e.to_string())?,
    );
    let overflow = || {
        format!(
            "a dictionary replaced between batches no longer fits its {key_type} keys once appended \
             (write the result as .arrows, the IPC stream format, which keeps replacements)"
        )
    };
    macro_rules! shifted {
        ($t:ty) => {{
            let a = keys.as_primitive::<$t>();
            let mut v = Vec::with_capacity(a.len());
            for (i, k) in a.values().iter().enumerate() {
                // Null slots keep whatever they hold.
                v.push(if a.is_null(i) {
                    *k
                } else {
                    (*k as i128 + shift as i128).try_into().map_err(|_| overflow())?
                });
            }
            // The new buffer starts at the array's offset: the builder above sliced to it.
            let mut padded = vec![Default::default(); data.offset()];
            padded.extend(v);
            arrow_buffer::Buffer::from_vec(padded)
        }};
    }
    Ok(match key_type {
        DataType::Int8 => shifted!(Int8Type),
        DataType::Int16 => shifted!(Int16Type),
        DataType::Int32 => shifted!(Int32Type),
        DataType::Int64 => shifted!(Int64Type),
        DataType::UInt8 => shifted!(UInt8Type),
        DataType::UInt16 => shifted!(UInt16Type),
        DataType::UInt32 => shifted!(UInt32Type),
        DataType::UInt64 => shifted!(UInt64Type),
        other => return Err(format!("dictionary keys of type {other}")),
    })
}

/// Parses the command line (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<(crate::Backend, Args), String> {
    let mut a = Args::default();
    let mut backend = crate::Backend::Ureq;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--backend" => backend = value("--backend")?.parse()?,
            "--database" => a.database = Some(value("--database")?),
            "--result" => a.result = Some(value("--result")?),
            "--out" => {
                let out = value("--out")?;
                OutKind::of(&out)?;
                a.out = Some(out);
            }
            "--format" => match value("--format")?.as_str() {
                "arrow" => a.json = false,
                "json" => a.json = true,
                f => return Err(format!("unknown format {f} (arrow or json)")),
            },
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            s if a.sql.is_none() => a.sql = Some(s.to_owned()),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    match (&a.sql, &a.result, &a.database) {
        (None, None, _) => Err("give SQL or --result".into()),
        (Some(_), Some(_), _) => Err("give SQL or --result, not both".into()),
        (None, Some(_), None) => Err("--result needs --database".into()),
        _ => Ok((backend, a)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow_array::{DictionaryArray, StringArray, types::Int8Type};
    use arrow_schema::{Field, Schema};

    fn batch(keys: Vec<Option<i8>>, values: &[&str]) -> RecordBatch {
        let dict =
            DictionaryArray::<Int8Type>::try_new(keys.into(), Arc::new(StringArray::from(values.to_vec())))
                .unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("d", dict.data_type().clone(), true)]));
        RecordBatch::try_new(schema, vec![Arc::new(dict)]).unwrap()
    }

    fn strings(b: &RecordBatch) -> Vec<Option<String>> {
        let d = b.column(0).as_any().downcast_ref::<DictionaryArray<Int8Type>>().unwrap();
        let v = d.values().as_any().downcast_ref::<StringArray>().unwrap();
        d.keys().iter().map(|k| k.map(|k| v.value(k as usize).to_owned())).collect()
    }

    #[test]
    fn replacements_become_appended_dictionaries_with_the_same_values() {
        let mut u = DictionaryUnifier::default();
        let a = batch(vec![Some(0), Some(1), None], &["x", "y"]);
        let b = batch(vec![Some(1), Some(0)], &["p", "q"]);
        let c = batch(vec![Some(0)], &["p", "q"]);
        let ua = u.unify(&a).unwrap();
        let ub = u.unify(&b).unwrap();
        let uc = u.unify(&c).unwrap();
        assert_eq!(strings(&ua), strings(&a));
        assert_eq!(strings(&ub), strings(&b));
        assert_eq!(strings(&uc), strings(&c));
        // The written file holds them all and reads back the same values.
        let mut file = Vec::new();
        let options = IpcWriteOptions::default().with_dictionary_handling(DictionaryHandling::Delta);
        let mut w = FileWriter::try_new_with_options(&mut file, &a.schema(), options).unwrap();
        for x in [&ua, &ub, &uc] {
            w.write(x).unwrap();
        }
        w.finish().unwrap();
        drop(w);
        let r = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(file), None).unwrap();
        let back: Vec<RecordBatch> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(back.iter().map(strings).collect::<Vec<_>>(), vec![strings(&a), strings(&b), strings(&c)]);
    }

    #[test]
    fn a_dictionary_outgrowing_its_keys_names_the_stream_format() {
        let mut u = DictionaryUnifier::default();
        let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        u.unify(&batch(vec![Some(99)], &refs)).unwrap();
        let other: Vec<&str> = refs.iter().rev().copied().collect();
        let e = u.unify(&batch(vec![Some(99)], &other)).unwrap_err();
        assert!(e.contains(".arrows"), "{e}");
    }
}
