//! Waiting for things the server finishes later: results, query runs and jobs.
//!
//! Each wait is the same small loop: ask for the state, and if it is not final, sleep and ask
//! again, until a deadline. What "final" means and how long to sleep are pure decisions:
//! [`Poller`] picks the delay (the server's `Retry-After` when it sends one, else an interval
//! doubling from 500 ms to 5 s) and ends the wait at the deadline (120 s by default, never
//! sleeping past it); each [`WaitTarget`] reads one answer into [`WaitStep`]. The blocking and
//! async drivers only send, sleep and read the clock.
//!
//! - [`Client::wait_for_result`] polls `GET /v1/results/{id}?limit=0` (the status, never the
//!   rows): `ready` ends it; `409`, or a `failed` status, is an [`ErrorKind::ResultFailed`]
//!   error with the server's message.
//! - [`Client::wait_for_query_run`] polls `GET /v1/query-runs/{id}` until the run succeeded,
//!   failed or was cancelled, and returns it.
//! - [`Client::wait_for_job`] polls `GET /v1/jobs/{id}` until the job succeeded, partially
//!   succeeded or failed, and returns it, its result decoded by job type.
//!
//! A wait that reaches its deadline is an [`ErrorKind::Timeout`] error naming what was
//! awaited and its last status.

use std::time::Duration;

use crate::client::{Async, Blocking, Client};
use crate::endpoint::{Endpoint, RawResponse, decode_json};
use crate::error::{Error, ErrorKind};
use crate::models::{
    GetResultResponse, JobStatus, JobStatusResponse, QueryRunInfo, QueryRunStatus, ResultStatus,
};
use crate::ops::{GetJob, GetQueryRun, GetResult};
use crate::retry::retry_after_from_headers;

/// How a wait polls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollPolicy {
    /// The first interval when the server gives no `Retry-After` (default 500 ms).
    pub initial_interval: Duration,
    /// The longest interval (default 5 s).
    pub max_interval: Duration,
    /// How long to wait in all (default 120 s).
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(120),
        }
    }
}

impl PollPolicy {
    /// Sets the overall timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the interval bounds.
    pub fn with_intervals(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_interval = initial;
        self.max_interval = max;
        self
    }
}

/// The pure half of a wait: when to poll next, and when to give up.
#[derive(Debug, Clone)]
pub struct Poller {
    policy: PollPolicy,
    started: Duration,
    interval: Duration,
    polls: u32,
}

impl Poller {
    /// A wait starting at `now`.
    pub fn new(policy: PollPolicy, now: Duration) -> Self {
        let interval = policy.initial_interval;
        Self { policy, started: now, interval, polls: 0 }
    }

    /// After an answer that is not final, at `now`: the delay before the next poll, or
    /// `None` when that poll would start past the deadline. `retry_after` (the server's
    /// request) wins over the interval.
    pub fn next_delay(&mut self, retry_after: Option<Duration>, now: Duration) -> Option<Duration> {
        self.polls += 1;
        let delay = retry_after.unwrap_or(self.interval);
        self.interval = (self.interval * 2).min(self.policy.max_interval);
        let elapsed = now.saturating_sub(self.started);
        (elapsed.saturating_add(delay) <= self.policy.timeout).then_some(delay)
    }

    /// Polls answered so far that were not final.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// The policy.
    pub fn policy(&self) -> &PollPolicy {
        &self.policy
    }
}

