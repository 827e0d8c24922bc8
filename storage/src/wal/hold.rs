//! Retention holds: a reader of the WAL that still needs old segments (a sink whose backlog is not
//! yet confirmed) keeps them from being deleted by checkpoints and start-up.
//!
//! A hold is the file `{wal_dir}/holds/{name}` holding, as decimal text, the sequence number of
//! the oldest segment the holder still needs. [`super::remove_before`] never deletes a segment at
//! or after the lowest hold. A hold that cannot be read holds everything (nothing is deleted)
//! and is reported.

use std::path::{Path, PathBuf};

use super::{WalError, io, segment};

/// Directory of the holds inside the WAL directory.
const DIR: &str = "holds";

fn path(wal_dir: &Path, name: &str) -> PathBuf {
    wal_dir.join(DIR).join(name)
}

/// Sets (creates or moves) the hold `name` to `segment`, durably.
pub fn set(wal_dir: &Path, name: &str, segment: u64) -> Result<(), WalError> {
    let dir = wal_dir.join(DIR);
    std::fs::create_dir_all(&dir).map_err(io("create dir", &dir))?;
    let target = path(wal_dir, name);
    let tmp = dir.join(format!("{name}.tmp"));
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
        file.write_all(format!("{segment}\n").as_bytes())
            .map_err(io("write", &tmp))?;
        file.sync_all().map_err(io("fsync", &tmp))?;
    }
    std::fs::rename(&tmp, &target).map_err(io("rename", &target))?;
    segment::sync_dir(&dir)
}

/// Removes the hold `name`; returns whether there was one.
pub fn release(wal_dir: &Path, name: &str) -> Result<bool, WalError> {
    let target = path(wal_dir, name);
    match std::fs::remove_file(&target) {
        Ok(()) => {
            segment::sync_dir(&wal_dir.join(DIR))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("remove", &target)(e)),
    }
}

/// The segment of the hold `name`, if it exists and is readable.
pub fn get(wal_dir: &Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(path(wal_dir, name))
        .ok()
        .and_then(|t| t.trim().parse().ok())
}

/// The lowest segment any hold needs, if there is a hold. An unreadable hold counts as 0.
pub fn lowest(wal_dir: &Path) -> Result<Option<u64>, WalError> {
    let dir = wal_dir.join(DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("list", &dir)(e)),
    };
    let mut lowest: Option<u64> = None;
    for entry in entries {
        let entry = entry.map_err(io("list", &dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| !n.ends_with(".tmp")) else {
            continue;
        };
        let segment = get(wal_dir, name).unwrap_or_else(|| {
            tracing::warn!(hold = name, "unreadable wal hold keeps every segment");
            0
        });
        lowest = Some(lowest.map_or(segment, |l| l.min(segment)));
    }
    Ok(lowest)
}
