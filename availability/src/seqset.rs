//! Which sequence numbers of a device's boot have been stored, as sorted disjoint ranges.
//!
//! Deduplication on (device, boot, seq) asks [`SeqSet::insert`]; completeness uses
//! [`SeqSet::count`] against [`SeqSet::span`]. A device that reports without gaps needs a single
//! range, so memory grows with the number of gaps, not with the number of readings.

/// A set of `u64` stored as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    ranges: Vec<(u64, u64)>,
    count: u64,
}

impl SeqSet {
    /// The set of the given inclusive ranges (sorted, disjoint and non-adjacent, as
    /// [`as_ranges`](Self::as_ranges) returns them); `None` if they are not.
    pub fn from_ranges(ranges: Vec<(u64, u64)>) -> Option<SeqSet> {
        let mut count = 0u64;
        for (i, &(lo, hi)) in ranges.iter().enumerate() {
            if lo > hi || (i > 0 && ranges[i - 1].1.checked_add(1)? >= lo) {
                return None;
            }
            count = count.checked_add(hi - lo + 1)?;
        }
        Some(SeqSet { ranges, count })
    }

    /// The inclusive ranges, in order.
    pub fn as_ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Adds `seq`; returns false if it was already present.
    pub fn insert(&mut self, seq: u64) -> bool {
        // Fast path: the next number after the last range.
        if let Some(last) = self.ranges.last_mut() {
            if seq > last.1 {
                if seq == last.1 + 1 {
                    last.1 = seq;
                } else {
                    self.ranges.push((seq, seq));
                }
                self.count += 1;
                return true;
            }
        } else {
            // Most devices never leave a gap: room for exactly one range, not the four a first
            // push reserves (a million devices keep one set per boot).
            self.ranges.reserve_exact(1);
            self.ranges.push((seq, seq));
            self.count = 1;
            return true;
        }
        // First range whose end is >= seq.
        let i = self.ranges.partition_point(|&(_, end)| end < seq);
        if i < self.ranges.len() && self.ranges[i].0 <= seq {
            return false;
        }
        let joins_prev = i > 0 && self.ranges[i - 1].1 + 1 == seq;
        let joins_next = i < self.ranges.len() && self.ranges[i].0 == seq + 1;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[i - 1].1 = self.ranges[i].1;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].1 = seq,
            (false, true) => self.ranges[i].0 = seq,
            (false, false) => self.ranges.insert(i, (seq, seq)),
        }
        self.count += 1;
        true
    }

    /// Whether `seq` is present.
    pub fn contains(&self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, end)| end < seq);
        i < self.ranges.len() && self.ranges[i].0 <= seq
    }

    /// Number of distinct values present.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest and largest value present.
    pub fn span(&self) -> Option<(u64, u64)> {
        Some((self.ranges.first()?.0, self.ranges.last()?.1))
    }

    /// Number of ranges (1 + the number of gaps).
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn contiguous_sequences_need_one_range() {
        let mut s = SeqSet::default();
        for seq in 1..=10_000 {
            assert!(s.insert(seq));
        }
        assert_eq!(
            (s.ranges(), s.count(), s.span()),
            (1, 10_000, Some((1, 10_000)))
        );
        assert!(!s.insert(5_000));
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(values in proptest::collection::vec(0u64..300, 0..400)) {
            let mut s = SeqSet::default();
            let mut model = BTreeSet::new();
            for v in values {
                prop_assert_eq!(s.insert(v), model.insert(v));
            }
            prop_assert_eq!(s.count(), model.len() as u64);
            for v in 0..300 {
                prop_assert_eq!(s.contains(v), model.contains(&v));
            }
            prop_assert_eq!(s.span(), model.first().copied().zip(model.last().copied()));
            let gaps = model.iter().zip(model.iter().skip(1)).filter(|(a, b)| **b != **a + 1).count();
            prop_assert_eq!(s.ranges(), if model.is_empty() { 0 } else { gaps + 1 });
        }
    }
}
