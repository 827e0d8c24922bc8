//! A sink's durable cursor: the WAL position up to which its server has confirmed everything.
//!
//! File `{data_dir}/sinks/{name}/cursor`, 28 bytes, a [`crate::cursor_file`] whose payload is:
//!
//! | size | field                                   |
//! |------|-----------------------------------------|
//! | 8    | WAL segment, u64 LE                     |
//! | 8    | byte offset in the segment, u64 LE      |
//!
//! A missing file means the sink never ran: it starts at the oldest WAL segment present. A file
//! that fails its checks is an error (the sink stops rather than guess where it was).

use std::path::{Path, PathBuf};

use citytel_storage::wal::Position;

pub use crate::cursor_file::CursorError;
use crate::cursor_file::{CursorKind, u64_at};

const KIND: CursorKind = CursorKind {
    magic: *b"CTSC",
    payload_len: 16,
    what: "sink",
};

/// The cursor file of a sink whose state lives in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    KIND.path(dir)
}

fn payload(position: Position) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&position.segment.to_le_bytes());
    out[8..].copy_from_slice(&position.offset.to_le_bytes());
    out
}

/// Loads the cursor of the sink in `dir`; `None` if it never ran.
pub fn load(dir: &Path) -> Result<Option<Position>, CursorError> {
    Ok(KIND.load(dir)?.map(|p| Position {
        segment: u64_at(&p, 0),
        offset: u64_at(&p, 8),
    }))
}

/// Stores the cursor of the sink in `dir` durably.
pub fn store(dir: &Path, position: Position) -> Result<(), CursorError> {
    KIND.store(dir, &payload(position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_in_the_28_byte_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let at = Position {
            segment: 7,
            offset: 1234,
        };
        store(dir.path(), at).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(at));
        let bytes = std::fs::read(path(dir.path())).unwrap();
        assert_eq!(bytes.len(), 28);
        assert_eq!(&bytes[..4], b"CTSC");
        assert_eq!(&bytes[8..16], &7u64.to_le_bytes());
        assert_eq!(&bytes[16..24], &1234u64.to_le_bytes());
    }
}
