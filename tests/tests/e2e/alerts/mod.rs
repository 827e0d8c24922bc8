//! Alerting as an on-call engineer meets it: a cabinet that goes silent raises one alert, seen,
//! acknowledged and silenced through `citytel.v1.AlertService` by the roles that may, and
//! delivered to a real Alertmanager and a webhook that were down when it fired, across a
//! restart of citytel, each transition exactly once.
//!
//! - [`check`]: `citytel alerts check`.
//! - [`grpc`]: the alert service, its roles and scopes.
//! - [`reload`]: new rules on SIGHUP.
//! - [`delivery`]: Alertmanager and the webhook (`interop` group: needs Debian's
//!   `prometheus-alertmanager`).
//! - [`resend`]: periodic re-sends of a firing alert to Alertmanager, then its resolution
//!   (`interop` group).
//! - [`scenarios`]: the built-in scenarios, every rule kind firing and resolving at the
//!   instants their ground truth implies; [`scenario_readings`]: its threshold and
//!   completeness rules.
//! - [`threshold`]: hysteresis and `keep_firing_for` on a scripted value.

mod check;
mod delivery;
mod grpc;
mod reload;
mod resend;
mod scenario_readings;
mod scenarios;
mod threshold;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use citytel_proto::v1::{self, status};
use citytel_testkit::wait::Wait;
use citytel_tests::keys::Alerts;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::wire::{batch_payload, now_ms, status_topic, telemetry_topic};
use prost::Message as _;

/// The rule every test uses: a cabinet offline for a second.
pub(super) const RULE: &str = r#"
[[alerts.rule]]
name = "cabinet-offline"
kind = "state"
severity = "critical"
devices = { kinds = ["cabinet"] }
states = ["offline"]
for = "1s"
annotations = { summary = "{{ device }} at {{ site }} is offline" }
"#;

/// A reporting interval after which a silent device is offline in 1.5 s (three intervals).
pub(super) const SHORT_MS: u32 = 500;
/// One that keeps a device online for the rest of a test.
pub(super) const LONG_MS: u32 = 3_600_000;

/// An `[alerts]` section with `settings` (lines of `key = value`), then `rules`, delivering to an
/// Alertmanager on `am_port` (receiver `am`) and, with `hook_url`, a webhook (receiver `hook`).
pub(super) fn delivery_config(
    settings: &str,
    rules: &str,
    am_port: u16,
    hook_url: Option<&str>,
) -> String {
    let mut text = format!(
        "[alerts]\n{settings}\n{rules}\n[[alerts.alertmanager]]\nname = \"am\"\nurl = \"http://127.0.0.1:{am_port}\"\n"
    );
    if let Some(url) = hook_url {
        text.push_str(&format!(
            "\n[[alerts.webhook]]\nname = \"hook\"\nurl = \"{url}\"\n"
        ));
    }
    text
}

/// Writes a configuration file of `text` in `dir`.
pub(super) fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("citytel.toml");
    std::fs::write(&path, text).expect("write the configuration");
    path
}

/// Connects cabinet `device` to citytel's device endpoint and sends its birth, announcing
/// `interval_ms` as its reporting interval.
pub(super) async fn birth(mqtt: SocketAddr, device: &str, interval_ms: u32) -> RawClient {
    let mut client = RawClient::connect(mqtt, device).await;
    let birth = v1::Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: now_ms(),
        gateway_id: None,
        kind: Some(status::Kind::Birth(v1::Birth {
            firmware_version: "1.0".into(),
            reporting_interval_ms: interval_ms,
            ..Default::default()
        })),
    };
    client
        .publish_acked(&status_topic(device), birth.encode_to_vec(), 1)
        .await;
    client
}

/// Sends one reading of `device` (sequence `seq`).
pub(super) async fn reading(client: &mut RawClient, device: &str, seq: u64) {
    let payload = batch_payload(device, 1, &["t"], &[(seq, now_ms(), vec![20.0])]);
    let pkid = u16::try_from(seq % 60_000 + 2).expect("fits");
    client
        .publish_acked(&telemetry_topic(device), payload, pkid)
        .await;
}

/// Waits until `client` lists an alert of `device` in `state`, and returns it.
pub(super) async fn wait_alert(
    client: &mut Alerts,
    device: &str,
    state: v1::AlertState,
) -> v1::Alert {
    let mut wait = Wait::new(
        format!("an alert of {device} in {state:?}"),
        Duration::from_secs(30),
    )
    .every(Duration::from_millis(50));
    loop {
        let listed = client
            .list_alerts(v1::ListAlertsRequest {
                filter: Some(v1::AlertFilter {
                    device_id: device.into(),
                    ..Default::default()
                }),
                limit: 0,
            })
            .await
            .expect("ListAlerts")
            .into_inner();
        if let Some(a) = listed.alerts.into_iter().find(|a| a.state == state as i32) {
            return a;
        }
        wait.retry().await.unwrap_or_else(|e| panic!("{e}"));
    }
}
