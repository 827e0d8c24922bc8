//! The protocol-neutral layer between the wire and the session: MQTT 3.1.1 (rumqttc's
//! `mqttbytes::v4` codec) and MQTT 5 (`rumqttc::v5::mqttbytes::v5`) packets are read into
//! [`FromClient`] and written from [`ToClient`], so [`super::session`] and
//! [`super::connection`] hold one copy of the endpoint's rules for both protocol versions.
//!
//! A CONNECT becomes a [`Hello`]: the fields the shared logic needs, in the shape of a 3.1.1
//! CONNECT (so identity and authorisation check one type), with what MQTT 5 adds beside it.
//! The protocol level of the first packet decides the version of the whole connection.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::mqttbytes::{self, Protocol, QoS};
use rumqttc::v5::mqttbytes as mqttbytes5;
use rumqttc::v5::mqttbytes::v5;

/// The MQTT version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// MQTT 3.1.1 (protocol level 4).
    V4,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// A CONNECT, whichever the version.
#[derive(Debug, Clone)]
pub(crate) struct Hello {
    /// The version the client speaks.
    pub(crate) version: Version,
    /// Client id, keep-alive, clean session (MQTT 5: clean start), Last Will and login.
    pub(crate) connect: v4::Connect,
}

/// A packet from a client.
#[derive(Debug)]
pub(crate) enum FromClient {
    /// A second CONNECT (a protocol error after the first).
    Connect(Box<Hello>),
    /// A PUBLISH.
    Publish(Publish),
    /// PUBREL of a QoS 2 delivery.
    PubRel(u16),
    /// PINGREQ.
    PingReq,
    /// SUBSCRIBE with its packet id and number of filters.
    Subscribe(u16, usize),
    /// UNSUBSCRIBE with its packet id and number of filters.
    Unsubscribe(u16, usize),
    /// DISCONNECT.
    Disconnect,
    /// PUBACK, PUBREC or PUBCOMP: meaningless here, citytel never publishes to devices.
    PublishAck,
    /// A packet only a server sends, by name.
    ServerOnly(&'static str),
}

/// A PUBLISH, whichever the version.
#[derive(Debug, Clone)]
pub(crate) struct Publish {
    /// Topic name.
    pub(crate) topic: String,
    /// QoS.
    pub(crate) qos: QoS,
    /// Packet id (0 at QoS 0).
    pub(crate) pkid: u16,
    /// Payload.
    pub(crate) payload: Bytes,
}

/// A packet to a client, other than a PUBLISH acknowledgement (see [`Version::encode_ack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToClient {
    /// PUBCOMP for a PUBREL.
    PubComp(u16),
    /// PINGRESP.
    PingResp,
    /// SUBACK refusing every filter.
    SubAckRefused(u16, usize),
    /// UNSUBACK.
    UnsubAck(u16, usize),
}

/// Why the codec could not read a packet.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// More bytes are needed (at least this many).
    Incomplete(usize),
    /// The packet is larger than the limit (its length).
    Oversize(usize),
    /// The packet is malformed.
    Malformed(String),
}

impl FromClient {
    /// The packet's name.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            FromClient::Connect(_) => "CONNECT",
            FromClient::Publish(_) => "PUBLISH",
            FromClient::PubRel(_) => "PUBREL",
            FromClient::PingReq => "PINGREQ",
            FromClient::Subscribe(..) => "SUBSCRIBE",
            FromClient::Unsubscribe(..) => "UNSUBSCRIBE",
            FromClient::Disconnect => "DISCONNECT",
            FromClient::PublishAck => "a publish acknowledgement",
            FromClient::ServerOnly(name) => name,
        }
    }
}

impl Version {
    /// The version of protocol `level`, if the endpoint speaks it.
    pub(crate) fn of_level(level: u8) -> Option<Version> {
        match level {
            4 => Some(Version::V4),
            5 => Some(Version::V5),
            _ => None,
        }
    }

