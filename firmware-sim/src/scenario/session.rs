//! One MQTT connection of a scenario device: connect with a Last Will, publish at QoS 1, wait for
//! every acknowledgement, then leave cleanly (DISCONNECT, then wait for the other side to close
//! the connection, so it has handled the DISCONNECT) or abruptly (the socket just closes, so the
//! broker publishes the Last Will).
//!
//! A task polls the rumqttc event loop and counts CONNACK and PUBACKs; it never reconnects on its
//! own: the scenario decides when a device reconnects.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::BrokerAddr;

/// Requests queued towards the event loop before `publish` waits.
const REQUEST_CAPACITY: usize = 64;
/// Largest packet sent or accepted.
const MAX_PACKET_BYTES: usize = 1 << 20;
/// How long a clean disconnect may take before the socket is dropped anyway.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the polling task has seen.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    connected: bool,
    acked: u64,
    closed: bool,
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot connect to mqtt://{host}:{port}")]
pub struct ConnectFailed {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
}

/// An open connection.
#[derive(Debug)]
pub struct Session {
    client: AsyncClient,
    task: JoinHandle<()>,
    seen: watch::Receiver<Seen>,
    published: u64,
    /// PUBACKs seen when the current flush began.
    flushed: u64,
}

impl Session {
    /// Connects as `client_id` with Last Will `will` (topic, payload); returns once CONNACK
    /// arrived.
    pub async fn open(
        broker: &BrokerAddr,
        client_id: &str,
        will: (String, Vec<u8>),
        keep_alive: Duration,
    ) -> Result<Session, ConnectFailed> {
        let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        options
            .set_clean_session(true)
            .set_keep_alive(keep_alive)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
            .set_last_will(LastWill::new(will.0, will.1, QoS::AtLeastOnce, false));
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        let mut network = eventloop.network_options();
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);
        let (tx, mut seen) = watch::channel(Seen::default());
        let task = tokio::spawn(poll(eventloop, tx));
        let connected = seen
            .wait_for(|s| s.connected || s.closed)
            .await
            .map(|s| s.connected && !s.closed)
            .unwrap_or(false);
        if !connected {
            task.abort();
            return Err(ConnectFailed {
                host: broker.host.clone(),
                port: broker.port,
            });
        }
        Ok(Session {
            client,
            task,
            seen,
            published: 0,
            flushed: 0,
        })
    }

    /// Queues a QoS 1 publish. False when the connection is gone.
    pub async fn publish(&mut self, topic: String, payload: Vec<u8>) -> bool {
        if self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .is_err()
        {
            return false;
        }
        self.published += 1;
        true
    }

    /// Waits until every publish is acknowledged or the connection is gone. Returns how many of
    /// the publishes since the previous flush were acknowledged (the broker acknowledges in
    /// order, so these are the first ones).
    pub async fn flush(&mut self) -> u64 {
        let target = self.published;
        let acked = self
            .seen
            .wait_for(|s| s.acked >= target || s.closed)
            .await
            .map(|s| s.acked)
            .unwrap_or(0)
            .min(target);
        let new = acked.saturating_sub(self.flushed);
        self.flushed = acked;
        self.published = acked;
        new
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.seen.borrow().closed
    }

    /// Sends DISCONNECT (no Last Will) and returns once the other side closed the connection
    /// (at most [`DISCONNECT_TIMEOUT`]).
    pub async fn disconnect(mut self) {
        if self.client.disconnect().await.is_ok() {
            let _ = tokio::time::timeout(DISCONNECT_TIMEOUT, &mut self.task).await;
        }
        self.task.abort();
    }

    /// Closes the socket without a word: the broker publishes the Last Will.
    pub async fn drop_abruptly(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Polls the event loop until the connection ends: it fails, or the other side closes it (after
/// a DISCONNECT went out, the server closes it once it has handled it).
async fn poll(mut eventloop: EventLoop, seen: watch::Sender<Seen>) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => seen.send_modify(|s| s.connected = true),
            Ok(Event::Incoming(Packet::PubAck(_))) => seen.send_modify(|s| s.acked += 1),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => seen.send_modify(|s| s.closed = true),
            Err(_) => break,
            Ok(_) => {}
        }
    }
    seen.send_modify(|s| s.closed = true);
}
