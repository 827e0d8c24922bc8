//! Column codecs for sealed segments: timestamps and values, compressed with pco.
//!
//! Timestamps are stored as runs of a constant step when they have few runs (a device reporting
//! every 10 s with a few outages is a handful of runs and costs a few bytes a day; readers compute
//! them instead of decompressing), otherwise as pco-compressed `i64`s.
//!
//! Values are stored as decimal integers when every value of the column is exactly
//! `k / 10^scale` for an integer `k` (sensor readings at a fixed resolution almost always are),
//! which lets pco work on small integer deltas; otherwise as pco-compressed `f64`s. Both are
//! bit-exact: the decimal form is only chosen after checking that decoding reproduces every
//! value's bits, so `-0.0`, subnormals, infinities and NaN (with its payload) take the float path.

use pco::standalone::{simple_compress, simple_decompress};
use pco::{ChunkConfig, DeltaSpec, ModeSpec};

/// Why a column could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt column: {0}")]
pub struct CodecError(pub String);

fn corrupt(what: impl Into<String>) -> CodecError {
    CodecError(what.into())
}

const TIMES_RUNS: u8 = 0;
const TIMES_PCO: u8 = 1;
const VALUES_DECIMAL32: u8 = 0;
const VALUES_DECIMAL64: u8 = 1;
const VALUES_FLOAT: u8 = 2;
const VALUES_DECIMAL_VARINT: u8 = 3;

/// Columns up to this length are also tried as zigzag-varint deltas, which beat pco's
/// per-chunk metadata on short columns (rollups hold 24 hours a day).
const SMALL_COLUMN: usize = 512;

/// Largest decimal scale tried (values with more than 9 decimals are stored as floats).
const MAX_SCALE: u32 = 9;
/// pco compression level: level 8 compresses within 1% of level 12 at twice the speed.
pub const DEFAULT_LEVEL: usize = 8;

fn int_config(level: usize) -> ChunkConfig {
    ChunkConfig::default()
        .with_compression_level(level)
        .with_delta_spec(DeltaSpec::TryConsecutive(1))
        .with_mode_spec(ModeSpec::Classic)
}

fn auto_config() -> ChunkConfig {
    ChunkConfig::default().with_compression_level(DEFAULT_LEVEL)
}

/// A run of timestamps `start, start + step, ...` (`count` of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First timestamp.
    pub start: i64,
    /// Distance between consecutive timestamps.
    pub step: i64,
    /// Number of timestamps.
    pub count: u32,
}

/// Splits sorted timestamps into runs of constant step.
pub fn runs(times: &[i64]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut i = 0;
    while i < times.len() {
        let start = times[i];
        if i + 1 == times.len() {
            out.push(Run {
                start,
                step: 0,
                count: 1,
            });
            break;
        }
        let step = times[i + 1].wrapping_sub(start);
        let mut j = i + 1;
        while j + 1 < times.len() && times[j + 1].wrapping_sub(times[j]) == step {
            j += 1;
        }
        let count = u32::try_from(j - i + 1).unwrap_or(u32::MAX);
        out.push(Run { start, step, count });
        i = j + 1;
    }
    out
}

/// Appends the encoded timestamp column to `out`.
pub fn encode_times(times: &[i64], out: &mut Vec<u8>) {
    let r = runs(times);
    // A run costs a few bytes of varints; pco on near-regular data costs a few hundred bytes, so
    // runs win whenever there are not many of them. Each run's start is written relative to
    // where the previous run would have continued.
    if r.len() <= 8 + times.len() / 256 {
        out.push(TIMES_RUNS);
        put_uvarint(r.len() as u64, out);
        let mut next = 0i64;
        for run in r {
            put_zigzag(run.start.wrapping_sub(next), out);
            put_zigzag(run.step, out);
            put_uvarint(u64::from(run.count), out);
            next = run
                .start
                .wrapping_add(run.step.wrapping_mul(i64::from(run.count)));
        }
    } else {
        out.push(TIMES_PCO);
        // Compressing a valid slice cannot fail; an empty section would be caught on decode.
        out.extend_from_slice(&simple_compress(times, &auto_config()).unwrap_or_default());
    }
}

