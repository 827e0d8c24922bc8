//! The results of `citytel-bench mqtt`: medians per path and batch size, ratios against the
//! Mosquitto ceiling of the same batch size, the targets with PASS/FAIL, as a Markdown table on
//! stdout and as JSON.
//!
//! JSON shape: `{"rows": [{"path", "batch", "readings_per_s", "vs_ceiling", ..., "runs":
//! [Measurement...]}], "targets": [{"name", "value", "target", "pass"}], "run": {...}}`; figures
//! are medians over the runs that produced them, `null` when none did.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::measure::{Measurement, PathKind};
use crate::measure::median;

/// Readings per second both citytel paths must reach with batches of 10 or more.
pub const BATCHED_TARGET: f64 = 500_000.0;
/// The device endpoint vs the ceiling, single-reading messages.
pub const ENDPOINT_TARGET: f64 = 2.0;
/// The broker source vs the ceiling, single-reading messages.
pub const BROKER_TARGET: f64 = 0.9;
/// The device endpoint with alert rules vs without, same batch size.
pub const RULES_TARGET: f64 = 0.95;
/// The device endpoint with MQTT 5 devices vs 3.1.1 devices, same batch size.
pub const MQTT5_TARGET: f64 = 0.9;
/// The device endpoint with Sparkplug B DDATA vs citytel's own format, same readings per message.
pub const SPARKPLUG_TARGET: f64 = 0.8;

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One row per path and batch size.
    pub rows: Vec<Row>,
    /// The targets of the issue.
    pub targets: Vec<Target>,
    /// How the run was made.
    pub run: RunInfo,
}

/// How the run was made.
#[derive(Debug, Serialize)]
pub struct RunInfo {
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    /// Runs per path and batch size.
    pub runs: usize,
    /// CPUs available.
    pub cpus: usize,
    /// Generator connections.
    pub connections: u32,
    /// Generator devices.
    pub devices: u32,
    /// In-flight window per connection.
    pub inflight: u16,
    /// Measured seconds per run.
    pub duration_s: f64,
    /// Warm-up seconds per run.
    pub warmup_s: f64,
}

/// Medians of one path at one batch size.
#[derive(Debug, Serialize)]
pub struct Row {
    /// The path.
    pub path: PathKind,
    /// Readings per message.
    pub batch: u32,
    /// Readings per second delivered (ceiling) or durable (citytel).
    pub readings_per_s: Option<f64>,
    /// Against the ceiling's median at the same batch size.
    pub vs_ceiling: Option<f64>,
    /// CPU per reading of the process under test, us.
    pub cpu_us_per_reading: Option<f64>,
    /// Mosquitto's CPU per reading on the broker path, us.
    pub broker_cpu_us_per_reading: Option<f64>,
    /// The generator's CPU per reading, us.
    pub generator_cpu_us_per_reading: Option<f64>,
    /// p99 publish-to-durable, ms.
    pub durable_p99_ms: Option<f64>,
    /// The cumulative-curve estimate of it, ms.
    pub curve_p99_ms: Option<f64>,
    /// The generator's own p99 (to whatever acknowledges it), ms.
    pub generator_p99_ms: Option<f64>,
    /// Peak RSS of the process under test, bytes.
    pub peak_rss_bytes: Option<f64>,
    /// Seconds after the window until everything had arrived.
    pub settle_s: Option<f64>,
    /// With alert rules: readings/s against the endpoint without rules, same batch size.
    pub vs_no_rules: Option<f64>,
    /// With MQTT 5 devices: readings/s against the endpoint with 3.1.1 devices, same batch size.
    pub vs_mqtt311: Option<f64>,
    /// Sparkplug B path: readings/s over the endpoint's with citytel's own format.
    pub vs_own_format: Option<f64>,
    /// With alert rules: median deadline-to-Alertmanager latency, ms (median over runs).
    pub alert_p50_ms: Option<f64>,
    /// Its 99th percentile, ms (median over runs).
    pub alert_p99_ms: Option<f64>,
    /// Alerts timed per run (median).
    pub alerts_timed: Option<f64>,
    /// Runs that failed, with their errors.
    pub errors: Vec<String>,
    /// Every run.
    pub runs: Vec<Measurement>,
}

/// One target of the issue.
#[derive(Debug, Serialize)]
pub struct Target {
    /// What is compared.
    pub name: String,
    /// The measured value.
    pub value: Option<f64>,
    /// The bar (a ratio or readings/s).
    pub target: f64,
    /// Whether the value reaches the bar.
    pub pass: bool,
}

