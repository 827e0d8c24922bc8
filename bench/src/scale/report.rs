//! The results of `citytel-bench scale`: one row per fleet size with citytel's figures and the
//! peer's, the growth factor of each figure between consecutive sizes, as a Markdown table on
//! stdout and as JSON.
//!
//! JSON shape: `{"rows": [{"devices", "series", "citytel": {...}, "victoriametrics": {...}}],
//! "growth": [{"from_devices", "to_devices", "devices", "intake_msg_per_s", ...}], "run": {...}}`;
//! a figure that was not measured is `null`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::citytel::CitytelFigures;
use super::figures::{growth, series};
use super::peer::PeerFigures;

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One row per fleet size, smallest first.
    pub rows: Vec<Row>,
    /// Growth factors from each size to the next.
    pub growth: Vec<Growth>,
    /// How the run was made.
    pub run: RunInfo,
}

/// One fleet size.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Devices.
    pub devices: u64,
    /// Series (5 per device).
    pub series: u64,
    /// citytel's figures.
    pub citytel: CitytelFigures,
    /// The peer's, unless `--no-peer`.
    pub victoriametrics: Option<PeerFigures>,
}

/// How much each figure grew from one size to the next (`next / previous`).
#[derive(Debug, Serialize, PartialEq)]
pub struct Growth {
    /// The smaller size.
    pub from_devices: u64,
    /// The larger size.
    pub to_devices: u64,
    /// Devices.
    pub devices: f64,
    /// citytel's registration intake.
    pub intake_msg_per_s: Option<f64>,
    /// citytel's p99 under the steady load.
    pub steady_p99_ms: Option<f64>,
    /// citytel's RSS after.
    pub rss_after_bytes: Option<f64>,
    /// citytel's peak RSS during the registration.
    pub peak_rss_registration_bytes: Option<f64>,
    /// citytel's bytes per series.
    pub bytes_per_series: Option<f64>,
    /// citytel's restart to SERVING.
    pub restart_to_serving_s: Option<f64>,
    /// citytel's GetFleetSummary median.
    pub fleet_summary_ms: Option<f64>,
    /// citytel's slowest ListDevices page.
    pub list_devices_page_ms: Option<f64>,
    /// citytel's ListLatest of every device.
    pub list_latest_ms: Option<f64>,
    /// citytel's graceful shutdown.
    pub shutdown_s: Option<f64>,
    /// VictoriaMetrics' RSS after.
    pub vm_rss_after_bytes: Option<f64>,
    /// VictoriaMetrics' import rate.
    pub vm_import_lines_per_s: Option<f64>,
}

/// How the run was made.
#[derive(Debug, Serialize)]
pub struct RunInfo {
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    /// CPUs available.
    pub cpus: usize,
    /// Generator connections.
    pub connections: u32,
    /// Seconds of steady load per size.
    pub steady_s: f64,
    /// Counted calls of each query per measurement.
    pub runs: usize,
}

impl Row {
    /// The row of `devices` devices.
    pub fn new(devices: u32, citytel: CitytelFigures, vm: Option<PeerFigures>) -> Row {
        let devices = u64::from(devices);
        Row {
            devices,
            series: series(devices),
            citytel,
            victoriametrics: vm,
        }
    }
}

impl Growth {
    /// From row `a` to row `b`.
    pub fn between(a: &Row, b: &Row) -> Growth {
        let (ca, cb) = (&a.citytel, &b.citytel);
        let g = |x: Option<f64>, y: Option<f64>| growth(x, y);
        let vm = |r: &Row, pick: fn(&PeerFigures) -> Option<f64>| {
            r.victoriametrics.as_ref().and_then(pick)
        };
        Growth {
            from_devices: a.devices,
            to_devices: b.devices,
            devices: b.devices as f64 / a.devices.max(1) as f64,
            intake_msg_per_s: g(ca.intake_msg_per_s, cb.intake_msg_per_s),
            steady_p99_ms: g(ca.steady_p99_ms, cb.steady_p99_ms),
            rss_after_bytes: g(as_f64(ca.rss_after_bytes), as_f64(cb.rss_after_bytes)),
            peak_rss_registration_bytes: g(
                as_f64(ca.peak_rss_registration_bytes),
                as_f64(cb.peak_rss_registration_bytes),
            ),
            bytes_per_series: g(ca.bytes_per_series, cb.bytes_per_series),
            restart_to_serving_s: g(ca.restart_to_serving_s, cb.restart_to_serving_s),
            fleet_summary_ms: g(ca.fleet_summary_ms, cb.fleet_summary_ms),
            list_devices_page_ms: g(ca.list_devices_page_ms, cb.list_devices_page_ms),
            list_latest_ms: g(ca.list_latest_ms, cb.list_latest_ms),
            shutdown_s: g(ca.shutdown_s, cb.shutdown_s),
            vm_rss_after_bytes: g(
                vm(a, |p| as_f64(p.rss_after_bytes)),
                vm(b, |p| as_f64(p.rss_after_bytes)),
            ),
            vm_import_lines_per_s: g(
                vm(a, |p| p.import_lines_per_s),
                vm(b, |p| p.import_lines_per_s),
            ),
        }
    }
}