/// A decoded timestamp column: runs of a constant step, or explicit timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeColumn {
    /// Runs of `start, start + step, ...`.
    Runs(Vec<Run>),
    /// Every timestamp.
    Explicit(Vec<i64>),
}

impl TimeColumn {
    /// Appends every timestamp to `out`.
    pub fn materialize(&self, out: &mut Vec<i64>) {
        match self {
            TimeColumn::Runs(runs) => {
                for run in runs {
                    out.extend(
                        (0..i64::from(run.count))
                            .map(|k| run.start.wrapping_add(k.wrapping_mul(run.step))),
                    );
                }
            }
            TimeColumn::Explicit(times) => out.extend_from_slice(times),
        }
    }
}

/// Decodes a timestamp column that must hold `n` values.
pub fn decode_time_column(buf: &[u8], n: usize) -> Result<TimeColumn, CodecError> {
    let (&tag, rest) = buf
        .split_first()
        .ok_or_else(|| corrupt("empty time column"))?;
    let (column, len) = match tag {
        TIMES_RUNS => {
            let (count, mut rest) = take_uvarint(rest)?;
            let mut runs = Vec::new();
            let mut next = 0i64;
            let mut len = 0usize;
            for _ in 0..count {
                let (start, r) = take_zigzag(rest)?;
                let (step, r) = take_zigzag(r)?;
                let (count, r) = take_uvarint(r)?;
                rest = r;
                let count = u32::try_from(count).map_err(|_| corrupt("run length"))?;
                len += count as usize;
                if len > n {
                    return Err(corrupt("time runs hold more values than the segment"));
                }
                let start = next.wrapping_add(start);
                next = start.wrapping_add(step.wrapping_mul(i64::from(count)));
                runs.push(Run { start, step, count });
            }
            (TimeColumn::Runs(runs), len)
        }
        TIMES_PCO => {
            let times =
                simple_decompress::<i64>(rest).map_err(|e| corrupt(format!("times: {e}")))?;
            let len = times.len();
            (TimeColumn::Explicit(times), len)
        }
        other => return Err(corrupt(format!("unknown time encoding {other}"))),
    };
    if len != n {
        return Err(corrupt(format!(
            "time column holds {len} values, expected {n}"
        )));
    }
    Ok(column)
}

/// Decodes a timestamp column of `n` values, appending to `out`.
pub fn decode_times(buf: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
    decode_time_column(buf, n)?.materialize(out);
    Ok(())
}

/// The smallest decimal scale at which every value is exactly `k / 10^scale`.
pub fn decimal_scale(values: &[f64]) -> Option<u32> {
    (0..=MAX_SCALE).find(|&scale| {
        let p = 10f64.powi(scale as i32);
        values.iter().all(|&v| {
            let k = (v * p).round();
            // Check exactly what decoding computes: the integer, back to a float, over 10^scale.
            k.abs() < 9.0e15 && ((k as i64) as f64 / p).to_bits() == v.to_bits()
        })
    })
}

/// Appends the encoded value column to `out`.
pub fn encode_values(values: &[f64], out: &mut Vec<u8>) {
    encode_values_at(values, DEFAULT_LEVEL, out);
}

/// Like [`encode_values`], at pco compression `level` (lower is faster and larger). At the
/// default level, integer columns are compressed with both consecutive and lookback deltas and
/// the smaller result is kept.
pub fn encode_values_at(values: &[f64], level: usize, out: &mut Vec<u8>) {
    encode_values_scaled(values, decimal_scale(values), level, out);
}

