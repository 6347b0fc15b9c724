//! Client configuration: credentials, scope, base URL, user agent, timeouts and retries.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, LimitExceeded};
use crate::retry::RetryPolicy;
use crate::transport::{BoxError, BoxFuture, MaybeSend, MaybeSync};

/// The hosted API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.hotdata.dev";
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default whole-request timeout (from sending to the end of the response body; to the
/// response head for streamed answers, see [`DEFAULT_BODY_IDLE_TIMEOUT`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default idle timeout of a streamed answer's body ([`Config::body_idle_timeout`]): it
/// fails when no byte arrives for this long.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A secret string (an API key or token). Its `Debug` never shows the value and it has no
/// `Display`; read it with [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Arc<str>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Arc::from(secret.into()))
    }

    /// The secret value. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// Supplies a bearer token on demand, blocking. Asked once per attempt, so it can refresh
/// or rotate tokens; if it fails, the call fails with its error and nothing is sent.
pub trait TokenProvider: Send + Sync {
    /// The token to send as `Authorization: Bearer <token>`.
    fn token(&self) -> Result<SecretString, BoxError>;
}

impl<F> TokenProvider for F
where
    F: Fn() -> Result<SecretString, BoxError> + Send + Sync,
{
    fn token(&self) -> Result<SecretString, BoxError> {
        self()
    }
}

/// Supplies a bearer token on demand, asynchronously. Asked once per attempt; if it fails,
/// the call fails with its error and nothing is sent. Usable with the async client only.
pub trait AsyncTokenProvider: MaybeSend + MaybeSync {
    /// The token to send as `Authorization: Bearer <token>`.
    fn token(&self) -> BoxFuture<'_, Result<SecretString, BoxError>>;
}

/// Where the bearer token comes from.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Credentials {
    /// No credentials: calls fail locally with a configuration error.
    #[default]
    None,
    /// A fixed API key, sent verbatim.
    ApiKey(SecretString),
    /// A blocking provider asked once per attempt (works with both clients).
    Provider(Arc<dyn TokenProvider>),
    /// An async provider asked once per attempt (async client only).
    AsyncProvider(Arc<dyn AsyncTokenProvider>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Self::Provider(_) => f.write_str("Provider(..)"),
            Self::AsyncProvider(_) => f.write_str("AsyncProvider(..)"),
        }
    }
}

/// Everything a client needs besides its transport and runtime.
///
/// Build one with [`Config::from_env`] (reads `HOTDATA_API_KEY`, `HOTDATA_WORKSPACE_ID`,
/// `HOTDATA_API_URL`; blank values count as unset) or [`Config::new`], then adjust it with
/// the `with_*` methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Where the bearer token comes from.
    pub credentials: Credentials,
    /// Sent as `X-Workspace-Id` on workspace-scoped operations.
    pub workspace_id: Option<String>,
    /// Base URL; may include a path prefix (`https://host/prefix`). No trailing slash needed.
    /// A trailing `/v1` is the API root, not a prefix (`https://api.hotdata.dev/v1` works
    /// like `https://api.hotdata.dev`).
    pub base_url: String,
    /// Replaces the default `User-Agent` (`hotdata-rs/<version> (<backend>)`).
    pub user_agent: Option<String>,
    /// Connect timeout, applied by the transport.
    pub connect_timeout: Option<Duration>,
    /// Whole-request timeout per attempt; overridable per call. For a streamed answer (see
    /// [`Config::body_idle_timeout`]) it bounds the exchange until the response head only.
    pub timeout: Option<Duration>,
    /// Idle timeout of the body of a streamed answer: result downloads
    /// (`results().download(..)`, in any format), Arrow results (`results().arrow(..)`, and
    /// the flows that fetch a stored result as Arrow) and queries answered as Arrow
    /// (`query_arrow`, `query_to_arrow`, `query_as`). Once the response head has arrived,
    /// the body fails only when no byte of it arrives for this long, so a large result read
    /// at a healthy rate is never cut by [`Config::timeout`], which then bounds the exchange
    /// until the head only. Default [`DEFAULT_BODY_IDLE_TIMEOUT`] (60 s); overridable per
    /// call (`Call::body_idle_timeout`). `None`: `timeout` covers those bodies too, as it
    /// does every JSON answer. Storage PUTs of uploads keep their own size-based deadline.
    pub body_idle_timeout: Option<Duration>,
    /// Retry policy; overridable per call.
    pub retry: RetryPolicy,
    /// Retry policy of a table load answered `409 RESOURCE_LOCKED` (another load holds the
    /// table): [`RetryPolicy::locked_table`] by default. Only the operations marked
    /// [`retry_when_locked`](crate::endpoint::Operation::retry_when_locked) use it, and only
    /// for that code; any other `409` fails at once.
    pub lock_retry: RetryPolicy,
    /// Guards on what decoding an Arrow stream may allocate (feature `arrow`).
    pub arrow_limits: ArrowLimits,
    /// Caps on whole results the SDK fetches on its own ([`FetchLimits`]).
    pub fetch_limits: FetchLimits,
}

