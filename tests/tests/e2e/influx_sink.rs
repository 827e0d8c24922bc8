//! citytel's InfluxDB sink against a real VictoriaMetrics (Debian package), which accepts the
//! same `/api/v2/write` requests as InfluxDB 2: every reading a simulated fleet had acknowledged
//! must come back from `/api/v1/export` with the same series, timestamp and bit-identical value,
//! also across an outage of the server and a crash of citytel. Part of the `interop` group:
//! `cargo test -p citytel-tests --features interop`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use citytel_firmware_sim::FleetReport;
use citytel_testkit::wait::Wait;
use citytel_tests::fleet;
use citytel_tests::process::Citytel;
use citytel_tests::victoriametrics::{Series, VictoriaMetrics};

/// Every series the fleet's kinds write (one measurement per kind: `{kind}_{metric}`).
const NAMES: &str = "(cabinet|small_cell|sensor|gateway)_.*";

/// (series name, device id) to its points.
type Points = BTreeMap<(String, String), BTreeMap<i64, u64>>;

fn sink_args(vm: &VictoriaMetrics) -> Vec<String> {
    [
        "sink.influxdb.enabled=true".to_string(),
        format!("sink.influxdb.url=\"{}\"", vm.url()),
        "sink.influxdb.batch_size=200".to_string(),
        "sink.influxdb.linger=\"20ms\"".to_string(),
        "sink.influxdb.retry_max=\"200ms\"".to_string(),
    ]
    .into_iter()
    .flat_map(|set| ["--set".to_string(), set])
    .collect()
}

fn start_citytel(dir: &std::path::Path, vm: &VictoriaMetrics) -> Citytel {
    let args = sink_args(vm);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Citytel::start(dir, &args)
}

/// What the fleet had acknowledged, as the sink must write it.
fn published(report: &FleetReport) -> Points {
    let mut points = Points::new();
    for device in &report.devices {
        for (i, metric) in device.metric_names.iter().enumerate() {
            let series = points.entry(series_key(device, metric)).or_default();
            for reading in &device.acked_readings {
                series.insert(reading.time_unix_ms, reading.values[i].to_bits());
            }
        }
    }
    points.retain(|_, p| !p.is_empty());
    points
}

/// The values of the points that share a series and a timestamp with another acknowledged
/// reading of a different value. InfluxDB's model holds one point per series and timestamp, and
/// VictoriaMetrics keeps one of such samples (the largest), so any of them is a right answer.
fn same_timestamp(report: &FleetReport) -> BTreeMap<((String, String), i64), BTreeSet<u64>> {
    let mut values = BTreeMap::<((String, String), i64), BTreeSet<u64>>::new();
    for device in &report.devices {
        for (i, metric) in device.metric_names.iter().enumerate() {
            for reading in &device.acked_readings {
                values
                    .entry((series_key(device, metric), reading.time_unix_ms))
                    .or_default()
                    .insert(reading.values[i].to_bits());
            }
        }
    }
    values.retain(|_, v| v.len() > 1);
    values
}

fn series_key(device: &citytel_firmware_sim::DeviceReport, metric: &str) -> (String, String) {
    (
        format!("{}_{metric}", device.kind.as_str()),
        device.device_id.clone(),
    )
}

/// What VictoriaMetrics holds, checking each series' tags against the fleet.
fn exported(series: &[Series], report: &FleetReport) -> Points {
    let mut points = Points::new();
    for s in series {
        let name = s.labels["__name__"].clone();
        let device_id = s.labels["device_id"].clone();
        let device = report
            .device(&device_id)
            .unwrap_or_else(|| panic!("a series of unknown device {device_id}"));
        assert_eq!(
            s.labels["site"], device.site,
            "{name} {device_id}: site tag"
        );
        assert_eq!(s.labels["kind"], device.kind.as_str(), "{name}: kind tag");
        let values: BTreeMap<i64, u64> = s.points.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        assert_eq!(
            values.len(),
            s.points.len(),
            "{name} {device_id}: a timestamp stored twice"
        );
        assert!(
            points
                .insert((name.clone(), device_id.clone()), values)
                .is_none(),
            "{name} {device_id} exported twice: {:?}",
            s.labels
        );
    }
    points
}

