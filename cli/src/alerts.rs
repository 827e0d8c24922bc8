//! `citytel alerts check FILE`: validates alert rules offline, with the errors the service
//! would give (naming the rule and the key), and `citytel serve`'s reload of the rules on
//! SIGHUP.
//!
//! FILE is either a citytel configuration file (its `[alerts]` section is checked, receivers
//! included, with the defaults for what it does not set) or a file of bare `[[rule]]` tables.

use std::path::PathBuf;

use anyhow::{Context, bail};
use citytel_ingest::alerts::config::{self, AlertSettings};
use citytel_ingest::service::AlertsControl;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::ConfigArgs;

/// Options of `citytel alerts`.
#[derive(Debug, Clone, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Debug, Clone, Subcommand)]
enum AlertsCommand {
    /// Validate a rule file (or a configuration file's [alerts] section) without a service.
    Check {
        /// The file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(args: &AlertsArgs) -> anyhow::Result<()> {
    match &args.command {
        AlertsCommand::Check { file } => check(file),
    }
}

fn check(file: &std::path::Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", file.display()))?;
    let origin = file.display().to_string();
    let (rules, receivers) = if table.contains_key("rule") && !table.contains_key("alerts") {
        let (_, rules) = config::parse_rules(&text).map_err(anyhow::Error::from)?;
        (rules, Vec::new())
    } else {
        let loaded = citytel_ingest::config::load_str(Some((&origin, &text)), &[])?;
        let settings = loaded.alerts.validate()?;
        (settings.rules, settings.receivers)
    };
    if rules.is_empty() && receivers.is_empty() {
        bail!("{origin} has no [[alerts.rule]] (or [[rule]]) tables");
    }
    println!(
        "{origin}: {} rules, {} receivers: ok",
        rules.len(),
        receivers.len()
    );
    for r in &rules {
        println!(
            "  {:<32} {:<12} {:<8} for {}",
            r.name,
            r.condition.kind_name(),
            r.severity.as_str(),
            humantime::format_duration(std::time::Duration::from_millis(
                r.for_ms.max(0).unsigned_abs()
            ))
        );
    }
    for r in &receivers {
        println!("  receiver {:<23} {:?} {}", r.name, r.kind, r.url);
    }
    Ok(())
}

/// Reads the configuration again on every SIGHUP and puts its alert rules in force, until
/// `stop`. A configuration that does not validate is logged and changes nothing; receivers
/// and every other section take effect at the next start only.
pub async fn reload_on_sighup(args: ConfigArgs, control: AlertsControl, stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; alert rules reload only at restart");
            return;
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                received = hangup.recv() => {
                    if received.is_none() {
                        return;
                    }
                }
            }
            match reloaded(&args) {
                Ok(settings) => match control.set_rules(&settings).await {
                    Ok(Some(n)) => tracing::info!(rules = n, "alert rules reloaded"),
                    Ok(None) => tracing::info!("alert rules unchanged"),
                    Err(e) => tracing::error!(error = %e, "alert rules not reloaded"),
                },
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "configuration invalid; alert rules not reloaded")
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (args, control);
        stop.cancelled().await;
    }
}

fn reloaded(args: &ConfigArgs) -> anyhow::Result<AlertSettings> {
    let config = args.load().context("loading configuration")?;
    let settings = config.validate().context("validating configuration")?;
    Ok(settings.alerts)
}
