//! One device connection: CONNECT handshake, the read loop, keep-alive, Last Will, and the
//! connection events that tell the fleet tracker when the device connects and disconnects.
//!
//! The read half parses packets from large reads and submits each PUBLISH to the pipeline with an
//! ack handle bound to this connection's write half ([`super::outgoing`]). The pipeline commits
//! in arrival order, so acknowledgements leave in the order the PUBLISH packets came in. The
//! connection is generic over its stream so protocol tests run on in-memory pipes with a paused
//! clock.
//!
//! Connection events (see [`device_of_will`] for whose they are): "opened" is queued before the
//! connection's first message, "closed" (DISCONNECT) or "lost" (anything else that ends it from
//! the device's side, after the Last Will) after its last. A connection taken over by a newer one
//! with the same client id, or ended by citytel's own shutdown, queues no end event: the device
//! did not go away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use citytel_proto::topic::{self, Channel};
use rumqttc::mqttbytes::v4::{ConnectReturnCode, LastWill};
use rumqttc::v5::mqttbytes::v5::DisconnectReasonCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::authorize::{self, Speaker};
use super::frame;
use super::identity::{DeviceAuth, Refused};
use super::kept;
use super::outgoing;
use super::reply::{self, Encoder, Grant, ToClient};
use super::session::Session;
use super::will::DelayedWill;
use super::wire::{self, FromClient, Version};
use crate::journal::Connection;
use crate::net::tls::PeerCertificate;
use crate::pipeline::PipelineClosed;
use crate::telemetry::metrics as m;

/// Smallest read buffer; it grows for connections that fill it.
pub(crate) const MIN_READ_BUF: usize = 4 * 1024;
/// How long a closing connection waits for in-flight acknowledgements to be written.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disconnect {
    /// The client sent DISCONNECT.
    ByClient,
    /// The client sent an MQTT 5 DISCONNECT asking for its Last Will (reason 0x04).
    ByClientWithWill,
    /// The client closed the socket without DISCONNECT.
    Closed,
    /// Nothing arrived within 1.5 times the keep-alive interval.
    KeepAliveExpired,
    /// The first packet did not arrive within the connect timeout.
    ConnectTimeout,
    /// CONNECT was refused with the given return code.
    Refused(ConnectReturnCode),
    /// The client broke the protocol (the detail says how).
    ProtocolError(String),
    /// The first packet was not a well-formed CONNECT (the detail says why).
    BadConnect(String),
    /// The client does not read what citytel writes: a queue overflowed or a write stalled.
    SlowReader,
    /// A packet exceeded the size limit.
    Oversize(usize),
    /// Another connection with the same client id took over.
    TakenOver,
    /// citytel is shutting down.
    Shutdown,
    /// The pipeline stopped accepting messages.
    PipelineClosed,
    /// A socket error.
    Io(String),
    /// The TLS handshake failed or timed out.
    TlsHandshake(String),
    /// The device published what it may not (another device's topics, a place it is not
    /// provisioned at); the message was dead-lettered as `unauthorized`.
    Unauthorized(String),
    /// An MQTT 5 client used a topic alias of 0 or above the granted maximum.
    TopicAliasInvalid(String),
    /// An MQTT 5 client had more QoS 1 and 2 publishes unacknowledged than the granted Receive
    /// Maximum.
    ReceiveMaximumExceeded,
}

