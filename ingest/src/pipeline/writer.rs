//! The writer: one dedicated thread that group-commits queued messages to the WAL, applies them
//! to the database and acknowledges them, in arrival order.
//!
//! Whatever arrived while the previous commit was in flight forms the next group, so under load
//! one fsync covers many messages and at low load a message waits for one fsync only. A failed
//! write or fsync ends the writer without acknowledging anything more: the service then stops
//! rather than report data durable that may not be.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::Envelope;
use crate::store::entry::Entry;
use crate::store::wal::{Wal, WalError};
use crate::store::{Applied, Database};
use crate::telemetry::metrics as m;

/// Most messages committed in one group.
const MAX_GROUP: usize = 8192;
/// Most bytes buffered for one group.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Totals of a writer's run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Group commits.
    pub commits: u64,
    /// Messages accepted.
    pub accepted: u64,
    /// Messages rejected into the dead-letter store.
    pub rejected: u64,
    /// Readings stored.
    pub readings_stored: u64,
    /// Readings dropped as duplicates.
    pub readings_duplicate: u64,
}

/// The group-commit loop.
pub struct Writer {
    rx: mpsc::UnboundedReceiver<Envelope>,
    wal: Wal,
    db: Arc<Database>,
}

impl Writer {
    /// A writer committing messages from `rx` to `wal` and applying them to `db`.
    pub fn new(rx: mpsc::UnboundedReceiver<Envelope>, wal: Wal, db: Arc<Database>) -> Self {
        Writer { rx, wal, db }
    }

    /// Runs the loop on the calling thread (a dedicated one: it blocks) until every
    /// [`super::Pipeline`] handle is dropped and the queue is drained, or until the WAL fails.
    pub fn run(mut self) -> Result<WriterStats, WalError> {
        let mut stats = WriterStats::default();
        let mut group: Vec<Envelope> = Vec::with_capacity(1024);
        while let Some(first) = self.rx.blocking_recv() {
            group.push(first);
            while group.len() < MAX_GROUP && self.wal.pending_bytes() < MAX_GROUP_BYTES {
                match self.rx.try_recv() {
                    Ok(envelope) => group.push(envelope),
                    Err(_) => break,
                }
            }
            self.commit(&mut group, &mut stats)?;
        }
        tracing::debug!(?stats, "writer drained");
        Ok(stats)
    }

    fn commit(
        &mut self,
        group: &mut Vec<Envelope>,
        stats: &mut WriterStats,
    ) -> Result<(), WalError> {
        let mut wal_bytes = 0usize;
        for envelope in group.iter() {
            let entry = entry_of(envelope);
            self.wal.append_with(|buf| {
                let start = buf.len();
                entry.encode(buf);
                wal_bytes += buf.len() - start;
            })?;
        }
        let started = Instant::now();
        if let Err(e) = self.wal.commit() {
            tracing::error!(error = %e, "wal commit failed; no further message will be acknowledged");
            return Err(e);
        }
        metrics::histogram!(m::WAL_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::counter!(m::WAL_COMMITS_TOTAL).increment(1);
        metrics::counter!(m::WAL_BYTES_TOTAL).increment(wal_bytes as u64);
        stats.commits += 1;

        let mut applied = Applied::default();
        let (mut accepted, mut acked) = (0u64, 0u64);
        {
            let mut state = self.db.write();
            for envelope in group.iter() {
                let a = state.apply(&entry_of(envelope), envelope.verdict.as_ref().ok());
                applied.readings_stored += a.readings_stored;
                applied.readings_duplicate += a.readings_duplicate;
            }
        }
        for envelope in group.drain(..) {
            match &envelope.verdict {
                Ok(_) => accepted += 1,
                Err(rejection) => {
                    stats.rejected += 1;
                    metrics::counter!(m::MESSAGES_REJECTED_TOTAL, "reason" => rejection.reason.as_str())
                        .increment(1);
                }
            }
            if let Some(ack) = envelope.inbound.ack {
                ack.send();
                acked += 1;
            }
        }
        stats.accepted += accepted;
        stats.readings_stored += applied.readings_stored;
        stats.readings_duplicate += applied.readings_duplicate;
        metrics::counter!(m::MESSAGES_ACCEPTED_TOTAL).increment(accepted);
        metrics::counter!(m::MESSAGES_ACKED_TOTAL).increment(acked);
        metrics::counter!(m::READINGS_STORED_TOTAL).increment(applied.readings_stored);
        metrics::counter!(m::READINGS_DUPLICATE_TOTAL).increment(applied.readings_duplicate);
        Ok(())
    }
}

fn entry_of(envelope: &Envelope) -> Entry<'_> {
    let inbound = &envelope.inbound;
    match &envelope.verdict {
        Ok(_) => Entry::Message {
            received_at_ms: inbound.received_at_ms,
            topic: &inbound.topic,
            payload: &inbound.payload,
        },
        Err(rejection) => Entry::DeadLetter {
            received_at_ms: inbound.received_at_ms,
            reason: rejection.reason,
            topic: &inbound.topic,
            detail: &rejection.detail,
            payload: &inbound.payload,
        },
    }
}
