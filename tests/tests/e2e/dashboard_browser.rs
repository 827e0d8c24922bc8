//! The web dashboard in a real browser: the `citytel serve` binary with a simulated fleet, and
//! Debian's headless Chromium driven by `dashboards/web/test/browser.mjs` (playwright-core). The
//! script checks what a person would see: the overview counts the fleet, the device list lists
//! it, a device that connects for the first time while the list is open appears in it (and,
//! with the list filtered on online, leaves it when it goes offline) within the list's reload
//! bound, a device's charts have points and grow live, and a state change (this test stops a
//! gateway, so it goes offline and its children unreachable) shows up within seconds through
//! WatchEvents. Every page must also pass axe-core's WCAG 2.1 A/AA rules without a serious
//! finding. Screenshots land in `tests/artifacts/`.
//!
//! And signing in: a citytel without authentication opens without a sign-in ("open, no key");
//! one with keys shows the sign-in page, refuses a wrong key, and takes the admin key citytel
//! wrote (its organisation and role then show in the header). Signing out returns to the
//! sign-in page; a partner's viewer key scoped to cabinets then sees in the device list exactly
//! its cabinets (the admin's device list is the oracle), none of the other devices, and a
//! hidden device's page says it is not found or not visible;
//! and revoking that key while its page is open sends the dashboard back to the sign-in page.
//!
//! Part of the `interop` group: needs `chromium` (Debian), Node.js and `npm ci` in
//! `dashboards/web`; fails with a clear message when one is missing.

use std::time::Duration;

use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::{Fleet, FleetConfig};
use citytel_proto::v1::{self, ListDevicesRequest, Scope};
use citytel_testkit::wait::Wait;
use citytel_tests::keys::{self, key_id};
use citytel_tests::process::Citytel;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{now_ms, status_topic};
use tokio_util::sync::CancellationToken;

use crate::browser_script::{BrowserScript, artifacts, check_prerequisites};

