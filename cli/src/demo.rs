//! `citytel demo`: the service plus an in-process simulated fleet, so a newcomer sees data at once.
//!
//! The fleet's devices are ordinary MQTT clients (from `citytel-firmware-sim`) connecting to the
//! service's own device endpoint, or to the broker given with `--broker-url`.

use std::time::Duration;

use anyhow::Context;
use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::{Fleet, FleetConfig};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::serve::print_addresses;
use super::{ConfigArgs, runtime, stop_signal};
use citytel_ingest::config::SourceSettings;
use citytel_ingest::service;

/// Options of `citytel demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Simulated fibre street cabinets.
    #[arg(long, default_value_t = 100)]
    cabinets: u32,
    /// Simulated 5G small cells.
    #[arg(long, default_value_t = 60)]
    small_cells: u32,
    /// Simulated environmental sensors with their own connection.
    #[arg(long, default_value_t = 100)]
    sensors: u32,
    /// Simulated gateways, each with sensors behind it.
    #[arg(long, default_value_t = 6)]
    gateways: u32,
    /// Sensors behind each gateway.
    #[arg(long, default_value_t = 5)]
    children_per_gateway: u32,
    /// Sites the devices are spread over.
    #[arg(long, default_value_t = 12)]
    sites: u32,
    /// Time between two readings of a device.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Seed of the simulated values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    // The demo runs on loopback without API keys, and admits its simulated devices by
    // auto-registration (the banner says both); `--set` can change either.
    let config = args
        .config
        .load_with(&["api.authentication=false", "endpoint.auto_register=true"])
        .context("loading configuration")?;
    let mut settings = config.validate().context("validating configuration")?;
    if let SourceSettings::Endpoint(endpoint) = &mut settings.source {
        // The whole simulated fleet connects from this host at once: let it in.
        let devices = args.cabinets + args.small_cells + args.sensors + args.gateways;
        endpoint.max_connections_per_ip = endpoint.max_connections_per_ip.max(devices as usize);
        endpoint.connect_burst_per_ip = endpoint.connect_burst_per_ip.max(devices);
    }
    settings.log.init();
    runtime()?.block_on(async {
        let broker = match &settings.source {
            SourceSettings::Broker(b) => BrokerAddr::new(b.host.clone(), b.port),
            SourceSettings::Endpoint(_) => BrokerAddr::new("127.0.0.1", 0),
        };
        let running =
            service::start(settings.clone(), citytel_ingest::clock::Clock::System).await?;
        let broker = match running.mqtt_addr {
            Some(addr) => BrokerAddr::new(addr.ip().to_string(), addr.port()),
            None => broker,
        };
        let fleet = Fleet::new(FleetConfig {
            broker: broker.clone(),
            cabinets: args.cabinets,
            small_cells: args.small_cells,
            sensors: args.sensors,
            gateways: args.gateways,
            children_per_gateway: args.children_per_gateway,
            sites: args.sites,
            interval: args.interval,
            seed: args.seed,
            ..FleetConfig::default()
        })
        .context("configuring the simulated fleet")?;
        let devices = fleet.config().devices();
        print_addresses(&running, &settings.storage.data_dir.display().to_string());
        println!(
            "  demo fleet      {devices} simulated devices publishing to {broker} every {}",
            humantime::format_duration(args.interval)
        );

        let stop_fleet = CancellationToken::new();
        let mut fleet_task = tokio::spawn(fleet.run(stop_fleet.clone(), None));
        // On Ctrl-C the fleet says goodbye first (deaths, disconnects), while the service still
        // stores what it sends; then the service shuts down.
        let stop = async {
            tokio::select! {
                _ = stop_signal() => {
                    stop_fleet.cancel();
                    let _ = tokio::time::timeout(Duration::from_secs(15), &mut fleet_task).await;
                }
                result = &mut fleet_task => match result {
                    Ok(Ok(_)) => tracing::info!("simulated fleet finished"),
                    Ok(Err(e)) => tracing::error!(error = %e, "simulated fleet failed"),
                    Err(e) => tracing::error!(error = %e, "simulated fleet panicked"),
                },
            }
        };
        let outcome = running.run_until(stop).await;
        fleet_task.abort();
        outcome?;
        anyhow::Ok(())
    })
}
