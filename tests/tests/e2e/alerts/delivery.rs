//! Delivery to a real Alertmanager and a webhook, both unreachable when the alert fires and
//! while citytel restarts: once they are up, each gets the firing, then the resolution, exactly
//! once. Part of the `interop` group: `cargo test -p citytel-tests --features interop`.

use std::time::Duration;

use citytel_proto::v1;
use citytel_testkit::metrics::Scrape;
use citytel_testkit::net::{free_port, loopback};
use citytel_testkit::wait::Wait;
use citytel_tests::alertmanager::Alertmanager;
use citytel_tests::process::Citytel;
use citytel_tests::webhook::Webhook;

use citytel_tests::keys::alerts;

use super::{LONG_MS, RULE, SHORT_MS, birth, config_file, delivery_config, reading, wait_alert};

/// Waits until every receiver has failed at least twice (it is retrying).
async fn wait_retrying(citytel: &Citytel) {
    let url = citytel.metrics.clone().expect("the metrics URL is printed");
    let mut wait = Wait::new("both receivers retrying", Duration::from_secs(30))
        .every(Duration::from_millis(50));
    loop {
        let scrape = Scrape::fetch(&url).await;
        let failed = |receiver: &str| {
            scrape
                .get(&format!(
                    "citytel_alert_notifications_total{{receiver=\"{receiver}\",outcome=\"failed\"}}"
                ))
                .unwrap_or(0.0)
        };
        if failed("am") >= 2.0 && failed("hook") >= 2.0 {
            return;
        }
        wait.retry()
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", scrape.text));
    }
}

/// Waits until the webhook has received `n` POSTs.
async fn wait_posts(hook: &Webhook, n: usize) {
    let mut wait = Wait::new(format!("{n} webhook POSTs"), Duration::from_secs(30))
        .every(Duration::from_millis(50));
    while hook.received().len() < n {
        wait.retry()
            .await
            .unwrap_or_else(|e| panic!("{e}: {:?}", hook.received()));
    }
}

