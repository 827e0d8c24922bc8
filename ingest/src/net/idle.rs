//! [`Guarded`]: one accepted connection that holds its listener's slot until it is dropped and
//! fails its reads once nothing has been read or written for the idle timeout, so the server
//! using it closes the connection.
//!
//! Activity in either direction counts, so a quiet server stream (a watch that writes now and
//! then), a client that keeps reading, or HTTP/2 keep-alive pings keep a connection open; a
//! client that connects and sends nothing, or only part of a request, does not.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use crate::telemetry::metrics as m;

/// A connection with a slot and an idle timeout.
#[derive(Debug)]
pub(crate) struct Guarded<S> {
    inner: S,
    idle: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
    listener: &'static str,
    _slot: Option<OwnedSemaphorePermit>,
}

impl<S> Guarded<S> {
    /// Wraps `inner`, accepted by `listener`, holding `slot` until dropped.
    pub(crate) fn new(
        inner: S,
        listener: &'static str,
        idle: Duration,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let now = Instant::now();
        metrics::gauge!(m::CONNECTIONS_OPEN, "listener" => listener).increment(1.0);
        Guarded {
            inner,
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            listener,
            _slot: slot,
        }
    }

    /// The wrapped connection.
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether the idle timeout has passed with no activity; re-arms the timer otherwise.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = self.last_activity + self.idle;
            if deadline <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl<S> Drop for Guarded<S> {
    fn drop(&mut self) {
        metrics::gauge!(m::CONNECTIONS_OPEN, "listener" => self.listener).decrement(1.0);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.last_activity = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if self.poll_idle(cx) {
                    metrics::counter!(m::CONNECTIONS_IDLE_CLOSED_TOTAL, "listener" => self.listener)
                        .increment(1);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        if matches!(written, Ok(n) if n > 0) {
            self.last_activity = Instant::now();
        }
        Poll::Ready(written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs));
        if matches!(written, Ok(n) if n > 0) {
            self.last_activity = Instant::now();
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_fails_its_read_after_the_idle_timeout() {
        let (client, server) = tokio::io::duplex(1024);
        let mut guarded = Guarded::new(server, "test", Duration::from_secs(30), None);
        let started = Instant::now();
        let mut buf = [0u8; 16];
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_either_way_keeps_it_open() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut guarded = Guarded::new(server, "test", Duration::from_secs(30), None);
        let mut buf = [0u8; 16];
        for i in 0..4 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            if i % 2 == 0 {
                client.write_all(b"ping").await.unwrap();
                assert_eq!(guarded.read(&mut buf).await.unwrap(), 4);
            } else {
                guarded.write_all(b"pong").await.unwrap();
                client.read_exact(&mut buf[..4]).await.unwrap();
            }
        }
        let started = Instant::now();
        let err = guarded.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }
}
