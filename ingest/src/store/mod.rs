//! Storage: the WAL that makes messages durable, and the state built from it.
//!
//! - [`wal`]: segmented, CRC-checked, group-committed log; the only thing that makes a message
//!   durable on arrival. The pipeline's writer owns it.
//! - [`entry`]: what a WAL record holds (an accepted message or a dead letter).
//! - [`State`]: what applying entries builds: the device [`registry`], reading [`dedup`]lication,
//!   the time-series [`engine`] and the [`deadletter`] store.
//! - [`Database`]: the shared, lock-protected state that the writer applies to and queries read.
//! - [`bulk`]: loading imported files straight into the engine.
//! - [`checkpoint`]: freezing the state, writing it to the engine's store with a [`snapshot`], and
//!   deleting the WAL it covers.
//! - [`series`]: the read and write traits every series backend implements; [`head`] is the
//!   plain in-memory backend the engine is checked against.
//!
//! Applying is deterministic, so a restart (snapshot, then the WAL after it) rebuilds exactly the
//! state that was acknowledged before a restart or crash.

pub mod bulk;
pub mod checkpoint;
pub mod database;
pub mod deadletter;
pub mod dedup;
pub mod engine;
pub mod entry;
pub mod head;
pub mod maintenance;
pub mod registry;
pub mod seqset;
pub mod series;
pub mod snapshot;
mod state;
pub mod wal;

#[cfg(test)]
mod conformance;

use std::path::PathBuf;

use engine::EngineError;
use wal::WalError;

pub use database::{AvailabilityOptions, Database, StoreOptions};
pub use state::{Applied, State};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The WAL failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The time-series engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
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
}
