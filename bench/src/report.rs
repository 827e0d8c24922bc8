//! The results: a table on stdout (figures, ratios citytel/peer, targets with pass/fail) and the
//! same as JSON, so runs can be compared.
//!
//! JSON shape: `{"dataset": {...}, "systems": {"citytel": {...}, "victoriametrics": {...},
//! "influxdb": {...}}, "comparison": {...}, "run": {...}}`; per system `import_values_per_s`,
//! `bytes_per_value`, `query_a_ms`, `query_b_ms`, `query_c_ms` (medians; null when not measured)
//! and, on failure, `error`; with `--auth`, `"auth"`: per mode (`open`, `admin key`,
//! `scoped key`) and query the medians, the ratios to the open mode and every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::dataset::Dataset;
use crate::peers::SystemResult;

/// Names of the systems, in table order.
pub const CITYTEL: &str = "citytel";
/// VictoriaMetrics' name in the table and the JSON.
pub const VICTORIAMETRICS: &str = "victoriametrics";
/// InfluxDB's name in the table and the JSON.
pub const INFLUXDB: &str = "influxdb";

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The dataset every system imported.
    pub dataset: Dataset,
    /// Per system (only those that were run).
    pub systems: BTreeMap<String, SystemResult>,
    /// Ratios citytel/peer and the targets.
    pub comparison: Comparison,
    /// What API keys and scope filtering cost (`--auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::peers::auth::AuthResult>,
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
    /// Counted runs per query (the median of these is reported).
    pub runs: usize,
    /// Uncounted warm-up runs before them.
    pub warmup_runs: usize,
    /// CPUs available.
    pub cpus: usize,
}

/// Ratios citytel/peer and the pass/fail of every target.
#[derive(Debug, Default, Serialize)]
pub struct Comparison {
    /// citytel / VictoriaMetrics per figure.
    pub citytel_vs_victoriametrics: BTreeMap<&'static str, f64>,
    /// citytel / InfluxDB per figure.
    pub citytel_vs_influxdb: BTreeMap<&'static str, f64>,
    /// Every target with its value and outcome.
    pub targets: Vec<TargetOutcome>,
}

/// One target and how citytel did.
#[derive(Debug, Serialize)]
pub struct TargetOutcome {
    /// What is compared, e.g. `query_a_ms`.
    pub figure: &'static str,
    /// `vs victoriametrics` (ratio) or `absolute`.
    pub kind: &'static str,
    /// The bar, e.g. `<= 0.2x` or `<= 1 ms`.
    pub target: String,
    /// The ratio or absolute value; null when not measured.
    pub value: Option<f64>,
    /// Whether the bar is met; null when not measured.
    pub pass: Option<bool>,
}

