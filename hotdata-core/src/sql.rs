//! The one-call query: [`Client::sql`] runs a statement and returns **all** its rows.
//!
//! [`Client::query`] is the raw `POST /v1/query`: its inline answer holds at most the
//! server's preview of the rows (`truncated: true` says rows were left out; 1,000 rows on
//! the emulator, more on the hosted service, but always finite), and a query that runs long
//! is answered `202` with a query run to wait for. `client.sql(..)` resolves all of that and
//! returns every row, or an error; never a preview presented as the whole.
//!
//! ```no_run
//! # fn run(client: &hotdata_core::BlockingClient) -> Result<(), hotdata_core::Error> {
//! #[derive(serde::Deserialize)]
//! struct Sale { region: String, total: f64 }
//!
//! let sales: Vec<Sale> = client.sql("select region, sum(amount) as total from sales group by 1")
//!     .database_id("db_123")
//!     .rows_as()?;
//! let rows = client.sql("select * from sales").database_id("db_123").rows()?; // JSON-like cells
//! println!("{:?}: {} rows", rows.columns, rows.rows.len());
//! # Ok(()) }
//! ```
//!
//! | the server answers | [`Sql::rows`], [`Sql::rows_as`] | `Sql::arrow`, `Sql::arrow_stream` (feature `arrow`) |
//! |---|---|---|
//! | inline, complete | the inline rows as sent | the query asks for Arrow: its stream as sent |
//! | inline, `truncated` | the stored result as one Arrow stream (the preview's cells are dropped, never mixed in); without the `arrow` feature an [`ErrorKind::Incomplete`](crate::ErrorKind::Incomplete) error saying to enable it | — |
//! | `202`, the query went asynchronous | waits for the run, then for its result, then fetches it: as Arrow, or without the `arrow` feature as one whole JSON answer | the same, as Arrow |
//! | the run or its result failed | [`ErrorKind::ResultFailed`](crate::ErrorKind::ResultFailed) with the server's message | the same |
//! | the wait reached its deadline ([`Sql::poll_policy`], 120 s by default) | [`ErrorKind::Timeout`](crate::ErrorKind::Timeout); [`Error::query_run_id`] and [`Error::result_id`] say what to keep waiting for | the same |
//!
//! Every error after the server named the run or the result carries their ids
//! ([`Error::query_run_id`], [`Error::result_id`]).
//!
//! **Guards.** What the SDK fetches into memory on the caller's behalf (a followed truncated
//! answer, an asynchronous query's result, `Sql::arrow`) is capped by [`FetchLimits`]
//! (the client's [`Config::fetch_limits`](crate::Config::fetch_limits), 1,000,000 rows and
//! 64 MiB by default; per call [`Sql::fetch_limits`]): checked against the total the server
//! announces before anything is fetched, and while reading. `Sql::arrow_stream` is not
//! capped: it holds about one batch at a time.
//!
//! **Cell forms.** Rows answered inline keep the server's JSON cells exactly as sent. Rows
//! followed through Arrow are the lossless cell forms of [`arrow_rows`](crate::arrow_rows)
//! ([`QueryRows::source`] says which). Typed rows ([`Sql::rows_as`]) decode either way.

use serde::de::DeserializeOwned;

use crate::client::{Async, Blocking, Client};
use crate::config::{Cap, FetchLimits};
use crate::error::Error;
use crate::lifecycle::{PollPolicy, QueryRunDone, ResultReady};
use crate::models::{Cell, QueryOutcome, QueryRequest, QueryResponse, QueryRunInfo, QueryRunStatus};

#[cfg(feature = "arrow-minimal")]
use crate::arrow::{ArrowBatchStream, ArrowBatches, ArrowResult, QueryArrowOutcome};

impl From<&str> for QueryRequest {
    fn from(sql: &str) -> Self {
        QueryRequest::new(sql)
    }
}

impl From<String> for QueryRequest {
    fn from(sql: String) -> Self {
        QueryRequest::new(sql)
    }
}

impl From<&String> for QueryRequest {
    fn from(sql: &String) -> Self {
        QueryRequest::new(sql.as_str())
    }
}

/// A statement to run for all its rows: [`Client::sql`]. Set options, then read the rows
/// with one of its terminal methods (see the [module docs](self)).
#[derive(Debug, Clone)]
#[must_use = "a query runs when one of its terminal methods (`rows`, `rows_as`, `arrow`, ...) is called"]
pub struct Sql<M> {
    client: Client<M>,
    request: QueryRequest,
    database_id: Option<String>,
    limits: Option<FetchLimits>,
    poll: PollPolicy,
}

