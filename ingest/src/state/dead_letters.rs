//! The dead-letter store: every rejected message, with its reason, kept for inspection.
//!
//! Recent dead letters live in memory (for `ListDeadLetters`) and in the `dead_letters` table
//! (written at checkpoints, read back at start-up: see `db`). Both are pruned to the configured
//! retention by the housekeeping thread ([`DeadLetters::expire`]); the counts per reason are kept
//! forever.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

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

    /// Most dead letters kept in memory.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Restores the most recent persisted dead letters, oldest first (at start-up).
    pub fn restore_recent(&mut self, letters: Vec<DeadLetter>) {
        let skip = letters.len().saturating_sub(self.capacity);
        self.recent = letters.into_iter().skip(skip).collect();
    }

    /// Takes the dead letters not yet persisted, with their sequence numbers.
    pub fn take_unflushed(&mut self) -> Vec<(u64, DeadLetter)> {
        std::mem::take(&mut self.unflushed)
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
        assert_eq!(unflushed[0].0, 2);
        assert_eq!(letters.expire(250), 0);
    }
}
