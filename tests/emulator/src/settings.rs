//! [`Settings`]: what an emulator does (upload shapes, result sizes, job timing, fault rules,
//! Arrow compression), apart from where it listens and whom it lets in. One type for the
//! builder ([`crate::EmulatorBuilder::settings`], whose setters write these fields) and for
//! `POST /_emulator/instances`, whose JSON body is [`Settings::to_json`]'s form. It needs no
//! server: a client that starts instances remotely (a browser page) builds it in Rust without
//! the `server` feature.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value as Json};

use crate::MIB;
use crate::faults::FaultRule;

/// Body compression of the Arrow IPC streams the emulator writes (see
/// [`Settings::arrow_compression`]).
///
/// It applies to every stream the emulator encodes itself: result downloads
/// (`GET /v1/results/{id}?format=arrow`) and `POST /v1/query` answered as
/// `application/vnd.apache.arrow.stream`. Streams stored with
/// `EmulatorHandle::store_arrow_result` are served as given, whatever this says.
///
/// Parses from (and displays as) `none`, `lz4` (also `lz4_frame`, `lz4-frame`) and `zstd`,
/// the values of the binary's `--arrow-compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ArrowCompression {
    /// Uncompressed record batches (the default).
    #[default]
    None,
    /// Every record batch (and dictionary batch) buffer compressed as an LZ4 frame
    /// (IPC codec `LZ4_FRAME`).
    Lz4Frame,
    /// Every record batch (and dictionary batch) buffer compressed with Zstandard
    /// (IPC codec `ZSTD`).
    Zstd,
}

impl ArrowCompression {
    /// The name `--arrow-compression` takes: `none`, `lz4` or `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArrowCompression::None => "none",
            ArrowCompression::Lz4Frame => "lz4",
            ArrowCompression::Zstd => "zstd",
        }
    }

    /// The IPC codec, for `IpcWriteOptions::try_with_compression`.
    #[cfg(feature = "server")]
    pub(crate) fn ipc_type(self) -> Option<arrow_ipc::CompressionType> {
        match self {
            ArrowCompression::None => None,
            ArrowCompression::Lz4Frame => Some(arrow_ipc::CompressionType::LZ4_FRAME),
            ArrowCompression::Zstd => Some(arrow_ipc::CompressionType::ZSTD),
        }
    }
}

impl fmt::Display for ArrowCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ArrowCompression {
    type Err = String;

    /// `none`, `lz4` / `lz4_frame` / `lz4-frame`, or `zstd` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "" => Ok(ArrowCompression::None),
            "lz4" | "lz4_frame" | "lz4-frame" => Ok(ArrowCompression::Lz4Frame),
            "zstd" => Ok(ArrowCompression::Zstd),
            other => Err(format!("unknown Arrow compression `{other}` (expected none, lz4 or zstd)")),
        }
    }
}

