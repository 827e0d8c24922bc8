//! The alerting part of `citytel-bench mqtt --alert-rules N`: the cost of rule evaluation on
//! ingest, and the time from a device's deadline to Alertmanager receiving its alert.
//!
//! - Both citytel endpoint runs (without and with rules) get the same configuration but for the
//!   rules: every kind's expected interval is [`INTERVAL`], so that the load's devices go
//!   offline three intervals (the shipped `offline_grace`) after the generator stops, with the
//!   same state machine work in both runs.
//! - The rules run gets `N` rules of every kind in turn over the load's devices (state on
//!   offline, late or unreachable with a `for` of an hour; thresholds and absences on the
//!   kinds' metrics that never fire in a run; availability and completeness per device, site
//!   or district, evaluated every minute), plus [`LATENCY_RULE`]: offline, no `for`, every
//!   device. Its alerts go to a real Alertmanager (Debian's `prometheus-alertmanager`) started
//!   for the run on a free port.
//! - After the generator stops, every device goes offline at its deadline (its last message
//!   plus three intervals), and the latency rule fires at that instant (its `startsAt`).
//!   Alertmanager stamps `updatedAt` when it receives an alert (re-sends are an hour apart), so
//!   `updatedAt - startsAt` per alert is deadline to Alertmanager, on one host's clock.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use citytel_testkit::alertmanager::{ALERTMANAGER, Alertmanager, HOLD_ONLY};
use citytel_testkit::net::free_port;
use citytel_testkit::wait::Wait;

use crate::measure::median;

/// The expected interval of every kind in both endpoint runs.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// The rule whose alerts are timed.
pub const LATENCY_RULE: &str = "bench-offline";
/// Longest wait for every device's alert to reach Alertmanager.
const LATENCY_LIMIT: Duration = Duration::from_secs(300);

/// Metrics of the load's kinds (cabinets, small cells, sensors), two each.
const METRICS: [(&str, &str); 6] = [
    ("cabinet", "temperature_c"),
    ("cabinet", "humidity_pct"),
    ("small_cell", "rsrp_dbm"),
    ("small_cell", "sinr_db"),
    ("sensor", "pm25_ugm3"),
    ("sensor", "no2_ugm3"),
];

/// The configuration both runs share: the availability intervals.
pub fn base_config() -> String {
    let s = INTERVAL.as_secs();
    format!(
        "[availability]\ndefault_interval = \"{s}s\"\nkind_intervals = {{ cabinet = \"{s}s\", \
         small_cell = \"{s}s\", gateway = \"{s}s\", sensor = \"{s}s\" }}\n"
    )
}

/// The rules run's configuration: [`base_config`], `n` mixed rules, the latency rule, and the
/// Alertmanager at `am_url` (re-sends an hour apart).
pub fn rules_config(n: u32, am_url: &str) -> String {
    let mut s = base_config();
    s.push_str(&format!(
        "\n[alerts]\nresend_interval = \"1h\"\nretry_initial = \"100ms\"\nretry_max = \"1s\"\n\n\
         [[alerts.alertmanager]]\nname = \"am\"\nurl = \"{am_url}\"\n\n\
         [[alerts.rule]]\nname = \"{LATENCY_RULE}\"\nkind = \"state\"\nseverity = \"critical\"\n\
         states = [\"offline\"]\n"
    ));
    for i in 0..n {
        let (kind, metric) = METRICS[i as usize % METRICS.len()];
        let per = ["device", "site", "district"][i as usize / 5 % 3];
        let body = match i % 5 {
            0 => {
                let state = ["offline", "late", "unreachable"][i as usize / 5 % 3];
                format!("kind = \"state\"\nstates = [\"{state}\"]\nfor = \"1h\"\n")
            }
            1 => format!(
                "kind = \"threshold\"\ndevices = {{ kinds = [\"{kind}\"] }}\nmetric = \"{metric}\"\n\
                 op = \">\"\nvalue = 1e9\nclear = 1e8\nfor = \"1m\"\nkeep_firing_for = \"5m\"\n"
            ),
            2 => format!(
                "kind = \"absence\"\ndevices = {{ kinds = [\"{kind}\"] }}\nmetric = \"{metric}\"\n\
                 after = \"1h\"\n"
            ),
            3 => format!(
                "kind = \"availability\"\ntarget = 1.0\nwindow = \"1h\"\ninterval = \"1m\"\n\
                 per = \"{per}\"\n"
            ),
            _ => format!(
                "kind = \"completeness\"\ntarget = 1.0\nwindow = \"1h\"\ninterval = \"1m\"\n\
                 per = \"{per}\"\n"
            ),
        };
        s.push_str(&format!(
            "\n[[alerts.rule]]\nname = \"bench-{i:03}\"\nseverity = \"warning\"\n{body}"
        ));
    }
    s
}

