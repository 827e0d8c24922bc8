//! The persistent side of the engine: an embedded fjall database (an LSM tree in pure Rust) with
//! one keyspace per kind of record.
//!
//! | keyspace | key | value |
//! | --- | --- | --- |
//! | `raw` | series, day, seq | a [`super::segment`] |
//! | `r1h` | series, day, seq | the 1-hour [`super::rollup`] of that segment |
//! | `r1m` | series, day, seq | its 1-minute rollup, where one was materialized |
//! | `series` | series id (u32 BE) | `device \0 metric` |
//! | `meta` | a name | the snapshot of the in-memory state and the checkpoint |
//! | `dead_letters` | receive time, sequence | a dead letter |

use std::path::Path;

use fjall::config::CompressionPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};

use super::EngineError;
use super::keys;

/// Which rollup keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One-minute buckets.
    Minute,
    /// One-hour buckets.
    Hour,
}

impl Level {
    /// Bucket width.
    pub fn resolution_ms(self) -> i64 {
        match self {
            Level::Minute => 60_000,
            Level::Hour => 3_600_000,
        }
    }
}

/// One stored record of a series-day: its key parts and value.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Day start.
    pub day: i64,
    /// Sequence within the day (write order).
    pub seq: u32,
    /// The value.
    pub value: Slice,
}

/// The fjall database and its keyspaces.
pub struct ChunkStore {
    db: Database,
    /// Raw segments.
    pub raw: Keyspace,
    /// One-hour rollups.
    pub r1h: Keyspace,
    /// One-minute rollups.
    pub r1m: Keyspace,
    /// Series catalog.
    pub series: Keyspace,
    /// Snapshot and checkpoint.
    pub meta: Keyspace,
    /// Dead letters.
    pub dead_letters: Keyspace,
}

impl std::fmt::Debug for ChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStore").finish_non_exhaustive()
    }
}

impl ChunkStore {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<ChunkStore, EngineError> {
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            // Durability is ours to decide: flushes persist explicitly.
            .manual_journal_persist(true)
            .open()?;
        // Segment and rollup values are already compressed by pco.
        let compressed = || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(CompressionPolicy::disabled())
                .manual_journal_persist(true)
        };
        let plain = || KeyspaceCreateOptions::default().manual_journal_persist(true);
        Ok(ChunkStore {
            raw: db.keyspace("raw", compressed)?,
            r1h: db.keyspace("r1h", compressed)?,
            r1m: db.keyspace("r1m", compressed)?,
            series: db.keyspace("series", plain)?,
            meta: db.keyspace("meta", plain)?,
            dead_letters: db.keyspace("dead_letters", plain)?,
            db,
        })
    }

    /// The rollup keyspace of `level`.
    pub fn rollups(&self, level: Level) -> &Keyspace {
        match level {
            Level::Minute => &self.r1m,
            Level::Hour => &self.r1h,
        }
    }

    /// A new atomic batch.
    pub fn batch(&self) -> fjall::OwnedWriteBatch {
        self.db.batch()
    }

    /// Makes every committed batch durable (fsync).
    pub fn persist(&self) -> Result<(), EngineError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Records of `series` in `keyspace` for days `from_day..=to_day`, in key order.
    pub fn scan(
        &self,
        keyspace: &Keyspace,
        series: u32,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<Stored>, EngineError> {
        let lo = keys::segment(series, from_day, 0);
        let hi = keys::segment(series, to_day, u32::MAX);
        let mut out = Vec::new();
        for item in keyspace.range(lo..=hi) {
            let (key, value) = item.into_inner()?;
            if let Some((_, day, seq)) = keys::parse(&key) {
                out.push(Stored { day, seq, value });
            }
        }
        Ok(out)
    }

    /// The sequence number for a new segment of `series` on `day`.
    pub fn next_seq(&self, series: u32, day: i64) -> Result<u32, EngineError> {
        let prefix = keys::day_prefix(series, day);
        match self.raw.prefix(prefix).next_back() {
            Some(item) => {
                let key = item.key()?;
                Ok(keys::parse(&key).map_or(0, |(_, _, seq)| seq + 1))
            }
            None => Ok(0),
        }
    }

    /// Bytes the database occupies on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// Flushes memtables to tables and compacts every keyspace fully, so the files on disk are
    /// the final form of the data (used after a bulk import).
    pub fn settle(&self) -> Result<(), EngineError> {
        for ks in [
            &self.raw,
            &self.r1h,
            &self.r1m,
            &self.series,
            &self.meta,
            &self.dead_letters,
        ] {
            ks.rotate_memtable_and_wait()?;
            ks.major_compact()?;
        }
        self.persist()
    }
}
