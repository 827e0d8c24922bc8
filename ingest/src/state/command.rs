//! Commands: the state changes that do not come from devices (maintenance windows, organisations,
//! API keys, alert acknowledgements, silences and rules). A command is written to the WAL like a message and applied by the writer like one,
//! so it is durable before it is answered and replays in order; applying it also writes its
//! audit record.

use citytel_availability::Span;

use super::access::{ApiKey, KeyId, Organisation};
use super::maintenance::{MaintenanceWindow, Target};
use crate::alerts::commands::AlertRefusal;
use crate::alerts::silence::{MatchOp, Silence};
use crate::alerts::view::AlertView;

/// A state change requested through the API or the command line.
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
    /// Add an organisation.
    CreateOrganisation(Organisation),
    /// Add an API key (its secret was shown to the caller; only its hash is here).
    CreateKey(ApiKey),
    /// Revoke an API key.
    RevokeKey {
        /// The key.
        id: KeyId,
    },
    /// Acknowledge an open alert.
    AckAlert {
        /// The alert.
        id: u64,
        /// Who acknowledges it.
        by: String,
    },
    /// Add a silence; its id is assigned when it is applied.
    CreateSilence {
        /// Label matchers: (name, operator, value or regular expression).
        matchers: Vec<(String, MatchOp, String)>,
        /// When it starts.
        starts_ms: i64,
        /// When it ends.
        ends_ms: i64,
        /// Who created it.
        created_by: String,
        /// Why.
        comment: String,
    },
    /// End a silence now.
    ExpireSilence {
        /// The silence.
        id: u64,
    },
    /// Put a new set of alert rules in force (the `[[rule]]` tables, as TOML).
    SetAlertRules {
        /// The rules.
        source: String,
    },
}

impl Command {
    /// The method it stands for, as the audit log names it.
    pub fn method(&self) -> &'static str {
        match self {
            Command::SetMaintenance { .. } => "SetMaintenance",
            Command::DeleteMaintenance { .. } => "DeleteMaintenance",
            Command::CreateOrganisation(_) => "CreateOrganisation",
            Command::CreateKey(_) => "CreateKey",
            Command::RevokeKey { .. } => "RevokeKey",
            Command::AckAlert { .. } => "AckAlert",
            Command::CreateSilence { .. } => "CreateSilence",
            Command::ExpireSilence { .. } => "ExpireSilence",
            Command::SetAlertRules { .. } => "SetAlertRules",
        }
    }

    /// What it changes, for the audit log.
    pub fn target(&self) -> String {
        match self {
            Command::SetMaintenance {
                target: Target::Device(d),
                ..
            } => format!("device {d}"),
            Command::SetMaintenance {
                target: Target::Site(s),
                ..
            } => format!("site {s}"),
            Command::DeleteMaintenance { id } => format!("maintenance window {id}"),
            Command::CreateOrganisation(org) => format!("organisation {}", org.id),
            Command::CreateKey(key) => format!("key {} of {}", key.id, key.org),
            Command::RevokeKey { id } => format!("key {id}"),
            Command::AckAlert { id, .. } => format!("alert {id}"),
            Command::CreateSilence { matchers, .. } => {
                let shown: Vec<String> = matchers
                    .iter()
                    .map(|(n, op, v)| format!("{n}{}{v:?}", op.as_str()))
                    .collect();
                format!("silence {{{}}}", shown.join(", "))
            }
            Command::ExpireSilence { id } => format!("silence {id}"),
            Command::SetAlertRules { source } => {
                let rules = source.matches("[[rule]]").count();
                format!("{rules} alert rules")
            }
        }
    }
}

/// Who submitted a command: the organisation and key of the caller (both empty for the command
/// line, or for an API without authentication).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The caller's organisation.
    pub org: String,
    /// The caller's key id.
    pub key: String,
}

/// A command with its actor, as it goes into the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Who.
    pub actor: Actor,
    /// What.
    pub command: Command,
}

/// What applying a command did, for the caller that submitted it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The window that was added, with its id.
    MaintenanceSet(MaintenanceWindow),
    /// The window that was removed.
    MaintenanceDeleted(MaintenanceWindow),
    /// The organisation was added.
    OrganisationCreated(Organisation),
    /// The key was added.
    KeyCreated(ApiKey),
    /// The key was revoked (or already was).
    KeyRevoked(ApiKey),
    /// The alert was acknowledged.
    AlertAcknowledged(Box<AlertView>),
    /// The silence was added, with its id.
    SilenceCreated(Silence),
    /// The silence was ended.
    SilenceExpired(Silence),
    /// The rules are in force.
    AlertRulesSet {
        /// How many.
        rules: usize,
    },
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
    /// The organisation id is taken.
    #[error("organisation {0} already exists")]
    OrganisationExists(String),
    /// The key's organisation does not exist, or its id is taken.
    #[error("key {0} cannot be added: its organisation is unknown or its id is taken")]
    KeyNotAdded(KeyId),
    /// No such key.
    #[error("no API key {0}")]
    NoSuchKey(KeyId),
    /// An alert command the alert engine refused.
    #[error(transparent)]
    Alert(#[from] AlertRefusal),
    /// Alert rules that do not validate (or a silence matcher that does not compile).
    #[error("invalid alert rules or matchers: {0}")]
    InvalidAlerting(String),
    /// The command's record did not decode (written by another build).
    #[error("the command could not be read: {0}")]
    Undecodable(String),
}

impl Outcome {
    /// `ok` or the refusal, for the audit log.
    pub fn result(&self) -> String {
        match self {
            Outcome::Refused(r) => format!("refused: {r}"),
            _ => "ok".to_string(),
        }
    }
}
