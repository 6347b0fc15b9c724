//! Runs SQL (or opens a stored result) and prints its schema, row count and first rows.
//!
//! ```text
//! cargo run --example query -- [--backend ureq|reqwest] "<SQL>" [--database ID]
//!     [--result RESULT_ID] [--format arrow|json] [--out FILE.arrow|FILE.csv]
//! ```
//!
//! With `--format arrow` (the default) the rows stream as Arrow record batches decoded off
//! the socket; `--format json` uses the JSON API. `--result` fetches an existing result
//! instead of running SQL (it needs `--database`). `--out` writes the whole result, streamed:
//! `.arrow` as an Arrow IPC file, `.csv` as CSV downloaded from the server.
//! Without `HOTDATA_API_KEY`, it runs against a local emulator.

use std::fs::File;
use std::process::ExitCode;

use hotdata_core::arrow::{ArrowBatchStream, ArrowBatches, QueryArrowOutcome};
use hotdata_core::models::{CreateDatabaseRequest, QueryOutcome, QueryRequest, ResultsFormatQuery};
use hotdata_core::results::ResultFetch;
use hotdata_core::{AsyncClient, BlockingClient, Error};
use hotdata_examples::{Backend, Session, cell_text, print_table};

const SHOWN: usize = 10;

struct Args {
    backend: Backend,
    sql: Option<String>,
    database: Option<String>,
    result: Option<String>,
    json: bool,
    out: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut a =
        Args { backend: Backend::Ureq, sql: None, database: None, result: None, json: false, out: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--backend" => a.backend = value("--backend")?.parse()?,
            "--database" => a.database = Some(value("--database")?),
            "--result" => a.result = Some(value("--result")?),
            "--out" => a.out = Some(value("--out")?),
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
        _ => Ok(a),
    }
}

