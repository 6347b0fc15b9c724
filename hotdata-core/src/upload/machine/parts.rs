//! The part table: every part started so far, by number, with its state, and the counters
//! the machine asks about all the time (parts active, bytes held, bytes sent by PUTs in
//! flight, parts and bytes stored).
//!
//! Every change to a part goes through [`Parts::update`], which takes the part's share out
//! of the counters ([`Tally::of`]), applies the change, and puts the new share back; so the
//! counters are right by construction and nothing ever scans the table to count. In debug
//! builds [`Parts::check`] recounts from scratch after every change (for tables of at most
//! `CHECK_LIMIT` parts) and panics on a difference.
//!
//! Part states, and what moves a part between them (`read.rs`, `put.rs`, `rounds.rs`):
//!
//! ```text
//! Idle ─start_part─> Reading ─handle_read─> Idle + body ─after_body─┬─> Minting ─handle_mint─┐
//!                                                                    └────────────────────────┴─> Putting
//! Putting ─handle_put─┬─> Done                                     (2xx with an ETag)
//!                     ├─> Backoff ─Timer::Backoff─> Putting         (429, no response: inline_retry)
//!                     ├─> Minting                                   (403 on an eager URL, once a round)
//!                     └─> Failed ─next_round─> Idle                 (part_failed; only if it may heal)
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;

/// Tables of at most this many parts are recounted after every change in debug builds.
#[cfg(debug_assertions)]
const CHECK_LIMIT: usize = 1024;

/// Where one part stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PartState {
    /// Not in flight: just created, holding its body between two steps, or waiting in the
    /// retry set of a round.
    Idle,
    /// Its body is being read; its length is reserved in the memory budget meanwhile.
    Reading,
    /// Its URL is being minted.
    Minting,
    /// Its PUT is in flight (deadline: `Timer::Transfer`).
    Putting {
        /// Bytes of the body this attempt has handed to storage (`handle_sent`).
        sent: u64,
    },
    /// Waiting before its PUT is sent again (deadline: `Timer::Backoff`).
    Backoff,
    /// Stored.
    Done {
        /// Storage's ETag, byte for byte (empty for a single PUT).
        etag: String,
    },
    /// Its last attempt failed: in the next round's retry set if the failure may heal,
    /// otherwise the upload is ending.
    Failed,
}

impl PartState {
    /// True while the part holds one of the round's slots (reading, minting, putting or
    /// backing off). Runs from [`Tally::of`].
    fn is_active(&self) -> bool {
        matches!(
            self,
            PartState::Reading | PartState::Minting | PartState::Putting { .. } | PartState::Backoff
        )
    }
}

/// One part of the upload. `Debug` prints its URL without the presigned query and its body
/// by length.
pub(super) struct Part {
    /// Its offset in the source.
    offset: u64,
    /// Its length (for a streaming source, what the read returned).
    len: u64,
    /// Its bytes, held from the read until it is stored (or fails, for a seekable source,
    /// which can read it again).
    body: Option<Bytes>,
    /// Its storage URL, once known (eager, minted or single).
    pub(super) url: Option<String>,
    /// Its state.
    state: PartState,
    /// Per-request retries used in this round (the
    /// [`PartRetryPolicy`](super::super::PartRetryPolicy) tier).
    pub(super) retries: u32,
    /// Whether its eager URL was already replaced by a minted one after a `403` in this
    /// round.
    pub(super) reminted: bool,
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("body", &self.body.as_ref().map(Bytes::len))
            .field("url", &self.url.as_deref().map(crate::transport::redact_url))
            .field("state", &self.state)
            .field("retries", &self.retries)
            .field("reminted", &self.reminted)
            .finish()
    }
}

impl Part {
    /// A part without body or URL, with fresh retries. Runs from [`Parts::insert_new`] and
    /// [`Parts::insert_done`].
    fn new(offset: u64, len: u64, state: PartState) -> Self {
        Self { offset, len, body: None, url: None, state, retries: 0, reminted: false }
    }

    /// Its offset in the source. Runs from `start_part` (the read) and `on_part_read`.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Its length. Runs wherever a part is read, sized against the budget, sent or stored.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Its body, when held. Runs from `start_part`, `issue_put` and the budget checks of
    /// `pump`.
    pub(super) fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    /// Its state. Runs from `handle_sent`, `handle_put`, `on_part_read` (a debug assertion)
    /// and `debug_check`.
    pub(super) fn state(&self) -> &PartState {
        &self.state
    }

    /// True once stored. Runs from `start_fresh` (stored parts are passed over on resume).
    pub(super) fn is_done(&self) -> bool {
        matches!(self.state, PartState::Done { .. })
    }

