//! Fault injection: rules that match requests and change how they are answered.
//!
//! A [`FaultRule`] pairs a [`Target`] (which requests) with a [`Fault`] (what happens),
//! optionally skipping the first `skip` matches and firing at most `times` times.
//! Rules are added with [`crate::EmulatorHandle::inject`], with
//! [`crate::EmulatorBuilder::fault`], or in the binary with `--fault SPEC` /
//! `HOTDATA_EMULATOR_FAULTS` (see [`FaultRule::parse`]).

use std::fmt;
use std::time::Duration;

/// Which requests a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// Every request (API and storage; never CORS preflight).
    Any,
    /// Requests routed to this OpenAPI `operationId` (e.g. `query`, `get_result`).
    /// Storage requests use the pseudo operations `storage_put` and `storage_get`;
    /// the legacy raw upload is `upload_file`.
    Operation(String),
    /// Requests whose path starts with this prefix (e.g. `/v1/results`).
    PathPrefix(String),
    /// Storage PUTs of this multipart part number.
    StoragePart(u32),
}

impl Target {
    pub(crate) fn matches(&self, op: &str, path: &str, part: Option<u32>) -> bool {
        match self {
            Target::Any => true,
            Target::Operation(o) => o == op,
            Target::PathPrefix(p) => path.starts_with(p.as_str()),
            Target::StoragePart(n) => part == Some(*n),
        }
    }
}

/// The `Retry-After` form to send with a status fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <IMF-fixdate>` this many seconds in the future.
    HttpDate(u64),
}

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status instead of running the handler. API paths get an
    /// `ApiErrorResponse` body (`{"error":{"code","message"}}`; code `OVERLOADED` for 429,
    /// `INTERNAL` for 5xx, `INJECTED` otherwise); storage paths get an S3-style XML error.
    Status {
        /// HTTP status.
        status: u16,
        /// Optional `Retry-After` header.
        retry_after: Option<RetryAfter>,
    },
    /// Close the connection (TCP RST) before any response byte is written.
    Reset,
    /// Wait this long before answering.
    Delay(Duration),
    /// Send the body in chunks of `chunk` bytes with `delay` between them.
    SlowBody {
        /// Bytes per chunk.
        chunk: usize,
        /// Pause between chunks.
        delay: Duration,
    },
    /// Send only the first `at` bytes of the body (half when `None`), then abort the
    /// connection. With a known length the `Content-Length` still announces the full size.
    Truncate {
        /// Bytes to send before aborting.
        at: Option<usize>,
    },
    /// Storage: answer 403 `AccessDenied` "Request has expired", as for an expired URL.
    ExpiredUrl,
    /// Storage: accept the PUT but send no `ETag` header.
    MissingEtag,
    /// Storage: send the `ETag` but leave it out of `Access-Control-Expose-Headers`, as a
    /// bucket whose CORS rules do not expose it (a browser page then cannot read it).
    HiddenEtag,
    /// Run the handler (so its effect commits, e.g. a finalize), then answer with this
    /// status instead of its response.
    FailAfterCommit {
        /// HTTP status to answer.
        status: u16,
    },
    /// Run the handler, then reset the connection instead of answering.
    ResetAfterCommit,
    /// `POST /v1/query`, table loads and index creation answer 202 with a job or query
    /// run, as when the server escalates a slow synchronous request to async.
    ForceAsync,
    /// `GET /v1/results/{id}` answers 202 `{"result_id","status":"pending"}` with this
    /// `Retry-After` (1 second when `None`), as for a result that is not ready.
    NotReady {
        /// Optional `Retry-After` override.
        retry_after: Option<RetryAfter>,
    },
}

