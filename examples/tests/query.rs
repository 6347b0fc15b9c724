//! `examples/query` on both backends: every output format is written and read back, from a
//! query and from a stored result, with the same program.

use std::path::PathBuf;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use hotdata_core::models::CreateDatabaseRequest;
use hotdata_examples::Session;
use hotdata_examples::query::{self, Api, Args, AsyncApi, Written};

const ROWS: i64 = 2_500;

fn sql() -> String {
    format!(
        "with recursive t(x) as (select 1 union all select x + 1 from t where x < {ROWS}) \
         select x, 'row ' || x as label from t"
    )
}

/// A scratch file path, unique to this test run.
fn scratch(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("hotdata-query-{}-{n}-{name}", std::process::id()))
}

struct Fixture {
    session: Session,
    db: String,
}

fn fixture() -> Fixture {
    let session = Session::local().unwrap();
    let db = session.blocking().databases().create(CreateDatabaseRequest::new().name("q")).send().unwrap().id;
    Fixture { session, db }
}

fn apis(f: &Fixture) -> Vec<(&'static str, Box<dyn Api>)> {
    vec![
        ("ureq", Box::new(f.session.blocking())),
        ("reqwest", Box::new(AsyncApi::new(f.session.asynchronous()).unwrap())),
    ]
}

fn check_x_column(batches: &[RecordBatch], what: &str) {
    let xs: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    assert_eq!(xs, (1..=ROWS).collect::<Vec<_>>(), "{what}");
}

/// Reads a written output back with a reader of its format; the rows it holds.
fn read_back(path: &PathBuf, what: &str) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let ext = path.extension().unwrap().to_str().unwrap();
    match ext {
        "arrow" => {
            let r = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
            let batches: Vec<RecordBatch> = r.collect::<Result<_, _>>().unwrap();
            check_x_column(&batches, what);
            batches.iter().map(RecordBatch::num_rows).sum()
        }
        "arrows" => {
            let r = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
            let batches: Vec<RecordBatch> = r.collect::<Result<_, _>>().unwrap();
            check_x_column(&batches, what);
            batches.iter().map(RecordBatch::num_rows).sum()
        }
        "csv" => {
            let text = String::from_utf8(bytes).unwrap();
            let mut lines = text.lines();
            assert_eq!(lines.next().unwrap().trim(), "x,label", "{what}");
            assert_eq!(lines.clone().last().unwrap(), format!("{ROWS},row {ROWS}"), "{what}");
            lines.count()
        }
        "parquet" => {
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .unwrap()
            .build()
            .unwrap();
            let batches: Vec<RecordBatch> = r.collect::<Result<_, _>>().unwrap();
            check_x_column(&batches, what);
            batches.iter().map(RecordBatch::num_rows).sum()
        }
        "json" => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let rows = v.get("rows").and_then(|r| r.as_array()).unwrap_or_else(|| panic!("{what}: {v}"));
            assert_eq!(rows.last().unwrap()[0], serde_json::json!(ROWS), "{what}");
            rows.len()
        }
        other => panic!("no reader for .{other}"),
    }
}