/// Guards on what decoding an Arrow stream may allocate, whatever its bytes declare.
///
/// A compressed Arrow buffer starts with the length it decompresses to, and the decoder
/// allocates that much before it decompresses: a corrupt or hostile stream could ask for an
/// allocation that aborts the process. The decoder reads every declared length of a message
/// before handing the message on, and fails with [`crate::ErrorKind::LimitExceeded`] when
/// they add up to more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArrowLimits {
    /// The most bytes the buffers of one message (a record batch or a dictionary batch) may
    /// declare they decompress to, summed. Default: 2 GiB on 64-bit targets, 512 MiB on
    /// 32-bit ones (wasm32), above any batch a server writes (Arrow writers emit batches of
    /// a few MiB to a few hundred MiB).
    pub max_decompressed_message_bytes: u64,
}

impl ArrowLimits {
    /// The default limits.
    pub const DEFAULT: Self = Self {
        max_decompressed_message_bytes: if cfg!(target_pointer_width = "64") { 2 << 30 } else { 512 << 20 },
    };

    /// Sets [`ArrowLimits::max_decompressed_message_bytes`].
    pub fn with_max_decompressed_message_bytes(mut self, bytes: u64) -> Self {
        self.max_decompressed_message_bytes = bytes;
        self
    }
}

impl Default for ArrowLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Caps on a whole result the SDK fetches into memory **on its own**: the one-call query
/// ([`Client::sql`](crate::Client::sql): a followed truncated answer, an asynchronous
/// query's result, all rows as Arrow), following a truncated answer
/// ([`Client::follow_to_arrow`](crate::Client)), waiting for and fetching a stored result
/// ([`stored_result_arrow`](crate::Client)), and `query_to_arrow`, `query_as`. Checked before fetching when the total
/// is known (a result's status, an inline answer's `total_row_count`, the Arrow answer's
/// `X-Total-Row-Count`) and while reading; past a cap the call fails with
/// [`ErrorKind::LimitExceeded`](crate::ErrorKind::LimitExceeded), naming the cap, how to
/// raise it, and how to stream instead.
///
/// A result the caller names and fetches whole (`results().arrow(id, db).collect()`) has no
/// cap unless asked for (`.fetch_limits(..)` on that call). This is the one place the caps
/// are defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchLimits {
    /// The most rows (default 1,000,000, as the Python SDK).
    pub max_rows: Option<u64>,
    /// The most bytes of the answer's body (default 64 MiB, as the Python SDK).
    pub max_bytes: Option<u64>,
}

impl FetchLimits {
    /// 1,000,000 rows and 64 MiB.
    pub const DEFAULT: Self = Self { max_rows: Some(1_000_000), max_bytes: Some(64 << 20) };
    /// No cap.
    pub const NONE: Self = Self { max_rows: None, max_bytes: None };

    /// Sets [`FetchLimits::max_rows`].
    pub fn with_max_rows(mut self, rows: u64) -> Self {
        self.max_rows = Some(rows);
        self
    }

    /// Sets [`FetchLimits::max_bytes`].
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// [`FetchLimits`] with where they were set, so an error names the setting to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cap {
    /// The caps.
    limits: FetchLimits,
    /// The setting of the row cap, as an error names it.
    rows_setting: &'static str,
    /// The setting of the byte cap.
    bytes_setting: &'static str,
}

impl Cap {
    /// The client's caps ([`Config::fetch_limits`]), for the SDK's own fetches.
    pub(crate) fn config(limits: FetchLimits) -> Self {
        Self {
            limits,
            rows_setting: "Config::fetch_limits.max_rows",
            bytes_setting: "Config::fetch_limits.max_bytes",
        }
    }

    /// The caps a caller set on one query ([`Sql::fetch_limits`](crate::sql::Sql::fetch_limits)).
    pub(crate) fn sql(limits: FetchLimits) -> Self {
        Self {
            limits,
            rows_setting: "Sql::fetch_limits.max_rows",
            bytes_setting: "Sql::fetch_limits.max_bytes",
        }
    }

    /// The caps a caller set on one download.
    pub(crate) fn download(limits: FetchLimits) -> Self {
        Self {
            limits,
            rows_setting: "ResultDownload::fetch_limits.max_rows",
            bytes_setting: "ResultDownload::fetch_limits.max_bytes",
        }
    }