fn fleet(broker: BrokerAddr, gateways_only: bool) -> FleetConfig {
    let (cabinets, small_cells, sensors, gateways) = if gateways_only {
        (0, 0, 0, 1)
    } else {
        (4, 3, 3, 0)
    };
    FleetConfig {
        broker,
        cabinets,
        small_cells,
        sensors,
        gateways,
        children_per_gateway: 2,
        sites: 2,
        interval: Duration::from_secs(1),
        client_id_prefix: Some(if gateways_only { "gw-" } else { "dev-" }.to_string()),
        ..FleetConfig::default()
    }
}

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages and npm ci in dashboards/web: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_the_fleet_live_in_a_real_browser() {
    check_prerequisites();
    // One citytel without authentication (as `citytel demo`), one with keys and a fleet.
    let open_dir = tempfile::tempdir().unwrap();
    let open = Citytel::start(open_dir.path(), &[]);
    let open_url = open
        .dashboard
        .clone()
        .expect("citytel prints its dashboard URL");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let citytel = Citytel::start(&data, &["--set", "api.authentication=true"]);
    let url = citytel
        .dashboard
        .clone()
        .expect("citytel prints its dashboard URL");
    let (host, port) = citytel.mqtt_host_port();

    // The admin key citytel wrote, and a partner's viewer key that sees cabinets only.
    let admin_key = keys::admin_key(&data);
    let mut admin = keys::admin(&citytel, &admin_key).await;
    keys::create_org(&mut admin, "university", "City University").await;
    let cabinets = Scope {
        kinds: vec!["cabinet".into()],
        ..Scope::default()
    };
    let scoped_key = keys::create_key(&mut admin, "university", "viewer", Some(cabinets), 0).await;

    // Ten devices that keep reporting, and a gateway with two children that the test stops.
    let steady_stop = CancellationToken::new();
    let steady = Fleet::new(fleet(BrokerAddr::new(host.clone(), port), false)).unwrap();
    let steady = tokio::spawn(steady.run(steady_stop.clone(), None));
    let gateway_stop = CancellationToken::new();
    let gateway = Fleet::new(fleet(BrokerAddr::new(host, port), true)).unwrap();
    let gateway = tokio::spawn(gateway.run(gateway_stop.clone(), None));
    let devices = 13;

    let mut client = keys::query(&citytel, Some(&admin_key)).await;
    let mut wait = Wait::new("citytel knowing every device", Duration::from_secs(30))
        .every(Duration::from_millis(100));
    loop {
        let listed = client
            .list_devices(ListDevicesRequest::default())
            .await
            .expect("ListDevices")
            .into_inner()
            .total;
        if listed == devices {
            break;
        }
        if let Err(e) = wait.retry().await {
            panic!("{e}: it knows {listed} of {devices}");
        }
    }

    let devices_arg = devices.to_string();
    let mut browser = BrowserScript::start(
        "browser.mjs",
        &[&url, &open_url, &devices_arg, "cab-0001"],
        &[
            ("CITYTEL_ADMIN_KEY", &admin_key),
            ("CITYTEL_SCOPED_KEY", &scoped_key),
        ],
    );

    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let mut newborn = None;
    let mut stopped = false;
    let mut revoked = false;
    let mut hidden = None;
    let mut gateway = Some(gateway);
    let limit = Duration::from_secs(300);
    let finished = tokio::time::timeout(limit, async {
        while let Some(request) = browser.request().await {
            if request == "birth" {
                let mut device = RawClient::connect(mqtt, NEWBORN).await;
                device
                    .publish_acked(&status_topic(NEWBORN), newborn_status(Kind::Birth), 1)
                    .await;
                newborn = Some(device);
                browser.answer(&format!("born {NEWBORN}"));
            } else if request == "death" {
                let device = newborn.as_mut().expect("the device was born");
                device
                    .publish_acked(&status_topic(NEWBORN), newborn_status(Kind::Death), 2)
                    .await;
                browser.answer(&format!("dead {NEWBORN}"));
            } else if request == "stop-devices" {
                gateway_stop.cancel();
                let gateway = gateway.take().expect("stopped once");
                let report = tokio::time::timeout(Duration::from_secs(30), gateway)
                    .await
                    .expect("the gateway stops within 30 s");
                report.unwrap().expect("the gateway fleet ran");
                browser.answer("stopped gw-0001 gw-0001-s01 gw-0001-s02");
                stopped = true;
            } else if request == "scoped" {
                // The oracle is the admin's view: the scoped key must see exactly its cabinets,
                // and its device list must show exactly those.
                let (cabinets, others) = cabinets_and_others(&citytel, &admin_key).await;
                assert!(
                    !cabinets.is_empty() && !others.is_empty(),
                    "the fleet has cabinets and other devices"
                );
                let (seen, unseen) = cabinets_and_others(&citytel, &scoped_key).await;
                assert!(unseen.is_empty(), "the scoped key sees {unseen:?}");
                assert_eq!(seen, cabinets, "the scoped key sees every cabinet");
                browser.answer(&format!("scoped {}", cabinets.join(" ")));
                hidden = Some(others);
            } else if request == "hidden" {
                let others = hidden.take().expect("asked after the scoped devices");
                browser.answer(&format!("hidden {}", others.join(" ")));
            } else if request == "revoke" {
                keys::revoke(&mut admin, &scoped_key).await;
                browser.answer(&format!("revoked {}", key_id(&scoped_key)));
                revoked = true;
            }
        }
    })
    .await;
    let status = browser.conclude(finished.is_ok(), limit);
    assert!(
        status.success() && stopped && revoked,
        "the browser test failed ({status}); its output is above, screenshots in {}",
        artifacts().display()
    );

    steady_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), steady).await;
    drop(newborn);
    assert!(citytel.stop().success(), "citytel exits cleanly");
    assert!(open.stop().success(), "the open citytel exits cleanly");
}

/// The devices `key` sees, split into cabinets and the others, each sorted.
async fn cabinets_and_others(citytel: &Citytel, key: &str) -> (Vec<String>, Vec<String>) {
    let devices = keys::query(citytel, Some(key))
        .await
        .list_devices(ListDevicesRequest {
            page_size: 1000,
            ..ListDevicesRequest::default()
        })
        .await
        .expect("ListDevices")
        .into_inner()
        .devices;
    let (cabinets, others): (Vec<_>, Vec<_>) =
        devices.into_iter().partition(|d| d.kind == "cabinet");
    let ids = |devices: Vec<v1::Device>| {
        let mut ids: Vec<String> = devices.into_iter().map(|d| d.device_id).collect();
        ids.sort();
        ids
    };
    (ids(cabinets), ids(others))
}

/// The device the test brings to life while the browser shows the device list.
const NEWBORN: &str = "cab-born-01";

/// What the newborn device says.
enum Kind {
    Birth,
    Death,
}

/// A status of [`NEWBORN`]: its birth, or its death (an orderly shutdown).
fn newborn_status(kind: Kind) -> Vec<u8> {
    use citytel_proto::v1::{Birth, Death, DeathReason, Status, status};
    use prost::Message as _;
    let kind = match kind {
        Kind::Birth => status::Kind::Birth(Birth {
            firmware_version: "cab-fw 1.0".into(),
            reporting_interval_ms: 60_000,
            ..Birth::default()
        }),
        Kind::Death => status::Kind::Death(Death {
            reason: DeathReason::Shutdown as i32,
            at_status_time: false,
        }),
    };
    Status {
        device_id: NEWBORN.into(),
        boot_id: 1,
        time_unix_ms: now_ms(),
        gateway_id: None,
        kind: Some(kind),
    }
    .encode_to_vec()
}
