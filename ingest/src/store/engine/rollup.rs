//! Rollups: per-bucket summaries (count, sum, min, max, last) of one series at a fixed resolution,
//! stored as compressed columns next to the raw segments they summarize.

use pco::ChunkConfig;
use pco::standalone::{simple_compress, simple_decompress};

use super::codec::{self, CodecError, take_i64, take_u32};
use crate::store::series::{Bucket, Point, bucket_start};

/// Layout version of an encoded rollup.
const VERSION: u8 = 1;
/// A one-byte value standing for "no rollup was materialized for this segment: read raw".
pub const NOT_MATERIALIZED: &[u8] = &[0];

/// Summarizes sorted points into buckets of `resolution_ms`.
pub fn summarize(times: &[i64], values: &[f64], resolution_ms: i64) -> Vec<Bucket> {
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
    let counts: Vec<u64> = buckets.iter().map(|b| b.count).collect();
    section(out, |o| {
        o.extend_from_slice(&simple_compress(&starts, &ChunkConfig::default()).unwrap_or_default())
    });
    section(out, |o| {
        o.extend_from_slice(&simple_compress(&counts, &ChunkConfig::default()).unwrap_or_default())
    });
    for column in [
        buckets.iter().map(|b| b.sum).collect::<Vec<_>>(),
        buckets.iter().map(|b| b.min).collect(),
        buckets.iter().map(|b| b.max).collect(),
        buckets.iter().map(|b| b.last).collect(),
    ] {
        section(out, |o| codec::encode_values(&column, o));
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
    let err = |e: pco::errors::PcoError| CodecError(format!("rollup: {e}"));
    let (starts, rest) = take_section(rest)?;
    let starts: Vec<i64> = simple_decompress(starts).map_err(err)?;
    let (counts, mut rest) = take_section(rest)?;
    let counts: Vec<u64> = simple_decompress(counts).map_err(err)?;
    let mut columns: [Vec<f64>; 4] = Default::default();
    for column in &mut columns {
        let (data, r) = take_section(rest)?;
        codec::decode_values(data, n, column)?;
        rest = r;
    }
    if starts.len() != n || counts.len() != n {
        return Err(CodecError("rollup columns differ in length".into()));
    }
    let [sums, mins, maxs, lasts] = columns;
    Ok(block(
        (0..n)
            .map(|i| Bucket {
                start_ms: starts[i].saturating_mul(resolution_ms),
                count: counts[i],
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

    #[test]
    fn empty_rollups_round_trip() {
        let mut buf = Vec::new();
        encode(&[], 3_600_000, (5, 5), &mut buf);
        assert!(decode(&buf, 3_600_000).unwrap().buckets.is_empty());
    }
}
