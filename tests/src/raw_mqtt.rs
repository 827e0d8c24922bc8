//! A raw MQTT client on the testkit's framing (rumqttc's codecs), in MQTT 3.1.1 or 5, for tests
//! that need control a normal client does not give: explicit packet ids, the DUP flag, exactly
//! which PUBACKs arrived when, and in MQTT 5 the reason code and reason string of each.
//!
//! Version-neutral calls ([`RawClient::connect_version`], [`RawClient::publish`],
//! [`RawClient::next_ack`], [`RawClient::expect_puback`]) let one test body run over both
//! versions; the packet-level calls are per version ([`RawClient::next_packet`] for 3.1.1,
//! [`RawClient::next_packet5`] for 5).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use citytel_testkit::mqtt::{self, MqttError, PacketReader};
use citytel_testkit::mqtt5;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
use rumqttc::v5::mqttbytes::v5;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use citytel_firmware_sim::broker::MqttVersion as Version;

/// One MQTT connection driven by hand, over TCP or any other stream (TLS: [`crate::mtls`]).
pub struct RawClient<S = TcpStream> {
    conn: Conn<S>,
}

/// The connection, framed in its version.
enum Conn<S> {
    V311(PacketReader<S>),
    V5(mqtt5::PacketReader<S>),
}

/// Why a CONNECT did not get through, in either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The CONNACK refused: its code as rumqttc names it (the same name in both versions, e.g.
    /// `BadUserNamePassword`) and, in MQTT 5, its reason string.
    Refused {
        /// The return code (3.1.1) or reason code (5).
        code: String,
        /// The MQTT 5 reason string, if the server sent one.
        reason_string: Option<String>,
    },
    /// The connection broke or closed first, or the answer was not a CONNACK.
    Failed(String),
}

/// A PUBLISH acknowledgement as the server sent it, in either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The packet id acknowledged.
    pub pkid: u16,
    /// The MQTT 5 reason code; `None` in 3.1.1, which has none.
    pub reason: Option<v5::PubAckReason>,
    /// The MQTT 5 reason string, if the server sent one.
    pub reason_string: Option<String>,
}

impl RawClient {
    /// Connects over MQTT 3.1.1 with a clean session as `client_id` and waits for a successful
    /// CONNACK.
    pub async fn connect(addr: SocketAddr, client_id: &str) -> RawClient {
        Self::try_connect(addr, client_id)
            .await
            .unwrap_or_else(|e| panic!("CONNECT as {client_id}: {e}"))
    }

    /// Like [`connect`](Self::connect), returning a refusal (or a closed connection) as an error.
    pub async fn try_connect(addr: SocketAddr, client_id: &str) -> Result<RawClient, MqttError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut conn = PacketReader::new(stream);
        let mut connect = Connect::new(client_id);
        connect.keep_alive = 120;
        connect.clean_session = true;
        mqtt::connect(&mut conn, connect).await?;
        Ok(RawClient {
            conn: Conn::V311(conn),
        })
    }

    /// Connects in `version` with a clean session (MQTT 5: clean start, no session expiry) as
    /// `client_id` and waits for a successful CONNACK.
    pub async fn connect_version(addr: SocketAddr, client_id: &str, version: Version) -> RawClient {
        Self::try_connect_as(addr, version, client_id, None)
            .await
            .unwrap_or_else(|e| panic!("CONNECT as {client_id} ({version:?}): {e:?}"))
    }

    /// Connects in `version` with a clean session (MQTT 5: clean start, no session expiry) as
    /// `client_id`, with `login` (user name, password) if given; a refusal or a broken
    /// connection is a [`ConnectFailure`].
    pub async fn try_connect_as(
        addr: SocketAddr,
        version: Version,
        client_id: &str,
        login: Option<(&str, &str)>,
    ) -> Result<RawClient, ConnectFailure> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| ConnectFailure::Failed(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        match version {
            Version::V311 => {
                let mut conn = PacketReader::new(stream);
                let mut connect = Connect::new(client_id);
                connect.keep_alive = 120;
                connect.clean_session = true;
                if let Some((user, password)) = login {
                    connect.set_login(user, password);
                }
                match mqtt::connect(&mut conn, connect).await {
                    Ok(_) => Ok(RawClient::from_v311(conn)),
                    Err(MqttError::Refused(code)) => Err(ConnectFailure::Refused {
                        code: format!("{code:?}"),
                        reason_string: None,
                    }),
                    Err(e) => Err(ConnectFailure::Failed(e.to_string())),
                }
            }
            Version::V5 => {
                let mut conn = mqtt5::PacketReader::new(stream);
                let connect = v5::Connect {
                    keep_alive: 120,
                    client_id: client_id.to_string(),
                    clean_start: true,
                    properties: None,
                };
                let login = login.map(|(user, password)| v5::Login::new(user, password));
                match mqtt5::connect(&mut conn, connect, None, login).await {
                    Ok(_) => Ok(RawClient::from_v5(conn)),
                    Err(mqtt5::Mqtt5Error::Refused(ack)) => Err(ConnectFailure::Refused {
                        code: format!("{:?}", ack.code),
                        reason_string: ack.properties.and_then(|p| p.reason_string),
                    }),
                    Err(e) => Err(ConnectFailure::Failed(e.to_string())),
                }
            }
        }
    }

    /// The connection as a reader half (with what was read but not parsed yet) and a writer
    /// half, to drive reading and writing from separate tasks.
    pub fn into_split(self) -> (ReadHalf, OwnedWriteHalf) {
        match self.conn {
            Conn::V311(conn) => {
                let (stream, buf) = conn.into_parts();
                let (reader, writer) = stream.into_split();
                (
                    ReadHalf::V311(PacketReader::from_parts(reader, buf)),
                    writer,
                )
            }
            Conn::V5(conn) => {
                let (stream, buf) = conn.into_parts();
                let (reader, writer) = stream.into_split();
                let reader = mqtt5::PacketReader::from_parts(reader, buf);
                (ReadHalf::V5(reader), writer)
            }
        }
    }
}

