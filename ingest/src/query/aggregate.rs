//! Aggregation functions: reducing a bucket, and combining devices per bucket.

use citytel_storage::series::{Bucket, Points};

/// An aggregation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aggregation {
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
    /// The lowercase name, as in the API's enum without its prefix (`avg`, `min`, ...).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Sum => "sum",
            Aggregation::Count => "count",
            Aggregation::Last => "last",
        }
    }

    /// Whether this function can combine values of different devices.
    pub(crate) fn combines_across(self) -> bool {
        matches!(
            self,
            Aggregation::Avg | Aggregation::Sum | Aggregation::Min | Aggregation::Max
        )
    }

    /// The aggregate of one bucket.
    pub(crate) fn of(self, b: &Bucket) -> f64 {
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
pub(crate) fn reduce(buckets: &[Bucket], aggregation: Aggregation) -> Points {
    Points {
        times_ms: buckets.iter().map(|b| b.start_ms).collect(),
        values: buckets.iter().map(|b| aggregation.of(b)).collect(),
    }
}

/// Combines per-device series bucket by bucket (buckets a device lacks are skipped). Bucket
/// times are multiples of `step_ms`, so the buckets index a dense array.
pub(crate) fn across<'a>(
    series: impl Iterator<Item = &'a Points> + Clone,
    aggregation: Aggregation,
    step_ms: i64,
) -> Points {
    let bounds = series
        .clone()
        .filter_map(|p| Some((*p.times_ms.first()?, *p.times_ms.last()?)))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
    let Some((first, last)) = bounds else {
        return Points::default();
    };
    let slots = usize::try_from((last - first) / step_ms + 1).unwrap_or(0);
    // (sum, count, min, max) per bucket.
    let mut acc = vec![(0.0f64, 0u32, f64::INFINITY, f64::NEG_INFINITY); slots];
    for points in series {
        for (&t, &v) in points.times_ms.iter().zip(&points.values) {
            let Some(e) = usize::try_from((t - first) / step_ms)
                .ok()
                .and_then(|i| acc.get_mut(i))
            else {
                continue;
            };
            e.0 += v;
            e.1 += 1;
            e.2 = e.2.min(v);
            e.3 = e.3.max(v);
        }
    }
    let mut out = Points::default();
    for (i, (sum, count, min, max)) in acc.into_iter().enumerate() {
        if count == 0 {
            continue;
        }
        out.times_ms.push(first + i as i64 * step_ms);
        out.values.push(match aggregation {
            Aggregation::Sum => sum,
            Aggregation::Min => min,
            Aggregation::Max => max,
            _ => sum / f64::from(count),
        });
    }
    out
}
