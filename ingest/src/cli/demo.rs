//! `citytel demo`: the service plus an in-process simulated fleet.

use clap::Args;

use super::ConfigArgs;

/// Options of `citytel demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let _ = &args.config;
    anyhow::bail!("demo is not available yet")
}
