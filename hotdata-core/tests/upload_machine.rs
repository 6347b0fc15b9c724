//! The upload machine driven directly on simulated time: one scenario per branch, and
//! property tests of its invariants. No transport, no sockets, no clock.
//!
//! Two harnesses: [`Sim`] runs a whole upload against scripted storage and records what the
//! machine asked for; [`Scenario`] drives a machine by hand to a named [`State`] (the
//! session asked for, parts being read, PUTs in flight, finalize asked for) for tests that
//! answer the next step themselves. Tests are grouped by phase: `session`, `reading`,
//! `parts`, `rounds`, `finalize`, `cancel_and_resume`, then `properties`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use hotdata_core::endpoint::RawResponse;
use hotdata_core::models::{FinalizeUploadResponse, MintUploadPartsResponse, UploadSessionResponse};
use hotdata_core::upload::{
    PartRetryPolicy, PutResponse, RequestId, ResumeState, RoundPolicy, UploadAction, UploadError,
    UploadErrorKind, UploadEvent, UploadMachine, UploadOptions, UploadSpec,
};
use hotdata_core::{Error, TransportError, TransportErrorKind};
use serde_json::{Value, json};

// On wasm32 the tests run under wasm-bindgen-test-runner (Node): each test module below
// imports its `#[test]` attribute (`wasm_bindgen_test as test`).

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const S: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What storage does with one PUT.
enum Answer {
    Status(u16, Option<String>, Vec<(&'static str, String)>),
    Transport(TransportErrorKind),
    /// A transport failure whose cause prints the PUT's URL (as some HTTP clients' do).
    TransportNamingUrl(TransportErrorKind),
    Hang,
}

fn ok(etag: &str) -> Answer {
    Answer::Status(200, Some(etag.to_owned()), vec![])
}

fn status(code: u16) -> Answer {
    Answer::Status(code, None, vec![])
}

#[derive(Debug, Clone)]
struct Put {
    at: Duration,
    part: Option<u32>,
    url: String,
    body: Bytes,
    headers: http::HeaderMap,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
}

type StorageFn = Box<dyn FnMut(&Put, usize) -> Answer>;
type MintFn = Box<dyn FnMut(u32, usize) -> Result<Value, Error>>;
type FinalizeFn = Box<dyn FnMut(usize) -> Result<Value, Error>>;

enum Flight {
    Mint(RequestId, u32),
    Put(RequestId, Box<Put>),
}

struct Sim {
    m: UploadMachine,
    now: Duration,
    data: Vec<u8>,
    cursor: usize,
    session: Result<Value, u16>,
    storage: StorageFn,
    mint: MintFn,
    finalize: FinalizeFn,
    creates: Vec<Value>,
    puts: Vec<Put>,
    put_counts: BTreeMap<Option<u32>, usize>,
    mints: Vec<(Duration, u32)>,
    finalizes: Vec<(Duration, Value)>,
    flights: VecDeque<Flight>,
    events: Vec<UploadEvent>,
    aborted: Vec<RequestId>,
    max_held: u64,
    max_puts_in_flight: usize,
    cancel_after_puts: Option<usize>,
    /// Storage answers as a browser shows them: only CORS-exposed headers.
    cors_filtered: bool,
    /// The driver reports each PUT's body as read in steps of this many bytes.
    sent_step: Option<u64>,
    reverse: bool,
    /// Reads of the source asked for (`ReadAt` and `ReadNext`).
    reads: usize,
}

fn session(mode: &str, part_size: Option<u64>, urls: Option<Vec<String>>, url: Option<&str>) -> Value {
    let mut v = json!({"upload_id": "up_1", "finalize_token": "tok_secret", "headers": {}, "mode": mode});
    if let Some(p) = part_size {
        v["part_size"] = json!(p);
    }
    if let Some(u) = urls {
        v["part_urls"] = json!(u);
    }
    if let Some(u) = url {
        v["url"] = json!(u);
    }
    v
}

fn streaming(part_size: u64) -> Value {
    session("multipart", Some(part_size), None, None)
}

fn api_error(code: u16, body: &str) -> Error {
    Error::from_response(&RawResponse {
        status: http::StatusCode::from_u16(code).unwrap(),
        headers: Default::default(),
        body: Bytes::from(body.to_owned()),
    })
}

fn finalized() -> Value {
    json!({"upload_id": "up_1", "status": "finalized", "size_bytes": 0, "created_at": "2026-01-01T00:00:00Z"})
}

impl Sim {
    fn new(spec: UploadSpec, options: &UploadOptions, data: Vec<u8>, session: Value) -> Self {
        Self {
            m: UploadMachine::new(spec.with_metadata(options), options),
            now: Duration::ZERO,
            data,
            cursor: 0,
            session: Ok(session),
            storage: Box::new(|p, _| ok(&format!("\"etag-{}\"", p.part.unwrap_or(0)))),
            mint: Box::new(|n, _| {
                Ok(json!({"parts": [{"part_number": n, "url": format!("https://s.test/minted/{n}")}]}))
            }),
            finalize: Box::new(|_| Ok(finalized())),
            creates: vec![],
            puts: vec![],
            put_counts: BTreeMap::new(),
            mints: vec![],
            finalizes: vec![],
            flights: VecDeque::new(),
            events: vec![],
            aborted: vec![],
            max_held: 0,
            max_puts_in_flight: 0,
            cancel_after_puts: None,
            cors_filtered: false,
            sent_step: None,
            reverse: false,
            reads: 0,
        }
    }

    fn sized(total: u64, options: &UploadOptions, session: Value) -> Self {
        Self::new(UploadSpec::sized(total), options, pattern(total), session)
    }

    fn stream(total: u64, options: &UploadOptions, session: Value) -> Self {
        Self::new(UploadSpec::streaming(), options, pattern(total), session)
    }

    fn perform(&mut self, action: UploadAction) {
        let now = self.now;
        match action {
            UploadAction::CreateSession { endpoint } => {
                self.creates.push(serde_json::to_value(&endpoint.body).unwrap());
                let r = match &self.session {
                    Ok(v) => Ok(serde_json::from_value::<UploadSessionResponse>(v.clone()).unwrap()),
                    Err(code) => {
                        Err(api_error(*code, r#"{"error":{"code":"PRESIGN_UNSUPPORTED","message":"no"}}"#))
                    }
                };
                self.m.handle_session(r, now);
            }
            UploadAction::ReadAt { id, offset, len } => {
                self.reads += 1;
                let start = (offset as usize).min(self.data.len());
                let end = ((offset + len) as usize).min(self.data.len());
                let b = Bytes::copy_from_slice(&self.data[start..end]);
                self.m.handle_read(id, Ok(b), now);
            }
            UploadAction::ReadNext { id, len } => {
                self.reads += 1;
                let end = (self.cursor + len as usize).min(self.data.len());
                let b = Bytes::copy_from_slice(&self.data[self.cursor..end]);
                self.cursor = end;
                self.m.handle_read(id, Ok(b), now);
            }
            UploadAction::Mint { id, part, endpoint } => {
                assert_eq!(endpoint.body.part_numbers, vec![part as i32]);
                let (token, upload_id) = (&endpoint.x_upload_finalize_token, &endpoint.upload_id);
                assert_eq!((token.expose(), upload_id.as_str()), ("tok_secret", "up_1"));
                self.mints.push((now, part));
                self.flights.push_back(Flight::Mint(id, part));
            }
            UploadAction::Put { id, part, request, options } => {
                assert!(options.storage, "a storage PUT is marked for the transport");
                let (parts, body) = request.into_parts();
                assert_eq!(parts.method, http::Method::PUT);
                let put = Put {
                    at: now,
                    part,
                    url: parts.uri.to_string(),
                    body: Bytes::copy_from_slice(body.as_bytes()),
                    headers: parts.headers,
                    timeout: options.timeout,
                    connect_timeout: options.connect_timeout,
                };
                if let Some(step) = self.sent_step {
                    let len = put.body.len() as u64;
                    for at in (step..len).step_by(step as usize).chain([len]) {
                        self.m.handle_sent(id, at);
                    }
                }
                self.puts.push(put.clone());
                self.flights.push_back(Flight::Put(id, Box::new(put)));
                let in_flight = self.flights.iter().filter(|f| matches!(f, Flight::Put(..))).count();
                self.max_puts_in_flight = self.max_puts_in_flight.max(in_flight);
                if self.cancel_after_puts == Some(self.puts.len()) {
                    self.m.cancel(now);
                }
            }
            UploadAction::Abort { id } => self.aborted.push(id),
            UploadAction::Finalize { id, endpoint, retry } => {
                assert_eq!(
                    (endpoint.x_upload_finalize_token.expose(), endpoint.upload_id.as_str()),
                    ("tok_secret", "up_1")
                );
                assert_eq!(retry, hotdata_core::RetryPolicy::none(), "finalize is sent with retries off");
                let body = serde_json::to_value(&endpoint.body).unwrap();
                self.finalizes.push((now, body));
                let r = (self.finalize)(self.finalizes.len())
                    .map(|v| serde_json::from_value::<FinalizeUploadResponse>(v).unwrap());
                self.m.handle_finalize(id, r, now);
            }
            _ => unreachable!(),
        }
        self.max_held = self.max_held.max(self.m.held_bytes());
    }

    fn answer(&mut self, flight: Flight) {
        let now = self.now;
        match flight {
            Flight::Mint(id, part) => {
                let count = self.mints.iter().filter(|(_, p)| *p == part).count();
                let r = (self.mint)(part, count)
                    .map(|v| serde_json::from_value::<MintUploadPartsResponse>(v).unwrap());
                self.m.handle_mint(id, r, now);
            }
            Flight::Put(id, put) => {
                let n = self.put_counts.entry(put.part).or_default();
                *n += 1;
                let attempt = *n;
                match (self.storage)(&put, attempt) {
                    Answer::Status(code, etag, extra) => {
                        let mut headers = http::HeaderMap::new();
                        if let Some(e) = etag {
                            headers.insert("etag", e.parse().unwrap());
                        }
                        for (k, v) in extra {
                            headers.insert(k, v.parse().unwrap());
                        }
                        let r = PutResponse::new(
                            http::StatusCode::from_u16(code).unwrap(),
                            headers,
                            Bytes::from_static(b"<Error/>"),
                        )
                        .with_headers_filtered(self.cors_filtered);
                        self.m.handle_put(id, Ok(r), now);
                    }
                    Answer::Transport(kind) => {
                        self.m.handle_put(id, Err(TransportError::from_kind(kind)), now)
                    }
                    Answer::TransportNamingUrl(kind) => {
                        let cause = format!("error sending request for url ({}): connection reset", put.url);
                        self.m.handle_put(id, Err(TransportError::new(kind, cause)), now)
                    }
                    Answer::Hang => {}
                }
            }
        }
    }

    /// Runs to the end: actions, then answers one at a time, then time.
    fn run(&mut self) -> Result<FinalizeUploadResponse, UploadError> {
        for _ in 0..1_000_000 {
            while let Some(a) = self.m.poll_action(self.now) {
                self.perform(a);
            }
            while let Some(e) = self.m.poll_event() {
                self.events.push(e);
            }
            if let Some(r) = self.m.poll_result() {
                return r;
            }
            let next = if self.reverse { self.flights.pop_back() } else { self.flights.pop_front() };
            if let Some(f) = next {
                self.answer(f);
                continue;
            }
            let at = self.m.poll_timeout().expect("stuck: nothing in flight and no timer");
            assert!(at >= self.now, "timer in the past");
            self.now = at;
            self.m.handle_timeout(self.now);
        }
        panic!("did not finish");
    }

    fn put_times(&self, part: Option<u32>) -> Vec<Duration> {
        self.puts.iter().filter(|p| p.part == part).map(|p| p.at).collect()
    }

    fn progress(&self) -> Vec<(u64, Option<u64>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                UploadEvent::Progress { done, total } => Some((*done, *total)),
                _ => None,
            })
            .collect()
    }

    fn finalize_parts(&self) -> Vec<(i64, String)> {
        let body = &self.finalizes.last().unwrap().1;
        body["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["part_number"].as_i64().unwrap(), p["e_tag"].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// `total` bytes that differ from part to part.
fn pattern(total: u64) -> Vec<u8> {
    let unit: Vec<u8> = (0..251u8).collect();
    let mut v = Vec::with_capacity(total as usize);
    while (v.len() as u64) < total {
        let n = unit.len().min(total as usize - v.len());
        v.extend_from_slice(&unit[..n]);
    }
    v
}

fn opts() -> UploadOptions {
    UploadOptions::new()
}

// ---- driving the machine by hand --------------------------------------------------------------

/// Named points of an upload, in order, for tests that drive the machine by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `CreateSession` asked for.
    Creating,
    /// The session is open: the reads of the first parts asked for.
    Reading,
    /// The first parts read (and minted): their PUTs asked for.
    PartsInFlight,
    /// Every part stored (a sized source probed): finalize asked for.
    Finalizing,
}

impl State {
    /// Whether `asked` are the actions of this state.
    fn reached_by(self, asked: &[UploadAction]) -> bool {
        asked.iter().any(|a| match self {
            State::Creating => matches!(a, UploadAction::CreateSession { .. }),
            State::Reading => matches!(a, UploadAction::ReadAt { .. } | UploadAction::ReadNext { .. }),
            State::PartsInFlight => matches!(a, UploadAction::Put { .. }),
            State::Finalizing => matches!(a, UploadAction::Finalize { .. }),
        })
    }
}

/// Drives a machine by hand to a named [`State`], at time zero (after ureq-proto's test
/// `Scenario`): until the machine asks for what that state is waiting for, every action is
/// answered with success (the session, the source's bytes, minted URLs, `200` with an ETag).
struct Scenario {
    /// What the machine is told of the source (taken as is: no metadata from the options).
    spec: UploadSpec,
    /// The upload's options.
    options: UploadOptions,
    /// The create answer.
    session: Value,
    /// The source's bytes.
    data: Vec<u8>,
}

impl Scenario {
    /// An upload of `spec` with `options`, a single-PUT session, and patterned bytes.
    fn new(spec: UploadSpec, options: &UploadOptions) -> Self {
        let data = pattern(spec.total.unwrap_or(0));
        let session = session("single", None, None, Some("https://s.test/x"));
        Self { spec, options: options.clone(), session, data }
    }

    /// The server answers create with `session`.
    fn session(mut self, session: Value) -> Self {
        self.session = session;
        self
    }

    /// The source's bytes are `data`.
    fn data(mut self, data: &[u8]) -> Self {
        self.data = data.to_vec();
        self
    }

    /// The machine at `state`, and the actions it asked for there (not answered yet).
    fn to(&self, state: State) -> (UploadMachine, Vec<UploadAction>) {
        let mut m = UploadMachine::new(self.spec.clone(), &self.options);
        let mut cursor = 0;
        let mut asked = poll_all(&mut m);
        while !state.reached_by(&asked) {
            assert!(!asked.is_empty(), "the machine stopped before {state:?}: {:?}", m.poll_result());
            for action in asked {
                self.answer(&mut m, action, &mut cursor);
            }
            asked = poll_all(&mut m);
        }
        (m, asked)
    }

    /// Answers `action` with success (`cursor`: how far a streaming source was read).
    fn answer(&self, m: &mut UploadMachine, action: UploadAction, cursor: &mut usize) {
        let now = Duration::ZERO;
        match action {
            UploadAction::CreateSession { .. } => {
                m.handle_session(Ok(serde_json::from_value(self.session.clone()).unwrap()), now)
            }
            UploadAction::ReadAt { id, offset, len } => {
                let start = (offset as usize).min(self.data.len());
                let end = ((offset + len) as usize).min(self.data.len());
                m.handle_read(id, Ok(Bytes::copy_from_slice(&self.data[start..end])), now);
            }
            UploadAction::ReadNext { id, len } => {
                let end = (*cursor + len as usize).min(self.data.len());
                m.handle_read(id, Ok(Bytes::copy_from_slice(&self.data[*cursor..end])), now);
                *cursor = end;
            }
            UploadAction::Mint { id, part, .. } => {
                let v =
                    json!({"parts": [{"part_number": part, "url": format!("https://s.test/minted/{part}")}]});
                m.handle_mint(id, Ok(serde_json::from_value(v).unwrap()), now);
            }
            UploadAction::Put { id, part, .. } => {
                let mut headers = http::HeaderMap::new();
                headers.insert("etag", format!("\"etag-{}\"", part.unwrap_or(0)).parse().unwrap());
                let r = PutResponse::new(http::StatusCode::OK, headers, Bytes::new());
                m.handle_put(id, Ok(r), now);
            }
            other => panic!("no scripted answer to {other:?}"),
        }
    }
}

/// Every action the machine has to ask for now.
fn poll_all(m: &mut UploadMachine) -> Vec<UploadAction> {
    std::iter::from_fn(|| m.poll_action(Duration::ZERO)).collect()
}

/// A 5-byte single upload driven by hand up to its PUT, at time zero.
fn single_put_in_flight(options: &UploadOptions) -> (UploadMachine, RequestId) {
    let scenario = Scenario::new(UploadSpec::sized(5), options).data(b"12345");
    let (m, asked) = scenario.to(State::PartsInFlight);
    let [UploadAction::Put { id, .. }] = asked.as_slice() else { panic!("{asked:?}") };
    (m, *id)
}

mod session {
    //! Creating the session: its request, the shapes the server may answer, and the answers
    //! that are errors.

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // explicit: a glob-imported one is ambiguous

    #[test]
    fn single_put_sends_only_content_length_and_finalizes_with_an_empty_object() {
        let mut s = Sim::sized(
            100,
            &opts().content_type("text/csv"),
            session("single", None, None, Some("https://s.test/one?sig=1")),
        );
        let done = s.run().unwrap();
        assert_eq!(done.upload_id, "up_1");
        assert_eq!(
            s.creates,
            vec![json!({"content_type": "text/csv", "declared_size_bytes": 100, "part_size": 8 * MIB})]
        );
        assert_eq!(s.puts.len(), 1);
        let put = &s.puts[0];
        assert_eq!(put.part, None);
        assert_eq!(put.url, "https://s.test/one?sig=1");
        assert_eq!(put.headers.len(), 1, "only Content-Length: {:?}", put.headers);
        assert_eq!(put.headers["content-length"], "100");
        assert_eq!(put.body.len(), 100);
        assert_eq!(put.connect_timeout, Some(30 * S));
        assert_eq!(put.timeout, Some(Duration::from_micros(60_000_000 + 100 * 1_000_000 / 65_536)));
        assert_eq!(s.finalizes.len(), 1);
        assert_eq!(s.finalizes[0].1, json!({}));
        assert_eq!(s.progress(), vec![(0, Some(100)), (100, Some(100))]);
    }

    #[test]
    fn session_headers_are_replayed_verbatim_and_nothing_else() {
        let mut v = session("single", None, None, Some("https://s.test/one"));
        v["headers"] = json!({"x-amz-server-side-encryption": "AES256"});
        let mut s = Sim::sized(10, &opts(), v);
        s.run().unwrap();
        let h = &s.puts[0].headers;
        assert_eq!(h.len(), 2);
        assert_eq!(h["x-amz-server-side-encryption"], "AES256");
        for forbidden in ["authorization", "x-workspace-id", "user-agent", "accept-encoding", "content-type"]
        {
            assert!(!h.contains_key(forbidden));
        }
    }

    #[test]
    fn the_boundary_is_eight_mib() {
        let mut s = Sim::sized(8 * MIB, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.run().unwrap();
        assert_eq!(s.creates[0]["declared_size_bytes"], json!(8 * MIB));
        let mut s = Sim::sized(8 * MIB + 1, &opts(), streaming(8 * MIB));
        s.run().unwrap();
        assert!(s.creates[0].get("declared_size_bytes").is_none());
        assert_eq!(s.puts.iter().map(|p| p.body.len()).collect::<Vec<_>>(), vec![8 * MIB as usize, 1]);
    }

    #[test]
    fn eager_part_urls_are_used_in_order_and_sliced_by_the_server_part_size() {
        let urls: Vec<String> = (1..=2).map(|n| format!("https://s.test/eager/{n}")).collect();
        let mut s = Sim::sized(
            8 * MIB,
            &opts().part_size(8 * MIB),
            session("multipart", Some(5 * MIB), Some(urls), None),
        );
        s.run().unwrap();
        assert!(s.mints.is_empty());
        let got: Vec<_> = s.puts.iter().map(|p| (p.url.as_str(), p.body.len() as u64)).collect();
        assert_eq!(got, vec![("https://s.test/eager/1", 5 * MIB), ("https://s.test/eager/2", 3 * MIB)]);
    }

    fn malformed(total: u64, v: Value) -> UploadError {
        let mut s = Sim::sized(total, &opts(), v);
        let e = s.run().unwrap_err();
        assert!(s.puts.is_empty() && s.finalizes.is_empty());
        e
    }

    #[test]
    fn malformed_sessions_are_typed_errors() {
        let e = malformed(10, session("single", None, None, None));
        assert_eq!(e.kind(), UploadErrorKind::MalformedSession);
        assert!(e.message().contains("missing `url`"), "{e}");
        let e = malformed(10, session("multipart", None, None, None));
        assert!(e.message().contains("part_size"), "{e}");
        let e = malformed(10, session("multipart", Some(0), None, None));
        assert!(e.message().contains("part_size"), "{e}");
        let e = malformed(
            12 * MIB,
            session("multipart", Some(5 * MIB), Some(vec!["https://s.test/1".into()]), None),
        );
        assert!(e.message().contains("returned 1 part URLs") && e.message().contains("3 parts"), "{e}");
        let e = malformed(10, session("multipart", Some(5 * MIB), Some(vec![]), None));
        assert!(e.message().contains("0 part URLs"), "{e}");
        let e = malformed(10, session("chunked", None, None, None));
        assert!(e.message().contains("unknown upload mode"), "{e}");
        assert_eq!(e.upload_id(), None);
    }

    #[test]
    fn create_failures_and_presign_unsupported() {
        let mut s = Sim::sized(10, &opts(), json!({}));
        s.session = Err(501);
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::CreateSession);
        assert!(e.is_presign_unsupported());
        assert_eq!(e.code(), Some("PRESIGN_UNSUPPORTED"));
        assert!(s.puts.is_empty());
    }

    #[test]
    fn more_than_16_gib_is_refused_before_anything_is_sent() {
        let mut m = UploadMachine::new(UploadSpec::sized(16 * 1024 * MIB + 1), &opts());
        assert!(m.poll_action(Duration::ZERO).is_none());
        let e = m.poll_result().unwrap().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::SizeLimit);
        let mut m = UploadMachine::new(UploadSpec::sized(16 * 1024 * MIB), &opts());
        assert!(matches!(m.poll_action(Duration::ZERO), Some(UploadAction::CreateSession { .. })));
        let mut m = UploadMachine::new(UploadSpec::sized(1), &opts().part_size(u64::MAX));
        assert!(m.poll_action(Duration::ZERO).is_none());
        assert_eq!(m.poll_result().unwrap().unwrap_err().kind(), UploadErrorKind::SizeLimit);
    }
}

mod reading {
    //! Reading the source: part sizes, a source shorter or longer than declared, read errors, and
    //! the memory budget.

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // explicit: a glob-imported one is ambiguous

    #[test]
    fn a_zero_byte_stream_is_one_empty_part_and_an_exact_multiple_has_no_empty_tail() {
        let mut s = Sim::stream(0, &opts(), streaming(4));
        s.run().unwrap();
        assert_eq!(s.puts.len(), 1);
        assert_eq!(s.puts[0].body.len(), 0);
        let mut s = Sim::stream(12, &opts(), streaming(4));
        s.run().unwrap();
        assert_eq!(s.puts.iter().map(|p| p.body.len()).collect::<Vec<_>>(), vec![4, 4, 4]);
        assert_eq!(s.finalize_parts().len(), 3);
        assert_eq!(s.progress().last(), Some(&(12, Some(12))));
    }

    #[test]
    fn a_short_source_fails_before_its_put_and_a_long_one_before_finalize() {
        let mut s = Sim::sized(20 * MIB, &opts(), streaming(8 * MIB));
        s.data.truncate(17 * MIB as usize);
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::SourceSize);
        assert_eq!(e.part_number(), Some(3));
        assert!(s.finalizes.is_empty());
        assert!(s.puts.iter().all(|p| p.part != Some(3)));

        let mut s = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.data.push(7);
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::SourceSize);
        assert!(e.message().contains("longer"), "{e}");
        assert!(s.finalizes.is_empty());
    }

    #[test]
    fn a_source_read_error_is_source_io() {
        let (mut m, asked) = Scenario::new(UploadSpec::sized(10), &opts()).to(State::Reading);
        let [UploadAction::ReadAt { id, .. }] = asked.as_slice() else { panic!("{asked:?}") };
        m.handle_read(*id, Err(std::io::Error::other("disk on fire")), Duration::ZERO);
        assert!(m.poll_action(Duration::ZERO).is_none());
        let e = m.poll_result().unwrap().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::SourceIo);
        assert_eq!(e.upload_id(), Some("up_1"));
    }

