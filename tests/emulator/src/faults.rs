//! Fault injection: rules that match requests and change how they are answered.
//!
//! A [`FaultRule`] pairs a [`Target`] (which requests) with a [`Fault`] (what happens),
//! optionally skipping the first `skip` matches and firing at most `times` times.
//! Rules are added with [`crate::EmulatorHandle::inject`], with
//! [`crate::EmulatorBuilder::fault`], in the binary with `--fault SPEC` /
//! `HOTDATA_EMULATOR_FAULTS` (see [`FaultRule::parse`]), or over HTTP with
//! `POST /_emulator/faults` (a spec or its JSON form, [`FaultRule::from_json`]; see the
//! [crate docs](crate#control-routes)). Every form reads into the same [`FaultRule`], and
//! [`FaultRule::to_spec`] / [`FaultRule::to_json`] write one back.

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
    #[cfg(feature = "server")]
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
    /// Answer normally, with `Connection: close`, and close the connection after: the
    /// client's next request opens a fresh one. (A browser resends a request whose
    /// *reused* connection dropped before any answer, whatever its method; a test that
    /// loses an answer closes every connection so that the browser cannot.)
    Close,
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
    ///   `hidden-etag`, `fail-after-commit=<code>`, `reset-after-commit`, `force-async`, `not-ready`,
    ///   `close`;
    /// * modifiers: `retry-after=<secs>`, `retry-after-date=<secs from now>`,
    ///   `times=<n>` (default 1), `always`, `skip=<n>`.
    ///
    /// Example: `op=query,status=429,retry-after=1,times=2`. [`FaultRule::to_spec`] writes a
    /// rule back in this syntax; [`FaultRule::from_json`] reads the same items as a JSON
    /// object.
    pub fn parse(spec: &str) -> Result<FaultRule, String> {
        let items =
            spec.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|item| match item.split_once('=') {
                Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
                None => (item.to_string(), None),
            });
        FaultRule::from_items(items, spec)
    }

    /// Read a rule from its JSON form: the items of the [`FaultRule::parse`] syntax as the
    /// members of an object, flags as `true`, numbers as numbers (or strings), for example
    /// `{"op": "query", "status": 429, "retry-after": 1, "times": 2}` (the same rule as
    /// `op=query,status=429,retry-after=1,times=2`; `_` may stand for `-` in keys, and a
    /// member that is `false` or `null` is left out). A JSON string is read as a spec.
    ///
    /// # Errors
    ///
    /// The same messages as [`FaultRule::parse`], or a message naming a member whose value
    /// is not a number, a string, `true`, `false` or `null`.
    pub fn from_json(value: &serde_json::Value) -> Result<FaultRule, String> {
        use serde_json::Value;
        let map = match value {
            Value::String(spec) => return FaultRule::parse(spec),
            Value::Object(map) => map,
            other => return Err(format!("a fault rule is a JSON object or a spec string, not `{other}`")),
        };
        let mut items = Vec::new();
        for (k, v) in map {
            let v = match v {
                Value::Null | Value::Bool(false) => continue,
                Value::Bool(true) => None,
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                other => {
                    return Err(format!(
                        "fault item `{k}`: expected a number, a string or true, not `{other}`"
                    ));
                }
            };
            items.push((k.replace('_', "-"), v));
        }
        FaultRule::from_items(items, &value.to_string())
    }

    /// One model for the spec and the JSON form: `(key, value)` items.
    fn from_items(
        items: impl IntoIterator<Item = (String, Option<String>)>,
        spec: &str,
    ) -> Result<FaultRule, String> {
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
        for (k, v) in items {
            let (k, v) = (k.as_str(), v.as_deref());
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
                "close" => set(Fault::Close, &mut fault)?,
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

    /// The rule's items, in the order [`FaultRule::to_spec`] writes them.
    fn items(&self) -> Vec<(&'static str, Item)> {
        let mut out = Vec::new();
        match &self.target {
            Target::Any => {}
            Target::Operation(op) => out.push(("op", Item::Text(op.clone()))),
            Target::PathPrefix(p) => out.push(("path", Item::Text(p.clone()))),
            Target::StoragePart(n) => out.push(("part", Item::Num(u64::from(*n)))),
        }
        let ms = |d: &Duration| Item::Num(d.as_millis() as u64);
        let mut retry = None;
        match &self.fault {
            Fault::Status { status, retry_after } => {
                out.push(("status", Item::Num(u64::from(*status))));
                retry = *retry_after;
            }
            Fault::Reset => out.push(("reset", Item::Flag)),
            Fault::Delay(d) => out.push(("delay-ms", ms(d))),
            Fault::SlowBody { chunk, delay } => {
                out.push(("slow-body-ms", ms(delay)));
                out.push(("chunk", Item::Num(*chunk as u64)));
            }
            Fault::Truncate { at } => out.push(("truncate", at.map_or(Item::Flag, |n| Item::Num(n as u64)))),
            Fault::ExpiredUrl => out.push(("expired-url", Item::Flag)),
            Fault::MissingEtag => out.push(("missing-etag", Item::Flag)),
            Fault::HiddenEtag => out.push(("hidden-etag", Item::Flag)),
            Fault::FailAfterCommit { status } => {
                out.push(("fail-after-commit", Item::Num(u64::from(*status))))
            }
            Fault::ResetAfterCommit => out.push(("reset-after-commit", Item::Flag)),
            Fault::ForceAsync => out.push(("force-async", Item::Flag)),
            Fault::Close => out.push(("close", Item::Flag)),
            Fault::NotReady { retry_after } => {
                out.push(("not-ready", Item::Flag));
                retry = *retry_after;
            }
        }
        match retry {
            Some(RetryAfter::Seconds(s)) => out.push(("retry-after", Item::Num(s))),
            Some(RetryAfter::HttpDate(s)) => out.push(("retry-after-date", Item::Num(s))),
            None => {}
        }
        match self.times {
            Some(n) => out.push(("times", Item::Num(u64::from(n)))),
            None => out.push(("always", Item::Flag)),
        }
        if self.skip > 0 {
            out.push(("skip", Item::Num(u64::from(self.skip))));
        }
        out
    }

    /// The rule in the [`FaultRule::parse`] syntax, e.g.
    /// `op=query,status=429,retry-after=1,times=2`; parsing it gives this rule back (delays
    /// in whole milliseconds; a path prefix with a comma only round-trips through
    /// [`FaultRule::to_json`]).
    pub fn to_spec(&self) -> String {
        let parts: Vec<String> = self
            .items()
            .into_iter()
            .map(|(k, v)| match v {
                Item::Flag => k.to_string(),
                Item::Num(n) => format!("{k}={n}"),
                Item::Text(t) => format!("{k}={t}"),
            })
            .collect();
        parts.join(",")
    }

    /// The rule in the JSON form [`FaultRule::from_json`] reads, e.g.
    /// `{"op":"query","status":429,"retry-after":1,"times":2}`; reading it gives this rule
    /// back (delays in whole milliseconds).
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .items()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Item::Flag => serde_json::Value::Bool(true),
                    Item::Num(n) => serde_json::Value::from(n),
                    Item::Text(t) => serde_json::Value::String(t),
                };
                (k.to_string(), v)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// A value in a rule's item list.
enum Item {
    Flag,
    Num(u64),
    Text(String),
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} -> {:?}", self.target, self.fault)
    }
}

