//! The progress feed task: publishes a [`Progress`] snapshot of the fleet's counters ten times a
//! second, and a last one when the run ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::progress::{Counters, Progress};

/// How often the snapshot is refreshed.
const PERIOD: Duration = Duration::from_millis(100);

/// Copies the fleet's counters into a watch channel.
pub(crate) struct ProgressFeed {
    sender: watch::Sender<Progress>,
    counters: Arc<Counters>,
    started: Instant,
    connections: u64,
}

impl ProgressFeed {
    /// A feed of `counters` of a fleet with `connections` connections that started at `started`.
    pub(crate) fn new(
        sender: watch::Sender<Progress>,
        counters: Arc<Counters>,
        started: Instant,
        connections: u64,
    ) -> Self {
        ProgressFeed {
            sender,
            counters,
            started,
            connections,
        }
    }

    /// Refreshes the snapshot until `shutdown`, then publishes a final one.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(PERIOD);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => self.publish(),
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let snapshot = self
            .counters
            .snapshot(self.started.elapsed(), self.connections);
        self.sender.send_replace(snapshot);
    }
}
