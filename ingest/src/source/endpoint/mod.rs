//! citytel's MQTT device endpoint (3.1.1 and 5 on the same port): devices connect to citytel directly, with no broker in
//! between, and each PUBLISH is acknowledged only once the pipeline has made it durable.
//!
//! - [`Endpoint`]: the accept loop (which backs off when no descriptor is left), the connection
//!   cap, per-address admission ([`admission`]) and shutdown. A connection refused at accept
//!   gets CONNACK "server unavailable" written without waiting and is closed at once, so
//!   refusing costs no task and holds no descriptor.
//! - [`connection`]: one connection's protocol handling (CONNECT, PUBLISH at QoS 0/1/2, PINGREQ,
//!   SUBSCRIBE refused but for Sparkplug edge nodes' own commands, DISCONNECT, keep-alive at 1.5x, Last Will on an unclean drop), and the
//!   events that tell the fleet tracker when a device's connection opens and closes.
//! - [`frame`]: raw-byte protocol checks rumqttc's codec does not make, and oversize PUBLISH
//!   packets read past and dead-lettered.
//! - [`session`]: an established connection's read half.
//! - [`wire`]: 3.1.1 and 5 packets to and from the protocol-neutral ones the session handles.
//! - [`outgoing`]: the batched write half, with bounded queues.
//! - [`sparkplug`]: Sparkplug B edge nodes connected directly: their subscriptions, citytel's
//!   STATE, rebirth requests on their own connections.
//! - [`sessions`]: client-id registry for takeover, in order: a new connection queues nothing
//!   before the one it replaces has queued its last; a takeover needs the same identity.
//! - [`identity`]: who a device is, from its client certificate or credentials, against the
//!   provisioning registry; [`authorize`]: what it may publish (its own topics at its site and
//!   kind, a gateway's children), checked on every message and on its Last Will.
//!
//! The endpoint listens on a plain listener, an `mqtts` listener (TLS through
//! [`crate::net::tls::ServerTls`], handshake within `endpoint.connect_timeout`, after the
//! connection cap and admission), or both.
//!
//! Packets are read and written with the MQTT codecs rumqttc exports (`rumqttc::mqttbytes::v4`
//! for 3.1.1, `rumqttc::v5::mqttbytes::v5` for 5), through [`wire`], the protocol-neutral
//! layer: the session logic, identity, authorisation, admission and limits are one copy for
//! both versions. The first packet's protocol level decides a connection's version.
//! QoS 2 is supported: PUBREC is sent after the commit and PUBREL answered with PUBCOMP;
//! deduplication on (device, boot, seq) makes a repeated QoS 2 delivery harmless.

pub(crate) mod admission;
pub(crate) mod aliases;
pub(crate) mod authorize;
pub(crate) mod connection;
pub(crate) mod frame;
pub(crate) mod identity;
pub(crate) mod kept;
pub(crate) mod outgoing;
pub(crate) mod refusal;
pub(crate) mod reply;
pub(crate) mod session;
pub(crate) mod sessions;
pub(crate) mod sparkplug;
pub(crate) mod will;
pub(crate) mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::net::tls::{PeerCertificate, ServerTls};
use identity::DeviceAuth;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::EndpointConfig;
use crate::pipeline::Pipeline;
use crate::telemetry::metrics as m;
use admission::Admission;
use kept::KeptSessions;
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
    /// MQTT 5 sessions kept after their connection.
    pub(crate) kept: KeptSessions,
    /// Per-address limits.
    pub(crate) admission: Arc<Admission>,
    /// Whether and how devices authenticate.
    pub(crate) auth: DeviceAuth,
    /// The Sparkplug B host application, when `sparkplug.enabled`.
    pub(crate) sparkplug: Option<Arc<sparkplug::EndpointSparkplug>>,
}

impl Shared {
    /// What every connection shares, for `config`, without device authentication.
    #[cfg(test)]
    pub(crate) fn new(config: EndpointConfig, pipeline: Pipeline) -> Self {
        Self::with_auth(config, pipeline, DeviceAuth::Open)
    }

    /// What every connection shares, for `config`, devices authenticating as `auth` says.
    pub(crate) fn with_auth(config: EndpointConfig, pipeline: Pipeline, auth: DeviceAuth) -> Self {
        let admission = Admission::new(admission::Limits {
            max_per_ip: config.max_connections_per_ip,
            rate_per_s: config.connect_rate_per_ip,
            burst: f64::from(config.connect_burst_per_ip),
            failures: config.failed_connects_per_ip,
        });
        let sparkplug = config.sparkplug.clone().map(|settings| {
            Arc::new(sparkplug::EndpointSparkplug::new(
                settings,
                pipeline.now_ms(),
            ))
        });
        Shared {
            sparkplug,
            kept: KeptSessions::new(config.max_kept_sessions),
            config,
            pipeline,
            sessions: Sessions::default(),
            admission,
            auth,
        }
    }
}

