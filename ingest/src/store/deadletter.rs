//! The dead-letter store: every rejected message, with its reason, kept for inspection.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::engine::EngineError;
use crate::decode::RejectReason;

/// Dead letters kept in memory; older ones are dropped first (their counts remain).
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One rejected message.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Receive time, ms since the Unix epoch.
    pub received_at_ms: i64,
    /// Why it was rejected.
    pub reason: RejectReason,
    /// Its topic.
    pub topic: String,
    /// What exactly was wrong.
    pub detail: String,
    /// The payload (capped).
    pub payload: Bytes,
}

/// A dead letter as persisted in the `dead_letters` keyspace (postcard, keyed by its sequence
/// number as u64 big-endian).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    received_at_ms: i64,
    reason: u8,
    topic: String,
    detail: String,
    payload: Vec<u8>,
}

/// A key and value to store.
pub type Record = (Vec<u8>, Vec<u8>);

/// Recent dead letters and the count of every reason since the data directory was created.
#[derive(Debug)]
pub struct DeadLetters {
    recent: VecDeque<DeadLetter>,
    capacity: usize,
    counts: BTreeMap<RejectReason, u64>,
    /// Sequence number of the next dead letter.
    next_seq: u64,
    /// Dead letters not yet written to the store, with their sequence numbers.
    unflushed: Vec<(u64, DeadLetter)>,
}

impl Default for DeadLetters {
    fn default() -> Self {
        DeadLetters::with_capacity(DEFAULT_CAPACITY)
    }
}

impl DeadLetters {
    /// A store keeping the latest `capacity` dead letters.
    pub fn with_capacity(capacity: usize) -> Self {
        DeadLetters {
            recent: VecDeque::new(),
            capacity,
            counts: BTreeMap::new(),
            next_seq: 0,
            unflushed: Vec::new(),
        }
    }

    /// Adds a dead letter.
    pub fn push(&mut self, letter: DeadLetter) {
        *self.counts.entry(letter.reason).or_default() += 1;
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.unflushed.push((self.next_seq, letter.clone()));
        self.next_seq += 1;
        self.recent.push_back(letter);
    }

    /// Sequence number of the next dead letter.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Restores the counts and sequence from a snapshot.
    pub fn restore_counts(&mut self, counts: BTreeMap<RejectReason, u64>, next_seq: u64) {
        self.counts = counts;
        self.next_seq = next_seq;
    }

    /// Loads the most recent persisted dead letters.
    pub fn load_recent(&mut self, keyspace: &fjall::Keyspace) -> Result<(), EngineError> {
        let mut loaded = Vec::new();
        for item in keyspace.iter().rev().take(self.capacity) {
            let (_, value) = item.into_inner()?;
            let stored: Stored =
                postcard::from_bytes(&value).map_err(|e| EngineError::Snapshot(e.to_string()))?;
            let Some(reason) = RejectReason::from_code(stored.reason) else {
                continue;
            };
            loaded.push(DeadLetter {
                received_at_ms: stored.received_at_ms,
                reason,
                topic: stored.topic,
                detail: stored.detail,
                payload: Bytes::from(stored.payload),
            });
        }
        self.recent = loaded.into_iter().rev().collect();
        Ok(())
    }

    /// Takes the dead letters not yet persisted, encoded as (key, value) records.
    pub fn take_unflushed(&mut self) -> Result<Vec<Record>, EngineError> {
        std::mem::take(&mut self.unflushed)
            .into_iter()
            .map(|(seq, l)| {
                let value = postcard::to_stdvec(&Stored {
                    received_at_ms: l.received_at_ms,
                    reason: l.reason.code(),
                    topic: l.topic,
                    detail: l.detail,
                    payload: l.payload.to_vec(),
                })
                .map_err(|e| EngineError::Snapshot(e.to_string()))?;
                Ok((seq.to_be_bytes().to_vec(), value))
            })
            .collect()
    }

    /// Recent dead letters, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = &DeadLetter> {
        self.recent.iter()
    }

    /// Rejections per reason.
    pub fn counts(&self) -> &BTreeMap<RejectReason, u64> {
        &self.counts
    }
}