/// What an emulator does: upload shapes, result sizes, job timing, the fault rules active from
/// the start, Arrow compression. Everything a test may want to change, apart from where the
/// emulator listens and whom it lets in (addresses, API keys, workspaces, the control token:
/// those are the rest of `Config`, which holds these settings and reads them as its own
/// fields).
///
/// Build it with [`Settings::default`] and the chained setters (the same names as the
/// builder's: `Settings::default().min_part_size(16).preview_rows(5)`), then either start an
/// emulator in process with them (`Emulator::builder().settings(settings)`, feature `server`)
/// or send [`Settings::to_json`] as the body of `POST /_emulator/instances` to start an
/// isolated instance of a running emulator with them (see the
/// [crate docs](crate#instances)).
///
/// # JSON form
///
/// An object with one member per field, under the field's name, except the durations, which
/// are whole milliseconds under the name with `_ms` appended:
///
/// | member | JSON | default |
/// |---|---|---|
/// | `presign` | `true` / `false` | `true` |
/// | `single_put_max`, `min_part_size`, `max_part_size`, `default_part_size`, `max_upload_bytes` | bytes | 8 MiB, 5 MiB, 5 GiB, 8 MiB, 16 GiB |
/// | `max_parts` | a number, at least 1 | 10,000 |
/// | `part_url_ttl_ms`, `job_step_ms`, `async_result_delay_ms` | milliseconds | 1,800,000, 50, 100 |
/// | `preview_rows`, `max_stored_rows` | rows | 1,000, 50,000,000 |
/// | `max_json_result_bytes`, `max_inline_load_bytes` | bytes | 64 MiB, 16 MiB |
/// | `faults` | an array of rules, each a [`FaultRule::to_json`] object or a spec string | `[]` |
/// | `arrow_compression` | `"none"`, `"lz4"` or `"zstd"` | `"none"` |
///
/// [`Settings::from_json`] starts from the defaults: a member left out (or `null`) keeps its
/// default, so `{"preview_rows": 5}` is enough. A member it does not know is an error that
/// names it. [`Settings::to_json`] writes every member; reading it back gives the same
/// settings (durations in whole milliseconds).
///
/// ```
/// use hotdata_emulator::{FaultRule, Settings};
///
/// let settings = Settings::default()
///     .preview_rows(5)
///     .min_part_size(16)
///     .fault(FaultRule::parse("op=query,status=429,retry-after=0,times=2").unwrap());
/// let body = settings.to_json().to_string(); // the body of POST /_emulator/instances
/// let back = Settings::from_json(&serde_json::from_str(&body).unwrap()).unwrap();
/// assert_eq!(back, settings);
///
/// let short: serde_json::Value = serde_json::json!({"preview_rows": 5, "faults": ["op=query,reset"]});
/// assert_eq!(Settings::from_json(&short).unwrap().preview_rows, 5);
/// let err = Settings::from_json(&serde_json::json!({"preview_row": 5})).unwrap_err();
/// assert!(err.contains("`preview_row`"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// When false, upload sessions answer 501 `PRESIGN_UNSUPPORTED`; use `POST /v1/files`.
    pub presign: bool,
    /// Declared sizes up to this get a `single` session (default 8 MiB).
    pub single_put_max: u64,
    /// Smallest non-final part (default 5 MiB; lower it for fast tests).
    pub min_part_size: u64,
    /// Largest part (default 5 GiB).
    pub max_part_size: u64,
    /// Part size when the client gives no hint (default 8 MiB).
    pub default_part_size: u64,
    /// Most parts per upload (default 10,000).
    pub max_parts: u32,
    /// Largest upload (default 16 GiB).
    pub max_upload_bytes: u64,
    /// Lifetime of presigned URLs (default 30 min).
    pub part_url_ttl: Duration,
    /// Rows returned inline by `POST /v1/query` before `truncated` (default 1,000).
    pub preview_rows: usize,
    /// Largest JSON result page before 413 `RESULT_TOO_LARGE` (default 64 MiB).
    pub max_json_result_bytes: usize,
    /// Largest inline `data` of a load before 413 (default 16 MiB).
    pub max_inline_load_bytes: usize,
    /// Each job phase (pending, running) lasts this long (default 50 ms).
    pub job_step: Duration,
    /// Async query results stay not-ready for this long (default 100 ms).
    pub async_result_delay: Duration,
    /// Rows kept across stored results before the oldest are evicted (default 50 million).
    pub max_stored_rows: usize,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// Compression of the record batches in the Arrow IPC streams the emulator writes
    /// (default [`ArrowCompression::None`]).
    pub arrow_compression: ArrowCompression,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            presign: true,
            single_put_max: 8 * MIB,
            min_part_size: 5 * MIB,
            max_part_size: 5 * 1024 * MIB,
            default_part_size: 8 * MIB,
            max_parts: 10_000,
            max_upload_bytes: 16 * 1024 * MIB,
            part_url_ttl: Duration::from_secs(30 * 60),
            preview_rows: 1_000,
            max_json_result_bytes: 64 * MIB as usize,
            max_inline_load_bytes: 16 * MIB as usize,
            job_step: Duration::from_millis(50),
            async_result_delay: Duration::from_millis(100),
            max_stored_rows: 50_000_000,
            faults: Vec::new(),
            arrow_compression: ArrowCompression::None,
        }
    }
}

