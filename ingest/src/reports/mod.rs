//! District reports (`citytel.v1.ReportService`): connectivity, energy and carbon, and air quality
//! of each district over a period, from the state history and the 1-hour rollups of the devices a
//! caller sees. What every figure means is in `docs/districts.md`.
//!
//! In two steps, so the state lock is held only briefly: [`gather`] (under the lock) picks the
//! caller's visible devices, copies their availability inputs and captures the series the report
//! reads; [`Gathered::compute`] (without it) reads hourly buckets and builds the answers,
//! checking the request's deadline between devices:
//!
//! - [`connectivity`]: availability, outages, MTTR and worst devices of cabinets and small
//!   cells, small-cell demand, and the rank of each district;
//! - [`energy`]: kWh from `power_w`, carbon, and the trend against the previous period;
//! - [`air`]: NO2 and PM2.5 means and the hours and days above each configured limit;
//! - [`basis`]: what every figure rests on (devices, readings, expected readings).

pub(crate) mod air;
pub(crate) mod basis;
pub mod config;
pub(crate) mod connectivity;
pub(crate) mod energy;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use citytel_availability::Span;
use citytel_proto::v1;
use citytel_storage::engine::read::Capture;
use citytel_storage::series::{Bucket, ReadError, SeriesReader};

use crate::query::Visible;
use crate::state::State;
use crate::state::fleet::report::DeviceInputs;
use config::{IntensitySeries, NO2, PM25, ReportSettings};

/// One hour, ms: reports are read from 1-hour rollups.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Default number of worst devices and sensors listed.
pub(crate) const DEFAULT_WORST: usize = 5;
/// Most worst devices and sensors listed.
pub(crate) const MAX_WORST: usize = 100;
/// Longest period a report may cover (ten years of hours).
pub(crate) const MAX_PERIOD_MS: i64 = 10 * 366 * 24 * HOUR_MS;

/// Power drawn, W.
pub(crate) const POWER: &str = "power_w";
/// Users connected to a small cell.
pub(crate) const UES: &str = "connected_ues";
/// A small cell's throughput, Mbit/s.
pub(crate) const THROUGHPUT: &str = "throughput_mbps";
/// The metrics a report reads.
const METRICS: [&str; 5] = [POWER, UES, THROUGHPUT, NO2, PM25];
/// The device kinds whose availability is the district's connectivity.
pub(crate) const CABINET: &str = "cabinet";
/// See [`CABINET`].
pub(crate) const SMALL_CELL: &str = "small_cell";

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReportError {
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The district has no device the caller sees.
    #[error("district {0:?} not found")]
    NoDistrict(String),
    /// The request's deadline passed.
    #[error("the report ran past its deadline")]
    Expired,
    /// Stored data could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// A report's period and the one of the same length before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    /// The period asked for, its end cut at now.
    pub(crate) current: Span,
    /// The period of the same length just before.
    pub(crate) previous: Span,
}

impl Period {
    /// Checks `[start_ms, end_ms)`: whole UTC hours, end after start, at most ten years, starting
    /// before `now_ms`; the end is cut at `now_ms`.
    pub(crate) fn new(start_ms: i64, end_ms: i64, now_ms: i64) -> Result<Self, ReportError> {
        if start_ms.rem_euclid(HOUR_MS) != 0 || end_ms.rem_euclid(HOUR_MS) != 0 {
            return Err(ReportError::Invalid(format!(
                "start_unix_ms ({start_ms}) and end_unix_ms ({end_ms}) must be whole UTC hours \
                 (multiples of 3600000)"
            )));
        }
        if end_ms <= start_ms {
            return Err(ReportError::Invalid(format!(
                "end_unix_ms ({end_ms}) must be greater than start_unix_ms ({start_ms})"
            )));
        }
        if end_ms - start_ms > MAX_PERIOD_MS {
            return Err(ReportError::Invalid(
                "a report covers at most ten years".into(),
            ));
        }
        if start_ms >= now_ms {
            return Err(ReportError::Invalid(format!(
                "the period starts in the future (start_unix_ms {start_ms}, now {now_ms})"
            )));
        }
        let end_ms = end_ms.min(now_ms);
        let len = end_ms - start_ms;
        Ok(Period {
            current: Span::new(start_ms, end_ms),
            previous: Span::new(start_ms - len, start_ms),
        })
    }
}