    /// Reads the packet at the start of `buf` (consuming it), at most `max_packet` bytes after
    /// its fixed header.
    pub(crate) fn read(
        self,
        buf: &mut BytesMut,
        max_packet: usize,
    ) -> Result<FromClient, ReadError> {
        match self {
            Version::V4 => read_v4(buf, max_packet),
            Version::V5 => read_v5(buf, max_packet),
        }
    }

    /// Encodes the acknowledgement of a PUBLISH at `qos` with packet id `pkid`: PUBACK, or
    /// PUBREC at QoS 2.
    pub(crate) fn encode_ack(self, pkid: u16, qos: QoS, out: &mut BytesMut) {
        // Only small, well-formed packets are written here; encoding cannot fail.
        match (self, qos) {
            (Version::V4, QoS::ExactlyOnce) => {
                let _ = v4::Packet::PubRec(v4::PubRec::new(pkid)).write(out, usize::MAX);
            }
            (Version::V4, _) => {
                let _ = v4::Packet::PubAck(v4::PubAck::new(pkid)).write(out, usize::MAX);
            }
            (Version::V5, QoS::ExactlyOnce) => {
                let _ = v5::Packet::PubRec(v5::PubRec::new(pkid, None)).write(out, None);
            }
            (Version::V5, _) => {
                let _ = v5::Packet::PubAck(v5::PubAck::new(pkid, None)).write(out, None);
            }
        }
    }

    /// Encodes `packet`.
    pub(crate) fn encode(self, packet: &ToClient, out: &mut BytesMut) {
        match self {
            Version::V4 => {
                let packet = match *packet {
                    ToClient::PubComp(pkid) => v4::Packet::PubComp(v4::PubComp::new(pkid)),
                    ToClient::PingResp => v4::Packet::PingResp,
                    ToClient::SubAckRefused(pkid, n) => v4::Packet::SubAck(v4::SubAck::new(
                        pkid,
                        vec![v4::SubscribeReasonCode::Failure; n],
                    )),
                    ToClient::UnsubAck(pkid, _) => v4::Packet::UnsubAck(v4::UnsubAck::new(pkid)),
                };
                let _ = packet.write(out, usize::MAX);
            }
            Version::V5 => {
                let packet = match *packet {
                    ToClient::PubComp(pkid) => v5::Packet::PubComp(v5::PubComp::new(pkid, None)),
                    ToClient::PingResp => v5::Packet::PingResp(v5::PingResp),
                    ToClient::SubAckRefused(pkid, n) => v5::Packet::SubAck(v5::SubAck {
                        pkid,
                        return_codes: vec![v5::SubscribeReasonCode::NotAuthorized; n],
                        properties: None,
                    }),
                    ToClient::UnsubAck(pkid, n) => v5::Packet::UnsubAck(v5::UnsubAck {
                        pkid,
                        reasons: vec![v5::UnsubAckReason::NoSubscriptionExisted; n],
                        properties: None,
                    }),
                };
                let _ = packet.write(out, None);
            }
        }
    }
}

fn read_v4(buf: &mut BytesMut, max_packet: usize) -> Result<FromClient, ReadError> {
    let packet = match v4::Packet::read(buf, max_packet) {
        Ok(packet) => packet,
        Err(mqttbytes::Error::InsufficientBytes(n)) => return Err(ReadError::Incomplete(n)),
        Err(mqttbytes::Error::PayloadSizeLimitExceeded(n)) => return Err(ReadError::Oversize(n)),
        Err(e) => return Err(ReadError::Malformed(e.to_string())),
    };
    Ok(match packet {
        v4::Packet::Connect(connect) => FromClient::Connect(Box::new(Hello {
            version: Version::V4,
            connect,
        })),
        v4::Packet::Publish(p) => FromClient::Publish(Publish {
            topic: p.topic,
            qos: p.qos,
            pkid: p.pkid,
            payload: p.payload,
        }),
        v4::Packet::PubRel(rel) => FromClient::PubRel(rel.pkid),
        v4::Packet::PingReq => FromClient::PingReq,
        v4::Packet::Subscribe(sub) => FromClient::Subscribe(sub.pkid, sub.filters.len()),
        v4::Packet::Unsubscribe(u) => FromClient::Unsubscribe(u.pkid, u.topics.len()),
        v4::Packet::Disconnect => FromClient::Disconnect,
        v4::Packet::PubAck(_) | v4::Packet::PubRec(_) | v4::Packet::PubComp(_) => {
            FromClient::PublishAck
        }
        v4::Packet::ConnAck(_) => FromClient::ServerOnly("CONNACK"),
        v4::Packet::SubAck(_) => FromClient::ServerOnly("SUBACK"),
        v4::Packet::UnsubAck(_) => FromClient::ServerOnly("UNSUBACK"),
        v4::Packet::PingResp => FromClient::ServerOnly("PINGRESP"),
    })
}

