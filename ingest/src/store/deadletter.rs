//! The dead-letter store: every rejected message, with its reason, kept for inspection.
//!
//! Recent dead letters live in memory (for `ListDeadLetters`) and in the `dead_letters` keyspace
//! (written at checkpoints). Both are pruned to the configured retention by the maintenance
//! thread ([`DeadLetters::expire`], [`expired_keys`]); the counts per reason are kept forever.

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

    /// Drops the dead letters received before `cutoff_ms` from memory (including those not yet
    /// persisted) and returns how many were dropped. Counts are not changed.
    pub fn expire(&mut self, cutoff_ms: i64) -> usize {
        let before = self.recent.len();
        self.recent.retain(|l| l.received_at_ms >= cutoff_ms);
        self.unflushed
            .retain(|(_, l)| l.received_at_ms >= cutoff_ms);
        before - self.recent.len()
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

/// Keys of the persisted dead letters received before `cutoff_ms`, for deletion. Dead letters
/// are keyed in WAL order, which is receive order, so the scan stops at the first one to keep.
pub fn expired_keys(
    keyspace: &fjall::Keyspace,
    cutoff_ms: i64,
) -> Result<Vec<Vec<u8>>, EngineError> {
    let mut keys = Vec::new();
    for item in keyspace.iter() {
        let (key, value) = item.into_inner()?;
        let stored: Stored =
            postcard::from_bytes(&value).map_err(|e| EngineError::Snapshot(e.to_string()))?;
        if stored.received_at_ms >= cutoff_ms {
            break;
        }
        keys.push(key.to_vec());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(received_at_ms: i64) -> DeadLetter {
        DeadLetter {
            received_at_ms,
            reason: RejectReason::Malformed,
            topic: "t".into(),
            detail: "d".into(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn expiry_drops_old_letters_and_keeps_counts() {
        let mut letters = DeadLetters::with_capacity(10);
        for t in [100, 200, 300] {
            letters.push(letter(t));
        }
        assert_eq!(letters.expire(250), 2);
        let left: Vec<i64> = letters.recent().map(|l| l.received_at_ms).collect();
        assert_eq!(left, [300]);
        assert_eq!(letters.counts()[&RejectReason::Malformed], 3);
        let unflushed = letters.take_unflushed().unwrap();
        assert_eq!(unflushed.len(), 1);
        assert_eq!(unflushed[0].0, 2u64.to_be_bytes());
        assert_eq!(letters.expire(250), 0);
    }

    #[test]
    fn expired_keys_come_from_the_persisted_letters() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::engine::store::ChunkStore::open(dir.path(), 1 << 20, 0).unwrap();
        let mut letters = DeadLetters::with_capacity(10);
        for t in [100, 200, 300] {
            letters.push(letter(t));
        }
        let writes = letters
            .take_unflushed()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        store.ingest_into(&store.dead_letters, writes).unwrap();
        let keys = expired_keys(&store.dead_letters, 250).unwrap();
        assert_eq!(
            keys,
            [0u64.to_be_bytes().to_vec(), 1u64.to_be_bytes().to_vec()]
        );
        store
            .ingest_into(
                &store.dead_letters,
                keys.into_iter().map(|k| (k, None)).collect(),
            )
            .unwrap();
        let mut reloaded = DeadLetters::with_capacity(10);
        reloaded.load_recent(&store.dead_letters).unwrap();
        let left: Vec<i64> = reloaded.recent().map(|l| l.received_at_ms).collect();
        assert_eq!(left, [300]);
    }
}