fn count(points: &Points) -> usize {
    points.values().map(BTreeMap::len).sum()
}

/// Polls the export until it holds as many values as `want`, then returns it.
async fn export_when_complete(vm: &VictoriaMetrics, report: &FleetReport, want: usize) -> Points {
    let mut wait = Wait::new(
        "victoria-metrics holding every value",
        Duration::from_secs(120),
    )
    .every(Duration::from_millis(200));
    loop {
        let got = exported(&vm.export(NAMES).await, report);
        if count(&got) >= want || wait.retry().await.is_err() {
            return got;
        }
    }
}

fn assert_same(got: &Points, want: &Points, report: &FleetReport) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same series"
    );
    let ambiguous = same_timestamp(report);
    for (key, points) in want {
        let got = &got[key];
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            points.keys().collect::<Vec<_>>(),
            "{key:?}: the same timestamps"
        );
        for (time, value) in points {
            let stored = got[time];
            let either = ambiguous.get(&(key.clone(), *time));
            assert!(
                stored == *value || either.is_some_and(|v| v.contains(&stored)),
                "{key:?} at {time}: stored {stored:#x}, acknowledged {value:#x} (bit-identical values)"
            );
        }
    }
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_reading_reaches_victoriametrics_exactly() {
    let vm_dir = tempfile::tempdir().unwrap();
    let vm = VictoriaMetrics::start(vm_dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let citytel = start_citytel(dir.path(), &vm);
    let (host, port) = citytel.mqtt_host_port();
    let report = fleet::run(fleet::small(host, port, 40)).await;
    let want = published(&report);
    assert_eq!(
        report.totals.readings_acked,
        12 * 40,
        "12 devices, 40 readings each"
    );
    assert_eq!(
        want.len(),
        11 * 5 + 3,
        "5 metrics per device, 3 for the gateway"
    );
    let got = export_when_complete(&vm, &report, count(&want)).await;
    assert_same(&got, &want, &report);
    assert!(citytel.stop().success());
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_a_crash_lose_and_duplicate_nothing() {
    let vm_dir = tempfile::tempdir().unwrap();
    let vm = VictoriaMetrics::start(vm_dir.path()).await;
    let vm_port = vm.port;
    let dir = tempfile::tempdir().unwrap();
    let citytel = start_citytel(dir.path(), &vm);
    let (host, port) = citytel.mqtt_host_port();
    let fleet_run = tokio::spawn(fleet::run(fleet::small(host, port, 300)));

    // Some data has arrived: the server goes away in the middle of the run.
    let mut wait = Wait::new(
        "something reaching victoria-metrics",
        Duration::from_secs(60),
    )
    .every(Duration::from_millis(50));
    let before = loop {
        let series = vm.export(NAMES).await;
        if !series.is_empty() {
            break series.iter().map(|s| s.points.len()).sum::<usize>();
        }
        if let Err(e) = wait.retry().await {
            panic!("{e}");
        }
    };
    vm.stop();

    // Ingest never waits for the sink: the fleet finishes with every reading acknowledged.
    let report = fleet_run.await.unwrap();
    let want = published(&report);
    assert!(
        before < count(&want),
        "the outage began before the run ended"
    );

    // citytel crashes with its backlog unsent; both come back.
    citytel.kill9();
    let vm = VictoriaMetrics::start_on(vm_dir.path(), vm_port).await;
    let citytel = start_citytel(dir.path(), &vm);
    let got = export_when_complete(&vm, &report, count(&want)).await;
    assert_same(&got, &want, &report);
    assert!(citytel.stop().success());
}
