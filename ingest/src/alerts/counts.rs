//! Readings counted for completeness rules, once per device and bucket interval.
//!
//! Completeness rules differ in window and target, not in what they count: every rule with the
//! same interval reads the same buckets. So a device's readings are counted once per interval
//! among the completeness rules that select it ([`Counts`]), and each rule sums the buckets of
//! its own window. A reading then costs one bucket update per interval (usually one), however
//! many completeness rules select its device, and the counts take memory per device and
//! interval, not per device and rule.

use std::collections::VecDeque;

/// One device's readings at one interval, per interval-wide bucket of receive time: (bucket
/// index, readings stored, readings the sequence numbers say were produced), in bucket order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    buckets: VecDeque<(i64, u32, u32)>,
}

impl Counts {
    /// Counts from (bucket, stored, produced) triples in any order; one bucket given twice (by
    /// two rules of a snapshot written before counts were shared) keeps the larger counts.
    pub fn from_buckets(buckets: impl IntoIterator<Item = (i64, u32, u32)>) -> Counts {
        let mut counts = Counts::default();
        counts.merge(buckets);
        counts
    }

    /// Adds `stored` and `produced` readings to `bucket`.
    pub fn add(&mut self, bucket: i64, stored: u64, produced: u64) {
        let (stored, produced) = (
            u32::try_from(stored).unwrap_or(u32::MAX),
            u32::try_from(produced).unwrap_or(u32::MAX),
        );
        // Receive times nearly always grow; an earlier one goes into its own bucket.
        match self.buckets.iter().rposition(|(b, _, _)| *b <= bucket) {
            Some(i) if self.buckets[i].0 == bucket => {
                let (_, s, p) = &mut self.buckets[i];
                *s = s.saturating_add(stored);
                *p = p.saturating_add(produced);
            }
            Some(i) => self.buckets.insert(i + 1, (bucket, stored, produced)),
            None => self.buckets.push_front((bucket, stored, produced)),
        }
    }

    /// Merges `buckets` in: a bucket already held keeps the larger of each count (the same
    /// readings, counted by rules that may have started counting at different times).
    pub fn merge(&mut self, buckets: impl IntoIterator<Item = (i64, u32, u32)>) {
        for (bucket, stored, produced) in buckets {
            match self.buckets.binary_search_by_key(&bucket, |(b, _, _)| *b) {
                Ok(i) => {
                    let (_, s, p) = &mut self.buckets[i];
                    *s = (*s).max(stored);
                    *p = (*p).max(produced);
                }
                Err(i) => self.buckets.insert(i, (bucket, stored, produced)),
            }
        }
    }

    /// Stored and produced readings in the buckets from `first` up to, not including, `last`.
    pub fn sum(&self, first: i64, last: i64) -> (i64, i64) {
        self.buckets
            .iter()
            .rev()
            .skip_while(|(b, _, _)| *b >= last)
            .take_while(|(b, _, _)| *b >= first)
            .fold((0, 0), |(s, p), (_, bs, bp)| {
                (s + i64::from(*bs), p + i64::from(*bp))
            })
    }

    /// Forgets the buckets before `first`.
    pub fn drop_before(&mut self, first: i64) {
        while self.buckets.front().is_some_and(|(b, _, _)| *b < first) {
            self.buckets.pop_front();
        }
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The buckets, in bucket order.
    pub fn buckets(&self) -> impl Iterator<Item = (i64, u32, u32)> + '_ {
        self.buckets.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_bucket_in_order() {
        let mut c = Counts::default();
        c.add(10, 1, 1);
        c.add(10, 2, 3);
        c.add(12, 1, 2);
        // Late: between the two, and before both.
        c.add(11, 4, 4);
        c.add(9, 1, 1);
        c.add(12, 0, 1);
        assert_eq!(
            c.buckets().collect::<Vec<_>>(),
            [(9, 1, 1), (10, 3, 4), (11, 4, 4), (12, 1, 3)]
        );
        c.add(13, u64::MAX, 5);
        c.add(13, 1, 0);
        assert_eq!(c.buckets().last(), Some((13, u32::MAX, 5)), "saturates");
    }

    #[test]
    fn sums_exactly_the_buckets_of_a_window() {
        let c = Counts::from_buckets([(3, 1, 2), (5, 10, 20), (6, 100, 200), (8, 1000, 2000)]);
        assert_eq!(c.sum(5, 8), (110, 220), "5 and 6; 8 is the current bucket");
        assert_eq!(c.sum(4, 6), (10, 20), "bucket 4 is empty");
        assert_eq!(c.sum(0, 100), (1111, 2222));
        assert_eq!(c.sum(7, 8), (0, 0));
        assert_eq!(c.sum(9, 20), (0, 0));
        assert_eq!(c.sum(6, 5), (0, 0), "an empty window");
    }

    #[test]
    fn old_buckets_go_and_merged_buckets_keep_the_larger_counts() {
        let mut c = Counts::from_buckets([(6, 5, 6), (4, 1, 1), (5, 2, 2)]);
        c.merge([(5, 3, 1), (7, 1, 1), (2, 9, 9)]);
        assert_eq!(
            c.buckets().collect::<Vec<_>>(),
            [(2, 9, 9), (4, 1, 1), (5, 3, 2), (6, 5, 6), (7, 1, 1)]
        );
        c.drop_before(5);
        assert_eq!(c.sum(i64::MIN, i64::MAX), (9, 9));
        c.drop_before(100);
        assert!(c.is_empty());
    }
}
