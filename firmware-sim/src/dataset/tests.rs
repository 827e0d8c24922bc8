use std::collections::HashMap;
use std::time::Duration;

use citytel_proto::catalog::{metric_names, metric_resolutions};
use citytel_proto::kind::Kind;
use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::DatasetRecord;
use prost::Message as _;

use super::plan::{MAX_OUTAGE_MS, MAX_OUTAGES, MIN_OUTAGE_MS};
use super::*;
use crate::model::DeviceModel;

/// 2026-01-05T00:00:00Z.
const START_MS: i64 = 1_767_571_200_000;

/// A small dataset: 6 devices over 3 sites for 6 hours, every device with outages.
fn small(format: DatasetFormat) -> DatasetConfig {
    DatasetConfig {
        duration: Duration::from_secs(6 * 3600),
        cabinets: 2,
        small_cells: 2,
        sensors: 2,
        sites: 3,
        outage_fraction: 1.0,
        batch: 50,
        ..DatasetConfig::reference(START_MS, format)
    }
}

fn generate(config: &DatasetConfig) -> (Vec<u8>, DatasetSummary) {
    let mut out = Vec::new();
    let mut last = None;
    let summary = write_dataset(config, &mut out, &mut |p| last = Some(p)).expect("generated");
    let last = last.expect("progress reported");
    assert_eq!(last.steps_done, config.steps());
    assert_eq!(last.steps_total, config.steps());
    (out, summary)
}

/// Whether `device` takes a reading at `time_ms`.
fn is_up(device: &DatasetDevice, time_ms: i64) -> bool {
    !device.outages.iter().any(|o| o.contains(time_ms))
}

fn grid(config: &DatasetConfig) -> impl Iterator<Item = i64> + '_ {
    (0..config.steps()).map(|k| config.start_ms + k as i64 * config.interval_ms())
}

#[test]
fn same_configuration_gives_identical_bytes() {
    for format in [DatasetFormat::LineProtocol, DatasetFormat::Proto] {
        let config = small(format);
        let (a, _) = generate(&config);
        let (b, _) = generate(&config);
        assert!(a == b, "{format:?} output differs between runs");
        let (other_seed, _) = generate(&DatasetConfig { seed: 7, ..config });
        assert!(a != other_seed);
    }
}

#[test]
fn ids_and_sites_follow_the_fleet_conventions() {
    let devices = plan::plan(&DatasetConfig::reference(START_MS, DatasetFormat::Proto));
    assert_eq!(devices.len(), 1000);
    let at = |i: usize| {
        (
            devices[i].device_id.as_str(),
            devices[i].kind,
            devices[i].site.as_str(),
        )
    };
    assert_eq!(at(0), ("cab-0001", Kind::Cabinet, "site-01"));
    assert_eq!(at(299), ("cab-0300", Kind::Cabinet, "site-20"));
    assert_eq!(at(300), ("cell-0001", Kind::SmallCell, "site-01"));
    assert_eq!(at(621), ("sen-0022", Kind::Sensor, "site-02"));
    assert_eq!(at(999), ("sen-0400", Kind::Sensor, "site-20"));
}

#[test]
fn the_outage_plan_has_the_documented_shape() {
    let config = DatasetConfig::reference(START_MS, DatasetFormat::LineProtocol);
    let devices = plan::plan(&config);
    let with_outages: Vec<_> = devices.iter().filter(|d| !d.outages.is_empty()).collect();
    assert_eq!(with_outages.len(), 150);
    let mut lengths = Vec::new();
    for device in &with_outages {
        assert!((1..=MAX_OUTAGES as usize).contains(&device.outages.len()));
        for outage in &device.outages {
            let length = outage.end_ms - outage.start_ms;
            assert!(
                (MIN_OUTAGE_MS..=MAX_OUTAGE_MS).contains(&length),
                "{length}"
            );
            assert_eq!(length % 1000, 0);
            assert!(outage.start_ms >= START_MS + config.interval_ms());
            assert!(outage.end_ms <= START_MS + config.duration_ms() - config.interval_ms());
            lengths.push(length);
        }
        for pair in device.outages.windows(2) {
            assert!(pair[1].start_ms - pair[0].end_ms >= 2 * config.interval_ms());
        }
    }
    // Log-uniform between 5 min and 6 h: the median is near sqrt(5 min * 6 h), about 46 min.
    lengths.sort_unstable();
    let median = lengths[lengths.len() / 2];
    assert!(
        (20 * 60_000..100 * 60_000).contains(&median),
        "median {median} ms"
    );
    // The plan depends on the span's length, not its start.
    let later = plan::plan(&DatasetConfig {
        start_ms: START_MS + 86_400_000,
        ..config
    });
    for (a, b) in devices.iter().zip(&later) {
        let shifted: Vec<_> = a
            .outages
            .iter()
            .map(|o| (o.start_ms + 86_400_000, o.end_ms + 86_400_000))
            .collect();
        let other: Vec<_> = b.outages.iter().map(|o| (o.start_ms, o.end_ms)).collect();
        assert_eq!(shifted, other);
    }
    let none = DatasetConfig {
        outage_fraction: 0.0,
        ..config
    };
    assert!(plan::plan(&none).iter().all(|d| d.outages.is_empty()));
}

