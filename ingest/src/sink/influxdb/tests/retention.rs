//! The sink's WAL hold and backlog policies.

use std::sync::atomic::Ordering;

use super::server::{Fault, FaultServer};
use super::*;
use crate::sink::influxdb::BacklogPolicy;
use citytel_storage::wal::{self, tail};

#[tokio::test]
async fn segments_are_kept_until_the_sink_confirmed_them() {
    let server = FaultServer::start().await;
    server.script(&[Fault::Status(503); 40]);
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let expected = append(dir.path(), &fleet(10, 100, 1_700_000_000_000));
    let before = tail::segments(&wal_dir).unwrap();
    assert!(before.len() >= 3, "the data spans several segments");
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    let (letters, _) = dead_letters();
    let sink = start_sink(dir.path(), config, letters);
    // A checkpoint covering everything deletes nothing the sink has not had confirmed.
    assert_eq!(wal::remove_before(&wal_dir, u64::MAX).unwrap(), 0);
    assert_eq!(tail::segments(&wal_dir).unwrap(), before);
    eventually("every line confirmed", || {
        server.confirmed().len() >= expected.len()
    })
    .await;
    sink.shutdown().await.unwrap();
    let removed = wal::remove_before(&wal_dir, u64::MAX).unwrap();
    assert_eq!(
        removed,
        before.len() - 1,
        "all but the segment the cursor is in"
    );
    assert_eq!(sorted(server.confirmed()), sorted(expected));
}

#[tokio::test]
async fn a_backlog_over_the_limit_closes_the_gate_until_it_is_sent() {
    let server = FaultServer::start().await;
    server.script(&[Fault::Status(500); 1000]);
    let dir = tempfile::tempdir().unwrap();
    let expected = append(dir.path(), &fleet(10, 100, 1_700_000_000_000));
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    config.max_backlog_bytes = SEGMENT_BYTES;
    config.retry_max = Duration::from_millis(2);
    let (letters, _) = dead_letters();
    let sink = start_sink(dir.path(), config, letters);
    let (gate, stats) = (sink.gate(), sink.stats());
    eventually("gate closed", || gate.is_closed()).await;
    assert!(stats.backpressure.load(Ordering::Relaxed));
    assert!(stats.backlog_bytes.load(Ordering::Relaxed) > SEGMENT_BYTES);
    eventually("faults used up and backlog sent", || {
        server.confirmed().len() >= expected.len()
    })
    .await;
    eventually("gate open again", || !gate.is_closed()).await;
    assert!(!stats.backpressure.load(Ordering::Relaxed));
    sink.shutdown().await.unwrap();
    assert_eq!(sorted(server.confirmed()), sorted(expected));
}

#[tokio::test]
async fn drop_oldest_gives_up_old_segments_and_keeps_the_gate_open() {
    let server = FaultServer::start().await;
    server.script(&[Fault::Status(500); 20]);
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    let expected = append(dir.path(), &fleet(10, 100, 1_700_000_000_000));
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    config.max_backlog_bytes = SEGMENT_BYTES;
    config.backlog_policy = BacklogPolicy::DropOldest;
    let (letters, _) = dead_letters();
    let sink = start_sink(dir.path(), config, letters);
    let (gate, stats) = (sink.gate(), sink.stats());
    eventually("old segments dropped", || {
        stats.dropped_bytes.load(Ordering::Relaxed) > 0
    })
    .await;
    eventually("the rest confirmed", || {
        stats.backlog_bytes.load(Ordering::Relaxed) == 0 && !server.confirmed().is_empty()
    })
    .await;
    assert!(!gate.is_closed());
    sink.shutdown().await.unwrap();
    let confirmed = server.confirmed();
    assert!(confirmed.len() < expected.len());
    assert!(confirmed.iter().all(|l| expected.contains(l)));
    // The hold moved past the dropped segments.
    let held = wal::hold::get(&wal_dir, super::super::NAME).unwrap();
    assert_eq!(held, *tail::segments(&wal_dir).unwrap().last().unwrap());
}

#[tokio::test]
async fn a_disabled_sink_releases_its_hold() {
    let server = FaultServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    append(dir.path(), &fleet(10, 100, 1_700_000_000_000));
    let segments = tail::segments(&wal_dir).unwrap();
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    // Stopped at once: nothing confirmed, the hold keeps every segment.
    server.script(&[Fault::Status(503); 100]);
    let (letters, _) = dead_letters();
    start_sink(dir.path(), config, letters)
        .stop()
        .await
        .unwrap();
    assert_eq!(
        wal::hold::get(&wal_dir, super::super::NAME),
        Some(segments[0])
    );
    assert_eq!(wal::remove_before(&wal_dir, u64::MAX).unwrap(), 0);
    assert!(super::super::release(dir.path()).unwrap());
    assert_eq!(
        wal::remove_before(&wal_dir, u64::MAX).unwrap(),
        segments.len()
    );
}

#[test]
fn held_segments_before_the_snapshot_are_kept_but_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let wal_dir = dir.path().join("wal");
    append(dir.path(), &fleet(10, 100, 1_700_000_000_000));
    let segments = tail::segments(&wal_dir).unwrap();
    assert!(segments.len() >= 3);
    wal::hold::set(&wal_dir, "reader", segments[0]).unwrap();
    let snapshot_segment = segments[2];
    let mut replayed = Vec::new();
    let options = WalOptions {
        segment_bytes: SEGMENT_BYTES,
        fsync: citytel_storage::wal::FsyncPolicy::Never,
    };
    let (_wal, stats) = Wal::open(&wal_dir, options, snapshot_segment, |at, _| {
        replayed.push(at.segment)
    })
    .unwrap();
    assert_eq!(
        tail::segments(&wal_dir).unwrap()[..segments.len()],
        segments[..]
    );
    assert!(!replayed.is_empty());
    assert!(replayed.iter().all(|&s| s >= snapshot_segment));
    assert_eq!(stats.records as usize, replayed.len());
}
