//! Interoperability with a real Mosquitto broker (Debian package), through citytel's broker
//! source. Part of the `interop` group: `cargo test -p citytel-tests --features interop`.

use std::time::Duration;

use citytel_firmware_sim::FleetConfig;
use citytel_testkit::mosquitto::Mosquitto;
use citytel_testkit::wait::Wait;
use citytel_tests::fleet;
use citytel_tests::process::Citytel;
use citytel_tests::truth;

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_through_mosquitto_are_queryable_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(broker_dir.path())
        .await
        .expect("start mosquitto");
    let citytel = Citytel::start(dir.path(), &["--broker-url", &mosquitto.url()]);
    assert!(
        citytel.mqtt.is_none(),
        "the device endpoint is off with a broker"
    );

    // Health turns SERVING once citytel is connected and subscribed; from then on its persistent
    // session keeps everything devices publish.
    citytel.wait_serving().await;
    let mut client = citytel.client().await;

    let report = fleet::run(FleetConfig {
        client_id_prefix: Some("dev-".into()),
        ..fleet::small("127.0.0.1", mosquitto.port(), 30)
    })
    .await;

    // Mosquitto acknowledged the devices from memory; citytel gets them a moment later.
    let expected: u64 = report.totals.readings_acked;
    let mut wait = Wait::new(
        "citytel storing every acked reading",
        Duration::from_secs(30),
    )
    .every(Duration::from_millis(100));
    loop {
        let stored: u64 = truth::list_all_devices(&mut client)
            .await
            .iter()
            .map(|d| d.readings_total)
            .sum();
        if stored == expected {
            break;
        }
        if let Err(e) = wait.retry().await {
            panic!("{e}: stored {stored} of {expected} readings");
        }
    }
    truth::assert_matches(&mut client, &report).await;

    assert!(citytel.stop().success());
    let citytel = Citytel::start(dir.path(), &["--broker-url", &mosquitto.url()]);
    let mut client = citytel.client().await;
    truth::assert_matches(&mut client, &report).await;
    assert!(citytel.stop().success());
}