impl Disconnect {
    /// Metric label.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Disconnect::ByClient => "client_disconnect",
            Disconnect::ByClientWithWill => "client_disconnect_with_will",
            Disconnect::Closed => "closed",
            Disconnect::KeepAliveExpired => "keep_alive_expired",
            Disconnect::ConnectTimeout => "connect_timeout",
            Disconnect::Refused(_) => "refused",
            Disconnect::ProtocolError(_) => "protocol_error",
            Disconnect::BadConnect(_) => "bad_connect",
            Disconnect::SlowReader => "slow_reader",
            Disconnect::Oversize(_) => "oversize",
            Disconnect::TakenOver => "taken_over",
            Disconnect::Shutdown => "shutdown",
            Disconnect::PipelineClosed => "pipeline_closed",
            Disconnect::Io(_) => "io_error",
            Disconnect::TlsHandshake(_) => "tls_handshake",
            Disconnect::Unauthorized(_) => "unauthorized",
            Disconnect::TopicAliasInvalid(_) => "topic_alias_invalid",
            Disconnect::ReceiveMaximumExceeded => "receive_maximum_exceeded",
        }
    }

    /// The MQTT 5 DISCONNECT citytel sends before closing a connection for this reason, with
    /// its reason string; `None` when the client ended it, the socket is gone or not read, or
    /// no CONNACK was sent.
    pub(crate) fn farewell(&self) -> Option<ToClient> {
        use DisconnectReasonCode as C;
        let (code, why) = match self {
            Disconnect::KeepAliveExpired => (
                C::KeepAliveTimeout,
                "nothing received for 1.5 times the keep-alive".to_string(),
            ),
            Disconnect::TakenOver => (
                C::SessionTakenOver,
                "another connection with this client id took over".to_string(),
            ),
            Disconnect::Oversize(n) => (
                C::PacketTooLarge,
                format!("a packet of {n} bytes is larger than endpoint.max_discard_bytes"),
            ),
            Disconnect::ProtocolError(why) => (C::ProtocolError, why.clone()),
            Disconnect::Shutdown | Disconnect::PipelineClosed => (
                C::ServerShuttingDown,
                "citytel is shutting down".to_string(),
            ),
            Disconnect::Unauthorized(why) => (C::NotAuthorized, why.clone()),
            Disconnect::TopicAliasInvalid(why) => (C::TopicAliasInvalid, why.clone()),
            Disconnect::ReceiveMaximumExceeded => (
                C::ReceiveMaximumExceeded,
                "more unacknowledged QoS 1 and 2 publishes than the Receive Maximum".to_string(),
            ),
            Disconnect::ByClient
            | Disconnect::ByClientWithWill
            | Disconnect::Closed
            | Disconnect::ConnectTimeout
            | Disconnect::Refused(_)
            | Disconnect::BadConnect(_)
            | Disconnect::SlowReader
            | Disconnect::Io(_)
            | Disconnect::TlsHandshake(_) => return None,
        };
        Some(ToClient::Disconnect(code, why))
    }

    /// Whether the client went away without saying goodbye (or asked for its Last Will when it
    /// did), so its Last Will is published.
    fn fires_will(&self) -> bool {
        matches!(
            self,
            Disconnect::ByClientWithWill
                | Disconnect::Closed
                | Disconnect::KeepAliveExpired
                | Disconnect::ProtocolError(_)
                | Disconnect::SlowReader
                | Disconnect::Oversize(_)
                | Disconnect::Io(_)
                | Disconnect::Unauthorized(_)
                | Disconnect::TopicAliasInvalid(_)
                | Disconnect::ReceiveMaximumExceeded
        )
    }

    /// Whether the connection ended with its CONNECT refused, malformed or missing, its TLS
    /// handshake failed, or an unauthorised PUBLISH: counted against the peer's address (see
    /// [`super::admission`]).
    pub(crate) fn is_failed_connect(&self) -> bool {
        matches!(
            self,
            Disconnect::Refused(_)
                | Disconnect::BadConnect(_)
                | Disconnect::ConnectTimeout
                | Disconnect::TlsHandshake(_)
                | Disconnect::Unauthorized(_)
        )
    }

    /// The connection event this end queues for the device: `Closed` after a DISCONNECT, `Lost`
    /// when the device went away without one; none when it was taken over, refused, never
    /// connected, or citytel itself stopped.
    pub(crate) fn connection_change(&self) -> Option<Connection> {
        match self {
            Disconnect::ByClient | Disconnect::ByClientWithWill => Some(Connection::Closed),
            other if other.fires_will() => Some(Connection::Lost),
            _ => None,
        }
    }
}

