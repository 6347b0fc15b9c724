//! The blocking driver: [`Client::upload_file`] and [`Client::resume_upload`] on a blocking
//! client.
//!
//! The machine runs on the calling thread inside the shared [`DriverCore`] (`driver.rs`),
//! which also reads the source and sends the control-plane calls. Off wasm, with more than
//! one part in flight, part PUTs, mints and file reads run on detached threads (one per job,
//! at most the machine's in-flight bound) that answer through a channel. A job the machine
//! cuts off ([`Step::Abort`]: a part past its deadline, or every part in flight when the
//! upload fails for good or is cancelled) is forgotten at once: the upload returns without
//! joining it, and the worker ends at its request's own deadline, unobserved; waits for retry
//! pauses while requests are in flight run on a short-lived sleeper thread, so every wait
//! goes through the client's runtime. With one part in flight, or on wasm, every job runs
//! on the calling thread as it is started, its answer queued on the same channel.

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use bytes::Bytes;

use super::driver::{Answer, DriverCore, Inline, Spawn, Step};
use super::machine::{PutResponse, RequestId, UploadMachine};
#[cfg(any(unix, windows))]
#[cfg(any(unix, windows))]
use super::source::read_part_at;
use super::source::{Opened, PartBuffers, UploadSource};
use super::{ResumeState, UploadError, UploadErrorKind, UploadOptions};
use crate::body::{RequestBody, StreamingBody};
use crate::client::{Blocking, Client};
use crate::models::FinalizeUploadResponse;
use crate::runtime::BlockingRuntime;
use crate::transport::{BlockingTransport, TransportError, collect_blocking};

/// A job to run off the driver's thread.
#[cfg(not(target_family = "wasm"))]
type Job = Box<dyn FnOnce() -> Answer + Send + 'static>;
/// A job to run (on wasm: inline).
#[cfg(target_family = "wasm")]
type Job = Box<dyn FnOnce() -> Answer + 'static>;

/// What comes back through the channel: an answer, or the panic of a worker's job (a
/// transport or token provider panicked), which goes on on the caller's thread instead of
/// leaving the driver waiting for an answer.
type Message = std::thread::Result<Answer>;

/// A part body handed to the transport as a reader that reports how much of it was read,
/// so progress moves within a part (the transport still sends `Content-Length`).
fn report_sent(request: crate::HttpRequest, id: RequestId, tx: Sender<Message>) -> crate::HttpRequest {
    /// The body, how far it was read, and where to report it.
    struct Counting {
        /// The part body.
        body: Bytes,
        /// Bytes read so far.
        at: usize,
        /// The PUT.
        id: RequestId,
        /// The driver's channel.
        tx: Sender<Message>,
    }
    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.body.len() - self.at);
            buf[..n].copy_from_slice(&self.body[self.at..self.at + n]);
            self.at += n;
            if n > 0 {
                let _ = self.tx.send(Ok(Answer::Sent(self.id, self.at as u64)));
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

/// The blocking driver's concurrency primitive: where jobs run, and the channel their
/// answers come back on.
struct Workers<'s> {
    /// Starts a job: on a detached thread, or at once on the driver's thread.
    spawn: &'s dyn Fn(Job),
    /// The sending side, for counted bodies and the sleeper.
    tx: Sender<Message>,
    /// Where answers come back.
    rx: Receiver<Message>,
    /// Jobs run on threads (so a retry pause needs a sleeper to wake the driver).
    threaded: bool,
    /// The buffers parts of a file are read into, reused from part to part.
    buffers: Arc<PartBuffers>,
    /// The time a sleeper is set to wake the driver at, if one is.
    armed: Option<Duration>,
    /// The caller's cancel token, looked at while waiting.
    cancel: Option<super::CancelToken>,
}

