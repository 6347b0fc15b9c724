//! Sending a part whose body is held: its URL (eager, single, or minted just before the
//! PUT: [`UploadMachine::handle_mint`]), the storage PUT ([`storage_put_request`],
//! [`UploadMachine::handle_put`], [`UploadMachine::handle_sent`]), and what its answer
//! means: stored, retried inline after a backoff (the per-request tier), left to the next
//! round (a failure that may heal), or the end of the upload.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_LENGTH, ETAG, HeaderName, HeaderValue, RETRY_AFTER};

use super::parts::PartState;
use super::requests::Waiting;
use super::timers::Timer;
use super::{PutResponse, RequestId, UploadAction, UploadEvent, UploadMachine};
use crate::Error;
use crate::body::RequestBody;
use crate::models::{MintUploadPartsRequest, MintUploadPartsResponse};
use crate::ops::MintUploadParts;
use crate::retry::parse_retry_after_seconds;
use crate::transport::{HttpRequest, SendOptions, TransportError, TransportErrorKind};
use crate::upload::error::{UploadError, UploadErrorKind as K};
use crate::upload::resume::Mode;
use crate::upload::{STORAGE_CONNECT_TIMEOUT, part_deadline};

/// Bytes of a storage error body kept in the error.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Builds a storage PUT: `url`, `Content-Length`, then the session's headers verbatim, and
/// nothing else (no authentication, workspace, `User-Agent`, `Accept-Encoding` or
/// `Content-Type`, which object stores may reject as unsigned headers).
pub fn storage_put_request(
    url: &str,
    body: Bytes,
    session_headers: &[(String, String)],
) -> Result<HttpRequest, UploadError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| UploadError::new(K::MalformedSession, format!("invalid storage URL: {e}")))?;
    let mut request = http::Request::new(RequestBody::Empty);
    *request.method_mut() = http::Method::PUT;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
    for (name, value) in session_headers {
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            return Err(UploadError::new(K::MalformedSession, format!("invalid session header `{name}`")));
        };
        headers.insert(n, v);
    }
    *request.body_mut() = RequestBody::Bytes(body);
    Ok(request)
}

impl UploadMachine {
    /// The answer to [`UploadAction::Mint`] (after the API client's own retries).
    pub fn handle_mint(
        &mut self,
        id: RequestId,
        result: Result<MintUploadPartsResponse, Error>,
        now: Duration,
    ) {
        let Some(Waiting::Mint(n)) = self.requests.take(id) else { return };
        match result {
            Ok(resp) => match pick_minted(n, resp) {
                Ok(url) => {
                    if let Some(p) = self.parts.get_mut(n) {
                        p.url = Some(url);
                    }
                    self.issue_put(n, now);
                }
                Err(e) => self.part_failed(n, e.with_part(Some(n)), false),
            },
            Err(e) => {
                let heals = heals_api(&e);
                let malformed = e.kind() == crate::ErrorKind::Decode;
                let kind = if malformed { K::MalformedSession } else { K::Mint };
                let e = UploadError::from_api(kind, &format!("minting the URL of part {n} failed"), e);
                self.part_failed(n, e.with_part(Some(n)), heals && !malformed);
            }
        }
    }

    /// The answer to [`UploadAction::Put`].
    pub fn handle_put(&mut self, id: RequestId, result: Result<PutResponse, TransportError>, now: Duration) {
        let Some(Waiting::Put(n)) = self.requests.take(id) else { return };
        if !matches!(self.parts.get(n).map(|p| p.state()), Some(PartState::Putting { .. })) {
            debug_assert!(false, "a PUT in flight for part {n}, which is not putting");
            return;
        }
        self.timers.stop(Timer::Transfer(n));
        match result {
            Ok(r) => self.on_put_answer(n, r, now),
            Err(e) => {
                // Whatever transport sent it, its error never carries the presigned query
                // (a signature, whoever holds it may write the object).
                let e = match self.parts.get(n).and_then(|p| p.url.as_deref()) {
                    Some(url) => e.redacting(url),
                    None => e,
                };
                self.on_put_transport(n, e.kind(), Some(e), now)
            }
        }
    }

    /// How many bytes of its body the PUT `id` has handed to storage so far (cumulative for
    /// the attempt). Optional: a driver that calls it makes progress byte-granular within a
    /// part; progress still counts stored parts without it. Bytes of an attempt that fails
    /// stop counting, and progress holds (never goes back) until the retry passes them.
    pub fn handle_sent(&mut self, id: RequestId, sent: u64) {
        let Some(Waiting::Put(n)) = self.requests.get(id) else { return };
        let Some(p) = self.parts.get(n) else { return };
        let PartState::Putting { sent: before } = *p.state() else { return };
        if sent <= before {
            return;
        }
        self.parts.set_sent(n, sent.min(p.len()));
        self.report_progress();
    }

