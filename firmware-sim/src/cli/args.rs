//! Argument groups that several subcommands take word for word (flag, environment variable,
//! default and help), each defined once and flattened into the subcommands' arguments.
//!
//! Flags that only look alike stay with their subcommand: `--seed`, `--interval`, `--duration`,
//! `--batch`, the fleet sizes and the timeouts differ between subcommands in their default or in
//! what they control.

use citytel_firmware_sim::broker::BrokerAddr;
use clap::Args;

/// `--broker`: where the devices connect (`run`, `load`, `scenario`).
#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// MQTT broker or citytel device endpoint (plain TCP).
    #[arg(
        long,
        env = "FIRMWARE_SIM_BROKER",
        value_name = "mqtt://HOST:PORT",
        default_value = "mqtt://127.0.0.1:1883"
    )]
    pub(crate) broker: BrokerAddr,
}

/// `--sites`: how many sites a live fleet's devices are spread over (`run`, `load`).
#[derive(Debug, Args)]
pub(crate) struct SitesArgs {
    /// Sites the devices are spread over, round-robin (site-01...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_SITES",
        value_name = "N",
        default_value_t = 10
    )]
    pub(crate) sites: u32,
}
