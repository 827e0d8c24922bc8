//! The publisher's connection in either MQTT version: CONNECT with a persistent session,
//! PUBLISH at QoS 1, and the packet ids of the PUBACKs that come back.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use citytel_testkit::mqtt::{self, PacketReader};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes as mqttbytes5;
use rumqttc::v5::mqttbytes::v5;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The MQTT version a publisher speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1, a persistent session (`clean_session = false`).
    #[default]
    V311,
    /// MQTT 5, clean start 0 and an hour of session expiry.
    V5,
}

/// Session Expiry Interval an MQTT 5 publisher asks for, seconds.
const SESSION_EXPIRY_S: u32 = 3600;

/// One open connection.
pub(super) enum Conn {
    V311(PacketReader<TcpStream>),
    V5 { stream: TcpStream, buf: BytesMut },
}

impl Conn {
    /// Connects as `client_id` with a persistent session; `None` when refused or broken.
    pub(super) async fn open(addr: SocketAddr, client_id: &str, version: Version) -> Option<Conn> {
        let stream = TcpStream::connect(addr).await.ok()?;
        let _ = stream.set_nodelay(true);
        match version {
            Version::V311 => {
                let mut conn = PacketReader::new(stream);
                let mut connect = v4::Connect::new(client_id);
                connect.keep_alive = 60;
                connect.clean_session = false;
                mqtt::connect(&mut conn, connect).await.ok()?;
                Some(Conn::V311(conn))
            }
            Version::V5 => {
                let properties = v5::ConnectProperties {
                    session_expiry_interval: Some(SESSION_EXPIRY_S),
                    ..v5::ConnectProperties::new()
                };
                let connect = v5::Connect {
                    keep_alive: 60,
                    client_id: client_id.to_string(),
                    clean_start: false,
                    properties: Some(properties),
                };
                let mut out = BytesMut::new();
                v5::Packet::Connect(connect, None, None)
                    .write(&mut out, None)
                    .ok()?;
                let mut conn = Conn::V5 {
                    stream,
                    buf: BytesMut::new(),
                };
                conn.write(&out).await.ok()?;
                match conn.read_v5().await? {
                    v5::Packet::ConnAck(ack) if ack.code == v5::ConnectReturnCode::Success => {
                        Some(conn)
                    }
                    _ => None,
                }
            }
        }
    }

    /// Writes encoded packets.
    pub(super) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::V311(conn) => conn.get_mut().write_all(bytes).await,
            Conn::V5 { stream, .. } => stream.write_all(bytes).await,
        }
    }

    /// The packet ids of the PUBACKs of at least one packet read, and of every other whole
    /// packet already buffered; `None` when the connection broke. A PUBACK that refuses (an
    /// MQTT 5 reason code other than success) is a failure of the test.
    pub(super) async fn acks(&mut self) -> Option<Vec<u16>> {
        match self {
            Conn::V311(conn) => {
                let packets = conn.read_batch().await.ok()??;
                Some(
                    packets
                        .into_iter()
                        .filter_map(|p| match p {
                            v4::Packet::PubAck(ack) => Some(ack.pkid),
                            _ => None,
                        })
                        .collect(),
                )
            }
            Conn::V5 { .. } => {
                let mut packets = vec![self.read_v5().await?];
                while let Some(p) = self.buffered_v5()? {
                    packets.push(p);
                }
                let mut pkids = Vec::new();
                for packet in packets {
                    if let v5::Packet::PubAck(ack) = packet {
                        assert_eq!(
                            ack.reason,
                            v5::PubAckReason::Success,
                            "PUBACK {} refuses: {:?}",
                            ack.pkid,
                            ack.properties
                        );
                        pkids.push(ack.pkid);
                    }
                }
                Some(pkids)
            }
        }
    }

    /// The next MQTT 5 packet; `None` when the connection closed or broke.
    async fn read_v5(&mut self) -> Option<v5::Packet> {
        loop {
            if let Some(packet) = self.buffered_v5()? {
                return Some(packet);
            }
            let Conn::V5 { stream, buf } = self else {
                return None;
            };
            if stream.read_buf(buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// The next MQTT 5 packet if it is buffered whole: `Some(None)` when it is not yet,
    /// `None` when the input is not MQTT 5.
    fn buffered_v5(&mut self) -> Option<Option<v5::Packet>> {
        let Conn::V5 { buf, .. } = self else {
            return None;
        };
        match v5::Packet::read(buf, None) {
            Ok(packet) => Some(Some(packet)),
            Err(mqttbytes5::Error::InsufficientBytes(_)) => Some(None),
            Err(e) => panic!("the server sent a packet that is not MQTT 5: {e}"),
        }
    }
}

/// Appends a QoS 1 PUBLISH in `version`.
pub(super) fn encode_publish(
    version: Version,
    out: &mut BytesMut,
    topic: &str,
    payload: Bytes,
    pkid: u16,
    dup: bool,
) {
    match version {
        Version::V311 => {
            let mut publish = v4::Publish::new(topic, QoS::AtLeastOnce, payload);
            publish.pkid = pkid;
            publish.dup = dup;
            mqtt::encode(v4::Packet::Publish(publish), out).expect("encode publish");
        }
        Version::V5 => {
            let mut publish = v5::Publish::new(topic, mqttbytes5::QoS::AtLeastOnce, payload, None);
            publish.pkid = pkid;
            publish.dup = dup;
            v5::Packet::Publish(publish)
                .write(out, None)
                .expect("encode publish");
        }
    }
}
