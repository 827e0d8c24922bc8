//! ExportSeries and `citytel export`: the rows are exactly the series the key sees (checked
//! against what was published and against QueryRange and QuerySeries), with the catalogue's
//! units, the site's district and the licence of the key's organisation; a device outside the
//! scope is NOT_FOUND, a metric outside it gives no rows. The Parquet file is read back by an
//! independent reader, pyarrow (part of the `interop` group: it needs Python; the test installs
//! pyarrow with pip when it is missing).

use std::collections::BTreeMap;
use std::process::Command;

use citytel_proto::v1;
use citytel_tests::process::binary;
use tonic::Code;

use super::{Fleet, Query, Who, district, place};

/// (device, metric) -> rows of (time_unix_ms, value).
type Rows = BTreeMap<(String, String), Vec<(i64, f64)>>;

/// The whole file of an export, or the status that ended it.
async fn export(c: &mut Query, request: v1::ExportSeriesRequest) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = c.export_series(request).await?.into_inner();
    let mut file = Vec::new();
    while let Some(chunk) = stream.message().await? {
        file.extend_from_slice(&chunk.data);
    }
    Ok(file)
}

fn request(fleet: &Fleet, format: v1::ExportFormat, step_ms: i64) -> v1::ExportSeriesRequest {
    v1::ExportSeriesRequest {
        devices: None,
        metrics: Vec::new(),
        start_unix_ms: fleet.start_ms,
        end_unix_ms: fleet.start_ms + 3_600_000,
        step_ms,
        aggregation: if step_ms > 0 {
            v1::Aggregation::Avg as i32
        } else {
            v1::Aggregation::Unspecified as i32
        },
        format: format as i32,
    }
}

/// Parses an export's CSV: its `#` lines as (key, value), and its rows, each row checked for
/// the columns every row of its series repeats.
fn parse_csv(who: &Who, text: &str) -> (BTreeMap<String, String>, Rows) {
    let mut comments = BTreeMap::new();
    let mut lines = text.lines();
    let header = loop {
        let line = lines.next().expect("a header row");
        match line.strip_prefix("# ") {
            Some(c) => {
                let (k, v) = c.split_once(": ").expect("# key: value");
                comments.insert(k.to_string(), v.to_string());
            }
            None => break line,
        }
    };
    assert_eq!(
        header,
        "device_id,site,kind,district,metric,unit,time_unix_ms,time,value"
    );
    let mut rows = Rows::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 9, "{line}");
        let (site, kind) = place(f[0]);
        assert_eq!(
            (f[1], f[2], f[3]),
            (site, kind, district(site).unwrap_or(""))
        );
        assert_eq!(f[5], unit(kind, f[4]), "{line}");
        let t: i64 = f[6].parse().expect("time_unix_ms");
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(t as u64);
        assert_eq!(f[7], humantime::format_rfc3339_millis(at).to_string());
        who.check("ExportSeries", [f[0]], [f[4]]);
        rows.entry((f[0].to_string(), f[4].to_string()))
            .or_default()
            .push((t, f[8].parse().expect("value")));
    }
    (comments, rows)
}

/// The catalogue's unit.
fn unit(kind: &str, metric: &str) -> &'static str {
    let kind: citytel_proto::kind::Kind = kind.parse().expect("kind");
    citytel_proto::catalog::metrics(kind)
        .iter()
        .find(|m| m.name == metric)
        .map_or("", |m| m.unit)
}

