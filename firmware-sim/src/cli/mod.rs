//! The `firmware-sim` command line: one module per subcommand, and the argument groups several
//! of them share (`args`).

mod args;
mod dataset;
mod load;
mod progress;
mod run;
mod scenario;
mod signals;

use clap::{Parser, Subcommand};

/// Simulates a fleet of citytel devices (fibre cabinets, 5G small cells, environmental sensors and
/// gateways) publishing protobuf telemetry over MQTT.
#[derive(Debug, Parser)]
#[command(
    name = "firmware-sim",
    version,
    after_help = "Logs go to stderr, filtered by RUST_LOG (default: warn). Every option can also be \
                  set through the environment variable shown next to it."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunArgs),
    Dataset(dataset::DatasetArgs),
    Load(load::LoadArgs),
    Scenario(scenario::ScenarioArgs),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(args) => args.run().await,
            Command::Load(args) => args.run().await,
            Command::Scenario(args) => args.run().await,
            // CPU-bound and writing a large file: off the async runtime.
            Command::Dataset(args) => tokio::task::spawn_blocking(move || args.run()).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