/// Waits until Alertmanager holds `n` alerts of rule cabinet-offline, and returns them.
async fn wait_am(am: &Alertmanager, n: usize) -> Vec<serde_json::Value> {
    let mut wait = Wait::new(
        format!("{n} alerts in alertmanager"),
        Duration::from_secs(30),
    )
    .every(Duration::from_millis(50));
    loop {
        let alerts: Vec<serde_json::Value> = am
            .alerts()
            .await
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == "cabinet-offline")
            .collect();
        if alerts.len() == n {
            return alerts;
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
async fn receivers_down_then_up_get_each_transition_once_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let am_port = free_port().expect("a free port");
    let hook_port = free_port().expect("a free port");
    let hook_url = format!("http://127.0.0.1:{hook_port}/");
    let config = config_file(
        dir.path(),
        &delivery_config(
            "retry_initial = \"50ms\"\nretry_max = \"200ms\"\nshutdown_timeout = \"200ms\"",
            RULE,
            am_port,
            Some(&hook_url),
        ),
    );
    let config_arg = config.display().to_string();
    let data = dir.path().join("data");
    let args = ["--config", config_arg.as_str()];

    // The alert fires while neither receiver is up.
    let citytel = Citytel::start(&data, &args);
    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let device = birth(mqtt, "cab-1", SHORT_MS).await;
    let firing = wait_alert(
        &mut alerts(&citytel, None).await,
        "cab-1",
        v1::AlertState::Firing,
    )
    .await;
    wait_retrying(&citytel).await;

    // citytel restarts while the notification is being retried.
    drop(device);
    assert!(citytel.stop().success(), "citytel stops cleanly");
    let citytel = Citytel::start(&data, &args);
    let again = wait_alert(
        &mut alerts(&citytel, None).await,
        "cab-1",
        v1::AlertState::Firing,
    )
    .await;
    assert_eq!(
        again.id, firing.id,
        "the firing alert is kept across the restart"
    );
    assert_eq!(again.firing_since_unix_ms, firing.firing_since_unix_ms);
    let url = citytel.metrics.clone().expect("the metrics URL is printed");
    let scrape = Scrape::fetch(&url).await;
    assert_eq!(
        scrape.get("citytel_alerts{state=\"firing\",severity=\"critical\"}"),
        Some(1.0),
        "{}",
        scrape.text
    );

    // The receivers come up: the firing arrives, once.
    let hook = Webhook::start(loopback(hook_port)).await;
    let am = Alertmanager::start_on(dir.path(), am_port).await;
    let held = wait_am(&am, 1).await;
    assert_eq!(held[0]["labels"]["device"], "cab-1", "{held:?}");
    assert_eq!(held[0]["labels"]["severity"], "critical", "{held:?}");
    assert_eq!(held[0]["status"]["state"], "active", "{held:?}");
    wait_posts(&hook, 1).await;

    // The device is heard again, and stays online: the resolution arrives, once, after the
    // firing.
    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let mut device = birth(mqtt, "cab-1", LONG_MS).await;
    reading(&mut device, "cab-1", 1).await;
    wait_alert(
        &mut alerts(&citytel, None).await,
        "cab-1",
        v1::AlertState::Resolved,
    )
    .await;
    wait_posts(&hook, 2).await;
    wait_am(&am, 0).await;

    let posts = hook.received();
    let statuses: Vec<&str> = posts
        .iter()
        .map(|p| p.body["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["firing", "resolved"], "{posts:?}");
    for p in &posts {
        assert_eq!(p.body["version"], "4", "{p:?}");
        assert_eq!(p.body["receiver"], "hook", "{p:?}");
        let alerts = p.body["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), 1, "{p:?}");
        assert_eq!(alerts[0]["labels"]["alertname"], "cabinet-offline", "{p:?}");
        assert_eq!(alerts[0]["labels"]["device"], "cab-1", "{p:?}");
        assert_eq!(
            alerts[0]["fingerprint"],
            firing.fingerprint.as_str(),
            "{p:?}"
        );
    }
    assert_ne!(posts[0].idempotency_key, posts[1].idempotency_key);
    assert!(
        posts.iter().all(|p| p.idempotency_key.is_some()),
        "{posts:?}"
    );

    // Nothing more arrives after another restart.
    drop(device);
    assert!(citytel.stop().success(), "citytel stops cleanly");
    let citytel = Citytel::start(&data, &args);
    let url = citytel.metrics.clone().expect("the metrics URL is printed");
    let mut wait = Wait::new("both receivers caught up", Duration::from_secs(30))
        .every(Duration::from_millis(50));
    loop {
        let scrape = Scrape::fetch(&url).await;
        let pending = |receiver: &str| {
            scrape.get(&format!(
                "citytel_alert_notifications_pending{{receiver=\"{receiver}\"}}"
            ))
        };
        if pending("am") == Some(0.0) && pending("hook") == Some(0.0) {
            break;
        }
        wait.retry()
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", scrape.text));
    }
    assert_eq!(hook.received().len(), 2, "{:?}", hook.received());
    citytel.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages: cargo test -p citytel-tests --features interop"
)]
async fn a_restart_while_firing_notifies_each_transition_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Webhook::start(loopback(0)).await;
    // What Alertmanager itself notifies, through a webhook of its own.
    let am_hook = Webhook::start(loopback(0)).await;
    let am_port = free_port().expect("a free port");
    let am = Alertmanager::start_routing_to(dir.path(), am_port, &am_hook.url()).await;
    let config = config_file(
        dir.path(),
        &delivery_config(
            "resend_interval = \"1s\"\nretry_initial = \"50ms\"\nretry_max = \"200ms\"",
            RULE,
            am_port,
            Some(&hook.url()),
        ),
    );
    let config_arg = config.display().to_string();
    let data = dir.path().join("data");
    let args = ["--config", config_arg.as_str()];

    // The alert fires and both receivers have it.
    let citytel = Citytel::start(&data, &args);
    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let device = birth(mqtt, "cab-1", SHORT_MS).await;
    let firing = wait_alert(
        &mut alerts(&citytel, None).await,
        "cab-1",
        v1::AlertState::Firing,
    )
    .await;
    wait_posts(&hook, 1).await;
    wait_posts(&am_hook, 1).await;
    wait_am(&am, 1).await;

    // citytel restarts while it fires: the alert carries on, and is sent to Alertmanager
    // again (as every second), which keeps it without notifying it again.
    drop(device);
    assert!(citytel.stop().success(), "citytel stops cleanly");
    let citytel = Citytel::start(&data, &args);
    let again = wait_alert(
        &mut alerts(&citytel, None).await,
        "cab-1",
        v1::AlertState::Firing,
    )
    .await;
    assert_eq!(again.id, firing.id, "the same alert");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(hook.received().len(), 1, "{:?}", hook.received());
    assert_eq!(am_hook.received().len(), 1, "{:?}", am_hook.received());
    assert_eq!(wait_am(&am, 1).await[0]["status"]["state"], "active");

    // Resolved: once to each.
    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let mut device = birth(mqtt, "cab-1", LONG_MS).await;
    reading(&mut device, "cab-1", 1).await;
    wait_posts(&hook, 2).await;
    wait_posts(&am_hook, 2).await;
    wait_am(&am, 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (name, posts) in [
        ("webhook", hook.received()),
        ("alertmanager", am_hook.received()),
    ] {
        let statuses: Vec<&str> = posts
            .iter()
            .map(|p| p.body["status"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(statuses, ["firing", "resolved"], "{name}: {posts:?}");
        for p in &posts {
            let alert = &p.body["alerts"][0];
            assert_eq!(alert["labels"]["device"], "cab-1", "{name}: {p:?}");
        }
    }
    drop(device);
    citytel.stop();
}
