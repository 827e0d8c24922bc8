//! Accepting connections without dying of it.
//!
//! [`accept`] retries a failed `accept(2)`: `EMFILE`/`ENFILE` (no descriptor left) backs off
//! from 10 ms doubling to 1 s, anything else (a connection reset before it was accepted) retries
//! at once; each failure is counted in `citytel_accept_errors_total{listener, error}`. It never
//! returns an error, so no listener stops because the process ran out of descriptors.
//!
//! [`HttpListener`] is what the gRPC, dashboard and metrics servers accept from: a connection
//! beyond the listener's cap is closed at once (counted in
//! `citytel_connections_refused_total{listener, reason="connection_limit"}`), and every
//! accepted one is [`Guarded`] (its slot, its idle timeout).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::idle::Guarded;
use crate::telemetry::metrics as m;

/// First and longest wait after `accept` failed for want of a descriptor.
const BACKOFF_FIRST: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Whether `e` says no file descriptor is left.
pub(crate) fn out_of_descriptors(e: &io::Error) -> bool {
    citytel_storage::wal::Exhausted::of(e) == Some(citytel_storage::wal::Exhausted::Descriptors)
}

/// Accepts the next connection on `listener` (named `name` in metrics and logs), waiting out
/// failures as described in the module documentation.
pub(crate) async fn accept(listener: &TcpListener, name: &'static str) -> (TcpStream, SocketAddr) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) if out_of_descriptors(&e) => {
                metrics::counter!(m::ACCEPT_ERRORS_TOTAL, "listener" => name, "error" => "descriptors")
                    .increment(1);
                if backoff == BACKOFF_FIRST {
                    tracing::warn!(listener = name, error = %e, "accept failed: no file descriptor left; backing off");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                metrics::counter!(m::ACCEPT_ERRORS_TOTAL, "listener" => name, "error" => "other")
                    .increment(1);
                tracing::debug!(listener = name, error = %e, "accept failed");
                tokio::task::yield_now().await;
            }
        }
    }
}

/// A listener of one of the HTTP servers, with its connection cap and idle timeout.
#[derive(Debug)]
pub(crate) struct HttpListener {
    listener: TcpListener,
    name: &'static str,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl HttpListener {
    /// Accepts on `listener` (named `name`) at most `max_connections` at once, each closed after
    /// `idle` without traffic.
    pub(crate) fn new(
        listener: TcpListener,
        name: &'static str,
        max_connections: usize,
        idle: Duration,
    ) -> Self {
        HttpListener {
            listener,
            name,
            slots: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            idle,
        }
    }

    /// The next connection within the cap; those beyond it are closed as they come.
    pub(crate) async fn next(&mut self) -> (Guarded<TcpStream>, SocketAddr) {
        loop {
            let (stream, peer) = accept(&self.listener, self.name).await;
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let _ = stream.set_nodelay(true);
                    return (Guarded::new(stream, self.name, self.idle, Some(slot)), peer);
                }
                Err(_) => {
                    metrics::counter!(m::CONNECTIONS_REFUSED_TOTAL, "listener" => self.name, "reason" => "connection_limit")
                        .increment(1);
                    drop(stream);
                }
            }
        }
    }

    /// The accepted connections as a stream, for tonic's `serve_with_incoming_shutdown`, until
    /// `stop` is cancelled.
    pub(crate) fn into_incoming(
        mut self,
        stop: CancellationToken,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<Guarded<TcpStream>, io::Error>> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                let (conn, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = self.next() => accepted,
                };
                if tx.send(Ok(conn)).await.is_err() {
                    return;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

impl axum::serve::Listener for HttpListener {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.next().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl tonic::transport::server::Connected for Guarded<TcpStream> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.get_ref().connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_and_a_freed_slot_is_reused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut http = HttpListener::new(listener, "test", 1, Duration::from_secs(60));
        let _first_client = TcpStream::connect(addr).await.unwrap();
        let (first, _) = http.next().await;

        let mut refused = TcpStream::connect(addr).await.unwrap();
        let accepting = tokio::spawn(async move {
            let (second, _) = http.next().await;
            (http, second)
        });
        // The one beyond the cap is closed by citytel.
        let mut buf = [0u8; 1];
        assert_eq!(refused.read(&mut buf).await.unwrap_or(0), 0);
        // Once the first goes, the next one is accepted.
        drop(first);
        let _second_client = TcpStream::connect(addr).await.unwrap();
        let (_http, _second) = tokio::time::timeout(Duration::from_secs(10), accepting)
            .await
            .expect("accepted once a slot was free")
            .unwrap();
    }
}
