//! The protocol-neutral layer between the wire and the session: MQTT 3.1.1 (rumqttc's
//! `mqttbytes::v4` codec) and MQTT 5 (`rumqttc::v5::mqttbytes::v5`) packets are read into
//! [`FromClient`] (and written by [`super::reply`]), so [`super::session`] and
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
    /// What an MQTT 5 client asks of the server's packets (3.1.1: the defaults).
    pub(crate) options: ClientOptions,
    /// MQTT 5 Session Expiry Interval asked for, in seconds (0: the session ends with the
    /// connection; 3.1.1: 0).
    pub(crate) session_expiry_s: u32,
    /// MQTT 5 Will Delay Interval, in seconds (0: the Last Will is published at once).
    pub(crate) will_delay_s: u32,
}

/// What an MQTT 5 CONNECT asks of the server's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientOptions {
    /// Largest packet the client accepts (Maximum Packet Size); `None`: no limit.
    pub(crate) max_packet: Option<u32>,
    /// Whether the client takes reason strings on acknowledgements (Request Problem
    /// Information, 1 unless it asked for 0).
    pub(crate) problem_information: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_packet: None,
            problem_information: true,
        }
    }
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
    /// SUBSCRIBE with its packet id and its topic filters.
    Subscribe(u16, Vec<String>),
    /// UNSUBSCRIBE with its packet id and its topic filters.
    Unsubscribe(u16, Vec<String>),
    /// DISCONNECT, with the Session Expiry Interval an MQTT 5 one sets.
    Disconnect(Option<u32>),
    /// MQTT 5 DISCONNECT with reason 0x04: the client leaves cleanly but wants its Last Will
    /// published (and the Session Expiry Interval it sets).
    DisconnectWithWill(Option<u32>),
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
    /// MQTT 5 Topic Alias: with a topic, sets it; with an empty topic, names it.
    pub(crate) topic_alias: Option<u16>,
    /// MQTT 5 user properties, rendered for a dead letter ([`render_user_properties`]).
    pub(crate) user_properties: Option<Box<str>>,
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
            FromClient::Disconnect(_) | FromClient::DisconnectWithWill(_) => "DISCONNECT",
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
}

/// What a codec's "insufficient bytes" means. rumqttc's codecs take a whole packet off the
/// buffer before they read its fields, and report a field running past the packet's end the
/// same way as a packet not all in yet. Only the latter is worth waiting for: the former is a
/// malformed packet whose bytes are already gone, and waiting would read the next packet as if
/// this one had not been sent.
fn insufficient(buf: &BytesMut, before: usize, n: usize) -> ReadError {
    if buf.len() < before {
        ReadError::Malformed("a field runs past the end of its packet".into())
    } else {
        ReadError::Incomplete(n)
    }
}

