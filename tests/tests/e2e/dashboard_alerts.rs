//! The dashboard's alerts in a real browser: the `citytel serve` binary with the rule "a cabinet
//! offline for 1 s is critical" and API keys, and Debian's headless Chromium driven by
//! `dashboards/web/test/alerts.mjs`. A cabinet announces a 500 ms reporting interval and goes
//! silent, so it is offline 1.5 s later and its alert fires a second after that, with no message
//! in between. The script, signed in with an operator key, must see the header's badge count it
//! (through WatchAlerts, without a reload), the alerts page list it, and acknowledge it, silence
//! it and expire the silence with the page's buttons; this test checks each of those with
//! `ListAlerts` and `ListSilences` over gRPC, the service being the oracle. The device's page
//! must list the alert, acknowledged; a viewer key sees it with the buttons disabled and the
//! reason given. Screenshots land in `tests/artifacts/`.
//!
//! Part of the `interop` group: needs `chromium` (Debian), Node.js and `npm ci` in
//! `dashboards/web`; fails with a clear message when one is missing.

use std::collections::BTreeSet;
use std::time::Duration;

use citytel_proto::v1;
use citytel_tests::keys::{self, Alerts};
use citytel_tests::process::Citytel;
use citytel_tests::raw_mqtt::RawClient;

use crate::alerts::{RULE, SHORT_MS, birth, config_file, wait_alert};
use crate::browser_script::{BrowserScript, artifacts, check_prerequisites};

/// The cabinet that goes silent.
const DEVICE: &str = "cab-1";

#[cfg_attr(
    not(feature = "interop"),
    ignore = "needs Debian packages and npm ci in dashboards/web: cargo test -p citytel-tests --features interop"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_lists_acknowledges_and_silences_alerts_in_a_real_browser() {
    check_prerequisites();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file(dir.path(), RULE);
    let config_arg = config.display().to_string();
    let data = dir.path().join("data");
    let citytel = Citytel::start(
        &data,
        &["--config", &config_arg, "--set", "api.authentication=true"],
    );
    let url = citytel
        .dashboard
        .clone()
        .expect("citytel prints its dashboard URL");
    let mut admin = keys::admin(&citytel, &keys::admin_key(&data)).await;
    keys::create_org(&mut admin, "works", "Public works").await;
    let operator = keys::create_key(&mut admin, "works", "operator", None, 0).await;
    let viewer = keys::create_key(&mut admin, "works", "viewer", None, 0).await;
    let mut oracle = keys::alerts(&citytel, Some(&viewer)).await;

    let mut browser = BrowserScript::start(
        "alerts.mjs",
        &[&url, DEVICE],
        &[
            ("CITYTEL_OPERATOR_KEY", &operator),
            ("CITYTEL_VIEWER_KEY", &viewer),
        ],
    );

    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let mut device: Option<RawClient> = None;
    let mut alert: Option<v1::Alert> = None;
    let mut silence_id = None;
    let mut answered = Vec::new();
    let limit = Duration::from_secs(240);
    let finished = tokio::time::timeout(limit, async {
        while let Some(request) = browser.request().await {
            let (verb, argument) = request.split_once(' ').unwrap_or((request.as_str(), ""));
            let answer = match verb {
                "fire" => {
                    // Born with a short interval, then silent: offline, then firing.
                    device = Some(birth(mqtt, DEVICE, SHORT_MS).await);
                    let firing = wait_alert(&mut oracle, DEVICE, v1::AlertState::Firing).await;
                    let count = list(&mut oracle, "").await.firing;
                    assert_eq!(count, 1, "one cabinet, one rule: one firing alert");
                    let answer = format!("firing {} {count}", firing.id);
                    alert = Some(firing);
                    answer
                }
                "acked" => {
                    let id = alert.as_ref().expect("fired first").id;
                    let now = find(&mut oracle, id).await;
                    let ack = now.ack.as_ref().unwrap_or_else(|| panic!("{now:?}"));
                    assert!(
                        ack.by.starts_with(argument) && ack.by.contains("works/"),
                        "acknowledged by the name typed and the operator's key: {ack:?}"
                    );
                    format!("acked {id}")
                }
                "silenced" => {
                    let alert = alert.as_ref().expect("fired first");
                    let hours: i64 = argument.parse().expect("silenced HOURS");
                    let silence = only_active_silence(&mut oracle).await;
                    let matchers: BTreeSet<_> = silence
                        .matchers
                        .iter()
                        .map(|m| (m.name.clone(), m.value.clone(), m.op))
                        .collect();
                    let labels: BTreeSet<_> = alert
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone(), v1::MatchOperator::Equal as i32))
                        .collect();
                    assert_eq!(matchers, labels, "matchers from the alert's labels");
                    let span = silence.ends_unix_ms - silence.created_unix_ms;
                    assert!(
                        (span - hours * 3_600_000).abs() < 60_000,
                        "the silence lasts the chosen {hours} h: {silence:?}"
                    );
                    assert_eq!(silence.comment, "cabinet replaced tomorrow");
                    let covered = find(&mut oracle, alert.id).await;
                    assert_eq!(covered.silenced_by, [silence.id], "{covered:?}");
                    silence_id = Some(silence.id);
                    format!("silenced {}", silence.id)
                }
                "expired" => {
                    let active = silences(&mut oracle).await;
                    assert!(
                        active.iter().all(|s| !s.active),
                        "Expire ended the silence: {active:?}"
                    );
                    format!("expired {}", silence_id.expect("silenced first"))
                }
                other => panic!("the browser test asked for {other:?}"),
            };
            browser.answer(&answer);
            answered.push(verb.to_string());
        }
    })
    .await;
    let status = browser.conclude(finished.is_ok(), limit);
    assert!(
        status.success() && answered == ["fire", "acked", "silenced", "expired"],
        "the browser test failed ({status}, answered {answered:?}); its output is above, \
         screenshots in {}",
        artifacts().display()
    );
    drop(device);
    assert!(citytel.stop().success(), "citytel exits cleanly");
}

/// ListAlerts, of `device` if not empty.
async fn list(client: &mut Alerts, device: &str) -> v1::ListAlertsResponse {
    client
        .list_alerts(v1::ListAlertsRequest {
            filter: Some(v1::AlertFilter {
                device_id: device.into(),
                ..Default::default()
            }),
            limit: 0,
        })
        .await
        .expect("ListAlerts")
        .into_inner()
}

/// The alert `id`, as ListAlerts answers it.
async fn find(client: &mut Alerts, id: u64) -> v1::Alert {
    list(client, DEVICE)
        .await
        .alerts
        .into_iter()
        .find(|a| a.id == id)
        .unwrap_or_else(|| panic!("ListAlerts lists alert {id}"))
}

/// Every silence, expired ones included.
async fn silences(client: &mut Alerts) -> Vec<v1::Silence> {
    client
        .list_silences(v1::ListSilencesRequest {
            include_expired: true,
        })
        .await
        .expect("ListSilences")
        .into_inner()
        .silences
}

/// The one silence in force.
async fn only_active_silence(client: &mut Alerts) -> v1::Silence {
    let all = silences(client).await;
    let active: Vec<_> = all.into_iter().filter(|s| s.active).collect();
    assert_eq!(active.len(), 1, "one silence in force: {active:?}");
    active.into_iter().next().expect("one")
}
