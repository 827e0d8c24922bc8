//! The device limit: with `ingest.max_devices` devices registered, a message from a further
//! device (telemetry or status) is acknowledged, dead-lettered as `too_many_devices` and counted,
//! and the device is not registered, while the registered devices keep reporting. Over MQTT 3.1.1
//! and over MQTT 5, where the refused messages' PUBACKs say 0x97 quota exceeded, and why.

use citytel_proto::v1::{self, Status, status};
use citytel_testkit::metrics::Scrape;
use citytel_tests::process::Citytel;
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{
    batch_payload, dead_letters, now_ms, readings_total, status_topic, telemetry_topic,
};
use prost::Message as _;
use rumqttc::v5::mqttbytes::v5::PubAckReason;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_beyond_the_limit_are_refused_counted_and_reported_over_mqtt311() {
    devices_beyond_the_limit_are_refused_counted_and_reported(Version::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_beyond_the_limit_are_refused_counted_and_reported_over_mqtt5() {
    devices_beyond_the_limit_are_refused_counted_and_reported(Version::V5).await;
}

async fn devices_beyond_the_limit_are_refused_counted_and_reported(version: Version) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let citytel = Citytel::start(dir.path(), &["--set", "ingest.max_devices=2"]);
    let addr = citytel.mqtt.expect("device endpoint");
    let mut publisher = RawClient::connect_version(addr, "publisher", version).await;
    let now = now_ms();
    let reading = |device: &str, seq: u64| {
        batch_payload(
            device,
            1,
            &["power_w"],
            &[(seq, now + seq as i64, vec![1.0])],
        )
    };
    let mut pkid = 0;
    // Publishes and checks the PUBACK: in MQTT 5, 0x97 with why for a `refused` message.
    let mut send = async |topic: String, payload: Vec<u8>, refused: bool| {
        pkid += 1;
        publisher.publish(&topic, payload, pkid, false).await;
        let ack = publisher.next_ack().await;
        assert_eq!(ack.pkid, pkid, "{topic}");
        let expected = match (version, refused) {
            (Version::V311, _) => (None, None),
            (Version::V5, false) => (Some(PubAckReason::Success), None),
            (Version::V5, true) => (
                Some(PubAckReason::QuotaExceeded),
                Some("dead-lettered as too_many_devices".to_string()),
            ),
        };
        assert_eq!((ack.reason, ack.reason_string), expected, "{topic}");
    };
    send(telemetry_topic("cab-0001"), reading("cab-0001", 1), false).await;
    send(telemetry_topic("cab-0002"), reading("cab-0002", 1), false).await;
    // The third device, by telemetry and by a status message: both acknowledged and refused.
    send(telemetry_topic("cab-0003"), reading("cab-0003", 1), true).await;
    let death = Status {
        device_id: "cab-0003".into(),
        boot_id: 1,
        time_unix_ms: now,
        gateway_id: None,
        kind: Some(status::Kind::Death(v1::Death {
            reason: v1::DeathReason::Reboot as i32,
            at_status_time: false,
        })),
    };
    send(status_topic("cab-0003"), death.encode_to_vec(), true).await;
    // The registered devices go on reporting.
    send(telemetry_topic("cab-0001"), reading("cab-0001", 2), false).await;

    let mut client = citytel.client().await;
    let refused = dead_letters(&mut client, "too_many_devices").await;
    assert_eq!(refused.dead_letters.len(), 2, "{refused:?}");
    assert_eq!(refused.counts_by_reason.get("too_many_devices"), Some(&2));
    for letter in &refused.dead_letters {
        assert!(letter.topic.contains("cab-0003"), "{letter:?}");
        assert!(
            letter.detail.contains("limit of 2 devices"),
            "the detail says why: {letter:?}"
        );
    }
    let scrape = Scrape::fetch(citytel.metrics.as_deref().expect("metrics endpoint")).await;
    assert_eq!(
        scrape.value("citytel_messages_rejected_total{reason=\"too_many_devices\"}"),
        2.0
    );

    let listed = client
        .list_devices(v1::ListDevicesRequest::default())
        .await
        .expect("ListDevices")
        .into_inner();
    let ids: Vec<&str> = listed
        .devices
        .iter()
        .map(|d| d.device_id.as_str())
        .collect();
    assert_eq!(ids, ["cab-0001", "cab-0002"]);
    assert_eq!(listed.total, 2);
    let summary = client
        .get_fleet_summary(v1::GetFleetSummaryRequest::default())
        .await
        .expect("GetFleetSummary")
        .into_inner();
    assert_eq!(summary.all.unwrap_or_default().total, 2);
    assert_eq!(readings_total(&mut client, "cab-0001").await, 2);
    drop(publisher);
    assert!(citytel.stop().success());
}
