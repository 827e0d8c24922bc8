//! A device's rumqttc client and event loop in the fleet's MQTT version: rumqttc's 3.1.1 client
//! or its MQTT 5 client (`rumqttc::v5`), behind one small interface so the connection and
//! publisher tasks do not care which.
//!
//! Both keep a session across reconnects: 3.1.1 with `clean_session = false`, MQTT 5 with clean
//! start 0 and a Session Expiry Interval of [`SESSION_EXPIRY_S`]. The events the connection task
//! needs come out as [`LinkEvent`]s; an MQTT 5 PUBACK or PUBREC whose reason code refuses the
//! message (the server dead-lettered it) comes out as [`LinkEvent::Refused`], so it is never
//! counted as acknowledged.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use rumqttc::v5;
use rumqttc::v5::mqttbytes::v5 as packets5;
use rumqttc::{Outgoing, QoS};

use crate::broker::MqttVersion;

/// Session Expiry Interval an MQTT 5 device asks for, seconds: long enough to outlast any
/// reconnect of a simulated device.
pub(crate) const SESSION_EXPIRY_S: u32 = 3600;

/// How a device connects; the same for both versions.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    /// MQTT client id.
    pub(crate) client_id: String,
    /// Broker host.
    pub(crate) host: String,
    /// Broker port.
    pub(crate) port: u16,
    /// Keep alive (zero: off).
    pub(crate) keepalive: Duration,
    /// Most unacknowledged QoS 1/2 publishes.
    pub(crate) inflight: u16,
    /// Largest packet sent or accepted.
    pub(crate) max_packet: usize,
    /// The Last Will: topic and payload, at QoS 1, not retained.
    pub(crate) will: (String, Vec<u8>),
}

/// The requesting half: hands publishes and the DISCONNECT to the event loop.
pub(crate) enum Client {
    /// MQTT 3.1.1.
    V311(rumqttc::AsyncClient),
    /// MQTT 5.
    V5(v5::AsyncClient),
}

/// The polling half: the connection itself (boxed: rumqttc's event loops are large, and of
/// different sizes).
pub(crate) enum EventLoop {
    /// MQTT 3.1.1.
    V311(Box<rumqttc::EventLoop>),
    /// MQTT 5.
    V5(Box<v5::EventLoop>),
}

/// What happened on the connection, as far as acknowledgement tracking is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkEvent {
    /// A CONNACK accepted the connection.
    Connected {
        /// Whether the server kept the session.
        session_present: bool,
    },
    /// A PUBLISH with this packet id was written.
    Published(u16),
    /// PUBACK.
    Acked(u16),
    /// PUBREC (QoS 2).
    Received(u16),
    /// PUBCOMP (QoS 2).
    Completed(u16),
    /// An MQTT 5 PUBACK or PUBREC that refuses the message, with its reason code.
    Refused(u16, String),
    /// The DISCONNECT was written.
    Disconnected,
    /// Anything else.
    Other,
}

/// The event loop could not take a request: it is gone.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// MQTT 3.1.1.
    #[error(transparent)]
    V311(#[from] rumqttc::ClientError),
    /// MQTT 5 (boxed: it carries the request it could not hand over).
    #[error(transparent)]
    V5(Box<v5::ClientError>),
}