#[test]
fn line_protocol_lines_carry_the_model_values() {
    let config = small(DatasetFormat::LineProtocol);
    let devices = plan::plan(&config);
    let (out, summary) = generate(&config);
    let text = String::from_utf8(out).expect("utf-8");
    let expected: Vec<(usize, i64)> = grid(&config)
        .flat_map(|t| (0..devices.len()).map(move |d| (d, t)))
        .filter(|&(d, t)| is_up(&devices[d], t))
        .collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len());
    assert_eq!(summary.readings, expected.len() as u64);
    assert_eq!(summary.values, 5 * expected.len() as u64);
    assert_eq!(summary.bytes, text.len() as u64);
    assert_eq!(summary.devices_with_outages, 6);

    let mut models: Vec<DeviceModel> = devices
        .iter()
        .map(|d| DeviceModel::new(d.kind, config.seed, &d.device_id))
        .collect();
    let mut next = 0;
    for time_ms in grid(&config) {
        for (index, device) in devices.iter().enumerate() {
            let values = models[index].sample(time_ms);
            if !is_up(device, time_ms) {
                continue;
            }
            let line = lines[next];
            next += 1;
            // measurement,tags fields timestamp
            let mut parts = line.split(' ');
            let (Some(series), Some(fields), Some(ts), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                panic!("not three sections: {line}");
            };
            let kind = device.kind.as_str();
            assert_eq!(
                series,
                format!(
                    "{kind},device_id={},kind={kind},site={}",
                    device.device_id, device.site
                )
            );
            assert_eq!(ts.parse::<i64>().expect("timestamp"), time_ms * 1_000_000);
            let parsed: Vec<(&str, f64)> = fields
                .split(',')
                .map(|field| {
                    let (key, value) = field.split_once('=').expect("key=value");
                    assert!(!value.ends_with('i') && !value.ends_with('u'), "{field}");
                    (key, value.parse::<f64>().expect("float"))
                })
                .collect();
            let names = metric_names(device.kind);
            assert_eq!(parsed.iter().map(|(k, _)| *k).collect::<Vec<_>>(), names);
            let got: Vec<u64> = parsed.iter().map(|(_, v)| v.to_bits()).collect();
            let want: Vec<u64> = values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{line}");
        }
    }
}