    /// Bytes stored plus bytes sent by attempts in flight, as a `Progress` event when it
    /// moved past the last one reported. Runs from `handle_sent` and `part_done`.
    fn report_progress(&mut self) {
        let done = (self.parts.completed_bytes() + self.parts.sending()).max(self.reported);
        if done > self.reported {
            self.reported = done;
            let total = self.spec.total.or(self.parts.end.map(|_| self.parts.streamed));
            self.events.push_back(UploadEvent::Progress { done, total });
        }
    }

    /// Part `n`'s body is held: PUT it at its known URL, or mint one first (streaming
    /// sessions, every attempt). Runs from `on_part_read`, and from `start_part` when a
    /// re-sent part still holds its body.
    pub(super) fn after_body(&mut self, n: u32, now: Duration) {
        let Some(session) = &self.session else { return };
        let url = match &session.mode {
            Mode::Single { url } => Some(url.clone()),
            Mode::Eager { urls } => {
                self.parts.get(n).and_then(|p| p.url.clone()).or_else(|| urls.get(n as usize - 1).cloned())
            }
            Mode::Streaming => None,
        };
        match url {
            Some(url) => {
                if let Some(p) = self.parts.get_mut(n) {
                    p.url = Some(url);
                }
                self.issue_put(n, now);
            }
            None => self.issue_mint(n),
        }
    }

    /// Asks for a URL for part `n`. Runs from `after_body` (streaming sessions) and
    /// `on_put_answer` (a `403` on an eager URL).
    fn issue_mint(&mut self, n: u32) {
        let Some(s) = &self.session else { return };
        let body = MintUploadPartsRequest::new(vec![n as i32]);
        let endpoint = MintUploadParts::new(s.upload_id.clone(), s.token.clone(), body);
        let id = self.requests.issue(Waiting::Mint(n));
        self.parts.set_state(n, PartState::Minting);
        self.actions.push_back(UploadAction::Mint { id, part: n, endpoint });
    }

    /// Sends part `n`'s PUT and starts its transfer deadline (a part that lost its body
    /// reads it again first). Runs from `after_body`, `handle_mint`, and
    /// `expire_part_timers` when a backoff is over.
    pub(super) fn issue_put(&mut self, n: u32, now: Duration) {
        let single = self.is_single();
        let Some(s) = &self.session else { return };
        let Some(p) = self.parts.get(n) else { return };
        let (Some(url), Some(body)) = (p.url.clone(), p.body().cloned()) else {
            // A re-sent seekable part dropped its body: read it again.
            if p.body().is_none() {
                self.start_part(n, now);
            }
            return;
        };
        let len = p.len();
        let request = match storage_put_request(&url, body, &s.headers) {
            Ok(r) => r,
            Err(e) => {
                self.part_failed(n, e.with_part((!single).then_some(n)), false);
                return;
            }
        };
        let deadline = part_deadline(len);
        let id = self.requests.issue(Waiting::Put(n));
        self.parts.set_state(n, PartState::Putting { sent: 0 });
        self.timers.set(Timer::Transfer(n), now.saturating_add(deadline));
        // Marked as storage: the transport sends exactly these headers, none of its client's.
        let mut options = SendOptions::with_timeout(Some(deadline)).for_storage();
        options.connect_timeout = Some(STORAGE_CONNECT_TIMEOUT);
        self.actions.push_back(UploadAction::Put { id, part: (!single).then_some(n), request, options });
    }

