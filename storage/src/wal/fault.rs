//! Failures the WAL's owner can wait out: a resource that ran out (disk space, file descriptors)
//! is told apart from a real I/O error ([`WalError::exhausted`]), and tests can make the next
//! operation fail on purpose ([`super::Wal::faults`], with the `testing` feature).

use std::io;

use super::WalError;

/// `EMFILE`: this process has no file descriptor left (the same number on Linux, the BSDs and
/// macOS).
const EMFILE: i32 = 24;
/// `ENFILE`: the system has no file descriptor left.
const ENFILE: i32 = 23;

/// A resource that ran out, so an operation failed without anything being wrong with the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exhausted {
    /// No space (or quota) left on the file system.
    DiskFull,
    /// No file descriptor left, in the process or the system.
    Descriptors,
}

impl Exhausted {
    /// Stable snake_case name, for metric labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Exhausted::DiskFull => "disk_full",
            Exhausted::Descriptors => "descriptors",
        }
    }

    /// Which resource `error` says ran out, if any.
    pub fn of(error: &io::Error) -> Option<Exhausted> {
        match (error.kind(), error.raw_os_error()) {
            (io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _) => {
                Some(Exhausted::DiskFull)
            }
            (_, Some(EMFILE | ENFILE)) => Some(Exhausted::Descriptors),
            _ => None,
        }
    }
}

impl WalError {
    /// The resource that ran out, when this error is one the owner can wait out: the WAL is
    /// left as it was before the failed operation (see `FORMAT.md`, "Failed commits"), and the
    /// same operation can be tried again. `None` for every other error, which must stop the
    /// writer.
    pub fn exhausted(&self) -> Option<Exhausted> {
        match self {
            WalError::Io { source, .. } => Exhausted::of(source),
            _ => None,
        }
    }
}

/// Where a test can make the WAL fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    /// The write of a commit fails before writing anything.
    Write,
    /// The write of a commit writes half of the group, then fails.
    WritePartly,
    /// The fsync of a commit fails after the write.
    Sync,
    /// Creating the next segment fails.
    CreateSegment,
}

/// Faults armed by a test: each fails the next operation at its point once, or every one until
/// cleared.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch {
    #[cfg(any(test, feature = "testing"))]
    armed: std::sync::Arc<parking_lot::Mutex<Vec<(FaultPoint, i32, bool)>>>,
}

impl FaultSwitch {
    /// Arms a fault: the next operation at `point` fails with OS error `errno`.
    #[cfg(any(test, feature = "testing"))]
    pub fn fail_next(&self, point: FaultPoint, errno: i32) {
        self.armed.lock().push((point, errno, false));
    }

    /// Arms a fault that fails every operation at `point` with `errno` until [`Self::clear`].
    #[cfg(any(test, feature = "testing"))]
    pub fn fail_until_cleared(&self, point: FaultPoint, errno: i32) {
        self.armed.lock().push((point, errno, true));
    }

    /// Disarms every fault.
    #[cfg(any(test, feature = "testing"))]
    pub fn clear(&self) {
        self.armed.lock().clear();
    }

    /// The error to fail the operation at `point` with, if a fault is armed there.
    #[cfg_attr(not(any(test, feature = "testing")), allow(clippy::unused_self))]
    pub(super) fn take(&self, point: FaultPoint) -> Option<io::Error> {
        #[cfg(any(test, feature = "testing"))]
        {
            let mut armed = self.armed.lock();
            if let Some(i) = armed.iter().position(|(p, _, _)| *p == point) {
                let (_, errno, persistent) = armed[i];
                if !persistent {
                    armed.remove(i);
                }
                return Some(io::Error::from_raw_os_error(errno));
            }
        }
        let _ = point;
        None
    }
}
