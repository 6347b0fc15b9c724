//! Retries as pure decisions.
//!
//! [`RetryState::decide`] looks at what happened to one attempt (a status or a transport
//! failure), the operation's [`Idempotency`], the time, and a jitter sample, and answers
//! [`Decision::Retry`] with a delay or [`Decision::GiveUp`]. It reads no clock, draws no
//! random numbers and sleeps nowhere: the drivers in [`crate::client`] pass time in and
//! sleep through the injected runtime, so the same rules run on every backend and in tests
//! on a manual clock.
//!
//! The rules:
//! - `429 Too Many Requests` is retried on every operation: the server refused the work.
//! - A failure before the request could reach the server (connect, send) is retried on
//!   every operation; an unresolvable host is a connect failure (DNS failures often pass).
//! - A permanent failure ([`TransportErrorKind::is_permanent`]: a rejected TLS certificate,
//!   an invalid URL) is never retried: the next attempt would fail the same way.
//! - A connection closed before any response is retried, except for operations marked
//!   [`Idempotency::AtMostOnce`] (upload finalize), which are never sent twice once they
//!   may have reached the server.
//! - Timeouts and broken response bodies are retried for idempotent operations only.
//! - `502`/`503`/`504` are retried only when [`RetryPolicy::retry_server_errors`] is on, and
//!   only for idempotent operations.
//! - `Retry-After` (seconds or an HTTP date) sets the delay, plus jitter; it is not capped
//!   by `max_backoff`, only by the budget. Otherwise the delay is
//!   `min(initial_backoff * 2^(n-1) * (1 + jitter * u), max_backoff)` for retry `n`.
//! - No retry starts if it would end past the budget measured from the first attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::StatusCode;

use crate::endpoint::Idempotency;
use crate::transport::TransportErrorKind;
pub use crate::wire::{parse_retry_after, parse_retry_after_seconds, retry_after_from_headers};

/// How calls are retried. The defaults match the official SDKs' contract.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 5, so at most 6 attempts).
    pub max_retries: u32,
    /// Delay before the first retry without `Retry-After` (default 500 ms), doubling after.
    pub initial_backoff: Duration,
    /// Cap on computed delays (default 30 s); does not cap `Retry-After`.
    pub max_backoff: Duration,
    /// Extra random fraction of each delay, in `0.0..=1.0` (default 0.5).
    pub jitter: f64,
    /// Total time from the first attempt after which no retry starts (default 120 s).
    pub budget: Duration,
    /// Also retry 502, 503 and 504 on idempotent operations (default off).
    pub retry_server_errors: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            jitter: 0.5,
            budget: Duration::from_secs(120),
            retry_server_errors: false,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// The default policy for a table load answered `409 RESOURCE_LOCKED` (another load
    /// holds the table; [`Config::lock_retry`](crate::Config::lock_retry)): 10 retries, 1 s
    /// doubling to 15 s at most, jitter 0.5, 60 s in all (the Python SDK's
    /// `LoadRetryPolicy`).
    pub fn locked_table() -> Self {
        Self {
            max_retries: 10,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(15),
            jitter: 0.5,
            budget: Duration::from_secs(60),
            retry_server_errors: false,
        }
    }

    /// Sets the number of retries.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets the first delay and the cap of computed delays.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the jitter fraction (clamped to `0.0..=1.0`).
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        self
    }

    /// Sets the total budget.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Turns retries of 502/503/504 on idempotent operations on or off.
    pub fn with_server_error_retries(mut self, on: bool) -> Self {
        self.retry_server_errors = on;
        self
    }
}

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The server answered with this status; `retry_after` is its `Retry-After`, resolved.
    Status {
        /// The status.
        status: StatusCode,
        /// The delay the server asked for.
        retry_after: Option<Duration>,
    },
    /// The transport failed.
    Transport(TransportErrorKind),
    /// A table load was answered `409 RESOURCE_LOCKED`: another load holds the table, and
    /// nothing was done. Retried (under the lock policy) on the operations that allow it
    /// ([`Operation::retry_when_locked`](crate::endpoint::Operation::retry_when_locked)).
    Locked {
        /// The delay the server asked for.
        retry_after: Option<Duration>,
    },
}