/// One fault-injection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Which requests.
    pub target: Target,
    /// What happens.
    pub fault: Fault,
    /// Let this many matching requests through untouched first.
    pub skip: u32,
    /// Fire at most this many times (`None`: forever).
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule that fires once on `target`.
    pub fn new(target: Target, fault: Fault) -> Self {
        FaultRule { target, fault, skip: 0, times: Some(1) }
    }

    /// Fire on the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Fire on every matching request.
    pub fn always(mut self) -> Self {
        self.times = None;
        self
    }

    /// Skip the first `n` matching requests.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Shorthand: the next `n` requests to operation `op` get `status` (e.g. 429 or 503),
    /// with an optional `Retry-After`.
    pub fn status(op: &str, status: u16, retry_after: Option<RetryAfter>, n: u32) -> Self {
        FaultRule::new(Target::Operation(op.to_string()), Fault::Status { status, retry_after }).times(n)
    }

    /// Shorthand: storage PUTs of part `part` fail with `status` for `attempts` attempts.
    pub fn storage_part_fails(part: u32, status: u16, attempts: u32) -> Self {
        FaultRule::new(Target::StoragePart(part), Fault::Status { status, retry_after: None }).times(attempts)
    }

    /// Parse a rule from a compact spec, as used by `--fault` and `HOTDATA_EMULATOR_FAULTS`.
    ///
    /// Comma-separated `key[=value]` items:
    /// * target (default: any request): `op=<operationId>`, `path=<prefix>`, `part=<n>`;
    /// * fault (exactly one): `status=<code>`, `reset`, `delay-ms=<ms>`,
    ///   `slow-body-ms=<ms>` (with optional `chunk=<bytes>`, default 1024),
    ///   `truncate` or `truncate=<bytes>`, `expired-url`, `missing-etag`,
    ///   `hidden-etag`, `fail-after-commit=<code>`, `reset-after-commit`, `force-async`, `not-ready`;
    /// * modifiers: `retry-after=<secs>`, `retry-after-date=<secs from now>`,
    ///   `times=<n>` (default 1), `always`, `skip=<n>`.
    ///
    /// Example: `op=query,status=429,retry-after=1,times=2`.
    pub fn parse(spec: &str) -> Result<FaultRule, String> {
        let mut target = Target::Any;
        let mut fault: Option<Fault> = None;
        let mut retry_after = None;
        let mut times = Some(1);
        let mut skip = 0;
        let mut chunk = 1024usize;
        let num = |k: &str, v: Option<&str>| -> Result<u64, String> {
            v.ok_or_else(|| format!("`{k}` needs a value"))?
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("`{k}` needs a number"))
        };
        let set = |f: Fault, fault: &mut Option<Fault>| -> Result<(), String> {
            if fault.is_some() {
                return Err(format!("more than one fault in `{spec}`"));
            }
            *fault = Some(f);
            Ok(())
        };
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            match k {
                "op" => target = Target::Operation(v.unwrap_or_default().to_string()),
                "path" => target = Target::PathPrefix(v.unwrap_or_default().to_string()),
                "part" => target = Target::StoragePart(num(k, v)? as u32),
                "status" => set(Fault::Status { status: num(k, v)? as u16, retry_after: None }, &mut fault)?,
                "reset" => set(Fault::Reset, &mut fault)?,
                "delay-ms" => set(Fault::Delay(Duration::from_millis(num(k, v)?)), &mut fault)?,
                "slow-body-ms" => {
                    set(Fault::SlowBody { chunk: 0, delay: Duration::from_millis(num(k, v)?) }, &mut fault)?
                }
                "chunk" => chunk = num(k, v)?.max(1) as usize,
                "truncate" => set(
                    Fault::Truncate {
                        at: match v {
                            Some(_) => Some(num(k, v)? as usize),
                            None => None,
                        },
                    },
                    &mut fault,
                )?,
                "expired-url" => set(Fault::ExpiredUrl, &mut fault)?,
                "missing-etag" => set(Fault::MissingEtag, &mut fault)?,
                "hidden-etag" => set(Fault::HiddenEtag, &mut fault)?,
                "fail-after-commit" => set(Fault::FailAfterCommit { status: num(k, v)? as u16 }, &mut fault)?,
                "reset-after-commit" => set(Fault::ResetAfterCommit, &mut fault)?,
                "force-async" => set(Fault::ForceAsync, &mut fault)?,
                "not-ready" => set(Fault::NotReady { retry_after: None }, &mut fault)?,
                "retry-after" => retry_after = Some(RetryAfter::Seconds(num(k, v)?)),
                "retry-after-date" => retry_after = Some(RetryAfter::HttpDate(num(k, v)?)),
                "times" => times = Some(num(k, v)? as u32),
                "always" => times = None,
                "skip" => skip = num(k, v)? as u32,
                other => return Err(format!("unknown fault item `{other}`")),
            }
        }
        let mut fault = fault.ok_or_else(|| format!("no fault kind in `{spec}`"))?;
        match &mut fault {
            Fault::Status { retry_after: r, .. } | Fault::NotReady { retry_after: r } => *r = retry_after,
            Fault::SlowBody { chunk: c, .. } => *c = chunk,
            _ => {}
        }
        Ok(FaultRule { target, fault, skip, times })
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} -> {:?}", self.target, self.fault)
    }
}

/// Live rules plus their counters.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    rules: Vec<(FaultRule, u32, u32)>, // rule, seen, fired
}

impl FaultSet {
    pub(crate) fn push(&mut self, rule: FaultRule) {
        self.rules.push((rule, 0, 0));
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// The first rule that matches and still has budget; consumes one firing.
    pub(crate) fn take(&mut self, op: &str, path: &str, part: Option<u32>) -> Option<Fault> {
        for (rule, seen, fired) in self.rules.iter_mut() {
            if !rule.target.matches(op, path, part) {
                continue;
            }
            if rule.times.is_some_and(|t| *fired >= t) {
                continue;
            }
            *seen += 1;
            if *seen <= rule.skip {
                continue;
            }
            *fired += 1;
            return Some(rule.fault.clone());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        let r = FaultRule::parse("op=query,status=429,retry-after=2,times=3").unwrap();
        assert_eq!(r.target, Target::Operation("query".into()));
        assert_eq!(r.fault, Fault::Status { status: 429, retry_after: Some(RetryAfter::Seconds(2)) });
        assert_eq!(r.times, Some(3));
        let r = FaultRule::parse("part=2,status=500,times=2").unwrap();
        assert_eq!(r.target, Target::StoragePart(2));
        let r = FaultRule::parse("path=/v1/results,truncate=10,always").unwrap();
        assert_eq!(r.fault, Fault::Truncate { at: Some(10) });
        assert_eq!(r.times, None);
        assert!(FaultRule::parse("op=x").is_err());
        assert!(FaultRule::parse("reset,status=500").is_err());
    }

    #[test]
    fn budget_and_skip() {
        let mut s = FaultSet::default();
        s.push(FaultRule::new(Target::Any, Fault::Reset).skip(1).times(1));
        assert_eq!(s.take("a", "/", None), None);
        assert_eq!(s.take("a", "/", None), Some(Fault::Reset));
        assert_eq!(s.take("a", "/", None), None);
    }
}