impl Row {
    /// The medians of `runs`.
    pub fn of(path: PathKind, batch: u32, runs: Vec<Measurement>) -> Row {
        let med = |f: fn(&Measurement) -> Option<f64>| {
            let values: Vec<f64> = runs
                .iter()
                .filter(|m| m.error.is_none())
                .filter_map(f)
                .collect();
            (!values.is_empty()).then(|| median(&values))
        };
        Row {
            path,
            batch,
            readings_per_s: med(|m| m.readings_per_s),
            vs_ceiling: None,
            cpu_us_per_reading: med(|m| m.cpu_us_per_reading),
            broker_cpu_us_per_reading: med(|m| m.broker_cpu_us_per_reading),
            generator_cpu_us_per_reading: med(|m| m.generator_cpu_us_per_reading),
            durable_p99_ms: med(|m| m.durable_p99_ms),
            curve_p99_ms: med(|m| m.curve_p99_ms),
            generator_p99_ms: med(|m| m.generator_p99_ms),
            peak_rss_bytes: med(|m| m.peak_rss_bytes.map(|b| b as f64)),
            settle_s: med(|m| m.settle_s),
            vs_no_rules: None,
            vs_mqtt311: None,
            vs_own_format: None,
            alert_p50_ms: med(|m| m.alert_p50_ms),
            alert_p99_ms: med(|m| m.alert_p99_ms),
            alerts_timed: med(|m| m.alerts_timed.map(|n| n as f64)),
            errors: runs.iter().filter_map(|m| m.error.clone()).collect(),
            runs,
        }
    }
}

impl Report {
    /// Fills in the ratios and the targets.
    pub fn new(mut rows: Vec<Row>, run: RunInfo) -> Report {
        let ceiling = |rows: &[Row], path: PathKind, batch: u32| {
            rows.iter()
                .find(|r| r.path == path && r.batch == batch)
                .and_then(|r| r.readings_per_s)
        };
        for i in 0..rows.len() {
            if !rows[i].path.is_ceiling() {
                rows[i].vs_ceiling = ceiling(&rows, rows[i].path.ceiling(), rows[i].batch)
                    .zip(rows[i].readings_per_s)
                    .map(|(c, r)| r / c);
            }
            if rows[i].path == PathKind::EndpointRules {
                rows[i].vs_no_rules = ceiling(&rows, PathKind::Endpoint, rows[i].batch)
                    .zip(rows[i].readings_per_s)
                    .map(|(c, r)| r / c);
            }
            if rows[i].path == PathKind::EndpointMqtt5 {
                rows[i].vs_mqtt311 = ceiling(&rows, PathKind::Endpoint, rows[i].batch)
                    .zip(rows[i].readings_per_s)
                    .map(|(c, r)| r / c);
            }
            if rows[i].path == PathKind::EndpointSparkplug {
                rows[i].vs_own_format = ceiling(&rows, PathKind::Endpoint, rows[i].batch)
                    .zip(rows[i].readings_per_s)
                    .map(|(c, r)| r / c);
            }
        }
        let mut targets = Vec::new();
        for row in &rows {
            let (name, value, target) = match (row.path, row.batch) {
                (PathKind::Endpoint, 1) => (
                    "device endpoint / ceiling, 1 reading per message",
                    row.vs_ceiling,
                    ENDPOINT_TARGET,
                ),
                (PathKind::Broker, 1) => (
                    "broker source / ceiling, 1 reading per message",
                    row.vs_ceiling,
                    BROKER_TARGET,
                ),
                (PathKind::EndpointTls, 1) => (
                    "device endpoint over TLS / Mosquitto TLS ceiling, 1 reading per message",
                    row.vs_ceiling,
                    ENDPOINT_TARGET,
                ),
                (PathKind::Endpoint, b) if b >= 10 => (
                    "device endpoint readings/s, batches of 10+",
                    row.readings_per_s,
                    BATCHED_TARGET,
                ),
                (PathKind::Broker, b) if b >= 10 => (
                    "broker source readings/s, batches of 10+",
                    row.readings_per_s,
                    BATCHED_TARGET,
                ),
                (PathKind::EndpointRules, _) => (
                    "device endpoint with alert rules / without",
                    row.vs_no_rules,
                    RULES_TARGET,
                ),
                (PathKind::EndpointMqtt5, _) => (
                    "device endpoint with MQTT 5 devices / 3.1.1 devices",
                    row.vs_mqtt311,
                    MQTT5_TARGET,
                ),
                (PathKind::EndpointSparkplug, _) => (
                    "device endpoint with Sparkplug B DDATA / citytel's format",
                    row.vs_own_format,
                    SPARKPLUG_TARGET,
                ),
                _ => continue,
            };
            targets.push(Target {
                name: if row.batch > 10
                    || matches!(
                        row.path,
                        PathKind::EndpointRules
                            | PathKind::EndpointMqtt5
                            | PathKind::EndpointSparkplug
                    ) {
                    format!("{name} (batch {})", row.batch)
                } else {
                    name.to_string()
                },
                value,
                target,
                pass: value.is_some_and(|v| v >= target),
            });
        }
        Report { rows, targets, run }
    }

