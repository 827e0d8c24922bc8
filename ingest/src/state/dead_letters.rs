//! The dead-letter store: every rejected message, with its reason, kept for inspection.
//!
//! Recent dead letters live in memory (for `ListDeadLetters`) and in the `dead_letters` table
//! (written at checkpoints, read back at start-up: see `db`). Both are bounded:
//!
//! - each letter keeps at most [`DeadLetterLimits::payload_bytes`] of its payload and
//!   [`MAX_DETAIL_BYTES`] of its detail (cut at a character boundary);
//! - the store keeps at most [`DEFAULT_CAPACITY`] letters and [`DeadLetterLimits::total_bytes`]
//!   in all; beyond either, the oldest go first, counted in
//!   `citytel_dead_letters_evicted_total`. The housekeeping thread deletes the persisted letters
//!   older than the oldest one kept ([`DeadLetters::oldest_kept_seq`]), so the table and a
//!   restart stay within the same bound.
//!
//! Retention ([`DeadLetters::expire`]) prunes both by age; the counts per reason are kept forever.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::decode::RejectReason;
use crate::telemetry::metrics as m;

/// Dead letters kept in memory; older ones are dropped first (their counts remain).
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Longest detail kept with a dead letter, in bytes.
pub const MAX_DETAIL_BYTES: usize = 1024;
/// Bytes charged per dead letter on top of its topic, detail and payload.
const OVERHEAD_BYTES: usize = 96;

/// How much of each rejected message is kept, and how much in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterLimits {
    /// Payload bytes kept per dead letter (at most the WAL's own cap of 64 KiB).
    pub payload_bytes: usize,
    /// Bytes (payloads, details, topics and a fixed overhead) kept in all.
    pub total_bytes: usize,
}

impl Default for DeadLetterLimits {
    fn default() -> Self {
        DeadLetterLimits {
            payload_bytes: 64 * 1024,
            total_bytes: 64 << 20,
        }
    }
}

/// One rejected message.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Receive time, ms since the Unix epoch.
    pub received_at_ms: i64,
    /// Why it was rejected.
    pub reason: RejectReason,
    /// Its topic.
    pub topic: String,
    /// What exactly was wrong (capped).
    pub detail: String,
    /// The payload (capped).
    pub payload: Bytes,
}

impl DeadLetter {
    /// What keeping it costs against [`DeadLetterLimits::total_bytes`].
    fn cost(&self) -> usize {
        self.topic.len() + self.detail.len() + self.payload.len() + OVERHEAD_BYTES
    }

    /// Cuts the payload to `payload_bytes` and the detail to [`MAX_DETAIL_BYTES`].
    fn cap(&mut self, payload_bytes: usize) {
        if self.payload.len() > payload_bytes {
            self.payload.truncate(payload_bytes);
        }
        if self.detail.len() > MAX_DETAIL_BYTES {
            let cut = crate::journal::floor_char_boundary(&self.detail, MAX_DETAIL_BYTES);
            self.detail.truncate(cut);
        }
    }
}

/// Recent dead letters and the count of every reason since the data directory was created.
#[derive(Debug)]
pub struct DeadLetters {
    /// Kept letters with their sequence numbers, oldest first.
    recent: VecDeque<(u64, DeadLetter)>,
    capacity: usize,
    limits: DeadLetterLimits,
    /// Sum of the kept letters' costs.
    bytes: usize,
    counts: BTreeMap<RejectReason, u64>,
    /// Sequence number of the next dead letter.
    next_seq: u64,
    /// Dead letters not yet written to the store, with their sequence numbers.
    unflushed: Vec<(u64, DeadLetter)>,
}

impl Default for DeadLetters {
    fn default() -> Self {
        DeadLetters::new(DEFAULT_CAPACITY, DeadLetterLimits::default())
    }
}

impl DeadLetters {
    /// A store keeping the latest `capacity` dead letters within `limits`.
    pub fn new(capacity: usize, limits: DeadLetterLimits) -> Self {
        DeadLetters {
            recent: VecDeque::new(),
            capacity,
            limits,
            bytes: 0,
            counts: BTreeMap::new(),
            next_seq: 0,
            unflushed: Vec::new(),
        }
    }

    /// Adds a dead letter (capped), evicting the oldest ones it does not fit beside.
    pub fn push(&mut self, mut letter: DeadLetter) {
        *self.counts.entry(letter.reason).or_default() += 1;
        letter.cap(self.limits.payload_bytes);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.unflushed.push((seq, letter.clone()));
        self.keep(seq, letter);
        self.evict();
    }

    fn keep(&mut self, seq: u64, letter: DeadLetter) {
        self.bytes += letter.cost();
        self.recent.push_back((seq, letter));
    }

    /// Drops the oldest letters until the count and the byte budget hold (the newest one is
    /// always kept), and forgets evicted letters that were never persisted.
    fn evict(&mut self) {
        let mut evicted = 0u64;
        while self.recent.len() > 1
            && (self.recent.len() > self.capacity || self.bytes > self.limits.total_bytes)
        {
            if let Some((_, old)) = self.recent.pop_front() {
                self.bytes -= old.cost();
                evicted += 1;
            }
        }
        if evicted > 0 {
            metrics::counter!(m::DEAD_LETTERS_EVICTED_TOTAL).increment(evicted);
            let oldest = self.oldest_kept_seq();
            self.unflushed.retain(|(seq, _)| *seq >= oldest);
        }
    }

