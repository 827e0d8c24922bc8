//! Fault test: citytel is killed with SIGKILL at several seeded random points while 100 devices
//! publish 100,000 QoS 1 readings with unique (device, boot, seq), and restarted on the same data
//! directory each time. Publishers reconnect and resend what was not acknowledged, with DUP.
//! Afterwards (and after one more crash), every reading the publisher saw acknowledged is stored,
//! bit for bit, and none twice.
//!
//! Two paths: devices straight to citytel's device endpoint, over MQTT 3.1.1 and over MQTT 5 (a
//! PUBACK there means durable in citytel), and devices through a real Mosquitto (a PUBACK there
//! means accepted by Mosquitto, which keeps it queued for citytel's persistent session); the
//! second is in the `interop` group.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use citytel_tests::faults;
use citytel_tests::process::Citytel;
use citytel_tests::publisher::{self, Progress, PublishPlan, Published, Version};
use citytel_tests::wire::now_ms;

/// Crashes during the run.
const KILLS: usize = 3;

/// 10 connections of 10 devices, 1000 readings each: 100,000 readings, in `version`.
fn plan(addr: SocketAddr, version: Version) -> PublishPlan {
    PublishPlan {
        addr,
        connections: 10,
        devices_per_connection: 10,
        readings_per_device: 1000,
        window: 100,
        start_ms: now_ms() - 3_600_000,
        reconnect_limit: Duration::from_secs(60),
        version,
    }
}

/// Publishes the plan, calling `crash` each time the acknowledged readings pass a kill point.
async fn run_with_crashes(
    plan: &PublishPlan,
    kill_points: &[u64],
    mut crash: impl FnMut(),
) -> Published {
    let progress = Arc::new(Progress::default());
    let run = {
        let (plan, progress) = (plan.clone(), progress.clone());
        tokio::spawn(async move { publisher::run(&plan, progress).await })
    };
    for point in kill_points {
        while progress.acked.load(Ordering::Relaxed) < *point {
            assert!(
                !run.is_finished(),
                "the publisher ended before kill point {point}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::task::block_in_place(&mut crash);
    }
    let published = run.await.expect("publisher");
    let acked: usize = published.acked.values().map(|s| s.len()).sum();
    assert_eq!(
        acked as u64,
        plan.total(),
        "every reading acknowledged in the end"
    );
    println!(
        "published {} readings: {} reconnects, {} PUBLISHes resent with DUP",
        plan.total(),
        published.reconnects,
        published.resent
    );
    published
}

fn kill_points(total: u64, default_seed: u64) -> Vec<u64> {
    let points = faults::fault_points(
        faults::seed(default_seed),
        KILLS,
        total / 10,
        total * 9 / 10,
    );
    println!("killing citytel after {points:?} acknowledged readings");
    points
}

/// Kills the running citytel with SIGKILL and starts a new one on `data` with `args`.
fn crash_and_restart(slot: &mut Option<Citytel>, data: &Path, args: &[&str]) {
    let status = slot.take().expect("citytel runs").kill9();
    assert!(!status.success(), "killed, not exited: {status}");
    *slot = Some(Citytel::start(data, args));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_lose_no_reading_acked_by_the_endpoint() {
    crashes_lose_nothing_acked_by_the_endpoint(Version::V311, 0x6b11_0001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_lose_no_reading_acked_by_the_endpoint_over_mqtt5() {
    crashes_lose_nothing_acked_by_the_endpoint(Version::V5, 0x6b11_0005).await;
}

/// Devices in `version` straight to the endpoint, citytel killed at points drawn from `seed`.
async fn crashes_lose_nothing_acked_by_the_endpoint(version: Version, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let first = Citytel::start(dir.path(), &[]);
    let addr = first.mqtt.expect("device endpoint");
    // Restarts listen where the devices reconnect to.
    let listen = format!("endpoint.listen={addr}");
    let args = ["--set", listen.as_str()];
    let mut slot = Some(first);
    let plan = plan(addr, version);
    let points = kill_points(plan.total(), seed);
    let published = run_with_crashes(&plan, &points, || {
        crash_and_restart(&mut slot, dir.path(), &args);
    })
    .await;
    assert!(
        published.reconnects >= KILLS as u64 && published.resent > 0,
        "the crashes broke connections mid-flight (a connection that had already sent everything \
         before a crash does not reconnect, so not every connection does every time)"
    );

    let mut client = slot.as_ref().expect("citytel runs").client().await;
    publisher::assert_stored_exactly(&mut client, &plan, &published).await;
    // And once more after a crash with nothing in flight.
    crash_and_restart(&mut slot, dir.path(), &args);
    let citytel = slot.take().expect("citytel runs");
    let mut client = citytel.client().await;
    publisher::assert_stored_exactly(&mut client, &plan, &published).await;
    assert!(citytel.stop().success());
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_lose_no_reading_acked_by_mosquitto() {
    use citytel_testkit::mosquitto::Mosquitto;
    use citytel_testkit::wait::Wait;

    let dir = tempfile::tempdir().unwrap();
    let broker_dir = dir.path().join("broker");
    let data = dir.path().join("data");
    std::fs::create_dir(&broker_dir).unwrap();
    let broker = Mosquitto::start(&broker_dir)
        .await
        .expect("start mosquitto");
    let url = broker.url();
    let args = ["--broker-url", url.as_str()];
    let first = Citytel::start(&data, &args);
    first.wait_serving().await;
    let mut slot = Some(first);
    let plan = plan(([127, 0, 0, 1], broker.port()).into(), Version::V311);
    let points = kill_points(plan.total(), 0x6b11_0002);
    let published = run_with_crashes(&plan, &points, || {
        crash_and_restart(&mut slot, &data, &args)
    })
    .await;

    // Mosquitto delivers its queue to the restarted citytel.
    let citytel = slot.take().expect("citytel runs");
    let mut client = citytel.client().await;
    let mut wait = Wait::new(
        "citytel draining Mosquitto's queue",
        Duration::from_secs(120),
    )
    .every(Duration::from_millis(200));
    let mut stored = publisher::stored_total(&mut client, &plan).await;
    while stored < plan.total() && wait.retry().await.is_ok() {
        stored = publisher::stored_total(&mut client, &plan).await;
    }
    assert_eq!(stored, plan.total(), "citytel drained Mosquitto's queue");
    publisher::assert_stored_exactly(&mut client, &plan, &published).await;
    let mut slot = Some(citytel);
    crash_and_restart(&mut slot, &data, &args);
    let citytel = slot.take().expect("citytel runs");
    let mut client = citytel.client().await;
    publisher::assert_stored_exactly(&mut client, &plan, &published).await;
    assert!(citytel.stop().success());
    drop(broker);
}
