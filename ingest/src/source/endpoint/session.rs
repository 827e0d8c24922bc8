//! An established connection's read half: reads packets from large reads, hands each PUBLISH to
//! the pipeline with an acknowledgement bound to the connection's write half
//! ([`super::outgoing`]), answers control packets, reads past and dead-letters oversize
//! PUBLISH packets ([`super::frame`]), and queues the connection events and the Last Will
//! ([`super::connection`] decides when). Sparkplug edge nodes' messages, subscriptions and
//! routes are handled in [`sparkplug`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::LastWill;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::aliases::TopicAliases;
use super::authorize::Speaker;
use super::connection::{Disconnect, status_topic_of};
use super::frame::{self, Oversize};
use super::outgoing::Outgoing;
use super::reply::ToClient;
use super::sparkplug::{NodeKey, RouteHandle};
use super::wire::{self, FromClient, Publish, Version};
use crate::decode::{RejectReason, Rejection};
use crate::journal::{Connection, DEAD_LETTER_PAYLOAD_CAP};
use crate::pipeline::{Ack, AckToken, Admission, ConnectionEvent, Inbound, Origin, PipelineClosed};
use crate::telemetry::metrics as m;
use citytel_proto::sparkplug::topic::is_sparkplug;

mod expiry;
mod sparkplug;

/// Smallest read buffer; it grows for connections that fill it.
const MIN_READ_BUF: usize = super::connection::MIN_READ_BUF;
/// Largest read buffer for a busy connection.
const MAX_READ_BUF: usize = 256 * 1024;

/// The state of an established connection's read half.
pub(crate) struct Session {
    shared: Arc<Shared>,
    outgoing: Outgoing,
    /// The status topic of the device this connection belongs to, once known (and its
    /// "opened" event queued).
    device: Option<String>,
    /// An oversize PUBLISH being read past.
    discarding: Option<Oversize>,
    /// Who is connected and what it may say (with device authentication).
    speaker: Option<Speaker>,
    /// The MQTT version the connection speaks.
    version: Version,
    /// MQTT 5 topic aliases.
    aliases: TopicAliases,
    /// The Sparkplug edge node this connection is bound to, and its route for commands.
    sparkplug_node: Option<(NodeKey, RouteHandle)>,
    /// The filters this connection holds a subscription to (only granted ones: an edge node's
    /// own commands and citytel's STATE), for UNSUBACK's reason codes and the offline STATE.
    subscriptions: BTreeSet<String>,
    /// The MQTT 5 Session Expiry Interval, seconds (see [`expiry`]).
    session_expiry_s: u32,
}

/// What the read buffer held next.
enum Step {
    /// A whole packet.
    Packet(FromClient),
    /// An oversize PUBLISH, read past.
    Oversize(Oversize),
}

/// Whether a PUBLISH got its share of the intake's budget.
enum Admitted {
    /// It did.
    Yes(Admission),
    /// It is refused while the intake is saturated: the acknowledgement saying so.
    Refused(ToClient),
}

/// What to do after a packet.
enum Next {
    Continue,
    Stop(Disconnect),
}

