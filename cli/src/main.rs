//! The `citytel` binary: see `citytel --help`.

use clap::Parser;

/// mimalloc instead of the system allocator: the ingest path allocates and frees a small
/// buffer per message on one thread and frees it on another, which glibc's allocator handles
/// with lock contention and periodic consolidation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    citytel::Cli::parse().run()
}
