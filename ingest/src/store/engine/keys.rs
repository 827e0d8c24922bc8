//! Key layout of the chunk keyspaces: `series id (u32 BE) | day (i64, sign-flipped BE) | seq (u32 BE)`.
//!
//! Big-endian with the sign bit flipped makes byte order equal numeric order, so a prefix scan
//! over one series walks its days in time order, and a day's segments in the order they were
//! written (which is the order that decides the last write of a timestamp).

/// Length of a segment key.
pub const KEY_LEN: usize = 16;

/// Milliseconds per day: the time window of a segment.
pub const DAY_MS: i64 = 86_400_000;

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

/// The key of segment `seq` of `series` on `day`.
pub fn segment(series: u32, day: i64, seq: u32) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..4].copy_from_slice(&series.to_be_bytes());
    k[4..12].copy_from_slice(&flip(day));
    k[12..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of every segment of `series` on `day`.
pub fn day_prefix(series: u32, day: i64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&series.to_be_bytes());
    k[4..].copy_from_slice(&flip(day));
    k
}

/// Decodes a segment key into (series, day, seq).
pub fn parse(key: &[u8]) -> Option<(u32, i64, u32)> {
    if key.len() != KEY_LEN {
        return None;
    }
    let series = u32::from_be_bytes(key[..4].try_into().ok()?);
    let day = unflip(key[4..12].try_into().ok()?);
    let seq = u32::from_be_bytes(key[12..].try_into().ok()?);
    Some((series, day, seq))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn keys_round_trip_and_sort_numerically(
            a in (any::<u32>(), any::<i64>(), any::<u32>()),
            b in (any::<u32>(), any::<i64>(), any::<u32>()),
        ) {
            let ka = segment(a.0, a.1, a.2);
            prop_assert_eq!(parse(&ka), Some(a));
            let kb = segment(b.0, b.1, b.2);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
        }
    }

    #[test]
    fn days_floor_negative_times() {
        assert_eq!(day_of(-1), -DAY_MS);
        assert_eq!(day_of(DAY_MS + 5), DAY_MS);
    }
}