    /// The Markdown table for people (and for the README).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let r = &self.run;
        let _ = writeln!(
            s,
            "End to end over MQTT, QoS 1, {} connections x {} in flight, {} devices, 5 metrics \
             per reading, {} s measured after {} s warm-up, median of {} runs, {} CPUs shared by \
             everything:\n",
            r.connections, r.inflight, r.devices, r.duration_s, r.warmup_s, r.runs, r.cpus
        );
        s.push_str(
            "| path | readings/msg | readings/s | vs ceiling | ingest CPU us/reading | \
             p99 publish-to-durable | peak RSS | generator p99 (to its server) |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let durable = match row.path {
                PathKind::Ceiling | PathKind::CeilingTls => "n/a (no storage)".to_string(),
                PathKind::Endpoint
                | PathKind::EndpointTls
                | PathKind::EndpointRules
                | PathKind::EndpointMqtt5
                | PathKind::EndpointSparkplug => ms(row.durable_p99_ms),
                PathKind::Broker => format!("~{} (curves)", ms(row.durable_p99_ms)),
            };
            let generator = match row.path {
                PathKind::Endpoint
                | PathKind::EndpointTls
                | PathKind::EndpointRules
                | PathKind::EndpointMqtt5
                | PathKind::EndpointSparkplug => {
                    format!("{} (= durable)", ms(row.generator_p99_ms))
                }
                _ => format!("{} (Mosquitto's ack)", ms(row.generator_p99_ms)),
            };
            let cpu = match row.path {
                PathKind::Ceiling | PathKind::CeilingTls => {
                    format!("{} (Mosquitto)", us(row.cpu_us_per_reading))
                }
                PathKind::Endpoint
                | PathKind::EndpointTls
                | PathKind::EndpointRules
                | PathKind::EndpointMqtt5
                | PathKind::EndpointSparkplug => us(row.cpu_us_per_reading),
                PathKind::Broker => format!(
                    "{} (+ Mosquitto {})",
                    us(row.cpu_us_per_reading),
                    us(row.broker_cpu_us_per_reading)
                ),
            };
            let rss = match row.path {
                PathKind::Ceiling | PathKind::CeilingTls => {
                    format!("{} (Mosquitto)", mib(row.peak_rss_bytes))
                }
                _ => mib(row.peak_rss_bytes),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                row.path.label(),
                row.batch,
                rate(row.readings_per_s),
                row.vs_ceiling.map_or("-".into(), |v| format!("{v:.2}x")),
                cpu,
                durable,
                rss,
                generator,
            );
        }
        s.push_str("\n| target | measured | bar | |\n|---|---:|---:|---|\n");
        for t in &self.targets {
            let (value, bar) = if t.target < 100.0 {
                (
                    t.value.map_or("-".into(), |v| format!("{v:.2}x")),
                    format!(">= {:.2}x", t.target),
                )
            } else {
                (rate(t.value), format!(">= {}", rate(Some(t.target))))
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                t.name,
                value,
                bar,
                if t.pass { "PASS" } else { "FAIL" }
            );
        }
        for line in self.tls_cost() {
            let _ = writeln!(s, "{line}");
        }
        for line in self.alerting() {
            let _ = writeln!(s, "{line}");
        }
        let generator_cpu: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| {
                Some(format!(
                    "{} batch {}: {}",
                    short(r.path),
                    r.batch,
                    us(Some(r.generator_cpu_us_per_reading?))
                ))
            })
            .collect();
        let _ = writeln!(
            s,
            "\nGenerator CPU us/reading: {}.",
            generator_cpu.join(", ")
        );
        for row in &self.rows {
            for e in &row.errors {
                let _ = writeln!(s, "error ({} batch {}): {e}", short(row.path), row.batch);
            }
        }
        let _ = write!(s, "Run took {:.0} s.", r.elapsed_s);
        s
    }

    /// The cost of TLS per reading, where a run measured a path both ways: CPU per reading
    /// and throughput over TLS against plain TCP.
    pub fn tls_cost(&self) -> Vec<String> {
        let row = |path, batch| {
            self.rows
                .iter()
                .find(|r| r.path == path && r.batch == batch)
        };
        let mut lines = Vec::new();
        for tls_row in self.rows.iter().filter(|r| r.path.is_tls()) {
            let plain = match tls_row.path {
                PathKind::CeilingTls => PathKind::Ceiling,
                _ => PathKind::Endpoint,
            };
            let Some(plain_row) = row(plain, tls_row.batch) else {
                continue;
            };
            let cpu = tls_row
                .cpu_us_per_reading
                .zip(plain_row.cpu_us_per_reading)
                .map(|(t, p)| {
                    format!(
                        "{:+.2} us/reading CPU ({} -> {})",
                        t - p,
                        us(Some(p)),
                        us(Some(t))
                    )
                });
            let rate = tls_row
                .readings_per_s
                .zip(plain_row.readings_per_s)
                .map(|(t, p)| format!("{:.2}x the plain throughput", t / p));
            lines.push(format!(
                "\nTLS cost, {} batch {}: {}, {}.",
                short(plain),
                tls_row.batch,
                cpu.unwrap_or_else(|| "CPU -".into()),
                rate.unwrap_or_else(|| "throughput -".into()),
            ));
        }
        lines
    }

    /// The cost of alert rules and the deadline-to-Alertmanager latency, where a run measured
    /// the endpoint with rules.
    pub fn alerting(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for row in self
            .rows
            .iter()
            .filter(|r| r.path == PathKind::EndpointRules)
        {
            let plain = self
                .rows
                .iter()
                .find(|r| r.path == PathKind::Endpoint && r.batch == row.batch)
                .and_then(|r| r.readings_per_s);
            lines.push(format!(
                "\nAlert rules, batch {}: {} readings/s with rules, {} without, ratio {}; \
                 deadline to Alertmanager over {} alerts: p50 {}, p99 {}.",
                row.batch,
                rate(row.readings_per_s),
                rate(plain),
                row.vs_no_rules.map_or("-".into(), |v| format!("{v:.3}")),
                row.alerts_timed.map_or("-".into(), |n| format!("{n:.0}")),
                ms(row.alert_p50_ms),
                ms(row.alert_p99_ms),
            ));
        }
        lines
    }

    /// Writes the report as pretty JSON.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

