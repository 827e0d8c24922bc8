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

/// Largest decimal scale tried (values with more than 9 decimals are stored as floats).
const MAX_SCALE: u32 = 9;
/// pco compression level: level 8 compresses within 1% of level 12 at twice the speed.
const LEVEL: usize = 8;

fn int_config() -> ChunkConfig {
    ChunkConfig::default()
        .with_compression_level(LEVEL)
        .with_delta_spec(DeltaSpec::TryConsecutive(1))
        .with_mode_spec(ModeSpec::Classic)
}

fn auto_config() -> ChunkConfig {
    ChunkConfig::default().with_compression_level(LEVEL)
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
    // 20 bytes per run; pco on near-regular data costs a few hundred bytes, so runs win whenever
    // there are not many of them.
    if r.len() <= 8 + times.len() / 256 {
        out.push(TIMES_RUNS);
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        for run in r {
            out.extend_from_slice(&run.start.to_le_bytes());
            out.extend_from_slice(&run.step.to_le_bytes());
            out.extend_from_slice(&run.count.to_le_bytes());
        }
    } else {
        out.push(TIMES_PCO);
        // Compressing a valid slice cannot fail; an empty section would be caught on decode.
        out.extend_from_slice(&simple_compress(times, &auto_config()).unwrap_or_default());
    }
}

/// Decodes a timestamp column of `n` values, appending to `out`.
pub fn decode_times(buf: &[u8], n: usize, out: &mut Vec<i64>) -> Result<(), CodecError> {
    let (&tag, rest) = buf
        .split_first()
        .ok_or_else(|| corrupt("empty time column"))?;
    let before = out.len();
    match tag {
        TIMES_RUNS => {
            let (count, mut rest) = take_u32(rest)?;
            for _ in 0..count {
                let (start, r) = take_i64(rest)?;
                let (step, r) = take_i64(r)?;
                let (count, r) = take_u32(r)?;
                rest = r;
                out.extend((0..i64::from(count)).map(|k| start.wrapping_add(k.wrapping_mul(step))));
            }
        }
        TIMES_PCO => {
            out.extend(simple_decompress::<i64>(rest).map_err(|e| corrupt(format!("times: {e}")))?)
        }
        other => return Err(corrupt(format!("unknown time encoding {other}"))),
    }
    if out.len() - before != n {
        return Err(corrupt(format!(
            "time column holds {} values, expected {n}",
            out.len() - before
        )));
    }
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
    if let Some(scale) = decimal_scale(values) {
        let p = 10f64.powi(scale as i32);
        let ints: Vec<i64> = values.iter().map(|&v| (v * p).round() as i64).collect();
        if let Ok(narrow) = ints
            .iter()
            .map(|&k| i32::try_from(k))
            .collect::<Result<Vec<i32>, _>>()
        {
            out.push(VALUES_DECIMAL32);
            out.push(scale as u8);
            out.extend_from_slice(&simple_compress(&narrow, &int_config()).unwrap_or_default());
        } else {
            out.push(VALUES_DECIMAL64);
            out.push(scale as u8);
            out.extend_from_slice(&simple_compress(&ints, &int_config()).unwrap_or_default());
        }
    } else {
        out.push(VALUES_FLOAT);
        out.extend_from_slice(&simple_compress(values, &auto_config()).unwrap_or_default());
    }
}

/// Decodes a value column of `n` values, appending to `out`.
pub fn decode_values(buf: &[u8], n: usize, out: &mut Vec<f64>) -> Result<(), CodecError> {
    let (&tag, rest) = buf
        .split_first()
        .ok_or_else(|| corrupt("empty value column"))?;
    let before = out.len();
    let err = |e: pco::errors::PcoError| corrupt(format!("values: {e}"));
    match tag {
        VALUES_DECIMAL32 | VALUES_DECIMAL64 => {
            let (&scale, data) = rest.split_first().ok_or_else(|| corrupt("no scale"))?;
            if u32::from(scale) > MAX_SCALE {
                return Err(corrupt(format!("decimal scale {scale}")));
            }
            let p = 10f64.powi(i32::from(scale));
            if tag == VALUES_DECIMAL32 {
                out.extend(
                    simple_decompress::<i32>(data)
                        .map_err(err)?
                        .into_iter()
                        .map(|k| f64::from(k) / p),
                );
            } else {
                out.extend(
                    simple_decompress::<i64>(data)
                        .map_err(err)?
                        .into_iter()
                        .map(|k| k as f64 / p),
                );
            }
        }
        VALUES_FLOAT => out.extend(simple_decompress::<f64>(rest).map_err(err)?),
        other => return Err(corrupt(format!("unknown value encoding {other}"))),
    }
    if out.len() - before != n {
        return Err(corrupt(format!(
            "value column holds {} values, expected {n}",
            out.len() - before
        )));
    }
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
        let big: Vec<f64> = (0..100).map(|i| 1e12 + i as f64).collect();
        assert_eq!(round_trip_values(&big)[0], VALUES_DECIMAL64);
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