/// The device a connection belongs to, from its Last Will: the status topic of the device the
/// will names, if the will topic is a citytel device topic.
///
/// The rule for whose connection it is: the device named by the Last Will's topic, known at
/// CONNECT; without a usable will, the device named by the topic of the first PUBLISH that is a
/// citytel device topic. Only that device gets connection events, whatever else the connection
/// carries afterwards: a gateway publishing for the children behind it is the gateway's
/// connection, and a child's state follows its gateway through the tracker instead. Gateways
/// should therefore set their Last Will (the wire contract asks every device to) or publish their
/// own birth first, as citytel's firmware does.
pub(crate) fn device_of_will(will: Option<&LastWill>) -> Option<String> {
    status_topic_of(&will?.topic)
}

/// The status topic of the device `topic` names, if it is a citytel device topic.
pub(crate) fn status_topic_of(topic: &str) -> Option<String> {
    let parsed = topic::parse(topic).ok()?;
    Some(topic::build(
        parsed.site,
        parsed.kind,
        parsed.device_id,
        Channel::Status,
    ))
}

/// Serves one connection until it ends and returns why. `cert` is the client certificate a
/// TLS connection presented (verified by the handshake).
pub(crate) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    cert: Option<PeerCertificate>,
) -> Disconnect
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf = BytesMut::with_capacity(MIN_READ_BUF);
    let max_packet = shared.config.max_packet_bytes;

    let first = tokio::select! {
        _ = shutdown.cancelled() => return Disconnect::Shutdown,
        r = tokio::time::timeout(shared.config.connect_timeout, read_packet(&mut rd, &mut buf, max_packet)) => r,
    };
    let hello = match first {
        Err(_) => return Disconnect::ConnectTimeout,
        Ok(Err(ReadError::Closed)) => return Disconnect::Closed,
        Ok(Err(ReadError::Io(e))) => return Disconnect::Io(e),
        Ok(Err(ReadError::Oversize(n))) => {
            return Disconnect::BadConnect(format!("first packet of {n} bytes"));
        }
        Ok(Err(ReadError::Protocol(e, level))) => {
            if let Some(level) = level.filter(|&l| Version::of_level(l).is_none()) {
                return refuse(
                    &mut wr,
                    Version::V4,
                    ConnectReturnCode::RefusedProtocolVersion,
                    format!("protocol level {level}"),
                )
                .await;
            }
            return Disconnect::BadConnect(e);
        }
        Ok(Ok(FromClient::Connect(hello))) => *hello,
        Ok(Ok(other)) => {
            return Disconnect::BadConnect(format!("expected CONNECT, got {}", other.name()));
        }
    };
    let version = hello.version;
    let connect = hello.connect;
    let server_keep_alive = server_keep_alive(connect.keep_alive, &shared.config);
    let expiry = kept::granted_expiry(hello.session_expiry_s, shared.config.max_session_expiry);
    let granted_expiry_s = match hello.session_expiry_s {
        0 => 0,
        _ => u32::try_from(expiry.as_secs()).unwrap_or(kept::NEVER - 1),
    };
    let grant = Grant {
        receive_max: shared.config.receive_maximum,
        max_packet: u32::try_from(shared.config.max_discard_bytes).unwrap_or(u32::MAX),
        topic_alias_max: shared.config.topic_alias_maximum,
        server_keep_alive: server_keep_alive.filter(|&s| s != connect.keep_alive),
        session_expiry: Some(granted_expiry_s).filter(|&s| s != hello.session_expiry_s),
    };
    if let Err(why) = connack_fits(version, hello.options.max_packet, &grant) {
        return Disconnect::BadConnect(why);
    }
    if connect.client_id.len() > shared.config.max_client_id_bytes {
        return refuse(
            &mut wr,
            version,
            ConnectReturnCode::BadClientId,
            format!(
                "client id of {} bytes, longer than endpoint.max_client_id_bytes",
                connect.client_id.len()
            ),
        )
        .await;
    }
    let speaker = match &shared.auth {
        DeviceAuth::Open => None,
        DeviceAuth::Required(authority) => {
            let sparkplug = shared.sparkplug.as_ref().map(|sp| &sp.settings.host);
            match authorize::admit(authority, &connect, cert.as_ref(), sparkplug).await {
                Ok(speaker) => Some(speaker),
                Err(Refused { code, why }) => {
                    tracing::warn!(%peer, client_id = %connect.client_id, why, "device refused");
                    return refuse(&mut wr, version, code, why).await;
                }
            }
        }
    };
    let client_id = if let Some(speaker) = &speaker {
        speaker.identity().device_id.clone()
    } else if connect.client_id.is_empty() {
        if !connect.clean_session {
            return refuse(
                &mut wr,
                version,
                ConnectReturnCode::BadClientId,
                "empty client id needs clean session",
            )
            .await;
        }
        shared.sessions.next_anonymous_id()
    } else {
        connect.client_id.clone()
    };

    let identity = speaker.as_ref().map(|s| s.identity().device_id.as_str());
    let registration = match shared.sessions.register(&client_id, identity) {
        Ok(registration) => registration,
        Err(refused) => {
            let why = format!(
                "client id {client_id:?} is held by a connection authenticated as {:?}",
                refused.holder
            );
            tracing::warn!(%peer, client_id, why, "takeover refused");
            return refuse(&mut wr, version, ConnectReturnCode::NotAuthorized, why).await;
        }
    };
    // Until this guard is dropped, a connection taking this one over waits before queueing.
    let finished = registration.finished.clone().drop_guard();
    if let Some(previous) = &registration.previous_finished {
        // Queue nothing before the connection taken over has queued all it will.
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = previous.cancelled() => {}
        }
    }
    if shutdown.is_cancelled() || registration.taken_over.is_cancelled() {
        shared
            .sessions
            .deregister(&client_id, registration.connection_id);
        return if shutdown.is_cancelled() {
            Disconnect::Shutdown
        } else {
            Disconnect::TakenOver
        };
    }
    // A 3.1.1 publish-only session holds no state here, so a persistent session is always
    // "present": clients such as rumqttc would otherwise drop their unacknowledged publishes.
    // An MQTT 5 session is present while it is kept (see `kept`).
    let found = match version {
        Version::V4 => kept::Found::default(),
        Version::V5 => shared
            .kept
            .resume(&client_id, identity, connect.clean_session),
    };
    if let Some(will) = &found.ended_will {
        // The session this one replaces ended: its delayed Will goes first.
        will.fire_now().await;
    }
    let resumed = found.resumed;
    let session_present = match version {
        Version::V4 => !connect.clean_session,
        Version::V5 => resumed.is_some(),
    };
    let connack = reply::encode_connack(
        version,
        ConnectReturnCode::Success,
        session_present,
        None,
        Some(&grant),
    );
    if let Err(e) = write_bytes(&mut wr, &connack).await {
        shared
            .sessions
            .deregister(&client_id, registration.connection_id);
        return Disconnect::Io(e.to_string());
    }
    tracing::debug!(%peer, client_id, keep_alive = connect.keep_alive, takeover = registration.replaced_existing, "device connected");

    if let Some(speaker) = &speaker {
        let identity = speaker.identity();
        tracing::debug!(%peer, device = identity.device_id, method = identity.method.as_str(), "device authenticated");
    }
    let own_topic = speaker.as_ref().and_then(Speaker::own_status_topic);
    let encoder = Encoder {
        version,
        options: hello.options,
    };
    let (outgoing, writer) = outgoing::start(wr, encoder);
    let speaker_identity = speaker.as_ref().map(|s| s.identity().device_id.clone());
    let mut session = Session::new(shared.clone(), outgoing, speaker, version);
    session.resume(granted_expiry_s, resumed);
    let opened = match own_topic.or_else(|| device_of_will(connect.last_will.as_ref())) {
        Some(device) => session.opened(device).await,
        None => Ok(()),
    };
    let reason = match opened {
        Err(PipelineClosed) => Disconnect::PipelineClosed,
        Ok(()) => {
            let keep_alive = keep_alive_limit(connect.keep_alive, &shared.config);
            session
                .read_loop(
                    &mut rd,
                    buf,
                    keep_alive,
                    &shutdown,
                    &registration.taken_over,
                )
                .await
        }
    };

    let will_delay = Duration::from_secs(u64::from(hello.will_delay_s)).min(session.expiry());
    let mut delayed_will = None;
    if reason.fires_will()
        && let Some(will) = connect.last_will
    {
        if version == Version::V5 && !will_delay.is_zero() && reason != Disconnect::Shutdown {
            delayed_will = Some(DelayedWill::spawn(
                shared.clone(),
                will,
                will_delay,
                shutdown.clone(),
            ));
        } else {
            session.publish_will(will).await;
        }
    }
    if let Some(change) = reason.connection_change() {
        session.closed(change).await;
    }
    if reason == Disconnect::Shutdown {
        session.host_offline();
    }
    if let Some(farewell) = reason.farewell() {
        session.farewell(farewell);
    }
    if version == Version::V5 {
        let identity = speaker_identity.as_deref();
        let subscriptions = session.take_subscriptions();
        let kept = shared.kept.keep(
            &client_id,
            identity,
            session.expiry(),
            subscriptions,
            delayed_will,
        );
        if let Err(Some(will)) = kept {
            // Not kept: the session ends now, and with it the wait of its Will.
            will.fire_now().await;
        }
    }
    drop(session);
    drop(finished);
    // Let in-flight messages be acknowledged before the socket closes.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, writer).await;
    shared
        .sessions
        .deregister(&client_id, registration.connection_id);
    if let Disconnect::Unauthorized(why) = &reason {
        tracing::warn!(%peer, client_id, why, "unauthorised publish dead-lettered; connection closed");
    }
    tracing::debug!(%peer, client_id, reason = reason.label(), "device disconnected");
    reason
}