/// Live rules plus their counters.
#[cfg(feature = "server")]
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    rules: Vec<(FaultRule, u32, u32)>, // rule, seen, fired
}

#[cfg(feature = "server")]
impl FaultSet {
    pub(crate) fn push(&mut self, rule: FaultRule) {
        self.rules.push((rule, 0, 0));
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    /// The rules, oldest first, with how many matching requests each has counted (`seen`,
    /// skipped ones included) and how many it has fired on.
    pub(crate) fn rules(&self) -> impl Iterator<Item = (&FaultRule, u32, u32)> {
        self.rules.iter().map(|(r, seen, fired)| (r, *seen, *fired))
    }

    pub(crate) fn len(&self) -> usize {
        self.rules.len()
    }

    /// True while a [`Fault::Close`] rule has budget left: CORS preflights then close their
    /// connections too.
    pub(crate) fn closes_connections(&self) -> bool {
        self.rules
            .iter()
            .any(|(rule, _, fired)| rule.fault == Fault::Close && rule.times.is_none_or(|t| *fired < t))
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
    fn spec_and_json_are_one_model() {
        let rules = [
            FaultRule::status("query", 429, Some(RetryAfter::Seconds(2)), 3),
            FaultRule::status("get_result", 503, Some(RetryAfter::HttpDate(5)), 1).skip(2),
            FaultRule::storage_part_fails(2, 500, 2),
            FaultRule::new(Target::Any, Fault::Reset).always(),
            FaultRule::new(Target::PathPrefix("/v1/results".into()), Fault::Truncate { at: None }),
            FaultRule::new(Target::PathPrefix("/v1/results/r".into()), Fault::Truncate { at: Some(10) }),
            FaultRule::new(Target::Operation("get_usage".into()), Fault::Delay(Duration::from_millis(300))),
            FaultRule::new(Target::Any, Fault::SlowBody { chunk: 7, delay: Duration::from_millis(20) }),
            FaultRule::new(Target::Operation("storage_put".into()), Fault::ExpiredUrl),
            FaultRule::new(Target::Operation("storage_put".into()), Fault::MissingEtag),
            FaultRule::new(Target::Operation("storage_put".into()), Fault::HiddenEtag).always(),
            FaultRule::new(Target::Any, Fault::FailAfterCommit { status: 502 }),
            FaultRule::new(Target::Any, Fault::ResetAfterCommit),
            FaultRule::new(Target::Operation("query".into()), Fault::ForceAsync),
            FaultRule::new(Target::Any, Fault::Close).always(),
            FaultRule::new(Target::Any, Fault::NotReady { retry_after: None }),
            FaultRule::new(Target::Any, Fault::NotReady { retry_after: Some(RetryAfter::Seconds(1)) })
                .times(2),
        ];
        for rule in rules {
            let spec = rule.to_spec();
            assert_eq!(FaultRule::parse(&spec).as_ref(), Ok(&rule), "{spec}");
            let json = rule.to_json();
            assert_eq!(FaultRule::from_json(&json).as_ref(), Ok(&rule), "{json}");
            assert_eq!(FaultRule::from_json(&serde_json::Value::String(spec)).as_ref(), Ok(&rule));
        }
        let r = FaultRule::parse("op=query,status=429,retry-after=2,times=3").unwrap();
        assert_eq!(r.to_spec(), "op=query,status=429,retry-after=2,times=3");
        assert_eq!(
            r.to_json(),
            serde_json::json!({"op": "query", "status": 429, "retry-after": 2, "times": 3})
        );
        // Underscores for dashes, numbers as strings, false and null left out.
        let j = serde_json::json!({"op": "query", "status": "429", "retry_after": 2, "times": 3, "always": false, "skip": null});
        assert_eq!(FaultRule::from_json(&j), Ok(r));
        // A comma in a path prefix survives JSON.
        let j = serde_json::json!({"path": "/v1/a,b", "reset": true});
        assert_eq!(FaultRule::from_json(&j).unwrap().target, Target::PathPrefix("/v1/a,b".into()));
        for bad in [
            serde_json::json!({"op": "x"}),
            serde_json::json!({"reset": true, "status": 500}),
            serde_json::json!({"bogus": true}),
            serde_json::json!({"status": [500]}),
            serde_json::json!(7),
        ] {
            assert!(FaultRule::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[cfg(feature = "server")]
    #[test]
    fn budget_and_skip() {
        let mut s = FaultSet::default();
        s.push(FaultRule::new(Target::Any, Fault::Reset).skip(1).times(1));
        assert_eq!(s.take("a", "/", None), None);
        assert_eq!(s.take("a", "/", None), Some(Fault::Reset));
        assert_eq!(s.take("a", "/", None), None);
    }
}
