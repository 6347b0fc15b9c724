//! The blocking driver: [`Client::upload_file`] and [`Client::resume_upload`] on a blocking
//! client.
//!
//! The machine runs on the calling thread, which also reads the source and sends the
//! control-plane calls. Off wasm, with more than one part in flight, part PUTs and mints run
//! on scoped threads (one per request, at most the machine's in-flight bound); waits for
//! retry pauses while requests are in flight run on a short-lived sleeper thread, so every
//! wait goes through the client's runtime. With one part in flight, or on wasm, everything
//! runs on the calling thread.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use bytes::Bytes;

use super::machine::{PutResponse, RequestId, UploadAction, UploadMachine};
#[cfg(any(unix, windows))]
use super::source::read_file_at;
use super::source::{Opened, UploadSource};
use super::{ResumeState, UploadError, UploadErrorKind, UploadOptions};
use crate::Error;
use crate::body::{RequestBody, StreamingBody};
use crate::client::{Blocking, Client};
use crate::models::{FinalizeUploadResponse, MintUploadPartsResponse};
use crate::retry::RetryPolicy;
use crate::runtime::BlockingRuntime;
use crate::transport::{BlockingTransport, TransportError, collect_blocking};

/// A request to run off the driver's thread.
#[cfg(not(target_family = "wasm"))]
type Job = Box<dyn FnOnce() -> Msg + Send + 'static>;
/// A request to run (on wasm: inline).
#[cfg(target_family = "wasm")]
type Job = Box<dyn FnOnce() -> Msg + 'static>;

/// An answer coming back to the driver.
enum Msg {
    Mint(RequestId, Result<MintUploadPartsResponse, Error>),
    Put(RequestId, Result<PutResponse, TransportError>),
    /// A part read off the driver's thread.
    #[cfg_attr(not(any(unix, windows)), allow(dead_code))]
    Read(RequestId, std::io::Result<Bytes>),
    /// Bytes of a PUT's body the transport has read so far.
    Sent(RequestId, u64),
    /// A worker's job panicked (a transport or token provider did): the panic goes on on
    /// the caller's thread instead of leaving the driver waiting for an answer.
    #[cfg(not(target_family = "wasm"))]
    Panicked(Box<dyn std::any::Any + Send>),
    #[cfg_attr(target_family = "wasm", allow(dead_code))]
    Wake,
}

/// A part body handed to the transport as a reader that reports how much of it was read,
/// so progress moves within a part (the transport still sends `Content-Length`).
fn report_sent(request: crate::HttpRequest, id: RequestId, tx: Sender<Msg>) -> crate::HttpRequest {
    struct Counting {
        body: Bytes,
        at: usize,
        id: RequestId,
        tx: Sender<Msg>,
    }
    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.body.len() - self.at);
            buf[..n].copy_from_slice(&self.body[self.at..self.at + n]);
            self.at += n;
            if n > 0 {
                let _ = self.tx.send(Msg::Sent(self.id, self.at as u64));
            }
            Ok(n)
        }
    }
    let (parts, body) = request.into_parts();
    let bytes = match body {
        RequestBody::Bytes(b) if !b.is_empty() => b,
        other => return crate::HttpRequest::from_parts(parts, other),
    };
    let len = Some(bytes.len() as u64);
    let counting = Counting { body: bytes, at: 0, id, tx };
    crate::HttpRequest::from_parts(parts, RequestBody::Streaming(StreamingBody::from_reader(counting, len)))
}

/// Sends a storage PUT and reads its answer.
pub(crate) fn put_blocking(
    transport: &dyn BlockingTransport,
    request: crate::HttpRequest,
    options: &crate::SendOptions,
) -> Result<PutResponse, TransportError> {
    let response = transport.send(request, options)?;
    let (parts, body) = response.into_parts();
    let body = collect_blocking(body)?;
    Ok(PutResponse::from_parts(parts, body))
}

