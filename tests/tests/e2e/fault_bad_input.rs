//! Fault test: the bad-input matrix, over MQTT 3.1.1 and over MQTT 5. A raw MQTT client sends one
//! message for every reason citytel refuses input; each is acknowledged, lands in the dead-letter
//! store with its reason, topic and payload, and is counted (in `ListDeadLetters` and on the
//! Prometheus endpoint), while a well-behaved device on another connection keeps publishing and
//! every one of its readings is stored. The counts survive a restart. Over MQTT 5 each PUBACK
//! also says why, with the reason code and reason string of the device documentation, and the
//! user properties sent with a refused message are kept in its dead letter.

use citytel_proto::v1::Status;
use citytel_testkit::metrics::Scrape;
use citytel_tests::process::Citytel;
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{
    batch_payload, dead_letters, now_ms, points, readings_total, status_topic, telemetry_topic,
};
use prost::Message as _;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, Publish, PublishProperties};

const GOOD: &str = "cab-0001";
const BAD: &str = "cab-0666";
const GOOD_METRICS: [&str; 2] = ["temperature_c", "humidity_pct"];

/// One bad message per reason: (reason, topic, payload).
fn bad_messages(now: i64) -> Vec<(&'static str, String, Vec<u8>)> {
    let topic = telemetry_topic(BAD);
    let one =
        |time: i64, value: f64| batch_payload(BAD, 9, &["power_w"], &[(1, time, vec![value])]);
    let many_metrics: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    let many_refs: Vec<&str> = many_metrics.iter().map(String::as_str).collect();
    let mut unknown_status = Status {
        device_id: BAD.into(),
        boot_id: 9,
        time_unix_ms: now,
        gateway_id: None,
        kind: None,
    }
    .encode_to_vec();
    // Field 20, as newer firmware might send: a status type this version does not know.
    unknown_status.extend_from_slice(&[0xa2, 0x01, 0x00]);
    let mut oversize_values = vec![1.0; 600];
    oversize_values[0] = 2.0;
    let oversize_names: Vec<String> = (0..600).map(|i| format!("v{i}")).collect();
    let oversize_refs: Vec<&str> = oversize_names.iter().map(String::as_str).collect();
    vec![
        ("malformed", topic.clone(), vec![0xff, 0xff, 0xff]),
        ("empty_payload", topic.clone(), Vec::new()),
        (
            "device_mismatch",
            topic.clone(),
            batch_payload("cab-0777", 9, &["power_w"], &[(1, now, vec![1.0])]),
        ),
        (
            "unknown_topic",
            format!("sensors/{BAD}/data"),
            one(now, 1.0),
        ),
        (
            "oversize",
            topic.clone(),
            batch_payload(BAD, 9, &oversize_refs, &[(1, now, oversize_values)]),
        ),
        ("non_finite_value", topic.clone(), one(now, f64::NAN)),
        (
            "timestamp_in_future",
            topic.clone(),
            one(now + 3_600_000, 1.0),
        ),
        (
            "timestamp_too_old",
            topic.clone(),
            one(now - 40 * 86_400_000, 1.0),
        ),
        (
            "too_many_series",
            topic.clone(),
            batch_payload(BAD, 9, &many_refs, &[(1, now, vec![1.0; 10])]),
        ),
        ("unknown_status_type", status_topic(BAD), unknown_status),
        (
            "invalid_field",
            topic,
            batch_payload(BAD, 9, &["power_w"], &[]),
        ),
    ]
}

/// The MQTT 5 PUBACK reason code of a message dead-lettered for `reason`, as docs/devices.md
/// lists them.
fn v5_reason(reason: &str) -> PubAckReason {
    match reason {
        "unknown_topic" => PubAckReason::TopicNameInvalid, // 0x90
        "too_many_series" => PubAckReason::QuotaExceeded,  // 0x97
        _ => PubAckReason::PayloadFormatInvalid,           // 0x99
    }
}

/// The user property every bad message carries over MQTT 5, and how its dead letter's detail
/// shows it.
const USER_PROPERTY: (&str, &str) = ("firmware", "4.2.0-rc1");
const USER_PROPERTY_DETAIL: &str = r#"MQTT 5 user properties: "firmware"="4.2.0-rc1""#;

