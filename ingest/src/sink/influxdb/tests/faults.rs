//! One test per error class: what is retried, what holds, what is split and dead-lettered.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::server::{Fault, FaultServer};
use super::*;
use crate::sink::stats::ErrorClass;

/// Runs the sink over a fixed fleet against `server` until `expected` lines were confirmed, then
/// shuts it down; returns the sink's stats and the expected lines.
async fn deliver_all(
    server: &FaultServer,
    tweak: impl FnOnce(&mut InfluxDbConfig),
) -> (Arc<crate::sink::stats::SinkStats>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let expected = append(dir.path(), &fleet(4, 40, 1_700_000_000_000));
    let mut config = config(server);
    with_token(&mut config, dir.path());
    tweak(&mut config);
    let (letters, _) = dead_letters();
    let sink = start_sink(dir.path(), config, letters);
    let stats = sink.stats();
    let want = expected.len();
    eventually("every line confirmed", || server.confirmed().len() >= want).await;
    sink.shutdown().await.unwrap();
    assert_eq!(server.bad_headers(), Vec::<String>::new());
    assert_eq!(
        sorted(server.confirmed()),
        sorted(expected.clone()),
        "every point exactly once"
    );
    assert_eq!(stats.points_sent.load(Ordering::Relaxed), want as u64);
    assert_eq!(stats.values_sent.load(Ordering::Relaxed), 2 * want as u64);
    (stats, expected)
}

