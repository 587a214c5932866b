//! Connections that cost bounded work whoever opens them (review finding M1).
//!
//! poem gives hyper no timer, so hyper's header-read timeout never fires, and poem's idle
//! timeout is reset by every byte: a client sending one header line every few seconds holds a
//! connection (and a file descriptor) forever. [`GuardedAcceptor`] wraps every accepted
//! connection in [`Guarded`], which watches the bytes as they pass:
//!
//! - A request head (up to the blank line that ends the headers) must arrive whole within
//!   [`Limits::head`] of its first byte, and a new connection must start one within that time.
//! - Between requests, a connection idle for [`Limits::keep_alive`] is closed.
//! - HTTP/2 without TLS (h2c) is refused: it multiplexes streams that this accounting cannot see,
//!   and providers and Discord speak HTTP/1.1. Behind a TLS proxy, the proxy speaks HTTP/1.1 to us.
//!
//! A read that misses its deadline fails with `TimedOut`, and hyper closes the connection. Bodies
//! are bounded by the handlers (size and [`Limits::body`]). The acceptor also backs off for
//! 100 ms when accepting fails (EMFILE, ENFILE), instead of retrying in a tight loop.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Time limits on what a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head must arrive whole within this of its first byte (or of the connection).
    pub head: Duration,
    /// A connection with no request in progress is closed after this.
    pub keep_alive: Duration,
    /// A request body must arrive whole within this (enforced by the handlers).
    pub body: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: Duration::from_secs(10),
            keep_alive: Duration::from_secs(60),
            body: Duration::from_secs(30),
        }
    }
}

/// Accepts like `inner`, wrapping each connection in [`Guarded`].
#[derive(Debug)]
pub struct GuardedAcceptor<A> {
    inner: A,
    limits: Limits,
}

impl<A> GuardedAcceptor<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        GuardedAcceptor { inner, limits }
    }
}

impl<A: Acceptor> Acceptor for GuardedAcceptor<A> {
    type Io = Guarded<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        loop {
            match self.inner.accept().await {
                Ok((io, local, remote, scheme)) => {
                    return Ok((Guarded::new(io, self.limits), local, remote, scheme));
                }
                Err(e) => {
                    // Out of file descriptors, or the like: wait for some to close rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request head; `matched` bytes of the closing `\r\n\r\n` seen so far.
    Head { matched: u8 },
    /// The head is in; the handler reads the body and answers.
    Handling,
    /// Answered; waiting for the next request.
    Idle,
}

/// A connection under [`Limits`] (see the module docs).
#[derive(Debug)]
pub struct Guarded<Io> {
    io: Io,
    limits: Limits,
    phase: Phase,
    /// Bytes read so far on the connection, up to the length of the HTTP/2 preface.
    seen: usize,
    /// When the current phase's deadline passes, if it has one.
    deadline: Option<Pin<Box<Sleep>>>,
}

/// How an HTTP/2 connection without TLS starts.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl<Io> Guarded<Io> {
    fn new(io: Io, limits: Limits) -> Self {
        let deadline = Some(Box::pin(tokio::time::sleep(limits.head)));
        Guarded { io, limits, phase: Phase::Head { matched: 0 }, seen: 0, deadline }
    }

    fn arm(&mut self, after: Duration) {
        let at = Instant::now() + after;
        match &mut self.deadline {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Follows the request cycle through `bytes` just read.
    fn saw(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.seen < H2_PREFACE.len() {
            let upto = (H2_PREFACE.len() - self.seen).min(bytes.len());
            let expected = &H2_PREFACE[self.seen..self.seen + upto];
            if bytes[..upto] == *expected && self.seen + upto == H2_PREFACE.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "HTTP/2 without TLS is not served"));
            }
            self.seen = if bytes[..upto] == *expected { self.seen + upto } else { usize::MAX };
        }
        // A body is the handler's to bound; only heads and the gaps between requests are watched.
        if self.phase == Phase::Handling {
            return Ok(());
        }
        for &b in bytes {
            if self.phase == Phase::Idle {
                self.phase = Phase::Head { matched: 0 };
                self.arm(self.limits.head);
            }
            if let Phase::Head { matched } = self.phase {
                let matched = match (matched, b) {
                    (0 | 2, b'\r') => matched + 1,
                    (1 | 3, b'\n') => matched + 1,
                    (_, b'\r') => 1,
                    _ => 0,
                };
                if matched == 4 {
                    self.phase = Phase::Handling;
                    self.deadline = None;
                } else {
                    self.phase = Phase::Head { matched };
                }
            }
        }
        Ok(())
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Guarded<Io> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(this.saw(&buf.filled()[before..])),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let expired = this.deadline.as_mut().is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if expired {
                    let what = if this.phase == Phase::Idle { "idle" } else { "request head" };
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Guarded<Io> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // A final answer (not `100 Continue`) ends the request: the connection is idle until
        // the next one starts.
        if this.phase == Phase::Handling
            && buf.starts_with(b"HTTP/1.")
            && buf.get(9..10).is_none_or(|c| c != b"1")
        {
            this.phase = Phase::Idle;
            let keep_alive = this.limits.keep_alive;
            this.arm(keep_alive);
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> Guarded<tokio::io::Empty> {
        Guarded::new(tokio::io::empty(), Limits::default())
    }

    #[tokio::test]
    async fn a_head_split_across_reads_is_followed_to_its_blank_line() {
        let mut g = guarded();
        for chunk in [&b"GET /health HTTP/1.1\r\nHost: x\r"[..], b"\n\r", b"\n"] {
            g.saw(chunk).expect("http/1.1");
        }
        assert_eq!(g.phase, Phase::Handling);
        assert!(g.deadline.is_none(), "no head deadline while the handler works");
    }

    #[tokio::test]
    async fn h2c_is_refused_and_http1_is_not_mistaken_for_it() {
        let mut g = guarded();
        g.saw(b"PRI * HTTP").expect("not yet the whole preface");
        assert_eq!(g.saw(b"/2.0\r\n\r\nSM\r\n\r\n").map_err(|e| e.kind()), Err(io::ErrorKind::InvalidData));
        let mut g = guarded();
        g.saw(b"POST /webhooks/polar/1 HTTP/1.1\r\n").expect("http/1.1");
    }
}
