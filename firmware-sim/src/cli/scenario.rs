//! `firmware-sim scenario`: lists, checks or runs a scripted scenario and prints its ground truth.

use std::path::PathBuf;

use anyhow::Context as _;
use citytel_firmware_sim::scenario::{self, Action, BUILTINS, RealTime, RunOptions, Scenario};
use clap::Args;

use super::args::BrokerArgs;

/// Run a scripted scenario: a power cut, a gateway failure, a reboot loop, a skewed clock,
/// buffering and backfill, a flapping link, or your own file.
///
/// The devices connect to the broker (or citytel's device endpoint) and act out the scenario in
/// real time. At the end the ground truth (per device: when it was up, down or unreachable by its
/// own account, its boots, what citytel acknowledged, readings produced, delivered, backfilled
/// and lost) goes to stdout, as text or JSON.
#[derive(Debug, Args)]
pub(crate) struct ScenarioArgs {
    /// A built-in scenario (see --list).
    #[arg(value_name = "NAME", conflicts_with_all = ["file", "list"], required_unless_present_any = ["file", "list"])]
    name: Option<String>,

    /// A scenario file (TOML) instead of a built-in.
    #[arg(long, value_name = "PATH", env = "FIRMWARE_SIM_SCENARIO_FILE")]
    file: Option<PathBuf>,

    /// List the built-in scenarios and exit.
    #[arg(long)]
    list: bool,

    /// Print the scenario file (a built-in's, to start your own from) and exit.
    #[arg(long, conflicts_with = "list")]
    show: bool,

    /// Check the scenario and print its timeline without connecting.
    #[arg(long, conflicts_with = "list")]
    check: bool,

    #[command(flatten)]
    target: BrokerArgs,

    /// Print the ground truth as JSON instead of text.
    #[arg(long, env = "FIRMWARE_SIM_JSON")]
    json: bool,
}

impl ScenarioArgs {
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        if self.list {
            for b in BUILTINS {
                let s = b.scenario()?;
                println!("{:<16} {}", b.name, one_line(&s.description));
            }
            return Ok(());
        }
        let (origin, text) = match (&self.name, &self.file) {
            (Some(name), _) => {
                let b = BUILTINS
                    .iter()
                    .find(|b| b.name == name)
                    .ok_or_else(|| scenario::ScenarioError::UnknownBuiltin(name.clone()))?;
                (b.name.to_string(), b.toml.to_string())
            }
            (None, Some(path)) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            ),
            (None, None) => anyhow::bail!("name a built-in scenario or give --file"),
        };
        if self.show {
            print!("{text}");
            return Ok(());
        }
        let scenario = Scenario::from_toml(&origin, &text)?;
        if self.check {
            print!("{}", timeline(&scenario));
            return Ok(());
        }
        let start = scenario::wall_clock_ms();
        eprintln!(
            "running {} ({} devices, {} s) against {}",
            scenario.name,
            scenario.devices.len(),
            scenario.duration_ms / 1000,
            self.target.broker
        );
        let mut pacer = RealTime::new(self.target.broker.clone(), start);
        let report = scenario::run(&scenario, &RunOptions::starting_at(start), &mut pacer).await;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", scenario::text::render(&report));
        }
        Ok(())
    }
}

/// The devices and scripted events of `s`, one per line.
fn timeline(s: &Scenario) -> String {
    use std::fmt::Write as _;
    let mut out = format!("scenario {}: {}\n", s.name, one_line(&s.description));
    for d in &s.devices {
        let via = d
            .gateway
            .map(|g| format!(" via {}", s.devices[g].id))
            .unwrap_or_default();
        let sleepy = if d.sleepy {
            ", sleeps between sessions"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "device {} ({} at {}{via}), every {} ms from {} s{sleepy}",
            d.id,
            d.kind,
            d.site,
            d.interval_ms,
            d.start_ms / 1000
        );
    }
    for e in &s.events {
        let detail = match e.action {
            Action::Reboot | Action::Hang if e.downtime_ms > 0 => {
                format!(" (downtime {} s)", e.downtime_ms as f64 / 1000.0)
            }
            Action::SetClockSkew => format!(" (skew {:+} ms)", e.skew_ms),
            Action::SetMetric | Action::ResetMetric => {
                let kind = s.devices[e.device].kind;
                let name = e
                    .metric
                    .and_then(|m| citytel_proto::catalog::metric_names(kind).get(m))
                    .copied()
                    .unwrap_or("?");
                if e.action == Action::SetMetric {
                    format!(" ({name} = {})", e.value)
                } else {
                    format!(" ({name})")
                }
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{:>8.1} s  {:<14} {}{detail}",
            e.at_ms as f64 / 1000.0,
            e.action.as_str(),
            s.devices[e.device].id
        );
    }
    let _ = writeln!(out, "{:>8.1} s  end", s.duration_ms as f64 / 1000.0);
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
