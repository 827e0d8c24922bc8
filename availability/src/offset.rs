//! Per-device clock offset: how far a device's clock is behind citytel's (receive time minus the
//! device's own timestamp), estimated robustly.
//!
//! The estimate is the median, over the most recent buckets of receive time (default: 15 buckets
//! of one minute), of the smallest offset seen in each bucket:
//! - network and queueing delay only ever make a sample's offset larger, so the smallest offset
//!   in a bucket is the least delayed one; buffered readings sent late (batches, resends after an
//!   outage) fall out by the same minimum as long as one fresh sample shares their bucket;
//! - the median across buckets ignores buckets that are off (a bucket of resends only, a clock
//!   glitch), as long as they are fewer than half;
//! - a clock step is followed once it has lasted for half the window.
//!
//! The result still includes the smallest network delay of each bucket (typically milliseconds).
//! Feed it messages whose device timestamp is the time they were sent: status messages, and the
//! newest reading of each batch.

use std::collections::VecDeque;

/// The smallest offset among the samples received in one bucket of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// Receive time divided by the bucket length.
    index: i64,
    min_offset_ms: i64,
    samples: u64,
}

/// An estimate of a device's clock offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockOffset {
    /// Receive time minus device time, ms: positive when the device's clock is behind.
    pub offset_ms: i64,
    /// Samples in the window the estimate comes from.
    pub samples: u64,
    /// Buckets in the window (each holds at least one sample).
    pub buckets: usize,
}

/// A device's clock offset estimator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockEstimator {
    bucket_ms: i64,
    max_buckets: usize,
    /// Sorted by index, all within `max_buckets` of the newest.
    buckets: VecDeque<Bucket>,
}

impl Default for ClockEstimator {
    /// A 15-minute window of 1-minute buckets.
    fn default() -> Self {
        ClockEstimator::new(60_000, 15)
    }
}

impl ClockEstimator {
    /// An estimator over the latest `buckets` buckets of `bucket_ms` each (both at least 1).
    pub fn new(bucket_ms: i64, buckets: usize) -> Self {
        ClockEstimator {
            bucket_ms: bucket_ms.max(1),
            max_buckets: buckets.max(1),
            buckets: VecDeque::new(),
        }
    }

    /// Adds a message the device stamped `device_ms` and citytel received at `received_ms`.
    /// Samples older than the window are ignored.
    pub fn observe(&mut self, device_ms: i64, received_ms: i64) {
        let offset = received_ms.saturating_sub(device_ms);
        let index = received_ms.div_euclid(self.bucket_ms);
        let newest = self.buckets.back().map_or(index, |b| b.index.max(index));
        let oldest_kept =
            newest.saturating_sub(i64::try_from(self.max_buckets).unwrap_or(i64::MAX)) + 1;
        if index < oldest_kept {
            return;
        }
        match self.buckets.binary_search_by_key(&index, |b| b.index) {
            Ok(i) => {
                let bucket = &mut self.buckets[i];
                bucket.min_offset_ms = bucket.min_offset_ms.min(offset);
                bucket.samples += 1;
            }
            Err(i) => self.buckets.insert(
                i,
                Bucket {
                    index,
                    min_offset_ms: offset,
                    samples: 1,
                },
            ),
        }
        while self.buckets.front().is_some_and(|b| b.index < oldest_kept) {
            self.buckets.pop_front();
        }
    }

    /// Everything the estimator holds, to persist: bucket length, most buckets kept, and per
    /// bucket (index, smallest offset, samples), oldest first.
    pub fn export(&self) -> (i64, usize, Vec<(i64, i64, u64)>) {
        let buckets = self
            .buckets
            .iter()
            .map(|b| (b.index, b.min_offset_ms, b.samples))
            .collect();
        (self.bucket_ms, self.max_buckets, buckets)
    }

    /// An estimator restored from [`export`](Self::export)'s parts (buckets sorted by index).
    pub fn import(bucket_ms: i64, max_buckets: usize, buckets: Vec<(i64, i64, u64)>) -> Self {
        let mut estimator = ClockEstimator::new(bucket_ms, max_buckets);
        let mut buckets: Vec<Bucket> = buckets
            .into_iter()
            .map(|(index, min_offset_ms, samples)| Bucket {
                index,
                min_offset_ms,
                samples,
            })
            .collect();
        buckets.sort_by_key(|b| b.index);
        buckets.dedup_by_key(|b| b.index);
        let keep = buckets.len().saturating_sub(estimator.max_buckets);
        estimator.buckets = buckets.into_iter().skip(keep).collect();
        estimator
    }

    /// The current estimate, `None` before the first sample.
    pub fn estimate(&self) -> Option<ClockOffset> {
        let mut minima: Vec<i64> = self.buckets.iter().map(|b| b.min_offset_ms).collect();
        minima.sort_unstable();
        let upper = *minima.get(minima.len() / 2)?;
        let lower = minima[(minima.len() - 1) / 2];
        Some(ClockOffset {
            offset_ms: lower.midpoint(upper),
            samples: self.buckets.iter().map(|b| b.samples).sum(),
            buckets: minima.len(),
        })
    }
}
