//! The publisher's connection in either MQTT version: CONNECT with a persistent session,
//! PUBLISH at QoS 1, and the packet ids of the PUBACKs that come back.

use std::net::SocketAddr;

use citytel_testkit::mqtt::{self, PacketReader};
use citytel_testkit::mqtt5;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// The MQTT version a publisher speaks: over 3.1.1 it keeps a persistent session
/// (`clean_session = false`), over 5 it connects with clean start 0 and an hour of session expiry.
pub use citytel_firmware_sim::load::MqttVersion as Version;

/// Session Expiry Interval an MQTT 5 publisher asks for, seconds.
const SESSION_EXPIRY_S: u32 = 3600;

/// One open connection.
pub(super) enum Conn {
    V311(PacketReader<TcpStream>),
    V5(mqtt5::PacketReader<TcpStream>),
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
                let mut conn = mqtt5::PacketReader::new(stream);
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
                mqtt5::connect(&mut conn, connect, None, None).await.ok()?;
                Some(Conn::V5(conn))
            }
        }
    }

    /// Writes encoded packets.
    pub(super) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::V311(conn) => conn.get_mut().write_all(bytes).await,
            Conn::V5(conn) => conn.get_mut().write_all(bytes).await,
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
            Conn::V5(conn) => {
                let packets = match conn.read_batch().await {
                    Ok(packets) => packets?,
                    Err(mqtt5::Mqtt5Error::Decode(e)) => {
                        panic!("the server sent a packet that is not MQTT 5: {e}")
                    }
                    Err(_) => return None,
                };
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
}