/// The members of the JSON form, in the order [`Settings::to_json`] writes them.
const KEYS: &[&str] = &[
    "presign",
    "single_put_max",
    "min_part_size",
    "max_part_size",
    "default_part_size",
    "max_parts",
    "max_upload_bytes",
    "part_url_ttl_ms",
    "preview_rows",
    "max_json_result_bytes",
    "max_inline_load_bytes",
    "job_step_ms",
    "async_result_delay_ms",
    "max_stored_rows",
    "faults",
    "arrow_compression",
];

impl Settings {
    /// Whether presigned uploads are supported (false: 501 `PRESIGN_UNSUPPORTED`).
    pub fn presign(mut self, supported: bool) -> Self {
        self.presign = supported;
        self
    }

    /// Declared sizes up to this get a `single` session.
    pub fn single_put_max(mut self, bytes: u64) -> Self {
        self.single_put_max = bytes;
        self
    }

    /// Smallest non-final part size (and the floor of the part-size clamp).
    pub fn min_part_size(mut self, bytes: u64) -> Self {
        self.min_part_size = bytes;
        self
    }

    /// Largest part size (the ceiling of the part-size clamp).
    pub fn max_part_size(mut self, bytes: u64) -> Self {
        self.max_part_size = bytes;
        self
    }

    /// Part size used when the client sends no hint.
    pub fn default_part_size(mut self, bytes: u64) -> Self {
        self.default_part_size = bytes;
        self
    }

    /// Most parts per upload (at least 1).
    pub fn max_parts(mut self, parts: u32) -> Self {
        self.max_parts = parts;
        self
    }

    /// Largest upload accepted.
    pub fn max_upload_bytes(mut self, bytes: u64) -> Self {
        self.max_upload_bytes = bytes;
        self
    }

    /// Lifetime of presigned URLs.
    pub fn part_url_ttl(mut self, ttl: Duration) -> Self {
        self.part_url_ttl = ttl;
        self
    }

    /// Inline preview rows of `POST /v1/query`.
    pub fn preview_rows(mut self, rows: usize) -> Self {
        self.preview_rows = rows;
        self
    }

    /// Largest JSON result page before 413.
    pub fn max_json_result_bytes(mut self, bytes: usize) -> Self {
        self.max_json_result_bytes = bytes;
        self
    }

    /// Largest inline `data` of a load before 413.
    pub fn max_inline_load_bytes(mut self, bytes: usize) -> Self {
        self.max_inline_load_bytes = bytes;
        self
    }

    /// Duration of each job phase (pending, then running).
    pub fn job_step(mut self, step: Duration) -> Self {
        self.job_step = step;
        self
    }

    /// How long async query results stay not ready.
    pub fn async_result_delay(mut self, delay: Duration) -> Self {
        self.async_result_delay = delay;
        self
    }

    /// Rows kept across stored results before the oldest are evicted.
    pub fn max_stored_rows(mut self, rows: usize) -> Self {
        self.max_stored_rows = rows;
        self
    }

