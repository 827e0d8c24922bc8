//! The `citytel` binary: see `citytel --help`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    citytel_ingest::cli::Cli::parse().run()
}
