//! `citytel stats`: what the data directory holds, by record type, with compression figures.
//! Reads the store offline (the service must not run on the same directory).

use anyhow::Context;

use super::ConfigArgs;
use citytel_ingest::db::Database;

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load().context("loading configuration")?;
    let settings = config.validate().context("validating configuration")?;
    let dir = &settings.storage.data_dir;
    let (db, _wal, _) = Database::open(
        dir,
        &settings.store_options(citytel_ingest::clock::Clock::System),
    )
    .with_context(|| format!("opening {}", dir.display()))?;
    let state = db.read();
    let store = state.store();
    let stats = store.chunk_stats().context("reading the store")?;
    let per_point = |bytes: u64| bytes as f64 / stats.points.max(1) as f64;
    println!("data directory   {}", dir.display());
    println!("devices          {}", state.registry().len());
    println!("series           {}", state.series_count());
    println!("points           {}", stats.points);
    for (name, totals) in [
        ("raw segments", stats.raw),
        ("1h rollups", stats.hour),
        ("1m rollups", stats.minute),
    ] {
        println!(
            "{name:<16} {} records, {} bytes, {:.3} bytes/point",
            totals.records,
            totals.bytes,
            per_point(totals.bytes)
        );
    }
    println!("store on disk    {} bytes", store.disk_bytes());
    Ok(())
}
