//! MQTT 3.1.1 framing over any tokio stream, on rumqttc's own codec
//! (`rumqttc::mqttbytes::v4::Codec`): for clients that drive the protocol by hand (a raw test
//! client with explicit packet ids and DUP flags, a crash-tolerant publisher, the bench's
//! do-nothing subscriber) and need to read and write single packets, not a full client.
//!
//! [`PacketReader`] keeps the bytes read but not yet decoded, so a packet split across reads (or
//! several in one read) comes out whole; [`encode`] and [`write_packet`] go the other way;
//! [`connect`] is the CONNECT/CONNACK exchange every such client starts with.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Codec, ConnAck, Connect, ConnectReturnCode, Packet};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_util::codec::{Decoder as _, Encoder as _};

/// Largest packet read or written (citytel accepts 1 MiB packets by default).
pub const MAX_PACKET: usize = 1 << 20;
/// How much room a read gets in the buffer.
const READ_CHUNK: usize = 64 * 1024;

/// What went wrong on an MQTT connection.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// Reading or writing the stream failed.
    #[error("MQTT connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are no MQTT 3.1.1 packet.
    #[error("undecodable packet: {0}")]
    Decode(rumqttc::mqttbytes::Error),
    /// A packet could not be encoded (e.g. larger than [`MAX_PACKET`]).
    #[error("cannot encode a {packet}: {source}")]
    Encode {
        /// The packet's type.
        packet: &'static str,
        /// Why.
        source: rumqttc::mqttbytes::Error,
    },
    /// The connection closed where a packet was expected.
    #[error("the connection closed while waiting for {0}")]
    Closed(&'static str),
    /// The server refused the connection.
    #[error("CONNACK refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    /// Another packet than the one expected arrived.
    #[error("expected {expected}, got {got:?}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What arrived.
        got: Box<Packet>,
    },
}

fn codec() -> Codec {
    Codec {
        max_incoming_size: MAX_PACKET,
        max_outgoing_size: MAX_PACKET,
    }
}

/// Reads whole packets from `R`, keeping partial input between reads.
#[derive(Debug)]
pub struct PacketReader<R> {
    inner: R,
    buf: BytesMut,
    codec: Codec,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    /// Reads from `inner`, nothing buffered yet.
    pub fn new(inner: R) -> PacketReader<R> {
        Self::from_parts(inner, BytesMut::with_capacity(READ_CHUNK))
    }

    /// Reads from `inner`, starting with the bytes already read into `buf` (see
    /// [`into_parts`](Self::into_parts)).
    pub fn from_parts(inner: R, buf: BytesMut) -> PacketReader<R> {
        PacketReader {
            inner,
            buf,
            codec: codec(),
        }
    }

