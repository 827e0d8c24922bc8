//! Rollups: per-bucket summaries (count, sum, min, max, last) of one series at a fixed resolution,
//! stored as compressed columns next to the raw segments they summarize.

use super::codec::{self, CodecError, take_i64, take_u32};
use crate::series::{Bucket, Point, bucket_start};

/// Layout version of an encoded rollup.
const VERSION: u8 = 1;
/// The summary columns as floats.
const VALUES_FLOAT: u8 = 0;
/// The summary columns as decimal integers: sums, then min, max and last as offsets.
const VALUES_DECIMAL: u8 = 1;
/// A one-byte value standing for "no rollup was materialized for this segment: read raw".
pub const NOT_MATERIALIZED: &[u8] = &[0];

/// Summarizes sorted points into buckets of `resolution_ms`. When every value is a decimal of a
/// fixed scale (sensor data), sums are computed exactly as integers: they are then exact decimals
/// too, and compress like the values.
pub fn summarize(times: &[i64], values: &[f64], resolution_ms: i64) -> Vec<Bucket> {
    summarize_scaled(times, values, codec::decimal_scale(values), resolution_ms)
}

/// Like [`summarize`], for a caller that knows `scale`, which must be
/// `codec::decimal_scale(values)`.
pub fn summarize_scaled(
    times: &[i64],
    values: &[f64],
    scale: Option<u32>,
    resolution_ms: i64,
) -> Vec<Bucket> {
    debug_assert_eq!(scale, codec::decimal_scale(values));
    let mut out: Vec<Bucket> = Vec::new();
    let mut bucket_end = i64::MIN;
    for (&time_ms, &value) in times.iter().zip(values) {
        let p = Point { time_ms, value };
        if time_ms < bucket_end
            && let Some(b) = out.last_mut()
        {
            b.push(p);
            continue;
        }
        let start = bucket_start(time_ms, resolution_ms);
        bucket_end = start.saturating_add(resolution_ms);
        out.push(Bucket::of(start, p));
    }
    if let Some(scale) = scale {
        let p = 10f64.powi(scale as i32);
        let mut i = 0;
        for b in &mut out {
            let n = b.count as usize;
            let sum: i64 = values[i..i + n]
                .iter()
                .map(|&v| (v * p).round() as i64)
                .sum();
            i += n;
            b.sum = sum as f64 / p;
        }
    }
    out
}

/// The rollup of one segment: the segment's time span and its buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupBlock {
    /// Earliest point of the segment.
    pub min_time_ms: i64,
    /// Latest point of the segment.
    pub max_time_ms: i64,
    /// The buckets, ascending.
    pub buckets: Vec<Bucket>,
}