#[test]
fn proto_records_decode_and_reboots_restart_sequences() {
    let config = small(DatasetFormat::Proto);
    let devices = plan::plan(&config);
    let (out, summary) = generate(&config);
    let mut buf = out.as_slice();
    let mut records = Vec::new();
    while !buf.is_empty() {
        records.push(DatasetRecord::decode_length_delimited(&mut buf).expect("record decodes"));
    }
    assert_eq!(summary.records, records.len() as u64);

    let mut per_device: HashMap<String, Vec<(u64, u64, i64)>> = HashMap::new();
    let mut previous_first = i64::MIN;
    for record in &records {
        let batch = record.batch.as_ref().expect("batch");
        let parsed = topic::parse(&record.topic).expect("valid topic");
        assert_eq!(parsed.channel, Channel::Telemetry);
        assert_eq!(parsed.device_id, batch.device_id);
        let device = devices
            .iter()
            .find(|d| d.device_id == batch.device_id)
            .expect("known");
        assert_eq!(
            (parsed.site, parsed.kind),
            (device.site.as_str(), device.kind.as_str())
        );
        assert_eq!(batch.metric_names, metric_names(device.kind));
        assert!((1..=50).contains(&batch.readings.len()));
        let first = batch.readings[0].time_unix_ms;
        assert!(first >= previous_first, "records out of order");
        previous_first = first;
        for reading in &batch.readings {
            assert_eq!(reading.values.len(), 5);
            per_device
                .entry(batch.device_id.clone())
                .or_default()
                .push((batch.boot_id, reading.seq, reading.time_unix_ms));
        }
    }
    let readings: usize = per_device.values().map(Vec::len).sum();
    assert_eq!(readings as u64, summary.readings);

    for device in &devices {
        let mut seen = per_device
            .remove(&device.device_id)
            .expect("device has readings");
        seen.sort_by_key(|&(_, _, time)| time);
        let times: Vec<i64> = seen.iter().map(|r| r.2).collect();
        let want: Vec<i64> = grid(&config).filter(|&t| is_up(device, t)).collect();
        assert_eq!(times, want, "{}", device.device_id);
        // One boot per outage plus the first; seq counts 1, 2, 3... within each boot.
        let mut boots = vec![seen[0].0];
        let mut expected_seq = 1;
        for &(boot, seq, time) in &seen {
            if boot != *boots.last().expect("a boot") {
                assert!(!boots.contains(&boot), "boot id reused");
                assert!(device.outages.iter().any(|o| o.end_ms <= time));
                boots.push(boot);
                expected_seq = 1;
            }
            assert_eq!(seq, expected_seq);
            expected_seq += 1;
        }
        assert_eq!(
            boots.len(),
            device.outages.len() + 1,
            "{}",
            device.device_id
        );
        assert_eq!(
            boots[0],
            plan::boot_id(config.seed, &device.device_id, START_MS)
        );
    }
}

#[test]
fn values_are_finite_and_quantized() {
    let config = small(DatasetFormat::Proto);
    let (out, _) = generate(&config);
    let mut buf = out.as_slice();
    while !buf.is_empty() {
        let record = DatasetRecord::decode_length_delimited(&mut buf).expect("decodes");
        let batch = record.batch.expect("batch");
        let kind: Kind = topic::parse(&record.topic)
            .expect("topic")
            .kind
            .parse()
            .expect("kind");
        for reading in &batch.readings {
            for (value, resolution) in reading.values.iter().zip(metric_resolutions(kind)) {
                assert!(value.is_finite());
                let steps = value / resolution;
                assert!(
                    (steps - steps.round()).abs() < 1e-6,
                    "{value} not a multiple of {resolution}"
                );
                assert!(value.to_bits() != (-0.0f64).to_bits());
            }
        }
    }
}

#[test]
fn invalid_configurations_are_rejected() {
    let base = small(DatasetFormat::LineProtocol);
    let cases = [
        DatasetConfig {
            cabinets: 0,
            small_cells: 0,
            sensors: 0,
            ..base.clone()
        },
        DatasetConfig {
            sites: 0,
            ..base.clone()
        },
        DatasetConfig {
            interval: Duration::from_micros(1500),
            ..base.clone()
        },
        DatasetConfig {
            duration: Duration::ZERO,
            ..base.clone()
        },
        DatasetConfig {
            outage_fraction: 1.5,
            ..base.clone()
        },
        DatasetConfig {
            batch: 0,
            ..base.clone()
        },
        DatasetConfig {
            start_ms: i64::MAX / 1_000_000,
            ..base.clone()
        },
    ];
    for config in cases {
        assert!(
            write_dataset(&config, Vec::new(), &mut |_| {}).is_err(),
            "{config:?}"
        );
    }
}

#[test]
fn the_default_start_is_yesterday_midnight() {
    // 2026-01-05T13:14:15Z -> 2026-01-04T00:00:00Z; at midnight itself, the day before.
    assert_eq!(
        default_start_ms(START_MS + 47_655_000),
        START_MS - 86_400_000
    );
    assert_eq!(default_start_ms(START_MS), START_MS - 86_400_000);
}