    /// Storage answered part `n`'s PUT: a success with a usable ETag stores it; a `403` on
    /// an eager URL mints a new one (once a round); a `429` backs off inline; other
    /// statuses fail the part (5xx, 403, 408 and 429 may heal). Runs from `handle_put`.
    fn on_put_answer(&mut self, n: u32, r: PutResponse, now: Duration) {
        let single = self.is_single();
        let part = (!single).then_some(n);
        let eager = matches!(self.session.as_ref().map(|s| &s.mode), Some(Mode::Eager { .. }));
        let status = r.status;
        if status.is_success() {
            let etag = if single {
                Some(String::new())
            } else {
                r.headers
                    .get(ETAG)
                    .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
                    .filter(|v| !v.trim().is_empty())
                    .map(str::to_owned)
            };
            match etag {
                Some(etag) => self.part_done(n, etag),
                None if r.headers_filtered => {
                    let e = UploadError::new(
                        K::EtagNotExposed,
                        format!(
                            "storage stored part {n}, but the browser hid its ETag header: the bucket's \
                             CORS rules must expose it (ExposeHeaders / Access-Control-Expose-Headers: ETag)"
                        ),
                    )
                    .with_part(part)
                    .with_status(status, Bytes::new());
                    self.part_failed(n, e, false);
                }
                None => {
                    let e = UploadError::new(
                        K::MissingEtag,
                        format!("storage stored part {n} without a usable ETag"),
                    )
                    .with_part(part);
                    self.part_failed(n, e, true);
                }
            }
            return;
        }
        let body = scrub_storage_error(r.body.slice(..r.body.len().min(MAX_ERROR_BODY)));
        let what = part.map_or_else(|| "the upload".to_owned(), |n| format!("part {n}"));
        let err = UploadError::new(K::StorageStatus, format!("storage answered HTTP {status} to {what}"))
            .with_part(part)
            .with_status(status, body);
        if status == StatusCode::FORBIDDEN && eager && self.parts.get(n).is_some_and(|p| !p.reminted) {
            if let Some(p) = self.parts.get_mut(n) {
                p.reminted = true;
            }
            self.events.push_back(UploadEvent::PartFailed {
                part,
                message: err.message().to_owned(),
                will_retry: true,
            });
            self.issue_mint(n);
            return;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let ra =
                r.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after_seconds);
            if self.inline_retry(n, ra, now, err.message()) {
                return;
            }
        }
        // A 403 heals when the part's URL can be minted again (a later round does); a
        // single-PUT session's one URL cannot, so it fails at once.
        let heals = (status == StatusCode::FORBIDDEN && part.is_some())
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error();
        self.part_failed(n, err, heals);
    }

    /// Part `n`'s PUT failed in transport (or passed its deadline): a failure before any
    /// response backs off inline, others fail the part (a local `Request` error for good).
    /// Runs from `handle_put` and `expire_part_timers`.
    pub(super) fn on_put_transport(
        &mut self,
        n: u32,
        kind: TransportErrorKind,
        source: Option<TransportError>,
        now: Duration,
    ) {
        let part = (!self.is_single()).then_some(n);
        let what = part.map_or_else(|| "the upload".to_owned(), |n| format!("part {n}"));
        let message = match kind {
            TransportErrorKind::Timeout => format!("storage PUT of {what} timed out"),
            _ => format!("storage PUT of {what} failed: {}", kind_text(kind)),
        };
        let mut err =
            UploadError::new(K::StorageTransport, message).with_part(part).with_transport_kind(kind);
        if let Some(s) = source {
            err = err.with_source(s);
        }
        if kind.is_permanent() {
            // Refused locally or a rejected TLS handshake: no retry can heal it.
            self.part_failed(n, err, false);
            return;
        }
        let before_response = matches!(
            kind,
            TransportErrorKind::Connect
                | TransportErrorKind::Send
                | TransportErrorKind::NoResponse
                | TransportErrorKind::Timeout
                | TransportErrorKind::Body
        );
        if before_response && self.inline_retry(n, None, now, err.message()) {
            return;
        }
        self.part_failed(n, err, true);
    }

    /// The per-request tier: part `n` backs off (`Timer::Backoff`) before its PUT is sent
    /// again; false when its retries are spent or the upload is stopping. Runs from
    /// `on_put_answer` (429) and `on_put_transport`.
    fn inline_retry(&mut self, n: u32, retry_after: Option<Duration>, now: Duration, message: &str) -> bool {
        if self.stop.is_stopping() {
            return false;
        }
        let part = (!self.is_single()).then_some(n);
        let policy = &self.part_retry;
        let Some(p) = self.parts.get_mut(n) else { return false };
        if p.retries >= policy.max_retries {
            return false;
        }
        p.retries += 1;
        let delay = policy.delay(p.retries, retry_after);
        self.parts.set_state(n, PartState::Backoff);
        self.timers.set(Timer::Backoff(n), now.saturating_add(delay));
        self.events.push_back(UploadEvent::PartFailed {
            part,
            message: message.to_owned(),
            will_retry: true,
        });
        true
    }

    /// Part `n` is stored with `etag`: its body is released and progress moves. Runs from
    /// `on_put_answer`.
    fn part_done(&mut self, n: u32, etag: String) {
        let single = self.is_single();
        let Some(len) = self.parts.complete(n, etag) else { return };
        self.events.push_back(UploadEvent::PartCompleted { part: (!single).then_some(n), len });
        self.report_progress();
    }

    /// Part `n` failed with `err`: if it may heal (`heals`), the next round sends it again;
    /// otherwise the upload stops. A seekable source's body is released (it is read again).
    /// Runs from `handle_mint`, `issue_put`, `on_put_answer` and `on_put_transport`.
    pub(super) fn part_failed(&mut self, n: u32, err: UploadError, heals: bool) {
        let sequential = self.spec.total.is_none();
        if self.parts.get(n).is_some() {
            self.parts.set_state(n, PartState::Failed);
            if !sequential {
                self.parts.drop_body(n);
            }
        }
        let will_retry = heals && !self.stop.is_stopping();
        self.events.push_back(UploadEvent::PartFailed {
            part: err.part_number(),
            message: err.message().to_owned(),
            will_retry,
        });
        if heals {
            self.rounds.record_failure(n, err);
        } else {
            self.fail(err);
        }
    }
}