/// The listening endpoint.
pub(crate) struct Endpoint {
    plain: Option<TcpListener>,
    tls: Option<(TcpListener, Arc<ServerTls>)>,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
}

/// The addresses an [`Endpoint`] listens on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addresses {
    /// The plain listener's.
    pub(crate) plain: Option<SocketAddr>,
    /// The `mqtts` listener's.
    pub(crate) tls: Option<SocketAddr>,
}

/// Why the endpoint could not listen: the address and the error.
pub(crate) type BindError = (SocketAddr, std::io::Error);

impl Endpoint {
    /// Binds the plain listener (when `endpoint.plain`) and the `mqtts` one (when `tls` is
    /// given); port 0 picks a free port.
    pub(crate) async fn bind(
        config: EndpointConfig,
        pipeline: Pipeline,
        auth: DeviceAuth,
        tls: Option<Arc<ServerTls>>,
    ) -> Result<Endpoint, BindError> {
        let plain = match config.plain {
            true => Some(
                TcpListener::bind(config.listen)
                    .await
                    .map_err(|e| (config.listen, e))?,
            ),
            false => None,
        };
        let tls = match tls {
            Some(tls) => {
                let addr = config.tls.listen;
                Some((TcpListener::bind(addr).await.map_err(|e| (addr, e))?, tls))
            }
            None => None,
        };
        let slots = Arc::new(Semaphore::new(
            config.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        ));
        Ok(Endpoint {
            plain,
            tls,
            shared: Arc::new(Shared::with_auth(config, pipeline, auth)),
            slots,
        })
    }

    /// The addresses actually bound.
    pub(crate) fn local_addrs(&self) -> std::io::Result<Addresses> {
        Ok(Addresses {
            plain: self
                .plain
                .as_ref()
                .map(TcpListener::local_addr)
                .transpose()?,
            tls: self.tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?,
        })
    }

    /// Accepts connections until `shutdown` is cancelled, then waits for every connection to
    /// stop reading and flush its outstanding acknowledgements.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        if let Some(sparkplug) = &self.shared.sparkplug {
            tracker.spawn(sparkplug::request_rebirths_until(
                sparkplug.clone(),
                self.shared.pipeline.clone(),
                shutdown.clone(),
            ));
        }
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        let refusals = refusal::Refusals::default();
        loop {
            let (stream, peer, tls) = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = prune.tick() => {
                    self.shared.admission.prune();
                    continue;
                }
                (stream, peer) = accept_on(self.plain.as_ref(), "mqtt") => (stream, peer, None),
                (stream, peer) = accept_on(self.tls.as_ref().map(|(l, _)| l), "mqtts") => {
                    (stream, peer, self.tls.as_ref().map(|(_, tls)| tls.acceptor()))
                }
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                refusals.refuse(stream, tls.is_none(), "connection_limit");
                continue;
            };
            let ip_slot = match self.shared.admission.admit(peer.ip()) {
                Ok(ip_slot) => ip_slot,
                Err(refusal) => {
                    refusals.refuse(stream, tls.is_none(), refusal.label());
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                metrics::gauge!(m::ENDPOINT_CONNECTIONS).increment(1.0);
                let reason = match tls {
                    None => connection::serve(stream, peer, shared.clone(), shutdown, None).await,
                    Some(acceptor) => serve_tls(stream, peer, acceptor, shared.clone(), shutdown).await,
                };
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

/// The next connection on `listener`; never, without one.
async fn accept_on(listener: Option<&TcpListener>, name: &'static str) -> (TcpStream, SocketAddr) {
    match listener {
        Some(listener) => crate::net::listener::accept(listener, name).await,
        None => std::future::pending().await,
    }
}

/// Completes the TLS handshake of an `mqtts` connection within the connect timeout, then serves
/// it with the client certificate it presented.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> connection::Disconnect {
    let handshake = tokio::time::timeout(shared.config.connect_timeout, acceptor.accept(stream));
    let tls = tokio::select! {
        _ = shutdown.cancelled() => return connection::Disconnect::Shutdown,
        done = handshake => match done {
            Err(_) => return connection::Disconnect::ConnectTimeout,
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "TLS handshake failed");
                return connection::Disconnect::TlsHandshake(e.to_string());
            }
            Ok(Ok(tls)) => tls,
        },
    };
    let cert = PeerCertificate::of(tls.get_ref().1);
    connection::serve(tls, peer, shared, shutdown, cert).await
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod sparkplug_tests;
#[cfg(test)]
mod strict_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod v5_reasons_tests;
#[cfg(test)]
mod v5_session_tests;
#[cfg(test)]
mod v5_tests;
#[cfg(test)]
mod versions_tests;
