//! One pipelined publisher: a connection (TCP, or TLS over TCP with `--tls-ca`) that keeps its
//! window of QoS 1 PUBLISHes full.
//!
//! [`connect`] does the TLS handshake if asked, then the MQTT 3.1.1 or 5 handshake on rumqttc's
//! codecs (clean session; with MQTT 5 the window is at most the server's Receive Maximum). [`Publisher::run`] then drives the connection from one task, reading and
//! writing its two halves in one `select!`: whenever the window
//! has room it appends the next of its [`Messages`] to the write buffer (up to
//! [`WRITE_CHUNK`] bytes at a time, all stamped with one send time), writes what the socket
//! takes, and parses every PUBACK that arrives, releasing its packet id and recording the
//! latency of counted messages. When the schedule ends (or on shutdown) it stops publishing,
//! waits up to the drain timeout for the PUBACKs still due, and sends DISCONNECT.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf as _, BytesMut};
use hdrhistogram::Histogram;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet};
use rumqttc::mqttbytes::{self, Protocol};
use rumqttc::v5::mqttbytes as mqttbytes5;
use rumqttc::v5::mqttbytes::v5;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::stream::LoadStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::MqttVersion;
use super::error::LoadError;
use super::messages::Messages;
use super::packet_ids::{PacketIds, Sent};
use super::schedule::{Counters, Schedule};
use crate::broker::BrokerAddr;

/// Bytes of messages queued for the socket before the next write.
const WRITE_CHUNK: usize = 64 * 1024;
/// Most free window slots a connection waits for before it queues more messages: refilling
/// per PUBACK would cost a write syscall per message against a server that acknowledges one
/// message at a time (Mosquitto), starving the server of the CPU it shares with the generator.
const REFILL_BATCH: usize = 64;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 64 * 1024;
/// Largest packet accepted from the server (PUBACKs are 4 bytes; this only bounds garbage).
const MAX_INCOMING_PACKET: usize = 64 * 1024;
/// MQTT keep-alive announced in CONNECT. The publisher writes continuously, and the drain is
/// shorter than 1.5 times this, so it never needs a PINGREQ.
const KEEP_ALIVE_S: u16 = 120;

/// What one connection did.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionStats {
    /// PUBLISHes sent (warm-up included).
    pub(crate) published: u64,
    /// PUBACKs that matched a message in flight.
    pub(crate) acked: u64,
    /// Messages published inside the measured window.
    pub(crate) counted_published: u64,
    /// Of those, how many were acknowledged.
    pub(crate) counted_acked: u64,
    /// PUBACKs (of any message) that arrived inside the measured window.
    pub(crate) window_acked: u64,
    /// When the last counted message was acknowledged, in microseconds since the start.
    pub(crate) last_counted_ack_us: u64,
    /// PUBACKs whose packet id was not in flight.
    pub(crate) unexpected_acks: u64,
    /// Messages still unacknowledged when the connection ended.
    pub(crate) unacked: u64,
    /// Publish-to-PUBACK latency of counted messages, in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    /// Why the connection ended early, if it did.
    pub(crate) error: Option<String>,
}

impl ConnectionStats {
    fn new() -> Self {
        ConnectionStats {
            published: 0,
            acked: 0,
            counted_published: 0,
            counted_acked: 0,
            window_acked: 0,
            last_counted_ack_us: 0,
            unexpected_acks: 0,
            unacked: 0,
            latency_us: new_histogram(),
            error: None,
        }
    }
}

/// A latency histogram from 1 us to an hour, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits is valid")))
}

/// A connection that has had its CONNACK, and whatever arrived right behind it.
pub(crate) struct Connected {
    stream: LoadStream,
    leftover: BytesMut,
    version: MqttVersion,
    /// The server's Receive Maximum (MQTT 5).
    receive_max: Option<u16>,
}

