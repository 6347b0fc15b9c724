//! The timer table: every deadline the machine waits for, by name (after quinn-proto's
//! `connection/timer.rs`). A deadline is set when its wait starts and stopped when the wait
//! ends, so [`TimerTable::next_timeout`] is the answer to "when must
//! [`handle_timeout`](super::UploadMachine::handle_timeout) run?" without looking at any part.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

/// A named deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The transfer deadline of part `n`'s PUT in flight
    /// ([`part_deadline`](super::super::part_deadline) after it was sent): past it the PUT
    /// is cut off (`Abort`) and fails as a timeout. Set by `issue_put`, stopped by `handle_put` and
    /// by `expire_part_timers`.
    Transfer(u32),
    /// The end of part `n`'s pause before its PUT is sent again (the per-request retry
    /// tier). Set by `inline_retry`; stopped when it expires (the PUT is sent again) or when
    /// the upload stops (the part fails).
    Backoff(u32),
    /// The end of the pause between two rounds ([`Phase::RoundPause`](super::Phase)). Set
    /// by `end_round`, stopped by `pump` when the next round starts. An upload that ends
    /// during the pause (cancelled, or a failure) leaves it set, so `poll_timeout` still
    /// reports it after the end, as it always has; drivers stop asking once the result is
    /// out.
    RoundPause,
    /// When a finalize that never left is sent again
    /// ([`Phase::FinalizeWait`](super::Phase)). Set by `handle_finalize`, stopped when the
    /// wait ends.
    FinalizeRetry,
}

impl Timer {
    /// The sort key: part timers by part number (so expired ones are handled in part order,
    /// transfer deadlines and backoffs interleaved), then the two upload-wide timers. Runs
    /// from the `Ord` impl.
    fn key(self) -> (u32, u8) {
        match self {
            Timer::Transfer(n) => (n, 0),
            Timer::Backoff(n) => (n, 1),
            Timer::RoundPause => (u32::MAX, 2),
            Timer::FinalizeRetry => (u32::MAX, 3),
        }
    }

    /// True for the timers of one part (`Transfer`, `Backoff`). Runs from
    /// [`TimerTable::expired_parts`].
    fn is_part(self) -> bool {
        matches!(self, Timer::Transfer(_) | Timer::Backoff(_))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The deadlines set, at most one per [`Timer`].
#[derive(Debug, Default)]
pub(super) struct TimerTable {
    /// When each running timer expires (monotonic time, as passed to the machine).
    deadlines: BTreeMap<Timer, Duration>,
}

impl TimerTable {
    /// Starts (or moves) `timer` to expire at `at`. Runs from `issue_put`, `inline_retry`,
    /// `end_round` and `handle_finalize`.
    pub(super) fn set(&mut self, timer: Timer, at: Duration) {
        self.deadlines.insert(timer, at);
    }

    /// Stops `timer` (no-op when it is not running). Runs whenever the wait it measures
    /// ends: an answer, an expiry, a new round, the end of the upload.
    pub(super) fn stop(&mut self, timer: Timer) {
        self.deadlines.remove(&timer);
    }

    /// The running timers, in order. Runs from `debug_check` only.
    #[cfg(debug_assertions)]
    pub(super) fn iter(&self) -> impl Iterator<Item = Timer> + '_ {
        self.deadlines.keys().copied()
    }

    /// True when `timer` runs and is due at `now`. Runs from `pump` (the round pause) and
    /// `finalize_wait` (the finalize retry).
    pub(super) fn is_expired(&self, timer: Timer, now: Duration) -> bool {
        self.deadlines.get(&timer).is_some_and(|at| *at <= now)
    }

    /// The earliest deadline of all. Runs from `poll_timeout`.
    pub(super) fn next_timeout(&self) -> Option<Duration> {
        self.deadlines.values().copied().min()
    }

    /// The earliest deadline but the transfer deadlines of PUTs in flight (which a transport
    /// that enforces [`SendOptions::timeout`](crate::transport::SendOptions) keeps itself).
    /// Runs from `poll_retry_timeout`.
    pub(super) fn next_retry_timeout(&self) -> Option<Duration> {
        self.deadlines.iter().filter(|(t, _)| !matches!(t, Timer::Transfer(_))).map(|(_, at)| *at).min()
    }

    /// The part timers due at `now`, in part order. Runs from `expire_part_timers` at the
    /// top of every `pump`.
    pub(super) fn expired_parts(&self, now: Duration) -> Vec<Timer> {
        self.deadlines.iter().filter(|(t, at)| t.is_part() && **at <= now).map(|(t, _)| *t).collect()
    }

    /// The parts waiting out a backoff, in part order. Runs when the upload stops
    /// (`drain`, `finish`): those parts fail instead of being sent again.
    pub(super) fn backoffs(&self) -> Vec<u32> {
        self.deadlines
            .keys()
            .filter_map(|t| match t {
                Timer::Backoff(n) => Some(*n),
                _ => None,
            })
            .collect()
    }
}
