//! Restoring the state at start-up from what checkpoints wrote: the snapshot, the legacy
//! maintenance record, the history, the most recent dead letters (within the dead-letter
//! store's bounds) and audit records.

use std::sync::Arc;

use citytel_storage::engine::store::Table;
use citytel_storage::series::Point;

use super::snapshot::Snapshot;
use super::{State, maintenance, persist};
use crate::decode::RejectReason;

impl State {
    /// Restores a snapshot into a fresh state.
    pub(crate) fn restore(&mut self, mut snapshot: Snapshot) {
        self.counts_stale();
        // The registry first: everything keyed by a device shares its copy of the id.
        for device in snapshot.devices {
            self.registry.restore(device);
        }
        self.history_seq = snapshot.fleet.next_history_seq;
        for (device, kind, _) in &mut snapshot.fleet.machines {
            (*device, *kind) = self.registry.share(device.clone(), kind);
        }
        for (device, _) in &mut snapshot.fleet.clocks {
            *device = self
                .registry
                .shared_id(device)
                .unwrap_or_else(|| device.clone());
        }
        self.fleet.restore(snapshot.fleet);
        for (device, boots) in snapshot.dedup {
            let device = self.registry.shared_id(&device).unwrap_or(device);
            self.dedup.restore(device, boots);
        }
        for (id, time_ms, value) in snapshot.latest {
            self.engine.restore_latest(id, Point { time_ms, value });
        }
        let counts = snapshot
            .dead_letter_counts
            .into_iter()
            .filter_map(|(code, n)| Some((RejectReason::from_code(code)?, n)))
            .collect();
        self.dead_letters
            .restore_counts(counts, snapshot.dead_letter_seq);
        self.dirty_days = snapshot.dirty_days;
        if let Some(windows) = snapshot.maintenance {
            self.maintenance.restore(windows);
        }
        self.access.restore(snapshot.orgs, snapshot.keys);
        self.audit.restore(snapshot.audit_seq, Vec::new());
        self.alerts.restore(snapshot.alerts);
        for (device, attributes) in snapshot.attributes {
            let device = self.registry.shared_id(&device).unwrap_or(device);
            self.attributes.restore(device, attributes);
        }
    }

    /// Loads the most recent persisted audit records; returns the records that did not decode.
    pub(crate) fn load_audit(
        &mut self,
        table: &Table,
    ) -> Result<Vec<persist::PersistError>, citytel_storage::engine::EngineError> {
        let mut loaded = Vec::new();
        let mut undecodable = Vec::new();
        for item in table.iter().rev().take(super::access::audit::RECENT) {
            let (_, value) = item?;
            match persist::decode_audit(&value) {
                Ok(record) => loaded.push(record),
                Err(e) => undecodable.push(e),
            }
        }
        loaded.reverse();
        let next = self.audit.next_seq();
        self.audit.restore(next, loaded);
        Ok(undecodable)
    }

    /// Restores the maintenance windows a version 1 data directory kept apart from its snapshot;
    /// the next checkpoint moves them into the snapshot.
    pub(crate) fn restore_legacy_maintenance(
        &mut self,
        windows: Vec<maintenance::MaintenanceWindow>,
    ) {
        self.maintenance.restore(windows);
        self.legacy_maintenance = true;
    }

    /// Restores one persisted history record.
    pub(crate) fn restore_history(&mut self, device: &str, change: citytel_availability::Change) {
        self.counts_stale();
        let device = self
            .registry
            .shared_id(device)
            .unwrap_or_else(|| Arc::from(device));
        self.fleet.restore_history(device, change);
    }

    /// Loads the most recent persisted dead letters; returns the records that did not decode
    /// (left out here, for the caller to count and report).
    pub(crate) fn load_dead_letters(
        &mut self,
        table: &Table,
    ) -> Result<Vec<persist::PersistError>, citytel_storage::engine::EngineError> {
        let mut undecodable = Vec::new();
        for item in table.iter().rev() {
            let (key, value) = item?;
            let seq = <[u8; 8]>::try_from(&key[..]).map(u64::from_be_bytes);
            match (seq, persist::decode_dead_letter(&value)) {
                (Ok(seq), Ok(letter)) => {
                    if !self.dead_letters.restore_older(seq, letter) {
                        break;
                    }
                }
                (Err(_), _) => undecodable.push(persist::PersistError::Invalid("dead letter key")),
                (_, Err(e)) => undecodable.push(e),
            }
        }
        Ok(undecodable)
    }
}
