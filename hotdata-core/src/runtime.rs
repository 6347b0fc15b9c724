//! Time and sleep, injected.
//!
//! The core never reads a clock or sleeps. A backend hands the client a runtime: the
//! monotonic time (a [`Duration`] since an arbitrary origin, so no platform `Instant` type
//! is needed on wasm), the wall clock (for `Retry-After` dates), and a way to sleep. Tests
//! use [`crate::testing::ManualRuntime`], whose sleeps advance a manual clock instantly.

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
}
