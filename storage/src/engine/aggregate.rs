//! Step buckets straight from a decoded segment, without materializing its points: runs of
//! regular timestamps are cut into buckets by arithmetic, and decimal values are summed as
//! integers (exactly). This is the raw path of bucketed queries that rollups cannot answer.

use super::codec::{Run, TimeColumn, ValueColumn};
use crate::series::{Bucket, bucket_start};

/// The first index `i` of a run with `start + i * step >= t` (`step > 0`), clamped to `0..=count`.
fn first_at_or_after(run: &Run, t: i64) -> usize {
    let offset = i128::from(t) - i128::from(run.start);
    let step = i128::from(run.step);
    let i = if offset <= 0 {
        0
    } else {
        (offset + step - 1) / step
    };
    i.clamp(0, i128::from(run.count)) as usize
}

/// Summaries of the points in `[start_ms, end_ms)` in buckets of `step_ms`.
pub fn aggregate(
    times: &TimeColumn,
    values: &ValueColumn,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
) -> Vec<Bucket> {
    // At most one bucket per step in the range (and per point): sized once, never regrown.
    let steps = (end_ms.saturating_sub(start_ms) / step_ms.max(1)).saturating_add(1);
    let mut out: Vec<Bucket> =
        Vec::with_capacity(usize::try_from(steps).unwrap_or(0).min(values.len()));
    // 10^scale of a decimal column, once rather than per bucket.
    let p = match values {
        ValueColumn::Decimal { scale, .. } | ValueColumn::Decimal32 { scale, .. } => {
            10f64.powi(i32::from(*scale))
        }
        ValueColumn::Float(_) => 1.0,
    };
    let mut emit = |b: Bucket| match out.last_mut() {
        Some(last) if last.start_ms == b.start_ms => last.merge(&b),
        _ => out.push(b),
    };
    match times {
        TimeColumn::Runs(runs) => {
            let mut base = 0usize;
            for run in runs {
                let count = run.count as usize;
                if run.step <= 0 || count == 1 {
                    // A single point (runs of one have step 0).
                    for k in 0..count {
                        let t = run.start.wrapping_add(run.step.wrapping_mul(k as i64));
                        if t >= start_ms && t < end_ms {
                            emit(summarize(
                                values,
                                p,
                                base + k..base + k + 1,
                                bucket_start(t, step_ms),
                                t,
                            ));
                        }
                    }
                    base += count;
                    continue;
                }
                let mut i = first_at_or_after(run, start_ms);
                let end = first_at_or_after(run, end_ms);
                // When the bucket width is a multiple of the run's step, every bucket after the
                // first holds the same number of the run's points: no division per bucket.
                let per_bucket = (step_ms % run.step == 0).then(|| (step_ms / run.step) as usize);
                let mut first = true;
                while i < end {
                    let t = run.start + run.step * i as i64;
                    let bucket = bucket_start(t, step_ms);
                    let j = match per_bucket {
                        Some(n) if !first => (i + n).min(end),
                        _ => {
                            first_at_or_after(run, bucket.saturating_add(step_ms)).clamp(i + 1, end)
                        }
                    };
                    first = false;
                    let last_time = run.start + run.step * (j as i64 - 1);
                    emit(summarize(values, p, base + i..base + j, bucket, last_time));
                    i = j;
                }
                base += count;
            }
        }
        TimeColumn::Explicit(ts) => {
            let from = ts.partition_point(|&t| t < start_ms);
            let to = ts.partition_point(|&t| t < end_ms).max(from);
            let mut i = from;
            while i < to {
                let bucket = bucket_start(ts[i], step_ms);
                let bucket_end = bucket.saturating_add(step_ms);
                let j = i + ts[i..to].partition_point(|&t| t < bucket_end);
                emit(summarize(values, p, i..j, bucket, ts[j - 1]));
                i = j;
            }
        }
    }
    out
}

/// The bucket of values `range` (non-empty), starting at `start_ms`, last point at `last_time_ms`.
/// `p` is 10^scale of a decimal column.
fn summarize(
    values: &ValueColumn,
    p: f64,
    range: std::ops::Range<usize>,
    start_ms: i64,
    last_time_ms: i64,
) -> Bucket {
    match values {
        ValueColumn::Decimal { ints, .. } => decimal(&ints[range], p, start_ms, last_time_ms),
        ValueColumn::Decimal32 { ints, .. } => decimal(&ints[range], p, start_ms, last_time_ms),
        ValueColumn::Float(v) => {
            let slice = &v[range];
            let mut b = Bucket {
                start_ms,
                count: slice.len() as u64,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                last_time_ms,
                last: slice.last().copied().unwrap_or(0.0),
            };
            for &x in slice {
                b.sum += x;
                b.min = b.min.min(x);
                b.max = b.max.max(x);
            }
            b
        }
    }
}

