use std::collections::HashSet;

use citytel_proto::catalog::{metric_names, metric_resolutions};
use proptest::prelude::*;

use super::*;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// 2025-03-03T00:00:00Z, a Monday.
const START_MS: i64 = 1_740_960_000_000;

/// Plausible physical bounds per metric name and kind.
fn bounds(kind: Kind, name: &str) -> (f64, f64) {
    match (kind, name) {
        (_, "temperature_c") => (-30.0, 60.0),
        (_, "humidity_pct") | (_, "cpu_pct") | (_, "memory_pct") | (_, "battery_pct") => {
            (0.0, 100.0)
        }
        (_, "door_open") => (0.0, 1.0),
        (_, "optical_rx_dbm") => (-30.0, -5.0),
        (_, "power_w") => (30.0, 200.0),
        (_, "rsrp_dbm") => (-110.0, -70.0),
        (_, "sinr_db") => (-5.0, 30.0),
        (_, "connected_ues") => (0.0, 1_000.0),
        (_, "throughput_mbps") => (0.0, 5_000.0),
        (_, "pm25_ugm3") | (_, "no2_ugm3") => (0.0, 500.0),
        (_, "backhaul_rssi_dbm") => (-110.0, -40.0),
        _ => panic!("no bounds for {kind} metric {name}"),
    }
}

fn is_quantized(value: f64, resolution: f64) -> bool {
    let steps = value / resolution;
    (steps - steps.round()).abs() <= 1e-9 * steps.abs().max(1.0)
}

/// Samples `device` every `step_ms` for `count` readings from `START_MS`.
fn series(kind: Kind, device: &str, step_ms: i64, count: usize) -> Vec<(i64, Vec<f64>)> {
    let mut model = DeviceModel::new(kind, 42, device);
    (0..count)
        .map(|i| {
            let t = START_MS + i as i64 * step_ms;
            (t, model.sample(t))
        })
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    sum / n as f64
}

#[test]
fn metric_tables_line_up_and_names_are_valid() {
    for kind in Kind::ALL {
        let names = metric_names(kind);
        assert_eq!(names.len(), metric_resolutions(kind).len(), "{kind}");
        assert_eq!(names.len(), if kind == Kind::Gateway { 3 } else { 5 });
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "{kind} has duplicate metric names"
        );
        for name in names {
            assert!(citytel_proto::topic::is_valid_id(name), "{name}");
        }
    }
}

#[test]
fn same_seed_device_and_timestamps_give_bit_identical_values() {
    // Irregular steps, including a repeated timestamp and one going backwards.
    let times: Vec<i64> = (0..2_000)
        .scan(START_MS, |t, i| {
            *t += [10_000, 0, 7_300, -2_000, 61_000][i % 5];
            Some(*t)
        })
        .collect();
    for kind in Kind::ALL {
        let mut a = DeviceModel::new(kind, 7, "dev-0001");
        let mut b = DeviceModel::new(kind, 7, "dev-0001");
        let mut out = vec![0.0; metric_names(kind).len()];
        for &t in &times {
            let va = a.sample(t);
            b.sample_into(t, &mut out);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&va), bits(&out), "{kind} at {t}");
        }
    }
}

#[test]
fn devices_and_seeds_differ() {
    for kind in Kind::ALL {
        let one = series(kind, "dev-0001", MINUTE_MS, 50);
        let other = series(kind, "dev-0002", MINUTE_MS, 50);
        let mut reseeded = DeviceModel::new(kind, 43, "dev-0001");
        let third: Vec<_> = one.iter().map(|(t, _)| (*t, reseeded.sample(*t))).collect();
        assert_ne!(one, other, "{kind}");
        assert_ne!(one, third, "{kind}");
    }
}

#[test]
fn values_are_finite_plausible_and_quantized() {
    for kind in Kind::ALL {
        let names = metric_names(kind);
        let resolutions = metric_resolutions(kind);
        for device in 0..5 {
            for (t, values) in series(kind, &format!("dev-{device}"), MINUTE_MS, 3 * 1440) {
                for ((value, name), resolution) in values.iter().zip(names).zip(resolutions) {
                    let (lo, hi) = bounds(kind, name);
                    assert!(value.is_finite(), "{kind} {name} at {t}: {value}");
                    assert!((lo..=hi).contains(value), "{kind} {name} at {t}: {value}");
                    assert!(is_quantized(*value, *resolution), "{kind} {name}: {value}");
                }
            }
        }
    }
}

