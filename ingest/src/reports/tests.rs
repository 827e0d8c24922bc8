//! District reports over a scripted fleet: two districts, cabinets with known power draws (one
//! with an hour without readings, one with an outage), small cells with known demand, sensors
//! with known pollutant values (one with an hour missing). Every figure is compared with a value
//! computed here from the script's raw readings, by a different route than the report's (per
//! reading rather than per rollup bucket), before and after a checkpoint moves the data into
//! segments and 1-hour rollups. A scoped key's report holds only its devices.

use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_proto::v1::{
    self, Birth, Death, DeathReason, Heartbeat, Reading, Status, TelemetryBatch, status,
};
use prost::Message as _;

use super::config::{NO2, PM25};
use super::*;
use crate::db::Database;
use crate::decode::Decoded;
use crate::journal::Entry;
use crate::state::access::Scope;

const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * HOUR_MS;
/// Start of the report period: 21:00 UTC, so the period crosses midnight after three hours.
const T0: i64 = 19_676 * DAY + 21 * HOUR_MS;
/// Six hours.
const LEN: i64 = 6 * HOUR_MS;
/// When the report is asked for.
const NOW: i64 = T0 + LEN;
/// The outage of cab-b: offline from a death at 23:00 to a birth at 23:30.
const OUTAGE: (i64, i64) = (T0 + 2 * HOUR_MS, T0 + 2 * HOUR_MS + 30 * MINUTE);

