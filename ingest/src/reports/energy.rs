//! Energy and carbon: kWh integrated from the hourly rollups of `power_w`, never extrapolated
//! over gaps, carbon from the grid's intensity hour by hour, and the trend against the previous
//! period of the same length.
//!
//! For each device and UTC hour with readings, energy is the hour's mean power times the time the
//! readings cover: their count times the device's reporting interval, at most the part of the
//! hour inside the period. Hours without readings add nothing; the covered share says how much
//! of the devices' time the figure rests on.
//!
//! Each hour's energy is emitted at that hour's intensity: the mean of the configured intensity
//! series over the hour where it has values, the configured constant otherwise.

use std::collections::BTreeMap;

use citytel_availability::Span;
use citytel_proto::v1;
use citytel_storage::series::Bucket;

use super::basis::{Tally, share};
use super::config::{IntensitySeries, ReportSettings};
use super::{DeviceSeries, HOUR_MS, Period, mean, within};

/// The grid's carbon intensity series over the period: its hourly buckets.
#[derive(Debug)]
pub(crate) struct Intensity<'a> {
    /// Which series, in what unit.
    pub(crate) series: &'a IntensitySeries,
    /// Its 1-hour buckets over the current period, oldest first.
    pub(crate) buckets: Vec<Bucket>,
}

impl Intensity<'_> {
    /// The intensity of the hour starting at `hour_ms`, kgCO2e per kWh, if the series has it.
    fn at(&self, hour_ms: i64) -> Option<f64> {
        let i = self
            .buckets
            .binary_search_by_key(&hour_ms, |b| b.start_ms)
            .ok()?;
        Some(mean(&self.buckets[i]) * self.series.unit.to_kg_per_kwh())
    }
}

/// Carbon of energy by hour.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Carbon {
    /// kgCO2e.
    pub(crate) kg: f64,
    /// Watt-hours whose carbon used the series' own value.
    pub(crate) measured_wh: f64,
}

/// The carbon of `by_hour` (Wh by hour start): at the series' hourly intensity where it has
/// one, at `constant` otherwise.
pub(crate) fn carbon(
    by_hour: &BTreeMap<i64, f64>,
    constant: f64,
    intensity: Option<&Intensity<'_>>,
) -> Carbon {
    let mut out = Carbon::default();
    for (&hour, &wh) in by_hour {
        match intensity.and_then(|i| i.at(hour)) {
            Some(kg_per_kwh) => {
                out.kg += wh / 1000.0 * kg_per_kwh;
                out.measured_wh += wh;
            }
            None => out.kg += wh / 1000.0 * constant,
        }
    }
    out
}

/// Energy over one span.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Integrated {
    /// Watt-hours.
    pub(crate) wh: f64,
    /// Time the readings cover, summed over the devices, ms.
    pub(crate) covered_ms: i64,
    /// The devices' whole time: devices times the span, ms.
    pub(crate) total_ms: i64,
    /// Watt-hours by the start of their UTC hour.
    pub(crate) by_hour: BTreeMap<i64, f64>,
}

impl Integrated {
    /// Covered share in percent; `None` without devices.
    pub(crate) fn covered_percent(&self) -> Option<f64> {
        share(
            u64::try_from(self.covered_ms).unwrap_or(0),
            u64::try_from(self.total_ms).unwrap_or(0),
        )
    }
}

/// Integrates the power of `series` over `span`.
pub(crate) fn integrate(series: &[DeviceSeries], span: Span) -> Integrated {
    let mut out = Integrated::default();
    for s in series {
        out.total_ms += span.end_ms - span.start_ms;
        for b in within(&s.buckets, span) {
            let hour = b.start_ms.max(span.start_ms)..(b.start_ms + HOUR_MS).min(span.end_ms);
            let read = i64::try_from(b.count)
                .unwrap_or(i64::MAX)
                .saturating_mul(s.device.interval_ms);
            let covered = read.min(hour.end - hour.start).max(0);
            out.covered_ms += covered;
            let wh = mean(b) * covered as f64 / HOUR_MS as f64;
            out.wh += wh;
            *out.by_hour.entry(b.start_ms).or_default() += wh;
        }
    }
    out
}

/// The energy answer of the devices in `power` (their `power_w` series), with the grid's
/// `intensity` series if one is configured.
pub(crate) fn report(
    power: &[DeviceSeries],
    period: Period,
    settings: &ReportSettings,
    intensity: Option<&Intensity<'_>>,
) -> v1::Energy {
    let now = integrate(power, period.current);
    let before = integrate(power, period.previous);
    let mut tally = Tally::default();
    for s in power {
        tally.add(s, period.current);
    }
    let kwh = now.wh / 1000.0;
    let previous_kwh = before.wh / 1000.0;
    let carbon = carbon(&now.by_hour, settings.grid_intensity_kg_per_kwh, intensity);
    let source = match intensity {
        Some(i) => format!("series {}/{}", i.series.device, i.series.metric),
        None => "constant".to_string(),
    };
    let has_energy = now.wh > 0.0;
    v1::Energy {
        energy_kwh: kwh,
        covered_percent: now.covered_percent(),
        carbon_kg: carbon.kg,
        grid_intensity_kg_per_kwh: settings.grid_intensity_kg_per_kwh,
        grid_intensity_source: source,
        grid_intensity_measured_percent: intensity
            .filter(|_| has_energy)
            .map(|_| carbon.measured_wh * 100.0 / now.wh),
        effective_intensity_kg_per_kwh: has_energy.then(|| carbon.kg / kwh),
        previous_energy_kwh: previous_kwh,
        previous_covered_percent: before.covered_percent(),
        trend_percent: (previous_kwh > 0.0).then(|| (kwh - previous_kwh) * 100.0 / previous_kwh),
        basis: Some(tally.to_wire()),
    }
}
