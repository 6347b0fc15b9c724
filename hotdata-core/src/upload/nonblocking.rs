//! The async driver: [`Client::upload_file`] and [`Client::resume_upload`] on an async
//! client.
//!
//! The machine runs inside the shared [`DriverCore`] (`driver.rs`). Concurrency without
//! spawning: the work in flight (part reads of a ranged source, mints, PUTs) is futures in
//! a small join set polled by the upload's own future, beside one sleep of the runtime for
//! the machine's next timeout. It runs on any executor, and in the browser.

use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;

use super::driver::{Answer, DriverCore, Inline, Spawn, Step};
use super::machine::{PutResponse, RequestId, UploadMachine};
use super::source::{AsyncUploadSource, Opened, read_range};
use super::{ResumeState, UploadError, UploadErrorKind, UploadOptions};
use crate::client::{Async, Client};
use crate::models::FinalizeUploadResponse;
use crate::runtime::AsyncRuntime;
use crate::transport::{AsyncTransport, BoxFuture, HttpRequest, SendOptions, TransportError};

/// Sends a storage PUT and reads its answer.
async fn put_async(
    transport: &dyn AsyncTransport,
    request: HttpRequest,
    options: &SendOptions,
) -> Result<PutResponse, TransportError> {
    let response = transport.send(request, options).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?;
    Ok(PutResponse::from_parts(parts, body))
}

/// What woke the driver.
enum Woken {
    /// Work in flight finished.
    Answer(Answer),
    /// The machine's timeout came.
    Timer,
    /// A counted part body moved.
    Sent,
    /// The caller cancelled.
    Cancelled,
}

/// How far a counted part body may run ahead of the progress the driver has taken in
/// (1 MiB): the body then waits for the driver, so progress moves at least this finely even
/// when the connection and the upload share one thread.
const SENT_WINDOW: u64 = 1024 * 1024;

/// One counted part body: how far the transport has read it, how far the driver has taken
/// that in, and the body's waker while it waits for the driver.
#[derive(Default)]
struct Slot {
    /// Bytes the transport has read.
    sent: AtomicU64,
    /// Bytes the driver has taken in, and the body's waker while it waits for the driver.
    gate: std::sync::Mutex<(u64, Option<std::task::Waker>)>,
}

/// How far the transport has read the bodies of the PUTs in flight, and the driver's waker
/// to call when it moves.
#[derive(Default)]
struct SentBytes {
    /// The counted bodies of the PUTs in flight.
    slots: std::sync::Mutex<Vec<(RequestId, Arc<Slot>)>>,
    /// A body moved since the driver last looked.
    moved: AtomicBool,
    /// The driver's waker.
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl SentBytes {
    /// Keeps the driver's waker, to wake it when a body moves.
    fn set_waker(&self, waker: &std::task::Waker) {
        super::store_waker(&self.waker, waker);
    }

    /// Stops counting the body of `id` (its PUT is over or dropped).
    fn forget(&self, id: RequestId) {
        if let Ok(mut c) = self.slots.lock() {
            c.retain(|(i, _)| *i != id);
        }
    }

    /// Tells the machine how far each body was read, and lets waiting bodies go on.
    fn report(&self, core: &mut DriverCore<'_>, now: Duration) {
        if self.moved.swap(false, Ordering::AcqRel)
            && let Ok(slots) = self.slots.lock()
        {
            for (id, slot) in slots.iter() {
                let n = slot.sent.load(Ordering::Acquire);
                core.answer(Answer::Sent(*id, n), now);
                if let Ok(mut gate) = slot.gate.lock() {
                    gate.0 = n;
                    if let Some(w) = gate.1.take() {
                        w.wake();
                    }
                }
            }
        }
    }

    /// The request with its body as a stream of 64 KiB slices that counts what was read.
    fn wrap(self: &Arc<Self>, request: HttpRequest, id: RequestId) -> HttpRequest {
        /// The body, how far it was read, and where to report it.
        struct Counting {
            /// The part body.
            body: Bytes,
            /// Bytes handed to the transport so far.
            at: usize,
            /// This body's counter.
            slot: Arc<Slot>,
            /// Every body's counters, and the driver's waker.
            shared: Arc<SentBytes>,
        }
        impl Stream for Counting {
            type Item = std::io::Result<Bytes>;
            fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                if let Ok(mut gate) = self.slot.gate.lock()
                    && self.at as u64 >= gate.0 + SENT_WINDOW
                {
                    gate.1 = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                let end = self.body.len().min(self.at + 64 * 1024);
                if end == self.at {
                    return Poll::Ready(None);
                }
                let chunk = self.body.slice(self.at..end);
                self.at = end;
                self.slot.sent.store(end as u64, Ordering::Release);
                self.shared.moved.store(true, Ordering::Release);
                if let Ok(w) = self.shared.waker.lock()
                    && let Some(w) = w.as_ref()
                {
                    w.wake_by_ref();
                }
                Poll::Ready(Some(Ok(chunk)))
            }
        }
        let (parts, body) = request.into_parts();
        let body = match body {
            crate::RequestBody::Bytes(b) if !b.is_empty() => b,
            other => return HttpRequest::from_parts(parts, other),
        };
        let slot = Arc::new(Slot::default());
        if let Ok(mut c) = self.slots.lock() {
            c.push((id, slot.clone()));
        }
        let len = Some(body.len() as u64);
        let stream = Counting { body, at: 0, slot, shared: self.clone() };
        HttpRequest::from_parts(
            parts,
            crate::RequestBody::Streaming(crate::body::StreamingBody::from_stream(stream, len)),
        )
    }
}

/// The work in flight, polled together; a finished one leaves the set.
#[derive(Default)]
struct JoinSet {
    /// The futures, by request.
    futures: Vec<(RequestId, BoxFuture<'static, Answer>)>,
}

impl JoinSet {
    /// Adds the work of `id`.
    fn push(&mut self, id: RequestId, f: BoxFuture<'static, Answer>) {
        self.futures.push((id, f));
    }

