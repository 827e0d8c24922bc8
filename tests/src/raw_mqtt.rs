//! A raw MQTT 3.1.1 client on the testkit's framing (rumqttc's codec), for tests that need
//! control a normal client does not give: explicit packet ids, the DUP flag, and exactly which
//! PUBACKs arrived when.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use citytel_testkit::mqtt::{self, MqttError, PacketReader};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// One MQTT connection driven by hand.
pub struct RawClient {
    conn: PacketReader<TcpStream>,
}

impl RawClient {
    /// Connects with a clean session as `client_id` and waits for a successful CONNACK.
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
        Ok(RawClient { conn })
    }

    /// Writes one packet.
    pub async fn send(&mut self, packet: Packet) {
        mqtt::write_packet(self.conn.get_mut(), packet)
            .await
            .expect("write packet");
    }

    /// Writes bytes as they are (packets a well-behaved encoder would refuse to make).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.conn
            .get_mut()
            .write_all(bytes)
            .await
            .expect("write raw bytes");
    }

    /// Sends a QoS 1 PUBLISH with packet id `pkid` and the DUP flag as given.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Bytes>, pkid: u16, dup: bool) {
        self.send(publish(topic, payload, pkid, dup)).await;
    }

    /// Publishes at QoS 1 and waits for the PUBACK of `pkid` (panics on any other packet).
    pub async fn publish_acked(&mut self, topic: &str, payload: impl Into<Bytes>, pkid: u16) {
        self.publish(topic, payload, pkid, false).await;
        self.expect_puback(pkid).await;
    }

    /// Waits for the next packet and checks it is the PUBACK of `pkid`.
    pub async fn expect_puback(&mut self, pkid: u16) {
        match self.next_packet().await {
            Some(Packet::PubAck(ack)) => assert_eq!(ack.pkid, pkid, "PUBACKs come in order"),
            other => panic!("expected PUBACK {pkid}, got {other:?}"),
        }
    }

    /// The next packet from the server; `None` when the connection closed.
    pub async fn next_packet(&mut self) -> Option<Packet> {
        self.conn
            .read()
            .await
            .unwrap_or_else(|e| panic!("reading from the server: {e}"))
    }

    /// The connection as a reader half (with what was read but not parsed yet) and a writer
    /// half, to drive reading and writing from separate tasks.
    pub fn into_split(self) -> (PacketReader<OwnedReadHalf>, OwnedWriteHalf) {
        let (stream, buf) = self.conn.into_parts();
        let (reader, writer) = stream.into_split();
        (PacketReader::from_parts(reader, buf), writer)
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

/// A QoS 1 PUBLISH with packet id `pkid` and the DUP flag as given.
pub fn publish(topic: &str, payload: impl Into<Bytes>, pkid: u16, dup: bool) -> Packet {
    let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.into());
    publish.pkid = pkid;
    publish.dup = dup;
    Packet::Publish(publish)
}

/// The bytes of a QoS 1 PUBLISH of any size (rumqttc's encoder refuses packets over its limit).
pub fn publish_bytes(topic: &str, payload: &[u8], pkid: u16) -> Vec<u8> {
    let mut remaining = 2 + topic.len() + 2 + payload.len();
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
    packet.extend_from_slice(payload);
    packet
}