    /// Its ETag once stored. Runs from `send_finalize` and `resume_state`.
    pub(super) fn etag(&self) -> Option<&str> {
        match &self.state {
            PartState::Done { etag } => Some(etag),
            _ => None,
        }
    }
}

/// The counters of the table: the sum of [`Tally::of`] over its parts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    /// Parts in flight: reading, minting, putting or backing off.
    active: usize,
    /// Bytes that PUTs in flight have handed to storage.
    sending: u64,
    /// Parts stored.
    completed: u32,
    /// Bytes of the parts stored.
    completed_bytes: u64,
    /// Bytes of part bodies held, plus the lengths of the reads in flight.
    held: u64,
}

impl Tally {
    /// The share of one part in the counters. Runs from [`Parts::update`] (before and
    /// after every change) and [`Parts::check`].
    fn of(p: &Part) -> Tally {
        let done = matches!(p.state, PartState::Done { .. });
        let reserved = if p.state == PartState::Reading { p.len } else { 0 };
        Tally {
            active: usize::from(p.state.is_active()),
            sending: match p.state {
                PartState::Putting { sent } => sent,
                _ => 0,
            },
            completed: u32::from(done),
            completed_bytes: if done { p.len } else { 0 },
            held: reserved + p.body.as_ref().map_or(0, |b| b.len() as u64),
        }
    }

    /// Adds a part's share. Runs from [`Parts::update`] and [`Parts::check`].
    fn add(&mut self, s: &Tally) {
        self.active += s.active;
        self.sending += s.sending;
        self.completed += s.completed;
        self.completed_bytes += s.completed_bytes;
        self.held += s.held;
    }

    /// Takes a part's share out (it was added before, so nothing underflows: debug builds
    /// assert it). Runs from [`Parts::update`].
    fn sub(&mut self, s: &Tally) {
        debug_assert!(
            self.active >= s.active
                && self.sending >= s.sending
                && self.completed >= s.completed
                && self.completed_bytes >= s.completed_bytes
                && self.held >= s.held,
            "part counters would underflow: {self:?} - {s:?}"
        );
        self.active = self.active.saturating_sub(s.active);
        self.sending = self.sending.saturating_sub(s.sending);
        self.completed = self.completed.saturating_sub(s.completed);
        self.completed_bytes = self.completed_bytes.saturating_sub(s.completed_bytes);
        self.held = self.held.saturating_sub(s.held);
    }
}

/// The part table, and how far the source has been sliced into parts.
#[derive(Debug)]
pub(super) struct Parts {
    /// The parts started so far (and, on resume, those already stored).
    map: BTreeMap<u32, Part>,
    /// The counters, kept by [`Parts::update`].
    tally: Tally,
    /// The last part number, once known: at once for a sized source (`start_parts_phase`),
    /// at the first short read for a streaming one (`on_part_read`).
    pub(super) end: Option<u32>,
    /// The first part never started (parts below it are in `map`, or were dropped as an
    /// empty tail).
    pub(super) next_fresh: u32,
    /// Bytes of a streaming source read so far (parts and skipped stored parts).
    pub(super) streamed: u64,
}

impl Parts {
    /// An empty table. Runs from `UploadMachine::new`.
    pub(super) fn new() -> Self {
        Self { map: BTreeMap::new(), tally: Tally::default(), end: None, next_fresh: 1, streamed: 0 }
    }

    /// Part `n`. Runs from every step of a part.
    pub(super) fn get(&self, n: u32) -> Option<&Part> {
        self.map.get(&n)
    }

    /// Part `n`, to change the fields that no counter depends on (`url`, `retries`,
    /// `reminted`). Runs from `after_body`, `handle_mint`, `on_put_answer`, `inline_retry`
    /// and `next_round`.
    pub(super) fn get_mut(&mut self, n: u32) -> Option<&mut Part> {
        self.map.get_mut(&n)
    }

    /// How many parts were started (or resumed). Runs from `debug_check` only.
    #[cfg(debug_assertions)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// True before any part was started (or resumed). Runs from `finish`.
    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds a new idle part. Runs from `start_fresh`.
    pub(super) fn insert_new(&mut self, n: u32, offset: u64, len: u64) {
        self.insert(n, Part::new(offset, len, PartState::Idle));
    }

    /// Adds a part stored before (resume). Runs from `UploadMachine::resume`.
    pub(super) fn insert_done(&mut self, n: u32, offset: u64, len: u64, etag: String) {
        self.insert(n, Part::new(offset, len, PartState::Done { etag }));
    }

    /// Puts `part` at `n`, counting it (and uncounting a part it replaces). Runs from
    /// [`Parts::insert_new`] and [`Parts::insert_done`].
    fn insert(&mut self, n: u32, part: Part) {
        self.tally.add(&Tally::of(&part));
        if let Some(old) = self.map.insert(n, part) {
            self.tally.sub(&Tally::of(&old));
        }
        self.check();
    }

