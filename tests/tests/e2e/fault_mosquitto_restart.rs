//! Fault test: the broker restarts mid-run. A real Mosquitto with the shipped configuration
//! (persistence on) sits between 40 publishing devices and citytel's broker source; when 40% of
//! the readings are acknowledged it is stopped and started again on the same port and persistence
//! directory. citytel's storage is held until then, so those readings survive only if Mosquitto
//! persisted its queue. Publishers and citytel reconnect on their own, citytel resumes its persistent
//! session and carries on, and every reading Mosquitto acknowledged ends up stored in citytel
//! exactly once.
//!
//! Part of the `interop` group (needs Debian's `mosquitto`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use citytel_testkit::mosquitto::{LOG_FILE, Mosquitto};
use citytel_testkit::wait::Wait;
use citytel_tests::process::Citytel;
use citytel_tests::publisher::{self, Progress, PublishPlan, Version};
use citytel_tests::wire::now_ms;

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_nothing_and_citytel_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir(&broker_dir).unwrap();
    let broker = Mosquitto::start(&broker_dir)
        .await
        .expect("start mosquitto");
    let port = broker.port();
    let config = broker.config().clone();
    let url = broker.url();
    // citytel's WAL is held (the debug pause file) until after the restart, so what Mosquitto
    // acknowledged before it stopped exists only in Mosquitto's queue and persistence file.
    let pause = dir.path().join("pause-wal");
    let citytel = Citytel::start_with_env(
        &dir.path().join("data"),
        &["--broker-url", &url],
        &[("CITYTEL_DEBUG_WAL_PAUSE_FILE", &pause)],
    );
    citytel.wait_serving().await;
    std::fs::write(&pause, b"").unwrap();

    let plan = PublishPlan {
        addr: ([127, 0, 0, 1], port).into(),
        connections: 4,
        devices_per_connection: 10,
        readings_per_device: 500,
        window: 100,
        start_ms: now_ms() - 3_600_000,
        reconnect_limit: Duration::from_secs(60),
        version: Version::V311,
    };
    let progress = Arc::new(Progress::default());
    let run = {
        let (plan, progress) = (plan.clone(), progress.clone());
        tokio::spawn(async move { publisher::run(&plan, progress).await })
    };
    while progress.acked.load(Ordering::Relaxed) < plan.total() * 2 / 5 {
        assert!(!run.is_finished(), "the publisher ended early");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // A graceful restart, as a package upgrade or a service manager does it.
    tokio::task::block_in_place(|| broker.stop()).expect("stop mosquitto");
    assert!(
        broker_dir.join("mosquitto.db").exists(),
        "Mosquitto saved its persistence file"
    );
    let broker = Mosquitto::launch(&config)
        .await
        .expect("start mosquitto again on the same port and persistence");
    let mut client = citytel.client().await;
    assert_eq!(
        publisher::stored_total(&mut client, &plan).await,
        0,
        "nothing reached citytel's storage before the restart"
    );
    std::fs::remove_file(&pause).unwrap();

    let published = run.await.expect("publisher");
    let acked: usize = published.acked.values().map(|s| s.len()).sum();
    assert_eq!(acked as u64, plan.total(), "every reading acknowledged");
    assert!(
        published.reconnects >= u64::from(plan.connections),
        "every publisher reconnected"
    );
    // citytel reconnects and resubscribes on its own (health reports serving only then), and
    // drains what Mosquitto kept for it.
    citytel.wait_serving().await;
    let mut wait = Wait::new("citytel storing every reading", Duration::from_secs(60))
        .every(Duration::from_millis(200));
    let mut stored = publisher::stored_total(&mut client, &plan).await;
    while stored < plan.total() && wait.retry().await.is_ok() {
        stored = publisher::stored_total(&mut client, &plan).await;
    }
    assert_eq!(stored, plan.total(), "citytel carried on after the restart");
    publisher::assert_stored_exactly(&mut client, &plan, &published).await;
    assert!(citytel.stop().success());
    drop(broker);

    let log = std::fs::read_to_string(broker_dir.join(LOG_FILE)).expect("mosquitto.log");
    assert!(
        !log.contains("Permission denied") && !log.contains("Error"),
        "Mosquitto reported a problem:\n{log}"
    );
    assert!(
        log.contains("Saving in-memory database"),
        "Mosquitto persisted its state:\n{log}"
    );
}