/// A figure of the table.
#[derive(Clone, Copy)]
struct Row {
    label: &'static str,
    key: &'static str,
    get: fn(&SystemResult) -> Option<f64>,
    fmt: fn(f64) -> String,
    /// Target ratio citytel/VictoriaMetrics: (`>=` if true else `<=`, bound).
    vs_vm: Option<(bool, f64)>,
    /// Absolute target for citytel: (bound, shown as).
    absolute: Option<(f64, &'static str)>,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn rows() -> [Row; 7] {
    [
        Row {
            label: "import values/s",
            key: "import_values_per_s",
            get: |r| r.import_values_per_s,
            fmt: |v| format!("{:.2} M", v / 1e6),
            vs_vm: Some((true, 2.0)),
            absolute: None,
        },
        Row {
            label: "bytes/value",
            key: "bytes_per_value",
            get: |r| r.bytes_per_value,
            fmt: |v| format!("{v:.3}"),
            vs_vm: Some((false, 1.0)),
            absolute: None,
        },
        Row {
            label: "(a) raw 24h one series",
            key: "query_a_ms",
            get: |r| r.query_a_ms,
            fmt: fmt_ms,
            vs_vm: Some((false, 0.2)),
            absolute: Some((1.0, "1 ms")),
        },
        Row {
            label: "(b) 5m avg 300 cabinets",
            key: "query_b_ms",
            get: |r| r.query_b_ms,
            fmt: fmt_ms,
            vs_vm: Some((false, 0.25)),
            absolute: Some((10.0, "10 ms")),
        },
        Row {
            label: "(c) latest every series",
            key: "query_c_ms",
            get: |r| r.query_c_ms,
            fmt: fmt_ms,
            vs_vm: Some((false, 0.05)),
            absolute: Some((10.0, "10 ms")),
        },
        Row {
            label: "import peak RSS",
            key: "import_peak_rss_bytes",
            get: |r| r.import_peak_rss_bytes.map(|b| b as f64),
            fmt: |v| format!("{:.0} MiB", v / 1024.0 / 1024.0),
            vs_vm: None,
            absolute: Some((GIB, "1 GiB")),
        },
        Row {
            label: "restart to ready",
            key: "restart_to_ready_ms",
            get: |r| r.restart_to_ready_ms,
            fmt: |v| format!("{:.2} s", v / 1e3),
            vs_vm: None,
            absolute: Some((3000.0, "3 s")),
        },
    ]
}

fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.3} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// `2.0`, `0.25`: at least one decimal, no trailing noise.
fn fmt_bound(bound: f64) -> String {
    if (bound * 10.0).fract() == 0.0 {
        format!("{bound:.1}")
    } else {
        format!("{bound}")
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

impl Comparison {
    /// Ratios and targets from the systems' results.
    pub fn of(systems: &BTreeMap<String, SystemResult>) -> Comparison {
        let mut c = Comparison::default();
        let citytel = systems.get(CITYTEL);
        for row in rows() {
            let ours = citytel.and_then(row.get);
            let ratio = |peer: &str| Some(ours? / systems.get(peer).and_then(row.get)?);
            let vs_vm = ratio(VICTORIAMETRICS);
            if let Some(r) = vs_vm {
                c.citytel_vs_victoriametrics.insert(row.key, r);
            }
            if let Some(r) = ratio(INFLUXDB) {
                c.citytel_vs_influxdb.insert(row.key, r);
            }
            if let Some((at_least, bound)) = row.vs_vm {
                let pass = vs_vm.map(|r| if at_least { r >= bound } else { r <= bound });
                c.targets.push(TargetOutcome {
                    figure: row.key,
                    kind: "vs victoriametrics",
                    target: format!(
                        "{} {}x",
                        if at_least { ">=" } else { "<=" },
                        fmt_bound(bound)
                    ),
                    value: vs_vm,
                    pass,
                });
            }
            if let Some((bound, shown)) = row.absolute {
                c.targets.push(TargetOutcome {
                    figure: row.key,
                    kind: "absolute",
                    target: format!("<= {shown}"),
                    value: ours,
                    pass: ours.map(|v| v <= bound),
                });
            }
        }
        c
    }

    fn outcome(&self, key: &str, kind: &str) -> Option<&TargetOutcome> {
        self.targets
            .iter()
            .find(|t| t.figure == key && t.kind == kind)
    }
}

impl Report {
    /// The table, as printed on stdout.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let cell = |name: &str, row: &Row| -> String {
            match self.systems.get(name) {
                None => "-".into(),
                Some(r) => match (row.get)(r) {
                    Some(v) => (row.fmt)(v),
                    None if r.error.is_some() => "error".into(),
                    None => "-".into(),
                },
            }
        };
        let _ = writeln!(
            out,
            "{:<26}{:>12}{:>17}{:>12}{:>12}{:>16}{:>18}{:>16}",
            "",
            CITYTEL,
            VICTORIAMETRICS,
            INFLUXDB,
            "citytel/vm",
            "target vs vm",
            "absolute target",
            "citytel/influx"
        );
        for row in rows() {
            let vs_vm = self
                .comparison
                .citytel_vs_victoriametrics
                .get(row.key)
                .map_or("-".into(), |r| format!("{r:.3}x"));
            let vs_influx = self
                .comparison
                .citytel_vs_influxdb
                .get(row.key)
                .map_or("-".into(), |r| format!("{r:.3}x"));
            let target = |kind: &str| match self.comparison.outcome(row.key, kind) {
                None => String::new(),
                Some(t) => match t.pass {
                    Some(p) => format!("{} {}", t.target, verdict(p)),
                    None => format!("{} n/a", t.target),
                },
            };
            let (vm, influx) = if row.vs_vm.is_some() {
                (cell(VICTORIAMETRICS, &row), cell(INFLUXDB, &row))
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                out,
                "{:<26}{:>12}{:>17}{:>12}{:>12}{:>16}{:>18}{:>16}",
                row.label,
                cell(CITYTEL, &row),
                vm,
                influx,
                if row.vs_vm.is_some() {
                    vs_vm
                } else {
                    String::new()
                },
                target("vs victoriametrics"),
                target("absolute"),
                if row.vs_vm.is_some() {
                    vs_influx
                } else {
                    String::new()
                },
            );
        }
        let ds = &self.dataset;
        let _ = writeln!(
            out,
            "\ndataset: {} ({:.2} GB): {} lines, {} values, {} series, {} devices, {} .. {}",
            ds.path.display(),
            ds.bytes as f64 / 1e9,
            ds.lines,
            ds.values,
            ds.series,
            ds.devices,
            ds.start,
            ds.end
        );
        let _ = writeln!(
            out,
            "queries: median of {} runs after 1 warm-up run; ratios are citytel/peer (lower is \
             better except import); bytes on disk exclude the holes of sparse files",
            self.run.runs
        );
        for (name, r) in &self.systems {
            for note in &r.notes {
                let _ = writeln!(out, "{name}: {note}");
            }
        }
        for (name, r) in &self.systems {
            if let Some(e) = &r.error {
                let _ = writeln!(out, "{name}: error: {e}");
            }
        }
        let _ = writeln!(out, "whole run: {:.0} s", self.run.elapsed_s);
        out
    }

    /// Writes the JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).context("serializing the results")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(import: f64, a: f64) -> SystemResult {
        SystemResult {
            import_values_per_s: Some(import),
            query_a_ms: Some(a),
            ..SystemResult::default()
        }
    }

    #[test]
    fn ratios_and_targets() {
        let mut systems = BTreeMap::new();
        systems.insert(CITYTEL.to_string(), sys(3e6, 0.5));
        systems.insert(VICTORIAMETRICS.to_string(), sys(1e6, 3.0));
        let c = Comparison::of(&systems);
        assert_eq!(c.citytel_vs_victoriametrics["import_values_per_s"], 3.0);
        let import = c
            .outcome("import_values_per_s", "vs victoriametrics")
            .and_then(|t| t.pass);
        assert_eq!(import, Some(true));
        let a = c
            .outcome("query_a_ms", "vs victoriametrics")
            .and_then(|t| t.pass);
        assert_eq!(a, Some(true));
        let a_abs = c.outcome("query_a_ms", "absolute").and_then(|t| t.pass);
        assert_eq!(a_abs, Some(true));
        let b = c.outcome("query_b_ms", "absolute").and_then(|t| t.pass);
        assert_eq!(b, None);
        assert_eq!(fmt_bound(2.0), "2.0");
        assert_eq!(fmt_bound(0.25), "0.25");
        assert_eq!(fmt_bound(0.05), "0.05");
    }
}