    /// Fails when `rows` (`known`: a total announced before reading; otherwise rows read
    /// so far) is past the row cap.
    pub(crate) fn check_rows(&self, rows: u64, known: bool) -> Result<(), Error> {
        match self.limits.max_rows {
            Some(max) if rows > max => {
                let what = if known {
                    format!("the result has {rows} rows, more than the {max} allowed")
                } else {
                    format!("the result has more than {max} rows ({rows} read)")
                };
                Err(self.exceeded(self.rows_setting, max, rows, what))
            }
            _ => Ok(()),
        }
    }

    /// Fails when `bytes` read so far are past the byte cap.
    pub(crate) fn check_bytes(&self, bytes: u64) -> Result<(), Error> {
        match self.limits.max_bytes {
            Some(max) if bytes > max => {
                let what = format!("the result is larger than {max} bytes ({bytes} read)");
                Err(self.exceeded(self.bytes_setting, max, bytes, what))
            }
            _ => Ok(()),
        }
    }

    /// The error, saying how to go on.
    fn exceeded(&self, setting: &'static str, max: u64, actual: u64, what: String) -> Error {
        Error::limit_exceeded(
            LimitExceeded { limit: setting, max, actual },
            format!(
                "{what} by `{setting}`: raise it (`Config::with_fetch_limits`, or `.fetch_limits(..)` on the \
                 query or download), or stream the rows instead (`sql(..).arrow_stream()`, \
                 `results().arrow(id, db).stream()`)"
            ),
        )
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            credentials: Credentials::None,
            workspace_id: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            user_agent: None,
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            timeout: Some(DEFAULT_TIMEOUT),
            body_idle_timeout: Some(DEFAULT_BODY_IDLE_TIMEOUT),
            retry: RetryPolicy::default(),
            lock_retry: RetryPolicy::locked_table(),
            arrow_limits: ArrowLimits::DEFAULT,
            fetch_limits: FetchLimits::DEFAULT,
        }
    }
}

impl Config {
    /// A configuration with an API key and the defaults for everything else.
    pub fn new(api_key: impl Into<SecretString>) -> Self {
        Self { credentials: Credentials::ApiKey(api_key.into()), ..Self::default() }
    }

    /// Defaults, filled from `HOTDATA_API_KEY`, `HOTDATA_WORKSPACE_ID` and `HOTDATA_API_URL`.
    /// A variable that is unset or blank leaves the default in place.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], reading variables through `lookup` (for tests and for
    /// platforms without a process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = Self::default();
        if let Some(key) = get("HOTDATA_API_KEY") {
            config.credentials = Credentials::ApiKey(SecretString::new(key));
        }
        config.workspace_id = get("HOTDATA_WORKSPACE_ID");
        if let Some(url) = get("HOTDATA_API_URL") {
            config.base_url = url;
        }
        config
    }

    /// Sets a fixed API key.
    pub fn with_api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.credentials = Credentials::ApiKey(api_key.into());
        self
    }

    /// Asks `provider` for the token before every attempt.
    pub fn with_token_provider(mut self, provider: impl TokenProvider + 'static) -> Self {
        self.credentials = Credentials::Provider(Arc::new(provider));
        self
    }

    /// Asks `provider` for the token before every attempt (async client only).
    pub fn with_async_token_provider(mut self, provider: impl AsyncTokenProvider + 'static) -> Self {
        self.credentials = Credentials::AsyncProvider(Arc::new(provider));
        self
    }

    /// Sets the workspace sent as `X-Workspace-Id`.
    pub fn with_workspace_id(mut self, workspace_id: impl Into<String>) -> Self {
        self.workspace_id = Some(workspace_id.into());
        self
    }

    /// Sets the base URL (scheme, host, optional port and path prefix).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Replaces the `User-Agent`.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Sets the whole-request timeout (`None` disables it).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the idle timeout of streamed answers' bodies ([`Config::body_idle_timeout`];
    /// `None` leaves them under the whole-request timeout).
    pub fn with_body_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.body_idle_timeout = timeout;
        self
    }

    /// Sets the connect timeout (`None` disables it).
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the retry policy of table loads answered `409 RESOURCE_LOCKED`
    /// ([`Config::lock_retry`]); [`RetryPolicy::none`] turns that retry off.
    pub fn with_lock_retry(mut self, retry: RetryPolicy) -> Self {
        self.lock_retry = retry;
        self
    }

    /// Sets the guards on Arrow decoding.
    pub fn with_arrow_limits(mut self, limits: ArrowLimits) -> Self {
        self.arrow_limits = limits;
        self
    }

    /// Sets the caps on whole results the SDK fetches on its own ([`FetchLimits`];
    /// [`FetchLimits::NONE`] removes them).
    pub fn with_fetch_limits(mut self, limits: FetchLimits) -> Self {
        self.fetch_limits = limits;
        self
    }
}