/// Like [`encode_values_at`], for a caller that knows `scale`, which must be
/// [`decimal_scale`]`(values)` (finding it takes a pass or more over the values).
pub fn encode_values_scaled(values: &[f64], scale: Option<u32>, level: usize, out: &mut Vec<u8>) {
    debug_assert_eq!(scale, decimal_scale(values));
    if let Some(scale) = scale {
        let p = 10f64.powi(scale as i32);
        let ints: Vec<i64> = values.iter().map(|&v| (v * p).round() as i64).collect();
        let small = (ints.len() <= SMALL_COLUMN).then(|| varint_deltas(&ints));
        let compressed = match ints
            .iter()
            .map(|&k| i32::try_from(k))
            .collect::<Result<Vec<i32>, _>>()
        {
            Ok(narrow) => (VALUES_DECIMAL32, best_pco(&narrow, level)),
            Err(_) => (VALUES_DECIMAL64, best_pco(&ints, level)),
        };
        let (tag, body) = match small {
            Some(v) if v.len() < compressed.1.len() => (VALUES_DECIMAL_VARINT, v),
            _ => compressed,
        };
        out.push(tag);
        out.push(scale as u8);
        out.extend_from_slice(&body);
    } else {
        out.push(VALUES_FLOAT);
        let config = auto_config().with_compression_level(level);
        out.extend_from_slice(&simple_compress(values, &config).unwrap_or_default());
    }
}

/// pco with consecutive deltas. Measured on the reference dataset, they beat pco's automatic
/// choice, lookback deltas and second-order deltas on every metric; pco's learned predictor
/// (`Conv1`) saves a few percent on noisy metrics but panicked inside pco 1.1 on some inputs.
fn best_pco<T: pco::data_types::Number>(ints: &[T], level: usize) -> Vec<u8> {
    simple_compress(ints, &int_config(level)).unwrap_or_default()
}

/// Zigzag varints of the differences between consecutive values (the first from zero).
fn varint_deltas(ints: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ints.len() * 2);
    let mut prev = 0i64;
    for &k in ints {
        put_zigzag(k.wrapping_sub(prev), &mut out);
        prev = k;
    }
    out
}

fn read_varint_deltas(mut buf: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
    let mut prev = 0i64;
    for _ in 0..n {
        let (d, rest) = take_zigzag(buf)?;
        buf = rest;
        prev = prev.wrapping_add(d);
        out.push(prev);
    }
    if !buf.is_empty() {
        return Err(corrupt("trailing bytes after varints"));
    }
    Ok(())
}

const INTS_PCO: u8 = 0;
const INTS_VARINT: u8 = 1;
const INTS_PLAIN_VARINT: u8 = 2;
const INTS_LINEAR: u8 = 3;

/// Appends an integer column (bucket indices, counts): first value and step when it is an
/// arithmetic sequence (contiguous buckets, constant counts), varint deltas when short, else pco.
pub fn encode_ints(ints: &[i64], out: &mut Vec<u8>) {
    if let [first, second, ..] = ints
        && ints
            .windows(2)
            .all(|w| w[1].wrapping_sub(w[0]) == second.wrapping_sub(*first))
    {
        out.push(INTS_LINEAR);
        put_zigzag(*first, out);
        put_zigzag(second.wrapping_sub(*first), out);
    } else if ints.len() <= SMALL_COLUMN {
        out.push(INTS_VARINT);
        out.extend_from_slice(&varint_deltas(ints));
    } else {
        out.push(INTS_PCO);
        out.extend_from_slice(
            &simple_compress(ints, &int_config(DEFAULT_LEVEL)).unwrap_or_default(),
        );
    }
}

/// Appends a column of small integers without delta coding (offsets, not series): zigzag varints
/// when short, else pco without deltas.
pub fn encode_plain_ints(ints: &[i64], out: &mut Vec<u8>) {
    if ints.len() <= SMALL_COLUMN {
        out.push(INTS_PLAIN_VARINT);
        for &k in ints {
            put_zigzag(k, out);
        }
    } else {
        out.push(INTS_PCO);
        let config = int_config(DEFAULT_LEVEL).with_delta_spec(DeltaSpec::NoOp);
        out.extend_from_slice(&simple_compress(ints, &config).unwrap_or_default());
    }
}

