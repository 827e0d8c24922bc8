//! The checkpoint snapshot: everything in memory that the WAL alone would have to rebuild
//! (registry, deduplication state, latest values, dead-letter counts, days awaiting compaction),
//! written by a checkpoint after the flushed segments, series, dead letters and history (each its
//! own fsynced table), so a snapshot never refers to data that is not yet on disk.
//!
//! Layout: one `meta` record `state` holding a version byte followed by the postcard encoding of
//! [`Snapshot`]. `wal_segment` is the first WAL segment the snapshot does not cover: on start,
//! older segments are deleted and the rest replayed on top of the snapshot.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::dedup::Boots;
use super::engine::EngineError;
use super::registry::DeviceRecord;

/// Key of the snapshot in the `meta` keyspace.
pub const KEY: &[u8] = b"state";
/// Layout version.
const VERSION: u8 = 1;

/// The persisted in-memory state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// First WAL segment not covered.
    pub wal_segment: u64,
    /// Every device.
    pub devices: Vec<DeviceRecord>,
    /// Seen sequence numbers per device and boot.
    pub dedup: Vec<(Arc<str>, Boots)>,
    /// Latest point per series: (series id, time, value).
    pub latest: Vec<(u32, i64, f64)>,
    /// Dead letters per reason code since the data directory was created.
    pub dead_letter_counts: Vec<(u8, u64)>,
    /// Series-days with more than one segment.
    pub dirty_days: Vec<(u32, i64)>,
    /// Dead letters written so far (the sequence of the next one).
    pub dead_letter_seq: u64,
    /// The fleet tracker's machines and estimators.
    pub tracker: crate::tracker::persist::TrackerSnapshot,
}

impl Snapshot {
    /// Encodes with the version byte.
    pub fn encode(&self) -> Result<Vec<u8>, EngineError> {
        let mut out = vec![VERSION];
        out.extend(postcard::to_stdvec(self).map_err(|e| EngineError::Snapshot(e.to_string()))?);
        Ok(out)
    }

    /// Decodes [`encode`](Self::encode)'s output.
    pub fn decode(buf: &[u8]) -> Result<Snapshot, EngineError> {
        match buf.split_first() {
            Some((&VERSION, rest)) => {
                postcard::from_bytes(rest).map_err(|e| EngineError::Snapshot(e.to_string()))
            }
            Some((v, _)) => Err(EngineError::Snapshot(format!(
                "snapshot version {v}; this build reads version {VERSION}"
            ))),
            None => Err(EngineError::Snapshot("empty snapshot".into())),
        }
    }
}
