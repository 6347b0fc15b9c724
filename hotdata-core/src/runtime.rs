//! Time, sleep and blocking work, injected.
//!
//! The core never reads a clock or sleeps. A backend hands the client a runtime: the
//! monotonic time (a [`Duration`] since an arbitrary origin, so no platform `Instant` type
//! is needed on wasm), the wall clock (for `Retry-After` dates), and a way to sleep; an
//! async runtime also says where blocking work (the file reads of an upload from a path)
//! may run ([`AsyncRuntime::spawn_blocking`]). Tests use [`crate::testing::ManualRuntime`],
//! whose sleeps advance a manual clock instantly.

use std::time::{Duration, SystemTime};

use crate::transport::{BoxFuture, MaybeSend, MaybeSync};

/// Time and sleep for the blocking client.
pub trait BlockingRuntime: Send + Sync {
    /// Monotonic time since an arbitrary, fixed origin.
    fn now(&self) -> Duration;
    /// The wall clock, used only to interpret `Retry-After` dates.
    fn wall_clock(&self) -> SystemTime;
    /// Blocks the calling thread for `duration`.
    fn sleep(&self, duration: Duration);
}

/// Time and sleep for the async client.
pub trait AsyncRuntime: MaybeSend + MaybeSync {
    /// Monotonic time since an arbitrary, fixed origin.
    fn now(&self) -> Duration;
    /// The wall clock, used only to interpret `Retry-After` dates.
    fn wall_clock(&self) -> SystemTime;
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;

    /// Runs `job`, which blocks (opening a file and reading its parts, for an upload from a
    /// path), where blocking does not hold up other tasks; the future completes once `job`
    /// has run. A `job` dropped without running, or that panics, fails the read it was for
    /// (with an I/O error; the upload fails with
    /// [`UploadErrorKind::SourceIo`](crate::upload::UploadErrorKind::SourceIo)).
    ///
    /// The default runs `job` at once, on the calling thread: correct on any executor, but it
    /// holds up the executor's thread for each read (one part, 8 MiB by default). A backend
    /// with a pool for blocking work overrides it (`hotdata-reqwest`: tokio's
    /// `spawn_blocking`). The browser has no files: there the job that opens a path fails at
    /// once, saying so, and nothing is read or sent.
    fn spawn_blocking(&self, job: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture<'static, ()> {
        job();
        Box::pin(std::future::ready(()))
    }
}
