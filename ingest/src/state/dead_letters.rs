//! The dead-letter store: every rejected message, with its reason, kept for inspection.
//!
//! Recent dead letters live in memory (for `ListDeadLetters`) and in the `dead_letters` keyspace
//! (written at checkpoints). Both are pruned to the configured retention by the maintenance
//! thread ([`DeadLetters::expire`], [`expired_keys`]); the counts per reason are kept forever.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use citytel_storage::engine::EngineError;
use citytel_storage::engine::store::Table;

use super::persist::{self, PersistError};
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

    /// Loads the most recent persisted dead letters. Returns the records that did not decode
    /// (skipped here, for the caller to count and report).
    pub fn load_recent(&mut self, table: &Table) -> Result<Vec<PersistError>, EngineError> {
        let mut loaded = Vec::new();
        let mut undecodable = Vec::new();
        for item in table.iter().rev().take(self.capacity) {
            let (_, value) = item?;
            match persist::decode_dead_letter(&value) {
                Ok(letter) => loaded.push(letter),
                Err(e) => undecodable.push(e),
            }
        }
        self.recent = loaded.into_iter().rev().collect();
        Ok(undecodable)
    }

    /// Takes the dead letters not yet persisted, encoded as (key, value) records.
    pub fn take_unflushed(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.unflushed)
            .into_iter()
            .map(|(seq, l)| (seq.to_be_bytes().to_vec(), persist::encode_dead_letter(&l)))
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
/// An undecodable record is expired with the ones before it.
pub fn expired_keys(table: &Table, cutoff_ms: i64) -> Result<Vec<Vec<u8>>, EngineError> {
    let mut keys = Vec::new();
    for item in table.iter() {
        let (key, value) = item?;
        if persist::decode_dead_letter(&value).is_ok_and(|l| l.received_at_ms >= cutoff_ms) {
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
        let unflushed = letters.take_unflushed();
        assert_eq!(unflushed.len(), 1);
        assert_eq!(unflushed[0].0, 2u64.to_be_bytes());
        assert_eq!(letters.expire(250), 0);
    }

    #[test]
    fn expired_keys_come_from_the_persisted_letters() {
        let dir = tempfile::tempdir().unwrap();
        let store = citytel_storage::engine::store::ChunkStore::open(
            dir.path(),
            1 << 20,
            0,
            &["dead_letters"],
        )
        .unwrap();
        let table = store.table("dead_letters").unwrap().clone();
        let mut letters = DeadLetters::with_capacity(10);
        for t in [100, 200, 300] {
            letters.push(letter(t));
        }
        let writes = letters
            .take_unflushed()
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        store.write_table(&table, writes).unwrap();
        let keys = expired_keys(&table, 250).unwrap();
        assert_eq!(
            keys,
            [0u64.to_be_bytes().to_vec(), 1u64.to_be_bytes().to_vec()]
        );
        store
            .write_table(&table, keys.into_iter().map(|k| (k, None)).collect())
            .unwrap();
        let mut reloaded = DeadLetters::with_capacity(10);
        assert!(reloaded.load_recent(&table).unwrap().is_empty());
        let left: Vec<i64> = reloaded.recent().map(|l| l.received_at_ms).collect();
        assert_eq!(left, [300]);
    }
}
