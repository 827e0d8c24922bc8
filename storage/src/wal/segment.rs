//! Segment files: naming, the 8-byte header, creation with directory fsync.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{WalError, io};

/// Segment header magic.
pub const MAGIC: [u8; 4] = *b"CTWL";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Length of the segment header.
pub const SEGMENT_HEADER_LEN: u64 = 8;

/// Path of segment `seq` in `dir`.
pub fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// The sequence number of a segment file name, if it is one.
pub fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The header bytes.
pub fn header() -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&MAGIC);
    h[4..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// Creates segment `seq` with its header, fsyncing the file and the directory.
pub fn create(dir: &Path, seq: u64) -> Result<File, WalError> {
    let p = path(dir, seq);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&p)
        .map_err(io("create", &p))?;
    file.write_all(&header()).map_err(io("write header", &p))?;
    file.sync_all().map_err(io("fsync", &p))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Creates segment `seq` for a rollover: the header is written and fsynced under a temporary
/// name, then renamed into place, so a segment that exists under its name is always complete
/// (readers following the log move on to it as soon as it appears) and a failure leaves nothing
/// behind. Returns the file, positioned after the header, and whether the directory entry is durable
/// (its fsync may fail after the rename; the caller must sync the directory again before it
/// acknowledges anything written to the segment).
pub fn create_atomic(dir: &Path, seq: u64) -> Result<(File, bool), WalError> {
    let target = path(dir, seq);
    let tmp = target.with_extension("wal.tmp");
    let created = (|| {
        // The handle stays valid through the rename: nothing needs opening afterwards.
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        file.write_all(&header())
            .map_err(io("write header", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, &target).map_err(io("rename", &target))?;
        Ok(file)
    })();
    match created {
        Ok(file) => Ok((file, sync_dir(dir).is_ok())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Opens segment `seq` for appending at its end.
pub fn open_append(dir: &Path, seq: u64) -> Result<File, WalError> {
    let p = path(dir, seq);
    OpenOptions::new()
        .append(true)
        .open(&p)
        .map_err(io("open", &p))
}

/// Fsyncs a directory so that created, truncated or removed entries are durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync dir", dir))
}

/// Removes what an interrupted [`create_atomic`] left behind.
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".wal.tmp"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
