//! `peers --auth`: what API keys and scope filtering cost on queries (a), (b) and (c).
//!
//! On the data citytel imported for the main table, the harness creates (with the service
//! stopped, through `citytel orgs create` and `citytel keys create`) an admin key, whose scope is
//! everything, and a viewer key whose scope lists every kind and every metric of the dataset: it
//! sees exactly what the open API sees, so the answers (and their checks) are the same, but every
//! device and metric goes through the scope's checks. Then citytel is served in three modes:
//!
//! - **open**: `api.authentication = false` (what the main table measures);
//! - **admin key**: keys required, the admin key on every call (authentication, rate limit, the
//!   fast path of an everything-scope);
//! - **scoped key**: keys required, the scoped key on every call (the same, plus filtering).
//!
//! The modes are interleaved over `rounds` rounds (open, admin, scoped, open, ...), each a fresh
//! `citytel serve` with one uncounted warm-up and `runs` counted runs per query, so drift on the
//! shared machine falls on every mode alike. Reported: the median of all counted runs per mode
//! and query, and each mode's median over the open one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use citytel_proto::catalog;
use citytel_proto::kind::Kind;
use serde::Serialize;

use super::System;
use super::citytel::Citytel;
use crate::dataset::Dataset;
use crate::measure;

/// The three ways citytel is served, in the order of a round.
pub const MODES: [&str; 3] = ["open", "admin key", "scoped key"];
/// The queries, as in the main table.
pub const QUERIES: [&str; 3] = ["a", "b", "c"];

/// The figures of `--auth`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuthResult {
    /// Rounds of the three modes.
    pub rounds: usize,
    /// Counted runs per query per round.
    pub runs: usize,
    /// Mode -> query -> median ms over every counted run of every round.
    pub median_ms: BTreeMap<String, BTreeMap<String, f64>>,
    /// Mode -> query -> median over the open mode's.
    pub ratio_vs_open: BTreeMap<String, BTreeMap<String, f64>>,
    /// Mode -> query -> every counted run, ms.
    pub runs_ms: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    /// The scoped key's scope, as `citytel keys list` shows it.
    pub scope: String,
}

/// Runs `citytel ARGS --data-dir DATA` and returns its standard output.
fn cli(bin: &Path, data: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("running citytel {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "citytel {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Creates the organisation and the two keys; returns (admin key, scoped key, scope).
fn keys(bin: &Path, data: &Path) -> Result<(String, String, String)> {
    cli(bin, data, &["orgs", "create", "bench", "--licence", "CC0"])?;
    let admin = cli(
        bin,
        data,
        &["keys", "create", "--org", "bench", "--role", "admin"],
    )?;
    let mut args = vec!["keys", "create", "--org", "bench", "--role", "viewer"];
    let mut metrics: Vec<&str> = Vec::new();
    for kind in [Kind::Cabinet, Kind::SmallCell, Kind::Sensor] {
        args.extend(["--kind", kind.as_str()]);
        metrics.extend(catalog::metric_names(kind));
    }
    metrics.sort_unstable();
    metrics.dedup();
    for m in &metrics {
        args.extend(["--metric", m]);
    }
    let scoped = cli(bin, data, &args)?;
    let scope = format!(
        "kind=cabinet|small_cell|sensor metric={}",
        metrics.join("|")
    );
    Ok((admin, scoped, scope))
}

/// Measures the three modes on citytel's imported data under `dir`.
pub async fn measure(dir: &Path, ds: &Dataset, runs: usize, rounds: usize) -> Result<AuthResult> {
    let mut citytel = Citytel::start(dir).await?;
    let (admin, scoped, scope) = keys(citytel.binary(), citytel.data_dir())?;
    let key = |mode: &str| match mode {
        "admin key" => Some(admin.clone()),
        "scoped key" => Some(scoped.clone()),
        _ => None,
    };
    let mut result = AuthResult {
        rounds,
        runs,
        scope,
        ..AuthResult::default()
    };
    for round in 1..=rounds {
        for mode in MODES {
            eprintln!("citytel --auth: round {round}/{rounds}, {mode}");
            citytel.use_key(key(mode));
            citytel
                .serve()
                .await
                .with_context(|| format!("serving ({mode})"))?;
            let times = result.runs_ms.entry(mode.to_string()).or_default();
            for q in QUERIES {
                let t = match q {
                    "a" => measure::repeat(runs, async || citytel.query_a(ds).await).await,
                    "b" => measure::repeat(runs, async || citytel.query_b(ds).await).await,
                    _ => measure::repeat(runs, async || citytel.query_c(ds).await).await,
                }
                .with_context(|| format!("query ({q}), {mode}"))?;
                times.entry(q.to_string()).or_default().extend(t.runs_ms);
            }
            citytel.stop();
        }
    }
    for (mode, queries) in &result.runs_ms {
        for (q, all) in queries {
            result
                .median_ms
                .entry(mode.clone())
                .or_default()
                .insert(q.clone(), measure::median(all));
        }
    }
    let open = result.median_ms.get("open").cloned().unwrap_or_default();
    for (mode, queries) in &result.median_ms {
        for (q, ms) in queries {
            if let Some(base) = open.get(q) {
                result
                    .ratio_vs_open
                    .entry(mode.clone())
                    .or_default()
                    .insert(q.clone(), ms / base);
            }
        }
    }
    Ok(result)
}

impl AuthResult {
    /// The table printed after the main one.
    pub fn table(&self) -> String {
        let mut out = format!(
            "\nAPI keys and scope filtering, citytel (medians of {} runs x {} rounds, modes interleaved)\n\n",
            self.runs, self.rounds
        );
        out.push_str("| query | open | admin key | scoped key | admin / open | scoped / open |\n");
        out.push_str("|---|---:|---:|---:|---:|---:|\n");
        let get = |m: &BTreeMap<String, BTreeMap<String, f64>>, mode: &str, q: &str| {
            m.get(mode)
                .and_then(|x| x.get(q))
                .copied()
                .unwrap_or(f64::NAN)
        };
        for q in QUERIES {
            out.push_str(&format!(
                "| ({q}) | {:.3} ms | {:.3} ms | {:.3} ms | {:.3}x | {:.3}x |\n",
                get(&self.median_ms, "open", q),
                get(&self.median_ms, "admin key", q),
                get(&self.median_ms, "scoped key", q),
                get(&self.ratio_vs_open, "admin key", q),
                get(&self.ratio_vs_open, "scoped key", q),
            ));
        }
        out.push_str(&format!(
            "\nscoped key: {}; target: each ratio <= 1.05x\n",
            self.scope
        ));
        out
    }
}
