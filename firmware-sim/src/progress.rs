//! Live progress of a running fleet: the counters devices update as they go and the [`Progress`]
//! snapshots readers see.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// A snapshot of a running fleet's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Time since the fleet started.
    pub elapsed: Duration,
    /// MQTT connections the fleet opens: one per device, gateway children excluded.
    pub connections: u64,
    /// Connections currently up.
    pub connected: u64,
    /// Messages (telemetry and status) written to the broker, retransmissions not counted.
    pub messages_published: u64,
    /// QoS 1 and 2 messages the broker acknowledged.
    pub messages_acked: u64,
    /// Readings carried by the published telemetry messages.
    pub readings_published: u64,
    /// Readings carried by the acknowledged telemetry messages.
    pub readings_acked: u64,
    /// Successful connections after a device's first one.
    pub reconnects: u64,
    /// Failed connection attempts, dropped connections and protocol surprises.
    pub errors: u64,
}

/// The shared counters behind [`Progress`], updated by every device of a fleet.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    messages_published: AtomicU64,
    messages_acked: AtomicU64,
    readings_published: AtomicU64,
    readings_acked: AtomicU64,
    reconnects: AtomicU64,
    errors: AtomicU64,
    connected: AtomicU64,
    ever_connected: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    /// A message carrying `readings` readings went out for the first time.
    pub(crate) fn published(&self, readings: u64) {
        self.messages_published.fetch_add(1, Ordering::Relaxed);
        self.readings_published
            .fetch_add(readings, Ordering::Relaxed);
    }

    /// The broker acknowledged a message carrying `readings` readings.
    pub(crate) fn acked(&self, readings: u64) {
        self.messages_acked.fetch_add(1, Ordering::Relaxed);
        self.readings_acked.fetch_add(readings, Ordering::Relaxed);
    }

    /// A device connected; `first` if it never had before.
    pub(crate) fn connected(&self, first: bool) {
        self.connected.fetch_add(1, Ordering::Relaxed);
        let counter = if first {
            &self.ever_connected
        } else {
            &self.reconnects
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A connected device lost its connection (or closed it).
    pub(crate) fn disconnected(&self) {
        self.connected.fetch_sub(1, Ordering::Relaxed);
    }

    /// Something went wrong; the most recent error is kept for the fleet's error message.
    pub(crate) fn error(&self, error: impl Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(error.to_string());
    }

    /// How many devices connected at least once.
    pub(crate) fn ever_connected(&self) -> u64 {
        self.ever_connected.load(Ordering::Relaxed)
    }

    /// The most recent error, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// The counters now.
    pub(crate) fn snapshot(&self, elapsed: Duration, connections: u64) -> Progress {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Progress {
            elapsed,
            connections,
            connected: load(&self.connected),
            messages_published: load(&self.messages_published),
            messages_acked: load(&self.messages_acked),
            readings_published: load(&self.readings_published),
            readings_acked: load(&self.readings_acked),
            reconnects: load(&self.reconnects),
            errors: load(&self.errors),
        }
    }
}
