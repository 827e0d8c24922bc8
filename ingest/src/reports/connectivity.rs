//! Connectivity: the availability of a district's cabinets and small cells (from the state
//! history, as `GetAvailability` computes it), its worst devices, its rank among the districts
//! the caller sees, and small-cell demand from the cells' hourly rollups.

use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_availability::{Span, Summary};
use citytel_proto::v1;

use super::basis::Tally;
use super::config::SmallCellCapacity;
use super::{
    CABINET, Device, DistrictSeries, ReportError, SMALL_CELL, THROUGHPUT, UES, mean, within,
};
use crate::state::fleet::report::DeviceInputs;

/// Availability of some devices, accumulated.
#[derive(Debug, Clone, Default)]
struct Acc {
    summary: Summary,
    tally: Tally,
}

impl Acc {
    fn add(&mut self, device: &Arc<str>, summary: &Summary, inputs: &DeviceInputs) {
        self.summary.merge(summary);
        let c = &inputs.completeness;
        self.tally.add_counts(device, c.received, c.expected);
    }

    fn to_wire(&self) -> v1::KindAvailability {
        let s = &self.summary;
        v1::KindAvailability {
            availability_percent: s.availability_percent(),
            outage_minutes: minutes(s.times.offline_ms),
            outages: u32::try_from(s.outages_started).unwrap_or(u32::MAX),
            mttr_ms: s.mttr_ms(),
            basis: Some(self.tally.to_wire()),
        }
    }
}

fn minutes(ms: i64) -> f64 {
    ms as f64 / 60_000.0
}

/// One district's connectivity, its demand figures still to be added.
#[derive(Debug, Clone, Default)]
pub(crate) struct DistrictConnectivity {
    /// The answer so far: availability, every device worst first, rank.
    pub(crate) report: v1::Connectivity,
}

/// The connectivity of every district in `districts` over `span`, ranked.
pub(crate) fn all(
    districts: &BTreeMap<Arc<str>, Vec<(Device, DeviceInputs)>>,
    span: Span,
    expired: &impl Fn() -> bool,
) -> Result<BTreeMap<Arc<str>, DistrictConnectivity>, ReportError> {
    let mut out = BTreeMap::new();
    for (district, devices) in districts {
        let (mut cabinets, mut cells, mut both) = (Acc::default(), Acc::default(), Acc::default());
        let mut worst = Vec::with_capacity(devices.len());
        for (device, inputs) in devices {
            if expired() {
                return Err(ReportError::Expired);
            }
            let a = inputs.availability(span);
            match &*device.kind {
                CABINET => cabinets.add(&device.id, &a.summary, inputs),
                SMALL_CELL => cells.add(&device.id, &a.summary, inputs),
                _ => continue,
            }
            both.add(&device.id, &a.summary, inputs);
            worst.push(v1::WorstDevice {
                device_id: device.id.to_string(),
                kind: device.kind.to_string(),
                availability_percent: a.summary.availability_percent(),
                outage_minutes: minutes(a.summary.times.offline_ms),
                outages: u32::try_from(a.summary.outages_started).unwrap_or(u32::MAX),
            });
        }
        // Lowest availability first, devices never observed last; then most outage time.
        worst.sort_by(|a, b| {
            let key = |w: &v1::WorstDevice| w.availability_percent.unwrap_or(f64::INFINITY);
            key(a)
                .total_cmp(&key(b))
                .then(b.outage_minutes.total_cmp(&a.outage_minutes))
                .then_with(|| a.device_id.cmp(&b.device_id))
        });
        out.insert(
            district.clone(),
            DistrictConnectivity {
                report: v1::Connectivity {
                    cabinets: Some(cabinets.to_wire()),
                    small_cells: Some(cells.to_wire()),
                    all: Some(both.to_wire()),
                    worst_devices: worst,
                    ..v1::Connectivity::default()
                },
            },
        );
    }
    rank(&mut out);
    Ok(out)
}

/// Ranks by combined availability, highest first (1 + the districts strictly better); those
/// without a figure share the last rank.
fn rank(districts: &mut BTreeMap<Arc<str>, DistrictConnectivity>) {
    let figure =
        |c: &DistrictConnectivity| c.report.all.as_ref().and_then(|a| a.availability_percent);
    let figures: Vec<f64> = districts.values().filter_map(figure).collect();
    let ranked = u32::try_from(districts.len()).unwrap_or(u32::MAX);
    for c in districts.values_mut() {
        let better = match figure(c) {
            Some(f) => figures.iter().filter(|g| **g > f).count(),
            None => figures.len(),
        };
        c.report.rank = u32::try_from(better + 1).unwrap_or(u32::MAX);
        c.report.districts_ranked = ranked;
    }
}

/// Adds small-cell demand over `span`: the peak `connected_ues` reading, and the 95th
/// percentiles of the cells' hourly mean `connected_ues` and `throughput_mbps`, and all three
/// against one cell's rated `capacity` when it is configured.
pub(crate) fn demand(
    report: &mut v1::Connectivity,
    series: &DistrictSeries,
    span: Span,
    capacity: &SmallCellCapacity,
) {
    let cells = |metric| {
        series
            .of(metric)
            .iter()
            .filter(|s| *s.device.kind == *SMALL_CELL)
    };
    let mut peak: Option<f64> = None;
    let mut ues = Vec::new();
    let mut tally = Tally::default();
    for s in cells(UES) {
        tally.add(s, span);
        for b in within(&s.buckets, span) {
            peak = Some(peak.map_or(b.max, |p| p.max(b.max)));
            ues.push(mean(b));
        }
    }
    report.peak_connected_ues = Some(v1::MetricFigure {
        value: peak,
        basis: Some(tally.to_wire()),
    });
    let busy_at = capacity.connected_ues * capacity.busy_percent / 100.0;
    let cell_hours = ues.len() as u64;
    let busy_cell_hours = ues.iter().filter(|u| **u >= busy_at).count() as u64;
    let p95_ues = p95(&mut ues);
    report.p95_connected_ues = Some(v1::MetricFigure {
        value: p95_ues,
        basis: Some(tally.to_wire()),
    });
    let mut throughput = Vec::new();
    let mut tally = Tally::default();
    for s in cells(THROUGHPUT) {
        tally.add(s, span);
        throughput.extend(within(&s.buckets, span).iter().map(mean));
    }
    let p95_throughput = p95(&mut throughput);
    report.p95_throughput_mbps = Some(v1::MetricFigure {
        value: p95_throughput,
        basis: Some(tally.to_wire()),
    });
    let over =
        |value: Option<f64>, rated: f64| value.filter(|_| rated > 0.0).map(|v| v * 100.0 / rated);
    let ues_rated = capacity.connected_ues > 0.0;
    if ues_rated || capacity.throughput_mbps > 0.0 {
        report.capacity = Some(v1::SmallCellCapacity {
            connected_ues: capacity.connected_ues,
            throughput_mbps: capacity.throughput_mbps,
            peak_ues_percent: over(peak, capacity.connected_ues),
            p95_ues_percent: over(p95_ues, capacity.connected_ues),
            p95_throughput_percent: over(p95_throughput, capacity.throughput_mbps),
            busy_cell_hours: if ues_rated { busy_cell_hours } else { 0 },
            cell_hours,
            busy_percent: capacity.busy_percent,
        });
    }
}

/// The 95th percentile by nearest rank: the smallest value with at least 95% of the values at
/// or below it; `None` for no values.
pub(crate) fn p95(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (values.len() * 95).div_ceil(100);
    Some(values[rank.max(1) - 1])
}
