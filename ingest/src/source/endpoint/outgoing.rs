//! The write half of a device connection: acknowledgements from the pipeline and control
//! packets from the read half, batched into as few writes as possible.
//!
//! Both queues are bounded, so a client that does not read what citytel writes costs a fixed
//! amount of memory and is then disconnected:
//! - acknowledgements: [`ACK_QUEUE`] (a compliant client has at most 65,535 unacknowledged
//!   packet ids); the writer thread never waits on it, an overflow closes the connection;
//! - control packets (PINGRESP, PUBCOMP, SUBACK, UNSUBACK): [`CONTROL_QUEUE`]; the read half
//!   closes the connection when it is full;
//! - a write that makes no progress for [`WRITE_TIMEOUT`] closes the connection.
//!
//! Whichever way it happens, [`Outgoing::stalled`] is cancelled and the read half ends the
//! connection as `slow_reader`.
//!
//! The write half also keeps the count of QoS 1 and 2 publishes not yet acknowledged, which
//! the read half holds to the MQTT 5 Receive Maximum, and writes the server's DISCONNECT
//! ([`Outgoing::farewell`]) after everything else.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reply::{Encoder, ToClient};
use crate::pipeline::{AckToken, BoundedAcks};

/// Largest batch of outgoing bytes assembled before a write.
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Acknowledgements queued for one connection before it counts as not reading.
pub(crate) const ACK_QUEUE: usize = 65_536;
/// Control packets queued for one connection before it counts as not reading.
pub(crate) const CONTROL_QUEUE: usize = 64;
/// Longest time one write may take before the connection counts as not reading.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The read half's handles on the write half.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// Where the pipeline sends acknowledgements.
    pub(crate) acks: Arc<BoundedAcks>,
    /// Where the read half queues control packets.
    pub(crate) control: mpsc::Sender<ToClient>,
    /// Cancelled when the client does not read: a queue overflowed or a write timed out.
    pub(crate) stalled: CancellationToken,
    /// QoS 1 and 2 publishes received and not yet acknowledged.
    pub(crate) in_flight: Arc<InFlight>,
    farewell: Arc<Mutex<Option<ToClient>>>,
}

/// QoS 1 and 2 publishes of one connection that are not acknowledged yet: counted up by the
/// read half, down by the write half as it writes a PUBACK, a PUBREC refusing the message
/// (MQTT 5), or a PUBCOMP.
#[derive(Debug, Default)]
pub(crate) struct InFlight(AtomicUsize);

impl InFlight {
    /// How many there are.
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// One more.
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// One fewer (never below zero: a PUBREL may complete a delivery of an earlier
    /// connection).
    fn done(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

impl Outgoing {
    /// Has `packet` (the server's DISCONNECT) written after every acknowledgement and control
    /// packet still to come.
    pub(crate) fn farewell(&self, packet: ToClient) {
        if let Ok(mut last) = self.farewell.lock() {
            *last = Some(packet);
        }
    }
}

/// Starts the write half on `wr`, writing packets with `encoder`; returns the handles and its
/// task.
pub(crate) fn start<W: AsyncWrite + Unpin + Send + 'static>(
    wr: W,
    encoder: Encoder,
) -> (Outgoing, tokio::task::JoinHandle<std::io::Result<u64>>) {
    let (ack_tx, ack_rx) = mpsc::channel(ACK_QUEUE);
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let stalled = CancellationToken::new();
    let outgoing = Outgoing {
        acks: Arc::new(BoundedAcks {
            tx: ack_tx,
            stalled: stalled.clone(),
        }),
        control: control_tx,
        stalled: stalled.clone(),
        in_flight: Arc::default(),
        farewell: Arc::default(),
    };
    let writer = Writer {
        encoder,
        in_flight: outgoing.in_flight.clone(),
        farewell: outgoing.farewell.clone(),
    };
    let task = tokio::spawn(run(wr, writer, ack_rx, control_rx, stalled));
    (outgoing, task)
}

/// What the write half encodes with and reports to.
struct Writer {
    encoder: Encoder,
    in_flight: Arc<InFlight>,
    farewell: Arc<Mutex<Option<ToClient>>>,
}

impl Writer {
    fn ack(&self, token: AckToken, out: &mut BytesMut) {
        self.encoder.ack(token, out);
        // A PUBREC accepting a QoS 2 message leaves it in flight until PUBCOMP; one refusing it
        // (MQTT 5) ends the delivery.
        if token.qos != rumqttc::mqttbytes::QoS::ExactlyOnce || token.refused.is_some() {
            self.in_flight.done();
        }
    }

    fn control(&self, packet: &ToClient, out: &mut BytesMut) {
        self.encoder.encode(packet, out);
        if let ToClient::PubComp(_) = packet {
            self.in_flight.done();
        }
    }

    fn farewell(&self, out: &mut BytesMut) {
        let last = self.farewell.lock().ok().and_then(|mut last| last.take());
        if let Some(packet) = last {
            self.encoder.encode(&packet, out);
        }
    }
}

/// Writes acks and control packets until both channels are closed and drained (the read half
/// has finished and every in-flight message has been acknowledged or dropped), then shuts the
/// write half down. A failed or stalled write cancels `stalled` and ends it.
async fn run<W: AsyncWrite + Unpin>(
    wr: W,
    writer: Writer,
    acks: mpsc::Receiver<AckToken>,
    control: mpsc::Receiver<ToClient>,
    stalled: CancellationToken,
) -> std::io::Result<u64> {
    let result = write_all(wr, writer, acks, control).await;
    if result.is_err() {
        stalled.cancel();
    }
    result
}

async fn write_all<W: AsyncWrite + Unpin>(
    mut wr: W,
    writer: Writer,
    mut acks: mpsc::Receiver<AckToken>,
    mut control: mpsc::Receiver<ToClient>,
) -> std::io::Result<u64> {
    let mut out = BytesMut::with_capacity(4096);
    let mut acks_open = true;
    let mut control_open = true;
    let mut acked = 0u64;
    while acks_open || control_open {
        tokio::select! {
            ack = acks.recv(), if acks_open => match ack {
                Some(token) => { writer.ack(token, &mut out); acked += 1; }
                None => acks_open = false,
            },
            packet = control.recv(), if control_open => match packet {
                Some(packet) => writer.control(&packet, &mut out),
                None => control_open = false,
            },
        }
        while out.len() < MAX_BATCH_BYTES {
            if let Ok(token) = acks.try_recv() {
                writer.ack(token, &mut out);
                acked += 1;
            } else if let Ok(packet) = control.try_recv() {
                writer.control(&packet, &mut out);
            } else {
                break;
            }
        }
        if !out.is_empty() {
            write_timed(&mut wr, &out).await?;
            out.clear();
        }
    }
    writer.farewell(&mut out);
    if !out.is_empty() {
        write_timed(&mut wr, &out).await?;
    }
    wr.flush().await?;
    let _ = wr.shutdown().await;
    Ok(acked)
}

/// Writes `out` within [`WRITE_TIMEOUT`].
async fn write_timed<W: AsyncWrite + Unpin>(wr: &mut W, out: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(out)).await {
        Ok(written) => written,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client does not read",
        )),
    }
}
