//! Aggregation functions: reducing a bucket, and combining devices per bucket.

use std::collections::BTreeMap;

use crate::store::series::{Bucket, Points};

/// An aggregation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Arithmetic mean.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sum.
    Sum,
    /// Number of points.
    Count,
    /// Value with the greatest timestamp.
    Last,
}

impl Aggregation {
    /// Whether this function can combine values of different devices.
    pub fn combines_across(self) -> bool {
        matches!(
            self,
            Aggregation::Avg | Aggregation::Sum | Aggregation::Min | Aggregation::Max
        )
    }

    /// The aggregate of one bucket.
    pub fn of(self, b: &Bucket) -> f64 {
        match self {
            Aggregation::Avg => b.sum / b.count as f64,
            Aggregation::Min => b.min,
            Aggregation::Max => b.max,
            Aggregation::Sum => b.sum,
            Aggregation::Count => b.count as f64,
            Aggregation::Last => b.last,
        }
    }
}

/// One value per bucket, at the bucket start.
pub fn reduce(buckets: &[Bucket], aggregation: Aggregation) -> Points {
    Points {
        times_ms: buckets.iter().map(|b| b.start_ms).collect(),
        values: buckets.iter().map(|b| aggregation.of(b)).collect(),
    }
}

/// Combines per-device series bucket by bucket (buckets a device lacks are skipped).
pub fn across<'a>(series: impl Iterator<Item = &'a Points>, aggregation: Aggregation) -> Points {
    // (sum, count, min, max) per bucket start.
    let mut acc: BTreeMap<i64, (f64, u64, f64, f64)> = BTreeMap::new();
    for points in series {
        for (&t, &v) in points.times_ms.iter().zip(&points.values) {
            let e = acc
                .entry(t)
                .or_insert((0.0, 0, f64::INFINITY, f64::NEG_INFINITY));
            e.0 += v;
            e.1 += 1;
            e.2 = e.2.min(v);
            e.3 = e.3.max(v);
        }
    }
    let mut out = Points::default();
    for (t, (sum, count, min, max)) in acc {
        out.times_ms.push(t);
        out.values.push(match aggregation {
            Aggregation::Sum => sum,
            Aggregation::Min => min,
            Aggregation::Max => max,
            _ => sum / count as f64,
        });
    }
    out
}
