//! The files `citytel report` writes.
//!
//! - CSV (RFC 4180, by the `csv` crate): a header row, then one row per district in rank order,
//!   with the [`COLUMNS`] and, per configured air-quality limit, `<name>: exceeded` and
//!   `<name>: evaluated`. Absent figures are empty cells; times are RFC 3339 UTC.
//! - JSON: an array of reports, each with every figure of `citytel.v1.DistrictReport` under the
//!   same names (absent figures are `null`), times as RFC 3339 UTC.
//!
//! Public because the dashboard writes the same files (`dashboards/web/src/report-export.ts`)
//! and a test holds the two to the same CSV bytes and the same JSON values.

use std::time::{Duration, UNIX_EPOCH};

use citytel_proto::v1;
use serde_json::{Value, json};

/// The fixed columns of the CSV, before the limits'.
pub const COLUMNS: [&str; 38] = [
    "district",
    "start",
    "end",
    "rank",
    "districts_ranked",
    "availability_pct",
    "cabinet_availability_pct",
    "small_cell_availability_pct",
    "outage_minutes",
    "outages",
    "mttr_minutes",
    "connectivity_devices",
    "peak_connected_ues",
    "p95_connected_ues",
    "p95_throughput_mbps",
    "small_cell_readings_pct",
    "peak_ues_capacity_pct",
    "p95_ues_capacity_pct",
    "p95_throughput_capacity_pct",
    "busy_cell_hours",
    "energy_kwh",
    "energy_covered_pct",
    "carbon_kgco2e",
    "grid_intensity_kg_per_kwh",
    "grid_intensity_source",
    "grid_intensity_measured_pct",
    "effective_intensity_kg_per_kwh",
    "previous_energy_kwh",
    "energy_trend_pct",
    "energy_devices",
    "energy_readings_pct",
    "no2_mean_ugm3",
    "no2_devices",
    "no2_readings_pct",
    "pm25_mean_ugm3",
    "pm25_devices",
    "pm25_readings_pct",
    "sensor_days",
];

/// An RFC 3339 UTC time.
fn time(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn basis_share(b: Option<&v1::Basis>) -> String {
    opt(b.and_then(|b| b.share_percent))
}

fn basis_devices(b: Option<&v1::Basis>) -> String {
    b.map(|b| b.devices.to_string()).unwrap_or_default()
}

/// The CSV file of `reports`.
pub fn csv(reports: &[v1::DistrictReport]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let limits: Vec<String> = reports
        .first()
        .and_then(|r| r.air_quality.as_ref())
        .map(|a| a.limits.iter().map(|l| l.name.clone()).collect())
        .unwrap_or_default();
    let mut header: Vec<String> = COLUMNS.iter().map(|c| c.to_string()).collect();
    for name in &limits {
        header.push(format!("{name}: exceeded"));
        header.push(format!("{name}: evaluated"));
    }
    w.write_record(&header)?;
    for r in reports {
        let c = r.connectivity.clone().unwrap_or_default();
        let all = c.all.unwrap_or_default();
        let e = r.energy.clone().unwrap_or_default();
        let air = r.air_quality.clone().unwrap_or_default();
        let no2 = air.no2.clone().unwrap_or_default();
        let pm25 = air.pm25.clone().unwrap_or_default();
        let no2_mean = no2.period_mean_ugm3.unwrap_or_default();
        let pm25_mean = pm25.period_mean_ugm3.unwrap_or_default();
        let ues = c.peak_connected_ues.unwrap_or_default();
        let cap = c.capacity.as_ref();
        let days = no2.daily_means.len().max(pm25.daily_means.len());
        let mut row = vec![
            r.district.clone(),
            time(r.start_unix_ms),
            time(r.end_unix_ms),
            c.rank.to_string(),
            c.districts_ranked.to_string(),
            opt(all.availability_percent),
            opt(c.cabinets.and_then(|k| k.availability_percent)),
            opt(c.small_cells.and_then(|k| k.availability_percent)),
            all.outage_minutes.to_string(),
            all.outages.to_string(),
            opt(all.mttr_ms.map(|ms| ms as f64 / 60_000.0)),
            basis_devices(all.basis.as_ref()),
            opt(ues.value),
            opt(c.p95_connected_ues.and_then(|f| f.value)),
            opt(c.p95_throughput_mbps.and_then(|f| f.value)),
            basis_share(ues.basis.as_ref()),
            opt(cap.and_then(|k| k.peak_ues_percent)),
            opt(cap.and_then(|k| k.p95_ues_percent)),
            opt(cap.and_then(|k| k.p95_throughput_percent)),
            cap.map_or_else(String::new, |k| k.busy_cell_hours.to_string()),
            e.energy_kwh.to_string(),
            opt(e.covered_percent),
            e.carbon_kg.to_string(),
            e.grid_intensity_kg_per_kwh.to_string(),
            e.grid_intensity_source.clone(),
            opt(e.grid_intensity_measured_percent),
            opt(e.effective_intensity_kg_per_kwh),
            e.previous_energy_kwh.to_string(),
            opt(e.trend_percent),
            basis_devices(e.basis.as_ref()),
            basis_share(e.basis.as_ref()),
            opt(no2_mean.value),
            basis_devices(no2_mean.basis.as_ref()),
            basis_share(no2_mean.basis.as_ref()),
            opt(pm25_mean.value),
            basis_devices(pm25_mean.basis.as_ref()),
            basis_share(pm25_mean.basis.as_ref()),
            days.to_string(),
        ];
        for name in &limits {
            let l = air.limits.iter().find(|l| &l.name == name);
            row.push(l.map(|l| l.exceeded.to_string()).unwrap_or_default());
            row.push(l.map(|l| l.evaluated.to_string()).unwrap_or_default());
        }
        w.write_record(&row)?;
    }
    Ok(w.into_inner()?)
}

fn basis(b: Option<&v1::Basis>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => json!({
            "devices": b.devices,
            "readings": b.readings,
            "readings_expected": b.readings_expected,
            "share_percent": b.share_percent,
        }),
    }
}