/// Appends `k` as a zigzag varint.
pub fn put_zigzag(k: i64, out: &mut Vec<u8>) {
    put_uvarint(((k << 1) ^ (k >> 63)) as u64, out);
}

/// Appends `z` as a LEB128 varint.
pub fn put_uvarint(mut z: u64, out: &mut Vec<u8>) {
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Reads a LEB128 varint from the front of `buf`.
pub fn take_uvarint(mut buf: &[u8]) -> Result<(u64, &[u8]), CodecError> {
    let mut z = 0u64;
    let mut shift = 0;
    loop {
        let (&b, rest) = buf
            .split_first()
            .ok_or_else(|| corrupt("truncated varint"))?;
        buf = rest;
        if shift > 63 {
            return Err(corrupt("varint too long"));
        }
        z |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok((z, buf));
        }
    }
}

/// Reads a zigzag varint from the front of `buf`.
pub fn take_zigzag(buf: &[u8]) -> Result<(i64, &[u8]), CodecError> {
    let (z, rest) = take_uvarint(buf)?;
    Ok((((z >> 1) as i64) ^ -((z & 1) as i64), rest))
}

/// Decodes an integer column of `n` values.
pub fn decode_ints(buf: &[u8], n: usize) -> Result<Vec<i64>, CodecError> {
    let (&tag, rest) = buf
        .split_first()
        .ok_or_else(|| corrupt("empty int column"))?;
    let out = match tag {
        INTS_VARINT => {
            let mut out = Vec::with_capacity(n);
            read_varint_deltas(rest, n, &mut out)?;
            out
        }
        INTS_LINEAR => {
            let (first, r) = take_zigzag(rest)?;
            let (step, r) = take_zigzag(r)?;
            if !r.is_empty() {
                return Err(corrupt("trailing bytes after a linear column"));
            }
            (0..n as i64)
                .map(|i| first.wrapping_add(step.wrapping_mul(i)))
                .collect()
        }
        INTS_PLAIN_VARINT => {
            let mut out = Vec::with_capacity(n);
            read_varint_deltas(rest, n, &mut out)?;
            // Undo the running sum: plain values were written, not differences.
            let mut prev = 0i64;
            for k in &mut out {
                let value = k.wrapping_sub(prev);
                prev = *k;
                *k = value;
            }
            out
        }
        INTS_PCO => simple_decompress::<i64>(rest).map_err(|e| corrupt(format!("ints: {e}")))?,
        other => return Err(corrupt(format!("unknown int encoding {other}"))),
    };
    if out.len() != n {
        return Err(corrupt(format!(
            "int column holds {} values, expected {n}",
            out.len()
        )));
    }
    Ok(out)
}

/// A decoded value column: decimal integers with their scale, or floats.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueColumn {
    /// Values `ints[i] / 10^scale`.
    Decimal {
        /// Decimal scale.
        scale: u8,
        /// The integers.
        ints: Vec<i64>,
    },
    /// Values `ints[i] / 10^scale` whose integers fit 32 bits (most sensor readings): half the
    /// memory for the cache to hold and for aggregations to scan.
    Decimal32 {
        /// Decimal scale.
        scale: u8,
        /// The integers.
        ints: Vec<i32>,
    },
    /// The values as they are.
    Float(Vec<f64>),
}