/// The bucket of the decimal integers `slice` (non-empty) at the scale whose 10^scale is `p`.
fn decimal<T: Copy + Ord + Into<i64>>(
    slice: &[T],
    p: f64,
    start_ms: i64,
    last_time_ms: i64,
) -> Bucket {
    // Separate passes over the slice vectorize; the sum is exact in i64 as long as it cannot
    // overflow (decimal values are below 2^53 each), else in i128.
    let sum = if slice.len() < 1024 {
        slice.iter().fold(0i64, |a, &k| a.wrapping_add(k.into())) as f64
    } else {
        slice.iter().map(|&k| i128::from(k.into())).sum::<i128>() as f64
    };
    let (first, last) = match (slice.first(), slice.last()) {
        (Some(&f), Some(&l)) => (f, l),
        // Callers pass non-empty ranges; an empty one summarizes to nothing.
        _ => {
            return Bucket {
                start_ms,
                count: 0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                last_time_ms,
                last: 0.0,
            };
        }
    };
    let min = slice.iter().copied().fold(first, T::min);
    let max = slice.iter().copied().fold(first, T::max);
    Bucket {
        start_ms,
        count: slice.len() as u64,
        sum: sum / p,
        min: min.into() as f64 / p,
        max: max.into() as f64 / p,
        last_time_ms,
        last: last.into() as f64 / p,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::codec;
    use super::*;
    use crate::series::{Points, bucketize};

    proptest! {
        /// The fast path gives the same buckets as summarizing materialized points.
        #[test]
        fn matches_bucketizing_the_points(
            mut times in proptest::collection::vec(0i64..2_000_000, 1..300),
            regular in any::<bool>(),
            step in 1i64..500_000,
            bounds in (0i64..2_100_000, 0i64..2_100_000),
            decimal in any::<bool>(),
        ) {
            if regular {
                let n = times.len() as i64;
                times = (0..n).map(|i| 1000 + i * 10_000).collect();
            }
            times.sort_unstable();
            times.dedup();
            let values: Vec<f64> = times
                .iter()
                .map(|t| if decimal { (t % 977) as f64 / 10.0 } else { (t % 977) as f64 / 3.0 })
                .collect();
            let (start, end) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
            let mut tcol = Vec::new();
            codec::encode_times(&times, &mut tcol);
            let mut vcol = Vec::new();
            codec::encode_values(&values, &mut vcol);
            let tc = codec::decode_time_column(&tcol, times.len()).unwrap();
            let vc = codec::decode_value_column(&vcol, values.len()).unwrap();
            let got = aggregate(&tc, &vc, start, end, step);
            let from = times.partition_point(|&t| t < start);
            let to = times.partition_point(|&t| t < end).max(from);
            let want = bucketize(&Points { times_ms: times[from..to].to_vec(), values: values[from..to].to_vec() }, step);
            prop_assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                prop_assert_eq!((a.start_ms, a.count, a.min, a.max, a.last, a.last_time_ms), (b.start_ms, b.count, b.min, b.max, b.last, b.last_time_ms));
                prop_assert!((a.sum - b.sum).abs() <= 1e-9 * b.sum.abs().max(1.0));
            }
        }
    }

    /// Long decimal columns whose integers fit 32 bits stay 32-bit when decoded, and aggregate
    /// exactly like the materialized points (negative values, min and max included).
    #[test]
    fn narrow_decimal_columns_aggregate_like_points() {
        let times: Vec<i64> = (0..8640).map(|i| 1_000 + i * 10_000).collect();
        let values: Vec<f64> = times
            .iter()
            .map(|t| ((t / 10_000) % 611 - 300) as f64 / 100.0)
            .collect();
        let (mut tcol, mut vcol) = (Vec::new(), Vec::new());
        codec::encode_times(&times, &mut tcol);
        codec::encode_values(&values, &mut vcol);
        let tc = codec::decode_time_column(&tcol, times.len()).unwrap();
        let vc = codec::decode_value_column(&vcol, values.len()).unwrap();
        assert!(matches!(vc, ValueColumn::Decimal32 { scale: 2, .. }));
        let mut back = Vec::new();
        vc.materialize(&mut back);
        assert_eq!(back, values);
        for step in [300_000, 3_600_000, 7_000] {
            let got = aggregate(&tc, &vc, 0, i64::MAX, step);
            let want = bucketize(
                &Points {
                    times_ms: times.clone(),
                    values: values.clone(),
                },
                step,
            );
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert_eq!(
                    (a.start_ms, a.count, a.min, a.max, a.last, a.last_time_ms),
                    (b.start_ms, b.count, b.min, b.max, b.last, b.last_time_ms)
                );
                assert!((a.sum - b.sum).abs() <= 1e-9 * b.sum.abs().max(1.0));
            }
        }
    }
}