impl Report {
    /// The report of `rows` (in the order measured), with the growth between consecutive sizes.
    pub fn new(rows: Vec<Row>, run: RunInfo) -> Report {
        let growth = rows
            .windows(2)
            .map(|w| Growth::between(&w[0], &w[1]))
            .collect();
        Report { rows, growth, run }
    }

    /// The Markdown table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let r = &self.run;
        let _ = writeln!(
            s,
            "City scale: registration through the device endpoint (1-reading messages of 5 \
             metrics, {} connections x 1000 in flight), then one reading per device per minute \
             for {} s; GetFleetSummary median of {} calls; {} CPUs shared by everything:\n",
            r.connections, r.steady_s, r.runs, r.cpus
        );
        s.push_str(
            "| devices (series) | intake msg/s | p99 publish-to-PUBACK (steady) | RSS after | \
             peak RSS (registration) | bytes/series | bytes/device | restart to SERVING | \
             GetFleetSummary | shutdown | VictoriaMetrics import lines/s | VictoriaMetrics RSS \
             after (bytes/series) |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let c = &row.citytel;
            let vm = row.victoriametrics.as_ref();
            let _ = writeln!(
                s,
                "| {} ({}) | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                count(row.devices),
                count(row.series),
                rate(c.intake_msg_per_s),
                p99(c.steady_p99_ms, c.steady_msg_per_s),
                bytes(c.rss_after_bytes),
                bytes(c.peak_rss_registration_bytes),
                num(c.bytes_per_series),
                num(c.bytes_per_device),
                secs(c.restart_to_serving_s),
                ms(c.fleet_summary_ms),
                secs(c.shutdown_s),
                rate(vm.and_then(|p| p.import_lines_per_s)),
                match vm {
                    Some(p) =>
                        format!("{} ({})", bytes(p.rss_after_bytes), num(p.bytes_per_series)),
                    None => "-".into(),
                },
            );
        }
        for g in &self.growth {
            let _ = writeln!(
                s,
                "| growth {} -> {} (x{:.1}) | {} | {} | {} | {} | {} | - | {} | {} | {} | {} | {} |",
                count(g.from_devices),
                count(g.to_devices),
                g.devices,
                factor(g.intake_msg_per_s),
                factor(g.steady_p99_ms),
                factor(g.rss_after_bytes),
                factor(g.peak_rss_registration_bytes),
                factor(g.bytes_per_series),
                factor(g.restart_to_serving_s),
                factor(g.fleet_summary_ms),
                factor(g.shutdown_s),
                factor(g.vm_import_lines_per_s),
                factor(g.vm_rss_after_bytes),
            );
        }
        self.queries_table(&mut s);
        let errors: Vec<String> = self
            .rows
            .iter()
            .flat_map(|row| {
                let c = row.citytel.error.as_ref().map(|e| ("citytel", e));
                let v = (row.victoriametrics.as_ref())
                    .and_then(|p| p.error.as_ref())
                    .map(|e| ("victoriametrics", e));
                c.into_iter()
                    .chain(v)
                    .map(move |(who, e)| format!("- {who} at {} devices: {e}", row.devices))
            })
            .collect();
        if !errors.is_empty() {
            let _ = writeln!(s, "\nFailed:\n{}", errors.join("\n"));
        }
        s
    }

    /// The fleet-wide queries at each size, with their growth, appended to `s`.
    fn queries_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\nQueries (medians of {} calls; ListDevices: the slowest of the pages of 1,000 at the \
             start, middle and end; ListLatest: every device, every page, summed round trips):\n",
            self.run.runs
        );
        s.push_str(
            "| devices (series) | GetFleetSummary | ListDevices page | ListLatest all (pages, \
             largest answer) | GetFleetSummary after restart | ListLatest after restart |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|\n");
        for row in &self.rows {
            let c = &row.citytel;
            let pages = match (c.list_latest_pages, c.list_latest_largest_bytes) {
                (Some(p), Some(b)) => format!(" ({p}, {:.1} MiB)", b as f64 / 1048576.0),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} ({}) | {} | {} | {}{pages} | {} | {} |",
                count(row.devices),
                count(row.series),
                ms(c.fleet_summary_ms),
                ms(c.list_devices_page_ms),
                ms(c.list_latest_ms),
                ms(c.fleet_summary_after_restart_ms),
                ms(c.list_latest_after_restart_ms),
            );
        }
        for g in &self.growth {
            let _ = writeln!(
                s,
                "| growth {} -> {} (x{:.1}) | {} | {} | {} | - | - |",
                count(g.from_devices),
                count(g.to_devices),
                g.devices,
                factor(g.fleet_summary_ms),
                factor(g.list_devices_page_ms),
                factor(g.list_latest_ms),
            );
        }
    }

    /// Whether every measurement ran to its end.
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| {
            r.citytel.error.is_some()
                || r.victoriametrics
                    .as_ref()
                    .is_some_and(|p| p.error.is_some())
        })
    }

    /// Writes the report as JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

