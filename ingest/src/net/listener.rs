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
//! accepted one is [`Guarded`] (its slot, its idle timeout). With TLS, a background task
//! accepts and runs each handshake in a task of its own (within [`HANDSHAKE_TIMEOUT`], holding
//! its slot), so a slow or silent client never holds up the next; failed handshakes are
//! counted in `citytel_tls_handshake_failures_total{listener}`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::idle::Guarded;
use super::tls::{MaybeTls, ServerTls};
use crate::telemetry::metrics as m;

/// A connection the HTTP servers read and write: plain or TLS.
pub(crate) type Conn = MaybeTls<TcpStream>;

/// Longest time a TLS handshake may take on an HTTP listener.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A listener of one of the HTTP servers, with its connection cap, idle timeout and TLS.
#[derive(Debug)]
pub(crate) struct HttpListener {
    listener: Arc<TcpListener>,
    name: &'static str,
    slots: Arc<Semaphore>,
    idle: Duration,
    tls: Option<Arc<ServerTls>>,
    /// With TLS: connections whose handshake completed, from the background acceptor.
    handshaken: Option<mpsc::Receiver<(Guarded<Conn>, SocketAddr)>>,
}

impl HttpListener {
    /// Accepts on `listener` (named `name`) at most `max_connections` at once, each closed after
    /// `idle` without traffic, speaking TLS with `tls` if given.
    pub(crate) fn new(
        listener: TcpListener,
        name: &'static str,
        max_connections: usize,
        idle: Duration,
        tls: Option<Arc<ServerTls>>,
    ) -> Self {
        HttpListener {
            listener: Arc::new(listener),
            name,
            slots: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            idle,
            tls,
            handshaken: None,
        }
    }

    /// The next connection within the cap (its TLS handshake done); those beyond it are closed
    /// as they come.
    pub(crate) async fn next(&mut self) -> (Guarded<Conn>, SocketAddr) {
        if let Some(tls) = self.tls.clone() {
            let handshaken = self.handshaken.get_or_insert_with(|| {
                self::start_tls(
                    self.listener.clone(),
                    self.name,
                    self.slots.clone(),
                    self.idle,
                    tls,
                )
            });
            return match handshaken.recv().await {
                Some(accepted) => accepted,
                // The acceptor never ends while the receiver lives.
                None => std::future::pending().await,
            };
        }
        loop {
            let (stream, peer) = accept(&self.listener, self.name).await;
            if let Some(slot) = take_slot(&self.slots, self.name) {
                let _ = stream.set_nodelay(true);
                return (
                    Guarded::new(MaybeTls::Plain(stream), self.name, self.idle, Some(slot)),
                    peer,
                );
            }
        }
    }

    /// The accepted connections as a stream, for tonic's `serve_with_incoming_shutdown`, until
    /// `stop` is cancelled.
    pub(crate) fn into_incoming(
        mut self,
        stop: CancellationToken,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<Guarded<Conn>, io::Error>> {
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

/// A slot of the listener's cap, or `None` (counted) when it is full.
fn take_slot(
    slots: &Arc<Semaphore>,
    name: &'static str,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    match slots.clone().try_acquire_owned() {
        Ok(slot) => Some(slot),
        Err(_) => {
            metrics::counter!(m::CONNECTIONS_REFUSED_TOTAL, "listener" => name, "reason" => "connection_limit")
                .increment(1);
            None
        }
    }
}

/// Starts the background acceptor of a TLS listener: it accepts, takes a slot and runs each
/// handshake in its own task, until the returned receiver is dropped.
fn start_tls(
    listener: Arc<TcpListener>,
    name: &'static str,
    slots: Arc<Semaphore>,
    idle: Duration,
    tls: Arc<ServerTls>,
) -> mpsc::Receiver<(Guarded<Conn>, SocketAddr)> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = tx.closed() => return,
                accepted = accept(&listener, name) => accepted,
            };
            let Some(slot) = take_slot(&slots, name) else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(conn)) => {
                        let conn =
                            Guarded::new(MaybeTls::Tls(Box::new(conn)), name, idle, Some(slot));
                        let _ = tx.send((conn, peer)).await;
                    }
                    failed => {
                        metrics::counter!(m::TLS_HANDSHAKE_FAILURES_TOTAL, "listener" => name)
                            .increment(1);
                        let error = match failed {
                            Ok(Err(e)) => e.to_string(),
                            _ => "timed out".to_string(),
                        };
                        tracing::debug!(listener = name, %peer, error, "TLS handshake failed");
                    }
                }
            });
        }
    });
    rx
}

impl axum::serve::Listener for HttpListener {
    type Io = Guarded<Conn>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        self.next().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

impl tonic::transport::server::Connected for Guarded<Conn> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.get_ref().tcp().connect_info()
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
        let mut http = HttpListener::new(listener, "test", 1, Duration::from_secs(60), None);
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
