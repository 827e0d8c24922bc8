//! Whether the writer can make messages durable right now, and if not, why: the disk is full,
//! free space is below `storage.min_free_bytes`, or the process has no file descriptor left.
//!
//! The writer publishes it on a watch channel ([`Durability`]); the service's health follows it
//! (NOT_SERVING while paused) and it is exported as `citytel_storage_paused{reason}`. The check
//! of free space ([`FreeSpace`]) is `statvfs` on the data directory, at most every
//! [`CHECK_EVERY`] while the writer is busy.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use citytel_storage::wal::Exhausted;
use tokio::sync::watch;

use crate::telemetry::metrics as m;

/// Longest time between two free-space checks while the writer commits.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Why the writer stopped acknowledging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pause {
    /// A write failed: no space left (or the quota is used up).
    DiskFull,
    /// Free space is below `storage.min_free_bytes`.
    LowSpace,
    /// No file descriptor was left to open a file.
    Descriptors,
}

impl Pause {
    /// Stable snake_case name: the metric label and what logs say.
    pub fn as_str(self) -> &'static str {
        match self {
            Pause::DiskFull => "disk_full",
            Pause::LowSpace => "low_space",
            Pause::Descriptors => "descriptors",
        }
    }
}

impl From<Exhausted> for Pause {
    fn from(e: Exhausted) -> Self {
        match e {
            Exhausted::DiskFull => Pause::DiskFull,
            Exhausted::Descriptors => Pause::Descriptors,
        }
    }
}

/// The writer's side: publishes pauses and resumptions, logs and counts them.
#[derive(Debug)]
pub(crate) struct Durability {
    tx: watch::Sender<Option<Pause>>,
}

impl Durability {
    /// A publisher and the receiver the service's health follows (`None`: durable).
    pub(crate) fn channel() -> (Durability, watch::Receiver<Option<Pause>>) {
        let (tx, rx) = watch::channel(None);
        (Durability { tx }, rx)
    }

    /// The current pause, if any.
    pub(crate) fn current(&self) -> Option<Pause> {
        *self.tx.borrow()
    }

    /// Notes that the writer is paused for `pause` (`detail` says what failed).
    pub(crate) fn pause(&self, pause: Pause, detail: &str) {
        let previous = self.tx.send_replace(Some(pause));
        if previous != Some(pause) {
            if let Some(previous) = previous {
                metrics::gauge!(m::STORAGE_PAUSED, "reason" => previous.as_str()).set(0.0);
            }
            metrics::gauge!(m::STORAGE_PAUSED, "reason" => pause.as_str()).set(1.0);
            metrics::counter!(m::STORAGE_PAUSES_TOTAL, "reason" => pause.as_str()).increment(1);
            tracing::error!(
                reason = pause.as_str(),
                detail,
                "storage cannot take more data: nothing is acknowledged until it can"
            );
        }
    }

    /// Notes that the writer commits again.
    pub(crate) fn resume(&self) {
        if let Some(previous) = self.tx.send_replace(None) {
            metrics::gauge!(m::STORAGE_PAUSED, "reason" => previous.as_str()).set(0.0);
            tracing::warn!(
                reason = previous.as_str(),
                "storage takes data again; acknowledging resumes"
            );
        }
    }
}

/// Free space on the data directory's file system against `storage.min_free_bytes`.
#[derive(Debug)]
pub(crate) struct FreeSpace {
    dir: PathBuf,
    min_free: u64,
    checked_at: Option<Instant>,
    low: Option<u64>,
}

impl FreeSpace {
    /// Checks `dir`'s file system for at least `min_free` bytes (0: never low).
    pub(crate) fn new(dir: PathBuf, min_free: u64) -> Self {
        FreeSpace {
            dir,
            min_free,
            checked_at: None,
            low: None,
        }
    }

    /// The free bytes when they are below the minimum, checking again if the last check is
    /// older than `max_age`. A failed check counts as enough space (the write itself will say).
    pub(crate) fn low(&mut self, max_age: Duration) -> Option<u64> {
        if self.min_free == 0 {
            return None;
        }
        if self.checked_at.is_none_or(|t| t.elapsed() >= max_age) {
            self.checked_at = Some(Instant::now());
            self.low = free_bytes(&self.dir)
                .ok()
                .inspect(|free| metrics::gauge!(m::STORAGE_FREE_BYTES).set(*free as f64))
                .filter(|free| *free < self.min_free);
        }
        self.low
    }

    /// The configured minimum.
    pub(crate) fn min_free(&self) -> u64 {
        self.min_free
    }
}

/// Bytes available to unprivileged writers on the file system holding `dir`.
pub(crate) fn free_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(dir)?;
    Ok(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_below_the_minimum_is_low_and_zero_turns_the_check_off() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let mut never = FreeSpace::new(dir.path().into(), 0);
        assert_eq!(never.low(Duration::ZERO), None);
        let mut enough = FreeSpace::new(dir.path().into(), 1);
        assert_eq!(enough.low(Duration::ZERO), None);
        let mut too_little = FreeSpace::new(dir.path().into(), u64::MAX);
        assert!(too_little.low(Duration::ZERO).is_some());
    }

    #[test]
    fn pauses_are_published_until_resumed() {
        let (durability, rx) = Durability::channel();
        assert_eq!(*rx.borrow(), None);
        durability.pause(Pause::DiskFull, "test");
        assert_eq!(*rx.borrow(), Some(Pause::DiskFull));
        assert_eq!(durability.current(), Some(Pause::DiskFull));
        durability.resume();
        assert_eq!(*rx.borrow(), None);
    }
}