fn as_f64(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 100_000 == 0 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn rate(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 1e3 => format!("{:.1}k", v / 1e3),
        Some(v) => format!("{v:.0}"),
        None => "-".into(),
    }
}

fn p99(p99: Option<f64>, at: Option<f64>) -> String {
    match (p99, at) {
        (Some(p), Some(r)) => format!("{} at {} msg/s", ms(Some(p)), rate(Some(r))),
        (p, _) => ms(p),
    }
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 1e3 => format!("{:.2} s", v / 1e3),
        Some(v) if v >= 10.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "-".into(),
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2} s"))
}

fn bytes(v: Option<u64>) -> String {
    match v {
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
        None => "-".into(),
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}"))
}

fn factor(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("x{v:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(devices: u32, rss_mb: u64, intake: f64, vm_rss_mb: Option<u64>) -> Row {
        let n = u64::from(devices);
        let rss = rss_mb * 1_000_000;
        let citytel = CitytelFigures {
            intake_msg_per_s: Some(intake),
            rss_after_bytes: Some(rss),
            bytes_per_series: super::super::figures::bytes_per(rss, series(n)),
            restart_to_serving_s: Some(0.5),
            list_latest_ms: Some(devices as f64 / 1000.0),
            list_latest_pages: Some(n / 10_000),
            list_latest_largest_bytes: Some(3 << 20),
            ..CitytelFigures::default()
        };
        let vm = vm_rss_mb.map(|mb| PeerFigures {
            rss_after_bytes: Some(mb * 1_000_000),
            ..PeerFigures::default()
        });
        Row::new(devices, citytel, vm)
    }

    fn info() -> RunInfo {
        RunInfo {
            started_at: "2026-12-05T12:00:00Z".into(),
            elapsed_s: 1.0,
            cpus: 2,
            connections: 50,
            steady_s: 60.0,
            runs: 5,
        }
    }

    #[test]
    fn growth_is_between_consecutive_sizes() {
        let report = Report::new(
            vec![
                row(100_000, 349, 59_000.0, Some(500)),
                row(300_000, 1047, 47_200.0, Some(1500)),
                row(1_000_000, 5900, 35_400.0, None),
            ],
            info(),
        );
        assert_eq!(report.growth.len(), 2);
        let g = &report.growth[0];
        assert_eq!((g.from_devices, g.to_devices), (100_000, 300_000));
        assert_eq!(g.devices, 3.0);
        assert!((g.rss_after_bytes.unwrap() - 3.0).abs() < 1e-9);
        assert!((g.bytes_per_series.unwrap() - 1.0).abs() < 1e-9);
        assert!((g.intake_msg_per_s.unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(g.restart_to_serving_s, Some(1.0));
        assert_eq!(g.vm_rss_after_bytes, Some(3.0));
        assert_eq!(g.fleet_summary_ms, None, "not measured");
        assert_eq!(g.list_latest_ms, Some(3.0));
        // No peer at the larger size: no factor.
        assert_eq!(report.growth[1].vm_rss_after_bytes, None);
        assert!(!report.failed());
    }

    #[test]
    fn the_table_has_a_row_per_size_and_per_step() {
        let mut failed = row(300_000, 1047, 47_200.0, None);
        failed.citytel.error = Some("citytel serve exited".into());
        let report = Report::new(vec![row(100_000, 349, 59_000.0, Some(500)), failed], info());
        let table = report.table();
        assert!(table.contains("| 100k (500k) | 59.0k |"), "{table}");
        assert!(
            table.contains("| growth 100k -> 300k (x3.0) | x0.80 |"),
            "{table}"
        );
        assert!(table.contains("citytel at 300000 devices: citytel serve exited"));
        assert!(
            table.contains("| 100k (500k) | - | - | 100 ms (10, 3.0 MiB) | - | - |"),
            "{table}"
        );
        assert!(
            table.contains("| growth 100k -> 300k (x3.0) | - | - | x3.00 | - | - |"),
            "{table}"
        );
        assert!(report.failed());
        assert_eq!(count(1_000_000), "1.0M");
        assert_eq!(count(5_000_000), "5.0M");
        assert_eq!(count(200), "200");
    }
}
