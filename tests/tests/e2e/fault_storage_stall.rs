//! Fault test: storage stalls. With the WAL writer paused (the `CITYTEL_DEBUG_WAL_PAUSE_FILE`
//! debug option: nothing is committed while the file exists), a device floods citytel's endpoint.
//! citytel must acknowledge nothing, stop reading once its in-flight byte budget is used (the
//! device's socket backs up instead of citytel's memory), keep its memory bounded, and store and
//! acknowledge everything, in order, once storage resumes. Over MQTT 3.1.1 and over MQTT 5 (with
//! a Receive Maximum above the flood, so a device may have it all in flight).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use citytel_tests::process::Citytel;
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::{self, RawClient};
use citytel_tests::wire::{batch_payload, now_ms, points, readings_total, telemetry_topic};
use rumqttc::v5::mqttbytes::v5::PubAckReason;
use tokio::io::AsyncWriteExt as _;

const DEVICE: &str = "cab-0001";
const METRICS: [&str; 2] = ["temperature_c", "humidity_pct"];
/// Messages sent during the stall, and readings in each (about 2.7 KB per message, 40 MB in all:
/// far more than the budget and the socket buffers).
const MESSAGES: u64 = 15_000;
const READINGS_PER_MESSAGE: u64 = 100;
/// The in-flight budget citytel runs with.
const BUDGET_BYTES: u64 = 1 << 20;
/// How much citytel's resident memory may grow during the stall: the budget, socket and parse
/// buffers and allocator slack; a citytel that kept reading would grow by the 40 MB sent.
const RSS_GROWTH_LIMIT: u64 = 24 << 20;

fn message(i: u64, start_ms: i64) -> Vec<u8> {
    let readings: Vec<(u64, i64, Vec<f64>)> = (0..READINGS_PER_MESSAGE)
        .map(|r| {
            let seq = i * READINGS_PER_MESSAGE + r + 1;
            (seq, start_ms + seq as i64, vec![seq as f64, -(seq as f64)])
        })
        .collect();
    batch_payload(DEVICE, 5, &METRICS, &readings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_wal_acks_nothing_bounds_memory_and_loses_nothing_over_mqtt311() {
    a_stalled_wal_acks_nothing_bounds_memory_and_loses_nothing(Version::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_wal_acks_nothing_bounds_memory_and_loses_nothing_over_mqtt5() {
    a_stalled_wal_acks_nothing_bounds_memory_and_loses_nothing(Version::V5).await;
}

async fn a_stalled_wal_acks_nothing_bounds_memory_and_loses_nothing(version: Version) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path().join("data");
    let pause = dir.path().join("pause-wal");
    let budget = format!("ingest.max_in_flight_bytes={BUDGET_BYTES}");
    // MQTT 5: every message of the flood may be in flight at once (the most MQTT 5 allows).
    let citytel = Citytel::start_with_env(
        &data,
        &["--set", &budget, "--set", "endpoint.receive_maximum=65535"],
        &[("CITYTEL_DEBUG_WAL_PAUSE_FILE", &pause)],
    );
    let addr = citytel.mqtt.expect("endpoint");
    let start_ms = now_ms() - 3_600_000;
    let topic = telemetry_topic(DEVICE);

    // Before the stall: a message goes through, acknowledged after its commit.
    let mut warmup = RawClient::connect_version(addr, "warmup", version).await;
    warmup.publish_acked(&topic, message(0, start_ms), 1).await;
    drop(warmup);
    let baseline_rss = citytel.rss_bytes();

    std::fs::write(&pause, b"").expect("pause the WAL");
    let client = RawClient::connect_version(addr, "flooding-device", version).await;
    let (mut reader, mut writer) = client.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let sender = {
        let sent = sent.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for i in 1..=MESSAGES {
                let mut out = BytesMut::new();
                let payload = message(i, start_ms).into();
                raw_mqtt::encode_publish(version, &mut out, &topic, payload, i as u16, false);
                writer.write_all(&out).await.expect("write publish");
                sent.store(i, Ordering::Relaxed);
            }
            writer
        })
    };
    let acks = Arc::new(AtomicU64::new(0));
    let receiver = {
        let acks = acks.clone();
        tokio::spawn(async move {
            let mut expected = 1u16;
            while u64::from(expected) <= MESSAGES {
                let ack = reader.next_ack().await.expect("a PUBACK from citytel");
                assert_eq!(ack.pkid, expected, "PUBACKs in publish order");
                if version == Version::V5 {
                    assert_eq!(ack.reason, Some(PubAckReason::Success), "{ack:?}");
                }
                acks.fetch_add(1, Ordering::Relaxed);
                expected += 1;
            }
            reader
        })
    };

    // Wait until the device is blocked: citytel stopped reading, so its sends stop progressing.
    let mut last = u64::MAX;
    let mut still = 0;
    while still < 10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sent.load(Ordering::Relaxed);
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    let blocked_at = sent.load(Ordering::Relaxed);
    assert!(
        blocked_at < MESSAGES,
        "citytel kept reading while storage was stalled ({blocked_at} of {MESSAGES} sent)"
    );
    assert_eq!(
        acks.load(Ordering::Relaxed),
        0,
        "nothing acked during the stall"
    );
    let stalled_rss = citytel.rss_bytes();
    assert!(
        stalled_rss < baseline_rss + RSS_GROWTH_LIMIT,
        "memory grew from {baseline_rss} to {stalled_rss} bytes during the stall"
    );
    let mut grpc = citytel.client().await;
    assert_eq!(
        readings_total(&mut grpc, DEVICE).await,
        READINGS_PER_MESSAGE,
        "nothing stored during the stall"
    );

    // Storage resumes: everything is stored and acknowledged.
    std::fs::remove_file(&pause).expect("resume the WAL");
    let _writer = sender.await.expect("sender");
    let _reader = receiver.await.expect("receiver");
    assert_eq!(acks.load(Ordering::Relaxed), MESSAGES);
    let total = (MESSAGES + 1) * READINGS_PER_MESSAGE;
    assert_eq!(readings_total(&mut grpc, DEVICE).await, total);
    let stored = points(&mut grpc, DEVICE, METRICS[0]).await;
    assert_eq!(stored.len() as u64, total);
    for (seq, (time, value)) in (1..).zip(&stored) {
        assert_eq!(*time, start_ms + seq as i64);
        assert_eq!(f64::from_bits(*value), seq as f64);
    }
    println!(
        "stall ({version:?}): device blocked after {blocked_at} of {MESSAGES} messages; rss {baseline_rss} -> {stalled_rss} bytes"
    );
    assert!(citytel.stop().success());
}