    #[test]
    fn the_memory_budget_limits_parts_in_flight() {
        let mut s = Sim::sized(100 * KIB, &opts().memory_budget(32 * KIB), streaming(8 * KIB));
        s.run().unwrap();
        assert_eq!(s.max_puts_in_flight, 4);
        assert_eq!(s.max_held, 32 * KIB);
        let mut s = Sim::stream(100 * KIB, &opts().memory_budget(20 * KIB), streaming(8 * KIB));
        s.run().unwrap();
        assert_eq!(s.max_puts_in_flight, 2);
        assert!(s.max_held <= 20 * KIB);
        let mut s = Sim::sized(100 * KIB, &opts().memory_budget(KIB), streaming(8 * KIB));
        s.run().unwrap();
        assert_eq!(s.max_puts_in_flight, 1, "a part larger than the budget still runs, alone");
    }
}

mod parts {
    //! Sending parts: URLs (eager, minted), PUTs and their answers, ETags, deadlines and progress.

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // explicit: a glob-imported one is ambiguous

    #[test]
    fn a_memory_budget_that_lowers_concurrency_says_so() {
        let o = opts().max_concurrency(10).memory_budget(32 * MIB);
        let mut s = Sim::sized(80 * MIB, &o, streaming(8 * MIB));
        s.run().unwrap();
        let limited: Vec<_> =
            s.events.iter().filter(|e| matches!(e, UploadEvent::ConcurrencyLimited { .. })).collect();
        assert_eq!(
            limited,
            [&UploadEvent::ConcurrencyLimited {
                requested: 10,
                allowed: 4,
                part_size: 8 * MIB,
                memory_budget: 32 * MIB
            }]
        );
        assert!(s.max_puts_in_flight <= 4);
        // Within the budget: no event.
        let mut s = Sim::sized(80 * MIB, &opts().max_concurrency(10), streaming(8 * MIB));
        s.run().unwrap();
        assert!(!s.events.iter().any(|e| matches!(e, UploadEvent::ConcurrencyLimited { .. })));
    }

