//! A raw MQTT 3.1.1 client on rumqttc's codec, for tests that need control a normal client does
//! not give: explicit packet ids, the DUP flag, and exactly which PUBACKs arrived when.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
use rumqttc::mqttbytes::{self, QoS};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Largest packet accepted from the server.
const MAX_PACKET: usize = 1 << 20;

/// One MQTT connection driven by hand.
pub struct RawClient {
    stream: TcpStream,
    read_buf: BytesMut,
}

impl RawClient {
    /// Connects with a clean session as `client_id` and waits for a successful CONNACK.
    pub async fn connect(addr: SocketAddr, client_id: &str) -> RawClient {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut client = RawClient {
            stream,
            read_buf: BytesMut::with_capacity(64 * 1024),
        };
        let mut connect = Connect::new(client_id);
        connect.keep_alive = 120;
        connect.clean_session = true;
        client.send(Packet::Connect(connect)).await;
        match client.next_packet().await {
            Some(Packet::ConnAck(ack)) => assert_eq!(
                ack.code,
                mqttbytes::v4::ConnectReturnCode::Success,
                "CONNACK"
            ),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        client
    }

    /// Writes one packet.
    pub async fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.write(&mut buf, MAX_PACKET).expect("encode packet");
        self.stream.write_all(&buf).await.expect("write packet");
    }

    /// Sends a QoS 1 PUBLISH with packet id `pkid` and the DUP flag as given.
    pub async fn publish(&mut self, topic: &str, payload: impl Into<Bytes>, pkid: u16, dup: bool) {
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.into());
        publish.pkid = pkid;
        publish.dup = dup;
        self.send(Packet::Publish(publish)).await;
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
        read_packet(&mut self.stream, &mut self.read_buf).await
    }

    /// The connection and what was read but not parsed yet, to drive reading and writing from
    /// separate tasks (see [`read_packet`]).
    pub fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.read_buf)
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

/// Reads the next packet from `reader`, keeping partial input in `buf`; `None` when the
/// connection closed.
pub async fn read_packet(
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
) -> Option<Packet> {
    loop {
        match Packet::read(buf, MAX_PACKET) {
            Ok(packet) => return Some(packet),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => panic!("undecodable packet from the server: {e:?}"),
        }
        buf.reserve(64 * 1024);
        let n = reader.read_buf(buf).await.expect("read from the server");
        if n == 0 {
            return None;
        }
    }
}
