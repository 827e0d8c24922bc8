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
//! The three modes run side by side, each a `citytel serve` of its own copy of the data dir, and
//! are interleaved call by call: every counted run times one call to each mode, in an order that
//! rotates from run to run. On a shared, noisy machine a burst of load then falls on the three
//! modes alike instead of on whichever mode was being measured at the time. Each of `rounds`
//! rounds starts three fresh services and makes one uncounted warm-up call per mode and query.
//! Reported: the median of all counted runs per mode and query, and each mode's median over the
//! open one.

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

/// Copies citytel's data dir for a second and third service (sparse files stay sparse).
fn copy_data(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    let status = Command::new("cp")
        .args(["-a", "--sparse=always"])
        .arg(from)
        .arg(to)
        .status()
        .context("running cp")?;
    if !status.success() {
        bail!("copying {} to {}: {status}", from.display(), to.display());
    }
    Ok(())
}

/// One timed call of query `q` to `citytel`.
async fn call(citytel: &mut Citytel, ds: &Dataset, q: &str) -> Result<f64> {
    let elapsed = match q {
        "a" => citytel.query_a(ds).await,
        "b" => citytel.query_b(ds).await,
        _ => citytel.query_c(ds).await,
    }
    .with_context(|| format!("query ({q})"))?;
    Ok(elapsed.as_secs_f64() * 1000.0)
}

/// Measures the three modes on citytel's imported data under `dir`.
pub async fn measure(dir: &Path, ds: &Dataset, runs: usize, rounds: usize) -> Result<AuthResult> {
    let first = Citytel::start(dir).await?;
    let (admin, scoped, scope) = keys(first.binary(), first.data_dir())?;
    let mut services = Vec::new();
    for mode in MODES {
        let mut citytel = match mode {
            "open" => Citytel::start(dir).await?,
            _ => {
                let copy = dir.join(format!("auth-{}", mode.replace(' ', "-")));
                std::fs::create_dir_all(&copy)?;
                copy_data(first.data_dir(), &copy.join("data"))?;
                Citytel::start(&copy).await?
            }
        };
        citytel.use_key(match mode {
            "admin key" => Some(admin.clone()),
            "scoped key" => Some(scoped.clone()),
            _ => None,
        });
        services.push(citytel);
    }
    let mut result = AuthResult {
        rounds,
        runs,
        scope,
        ..AuthResult::default()
    };
    for round in 1..=rounds {
        eprintln!("citytel --auth: round {round}/{rounds}: three services, calls interleaved");
        for (citytel, mode) in services.iter_mut().zip(MODES) {
            citytel
                .serve()
                .await
                .with_context(|| format!("serving ({mode})"))?;
        }
        for q in QUERIES {
            for citytel in services.iter_mut() {
                call(citytel, ds, q).await.context("warm-up run")?;
            }
            for run in 0..runs {
                for k in 0..MODES.len() {
                    let i = (run + k) % MODES.len();
                    let ms = call(&mut services[i], ds, q)
                        .await
                        .with_context(|| MODES[i])?;
                    result
                        .runs_ms
                        .entry(MODES[i].to_string())
                        .or_default()
                        .entry(q.to_string())
                        .or_default()
                        .push(ms);
                }
            }
        }
        for citytel in services.iter_mut() {
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
            "\nAPI keys and scope filtering, citytel (medians of {} runs x {} rounds, three services side by side, calls interleaved)\n\n",
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
