//! Segments: the compressed points of one series within one day, as written by one flush or
//! compaction (layout in `FORMAT.md`).

use super::codec::{self, CodecError};

/// Layout version of a segment value.
const VERSION: u8 = 1;

/// What a segment holds, readable without decompressing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Number of points.
    pub count: u32,
    /// Earliest timestamp.
    pub min_time_ms: i64,
    /// Latest timestamp.
    pub max_time_ms: i64,
}

/// Encodes sorted, unique points (at least one), values at pco compression `level`. `scale` must
/// be `codec::decimal_scale(values)`.
pub fn encode(times: &[i64], values: &[f64], scale: Option<u32>, level: usize) -> Vec<u8> {
    debug_assert_eq!(times.len(), values.len());
    let min = times.first().copied().unwrap_or(0);
    let max = times.last().copied().unwrap_or(0);
    let mut time_col = Vec::new();
    codec::encode_times(times, &mut time_col);
    let mut out = Vec::with_capacity(32 + time_col.len() + times.len());
    out.push(VERSION);
    codec::put_uvarint(times.len() as u64, &mut out);
    codec::put_zigzag(min, &mut out);
    codec::put_uvarint(max.wrapping_sub(min) as u64, &mut out);
    codec::put_uvarint(time_col.len() as u64, &mut out);
    out.extend_from_slice(&time_col);
    codec::encode_values_scaled(values, scale, level, &mut out);
    out
}

/// Reads the header.
pub fn header(buf: &[u8]) -> Result<(SegmentHeader, &[u8]), CodecError> {
    let (&version, rest) = buf
        .split_first()
        .ok_or_else(|| CodecError("empty segment".into()))?;
    if version != VERSION {
        return Err(CodecError(format!("segment version {version}")));
    }
    let (count, rest) = codec::take_uvarint(rest)?;
    let (min_time_ms, rest) = codec::take_zigzag(rest)?;
    let (span, rest) = codec::take_uvarint(rest)?;
    Ok((
        SegmentHeader {
            count: u32::try_from(count).map_err(|_| CodecError("segment count".into()))?,
            min_time_ms,
            max_time_ms: min_time_ms.wrapping_add(span as i64),
        },
        rest,
    ))
}

/// Decodes the columns without materializing them (runs of timestamps stay runs, decimal values
/// stay integers), for aggregation.
pub fn decode_columns(
    buf: &[u8],
) -> Result<(SegmentHeader, codec::TimeColumn, codec::ValueColumn), CodecError> {
    let (h, rest) = header(buf)?;
    let (times_len, rest) = codec::take_uvarint(rest)?;
    let (time_col, value_col) = rest
        .split_at_checked(times_len as usize)
        .ok_or_else(|| CodecError("truncated segment".into()))?;
    let times = codec::decode_time_column(time_col, h.count as usize)?;
    let values = codec::decode_value_column(value_col, h.count as usize)?;
    Ok((h, times, values))
}

/// Decodes the points, appending to `times` and `values`.
pub fn decode(
    buf: &[u8],
    times: &mut Vec<i64>,
    values: &mut Vec<f64>,
) -> Result<SegmentHeader, CodecError> {
    let (h, rest) = header(buf)?;
    let (times_len, rest) = codec::take_uvarint(rest)?;
    let (time_col, value_col) = rest
        .split_at_checked(times_len as usize)
        .ok_or_else(|| CodecError("truncated segment".into()))?;
    codec::decode_times(time_col, h.count as usize, times)?;
    codec::decode_values(value_col, h.count as usize, values)?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        let times: Vec<i64> = (0..100).map(|i| 1000 + i * 10).collect();
        let values: Vec<f64> = (0..100).map(|i| i as f64 * 0.5).collect();
        let buf = encode(
            &times,
            &values,
            codec::decimal_scale(&values),
            codec::DEFAULT_LEVEL,
        );
        let (mut t, mut v) = (Vec::new(), Vec::new());
        let h = decode(&buf, &mut t, &mut v).unwrap();
        assert_eq!((h.count, h.min_time_ms, h.max_time_ms), (100, 1000, 1990));
        assert_eq!((t, v), (times, values));
        assert!(decode(&buf[..buf.len() - 2], &mut Vec::new(), &mut Vec::new()).is_err());
        assert!(header(&[9]).is_err());
    }
}
