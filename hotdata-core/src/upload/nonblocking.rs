//! The async driver: [`Client::upload_file`] and [`Client::resume_upload`] on an async
//! client.
//!
//! Concurrency without spawning: the requests in flight are futures in a small join set
//! polled by the upload's own future, beside one sleep of the runtime for the machine's
//! next timeout. It runs on any executor, and in the browser.

use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use super::machine::{PutResponse, RequestId, UploadAction, UploadMachine};
use super::source::{AsyncUploadSource, Opened, read_range};
use super::{ResumeState, UploadError, UploadErrorKind, UploadOptions};
use crate::Error;
use crate::client::{Async, Client};
use crate::models::{FinalizeUploadResponse, MintUploadPartsResponse};
use crate::retry::RetryPolicy;
use crate::transport::{AsyncTransport, BoxFuture, HttpRequest, SendOptions, TransportError};

enum Msg {
    Read(RequestId, std::io::Result<Bytes>),
    Mint(RequestId, Result<MintUploadPartsResponse, Error>),
    Put(RequestId, Result<PutResponse, TransportError>),
}

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
    Answer(Msg),
    Timer,
    Sent,
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
    sent: AtomicU64,
    gate: std::sync::Mutex<(u64, Option<std::task::Waker>)>,
}

/// How far the transport has read the bodies of the PUTs in flight, and the driver's waker
/// to call when it moves.
#[derive(Default)]
struct SentBytes {
    slots: std::sync::Mutex<Vec<(RequestId, Arc<Slot>)>>,
    moved: AtomicBool,
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl SentBytes {
    fn set_waker(&self, waker: &std::task::Waker) {
        super::store_waker(&self.waker, waker);
    }

    fn forget(&self, id: RequestId) {
        if let Ok(mut c) = self.slots.lock() {
            c.retain(|(i, _)| *i != id);
        }
    }

    /// Tells the machine how far each body was read, and lets waiting bodies go on.
    fn report(&self, m: &mut UploadMachine) {
        if self.moved.swap(false, Ordering::AcqRel)
            && let Ok(slots) = self.slots.lock()
        {
            for (id, slot) in slots.iter() {
                let n = slot.sent.load(Ordering::Acquire);
                m.handle_sent(*id, n);
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
        struct Counting {
            body: Bytes,
            at: usize,
            slot: Arc<Slot>,
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

/// The requests in flight, polled together; a finished one leaves the set.
#[derive(Default)]
struct JoinSet {
    futures: Vec<(RequestId, BoxFuture<'static, Msg>)>,
}

impl JoinSet {
    fn push(&mut self, id: RequestId, f: BoxFuture<'static, Msg>) {
        self.futures.push((id, f));
    }

    fn remove(&mut self, id: RequestId) {
        self.futures.retain(|(i, _)| *i != id);
    }

    fn is_empty(&self) -> bool {
        self.futures.is_empty()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Msg>> {
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
    pub async fn upload_file(
        &self,
        source: impl Into<AsyncUploadSource>,
        options: UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        if options.is_cancelled() {
            return Err(UploadError::new(UploadErrorKind::Cancelled, "upload cancelled by caller"));
        }
        let (mut opened, spec) = Opened::nonblocking(source.into());
        let machine = UploadMachine::new(spec.with_metadata(&options), &options);
        let result = self.drive_upload(machine, &mut opened, &options).await;
        #[cfg(feature = "legacy")]
        if let Err(e) = &result
            && super::legacy::wants_fallback(e, &options)
            && let Some(source) = opened.into_async()
        {
            return self.upload_stream(source).await.map(super::legacy::as_finalized);
        }
        result
    }

    /// Continues a failed multipart upload from `state` ([`UploadError::resume_state`]):
    /// parts already stored are not sent again. `source` is the same source, from its start
    /// (a stream is read past the stored parts).
    pub async fn resume_upload(
        &self,
        state: ResumeState,
        source: impl Into<AsyncUploadSource>,
        options: UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let (mut opened, spec) = Opened::nonblocking(source.into());
        let machine = UploadMachine::resume(state, spec.with_metadata(&options), &options);
        self.drive_upload(machine, &mut opened, &options).await
    }

    async fn drive_upload(
        &self,
        mut m: UploadMachine,
        source: &mut Opened,
        options: &UploadOptions,
    ) -> Result<FinalizeUploadResponse, UploadError> {
        let (transport, rt) = self.async_parts();
        let mut set = JoinSet::default();
        let sent = Arc::new(SentBytes::default());
        let mut cancel_seen = false;
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
                        let r = self.uploads().create_session(request).send().await;
                        m.handle_session(r, rt.now());
                    }
                    UploadAction::ReadAt { id, offset, len } => match &*source {
                        // Ranged sources (files, blobs) are read concurrently, beside the PUTs.
                        Opened::Ranged(r) => {
                            let r = r.clone();
                            set.push(
                                id,
                                Box::pin(async move { Msg::Read(id, read_range(&*r, offset, len).await) }),
                            );
                        }
                        Opened::Bytes(b) => {
                            m.handle_read(id, Ok(super::slice_range(b, offset, len)), rt.now())
                        }
                        _ => {
                            let e = std::io::Error::other("a stream cannot be read by range");
                            m.handle_read(id, Err(e), rt.now())
                        }
                    },
                    UploadAction::ReadNext { id, len } => {
                        let r = source.read_next_async(len).await;
                        m.handle_read(id, r, rt.now());
                    }
                    UploadAction::Mint { id, upload_id, token, request, .. } => {
                        let call = self.uploads().mint_parts(upload_id, token, request).into_future();
                        set.push(id, Box::pin(async move { Msg::Mint(id, call.await) }));
                    }
                    UploadAction::Put { id, request, options, .. } => {
                        let transport = transport.clone();
                        let request = if transport.supports_streaming_bodies() {
                            sent.wrap(request, id)
                        } else {
                            request
                        };
                        set.push(
                            id,
                            Box::pin(
                                async move { Msg::Put(id, put_async(&*transport, request, &options).await) },
                            ),
                        );
                    }
                    UploadAction::Abort { id } => {
                        set.remove(id);
                        sent.forget(id);
                    }
                    UploadAction::Finalize { id, upload_id, token, request } => {
                        let r = self
                            .uploads()
                            .finalize(upload_id, token, request)
                            .retry(RetryPolicy::none())
                            .send()
                            .await;
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
            let timer = m.poll_timeout();
            if set.is_empty() && timer.is_none() {
                return Err(UploadError::new(
                    UploadErrorKind::Cancelled,
                    "the upload stalled with nothing to do",
                ));
            }
            // The sleep is made only once no answer is ready, so a runtime whose sleeps act
            // when they are made (a manual test clock) sees exactly the waits that happen.
            let mut sleep: Option<BoxFuture<'static, ()>> = None;
            let woken = std::future::poll_fn(|cx| {
                sent.set_waker(cx.waker());
                if let Some(token) = options.cancel.as_ref().filter(|_| !cancel_seen) {
                    token.register(cx.waker());
                    if token.is_cancelled() {
                        return Poll::Ready(Woken::Cancelled);
                    }
                }
                if sent.moved.load(Ordering::Acquire) {
                    return Poll::Ready(Woken::Sent);
                }
                if let Poll::Ready(Some(msg)) = set.poll_next(cx) {
                    return Poll::Ready(Woken::Answer(msg));
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
            .await;
            let now = rt.now();
            match woken {
                Woken::Answer(Msg::Read(id, r)) => m.handle_read(id, r, now),
                Woken::Answer(Msg::Mint(id, r)) => m.handle_mint(id, r, now),
                Woken::Answer(Msg::Put(id, r)) => {
                    sent.report(&mut m);
                    sent.forget(id);
                    m.handle_put(id, r, now)
                }
                Woken::Timer => m.handle_timeout(now),
                Woken::Sent => sent.report(&mut m),
                // The loop's top tells the machine; with nothing in flight it ends at once.
                Woken::Cancelled => cancel_seen = true,
            }
        }
    }
}