    /// The stream and what was read but not decoded yet, e.g. to split the stream into halves
    /// and go on reading from one with [`from_parts`](Self::from_parts).
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.inner, self.buf)
    }

    /// The stream, to write to it.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The next packet if it is already buffered whole; reads nothing.
    pub fn buffered(&mut self) -> Result<Option<Packet>, MqttError> {
        self.codec.decode(&mut self.buf).map_err(MqttError::Decode)
    }

    /// Reads more input into the buffer; `false` when the connection closed.
    pub async fn fill(&mut self) -> Result<bool, MqttError> {
        self.buf.reserve(READ_CHUNK);
        Ok(self.inner.read_buf(&mut self.buf).await? > 0)
    }

    /// The next packet; `None` when the connection closed first.
    pub async fn read(&mut self) -> Result<Option<Packet>, MqttError> {
        loop {
            if let Some(packet) = self.buffered()? {
                return Ok(Some(packet));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// At least one packet, and every other whole packet already buffered after it (to handle
    /// a burst at once); `None` when the connection closed first.
    pub async fn read_batch(&mut self) -> Result<Option<Vec<Packet>>, MqttError> {
        let Some(first) = self.read().await? else {
            return Ok(None);
        };
        let mut packets = vec![first];
        while let Some(packet) = self.buffered()? {
            packets.push(packet);
        }
        Ok(Some(packets))
    }
}

/// Appends `packet`, encoded, to `out`.
pub fn encode(packet: Packet, out: &mut BytesMut) -> Result<(), MqttError> {
    let kind = kind(&packet);
    codec()
        .encode(packet, out)
        .map_err(|source| MqttError::Encode {
            packet: kind,
            source,
        })
}

/// The packet's type, for messages.
fn kind(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::Publish(_) => "PUBLISH",
        Packet::PubAck(_) => "PUBACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::Subscribe(_) => "SUBSCRIBE",
        Packet::SubAck(_) => "SUBACK",
        Packet::Unsubscribe(_) => "UNSUBSCRIBE",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingReq => "PINGREQ",
        Packet::PingResp => "PINGRESP",
        Packet::Disconnect => "DISCONNECT",
    }
}

/// Encodes `packet` and writes it to `writer`.
pub async fn write_packet(
    writer: &mut (impl AsyncWrite + Unpin),
    packet: Packet,
) -> Result<(), MqttError> {
    let mut out = BytesMut::new();
    encode(packet, &mut out)?;
    writer.write_all(&out).await?;
    Ok(())
}

/// Sends `connect` and waits for the CONNACK, which must accept the connection.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketReader<S>,
    connect: Connect,
) -> Result<ConnAck, MqttError> {
    write_packet(conn.get_mut(), Packet::Connect(connect)).await?;
    match conn.read().await? {
        Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => Ok(ack),
        Some(Packet::ConnAck(ack)) => Err(MqttError::Refused(ack.code)),
        Some(other) => Err(MqttError::Unexpected {
            expected: "CONNACK",
            got: Box::new(other),
        }),
        None => Err(MqttError::Closed("CONNACK")),
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::QoS;
    use rumqttc::mqttbytes::v4::{PubAck, Publish};

    use super::*;

    fn publish(pkid: u16, payload: &[u8]) -> Packet {
        let mut publish = Publish::new(
            "citytel/v1/s/cabinet/d/telemetry",
            QoS::AtLeastOnce,
            payload,
        );
        publish.pkid = pkid;
        Packet::Publish(publish)
    }

    #[tokio::test]
    async fn packets_split_across_reads_come_out_whole() -> Result<(), MqttError> {
        let mut bytes = BytesMut::new();
        encode(publish(1, &[7; 3000]), &mut bytes)?;
        encode(Packet::PubAck(PubAck::new(1)), &mut bytes)?;
        encode(publish(2, b"x"), &mut bytes)?;
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for chunk in bytes.chunks(100) {
                client.write_all(chunk).await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut reader = PacketReader::new(server);
        assert_eq!(reader.read().await?, Some(publish(1, &[7; 3000])));
        let rest = reader.read_batch().await?.unwrap_or_default();
        let mut rest = rest.into_iter();
        assert_eq!(rest.next(), Some(Packet::PubAck(PubAck::new(1))));
        let last = match rest.next() {
            Some(packet) => Some(packet),
            None => reader.read().await?,
        };
        assert_eq!(last, Some(publish(2, b"x")));
        writer.await.map_err(std::io::Error::other)??;
        assert_eq!(reader.read().await?, None, "closed");
        Ok(())
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_hang() {
        let (mut client, server) = tokio::io::duplex(64);
        let _ = client.write_all(&[0xff, 0x00]).await;
        let got = PacketReader::new(server).read().await;
        assert!(matches!(got, Err(MqttError::Decode(_))), "{got:?}");
    }

    #[tokio::test]
    async fn connect_fails_on_a_refusal() -> Result<(), MqttError> {
        let (client, mut server) = tokio::io::duplex(1024);
        let refuse = tokio::spawn(async move {
            let mut ack = BytesMut::new();
            encode(
                Packet::ConnAck(ConnAck::new(ConnectReturnCode::NotAuthorized, false)),
                &mut ack,
            )?;
            server.write_all(&ack).await?;
            Ok::<_, MqttError>(server)
        });
        let got = connect(&mut PacketReader::new(client), Connect::new("dev")).await;
        assert!(
            matches!(
                got,
                Err(MqttError::Refused(ConnectReturnCode::NotAuthorized))
            ),
            "{got:?}"
        );
        let _server = refuse.await.map_err(std::io::Error::other)??;
        Ok(())
    }
}