    #[test]
    fn a_permanent_transport_failure_of_a_put_is_not_retried() {
        let mut s = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.storage = Box::new(|_, _| Answer::Transport(TransportErrorKind::Tls));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::StorageTransport);
        assert_eq!(e.transport_kind(), Some(TransportErrorKind::Tls));
        assert_eq!(s.puts.len(), 1, "a rejected certificate does not heal: no retry, no round");
    }

    #[test]
    fn the_machine_and_its_actions_print_no_presigned_query_nor_storage_header_value() {
        let signed = "https://s.test/one?X-Amz-Signature=SECRETSIGNATURE0123456789";
        let mut session = session("single", None, None, Some(signed));
        session["headers"] = json!({"x-amz-server-side-encryption-customer-key": "SECRETKEY"});
        let scenario = Scenario::new(UploadSpec::sized(5), &opts()).data(b"12345").session(session);
        let (m, asked) = scenario.to(State::PartsInFlight);
        let texts = [format!("{m:?}"), format!("{asked:?}")];
        for t in texts {
            assert!(!t.contains("SECRETSIGNATURE") && !t.contains("SECRETKEY"), "{t}");
            assert!(!t.contains("tok_secret"), "{t}");
        }
    }

    #[test]
    fn a_put_failure_never_carries_the_presigned_query() {
        let signed = "https://s.test/one?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=SECRETSIGNATURE0123456789";
        let o = opts().part_retry(PartRetryPolicy::none()).rounds(RoundPolicy::none());
        let mut s = Sim::sized(10, &o, session("single", None, None, Some(signed)));
        s.storage = Box::new(|_, _| Answer::TransportNamingUrl(TransportErrorKind::NoResponse));
        let mut events = Vec::new();
        let e = s.run().unwrap_err();
        events.extend(s.events.iter().map(|e| format!("{e:?}")));
        let mut texts = vec![e.to_string(), format!("{e:?}")];
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            texts.push(cause.to_string());
            texts.push(format!("{cause:?}"));
            source = cause.source();
        }
        texts.extend(events);
        for t in &texts {
            assert!(!t.contains("SECRETSIGNATURE") && !t.contains("AKIA"), "{t}");
        }
        assert!(
            texts.iter().any(|t| t.contains("https://s.test/one")),
            "the URL is named, redacted: {texts:?}"
        );
    }

    #[test]
    fn ten_thousand_parts_is_the_limit_for_sized_and_streaming_sources() {
        let o = opts().max_concurrency(64);
        // Exactly 10,000 parts, sized and streaming (a stream whose last part is full learns
        // its end from the empty read after it): stored and finalized.
        for stream in [false, true] {
            let mut s = if stream {
                Sim::stream(10_000, &o, streaming(1))
            } else {
                Sim::sized(10_000, &o, streaming(1))
            };
            s.run().unwrap();
            assert_eq!(s.puts.len(), 10_000, "stream: {stream}");
            assert_eq!(s.finalize_parts().len(), 10_000);
        }
        // One byte more: a sized source is refused before any PUT ...
        let mut s = Sim::sized(10_001, &o, streaming(1));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::SizeLimit, "{e}");
        assert!(s.puts.is_empty());
        // ... and a stream when it reaches part 10,001, never finalized, not resumable.
        let mut s = Sim::stream(10_001, &o, streaming(1));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::SizeLimit, "{e}");
        assert!(s.finalizes.is_empty());
        assert!(e.resume_state().is_none());
    }

    #[test]
    fn large_sources_stream_minting_each_part_just_before_its_put() {
        let total = 20 * MIB;
        let mut s = Sim::sized(total, &opts(), streaming(8 * MIB));
        s.run().unwrap();
        assert_eq!(s.creates[0], json!({"part_size": 8 * MIB}), "no declared size above 8 MiB");
        assert_eq!(s.mints.iter().map(|m| m.1).collect::<Vec<_>>(), vec![1, 2, 3]);
        let lens: Vec<_> = s.puts.iter().map(|p| (p.part, p.body.len() as u64, p.url.clone())).collect();
        assert_eq!(
            lens,
            vec![
                (Some(1), 8 * MIB, "https://s.test/minted/1".to_owned()),
                (Some(2), 8 * MIB, "https://s.test/minted/2".to_owned()),
                (Some(3), 4 * MIB, "https://s.test/minted/3".to_owned()),
            ]
        );
        assert_eq!(
            s.finalize_parts(),
            vec![(1, "\"etag-1\"".into()), (2, "\"etag-2\"".into()), (3, "\"etag-3\"".into())]
        );
        assert_eq!(
            s.progress(),
            vec![(0, Some(total)), (8 * MIB, Some(total)), (16 * MIB, Some(total)), (total, Some(total))]
        );
    }

    #[test]
    fn malformed_mint_answers_are_terminal() {
        for (answer, text) in [
            (
                json!({"parts": [{"part_number": 1, "url": "https://a"}, {"part_number": 1, "url": "https://b"}]}),
                "duplicate",
            ),
            (json!({"parts": [{"part_number": 2, "url": "https://a"}]}), "not requested"),
            (json!({"parts": []}), "did not return a URL"),
            (json!({"parts": [{"part_number": 1, "url": ""}]}), "did not return a URL"),
        ] {
            let mut s = Sim::sized(10 * MIB, &opts(), streaming(8 * MIB));
            let a = answer.clone();
            s.mint = Box::new(move |n, _| {
                if n == 1 {
                    Ok(a.clone())
                } else {
                    Ok(json!({"parts": [{"part_number": n, "url": "https://ok"}]}))
                }
            });
            let e = s.run().unwrap_err();
            assert_eq!(e.kind(), UploadErrorKind::MalformedSession, "{answer}");
            assert!(e.message().contains(text), "{e}");
            assert!(!e.is_exhausted());
            assert!(s.finalizes.is_empty());
        }
    }

    #[test]
    fn a_stalled_put_is_cut_off_at_its_deadline_and_retried() {
        let mut s = Sim::sized(20 * MIB, &opts().max_concurrency(1), streaming(8 * MIB));
        s.storage = Box::new(|p, n| if p.part == Some(1) && n == 1 { Answer::Hang } else { ok("\"e\"") });
        s.run().unwrap();
        let deadline = 60 * S + 128 * S;
        assert_eq!(s.puts[0].timeout, Some(deadline));
        assert_eq!(s.put_times(Some(1)), vec![Duration::ZERO, deadline]);
        assert_eq!(s.aborted.len(), 1);
        assert!(
            s.events
                .iter()
                .any(|e| matches!(e, UploadEvent::PartFailed { part: Some(1), will_retry: true, .. }))
        );
    }

    #[test]
    fn a_single_put_answered_403_fails_at_once() {
        // A single-PUT session's URL cannot be minted again: retrying in rounds would only
        // wait (14 s of pauses by default) for the same 403.
        let (mut m, id) = single_put_in_flight(&opts());
        let forbidden = PutResponse::new(http::StatusCode::FORBIDDEN, Default::default(), Bytes::new());
        m.handle_put(id, Ok(forbidden), Duration::ZERO);
        assert!(m.poll_action(Duration::ZERO).is_none(), "no re-send, no round");
        let e = m.poll_result().expect("over at once").unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::StorageStatus);
        assert_eq!(e.status(), Some(http::StatusCode::FORBIDDEN));
        assert_eq!(m.poll_timeout(), None, "nothing left to wait for");
        let mut events = Vec::new();
        while let Some(ev) = m.poll_event() {
            events.push(ev);
        }
        assert!(!events.iter().any(|e| matches!(e, UploadEvent::RoundStarted { .. })), "{events:?}");
        assert!(
            events.iter().any(|e| matches!(e, UploadEvent::PartFailed { part: None, will_retry: false, .. })),
            "{events:?}"
        );
    }

    #[test]
    fn a_late_answer_to_a_cut_off_put_is_ignored() {
        let (mut m, first) = single_put_in_flight(&opts());
        let deadline = m.poll_timeout().unwrap();
        assert_eq!(deadline, Duration::from_micros(60_000_000 + 5 * 1_000_000 / 65_536));
        m.handle_timeout(deadline);
        assert!(matches!(m.poll_action(deadline), Some(UploadAction::Abort { id }) if id == first));
        let Some(UploadAction::Put { id: second, .. }) = m.poll_action(deadline) else { panic!() };
        let ok =
            |c| PutResponse::new(http::StatusCode::from_u16(c).unwrap(), Default::default(), Bytes::new());
        m.handle_put(first, Ok(ok(500)), deadline);
        assert!(m.poll_action(deadline).is_none(), "the late 500 changed nothing");
        m.handle_put(second, Ok(ok(200)), deadline);
        assert!(
            matches!(m.poll_action(deadline), Some(UploadAction::ReadAt { .. })),
            "probe for extra bytes"
        );
    }

    #[test]
    fn a_403_on_an_eager_url_mints_once_inline_and_a_streaming_403_waits_for_the_next_round() {
        let urls: Vec<String> = (1..=2).map(|n| format!("https://s.test/eager/{n}")).collect();
        let mut s = Sim::sized(8 * MIB, &opts(), session("multipart", Some(5 * MIB), Some(urls), None));
        s.storage =
            Box::new(|p, _| if p.url == "https://s.test/eager/2" { status(403) } else { ok("\"e\"") });
        s.run().unwrap();
        assert_eq!(s.mints.iter().map(|m| m.1).collect::<Vec<_>>(), vec![2]);
        assert_eq!(s.put_times(Some(2)), vec![Duration::ZERO, Duration::ZERO], "re-sent at once, inline");
        assert_eq!(s.puts.last().unwrap().url, "https://s.test/minted/2");

        let urls: Vec<String> = (1..=2).map(|n| format!("https://s.test/eager/{n}")).collect();
        let mut s = Sim::sized(8 * MIB, &opts(), session("multipart", Some(5 * MIB), Some(urls), None));
        s.storage = Box::new(|p, _| if p.part == Some(2) { status(503) } else { ok("\"e\"") });
        let _ = s.run().unwrap_err();
        assert!(s.mints.is_empty(), "5xx never re-mints");

        let mut s = Sim::sized(20 * MIB, &opts(), streaming(8 * MIB));
        s.storage = Box::new(|p, n| if p.part == Some(1) && n == 1 { status(403) } else { ok("\"e\"") });
        s.run().unwrap();
        assert_eq!(s.put_times(Some(1)), vec![Duration::ZERO, 2 * S]);
        assert_eq!(
            s.mints.iter().filter(|m| m.1 == 1).map(|m| m.0).collect::<Vec<_>>(),
            vec![Duration::ZERO, 2 * S]
        );
    }

    #[test]
    fn missing_or_blank_etags_are_retried_and_etags_are_kept_byte_for_byte() {
        let mut s = Sim::sized(20 * MIB, &opts(), streaming(8 * MIB));
        s.storage = Box::new(|p, n| match (p.part, n) {
            (Some(1), 1) => Answer::Status(200, None, vec![]),
            (Some(2), 1) => ok("   "),
            (Some(3), _) => ok("W/\"weird etag\""),
            (part, _) => ok(&format!("\"etag-{}\"", part.unwrap())),
        });
        s.run().unwrap();
        assert_eq!(s.put_counts[&Some(1)], 2);
        assert_eq!(s.put_counts[&Some(2)], 2);
        assert_eq!(
            s.finalize_parts(),
            vec![(1, "\"etag-1\"".into()), (2, "\"etag-2\"".into()), (3, "W/\"weird etag\"".into())]
        );

        let mut s = Sim::sized(10 * MIB, &opts().rounds(RoundPolicy::none()), streaming(8 * MIB));
        s.storage = Box::new(|_, _| Answer::Status(200, None, vec![]));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::MissingEtag);
        assert!(e.is_exhausted());
    }

    #[test]
    fn progress_moves_within_parts_and_never_goes_back() {
        // The driver reports bytes as the transport reads them; part 2 fails once (its bytes
        // stop counting) and is sent again in the next round.
        let mut s = Sim::sized(20 * MIB, &opts(), streaming(8 * MIB));
        s.sent_step = Some(MIB);
        s.storage = Box::new(|p, n| match (p.part, n) {
            (Some(2), 1) => status(500),
            (part, _) => ok(&format!("\"etag-{}\"", part.unwrap())),
        });
        s.run().unwrap();
        let progress = s.progress();
        assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0), "monotonic: {progress:?}");
        assert!(progress.iter().all(|&(done, total)| done <= 20 * MIB && total == Some(20 * MIB)));
        assert!(progress.iter().any(|&(done, _)| done == MIB), "moves within the first part: {progress:?}");
        assert_eq!(progress.last(), Some(&(20 * MIB, Some(20 * MIB))));
        assert_eq!(s.put_counts[&Some(2)], 2);
    }

    #[test]
    fn an_etag_hidden_by_cors_fails_at_once_with_a_typed_error() {
        // A browser page sees only the headers storage exposes: an ETag left out of
        // Access-Control-Expose-Headers is invisible, and no retry can change that.
        let mut s = Sim::sized(20 * MIB, &opts(), streaming(8 * MIB));
        s.cors_filtered = true;
        s.storage = Box::new(|_, _| Answer::Status(200, None, vec![]));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::EtagNotExposed);
        assert!(e.to_string().contains("Access-Control-Expose-Headers"), "{e}");
        assert_eq!(e.upload_id(), Some("up_1"));
        assert!(s.put_counts.values().all(|&n| n == 1), "never retried: {:?}", s.put_counts);
        assert!(s.finalizes.is_empty());

        // Exposed, the same answers are fine.
        let mut s = Sim::sized(20 * MIB, &opts(), streaming(8 * MIB));
        s.cors_filtered = true;
        s.run().unwrap();
        assert_eq!(s.finalize_parts().len(), 3);
    }
}