fn read_v4(buf: &mut BytesMut, max_packet: usize) -> Result<FromClient, ReadError> {
    let before = buf.len();
    let packet = match v4::Packet::read(buf, max_packet) {
        Ok(packet) => packet,
        Err(mqttbytes::Error::InsufficientBytes(n)) => return Err(insufficient(buf, before, n)),
        Err(mqttbytes::Error::PayloadSizeLimitExceeded(n)) => return Err(ReadError::Oversize(n)),
        Err(e) => return Err(ReadError::Malformed(e.to_string())),
    };
    Ok(match packet {
        v4::Packet::Connect(connect) => FromClient::Connect(Box::new(Hello {
            version: Version::V4,
            connect,
            options: ClientOptions::default(),
            session_expiry_s: 0,
            will_delay_s: 0,
        })),
        v4::Packet::Publish(p) => FromClient::Publish(Publish {
            topic: p.topic,
            qos: p.qos,
            pkid: p.pkid,
            payload: p.payload,
            topic_alias: None,
            user_properties: None,
        }),
        v4::Packet::PubRel(rel) => FromClient::PubRel(rel.pkid),
        v4::Packet::PingReq => FromClient::PingReq,
        v4::Packet::Subscribe(sub) => {
            FromClient::Subscribe(sub.pkid, sub.filters.into_iter().map(|f| f.path).collect())
        }
        v4::Packet::Unsubscribe(u) => FromClient::Unsubscribe(u.pkid, u.topics),
        v4::Packet::Disconnect => FromClient::Disconnect(None),
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
/// The DISCONNECT reason code "disconnect with Will Message".
const DISCONNECT_WITH_WILL: u8 = 0x04;

fn read_v5(buf: &mut BytesMut, max_packet: usize) -> Result<FromClient, ReadError> {
    if buf.starts_with(&BARE_DISCONNECT) {
        let _ = buf.split_to(BARE_DISCONNECT.len());
        return Ok(FromClient::Disconnect(None));
    }
    // A reason code and no property length (remaining length 1), which MQTT 5 also allows and
    // rumqttc's codec does not read either.
    if buf.starts_with(&[0xe0, 0x01]) {
        if buf.len() < 3 {
            return Err(ReadError::Incomplete(3 - buf.len()));
        }
        let code = buf.split_to(3)[2];
        return Ok(if code == DISCONNECT_WITH_WILL {
            FromClient::DisconnectWithWill(None)
        } else {
            FromClient::Disconnect(None)
        });
    }
    let max = u32::try_from(max_packet).unwrap_or(u32::MAX);
    let before = buf.len();
    let packet = match v5::Packet::read(buf, Some(max)) {
        Ok(packet) => packet,
        Err(mqttbytes5::Error::InsufficientBytes(n)) => return Err(insufficient(buf, before, n)),
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
            topic_alias: p.properties.as_ref().and_then(|props| props.topic_alias),
            user_properties: p
                .properties
                .as_ref()
                .and_then(|props| render_user_properties(&props.user_properties)),
        }),
        v5::Packet::PubRel(rel) => FromClient::PubRel(rel.pkid),
        v5::Packet::PingReq(_) => FromClient::PingReq,
        v5::Packet::Subscribe(sub) => {
            FromClient::Subscribe(sub.pkid, sub.filters.into_iter().map(|f| f.path).collect())
        }
        v5::Packet::Unsubscribe(u) => FromClient::Unsubscribe(u.pkid, u.filters),
        v5::Packet::Disconnect(d) => {
            let expiry = d.properties.and_then(|p| p.session_expiry_interval);
            match d.reason_code {
                v5::DisconnectReasonCode::DisconnectWithWillMessage => {
                    FromClient::DisconnectWithWill(expiry)
                }
                _ => FromClient::Disconnect(expiry),
            }
        }
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
    let will_delay_s = will
        .as_ref()
        .and_then(|w| w.properties.as_ref())
        .and_then(|p| p.delay_interval)
        .unwrap_or(0);
    let last_will = match will {
        None => None,
        Some(will) => Some(v4::LastWill {
            topic: utf8(will.topic, "will topic")?,
            message: will.message,
            qos: qos_of(will.qos),
            retain: will.retain,
        }),
    };
    let props = connect.properties.as_ref();
    let options = ClientOptions {
        max_packet: props.and_then(|p| p.max_packet_size),
        problem_information: props.and_then(|p| p.request_problem_info) != Some(0),
    };
    Ok(Hello {
        version: Version::V5,
        options,
        session_expiry_s: props.and_then(|p| p.session_expiry_interval).unwrap_or(0),
        will_delay_s,
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

/// Bytes of a PUBLISH's user properties kept with a dead letter; the rest is cut off.
pub(crate) const USER_PROPERTIES_KEPT: usize = 1024;

/// MQTT 5 user properties as `"name"="value", ...`, at most [`USER_PROPERTIES_KEPT`] bytes
/// (then cut, ending in `...`); `None` for none.
pub(crate) fn render_user_properties(properties: &[(String, String)]) -> Option<Box<str>> {
    use std::fmt::Write as _;
    if properties.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (name, value) in properties {
        if !out.is_empty() {
            out.push_str(", ");
        }
        let _ = write!(out, "{name:?}={value:?}");
        if out.len() > USER_PROPERTIES_KEPT {
            let mut cut = USER_PROPERTIES_KEPT;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
            break;
        }
    }
    Some(out.into_boxed_str())
}

fn utf8(bytes: Bytes, what: &str) -> Result<String, ReadError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ReadError::Malformed(format!("{what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_properties_are_rendered_and_cut() {
        assert_eq!(render_user_properties(&[]), None);
        let two = [
            ("site".to_string(), "depot 7".to_string()),
            ("fw".to_string(), "1.2".to_string()),
        ];
        assert_eq!(
            render_user_properties(&two).as_deref(),
            Some(r#""site"="depot 7", "fw"="1.2""#)
        );
        let long = vec![("k".to_string(), "é".repeat(2000))];
        let cut = render_user_properties(&long).unwrap();
        assert!(
            cut.len() <= USER_PROPERTIES_KEPT + 3 && cut.ends_with("..."),
            "{}",
            cut.len()
        );
    }

    #[test]
    fn a_bare_mqtt5_disconnect_is_read() {
        let mut buf = BytesMut::from(&[0xe0, 0x00, 0xc0, 0x00][..]);
        assert!(matches!(
            Version::V5.read(&mut buf, 1024),
            Ok(FromClient::Disconnect(None))
        ));
        assert!(matches!(
            Version::V5.read(&mut buf, 1024),
            Ok(FromClient::PingReq)
        ));
        assert!(buf.is_empty());
        // A reason code alone (remaining length 1), whole or in two reads.
        let mut buf = BytesMut::from(&[0xe0, 0x01][..]);
        assert!(matches!(
            Version::V5.read(&mut buf, 1024),
            Err(ReadError::Incomplete(1))
        ));
        buf.extend_from_slice(&[0x04, 0xe0, 0x01, 0x00]);
        assert!(matches!(
            Version::V5.read(&mut buf, 1024),
            Ok(FromClient::DisconnectWithWill(None))
        ));
        assert!(matches!(
            Version::V5.read(&mut buf, 1024),
            Ok(FromClient::Disconnect(None))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn a_field_past_the_end_of_its_packet_is_malformed_not_incomplete() {
        // A CONNECT whose flags promise a Last Will its bytes do not hold, then a whole
        // 3.1.1 PINGREQ: the CONNECT is malformed, never waited on.
        for (version, level) in [(Version::V5, 5u8), (Version::V4, 4)] {
            let mut connect = vec![0x10, 0, 0x00, 0x04, b'M', b'Q', b'T', b'T', level, 0x06];
            connect.extend_from_slice(&[0x00, 0x0a]);
            if version == Version::V5 {
                connect.push(0x00);
            }
            connect.extend_from_slice(&[0x00, 0x03, b'c', b'a', b'b']);
            connect[1] = u8::try_from(connect.len() - 2).unwrap();
            let mut buf = BytesMut::from(&connect[..]);
            buf.extend_from_slice(&[0xc0, 0x00]);
            match version.read(&mut buf, 1024) {
                // rumqttc's 3.1.1 codec says so itself; its MQTT 5 one says "too few bytes".
                Err(ReadError::Malformed(why)) => assert!(
                    version == Version::V4 || why.contains("past the end"),
                    "{why}"
                ),
                other => panic!("{version:?}: {:?}", other.map(|p| p.name())),
            }
            // A packet not all in yet is still waited for.
            let mut partial = BytesMut::from(&connect[..connect.len() - 1]);
            assert!(
                matches!(
                    version.read(&mut partial, 1024),
                    Err(ReadError::Incomplete(_))
                ),
                "{version:?}"
            );
        }
    }
}
