//! Energy and carbon: kWh integrated from the hourly rollups of `power_w`, never extrapolated
//! over gaps, carbon from the configured grid intensity, and the trend against the previous
//! period of the same length.
//!
//! For each device and UTC hour with readings, energy is the hour's mean power times the time the
//! readings cover: their count times the device's reporting interval, at most the part of the
//! hour inside the period. Hours without readings add nothing; the covered share says how much
//! of the devices' time the figure rests on.

use citytel_availability::Span;
use citytel_proto::v1;

use super::basis::{Tally, share};
use super::config::ReportSettings;
use super::{DeviceSeries, HOUR_MS, Period, mean, within};

/// Energy over one span.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Integrated {
    /// Watt-hours.
    pub(crate) wh: f64,
    /// Time the readings cover, summed over the devices, ms.
    pub(crate) covered_ms: i64,
    /// The devices' whole time: devices times the span, ms.
    pub(crate) total_ms: i64,
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
            out.wh += mean(b) * covered as f64 / HOUR_MS as f64;
        }
    }
    out
}

/// The energy answer of the devices in `power` (their `power_w` series).
pub(crate) fn report(
    power: &[DeviceSeries],
    period: Period,
    settings: &ReportSettings,
) -> v1::Energy {
    let now = integrate(power, period.current);
    let before = integrate(power, period.previous);
    let mut tally = Tally::default();
    for s in power {
        tally.add(s, period.current);
    }
    let kwh = now.wh / 1000.0;
    let previous_kwh = before.wh / 1000.0;
    v1::Energy {
        energy_kwh: kwh,
        covered_percent: now.covered_percent(),
        carbon_kg: kwh * settings.grid_intensity_kg_per_kwh,
        grid_intensity_kg_per_kwh: settings.grid_intensity_kg_per_kwh,
        previous_energy_kwh: previous_kwh,
        previous_covered_percent: before.covered_percent(),
        trend_percent: (previous_kwh > 0.0).then(|| (kwh - previous_kwh) * 100.0 / previous_kwh),
        basis: Some(tally.to_wire()),
    }
}
