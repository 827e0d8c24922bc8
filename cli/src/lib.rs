//! The `citytel` command line: `serve`, `demo`, `import`, `config`, `stats`, `orgs`, `keys`,
//! `alerts`, `export` and `report`, each a thin layer over the service library (`citytel-ingest`)
//! or its gRPC API; only `demo` links the device simulator.
//!
//! Every command takes the same configuration options: `--config FILE`, `--set KEY=VALUE` and
//! shortcuts for the settings changed most often, each also readable from a `CITYTEL_*`
//! environment variable. Precedence: built-in defaults < config file < environment/flags.

mod access;
mod alerts;
mod config_cmd;
mod demo;
mod device_show;
mod devices;
mod export;
mod import;
mod remote;
mod report;
pub mod report_format;
mod serve;
mod stats;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use citytel_ingest::config::{self, Config, ConfigError};

/// citytel ingests telemetry from a city's connectivity infrastructure over MQTT, stores it as
/// time series, tracks device availability and answers dashboards over gRPC.
#[derive(Debug, Parser)]
#[command(name = "citytel", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: the MQTT device endpoint (or a broker source), storage and the gRPC API.
    Serve(ConfigArgs),
    /// Run the service together with a simulated fleet of devices, to see it work at once.
    Demo(demo::DemoArgs),
    /// Load InfluxDB line protocol or a dataset file into the data directory (service stopped).
    Import(import::ImportArgs),
    /// Print the effective configuration (defaults, file, environment and flags applied) as TOML.
    Config(ConfigArgs),
    /// Show what the data directory holds: devices, series, points, bytes per record type.
    Stats(ConfigArgs),
    /// Organisations of the city programme: create, list.
    Orgs(access::OrgsArgs),
    /// API keys: create (shown once), list, revoke.
    Keys(access::KeysArgs),
    /// Devices that may connect: add (a token shown once, a password or a certificate), list,
    /// revoke (the running service rereads the file on its own); show one as the running
    /// service sees it, with its attributes.
    Devices(devices::DevicesArgs),
    /// Alert rules: check a rule file offline.
    Alerts(alerts::AlertsArgs),
    /// Write the series an API key may see to a CSV or Parquet file, from a running service.
    Export(export::ExportArgs),
    /// District reports (connectivity, energy and carbon, air quality) over a period, as CSV or
    /// JSON, from a running service.
    Report(report::ReportArgs),
}

/// Options that select and override the configuration.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// TOML configuration file; keys it does not set keep their defaults.
    #[arg(long, short = 'c', env = "CITYTEL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one setting, e.g. `--set storage.fsync=never` (repeatable; applied last).
    #[arg(long = "set", short = 's', value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Data directory (storage.data_dir).
    #[arg(long, env = "CITYTEL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the MQTT device endpoint (endpoint.listen).
    #[arg(long, env = "CITYTEL_MQTT_LISTEN", value_name = "ADDR")]
    mqtt_listen: Option<String>,
    /// Address of the gRPC API (grpc.listen).
    #[arg(long, env = "CITYTEL_GRPC_LISTEN", value_name = "ADDR")]
    grpc_listen: Option<String>,
    /// Consume from this broker instead of running the device endpoint (broker.url).
    #[arg(long, env = "CITYTEL_BROKER_URL", value_name = "mqtt://HOST:PORT")]
    broker_url: Option<String>,
    /// Log format, text or json (log.format).
    #[arg(long, env = "CITYTEL_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Run without API authentication even on a non-loopback gRPC or dashboard listener
    /// (api.allow_anonymous).
    #[arg(long)]
    allow_anonymous_api: bool,
    /// Run without device authentication even on a non-loopback MQTT listener
    /// (endpoint.allow_anonymous).
    #[arg(long)]
    allow_anonymous_devices: bool,
    /// Serve the metrics without a bearer token even on a non-loopback address
    /// (metrics.allow_anonymous).
    #[arg(long)]
    allow_anonymous_metrics: bool,
}

impl ConfigArgs {
    /// Loads the configuration these options describe.
    pub fn load(&self) -> Result<Config, ConfigError> {
        self.load_with(&[])
    }

    /// Loads the configuration with `defaults` (`key=value`) applied before the file's and the
    /// options' own overrides, which win.
    pub fn load_with(&self, defaults: &[&str]) -> Result<Config, ConfigError> {
        let mut overrides: Vec<String> = defaults.iter().map(|d| d.to_string()).collect();
        let mut add = |key: &str, value: Option<String>| {
            if let Some(v) = value {
                overrides.push(format!("{key}={}", toml_string(&v)));
            }
        };
        add(
            "storage.data_dir",
            self.data_dir.as_ref().map(|p| p.display().to_string()),
        );
        add("endpoint.listen", self.mqtt_listen.clone());
        add("grpc.listen", self.grpc_listen.clone());
        add("broker.url", self.broker_url.clone());
        add("log.format", self.log_format.clone());
        if self.allow_anonymous_api {
            overrides.push("api.allow_anonymous=true".into());
        }
        if self.allow_anonymous_devices {
            overrides.push("endpoint.allow_anonymous=true".into());
        }
        if self.allow_anonymous_metrics {
            overrides.push("metrics.allow_anonymous=true".into());
        }
        overrides.extend(self.set.iter().cloned());
        config::load(self.config.as_deref(), &overrides)
    }
}

/// Quotes `s` as a TOML string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

impl Cli {
    /// Runs the chosen command and returns the process exit code.
    pub fn run(self) -> std::process::ExitCode {
        let result = match self.command {
            Command::Serve(args) => serve::run(&args),
            Command::Demo(args) => demo::run(&args),
            Command::Import(args) => import::run(&args),
            Command::Config(args) => config_cmd::run(&args),
            Command::Stats(args) => stats::run(&args),
            Command::Orgs(args) => access::run_orgs(&args),
            Command::Keys(args) => access::run_keys(&args),
            Command::Devices(args) => devices::run(&args),
            Command::Alerts(args) => alerts::run(&args),
            Command::Export(args) => export::run(&args),
            Command::Report(args) => report::run(&args),
        };
        match result {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("citytel: error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Builds the runtime every command runs on.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("citytel")
        .build()
        .context("cannot start the async runtime")
}

/// Resolves on Ctrl-C or SIGTERM.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    // Registered now, not when first polled: a SIGTERM that arrives once the addresses are
    // printed must stop the service gracefully rather than kill it.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}
