//! The main flow end to end: create a database, upload a CSV and a Parquet file, load them
//! into tables, run SQL across both, and print the result, read as Arrow.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With no `HOTDATA_API_KEY` it starts the local emulator in-process; with credentials
//! (`HOTDATA_API_KEY`, `HOTDATA_WORKSPACE_ID`, optionally `HOTDATA_API_URL`) it runs the same
//! flow against the hosted service, in a database it creates and deletes at the end.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use hotdata_core::models::{
    CreateDatabaseRequest, LoadManagedTableRequest, LoadMode, LoadOutcome, QueryRequest,
};
use hotdata_core::upload::{UploadError, UploadOptions};
use hotdata_core::{BlockingClient, Error};
use hotdata_examples::{Session, cell_text, print_table};

const CITIES_CSV: &str = "city,country,population\n\
Lisbon,PT,545000\n\
Porto,PT,232000\n\
Lyon,FR,522000\n\
Paris,FR,2103000\n\
Nantes,FR,320000\n";

fn main() -> ExitCode {
    let started = Instant::now();
    let session = match Session::connect() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Running against {}.", session.describe());
    match run(&session.blocking()) {
        Ok(()) => {
            println!("Done in {:.1} s.", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            hotdata_examples::report(e.as_ref());
            ExitCode::FAILURE
        }
    }
}

/// Visits per city, as Parquet.
fn visits_parquet() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("city", DataType::Utf8, false),
        Field::new("visits", DataType::Int64, false),
        Field::new("avg_stay_days", DataType::Float64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["Lisbon", "Porto", "Lyon", "Paris", "Nantes"])),
            Arc::new(Int64Array::from(vec![1200, 430, 610, 5400, 150])),
            Arc::new(Float64Array::from(vec![Some(3.5), Some(2.0), None, Some(4.25), Some(1.5)])),
        ],
    )
    .expect("a valid batch");
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).expect("a parquet writer");
    writer.write(&batch).expect("writing parquet");
    writer.close().expect("closing parquet");
    out
}

/// Uploads `bytes` straight to object storage and finalizes the upload.
fn upload(
    client: &BlockingClient,
    bytes: Vec<u8>,
    filename: &str,
    content_type: &str,
) -> Result<String, UploadError> {
    let options = UploadOptions::new().filename(filename).content_type(content_type);
    Ok(client.upload_file(bytes, options)?.upload_id)
}

fn load(client: &BlockingClient, db: &str, table: &str, upload_id: &str, format: &str) -> Result<i64, Error> {
    let request = LoadManagedTableRequest::new(LoadMode::Replace).upload_id(upload_id).format(format);
    match client.databases().load_table(db, "public", table, request).send()? {
        LoadOutcome::Loaded(done) => Ok(done.row_count),
        LoadOutcome::Submitted(job) => {
            let job = client.wait_for_job(&job.id)?;
            match job.result {
                Some(hotdata_core::models::JobResult::Load(done)) => Ok(done.row_count),
                _ => Err(Error::config(format!("load job ended {}: {:?}", job.status, job.error_message))),
            }
        }
        _ => Err(Error::config("unexpected load answer")),
    }
}

fn run(client: &BlockingClient) -> Result<(), Box<dyn std::error::Error>> {
    let db = client.databases().create(CreateDatabaseRequest::new().name("quickstart")).send()?;
    println!("Created database {} ({}).", db.name.as_deref().unwrap_or("quickstart"), db.id);

    let csv_upload = upload(client, CITIES_CSV.as_bytes().to_vec(), "cities.csv", "text/csv")?;
    println!("Uploaded cities.csv ({} bytes) as upload {csv_upload}.", CITIES_CSV.len());
    let parquet = visits_parquet();
    let parquet_len = parquet.len();
    let parquet_upload = upload(client, parquet, "visits.parquet", "application/vnd.apache.parquet")?;
    println!("Uploaded visits.parquet ({parquet_len} bytes) as upload {parquet_upload}.");

    let n = load(client, &db.id, "cities", &csv_upload, "csv")?;
    println!("Loaded {n} rows into table cities.");
    let n = load(client, &db.id, "visits", &parquet_upload, "parquet")?;
    println!("Loaded {n} rows into table visits.");

    let sql = "SELECT c.country, COUNT(*) AS cities, SUM(v.visits) AS visits, \
               SUM(c.population) AS population \
               FROM cities c JOIN visits v ON v.city = c.city \
               GROUP BY c.country ORDER BY visits DESC";
    println!("Running: {sql}");
    let result = client.query_to_arrow(QueryRequest::new(sql).database_id(db.id.as_str()), Some(&db.id))?;
    println!("Got {} rows as Arrow ({} batch(es)):", result.num_rows(), result.batches.len());
    let columns: Vec<String> = result.schema.fields().iter().map(|f| f.name().clone()).collect();
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        hotdata_core::arrow_rows::batches_as(&result.batches)?;
    let table: Vec<Vec<String>> =
        rows.iter().map(|r| columns.iter().map(|c| cell_text(&r[c])).collect()).collect();
    print_table(&columns, &table);

    client.databases().delete(&db.id).send()?;
    println!("Deleted database {}.", db.id);
    Ok(())
}
