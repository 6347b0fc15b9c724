//! What a failed upload leaves behind so it can go on in the same session: [`ResumeState`],
//! and where the part URLs of a session come from ([`Mode`], shared with the machine's
//! session). A leaf: it knows nothing of the machine.
//!
//! With the `serde` feature a state can be saved and loaded (`serde_json` or any format),
//! so a crash or a redeploy does not lose a finished transfer. The saved form holds the
//! finalize token and the storage URLs: store it as a secret.

use std::collections::BTreeMap;
use std::fmt;

use super::MAX_UPLOAD_SIZE;
use crate::SecretString;

/// The most parts a multipart upload may have (S3's limit).
pub(crate) const MAX_PARTS: u64 = 10_000;

/// Where the part URLs come from. `Debug` prints no URL (they are presigned: whoever holds
/// one may write the object).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One PUT of the whole source, to this URL.
    Single {
        /// The storage URL.
        url: String,
    },
    /// Multipart with every part URL given at create (part `n` is `urls[n - 1]`).
    Eager {
        /// The part URLs, in order.
        urls: Vec<String>,
    },
    /// Multipart with each part URL minted just before its PUT.
    Streaming,
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Single { .. } => f.write_str("Single"),
            Self::Eager { urls } => write!(f, "Eager({} URLs)", urls.len()),
            Self::Streaming => f.write_str("Streaming"),
        }
    }
}

/// How far finalize got when the upload failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinalizeSent {
    /// Never sent (or provably never arrived).
    No,
    /// Sent and refused before the server acted on it (400, 401, 403, 404, ...): the
    /// upload is not finalized.
    Refused,
    /// Sent, and it may have arrived (429, 5xx, a lost answer, an unreadable success):
    /// the upload may be finalized.
    Ambiguous,
}

/// Everything needed to continue a failed upload in its session: the upload id and
/// finalize token, the session's part size, storage headers and URLs, the parts already
/// stored with their ETags and, once every part is stored, how far finalize got.
///
/// Resuming ([`Client::resume_upload`](crate::Client)) sends only what is missing: the
/// parts not stored, then finalize. A state whose parts are all stored
/// ([`is_complete`](Self::is_complete)) only finalizes: nothing is read from the source.
///
/// After a finalize that may have arrived
/// ([`finalize_may_have_arrived`](Self::finalize_may_have_arrived)), the SDK does not send it again on its own; resuming
/// sends it once more, and if the server says the upload is already finalized, the resume
/// ends with [`UploadErrorKind::AlreadyFinalized`](super::UploadErrorKind::AlreadyFinalized):
/// the upload is finalized, only its first answer was lost.
///
/// The finalize token and the storage URLs are secrets: `Debug` prints neither. With the
/// `serde` feature the state serializes (versioned; loading checks it), token and URLs
/// included.
#[derive(Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// The upload id.
    pub(crate) upload_id: String,
    /// The finalize token (a secret).
    pub(crate) finalize_token: SecretString,
    /// The session's part size (the whole source for a single PUT).
    pub(crate) part_size: u64,
    /// Headers every storage PUT carries.
    pub(crate) headers: Vec<(String, String)>,
    /// Where the part URLs come from.
    pub(crate) mode: Mode,
    /// The source's size, when known.
    pub(crate) total: Option<u64>,
    /// The last part number, once known.
    pub(crate) end: Option<u32>,
    /// The parts stored: number to ETag and length.
    pub(crate) completed: BTreeMap<u32, (String, u64)>,
    /// How far finalize got.
    pub(crate) finalize: FinalizeSent,
}

impl ResumeState {
    /// The upload id.
    pub fn upload_id(&self) -> &str {
        &self.upload_id
    }

    /// The server's part size (for a single-PUT session, the size of the source).
    pub fn part_size(&self) -> u64 {
        self.part_size
    }

    /// The size of the source, when it was known.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// The parts already stored: `(part_number, etag)`, ascending.
    pub fn completed_parts(&self) -> impl Iterator<Item = (u32, &str)> {
        self.completed.iter().map(|(n, (etag, _))| (*n, etag.as_str()))
    }

    /// Bytes already stored.
    pub fn bytes_completed(&self) -> u64 {
        self.completed.values().map(|(_, len)| len).sum()
    }

    /// True when every part is stored: resuming only finalizes, reading nothing from the
    /// source.
    pub fn is_complete(&self) -> bool {
        self.end.is_some_and(|end| (1..=end).all(|n| self.completed.contains_key(&n)))
    }

    /// True when finalize was sent and may have arrived (its answer was lost, or was a 429
    /// or a 5xx): the upload may already be finalized. Resuming sends finalize once more;
    /// see the type's docs for what an "already finalized" answer then means.
    pub fn finalize_may_have_arrived(&self) -> bool {
        self.finalize == FinalizeSent::Ambiguous
    }

    /// True when finalize was sent and refused before the server acted on it (a 4xx such
    /// as 401 or 403): the upload is not finalized, and resuming (after fixing what the
    /// server refused, credentials for example) finalizes it.
    pub fn finalize_was_refused(&self) -> bool {
        self.finalize == FinalizeSent::Refused
    }

