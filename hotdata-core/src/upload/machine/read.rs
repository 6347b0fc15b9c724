//! Reading the source: a part starts by asking for its bytes ([`UploadMachine::start_part`]:
//! `ReadAt` for a sized source, `ReadNext` for a streaming one), and
//! [`UploadMachine::handle_read`] checks and holds them, then hands the part to `put.rs`.
//! A streaming source also learns its end here (the first short read), and a resumed one is
//! read past its stored parts.

use std::time::Duration;

use bytes::Bytes;

use super::parts::PartState;
use super::requests::Waiting;
use super::rounds::too_many_parts;
use super::{MAX_PARTS, RequestId, UploadAction, UploadMachine};
use crate::upload::MAX_UPLOAD_SIZE;
use crate::upload::error::{UploadError, UploadErrorKind as K};

impl UploadMachine {
    /// The answer to [`UploadAction::ReadAt`] or [`UploadAction::ReadNext`].
    pub fn handle_read(&mut self, id: RequestId, result: std::io::Result<Bytes>, now: Duration) {
        let Some(what) = self.requests.take(id) else { return };
        let bytes = match result {
            Ok(b) => b,
            Err(e) => {
                let part = match what {
                    Waiting::Read(n) | Waiting::Skip(n) => Some(n),
                    _ => None,
                };
                if let Waiting::Read(n) = what {
                    // Releases the reservation of the read.
                    self.parts.set_state(n, PartState::Failed);
                }
                let e = UploadError::new(K::SourceIo, format!("reading the source failed: {e}"))
                    .with_part(part)
                    .with_source(e);
                if what == Waiting::Probe {
                    self.finish(Err(e));
                    return;
                }
                self.fail(e);
                return;
            }
        };
        match what {
            Waiting::Read(n) => self.on_part_read(n, bytes, now),
            Waiting::Skip(n) => self.on_skip_read(n, bytes),
            Waiting::Probe => self.on_probe(bytes),
            _ => {}
        }
    }

    /// Starts part `n`: asks for its body (reserving its length in the budget), or, when it
    /// still holds it, goes on to its URL and PUT. Runs from `pump` (re-sends),
    /// `start_fresh` (new parts) and `issue_put` (a re-sent part without its body).
    pub(super) fn start_part(&mut self, n: u32, now: Duration) {
        let sequential = self.spec.total.is_none();
        let Some(p) = self.parts.get(n) else { return };
        if p.body().is_some() {
            self.after_body(n, now);
            return;
        }
        let (offset, len) = (p.offset(), p.len());
        let id = self.requests.issue(Waiting::Read(n));
        self.parts.set_state(n, PartState::Reading);
        self.actions.push_back(if sequential {
            UploadAction::ReadNext { id, len }
        } else {
            UploadAction::ReadAt { id, offset, len }
        });
    }

    /// The bytes of part `n` arrived: checks their length (a sized source must return
    /// exactly the part; a streaming one ends at its first short read), holds them and goes
    /// on to the part's URL and PUT. Runs from `handle_read`.
    fn on_part_read(&mut self, n: u32, bytes: Bytes, now: Duration) {
        let sequential = self.spec.total.is_none();
        let Some(p) = self.parts.get(n) else { return };
        debug_assert_eq!(p.state(), &PartState::Reading);
        let (offset, wanted) = (p.offset(), p.len());
        let got = bytes.len() as u64;
        // The read is over: its reservation is released (the body is held below).
        self.parts.set_state(n, PartState::Idle);
        let part = if self.is_single() { None } else { Some(n) };
        if got > wanted || (!sequential && got != wanted) {
            self.parts.set_state(n, PartState::Failed);
            let e = UploadError::new(
                K::SourceSize,
                format!(
                    "the source returned {got} bytes for part {n} (expected {wanted} at offset {offset}): it is shorter than its declared size"
                ),
            )
            .with_part(part);
            self.fail(e);
            return;
        }
        if sequential {
            self.parts.streamed += got;
            if got < wanted {
                self.parts.end = Some(if got == 0 && n > 1 { n - 1 } else { n });
                if got == 0 && n > 1 {
                    self.parts.remove(n);
                    return;
                }
            }
            if u64::from(n) > MAX_PARTS {
                // The one-byte read past the last allowed part found a byte.
                self.parts.set_state(n, PartState::Failed);
                self.fail(too_many_parts());
                return;
            }
            if self.parts.streamed > MAX_UPLOAD_SIZE {
                self.parts.set_state(n, PartState::Failed);
                self.fail(UploadError::new(
                    K::SizeLimit,
                    "the source is longer than the 16 GiB an upload may hold",
                ));
                return;
            }
            self.parts.set_len(n, got);
        }
        self.parts.hold_body(n, bytes);
        self.after_body(n, now);
    }

    /// The bytes of stored part `n` of a resumed streaming source arrived: they are dropped,
    /// but must have the part's length. Runs from `handle_read`.
    fn on_skip_read(&mut self, n: u32, bytes: Bytes) {
        let expected = self.parts.get(n).map_or(0, |p| p.len());
        self.parts.streamed += bytes.len() as u64;
        if bytes.len() as u64 != expected {
            self.fail(UploadError::new(
                K::SourceSize,
                format!(
                    "the source returned {} bytes for stored part {n}, which has {expected}",
                    bytes.len()
                ),
            ));
        }
    }
}