impl Session {
    /// The read half of a connection whose write half is `outgoing`, authenticated as
    /// `speaker` (with device authentication), speaking `version`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        outgoing: Outgoing,
        speaker: Option<Speaker>,
        version: Version,
    ) -> Self {
        let aliases = match version {
            Version::V4 => TopicAliases::default(),
            Version::V5 => TopicAliases::new(shared.config.topic_alias_maximum),
        };
        Session {
            version,
            aliases,
            shared,
            outgoing,
            device: None,
            discarding: None,
            speaker,
            sparkplug_node: None,
            subscriptions: BTreeSet::new(),
            session_expiry_s: 0,
        }
    }

    pub(crate) async fn read_loop<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
        mut buf: BytesMut,
        keep_alive: Option<Duration>,
        shutdown: &CancellationToken,
        taken_over: &CancellationToken,
    ) -> Disconnect {
        let mut read_size = MIN_READ_BUF;
        loop {
            loop {
                match self.next_packet(&mut buf) {
                    Ok(Some(Step::Packet(packet))) => {
                        if let Next::Stop(reason) = self.handle(packet).await {
                            return reason;
                        }
                    }
                    Ok(Some(Step::Oversize(oversize))) => {
                        if let Next::Stop(reason) = self.dead_letter(oversize).await {
                            return reason;
                        }
                    }
                    Ok(None) => break,
                    Err(reason) => return reason,
                }
            }
            if buf.capacity() - buf.len() < MIN_READ_BUF {
                buf.reserve(read_size);
            }
            let read = async {
                match keep_alive {
                    Some(limit) => tokio::time::timeout(limit, rd.read_buf(&mut buf))
                        .await
                        .map_err(|_| ()),
                    None => Ok(rd.read_buf(&mut buf).await),
                }
            };
            tokio::select! {
                biased;
                _ = taken_over.cancelled() => return Disconnect::TakenOver,
                _ = shutdown.cancelled() => return Disconnect::Shutdown,
                _ = self.outgoing.stalled.cancelled() => return Disconnect::SlowReader,
                r = read => match r {
                    Err(()) => return Disconnect::KeepAliveExpired,
                    Ok(Ok(0)) => return Disconnect::Closed,
                    Ok(Ok(n)) => {
                        if n >= read_size / 2 {
                            read_size = (read_size * 2).min(MAX_READ_BUF);
                        }
                    }
                    Ok(Err(e)) => return Disconnect::Io(e.to_string()),
                },
            }
        }
    }

    /// The next whole packet (or oversize PUBLISH read past) in `buf`, consuming it; `None`
    /// until more bytes arrive.
    fn next_packet(&mut self, buf: &mut BytesMut) -> Result<Option<Step>, Disconnect> {
        let config = &self.shared.config;
        loop {
            if let Some(oversize) = &mut self.discarding {
                if !oversize.feed(buf) {
                    return Ok(None);
                }
                return Ok(self.discarding.take().map(Step::Oversize));
            }
            let header = match frame::fixed_header(buf) {
                None => return Ok(None),
                Some(Err(e)) => return Err(Disconnect::ProtocolError(e)),
                Some(Ok(header)) => header,
            };
            frame::check_flags(&header).map_err(Disconnect::ProtocolError)?;
            if header.remaining_len > config.max_packet_bytes {
                if !header.is_publish() || header.total_len() > config.max_discard_bytes {
                    return Err(Disconnect::Oversize(header.total_len()));
                }
                match Oversize::start(
                    buf,
                    &header,
                    DEAD_LETTER_PAYLOAD_CAP,
                    self.version == Version::V5,
                ) {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(Disconnect::ProtocolError(e)),
                    Some(Ok(oversize)) => {
                        self.discarding = Some(oversize);
                        continue;
                    }
                }
            }
            return match self.version.read(buf, config.max_packet_bytes) {
                Ok(FromClient::Publish(publish)) if frame::has_wildcard(&publish.topic) => {
                    Err(Disconnect::ProtocolError(format!(
                        "wildcard in topic name {:?}",
                        publish.topic
                    )))
                }
                Ok(packet) => Ok(Some(Step::Packet(packet))),
                Err(wire::ReadError::Incomplete(_)) => Ok(None),
                Err(wire::ReadError::Oversize(n)) => Err(Disconnect::Oversize(n)),
                Err(wire::ReadError::Malformed(e)) => Err(Disconnect::ProtocolError(e)),
            };
        }
    }

    /// Dead-letters an oversize PUBLISH read past (with its first bytes) and acknowledges it
    /// once that is durable, so the device stops resending it.
    async fn dead_letter(&mut self, oversize: Oversize) -> Next {
        let ack = self.ack(oversize.qos, oversize.pkid);
        let rejection = Rejection::new(
            RejectReason::Oversize,
            format!(
                "packet of {} bytes exceeds endpoint.max_packet_bytes ({}); its first {} payload bytes are kept",
                oversize.total_len,
                self.shared.config.max_packet_bytes,
                oversize.kept.len()
            ),
        );
        let inbound = Inbound {
            topic: oversize.topic,
            payload: oversize.kept.freeze(),
            received_at_ms: self.shared.pipeline.now_ms(),
            origin: Origin::Endpoint,
            ack,
            user_properties: None,
        };
        match self
            .shared
            .pipeline
            .submit_rejected(inbound, rejection)
            .await
        {
            Ok(()) => Next::Continue,
            Err(_) => Next::Stop(Disconnect::PipelineClosed),
        }
    }

    async fn handle(&mut self, packet: FromClient) -> Next {
        match packet {
            FromClient::Publish(mut publish) => {
                if self.version == Version::V5 {
                    if publish.qos != QoS::AtMostOnce
                        && self.outgoing.in_flight.get()
                            >= usize::from(self.shared.config.receive_maximum)
                    {
                        return Next::Stop(Disconnect::ReceiveMaximumExceeded);
                    }
                    let topic = std::mem::take(&mut publish.topic);
                    match self.aliases.resolve(topic, publish.topic_alias) {
                        Ok(topic) => publish.topic = topic,
                        Err(reason) => return Next::Stop(reason),
                    }
                }
                if let Some(speaker) = &mut self.speaker
                    && let Err(why) = speaker.check_topic(&publish.topic)
                {
                    return self.unauthorized(publish, why).await;
                }
                if let Some(sparkplug) = self.shared.sparkplug.clone()
                    && is_sparkplug(&publish.topic)
                {
                    return self.sparkplug_publish(&sparkplug, publish).await;
                }
                if self.device.is_none()
                    && let Some(device) = status_topic_of(&publish.topic)
                    && self.opened(device).await.is_err()
                {
                    return Next::Stop(Disconnect::PipelineClosed);
                }
                let admission = match self.admit_or_refuse(&publish).await {
                    Ok(Admitted::Yes(admission)) => admission,
                    Ok(Admitted::Refused(busy)) => return self.control(busy),
                    Err(PipelineClosed) => return Next::Stop(Disconnect::PipelineClosed),
                };
                let inbound = self.inbound(publish);
                let submitted = match &self.speaker {
                    None => self
                        .shared
                        .pipeline
                        .submit_admitted(inbound, admission)
                        .map(|()| true),
                    Some(speaker) => {
                        let mut refused = None;
                        let allowed = self.shared.pipeline.submit_checked_admitted(
                            inbound,
                            admission,
                            |decoded| {
                                speaker.check_payload(decoded).inspect_err(|why| {
                                    refused = Some(why.clone());
                                })
                            },
                        );
                        match allowed {
                            Ok(false) => {
                                return Next::Stop(Disconnect::Unauthorized(
                                    refused.unwrap_or_default(),
                                ));
                            }
                            other => other,
                        }
                    }
                };
                match submitted {
                    Ok(_) => Next::Continue,
                    Err(_) => Next::Stop(Disconnect::PipelineClosed),
                }
            }
            FromClient::PubRel(pkid) => self.control(ToClient::PubComp(pkid)),
            FromClient::PingReq => self.control(ToClient::PingResp),
            // Devices only publish here: every subscription is refused but a Sparkplug edge
            // node's own commands and citytel's STATE.
            FromClient::Subscribe(pkid, filters) => self.subscribe(pkid, &filters),
            FromClient::Unsubscribe(pkid, filters) => self.unsubscribe(pkid, &filters),
            FromClient::Disconnect(expiry) => self.leave(expiry, Disconnect::ByClient),
            FromClient::DisconnectWithWill(expiry) => {
                self.leave(expiry, Disconnect::ByClientWithWill)
            }
            FromClient::Connect(_) => {
                Next::Stop(Disconnect::ProtocolError("second CONNECT".into()))
            }
            // Acknowledgements of publishes are meaningless here (citytel never publishes to
            // devices); a server-only packet from a client breaks the protocol.
            FromClient::PublishAck => Next::Continue,
            FromClient::ServerOnly(name) => Next::Stop(Disconnect::ProtocolError(format!(
                "unexpected {name} from a client"
            ))),
        }
    }

    /// The share of the intake's in-flight budget `publish` takes, waiting while it is
    /// exhausted. An MQTT 5 PUBLISH at QoS 1 or 2 that finds no room within
    /// `endpoint.busy_refusal_after`, with nothing earlier of this connection unacknowledged (so
    /// the refusal cannot overtake an acknowledgement), is refused instead: the PUBACK or PUBREC
    /// 0x97 to send, counted; it is not stored.
    async fn admit_or_refuse(&self, publish: &Publish) -> Result<Admitted, PipelineClosed> {
        let wait = self.shared.config.busy_refusal_after;
        let admission = self
            .shared
            .pipeline
            .admission(publish.topic.len(), publish.payload.len());
        if self.version != Version::V5 || publish.qos == QoS::AtMostOnce || wait.is_zero() {
            return admission.await.map(Admitted::Yes);
        }
        tokio::pin!(admission);
        match tokio::time::timeout(wait, &mut admission).await {
            Ok(admitted) => admitted.map(Admitted::Yes),
            Err(_) if self.outgoing.in_flight.get() == 0 => {
                metrics::counter!(m::ENDPOINT_BUSY_REFUSED_TOTAL).increment(1);
                tracing::debug!(
                    topic = publish.topic,
                    "PUBLISH refused: the intake is saturated"
                );
                Ok(Admitted::Refused(ToClient::Busy(publish.pkid, publish.qos)))
            }
            Err(_) => admission.await.map(Admitted::Yes),
        }
    }

    /// Dead-letters a PUBLISH this connection may not send (`unauthorized`, acknowledged once
    /// durable) and ends the connection.
    async fn unauthorized(&mut self, publish: Publish, why: String) -> Next {
        let inbound = self.inbound(publish);
        let rejection = Rejection::new(RejectReason::Unauthorized, why.clone());
        match self
            .shared
            .pipeline
            .submit_rejected(inbound, rejection)
            .await
        {
            Ok(()) => Next::Stop(Disconnect::Unauthorized(why)),
            Err(_) => Next::Stop(Disconnect::PipelineClosed),
        }
    }

    /// The pipeline's message for `publish`, its acknowledgement bound to this connection.
    pub(crate) fn inbound(&self, publish: Publish) -> Inbound {
        Inbound {
            ack: self.ack(publish.qos, publish.pkid),
            topic: publish.topic,
            payload: publish.payload,
            received_at_ms: self.shared.pipeline.now_ms(),
            origin: Origin::Endpoint,
            user_properties: publish.user_properties,
        }
    }

    /// The acknowledgement of a PUBLISH at `qos` with packet id `pkid` (none at QoS 0),
    /// counted in flight until the write half sends it.
    fn ack(&self, qos: QoS, pkid: u16) -> Option<Ack> {
        match qos {
            QoS::AtMostOnce => None,
            qos => {
                self.outgoing.in_flight.add();
                Some(Ack::bounded(
                    AckToken::new(pkid, qos),
                    self.outgoing.acks.clone(),
                ))
            }
        }
    }

    /// Has the write half end with `packet` (the server's DISCONNECT).
    pub(crate) fn farewell(&self, packet: ToClient) {
        self.outgoing.farewell(packet);
    }

    /// Queues a control packet; a full queue means the client does not read.
    fn control(&self, packet: ToClient) -> Next {
        match self.outgoing.control.try_send(packet) {
            Ok(()) => Next::Continue,
            Err(mpsc::error::TrySendError::Full(_)) => Next::Stop(Disconnect::SlowReader),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Next::Stop(Disconnect::Io("writer closed".into()))
            }
        }
    }

    /// Notes that this connection belongs to `device` (a status topic) and queues its "opened"
    /// event.
    pub(crate) async fn opened(&mut self, device: String) -> Result<(), PipelineClosed> {
        let event = ConnectionEvent {
            topic: device.clone(),
            received_at_ms: self.shared.pipeline.now_ms(),
            change: Connection::Opened,
        };
        self.device = Some(device);
        self.shared.pipeline.connection(event).await
    }

    /// Queues the connection's end, if its device is known.
    pub(crate) async fn closed(&mut self, change: Connection) {
        let Some(topic) = self.device.take() else {
            return;
        };
        let event = ConnectionEvent {
            topic,
            received_at_ms: self.shared.pipeline.now_ms(),
            change,
        };
        if self.shared.pipeline.connection(event).await.is_err() {
            tracing::warn!("connection end not stored: the pipeline is closed");
        }
    }

    /// Queues the connection's Last Will (a Sparkplug NDEATH through the host).
    pub(crate) async fn publish_will(&self, will: LastWill) {
        super::will::publish(&self.shared, will).await;
    }
}
