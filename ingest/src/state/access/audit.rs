//! The audit log: every change made through the API (maintenance windows, organisations, keys),
//! with when, who (organisation and key), what (method and target) and the result. Each record
//! comes from a command applied by the writer, so it is in the WAL before the change is answered;
//! checkpoints move records into the `audit` table, and the housekeeping thread deletes them after
//! `api.audit_retention`. The most recent ones are kept in memory for `ListAuditLog`.

use std::collections::VecDeque;

/// Audit records kept in memory; older ones are read from the table.
pub const RECENT: usize = 10_000;

/// One change made through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Sequence number (the key in the `audit` table).
    pub seq: u64,
    /// When it was submitted, ms since the Unix epoch.
    pub at_ms: i64,
    /// The caller's organisation (empty: the command line, or an API without authentication).
    pub org: String,
    /// The caller's key id (empty: as for `org`).
    pub key: String,
    /// The RPC, e.g. `SetMaintenance`.
    pub method: String,
    /// What it changed, e.g. `device cab-0001` or `key 0123456789ab`.
    pub target: String,
    /// `ok`, or why it was refused.
    pub result: String,
}

/// Recent audit records and those not yet persisted.
#[derive(Debug, Default)]
pub struct AuditLog {
    recent: VecDeque<AuditRecord>,
    next_seq: u64,
    unflushed: Vec<AuditRecord>,
}

impl AuditLog {
    /// Appends a record (its sequence number is assigned here).
    pub(crate) fn push(&mut self, mut record: AuditRecord) {
        record.seq = self.next_seq;
        self.next_seq += 1;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.unflushed.push(record.clone());
        self.recent.push_back(record);
    }

    /// Recent records, oldest first.
    pub fn recent(&self) -> impl DoubleEndedIterator<Item = &AuditRecord> {
        self.recent.iter()
    }

    /// The sequence number of the next record.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Takes the records not yet persisted.
    pub(crate) fn take_unflushed(&mut self) -> Vec<AuditRecord> {
        std::mem::take(&mut self.unflushed)
    }

    /// Restores the sequence and the most recent records (oldest first) at start-up.
    pub(crate) fn restore(&mut self, next_seq: u64, recent: Vec<AuditRecord>) {
        self.next_seq = next_seq;
        let skip = recent.len().saturating_sub(RECENT);
        self.recent = recent.into_iter().skip(skip).collect();
    }

    /// Drops the records before `cutoff_ms` from memory.
    pub(crate) fn expire(&mut self, cutoff_ms: i64) {
        self.recent.retain(|r| r.at_ms >= cutoff_ms);
        self.unflushed.retain(|r| r.at_ms >= cutoff_ms);
    }
}