/// What one poll found.
#[derive(Debug)]
pub enum WaitStep<T> {
    /// Final: the wait is over.
    Done(T),
    /// Not final yet; `status` is the server's word for where it is.
    Pending {
        /// The reported status.
        status: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
}

/// Something a client can wait for: the request to poll, and how to read one answer.
pub trait WaitTarget {
    /// The request polled.
    type Request: Endpoint + Clone;
    /// What the wait returns.
    type Output;
    /// What is awaited, for error messages (`result r_1`).
    fn describe(&self) -> String;
    /// The request polled.
    fn request(&self) -> Self::Request;
    /// Reads one answer (any status).
    fn check(&self, response: RawResponse) -> Result<WaitStep<Self::Output>, Error>;
}

fn retry_after(response: &RawResponse) -> Option<Duration> {
    retry_after_from_headers(&response.headers, None)
}

/// Reads one poll's answer with `target`; an HTTP-date `Retry-After` the answer's own `Date`
/// could not resolve (a browser hides `Date` from a page) is resolved against `wall`.
fn check_at<T: WaitTarget>(
    target: &T,
    response: RawResponse,
    wall: std::time::SystemTime,
) -> Result<WaitStep<T::Output>, Error> {
    let fallback = retry_after_from_headers(&response.headers, Some(wall));
    match target.check(response) {
        Ok(WaitStep::Pending { status, retry_after }) => {
            Ok(WaitStep::Pending { status, retry_after: retry_after.or(fallback) })
        }
        Ok(done) => Ok(done),
        Err(e) => Err(e.or_retry_after(fallback)),
    }
}

/// Waiting for a stored result to be ready.
#[derive(Debug, Clone)]
pub struct ResultReady {
    /// The result id.
    pub id: String,
    /// Its database.
    pub database_id: String,
}

impl WaitTarget for ResultReady {
    type Request = GetResult;
    type Output = GetResultResponse;

    fn describe(&self) -> String {
        format!("result {}", self.id)
    }

    fn request(&self) -> GetResult {
        GetResult::new(&self.id, &self.database_id).limit(0)
    }

    fn check(&self, response: RawResponse) -> Result<WaitStep<GetResultResponse>, Error> {
        let op = crate::ops::GET_RESULT.id;
        match response.status.as_u16() {
            200 | 202 => {
                let body: GetResultResponse = decode_json(&response).map_err(|e| e.with_operation(op))?;
                match &body.status {
                    ResultStatus::Ready => Ok(WaitStep::Done(body)),
                    ResultStatus::Failed => {
                        let message = body.error_message.clone().unwrap_or_else(|| "no reason given".into());
                        Err(Error::result_failed(op, message))
                    }
                    other => Ok(WaitStep::Pending {
                        status: other.to_string(),
                        retry_after: retry_after(&response),
                    }),
                }
            }
            409 => Err(Error::from_response(&response).with_kind(ErrorKind::ResultFailed).with_operation(op)),
            _ => Err(Error::from_response(&response).with_operation(op)),
        }
    }
}

/// Waiting for a query run to end.
#[derive(Debug, Clone)]
pub struct QueryRunDone {
    /// The run id.
    pub id: String,
    /// Its database.
    pub database_id: String,
}

impl WaitTarget for QueryRunDone {
    type Request = GetQueryRun;
    type Output = QueryRunInfo;

    fn describe(&self) -> String {
        format!("query run {}", self.id)
    }

    fn request(&self) -> GetQueryRun {
        GetQueryRun::new(&self.id, &self.database_id)
    }

    fn check(&self, response: RawResponse) -> Result<WaitStep<QueryRunInfo>, Error> {
        let run: QueryRunInfo = parse_ok(&self.request(), &response)?;
        Ok(match &run.status {
            QueryRunStatus::Succeeded | QueryRunStatus::Failed | QueryRunStatus::Cancelled => {
                WaitStep::Done(run)
            }
            other => WaitStep::Pending { status: other.to_string(), retry_after: retry_after(&response) },
        })
    }
}

/// Waiting for a job to end.
#[derive(Debug, Clone)]
pub struct JobDone {
    /// The job id.
    pub id: String,
}

impl WaitTarget for JobDone {
    type Request = GetJob;
    type Output = JobStatusResponse;

    fn describe(&self) -> String {
        format!("job {}", self.id)
    }

    fn request(&self) -> GetJob {
        GetJob::new(&self.id)
    }