fn figure(f: Option<&v1::MetricFigure>) -> Value {
    match f {
        None => Value::Null,
        Some(f) => json!({ "value": f.value, "basis": basis(f.basis.as_ref()) }),
    }
}

fn kind(k: Option<&v1::KindAvailability>) -> Value {
    match k {
        None => Value::Null,
        Some(k) => json!({
            "availability_percent": k.availability_percent,
            "outage_minutes": k.outage_minutes,
            "outages": k.outages,
            "mttr_ms": k.mttr_ms,
            "basis": basis(k.basis.as_ref()),
        }),
    }
}

fn pollutant(p: Option<&v1::Pollutant>) -> Value {
    let Some(p) = p else { return Value::Null };
    json!({
        "metric": p.metric,
        "period_mean_ugm3": figure(p.period_mean_ugm3.as_ref()),
        "daily_means": p.daily_means.iter().map(|d| json!({
            "day": time(d.day_unix_ms),
            "mean_ugm3": d.mean_ugm3,
            "readings": d.readings,
        })).collect::<Vec<_>>(),
        "worst_sensors": p.worst_sensors.iter().map(|s| json!({
            "device_id": s.device_id,
            "mean_ugm3": s.mean_ugm3,
            "basis": basis(s.basis.as_ref()),
        })).collect::<Vec<_>>(),
    })
}

