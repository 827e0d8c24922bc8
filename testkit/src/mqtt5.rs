//! MQTT 5 framing over any tokio stream, on rumqttc's own v5 codec
//! (`rumqttc::v5::mqttbytes::v5`): the MQTT 5 counterpart of [`crate::mqtt`], for clients that
//! drive the protocol by hand and need to see what a server says in MQTT 5 only (the reason
//! code and reason string of a PUBACK or CONNACK, a server DISCONNECT).
//!
//! [`PacketReader`] keeps the bytes read but not yet decoded, so a packet split across reads (or
//! several in one read) comes out whole; [`encode`] and [`write_packet`] go the other way;
//! [`connect`] is the CONNECT/CONNACK exchange.

use bytes::BytesMut;
use rumqttc::v5::mqttbytes::Error as DecodeError;
use rumqttc::v5::mqttbytes::v5::{ConnAck, Connect, ConnectReturnCode, LastWill, Login, Packet};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

pub use crate::mqtt::MAX_PACKET;

/// How much room a read gets in the buffer.
const READ_CHUNK: usize = 64 * 1024;

/// What went wrong on an MQTT 5 connection.
#[derive(Debug, thiserror::Error)]
pub enum Mqtt5Error {
    /// Reading or writing the stream failed.
    #[error("MQTT 5 connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes that are no MQTT 5 packet.
    #[error("undecodable MQTT 5 packet: {0}")]
    Decode(DecodeError),
    /// A packet could not be encoded (e.g. larger than [`MAX_PACKET`]).
    #[error("cannot encode an MQTT 5 packet: {0}")]
    Encode(DecodeError),
    /// The connection closed where a packet was expected.
    #[error("the connection closed while waiting for {0}")]
    Closed(&'static str),
    /// The server refused the connection; the CONNACK says why.
    #[error("CONNACK refused the connection: {:?}", .0.code)]
    Refused(Box<ConnAck>),
    /// Another packet than the one expected arrived.
    #[error("expected {expected}, got {got:?}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What arrived.
        got: Box<Packet>,
    },
}

/// Reads whole MQTT 5 packets from `R`, keeping partial input between reads.
#[derive(Debug)]
pub struct PacketReader<R> {
    inner: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    /// Reads from `inner`, nothing buffered yet.
    pub fn new(inner: R) -> PacketReader<R> {
        PacketReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// Reads from `inner`, starting with the bytes already read into `buf` (see
    /// [`into_parts`](Self::into_parts)).
    pub fn from_parts(inner: R, buf: BytesMut) -> PacketReader<R> {
        PacketReader { inner, buf }
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
    pub fn buffered(&mut self) -> Result<Option<Packet>, Mqtt5Error> {
        match Packet::read(&mut self.buf, Some(MAX_PACKET as u32)) {
            Ok(packet) => Ok(Some(packet)),
            Err(DecodeError::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(Mqtt5Error::Decode(e)),
        }
    }

    /// The next packet; `None` when the connection closed first.
    pub async fn read(&mut self) -> Result<Option<Packet>, Mqtt5Error> {
        loop {
            if let Some(packet) = self.buffered()? {
                return Ok(Some(packet));
            }
            self.buf.reserve(READ_CHUNK);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// At least one packet, and every other whole packet already buffered after it (to handle
    /// a burst at once); `None` when the connection closed first.
    pub async fn read_batch(&mut self) -> Result<Option<Vec<Packet>>, Mqtt5Error> {
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
pub fn encode(packet: &Packet, out: &mut BytesMut) -> Result<(), Mqtt5Error> {
    packet
        .write(out, Some(MAX_PACKET as u32))
        .map(drop)
        .map_err(Mqtt5Error::Encode)
}

/// Encodes `packet` and writes it to `writer`.
pub async fn write_packet(
    writer: &mut (impl AsyncWrite + Unpin),
    packet: &Packet,
) -> Result<(), Mqtt5Error> {
    let mut out = BytesMut::new();
    encode(packet, &mut out)?;
    writer.write_all(&out).await?;
    Ok(())
}

/// Sends `connect` with `will` and `login`, if any, and waits for the CONNACK, which must accept
/// the connection.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut PacketReader<S>,
    connect: Connect,
    will: Option<LastWill>,
    login: Option<Login>,
) -> Result<ConnAck, Mqtt5Error> {
    write_packet(conn.get_mut(), &Packet::Connect(connect, will, login)).await?;
    match conn.read().await? {
        Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::Success => Ok(ack),
        Some(Packet::ConnAck(ack)) => Err(Mqtt5Error::Refused(Box::new(ack))),
        Some(other) => Err(Mqtt5Error::Unexpected {
            expected: "CONNACK",
            got: Box::new(other),
        }),
        None => Err(Mqtt5Error::Closed("CONNACK")),
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{PubAck, PubAckReason, Publish};

    use super::*;

    fn publish(pkid: u16, payload: &[u8]) -> Packet {
        let mut publish = Publish::new(
            "citytel/v1/s/cabinet/d/telemetry",
            QoS::AtLeastOnce,
            payload.to_vec(),
            None,
        );
        publish.pkid = pkid;
        Packet::Publish(publish)
    }

    #[tokio::test]
    async fn packets_split_across_reads_come_out_whole() -> Result<(), Mqtt5Error> {
        let refused = Packet::PubAck(PubAck {
            pkid: 1,
            reason: PubAckReason::PayloadFormatInvalid,
            properties: None,
        });
        let mut bytes = BytesMut::new();
        encode(&publish(1, &[7; 3000]), &mut bytes)?;
        encode(&refused, &mut bytes)?;
        encode(&publish(2, b"x"), &mut bytes)?;
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for chunk in bytes.chunks(100) {
                client.write_all(chunk).await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let mut reader = PacketReader::new(server);
        assert_eq!(reader.read().await?, Some(publish(1, &[7; 3000])));
        let mut rest = reader.read_batch().await?.unwrap_or_default().into_iter();
        assert_eq!(rest.next(), Some(refused));
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
        assert!(matches!(got, Err(Mqtt5Error::Decode(_))), "{got:?}");
    }

    #[tokio::test]
    async fn a_refusal_comes_back_with_its_reason_string() -> Result<(), Mqtt5Error> {
        let (client, mut server) = tokio::io::duplex(1024);
        let refuse = tokio::spawn(async move {
            // CONNACK: no session, 0x97 quota exceeded, properties: reason string "full".
            let ack = [0x20, 10, 0, 0x97, 7, 0x1f, 0, 4, b'f', b'u', b'l', b'l'];
            server.write_all(&ack).await?;
            Ok::<_, Mqtt5Error>(server)
        });
        let connect = Connect {
            keep_alive: 30,
            client_id: "dev".into(),
            clean_start: true,
            properties: None,
        };
        let got = super::connect(&mut PacketReader::new(client), connect, None, None).await;
        let Err(Mqtt5Error::Refused(ack)) = got else {
            panic!("expected a refusal, got {got:?}");
        };
        assert_eq!(ack.code, ConnectReturnCode::QuotaExceeded);
        assert_eq!(
            ack.properties.and_then(|p| p.reason_string).as_deref(),
            Some("full")
        );
        let _server = refuse.await.map_err(std::io::Error::other)??;
        Ok(())
    }
}