/// The metrics and values a scripted device reads at a time; `None`: no reading then.
type Values = fn(i64) -> Option<Vec<(&'static str, f64)>>;

/// One device of the script.
struct Scripted {
    id: &'static str,
    kind: &'static str,
    site: &'static str,
    interval_ms: i64,
    /// What it reads when.
    values: Values,
}

fn hour_of(t: i64) -> i64 {
    (t - T0).div_euclid(HOUR_MS)
}

fn fleet() -> Vec<Scripted> {
    vec![
        // 100 W before the period; then 200 W, no readings in hour 3 (heartbeats only), 400 W.
        Scripted {
            id: "cab-a",
            kind: "cabinet",
            site: "w",
            interval_ms: MINUTE,
            values: |t| match hour_of(t) {
                h if h < 0 => Some(vec![("power_w", 100.0)]),
                0..=2 => Some(vec![("power_w", 200.0)]),
                3 => None,
                _ => Some(vec![("power_w", 400.0)]),
            },
        },
        // 50 W throughout, none during its outage.
        Scripted {
            id: "cab-b",
            kind: "cabinet",
            site: "w",
            interval_ms: MINUTE,
            values: |t| (t < OUTAGE.0 || t >= OUTAGE.1).then(|| vec![("power_w", 50.0)]),
        },
        // 10 UEs per hour of the period (10, 20, ..., 60) with one reading of 99 in hour 5;
        // throughput 100 + hour.
        Scripted {
            id: "cell-a",
            kind: "small_cell",
            site: "w",
            interval_ms: MINUTE,
            values: |t| {
                let h = hour_of(t).max(0);
                let ues = if t == T0 + 5 * HOUR_MS + 7 * MINUTE {
                    99.0
                } else {
                    10.0 * (h + 1) as f64
                };
                Some(vec![
                    ("connected_ues", ues),
                    ("throughput_mbps", 100.0 + h as f64),
                ])
            },
        },
        // NO2 250 in hour 0, then 20; PM2.5 10.
        Scripted {
            id: "sensor-a",
            kind: "sensor",
            site: "w",
            interval_ms: 5 * MINUTE,
            values: |t| {
                let no2 = if hour_of(t) == 0 { 250.0 } else { 20.0 };
                Some(vec![(NO2, no2), (PM25, 10.0)])
            },
        },
        // NO2 30, PM2.5 20; nothing in hour 4.
        Scripted {
            id: "sensor-b",
            kind: "sensor",
            site: "w",
            interval_ms: 5 * MINUTE,
            values: |t| (hour_of(t) != 4).then(|| vec![(NO2, 30.0), (PM25, 20.0)]),
        },
        Scripted {
            id: "cab-c",
            kind: "cabinet",
            site: "e",
            interval_ms: MINUTE,
            values: |_| Some(vec![("power_w", 80.0)]),
        },
        Scripted {
            id: "cell-b",
            kind: "small_cell",
            site: "e",
            interval_ms: MINUTE,
            values: |_| Some(vec![("connected_ues", 5.0), ("throughput_mbps", 50.0)]),
        },
        // The grid's carbon intensity, gCO2e/kWh, half-hourly (at a site of no district):
        // 100 (h + 1) then 20 more in each hour of the period, none in hour 2.
        Scripted {
            id: GRID,
            kind: "meter",
            site: "x",
            interval_ms: 30 * MINUTE,
            values: |t| {
                let h = hour_of(t);
                let half = if (t - T0).rem_euclid(HOUR_MS) >= 30 * MINUTE {
                    20.0
                } else {
                    0.0
                };
                (h != 2).then(|| vec![(INTENSITY, 100.0 * (h + 1) as f64 + half)])
            },
        },
    ]
}

/// The device and metric of the grid's carbon intensity series.
const GRID: &str = "grid-gb";
/// See [`GRID`].
const INTENSITY: &str = "carbon_intensity";

fn open(dir: &std::path::Path) -> (Arc<Database>, citytel_storage::wal::Wal) {
    let text = "[availability]\ndistricts = { w = \"west\", e = \"east\" }\n";
    let options = crate::config::load_str(Some(("test", text)), &[])
        .unwrap()
        .validate()
        .unwrap()
        .store_options(crate::clock::Clock::System);
    let (db, wal, _) = Database::open(dir, &options).unwrap();
    (db, wal)
}

fn apply(state: &mut State, device: &Scripted, at: i64, payload: Decoded) {
    let (suffix, bytes) = match &payload {
        Decoded::Telemetry(b) => ("telemetry", b.encode_to_vec()),
        Decoded::Status(s) => ("status", s.encode_to_vec()),
        #[allow(unreachable_patterns)]
        _ => unreachable!("only telemetry and status are scripted"),
    };
    let topic = format!(
        "citytel/v1/{}/{}/{}/{suffix}",
        device.site, device.kind, device.id
    );
    state.advance(at);
    let entry = Entry::Message {
        received_at_ms: at,
        topic: &topic,
        payload: &bytes,
    };
    state.apply(&entry, Some(&payload));
}

fn status(device: &Scripted, boot: u64, kind: status::Kind) -> Decoded {
    Decoded::Status(Status {
        device_id: device.id.into(),
        boot_id: boot,
        time_unix_ms: 0,
        gateway_id: None,
        kind: Some(kind),
    })
}

fn birth(device: &Scripted, boot: u64) -> Decoded {
    status(
        device,
        boot,
        status::Kind::Birth(Birth {
            firmware_version: "1".into(),
            reporting_interval_ms: u32::try_from(device.interval_ms).unwrap(),
            heartbeat_interval_ms: None,
            children: vec![],
            intermittent: None,
            location: None,
        }),
    )
}

/// Plays the script from the previous period's start to now, in time order.
fn play(db: &Database) {
    let fleet = fleet();
    let mut state = db.write();
    let mut seq = BTreeMap::new();
    for d in &fleet {
        apply(&mut state, d, T0 - LEN, birth(d, 1));
    }
    let mut t = T0 - LEN;
    while t < NOW {
        for d in &fleet {
            if (t - (T0 - LEN)) % d.interval_ms != 0 {
                continue;
            }
            if d.id == "cab-b" && t == OUTAGE.0 {
                let death = Death {
                    reason: DeathReason::ConnectionLost as i32,
                    at_status_time: false,
                };
                apply(&mut state, d, t, status(d, 1, status::Kind::Death(death)));
            }
            if d.id == "cab-b" && t == OUTAGE.1 {
                apply(&mut state, d, t, birth(d, 2));
            }
            let boot = if d.id == "cab-b" && t >= OUTAGE.1 {
                2
            } else {
                1
            };
            match (d.values)(t) {
                Some(values) => {
                    let s = seq.entry((d.id, boot)).or_insert(0u64);
                    *s += 1;
                    let batch = TelemetryBatch {
                        device_id: d.id.into(),
                        boot_id: boot,
                        metric_names: values.iter().map(|(m, _)| m.to_string()).collect(),
                        readings: vec![Reading {
                            seq: *s,
                            time_unix_ms: t,
                            values: values.iter().map(|(_, v)| *v).collect(),
                        }],
                        gateway_id: None,
                    };
                    apply(&mut state, d, t, Decoded::Telemetry(batch));
                }
                None if d.id == "cab-b" => {}
                None => {
                    let beat = Heartbeat {
                        last_seq: None,
                        uptime_s: None,
                    };
                    apply(
                        &mut state,
                        d,
                        t,
                        status(d, boot, status::Kind::Heartbeat(beat)),
                    );
                }
            }
        }
        t += MINUTE;
    }
    state.advance(NOW);
}

/// The raw readings of the script: (device, time, metric, value).
fn readings(in_scope: impl Fn(&str) -> bool) -> Vec<(&'static str, i64, &'static str, f64)> {
    let mut out = Vec::new();
    for d in fleet().iter().filter(|d| in_scope(d.id)) {
        let mut t = T0 - LEN;
        while t < NOW {
            if let Some(values) = (d.values)(t) {
                out.extend(values.into_iter().map(|(m, v)| (d.id, t, m, v)));
            }
            t += d.interval_ms;
        }
    }
    out
}

fn interval(device: &str) -> i64 {
    fleet()
        .iter()
        .find(|d| d.id == device)
        .map_or(0, |d| d.interval_ms)
}

/// Energy by the oracle's route: every reading stands for its device's interval.
fn expected_kwh(in_scope: impl Fn(&str) -> bool, from: i64, to: i64) -> f64 {
    readings(in_scope)
        .iter()
        .filter(|(_, t, m, _)| *m == "power_w" && (from..to).contains(t))
        .map(|(d, _, _, w)| w * interval(d) as f64 / HOUR_MS as f64 / 1000.0)
        .sum()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() < 1e-9 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

fn report(db: &Database, scope: &Scope, district: Option<&str>) -> Vec<v1::DistrictReport> {
    let settings = crate::config::load_str(None, &[])
        .unwrap()
        .reports
        .validate()
        .unwrap();
    report_with(db, scope, district, &settings)
}

fn report_with(
    db: &Database,
    scope: &Scope,
    district: Option<&str>,
    settings: &ReportSettings,
) -> Vec<v1::DistrictReport> {
    let period = Period::new(T0, T0 + LEN, NOW).unwrap();
    let intensity = settings.grid_intensity_series.as_ref();
    let gathered = {
        let state = db.read();
        gather(
            &state,
            &Visible::of(scope, &state),
            district,
            period,
            intensity,
        )
        .unwrap()
    };
    gathered.compute(settings, 5, || false).unwrap()
}

fn check_everything(db: &Database) {
    let reports = report(db, &Scope::default(), None);
    let names: Vec<&str> = reports.iter().map(|r| r.district.as_str()).collect();
    assert_eq!(names, ["east", "west"], "ranked: east has no outage");
    let west = &reports[1];
    let everyone = |_: &str| true;
    let in_west = |d: &str| !matches!(d, "cab-c" | "cell-b");

    // Connectivity: cab-b was offline 30 of 360 minutes; the others never.
    let c = west.connectivity.as_ref().unwrap();
    assert_eq!((c.rank, c.districts_ranked), (2, 2));
    let cabinets = c.cabinets.as_ref().unwrap();
    close(
        cabinets.availability_percent.unwrap(),
        (720.0 - 30.0) * 100.0 / 720.0,
        "cabinet availability",
    );
    close(cabinets.outage_minutes, 30.0, "outage minutes");
    assert_eq!(cabinets.outages, 1);
    assert_eq!(cabinets.mttr_ms, Some(30 * MINUTE));
    assert_eq!(cabinets.basis.as_ref().unwrap().devices, 2);
    let all = c.all.as_ref().unwrap();
    close(
        all.availability_percent.unwrap(),
        (1080.0 - 30.0) * 100.0 / 1080.0,
        "all",
    );
    assert_eq!(
        c.small_cells.as_ref().unwrap().availability_percent,
        Some(100.0)
    );
    assert_eq!(c.worst_devices[0].device_id, "cab-b");
    assert_eq!(c.worst_devices.len(), 3);
    let east = reports[0].connectivity.as_ref().unwrap();
    assert_eq!(
        (east.rank, east.all.as_ref().unwrap().availability_percent),
        (1, Some(100.0))
    );

    // Demand: hourly means of the UEs, the spike included.
    let ues: Vec<f64> = (0..6)
        .map(|h| {
            let vals: Vec<f64> = readings(everyone)
                .iter()
                .filter(|(d, t, m, _)| *d == "cell-a" && *m == "connected_ues" && hour_of(*t) == h)
                .map(|r| r.3)
                .collect();
            vals.iter().sum::<f64>() / vals.len() as f64
        })
        .collect();
    let max = ues.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(c.peak_connected_ues.as_ref().unwrap().value, Some(99.0));
    close(
        c.p95_connected_ues.as_ref().unwrap().value.unwrap(),
        max,
        "p95 ues",
    );
    assert_eq!(c.p95_throughput_mbps.as_ref().unwrap().value, Some(105.0));
    let b = c.peak_connected_ues.as_ref().unwrap().basis.unwrap();
    assert_eq!((b.devices, b.readings, b.readings_expected), (1, 360, 360));

    // Energy: by reading, against the report's per-hour integration.
    let e = west.energy.as_ref().unwrap();
    let kwh = expected_kwh(in_west, T0, NOW);
    close(e.energy_kwh, kwh, "energy");
    close(
        kwh,
        (3.0 * 200.0 + 2.0 * 400.0 + 5.5 * 50.0) / 1000.0,
        "oracle",
    );
    close(e.carbon_kg, kwh * 0.20705, "carbon");
    let previous = expected_kwh(in_west, T0 - LEN, T0);
    close(e.previous_energy_kwh, previous, "previous energy");
    close(
        e.trend_percent.unwrap(),
        (kwh - previous) * 100.0 / previous,
        "trend",
    );
    // Covered: cab-a 5 of 6 hours, cab-b 5.5 of 6.
    close(e.covered_percent.unwrap(), 10.5 * 100.0 / 12.0, "covered");
    close(e.previous_covered_percent.unwrap(), 100.0, "covered before");
    let b = e.basis.unwrap();
    assert_eq!(
        (b.devices, b.readings, b.readings_expected),
        (2, 300 + 330, 720)
    );

    // Air quality.
    let air = west.air_quality.as_ref().unwrap();
    let no2: Vec<_> = readings(in_west)
        .into_iter()
        .filter(|r| r.2 == NO2 && r.1 >= T0)
        .collect();
    let mean =
        |rs: &[(&str, i64, &str, f64)]| rs.iter().map(|r| r.3).sum::<f64>() / rs.len() as f64;
    let p = air.no2.as_ref().unwrap();
    let figure = p.period_mean_ugm3.as_ref().unwrap();
    close(figure.value.unwrap(), mean(&no2), "no2 mean");
    close(mean(&no2), 6000.0 / 132.0, "no2 oracle");
    let b = figure.basis.unwrap();
    assert_eq!((b.devices, b.readings, b.readings_expected), (2, 132, 144));
    let midnight = T0 + 3 * HOUR_MS;
    let (day1, day2): (Vec<_>, Vec<_>) = no2.iter().partition(|r| r.1 < midnight);
    assert_eq!(p.daily_means.len(), 2);
    assert_eq!(
        (p.daily_means[0].day_unix_ms, p.daily_means[1].day_unix_ms),
        (T0, midnight)
    );
    close(p.daily_means[0].mean_ugm3, mean(&day1), "day 1");
    close(p.daily_means[1].mean_ugm3, mean(&day2), "day 2");
    assert_eq!(p.worst_sensors[0].device_id, "sensor-a");
    close(
        p.worst_sensors[0].mean_ugm3,
        (12.0 * 250.0 + 60.0 * 20.0) / 72.0,
        "sensor-a",
    );
    let share = p.worst_sensors[1].basis.unwrap().share_percent.unwrap();
    close(share, 60.0 * 100.0 / 72.0, "sensor-b completeness");
    let limit = |name: &str| {
        let l = air.limits.iter().find(|l| l.name == name).unwrap();
        (l.exceeded, l.evaluated)
    };
    assert_eq!(air.limits.len(), 7, "every default limit, named");
    assert_eq!(limit("UK AQO NO2 1-hour mean"), (1, 6));
    assert_eq!(limit("WHO 2021 NO2 24-hour"), (2, 2));
    assert_eq!(limit("UK AQO NO2 annual mean"), (1, 1));
    assert_eq!(limit("WHO 2021 NO2 annual"), (1, 1));
    assert_eq!(
        limit("WHO 2021 PM2.5 24-hour"),
        (2, 2),
        "sensor-b at 20 both days"
    );
    assert_eq!(limit("UK AQO PM2.5 annual mean"), (0, 1));
    assert_eq!(limit("WHO 2021 PM2.5 annual"), (1, 1));
    let pm = air.pm25.as_ref().unwrap();
    close(
        pm.period_mean_ugm3.as_ref().unwrap().value.unwrap(),
        (72.0 * 10.0 + 60.0 * 20.0) / 132.0,
        "pm25",
    );

    // One district alone: the same figures.
    let alone = report(db, &Scope::default(), Some("west"));
    assert_eq!(alone, vec![west.clone()]);
}

#[test]
fn figures_equal_those_computed_from_the_readings_before_and_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (db, mut wal) = open(dir.path());
    play(&db);
    check_everything(&db);
    let flushed = crate::db::checkpoint::run(&db, &mut wal, 1).unwrap();
    assert!(
        flushed.is_some_and(|s| s.points > 0),
        "data moved to segments"
    );
    check_everything(&db);
}

#[test]
fn a_scoped_key_sees_only_its_devices_contribution() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _wal) = open(dir.path());
    play(&db);
    let scope = Scope {
        devices: vec!["cab-a".into(), "sensor-b".into()],
        ..Scope::default()
    };
    let reports = report(&db, &scope, None);
    assert_eq!(reports.len(), 1, "east has none of its devices");
    let west = &reports[0];
    let c = west.connectivity.as_ref().unwrap();
    assert_eq!((c.rank, c.districts_ranked), (1, 1));
    assert_eq!(c.all.as_ref().unwrap().availability_percent, Some(100.0));
    assert_eq!(c.all.as_ref().unwrap().basis.unwrap().devices, 1);
    assert_eq!(c.worst_devices.len(), 1);
    assert_eq!(c.peak_connected_ues.as_ref().unwrap().value, None);
    let e = west.energy.as_ref().unwrap();
    close(
        e.energy_kwh,
        expected_kwh(|d| d == "cab-a", T0, NOW),
        "cab-a alone",
    );
    let no2 = west.air_quality.as_ref().unwrap().no2.as_ref().unwrap();
    close(
        no2.period_mean_ugm3.as_ref().unwrap().value.unwrap(),
        30.0,
        "sensor-b alone",
    );
    assert_eq!(no2.worst_sensors.len(), 1);

    let period = Period::new(T0, T0 + LEN, NOW).unwrap();
    let state = db.read();
    let hidden = gather(
        &state,
        &Visible::of(&scope, &state),
        Some("east"),
        period,
        None,
    );
    assert!(matches!(hidden, Err(ReportError::NoDistrict(_))));
}

