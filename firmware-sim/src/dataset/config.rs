//! What a dataset contains: its time range and grid, the fleet, the outage share, the output format.
//! [`DatasetConfig::validate`] checks it before anything is written.

use std::path::Path;
use std::time::Duration;

use crate::fleet::MAX_BATCH;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// The last millisecond whose nanosecond timestamp still fits an `i64` (2262-04-11).
const MAX_TIME_MS: i64 = i64::MAX / 1_000_000;

/// The two file formats a dataset can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetFormat {
    /// InfluxDB line protocol, one line per device and timestamp, time-major (`.lp`).
    LineProtocol,
    /// Length-delimited `citytel.v1.DatasetRecord` messages (`.pb`).
    Proto,
}

impl DatasetFormat {
    /// The format a file name's extension implies: `.lp` or `.pb`; `None` for anything else.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "lp" => Some(DatasetFormat::LineProtocol),
            "pb" => Some(DatasetFormat::Proto),
            _ => None,
        }
    }
}

/// Everything that determines a dataset. The same configuration always gives the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetConfig {
    /// Time of the first reading, in milliseconds since the Unix epoch (UTC).
    pub start_ms: i64,
    /// Length of the simulated span; readings are taken at `start_ms + k * interval` for every
    /// `k` with `k * interval < duration`.
    pub duration: Duration,
    /// Time between two readings of a device, in whole milliseconds.
    pub interval: Duration,
    /// Seed of every random choice: metric values, outage plan, boot ids.
    pub seed: u64,
    /// Fibre street cabinets (`cab-0001`...).
    pub cabinets: u32,
    /// 5G small cells (`cell-0001`...).
    pub small_cells: u32,
    /// Environmental sensors (`sen-0001`...).
    pub sensors: u32,
    /// Number of sites; devices are dealt round-robin to `site-01`, `site-02`..., cabinets first,
    /// as a live fleet does.
    pub sites: u32,
    /// Share of devices, from 0 to 1, that have outages (rounded to a whole number of devices).
    pub outage_fraction: f64,
    /// The output format.
    pub format: DatasetFormat,
    /// Readings per protobuf record (1 to [`MAX_BATCH`]); line protocol ignores it.
    pub batch: u32,
}

impl DatasetConfig {
    /// The reference dataset starting at `start_ms`: 300 cabinets, 300 small cells and 400
    /// sensors over 20 sites, every 10 s for 24 h, seed 42, 15% of devices with outages, 60
    /// readings per protobuf record.
    pub fn reference(start_ms: i64, format: DatasetFormat) -> Self {
        DatasetConfig {
            start_ms,
            duration: Duration::from_secs(24 * 3600),
            interval: Duration::from_secs(10),
            seed: 42,
            cabinets: 300,
            small_cells: 300,
            sensors: 400,
            sites: 20,
            outage_fraction: 0.15,
            format,
            batch: 60,
        }
    }

    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), DatasetConfigError> {
        if self.cabinets == 0 && self.small_cells == 0 && self.sensors == 0 {
            return Err(DatasetConfigError::NoDevices);
        }
        if self.sites == 0 {
            return Err(DatasetConfigError::NoSites);
        }
        let interval_ms = self.interval.as_millis();
        if interval_ms == 0 || !self.interval.subsec_nanos().is_multiple_of(1_000_000) {
            return Err(DatasetConfigError::Interval);
        }
        if self.duration.is_zero() {
            return Err(DatasetConfigError::NoDuration);
        }
        if !(0.0..=1.0).contains(&self.outage_fraction) {
            return Err(DatasetConfigError::OutageFraction);
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(DatasetConfigError::Batch);
        }
        let end = i64::try_from(self.duration.as_millis())
            .ok()
            .and_then(|duration| self.start_ms.checked_add(duration));
        if self.start_ms < 0 || end.is_none_or(|end| end > MAX_TIME_MS) {
            return Err(DatasetConfigError::TimeRange);
        }
        Ok(())
    }

    /// The interval in milliseconds (valid after [`validate`](Self::validate)).
    pub fn interval_ms(&self) -> i64 {
        i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX)
    }

    /// The duration in milliseconds, saturating.
    pub fn duration_ms(&self) -> i64 {
        i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX)
    }

    /// Timestamps on the grid: `ceil(duration / interval)`.
    pub fn steps(&self) -> u64 {
        let interval = self.interval_ms().max(1);
        u64::try_from(self.duration_ms().div_euclid(interval)).unwrap_or(0)
            + u64::from(self.duration_ms().rem_euclid(interval) != 0)
    }

    /// Devices in the dataset.
    pub fn devices(&self) -> u32 {
        self.cabinets
            .saturating_add(self.small_cells)
            .saturating_add(self.sensors)
    }
}

/// The default start of a dataset: the most recent UTC midnight at or before `now_ms`, minus one
/// day, i.e. the whole of yesterday (UTC).
pub fn default_start_ms(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(DAY_MS) - DAY_MS
}

/// Why a dataset configuration cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetConfigError {
    /// Every device count is zero.
    #[error("nothing to generate: cabinets, small_cells and sensors are all 0")]
    NoDevices,
    /// `sites` is zero.
    #[error("sites must be at least 1")]
    NoSites,
    /// `interval` is under a millisecond or not a whole number of milliseconds.
    #[error("interval must be a whole number of milliseconds, at least 1 ms")]
    Interval,
    /// `duration` is zero.
    #[error("duration must be longer than 0")]
    NoDuration,
    /// `outage_fraction` is outside `[0, 1]`.
    #[error("outage fraction must be between 0 and 1")]
    OutageFraction,
    /// `batch` is zero or over [`MAX_BATCH`].
    #[error("batch must be between 1 and {MAX_BATCH}")]
    Batch,
    /// The span starts before 1970 or ends after 2262 (nanosecond timestamps overflow).
    #[error("the dataset must lie between 1970 and 2262")]
    TimeRange,
}
