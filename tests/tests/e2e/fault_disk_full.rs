//! Fault test: the disk fills up. citytel's data directory is on a 16 MiB tmpfs this test mounts
//! (it needs root, as CI has), next to a filler file that leaves a few MiB free. A device
//! publishes until citytel's writes fail with ENOSPC. Then citytel must: acknowledge nothing
//! more, report NOT_SERVING (the query service, and `citytel.storage`) with the reason in
//! `citytel_storage_paused{reason="disk_full"}`, keep answering queries with exactly what it
//! acknowledged, and, once the filler is deleted, store and acknowledge the waiting message by
//! itself and report SERVING again. Nothing acknowledged is lost across a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use citytel_testkit::health::QUERY_SERVICE;
use citytel_testkit::metrics::Scrape;
use citytel_testkit::wait::Wait;
use citytel_tests::process::Citytel;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{batch_payload, now_ms, readings_total, telemetry_topic};
use rumqttc::mqttbytes::v4::Packet;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const DEVICE: &str = "cab-0001";
const METRICS: [&str; 8] = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"];
/// Readings per message (about 16 KB each).
const READINGS: u64 = 200;
/// Free space the filler leaves.
const LEFT_FREE: u64 = 3 << 20;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill it up, which needs root (CI runs as root); \
             `mount -t tmpfs` said: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let stat = nix::sys::statvfs::statvfs(dir).expect("statvfs");
    stat.blocks_available() * stat.fragment_size()
}

fn message(i: u64, start_ms: i64) -> Vec<u8> {
    let readings: Vec<(u64, i64, Vec<f64>)> = (0..READINGS)
        .map(|r| {
            let seq = i * READINGS + r + 1;
            let values = (0..METRICS.len())
                .map(|m| (seq * 10 + m as u64) as f64)
                .collect();
            (seq, start_ms + seq as i64, values)
        })
        .collect();
    batch_payload(DEVICE, 1, &METRICS, &readings)
}

async fn health(citytel: &Citytel, service: &str) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", citytel.grpc))
        .expect("a valid URL")
        .connect()
        .await
        .expect("gRPC connects");
    let request = HealthCheckRequest {
        service: service.into(),
    };
    HealthClient::new(channel)
        .check(request)
        .await
        .expect("health check")
        .into_inner()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_acknowledgements_keeps_queries_and_resumes_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().join("small-disk");
    let _tmpfs = Tmpfs::mount(&mount, "16m");
    let data = mount.join("data");
    let args = [
        // The real ENOSPC is what is tested here, not the early stop before it.
        "--set",
        "storage.min_free_bytes=0",
        "--set",
        "storage.wal_segment_bytes=1048576",
        "--set",
        "storage.checkpoint_interval=\"1h\"",
    ];
    let citytel = Citytel::start(&data, &args);
    citytel.wait_serving().await;
    let filler = mount.join("filler");
    let free = free_bytes(&mount);
    std::fs::write(&filler, vec![0u8; (free - LEFT_FREE) as usize]).expect("write the filler");

    let mut device = RawClient::connect(citytel.mqtt.expect("endpoint"), "device").await;
    let topic = telemetry_topic(DEVICE);
    let start_ms = now_ms() - 3_600_000;
    let mut acked = 0u64;
    let waiting = loop {
        let i = acked;
        let pkid = (i % 60_000) as u16 + 1;
        device
            .publish(&topic, message(i, start_ms), pkid, false)
            .await;
        match device.packet_within(Duration::from_secs(3)).await {
            Some(Packet::PubAck(ack)) => {
                assert_eq!(ack.pkid, pkid);
                acked += 1;
            }
            None => break pkid,
            other => panic!("expected a PUBACK, got {other:?}"),
        }
        assert!(acked < 10_000, "the disk never filled up");
    };
    println!(
        "disk full after {acked} acknowledged messages ({} readings)",
        acked * READINGS
    );
    assert!(acked > 0);

    // Paused: NOT_SERVING with the reason, nothing acknowledged, queries answered.
    let mut wait = Wait::new("NOT_SERVING on a full disk", Duration::from_secs(30));
    while health(&citytel, QUERY_SERVICE).await != ServingStatus::NotServing {
        wait.retry().await.unwrap();
    }
    assert_eq!(
        health(&citytel, "citytel.storage").await,
        ServingStatus::NotServing
    );
    let scrape = Scrape::fetch(citytel.metrics.as_deref().expect("metrics")).await;
    assert_eq!(
        scrape.value("citytel_storage_paused{reason=\"disk_full\"}"),
        1.0
    );
    let mut client = citytel.client().await;
    assert_eq!(readings_total(&mut client, DEVICE).await, acked * READINGS);
    assert_eq!(device.packet_within(Duration::from_secs(2)).await, None);

    // Space returns: the waiting message is stored and acknowledged, and citytel is SERVING.
    std::fs::remove_file(&filler).unwrap();
    match device.packet_within(Duration::from_secs(30)).await {
        Some(Packet::PubAck(ack)) => assert_eq!(ack.pkid, waiting),
        other => panic!("expected the waiting PUBACK, got {other:?}"),
    }
    acked += 1;
    citytel.wait_serving().await;
    for i in acked..acked + 3 {
        device
            .publish_acked(&topic, message(i, start_ms), (i % 60_000) as u16 + 1)
            .await;
    }
    acked += 3;
    assert_eq!(readings_total(&mut client, DEVICE).await, acked * READINGS);

    // Nothing acknowledged is lost across a restart.
    drop(device);
    assert!(citytel.stop().success());
    let citytel = Citytel::start(&data, &args);
    let mut client = citytel.client().await;
    assert_eq!(readings_total(&mut client, DEVICE).await, acked * READINGS);
    assert!(citytel.stop().success());
}