impl Workers<'_> {
    /// Waits for the next answer; with jobs on threads, a sleeper wakes the driver for a
    /// retry pause due before them ([`Answer::Timeout`]).
    fn wait(
        &mut self,
        rt: &Arc<dyn BlockingRuntime>,
        retry_timeout: Option<Duration>,
    ) -> Result<Answer, UploadError> {
        if self.threaded
            && let Some(at) = retry_timeout
            && self.armed.is_none_or(|a| at < a)
        {
            self.armed = Some(at);
            spawn_sleeper(rt.clone(), self.tx.clone(), at.saturating_sub(rt.now()));
        }
        let message = loop {
            // With a cancel token, the wait looks at it every `CANCEL_POLL` (real time: it
            // only notices a cancel, it times nothing); a cancel wakes the driver as a
            // timeout, and its next pass tells the machine, which cuts off the work.
            let Some(token) = self.cancel.as_ref().filter(|_| self.threaded) else {
                break self.rx.recv().ok();
            };
            match self.rx.recv_timeout(CANCEL_POLL) {
                Ok(m) => break Some(m),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if token.is_cancelled() => {
                    return Ok(Answer::Timeout);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
            }
        };
        match message {
            None => Err(UploadError::new(UploadErrorKind::Cancelled, "the upload's workers stopped")),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            Some(Ok(answer)) => {
                if matches!(answer, Answer::Timeout) {
                    self.armed = None;
                }
                Ok(answer)
            }
        }
    }
}

