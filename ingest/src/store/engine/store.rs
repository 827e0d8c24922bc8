//! The persistent side of the engine: an embedded fjall database (an LSM tree in pure Rust).
//!
//! | keyspace | key | value |
//! | --- | --- | --- |
//! | `chunks` | series, day, seq, record (see [`keys`]) | a [`super::segment`], or its 1-hour or 1-minute [`super::rollup`] |
//! | `series` | series id (u32 BE) | `device \0 metric` |
//! | `meta` | a name | `state`: the snapshot of the in-memory state; `maintenance`: windows set over the API |
//! | `dead_letters` | sequence (u64 BE) | a dead letter |
//! | `history` | device, 0, sequence (u64 BE) | a device state change or reboot |
//!
//! Segments and their rollups are written as bulk ingestions: sorted runs that become table
//! files directly, without passing through fjall's journal (they are already durable in
//! citytel's WAL, or re-runnable in an import), so every segment and its rollups land in one table
//! at once.

use std::path::Path;

use fjall::config::CompressionPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};

use super::EngineError;
use super::cache::DecodedCache;
use super::keys::{self, Record};

/// Which rollup.
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

    /// The record holding this rollup.
    pub fn record(self) -> Record {
        match self {
            Level::Minute => Record::Minute,
            Level::Hour => Record::Hour,
        }
    }
}

/// One stored record of a series-day.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Day start.
    pub day: i64,
    /// Sequence within the day (write order).
    pub seq: u32,
    /// The value.
    pub value: Slice,
}

/// A record to ingest: its key and value, or `None` to delete it.
pub type Write = ([u8; keys::KEY_LEN], Option<Vec<u8>>);

/// The fjall database and its keyspaces.
pub struct ChunkStore {
    db: Database,
    /// Decoded segments for repeated reads.
    pub decoded: DecodedCache,
    /// Segments and rollups.
    pub chunks: Keyspace,
    /// Series catalog.
    pub series: Keyspace,
    /// Snapshot and checkpoint.
    pub meta: Keyspace,
    /// Dead letters.
    pub dead_letters: Keyspace,
    /// Device state history.
    pub history: Keyspace,
}

impl std::fmt::Debug for ChunkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStore").finish_non_exhaustive()
    }
}

impl ChunkStore {
    /// Opens (creating if needed) the store in `dir`, with `cache_bytes` of block cache and
    /// `decoded_bytes` of decoded-segment cache.
    pub fn open(
        dir: &Path,
        cache_bytes: u64,
        decoded_bytes: u64,
    ) -> Result<ChunkStore, EngineError> {
        let db = Database::builder(dir)
            .cache_size(cache_bytes)
            // Durability is decided by citytel: checkpoints persist explicitly.
            .manual_journal_persist(true)
            .open()?;
        // Segment and rollup values are already compressed by pco.
        let chunks = || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(CompressionPolicy::disabled())
                .manual_journal_persist(true)
        };
        let plain = || KeyspaceCreateOptions::default().manual_journal_persist(true);
        Ok(ChunkStore {
            chunks: db.keyspace("chunks", chunks)?,
            series: db.keyspace("series", plain)?,
            meta: db.keyspace("meta", plain)?,
            dead_letters: db.keyspace("dead_letters", plain)?,
            history: db.keyspace("history", plain)?,
            decoded: DecodedCache::new(decoded_bytes),
            db,
        })
    }

    /// Makes everything written durable (fsync). Ingested tables are fsynced as they are
    /// written; this covers fjall's journal.
    pub fn persist(&self) -> Result<(), EngineError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Writes and deletes chunk records as one table.
    pub fn ingest(&self, writes: Vec<Write>) -> Result<(), EngineError> {
        self.ingest_into(
            &self.chunks,
            writes.into_iter().map(|(k, v)| (k.to_vec(), v)).collect(),
        )
    }

    /// Writes (`Some`) and deletes (`None`) records of `keyspace` as one fsynced table, without
    /// going through fjall's journal. Later writes of a key win over earlier ones.
    pub fn ingest_into(
        &self,
        keyspace: &Keyspace,
        mut writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), EngineError> {
        if writes.is_empty() {
            return Ok(());
        }
        // A stable sort keeps equal keys in write order; keep the last of each.
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut last: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(writes.len());
        for w in writes {
            match last.last_mut() {
                Some(prev) if prev.0 == w.0 => *prev = w,
                _ => last.push(w),
            }
        }
        let mut ingestion = keyspace.start_ingestion()?;
        for (key, value) in last {
            match value {
                Some(v) => ingestion.write(key, v)?,
                None => ingestion.write_tombstone(key)?,
            }
        }
        ingestion.finish()?;
        Ok(())
    }

    /// `record`s of `series` for days `from_day..=to_day`, in key order.
    pub fn scan(
        &self,
        series: u32,
        from_day: i64,
        to_day: i64,
        record: Record,
    ) -> Result<Vec<Stored>, EngineError> {
        let lo = keys::key(series, from_day, 0, Record::Raw);
        let hi = keys::key(series, to_day, u32::MAX, Record::Minute);
        let mut out = Vec::new();
        for item in self.chunks.range(lo..=hi) {
            let (key, value) = item.into_inner()?;
            if let Some((_, day, seq, r)) = keys::parse(&key)
                && r == record
            {
                out.push(Stored { day, seq, value });
            }
        }
        Ok(out)
    }

    /// Every record of `series` for days `from_day..=to_day`, in key order (per day and segment:
    /// raw, hour, minute).
    pub fn scan_all(
        &self,
        series: u32,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(Record, Stored)>, EngineError> {
        let lo = keys::key(series, from_day, 0, Record::Raw);
        let hi = keys::key(series, to_day, u32::MAX, Record::Minute);
        let mut out = Vec::new();
        for item in self.chunks.range(lo..=hi) {
            let (key, value) = item.into_inner()?;
            if let Some((_, day, seq, record)) = keys::parse(&key) {
                out.push((record, Stored { day, seq, value }));
            }
        }
        Ok(out)
    }

    /// The sequence number for a new segment of `series` on `day`.
    pub fn next_seq(&self, series: u32, day: i64) -> Result<u32, EngineError> {
        match self
            .chunks
            .prefix(keys::day_prefix(series, day))
            .next_back()
        {
            Some(item) => {
                let key = item.key()?;
                Ok(keys::parse(&key).map_or(0, |(_, _, seq, _)| seq + 1))
            }
            None => Ok(0),
        }
    }

    /// Bytes the database occupies on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    /// Flushes memtables and compacts every keyspace fully, so the files on disk are the final
    /// form of the data (used after a bulk import).
    pub fn settle(&self) -> Result<(), EngineError> {
        for ks in [
            &self.chunks,
            &self.series,
            &self.meta,
            &self.dead_letters,
            &self.history,
        ] {
            ks.rotate_memtable_and_wait()?;
            ks.major_compact()?;
        }
        self.persist()
    }
}