impl ValueColumn {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ValueColumn::Decimal { ints, .. } => ints.len(),
            ValueColumn::Decimal32 { ints, .. } => ints.len(),
            ValueColumn::Float(v) => v.len(),
        }
    }

    /// Bytes of memory the values take.
    pub fn heap_bytes(&self) -> usize {
        match self {
            ValueColumn::Decimal { ints, .. } => ints.len() * 8,
            ValueColumn::Decimal32 { ints, .. } => ints.len() * 4,
            ValueColumn::Float(v) => v.len() * 8,
        }
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends every value to `out`.
    pub fn materialize(&self, out: &mut Vec<f64>) {
        self.materialize_range(0..self.len(), out);
    }

    /// Appends the values at `range` to `out`.
    pub fn materialize_range(&self, range: std::ops::Range<usize>, out: &mut Vec<f64>) {
        match self {
            ValueColumn::Decimal { scale, ints } => {
                let p = 10f64.powi(i32::from(*scale));
                out.extend(ints[range].iter().map(|&k| k as f64 / p));
            }
            ValueColumn::Decimal32 { scale, ints } => {
                let p = 10f64.powi(i32::from(*scale));
                out.extend(ints[range].iter().map(|&k| f64::from(k) / p));
            }
            ValueColumn::Float(v) => out.extend_from_slice(&v[range]),
        }
    }
}

/// Decodes a value column that must hold `n` values.
pub fn decode_value_column(buf: &[u8], n: usize) -> Result<ValueColumn, CodecError> {
    let (&tag, rest) = buf
        .split_first()
        .ok_or_else(|| corrupt("empty value column"))?;
    let err = |e: pco::errors::PcoError| corrupt(format!("values: {e}"));
    let column = match tag {
        VALUES_DECIMAL_VARINT | VALUES_DECIMAL32 | VALUES_DECIMAL64 => {
            let (&scale, data) = rest.split_first().ok_or_else(|| corrupt("no scale"))?;
            if u32::from(scale) > MAX_SCALE {
                return Err(corrupt(format!("decimal scale {scale}")));
            }
            match tag {
                VALUES_DECIMAL_VARINT => {
                    let mut ints = Vec::with_capacity(n);
                    read_varint_deltas(data, n, &mut ints)?;
                    ValueColumn::Decimal { scale, ints }
                }
                VALUES_DECIMAL32 => ValueColumn::Decimal32 {
                    scale,
                    ints: simple_decompress::<i32>(data).map_err(err)?,
                },
                _ => ValueColumn::Decimal {
                    scale,
                    ints: simple_decompress::<i64>(data).map_err(err)?,
                },
            }
        }
        VALUES_FLOAT => ValueColumn::Float(simple_decompress::<f64>(rest).map_err(err)?),
        other => return Err(corrupt(format!("unknown value encoding {other}"))),
    };
    if column.len() != n {
        return Err(corrupt(format!(
            "value column holds {} values, expected {n}",
            column.len()
        )));
    }
    Ok(column)
}

/// Decodes a value column of `n` values, appending to `out`.
pub fn decode_values(buf: &[u8], n: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    decode_value_column(buf, n)?.materialize(out);
    Ok(())
}

/// Reads a little-endian `u32` from the front of `buf`.
pub fn take_u32(buf: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    let (head, rest) = buf
        .split_at_checked(4)
        .ok_or_else(|| corrupt("truncated u32"))?;
    Ok((
        u32::from_le_bytes([head[0], head[1], head[2], head[3]]),
        rest,
    ))
}

