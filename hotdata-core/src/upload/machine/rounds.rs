//! The parts phase ([`Phase::Sending`] and [`Phase::RoundPause`]): [`UploadMachine::pump`]
//! handles the part timers that expired, starts parts up to the round's cap and the memory
//! budget, and ends a round once no part is in flight. A round that leaves parts whose
//! failure may heal pauses and sends them again at half the concurrency ([`Rounds`]); a
//! round that leaves none hands over to `finalize.rs`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::parts::PartState;
use super::requests::Waiting;
use super::timers::Timer;
use super::{MAX_PARTS, Phase, UploadAction, UploadEvent, UploadMachine};
use crate::transport::TransportErrorKind;
use crate::upload::RoundPolicy;
use crate::upload::error::{UploadError, UploadErrorKind as K};

/// The whole-upload retry tier: which round runs, and which parts it sends again.
#[derive(Debug)]
pub(super) struct Rounds {
    /// How many rounds, and the pauses between them.
    policy: RoundPolicy,
    /// The round running: 0 is the first pass, 1 the first re-send.
    pub(super) round: u32,
    /// Parts in flight at most in round 0 (set when the session opens); each later round
    /// halves it.
    base_cap: usize,
    /// Parts that failed in this round with a failure that may heal: the next round sends
    /// them again.
    failed: BTreeSet<u32>,
    /// Parts this round sends again, lowest first (taken from `failed` when it starts).
    retry: BTreeSet<u32>,
    /// The last failure that may heal: the error if the rounds run out.
    last_failure: Option<UploadError>,
}

impl Rounds {
    /// Round 0 under `policy`. Runs from `UploadMachine::new`.
    pub(super) fn new(policy: RoundPolicy) -> Self {
        Self {
            policy,
            round: 0,
            base_cap: 1,
            failed: BTreeSet::new(),
            retry: BTreeSet::new(),
            last_failure: None,
        }
    }

    /// Sets the parts in flight of round 0. Runs from `open_session` and `resume`.
    pub(super) fn set_base_cap(&mut self, cap: usize) {
        self.base_cap = cap;
    }

    /// Parts in flight at most in this round: the base cap halved per round, at least 1.
    /// Runs from `pump` and `next_round`.
    pub(super) fn cap(&self) -> usize {
        (self.base_cap >> self.round.min(63)).max(1)
    }

    /// Part `n` failed with `err`, which may heal: it goes in the next round. Runs from
    /// `part_failed`.
    pub(super) fn record_failure(&mut self, n: u32, err: UploadError) {
        self.failed.insert(n);
        self.last_failure = Some(err);
    }

    /// Forgets the parts this round was to send again. Runs from `fail` and `finish`: the
    /// upload is ending.
    pub(super) fn clear_retry(&mut self) {
        self.retry.clear();
    }
}

impl UploadMachine {
    /// Moves the parts phase at `now`: expired part timers first, then (unless the upload
    /// is stopping or pausing) new parts and re-sends up to the cap, then the end of the
    /// round. Runs from `advance` in [`Phase::Sending`] and [`Phase::RoundPause`], so from
    /// `poll_action` (when its queue is empty), `handle_timeout` and `cancel`.
    pub(super) fn pump(&mut self, now: Duration) {
        self.expire_part_timers(now);
        if self.stop.is_stopping() {
            self.drain();
            return;
        }
        if self.phase == Phase::RoundPause {
            if !self.timers.is_expired(Timer::RoundPause, now) {
                return;
            }
            self.timers.stop(Timer::RoundPause);
            self.next_round();
        }
        while self.parts.active() < self.rounds.cap() && self.stop.error.is_none() {
            if let Some(n) = self.rounds.retry.first().copied() {
                let need = self.parts.get(n).map_or(0, |p| if p.body().is_some() { 0 } else { p.len() });
                let held = self.parts.held();
                if need > 0 && held > 0 && held + need > self.budget {
                    break;
                }
                self.rounds.retry.remove(&n);
                self.start_part(n, now);
                continue;
            }
            if !self.start_fresh(now) {
                break;
            }
        }
        if self.stop.error.is_some() {
            // A failure while starting (a malformed URL): cut off the rest and stop.
            self.drain();
            return;
        }
        if self.parts.active() == 0 && self.rounds.retry.is_empty() {
            self.end_round(now);
        }
    }

    /// Handles the part timers due at `now`, in part order: a PUT past its transfer
    /// deadline is cut off (`Abort`) and fails as a timeout; a part whose backoff is over is
    /// sent again (unless the upload is stopping: [`drain`](Self::drain) fails it). Runs
    /// first in every `pump`.
    fn expire_part_timers(&mut self, now: Duration) {
        for timer in self.timers.expired_parts(now) {
            match timer {
                Timer::Transfer(n) => {
                    self.timers.stop(timer);
                    let Some(id) = self.requests.put_of(n) else {
                        debug_assert!(false, "transfer deadline of part {n} without its PUT");
                        continue;
                    };
                    self.requests.take(id);
                    self.actions.push_back(UploadAction::Abort { id });
                    self.on_put_transport(n, TransportErrorKind::Timeout, None, now);
                }
                Timer::Backoff(n) if !self.stop.is_stopping() => {
                    self.timers.stop(timer);
                    self.issue_put(n, now);
                }
                _ => {}
            }
        }
    }

    /// The upload is stopping (cancelled, or an error that will not heal): the part
    /// requests in flight are cut off at once, parts backing off fail, and the upload ends.
    /// Nothing waits for a part's deadline. Runs from `pump`.
    fn drain(&mut self) {
        self.abort_in_flight();
        self.fail_backoffs();
        self.finish_if_drained();
    }

