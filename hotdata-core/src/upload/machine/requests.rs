//! The request table: every request or read in flight, by [`RequestId`], with what it waits
//! for. It is the only place an id is kept: a part's state says *that* it waits (reading,
//! minting, putting), this table says *for which id*, so an answer is routed by one lookup
//! and an answer to an id not here (cut off, or already answered) is ignored.

use std::collections::HashMap;

use super::RequestId;

/// What a request in flight waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Waiting {
    /// The body of part `n` ([`UploadAction::ReadAt`](super::UploadAction::ReadAt) or
    /// [`ReadNext`](super::UploadAction::ReadNext)).
    Read(u32),
    /// The bytes of stored part `n` of a resumed streaming source, read to get past them
    /// and dropped.
    Skip(u32),
    /// The one-byte read past the declared end of a sized source (see `finalize.rs`).
    Probe,
    /// The URL of part `n`.
    Mint(u32),
    /// The storage PUT of part `n`.
    Put(u32),
    /// Finalize.
    Finalize,
}

impl Waiting {
    /// True for the reads of part bodies (`Read` and `Skip`): a streaming source has at
    /// most one of them in flight. Runs from [`Requests::issue`] and [`Requests::take`].
    fn is_part_read(self) -> bool {
        matches!(self, Waiting::Read(_) | Waiting::Skip(_))
    }
}

/// The requests and reads in flight.
#[derive(Debug, Default)]
pub(super) struct Requests {
    /// The last id given out: ids are 1, 2, 3, ... in the order the actions are queued.
    last_id: u64,
    /// What each id in flight waits for.
    waiting: HashMap<RequestId, Waiting>,
    /// How many entries of `waiting` are part reads (`Read` or `Skip`), so that
    /// [`Requests::reading`] needs no scan.
    part_reads: usize,
}

impl Requests {
    /// A new id for `what`, now in flight. Runs wherever an action that expects an answer
    /// is queued: `start_part` (read), `start_fresh` (skip), `issue_mint`, `issue_put`,
    /// `after_last_part` (the probe) and `send_finalize`.
    pub(super) fn issue(&mut self, what: Waiting) -> RequestId {
        self.last_id += 1;
        let id = RequestId(self.last_id);
        if what.is_part_read() {
            self.part_reads += 1;
        }
        self.waiting.insert(id, what);
        id
    }

    /// Removes `id` and says what it waited for (`None`: not in flight, so its answer is
    /// ignored). Runs at the top of every `handle_*` that reports an answer, and from
    /// `expire_part_timers` when a PUT is cut off at its deadline.
    pub(super) fn take(&mut self, id: RequestId) -> Option<Waiting> {
        let what = self.waiting.remove(&id)?;
        if what.is_part_read() {
            self.part_reads -= 1;
        }
        Some(what)
    }

    /// Takes every part request in flight (reads, skips, mints, PUTs; never the probe or
    /// finalize), in the order they were issued. Runs from `abort_in_flight`.
    pub(super) fn take_part_requests(&mut self) -> Vec<(RequestId, Waiting)> {
        let mut taken: Vec<(RequestId, Waiting)> = self
            .waiting
            .iter()
            .filter(|(_, w)| !matches!(w, Waiting::Probe | Waiting::Finalize))
            .map(|(id, w)| (*id, *w))
            .collect();
        taken.sort();
        for (id, _) in &taken {
            self.take(*id);
        }
        taken
    }

    /// What `id` waits for, leaving it in flight. Runs from `handle_sent`.
    pub(super) fn get(&self, id: RequestId) -> Option<Waiting> {
        self.waiting.get(&id).copied()
    }

    /// The id of part `n`'s PUT in flight. Runs from `expire_part_timers` when that PUT's
    /// transfer deadline passes (a scan of the requests in flight, never of all parts).
    pub(super) fn put_of(&self, n: u32) -> Option<RequestId> {
        self.waiting.iter().find(|(_, w)| **w == Waiting::Put(n)).map(|(id, _)| *id)
    }

    /// True while a part body is being read. Runs from `start_fresh`: a streaming source is
    /// read in order, one part at a time.
    pub(super) fn reading(&self) -> bool {
        self.part_reads > 0
    }

    /// Requests and reads in flight. Runs from `in_flight` (public) and `debug_check`.
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// True when nothing is in flight. Runs from `finish_if_drained`: a stopped upload
    /// ends only once every answer is back.
    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Every request in flight. Runs from `debug_check` only.
    #[cfg(debug_assertions)]
    pub(super) fn iter(&self) -> impl Iterator<Item = (RequestId, Waiting)> + '_ {
        self.waiting.iter().map(|(id, w)| (*id, *w))
    }
}