/// Whether the CONNACK granting `grant` fits the Maximum Packet Size an MQTT 5 client asked for
/// (`client_max`). A client that cannot be sent its CONNACK cannot be sent a single
/// acknowledgement either (every PUBACK would be discarded, MQTT-3.1.2-24, and the client would
/// resend forever), so its CONNECT is refused as malformed, without CONNACK, saying why.
fn connack_fits(version: Version, client_max: Option<u32>, grant: &Grant) -> Result<(), String> {
    let Some(max) = client_max.filter(|_| version == Version::V5) else {
        return Ok(());
    };
    let connack = reply::encode_connack(
        version,
        ConnectReturnCode::Success,
        false,
        None,
        Some(grant),
    );
    if usize::try_from(max).is_ok_and(|max| connack.len() <= max) {
        return Ok(());
    }
    Err(format!(
        "Maximum Packet Size of {max} bytes is smaller than citytel's CONNACK ({} bytes): nothing could be acknowledged",
        connack.len()
    ))
}

/// How long a connection may stay silent: 1.5 times its keep-alive, at most 1.5 times
/// `endpoint.max_keep_alive`, which also applies to a keep-alive of 0 unless
/// `endpoint.allow_keep_alive_zero` (then `None`: never).
pub(crate) fn keep_alive_limit(
    keep_alive_s: u16,
    config: &crate::config::EndpointConfig,
) -> Option<Duration> {
    let max = config.max_keep_alive;
    let asked = match keep_alive_s {
        0 if config.allow_keep_alive_zero => return None,
        0 => max,
        s => Duration::from_secs(u64::from(s)).min(max),
    };
    Some(asked.mul_f64(1.5))
}