/// Opens a TCP connection to `broker` (TLS with `tls`), and completes the MQTT CONNECT
/// handshake within `limit`.
pub(crate) async fn connect(
    broker: &BrokerAddr,
    tls: Option<&super::stream::TlsClient>,
    client_id: String,
    login: Option<(&str, &str)>,
    limit: Duration,
    version: MqttVersion,
) -> Result<Connected, LoadError> {
    let handshake = async {
        let host = broker.host.trim_matches(['[', ']']);
        let failed = |e: std::io::Error| LoadError::Connect(broker.to_string(), e.to_string());
        let stream = TcpStream::connect((host, broker.port))
            .await
            .map_err(failed)?;
        stream.set_nodelay(true).map_err(failed)?;
        let stream = match tls {
            None => LoadStream::Tcp(stream),
            Some(tls) => tls.connect(host, stream).await.map_err(failed)?,
        };
        match version {
            MqttVersion::V311 => handshake(stream, client_id, login).await,
            MqttVersion::V5 => handshake_v5(stream, client_id, login).await,
        }
    };
    timeout(limit, handshake)
        .await
        .map_err(|_| LoadError::ConnectTimeout {
            broker: broker.to_string(),
            waited: limit,
        })?
}

/// Sends CONNECT on `stream` and waits for a successful CONNACK.
async fn handshake(
    mut stream: LoadStream,
    client_id: String,
    login: Option<(&str, &str)>,
) -> Result<Connected, LoadError> {
    let mut connect = Connect::new(client_id);
    connect.protocol = Protocol::V4;
    connect.keep_alive = KEEP_ALIVE_S;
    connect.clean_session = true;
    if let Some((user, password)) = login {
        connect.set_login(user, password);
    }
    let mut buf = BytesMut::new();
    Packet::Connect(connect)
        .write(&mut buf, MAX_INCOMING_PACKET)
        .map_err(|e| LoadError::Protocol(format!("cannot encode CONNECT: {e}")))?;
    stream.write_all(&buf).await.map_err(LoadError::io)?;
    buf.clear();
    loop {
        match Packet::read(&mut buf, MAX_INCOMING_PACKET) {
            Ok(Packet::ConnAck(ConnAck { code, .. })) => {
                return if code == ConnectReturnCode::Success {
                    Ok(Connected {
                        stream,
                        leftover: buf,
                        version: MqttVersion::V311,
                        receive_max: None,
                    })
                } else {
                    Err(LoadError::Refused(format!("{code:?}")))
                };
            }
            Ok(other) => {
                return Err(LoadError::Protocol(format!(
                    "expected CONNACK, got {other:?}"
                )));
            }
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(LoadError::Protocol(format!("bad CONNACK: {e}"))),
        }
        if stream.read_buf(&mut buf).await.map_err(LoadError::io)? == 0 {
            return Err(LoadError::Protocol(
                "the server closed the connection instead of answering CONNECT".into(),
            ));
        }
    }
}

