//! What of the fleet is persisted: the machines, clock estimators, heartbeat counters and gateway
//! links go into the checkpoint snapshot ([`FleetSnapshot`]); the history of changes is
//! append-only and goes into the `history` table at each checkpoint, under [`history_key`]
//! (`device \0 seq (u64 BE)`, so per device keys sort in the order the changes happened), encoded
//! by [`crate::state::persist`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Fleet;
use citytel_availability::{ClockEstimator, DeviceMachine, Snapshot};

/// (boot id, highest sequence number reported produced).
pub type BootSeq = (u64, u64);

/// The tracker's part of the checkpoint snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetSnapshot {
    /// Per device: kind and machine state.
    pub machines: Vec<(Arc<str>, Arc<str>, Snapshot)>,
    /// Per device: its clock estimator.
    pub clocks: Vec<(Arc<str>, ClockEstimator)>,
    /// Per device and boot: the highest sequence number a heartbeat reported.
    pub last_produced: Vec<(Arc<str>, Vec<BootSeq>)>,
    /// Per gateway: its children.
    pub children: Vec<(Arc<str>, Vec<Arc<str>>)>,
    /// The last time anything was heard.
    pub last_event_ms: i64,
    /// Sequence number of the next history record.
    pub next_history_seq: u64,
}

impl Fleet {
    /// The snapshot of everything but the history; `next_history_seq` is the sequence of the
    /// first history record not yet persisted.
    pub fn snapshot(&self, next_history_seq: u64) -> FleetSnapshot {
        let mut s = FleetSnapshot {
            machines: self
                .machines
                .iter()
                .map(|(d, (k, m))| (d.clone(), k.clone(), m.snapshot().clone()))
                .collect(),
            clocks: self
                .clocks
                .iter()
                .map(|(d, c)| (d.clone(), c.clone()))
                .collect(),
            last_produced: self
                .last_produced
                .iter()
                .map(|(d, b)| (d.clone(), b.iter().map(|(k, v)| (*k, *v)).collect()))
                .collect(),
            children: self
                .children
                .iter()
                .map(|(g, c)| (g.clone(), c.iter().cloned().collect()))
                .collect(),
            last_event_ms: self.last_event_ms,
            next_history_seq,
        };
        // Sorted, so equal trackers give equal snapshots.
        s.machines.sort_by(|a, b| a.0.cmp(&b.0));
        s.clocks.sort_by(|a, b| a.0.cmp(&b.0));
        s.last_produced.sort_by(|a, b| a.0.cmp(&b.0));
        s.children.sort_by(|a, b| a.0.cmp(&b.0));
        s
    }

    /// Restores a snapshot (before the history and the WAL replay).
    pub fn restore(&mut self, s: FleetSnapshot) {
        for (device, kind, snapshot) in s.machines {
            let machine = DeviceMachine::restore(&self.policy, &kind, snapshot);
            self.deadlines.set(&device, machine.next_deadline());
            self.machines.insert(device, (kind, machine));
        }
        self.clocks = s.clocks.into_iter().collect();
        self.last_produced = s
            .last_produced
            .into_iter()
            .map(|(d, b)| (d, b.into_iter().collect::<BTreeMap<_, _>>()))
            .collect();
        self.children = s
            .children
            .into_iter()
            .map(|(g, c)| (g, c.into_iter().collect::<BTreeSet<_>>()))
            .collect();
        self.last_event_ms = s.last_event_ms;
    }
}

/// The key of history record `seq` of `device`.
pub fn history_key(device: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(device.len() + 9);
    k.extend_from_slice(device.as_bytes());
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The device of a history key.
pub fn history_device(key: &[u8]) -> Option<&str> {
    let zero = key.iter().position(|&b| b == 0)?;
    std::str::from_utf8(&key[..zero]).ok()
}
