//! Locations in the provisioning file, as an operator uses them: `citytel devices add
//! --latitude --longitude` stores a location (shown by `devices list`; half of one or one out of
//! range is refused naming the device), `citytel serve` refuses a hand-edited file with a bad
//! location naming the device and its line, and on the real binary with the simulator's city
//! districts a device whose birth states no location is placed where the file puts it, while
//! one whose birth states a location is placed by its birth (the birth wins).
//!
//! The expected districts come from the simulator's layout (`city::location` of a site dealt to
//! a district), not from citytel's point in polygon.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use citytel_firmware_sim::city;
use citytel_proto::v1::{self, Birth, Status, status};
use citytel_testkit::wait::Wait;
use citytel_tests::fleet;
use citytel_tests::process::{Citytel, binary};
use citytel_tests::publisher::Version;
use citytel_tests::wire::{now_ms, status_topic};
use prost::Message as _;

use crate::devices_cli::{connect, devices, run_devices};

/// `devices add ID` at site-01 with a location; the token it printed.
fn add_at(data_dir: &Path, id: &str, (latitude, longitude): (f64, f64)) -> String {
    let (lat, lon) = (latitude.to_string(), longitude.to_string());
    let out = devices(
        data_dir,
        &[
            "add",
            id,
            "--kind",
            "cabinet",
            "--site",
            "site-01",
            "--latitude",
            &lat,
            "--longitude",
            &lon,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

/// `citytel devices ARGS` that must fail; its standard error.
fn refused(data_dir: &Path, args: &[&str]) -> String {
    let out = run_devices(data_dir, args);
    assert!(!out.status.success(), "citytel devices {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A birth of `id` (a cabinet at site-01), stating `location` or none.
fn birth(id: &str, location: Option<(f64, f64)>) -> Vec<u8> {
    Status {
        device_id: id.into(),
        boot_id: 1,
        time_unix_ms: now_ms(),
        gateway_id: None,
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: "1.0.0".into(),
            reporting_interval_ms: 60_000,
            heartbeat_interval_ms: None,
            children: vec![],
            intermittent: None,
            location: location.map(|(latitude, longitude)| v1::Location {
                latitude,
                longitude,
            }),
        })),
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_location_places_a_device_whose_birth_states_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    let set = fleet::city_districts(dir.path());
    // Both devices are at site-01 (west-end); the file puts them in the harbour.
    let harbour = city::location("cab-p", "site-05");
    let west_end = city::location("cab-q", "site-01");
    assert_eq!(
        (
            city::district_of_site("site-05"),
            city::district_of_site("site-01")
        ),
        ("harbour", "west-end")
    );
    let tokens = [
        ("cab-p", add_at(dir.path(), "cab-p", harbour)),
        ("cab-q", add_at(dir.path(), "cab-q", harbour)),
    ];
    let list = devices(dir.path(), &["list"]);
    let list = String::from_utf8_lossy(&list.stdout);
    let shown = format!("{}, {}", harbour.0, harbour.1);
    assert!(list.contains(&shown), "devices list shows {shown}: {list}");

    // Half a location, or one out of range, is refused naming the device.
    let base = ["add", "cab-x", "--kind", "cabinet", "--site", "site-01"];
    let half = refused(dir.path(), &[&base[..], &["--latitude", "51.5"]].concat());
    assert!(half.contains("--longitude"), "{half}");
    let far = refused(
        dir.path(),
        &[&base[..], &["--latitude", "95", "--longitude", "-0.1"]].concat(),
    );
    assert!(
        far.contains("device \"cab-x\"") && far.contains("latitude 95"),
        "{far}"
    );

    // A hand-edited file with a bad location stops citytel, naming the device and its line.
    let other = tempfile::tempdir().expect("temp dir");
    let file = std::fs::read_to_string(dir.path().join("devices.toml")).expect("the file");
    let bad = format!(
        "{file}\n[[device]]\nid = \"cab-bad\"\nkind = \"cabinet\"\nsite = \"s\"\nlongitude = 2.0\n"
    );
    std::fs::write(other.path().join("devices.toml"), &bad).expect("write");
    let line = bad
        .lines()
        .position(|l| l == "id = \"cab-bad\"")
        .expect("the entry");
    let out = Command::new(binary())
        .arg("serve")
        .arg("--data-dir")
        .arg(other.path())
        .args([
            "--mqtt-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run citytel serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started with {bad}");
    assert!(
        stderr.contains(&format!("device \"cab-bad\" (line {line})"))
            && stderr.contains("give both latitude and longitude"),
        "{stderr}"
    );

    let citytel = Citytel::start(
        dir.path(),
        &["--set", &set, "--set", "endpoint.authentication=true"],
    );
    let addr = citytel.mqtt.expect("endpoint");
    for (i, (id, token)) in tokens.iter().enumerate() {
        let mut conn = connect(addr, Version::V311, id, token)
            .await
            .expect("token accepted");
        // cab-p states no location; cab-q states one in west-end: the birth is acknowledged.
        let location = (*id == "cab-q").then_some(west_end);
        conn.publish_acked(&status_topic(id), birth(id, location), i as u16 + 1)
            .await;
    }

    let mut client = citytel.client().await;
    let mut wait =
        Wait::new("both devices placed", Duration::from_secs(15)).every(Duration::from_millis(100));
    let placed = loop {
        let devices = client
            .list_devices(v1::ListDevicesRequest::default())
            .await
            .expect("ListDevices")
            .into_inner()
            .devices;
        if devices.len() == 2 && devices.iter().all(|d| d.state != 0) {
            break devices;
        }
        wait.retry().await.expect("the births stored");
    };
    let at = |(latitude, longitude)| {
        Some(v1::Location {
            latitude,
            longitude,
        })
    };
    let (p, q) = (&placed[0], &placed[1]);
    assert_eq!(
        (p.device_id.as_str(), p.district.as_str(), &p.location),
        ("cab-p", "harbour", &at(harbour)),
        "no location in its birth: the provisioned one"
    );
    assert_eq!(
        (q.device_id.as_str(), q.district.as_str(), &q.location),
        ("cab-q", "west-end", &at(west_end)),
        "the birth wins"
    );
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