#[test]
fn a_query_writes_every_format_on_both_backends() {
    let f = fixture();
    for (backend, api) in apis(&f) {
        for ext in ["arrow", "arrows", "csv", "parquet", "json"] {
            let path = scratch(&format!("q.{ext}"));
            let args = Args {
                sql: Some(sql()),
                database: Some(f.db.clone()),
                out: Some(path.to_str().unwrap().to_owned()),
                ..Args::default()
            };
            let mut shown = Vec::new();
            let summary = query::run(api.as_ref(), &args, &mut shown)
                .unwrap_or_else(|e| panic!("{backend} .{ext}: {e}"));
            let shown = String::from_utf8(shown).unwrap();
            assert!(shown.contains(&format!("rows: {ROWS}")), "{backend} .{ext}: {shown}");
            assert!(shown.contains("row 10"), "{backend} .{ext}: the first rows are shown: {shown}");
            assert_eq!(read_back(&path, &format!("{backend} .{ext}")), ROWS as usize, "{backend} .{ext}");
            if ext.starts_with("arrow") {
                assert_eq!(summary.written, Some(Written::ArrowRows(ROWS as u64)));
            }
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn a_stored_result_is_read_once_into_each_format_on_both_backends() {
    let f = fixture();
    let id = f
        .session
        .blocking()
        .query(hotdata_core::models::QueryRequest::new(sql()).database_id(f.db.as_str()))
        .send()
        .unwrap();
    let hotdata_core::models::QueryOutcome::Inline(r) = id else { panic!("expected rows") };
    assert!(r.truncated, "the JSON answer is a preview of the {ROWS} rows");
    let id = r.result_id.unwrap();
    let emulator = f.session.emulator().unwrap();
    for (backend, api) in apis(&f) {
        for ext in ["arrow", "arrows", "csv", "parquet"] {
            let path = scratch(&format!("r.{ext}"));
            let args = Args {
                result: Some(id.clone()),
                database: Some(f.db.clone()),
                out: Some(path.to_str().unwrap().to_owned()),
                ..Args::default()
            };
            emulator.clear_requests();
            query::run(api.as_ref(), &args, &mut Vec::new())
                .unwrap_or_else(|e| panic!("{backend} .{ext}: {e}"));
            let reads = emulator
                .requests()
                .iter()
                .filter(|r| {
                    r.method == "GET" && r.uri.starts_with("/v1/results/") && r.uri.contains("format=")
                })
                .count();
            assert_eq!(reads, 1, "{backend} .{ext}: the result is read once");
            assert_eq!(read_back(&path, &format!("{backend} .{ext}")), ROWS as usize, "{backend} .{ext}");
            let _ = std::fs::remove_file(path);
        }
    }
}

#[test]
fn the_json_api_path_runs_on_both_backends() {
    let f = fixture();
    for (backend, api) in apis(&f) {
        let args = Args { sql: Some(sql()), database: Some(f.db.clone()), json: true, ..Args::default() };
        let mut shown = Vec::new();
        let summary = query::run(api.as_ref(), &args, &mut shown).unwrap();
        let shown = String::from_utf8(shown).unwrap();
        assert!(shown.contains("a preview"), "{backend}: a truncated answer says so: {shown}");
        assert!(summary.result_id.is_some());
        let path = scratch("j.arrows");
        let args = Args { out: Some(path.to_str().unwrap().to_owned()), ..args };
        query::run(api.as_ref(), &args, &mut Vec::new()).unwrap();
        assert_eq!(read_back(&path, &format!("{backend} json .arrows")), ROWS as usize);
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn bad_command_lines_are_refused_before_anything_runs() {
    let parse = |a: &[&str]| query::parse(a.iter().map(|s| s.to_string()));
    assert!(parse(&[]).is_err());
    assert!(parse(&["select 1", "--result", "r"]).is_err());
    assert!(parse(&["--result", "r"]).unwrap_err().contains("--database"));
    assert!(parse(&["select 1", "--out", "x.xlsx"]).unwrap_err().contains(".arrows"));
    assert!(parse(&["select 1", "--backend", "curl"]).is_err());
    assert!(parse(&["select 1", "--out", "x.ARROW"]).is_ok());
}

/// A result whose dictionaries are replaced between batches (pyarrow's stream
/// `dict_replacement.arrows`, nested dictionaries included) still writes as an IPC file on
/// both backends, and reads back to the values of its plain twin.
#[test]
fn replaced_dictionaries_still_write_an_arrow_file_with_the_same_values() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/arrow");
    let stream = bytes::Bytes::from(std::fs::read(dir.join("dict_replacement.arrows")).unwrap());
    let twin = bytes::Bytes::from(std::fs::read(dir.join("dict_replacement.plain.arrows")).unwrap());
    let (_, plain) = hotdata_core::arrow::decode_all(twin).unwrap();
    let f = fixture();
    let id = f.session.emulator().unwrap().store_arrow_result(&f.db, stream).unwrap();
    for (backend, api) in apis(&f) {
        for ext in ["arrow", "arrows"] {
            let path = scratch(&format!("dict.{ext}"));
            let args = Args {
                result: Some(id.clone()),
                database: Some(f.db.clone()),
                out: Some(path.to_str().unwrap().to_owned()),
                ..Args::default()
            };
            query::run(api.as_ref(), &args, &mut Vec::new())
                .unwrap_or_else(|e| panic!("{backend} .{ext}: {e}"));
            let bytes = std::fs::read(&path).unwrap();
            let back: Vec<RecordBatch> = if ext == "arrow" {
                arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            } else {
                arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            };
            // Same values as the plain twin, cell by cell (dictionaries are values here).
            let cells = |b: &[RecordBatch]| -> Vec<Vec<String>> {
                b.iter()
                    .flat_map(|b| hotdata_core::arrow_rows::batch_cells(b).unwrap())
                    .map(|row| row.iter().map(|c| c.as_json().to_owned()).collect())
                    .collect()
            };
            assert_eq!(cells(&back), cells(&plain), "{backend} .{ext}");
            let _ = std::fs::remove_file(path);
        }
    }
}
