//! `citytel stats`: what the data directory holds, by record type, with compression figures.
//! Reads the store offline (the service must not run on the same directory).

use anyhow::Context;

use super::ConfigArgs;
use crate::store::Database;
use crate::store::engine::keys::{self, Record};
use crate::store::engine::segment;

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load().context("loading configuration")?;
    let settings = config.validate().context("validating configuration")?;
    let dir = &settings.storage.data_dir;
    let (db, _wal, _) = Database::open(dir, &settings.store_options(crate::clock::Clock::System))
        .with_context(|| format!("opening {}", dir.display()))?;
    let state = db.read();
    let store = state.engine.store();
    // (records, value bytes) per record type; points from raw segment headers.
    let mut totals = [(0u64, 0u64); 3];
    let mut points = 0u64;
    for item in store.chunks.iter() {
        let (key, value) = item.into_inner().context("reading the store")?;
        let Some((_, _, _, record)) = keys::parse(&key) else {
            continue;
        };
        let t = &mut totals[record as usize];
        t.0 += 1;
        t.1 += value.len() as u64;
        if record == Record::Raw {
            points += u64::from(segment::header(&value).map(|(h, _)| h.count).unwrap_or(0));
        }
    }
    let per_point = |bytes: u64| bytes as f64 / points.max(1) as f64;
    println!("data directory   {}", dir.display());
    println!("devices          {}", state.registry.len());
    println!("series           {}", state.engine.catalog().len());
    println!("points           {points}");
    for (name, record) in [
        ("raw segments", Record::Raw),
        ("1h rollups", Record::Hour),
        ("1m rollups", Record::Minute),
    ] {
        let (n, bytes) = totals[record as usize];
        println!(
            "{name:<16} {n} records, {bytes} bytes, {:.3} bytes/point",
            per_point(bytes)
        );
    }
    println!("store on disk    {} bytes", store.disk_bytes());
    Ok(())
}