    /// Cuts off every part request in flight (reads, mints, PUTs) with
    /// [`UploadAction::Abort`]: a driver drops the work it can (an async future, a browser
    /// `fetch`) and lets the rest run out unobserved (a blocking worker); an answer that
    /// comes anyway is ignored. The parts cut off are not stored (a resume sends them).
    /// Runs from `drain`.
    fn abort_in_flight(&mut self) {
        for (id, what) in self.requests.take_part_requests() {
            self.actions.push_back(UploadAction::Abort { id });
            match what {
                Waiting::Put(n) => {
                    self.timers.stop(Timer::Transfer(n));
                    self.parts.set_state(n, PartState::Failed);
                }
                Waiting::Read(n) | Waiting::Mint(n) => self.parts.set_state(n, PartState::Failed),
                Waiting::Skip(_) | Waiting::Probe | Waiting::Finalize => {}
            }
        }
    }

    /// Parts waiting out a backoff fail instead of being sent again. Runs from `drain` and
    /// `finish`.
    pub(super) fn fail_backoffs(&mut self) {
        for n in self.timers.backoffs() {
            self.timers.stop(Timer::Backoff(n));
            self.parts.set_state(n, PartState::Failed);
        }
    }

    /// Ends a stopping upload with its error (or as cancelled) once no answer is awaited.
    /// Runs from `drain`, and from `pump` when starting a part failed.
    fn finish_if_drained(&mut self) {
        if self.requests.is_empty() {
            let e = self.stop.take_error();
            self.finish(Err(e));
        }
    }

    /// The round pause is over: the parts that failed in the last round become this
    /// round's retry set, with fresh per-request retries. Runs from `pump` when
    /// `Timer::RoundPause` expired.
    fn next_round(&mut self) {
        let r = &mut self.rounds;
        r.round += 1;
        r.retry = std::mem::take(&mut r.failed);
        let retry: Vec<u32> = r.retry.iter().copied().collect();
        for n in retry {
            if let Some(p) = self.parts.get_mut(n) {
                p.retries = 0;
                p.reminted = false;
            }
            self.parts.set_state(n, PartState::Idle);
        }
        self.phase = Phase::Sending;
        let concurrency = self.rounds.cap();
        self.events.push_back(UploadEvent::RoundStarted { round: self.rounds.round, concurrency });
    }

    /// Starts the next part never attempted; false when there is none, the memory budget is
    /// full, or (streaming) a read is in flight. On resume, a stored part is passed over (a
    /// streaming source is read past it: [`Waiting::Skip`]). Runs from `pump`.
    fn start_fresh(&mut self, now: Duration) -> bool {
        let sequential = self.spec.total.is_none();
        let ps = self.part_size();
        loop {
            let n = self.parts.next_fresh;
            if self.parts.end.is_some_and(|e| n > e) {
                return false;
            }
            if sequential && self.requests.reading() {
                return false;
            }
            if let Some(len) = self.parts.get(n).filter(|p| p.is_done()).map(|p| p.len()) {
                self.parts.next_fresh += 1;
                if sequential {
                    // Resuming a stream: read past a stored part without sending it.
                    let id = self.requests.issue(Waiting::Skip(n));
                    self.actions.push_back(UploadAction::ReadNext { id, len });
                    return true;
                }
                continue;
            }
            let beyond = u64::from(n) > MAX_PARTS;
            if beyond && !sequential || u64::from(n) > MAX_PARTS + 1 {
                self.fail(too_many_parts());
                return false;
            }
            let offset = u64::from(n - 1) * ps;
            let len = match self.spec.total {
                Some(t) if self.is_single() => t,
                Some(t) => ps.min(t.saturating_sub(offset)),
                // The part after the last allowed one of a stream is read for one byte: none
                // means the stream ended on a full part (and it is dropped as an empty
                // tail), one means it needs too many parts (`on_part_read`).
                None if beyond => 1,
                None => ps,
            };
            let held = self.parts.held();
            if len > 0 && held > 0 && held + len > self.budget {
                return false;
            }
            self.parts.next_fresh += 1;
            self.parts.insert_new(n, offset, len);
            self.start_part(n, now);
            return true;
        }
    }

    /// No part is in flight and none is left to re-send in this round: if some failed (and
    /// may heal), pause before the next round, or end the upload when the rounds are spent;
    /// otherwise see whether finalize may start ([`after_last_part`](Self::after_last_part)).
    /// Runs from `pump`.
    fn end_round(&mut self, now: Duration) {
        if self.rounds.failed.is_empty() {
            self.after_last_part();
            return;
        }
        let r = &mut self.rounds;
        if r.round >= r.policy.max_extra_rounds {
            let rounds = r.round + 1;
            let e = r
                .last_failure
                .take()
                .unwrap_or_else(|| UploadError::new(K::StorageTransport, "parts failed"))
                .exhausted_after(rounds);
            self.finish(Err(e));
        } else {
            let pause = r.policy.pause(r.round + 1);
            self.timers.set(Timer::RoundPause, now.saturating_add(pause));
            self.phase = Phase::RoundPause;
        }
    }
}

/// The error of a source that needs more parts than the protocol allows. Runs from
/// `start_fresh` and `on_part_read`.
pub(super) fn too_many_parts() -> UploadError {
    UploadError::new(K::SizeLimit, format!("the source needs more than {MAX_PARTS} parts"))
}
