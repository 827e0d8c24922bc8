//! The write-ahead log: segmented files of CRC-checked records with group commit.
//!
//! The WAL owns durability and nothing else: it stores opaque payloads (see [`super::entry`] for
//! what citytel puts in them), replays them on open, repairs a torn or corrupt tail and counts it.
//! The on-disk format is specified in `FORMAT.md` next to this file.
//!
//! A commit that fails leaves the log as it was before it: the active segment is cut back to the
//! end of the last good commit and the group stays buffered, so the owner can retry the same
//! commit once the resource that ran out is back ([`WalError::exhausted`]; `FORMAT.md`, "Failed
//! commits").

mod fault;
pub mod hold;
mod record;
mod replay;
mod segment;
pub mod tail;

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub use fault::{Exhausted, FaultPoint, FaultSwitch};
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

/// A WAL failure. Write and sync failures are fatal for the process (nothing more may be
/// acknowledged) unless [`WalError::exhausted`] says a resource ran out: then the failed commit
/// left nothing behind and can be retried.
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
    /// A failed commit could not be cut back out of the active segment: what follows in the
    /// segment is unknown, so nothing more may be written to it.
    #[error("wal {op} {path} after a failed commit: {source}")]
    Rewind {
        /// What was being done.
        op: &'static str,
        /// The segment.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
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
    /// The active segment's directory entry is not yet known durable (its creation's directory
    /// fsync failed): the next commit syncs the directory before it succeeds.
    dir_unsynced: bool,
    /// The last rollover failed (so the next failure is not logged again).
    roll_failing: bool,
    faults: FaultSwitch,
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
        segment::remove_leftovers(dir);
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
                dir_unsynced: false,
                roll_failing: false,
                faults: FaultSwitch::default(),
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
    /// Rolls over to a new segment afterwards when the active one is full; a segment that
    /// cannot be created then is tried again after the next commit (the active segment grows
    /// past its size meanwhile), so the commit itself still succeeds.
    ///
    /// On failure nothing of the group stays in the segment (it is cut back to the last good
    /// commit) and the group stays buffered: calling `commit` again retries it, writing the
    /// same bytes at the same place.
    pub fn commit(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.write_pending() {
            self.rewind()?;
            return Err(e);
        }
        self.active_len += self.pending.len() as u64;
        self.pending.clear();
        self.pending_start = self.active_len;
        if self.active_len >= self.options.segment_bytes {
            match self.roll() {
                Ok(()) if self.roll_failing => {
                    self.roll_failing = false;
                    tracing::info!(
                        segment = self.active_seq,
                        "new wal segment started after all"
                    );
                }
                Ok(()) => {}
                // Logged once per run of failures; tried again after every commit.
                Err(e) if !self.roll_failing => {
                    self.roll_failing = true;
                    tracing::warn!(error = %e, "cannot start a new wal segment yet; the current one grows meanwhile");
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Writes and syncs the buffered group (and the directory, if a new segment's entry is not
    /// yet durable).
    fn write_pending(&mut self) -> Result<(), WalError> {
        let path = self.active_path();
        let failed = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| WalError::Io { op, path, source }
        };
        if let Some(e) = self.faults.take(FaultPoint::WritePartly) {
            let half = self.pending.len() / 2;
            self.active
                .write_all(&self.pending[..half])
                .map_err(failed("write", &path))?;
            return Err(failed("write", &path)(e));
        }
        if let Some(e) = self.faults.take(FaultPoint::Write) {
            return Err(failed("write", &path)(e));
        }
        self.active
            .write_all(&self.pending)
            .map_err(failed("write", &path))?;
        if self.options.fsync == FsyncPolicy::Always {
            if let Some(e) = self.faults.take(FaultPoint::Sync) {
                return Err(failed("fsync", &path)(e));
            }
            self.active.sync_data().map_err(failed("fsync", &path))?;
        }
        if self.dir_unsynced {
            segment::sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// Cuts the active segment back to the end of the last good commit, after a failed one, so
    /// no half-written record stays in the middle of the segment. A failure here is fatal.
    fn rewind(&mut self) -> Result<(), WalError> {
        let path = self.active_path();
        let fatal = |op: &'static str| {
            let path = path.clone();
            move |source| WalError::Rewind { op, path, source }
        };
        self.active
            .set_len(self.active_len)
            .map_err(fatal("truncate"))?;
        self.active
            .seek(SeekFrom::Start(self.active_len))
            .map_err(fatal("seek"))?;
        Ok(())
    }

    /// Makes the next operation at `point` fail with OS error `errno` (`ENOSPC`, `EMFILE`,
    /// ...), once: for tests of the paths that handle such failures.
    #[cfg(any(test, feature = "testing"))]
    pub fn inject_fault(&mut self, point: FaultPoint, errno: i32) {
        self.faults.fail_next(point, errno);
    }

    /// A handle that arms faults from any thread, while another owns the WAL (for tests).
    #[cfg(any(test, feature = "testing"))]
    pub fn faults(&self) -> FaultSwitch {
        self.faults.clone()
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
        if let Some(source) = self.faults.take(FaultPoint::CreateSegment) {
            return Err(WalError::Io {
                op: "create",
                path: segment::path(&self.dir, next),
                source,
            });
        }
        let (file, dir_synced) = segment::create_atomic(&self.dir, next)?;
        self.active = file;
        self.active_seq = next;
        self.active_len = SEGMENT_HEADER_LEN;
        self.dir_unsynced = !dir_synced;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
