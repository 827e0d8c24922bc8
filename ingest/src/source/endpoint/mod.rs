//! citytel's MQTT 3.1.1 device endpoint: devices connect to citytel directly, with no broker in
//! between, and each PUBLISH is acknowledged only once the pipeline has made it durable.
//!
//! - [`Endpoint`]: the accept loop, connection limit and shutdown.
//! - [`connection`]: one connection's protocol handling (CONNECT, PUBLISH at QoS 0/1/2, PINGREQ,
//!   SUBSCRIBE refused, DISCONNECT, keep-alive at 1.5x, Last Will on an unclean drop), and the
//!   events that tell the fleet tracker when a device's connection opens and closes.
//! - [`outgoing`]: the batched write half.
//! - [`sessions`]: client-id registry for takeover, in order: a new connection queues nothing
//!   before the one it replaces has queued its last.
//!
//! Packets are read and written with the MQTT codec rumqttc exports (`rumqttc::mqttbytes::v4`).
//! QoS 2 is supported: PUBREC is sent after the commit and PUBREL answered with PUBCOMP;
//! deduplication on (device, boot, seq) makes a repeated QoS 2 delivery harmless.

pub(crate) mod connection;
pub(crate) mod outgoing;
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
use sessions::Sessions;

/// What every connection of an endpoint shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The endpoint's configuration.
    pub(crate) config: EndpointConfig,
    /// Where messages go.
    pub(crate) pipeline: Pipeline,
    /// Open connections by client id.
    pub(crate) sessions: Sessions,
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
        let slots = Arc::new(Semaphore::new(config.max_connections));
        Ok(Endpoint {
            listener,
            shared: Arc::new(Shared {
                config,
                pipeline,
                sessions: Sessions::default(),
            }),
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
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    let shared = self.shared.clone();
                    let shutdown = shutdown.clone();
                    tracker.spawn(async move {
                        metrics::gauge!(m::ENDPOINT_CONNECTIONS).increment(1.0);
                        let reason = connection::serve(stream, peer, shared, shutdown).await;
                        metrics::gauge!(m::ENDPOINT_CONNECTIONS).decrement(1.0);
                        metrics::counter!(m::ENDPOINT_DISCONNECTS_TOTAL, "reason" => reason.label())
                            .increment(1);
                        drop(slot);
                    });
                }
                Err(_) => {
                    tracker.spawn(refuse_over_limit(stream));
                }
            }
        }
        tracker.close();
        tracker.wait().await;
        tracing::info!("device endpoint stopped");
    }
}

/// Answers a connection beyond the limit with CONNACK "server unavailable" and closes it.
async fn refuse_over_limit(mut stream: TcpStream) {
    metrics::counter!(m::ENDPOINT_REFUSED_TOTAL, "reason" => "connection_limit").increment(1);
    let connack = Packet::ConnAck(ConnAck::new(ConnectReturnCode::ServiceUnavailable, false));
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        connection::write_packet(&mut stream, &connack),
    )
    .await;
}

#[cfg(test)]
mod tests;
