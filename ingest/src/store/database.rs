//! Opening a data directory: lock it, open the engine, restore the last snapshot and history,
//! replay the WAL after it, and share the result behind a lock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use super::deadletter::DeadLetters;
use super::dedup::Dedup;
use super::engine::{Engine, EngineConfig, EngineError};
use super::entry::Entry;
use super::registry::Registry;
use super::snapshot::{self, Snapshot};
use super::state::State;
use super::wal::{ReplayStats, Wal, WalOptions};
use std::collections::BTreeMap;

use super::StoreError;
use crate::availability::Policy;
use crate::clock::Clock;
use crate::tracker::persist;
use crate::tracker::{MaintenanceWindow, Tracker};

/// Stored readings buffered for live watchers before slow ones start missing some.
const READINGS_BUFFER: usize = 1024;

/// Storage settings for [`Database::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// WAL settings.
    pub wal: WalOptions,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Availability settings.
    pub availability: AvailabilityOptions,
    /// The clock that stamps citytel's restart in device histories.
    pub clock: Clock,
}

/// Settings of the fleet tracker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AvailabilityOptions {
    /// Silence thresholds.
    pub policy: Policy,
    /// Site to district.
    pub districts: BTreeMap<String, String>,
    /// Configured maintenance windows.
    pub maintenance: Vec<MaintenanceWindow>,
}

/// `meta` key of the maintenance windows set over the API.
pub const MAINTENANCE_KEY: &[u8] = b"maintenance";

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
    /// the replay found.
    pub fn open(
        data_dir: &Path,
        options: &StoreOptions,
    ) -> Result<(Arc<Database>, Wal, ReplayStats), StoreError> {
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(dir_err)?;
        let lock = File::create(data_dir.join("LOCK")).map_err(dir_err)?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked(data_dir.to_path_buf()));
        }
        let engine = Engine::open(&data_dir.join("tsdb"), options.engine.clone())?;
        let a = &options.availability;
        let mut state = State {
            registry: Registry::default(),
            dedup: Dedup::default(),
            dead_letters: DeadLetters::default(),
            dirty_days: Vec::new(),
            engine,
            tracker: Tracker::new(a.policy.clone(), a.districts.clone(), a.maintenance.clone()),
            history_seq: 0,
            readings: tokio::sync::broadcast::channel(READINGS_BUFFER).0,
        };
        let snapshot = match state
            .engine
            .store()
            .meta
            .get(snapshot::KEY)
            .map_err(EngineError::from)?
        {
            Some(bytes) => Some(Snapshot::decode(&bytes)?),
            None => None,
        };
        let from_segment = snapshot.as_ref().map_or(0, |s| s.wal_segment);
        if let Some(snapshot) = snapshot {
            state.restore(snapshot);
        }
        let store = state.engine.store().clone();
        state.dead_letters.load_recent(&store.dead_letters)?;
        for item in store.history.iter() {
            let (key, value) = item.into_inner().map_err(EngineError::from)?;
            if let (Some(device), Some(change)) = (
                persist::history_device(&key),
                persist::decode_change(&value),
            ) {
                state.tracker.restore_history(device.into(), change);
            }
        }
        if let Some(bytes) = store.meta.get(MAINTENANCE_KEY).map_err(EngineError::from)? {
            let windows = postcard::from_bytes(&bytes)
                .map_err(|e| EngineError::Snapshot(format!("maintenance windows: {e}")))?;
            state.tracker.restore_maintenance(windows);
        }
        let mut undecodable = 0u64;
        let (wal, stats) = Wal::open(
            &data_dir.join("wal"),
            options.wal,
            from_segment,
            |_, record| match Entry::decode(record) {
                Ok(entry) => {
                    state.apply(&entry, None);
                }
                Err(_) => undecodable += 1,
            },
        )?;
        if undecodable > 0 {
            tracing::warn!(
                undecodable,
                "wal records with an unknown entry layout were skipped"
            );
        }
        // What happened while citytel was down is unknown, not down.
        state.tracker.ingester_started(options.clock.now_ms());
        let db = Arc::new(Database {
            state: RwLock::new(state),
            data_dir: data_dir.to_path_buf(),
            _lock: lock,
        });
        Ok((db, wal, stats))
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Read access for queries.
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, State> {
        self.state.read()
    }

    /// Write access for the writer and checkpoints.
    pub fn write(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        self.state.write()
    }
}
