//! A threshold rule with `for`, `keep_firing_for` and a clear value (hysteresis), against a
//! cabinet whose readings the test scripts on a manual clock: one alert through the dips that
//! the clear value and `keep_firing_for` bridge, where the same readings under a bare rule give
//! two; each pending, firing and resolving at the instants worked out by hand below from the
//! documented semantics, in `ListAlerts` and at the webhook.

use std::time::Duration;

use citytel_ingest::clock::{Clock, system_now_ms};
use citytel_proto::v1;
use citytel_testkit::net::loopback;
use citytel_testkit::wait::Wait;
use citytel_tests::raw_mqtt::RawClient;
use citytel_tests::scenario::Ingester;
use citytel_tests::webhook::Webhook;
use citytel_tests::wire::{batch_payload, telemetry_topic};

use super::{LONG_MS, birth};

const S: i64 = 1_000;

/// Sends one reading of metric `t` with `value` (sequence `seq`), taken at `at_ms`.
async fn send(client: &mut RawClient, seq: u64, at_ms: i64, value: f64) {
    let payload = batch_payload("cab-1", 1, &["t"], &[(seq, at_ms, vec![value])]);
    let pkid = u16::try_from(seq + 2).expect("fits");
    client
        .publish_acked(&telemetry_topic("cab-1"), payload, pkid)
        .await;
}

/// (rule, pending since, fired at, resolved at) relative to `t0`, of every alert listed.
async fn listed(citytel: &Ingester, t0: i64) -> Vec<(String, i64, i64, i64)> {
    let rel = |ms: i64| if ms == 0 { -1 } else { ms - t0 };
    let mut out: Vec<(String, i64, i64, i64)> = citytel
        .alerts()
        .await
        .list_alerts(v1::ListAlertsRequest::default())
        .await
        .expect("ListAlerts")
        .into_inner()
        .alerts
        .into_iter()
        .map(|a| {
            (
                a.rule.clone(),
                rel(a.pending_since_unix_ms),
                rel(a.firing_since_unix_ms),
                rel(a.resolved_unix_ms),
            )
        })
        .collect();
    out.sort();
    out
}

fn ms(value: &serde_json::Value) -> i64 {
    let text = value.as_str().unwrap_or_default();
    let t = humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let d = t.duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(d.as_millis()).expect("fits")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hysteresis_and_keep_firing_for_make_one_alert_of_a_wavering_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Webhook::start(loopback(0)).await;
    let config = format!(
        "[alerts]
retry_initial = \"50ms\"
retry_max = \"200ms\"

[[alerts.webhook]]
name = \"hook\"
url = \"{}\"

[[alerts.rule]]
name = \"hot\"
kind = \"threshold\"
severity = \"major\"
metric = \"t\"
op = \">\"
value = 60.0
clear = 55.0
for = \"10s\"
keep_firing_for = \"30s\"

[[alerts.rule]]
name = \"hot-bare\"
kind = \"threshold\"
severity = \"minor\"
metric = \"t\"
op = \">\"
value = 60.0
",
        hook.url()
    );
    let t0 = system_now_ms() - 3_600_000;
    let clock = Clock::manual(t0);
    let mut citytel =
        Ingester::start_configured(&dir.path().join("data"), clock, None, Some(&config)).await;
    let mqtt = citytel.mqtt.expect("the device endpoint runs");
    let mut device = birth(mqtt, "cab-1", LONG_MS).await;

    // (seconds after t0, value). "hot": pending at 10 s (61 > 60); 58 and 57 are above the
    // clear value, so it holds and fires at 20 s (10 s `for`), seen when the 25 s reading
    // comes; 54 at 30 s stops it (clearing until 60 s), 62 at 45 s holds again, 50 at 50 s
    // stops it (clearing until 80 s), 54 at 70 s does not hold: resolved at 80 s, seen when
    // the clock reaches 90 s. "hot-bare": 61 fires at 10 s, 58 resolves it at 15 s; 62 fires
    // at 45 s, 50 resolves it at 50 s.
    let script = [
        (0, 50.0),
        (10, 61.0),
        (15, 58.0),
        (25, 57.0),
        (30, 54.0),
        (45, 62.0),
        (50, 50.0),
        (70, 54.0),
    ];
    for (seq, (at, value)) in (1u64..).zip(script) {
        clock.set_ms(t0 + at * S);
        send(&mut device, seq, t0 + at * S, value).await;
    }
    clock.set_ms(t0 + 90 * S);

    let want = vec![
        ("hot".to_string(), 10 * S, 20 * S, 80 * S),
        ("hot-bare".to_string(), 10 * S, 10 * S, 15 * S),
        ("hot-bare".to_string(), 45 * S, 45 * S, 50 * S),
    ];
    let mut wait =
        Wait::new("the threshold alerts", Duration::from_secs(20)).every(Duration::from_millis(50));
    loop {
        let got = listed(&citytel, t0).await;
        if got == want {
            break;
        }
        if wait.retry().await.is_err() {
            assert_eq!(got, want, "(rule, pending, fired, resolved) in ms after t0");
        }
    }

    // The webhook: each transition once, with its instants.
    let mut wait =
        Wait::new("six webhook posts", Duration::from_secs(20)).every(Duration::from_millis(50));
    while hook.received().len() < 6 {
        wait.retry()
            .await
            .unwrap_or_else(|e| panic!("{e}: {:?}", hook.received()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sent: Vec<(String, String, i64)> = hook
        .received()
        .iter()
        .map(|p| {
            let a = &p.body["alerts"][0];
            let status = a["status"].as_str().unwrap_or_default().to_string();
            let at = if status == "firing" {
                ms(&a["startsAt"])
            } else {
                ms(&a["endsAt"])
            };
            (
                a["labels"]["alertname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                status,
                at - t0,
            )
        })
        .collect();
    sent.sort();
    let n = |rule: &str, status: &str, at: i64| (rule.to_string(), status.to_string(), at);
    assert_eq!(
        sent,
        [
            n("hot", "firing", 20 * S),
            n("hot", "resolved", 80 * S),
            n("hot-bare", "firing", 10 * S),
            n("hot-bare", "firing", 45 * S),
            n("hot-bare", "resolved", 15 * S),
            n("hot-bare", "resolved", 50 * S),
        ]
    );
    drop(device);
    citytel.stop().await;
}
