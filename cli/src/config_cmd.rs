//! `citytel config`: print the effective configuration.

use anyhow::Context;

use super::ConfigArgs;

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load().context("loading configuration")?;
    config.validate().context("validating configuration")?;
    print!("{}", config.to_redacted_toml());
    Ok(())
}