fn short(path: PathKind) -> &'static str {
    match path {
        PathKind::Ceiling => "ceiling",
        PathKind::Endpoint => "endpoint",
        PathKind::Broker => "broker",
        PathKind::CeilingTls => "ceiling-tls",
        PathKind::EndpointTls => "endpoint-tls",
        PathKind::EndpointRules => "endpoint-rules",
        PathKind::EndpointMqtt5 => "endpoint-mqtt5",
        PathKind::EndpointSparkplug => "endpoint-sparkplug",
    }
}

fn rate(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 1e6 => format!("{:.2}M", v / 1e6),
        Some(v) => format!("{:.0}k", v / 1e3),
        None => "-".into(),
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "-".into(),
    }
}

fn us(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

fn mib(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0} MiB", v / (1024.0 * 1024.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rate: f64) -> Measurement {
        Measurement {
            readings_per_s: Some(rate),
            ..Measurement::default()
        }
    }

    fn info() -> RunInfo {
        RunInfo {
            started_at: String::new(),
            elapsed_s: 0.0,
            runs: 3,
            cpus: 2,
            connections: 50,
            devices: 1000,
            inflight: 1000,
            duration_s: 10.0,
            warmup_s: 2.0,
        }
    }

    #[test]
    fn ratios_are_against_the_ceiling_of_the_same_batch_and_targets_are_judged() {
        let rows = vec![
            Row::of(PathKind::Ceiling, 1, vec![run(50e3), run(40e3), run(60e3)]),
            Row::of(
                PathKind::Endpoint,
                1,
                vec![run(90e3), run(110e3), run(100e3)],
            ),
            Row::of(PathKind::Broker, 1, vec![run(44e3)]),
            Row::of(PathKind::Ceiling, 10, vec![run(500e3)]),
            Row::of(
                PathKind::Endpoint,
                10,
                vec![
                    run(600e3),
                    Measurement {
                        error: Some("boom".into()),
                        ..run(1e9)
                    },
                ],
            ),
            Row::of(PathKind::Broker, 10, vec![run(400e3)]),
        ];
        let report = Report::new(rows, info());
        assert_eq!(report.rows[1].vs_ceiling, Some(2.0));
        assert_eq!(report.rows[2].vs_ceiling, Some(44e3 / 50e3));
        assert_eq!(
            report.rows[4].readings_per_s,
            Some(600e3),
            "failed runs are left out"
        );
        assert_eq!(report.rows[4].errors, ["boom"]);
        let verdicts: Vec<bool> = report.targets.iter().map(|t| t.pass).collect();
        assert_eq!(verdicts, [true, false, true, false]);
        let table = report.table();
        assert!(table.contains("| citytel device endpoint | 1 | 100k | 2.00x |"));
        assert!(table.contains(
            "| broker source / ceiling, 1 reading per message | 0.88x | >= 0.90x | FAIL |"
        ));
    }
}