/// The reading half of a [`RawClient::into_split`] connection, in its version.
pub enum ReadHalf {
    /// MQTT 3.1.1.
    V311(PacketReader<OwnedReadHalf>),
    /// MQTT 5.
    V5(mqtt5::PacketReader<OwnedReadHalf>),
}

impl ReadHalf {
    /// The next packet, which must be a PUBACK; `None` when the connection closed.
    pub async fn next_ack(&mut self) -> Option<Ack> {
        match self {
            ReadHalf::V311(reader) => match reader.read().await {
                Ok(Some(Packet::PubAck(ack))) => Some(Ack {
                    pkid: ack.pkid,
                    reason: None,
                    reason_string: None,
                }),
                Ok(None) => None,
                other => panic!("expected a PUBACK, got {other:?}"),
            },
            ReadHalf::V5(reader) => match reader.read().await {
                Ok(Some(v5::Packet::PubAck(ack))) => Some(Ack {
                    pkid: ack.pkid,
                    reason: Some(ack.reason),
                    reason_string: ack.properties.and_then(|p| p.reason_string),
                }),
                Ok(None) => None,
                other => panic!("expected a PUBACK, got {other:?}"),
            },
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawClient<S> {
    /// An MQTT 3.1.1 connection whose CONNECT was accepted.
    pub fn from_v311(conn: PacketReader<S>) -> RawClient<S> {
        RawClient {
            conn: Conn::V311(conn),
        }
    }

    /// An MQTT 5 connection whose CONNECT was accepted.
    pub fn from_v5(conn: mqtt5::PacketReader<S>) -> RawClient<S> {
        RawClient {
            conn: Conn::V5(conn),
        }
    }

    /// The connection's protocol version.
    pub fn version(&self) -> Version {
        match self.conn {
            Conn::V311(_) => Version::V311,
            Conn::V5(_) => Version::V5,
        }
    }

    /// Writes one MQTT 3.1.1 packet.
    pub async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        mqtt::encode(packet, &mut out).expect("encode packet");
        self.send_raw(&out).await;
    }

    /// Writes one MQTT 5 packet.
    pub async fn send5(&mut self, packet: &v5::Packet) {
        let mut out = BytesMut::new();
        mqtt5::encode(packet, &mut out).expect("encode packet");
        self.send_raw(&out).await;
    }

    /// Writes bytes as they are (packets a well-behaved encoder would refuse to make).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let stream = match &mut self.conn {
            Conn::V311(conn) => conn.get_mut(),
            Conn::V5(conn) => conn.get_mut(),
        };
        stream.write_all(bytes).await.expect("write raw bytes");
    }