impl Client<Blocking> {
    /// Uploads `source` straight to storage and finalizes it; returns the finalized upload,
    /// ready to be loaded into a table. See the [module docs](crate::upload).
    ///
    /// `source` is a path (`&str`, `String`, `&Path`, `PathBuf`: its name and the content
    /// type its extension implies are sent unless `options` set them), bytes (`Vec<u8>`,
    /// `Bytes`, `&'static [u8]`) or a reader ([`UploadSource::seekable`],
    /// [`UploadSource::reader`]).
    ///
    /// ```no_run
    /// # fn run(client: hotdata_core::BlockingClient) -> Result<(), hotdata_core::upload::UploadError> {
    /// use hotdata_core::upload::UploadOptions;
    /// // Sent as `events.parquet`, `application/vnd.apache.parquet`.
    /// let done = client.upload_file(
    ///     "events.parquet",
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
        let spec = spec.with_metadata(&options);
        #[cfg(feature = "legacy")]
        let content_type = spec.content_type.clone();
        let machine = UploadMachine::new(spec, &options);
        let result = self.drive_upload(machine, &mut opened, &options);
        #[cfg(feature = "legacy")]
        if let Err(e) = &result
            && super::legacy::wants_fallback(e, &options)
        {
            return self.upload_stream_opened(opened, content_type).map(super::legacy::as_finalized);
        }
        result
    }

    /// Continues a failed multipart upload from `state` ([`UploadError::resume_state`]):
    /// parts already stored are not sent again. `source` is the same source, from its start
    /// (a reader of unknown length is read past the stored parts), in any form
    /// [`upload_file`](Self::upload_file) takes.
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

    /// Runs `machine` to its end: jobs on detached threads when more than one part may be
    /// in flight or a cancel token is set (off wasm), else on this thread.
    fn drive_upload(
        &self,
        machine: UploadMachine,
        source: &mut Opened,
        options: &UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        // With a cancel token, even one part at a time runs on a worker, so that a cancel
        // reaches a driver whose only PUT is stalled.
        let threaded =
            options.max_concurrency.unwrap_or(super::DEFAULT_MAX_CONCURRENCY) > 1 || options.cancel.is_some();
        // Parts of a file are read on the workers, in parallel.
        let core = DriverCore::new(machine, options, threaded && source.positional().is_some());
        let (tx, rx) = channel::<Message>();
        #[cfg(not(target_family = "wasm"))]
        if threaded {
            // Detached, not scoped: a worker stuck in a PUT the machine cut off must not hold
            // the upload open. It ends at its request's own deadline (the transport enforces
            // `SendOptions::timeout`); its answer then goes nowhere.
            let sender = tx.clone();
            let spawn = move |job: Job| {
                let tx = sender.clone();
                std::thread::spawn(move || {
                    let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
                });
            };
            let cancel = options.cancel.clone();
            let buffers = Arc::default();
            let workers = Workers { spawn: &spawn, tx, rx, threaded: true, buffers, armed: None, cancel };
            return self.run(core, source, workers);
        }
        let sender = tx.clone();
        let spawn = move |job: Job| {
            let _ = sender.send(Ok(job()));
        };
        let buffers = Arc::default();
        self.run(
            core,
            source,
            Workers { spawn: &spawn, tx, rx, threaded: false, buffers, armed: None, cancel: None },
        )
    }

    /// The driver's loop: each step of the core performed here, started on a worker, or
    /// waited for.
    fn run(
        &self,
        mut core: DriverCore<'_>,
        source: &mut Opened,
        mut workers: Workers<'_>,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let (transport, rt) = self.blocking_parts();
        loop {
            let answer = match core.next(rt.now()) {
                Step::Inline(work) => match work {
                    Inline::CreateSession(endpoint) => Answer::Session(self.call(endpoint).send()),
                    Inline::ReadAt { id, offset, len } => Answer::Read(id, source.read_at(offset, len)),
                    Inline::ReadNext { id, len } => Answer::Read(id, source.read_next(len)),
                    Inline::Finalize { id, endpoint, retry } => {
                        Answer::Finalize(id, self.call(endpoint).retry(retry).send())
                    }
                },
                Step::Spawn(work) => {
                    (workers.spawn)(self.job(work, source, &transport, &workers.tx, &workers.buffers));
                    continue;
                }
                // A request cut off runs out on its detached worker, unobserved: the machine
                // ignores its answer, and nothing waits for it.
                Step::Abort(id) => {
                    core.forget(id);
                    continue;
                }
                Step::Sleep(at) => {
                    sleep_unless_cancelled(&*rt, at, core.options());
                    Answer::Timeout
                }
                Step::Wait(_) => workers.wait(&rt, core.retry_timeout())?,
                Step::Done(result) => return result,
            };
            core.answer(answer, rt.now());
        }
    }

    /// The job of `work`, to run on a worker: a positional read of the file (its buffer
    /// allocated here), a mint through the client, or a PUT straight to the transport
    /// (its body counted when the transport streams bodies).
    fn job(
        &self,
        work: Spawn,
        source: &mut Opened,
        transport: &Arc<dyn BlockingTransport>,
        tx: &Sender<Message>,
        buffers: &Arc<PartBuffers>,
    ) -> Job {
        match work {
            Spawn::ReadAt { id, offset, len } => {
                #[cfg(any(unix, windows))]
                if let (Some(file), Ok(n)) = (source.positional(), usize::try_from(len)) {
                    // The buffer is taken on the driver's thread, not the worker's.
                    let (buf, buffers) = (buffers.take(n), buffers.clone());
                    return Box::new(move || Answer::Read(id, read_part_at(&file, offset, buf, &buffers)));
                }
                #[cfg(not(any(unix, windows)))]
                let _ = buffers;
                let read = source.read_at(offset, len);
                Box::new(move || Answer::Read(id, read))
            }
            Spawn::Mint { id, endpoint } => {
                let call = self.call(endpoint);
                Box::new(move || Answer::Mint(id, call.send()))
            }
            Spawn::Put { id, request, options } => {
                let transport = transport.clone();
                let request = if transport.supports_streaming_bodies() {
                    report_sent(request, id, tx.clone())
                } else {
                    request
                };
                Box::new(move || Answer::Put(id, put_blocking(&*transport, request, &options)))
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
fn spawn_sleeper(rt: Arc<dyn BlockingRuntime>, tx: Sender<Message>, delay: Duration) {
    std::thread::spawn(move || {
        rt.sleep(delay);
        let _ = tx.send(Ok(Answer::Timeout));
    });
}

/// No sleeper on wasm: jobs run inline there, so the driver never waits with work on a
/// thread.
#[cfg(target_family = "wasm")]
fn spawn_sleeper(_rt: Arc<dyn BlockingRuntime>, _tx: Sender<Message>, _delay: Duration) {}
