//! The database: the application [`State`] behind a lock, opened from a data directory, kept
//! durable by checkpoints and tidied by the housekeeping thread.
//!
//! The writer (and nothing else) changes the state, through the write lock; queries take the read
//! lock only long enough to copy what they need.
//!
//! - [`open`]: lock the directory, open the engine, restore the last snapshot and the history,
//!   replay the WAL after it.
//! - [`checkpoint`]: move the head into the engine's store and retire the WAL that covered it.
//! - [`housekeeping`]: the thread that writes checkpoints, compacts finished days and enforces
//!   retention.
//! - [`bulk`]: imported files loaded straight into the engine.
//! - [`offline`]: commands applied to the directory of a stopped service (the command line).

pub mod bulk;
pub mod checkpoint;
pub mod housekeeping;
pub mod offline;
mod open;
#[cfg(test)]
mod replay_tests;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use citytel_storage::engine::{EngineConfig, EngineError};
use citytel_storage::wal::{ReplayStats, Wal, WalError, WalOptions};
use parking_lot::RwLock;

use crate::clock::Clock;
use crate::state::{State, StateOptions};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The time-series engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The checkpoint snapshot does not decode.
    #[error("cannot read the checkpoint snapshot: {0}")]
    Snapshot(#[from] crate::state::persist::PersistError),
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another citytel process")]
    Locked(PathBuf),
    /// The data directory cannot be created or locked.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A background thread failed.
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
    /// Told to stop while storage could not take data ({0}): what was queued was not
    /// acknowledged, and its senders resend it.
    #[error(
        "stopped while storage could not take data ({0}); unacknowledged messages will be resent"
    )]
    Paused(&'static str),
}

/// Storage settings for [`Database::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// WAL settings.
    pub wal: WalOptions,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Settings of the state (availability policy, districts, configured maintenance).
    pub state: StateOptions,
    /// The clock that stamps citytel's restart in device histories.
    pub clock: Clock,
}

/// What opening a data directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// What the WAL replay found.
    pub replay: ReplayStats,
    /// Persisted records (history, dead letters, WAL entries) that did not decode, by kind;
    /// each is also counted in `citytel_records_undecodable_total` and logged.
    pub undecodable: Vec<(&'static str, u64)>,
}

/// The shared state behind a lock: the writer applies, queries read.
#[derive(Debug)]
pub struct Database {
    state: RwLock<State>,
    data_dir: PathBuf,
    _lock: File,
}

impl Database {
    /// Opens the data directory: locks it, opens the engine, restores the last snapshot and
    /// replays the WAL after it. Returns the database, the WAL positioned for appending, and what
    /// opening found.
    pub fn open(
        data_dir: &Path,
        options: &StoreOptions,
    ) -> Result<(Arc<Database>, Wal, OpenReport), DbError> {
        open::open(data_dir, options, open::MarkStart::InMemory)
    }

    /// Like [`open`](Self::open), for the service: citytel's restart is written to the WAL
    /// (and applied from there), so a later replay marks it in its place among the other
    /// entries and the alert engine rebuilds exactly what it built live.
    pub fn open_service(
        data_dir: &Path,
        options: &StoreOptions,
    ) -> Result<(Arc<Database>, Wal, OpenReport), DbError> {
        open::open(data_dir, options, open::MarkStart::Recorded)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Read access. Hold it only to look up or copy what an answer needs.
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// Write access, for the writer, checkpoints and housekeeping.
    pub(crate) fn write(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        self.state.write()
    }
}
