//! Periodic re-sends to a real Alertmanager: a firing alert is posted again every
//! `resend_interval`, valid for four intervals from citytel's clock, so Alertmanager keeps it
//! active; its resolution is posted with the instant it resolved, which Alertmanager passes on
//! to its own webhook receiver; after it nothing is re-sent. citytel runs in-process on a
//! manual clock that the test sets to the wall clock's time at each step (Alertmanager judges
//! `endsAt` by its own clock). Part of the `interop` group (Debian's `prometheus-alertmanager`).

use std::time::Duration;

use citytel_ingest::clock::{Clock, system_now_ms};
use citytel_testkit::net::{free_port, loopback};
use citytel_testkit::wait::Wait;
use citytel_tests::alertmanager::Alertmanager;
use citytel_tests::scenario::Ingester;
use citytel_tests::webhook::Webhook;

use super::{birth, delivery_config, reading};

/// The device's reporting interval: offline after three silent seconds.
const INTERVAL_MS: u32 = 1_000;
/// The rule's `for`.
const FOR_MS: i64 = 1_000;
/// Alertmanager's `resend_interval` (the least allowed).
const RESEND_MS: i64 = 1_000;

fn rfc3339_ms(value: &serde_json::Value) -> i64 {
    let text = value.as_str().unwrap_or_default();
    let t = humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let d = t.duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(d.as_millis()).expect("fits")
}

/// Waits until Alertmanager holds the device's alert with `endsAt` equal to `ends_ms`, and
/// returns it.
async fn wait_ends_at(am: &Alertmanager, ends_ms: i64, what: &str) -> serde_json::Value {
    let mut wait =
        Wait::new(what.to_string(), Duration::from_secs(20)).every(Duration::from_millis(50));
    loop {
        let alerts = am.alerts().await;
        if let Some(a) = alerts
            .iter()
            .find(|a| a["labels"]["device"] == "cab-1" && rfc3339_ms(&a["endsAt"]) == ends_ms)
        {
            return a.clone();
        }
        wait.retry()
            .await
            .unwrap_or_else(|e| panic!("{e}: {alerts:?}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
async fn alertmanager_gets_a_firing_alert_again_every_interval_then_its_resolution() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Webhook::start(loopback(0)).await;
    let am_port = free_port().expect("a free port");
    let am = Alertmanager::start_routing_to(dir.path(), am_port, &hook.url()).await;
    let rule = format!(
        "[[alerts.rule]]
name = \"cabinet-offline\"
kind = \"state\"
severity = \"critical\"
devices = {{ kinds = [\"cabinet\"] }}
states = [\"offline\"]
for = \"{FOR_MS}ms\"
"
    );
    let config = delivery_config(
        &format!(
            "resend_interval = \"{RESEND_MS}ms\"\nretry_initial = \"50ms\"\nretry_max = \"200ms\""
        ),
        &rule,
        am_port,
        None,
    );
    // Ten seconds ago, the cabinet is born; then time moves to now: it went offline three
    // intervals after its birth and the alert fired `for` later, whatever the clock's steps.
    let born = system_now_ms() - 10_000;
    let clock = Clock::manual(born);
    let mut citytel =
        Ingester::start_configured(&dir.path().join("data"), clock, None, Some(&config)).await;
    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let mut device = birth(mqtt, "cab-1", INTERVAL_MS).await;
    let fired = born + 3 * i64::from(INTERVAL_MS) + FOR_MS;

    // The firing, and then re-sends: each time the clock is set, the next re-send is valid for
    // four intervals from it, which only a re-send can tell Alertmanager.
    for round in 0..3 {
        let now = system_now_ms();
        clock.set_ms(now);
        let held = wait_ends_at(
            &am,
            now + 4 * RESEND_MS,
            &format!("re-send {round} valid for four intervals from {now}"),
        )
        .await;
        assert_eq!(rfc3339_ms(&held["startsAt"]), fired, "{held:?}");
        assert_eq!(held["status"]["state"], "active", "{held:?}");
    }

    // Heard again (and, the clock standing still, online from then on): resolved at that
    // instant, and Alertmanager's webhook is told so.
    let resolved = system_now_ms();
    clock.set_ms(resolved);
    reading(&mut device, "cab-1", 1).await;
    let mut wait = Wait::new(
        "alertmanager's resolved notification",
        Duration::from_secs(20),
    )
    .every(Duration::from_millis(50));
    let posted = loop {
        let posts = hook.received();
        let resolved_posts: Vec<_> = posts
            .iter()
            .filter(|p| p.body["status"] == "resolved")
            .cloned()
            .collect();
        if !resolved_posts.is_empty() {
            break posts;
        }
        wait.retry()
            .await
            .unwrap_or_else(|e| panic!("{e}: {posts:?}"));
    };
    let statuses: Vec<&str> = posted
        .iter()
        .map(|p| p.body["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"], "{posted:?}");
    let firing = &posted[0].body["alerts"][0];
    assert_eq!(rfc3339_ms(&firing["startsAt"]), fired, "{posted:?}");
    let last = &posted[1].body["alerts"][0];
    assert_eq!(rfc3339_ms(&last["startsAt"]), fired, "{posted:?}");
    assert_eq!(rfc3339_ms(&last["endsAt"]), resolved, "{posted:?}");
    assert!(
        am.alerts().await.is_empty(),
        "resolved: nothing active in alertmanager"
    );

    // Nothing is re-sent for a resolved alert: three intervals later it is still gone.
    tokio::time::sleep(Duration::from_millis(3 * RESEND_MS as u64)).await;
    let alerts = am.alerts().await;
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(hook.received().len(), 2, "{:?}", hook.received());
    drop(device);
    citytel.stop().await;
}
