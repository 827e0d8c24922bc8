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

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{ToClient, Version};
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
}

/// Starts the write half on `wr`, writing packets of `version`; returns the handles and its
/// task.
pub(crate) fn start<W: AsyncWrite + Unpin + Send + 'static>(
    wr: W,
    version: Version,
) -> (Outgoing, tokio::task::JoinHandle<std::io::Result<u64>>) {
    let (ack_tx, ack_rx) = mpsc::channel(ACK_QUEUE);
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let stalled = CancellationToken::new();
    let task = tokio::spawn(run(wr, version, ack_rx, control_rx, stalled.clone()));
    let outgoing = Outgoing {
        acks: Arc::new(BoundedAcks {
            tx: ack_tx,
            stalled: stalled.clone(),
        }),
        control: control_tx,
        stalled,
    };
    (outgoing, task)
}

/// Writes acks and control packets until both channels are closed and drained (the read half
/// has finished and every in-flight message has been acknowledged or dropped), then shuts the
/// write half down. A failed or stalled write cancels `stalled` and ends it.
async fn run<W: AsyncWrite + Unpin>(
    wr: W,
    version: Version,
    acks: mpsc::Receiver<AckToken>,
    control: mpsc::Receiver<ToClient>,
    stalled: CancellationToken,
) -> std::io::Result<u64> {
    let result = write_all(wr, version, acks, control).await;
    if result.is_err() {
        stalled.cancel();
    }
    result
}

async fn write_all<W: AsyncWrite + Unpin>(
    mut wr: W,
    version: Version,
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
                Some(token) => { version.encode_ack(token.pkid, token.qos, &mut out); acked += 1; }
                None => acks_open = false,
            },
            packet = control.recv(), if control_open => match packet {
                Some(packet) => version.encode(&packet, &mut out),
                None => control_open = false,
            },
        }
        while out.len() < MAX_BATCH_BYTES {
            if let Ok(token) = acks.try_recv() {
                version.encode_ack(token.pkid, token.qos, &mut out);
                acked += 1;
            } else if let Ok(packet) = control.try_recv() {
                version.encode(&packet, &mut out);
            } else {
                break;
            }
        }
        if !out.is_empty() {
            match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&out)).await {
                Ok(written) => written?,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client does not read",
                    ));
                }
            }
            out.clear();
        }
    }
    wr.flush().await?;
    let _ = wr.shutdown().await;
    Ok(acked)
}