impl Client<Blocking> {
    /// Uploads `source` straight to storage and finalizes it; returns the finalized upload,
    /// ready to be loaded into a table. See the [module docs](crate::upload).
    ///
    /// ```no_run
    /// # fn run(client: hotdata_core::BlockingClient) -> Result<(), hotdata_core::upload::UploadError> {
    /// use hotdata_core::upload::{UploadOptions, UploadSource};
    /// let done = client.upload_file(
    ///     UploadSource::path("events.parquet"),
    ///     UploadOptions::new().on_event(|e| eprintln!("{e:?}")),
    /// )?;
    /// println!("{}", done.upload_id);
    /// # Ok(()) }
    /// ```
    pub fn upload_file(
        &self,
        source: impl Into<UploadSource>,
        options: UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        if options.is_cancelled() {
            return Err(UploadError::new(UploadErrorKind::Cancelled, "upload cancelled by caller"));
        }
        let (mut opened, spec) = Opened::blocking(source.into())?;
        let machine = UploadMachine::new(spec.with_metadata(&options), &options);
        let result = self.drive_upload(machine, &mut opened, &options);
        #[cfg(feature = "legacy")]
        if let Err(e) = &result
            && super::legacy::wants_fallback(e, &options)
        {
            return self.upload_stream_opened(opened).map(super::legacy::as_finalized);
        }
        result
    }

    /// Continues a failed multipart upload from `state` ([`UploadError::resume_state`]):
    /// parts already stored are not sent again. `source` is the same source, from its start
    /// (a reader of unknown length is read past the stored parts).
    pub fn resume_upload(
        &self,
        state: ResumeState,
        source: impl Into<UploadSource>,
        options: UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let (mut opened, spec) = Opened::blocking(source.into())?;
        let machine = UploadMachine::resume(state, spec.with_metadata(&options), &options);
        self.drive_upload(machine, &mut opened, &options)
    }

    fn drive_upload(
        &self,
        mut machine: UploadMachine,
        source: &mut Opened,
        options: &UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let threaded = options.max_concurrency.unwrap_or(super::DEFAULT_MAX_CONCURRENCY) > 1;
        let (tx, rx) = channel::<Msg>();
        #[cfg(not(target_family = "wasm"))]
        if threaded {
            return std::thread::scope(|scope| {
                let mut spawn = |job: Job| {
                    let tx = tx.clone();
                    scope.spawn(move || {
                        let msg = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                            .unwrap_or_else(Msg::Panicked);
                        let _ = tx.send(msg);
                    });
                };
                self.run_loop(&mut machine, source, options, &mut spawn, &tx, &rx, true)
            });
        }
        let _ = threaded;
        let tx2 = tx.clone();
        let mut spawn = |job: Job| {
            let _ = tx2.send(job());
        };
        self.run_loop(&mut machine, source, options, &mut spawn, &tx, &rx, false)
    }