/// The keep-alive citytel holds a connection asking for `keep_alive_s` to, in seconds
/// (`endpoint.max_keep_alive` at most, and for 0 unless `endpoint.allow_keep_alive_zero`):
/// MQTT 5 tells the client when it differs (Server Keep Alive).
pub(crate) fn server_keep_alive(
    keep_alive_s: u16,
    config: &crate::config::EndpointConfig,
) -> Option<u16> {
    let max = u16::try_from(config.max_keep_alive.as_secs()).unwrap_or(u16::MAX);
    match keep_alive_s {
        0 if config.allow_keep_alive_zero => None,
        0 => Some(max),
        s => Some(s.min(max)),
    }
}

/// Answers CONNACK with `code` in `version` (MQTT 5 with `why` as the reason string), counts
/// the refusal and closes the write half.
async fn refuse<W: AsyncWrite + Unpin>(
    wr: &mut W,
    version: Version,
    code: ConnectReturnCode,
    why: impl Into<String>,
) -> Disconnect {
    let why = why.into();
    metrics::counter!(m::ENDPOINT_REFUSED_TOTAL, "reason" => refusal_label(code)).increment(1);
    tracing::debug!(?code, why, "connection refused");
    let connack = reply::encode_connack(version, code, false, Some(&why), None);
    let _ = write_bytes(wr, &connack).await;
    let _ = wr.shutdown().await;
    Disconnect::Refused(code)
}

