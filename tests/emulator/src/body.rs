//! The response body type: full or lazily generated, optionally slowed or truncated.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::http::Body;

/// A hyper body with fault hooks.
pub(crate) struct EmuBody {
    chunks: Box<dyn Iterator<Item = Bytes> + Send>,
    current: Option<Bytes>,
    slow: Option<(usize, Duration)>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    budget: Option<usize>,
    exact: Option<u64>,
    finished: bool,
    flushed: bool,
}

impl EmuBody {
    pub(crate) fn new(body: Body) -> EmuBody {
        let (chunks, exact): (Box<dyn Iterator<Item = Bytes> + Send>, Option<u64>) = match body {
            Body::Empty => (Box::new(std::iter::empty()), Some(0)),
            Body::Full(b) => {
                let n = b.len() as u64;
                (Box::new(std::iter::once(b)), Some(n))
            }
            Body::Stream(s) => (s, None),
        };
        EmuBody {
            chunks,
            current: None,
            slow: None,
            sleep: None,
            budget: None,
            exact,
            finished: false,
            flushed: false,
        }
    }

    /// Send in `chunk`-byte pieces with `delay` between them.
    pub(crate) fn slow(mut self, chunk: usize, delay: Duration) -> EmuBody {
        self.slow = Some((chunk.max(1), delay));
        self
    }

    /// Abort the connection after `at` bytes.
    pub(crate) fn truncate(mut self, at: usize) -> EmuBody {
        self.budget = Some(at);
        self
    }

    /// The exact length, when known.
    pub(crate) fn exact_len(&self) -> Option<u64> {
        self.exact
    }
}

impl http_body::Body for EmuBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if let Some(s) = this.sleep.as_mut() {
            if s.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.sleep = None;
        }
        if this.finished {
            return Poll::Ready(None);
        }
        if this.budget == Some(0) {
            // Let hyper flush the head and the bytes sent so far before the connection is
            // cut: an immediate error would abort it with everything still buffered, and
            // the client would see no response at all instead of a truncated body.
            if !this.flushed {
                this.flushed = true;
                this.sleep = Some(Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50))));
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.finished = true;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "emulator fault: truncated body",
            ))));
        }
        let mut piece = match this.current.take() {
            Some(c) if !c.is_empty() => c,
            _ => loop {
                match this.chunks.next() {
                    Some(c) if c.is_empty() => continue,
                    Some(c) => break c,
                    None => {
                        this.finished = true;
                        return Poll::Ready(None);
                    }
                }
            },
        };
        if let Some((size, delay)) = this.slow {
            if piece.len() > size {
                this.current = Some(piece.split_off(size));
            }
            this.sleep = Some(Box::pin(tokio::time::sleep(delay)));
        }
        if let Some(rem) = this.budget.as_mut() {
            if piece.len() >= *rem {
                piece.truncate(*rem);
                *rem = 0;
                this.current = None;
            } else {
                *rem -= piece.len();
            }
            if piece.is_empty() {
                this.finished = true;
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "emulator fault: truncated body",
                ))));
            }
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.exact == Some(0) && self.budget.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