    /// Sequence number of the oldest letter kept (the next one's when none is): persisted
    /// letters before it are no longer needed.
    pub fn oldest_kept_seq(&self) -> u64 {
        self.recent.front().map_or(self.next_seq, |(seq, _)| *seq)
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

    /// Bytes the kept letters cost, against [`DeadLetterLimits::total_bytes`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Restores persisted dead letters at start-up, offered newest first with their sequence
    /// numbers; each is capped. Returns `false` once the store is full, when the caller stops
    /// offering (older letters would be evicted at once).
    pub fn restore_older(&mut self, seq: u64, mut letter: DeadLetter) -> bool {
        letter.cap(self.limits.payload_bytes);
        let cost = letter.cost();
        if self.recent.len() >= self.capacity
            || (!self.recent.is_empty() && self.bytes + cost > self.limits.total_bytes)
        {
            return false;
        }
        self.bytes += cost;
        self.recent.push_front((seq, letter));
        true
    }

    /// Takes the dead letters not yet persisted, with their sequence numbers.
    pub fn take_unflushed(&mut self) -> Vec<(u64, DeadLetter)> {
        std::mem::take(&mut self.unflushed)
    }

    /// Drops the dead letters received before `cutoff_ms` from memory (including those not yet
    /// persisted) and returns how many were dropped. Counts are not changed.
    pub fn expire(&mut self, cutoff_ms: i64) -> usize {
        let before = self.recent.len();
        self.recent.retain(|(_, l)| l.received_at_ms >= cutoff_ms);
        self.bytes = self.recent.iter().map(|(_, l)| l.cost()).sum();
        self.unflushed
            .retain(|(_, l)| l.received_at_ms >= cutoff_ms);
        before - self.recent.len()
    }

    /// Recent dead letters, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = &DeadLetter> {
        self.recent.iter().map(|(_, l)| l)
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

    fn big(received_at_ms: i64, payload: usize) -> DeadLetter {
        DeadLetter {
            payload: Bytes::from(vec![7u8; payload]),
            detail: "é".repeat(MAX_DETAIL_BYTES),
            ..letter(received_at_ms)
        }
    }

    #[test]
    fn expiry_drops_old_letters_and_keeps_counts() {
        let mut letters = DeadLetters::new(10, DeadLetterLimits::default());
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

    #[test]
    fn payloads_and_details_are_capped() {
        let limits = DeadLetterLimits {
            payload_bytes: 100,
            total_bytes: 1 << 20,
        };
        let mut letters = DeadLetters::new(10, limits);
        letters.push(big(1, 1 << 20));
        let kept = letters.recent().next().unwrap();
        assert_eq!(kept.payload.len(), 100);
        assert!(kept.detail.len() <= MAX_DETAIL_BYTES);
        assert!(kept.detail.chars().all(|c| c == 'é'), "cut at a character");
        assert_eq!(letters.take_unflushed()[0].1.payload.len(), 100);
    }

    #[test]
    fn the_byte_budget_evicts_the_oldest_first_and_forgets_their_unflushed_copies() {
        let limits = DeadLetterLimits {
            payload_bytes: 1000,
            total_bytes: 10_000,
        };
        let mut letters = DeadLetters::new(1000, limits);
        for t in 0..30 {
            letters.push(big(t, 1000));
        }
        assert!(letters.bytes() <= 10_000, "{}", letters.bytes());
        let kept: Vec<i64> = letters.recent().map(|l| l.received_at_ms).collect();
        assert!(kept.len() < 30 && !kept.is_empty());
        assert_eq!(*kept.last().unwrap(), 29, "the newest is kept");
        assert_eq!(kept, (30 - kept.len() as i64..30).collect::<Vec<_>>());
        assert_eq!(letters.oldest_kept_seq(), 30 - kept.len() as u64);
        let unflushed = letters.take_unflushed();
        assert_eq!(
            unflushed.len(),
            kept.len(),
            "evicted letters are not persisted"
        );
        assert_eq!(letters.counts()[&RejectReason::Malformed], 30);
    }

    #[test]
    fn the_count_capacity_evicts_too() {
        let mut letters = DeadLetters::new(3, DeadLetterLimits::default());
        for t in 0..5 {
            letters.push(letter(t));
        }
        let kept: Vec<i64> = letters.recent().map(|l| l.received_at_ms).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!(letters.oldest_kept_seq(), 2);
    }

    #[test]
    fn restoring_stops_at_the_budget_and_caps_old_oversize_payloads() {
        let limits = DeadLetterLimits {
            payload_bytes: 1000,
            total_bytes: 5_000,
        };
        let mut letters = DeadLetters::new(1000, limits);
        let mut offered = 0;
        for seq in (0..100u64).rev() {
            if !letters.restore_older(seq, big(seq as i64, 1 << 20)) {
                break;
            }
            offered += 1;
        }
        assert!(offered > 0 && offered < 100);
        assert!(letters.bytes() <= 5_000);
        assert!(letters.recent().all(|l| l.payload.len() == 1000));
        assert_eq!(letters.oldest_kept_seq(), 100 - offered);
    }
}
