//! The write half of a device connection: acknowledgements from the pipeline and control
//! packets from the read half, batched into as few writes as possible.

use bytes::BytesMut;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{Packet, PubAck, PubRec};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::pipeline::AckToken;

/// Largest batch of outgoing bytes assembled before a write.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Writes acks and control packets until both channels are closed and drained (the read half
/// has finished and every in-flight message has been acknowledged or dropped), then shuts the
/// write half down.
pub(crate) async fn run<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut acks: mpsc::UnboundedReceiver<AckToken>,
    mut control: mpsc::UnboundedReceiver<Packet>,
) -> std::io::Result<u64> {
    let mut out = BytesMut::with_capacity(4096);
    let mut acks_open = true;
    let mut control_open = true;
    let mut acked = 0u64;
    while acks_open || control_open {
        tokio::select! {
            ack = acks.recv(), if acks_open => match ack {
                Some(token) => { encode_ack(token, &mut out); acked += 1; }
                None => acks_open = false,
            },
            packet = control.recv(), if control_open => match packet {
                Some(packet) => encode(&packet, &mut out),
                None => control_open = false,
            },
        }
        while out.len() < MAX_BATCH_BYTES {
            if let Ok(token) = acks.try_recv() {
                encode_ack(token, &mut out);
                acked += 1;
            } else if let Ok(packet) = control.try_recv() {
                encode(&packet, &mut out);
            } else {
                break;
            }
        }
        if !out.is_empty() {
            wr.write_all(&out).await?;
            out.clear();
        }
    }
    wr.flush().await?;
    let _ = wr.shutdown().await;
    Ok(acked)
}

fn encode_ack(token: AckToken, out: &mut BytesMut) {
    let packet = match token.qos {
        QoS::ExactlyOnce => Packet::PubRec(PubRec::new(token.pkid)),
        _ => Packet::PubAck(PubAck::new(token.pkid)),
    };
    encode(&packet, out);
}

fn encode(packet: &Packet, out: &mut BytesMut) {
    // Only small, well-formed packets are written here; encoding cannot exceed the limit.
    let _ = packet.write(out, usize::MAX);
}