/// Every series `who` sees, as QueryRange answers it.
async fn ranges(fleet: &Fleet, who: &Who, c: &mut Query) -> Rows {
    let mut out = Rows::new();
    for device in who.devices() {
        for metric in who.metrics(device) {
            let a = c
                .query_range(v1::QueryRangeRequest {
                    device_id: device.into(),
                    metric: metric.into(),
                    start_unix_ms: fleet.start_ms,
                    end_unix_ms: fleet.start_ms + 3_600_000,
                    time_runs: false,
                })
                .await
                .expect("QueryRange")
                .into_inner();
            let points = a.times_unix_ms.into_iter().zip(a.values).collect();
            out.insert((device.to_string(), metric.to_string()), points);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_exports_hold_what_the_key_sees_with_units_and_licence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = Fleet::start(&dir.path().join("data")).await;
    for (i, who) in fleet.who.iter().enumerate() {
        let mut c = fleet.query(i).await;
        let raw = export(&mut c, request(&fleet, v1::ExportFormat::Csv, 0))
            .await
            .expect("ExportSeries");
        let (comments, rows) = parse_csv(who, std::str::from_utf8(&raw).expect("UTF-8"));
        let want = ranges(&fleet, who, &mut c).await;
        assert_eq!(rows, want, "{}: raw rows are QueryRange's points", who.name);
        for (series, points) in &rows {
            assert_eq!(
                Some(points),
                fleet.truth.get(series),
                "{}: published",
                who.name
            );
        }
        let licence = [
            None,
            Some("FibreCo internal use only"),
            Some("CC BY 4.0, City University"),
        ][i];
        assert_eq!(
            comments.get("licence").map(String::as_str),
            licence,
            "{}",
            who.name
        );
        assert_eq!(
            comments.get("values").map(String::as_str),
            Some("raw points")
        );

        // With a step: QuerySeries' per-device averages.
        let stepped = export(&mut c, request(&fleet, v1::ExportFormat::Csv, 60_000))
            .await
            .expect("ExportSeries with a step");
        let (comments, rows) = parse_csv(who, std::str::from_utf8(&stepped).expect("UTF-8"));
        assert!(comments["values"].starts_with("avg of each 60000 ms bucket"));
        for ((device, metric), got) in &rows {
            let a = c
                .query_series(v1::QuerySeriesRequest {
                    devices: Some(v1::DeviceSelector {
                        device_ids: vec![device.clone()],
                        ..v1::DeviceSelector::default()
                    }),
                    metric: metric.clone(),
                    start_unix_ms: fleet.start_ms,
                    end_unix_ms: fleet.start_ms + 3_600_000,
                    step_ms: 60_000,
                    aggregation: v1::Aggregation::Avg as i32,
                    across: 0,
                })
                .await
                .expect("QuerySeries")
                .into_inner();
            let s = &a.series[0];
            let want: Vec<(i64, f64)> = s
                .times_unix_ms
                .iter()
                .copied()
                .zip(s.values.iter().copied())
                .collect();
            assert_eq!(got, &want, "{}: {device} {metric}", who.name);
        }
        assert_eq!(rows.len(), want.len(), "{}: every series once", who.name);

        // Outside the scope: an unknown device, and no rows for a metric.
        for id in super::DEVICES.iter().map(|d| d.0).filter(|d| !who.sees(d)) {
            let mut r = request(&fleet, v1::ExportFormat::Csv, 0);
            r.devices = Some(v1::DeviceSelector {
                device_ids: vec![id.into()],
                ..v1::DeviceSelector::default()
            });
            let status = export(&mut c, r).await.expect_err("NOT_FOUND");
            assert_eq!(
                (status.code(), status.message()),
                (Code::NotFound, format!("device {id:?} not found").as_str())
            );
        }
        let mut r = request(&fleet, v1::ExportFormat::Csv, 0);
        r.metrics = vec!["temperature_c".into()];
        let file = export(&mut c, r).await.expect("ExportSeries of one metric");
        let (_, rows) = parse_csv(who, std::str::from_utf8(&file).expect("UTF-8"));
        assert_eq!(
            rows.is_empty(),
            !who.sees_metric("temperature_c"),
            "{}",
            who.name
        );
    }

    // The command line writes what the RPC streams.
    let mut university = fleet.query(2).await;
    let mut r = request(&fleet, v1::ExportFormat::Csv, 0);
    r.devices = Some(v1::DeviceSelector {
        district: "north".into(),
        ..v1::DeviceSelector::default()
    });
    let rpc = export(&mut university, r).await.expect("ExportSeries");
    let out = dir.path().join("north.csv");
    let from = rfc3339(fleet.start_ms);
    let to = rfc3339(fleet.start_ms + 3_600_000);
    let cli = Command::new(binary())
        .args([
            "export",
            "--grpc",
            &fleet.citytel.grpc.to_string(),
            "--district",
            "north",
        ])
        .args(["--from", &from, "--to", &to, "--format", "csv", "--out"])
        .arg(&out)
        .env("CITYTEL_API_KEY", &fleet.who[2].key)
        .output()
        .expect("citytel export");
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(std::fs::read(&out).expect("the file"), rpc);
    let (_, rows) = parse_csv(&fleet.who[2], std::str::from_utf8(&rpc).expect("UTF-8"));
    let devices: Vec<&str> = rows.keys().map(|(d, _)| d.as_str()).collect();
    assert!(devices.iter().all(|d| matches!(*d, "sen-n1" | "sen-n2")) && !devices.is_empty());
    fleet.citytel.stop();
}

fn rfc3339(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

/// Reads a Parquet file with pyarrow and prints its rows, schema and key-value metadata as JSON.
const READ_PARQUET: &str = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
file_meta = pq.read_metadata(sys.argv[1]).metadata or {}
meta = {k.decode(): v.decode() for k, v in file_meta.items() if not k.startswith(b"ARROW")}
assert {k: v for k, v in (t.schema.metadata or {}).items()} == {k: v for k, v in file_meta.items() if not k.startswith(b"ARROW")}
rows = t.to_pydict()
rows["time"] = [int(x.timestamp() * 1000) for x in rows["time"]]
print(json.dumps({"schema": {f.name: str(f.type) for f in t.schema}, "metadata": meta, "rows": rows}))
"#;

/// Makes sure pyarrow can be imported, installing it with pip if needed.
fn pyarrow() {
    let has = |py: &str| {
        Command::new("python3")
            .args(["-c", py])
            .status()
            .is_ok_and(|s| s.success())
    };
    if has("import pyarrow.parquet") {
        return;
    }
    let install = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "pyarrow",
        ])
        .status();
    assert!(
        install.is_ok_and(|s| s.success()) && has("import pyarrow.parquet"),
        "pyarrow is needed: python3 -m pip install pyarrow"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Python and pyarrow: cargo test -p citytel-tests --features interop"
)]
async fn parquet_exports_read_back_with_pyarrow() {
    pyarrow();
    let dir = tempfile::tempdir().expect("temp dir");
    let fleet = Fleet::start(&dir.path().join("data")).await;
    for (i, who) in fleet.who.iter().enumerate() {
        let mut c = fleet.query(i).await;
        let file = dir.path().join(format!("export-{i}.parquet"));
        let from = rfc3339(fleet.start_ms);
        let to = rfc3339(fleet.start_ms + 3_600_000);
        let cli = Command::new(binary())
            .args(["export", "--grpc", &fleet.citytel.grpc.to_string()])
            .args(["--from", &from, "--to", &to, "--format", "parquet", "--out"])
            .arg(&file)
            .env("CITYTEL_API_KEY", &who.key)
            .output()
            .expect("citytel export");
        assert!(
            cli.status.success(),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        let read = Command::new("python3")
            .args(["-c", READ_PARQUET])
            .arg(&file)
            .output()
            .expect("python3");
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&read.stdout).expect("JSON");
        assert_eq!(json["schema"]["time"], "timestamp[ms, tz=UTC]");
        assert_eq!(json["schema"]["value"], "double");
        let licence = [
            None,
            Some("FibreCo internal use only"),
            Some("CC BY 4.0, City University"),
        ][i];
        assert_eq!(
            json["metadata"]["licence"].as_str(),
            licence,
            "{}",
            who.name
        );
        let col = |name: &str| json["rows"][name].as_array().expect("column").clone();
        let (devices, metrics, units) = (col("device_id"), col("metric"), col("unit"));
        let (ms, time, values) = (col("time_unix_ms"), col("time"), col("value"));
        let mut rows = Rows::new();
        for r in 0..devices.len() {
            let (d, m) = (
                devices[r].as_str().expect("text"),
                metrics[r].as_str().expect("text"),
            );
            who.check("Parquet export", [d], [m]);
            assert_eq!(units[r].as_str(), Some(unit(place(d).1, m)));
            assert_eq!(ms[r], time[r], "time is time_unix_ms");
            rows.entry((d.to_string(), m.to_string()))
                .or_default()
                .push((
                    ms[r].as_i64().expect("ms"),
                    values[r].as_f64().expect("value"),
                ));
        }
        assert_eq!(
            rows,
            ranges(&fleet, who, &mut c).await,
            "{}: QueryRange's points",
            who.name
        );
    }
    fleet.citytel.stop();
}
