//! The rows of an export, whatever its format: one per point (or per bucket), each carrying what
//! a reader needs without the rest of citytel: the device's id, site, kind and district, the
//! metric and its unit from the catalogue, the time as ms since the Unix epoch and as RFC 3339,
//! and the value.
//!
//! | column | type | |
//! | --- | --- | --- |
//! | `device_id` | text | |
//! | `site` | text | |
//! | `kind` | text | e.g. `cabinet`, `sensor` |
//! | `district` | text, may be empty (CSV) or null (Parquet) | the district of the site, if configured |
//! | `metric` | text | e.g. `no2_ugm3` |
//! | `unit` | text, may be empty | the catalogue's unit, e.g. `µg/m³`; empty for counts, states and metrics the catalogue does not describe |
//! | `time_unix_ms` | integer | device time; the bucket's start with a step |
//! | `time` | RFC 3339 text, UTC, ms (CSV); timestamp in ms, UTC (Parquet) | the same instant |
//! | `value` | float | the reading, or the bucket's aggregate with a step |

use std::fmt::Write as _;
use std::sync::Arc;

use citytel_proto::catalog;
use citytel_proto::kind::Kind;

/// The column names, in order.
pub(crate) const COLUMNS: [&str; 9] = [
    "device_id",
    "site",
    "kind",
    "district",
    "metric",
    "unit",
    "time_unix_ms",
    "time",
    "value",
];

/// Earliest time an export may start at: the Unix epoch.
pub(crate) const EARLIEST_MS: i64 = 0;
/// Latest time an export may end at: year 10000 (RFC 3339 has four-digit years).
pub(crate) const LATEST_MS: i64 = 253_402_300_800_000;

/// What every row of one series repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeriesInfo {
    /// The device.
    pub(crate) device_id: Arc<str>,
    /// Its site.
    pub(crate) site: Arc<str>,
    /// Its kind.
    pub(crate) kind: Arc<str>,
    /// Its site's district.
    pub(crate) district: Option<String>,
    /// The metric.
    pub(crate) metric: Arc<str>,
    /// The metric's unit ("" when none or unknown).
    pub(crate) unit: &'static str,
}

/// The catalogue's unit of `metric` for a device of `kind`; "" for counts and states, and for
/// kinds and metrics the catalogue does not describe.
pub(crate) fn unit(kind: &str, metric: &str) -> &'static str {
    kind.parse::<Kind>()
        .ok()
        .and_then(|k| catalog::metrics(k).iter().find(|m| m.name == metric))
        .map_or("", |m| m.unit)
}

/// Appends `ms` (within [`EARLIEST_MS`]..[`LATEST_MS`]) as RFC 3339 in UTC with milliseconds,
/// e.g. `2024-03-01T12:00:00.000Z`.
pub(crate) fn rfc3339_ms(ms: i64, out: &mut String) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, rest) = (in_day / 3_600_000, in_day % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, milli) = (rest / 1000, rest % 1000);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z"
    );
}

/// The proleptic Gregorian date of a day number since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(ms: i64) -> String {
        let mut s = String::new();
        rfc3339_ms(ms, &mut s);
        s
    }

    #[test]
    fn times_are_rfc3339_in_utc_with_milliseconds() {
        assert_eq!(text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(text(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(text(LATEST_MS - 1), "9999-12-31T23:59:59.999Z");
    }

    proptest! {
        #[test]
        fn times_agree_with_an_independent_formatter(ms in EARLIEST_MS..LATEST_MS) {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
            prop_assert_eq!(text(ms), humantime::format_rfc3339_millis(at).to_string());
        }
    }

    #[test]
    fn units_come_from_the_catalogue() {
        assert_eq!(unit("sensor", "no2_ugm3"), "µg/m³");
        assert_eq!(unit("cabinet", "temperature_c"), "°C");
        assert_eq!(unit("cabinet", "door_open"), "");
        assert_eq!(unit("cabinet", "not_in_the_catalogue"), "");
        assert_eq!(unit("tram", "temperature_c"), "");
    }
}