    /// Drops the work of `id`, if it is in flight.
    fn remove(&mut self, id: RequestId) {
        self.futures.retain(|(i, _)| *i != id);
    }

    /// Polls every future; the first one ready leaves the set with its answer (`None`: the
    /// set is empty).
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        for i in 0..self.futures.len() {
            if let Poll::Ready(msg) = self.futures[i].1.as_mut().poll(cx) {
                drop(self.futures.remove(i));
                return Poll::Ready(Some(msg));
            }
        }
        if self.futures.is_empty() { Poll::Ready(None) } else { Poll::Pending }
    }
}

impl Client<Async> {
    /// Uploads `source` straight to storage and finalizes it; returns the finalized upload,
    /// ready to be loaded into a table. See the [module docs](crate::upload).
    ///
    /// `source` is a path (`&str`, `String`, `&Path`, `PathBuf`: read part by part through
    /// the runtime's [`AsyncRuntime::spawn_blocking`], its name and the content type its
    /// extension implies sent unless `options` set them), bytes (`Vec<u8>`, `Bytes`,
    /// `&'static [u8]`), a source read by range ([`AsyncUploadSource::ranged`]; in the
    /// browser `hotdata_wasm::BlobSource`, whose `File` name and type are sent the same
    /// way) or a stream ([`AsyncUploadSource::stream`]).
    ///
    /// ```no_run
    /// # async fn run(client: hotdata_core::AsyncClient) -> Result<(), hotdata_core::upload::UploadError> {
    /// use hotdata_core::upload::UploadOptions;
    /// // Sent as `events.parquet`, `application/vnd.apache.parquet`.
    /// let done = client.upload_file("events.parquet", UploadOptions::new()).await?;
    /// println!("{}", done.upload_id);
    /// # Ok(()) }
    /// ```
    pub async fn upload_file(
        &self,
        source: impl Into<AsyncUploadSource>,
        options: UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        if options.is_cancelled() {
            return Err(UploadError::new(UploadErrorKind::Cancelled, "upload cancelled by caller"));
        }
        let (mut opened, spec) = Opened::nonblocking(source.into(), &self.async_parts().1).await?;
        let spec = spec.with_metadata(&options);
        #[cfg(feature = "legacy")]
        let content_type = spec.content_type.clone();
        let machine = UploadMachine::new(spec, &options);
        let result = self.drive_upload(machine, &mut opened, &options).await;
        #[cfg(feature = "legacy")]
        if let Err(e) = &result
            && super::legacy::wants_fallback(e, &options)
        {
            return self
                .upload_stream_opened_async(opened, content_type)
                .await
                .map(super::legacy::as_finalized);
        }
        result
    }

    /// Continues a failed multipart upload from `state` ([`UploadError::resume_state`]):
    /// parts already stored are not sent again. `source` is the same source, from its start
    /// (a stream is read past the stored parts), in any form
    /// [`upload_file`](Self::upload_file) takes.
    pub async fn resume_upload(
        &self,
        state: ResumeState,
        source: impl Into<AsyncUploadSource>,
        options: UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let (mut opened, spec) = Opened::nonblocking(source.into(), &self.async_parts().1).await?;
        let machine = UploadMachine::resume(state, spec.with_metadata(&options), &options);
        self.drive_upload(machine, &mut opened, &options).await
    }