#[test]
fn typical_ranges_match_the_device_descriptions() {
    let column = |kind, name: &str, devices: usize| -> Vec<f64> {
        let index = metric_names(kind).iter().position(|n| *n == name).unwrap();
        (0..devices)
            .flat_map(|d| series(kind, &format!("dev-{d}"), 10 * MINUTE_MS, 7 * 144))
            .map(|(_, v)| v[index])
            .collect()
    };
    let central = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 20], v[v.len() * 19 / 20])
    };
    let (lo, hi) = central(column(Kind::Cabinet, "temperature_c", 20));
    assert!(
        lo > 10.0 && hi < 37.0,
        "cabinet temperature 5-95%: {lo}..{hi}"
    );
    let (lo, hi) = central(column(Kind::Cabinet, "optical_rx_dbm", 20));
    assert!(lo > -19.5 && hi < -10.5, "optical rx 5-95%: {lo}..{hi}");
    let (lo, hi) = central(column(Kind::Cabinet, "power_w", 20));
    assert!(lo > 55.0 && hi < 125.0, "cabinet power 5-95%: {lo}..{hi}");
    let (lo, hi) = central(column(Kind::SmallCell, "rsrp_dbm", 20));
    assert!(
        lo >= -110.0 && hi <= -70.0 && hi - lo > 10.0,
        "rsrp 5-95%: {lo}..{hi}"
    );
}

#[test]
fn daily_cycles_are_visible() {
    // Average a metric over 20 devices and 14 days, at one hour of the day.
    let at_hour = |kind, name: &str, hour: i64| {
        let index = metric_names(kind).iter().position(|n| *n == name).unwrap();
        mean((0..20).flat_map(|d| {
            let mut model = DeviceModel::new(kind, 42, &format!("dev-{d}"));
            (0..14 * 24).filter_map(move |h| {
                let values = model.sample(START_MS + h * HOUR_MS);
                (h % 24 == hour).then(|| values[index])
            })
        }))
    };
    let ues = |hour| at_hour(Kind::SmallCell, "connected_ues", hour);
    assert!(
        ues(14) > 3.0 * ues(4),
        "UEs 14:00 {} vs 04:00 {}",
        ues(14),
        ues(4)
    );
    let throughput = |hour| at_hour(Kind::SmallCell, "throughput_mbps", hour);
    assert!(throughput(14) > 2.0 * throughput(4));
    let temperature = |hour| at_hour(Kind::Cabinet, "temperature_c", hour);
    assert!(temperature(15) > temperature(3) + 6.0);
    let no2 = |hour| at_hour(Kind::Sensor, "no2_ugm3", hour);
    assert!(no2(8) > 2.0 * no2(3) && no2(18) > 2.0 * no2(3) && no2(8) > no2(13));
}

#[test]
fn cabinet_doors_open_rarely_and_for_minutes() {
    let index = metric_names(Kind::Cabinet)
        .iter()
        .position(|n| *n == "door_open")
        .unwrap();
    let mut open_minutes = 0;
    let mut openings = 0;
    for device in 0..10 {
        let mut was_open = false;
        for (_, values) in series(
            Kind::Cabinet,
            &format!("cab-{device}"),
            MINUTE_MS,
            14 * 1440,
        ) {
            let open = values[index] == 1.0;
            assert!(open || values[index] == 0.0);
            open_minutes += usize::from(open);
            openings += usize::from(open && !was_open);
            was_open = open;
        }
    }
    let total_minutes = 10 * 14 * 1440;
    assert!(openings > 10, "{openings} openings in 140 cabinet-days");
    assert!(
        open_minutes * 100 < total_minutes,
        "open {open_minutes} of {total_minutes} minutes"
    );
    assert!(open_minutes >= openings * 3, "doors stay open for minutes");
}

#[test]
fn sensor_battery_drains_slowly() {
    let index = metric_names(Kind::Sensor)
        .iter()
        .position(|n| *n == "battery_pct")
        .unwrap();
    for device in 0..10 {
        let day = series(
            Kind::Sensor,
            &format!("sen-{device}"),
            10_000,
            DAY_MS as usize / 10_000,
        );
        let levels: Vec<f64> = day.iter().map(|(_, v)| v[index]).collect();
        assert!(
            levels.windows(2).all(|w| w[1] <= w[0]),
            "battery never rises within a day"
        );
        let used = levels[0] - levels[levels.len() - 1];
        assert!((0.2..2.0).contains(&used), "used {used}% in a day");
    }
}

#[test]
#[should_panic(expected = "one value per metric")]
fn sample_into_rejects_a_wrongly_sized_slice() {
    DeviceModel::new(Kind::Gateway, 1, "gw-0001").sample_into(START_MS, &mut [0.0; 5]);
}

proptest! {
    #[test]
    fn any_timestamps_give_finite_quantized_values(
        kind in prop::sample::select(Kind::ALL.to_vec()),
        seed in any::<u64>(),
        start in -4_000_000_000_000i64..4_000_000_000_000,
        steps in prop::collection::vec(-100_000i64..10_000_000, 1..50),
    ) {
        let mut model = DeviceModel::new(kind, seed, "dev");
        let mut t = start;
        for step in steps {
            t += step;
            for (value, resolution) in model.sample(t).iter().zip(metric_resolutions(kind)) {
                prop_assert!(value.is_finite());
                prop_assert!(is_quantized(*value, *resolution), "{} not a multiple of {}", value, resolution);
            }
        }
    }
}