/// The answer of [`RetryState::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send again after this delay.
    Retry(Duration),
    /// Stop and report the outcome.
    GiveUp,
}

/// Retry bookkeeping for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryState {
    started: Duration,
    attempts: u32,
}

impl RetryState {
    /// Starts a call whose first attempt begins at `now`.
    pub fn new(now: Duration) -> Self {
        Self { started: now, attempts: 0 }
    }

    /// Attempts made so far (counted by [`RetryState::decide`]).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Records an attempt that succeeded (nothing to decide).
    pub fn record_success(&mut self) {
        self.attempts += 1;
    }

    /// Records an attempt's outcome and decides whether to try again.
    ///
    /// `now` is the monotonic time after the attempt; `jitter_sample` is uniform in `[0, 1)`.
    pub fn decide(
        &mut self,
        policy: &RetryPolicy,
        idempotency: Idempotency,
        outcome: Outcome,
        now: Duration,
        jitter_sample: f64,
    ) -> Decision {
        self.attempts += 1;
        if !retryable(policy, idempotency, outcome) || self.attempts > policy.max_retries {
            return Decision::GiveUp;
        }
        let sample = if jitter_sample.is_finite() { jitter_sample.clamp(0.0, 1.0) } else { 0.0 };
        let factor = 1.0 + policy.jitter.clamp(0.0, 1.0) * sample;
        // `factor` is in [1, 2]: scaling saturates at the top of `Duration`.
        let scale =
            |d: Duration| Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX);
        let delay = match outcome {
            Outcome::Status { retry_after: Some(ra), .. } | Outcome::Locked { retry_after: Some(ra) } => {
                scale(ra)
            }
            _ => {
                let exp = self.attempts.saturating_sub(1).min(30);
                let base = policy.initial_backoff.saturating_mul(1u32 << exp);
                scale(base).min(policy.max_backoff)
            }
        };
        let elapsed = now.saturating_sub(self.started);
        if elapsed.saturating_add(delay) > policy.budget {
            return Decision::GiveUp;
        }
        Decision::Retry(delay)
    }
}

fn retryable(policy: &RetryPolicy, idempotency: Idempotency, outcome: Outcome) -> bool {
    let idempotent = idempotency == Idempotency::Idempotent;
    match outcome {
        Outcome::Status { status, .. } => match status.as_u16() {
            429 => true,
            502..=504 => policy.retry_server_errors && idempotent,
            _ => false,
        },
        // The server refused before acting: safe to send again, whatever the operation.
        Outcome::Locked { .. } => true,
        Outcome::Transport(kind) if kind.is_permanent() => false,
        Outcome::Transport(kind) => match kind {
            TransportErrorKind::Connect | TransportErrorKind::Send => true,
            TransportErrorKind::NoResponse => idempotency != Idempotency::AtMostOnce,
            TransportErrorKind::Timeout | TransportErrorKind::Body => idempotent,
            _ => false,
        },
    }
}

/// A small, lock-free source of jitter samples (SplitMix64). Not for cryptography.
///
/// The core never reads entropy itself: [`Jitter::from_seed`] takes a seed from the caller
/// (backends seed it from the platform); [`Jitter::default`] uses std's per-process
/// random hasher keys where the platform has them.
#[derive(Debug)]
pub struct Jitter(AtomicU64);

impl Jitter {
    /// A sequence determined by `seed` (tests use a fixed one).
    pub fn from_seed(seed: u64) -> Self {
        Self(AtomicU64::new(seed))
    }