/// The number of worst devices asked for: 0 means [`DEFAULT_WORST`].
pub(crate) fn worst_limit(n: u32) -> Result<usize, ReportError> {
    match n as usize {
        0 => Ok(DEFAULT_WORST),
        n if n > MAX_WORST => Err(ReportError::Invalid(format!(
            "worst_limit {n} is above {MAX_WORST}"
        ))),
        n => Ok(n),
    }
}

/// One visible device of a report.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    /// Its id.
    pub(crate) id: Arc<str>,
    /// Its kind.
    pub(crate) kind: Arc<str>,
    /// Its reporting interval (from its birth, else its kind's), ms.
    pub(crate) interval_ms: i64,
}

impl Device {
    /// Readings it should send over `span` at its interval.
    pub(crate) fn expected(&self, span: Span) -> u64 {
        u64::try_from((span.end_ms - span.start_ms) / self.interval_ms.max(1)).unwrap_or(0)
    }
}

/// The hourly buckets of one metric of one device, over the previous and current periods.
#[derive(Debug, Clone)]
pub(crate) struct DeviceSeries {
    /// The device.
    pub(crate) device: Device,
    /// Its buckets, oldest first.
    pub(crate) buckets: Vec<Bucket>,
}

/// Buckets of `buckets` that start inside `span`.
pub(crate) fn within(buckets: &[Bucket], span: Span) -> &[Bucket] {
    let lo = buckets.partition_point(|b| b.start_ms < span.start_ms);
    let hi = buckets.partition_point(|b| b.start_ms < span.end_ms);
    &buckets[lo..hi.max(lo)]
}

/// The mean of a bucket.
pub(crate) fn mean(b: &Bucket) -> f64 {
    b.sum / b.count.max(1) as f64
}