/// DISCONNECT with no reason code and no properties (remaining length 0), which MQTT 5 allows
/// and rumqttc's v5 codec does not read.
const BARE_DISCONNECT: [u8; 2] = [0xe0, 0x00];

fn read_v5(buf: &mut BytesMut, max_packet: usize) -> Result<FromClient, ReadError> {
    if buf.starts_with(&BARE_DISCONNECT) {
        let _ = buf.split_to(BARE_DISCONNECT.len());
        return Ok(FromClient::Disconnect);
    }
    let max = u32::try_from(max_packet).unwrap_or(u32::MAX);
    let packet = match v5::Packet::read(buf, Some(max)) {
        Ok(packet) => packet,
        Err(mqttbytes5::Error::InsufficientBytes(n)) => return Err(ReadError::Incomplete(n)),
        Err(mqttbytes5::Error::PayloadSizeLimitExceeded { pkt_size, .. }) => {
            return Err(ReadError::Oversize(pkt_size));
        }
        Err(e) => return Err(ReadError::Malformed(e.to_string())),
    };
    Ok(match packet {
        v5::Packet::Connect(connect, will, login) => {
            FromClient::Connect(Box::new(hello_v5(connect, will, login)?))
        }
        v5::Packet::Publish(p) => FromClient::Publish(Publish {
            topic: utf8(p.topic, "topic name")?,
            qos: qos_of(p.qos),
            pkid: p.pkid,
            payload: p.payload,
        }),
        v5::Packet::PubRel(rel) => FromClient::PubRel(rel.pkid),
        v5::Packet::PingReq(_) => FromClient::PingReq,
        v5::Packet::Subscribe(sub) => FromClient::Subscribe(sub.pkid, sub.filters.len()),
        v5::Packet::Unsubscribe(u) => FromClient::Unsubscribe(u.pkid, u.filters.len()),
        v5::Packet::Disconnect(_) => FromClient::Disconnect,
        v5::Packet::PubAck(_) | v5::Packet::PubRec(_) | v5::Packet::PubComp(_) => {
            FromClient::PublishAck
        }
        v5::Packet::Auth(_) => FromClient::ServerOnly("AUTH"),
        v5::Packet::ConnAck(_) => FromClient::ServerOnly("CONNACK"),
        v5::Packet::SubAck(_) => FromClient::ServerOnly("SUBACK"),
        v5::Packet::UnsubAck(_) => FromClient::ServerOnly("UNSUBACK"),
        v5::Packet::PingResp(_) => FromClient::ServerOnly("PINGRESP"),
    })
}

/// An MQTT 5 CONNECT in the shape the shared logic checks.
fn hello_v5(
    connect: v5::Connect,
    will: Option<v5::LastWill>,
    login: Option<v5::Login>,
) -> Result<Hello, ReadError> {
    let last_will = match will {
        None => None,
        Some(will) => Some(v4::LastWill {
            topic: utf8(will.topic, "will topic")?,
            message: will.message,
            qos: qos_of(will.qos),
            retain: will.retain,
        }),
    };
    Ok(Hello {
        version: Version::V5,
        connect: v4::Connect {
            protocol: Protocol::V5,
            keep_alive: connect.keep_alive,
            client_id: connect.client_id,
            clean_session: connect.clean_start,
            last_will,
            login: login.map(|l| v4::Login {
                username: l.username,
                password: l.password,
            }),
        },
    })
}

