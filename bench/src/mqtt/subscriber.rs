//! The do-nothing subscriber that defines the broker ceiling: subscribed to `citytel/v1/#` at
//! QoS 1, it acknowledges every PUBLISH the moment it is parsed and only counts it.
//!
//! Written on rumqttc's codec over one TCP connection (clean session), so it costs as little as
//! an MQTT consumer can: no decoding of payloads, no storage. What the load generator achieves
//! while Mosquitto delivers everything to this subscriber is the most a broker-based pipeline
//! can deliver on this machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, Packet, PubAck, Subscribe, SubscribeReasonCode};
use rumqttc::mqttbytes::{self, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// The subscription.
pub const FILTER: &str = "citytel/v1/#";
/// Largest packet accepted from the broker.
const MAX_PACKET: usize = 1 << 20;

/// A running subscriber; stopped when dropped.
pub struct Subscriber {
    received: Arc<AtomicU64>,
    task: JoinHandle<Result<()>>,
}

impl Subscriber {
    /// Connects to the broker on `127.0.0.1:port`, subscribes and starts acknowledging.
    pub async fn start(port: u16) -> Result<Subscriber> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .context("connecting the subscriber")?;
        stream.set_nodelay(true)?;
        let mut out = BytesMut::new();
        let mut connect = Connect::new("citytel-bench-sink");
        connect.keep_alive = 0;
        Packet::Connect(connect).write(&mut out, MAX_PACKET)?;
        let mut subscribe = Subscribe::new(FILTER, QoS::AtLeastOnce);
        subscribe.pkid = 1;
        Packet::Subscribe(subscribe).write(&mut out, MAX_PACKET)?;
        stream.write_all(&out).await?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let subscribed = async {
            loop {
                match Packet::read(&mut buf, MAX_PACKET) {
                    Ok(Packet::ConnAck(_)) => {}
                    Ok(Packet::SubAck(ack)) => {
                        if ack.return_codes != [SubscribeReasonCode::Success(QoS::AtLeastOnce)] {
                            bail!("subscription refused: {:?}", ack.return_codes);
                        }
                        return Ok(());
                    }
                    Ok(other) => bail!("unexpected {other:?} before SUBACK"),
                    Err(mqttbytes::Error::InsufficientBytes(_)) => {
                        if stream.read_buf(&mut buf).await? == 0 {
                            bail!("the broker closed the subscriber's connection");
                        }
                    }
                    Err(e) => bail!("bad packet from the broker: {e}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .context("no SUBACK within 10 s")??;
        let received = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(consume(stream, buf, received.clone()));
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

/// Reads PUBLISHes, acknowledges each QoS 1 one at once, counts them.
async fn consume(mut stream: TcpStream, mut buf: BytesMut, received: Arc<AtomicU64>) -> Result<()> {
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let mut n = 0;
        loop {
            match Packet::read(&mut buf, MAX_PACKET) {
                Ok(Packet::Publish(publish)) => {
                    n += 1;
                    if publish.qos != QoS::AtMostOnce {
                        Packet::PubAck(PubAck::new(publish.pkid)).write(&mut out, MAX_PACKET)?;
                    }
                }
                Ok(_) => {}
                Err(mqttbytes::Error::InsufficientBytes(_)) => break,
                Err(e) => bail!("bad packet from the broker: {e}"),
            }
        }
        received.fetch_add(n, Ordering::Relaxed);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        buf.reserve(64 * 1024);
        if stream.read_buf(&mut buf).await? == 0 {
            bail!("the broker closed the subscriber's connection");
        }
    }
}