/// Starts Alertmanager on a free port with its files under `dir`, holding every alert and
/// sending nothing on (installing Debian's package first when it is missing and citytel-bench
/// runs as root).
pub async fn start_alertmanager(dir: &Path) -> Result<Alertmanager> {
    crate::process::ensure_debian_package(Path::new(ALERTMANAGER), "prometheus-alertmanager")?;
    let port = free_port()?;
    Alertmanager::start(dir, port, HOLD_ONLY)
        .await
        .context("starting alertmanager")
}

/// (startsAt, updatedAt) in ms of every alert of [`LATENCY_RULE`] `am` holds.
async fn latency_alerts(am: &Alertmanager) -> Result<Vec<(i64, i64)>> {
    let alerts = am.alerts(Some(LATENCY_RULE)).await?;
    alerts
        .iter()
        .map(|a| Ok((rfc3339_ms(&a["startsAt"])?, rfc3339_ms(&a["updatedAt"])?)))
        .collect()
}

fn rfc3339_ms(value: &serde_json::Value) -> Result<i64> {
    let text = value.as_str().unwrap_or_default();
    let t = humantime::parse_rfc3339_weak(text).with_context(|| format!("time {text:?}"))?;
    let d = t.duration_since(std::time::UNIX_EPOCH)?;
    Ok(i64::try_from(d.as_millis())?)
}

/// Deadline-to-Alertmanager latency over the devices that went offline.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Alerts timed.
    pub alerts: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// Waits until Alertmanager holds an alert of [`LATENCY_RULE`] for each of `devices` (they
/// went offline once the generator stopped), then times them.
pub async fn deadline_latency(am: &Alertmanager, devices: u32) -> Result<Latency> {
    let mut wait = Wait::new(
        format!("{devices} offline alerts in alertmanager"),
        LATENCY_LIMIT,
    )
    .every(Duration::from_secs(1));
    let alerts = loop {
        let alerts = latency_alerts(am).await?;
        if alerts.len() >= devices as usize {
            break alerts;
        }
        if wait.retry().await.is_err() {
            bail!(
                "only {} of {devices} offline alerts reached alertmanager within {} s",
                alerts.len(),
                LATENCY_LIMIT.as_secs()
            );
        }
    };
    let mut ms: Vec<f64> = alerts
        .iter()
        .map(|(starts, updated)| (updated - starts) as f64)
        .collect();
    ms.sort_by(f64::total_cmp);
    let p99 = ms[((ms.len() as f64 * 0.99).ceil() as usize).clamp(1, ms.len()) - 1];
    Ok(Latency {
        alerts: ms.len(),
        p50_ms: median(&ms),
        p99_ms: p99,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(text: &str) -> Result<(), String> {
        citytel_ingest::config::load_str(Some(("bench", text)), &[])
            .map_err(|e| e.to_string())?
            .validate()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_configurations_are_valid_and_the_rules_mix_every_kind() {
        validate(&base_config()).expect("base configuration");
        let text = rules_config(100, "http://127.0.0.1:9093");
        validate(&text).expect("rules configuration");
        assert_eq!(text.matches("[[alerts.rule]]").count(), 101);
        for kind in [
            "state",
            "threshold",
            "absence",
            "availability",
            "completeness",
        ] {
            assert_eq!(
                text.matches(&format!("kind = \"{kind}\"")).count(),
                if kind == "state" { 21 } else { 20 },
                "{kind}"
            );
        }
    }
}