mod rounds {
    //! Retries: the per-request tier (inline, after a backoff) and whole-upload rounds.

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // explicit: a glob-imported one is ambiguous

    #[test]
    fn a_429_is_retried_inline_honouring_retry_after_then_backing_off() {
        let mut s = Sim::sized(10 * MIB, &opts(), streaming(8 * MIB));
        s.storage = Box::new(|p, n| match (p.part, n) {
            (Some(1), 1) => Answer::Status(429, None, vec![("retry-after", "1".into())]),
            (Some(1), 2 | 3) => status(429),
            (part, _) => ok(&format!("\"e{}\"", part.unwrap())),
        });
        s.m = UploadMachine::new(UploadSpec::sized(10 * MIB), &opts().max_concurrency(1));
        s.run().unwrap();
        assert_eq!(s.put_times(Some(1)), vec![Duration::ZERO, S, S + ms(400), S + ms(1200)]);
        assert_eq!(s.mints.iter().filter(|m| m.1 == 1).count(), 1, "inline retries reuse the URL");
        assert_eq!(s.finalize_parts().len(), 2);
    }

    #[test]
    fn connection_failures_exhaust_four_inline_attempts_per_round_and_four_rounds() {
        let mut s = Sim::sized(100, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.storage = Box::new(|_, _| Answer::Transport(TransportErrorKind::Connect));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::StorageTransport);
        assert_eq!(e.transport_kind(), Some(TransportErrorKind::Connect));
        assert!(e.is_exhausted());
        assert_eq!(e.rounds_attempted(), 4);
        assert_eq!(s.puts.len(), 16);
        // Rounds start 2, 4 and 8 s after the previous one ended (each round takes 1.2 s).
        let starts: Vec<_> = s.put_times(None).chunks(4).map(|c| c[0]).collect();
        let r = ms(1200);
        assert_eq!(starts, vec![Duration::ZERO, r + 2 * S, 2 * r + 6 * S, 3 * r + 14 * S]);
        assert_eq!(s.put_times(None)[..4], [Duration::ZERO, Duration::ZERO, ms(400), ms(1200)]);
        assert!(s.finalizes.is_empty());
        let rounds: Vec<_> = s
            .events
            .iter()
            .filter_map(|e| match e {
                UploadEvent::RoundStarted { round, concurrency } => Some((*round, *concurrency)),
                _ => None,
            })
            .collect();
        assert_eq!(rounds, vec![(1, 1), (2, 1), (3, 1)]);
    }

