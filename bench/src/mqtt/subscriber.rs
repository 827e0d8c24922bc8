//! The do-nothing subscriber that defines the broker ceiling: subscribed to `citytel/v1/#` at
//! QoS 1, it acknowledges every PUBLISH the moment it is parsed and only counts it.
//!
//! Written on rumqttc's codec (the testkit's MQTT framing) over one TCP connection (clean
//! session), so it costs as little as an MQTT consumer can: no decoding of payloads, no storage.
//! What the load generator achieves while Mosquitto delivers everything to this subscriber is the
//! most a broker-based pipeline can deliver on this machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use citytel_testkit::mqtt::{self, PacketReader};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Connect, Packet, PubAck, Subscribe, SubscribeReasonCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The subscription.
pub const FILTER: &str = "citytel/v1/#";

/// A running subscriber; stopped when dropped.
pub struct Subscriber {
    received: Arc<AtomicU64>,
    task: JoinHandle<Result<()>>,
}

impl Subscriber {
    /// Connects to the broker on `127.0.0.1:port`, subscribes and starts acknowledging.
    pub async fn start(port: u16) -> Result<Subscriber> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .context("connecting the subscriber")?;
        stream.set_nodelay(true)?;
        let mut conn = PacketReader::new(stream);
        let mut connect = Connect::new("citytel-bench-sink");
        connect.keep_alive = 0;
        let mut subscribe = Subscribe::new(FILTER, QoS::AtLeastOnce);
        subscribe.pkid = 1;
        let subscribed = async {
            mqtt::connect(&mut conn, connect).await?;
            mqtt::write_packet(conn.get_mut(), Packet::Subscribe(subscribe)).await?;
            match conn.read().await? {
                Some(Packet::SubAck(ack)) => {
                    if ack.return_codes != [SubscribeReasonCode::Success(QoS::AtLeastOnce)] {
                        bail!("subscription refused: {:?}", ack.return_codes);
                    }
                    Ok(())
                }
                Some(other) => bail!("unexpected {other:?} before SUBACK"),
                None => bail!("the broker closed the subscriber's connection"),
            }
        };
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .context("no SUBACK within 10 s")??;
        let received = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(consume(conn, received.clone()));
        Ok(Subscriber { received, task })
    }
    /// PUBLISHes received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The counter, for a sampler.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.received.clone()
    }

    /// Fails if the subscriber stopped (its connection broke).
    pub fn check_running(&self) -> Result<()> {
        if self.task.is_finished() {
            bail!("the do-nothing subscriber stopped: its connection to the broker ended");
        }
        Ok(())
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads PUBLISHes, acknowledges each QoS 1 one at once, counts them. Every PUBACK for what one
/// read brought in goes out in one write.
async fn consume(mut conn: PacketReader<TcpStream>, received: Arc<AtomicU64>) -> Result<()> {
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let mut n = 0;
        while let Some(packet) = conn.buffered()? {
            if let Packet::Publish(publish) = packet {
                n += 1;
                if publish.qos != QoS::AtMostOnce {
                    mqtt::encode(Packet::PubAck(PubAck::new(publish.pkid)), &mut out)?;
                }
            }
        }
        received.fetch_add(n, Ordering::Relaxed);
        if !out.is_empty() {
            conn.get_mut().write_all(&out).await?;
            out.clear();
        }
        if !conn.fill().await? {
            bail!("the broker closed the subscriber's connection");
        }
    }
}