#[tokio::test]
async fn a_clean_run_delivers_every_point_once_in_batches() {
    let server = FaultServer::start().await;
    let (stats, expected) = deliver_all(&server, |_| {}).await;
    assert_eq!(expected.len(), 160);
    for class in ErrorClass::ALL {
        assert_eq!(stats.failures(class), 0, "{class:?}");
    }
    assert!(server.requests() >= 4, "batches of at most 50 points");
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried() {
    let server = FaultServer::start().await;
    server.script(&[
        Fault::Status(500),
        Fault::Status(503),
        Fault::Status(429),
        Fault::Status(502),
    ]);
    let (stats, _) = deliver_all(&server, |_| {}).await;
    assert_eq!(stats.failures(ErrorClass::Server), 3);
    assert_eq!(stats.failures(ErrorClass::Throttled), 1);
    assert!(stats.healthy.load(Ordering::Relaxed));
}

#[tokio::test]
async fn timeouts_are_retried() {
    let server = FaultServer::start().await;
    server.script(&[Fault::Delay(Duration::from_secs(2))]);
    let (stats, _) = deliver_all(&server, |c| c.request_timeout = Duration::from_millis(200)).await;
    assert_eq!(stats.failures(ErrorClass::Timeout), 1);
    assert_eq!(stats.failures(ErrorClass::Network), 0);
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let server = FaultServer::start().await;
    server.script(&[Fault::Reset, Fault::Reset]);
    let (stats, _) = deliver_all(&server, |_| {}).await;
    assert_eq!(stats.failures(ErrorClass::Network), 2);
}

#[tokio::test]
async fn unauthorized_holds_the_sink_unhealthy_until_the_server_accepts() {
    let server = FaultServer::start().await;
    server.script(&[Fault::Status(401), Fault::Status(403), Fault::Status(401)]);
    let dir = tempfile::tempdir().unwrap();
    let expected = append(dir.path(), &fleet(2, 20, 1_700_000_000_000));
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    // One request at a time: while it is held, nothing else may get through.
    config.max_in_flight = 1;
    let (letters, got) = dead_letters();
    let sink = start_sink(dir.path(), config, letters);
    let mut health = sink.health();
    health.wait_for(|healthy| !healthy).await.unwrap();
    assert!(
        server.confirmed().is_empty(),
        "nothing goes through while held"
    );
    health.wait_for(|healthy| *healthy).await.unwrap();
    let want = expected.len();
    eventually("every line confirmed", || server.confirmed().len() >= want).await;
    let stats = sink.stats();
    sink.shutdown().await.unwrap();
    assert_eq!(stats.failures(ErrorClass::Auth), 3);
    assert_eq!(sorted(server.confirmed()), sorted(expected));
    assert!(got.lock().is_empty(), "a refused token loses no point");
}

#[tokio::test]
async fn bad_requests_split_the_batch_and_dead_letter_only_the_refused_points() {
    let server = FaultServer::start().await;
    server.refuse_lines_with("device_id=cab-0002");
    let dir = tempfile::tempdir().unwrap();
    let expected = append(dir.path(), &fleet(4, 40, 1_700_000_000_000));
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    let (letters, got) = dead_letters();
    let sink = start_sink(dir.path(), config, letters);
    let stats = sink.stats();
    let (bad, good): (Vec<String>, Vec<String>) = expected
        .iter()
        .cloned()
        .partition(|l| l.contains("device_id=cab-0002"));
    assert_eq!(bad.len(), 40);
    eventually("good points confirmed, bad ones dead-lettered", || {
        server.confirmed().len() >= good.len() && got.lock().len() >= bad.len()
    })
    .await;
    sink.shutdown().await.unwrap();
    assert_eq!(sorted(server.confirmed()), sorted(good));
    let letters: Vec<String> = got.lock().iter().map(|p| p.line.clone()).collect();
    assert_eq!(sorted(letters), sorted(bad.clone()));
    assert!(got.lock().iter().all(|p| p.sink == "influxdb"
        && p.error.starts_with("HTTP 400")
        && p.error.contains("refused by the test")));
    assert_eq!(stats.points_rejected.load(Ordering::Relaxed), 40);
    assert!(stats.failures(ErrorClass::BadRequest) >= 40);
    let kept =
        std::fs::read_to_string(super::super::state_dir(dir.path()).join("rejected.lp")).unwrap();
    assert_eq!(kept.lines().filter(|l| !l.starts_with('#')).count(), 40);
    assert!(server.refused_requests() > 0);
}

#[tokio::test]
async fn a_restart_resumes_from_the_cursor_without_duplicates() {
    let server = FaultServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    let first = append(dir.path(), &fleet(3, 30, 1_700_000_000_000));
    let (letters, _) = dead_letters();
    let sink = start_sink(dir.path(), config.clone(), letters.clone());
    eventually("first run confirmed", || {
        server.confirmed().len() >= first.len()
    })
    .await;
    sink.shutdown().await.unwrap();

    let second = append(dir.path(), &fleet(3, 30, 1_700_001_000_000));
    let sink = start_sink(dir.path(), config, letters);
    let want = first.len() + second.len();
    eventually("second run confirmed", || server.confirmed().len() >= want).await;
    sink.shutdown().await.unwrap();
    let mut all = first;
    all.extend(second);
    assert_eq!(sorted(server.confirmed()), sorted(all), "no point twice");
}

#[tokio::test]
async fn a_cursor_past_a_shortened_segment_resends_the_segment() {
    let server = FaultServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let expected = append(dir.path(), &fleet(1, 10, 1_700_000_000_000));
    let wal_dir = dir.path().join("wal");
    let segment = citytel_storage::wal::tail::segments(&wal_dir).unwrap()[0];
    crate::sink::cursor::store(
        &super::super::state_dir(dir.path()),
        citytel_storage::wal::Position {
            segment,
            offset: 1 << 30,
        },
    )
    .unwrap();
    let mut config = config(&server);
    with_token(&mut config, dir.path());
    let (letters, _) = dead_letters();
    let sink = start_sink(dir.path(), config, letters);
    eventually("the segment resent", || {
        server.confirmed().len() >= expected.len()
    })
    .await;
    sink.shutdown().await.unwrap();
    assert_eq!(sorted(server.confirmed()), sorted(expected));
}
