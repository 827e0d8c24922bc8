//! Fault test: a device replays its stream. The same QoS 1 PUBLISHes are sent again with the DUP
//! flag set, twice, then once more after a restart of citytel, and finally with the same
//! (device, boot, seq) but different values: every replay is acknowledged and changes no stored
//! value, no reading count and no latest value, because readings are deduplicated on
//! (device, boot, seq), persistently. Over MQTT 3.1.1 and over MQTT 5.

use std::collections::BTreeMap;

use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::{GetLatestRequest, GetLatestResponse};
use citytel_tests::process::Citytel;
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{
    batch_payload, dead_letters, now_ms, points, readings_total, telemetry_topic,
};
use tonic::transport::Channel;

const DEVICES: [&str; 2] = ["cab-0001", "cab-0002"];
const METRICS: [&str; 3] = ["temperature_c", "humidity_pct", "power_w"];
const MESSAGES_PER_DEVICE: u64 = 200;
const READINGS_PER_MESSAGE: u64 = 5;

/// The stream: (topic, payload) in publish order, messages of both devices interleaved.
fn stream(start_ms: i64, offset: f64) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for m in 0..MESSAGES_PER_DEVICE {
        for (d, device) in DEVICES.iter().enumerate() {
            let readings: Vec<(u64, i64, Vec<f64>)> = (0..READINGS_PER_MESSAGE)
                .map(|r| {
                    let seq = m * READINGS_PER_MESSAGE + r + 1;
                    let value = seq as f64 * 0.25 + d as f64 + offset;
                    (
                        seq,
                        start_ms + seq as i64 * 10,
                        vec![value, value + 1.0, value + 2.0],
                    )
                })
                .collect();
            out.push((
                telemetry_topic(device),
                batch_payload(device, 77 + d as u64, &METRICS, &readings),
            ));
        }
    }
    out
}

/// Publishes the stream on one connection in `version` with packet ids 1.., waiting for every
/// PUBACK (a successful one, in MQTT 5).
async fn publish(citytel: &Citytel, version: Version, stream: &[(String, Vec<u8>)], dup: bool) {
    let addr = citytel.mqtt.expect("endpoint");
    let mut client = RawClient::connect_version(addr, "replaying-device", version).await;
    for (i, (topic, payload)) in stream.iter().enumerate() {
        let pkid = i as u16 + 1;
        client.publish(topic, payload.clone(), pkid, dup).await;
        client.expect_puback(pkid).await;
    }
}

/// Everything the replays must not change.
#[derive(Debug, PartialEq)]
struct Stored {
    totals: Vec<u64>,
    points: Vec<BTreeMap<i64, u64>>,
    latest: Vec<GetLatestResponse>,
    dead_letters: BTreeMap<String, u64>,
}

async fn stored(client: &mut QueryServiceClient<Channel>) -> Stored {
    let mut s = Stored {
        totals: Vec::new(),
        points: Vec::new(),
        latest: Vec::new(),
        dead_letters: dead_letters(client, "")
            .await
            .counts_by_reason
            .into_iter()
            .collect(),
    };
    for device in DEVICES {
        s.totals.push(readings_total(client, device).await);
        for metric in METRICS {
            s.points.push(points(client, device, metric).await);
        }
        s.latest.push(
            client
                .get_latest(GetLatestRequest {
                    device_id: device.to_string(),
                })
                .await
                .expect("GetLatest")
                .into_inner(),
        );
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_stream_with_dup_changes_nothing_over_mqtt311() {
    replaying_a_stream_with_dup_changes_nothing(Version::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_stream_with_dup_changes_nothing_over_mqtt5() {
    replaying_a_stream_with_dup_changes_nothing(Version::V5).await;
}

async fn replaying_a_stream_with_dup_changes_nothing(version: Version) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let citytel = Citytel::start(dir.path(), &[]);
    let start_ms = now_ms() - 3_600_000;
    let original = stream(start_ms, 0.0);
    publish(&citytel, version, &original, false).await;

    let mut client = citytel.client().await;
    let first = stored(&mut client).await;
    let per_device = MESSAGES_PER_DEVICE * READINGS_PER_MESSAGE;
    assert_eq!(first.totals, [per_device, per_device]);
    for series in &first.points {
        assert_eq!(series.len() as u64, per_device);
    }
    assert!(first.dead_letters.is_empty(), "{:?}", first.dead_letters);

    // The same stream twice more, as redeliveries (DUP set).
    publish(&citytel, version, &original, true).await;
    assert_eq!(stored(&mut client).await, first, "after the first replay");
    publish(&citytel, version, &original, true).await;
    assert_eq!(stored(&mut client).await, first, "after the second replay");

    // Deduplication is persistent: a restart does not forget what was seen.
    assert!(citytel.stop().success());
    let citytel = Citytel::start(dir.path(), &[]);
    let mut client = citytel.client().await;
    assert_eq!(stored(&mut client).await, first, "after a restart");
    publish(&citytel, version, &original, true).await;
    assert_eq!(
        stored(&mut client).await,
        first,
        "after a replay following a restart"
    );

    // Identity, not content, decides: the same (device, boot, seq) with other values is a
    // duplicate too, and the first value stays.
    publish(&citytel, version, &stream(start_ms, 1000.0), true).await;
    assert_eq!(
        stored(&mut client).await,
        first,
        "after a replay with other values"
    );
    assert!(citytel.stop().success());
}