/// Reads a little-endian `i64` from the front of `buf`.
pub fn take_i64(buf: &[u8]) -> Result<(i64, &[u8]), CodecError> {
    let (head, rest) = buf
        .split_at_checked(8)
        .ok_or_else(|| corrupt("truncated i64"))?;
    let mut b = [0u8; 8];
    b.copy_from_slice(head);
    Ok((i64::from_le_bytes(b), rest))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trip_values(values: &[f64]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_values(values, &mut buf);
        let mut back = Vec::new();
        decode_values(&buf, values.len(), &mut back).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(values));
        buf
    }

    #[test]
    fn special_floats_round_trip_bit_exact() {
        let specials = [
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            f64::MIN_POSITIVE / 2.0, // subnormal
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::from_bits(0x7ff8_dead_beef_0001), // NaN with a payload
            1.0 / 3.0,
        ];
        let buf = round_trip_values(&specials);
        assert_eq!(buf[0], VALUES_FLOAT);
    }

    #[test]
    fn sensor_resolutions_use_the_decimal_form() {
        let values: Vec<f64> = (0..1000).map(|i| (200 + (i % 7)) as f64 / 10.0).collect();
        let buf = round_trip_values(&values);
        assert_eq!((buf[0], buf[1]), (VALUES_DECIMAL32, 1));
        assert!(buf.len() < 300, "{} bytes", buf.len());
        let big: Vec<f64> = (0..1000).map(|i| 1e12 + (i * 7919 % 1000) as f64).collect();
        assert_eq!(round_trip_values(&big)[0], VALUES_DECIMAL64);
        let short: Vec<f64> = (0..24).map(|i| (200 + i % 3) as f64 / 10.0).collect();
        let buf = round_trip_values(&short);
        assert_eq!(buf[0], VALUES_DECIMAL_VARINT);
        assert!(buf.len() < 30, "{} bytes", buf.len());
    }

    #[test]
    fn regular_timestamps_cost_a_few_bytes() {
        let mut times: Vec<i64> = (0..8640).map(|i| 1_700_000_000_000 + i * 10_000).collect();
        times.drain(1000..1500); // an outage
        let mut buf = Vec::new();
        encode_times(&times, &mut buf);
        assert_eq!(buf[0], TIMES_RUNS);
        assert!(buf.len() <= 1 + 4 + 2 * 20);
        let mut back = Vec::new();
        decode_times(&buf, times.len(), &mut back).unwrap();
        assert_eq!(back, times);
    }

    #[test]
    fn int_columns_round_trip() {
        let ints: Vec<i64> = vec![0, 5, -3, i64::MAX, i64::MIN, 42];
        for encode in [encode_ints, encode_plain_ints] {
            let mut buf = Vec::new();
            encode(&ints, &mut buf);
            assert_eq!(decode_ints(&buf, ints.len()).unwrap(), ints);
        }
        let long: Vec<i64> = (0..2000).map(|i| (i * 7) % 13).collect();
        for encode in [encode_ints, encode_plain_ints] {
            let mut buf = Vec::new();
            encode(&long, &mut buf);
            assert_eq!(decode_ints(&buf, long.len()).unwrap(), long);
        }
    }

    #[test]
    fn truncated_columns_are_errors() {
        let mut buf = Vec::new();
        encode_values(&[1.5, 2.5, 3.5], &mut buf);
        assert!(decode_values(&buf[..buf.len() - 1], 3, &mut Vec::new()).is_err());
        assert!(decode_values(&buf, 4, &mut Vec::new()).is_err());
        assert!(decode_values(&[], 0, &mut Vec::new()).is_err());
        assert!(decode_times(&[TIMES_RUNS, 1, 0, 0, 0], 1, &mut Vec::new()).is_err());
    }

    proptest! {
        #[test]
        fn any_floats_round_trip(values in proptest::collection::vec(any::<f64>(), 1..300)) {
            round_trip_values(&values);
        }

        #[test]
        fn decimal_values_round_trip(ints in proptest::collection::vec(-1_000_000i64..1_000_000, 1..300), scale in 0u32..5) {
            let p = 10f64.powi(scale as i32);
            let values: Vec<f64> = ints.iter().map(|&k| k as f64 / p).collect();
            round_trip_values(&values);
        }

        #[test]
        fn any_sorted_times_round_trip(mut times in proptest::collection::vec(any::<i64>(), 1..300)) {
            times.sort_unstable();
            let mut buf = Vec::new();
            encode_times(&times, &mut buf);
            let mut back = Vec::new();
            decode_times(&buf, times.len(), &mut back).unwrap();
            prop_assert_eq!(back, times);
        }
    }
}