#[test]
fn periods_are_whole_hours_cut_at_now() {
    assert!(matches!(
        Period::new(T0 + 1, T0 + LEN, NOW),
        Err(ReportError::Invalid(_))
    ));
    assert!(matches!(
        Period::new(T0, T0, NOW),
        Err(ReportError::Invalid(_))
    ));
    assert!(matches!(
        Period::new(NOW, NOW + HOUR_MS, NOW),
        Err(ReportError::Invalid(_))
    ));
    let p = Period::new(T0, T0 + 10 * HOUR_MS, NOW - 1).unwrap();
    assert_eq!(p.current, Span::new(T0, NOW - 1));
    assert_eq!(p.previous, Span::new(T0 - LEN + 1, T0));
    assert_eq!(worst_limit(0).unwrap(), DEFAULT_WORST);
    assert!(worst_limit(101).is_err());
}

#[test]
fn the_95th_percentile_is_by_nearest_rank() {
    let mut v: Vec<f64> = (1..=20).map(f64::from).collect();
    assert_eq!(connectivity::p95(&mut v), Some(19.0));
    assert_eq!(connectivity::p95(&mut [3.0]), Some(3.0));
    assert_eq!(connectivity::p95(&mut []), None);
}

#[test]
fn carbon_follows_the_intensity_series_hour_by_hour_and_the_constant_where_it_has_none() {
    use super::config::{IntensitySeries, IntensityUnit};

    let dir = tempfile::tempdir().unwrap();
    let (db, mut wal) = open(dir.path());
    play(&db);
    let mut settings = crate::config::load_str(None, &[])
        .unwrap()
        .reports
        .validate()
        .unwrap();
    let constant = settings.grid_intensity_kg_per_kwh;
    settings.grid_intensity_series = Some(IntensitySeries {
        device: GRID.into(),
        metric: INTENSITY.into(),
        unit: IntensityUnit::GPerKwh,
    });
    // The oracle: each power reading's energy at the mean of the grid's readings in its hour,
    // in kg per kWh, or at the constant in an hour without any.
    let grid = readings(|d| d == GRID);
    let intensity_at = |t: i64| {
        let hour = t - (t - T0).rem_euclid(HOUR_MS);
        let values: Vec<f64> = grid
            .iter()
            .filter(|(_, g, _, _)| (hour..hour + HOUR_MS).contains(g))
            .map(|(_, _, _, v)| *v / 1000.0)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let in_west = |d: &str| matches!(d, "cab-a" | "cab-b");
    let power: Vec<(i64, f64)> = readings(in_west)
        .into_iter()
        .filter(|(_, t, m, _)| *m == "power_w" && (T0..NOW).contains(t))
        .map(|(d, t, _, w)| (t, w * interval(d) as f64 / HOUR_MS as f64 / 1000.0))
        .collect();
    let kwh: f64 = power.iter().map(|(_, k)| k).sum();
    let want_kg: f64 = power
        .iter()
        .map(|(t, k)| k * intensity_at(*t).unwrap_or(constant))
        .sum();
    let measured: f64 = power
        .iter()
        .filter(|(t, _)| intensity_at(*t).is_some())
        .map(|(_, k)| k)
        .sum();
    assert!(measured > 0.0 && measured < kwh, "both kinds of hour occur");
    for round in ["before", "after"] {
        let reports = report_with(&db, &Scope::default(), Some("west"), &settings);
        let e = reports[0].energy.as_ref().unwrap();
        close(e.energy_kwh, kwh, "energy");
        close(
            e.carbon_kg,
            want_kg,
            &format!("carbon {round} a checkpoint"),
        );
        close(
            e.grid_intensity_measured_percent.unwrap(),
            measured * 100.0 / kwh,
            "measured share",
        );
        close(
            e.effective_intensity_kg_per_kwh.unwrap(),
            want_kg / kwh,
            "effective",
        );
        assert_eq!(e.grid_intensity_source, "series grid-gb/carbon_intensity");
        crate::db::checkpoint::run(&db, &mut wal, 1).unwrap();
    }
    // Without the series, the constant throughout.
    settings.grid_intensity_series = None;
    let e = report_with(&db, &Scope::default(), Some("west"), &settings)[0]
        .energy
        .clone()
        .unwrap();
    close(e.carbon_kg, kwh * constant, "carbon at the constant");
    assert_eq!(
        (
            e.grid_intensity_source.as_str(),
            e.grid_intensity_measured_percent
        ),
        ("constant", None)
    );
}

#[test]
fn small_cell_demand_is_compared_with_the_rated_capacity() {
    use super::config::SmallCellCapacity;

    let dir = tempfile::tempdir().unwrap();
    let (db, _wal) = open(dir.path());
    play(&db);
    let mut settings = crate::config::load_str(None, &[])
        .unwrap()
        .reports
        .validate()
        .unwrap();
    let west = |settings: &ReportSettings| {
        report_with(&db, &Scope::default(), Some("west"), settings)[0]
            .connectivity
            .clone()
            .unwrap()
    };
    assert_eq!(west(&settings).capacity, None, "no capacity configured");

    settings.small_cell_capacity = SmallCellCapacity {
        connected_ues: 50.0,
        throughput_mbps: 200.0,
        busy_percent: 80.0,
    };
    // The oracle: cell-a's readings in the period, hour by hour.
    let cell = readings(|d| d == "cell-a");
    let hourly = |metric: &str| -> Vec<f64> {
        (0..6)
            .map(|h| {
                let values: Vec<f64> = cell
                    .iter()
                    .filter(|(_, t, m, _)| *m == metric && hour_of(*t) == h && *t >= T0)
                    .map(|(_, _, _, v)| *v)
                    .collect();
                values.iter().sum::<f64>() / values.len() as f64
            })
            .collect()
    };
    let nearest_rank_p95 = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[(v.len() * 95).div_ceil(100) - 1]
    };
    let ues = hourly("connected_ues");
    let peak = cell
        .iter()
        .filter(|(_, t, m, _)| *m == "connected_ues" && *t >= T0)
        .map(|(_, _, _, v)| *v)
        .fold(f64::MIN, f64::max);
    let busy = ues.iter().filter(|u| **u >= 40.0).count() as u64;
    let c = west(&settings);
    let capacity = c.capacity.expect("capacity figures");
    close(
        capacity.peak_ues_percent.unwrap(),
        peak * 100.0 / 50.0,
        "peak",
    );
    close(
        capacity.p95_ues_percent.unwrap(),
        nearest_rank_p95(ues.clone()) * 100.0 / 50.0,
        "p95 users",
    );
    close(
        capacity.p95_throughput_percent.unwrap(),
        nearest_rank_p95(hourly("throughput_mbps")) * 100.0 / 200.0,
        "p95 throughput",
    );
    assert_eq!((capacity.busy_cell_hours, capacity.cell_hours), (busy, 6));
    assert!(busy > 0 && busy < 6, "some hours busy, not all: {ues:?}");

    // Throughput rated only: no users figures.
    settings.small_cell_capacity.connected_ues = 0.0;
    let capacity = west(&settings).capacity.unwrap();
    assert_eq!(
        (capacity.peak_ues_percent, capacity.busy_cell_hours),
        (None, 0)
    );
    assert!(capacity.p95_throughput_percent.is_some());
}