/// Encodes the rollup of a segment spanning `[min_time_ms, max_time_ms]` with buckets of
/// `resolution_ms`. The time of each bucket's last point is not kept: the engine only combines
/// rollups of segments that do not overlap in time, so "last" is unambiguous.
pub fn encode(
    buckets: &[Bucket],
    resolution_ms: i64,
    (min_time_ms, max_time_ms): (i64, i64),
    out: &mut Vec<u8>,
) {
    out.push(VERSION);
    out.extend_from_slice(&min_time_ms.to_le_bytes());
    out.extend_from_slice(&max_time_ms.to_le_bytes());
    out.extend_from_slice(&(buckets.len() as u32).to_le_bytes());
    if buckets.is_empty() {
        return;
    }
    let starts: Vec<i64> = buckets.iter().map(|b| b.start_ms / resolution_ms).collect();
    let counts: Vec<i64> = buckets
        .iter()
        .map(|b| i64::try_from(b.count).unwrap_or(i64::MAX))
        .collect();
    section(out, |o| codec::encode_ints(&starts, o));
    section(out, |o| codec::encode_ints(&counts, o));
    let columns = [
        buckets.iter().map(|b| b.sum).collect::<Vec<_>>(),
        buckets.iter().map(|b| b.min).collect(),
        buckets.iter().map(|b| b.max).collect(),
        buckets.iter().map(|b| b.last).collect(),
    ];
    let all: Vec<f64> = columns.concat();
    match codec::decimal_scale(&all) {
        Some(scale) => {
            // Integers at a common decimal scale: the sums as a series, min and max as small
            // offsets from the bucket's (floored) mean, and last as an offset from min.
            out.push(VALUES_DECIMAL);
            out.push(scale as u8);
            let p = 10f64.powi(scale as i32);
            let k = |v: f64| (v * p).round() as i64;
            let sums: Vec<i64> = columns[0].iter().map(|&v| k(v)).collect();
            let means: Vec<i64> = sums
                .iter()
                .zip(&counts)
                .map(|(&s, &c)| s.div_euclid(c.max(1)))
                .collect();
            let offsets = |col: &[f64], base: &dyn Fn(usize) -> i64| -> Vec<i64> {
                col.iter()
                    .enumerate()
                    .map(|(i, &v)| k(v) - base(i))
                    .collect()
            };
            let below = offsets(&columns[1], &|i| means[i]);
            let above = offsets(&columns[2], &|i| means[i]);
            let last = offsets(&columns[3], &|i| k(columns[1][i]));
            section(out, |o| codec::encode_ints(&sums, o));
            for column in [below, above, last] {
                section(out, |o| codec::encode_plain_ints(&column, o));
            }
        }
        None => {
            out.push(VALUES_FLOAT);
            for column in columns {
                section(out, |o| codec::encode_values(&column, o));
            }
        }
    }
}