impl<M: Clone> Client<M> {
    /// **Runs a query and returns all its rows**: the one-call query. Takes the SQL text
    /// (`&str`, `String`) or a whole [`QueryRequest`]; see [`Sql`] for the ways to read the
    /// rows (JSON-like cells, your own types, Arrow batches collected or streamed) and the
    /// [`sql` module](crate::sql) for what it does with each answer of the server.
    ///
    /// [`Client::query`] is the raw call: its inline answer is a preview when `truncated`.
    pub fn sql(&self, query: impl Into<QueryRequest>) -> Sql<M> {
        Sql {
            client: self.clone(),
            request: query.into(),
            database_id: None,
            limits: None,
            poll: PollPolicy::default(),
        }
    }
}

impl<M> Sql<M> {
    /// The database to run in (`X-Database-Id`), and to read a followed result from. The
    /// request's own `database_id` is used when this is not set.
    pub fn database_id(mut self, database_id: impl Into<String>) -> Self {
        self.database_id = Some(database_id.into());
        self
    }

    /// Caps what this query fetches into memory on the caller's behalf, instead of the
    /// client's [`Config::fetch_limits`](crate::Config::fetch_limits).
    pub fn fetch_limits(mut self, limits: FetchLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// How to wait for a query that went asynchronous and for its result (default: 500 ms
    /// doubling to 5 s, 120 s in all; the server's `Retry-After` wins over the interval).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// The request that will be sent.
    pub fn request(&self) -> &QueryRequest {
        &self.request
    }

    fn cap(&self, config_limits: FetchLimits) -> Cap {
        match self.limits {
            Some(limits) => Cap::sql(limits),
            None => Cap::config(config_limits),
        }
    }

    /// The database results are read from: the one set here, else the request body's.
    fn follow_database(&self) -> String {
        self.database_id.clone().or_else(|| self.request.database_id.as_value().cloned()).unwrap_or_default()
    }
}

/// Where the cells of [`QueryRows`] come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowSource {
    /// The query's inline answer, complete: the server's JSON cells as sent.
    Inline,
    /// The stored result, fetched whole as JSON (a query that went asynchronous, in a build
    /// without the `arrow` feature): the server's JSON cells as sent.
    ResultJson,
    /// The stored result, fetched as one Arrow stream: the lossless cell forms of
    /// `arrow_rows`.
    Arrow,
}

/// All the rows of a query, as JSON-like cells: [`Sql::rows`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueryRows {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// Every row, one cell per column.
    pub rows: Vec<Vec<Cell>>,
    /// The query run.
    pub query_run_id: Option<String>,
    /// The stored result, fetchable again later with `client.results()`.
    pub result_id: Option<String>,
    /// Where the cells come from (which forms they take).
    pub source: RowSource,
    /// The server's warning about the query, if any.
    pub warning: Option<String>,
}

impl QueryRows {
    /// The rows decoded into `T` (a struct whose fields are named like the columns, a
    /// map, ...): see [`crate::models::rows_as`].
    pub fn rows_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        crate::models::rows_as(&self.columns, &self.rows)
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// What a row fetch found, before it is turned into cells or typed rows.
enum Fetched {
    /// A complete inline answer.
    Inline(QueryResponse),
    /// A stored result fetched whole as JSON.
    #[cfg_attr(feature = "arrow-minimal", allow(dead_code))]
    Json { columns: Vec<String>, rows: Vec<Vec<Cell>> },
    /// A stored result fetched as Arrow.
    #[cfg(feature = "arrow-minimal")]
    Arrow(ArrowResult),
}

/// The run and result a query is known by so far: attached to any error.
#[derive(Debug, Default)]
struct Ids {
    run: Option<String>,
    result: Option<String>,
    warning: Option<String>,
}

impl Ids {
    fn attach(&self, e: Error) -> Error {
        e.with_query_ids(self.run.as_deref(), self.result.as_deref())
    }