fn main() -> ExitCode {
    let mut args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{e}\nusage: query [--backend ureq|reqwest] \"<SQL>\" [--database ID] [--result RESULT_ID] [--format arrow|json] [--out FILE]"
            );
            return ExitCode::from(2);
        }
    };
    let session = match Session::connect() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if session.is_local() && args.database.is_none() {
        // The emulator starts empty: give the query a database to run and store results in.
        match session.blocking().databases().create(CreateDatabaseRequest::new().name("scratch")).send() {
            Ok(db) => args.database = Some(db.id),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let outcome = match args.backend {
        Backend::Ureq => run_blocking(&session.blocking(), &args),
        Backend::Reqwest => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting tokio", e))
            .and_then(|rt| rt.block_on(run_async(&session.asynchronous(), &args))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            hotdata_examples::report(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints the schema, then keeps the first rows and counts all rows as batches stream by.
struct Shower {
    columns: Vec<String>,
    rows: u64,
    shown: Vec<Vec<String>>,
}

impl Shower {
    fn new(schema: &arrow_schema::Schema) -> Self {
        println!("schema:");
        for f in schema.fields() {
            println!("  {}: {}{}", f.name(), f.data_type(), if f.is_nullable() { "" } else { " not null" });
        }
        Self {
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            rows: 0,
            shown: Vec::new(),
        }
    }

    fn add(&mut self, batch: &arrow_array::RecordBatch) -> Result<(), Error> {
        if self.shown.len() < SHOWN {
            let head = batch.slice(0, batch.num_rows().min(SHOWN - self.shown.len()));
            let values: Vec<serde_json::Map<String, serde_json::Value>> =
                hotdata_core::arrow_rows::batches_as([&head])?;
            let columns = &self.columns;
            self.shown
                .extend(values.iter().map(|r| columns.iter().map(|c| cell_text(&r[c])).collect::<Vec<_>>()));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn finish(self) {
        println!("rows: {}", self.rows);
        print_table(&self.columns, &self.shown);
    }
}

fn show_batches(schema: &arrow_schema::Schema, batches: ArrowBatches) -> Result<(), Error> {
    let mut shower = Shower::new(schema);
    for batch in batches {
        shower.add(&batch?)?;
    }
    shower.finish();
    Ok(())
}

fn write_arrow_file(path: &str, batches: ArrowBatches) -> Result<u64, Error> {
    let file = File::create(path).map_err(|e| Error::io(&format!("creating {path}"), e))?;
    let mut w = arrow_ipc::writer::FileWriter::try_new(file, &batches.schema())
        .map_err(|e| Error::decode(format!("writing {path}: {e}"), None))?;
    let mut rows = 0u64;
    for b in batches {
        let b = b?;
        rows += b.num_rows() as u64;
        w.write(&b).map_err(|e| Error::decode(format!("writing {path}: {e}"), None))?;
    }
    w.finish().map_err(|e| Error::decode(format!("writing {path}: {e}"), None))?;
    Ok(rows)
}

fn run_blocking(client: &BlockingClient, args: &Args) -> Result<(), Error> {
    let (result_id, database) = match (&args.sql, &args.result) {
        (Some(sql), _) if args.json => {
            let mut body = QueryRequest::new(sql.as_str());
            if let Some(db) = &args.database {
                body = body.database_id(db.as_str());
            }
            match client.query(body).send()? {
                QueryOutcome::Inline(r) => {
                    println!("columns: {}", r.columns.join(", "));
                    println!(
                        "rows: {}{}",
                        r.row_count,
                        if r.truncated { " (preview; the result is larger)" } else { "" }
                    );
                    let shown: Vec<Vec<String>> = r
                        .rows
                        .iter()
                        .take(SHOWN)
                        .map(|row| row.iter().map(|c| c.to_string()).collect())
                        .collect();
                    print_table(&r.columns, &shown);
                    (r.result_id, args.database.clone())
                }
                QueryOutcome::Submitted(run) => {
                    println!("query run {} continues asynchronously ({})", run.query_run_id, run.status);
                    let db = args.database.clone().unwrap_or_default();
                    let done = client.wait_for_query_run(&run.query_run_id, &db)?;
                    (done.result_id, Some(db))
                }
                _ => return Err(Error::config("unexpected answer")),
            }
        }
        (Some(sql), _) => {
            let mut call = client.query_arrow(QueryRequest::new(sql.as_str()));
            if let Some(db) = &args.database {
                call = call.database_id(db.as_str());
            }
            match call.stream()? {
                QueryArrowOutcome::Ready { meta, batches } => {
                    if let Some(w) = &meta.warning {
                        println!("warning: {w}");
                    }
                    show_batches(&batches.schema(), batches)?;
                    (meta.result_id, args.database.clone())
                }
                QueryArrowOutcome::Submitted { run, result_id } => {
                    println!("query run {} continues asynchronously", run.query_run_id);
                    (result_id, args.database.clone())
                }
            }
        }
        (None, Some(id)) => {
            let db = args.database.clone().unwrap_or_default();
            client.wait_for_result(id, &db)?;
            if args.json {
                let r = client.results().get(id.as_str(), db.as_str()).limit(SHOWN as i32).send()?;
                println!("rows: {}", r.total_row_count.or(r.row_count).unwrap_or_default());
                let rows: Vec<Vec<String>> = r
                    .rows
                    .unwrap_or_default()
                    .iter()
                    .map(|row| row.iter().map(|c| c.to_string()).collect())
                    .collect();
                print_table(&r.columns.unwrap_or_default(), &rows);
            } else if let ResultFetch::Ready(batches) =
                client.results().arrow(id.as_str(), db.as_str()).arrow_stream()?
            {
                show_batches(&batches.schema(), batches)?;
            }
            (Some(id.clone()), Some(db))
        }
        (None, None) => unreachable!("checked by parse"),
    };
    if let Some(out) = &args.out {
        let Some(id) = result_id else {
            return Err(Error::config("--out needs a stored result, and the server named none"));
        };
        // Results are read within a database: the one given, else the workspace's first.
        let db = match database {
            Some(db) => db,
            None => match client.databases().list().limit(1).send()?.databases.into_iter().next() {
                Some(db) => db.id,
                None => return Err(Error::config("--out needs --database (the workspace has no database)")),
            },
        };
        client.wait_for_result(&id, &db)?;
        if out.ends_with(".csv") {
            let mut file = File::create(out).map_err(|e| Error::io(&format!("creating {out}"), e))?;
            if let ResultFetch::Ready((_, n)) =
                client.results().download(id, db, ResultsFormatQuery::Csv).write_to(&mut file)?
            {
                println!("wrote {n} bytes of CSV to {out}");
            }
        } else if let ResultFetch::Ready(batches) = client.results().arrow(id, db).arrow_stream()? {
            let rows = write_arrow_file(out, batches)?;
            println!("wrote {rows} rows to {out} (Arrow IPC file)");
        }
    }
    Ok(())
}

async fn run_async(client: &AsyncClient, args: &Args) -> Result<(), Error> {
    let (schema, mut batches): (_, ArrowBatchStream) = match (&args.sql, &args.result) {
        (Some(sql), _) => {
            let mut call = client.query_arrow(QueryRequest::new(sql.as_str()));
            if let Some(db) = &args.database {
                call = call.database_id(db.as_str());
            }
            match call.stream().await? {
                QueryArrowOutcome::Ready { batches, .. } => (batches.schema(), batches),
                QueryArrowOutcome::Submitted { run, result_id } => {
                    let db = args.database.clone().unwrap_or_default();
                    let id = match result_id {
                        Some(id) => id,
                        None => client
                            .wait_for_query_run(&run.query_run_id, &db)
                            .await?
                            .result_id
                            .unwrap_or_default(),
                    };
                    client.wait_for_result(&id, &db).await?;
                    match client.results().arrow(id, db).arrow_stream().await? {
                        ResultFetch::Ready(b) => (b.schema(), b),
                        ResultFetch::NotReady(n) => {
                            return Err(Error::config(format!("result {} not ready", n.result_id)));
                        }
                    }
                }
            }
        }
        (None, Some(id)) => {
            let db = args.database.clone().unwrap_or_default();
            client.wait_for_result(id, &db).await?;
            match client.results().arrow(id.as_str(), db).arrow_stream().await? {
                ResultFetch::Ready(b) => (b.schema(), b),
                ResultFetch::NotReady(n) => {
                    return Err(Error::config(format!("result {} not ready", n.result_id)));
                }
            }
        }
        (None, None) => unreachable!("checked by parse"),
    };
    let mut shower = Shower::new(&schema);
    while let Some(b) = batches.next_batch().await {
        shower.add(&b?)?;
    }
    shower.finish();
    if args.out.is_some() || args.json {
        eprintln!("note: --out and --format json are handled by the ureq backend of this example");
    }
    Ok(())
}
