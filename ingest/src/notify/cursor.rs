//! A receiver's durable cursor: the sequence number of the first notification it has not had
//! confirmed.
//!
//! File `{data_dir}/alerts/{receiver}/cursor`, 20 bytes, a [`crate::cursor_file`] whose payload
//! is:
//!
//! | size | field                                   |
//! |------|-----------------------------------------|
//! | 8    | next sequence number, u64 LE            |
//!
//! A missing file means the receiver never confirmed anything: it starts at the oldest
//! notification kept. A file that fails its checks is an error (the receiver does not start
//! rather than guess, and resend or skip).

use std::path::{Path, PathBuf};

pub use crate::cursor_file::CursorError;
use crate::cursor_file::{CursorKind, u64_at};

const KIND: CursorKind = CursorKind {
    magic: *b"CTAC",
    payload_len: 8,
    what: "alert receiver",
};

/// The directory of receiver `name`'s state under `data_dir`.
pub fn dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("alerts").join(name)
}

/// Loads the cursor of the receiver whose state is in `dir`; `None` if it never confirmed
/// anything.
pub fn load(dir: &Path) -> Result<Option<u64>, CursorError> {
    Ok(KIND.load(dir)?.map(|p| u64_at(&p, 0)))
}

/// Stores the cursor of the receiver whose state is in `dir` durably.
pub fn store(dir: &Path, next: u64) -> Result<(), CursorError> {
    KIND.store(dir, &next.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_in_the_20_byte_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        store(dir.path(), 42).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(42));
        let bytes = std::fs::read(dir.path().join("cursor")).unwrap();
        assert_eq!(bytes.len(), 20);
        assert_eq!(&bytes[..4], b"CTAC");
        assert_eq!(&bytes[8..16], &42u64.to_le_bytes());
    }
}