    /// Checks a state that came from outside (a saved state being loaded): sizes in range,
    /// part numbers within the last part and the protocol's limit, lengths within the part
    /// size, URLs for every part of an eager session. Runs from deserialization.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.upload_id.is_empty() {
            return Err("the upload id is empty".into());
        }
        if self.part_size == 0 || self.part_size > MAX_UPLOAD_SIZE {
            return Err(format!("part size {} is outside 1..={MAX_UPLOAD_SIZE}", self.part_size));
        }
        if self.total.is_some_and(|t| t > MAX_UPLOAD_SIZE) {
            return Err(format!("total size is above {MAX_UPLOAD_SIZE}"));
        }
        let limit = match &self.mode {
            Mode::Single { .. } => 1,
            _ => MAX_PARTS as u32,
        };
        if let Some(end) = self.end
            && (end == 0 || end > limit)
        {
            return Err(format!("last part {end} is outside 1..={limit}"));
        }
        let last = self.end.unwrap_or(limit);
        // A single PUT is finalized with `{}`: its stored part needs no ETag.
        let etags = !matches!(self.mode, Mode::Single { .. });
        for (n, (etag, len)) in &self.completed {
            if *n == 0 || *n > last {
                return Err(format!("stored part {n} is outside 1..={last}"));
            }
            if *len > self.part_size || (etags && etag.is_empty()) {
                return Err(format!("stored part {n} has no ETag or is longer than the part size"));
            }
        }
        match &self.mode {
            Mode::Single { url } if url.is_empty() => return Err("the single-PUT URL is empty".into()),
            Mode::Eager { urls } => {
                let want = self.total.map(|t| t.div_ceil(self.part_size).max(1));
                if urls.is_empty() || urls.iter().any(String::is_empty) || want != Some(urls.len() as u64) {
                    return Err("an eager session needs one URL per part of a known size".into());
                }
            }
            Mode::Single { .. } if self.total.is_none() => {
                return Err("a single-PUT session needs the source's size".into());
            }
            _ => {}
        }
        if self.finalize != FinalizeSent::No && !self.is_complete() {
            return Err("finalize was sent but not every part is stored".into());
        }
        Ok(())
    }
}

impl fmt::Debug for ResumeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeState")
            .field("upload_id", &self.upload_id)
            .field("finalize_token", &"<redacted>")
            .field("part_size", &self.part_size)
            .field("mode", &self.mode)
            .field("total", &self.total)
            .field("end", &self.end)
            .field("completed", &self.completed.len())
            .field("finalize", &self.finalize)
            .finish()
    }
}

/// The saved form of a [`ResumeState`] (version 1): plain fields, checked on load.
#[cfg(feature = "serde")]
mod saved {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::{FinalizeSent, Mode, ResumeState};

    /// The only version this build reads and writes.
    const VERSION: u32 = 1;

    /// One stored part.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SavedPart {
        /// The part number.
        n: u32,
        /// Its ETag.
        etag: String,
        /// Its length.
        len: u64,
    }

    /// Where the part URLs come from.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    enum SavedUrls {
        /// One PUT to this URL.
        Single(String),
        /// One URL per part.
        Eager(Vec<String>),
        /// Minted part by part.
        Minted,
    }

    /// How far finalize got.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum SavedFinalize {
        /// Never sent.
        NotSent,
        /// Refused before acting.
        Refused,
        /// May have arrived.
        MayHaveArrived,
    }

    /// The whole state.
    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Saved {
        /// The format version.
        version: u32,
        /// The upload id.
        upload_id: String,
        /// The finalize token.
        finalize_token: String,
        /// The part size.
        part_size: u64,
        /// Storage headers.
        headers: Vec<(String, String)>,
        /// The part URLs.
        urls: SavedUrls,
        /// The source's size.
        total: Option<u64>,
        /// The last part.
        end: Option<u32>,
        /// The stored parts.
        parts: Vec<SavedPart>,
        /// How far finalize got.
        finalize: SavedFinalize,
    }

    impl Serialize for ResumeState {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            Saved {
                version: VERSION,
                upload_id: self.upload_id.clone(),
                finalize_token: self.finalize_token.expose().to_owned(),
                part_size: self.part_size,
                headers: self.headers.clone(),
                urls: match &self.mode {
                    Mode::Single { url } => SavedUrls::Single(url.clone()),
                    Mode::Eager { urls } => SavedUrls::Eager(urls.clone()),
                    Mode::Streaming => SavedUrls::Minted,
                },
                total: self.total,
                end: self.end,
                parts: self
                    .completed
                    .iter()
                    .map(|(n, (etag, len))| SavedPart { n: *n, etag: etag.clone(), len: *len })
                    .collect(),
                finalize: match self.finalize {
                    FinalizeSent::No => SavedFinalize::NotSent,
                    FinalizeSent::Refused => SavedFinalize::Refused,
                    FinalizeSent::Ambiguous => SavedFinalize::MayHaveArrived,
                },
            }
            .serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for ResumeState {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            use serde::de::Error as _;
            let s = Saved::deserialize(d)?;
            if s.version != VERSION {
                return Err(D::Error::custom(format!(
                    "resume state version {} is not supported (this build reads version {VERSION})",
                    s.version
                )));
            }
            let mut completed = BTreeMap::new();
            for p in s.parts {
                if completed.insert(p.n, (p.etag, p.len)).is_some() {
                    return Err(D::Error::custom(format!("part {} is listed twice", p.n)));
                }
            }
            let state = ResumeState {
                upload_id: s.upload_id,
                finalize_token: s.finalize_token.into(),
                part_size: s.part_size,
                headers: s.headers,
                mode: match s.urls {
                    SavedUrls::Single(url) => Mode::Single { url },
                    SavedUrls::Eager(urls) => Mode::Eager { urls },
                    SavedUrls::Minted => Mode::Streaming,
                },
                total: s.total,
                end: s.end,
                completed,
                finalize: match s.finalize {
                    SavedFinalize::NotSent => FinalizeSent::No,
                    SavedFinalize::Refused => FinalizeSent::Refused,
                    SavedFinalize::MayHaveArrived => FinalizeSent::Ambiguous,
                },
            };
            state.check().map_err(|e| D::Error::custom(format!("invalid resume state: {e}")))?;
            Ok(state)
        }
    }
}