/// What a report needs, copied from the state under its lock.
pub(crate) struct Gathered {
    period: Period,
    /// The districts reported on (one for GetDistrictReport, every visible one for the list).
    targets: Vec<Arc<str>>,
    /// Every visible cabinet and small cell by district, with its availability inputs (every
    /// district, for the ranks).
    availability: BTreeMap<Arc<str>, Vec<(Device, DeviceInputs)>>,
    /// The devices of the target districts whose series are captured, with their metrics.
    series: BTreeMap<Arc<str>, Vec<(Device, Vec<&'static str>)>>,
    /// The grid's carbon intensity series, captured whoever the caller is (it is configuration,
    /// not a device of the city).
    intensity: Option<(Arc<str>, IntensitySeries)>,
    capture: Capture,
}

/// Picks the caller's devices and copies what the report of `district` (every district when
/// `None`) over `period` needs, with the grid's carbon `intensity` series if one is configured.
pub(crate) fn gather(
    state: &State,
    visible: &Visible,
    district: Option<&str>,
    period: Period,
    intensity: Option<&IntensitySeries>,
) -> Result<Gathered, ReportError> {
    let policy = state.fleet().policy();
    let mut availability: BTreeMap<Arc<str>, Vec<(Device, Arc<str>)>> = BTreeMap::new();
    let mut series: BTreeMap<Arc<str>, Vec<(Device, Vec<&'static str>)>> = BTreeMap::new();
    let mut targets: BTreeSet<Arc<str>> = BTreeSet::new();
    for record in state.registry().iter_after(None) {
        let Some(d) = record.district.as_ref() else {
            continue;
        };
        if !visible.device(record) {
            continue;
        }
        let device = Device {
            id: record.device_id.clone(),
            kind: record.kind.clone(),
            interval_ms: record
                .reporting_interval_ms
                .map_or_else(|| policy.interval_for_kind(&record.kind), i64::from),
        };
        let target = district.is_none_or(|want| **d == *want);
        if target && !targets.contains(d) {
            targets.insert(d.clone());
        }
        // Every visible district is ranked, those without cabinets or small cells too.
        let connected = availability.entry(d.clone()).or_default();
        if *record.kind == *CABINET || *record.kind == *SMALL_CELL {
            connected.push((device.clone(), record.device_id.clone()));
        }
        if target {
            let metrics: Vec<&'static str> = METRICS
                .into_iter()
                .filter(|m| record.metrics.contains(*m) && visible.metric(m))
                .collect();
            if !metrics.is_empty() {
                series.entry(d.clone()).or_default().push((device, metrics));
            }
        }
    }
    if let Some(want) = district
        && targets.is_empty()
    {
        return Err(ReportError::NoDistrict(want.to_string()));
    }
    let targets = targets.into_iter().collect();
    let availability = availability
        .into_iter()
        .map(|(d, devices)| {
            let inputs =
                state.availability_inputs(devices.iter().map(|(_, id)| id), period.current);
            let paired = devices
                .into_iter()
                .map(|(dev, _)| dev)
                .zip(inputs)
                .collect();
            (d, paired)
        })
        .collect();
    let intensity = intensity.map(|s| (Arc::<str>::from(s.device.as_str()), s.clone()));
    let wanted: Vec<(&Arc<str>, &str)> = series
        .values()
        .flatten()
        .flat_map(|(dev, metrics)| metrics.iter().map(move |m| (&dev.id, *m)))
        .chain(intensity.iter().map(|(id, s)| (id, s.metric.as_str())))
        .collect();
    let capture = state.capture(wanted, period.previous.start_ms, period.current.end_ms);
    Ok(Gathered {
        period,
        targets,
        availability,
        series,
        intensity,
        capture,
    })
}

/// One district's series, by metric.
#[derive(Debug, Default)]
pub(crate) struct DistrictSeries {
    /// Series of each metric read.
    pub(crate) by_metric: BTreeMap<&'static str, Vec<DeviceSeries>>,
}

impl DistrictSeries {
    /// The series of `metric` (none when no device has it).
    pub(crate) fn of(&self, metric: &str) -> &[DeviceSeries] {
        self.by_metric.get(metric).map_or(&[], Vec::as_slice)
    }
}

impl Gathered {
    /// The reports, ranked by connectivity (then by name); `expired` is asked between devices.
    pub(crate) fn compute(
        self,
        settings: &ReportSettings,
        worst: usize,
        expired: impl Fn() -> bool,
    ) -> Result<Vec<v1::DistrictReport>, ReportError> {
        let period = self.period;
        let mut connectivity = connectivity::all(&self.availability, period.current, &expired)?;
        let intensity = match &self.intensity {
            Some((device, series)) => {
                let buckets = self
                    .capture
                    .buckets(
                        device,
                        &series.metric,
                        period.current.start_ms,
                        period.current.end_ms,
                        HOUR_MS,
                    )?
                    .map(|(b, _)| b)
                    .unwrap_or_default();
                Some(energy::Intensity { series, buckets })
            }
            None => None,
        };
        let mut reports = Vec::with_capacity(self.targets.len());
        for district in &self.targets {
            let mut series = DistrictSeries::default();
            for (device, metrics) in self.series.get(district).into_iter().flatten() {
                if expired() {
                    return Err(ReportError::Expired);
                }
                for metric in metrics {
                    let buckets = self
                        .capture
                        .buckets(
                            &device.id,
                            metric,
                            period.previous.start_ms,
                            period.current.end_ms,
                            HOUR_MS,
                        )?
                        .map(|(b, _)| b)
                        .unwrap_or_default();
                    series
                        .by_metric
                        .entry(metric)
                        .or_default()
                        .push(DeviceSeries {
                            device: device.clone(),
                            buckets,
                        });
                }
            }
            let mut conn = connectivity.remove(district).unwrap_or_default();
            connectivity::demand(
                &mut conn.report,
                &series,
                period.current,
                &settings.small_cell_capacity,
            );
            conn.report.worst_devices.truncate(worst);
            reports.push(v1::DistrictReport {
                district: district.to_string(),
                start_unix_ms: period.current.start_ms,
                end_unix_ms: period.current.end_ms,
                connectivity: Some(conn.report),
                energy: Some(energy::report(
                    series.of(POWER),
                    period,
                    settings,
                    intensity.as_ref(),
                )),
                air_quality: Some(air::report(&series, period.current, settings, worst)),
            });
        }
        reports.sort_by(|a, b| {
            let rank =
                |r: &v1::DistrictReport| r.connectivity.as_ref().map_or(u32::MAX, |c| c.rank);
            rank(a)
                .cmp(&rank(b))
                .then_with(|| a.district.cmp(&b.district))
        });
        Ok(reports)
    }
}