/// The connection failed (refused, broken, timed out).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    /// MQTT 3.1.1.
    #[error(transparent)]
    V311(#[from] rumqttc::ConnectionError),
    /// MQTT 5.
    #[error(transparent)]
    V5(#[from] v5::ConnectionError),
}

/// A client and its event loop in `version`, with `capacity` requests of room between them.
pub(crate) fn client(
    version: MqttVersion,
    options: &ConnectOptions,
    capacity: usize,
) -> (Client, EventLoop) {
    let (topic, payload) = options.will.clone();
    match version {
        MqttVersion::V311 => {
            let mut mqtt =
                rumqttc::MqttOptions::new(&options.client_id, &options.host, options.port);
            mqtt.set_clean_session(false)
                .set_keep_alive(options.keepalive)
                .set_inflight(options.inflight)
                .set_max_packet_size(options.max_packet, options.max_packet)
                .set_last_will(rumqttc::LastWill::new(
                    topic,
                    payload,
                    QoS::AtLeastOnce,
                    false,
                ));
            let (client, mut eventloop) = rumqttc::AsyncClient::new(mqtt, capacity);
            let mut network = eventloop.network_options();
            // Without it, Nagle's algorithm holds back small publishes and QoS 1 throughput
            // collapses.
            network.set_tcp_nodelay(true);
            eventloop.set_network_options(network);
            (Client::V311(client), EventLoop::V311(Box::new(eventloop)))
        }
        MqttVersion::V5 => {
            let mut mqtt = v5::MqttOptions::new(&options.client_id, &options.host, options.port);
            let mut network = mqtt.network_options();
            network.set_tcp_nodelay(true);
            let max_packet = u32::try_from(options.max_packet).unwrap_or(u32::MAX);
            mqtt.set_clean_start(false)
                .set_session_expiry_interval(Some(SESSION_EXPIRY_S))
                .set_keep_alive(options.keepalive)
                .set_outgoing_inflight_upper_limit(options.inflight)
                .set_max_packet_size(Some(max_packet))
                .set_network_options(network)
                .set_last_will(packets5::LastWill::new(
                    topic,
                    payload,
                    v5_qos(QoS::AtLeastOnce),
                    false,
                    None,
                ));
            let (client, eventloop) = v5::AsyncClient::new(mqtt, capacity);
            (Client::V5(client), EventLoop::V5(Box::new(eventloop)))
        }
    }
}

impl Client {
    /// Requests a PUBLISH without waiting.
    pub(crate) fn try_publish(
        &self,
        topic: &str,
        qos: QoS,
        payload: Vec<u8>,
    ) -> Result<(), ClientError> {
        match self {
            Client::V311(client) => Ok(client.try_publish(topic, qos, false, payload)?),
            Client::V5(client) => client
                .try_publish(topic, v5_qos(qos), false, payload)
                .map_err(|e| ClientError::V5(Box::new(e))),
        }
    }

    /// Requests the DISCONNECT without waiting.
    pub(crate) fn try_disconnect(&self) -> Result<(), ClientError> {
        match self {
            Client::V311(client) => Ok(client.try_disconnect()?),
            Client::V5(client) => client
                .try_disconnect()
                .map_err(|e| ClientError::V5(Box::new(e))),
        }
    }
}

impl EventLoop {
    /// Drives the connection (connecting first if needed) until the next event.
    pub(crate) async fn poll(&mut self) -> Result<LinkEvent, ConnectionError> {
        match self {
            EventLoop::V311(eventloop) => Ok(event_v311(eventloop.poll().await?)),
            EventLoop::V5(eventloop) => Ok(event_v5(eventloop.poll().await?)),
        }
    }

    /// Events rumqttc handled but did not hand out yet (it handles several packets per read);
    /// taken, to account for them when the connection failed midway.
    pub(crate) fn take_buffered(&mut self) -> Vec<LinkEvent> {
        match self {
            EventLoop::V311(eventloop) => {
                eventloop.state.events.drain(..).map(event_v311).collect()
            }
            EventLoop::V5(eventloop) => eventloop.state.events.drain(..).map(event_v5).collect(),
        }
    }

    /// Publish requests in rumqttc's pending queue that were never written (packet id 0): the
    /// ones a CONNACK without a session discards along with the in-flight publishes.
    pub(crate) fn unsent_publishes(&self) -> usize {
        match self {
            EventLoop::V311(eventloop) => count_unsent(
                &eventloop.pending,
                |request| matches!(request, rumqttc::Request::Publish(publish) if publish.pkid == 0),
            ),
            EventLoop::V5(eventloop) => count_unsent(
                &eventloop.pending,
                |request| matches!(request, v5::Request::Publish(publish) if publish.pkid == 0),
            ),
        }
    }
}

fn count_unsent<R>(pending: &VecDeque<R>, unsent: impl Fn(&R) -> bool) -> usize {
    pending.iter().filter(|request| unsent(request)).count()
}

fn v5_qos(qos: QoS) -> v5::mqttbytes::QoS {
    match qos {
        QoS::AtMostOnce => v5::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => v5::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => v5::mqttbytes::QoS::ExactlyOnce,
    }
}

fn event_v311(event: rumqttc::Event) -> LinkEvent {
    use rumqttc::{Event, Packet};
    match event {
        Event::Incoming(Packet::ConnAck(ack)) => LinkEvent::Connected {
            session_present: ack.session_present,
        },
        Event::Incoming(Packet::PubAck(ack)) => LinkEvent::Acked(ack.pkid),
        Event::Incoming(Packet::PubRec(rec)) => LinkEvent::Received(rec.pkid),
        Event::Incoming(Packet::PubComp(comp)) => LinkEvent::Completed(comp.pkid),
        Event::Outgoing(outgoing) => outgoing_event(outgoing),
        Event::Incoming(_) => LinkEvent::Other,
    }
}

fn event_v5(event: v5::Event) -> LinkEvent {
    use packets5::{Packet, PubAckReason, PubRecReason};
    match event {
        v5::Event::Incoming(Packet::ConnAck(ack)) => LinkEvent::Connected {
            session_present: ack.session_present,
        },
        v5::Event::Incoming(Packet::PubAck(ack)) => match ack.reason {
            PubAckReason::Success | PubAckReason::NoMatchingSubscribers => {
                LinkEvent::Acked(ack.pkid)
            }
            reason => LinkEvent::Refused(ack.pkid, refusal(reason, ack.properties)),
        },
        v5::Event::Incoming(Packet::PubRec(rec)) => match rec.reason {
            PubRecReason::Success | PubRecReason::NoMatchingSubscribers => {
                LinkEvent::Received(rec.pkid)
            }
            reason => LinkEvent::Refused(rec.pkid, refusal(reason, rec.properties)),
        },
        v5::Event::Incoming(Packet::PubComp(comp)) => LinkEvent::Completed(comp.pkid),
        v5::Event::Outgoing(outgoing) => outgoing_event(outgoing),
        v5::Event::Incoming(_) => LinkEvent::Other,
    }
}

/// A refusing reason code and the reason string that came with it, for the error count.
fn refusal<P: fmt::Debug>(reason: impl fmt::Debug, properties: Option<P>) -> String {
    match properties {
        Some(properties) => format!("{reason:?} {properties:?}"),
        None => format!("{reason:?}"),
    }
}

fn outgoing_event(outgoing: Outgoing) -> LinkEvent {
    match outgoing {
        Outgoing::Publish(pkid) => LinkEvent::Published(pkid),
        Outgoing::Disconnect => LinkEvent::Disconnected,
        _ => LinkEvent::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusing_mqtt5_puback_is_not_an_acknowledgement() {
        let ack = |reason| {
            event_v5(v5::Event::Incoming(packets5::Packet::PubAck(
                packets5::PubAck {
                    pkid: 7,
                    reason,
                    properties: None,
                },
            )))
        };
        assert_eq!(ack(packets5::PubAckReason::Success), LinkEvent::Acked(7));
        assert_eq!(
            ack(packets5::PubAckReason::PayloadFormatInvalid),
            LinkEvent::Refused(7, "PayloadFormatInvalid".into())
        );
    }

    #[test]
    fn both_versions_report_the_same_events() {
        let v311 = event_v311(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(
            rumqttc::ConnAck::new(rumqttc::ConnectReturnCode::Success, true),
        )));
        let v5 = event_v5(v5::Event::Incoming(packets5::Packet::ConnAck(
            packets5::ConnAck {
                session_present: true,
                code: packets5::ConnectReturnCode::Success,
                properties: None,
            },
        )));
        let connected = LinkEvent::Connected {
            session_present: true,
        };
        assert_eq!((v311, v5), (connected.clone(), connected));
        assert_eq!(
            event_v5(v5::Event::Outgoing(Outgoing::Publish(3))),
            LinkEvent::Published(3)
        );
    }

    /// The CONNECT a client in `version` sends to a listener, decoded as MQTT 5 or 3.1.1.
    async fn first_connect(version: MqttVersion) -> (u8, bytes::BytesMut) {
        use tokio::io::AsyncReadExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let options = ConnectOptions {
            client_id: "cab-0001".into(),
            host: "127.0.0.1".into(),
            port: listener.local_addr().unwrap().port(),
            keepalive: Duration::from_secs(30),
            inflight: 10,
            max_packet: 1 << 20,
            will: ("citytel/v1/s/cabinet/cab-0001/status".into(), vec![1, 2]),
        };
        let (_client, mut eventloop) = client(version, &options, 4);
        let polling = tokio::spawn(async move { eventloop.poll().await.is_ok() });
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = bytes::BytesMut::new();
        // Fixed header, protocol name "MQTT", then the level: 9 bytes for a short CONNECT.
        while buf.len() < 9 || buf.len() < usize::from(buf[1]) + 2 {
            assert!(stream.read_buf(&mut buf).await.unwrap() > 0, "CONNECT");
        }
        polling.abort();
        (buf[8], buf)
    }

    #[tokio::test]
    async fn each_version_connects_in_its_own_protocol_with_a_kept_session_and_a_will() {
        let (level, mut v5) = first_connect(MqttVersion::V5).await;
        assert_eq!(level, 5);
        let Ok(packets5::Packet::Connect(connect, will, _)) = packets5::Packet::read(&mut v5, None)
        else {
            panic!("an MQTT 5 CONNECT");
        };
        assert!(!connect.clean_start);
        let expiry = connect.properties.and_then(|p| p.session_expiry_interval);
        assert_eq!(expiry, Some(SESSION_EXPIRY_S));
        let will = will.expect("a Last Will");
        assert_eq!(will.qos, v5::mqttbytes::QoS::AtLeastOnce);
        assert_eq!(&will.message[..], &[1, 2]);

        let (level, mut v311) = first_connect(MqttVersion::V311).await;
        assert_eq!(level, 4);
        let Ok(rumqttc::Packet::Connect(connect)) = rumqttc::Packet::read(&mut v311, 1 << 20)
        else {
            panic!("an MQTT 3.1.1 CONNECT");
        };
        assert!(!connect.clean_session);
        assert_eq!(
            connect.last_will.map(|w| w.message.to_vec()),
            Some(vec![1, 2])
        );
    }
}
