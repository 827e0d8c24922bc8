//! The write-ahead log: segmented files of CRC-checked records with group commit.
//!
//! The WAL owns durability and nothing else: it stores opaque payloads (see [`super::entry`] for
//! what citytel puts in them), replays them on open, repairs a torn or corrupt tail and counts it.
//! The on-disk format is specified in `FORMAT.md` next to this file.

pub mod hold;
mod record;
mod replay;
mod segment;
pub mod tail;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use record::{HEADER_LEN as RECORD_HEADER_LEN, MAX_PAYLOAD_LEN};
pub use replay::ReplayStats;
pub use segment::{SEGMENT_HEADER_LEN, VERSION};

/// When the WAL is flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// fsync before any write is acknowledged (the default).
    Always,
    /// Never fsync explicitly: survives a process crash, not a power loss.
    Never,
}

/// Where a record starts: segment sequence number and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Sequence number of the segment file.
    pub segment: u64,
    /// Byte offset of the record's length field in the segment.
    pub offset: u64,
}

/// A WAL failure. Write and sync failures are fatal for the process: nothing more may be
/// acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O operation failed.
    #[error("wal {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A segment was written by a newer version of citytel.
    #[error("wal segment {path} has format version {found}; this build reads version {VERSION}")]
    UnsupportedVersion {
        /// The segment.
        path: PathBuf,
        /// Its version.
        found: u32,
    },
    /// A payload is empty or larger than [`MAX_PAYLOAD_LEN`].
    #[error("wal record payload of {0} bytes is empty or too large")]
    PayloadSize(usize),
}

/// Deletes every segment of the WAL in `dir` before `segment` (a checkpoint covers them), but
/// none that a [`hold`] still needs.
pub fn remove_before(dir: &Path, segment: u64) -> Result<usize, WalError> {
    let segment = match hold::lowest(dir)? {
        Some(held) => segment.min(held),
        None => segment,
    };
    let mut removed = 0;
    for seq in replay::list_segments(dir)? {
        if seq >= segment {
            break;
        }
        let path = segment::path(dir, seq);
        std::fs::remove_file(&path).map_err(io("remove", &path))?;
        removed += 1;
    }
    if removed > 0 {
        segment::sync_dir(dir)?;
    }
    Ok(removed)
}

/// Path of segment `seq` in the WAL directory `dir`.
pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    segment::path(dir, seq)
}

/// Maps an I/O error on `path` during `op` to a [`WalError`].
fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WalError + 'a {
    move |source| WalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// WAL options.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// Size at which a segment is rolled over.
    pub segment_bytes: u64,
    /// Whether commits fsync.
    pub fsync: FsyncPolicy,
}

/// An open write-ahead log, positioned for appending.
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    active: File,
    active_seq: u64,
    active_len: u64,
    pending: Vec<u8>,
    pending_start: u64,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir`: deletes the segments before `from_segment`
    /// (a checkpoint covers them), replays every intact record of the others in order through
    /// `on_record`, and repairs damage as described in `FORMAT.md`.
    pub fn open(
        dir: &Path,
        options: WalOptions,
        from_segment: u64,
        on_record: impl FnMut(Position, &[u8]),
    ) -> Result<(Wal, ReplayStats), WalError> {
        std::fs::create_dir_all(dir).map_err(|source| WalError::Io {
            op: "create dir",
            path: dir.to_path_buf(),
            source,
        })?;
        remove_before(dir, from_segment)?;
        let stats = replay::replay_dir(dir, from_segment, on_record)?;
        let (active_seq, active, active_len) = match stats.last_segment {
            Some((seq, len)) if len < options.segment_bytes => {
                (seq, segment::open_append(dir, seq)?, len)
            }
            Some((seq, _)) => {
                let file = segment::create(dir, seq + 1)?;
                (seq + 1, file, SEGMENT_HEADER_LEN)
            }
            None => {
                let first = from_segment.max(1);
                (first, segment::create(dir, first)?, SEGMENT_HEADER_LEN)
            }
        };
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                options,
                active,
                active_seq,
                active_len,
                pending: Vec::with_capacity(1 << 20),
                pending_start: active_len,
            },
            stats,
        ))
    }

    /// Buffers a record; it is written and made durable by the next [`commit`](Self::commit).
    pub fn append(&mut self, payload: &[u8]) -> Result<Position, WalError> {
        if payload.is_empty() || payload.len() > MAX_PAYLOAD_LEN {
            return Err(WalError::PayloadSize(payload.len()));
        }
        let position = Position {
            segment: self.active_seq,
            offset: self.pending_start + self.pending.len() as u64,
        };
        record::encode(payload, &mut self.pending);
        Ok(position)
    }

    /// Buffers a record whose payload `write` appends to the given buffer, avoiding a copy.
    pub fn append_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<Position, WalError> {
        let position = Position {
            segment: self.active_seq,
            offset: self.pending_start + self.pending.len() as u64,
        };
        record::encode_with(&mut self.pending, write).map_err(WalError::PayloadSize)?;
        Ok(position)
    }

    /// Bytes buffered and not yet committed.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Writes every buffered record with one write and, under [`FsyncPolicy::Always`], one fsync.
    /// Rolls over to a new segment afterwards when the active one is full.
    pub fn commit(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.active_path();
        self.active
            .write_all(&self.pending)
            .map_err(|source| WalError::Io {
                op: "write",
                path: path.clone(),
                source,
            })?;
        if self.options.fsync == FsyncPolicy::Always {
            self.active.sync_data().map_err(|source| WalError::Io {
                op: "fsync",
                path,
                source,
            })?;
        }
        self.active_len += self.pending.len() as u64;
        self.pending.clear();
        if self.active_len >= self.options.segment_bytes {
            self.roll()?;
        }
        self.pending_start = self.active_len;
        Ok(())
    }

    /// Sequence number of the segment being appended to.
    pub fn active_segment(&self) -> u64 {
        self.active_seq
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn active_path(&self) -> PathBuf {
        segment::path(&self.dir, self.active_seq)
    }

    /// Starts a new segment now (after a commit) and returns its sequence number: every record
    /// appended before lies in an older segment.
    pub fn roll_now(&mut self) -> Result<u64, WalError> {
        self.commit()?;
        if self.active_len > SEGMENT_HEADER_LEN {
            self.roll()?;
            self.pending_start = self.active_len;
        }
        Ok(self.active_seq)
    }

    fn roll(&mut self) -> Result<(), WalError> {
        let next = self.active_seq + 1;
        self.active = segment::create(&self.dir, next)?;
        self.active_seq = next;
        self.active_len = SEGMENT_HEADER_LEN;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