    fn check(&self, response: RawResponse) -> Result<WaitStep<JobStatusResponse>, Error> {
        let job: JobStatusResponse = parse_ok(&self.request(), &response)?;
        Ok(match &job.status {
            JobStatus::Succeeded | JobStatus::PartiallySucceeded | JobStatus::Failed => WaitStep::Done(job),
            other => WaitStep::Pending { status: other.to_string(), retry_after: retry_after(&response) },
        })
    }
}

fn parse_ok<E: Endpoint>(endpoint: &E, response: &RawResponse) -> Result<E::Output, Error> {
    endpoint.parse(response).map_err(|e| e.with_operation(endpoint.operation().id))
}

fn timed_out(target: &impl WaitTarget, poller: &Poller, status: &str) -> Error {
    Error::wait_timeout(format!(
        "waited {:?} for {} (still `{status}` after {} polls)",
        poller.policy().timeout,
        target.describe(),
        poller.polls()
    ))
}

impl Client<Blocking> {
    /// Waits for `target` as the [module docs](self) describe.
    pub fn wait_for<T: WaitTarget>(&self, target: &T, policy: PollPolicy) -> Result<T::Output, Error> {
        let rt = self.blocking_runtime();
        let mut poller = Poller::new(policy, rt.now());
        loop {
            let response = self.call(target.request()).send_raw()?;
            match check_at(target, response, rt.wall_clock())? {
                WaitStep::Done(out) => return Ok(out),
                WaitStep::Pending { status, retry_after } => match poller.next_delay(retry_after, rt.now()) {
                    Some(delay) => rt.sleep(delay),
                    None => return Err(timed_out(target, &poller, &status)),
                },
            }
        }
    }

    /// Waits until result `id` is ready; see the [module docs](self).
    pub fn wait_for_result(&self, id: &str, database_id: &str) -> Result<GetResultResponse, Error> {
        let target = ResultReady { id: id.into(), database_id: database_id.into() };
        self.wait_for(&target, PollPolicy::default())
    }

    /// Waits until query run `id` ends, and returns it.
    pub fn wait_for_query_run(&self, id: &str, database_id: &str) -> Result<QueryRunInfo, Error> {
        self.wait_for(&QueryRunDone { id: id.into(), database_id: database_id.into() }, PollPolicy::default())
    }

    /// Waits until job `id` ends, and returns it with its result.
    pub fn wait_for_job(&self, id: &str) -> Result<JobStatusResponse, Error> {
        self.wait_for(&JobDone { id: id.into() }, PollPolicy::default())
    }
}

impl Client<Async> {
    /// Waits for `target` as the [module docs](self) describe.
    pub async fn wait_for<T: WaitTarget>(&self, target: &T, policy: PollPolicy) -> Result<T::Output, Error> {
        let rt = self.async_runtime();
        let mut poller = Poller::new(policy, rt.now());
        loop {
            let response = self.call(target.request()).send_raw().await?;
            match check_at(target, response, rt.wall_clock())? {
                WaitStep::Done(out) => return Ok(out),
                WaitStep::Pending { status, retry_after } => match poller.next_delay(retry_after, rt.now()) {
                    Some(delay) => rt.sleep(delay).await,
                    None => return Err(timed_out(target, &poller, &status)),
                },
            }
        }
    }

    /// Waits until result `id` is ready; see the [module docs](self).
    pub async fn wait_for_result(&self, id: &str, database_id: &str) -> Result<GetResultResponse, Error> {
        let target = ResultReady { id: id.into(), database_id: database_id.into() };
        self.wait_for(&target, PollPolicy::default()).await
    }

    /// Waits until query run `id` ends, and returns it.
    pub async fn wait_for_query_run(&self, id: &str, database_id: &str) -> Result<QueryRunInfo, Error> {
        self.wait_for(&QueryRunDone { id: id.into(), database_id: database_id.into() }, PollPolicy::default())
            .await
    }

    /// Waits until job `id` ends, and returns it with its result.
    pub async fn wait_for_job(&self, id: &str) -> Result<JobStatusResponse, Error> {
        self.wait_for(&JobDone { id: id.into() }, PollPolicy::default()).await
    }
}
