//! The dead-letter store: every rejected message, with its reason, kept for inspection.

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
        }
    }

    /// Adds a dead letter.
    pub fn push(&mut self, letter: DeadLetter) {
        *self.counts.entry(letter.reason).or_default() += 1;
        if self.recent.len() == self.capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(letter);
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