/// The QoS of rumqttc's v5 codec as the one the pipeline uses.
fn qos_of(qos: mqttbytes5::QoS) -> QoS {
    match qos {
        mqttbytes5::QoS::AtMostOnce => QoS::AtMostOnce,
        mqttbytes5::QoS::AtLeastOnce => QoS::AtLeastOnce,
        mqttbytes5::QoS::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn utf8(bytes: Bytes, what: &str) -> Result<String, ReadError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ReadError::Malformed(format!("{what} is not UTF-8")))
}

/// The MQTT 5 CONNACK reason code for a 3.1.1 return code (the shared logic decides in 3.1.1
/// codes; MQTT 5 has a more precise one for each).
pub(crate) fn connack_code_v5(code: v4::ConnectReturnCode) -> v5::ConnectReturnCode {
    match code {
        v4::ConnectReturnCode::Success => v5::ConnectReturnCode::Success,
        v4::ConnectReturnCode::RefusedProtocolVersion => {
            v5::ConnectReturnCode::UnsupportedProtocolVersion
        }
        v4::ConnectReturnCode::BadClientId => v5::ConnectReturnCode::ClientIdentifierNotValid,
        v4::ConnectReturnCode::ServiceUnavailable => v5::ConnectReturnCode::ServerUnavailable,
        v4::ConnectReturnCode::BadUserNamePassword => v5::ConnectReturnCode::BadUserNamePassword,
        v4::ConnectReturnCode::NotAuthorized => v5::ConnectReturnCode::NotAuthorized,
    }
}

/// Encodes a CONNACK with `code` (`session_present` on success) in `version`; an MQTT 5
/// refusal carries `why` as its reason string, and an MQTT 5 success the server keep-alive
/// when citytel uses another than the client asked for.
pub(crate) fn encode_connack(
    version: Version,
    code: v4::ConnectReturnCode,
    session_present: bool,
    why: Option<&str>,
    server_keep_alive: Option<u16>,
) -> BytesMut {
    let mut out = BytesMut::with_capacity(16);
    match version {
        Version::V4 => {
            let _ = v4::Packet::ConnAck(v4::ConnAck::new(code, session_present))
                .write(&mut out, usize::MAX);
        }
        Version::V5 => {
            let properties = v5::ConnAckProperties {
                session_expiry_interval: None,
                receive_max: None,
                max_qos: None,
                // Devices only publish here: no retained messages, subscriptions or wildcards.
                retain_available: Some(0),
                max_packet_size: None,
                assigned_client_identifier: None,
                topic_alias_max: None,
                reason_string: why.map(str::to_owned),
                user_properties: Vec::new(),
                wildcard_subscription_available: Some(0),
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(0),
                server_keep_alive,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            };
            let connack = v5::ConnAck {
                session_present,
                code: connack_code_v5(code),
                properties: Some(properties),
            };
            let _ = v5::Packet::ConnAck(connack).write(&mut out, None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_mqtt5_disconnect_is_read() {
        let mut buf = BytesMut::from(&[0xe0, 0x00, 0xc0, 0x00][..]);
        assert!(matches!(
            Version::V5.read(&mut buf, 1024),
            Ok(FromClient::Disconnect)
        ));
        assert!(matches!(
            Version::V5.read(&mut buf, 1024),
            Ok(FromClient::PingReq)
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn refusals_map_to_the_mqtt5_reason_codes() {
        let buf = encode_connack(
            Version::V5,
            v4::ConnectReturnCode::BadUserNamePassword,
            false,
            Some("no such device"),
            None,
        );
        // CONNACK, flags 0, reason 0x86, then properties holding the reason string.
        assert_eq!((buf[0], buf[2], buf[3]), (0x20, 0, 0x86));
        assert!(buf.windows(14).any(|w| w == b"no such device"));
        let buf = encode_connack(
            Version::V5,
            v4::ConnectReturnCode::NotAuthorized,
            false,
            None,
            None,
        );
        assert_eq!(buf[3], 0x87);
        let buf = encode_connack(
            Version::V4,
            v4::ConnectReturnCode::NotAuthorized,
            false,
            None,
            None,
        );
        assert_eq!(&buf[..], &[0x20, 2, 0, 5]);
    }
}