fn refusal_label(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::RefusedProtocolVersion => "protocol_version",
        ConnectReturnCode::BadClientId => "client_id",
        ConnectReturnCode::ServiceUnavailable => "connection_limit",
        ConnectReturnCode::BadUserNamePassword => "bad_credentials",
        ConnectReturnCode::NotAuthorized => "not_authorized",
        ConnectReturnCode::Success => "none",
    }
}

/// Writes one encoded packet and flushes.
async fn write_bytes<W: AsyncWrite + Unpin>(wr: &mut W, packet: &[u8]) -> std::io::Result<()> {
    wr.write_all(packet).await?;
    wr.flush().await
}

enum ReadError {
    Closed,
    Io(String),
    Oversize(usize),
    /// A malformed packet, with the protocol level byte if it looked like a CONNECT.
    Protocol(String, Option<u8>),
}

/// Reads until the first packet is wholly buffered and returns it, read in the version its
/// protocol level names (3.1.1 when it is not a CONNECT of a version the endpoint speaks).
async fn read_packet<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<FromClient, ReadError> {
    loop {
        if let Some(header) = frame::fixed_header(buf) {
            let protocol = |e| ReadError::Protocol(e, None);
            let header = header.map_err(protocol)?;
            frame::check_flags(&header).map_err(protocol)?;
            if header.is_connect()
                && let Some(checked) = frame::check_connect_flags(buf, &header)
            {
                checked.map_err(protocol)?;
            }
        }
        // Parsing consumes the bytes even when it fails, so note the level first.
        let level = connect_protocol_level(buf);
        let version = level.and_then(Version::of_level).unwrap_or(Version::V4);
        match version.read(buf, max_packet) {
            Ok(packet) => return Ok(packet),
            Err(wire::ReadError::Incomplete(n)) => buf.reserve(n.max(MIN_READ_BUF)),
            Err(wire::ReadError::Oversize(n)) => return Err(ReadError::Oversize(n)),
            Err(wire::ReadError::Malformed(e)) => return Err(ReadError::Protocol(e, level)),
        }
        match rd.read_buf(buf).await {
            Ok(0) => return Err(ReadError::Closed),
            Ok(_) => {}
            Err(e) => return Err(ReadError::Io(e.to_string())),
        }
    }
}

/// The protocol level byte of a CONNECT at the start of `buf`, if one is there.
fn connect_protocol_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != 1 {
        return None;
    }
    let mut i = 1;
    while buf.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    i += 1;
    let name_len = usize::from(u16::from_be_bytes([*buf.get(i)?, *buf.get(i + 1)?]));
    buf.get(i + 2 + name_len).copied()
}
