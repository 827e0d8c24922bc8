//! The attribute limits: a device's attributes statuses are kept (newest per name) until one
//! would bring it beyond `ingest.max_attributes_per_device`; that one is acknowledged,
//! dead-lettered as `too_many_attributes` and counted, and the device's attributes stay as they
//! were, while new values of the names it has still replace theirs. `citytel devices show`
//! prints what is kept.

use citytel_proto::v1::{self, Status, status};
use citytel_testkit::metrics::Scrape;
use std::process::Command;

use citytel_tests::process::{Citytel, binary};
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{dead_letters, now_ms, status_topic};
use prost::Message as _;

/// An attributes status of `device` with `values` (name, value), sent at `at`.
fn attributes(device: &str, at: i64, values: &[(&str, &str)]) -> Vec<u8> {
    Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: at,
        gateway_id: None,
        kind: Some(status::Kind::Attributes(v1::Attributes {
            attributes: values
                .iter()
                .map(|(name, value)| v1::Attribute {
                    name: (*name).into(),
                    value: (*value).into(),
                    datatype: String::new(),
                    time_unix_ms: 0,
                })
                .collect(),
        })),
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_beyond_the_limit_are_refused_counted_and_the_kept_ones_stay() {
    let dir = tempfile::tempdir().expect("data directory");
    let citytel = Citytel::start(dir.path(), &["--set", "ingest.max_attributes_per_device=2"]);
    let addr = citytel.mqtt.expect("device endpoint");
    let mut publisher = RawClient::connect(addr, "publisher").await;
    let now = now_ms();
    let topic = status_topic("cab-0001");
    publisher
        .publish_acked(
            &topic,
            attributes("cab-0001", now, &[("mode", "auto"), ("serial", "X1")]),
            1,
        )
        .await;
    // A third name is refused; a new value of a kept name is taken.
    publisher
        .publish_acked(
            &topic,
            attributes("cab-0001", now + 1, &[("owner", "uni")]),
            2,
        )
        .await;
    publisher
        .publish_acked(
            &topic,
            attributes("cab-0001", now + 2, &[("mode", "manual")]),
            3,
        )
        .await;

    let mut client = citytel.client().await;
    let refused = dead_letters(&mut client, "too_many_attributes").await;
    assert_eq!(refused.dead_letters.len(), 1, "{refused:?}");
    assert!(
        refused.dead_letters[0].detail.contains("limit of 2"),
        "the detail says why: {refused:?}"
    );
    let scrape = Scrape::fetch(citytel.metrics.as_deref().expect("metrics endpoint")).await;
    assert_eq!(
        scrape.value("citytel_messages_rejected_total{reason=\"too_many_attributes\"}"),
        1.0
    );
    let device = client
        .get_device(v1::GetDeviceRequest {
            device_id: "cab-0001".into(),
        })
        .await
        .expect("GetDevice answers")
        .into_inner()
        .device
        .expect("the device");
    let kept: Vec<(&str, &str, i64)> = device
        .attributes
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str(), a.time_unix_ms))
        .collect();
    assert_eq!(kept, [("mode", "manual", now + 2), ("serial", "X1", now)]);

    // The command line's view of the device prints them.
    let out = Command::new(binary())
        .args([
            "devices",
            "show",
            "cab-0001",
            "--grpc",
            &citytel.grpc.to_string(),
        ])
        .output()
        .expect("run citytel devices show");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("device       cab-0001\n"), "{stdout}");
    assert!(stdout.contains("\n  mode    manual  (-, "), "{stdout}");
    assert!(stdout.contains("\n  serial  X1  (-, "), "{stdout}");
    drop(publisher);
    assert!(citytel.stop().success());
}
