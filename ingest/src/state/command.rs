//! Commands: the state changes that do not come from devices (maintenance windows set over the
//! API, and later keys and organisations). A command is written to the WAL like a message and
//! applied by the writer like one, so it is durable before it is answered and replays in order.

use citytel_availability::Span;

use super::maintenance::{MaintenanceWindow, Target};

/// A state change requested through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Add a maintenance window; its id is assigned when it is applied.
    SetMaintenance {
        /// What it covers.
        target: Target,
        /// When.
        span: Span,
        /// Why.
        reason: String,
    },
    /// Remove a maintenance window set over the API.
    DeleteMaintenance {
        /// Its id.
        id: u64,
    },
}

/// What applying a command did, for the caller that submitted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The window that was added, with its id.
    MaintenanceSet(MaintenanceWindow),
    /// The window that was removed.
    MaintenanceDeleted(MaintenanceWindow),
    /// The command was refused when applied (the state did not allow it); nothing changed.
    Refused(Refusal),
}

/// Why a command was refused when it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such maintenance window (or it was configured in the file, not set over the API).
    #[error("no maintenance window {0} set over the API")]
    NoSuchWindow(u64),
    /// The limit on maintenance windows is reached.
    #[error("{0} maintenance windows exist, the most allowed; delete one first")]
    TooManyWindows(usize),
    /// The command's record did not decode (written by another build).
    #[error("the command could not be read: {0}")]
    Undecodable(String),
}
