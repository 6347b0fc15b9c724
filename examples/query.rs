//! Runs SQL (or opens a stored result), prints its schema, row count and first rows, and
//! writes the whole result to a file.
//!
//! ```text
//! cargo run --example query -- [--backend ureq|reqwest] "<SQL>" [--database ID]
//!     [--result RESULT_ID] [--format arrow|json]
//!     [--out FILE.arrow|FILE.arrows|FILE.csv|FILE.parquet|FILE.json|FILE.md]
//! ```
//!
//! With `--format arrow` (the default) the rows stream as Arrow record batches decoded off
//! the socket; `--format json` uses the JSON API. `--result` opens an existing result
//! instead of running SQL (it needs `--database`). `--out` writes the whole result from the
//! same read that shows it: `.arrow` as an Arrow IPC file, `.arrows` as an Arrow IPC stream;
//! `.csv`, `.parquet`, `.json` and `.md` are downloaded from the server in that format. Both
//! backends run the same program (`hotdata_examples::query`). Without `HOTDATA_API_KEY`, it
//! runs against a local emulator.

use std::process::ExitCode;

use hotdata_core::models::CreateDatabaseRequest;
use hotdata_examples::query::{self, Api, AsyncApi};
use hotdata_examples::{Backend, Session};

fn main() -> ExitCode {
    let (backend, mut args) = match query::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "{e}\nusage: query [--backend ureq|reqwest] \"<SQL>\" [--database ID] [--result RESULT_ID] \
                 [--format arrow|json] [--out FILE.arrow|.arrows|.csv|.parquet|.json|.md]"
            );
            return ExitCode::from(2);
        }
    };
    let mut run = || -> Result<(), hotdata_core::Error> {
        let session = Session::connect().map_err(hotdata_core::Error::config)?;
        if args.database.is_none() {
            // Results are read within a database: the workspace's first, or (on the emulator,
            // which starts empty) a new one.
            let client = session.blocking();
            let first = client.databases().list().limit(1).send()?.databases.into_iter().next();
            args.database = Some(match first {
                Some(db) => db.id,
                None => client.databases().create(CreateDatabaseRequest::new().name("scratch")).send()?.id,
            });
        }
        let api: Box<dyn Api> = match backend {
            Backend::Ureq => Box::new(session.blocking()),
            Backend::Reqwest => Box::new(AsyncApi::new(session.asynchronous())?),
        };
        query::run(api.as_ref(), &args, &mut std::io::stdout().lock())?;
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            hotdata_examples::report(&e);
            ExitCode::FAILURE
        }
    }
}