    /// Sends a QoS 1 PUBLISH in the connection's version with packet id `pkid` and the DUP flag
    /// as given.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Bytes>, pkid: u16, dup: bool) {
        let mut out = BytesMut::new();
        encode_publish(self.version(), &mut out, topic, payload.into(), pkid, dup);
        self.send_raw(&out).await;
    }

    /// Publishes at QoS 1 and waits for the successful PUBACK of `pkid` (panics on any other
    /// packet).
    pub async fn publish_acked(&mut self, topic: &str, payload: impl Into<Bytes>, pkid: u16) {
        self.publish(topic, payload, pkid, false).await;
        self.expect_puback(pkid).await;
    }

    /// Waits for the next packet and checks it is the PUBACK of `pkid`, in MQTT 5 with the
    /// reason code success.
    pub async fn expect_puback(&mut self, pkid: u16) {
        let ack = self.next_ack().await;
        assert_eq!(ack.pkid, pkid, "PUBACKs come in order");
        if self.version() == Version::V5 {
            assert_eq!(
                ack.reason,
                Some(v5::PubAckReason::Success),
                "PUBACK {pkid}: {ack:?}"
            );
        }
    }

    /// Waits for the next packet, which must be a PUBACK, and returns it.
    pub async fn next_ack(&mut self) -> Ack {
        match self.version() {
            Version::V311 => match self.next_packet().await {
                Some(Packet::PubAck(ack)) => Ack {
                    pkid: ack.pkid,
                    reason: None,
                    reason_string: None,
                },
                other => panic!("expected a PUBACK, got {other:?}"),
            },
            Version::V5 => match self.next_packet5().await {
                Some(v5::Packet::PubAck(ack)) => Ack {
                    pkid: ack.pkid,
                    reason: Some(ack.reason),
                    reason_string: ack.properties.and_then(|p| p.reason_string),
                },
                other => panic!("expected a PUBACK, got {other:?}"),
            },
        }
    }

    /// The next packet from the server over MQTT 3.1.1; `None` when the connection closed.
    pub async fn next_packet(&mut self) -> Option<Packet> {
        let Conn::V311(conn) = &mut self.conn else {
            panic!("next_packet reads MQTT 3.1.1; this connection speaks 5 (next_packet5)");
        };
        conn.read()
            .await
            .unwrap_or_else(|e| panic!("reading from the server: {e}"))
    }

    /// The next packet from the server over MQTT 5; `None` when the connection closed.
    pub async fn next_packet5(&mut self) -> Option<v5::Packet> {
        let Conn::V5(conn) = &mut self.conn else {
            panic!("next_packet5 reads MQTT 5; this connection speaks 3.1.1 (next_packet)");
        };
        conn.read()
            .await
            .unwrap_or_else(|e| panic!("reading from the server: {e}"))
    }

    /// Every MQTT 3.1.1 packet the server sends until it closes the connection; a broken
    /// connection counts as closed (a TLS server may close without `close_notify`).
    pub async fn packets_until_closed(&mut self) -> Vec<Packet> {
        let Conn::V311(conn) = &mut self.conn else {
            panic!("packets_until_closed reads MQTT 3.1.1; this connection speaks 5");
        };
        let mut packets = Vec::new();
        while let Ok(Some(packet)) = conn.read().await {
            packets.push(packet);
        }
        packets
    }

    /// Every MQTT 5 packet the server sends until it closes the connection; a broken
    /// connection counts as closed.
    pub async fn packets_until_closed5(&mut self) -> Vec<v5::Packet> {
        let Conn::V5(conn) = &mut self.conn else {
            panic!("packets_until_closed5 reads MQTT 5; this connection speaks 3.1.1");
        };
        let mut packets = Vec::new();
        while let Ok(Some(packet)) = conn.read().await {
            packets.push(packet);
        }
        packets
    }

    /// Like [`next_packet`](Self::next_packet), giving up after `wait` (for checks that nothing
    /// arrived while the server should stay silent).
    pub async fn packet_within(&mut self, wait: Duration) -> Option<Packet> {
        tokio::time::timeout(wait, self.next_packet())
            .await
            .ok()
            .flatten()
    }
}

/// Appends a QoS 1 PUBLISH in `version` with packet id `pkid` and the DUP flag as given.
pub fn encode_publish(
    version: Version,
    out: &mut BytesMut,
    topic: &str,
    payload: Bytes,
    pkid: u16,
    dup: bool,
) {
    match version {
        Version::V311 => {
            mqtt::encode(publish(topic, payload, pkid, dup), out).expect("encode publish");
        }
        Version::V5 => {
            let qos = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
            let mut publish = v5::Publish::new(topic, qos, payload, None);
            publish.pkid = pkid;
            publish.dup = dup;
            mqtt5::encode(&v5::Packet::Publish(publish), out).expect("encode publish");
        }
    }
}

/// A QoS 1 PUBLISH with packet id `pkid` and the DUP flag as given.
pub fn publish(topic: &str, payload: impl Into<Bytes>, pkid: u16, dup: bool) -> Packet {
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.into());
    publish.pkid = pkid;
    publish.dup = dup;
    Packet::Publish(publish)
}

/// The bytes of a QoS 1 PUBLISH of any size in `version` (rumqttc's encoders refuse packets over
/// their limit); an MQTT 5 one has an empty property list.
pub fn publish_bytes(version: Version, topic: &str, payload: &[u8], pkid: u16) -> Vec<u8> {
    let properties: &[u8] = match version {
        Version::V311 => &[],
        Version::V5 => &[0],
    };
    let mut remaining = 2 + topic.len() + 2 + properties.len() + payload.len();
    let mut packet = vec![0x32];
    loop {
        let byte = (remaining % 128) as u8;
        remaining /= 128;
        if remaining == 0 {
            packet.push(byte);
            break;
        }
        packet.push(byte | 0x80);
    }
    packet.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    packet.extend_from_slice(topic.as_bytes());
    packet.extend_from_slice(&pkid.to_be_bytes());
    packet.extend_from_slice(properties);
    packet.extend_from_slice(payload);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bytes_decode_as_the_publish_they_stand_for() {
        let topic = "citytel/v1/site-01/cabinet/cab-0001/telemetry";
        let payload: Vec<u8> = (0..300).map(|i| i as u8).collect();
        for version in [Version::V311, Version::V5] {
            let mut expected = BytesMut::new();
            encode_publish(
                version,
                &mut expected,
                topic,
                payload.clone().into(),
                9,
                false,
            );
            assert_eq!(
                publish_bytes(version, topic, &payload, 9),
                expected,
                "{version:?}"
            );
        }
    }
}