/// The text of a transport failure of `kind`. Runs from `on_put_transport`.
fn kind_text(kind: TransportErrorKind) -> String {
    TransportError::from_kind(kind).to_string()
}

/// Whether a failed control-plane call may succeed later: 408, 429, 5xx, or a transport
/// failure. Runs from `handle_mint`.
fn heals_api(e: &Error) -> bool {
    match e.status() {
        Some(s) => {
            s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
        }
        None => e.transport_kind().is_some(),
    }
}

/// The one URL a mint answer must carry for part `n`. Runs from `handle_mint`.
fn pick_minted(n: u32, resp: MintUploadPartsResponse) -> Result<String, UploadError> {
    let malformed = |m: String| UploadError::new(K::MalformedSession, m);
    let mut url = None;
    for p in resp.parts {
        if p.part_number as i64 != i64::from(n) {
            return Err(malformed(format!("mint returned part {}, which was not requested", p.part_number)));
        }
        if url.replace(p.url).is_some() {
            return Err(malformed(format!("mint returned a duplicate URL for part {n}")));
        }
    }
    url.filter(|u| !u.is_empty()).ok_or_else(|| malformed(format!("mint did not return a URL for part {n}")))
}

/// The elements of an S3 error body that repeat the request's signature or what was signed
/// (`SignatureDoesNotMatch` answers carry them).
const SIGNED_ELEMENTS: [&str; 5] =
    ["SignatureProvided", "StringToSign", "StringToSignBytes", "CanonicalRequest", "CanonicalRequestBytes"];

/// A storage error body with the contents of [`SIGNED_ELEMENTS`] replaced by `redacted`, so
/// that [`UploadError::body`] never hands out a signature. Other bodies are kept as they
/// are. Runs from `on_put_answer`.
fn scrub_storage_error(body: Bytes) -> Bytes {
    let Ok(text) = std::str::from_utf8(&body) else { return body };
    if !SIGNED_ELEMENTS.iter().any(|e| text.contains(&format!("<{e}>"))) {
        return body;
    }
    let mut out = text.to_owned();
    for e in SIGNED_ELEMENTS {
        let (open, close) = (format!("<{e}>"), format!("</{e}>"));
        let mut from = 0;
        while let Some(start) = out[from..].find(&open).map(|i| from + i + open.len()) {
            let Some(end) = out[start..].find(&close).map(|i| start + i) else { break };
            out.replace_range(start..end, "redacted");
            from = start + "redacted".len() + close.len();
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    #[test]
    fn storage_error_bodies_lose_what_was_signed() {
        let body = "<Error><Code>SignatureDoesNotMatch</Code><SignatureProvided>SECRET1</SignatureProvided>\
            <StringToSign>AWS4 SECRET2</StringToSign><CanonicalRequest>PUT /k X-Amz-Credential=SECRET3\
            </CanonicalRequest><StringToSignBytes>41 57</StringToSignBytes><RequestId>r1</RequestId></Error>";
        let out = scrub_storage_error(Bytes::from(body));
        let out = std::str::from_utf8(&out).unwrap();
        assert!(!out.contains("SECRET") && !out.contains("41 57"), "{out}");
        assert!(
            out.contains("<Code>SignatureDoesNotMatch</Code>") && out.contains("<RequestId>r1</RequestId>")
        );
        assert!(out.contains("<SignatureProvided>redacted</SignatureProvided>"), "{out}");
        for kept in
            [&b"<Error><Code>AccessDenied</Code></Error>"[..], b"\xff\xfe", b"<SignatureProvided>unclosed"]
        {
            assert_eq!(scrub_storage_error(Bytes::copy_from_slice(kept)), Bytes::copy_from_slice(kept));
        }
    }
}