    fn rows(self, fetched: Fetched) -> Result<QueryRows, Error> {
        let (columns, rows, source) = match fetched {
            Fetched::Inline(r) => (r.columns, r.rows, RowSource::Inline),
            Fetched::Json { columns, rows } => (columns, rows, RowSource::ResultJson),
            #[cfg(feature = "arrow-minimal")]
            Fetched::Arrow(a) => {
                let columns = a.schema.fields().iter().map(|f| f.name().clone()).collect();
                let mut rows = Vec::with_capacity(a.num_rows());
                for batch in &a.batches {
                    rows.extend(crate::arrow_rows::batch_cells(batch)?);
                }
                (columns, rows, RowSource::Arrow)
            }
        };
        Ok(QueryRows {
            columns,
            rows,
            query_run_id: self.run,
            result_id: self.result,
            source,
            warning: self.warning,
        })
    }
}

fn typed<T: DeserializeOwned>(fetched: Fetched) -> Result<Vec<T>, Error> {
    match fetched {
        Fetched::Inline(r) => crate::models::rows_as(&r.columns, &r.rows),
        Fetched::Json { columns, rows } => crate::models::rows_as(&columns, &rows),
        #[cfg(feature = "arrow-minimal")]
        Fetched::Arrow(a) => crate::arrow_rows::batches_as(&a.batches),
    }
}

/// A query run that ended: its result, or why there is none.
fn run_result(run: QueryRunInfo) -> Result<String, Error> {
    let op = crate::ops::GET_QUERY_RUN.id;
    match run.status {
        QueryRunStatus::Succeeded => run
            .result_id
            .ok_or_else(|| Error::result_failed(op, "the query run succeeded without a stored result")),
        status => {
            let why = run.error_message.unwrap_or_else(|| "no reason given".into());
            Err(Error::result_failed(op, format!("the query run ended `{status}`: {why}")))
        }
    }
}

/// The stored result behind an inline answer that left rows out.
fn truncated_result(response: &QueryResponse) -> Result<&str, Error> {
    response.result_id.as_deref().ok_or_else(|| {
        let why = response.warning.as_deref().unwrap_or("the server kept no result for this query");
        Error::result_failed(
            crate::ops::QUERY.id,
            format!(
                "the answer holds a preview of the rows and there is no result to read the rest from: {why}"
            ),
        )
    })
}

/// A total announced before fetching, checked against the caps: nothing is fetched past
/// them.
fn check_total(cap: &Cap, total: Option<i64>) -> Result<(), Error> {
    match total {
        Some(t) => cap.check_rows(u64::try_from(t).unwrap_or(0), true),
        None => Ok(()),
    }
}

/// Without Arrow, a preview cannot be completed: JSON pages of a result come in no
/// guaranteed order, so they are not stitched together.
#[cfg(not(feature = "arrow-minimal"))]
fn preview_only(response: &QueryResponse) -> Error {
    let total = response.total_row_count.map(|t| format!(" of {t}")).unwrap_or_default();
    Error::incomplete(
        crate::ops::QUERY.id,
        format!(
            "the answer holds a preview of {}{total} rows; fetching the rest needs the `arrow` feature \
             (of hotdata-core, or of the backend crate); or call `query` and read the result yourself",
            response.rows.len()
        ),
    )
}

/// A stored result fetched as JSON must hold every row it announces.
#[cfg(not(feature = "arrow-minimal"))]
fn whole_json(status: crate::models::GetResultResponse) -> Result<Fetched, Error> {
    let rows = status.rows.unwrap_or_default();
    if let Some(total) = status.total_row_count
        && usize::try_from(total).is_ok_and(|t| t > rows.len())
    {
        return Err(Error::incomplete(
            crate::ops::GET_RESULT.id,
            format!(
                "the result's JSON answer holds {} of {total} rows; fetching them all needs the `arrow` feature",
                rows.len()
            ),
        ));
    }
    Ok(Fetched::Json { columns: status.columns.unwrap_or_default(), rows })
}

/// The flows, once for both modes: `$mode` is the client mode, `[$($async)*]` is `async` or
/// nothing, and `[$($aw)*]` is `.await` or nothing, placed after every call that waits.
macro_rules! sql_flows {
    ($mode:ident, [$($async:tt)*], [$($aw:tt)*], $batches:ident) => {
        impl Sql<$mode> {
            /// All rows as JSON-like [`Cell`]s with their column names: see the
            /// [module docs](self) for each answer of the server.
            pub $($async)* fn rows(self) -> Result<QueryRows, Error> {
                let mut ids = Ids::default();
                match self.fetch_rows(&mut ids) $($aw)* {
                    Ok(fetched) => {
                        let (run, result) = (ids.run.clone(), ids.result.clone());
                        ids.rows(fetched).map_err(|e| e.with_query_ids(run.as_deref(), result.as_deref()))
                    }
                    Err(e) => Err(ids.attach(e)),
                }
            }

            /// All rows decoded into `T` (a struct whose fields are named like the columns,
            /// a map, ...), exactly (no number passes through `f64` unless `T` asks for
            /// one): see the [module docs](self).
            pub $($async)* fn rows_as<T: DeserializeOwned>(self) -> Result<Vec<T>, Error> {
                let mut ids = Ids::default();
                match self.fetch_rows(&mut ids) $($aw)* {
                    Ok(fetched) => typed(fetched).map_err(|e| ids.attach(e)),
                    Err(e) => Err(ids.attach(e)),
                }
            }

            /// Sends the query as JSON and resolves its answer into rows from one source.
            $($async)* fn fetch_rows(&self, ids: &mut Ids) -> Result<Fetched, Error> {
                let mut call = self.client.query(self.request.clone());
                if let Some(db) = &self.database_id {
                    call = call.map(|q| q.x_database_id(db.clone()));
                }
                let cap = self.cap(self.client.config().fetch_limits);
                match call.send() $($aw)* ? {
                    QueryOutcome::Inline(response) => {
                        ids.run = Some(response.query_run_id.clone());
                        ids.result = response.result_id.clone();
                        ids.warning = response.warning.clone();
                        if !response.truncated {
                            return Ok(Fetched::Inline(response));
                        }
                        let result_id = truncated_result(&response)?.to_owned();
                        check_total(&cap, response.total_row_count)?;
                        #[cfg(feature = "arrow-minimal")]
                        {
                            let db = self.follow_database();
                            self.stored_arrow(&result_id, &db, cap) $($aw)* .map(Fetched::Arrow)
                        }
                        #[cfg(not(feature = "arrow-minimal"))]
                        {
                            let _ = result_id;
                            Err(preview_only(&response))
                        }
                    }
                    QueryOutcome::Submitted(run) => {
                        ids.run = Some(run.query_run_id.clone());
                        let result_id = self.await_run(&run.query_run_id) $($aw)* ?;
                        ids.result = Some(result_id.clone());
                        let db = self.follow_database();
                        #[cfg(feature = "arrow-minimal")]
                        {
                            self.stored_arrow(&result_id, &db, cap) $($aw)* .map(Fetched::Arrow)
                        }
                        #[cfg(not(feature = "arrow-minimal"))]
                        {
                            let status = self.await_result(&result_id, &db) $($aw)* ?;
                            check_total(&cap, status.total_row_count)?;
                            let raw = self.client.call(crate::ops::GetResult::new(&result_id, &db)).send_raw() $($aw)* ?;
                            cap.check_bytes(raw.body.len() as u64)?;
                            let target = ResultReady { id: result_id.clone(), database_id: db };
                            match crate::lifecycle::WaitTarget::check(&target, raw)? {
                                crate::lifecycle::WaitStep::Done(status) => whole_json(status),
                                crate::lifecycle::WaitStep::Pending { status, .. } => Err(Error::wait_timeout(
                                    format!("result {result_id} was ready, then not ({status})"),
                                )),
                            }
                        }
                    }
                }
            }

            /// Waits for a query run to end: its result's id, or why it has none.
            $($async)* fn await_run(&self, run_id: &str) -> Result<String, Error> {
                let target = QueryRunDone { id: run_id.to_owned(), database_id: self.follow_database() };
                run_result(self.client.wait_for(&target, self.poll.clone()) $($aw)* ?)
            }

            /// Waits for a stored result to be ready (its status, never its rows).
            $($async)* fn await_result(
                &self,
                result_id: &str,
                database_id: &str,
            ) -> Result<crate::models::GetResultResponse, Error> {
                let target = ResultReady { id: result_id.to_owned(), database_id: database_id.to_owned() };
                self.client.wait_for(&target, self.poll.clone()) $($aw)*
            }
        }

        #[cfg(feature = "arrow-minimal")]
        impl Sql<$mode> {
            /// **Buffered:** all rows as Arrow record batches in memory, under the caps (see
            /// the [module docs](self)). The query asks for Arrow, so a query answered at once
            /// streams its rows in the same exchange.
            pub $($async)* fn arrow(self) -> Result<ArrowResult, Error> {
                let mut ids = Ids::default();
                let cap = self.cap(self.client.config().fetch_limits);
                let out = match self.open_arrow(&mut ids) $($aw)* {
                    Ok(Opened::Ready(batches)) => match batches.capped(cap) {
                        Ok(batches) => batches.into_result() $($aw)*,
                        Err(e) => Err(e),
                    },
                    Ok(Opened::Stored { result_id, db }) => self.stored_arrow(&result_id, &db, cap) $($aw)*,
                    Err(e) => Err(e),
                };
                out.map_err(|e| ids.attach(e))
            }

            /// **Streamed:** all rows as record batches decoded as they arrive, about one
            /// batch in memory at a time (not capped). A query that went asynchronous is
            /// waited for first.
            pub $($async)* fn arrow_stream(self) -> Result<$batches, Error> {
                let mut ids = Ids::default();
                let out = match self.open_arrow(&mut ids) $($aw)* {
                    Ok(Opened::Ready(batches)) => Ok(batches),
                    Ok(Opened::Stored { result_id, db }) => {
                        match self.await_result(&result_id, &db) $($aw)* {
                            Ok(_) => match self.client.results().arrow(&result_id, &db).stream() $($aw)* {
                                Ok(fetch) => fetch.into_ready(),
                                Err(e) => Err(e),
                            },
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                };
                out.map_err(|e| ids.attach(e))
            }

            /// Sends the query asking for Arrow: its stream, or the stored result to read.
            $($async)* fn open_arrow(&self, ids: &mut Ids) -> Result<Opened<$batches>, Error> {
                let mut call = self.client.query_arrow(self.request.clone());
                if let Some(db) = &self.database_id {
                    call = call.database_id(db.clone());
                }
                match call.stream() $($aw)* ? {
                    QueryArrowOutcome::Ready { meta, batches } => {
                        ids.run = meta.query_run_id;
                        ids.result = meta.result_id;
                        Ok(Opened::Ready(batches))
                    }
                    QueryArrowOutcome::Submitted { run, result_id } => {
                        ids.run = Some(run.query_run_id.clone());
                        ids.result = result_id.clone();
                        let result_id = match result_id {
                            Some(id) => id,
                            None => self.await_run(&run.query_run_id) $($aw)* ?,
                        };
                        ids.result = Some(result_id.clone());
                        Ok(Opened::Stored { result_id, db: self.follow_database() })
                    }
                }
            }

            /// Waits for a stored result, then fetches it whole as Arrow under `cap`.
            $($async)* fn stored_arrow(&self, result_id: &str, db: &str, cap: Cap) -> Result<ArrowResult, Error> {
                let status = self.await_result(result_id, db) $($aw)* ?;
                check_total(&cap, status.total_row_count)?;
                self.client.results().arrow(result_id, db).capped_by(cap).collect() $($aw)* ?.into_ready()
            }
        }

        #[cfg(feature = "arrow-minimal")]
        impl Client<$mode> {
            /// All rows of a query as Arrow: `self.sql(body).arrow()` with the database
            /// given ([`Sql::arrow`]).
            pub $($async)* fn query_to_arrow(
                &self,
                body: QueryRequest,
                database_id: Option<&str>,
            ) -> Result<ArrowResult, Error> {
                let mut sql = self.sql(body);
                if let Some(db) = database_id {
                    sql = sql.database_id(db);
                }
                sql.arrow() $($aw)*
            }

            /// All rows of a stored result as Arrow, once it is ready: waits for it (status
            /// polls, never the rows), then fetches it as one Arrow stream, under the
            /// client's [`Config::fetch_limits`](crate::Config::fetch_limits).
            pub $($async)* fn stored_result_arrow(
                &self,
                result_id: &str,
                database_id: &str,
            ) -> Result<ArrowResult, Error> {
                let sql = self.sql("");
                let cap = sql.cap(self.config().fetch_limits);
                sql.stored_arrow(result_id, database_id, cap) $($aw)*
                    .map_err(|e| e.with_query_ids(None, Some(result_id)))
            }

            /// The full row set behind an inline answer of [`Client::query`] (a preview when
            /// `truncated`), through Arrow rather than JSON pages.
            pub $($async)* fn follow_to_arrow(
                &self,
                response: &QueryResponse,
                database_id: &str,
            ) -> Result<ArrowResult, Error> {
                let ids = Ids { run: Some(response.query_run_id.clone()), result: response.result_id.clone(), warning: None };
                let sql = self.sql("");
                let cap = sql.cap(self.config().fetch_limits);
                let out = match truncated_result(response).and_then(|id| check_total(&cap, response.total_row_count).map(|()| id)) {
                    Ok(result_id) => sql.stored_arrow(result_id, database_id, cap) $($aw)*,
                    Err(e) => Err(e),
                };
                out.map_err(|e| ids.attach(e))
            }
        }
    };
}

/// What sending a query for Arrow opened: its batches, or a stored result to read.
#[cfg(feature = "arrow-minimal")]
enum Opened<S> {
    Ready(S),
    Stored { result_id: String, db: String },
}

#[cfg(feature = "arrow-minimal")]
sql_flows!(Blocking, [], [], ArrowBatches);
#[cfg(feature = "arrow-minimal")]
sql_flows!(Async, [async], [.await], ArrowBatchStream);
#[cfg(not(feature = "arrow-minimal"))]
sql_flows!(Blocking, [], [], Unused);
#[cfg(not(feature = "arrow-minimal"))]
sql_flows!(Async, [async], [.await], Unused);
