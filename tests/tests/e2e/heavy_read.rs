//! A heavy read never holds up ingest. With the read-pause debug option, a `ListAvailability`
//! over the fleet copies what it needs and then stops, mid-computation, until the test lets it go;
//! meanwhile a device's messages are committed and acknowledged one after another. If the read
//! computed under the state lock (as it once did), the writer could not apply anything while it
//! is stopped, and no PUBACK would come.

use std::path::PathBuf;
use std::time::Duration;

use citytel_proto::v1::{self, status};
use citytel_testkit::wait::Wait;
use citytel_tests::process::Citytel;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::now_ms;
use prost::Message as _;

/// Devices registered before the read.
const DEVICES: u32 = 50;
/// Messages that must be acknowledged while the read is stopped.
const ACKS_DURING_READ: u16 = 20;

fn birth(device: &str) -> (String, Vec<u8>) {
    let status = v1::Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: now_ms(),
        gateway_id: None,
        kind: Some(status::Kind::Birth(v1::Birth {
            firmware_version: "1.0".into(),
            reporting_interval_ms: 60_000,
            ..Default::default()
        })),
    };
    let topic = format!("citytel/v1/site-1/sensor/{device}/status");
    (topic, status.encode_to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubacks_keep_coming_while_a_heavy_read_is_computed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pause = dir.path().join("pause-reads");
    let paused = PathBuf::from(format!("{}.paused", pause.display()));
    let citytel = Citytel::start_with_env(
        &dir.path().join("data"),
        &[],
        &[("CITYTEL_DEBUG_READ_PAUSE_FILE", &pause)],
    );
    let addr = citytel.mqtt.expect("the device endpoint runs");
    let mut device = RawClient::connect(addr, "s-000").await;
    for i in 0..DEVICES {
        let (topic, payload) = birth(&format!("s-{i:03}"));
        device
            .publish_acked(&topic, payload, u16::try_from(i + 1).expect("fits"))
            .await;
    }

    // The read starts, copies the fleet's history and stops in the middle of its computation.
    std::fs::write(&pause, b"").expect("pause file");
    let mut client = citytel.client().await;
    let now = now_ms();
    let read = tokio::spawn(async move {
        client
            .list_availability(v1::ListAvailabilityRequest {
                devices: Some(v1::DeviceSelector::default()),
                windows: vec![v1::Window {
                    start_unix_ms: now - 3_600_000,
                    end_unix_ms: now,
                }],
            })
            .await
            .map(|answer| answer.into_inner().devices.len())
    });
    let mut wait = Wait::new("the read to stop at its pause", Duration::from_secs(20));
    while !paused.exists() {
        wait.retry().await.expect("the read stops at its pause");
    }

    // Ingest goes on: every message is committed, applied and acknowledged meanwhile.
    let (topic, payload) = birth("s-000");
    for pkid in 1..=ACKS_DURING_READ {
        let acked = tokio::time::timeout(
            Duration::from_secs(10),
            device.publish_acked(&topic, payload.clone(), pkid),
        )
        .await;
        assert!(
            acked.is_ok(),
            "no PUBACK for message {pkid} while the read is stopped: the read holds up the writer"
        );
    }
    assert!(!read.is_finished(), "the read is still stopped");

    std::fs::remove_file(&pause).expect("release the read");
    let devices = read.await.expect("read task").expect("the read answers");
    assert_eq!(devices, DEVICES as usize, "every device in the answer");
    citytel.stop();
}