    /// Runs `machine` to its end: inline work awaited here, the rest in the join set.
    async fn drive_upload(
        &self,
        machine: UploadMachine,
        source: &mut Opened,
        options: &UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let (transport, rt) = self.async_parts();
        // Ranged sources (files, blobs) are read concurrently, beside the PUTs.
        let mut core = DriverCore::new(machine, options, matches!(source, Opened::Ranged(_)));
        let mut set = JoinSet::default();
        let sent = Arc::new(SentBytes::default());
        let mut cancel_seen = false;
        loop {
            let step = core.next(rt.now());
            let timer = match step {
                Step::Inline(work) => {
                    let answer = match work {
                        Inline::CreateSession(endpoint) => Answer::Session(self.call(endpoint).send().await),
                        Inline::ReadAt { id, offset, len } => Answer::Read(id, source.read_at(offset, len)),
                        Inline::ReadNext { id, len } => Answer::Read(id, source.read_next_async(len).await),
                        Inline::Finalize { id, endpoint, retry } => {
                            Answer::Finalize(id, self.call(endpoint).retry(retry).send().await)
                        }
                    };
                    core.answer(answer, rt.now());
                    continue;
                }
                Step::Spawn(work) => {
                    let (id, future) = self.job(work, source, &transport, &sent);
                    set.push(id, future);
                    continue;
                }
                Step::Abort(id) => {
                    set.remove(id);
                    sent.forget(id);
                    core.forget(id);
                    continue;
                }
                Step::Sleep(at) => Some(at),
                Step::Wait(timer) => timer,
                Step::Done(result) => return result,
            };
            let woken =
                wait(&mut set, &sent, &*rt, timer, options.cancel.as_ref().filter(|_| !cancel_seen)).await;
            let now = rt.now();
            match woken {
                Woken::Answer(answer) => {
                    if let Answer::Put(id, _) = &answer {
                        sent.report(&mut core, now);
                        sent.forget(*id);
                    }
                    core.answer(answer, now);
                }
                Woken::Timer => core.answer(Answer::Timeout, now),
                Woken::Sent => sent.report(&mut core, now),
                // The next step tells the machine; with nothing in flight it ends at once.
                Woken::Cancelled => cancel_seen = true,
            }
        }
    }

    /// The future of `work`: a read of the ranged source, a mint through the client, or a
    /// PUT straight to the transport (its body counted when the transport streams bodies).
    fn job(
        &self,
        work: Spawn,
        source: &Opened,
        transport: &Arc<dyn AsyncTransport>,
        sent: &Arc<SentBytes>,
    ) -> (RequestId, BoxFuture<'static, Answer>) {
        match work {
            Spawn::ReadAt { id, offset, len } => {
                let ranged = match source {
                    Opened::Ranged(r) => Some(r.clone()),
                    _ => None,
                };
                let read = async move {
                    match ranged {
                        Some(r) => read_range(&*r, offset, len).await,
                        None => Err(std::io::Error::other("only a ranged source is read beside the PUTs")),
                    }
                };
                (id, Box::pin(async move { Answer::Read(id, read.await) }))
            }
            Spawn::Mint { id, endpoint } => {
                let call = self.call(endpoint).into_future();
                (id, Box::pin(async move { Answer::Mint(id, call.await) }))
            }
            Spawn::Put { id, request, options } => {
                let transport = transport.clone();
                let request =
                    if transport.supports_streaming_bodies() { sent.wrap(request, id) } else { request };
                (
                    id,
                    Box::pin(async move { Answer::Put(id, put_async(&*transport, request, &options).await) }),
                )
            }
        }
    }
}

/// Waits for what comes first: the caller cancelling (`cancel`, until seen), a counted body
/// moving, an answer from the set, or `timer`. The sleep is made only once no answer is
/// ready, so a runtime whose sleeps act when they are made (a manual test clock) sees
/// exactly the waits that happen.
async fn wait(
    set: &mut JoinSet,
    sent: &SentBytes,
    rt: &dyn AsyncRuntime,
    timer: Option<Duration>,
    cancel: Option<&super::CancelToken>,
) -> Woken {
    let mut sleep: Option<BoxFuture<'static, ()>> = None;
    std::future::poll_fn(|cx| {
        sent.set_waker(cx.waker());
        if let Some(token) = cancel {
            token.register(cx.waker());
            if token.is_cancelled() {
                return Poll::Ready(Woken::Cancelled);
            }
        }
        if sent.moved.load(Ordering::Acquire) {
            return Poll::Ready(Woken::Sent);
        }
        if let Poll::Ready(Some(answer)) = set.poll_next(cx) {
            return Poll::Ready(Woken::Answer(answer));
        }
        if sleep.is_none()
            && let Some(at) = timer
        {
            sleep = Some(rt.sleep(at.saturating_sub(rt.now())));
        }
        if let Some(s) = sleep.as_mut()
            && s.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Woken::Timer);
        }
        Poll::Pending
    })
    .await
}