    /// Drops part `n` (the empty tail of a streaming source whose end fell on a part
    /// boundary). Runs from `on_part_read`.
    pub(super) fn remove(&mut self, n: u32) {
        if let Some(old) = self.map.remove(&n) {
            self.tally.sub(&Tally::of(&old));
        }
        self.check();
    }

    /// Applies `change` to part `n` and keeps the counters right. Every change of state,
    /// length or body goes through here. Runs from the setters below.
    fn update<R>(&mut self, n: u32, change: impl FnOnce(&mut Part) -> R) -> Option<R> {
        let p = self.map.get_mut(&n)?;
        self.tally.sub(&Tally::of(p));
        let r = change(p);
        self.tally.add(&Tally::of(p));
        self.check();
        Some(r)
    }

    /// Moves part `n` to `state`. Runs wherever a part starts or ends a step: `start_part`
    /// (`Reading`), `handle_read` and `on_part_read` (`Idle`, `Failed`), `issue_mint`
    /// (`Minting`), `issue_put` (`Putting`), `inline_retry` (`Backoff`), `part_failed`,
    /// `next_round` (`Idle`), and `fail_backoffs` (backing-off parts fail when the upload
    /// stops).
    pub(super) fn set_state(&mut self, n: u32, state: PartState) {
        self.update(n, |p| p.state = state);
    }

    /// Records that part `n`'s PUT has handed `sent` bytes to storage. Runs from
    /// `handle_sent`.
    pub(super) fn set_sent(&mut self, n: u32, sent: u64) {
        self.update(n, |p| {
            if let PartState::Putting { sent: s } = &mut p.state {
                *s = sent;
            }
        });
    }

    /// Sets the length of part `n` to what a streaming read returned. Runs from
    /// `on_part_read`.
    pub(super) fn set_len(&mut self, n: u32, len: u64) {
        self.update(n, |p| p.len = len);
    }

    /// Holds `body` for part `n`. Runs from `on_part_read`.
    pub(super) fn hold_body(&mut self, n: u32, body: Bytes) {
        self.update(n, |p| p.body = Some(body));
    }

    /// Releases part `n`'s body (a seekable source reads it again if it is re-sent). Runs
    /// from `part_failed`.
    pub(super) fn drop_body(&mut self, n: u32) {
        self.update(n, |p| p.body = None);
    }

    /// Part `n` is stored with `etag`: its body is released. Returns its length. Runs from
    /// `part_done`.
    pub(super) fn complete(&mut self, n: u32, etag: String) -> Option<u64> {
        self.update(n, |p| {
            p.state = PartState::Done { etag };
            p.body = None;
            p.len
        })
    }

    /// The parts stored, with their ETags and lengths, in order. Runs from `resume_state`
    /// (once, when a failed upload ends).
    pub(super) fn stored(&self) -> impl Iterator<Item = (u32, &str, u64)> + '_ {
        self.map.iter().filter_map(|(n, p)| p.etag().map(|e| (*n, e, p.len)))
    }

    /// Every part, in order. Runs from `debug_check` only.
    #[cfg(debug_assertions)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &Part)> + '_ {
        self.map.iter().map(|(n, p)| (*n, p))
    }

    /// Parts reading, minting, putting or backing off. Runs from `pump` (the cap).
    pub(super) fn active(&self) -> usize {
        self.tally.active
    }

    /// Bytes that PUTs in flight have handed to storage. Runs from `report_progress`.
    pub(super) fn sending(&self) -> u64 {
        self.tally.sending
    }

    /// Parts stored. Runs from `finish` (the error's count).
    pub(super) fn completed(&self) -> u32 {
        self.tally.completed
    }

    /// Bytes of the parts stored. Runs from `report_progress` and `start_parts_phase`.
    pub(super) fn completed_bytes(&self) -> u64 {
        self.tally.completed_bytes
    }

    /// Bytes of bodies held plus reads in flight: never above the memory budget, unless
    /// one part alone is larger. Runs from `pump`/`start_fresh` (the budget) and
    /// `held_bytes` (public).
    pub(super) fn held(&self) -> u64 {
        self.tally.held
    }

    /// Debug builds: recounts the counters from scratch and panics if they differ. Runs
    /// after every change.
    fn check(&self) {
        #[cfg(debug_assertions)]
        if self.map.len() <= CHECK_LIMIT {
            let mut recount = Tally::default();
            for p in self.map.values() {
                recount.add(&Tally::of(p));
            }
            assert_eq!(recount, self.tally, "part counters out of step with the parts");
        }
    }
}
