//! Streamed bodies bounded by an idle timeout ([`SendOptions::body_idle_timeout`]), on ureq.
//!
//! ureq bounds a request with total budgets (global, per call, and one per phase: resolve,
//! connect, sending, the response head, the body) and with `timeout_per_read`: a bound on
//! each read of the socket, restarted for every read, that ignores the time the application
//! spends between reads. That last one is an idle timeout, and it bounds a stalled body on a
//! blocking socket (a reader wrapper could not: nothing interrupts a read that blocks). A
//! streamed call is therefore sent with no global budget (it would run on into the body) and
//! with `timeout_per_read` set to the idle timeout.
//!
//! The per-read bound also covers the reads of the response head, where only the call's
//! timeout may apply: a query answered as Arrow runs before its head is sent, for longer
//! than the idle timeout maybe. ureq's stable API cannot lift it for one phase, so the
//! transport's own agents wrap every connection in [`HeadPhase`], through ureq's
//! `unversioned` transport API (hence the exact version pin on ureq in this crate's
//! manifest): while `Agent::run` waits for a streamed call's head on this thread
//! ([`waiting_for_head`]), each wait of the connection loses its per-read bound and is cut
//! to what is left of the call's timeout, counted from the start of the call; once `run` has
//! returned the head, the body's reads pass through untouched and ureq's per-read bound
//! applies. Resolving and connecting keep their own budgets (the connect timeout; resolving
//! is given the call's timeout).
//!
//! An agent a caller brought ([`UreqTransport::with_agent`](crate::UreqTransport::with_agent))
//! has its own connector, which this crate cannot wrap: there the head is bounded by the
//! call's timeout per phase (sending, then waiting for the head) and each wait for its bytes
//! by the idle timeout too.
//!
//! [`SendOptions::body_idle_timeout`]: hotdata_core::SendOptions::body_idle_timeout

use std::cell::Cell;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

thread_local! {
    /// Set while `Agent::run` waits for the head of a streamed call on this thread.
    static HEAD: Cell<Option<Head>> = const { Cell::new(None) };
}

/// A streamed call waiting for its head.
#[derive(Debug, Clone, Copy)]
struct Head {
    /// When the call's timeout runs out (`None`: it has none).
    deadline: Option<Instant>,
}

/// Marks this thread as waiting for a streamed call's head, until dropped.
#[must_use]
pub(crate) struct WaitingForHead(Option<Head>);

/// The head of a streamed call is awaited on this thread, within `timeout` from now.
pub(crate) fn waiting_for_head(timeout: Option<Duration>) -> WaitingForHead {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    WaitingForHead(HEAD.replace(Some(Head { deadline })))
}

impl Drop for WaitingForHead {
    fn drop(&mut self) {
        HEAD.set(self.0);
    }
}

/// The bound of one wait of a connection: while a streamed call's head is awaited, no
/// per-read bound, and no later than the call's deadline; otherwise as ureq asks.
fn bound(timeout: NextTimeout) -> Result<NextTimeout, ureq::Error> {
    let Some(head) = HEAD.get() else { return Ok(timeout) };
    let mut timeout = timeout;
    timeout.per_read = None;
    if let Some(deadline) = head.deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ureq::Error::Timeout(ureq::Timeout::Global));
        }
        let left = UreqDuration::from(left);
        if left < timeout.after {
            timeout.after = left;
            timeout.reason = ureq::Timeout::Global;
        }
    }
    Ok(timeout)
}

/// The last connector of the transport's own agents: wraps each connection (after TLS) in
/// [`HeadPhaseTransport`].
#[derive(Debug)]
pub(crate) struct HeadPhase;

impl Connector<Box<dyn Transport>> for HeadPhase {
    type Out = HeadPhaseTransport;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| HeadPhaseTransport { inner }))
    }
}

/// A connection whose waits are bounded by [`bound`].
#[derive(Debug)]
pub(crate) struct HeadPhaseTransport {
    inner: Box<dyn Transport>,
}

impl Transport for HeadPhaseTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.inner.transmit_output(amount, bound(timeout)?)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.await_input(bound(timeout)?)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(after: Duration, per_read: Option<Duration>) -> NextTimeout {
        NextTimeout {
            after: after.into(),
            reason: ureq::Timeout::RecvResponse,
            per_read: per_read.map(Into::into),
            ..NextTimeout::default()
        }
    }

    #[test]
    fn while_a_head_is_awaited_waits_lose_the_per_read_bound_and_end_at_the_deadline() {
        let idle = Some(Duration::from_millis(300));
        let ureq_asks = asked(Duration::from_secs(100), idle);
        assert_eq!(bound(ureq_asks).unwrap(), ureq_asks, "no streamed head awaited: as ureq asks");
        {
            let _head = waiting_for_head(Some(Duration::from_secs(5)));
            let t = bound(ureq_asks).unwrap();
            assert_eq!(t.per_read, None);
            assert!(t.after <= UreqDuration::from(Duration::from_secs(5)), "{t:?}");
            assert_eq!(t.reason, ureq::Timeout::Global);
            // A phase budget shorter than what is left of the call stays.
            let short = asked(Duration::from_millis(10), idle);
            assert_eq!(bound(short).unwrap().after, short.after);
            assert_eq!(bound(short).unwrap().reason, ureq::Timeout::RecvResponse);
        }
        assert_eq!(bound(ureq_asks).unwrap(), ureq_asks, "the body's reads: as ureq asks");
        {
            let _head = waiting_for_head(None);
            let t = bound(ureq_asks).unwrap();
            assert_eq!((t.per_read, t.after), (None, ureq_asks.after), "no timeout: no deadline");
        }
        let _head = waiting_for_head(Some(Duration::ZERO));
        let e = bound(ureq_asks).unwrap_err();
        assert!(matches!(e, ureq::Error::Timeout(ureq::Timeout::Global)), "{e:?}");
    }
}