    /// The next sample, uniform in `[0, 1)`.
    pub fn sample(&self) -> f64 {
        let mut z =
            self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Jitter {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x68_6461_7461);
        Self::from_seed(h.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    const S: Duration = Duration::from_secs(1);

    fn status(code: u16, ra: Option<Duration>) -> Outcome {
        Outcome::Status { status: StatusCode::from_u16(code).unwrap(), retry_after: ra }
    }

    #[test]
    fn backoff_doubles_and_caps_without_jitter() {
        let policy = RetryPolicy::default().with_jitter(0.0).with_max_retries(10).with_budget(S * 1000);
        let mut st = RetryState::new(Duration::ZERO);
        let delays: Vec<_> = (0..8)
            .map(|_| {
                match st.decide(&policy, Idempotency::NonIdempotent, status(429, None), Duration::ZERO, 0.9) {
                    Decision::Retry(d) => d.as_millis(),
                    Decision::GiveUp => 0,
                }
            })
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    }

    #[test]
    fn absurd_backoffs_and_waits_saturate_instead_of_panicking() {
        // Jitter scales a delay up by as much as half again: at the top of `Duration` that
        // overflowed (a panic in `mul_f64`).
        let policy =
            RetryPolicy::default().with_backoff(Duration::MAX, Duration::MAX).with_budget(Duration::MAX);
        let mut st = RetryState::new(Duration::ZERO);
        let d = st.decide(&policy, Idempotency::Idempotent, status(503, None), Duration::ZERO, 0.99);
        assert_eq!(d, Decision::GiveUp, "503 is not retried by default");
        let d = st.decide(&policy, Idempotency::Idempotent, status(429, None), Duration::ZERO, 0.99);
        assert_eq!(d, Decision::Retry(Duration::MAX));
        let ra = Some(Duration::MAX - S);
        let d = st.decide(&policy, Idempotency::Idempotent, status(429, ra), Duration::ZERO, 0.99);
        assert_eq!(d, Decision::Retry(Duration::MAX));
    }

    #[test]
    fn jitter_adds_up_to_half() {
        let policy = RetryPolicy::default();
        let mut st = RetryState::new(Duration::ZERO);
        assert_eq!(
            st.decide(&policy, Idempotency::Idempotent, status(429, None), Duration::ZERO, 0.5),
            Decision::Retry(Duration::from_millis(625))
        );
        assert_eq!(
            st.decide(&policy, Idempotency::Idempotent, status(429, Some(S * 40)), Duration::ZERO, 1.0),
            Decision::Retry(S * 60),
            "Retry-After is not capped by max_backoff"
        );
    }

    #[test]
    fn gives_up_after_max_retries_and_budget() {
        let policy = RetryPolicy::default();
        let mut st = RetryState::new(Duration::ZERO);
        for _ in 0..5 {
            assert!(matches!(
                st.decide(&policy, Idempotency::Idempotent, status(429, None), Duration::ZERO, 0.0),
                Decision::Retry(_)
            ));
        }
        assert_eq!(
            st.decide(&policy, Idempotency::Idempotent, status(429, None), Duration::ZERO, 0.0),
            Decision::GiveUp
        );
        assert_eq!(st.attempts(), 6);
        let mut st = RetryState::new(S * 10);
        assert_eq!(
            st.decide(&policy, Idempotency::Idempotent, status(429, Some(S * 101)), S * 30, 0.0),
            Decision::GiveUp,
            "20 s elapsed + 101 s delay > 120 s budget"
        );
    }

    #[test]
    fn what_is_retried() {
        let p = RetryPolicy::default();
        let on = RetryPolicy::default().with_server_error_retries(true);
        let go = |p: &RetryPolicy, i, o| {
            matches!(RetryState::new(Duration::ZERO).decide(p, i, o, Duration::ZERO, 0.0), Decision::Retry(_))
        };
        use Idempotency::*;
        use TransportErrorKind as T;
        for i in [Idempotent, NonIdempotent, AtMostOnce] {
            assert!(go(&p, i, status(429, None)));
            assert!(go(&p, i, Outcome::Transport(T::Connect)));
            assert!(go(&p, i, Outcome::Transport(T::Send)));
            assert!(!go(&p, i, status(500, None)));
            assert!(!go(&p, i, status(404, None)));
            assert!(!go(&p, i, Outcome::Transport(T::Request)));
        }
        assert!(go(&p, NonIdempotent, Outcome::Transport(T::NoResponse)));
        assert!(!go(&p, AtMostOnce, Outcome::Transport(T::NoResponse)));
        assert!(go(&p, Idempotent, Outcome::Transport(T::Timeout)));
        assert!(!go(&p, NonIdempotent, Outcome::Transport(T::Timeout)));
        assert!(!go(&p, AtMostOnce, Outcome::Transport(T::Timeout)));
        assert!(!go(&p, Idempotent, status(503, None)));
        assert!(go(&on, Idempotent, status(503, None)));
        assert!(!go(&on, NonIdempotent, status(503, None)));
        assert!(!go(&on, AtMostOnce, status(502, None)));
    }

    #[test]
    fn permanent_transport_failures_are_never_retried() {
        // A rejected certificate or an invalid URL fails the same way every time: never sent,
        // yet not worth a second attempt, whatever the operation and the policy.
        let p = RetryPolicy::default().with_server_error_retries(true).with_max_retries(100);
        for i in [Idempotency::Idempotent, Idempotency::NonIdempotent, Idempotency::AtMostOnce] {
            for kind in [TransportErrorKind::Tls, TransportErrorKind::Request] {
                assert!(kind.never_sent() && kind.is_permanent(), "{kind:?}");
                let mut st = RetryState::new(Duration::ZERO);
                assert_eq!(
                    st.decide(&p, i, Outcome::Transport(kind), Duration::ZERO, 0.0),
                    Decision::GiveUp,
                    "{kind:?} on {i:?}"
                );
                assert_eq!(st.attempts(), 1);
            }
            // An unresolvable host is a `Connect` failure: often passing, so retried.
            assert!(!TransportErrorKind::Connect.is_permanent());
            let mut st = RetryState::new(Duration::ZERO);
            let connect = Outcome::Transport(TransportErrorKind::Connect);
            assert!(matches!(st.decide(&p, i, connect, Duration::ZERO, 0.0), Decision::Retry(_)));
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + S * 1_700_000_000;
        assert_eq!(parse_retry_after("3", now), Some(S * 3));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("inf", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        assert_eq!(parse_retry_after("1e30", now), None);
        let date = httpdate::fmt_http_date(now + S * 7);
        assert_eq!(parse_retry_after(&date, now), Some(S * 7));
        let past = httpdate::fmt_http_date(now - S * 7);
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_dates_resolve_against_the_server_clock() {
        let server = SystemTime::UNIX_EPOCH + S * 1_800_000_000;
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, httpdate::fmt_http_date(server + S * 4).parse().unwrap());
        assert_eq!(retry_after_from_headers(&h, None), None, "no Date and no clock: unknown");
        assert_eq!(retry_after_from_headers(&h, Some(server + S)), Some(S * 3));
        h.insert(http::header::DATE, httpdate::fmt_http_date(server).parse().unwrap());
        assert_eq!(
            retry_after_from_headers(&h, Some(server + S * 100)),
            Some(S * 4),
            "the server's Date wins"
        );
        h.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after_from_headers(&h, None), Some(S * 2));
    }

    #[test]
    fn jitter_is_uniform_enough_and_seeded() {
        let a = Jitter::from_seed(7);
        let b = Jitter::from_seed(7);
        let xs: Vec<f64> = (0..1000).map(|_| a.sample()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert_eq!(xs[0], b.sample());
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((0.4..0.6).contains(&mean), "mean {mean}");
    }
}
