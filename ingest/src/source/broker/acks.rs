//! Acknowledgements to the broker, written in batches by the task that polls the event loop.
//!
//! rumqttc's `AsyncClient::ack` queues one request per message, and its event loop writes and
//! flushes each request on its own: one `write` system call per acknowledged message, on both
//! sides of the connection. The writer reports a whole group commit durable at once, so the
//! poller takes every acknowledgement that is ready, lets rumqttc's session state turn each
//! into its PUBACK (or PUBREC) packet, writes them to rumqttc's connection and flushes once.
//!
//! Acknowledgements belong to one connection. Each connection gets its own channel; when it
//! drops, the channel goes with it, and acknowledgements still on their way are discarded:
//! the broker redelivers those messages on the next connection and the pipeline deduplicates
//! them. An acknowledgement can therefore never reach a later connection, where its packet id
//! may already name a different, not yet durable message.

use std::time::Duration;

use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{PubAck, PubRec};
use rumqttc::{ConnectionError, EventLoop, Request};
use tokio::sync::mpsc;

use crate::pipeline::AckToken;

/// Most acknowledgements written before one flush; more wait for the next round.
const BATCH_MAX: usize = 4096;

/// The acknowledgement channel of one connection.
pub(super) struct ConnectionAcks {
    /// Handed out with every message received on this connection; `None` once closed.
    tx: Option<mpsc::UnboundedSender<AckToken>>,
    rx: mpsc::UnboundedReceiver<AckToken>,
    batch: Vec<AckToken>,
}

impl ConnectionAcks {
    /// A fresh channel, for a connection the broker has just accepted.
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        ConnectionAcks {
            tx: Some(tx),
            rx,
            batch: Vec::new(),
        }
    }

    /// The sender to hand out with a message received on this connection; `None` once closed.
    pub(crate) fn sender(&self) -> Option<mpsc::UnboundedSender<AckToken>> {
        self.tx.clone()
    }

    /// Hands out no more senders, so that [`Self::ready`] returns `false` once every message
    /// already received has been acknowledged or dropped.
    pub(crate) fn close(&mut self) {
        self.tx = None;
    }

    /// Waits for the next acknowledgement, then takes every other one already waiting.
    /// Returns `false` when no sender is left (every message of this connection has been
    /// acknowledged or dropped).
    pub(crate) async fn ready(&mut self) -> bool {
        self.batch.clear();
        self.rx.recv_many(&mut self.batch, BATCH_MAX).await > 0
    }

    /// Writes the batch taken by [`Self::ready`] to the broker in arrival order, with one
    /// flush. Returns how many were written.
    pub(crate) async fn write(
        &mut self,
        eventloop: &mut EventLoop,
    ) -> Result<usize, ConnectionError> {
        let timeout = Duration::from_secs(eventloop.network_options().connection_timeout());
        let count = self.batch.len();
        let Some(network) = eventloop.network.as_mut() else {
            // The connection is gone; so is every message these acknowledgements were for.
            self.batch.clear();
            return Ok(0);
        };
        for token in self.batch.drain(..) {
            let request = match token.qos {
                QoS::ExactlyOnce => Request::PubRec(PubRec::new(token.pkid)),
                _ => Request::PubAck(PubAck::new(token.pkid)),
            };
            if let Some(packet) = eventloop.state.handle_outgoing_packet(request)? {
                network.write(packet).await?;
            }
        }
        match tokio::time::timeout(timeout, network.flush()).await {
            Ok(flushed) => flushed?,
            Err(_) => return Err(ConnectionError::FlushTimeout),
        }
        Ok(count)
    }
}
