//! Key layout of the `chunks` keyspace:
//! `series id (u32 BE) | day (i64, sign-flipped BE) | seq (u32 BE) | record (u8)`.
//!
//! Big-endian with the sign bit flipped makes byte order equal numeric order, so a prefix scan
//! over one series walks its days in time order, a day's segments in the order they were written
//! (which is the order that decides the last write of a timestamp), and each segment's records
//! (raw points, then its rollups) side by side, so one table write stores them all atomically.

/// Length of a record key.
pub const KEY_LEN: usize = 17;

/// Milliseconds per day: the time window of a segment.
pub const DAY_MS: i64 = 86_400_000;

/// What a record of a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Record {
    /// The raw points.
    Raw = 0,
    /// The 1-hour rollup.
    Hour = 1,
    /// The 1-minute rollup, or a marker that it was not materialized.
    Minute = 2,
}

impl Record {
    fn from_byte(b: u8) -> Option<Record> {
        match b {
            0 => Some(Record::Raw),
            1 => Some(Record::Hour),
            2 => Some(Record::Minute),
            _ => None,
        }
    }
}

/// The start of the day holding `time_ms` (saturating at the ends of the `i64` range).
pub fn day_of(time_ms: i64) -> i64 {
    time_ms.div_euclid(DAY_MS).saturating_mul(DAY_MS)
}

fn flip(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn unflip(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

/// The key of `record` of segment `seq` of `series` on `day`.
pub fn key(series: u32, day: i64, seq: u32, record: Record) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..4].copy_from_slice(&series.to_be_bytes());
    k[4..12].copy_from_slice(&flip(day));
    k[12..16].copy_from_slice(&seq.to_be_bytes());
    k[16] = record as u8;
    k
}

/// The prefix of every record of `series` on `day`.
pub fn day_prefix(series: u32, day: i64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&series.to_be_bytes());
    k[4..].copy_from_slice(&flip(day));
    k
}

/// Decodes a key into (series, day, seq, record).
pub fn parse(key: &[u8]) -> Option<(u32, i64, u32, Record)> {
    if key.len() != KEY_LEN {
        return None;
    }
    let series = u32::from_be_bytes(key[..4].try_into().ok()?);
    let day = unflip(key[4..12].try_into().ok()?);
    let seq = u32::from_be_bytes(key[12..16].try_into().ok()?);
    Some((series, day, seq, Record::from_byte(key[16])?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn keys_round_trip_and_sort_numerically(
            a in (any::<u32>(), any::<i64>(), any::<u32>(), 0u8..3),
            b in (any::<u32>(), any::<i64>(), any::<u32>(), 0u8..3),
        ) {
            let ra = Record::from_byte(a.3).unwrap();
            let rb = Record::from_byte(b.3).unwrap();
            let ka = key(a.0, a.1, a.2, ra);
            prop_assert_eq!(parse(&ka), Some((a.0, a.1, a.2, ra)));
            let kb = key(b.0, b.1, b.2, rb);
            prop_assert_eq!(ka.cmp(&kb), (a.0, a.1, a.2, ra).cmp(&(b.0, b.1, b.2, rb)));
        }
    }

    #[test]
    fn days_floor_negative_times() {
        assert_eq!(day_of(-1), -DAY_MS);
        assert_eq!(day_of(DAY_MS + 5), DAY_MS);
    }
}