/// Sends the bad message (over MQTT 5 with [`USER_PROPERTY`]) and checks its acknowledgement:
/// a plain PUBACK in 3.1.1, in 5 the reason code and `dead-lettered as <reason>`.
async fn publish_bad(bad: &mut RawClient, reason: &str, topic: &str, payload: &[u8], pkid: u16) {
    match bad.version() {
        Version::V311 => bad.publish(topic, payload.to_vec(), pkid, false).await,
        Version::V5 => {
            let (name, value) = USER_PROPERTY;
            let properties = PublishProperties {
                user_properties: vec![(name.into(), value.into())],
                ..PublishProperties::default()
            };
            let qos = rumqttc::v5::mqttbytes::QoS::AtLeastOnce;
            let mut publish = Publish::new(topic, qos, payload.to_vec(), Some(properties));
            publish.pkid = pkid;
            bad.send5(&rumqttc::v5::mqttbytes::v5::Packet::Publish(publish))
                .await;
        }
    }
    let ack = bad.next_ack().await;
    assert_eq!(ack.pkid, pkid, "{reason}: PUBACKs come in order");
    match bad.version() {
        Version::V311 => assert_eq!((ack.reason, ack.reason_string), (None, None)),
        Version::V5 => {
            assert_eq!(ack.reason, Some(v5_reason(reason)), "{reason}: reason code");
            assert_eq!(
                ack.reason_string.as_deref(),
                Some(format!("dead-lettered as {reason}").as_str()),
                "{reason}: reason string"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reject_reason_is_dead_lettered_counted_and_good_traffic_continues_over_mqtt311() {
    every_reject_reason_is_dead_lettered_counted_and_good_traffic_continues(Version::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reject_reason_is_dead_lettered_counted_and_good_traffic_continues_over_mqtt5() {
    every_reject_reason_is_dead_lettered_counted_and_good_traffic_continues(Version::V5).await;
}

async fn every_reject_reason_is_dead_lettered_counted_and_good_traffic_continues(version: Version) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let args = [
        "--set",
        "ingest.max_payload_bytes=4096",
        "--set",
        "ingest.max_series=8",
    ];
    let citytel = Citytel::start(dir.path(), &args);
    let addr = citytel.mqtt.expect("device endpoint");
    let mut good = RawClient::connect_version(addr, "good-device", version).await;
    let mut bad = RawClient::connect_version(addr, "bad-client", version).await;

    let now = now_ms();
    let messages = bad_messages(now);
    let mut good_readings = Vec::new();
    for (i, (reason, topic, payload)) in messages.iter().enumerate() {
        // A good reading before each bad message, and the bad message itself: both acknowledged.
        let seq = i as u64 + 1;
        let reading = (
            seq,
            now - 60_000 + seq as i64,
            vec![20.0 + seq as f64, 50.0],
        );
        let pkid = (i as u16) + 1;
        good.publish_acked(
            &telemetry_topic(GOOD),
            batch_payload(GOOD, 1, &GOOD_METRICS, std::slice::from_ref(&reading)),
            pkid,
        )
        .await;
        good_readings.push(reading);
        publish_bad(&mut bad, reason, topic, payload, pkid).await;
    }

    let mut client = citytel.client().await;
    let all = dead_letters(&mut client, "").await;
    assert_eq!(all.dead_letters.len(), messages.len(), "{all:?}");
    for (reason, topic, payload) in &messages {
        assert_eq!(
            all.counts_by_reason.get(*reason),
            Some(&1),
            "count of {reason}: {:?}",
            all.counts_by_reason
        );
        let listed = dead_letters(&mut client, reason).await.dead_letters;
        assert_eq!(listed.len(), 1, "{reason}: {listed:?}");
        let letter = &listed[0];
        assert_eq!(letter.reason, *reason);
        assert_eq!(&letter.topic, topic, "{reason}");
        assert_eq!(letter.payload, *payload, "{reason}: payload kept");
        assert!(!letter.detail.is_empty(), "{reason}: detail");
        assert_eq!(
            letter.detail.contains(USER_PROPERTY_DETAIL),
            version == Version::V5,
            "{reason}: user properties in the detail: {}",
            letter.detail
        );
        assert!(letter.received_at_unix_ms >= now, "{reason}: receive time");
    }
    assert_eq!(all.counts_by_reason.len(), messages.len());

    // The Prometheus counters moved by exactly one per reason.
    let scrape = Scrape::fetch(citytel.metrics.as_deref().expect("metrics endpoint")).await;
    for (reason, _, _) in &messages {
        assert_eq!(
            scrape.value(&format!(
                "citytel_messages_rejected_total{{reason=\"{reason}\"}}"
            )),
            1.0,
            "rejected counter of {reason}"
        );
    }
    assert_eq!(
        scrape.sum("citytel_messages_rejected_total"),
        messages.len() as f64
    );

    // The good device: every reading stored, bit for bit; the refused device stored nothing.
    let expect_good = |metric: usize| {
        good_readings
            .iter()
            .map(|(_, t, v)| (*t, v[metric].to_bits()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        readings_total(&mut client, GOOD).await,
        messages.len() as u64
    );
    for (i, metric) in GOOD_METRICS.iter().enumerate() {
        assert_eq!(points(&mut client, GOOD, metric).await, expect_good(i));
    }
    assert_eq!(readings_total(&mut client, BAD).await, 0);

    // The dead letters and their counts are durable.
    drop((good, bad));
    assert!(citytel.stop().success());
    let citytel = Citytel::start(dir.path(), &args);
    let mut client = citytel.client().await;
    let after = dead_letters(&mut client, "").await;
    assert_eq!(after.counts_by_reason, all.counts_by_reason);
    assert_eq!(after.dead_letters, all.dead_letters);
    assert_eq!(
        readings_total(&mut client, GOOD).await,
        messages.len() as u64
    );
    assert!(citytel.stop().success());
}