    #[test]
    fn an_absurd_round_pause_saturates_instead_of_panicking() {
        let options = opts().rounds(RoundPolicy::new(2, Duration::MAX));
        let mut s = Sim::sized(100, &options, session("single", None, None, Some("https://s.test/one")));
        s.storage = Box::new(|_, _| Answer::Transport(TransportErrorKind::Connect));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::StorageTransport);
        assert_eq!(e.rounds_attempted(), 3);
    }

    #[test]
    fn a_503_is_left_to_the_next_round_at_half_the_concurrency() {
        let mut s = Sim::sized(20 * MIB, &opts(), streaming(8 * MIB));
        s.storage = Box::new(|p, n| {
            if p.part == Some(2) && n == 1 { status(503) } else { ok(&format!("\"e{}\"", p.part.unwrap())) }
        });
        s.run().unwrap();
        assert_eq!(s.put_counts.get(&Some(1)), Some(&1));
        assert_eq!(s.put_counts.get(&Some(3)), Some(&1));
        assert_eq!(s.put_times(Some(2)), vec![Duration::ZERO, 2 * S]);
        assert_eq!(s.mints.iter().filter(|m| m.1 == 2).count(), 2, "a re-sent streaming part mints again");
        assert!(s.events.contains(&UploadEvent::RoundStarted { round: 1, concurrency: 5 }));
        assert_eq!(s.finalize_parts().iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        let progress = s.progress();
        assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0), "monotonic: {progress:?}");
        assert_eq!(progress.len(), 4, "the re-sent part counts once");
    }

    #[test]
    fn errors_that_will_not_heal_fail_at_once() {
        for code in [400, 401, 404, 405, 411, 413, 301] {
            let mut s = Sim::sized(20 * MIB, &opts().max_concurrency(1), streaming(8 * MIB));
            s.storage = Box::new(move |p, _| if p.part == Some(2) { status(code) } else { ok("\"e\"") });
            let e = s.run().unwrap_err();
            assert_eq!(e.kind(), UploadErrorKind::StorageStatus, "{code}");
            assert_eq!(e.status().map(|s| s.as_u16()), Some(code));
            assert_eq!(e.part_number(), Some(2));
            assert_eq!(e.body(), Some(&b"<Error/>"[..]));
            assert!(!e.is_exhausted());
            assert_eq!(s.put_counts[&Some(2)], 1, "{code} is not retried");
            assert!(!s.put_counts.contains_key(&Some(3)), "nothing new starts after a terminal error");
            assert!(s.finalizes.is_empty());
            assert_eq!(e.parts_completed(), 1);
            assert_eq!(e.upload_id(), Some("up_1"));
        }
    }

    #[test]
    fn mint_failures_heal_in_rounds_unless_they_will_not() {
        let mut s = Sim::sized(10 * MIB, &opts(), streaming(8 * MIB));
        s.mint = Box::new(|n, count| {
            if n == 2 && count == 1 {
                Err(Error::transport(TransportError::from_kind(TransportErrorKind::Timeout)))
            } else {
                Ok(json!({"parts": [{"part_number": n, "url": format!("https://s.test/minted/{n}")}]}))
            }
        });
        s.run().unwrap();
        assert_eq!(
            s.mints.iter().filter(|m| m.1 == 2).map(|m| m.0).collect::<Vec<_>>(),
            vec![Duration::ZERO, 2 * S]
        );

        let mut s = Sim::sized(10 * MIB, &opts().max_concurrency(1), streaming(8 * MIB));
        s.mint = Box::new(|_, _| Err(api_error(404, r#"{"error":{"code":"NOT_FOUND","message":"gone"}}"#)));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::Mint);
        assert_eq!(e.status().map(|s| s.as_u16()), Some(404));
        assert!(!e.is_exhausted());
        assert_eq!(s.mints.len(), 1);
    }
}

mod finalize {
    //! Finalize: sent once, and again only when it provably never left.

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // explicit: a glob-imported one is ambiguous

    /// A three-part upload of 20 KiB whose first finalize answers `first`: its error.
    fn failed_finalize(first: Error) -> UploadError {
        let mut s = Sim::sized(20 * KIB, &opts(), streaming(8 * KIB));
        let mut first = Some(first);
        s.finalize = Box::new(move |_| Err(first.take().expect("finalize sent twice")));
        let e = s.run().unwrap_err();
        assert_eq!(s.finalizes.len(), 1, "finalize is sent once");
        e
    }

    /// Resumes `state` over the same 20 KiB source, finalize answering `answer`: the run,
    /// and its result.
    fn resumed(
        state: ResumeState,
        answer: Result<Value, Error>,
    ) -> (Sim, Result<FinalizeUploadResponse, UploadError>) {
        let mut r = Sim::sized(20 * KIB, &opts(), streaming(8 * KIB));
        let mut answer = Some(answer);
        r.finalize = Box::new(move |_| answer.take().expect("finalize sent twice"));
        r.m = UploadMachine::resume(state, UploadSpec::sized(20 * KIB), &opts());
        let result = r.run();
        (r, result)
    }

    #[test]
    fn a_finalize_that_may_have_arrived_is_never_resent_and_leaves_a_marked_resume_state() {
        for err in [
            Error::transport(TransportError::from_kind(TransportErrorKind::NoResponse)),
            Error::transport(TransportError::from_kind(TransportErrorKind::Timeout)),
            // python-sdk-behaviour.md §1.12: a 429 on finalize may have been processed.
            api_error(429, "{}"),
            api_error(502, "{}"),
        ] {
            let e = failed_finalize(err);
            assert_eq!(e.kind(), UploadErrorKind::Finalize);
            assert!(e.finalize_may_have_succeeded(), "{e:?}");
            let state = e.resume_state().expect("a finished transfer is never thrown away");
            assert!(state.is_complete() && state.finalize_may_have_arrived(), "{state:?}");
            assert!(!state.finalize_was_refused());
            assert_eq!(state.bytes_completed(), 20 * KIB);
        }
    }

    #[test]
    fn a_refused_finalize_leaves_a_state_that_only_finalizes() {
        for code in [400, 401, 403, 404] {
            let e = failed_finalize(api_error(code, r#"{"error":{"code":"UNAUTHORIZED","message":"no"}}"#));
            assert_eq!(e.kind(), UploadErrorKind::Finalize);
            assert!(!e.finalize_may_have_succeeded(), "{code}");
            let state = e.into_resume_state().expect("the caller can fix credentials and finalize again");
            assert!(state.is_complete() && state.finalize_was_refused(), "{state:?}");
            let (r, result) = resumed(state, Ok(finalized()));
            assert_eq!(result.unwrap().upload_id, "up_1");
            assert_eq!((r.reads, r.puts.len(), r.mints.len(), r.creates.len()), (0, 0, 0, 0), "{code}");
            assert_eq!(r.finalize_parts().iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        }
    }

    #[test]
    fn a_resumed_finalize_answered_already_finalized_is_its_own_outcome() {
        let e = failed_finalize(Error::transport(TransportError::from_kind(TransportErrorKind::NoResponse)));
        let state = e.into_resume_state().unwrap();
        let already = r#"{"error":{"code":"ALREADY_FINALIZED","message":"upload already finalized"}}"#;
        let (r, result) = resumed(state, Err(api_error(400, already)));
        let e = result.unwrap_err();
        assert_eq!(r.finalizes.len(), 1, "the resume sends finalize once");
        assert_eq!(e.kind(), UploadErrorKind::AlreadyFinalized, "{e:?}");
        assert_eq!(e.upload_id(), Some("up_1"));
        assert!(e.resume_state().is_none(), "nothing is left to resume");
        // Any other 400 stays a refused finalize.
        let e = failed_finalize(api_error(400, r#"{"error":{"code":"BAD_REQUEST","message":"x"}}"#));
        assert_eq!(e.kind(), UploadErrorKind::Finalize);
    }

    #[test]
    fn a_finalize_that_never_left_is_not_ambiguous_and_stays_resumable() {
        let mut s = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.finalize =
            Box::new(|_| Err(Error::transport(TransportError::from_kind(TransportErrorKind::Connect))));
        let e = s.run().unwrap_err();
        assert_eq!(s.finalizes.len(), 3, "a finalize that never left is tried three times");
        assert!(!e.finalize_may_have_succeeded());
        let state = e.into_resume_state().unwrap();
        assert!(state.is_complete() && !state.finalize_may_have_arrived() && !state.finalize_was_refused());
        // A single-PUT session resumes too: only finalize (`{}`) is sent.
        let mut r = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        r.m = UploadMachine::resume(state, UploadSpec::sized(10), &opts());
        r.run().unwrap();
        assert_eq!((r.reads, r.puts.len()), (0, 0));
        assert_eq!(r.finalizes.len(), 1);
        assert_eq!(r.finalizes[0].1, json!({}));
    }

    #[test]
    fn a_finalize_that_failed_for_good_before_leaving_is_not_sent_again() {
        let mut s = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.finalize = Box::new(|_| Err(Error::transport(TransportError::from_kind(TransportErrorKind::Tls))));
        let e = s.run().unwrap_err();
        assert_eq!(s.finalizes.len(), 1, "a rejected certificate does not heal");
        assert!(!e.finalize_may_have_succeeded());
        assert!(e.resume_state().is_some_and(|r| r.is_complete()));
    }

    #[test]
    fn a_finalize_that_never_left_is_sent_again() {
        let mut s = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.finalize = Box::new(|n| {
            if n < 3 {
                Err(Error::transport(TransportError::from_kind(TransportErrorKind::Connect)))
            } else {
                Ok(finalized())
            }
        });
        s.run().unwrap();
        assert_eq!(
            s.finalizes.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![Duration::ZERO, ms(500), ms(1500)]
        );
    }

    #[test]
    fn cancelling_once_finalize_is_sent_changes_nothing() {
        let scenario = Scenario::new(UploadSpec::sized(20), &opts()).session(streaming(8));
        let (mut m, asked) = scenario.to(State::Finalizing);
        let [UploadAction::Finalize { id, .. }] = asked.as_slice() else { panic!("{asked:?}") };
        m.cancel(Duration::ZERO);
        assert!(m.poll_action(Duration::ZERO).is_none());
        let done = serde_json::from_value(finalized()).unwrap();
        m.handle_finalize(*id, Ok(done), Duration::ZERO);
        assert_eq!(m.poll_result().unwrap().unwrap().upload_id, "up_1");
    }

    #[test]
    fn mint_and_finalize_actions_print_no_finalize_token() {
        let scenario = Scenario::new(UploadSpec::sized(20), &opts()).session(streaming(8));
        let (mut m, asked) = scenario.to(State::Reading);
        for action in asked {
            scenario.answer(&mut m, action, &mut 0);
        }
        let mints = poll_all(&mut m);
        assert!(matches!(mints.first(), Some(UploadAction::Mint { .. })), "{mints:?}");
        let (m, finalize) = scenario.to(State::Finalizing);
        for printed in [format!("{mints:?}"), format!("{finalize:?}"), format!("{m:?}")] {
            assert!(printed.contains("up_1") && printed.contains("<redacted>"), "{printed}");
            assert!(!printed.contains("tok_secret"), "{printed}");
        }
    }
}

mod cancel_and_resume {
    //! Cancelling, in each phase, and resuming a failed upload.

    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // explicit: a glob-imported one is ambiguous

    #[test]
    fn cancelling_before_start_sends_nothing() {
        let mut m = UploadMachine::new(UploadSpec::sized(10), &opts());
        m.cancel(Duration::ZERO);
        assert!(m.poll_action(Duration::ZERO).is_none());
        assert_eq!(m.poll_result().unwrap().unwrap_err().kind(), UploadErrorKind::Cancelled);
    }

    #[test]
    fn cancelling_while_the_session_is_created_ends_when_it_arrives() {
        let (mut m, asked) = Scenario::new(UploadSpec::sized(10), &opts()).to(State::Creating);
        assert!(matches!(asked.as_slice(), [UploadAction::CreateSession { .. }]), "{asked:?}");
        m.cancel(Duration::ZERO);
        assert!(m.poll_result().is_none(), "the session is awaited");
        let v = serde_json::from_value(session("single", None, None, Some("https://s.test/one"))).unwrap();
        m.handle_session(Ok(v), Duration::ZERO);
        assert!(m.poll_action(Duration::ZERO).is_none(), "no part starts");
        let e = m.poll_result().unwrap().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::Cancelled);
        assert_eq!(e.upload_id(), Some("up_1"));
    }

    #[test]
    fn cancelling_with_parts_in_flight_cuts_them_off_at_once_and_never_finalizes() {
        let mut s = Sim::sized(40 * MIB, &opts().max_concurrency(2), streaming(8 * MIB));
        s.cancel_after_puts = Some(2);
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::Cancelled);
        assert_eq!(s.puts.len(), 2, "no part starts after cancel");
        assert_eq!(s.aborted.len(), 2, "both PUTs in flight are cut off");
        assert_eq!(s.now, Duration::ZERO, "nothing waited for a part's deadline");
        assert!(s.finalizes.is_empty());
        let resume = e.resume_state().unwrap();
        assert_eq!(resume.completed_parts().count(), 0);
        assert!(!format!("{resume:?}").contains("tok_secret"));
    }

    #[test]
    fn a_terminal_failure_cuts_off_the_requests_in_flight_and_ignores_their_late_answers() {
        let o = opts().max_concurrency(3);
        let (mut m, asked) = Scenario::new(UploadSpec::sized(24 * KIB), &o)
            .session(streaming(8 * KIB))
            .to(State::PartsInFlight);
        let puts: Vec<RequestId> = asked
            .iter()
            .filter_map(|a| match a {
                UploadAction::Put { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(puts.len(), 3, "{asked:?}");
        // Part 1 is refused for good (a 400 that no retry heals); parts 2 and 3 hang.
        let refused = PutResponse::new(http::StatusCode::BAD_REQUEST, Default::default(), Bytes::new());
        m.handle_put(puts[0], Ok(refused), Duration::ZERO);
        let after = poll_all(&mut m);
        let aborted: Vec<RequestId> = after
            .iter()
            .filter_map(|a| match a {
                UploadAction::Abort { id } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(aborted, puts[1..].to_vec(), "{after:?}");
        assert!(m.poll_timeout().is_none(), "no deadline is waited for");
        let e = m.poll_result().expect("the upload ends at once").unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::StorageStatus);
        assert!(e.resume_state().is_some());
        // An answer that comes anyway (a driver that could not drop the work) is ignored.
        let late = PutResponse::new(http::StatusCode::OK, Default::default(), Bytes::new());
        m.handle_put(puts[1], Ok(late), Duration::ZERO);
        assert!(m.poll_action(Duration::ZERO).is_none());
    }

    #[test]
    fn cancelling_during_a_round_pause_ends_at_once() {
        let (mut m, id) = single_put_in_flight(&opts().part_retry(PartRetryPolicy::none()));
        m.handle_put(
            id,
            Ok(PutResponse::new(http::StatusCode::SERVICE_UNAVAILABLE, Default::default(), Bytes::new())),
            Duration::ZERO,
        );
        assert!(m.poll_action(Duration::ZERO).is_none());
        assert_eq!(m.poll_timeout(), Some(2 * S));
        m.cancel(S);
        assert!(m.poll_action(S).is_none());
        assert_eq!(m.poll_result().unwrap().unwrap_err().kind(), UploadErrorKind::Cancelled);
    }

    #[test]
    fn a_failed_streaming_upload_resumes_from_its_completed_parts() {
        let total = 30 * KIB;
        for stream in [false, true] {
            let mk = |o: &UploadOptions| {
                if stream {
                    Sim::stream(total, o, streaming(8 * KIB))
                } else {
                    Sim::sized(total, o, streaming(8 * KIB))
                }
            };
            let mut s = mk(&opts().max_concurrency(1));
            s.storage = Box::new(|p, _| {
                if p.part == Some(3) { status(400) } else { ok(&format!("\"e{}\"", p.part.unwrap())) }
            });
            let e = s.run().unwrap_err();
            let state = e.into_resume_state().unwrap();
            assert_eq!(state.upload_id(), "up_1");
            assert_eq!(state.completed_parts().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2]);
            assert_eq!(state.bytes_completed(), 16 * KIB);

            let mut r = mk(&opts());
            r.m = if stream {
                UploadMachine::resume(state, UploadSpec::streaming(), &opts())
            } else {
                UploadMachine::resume(state, UploadSpec::sized(total), &opts())
            };
            r.run().unwrap();
            assert!(r.creates.is_empty(), "same session");
            assert_eq!(r.puts.iter().map(|p| p.part.unwrap()).collect::<Vec<_>>(), vec![3, 4]);
            assert_eq!(r.finalize_parts().iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
            assert_eq!(r.finalize_parts()[0].1, "\"e1\"");
            assert_eq!(r.progress().first(), Some(&(16 * KIB, if stream { None } else { Some(total) })));
            assert_eq!(r.progress().last(), Some(&(total, Some(total))));
        }
    }

    #[test]
    fn every_failure_after_the_session_carries_a_resume_state_but_the_named_ones() {
        let single = || session("single", None, None, Some("https://s.test/one"));
        let no_retry = || opts().part_retry(PartRetryPolicy::none()).rounds(RoundPolicy::none());
        // A single PUT that failed for good keeps its session: resuming PUTs the same URL.
        let mut s = Sim::sized(10, &no_retry(), single());
        s.storage = Box::new(|_, _| status(503));
        let state = s.run().unwrap_err().into_resume_state().expect("a single-PUT failure resumes");
        assert!(!state.is_complete());
        let mut r = Sim::sized(10, &opts(), single());
        r.m = UploadMachine::resume(state, UploadSpec::sized(10), &opts());
        r.run().unwrap();
        assert_eq!(r.puts.iter().map(|p| p.url.as_str()).collect::<Vec<_>>(), vec!["https://s.test/one"]);
        assert!(r.creates.is_empty());

        // The named exceptions: a single URL refused (it cannot be minted again) ...
        let mut s = Sim::sized(10, &opts(), single());
        s.storage = Box::new(|_, _| status(403));
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::StorageStatus);
        assert!(e.resume_state().is_none());
        // ... and a source that is not the size it declared.
        let mut s = Sim::sized(10, &opts(), single());
        s.data.push(0);
        let e = s.run().unwrap_err();
        assert_eq!(e.kind(), UploadErrorKind::SourceSize);
        assert!(e.resume_state().is_none());
        // A multipart part refused with 403 is not one of them: its URL can be minted again.
        let mut s = Sim::sized(20 * KIB, &no_retry(), streaming(8 * KIB));
        s.storage = Box::new(|p, _| if p.part == Some(2) { status(403) } else { ok("\"e\"") });
        assert!(s.run().unwrap_err().resume_state().is_some());
    }

    /// A resume state of the three-part upload of 20 KiB, parts 1 and 2 stored.
    fn two_of_three_stored() -> ResumeState {
        let mut s = Sim::sized(20 * KIB, &opts().max_concurrency(1), streaming(8 * KIB));
        s.storage = Box::new(|p, _| if p.part == Some(3) { status(400) } else { ok("\"e\"") });
        s.run().unwrap_err().into_resume_state().unwrap()
    }

    #[test]
    fn a_resume_state_survives_a_save_and_load_and_hides_its_secrets_from_debug() {
        let state = two_of_three_stored();
        let saved = serde_json::to_string(&state).unwrap();
        assert!(saved.contains("\"version\":1"), "{saved}");
        let loaded: ResumeState = serde_json::from_str(&saved).unwrap();
        assert_eq!(loaded, state);
        let debug = format!("{loaded:?}");
        assert!(!debug.contains("tok_secret") && !debug.contains("s.test"), "{debug}");
        // The loaded state finishes the upload: part 3 only.
        let mut r = Sim::sized(20 * KIB, &opts(), streaming(8 * KIB));
        r.m = UploadMachine::resume(loaded, UploadSpec::sized(20 * KIB), &opts());
        r.run().unwrap();
        assert_eq!(r.puts.iter().map(|p| p.part).collect::<Vec<_>>(), vec![Some(3)]);
    }

    #[test]
    fn a_single_put_state_saves_and_loads_and_finalizes() {
        // A single PUT keeps no ETag (finalize sends `{}`): its saved state still loads.
        let mut s = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        s.storage = Box::new(|_, _| Answer::Status(200, None, vec![]));
        s.finalize = Box::new(|_| Err(api_error(401, r#"{"error":{"code":"UNAUTHORIZED","message":"x"}}"#)));
        let state = s.run().unwrap_err().into_resume_state().unwrap();
        let loaded: ResumeState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(loaded, state);
        let mut r = Sim::sized(10, &opts(), session("single", None, None, Some("https://s.test/one")));
        r.m = UploadMachine::resume(loaded, UploadSpec::sized(10), &opts());
        r.run().unwrap();
        assert_eq!((r.puts.len(), r.finalizes.len()), (0, 1));
    }

    #[test]
    fn a_hostile_saved_state_is_refused_with_a_reason() {
        let good: Value = serde_json::to_value(two_of_three_stored()).unwrap();
        type Change = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Change)> = vec![
            ("version", Box::new(|v| v["version"] = json!(2))),
            ("outside", Box::new(|v| v["parts"][0]["n"] = json!(0))),
            ("outside", Box::new(|v| v["parts"][0]["n"] = json!(u32::MAX))),
            ("twice", Box::new(|v| v["parts"][1]["n"] = json!(1))),
            ("part size", Box::new(|v| v["part_size"] = json!(0))),
            ("part size", Box::new(|v| v["part_size"] = json!(u64::MAX))),
            ("longer", Box::new(|v| v["parts"][0]["len"] = json!(u64::MAX))),
            ("finalize was sent", Box::new(|v| v["finalize"] = json!("may_have_arrived"))),
            ("unknown field", Box::new(|v| v["extra"] = json!(1))),
            ("eager", Box::new(|v| v["urls"] = json!({"eager": ["https://s.test/1"]}))),
            ("upload id", Box::new(|v| v["upload_id"] = json!(""))),
        ];
        for (why, change) in cases {
            let mut v = good.clone();
            change(&mut v);
            let e = serde_json::from_value::<ResumeState>(v).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}

// ---- properties -----------------------------------------------------------------------------

mod properties {
    use super::*;
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // explicit: a glob-imported one is ambiguous

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_byte_is_stored_exactly_once_in_order(
            size in 0u64..600,
            part_size in 1u64..64,
            concurrency in 0usize..12,
            budget_parts in 1u64..8,
            stream in any::<bool>(),
            reverse in any::<bool>(),
            faults in proptest::collection::vec(0u8..9, 0..40),
        ) {
            let budget = part_size * budget_parts;
            let o = opts().max_concurrency(concurrency).memory_budget(budget);
            let mut s = if stream { Sim::stream(size, &o, streaming(part_size)) } else { Sim::sized(size, &o, streaming(part_size)) };
            s.reverse = reverse;
            let clean = faults.iter().all(|f| *f >= 5);
            let mut faults = faults.into_iter();
            s.storage = Box::new(move |p, n| match faults.next() {
                Some(0) => status(503),
                Some(1) => status(429),
                Some(2) => Answer::Transport(TransportErrorKind::NoResponse),
                Some(3) => Answer::Status(200, None, vec![]),
                Some(4) => Answer::Hang,
                _ => ok(&format!("\"{}-{}\"", p.part.unwrap(), n)),
            });
            let r = s.run();
            let cap = hotdata_core::upload::effective_in_flight(concurrency, budget, part_size);
            prop_assert!(s.max_puts_in_flight <= cap, "{} > {}", s.max_puts_in_flight, cap);
            prop_assert!(s.max_held <= budget, "held {} > budget {}", s.max_held, budget);
            if let Err(e) = r {
                // Only exhaustion of 4 rounds may end it, never a half-finalized upload.
                prop_assert!(e.is_exhausted(), "{e:?}");
                prop_assert!(s.finalizes.is_empty());
                return Ok(());
            }
            let expected = size.div_ceil(part_size).max(1);
            // The last successful PUT of each part is what storage keeps.
            let mut stored: BTreeMap<u32, (Bytes, String)> = BTreeMap::new();
            let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
            for p in &s.puts {
                let n = p.part.unwrap();
                *counts.entry(n).or_default() += 1;
                prop_assert!(p.body.len() as u64 <= part_size);
                prop_assert_eq!(p.headers["content-length"].to_str().unwrap(), p.body.len().to_string());
                stored.insert(n, (p.body.clone(), format!("\"{}-{}\"", n, counts[&n])));
            }
            prop_assert_eq!(stored.len() as u64, expected);
            let mut all = Vec::new();
            for (i, (n, (body, _))) in stored.iter().enumerate() {
                prop_assert_eq!(*n as usize, i + 1);
                if (*n as u64) < expected { prop_assert_eq!(body.len() as u64, part_size); }
                all.extend_from_slice(body);
            }
            prop_assert_eq!(&all, &s.data);
            if clean {
                let sent: usize = s.puts.iter().map(|p| p.body.len()).sum();
                prop_assert_eq!(sent as u64, size, "without faults every byte is sent exactly once");
            }
            let listed = s.finalize_parts();
            prop_assert_eq!(s.finalizes.len(), 1);
            let want: Vec<(i64, String)> = stored.iter().map(|(n, (_, e))| (*n as i64, e.clone())).collect();
            prop_assert_eq!(listed, want);
            let progress = s.progress();
            prop_assert!(progress.windows(2).all(|w| w[0].0 <= w[1].0));
            prop_assert_eq!(progress.last().unwrap().0, size);
        }
    }
}