/// The JSON of one report.
fn report(r: &v1::DistrictReport) -> Value {
    let connectivity = r.connectivity.as_ref().map_or(Value::Null, |c| {
        json!({
            "rank": c.rank,
            "districts_ranked": c.districts_ranked,
            "all": kind(c.all.as_ref()),
            "cabinets": kind(c.cabinets.as_ref()),
            "small_cells": kind(c.small_cells.as_ref()),
            "worst_devices": c.worst_devices.iter().map(|d| json!({
                "device_id": d.device_id,
                "kind": d.kind,
                "availability_percent": d.availability_percent,
                "outage_minutes": d.outage_minutes,
                "outages": d.outages,
            })).collect::<Vec<_>>(),
            "peak_connected_ues": figure(c.peak_connected_ues.as_ref()),
            "p95_connected_ues": figure(c.p95_connected_ues.as_ref()),
            "p95_throughput_mbps": figure(c.p95_throughput_mbps.as_ref()),
            "capacity": c.capacity.as_ref().map(|k| json!({
                "connected_ues": k.connected_ues,
                "throughput_mbps": k.throughput_mbps,
                "peak_ues_percent": k.peak_ues_percent,
                "p95_ues_percent": k.p95_ues_percent,
                "p95_throughput_percent": k.p95_throughput_percent,
                "busy_cell_hours": k.busy_cell_hours,
                "cell_hours": k.cell_hours,
                "busy_percent": k.busy_percent,
            })),
        })
    });
    let energy = r.energy.as_ref().map_or(Value::Null, |e| {
        json!({
            "energy_kwh": e.energy_kwh,
            "covered_percent": e.covered_percent,
            "carbon_kg": e.carbon_kg,
            "grid_intensity_kg_per_kwh": e.grid_intensity_kg_per_kwh,
            "grid_intensity_source": e.grid_intensity_source,
            "grid_intensity_measured_percent": e.grid_intensity_measured_percent,
            "effective_intensity_kg_per_kwh": e.effective_intensity_kg_per_kwh,
            "previous_energy_kwh": e.previous_energy_kwh,
            "previous_covered_percent": e.previous_covered_percent,
            "trend_percent": e.trend_percent,
            "basis": basis(e.basis.as_ref()),
        })
    });
    let air = r.air_quality.as_ref().map_or(Value::Null, |a| {
        json!({
            "no2": pollutant(a.no2.as_ref()),
            "pm25": pollutant(a.pm25.as_ref()),
            "limits": a.limits.iter().map(|l| json!({
                "name": l.name,
                "metric": l.metric,
                "averaging": l.averaging,
                "limit_ugm3": l.limit_ugm3,
                "exceeded": l.exceeded,
                "evaluated": l.evaluated,
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "district": r.district,
        "start": time(r.start_unix_ms),
        "end": time(r.end_unix_ms),
        "connectivity": connectivity,
        "energy": energy,
        "air_quality": air,
    })
}

/// The JSON of `reports`: an array, in the service's order.
pub fn json(reports: &[v1::DistrictReport]) -> Value {
    Value::Array(reports.iter().map(report).collect())
}

/// The JSON file of `reports`: [`json`], indented, ending in a newline.
pub fn json_file(reports: &[v1::DistrictReport]) -> serde_json::Result<Vec<u8>> {
    let mut text = serde_json::to_string_pretty(&json(reports))?;
    text.push('\n');
    Ok(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> v1::DistrictReport {
        v1::DistrictReport {
            district: "old town, north".into(),
            start_unix_ms: 1_700_000_000_000 - 800_000,
            end_unix_ms: 1_700_000_000_000 + 2_800_000,
            energy: Some(v1::Energy {
                energy_kwh: 1.5,
                ..Default::default()
            }),
            air_quality: Some(v1::AirQuality {
                limits: vec![v1::LimitExceedance {
                    name: "WHO 2021 NO2 24-hour".into(),
                    exceeded: 2,
                    evaluated: 3,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn csv_has_one_row_per_district_with_the_limits_as_columns() {
        let text = String::from_utf8(csv(&[sample()]).unwrap()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header = reader.headers().unwrap().clone();
        assert_eq!(header.len(), COLUMNS.len() + 2);
        assert_eq!(&header[COLUMNS.len()], "WHO 2021 NO2 24-hour: exceeded");
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][0], "old town, north", "quoted and read back");
        assert_eq!(&rows[0][1], "2023-11-14T22:00:00Z");
        assert_eq!(&rows[0][5], "", "no availability figure: empty");
        let energy = COLUMNS.iter().position(|c| *c == "energy_kwh").unwrap();
        assert_eq!(&rows[0][energy], "1.5");
        assert_eq!((&rows[0][38], &rows[0][39]), ("2", "3"));
    }

    #[test]
    fn json_keeps_absent_figures_as_null() {
        let v = json(&[sample()]);
        assert_eq!(v[0]["district"], "old town, north");
        assert_eq!(v[0]["energy"]["energy_kwh"], 1.5);
        assert_eq!(v[0]["energy"]["trend_percent"], Value::Null);
        assert_eq!(v[0]["connectivity"], Value::Null);
        assert_eq!(v[0]["air_quality"]["limits"][0]["exceeded"], 2);
    }
}
