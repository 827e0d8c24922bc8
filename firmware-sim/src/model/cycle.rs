//! Daily cycles, from the time of day (UTC) of a reading's timestamp.
//!
//! Each helper maps an hour of the day in `[0, 24)` to a smooth, 24-hour periodic shape.

use std::f64::consts::TAU;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: f64 = 3_600_000.0;

/// The hour of the day (UTC) of a Unix timestamp in milliseconds, in `[0, 24)`.
pub(super) fn hour_of_day(time_unix_ms: i64) -> f64 {
    time_unix_ms.rem_euclid(DAY_MS) as f64 / HOUR_MS
}

/// A cosine over the day: 1 at `peak_hour`, -1 twelve hours away.
pub(super) fn cosine(hour: f64, peak_hour: f64) -> f64 {
    ((hour - peak_hour) / 24.0 * TAU).cos()
}

/// How busy people are, in `[0, 1]`: 0 at 04:00, 1 at 16:00.
pub(super) fn activity(hour: f64) -> f64 {
    0.5 + 0.5 * cosine(hour, 16.0)
}

/// Road traffic, in about `[0, 1]`: rush hours around 08:00 and 18:00, quiet at night.
pub(super) fn traffic(hour: f64) -> f64 {
    bump(hour, 8.0, 1.3) + 0.85 * bump(hour, 18.0, 1.8)
}

/// A Gaussian bump of width `width_h` hours centred on `centre_h`, wrapping around midnight.
fn bump(hour: f64, centre_h: f64, width_h: f64) -> f64 {
    let d = (hour - centre_h).rem_euclid(24.0);
    let d = d.min(24.0 - d);
    (-0.5 * (d / width_h).powi(2)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_of_day_wraps_and_handles_negative_times() {
        assert_eq!(hour_of_day(0), 0.0);
        assert_eq!(hour_of_day(DAY_MS + 3 * 3_600_000), 3.0);
        assert_eq!(hour_of_day(-3_600_000), 23.0);
    }

    #[test]
    fn shapes_peak_where_documented() {
        assert!((activity(16.0) - 1.0).abs() < 1e-12);
        assert!(activity(4.0).abs() < 1e-12);
        assert!(traffic(8.0) > 0.9 && traffic(18.0) > 0.8);
        assert!(traffic(3.0) < 0.05 && traffic(13.0) < 0.3);
    }
}