/// Sends an MQTT 5 CONNECT on `stream` and waits for a successful CONNACK.
async fn handshake_v5(
    mut stream: LoadStream,
    client_id: String,
    login: Option<(&str, &str)>,
) -> Result<Connected, LoadError> {
    let connect = v5::Connect {
        keep_alive: KEEP_ALIVE_S,
        client_id,
        clean_start: true,
        properties: None,
    };
    let login = login.map(|(user, password)| v5::Login::new(user, password));
    let mut buf = BytesMut::new();
    v5::Packet::Connect(connect, None, login)
        .write(&mut buf, None)
        .map_err(|e| LoadError::Protocol(format!("cannot encode CONNECT: {e}")))?;
    stream.write_all(&buf).await.map_err(LoadError::io)?;
    buf.clear();
    loop {
        match v5::Packet::read(&mut buf, Some(MAX_INCOMING_PACKET as u32)) {
            Ok(v5::Packet::ConnAck(ack)) => {
                return if ack.code == v5::ConnectReturnCode::Success {
                    Ok(Connected {
                        stream,
                        leftover: buf,
                        version: MqttVersion::V5,
                        receive_max: ack.properties.and_then(|p| p.receive_max),
                    })
                } else {
                    let why = ack.properties.and_then(|p| p.reason_string);
                    Err(LoadError::Refused(format!(
                        "{:?} {}",
                        ack.code,
                        why.unwrap_or_default()
                    )))
                };
            }
            Ok(other) => {
                return Err(LoadError::Protocol(format!(
                    "expected CONNACK, got {other:?}"
                )));
            }
            Err(mqttbytes5::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(LoadError::Protocol(format!("bad CONNACK: {e}"))),
        }
        if stream.read_buf(&mut buf).await.map_err(LoadError::io)? == 0 {
            return Err(LoadError::Protocol(
                "the server closed the connection instead of answering CONNECT".into(),
            ));
        }
    }
}

/// What the server sent a publisher.
enum Incoming {
    /// PUBACK of this packet id.
    PubAck(u16),
    /// PINGRESP.
    PingResp,
}

/// The next packet of `version` in `buf`, `None` until it is whole.
fn next_incoming(version: MqttVersion, buf: &mut BytesMut) -> Result<Option<Incoming>, LoadError> {
    let unexpected =
        |what: String| LoadError::Protocol(format!("unexpected packet from the server: {what}"));
    match version {
        MqttVersion::V311 => match Packet::read(buf, MAX_INCOMING_PACKET) {
            Ok(Packet::PubAck(ack)) => Ok(Some(Incoming::PubAck(ack.pkid))),
            Ok(Packet::PingResp) => Ok(Some(Incoming::PingResp)),
            Ok(other) => Err(unexpected(format!("{other:?}"))),
            Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(LoadError::Protocol(format!("bad packet: {e}"))),
        },
        MqttVersion::V5 => match v5::Packet::read(buf, Some(MAX_INCOMING_PACKET as u32)) {
            Ok(v5::Packet::PubAck(ack)) if ack.reason == v5::PubAckReason::Success => {
                Ok(Some(Incoming::PubAck(ack.pkid)))
            }
            // Every message of the load is valid: a refusal is the server's problem to report.
            Ok(v5::Packet::PubAck(ack)) => Err(LoadError::Protocol(format!(
                "PUBACK {} refused: {:?} {}",
                ack.pkid,
                ack.reason,
                ack.properties
                    .and_then(|p| p.reason_string)
                    .unwrap_or_default()
            ))),
            Ok(v5::Packet::PingResp(_)) => Ok(Some(Incoming::PingResp)),
            Ok(v5::Packet::Disconnect(d)) => Err(LoadError::Protocol(format!(
                "the server disconnected: {:?} {}",
                d.reason_code,
                d.properties
                    .and_then(|p| p.reason_string)
                    .unwrap_or_default()
            ))),
            Ok(other) => Err(unexpected(format!("{other:?}"))),
            Err(mqttbytes5::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(LoadError::Protocol(format!("bad packet: {e}"))),
        },
    }
}

/// A connected publisher and its devices.
pub(crate) struct Publisher {
    rd: ReadHalf<LoadStream>,
    wr: WriteHalf<LoadStream>,
    messages: Messages,
    ids: PacketIds,
    version: MqttVersion,
    write_buf: BytesMut,
    read_buf: BytesMut,
    /// Counted messages this connection still has to publish (`--messages`), else `None`.
    quota: Option<u64>,
    stats: ConnectionStats,
}

impl Publisher {
    /// A publisher on the connected `stream`, publishing `messages`.
    pub(crate) fn new(
        connected: Connected,
        messages: Messages,
        inflight: u16,
        quota: Option<u64>,
    ) -> Self {
        let mut read_buf = connected.leftover;
        read_buf.reserve(READ_CHUNK);
        let inflight = connected
            .receive_max
            .map_or(inflight, |max| inflight.min(max));
        let version = connected.version;
        let (rd, wr) = tokio::io::split(connected.stream);
        Publisher {
            rd,
            wr,
            messages,
            ids: PacketIds::new(inflight),
            version,
            write_buf: BytesMut::with_capacity(2 * WRITE_CHUNK),
            read_buf,
            quota,
            stats: ConnectionStats::new(),
        }
    }

    /// Publishes until the schedule ends or `shutdown`, drains, disconnects and returns what it
    /// did. A socket or protocol error ends the connection early; it is in the stats' `error`
    /// and its unacknowledged messages in `unacked`.
    pub(crate) async fn run(
        mut self,
        schedule: Arc<Schedule>,
        counters: Arc<Counters>,
        shutdown: CancellationToken,
    ) -> ConnectionStats {
        match self.pump(&schedule, &counters, &shutdown).await {
            Ok(()) => {
                if self.ids.in_flight() > 0 {
                    self.stats.error = Some(format!(
                        "{} PUBACKs still missing after the {} drain",
                        self.ids.in_flight(),
                        humantime::format_duration(schedule.drain_timeout)
                    ));
                }
                self.disconnect().await;
            }
            Err(e) => self.stats.error = Some(e.to_string()),
        }
        self.stats.unacked = self.ids.in_flight() as u64;
        self.stats
    }

    async fn pump(
        &mut self,
        schedule: &Schedule,
        counters: &Counters,
        shutdown: &CancellationToken,
    ) -> Result<(), LoadError> {
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let wake = sleep_until(schedule.end_instant());
        tokio::pin!(wake);
        // Packets that arrived together with the CONNACK.
        self.handle_packets(schedule, counters)?;
        let now_ms = schedule.unix_ms_at(schedule.elapsed_us());
        self.messages.prelude(&mut self.write_buf, now_ms)?;
        let mut stopping = false;
        loop {
            let now_us = schedule.elapsed_us();
            let done_publishing = schedule.is_over(now_us) || self.quota == Some(0);
            if !stopping && (done_publishing || shutdown.is_cancelled()) {
                stopping = true;
                wake.as_mut().reset(Instant::now() + schedule.drain_timeout);
            }
            let worth_it = (self.ids.window() / 16).clamp(1, REFILL_BATCH);
            if !stopping && self.ids.free() >= worth_it {
                self.refill(schedule, counters, now_us)?;
            }
            if stopping && self.ids.in_flight() == 0 && self.write_buf.is_empty() {
                return Ok(());
            }
            if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
                self.read_buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                read = self.rd.read_buf(&mut self.read_buf) => {
                    if read.map_err(LoadError::io)? == 0 {
                        return Err(LoadError::Protocol(format!(
                            "the server closed the connection with {} PUBLISHes unacknowledged",
                            self.ids.in_flight()
                        )));
                    }
                    self.handle_packets(schedule, counters)?;
                }
                written = self.wr.write(&self.write_buf), if !self.write_buf.is_empty() => {
                    let n = written.map_err(LoadError::io)?;
                    self.write_buf.advance(n);
                    if self.write_buf.is_empty() {
                        self.wr.flush().await.map_err(LoadError::io)?;
                    }
                }
                () = &mut wake => {
                    if stopping {
                        // The drain timed out; `run` reports what is still in flight.
                        return Ok(());
                    }
                }
                () = &mut cancelled, if !stopping => {}
            }
        }
    }

    /// Queues messages while the window has room, up to [`WRITE_CHUNK`] bytes.
    fn refill(
        &mut self,
        schedule: &Schedule,
        counters: &Counters,
        now_us: u64,
    ) -> Result<(), LoadError> {
        let counted = schedule.is_counted(now_us);
        let now_ms = schedule.unix_ms_at(now_us);
        let mut published = 0;
        while self.write_buf.len() < WRITE_CHUNK {
            if counted && self.quota == Some(0) {
                break;
            }
            let Some(pkid) = self.ids.allocate(Sent {
                at_us: now_us,
                counted,
            }) else {
                break;
            };
            self.messages.write(&mut self.write_buf, pkid, now_ms)?;
            published += 1;
            if counted {
                self.stats.counted_published += 1;
                if let Some(quota) = &mut self.quota {
                    *quota -= 1;
                }
            }
        }
        self.stats.published += published;
        counters.published.fetch_add(published, Ordering::Relaxed);
        Ok(())
    }

    /// Handles every complete packet in the read buffer.
    fn handle_packets(
        &mut self,
        schedule: &Schedule,
        counters: &Counters,
    ) -> Result<(), LoadError> {
        let now_us = schedule.elapsed_us();
        let in_window = schedule.is_in_window(now_us);
        let mut acked = 0;
        while let Some(incoming) = next_incoming(self.version, &mut self.read_buf)? {
            match incoming {
                Incoming::PubAck(pkid) => match self.ids.ack(pkid) {
                    Some(sent) => {
                        acked += 1;
                        if in_window {
                            self.stats.window_acked += 1;
                        }
                        if sent.counted {
                            self.stats.counted_acked += 1;
                            self.stats.last_counted_ack_us = now_us;
                            self.stats
                                .latency_us
                                .saturating_record(now_us.saturating_sub(sent.at_us).max(1));
                        }
                    }
                    None => self.stats.unexpected_acks += 1,
                },
                Incoming::PingResp => {}
            }
        }
        self.stats.acked += acked;
        counters.acked.fetch_add(acked, Ordering::Relaxed);
        Ok(())
    }

    /// Sends DISCONNECT and closes the socket, giving up after a second.
    async fn disconnect(&mut self) {
        let mut buf = BytesMut::new();
        if Packet::Disconnect.write(&mut buf, 2).is_err() {
            return;
        }
        let close = async {
            let _ = self.wr.write_all(&buf).await;
            let _ = self.wr.shutdown().await;
        };
        let _ = timeout(Duration::from_secs(1), close).await;
    }
}