    /// Add a fault rule active from the start.
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Compress the record batches of every Arrow IPC stream the emulator writes (result
    /// downloads and `POST /v1/query` as Arrow) with this codec.
    pub fn arrow_compression(mut self, compression: ArrowCompression) -> Self {
        self.arrow_compression = compression;
        self
    }

    /// The settings in their JSON form (see [`Settings`]): every member, durations in whole
    /// milliseconds, fault rules in [`FaultRule::to_json`]'s form.
    pub fn to_json(&self) -> Json {
        let ms = |d: Duration| Json::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut m = Map::new();
        for key in KEYS {
            let v = match *key {
                "presign" => Json::Bool(self.presign),
                "single_put_max" => Json::from(self.single_put_max),
                "min_part_size" => Json::from(self.min_part_size),
                "max_part_size" => Json::from(self.max_part_size),
                "default_part_size" => Json::from(self.default_part_size),
                "max_parts" => Json::from(self.max_parts),
                "max_upload_bytes" => Json::from(self.max_upload_bytes),
                "part_url_ttl_ms" => ms(self.part_url_ttl),
                "preview_rows" => Json::from(self.preview_rows as u64),
                "max_json_result_bytes" => Json::from(self.max_json_result_bytes as u64),
                "max_inline_load_bytes" => Json::from(self.max_inline_load_bytes as u64),
                "job_step_ms" => ms(self.job_step),
                "async_result_delay_ms" => ms(self.async_result_delay),
                "max_stored_rows" => Json::from(self.max_stored_rows as u64),
                "faults" => Json::Array(self.faults.iter().map(FaultRule::to_json).collect()),
                "arrow_compression" => Json::from(self.arrow_compression.as_str()),
                _ => continue,
            };
            m.insert((*key).to_string(), v);
        }
        Json::Object(m)
    }

    /// Read the JSON form (see [`Settings`]): the defaults, with the members given.
    ///
    /// # Errors
    ///
    /// A message naming the member, when the value is not an object, a member is not one of
    /// the settings (the message lists them), or a value has the wrong type or range (a
    /// number that is not a non-negative integer, `max_parts` of 0, a fault rule that does
    /// not parse, an unknown Arrow compression).
    pub fn from_json(value: &Json) -> Result<Settings, String> {
        let Json::Object(map) = value else {
            return Err(format!("the settings are a JSON object, not `{value}`"));
        };
        let mut s = Settings::default();
        for (key, v) in map {
            if !KEYS.contains(&key.as_str()) {
                return Err(format!("unknown setting `{key}` (the settings: {})", KEYS.join(", ")));
            }
            if v.is_null() {
                continue;
            }
            let num = || -> Result<u64, String> {
                v.as_u64()
                    .ok_or_else(|| format!("setting `{key}`: expected a non-negative integer, not `{v}`"))
            };
            let size = || -> Result<usize, String> {
                usize::try_from(num()?).map_err(|_| format!("setting `{key}`: {v} is too large"))
            };
            match key.as_str() {
                "presign" => {
                    s.presign = v
                        .as_bool()
                        .ok_or_else(|| format!("setting `presign`: expected true or false, not `{v}`"))?
                }
                "single_put_max" => s.single_put_max = num()?,
                "min_part_size" => s.min_part_size = num()?,
                "max_part_size" => s.max_part_size = num()?,
                "default_part_size" => s.default_part_size = num()?,
                "max_parts" => {
                    s.max_parts = u32::try_from(num()?)
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| format!("setting `max_parts`: expected 1 to {}, not {v}", u32::MAX))?
                }
                "max_upload_bytes" => s.max_upload_bytes = num()?,
                "part_url_ttl_ms" => s.part_url_ttl = Duration::from_millis(num()?),
                "preview_rows" => s.preview_rows = size()?,
                "max_json_result_bytes" => s.max_json_result_bytes = size()?,
                "max_inline_load_bytes" => s.max_inline_load_bytes = size()?,
                "job_step_ms" => s.job_step = Duration::from_millis(num()?),
                "async_result_delay_ms" => s.async_result_delay = Duration::from_millis(num()?),
                "max_stored_rows" => s.max_stored_rows = size()?,
                "faults" => {
                    let Json::Array(rules) = v else {
                        return Err(format!(
                            "setting `faults`: expected an array of fault rules (objects or spec strings), not `{v}`"
                        ));
                    };
                    s.faults = rules
                        .iter()
                        .map(|r| FaultRule::from_json(r).map_err(|e| format!("setting `faults`: {e}")))
                        .collect::<Result<_, _>>()?;
                }
                "arrow_compression" => {
                    let name = v.as_str().ok_or_else(|| {
                        format!(
                            "setting `arrow_compression`: expected \"none\", \"lz4\" or \"zstd\", not `{v}`"
                        )
                    })?;
                    s.arrow_compression =
                        name.parse().map_err(|e| format!("setting `arrow_compression`: {e}"))?;
                }
                _ => unreachable!("every key of KEYS is read"),
            }
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{Fault, Target};
    use serde_json::json;

    fn every_field_changed() -> Settings {
        Settings::default()
            .presign(false)
            .single_put_max(1)
            .min_part_size(2)
            .max_part_size(3)
            .default_part_size(4)
            .max_parts(5)
            .max_upload_bytes(6)
            .part_url_ttl(Duration::from_millis(7))
            .preview_rows(8)
            .max_json_result_bytes(9)
            .max_inline_load_bytes(10)
            .job_step(Duration::from_millis(11))
            .async_result_delay(Duration::from_millis(12))
            .max_stored_rows(13)
            .fault(FaultRule::parse("op=query,status=429,retry-after=1,times=2").unwrap())
            .fault(FaultRule::new(Target::PathPrefix("/v1/a,b".into()), Fault::Reset).always())
            .arrow_compression(ArrowCompression::Zstd)
    }

    #[test]
    fn json_round_trips_every_field() {
        for s in [Settings::default(), every_field_changed()] {
            let j = s.to_json();
            assert_eq!(j.as_object().unwrap().len(), KEYS.len(), "every member written: {j}");
            assert_eq!(Settings::from_json(&j).as_ref(), Ok(&s), "{j}");
            // Through text, as a client sends it.
            let text = j.to_string();
            assert_eq!(Settings::from_json(&serde_json::from_str(&text).unwrap()), Ok(s));
        }
        let j = every_field_changed().to_json();
        assert_eq!(j["part_url_ttl_ms"], 7);
        assert_eq!(j["job_step_ms"], 11);
        assert_eq!(j["arrow_compression"], "zstd");
        assert_eq!(j["faults"][0], json!({"op": "query", "status": 429, "retry-after": 1, "times": 2}));
        assert_eq!(Settings::default().to_json()["faults"], json!([]));
    }

    #[test]
    fn json_starts_from_the_defaults() {
        assert_eq!(Settings::from_json(&json!({})), Ok(Settings::default()));
        let s = Settings::from_json(&json!({
            "preview_rows": 5, "job_step_ms": null, "faults": ["op=query,reset", {"op": "get_result", "status": 503}],
            "arrow_compression": "lz4_frame",
        }))
        .unwrap();
        assert_eq!(s.preview_rows, 5);
        assert_eq!(s.job_step, Settings::default().job_step, "null keeps the default");
        assert_eq!(
            s.faults,
            [FaultRule::parse("op=query,reset").unwrap(), FaultRule::status("get_result", 503, None, 1)]
        );
        assert_eq!(s.arrow_compression, ArrowCompression::Lz4Frame);
    }

    #[test]
    fn json_errors_name_the_member() {
        for (bad, needle) in [
            (json!({"preview_row": 5}), "unknown setting `preview_row`"),
            (json!({"job_step": 5}), "unknown setting `job_step` (the settings: presign,"),
            (json!({"bind": "0.0.0.0:0"}), "unknown setting `bind`"),
            (json!({"preview_rows": -1}), "setting `preview_rows`"),
            (json!({"preview_rows": 1.5}), "setting `preview_rows`"),
            (json!({"preview_rows": "5"}), "setting `preview_rows`"),
            (json!({"presign": 1}), "setting `presign`"),
            (json!({"max_parts": 0}), "setting `max_parts`"),
            (json!({"max_parts": 5_000_000_000u64}), "setting `max_parts`"),
            (json!({"faults": "op=query,reset"}), "setting `faults`"),
            (json!({"faults": [{"op": "x"}]}), "setting `faults`: no fault kind"),
            (
                json!({"arrow_compression": "gzip"}),
                "setting `arrow_compression`: unknown Arrow compression `gzip`",
            ),
            (json!({"arrow_compression": true}), "setting `arrow_compression`"),
            (json!([1]), "a JSON object"),
        ] {
            let e = Settings::from_json(&bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
