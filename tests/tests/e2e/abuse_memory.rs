//! Abuse: input meant to make citytel's memory grow. A client that floods PINGREQ without ever
//! reading the answers is disconnected with memory bounded; 400 oversize messages of 1 MiB are
//! acknowledged and dead-lettered with their first 64 KiB only, so memory, `ListDeadLetters`
//! and the data directory stay small, also after a restart (over MQTT 3.1.1 and over MQTT 5,
//! whose PUBACKs say 0x99 "dead-lettered as oversize"). These are bound checks, not speed
//! checks: the figures are printed.

use std::time::Duration;

use citytel_testkit::mqtt::PacketReader;
use citytel_tests::process::Citytel;
use citytel_tests::publisher::Version;
use citytel_tests::raw_mqtt::{self, RawClient};
use citytel_tests::wire::{dead_letters, telemetry_topic};
use rumqttc::mqttbytes::v4::Connect;
use rumqttc::v5::mqttbytes::v5::PubAckReason;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How much resident memory may grow over the baseline.
const RSS_GROWTH_LIMIT: u64 = 64 << 20;
/// Bytes of PINGREQ sent by the flood (unless citytel closes the connection first).
const FLOOD_BYTES: usize = 9 << 20;
/// Oversize messages and their size.
const OVERSIZE: u16 = 400;
const OVERSIZE_BYTES: usize = 1 << 20;
/// What a dead letter keeps of its payload, by default.
const KEPT_BYTES: usize = 64 * 1024;

/// Bytes a directory tree takes on disk (allocated blocks: the store preallocates sparse files).
fn dir_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.blocks() * 512),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pingreq_flood_that_never_reads_is_disconnected_with_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let citytel = Citytel::start(dir.path(), &[]);
    let addr = citytel.mqtt.expect("endpoint");
    citytel.wait_serving().await;
    let baseline = citytel.rss_bytes();

    let stream = TcpStream::connect(addr).await.unwrap();
    let mut conn = PacketReader::new(stream);
    let mut connect = Connect::new("flooder");
    connect.keep_alive = 60;
    citytel_testkit::mqtt::connect(&mut conn, connect)
        .await
        .expect("CONNECT");
    let (stream, _) = conn.into_parts();
    let (_read_half, mut write_half) = stream.into_split();
    // Never read: the PINGRESPs back up. Write until citytel closes the connection.
    let chunk = [0xc0u8, 0x00].repeat(32 * 1024);
    let mut sent = 0usize;
    let mut peak = baseline;
    let closed = loop {
        if sent >= FLOOD_BYTES * 4 {
            break false;
        }
        match tokio::time::timeout(Duration::from_secs(60), write_half.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
        if sent.is_multiple_of(1 << 20) {
            peak = peak.max(citytel.rss_bytes());
        }
    };
    let after = citytel.rss_bytes();
    peak = peak.max(after);
    println!(
        "pingreq flood: {sent} bytes sent before the close; rss {baseline} -> peak {peak}, {after} after"
    );
    assert!(
        closed,
        "citytel closed the connection of a client that does not read"
    );
    assert!(
        peak < baseline + RSS_GROWTH_LIMIT,
        "memory grew from {baseline} to {peak} bytes"
    );
    citytel.wait_serving().await;
    assert!(citytel.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_acked_and_dead_lettered_with_their_first_bytes_only_over_mqtt311() {
    oversize_messages_are_acked_and_dead_lettered_with_their_first_bytes_only(Version::V311).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_messages_are_acked_and_dead_lettered_with_their_first_bytes_only_over_mqtt5() {
    oversize_messages_are_acked_and_dead_lettered_with_their_first_bytes_only(Version::V5).await;
}

async fn oversize_messages_are_acked_and_dead_lettered_with_their_first_bytes_only(
    version: Version,
) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let citytel = Citytel::start(dir.path(), &[]);
    let addr = citytel.mqtt.expect("endpoint");
    citytel.wait_serving().await;
    let baseline = citytel.rss_bytes();

    // 1 MiB payloads: the packet is over endpoint.max_packet_bytes (1 MiB), so citytel reads
    // past it; each is acknowledged all the same, so a device stops resending it.
    let mut device = RawClient::connect_version(addr, "big-sender", version).await;
    let topic = telemetry_topic("cab-0001");
    let mut peak = baseline;
    let payload: Vec<u8> = (0..OVERSIZE_BYTES).map(|i| (i % 251) as u8).collect();
    for pkid in 1..=OVERSIZE {
        device
            .send_raw(&raw_mqtt::publish_bytes(version, &topic, &payload, pkid))
            .await;
        let ack = tokio::time::timeout(Duration::from_secs(30), device.next_ack())
            .await
            .unwrap_or_else(|_| panic!("no PUBACK for oversize message {pkid}"));
        assert_eq!(ack.pkid, pkid, "PUBACKs come in order");
        if version == Version::V5 {
            assert_eq!(ack.reason, Some(PubAckReason::PayloadFormatInvalid));
            let why = ack.reason_string.as_deref();
            assert_eq!(why, Some("dead-lettered as oversize"), "{ack:?}");
        }
        if pkid % 50 == 0 {
            peak = peak.max(citytel.rss_bytes());
        }
    }
    let after = citytel.rss_bytes();
    peak = peak.max(after);

    let mut client = citytel.client().await;
    let listed = dead_letters(&mut client, "oversize").await;
    assert_eq!(
        listed.counts_by_reason.get("oversize"),
        Some(&u64::from(OVERSIZE))
    );
    assert!(!listed.dead_letters.is_empty());
    for letter in &listed.dead_letters {
        assert!(
            letter.payload.len() <= KEPT_BYTES,
            "{}",
            letter.payload.len()
        );
        assert_eq!(letter.topic, topic);
        assert!(letter.detail.len() <= 1024);
    }
    let expected: Vec<u8> = (0..KEPT_BYTES).map(|i| (i % 251) as u8).collect();
    assert_eq!(listed.dead_letters[0].payload, expected, "the first bytes");
    println!(
        "{version:?}: {OVERSIZE} oversize messages of {OVERSIZE_BYTES} bytes: rss {baseline} -> peak {peak}, {after} after; ListDeadLetters gave {} letters",
        listed.dead_letters.len()
    );
    assert!(
        peak < baseline + RSS_GROWTH_LIMIT,
        "memory grew from {baseline} to {peak} bytes"
    );

    // After a restart: what the data directory holds is the capped letters, not 400 MiB.
    drop(device);
    assert!(citytel.stop().success());
    let on_disk = dir_bytes(dir.path());
    println!("data directory after the oversize messages: {on_disk} bytes");
    assert!(on_disk < 64 << 20, "{on_disk} bytes on disk");
    let citytel = Citytel::start(dir.path(), &[]);
    citytel.wait_serving().await;
    let reloaded = citytel.rss_bytes();
    println!("rss after the restart: {reloaded}");
    let mut client = citytel.client().await;
    let again = dead_letters(&mut client, "oversize").await;
    assert_eq!(again.dead_letters, listed.dead_letters);
    assert!(citytel.stop().success());
}
