//! citytel's MQTT 3.1.1 device endpoint: devices connect to citytel directly, with no broker in
//! between, and each PUBLISH is acknowledged only once the pipeline has made it durable.
//!
//! - [`Endpoint`]: the accept loop (which backs off when no descriptor is left), the connection
//!   cap, per-address admission ([`admission`]) and shutdown. A connection refused at accept
//!   gets CONNACK "server unavailable" written without waiting and is closed at once, so
//!   refusing costs no task and holds no descriptor.
//! - [`connection`]: one connection's protocol handling (CONNECT, PUBLISH at QoS 0/1/2, PINGREQ,
//!   SUBSCRIBE refused, DISCONNECT, keep-alive at 1.5x, Last Will on an unclean drop), and the
//!   events that tell the fleet tracker when a device's connection opens and closes.
//! - [`frame`]: raw-byte protocol checks rumqttc's codec does not make, and oversize PUBLISH
//!   packets read past and dead-lettered.
//! - [`session`]: an established connection's read half.
//! - [`outgoing`]: the batched write half, with bounded queues.
//! - [`sessions`]: client-id registry for takeover, in order: a new connection queues nothing
//!   before the one it replaces has queued its last.
//!
//! Packets are read and written with the MQTT codec rumqttc exports (`rumqttc::mqttbytes::v4`).
//! QoS 2 is supported: PUBREC is sent after the commit and PUBREL answered with PUBCOMP;
//! deduplication on (device, boot, seq) makes a repeated QoS 2 delivery harmless.

pub(crate) mod admission;
pub(crate) mod connection;
pub(crate) mod frame;
pub(crate) mod outgoing;
pub(crate) mod session;
pub(crate) mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::EndpointConfig;
use crate::pipeline::Pipeline;
use crate::telemetry::metrics as m;
use admission::Admission;
use sessions::Sessions;

/// How often addresses with nothing going on are dropped from the admission table.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// What every connection of an endpoint shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The endpoint's configuration.
    pub(crate) config: EndpointConfig,
    /// Where messages go.
    pub(crate) pipeline: Pipeline,
    /// Open connections by client id.
    pub(crate) sessions: Sessions,
    /// Per-address limits.
    pub(crate) admission: Arc<Admission>,
}

impl Shared {
    /// What every connection shares, for `config`.
    pub(crate) fn new(config: EndpointConfig, pipeline: Pipeline) -> Self {
        let admission = Admission::new(admission::Limits {
            max_per_ip: config.max_connections_per_ip,
            rate_per_s: config.connect_rate_per_ip,
            burst: f64::from(config.connect_burst_per_ip),
            failures: config.failed_connects_per_ip,
        });
        Shared {
            config,
            pipeline,
            sessions: Sessions::default(),
            admission,
        }
    }
}

/// The listening endpoint.
pub(crate) struct Endpoint {
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
}

impl Endpoint {
    /// Binds the listener (port 0 picks a free port).
    pub(crate) async fn bind(
        config: EndpointConfig,
        pipeline: Pipeline,
    ) -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(config.listen).await?;
        let slots = Arc::new(Semaphore::new(
            config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ));
        Ok(Endpoint {
            listener,
            shared: Arc::new(Shared::new(config, pipeline)),
            slots,
        })
    }

    /// The address actually bound.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` is cancelled, then waits for every connection to
    /// stop reading and flush its outstanding acknowledgements.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = prune.tick() => {
                    self.shared.admission.prune();
                    continue;
                }
                accepted = crate::net::listener::accept(&self.listener, "mqtt") => accepted,
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                refuse_at_accept(&stream, "connection_limit");
                continue;
            };
            let ip_slot = match self.shared.admission.admit(peer.ip()) {
                Ok(ip_slot) => ip_slot,
                Err(refusal) => {
                    refuse_at_accept(&stream, refusal.label());
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                metrics::gauge!(m::ENDPOINT_CONNECTIONS).increment(1.0);
                let reason = connection::serve(stream, peer, shared.clone(), shutdown).await;
                metrics::gauge!(m::ENDPOINT_CONNECTIONS).decrement(1.0);
                metrics::counter!(m::ENDPOINT_DISCONNECTS_TOTAL, "reason" => reason.label())
                    .increment(1);
                if reason.is_failed_connect() {
                    tracing::debug!(%peer, reason = ?reason, "connect refused");
                    if shared.admission.connect_failed(peer.ip()) {
                        tracing::warn!(%peer, "connects from this address keep failing; refusing them for a minute");
                    }
                }
                drop((slot, ip_slot));
            });
        }
        tracker.close();
        tracker.wait().await;
        tracing::info!("device endpoint stopped");
    }
}

/// Answers a connection refused at accept with CONNACK "server unavailable", written without
/// waiting (a fresh socket's send buffer is empty), counts it under `reason`, and closes it
/// (when `stream` is dropped).
fn refuse_at_accept(stream: &TcpStream, reason: &'static str) {
    metrics::counter!(m::ENDPOINT_REFUSED_TOTAL, "reason" => reason).increment(1);
    let connack = Packet::ConnAck(ConnAck::new(ConnectReturnCode::ServiceUnavailable, false));
    let mut out = bytes::BytesMut::with_capacity(4);
    if connack.write(&mut out, usize::MAX).is_ok() {
        let _ = stream.try_write(&out);
    }
}

#[cfg(test)]
mod strict_tests;
#[cfg(test)]
mod tests;