fn section(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

fn take_section(buf: &[u8]) -> Result<(&[u8], &[u8]), CodecError> {
    let (len, rest) = take_u32(buf)?;
    rest.split_at_checked(len as usize)
        .ok_or_else(|| CodecError("truncated rollup section".into()))
}

/// Decodes a stored rollup value: `None` for the [`NOT_MATERIALIZED`] marker.
pub fn decode_block(buf: &[u8], resolution_ms: i64) -> Result<Option<RollupBlock>, CodecError> {
    if buf == NOT_MATERIALIZED {
        return Ok(None);
    }
    decode(buf, resolution_ms).map(Some)
}

/// Decodes a rollup block of `resolution_ms`.
pub fn decode(buf: &[u8], resolution_ms: i64) -> Result<RollupBlock, CodecError> {
    let (&version, rest) = buf
        .split_first()
        .ok_or_else(|| CodecError("empty rollup".into()))?;
    if version != VERSION {
        return Err(CodecError(format!("rollup version {version}")));
    }
    let (min_time_ms, rest) = take_i64(rest)?;
    let (max_time_ms, rest) = take_i64(rest)?;
    let (n, rest) = take_u32(rest)?;
    let n = n as usize;
    let block = |buckets| RollupBlock {
        min_time_ms,
        max_time_ms,
        buckets,
    };
    if n == 0 {
        return Ok(block(Vec::new()));
    }
    let (starts, rest) = take_section(rest)?;
    let starts = codec::decode_ints(starts, n)?;
    let (counts, rest) = take_section(rest)?;
    let counts = codec::decode_ints(counts, n)?;
    let (&form, mut rest) = rest
        .split_first()
        .ok_or_else(|| CodecError("rollup without values".into()))?;
    let (sums, mins, maxs, lasts) = match form {
        VALUES_DECIMAL => {
            let (&scale, r) = rest
                .split_first()
                .ok_or_else(|| CodecError("rollup without scale".into()))?;
            rest = r;
            if scale > 18 {
                return Err(CodecError(format!("rollup scale {scale}")));
            }
            let p = 10f64.powi(i32::from(scale));
            let mut columns: [Vec<i64>; 4] = Default::default();
            for column in &mut columns {
                let (data, r) = take_section(rest)?;
                *column = codec::decode_ints(data, n)?;
                rest = r;
            }
            let [sums, below, above, last] = columns;
            let f = |k: i64| k as f64 / p;
            let mut out = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for i in 0..n {
                let mean = sums[i].div_euclid(counts[i].max(1));
                let min = mean.wrapping_add(below[i]);
                out.0.push(f(sums[i]));
                out.1.push(f(min));
                out.2.push(f(mean.wrapping_add(above[i])));
                out.3.push(f(min.wrapping_add(last[i])));
            }
            out
        }
        VALUES_FLOAT => {
            let mut columns: [Vec<f64>; 4] = Default::default();
            for column in &mut columns {
                let (data, r) = take_section(rest)?;
                codec::decode_values(data, n, column)?;
                rest = r;
            }
            let [a, b, c, d] = columns;
            (a, b, c, d)
        }
        other => return Err(CodecError(format!("rollup value form {other}"))),
    };
    if starts.len() != n || counts.len() != n {
        return Err(CodecError("rollup columns differ in length".into()));
    }
    Ok(block(
        (0..n)
            .map(|i| Bucket {
                start_ms: starts[i].saturating_mul(resolution_ms),
                count: u64::try_from(counts[i]).unwrap_or(0),
                sum: sums[i],
                min: mins[i],
                max: maxs[i],
                last_time_ms: starts[i].saturating_mul(resolution_ms),
                last: lasts[i],
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_round_trip() {
        let times: Vec<i64> = (0..360).map(|i| i * 10_000).collect();
        let values: Vec<f64> = (0..360).map(|i| ((i * 37) % 101) as f64 / 10.0).collect();
        let buckets = summarize(&times, &values, 60_000);
        assert_eq!(buckets.len(), 60);
        assert_eq!(buckets[0].count, 6);
        assert_eq!(buckets[0].last, values[5]);
        let mut buf = Vec::new();
        encode(&buckets, 60_000, (0, 3_590_000), &mut buf);
        let back = decode(&buf, 60_000).unwrap();
        assert_eq!((back.min_time_ms, back.max_time_ms), (0, 3_590_000));
        for (a, b) in back.buckets.iter().zip(&buckets) {
            assert_eq!(
                (a.start_ms, a.count, a.sum, a.min, a.max, a.last),
                (b.start_ms, b.count, b.sum, b.min, b.max, b.last)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_rollup_round_trips(
            points in proptest::collection::vec((0i64..20_000_000, -100_000i64..100_000), 1..400),
            decimal in proptest::bool::ANY,
        ) {
            let mut points = points;
            points.sort_unstable_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            let times: Vec<i64> = points.iter().map(|p| p.0).collect();
            let values: Vec<f64> = points
                .iter()
                .map(|p| if decimal { p.1 as f64 / 100.0 } else { p.1 as f64 / 3.0 })
                .collect();
            let buckets = summarize(&times, &values, 60_000);
            let mut buf = Vec::new();
            encode(&buckets, 60_000, (times[0], times[times.len() - 1]), &mut buf);
            let back = decode(&buf, 60_000).unwrap().buckets;
            proptest::prop_assert_eq!(back.len(), buckets.len());
            for (a, b) in back.iter().zip(&buckets) {
                proptest::prop_assert_eq!(
                    (a.start_ms, a.count, a.sum.to_bits(), a.min.to_bits(), a.max.to_bits(), a.last.to_bits()),
                    (b.start_ms, b.count, b.sum.to_bits(), b.min.to_bits(), b.max.to_bits(), b.last.to_bits())
                );
            }
        }
    }

    #[test]
    fn empty_rollups_round_trip() {
        let mut buf = Vec::new();
        encode(&[], 3_600_000, (5, 5), &mut buf);
        assert!(decode(&buf, 3_600_000).unwrap().buckets.is_empty());
    }
}