    #[allow(clippy::too_many_arguments)] // the loop's whole context, passed once
    fn run_loop(
        &self,
        m: &mut UploadMachine,
        source: &mut Opened,
        options: &UploadOptions,
        spawn: &mut dyn FnMut(Job),
        tx: &Sender<Msg>,
        rx: &Receiver<Msg>,
        threaded: bool,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let (transport, rt) = self.blocking_parts();
        let mut jobs = 0usize;
        let mut armed: Option<Duration> = None;
        loop {
            while let Some(e) = m.poll_event() {
                options.emit(&e);
            }
            if options.is_cancelled() {
                m.cancel(rt.now());
            }
            while let Some(action) = m.poll_action(rt.now()) {
                match action {
                    UploadAction::CreateSession { request } => {
                        let r = self.uploads().create_session(request).send();
                        m.handle_session(r, rt.now());
                    }
                    UploadAction::ReadAt { id, offset, len } => {
                        match (source.positional(), usize::try_from(len)) {
                            // Parts of a file are read on the workers, in parallel.
                            #[cfg(any(unix, windows))]
                            (Some(file), Ok(n)) if threaded => {
                                jobs += 1;
                                let buf = vec![0u8; n];
                                spawn(Box::new(move || Msg::Read(id, read_file_at(&file, offset, buf))));
                            }
                            _ => {
                                let r = source.read_at(offset, len);
                                m.handle_read(id, r, rt.now());
                            }
                        }
                    }
                    UploadAction::ReadNext { id, len } => {
                        let r = source.read_next(len);
                        m.handle_read(id, r, rt.now());
                    }
                    UploadAction::Mint { id, upload_id, token, request, .. } => {
                        let call = self.uploads().mint_parts(upload_id, token, request);
                        jobs += 1;
                        spawn(Box::new(move || Msg::Mint(id, call.send())));
                    }
                    UploadAction::Put { id, request, options, .. } => {
                        let transport = transport.clone();
                        let request = if transport.supports_streaming_bodies() {
                            report_sent(request, id, tx.clone())
                        } else {
                            request
                        };
                        jobs += 1;
                        spawn(Box::new(move || Msg::Put(id, put_blocking(&*transport, request, &options))));
                    }
                    UploadAction::Abort { .. } => {}
                    UploadAction::Finalize { id, upload_id, token, request } => {
                        let r = self
                            .uploads()
                            .finalize(upload_id, token, request)
                            .retry(RetryPolicy::none())
                            .send();
                        m.handle_finalize(id, r, rt.now());
                    }
                }
                while let Some(e) = m.poll_event() {
                    options.emit(&e);
                }
            }
            while let Some(e) = m.poll_event() {
                options.emit(&e);
            }
            if let Some(result) = m.poll_result() {
                return result;
            }
            if jobs == 0 {
                let Some(at) = m.poll_timeout() else {
                    return Err(UploadError::new(
                        UploadErrorKind::Cancelled,
                        "the upload stalled with nothing to do",
                    ));
                };
                sleep_unless_cancelled(&*rt, at, options);
                m.handle_timeout(rt.now());
                continue;
            }
            if threaded
                && let Some(at) = m.poll_retry_timeout()
                && armed.is_none_or(|a| at < a)
            {
                armed = Some(at);
                let delay = at.saturating_sub(rt.now());
                spawn_sleeper(rt.clone(), tx.clone(), delay);
            }
            let Ok(msg) = rx.recv() else {
                return Err(UploadError::new(UploadErrorKind::Cancelled, "the upload's workers stopped"));
            };
            let now = rt.now();
            match msg {
                Msg::Mint(id, r) => {
                    jobs -= 1;
                    m.handle_mint(id, r, now);
                }
                Msg::Put(id, r) => {
                    jobs -= 1;
                    m.handle_put(id, r, now);
                }
                Msg::Sent(id, n) => m.handle_sent(id, n),
                Msg::Read(id, r) => {
                    jobs -= 1;
                    m.handle_read(id, r, now);
                }
                Msg::Wake => {
                    armed = None;
                    m.handle_timeout(now);
                }
                #[cfg(not(target_family = "wasm"))]
                Msg::Panicked(payload) => std::panic::resume_unwind(payload),
            }
        }
    }
}

/// How often a pause with nothing in flight (a round pause) looks at the cancel token.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Sleeps until `until`; with a cancel token, in slices, so that cancelling cuts the pause
/// short (the machine then ends the upload at once: nothing is in flight).
fn sleep_unless_cancelled(rt: &dyn BlockingRuntime, until: Duration, options: &UploadOptions) {
    loop {
        let now = rt.now();
        if now >= until || options.is_cancelled() {
            return;
        }
        let left = until - now;
        rt.sleep(if options.cancel.is_some() { left.min(CANCEL_POLL) } else { left });
    }
}

/// Wakes the driver after `delay`, through the runtime, from a detached thread (a scoped
/// one would hold the upload open until it woke).
#[cfg(not(target_family = "wasm"))]
fn spawn_sleeper(rt: Arc<dyn BlockingRuntime>, tx: Sender<Msg>, delay: Duration) {
    std::thread::spawn(move || {
        rt.sleep(delay);
        let _ = tx.send(Msg::Wake);
    });
}

#[cfg(target_family = "wasm")]
fn spawn_sleeper(_rt: Arc<dyn BlockingRuntime>, _tx: Sender<Msg>, _delay: Duration) {}
