//! How the application state is persisted: every record type has persistence types of its own,
//! one per layout version, and is read and written only through this module (layouts in
//! `FORMAT.md` next to it).
//!
//! - Checkpoint snapshot (`meta` key `state`): a version byte, then postcard. Version 1 is the
//!   layout before record format 2 (its maintenance windows lived under `meta` key
//!   `maintenance`); version 2 is [`v2`]'s; version 3 is version 2's followed by what births said
//!   about intermittent connections ([`v3`]); version 4 is version 3's followed by the alert
//!   engine's state ([`v4`]); version 5 is version 4's followed by the devices' locations
//!   ([`v5`]); version 6, written now, is version 5's followed by the devices' attributes
//!   ([`v6`]). Every version still decodes.
//! - History records, dead letters, audit records and WAL commands: [`TAG`], a version byte, then
//!   postcard.
//!   History records and dead letters written before record format 2 carry no tag (see
//!   [`v1`]); their first byte can never be [`TAG`] (a history record starts with its variant,
//!   0 or 1; a dead letter with the varint of its receive time, an even byte for any time at or
//!   after the Unix epoch), so each record says which layout it has.
//!
//! A record that does not decode is an error for the caller to count and report; nothing here
//! skips one silently.

mod v1;
mod v2;
mod v3;
mod v4;
mod v5;
mod v6;

use citytel_availability::Change;

use super::access::audit::AuditRecord;
use super::command::Submitted;
use super::dead_letters::DeadLetter;
use super::maintenance::MaintenanceWindow;
use super::snapshot::Snapshot;

/// First byte of a tagged record (history, dead letter, command).
pub const TAG: u8 = 0xC1;
/// Layout version of the snapshot written now.
const SNAPSHOT_VERSION: u8 = 6;
/// Layout version of the history records and dead letters written now.
const RECORD_VERSION: u8 = 2;
/// Layout version of the WAL commands written now.
const COMMAND_VERSION: u8 = 2;

/// A persisted record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// The record is empty.
    #[error("empty {0} record")]
    Empty(&'static str),
    /// The record has a layout version this build does not read (written by a newer citytel).
    #[error("{what} record has layout version {found}; this build reads up to {known}")]
    Version {
        /// The record type.
        what: &'static str,
        /// Its version.
        found: u8,
        /// The newest version this build reads.
        known: u8,
    },
    /// The bytes do not match the layout.
    #[error("{what} record does not decode: {message}")]
    Layout {
        /// The record type.
        what: &'static str,
        /// What postcard said.
        message: String,
    },
    /// A field holds a value no version defines (an unknown code).
    #[error("invalid {0} in a persisted record")]
    Invalid(&'static str),
}

fn layout(what: &'static str) -> impl Fn(postcard::Error) -> PersistError {
    move |e| PersistError::Layout {
        what,
        message: e.to_string(),
    }
}

fn tagged(version: u8, body: &impl serde::Serialize) -> Vec<u8> {
    let mut out = vec![TAG, version];
    // Encoding plain structs of strings and integers into a Vec cannot fail.
    out.extend(postcard::to_stdvec(body).unwrap_or_default());
    out
}

/// Splits a tagged record into (version, body); `None` for an untagged (legacy) record.
fn untag<'a>(what: &'static str, buf: &'a [u8]) -> Result<Option<(u8, &'a [u8])>, PersistError> {
    match buf {
        [] => Err(PersistError::Empty(what)),
        [TAG, version, body @ ..] => Ok(Some((*version, body))),
        [TAG] => Err(PersistError::Empty(what)),
        _ => Ok(None),
    }
}

/// Encodes a checkpoint snapshot.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = vec![SNAPSHOT_VERSION];
    out.extend(postcard::to_stdvec(&v6::SnapshotV6::from(snapshot)).unwrap_or_default());
    out
}

/// Decodes a checkpoint snapshot of any version this build knows.
pub fn decode_snapshot(buf: &[u8]) -> Result<Snapshot, PersistError> {
    const WHAT: &str = "snapshot";
    match buf.split_first() {
        None => Err(PersistError::Empty(WHAT)),
        Some((1, body)) => read(WHAT, body, v1::SnapshotV1::into_domain),
        Some((2, body)) => read(WHAT, body, v2::SnapshotV2::into_domain),
        Some((3, body)) => read(WHAT, body, v3::SnapshotV3::into_domain),
        Some((4, body)) => read(WHAT, body, v4::SnapshotV4::into_domain),
        Some((5, body)) => read(WHAT, body, v5::SnapshotV5::into_domain),
        Some((6, body)) => read(WHAT, body, v6::SnapshotV6::into_domain),
        Some((&found, _)) => Err(PersistError::Version {
            what: WHAT,
            found,
            known: SNAPSHOT_VERSION,
        }),
    }
}

/// Reads postcard `body` as `T` and turns it into the domain type.
fn read<T: serde::de::DeserializeOwned, D>(
    what: &'static str,
    body: &[u8],
    into_domain: impl FnOnce(T) -> Result<D, PersistError>,
) -> Result<D, PersistError> {
    into_domain(postcard::from_bytes::<T>(body).map_err(layout(what))?)
}

/// Decodes a record written before record format 2 (untagged).
type Legacy<D> = fn(&[u8]) -> Result<D, PersistError>;

/// Decodes a tagged record whose current layout, at `version`, is `T`; `legacy` decodes an
/// untagged one (written before record format 2), where one can exist.
fn decode_tagged<T: serde::de::DeserializeOwned, D>(
    what: &'static str,
    buf: &[u8],
    version: u8,
    into_domain: impl FnOnce(T) -> Result<D, PersistError>,
    legacy: Option<Legacy<D>>,
) -> Result<D, PersistError> {
    match (untag(what, buf)?, legacy) {
        (Some((found, body)), _) if found == version => read(what, body, into_domain),
        (Some((found, _)), _) => Err(PersistError::Version {
            what,
            found,
            known: version,
        }),
        (None, Some(legacy)) => legacy(buf),
        (None, None) => Err(PersistError::Invalid("untagged record")),
    }
}

/// Encodes a history record.
pub fn encode_change(change: &Change) -> Vec<u8> {
    tagged(RECORD_VERSION, &v2::ChangeV2::from(change))
}

/// Decodes a history record of either layout.
pub fn decode_change(buf: &[u8]) -> Result<Change, PersistError> {
    decode_tagged(
        "history",
        buf,
        RECORD_VERSION,
        v2::ChangeV2::into_domain,
        Some(|buf| read("history", buf, v1::ChangeV1::into_domain)),
    )
}

/// Encodes a dead letter.
pub fn encode_dead_letter(letter: &DeadLetter) -> Vec<u8> {
    tagged(RECORD_VERSION, &v2::DeadLetterV2::from(letter))
}

/// Decodes a dead letter of either layout.
pub fn decode_dead_letter(buf: &[u8]) -> Result<DeadLetter, PersistError> {
    decode_tagged(
        "dead letter",
        buf,
        RECORD_VERSION,
        v2::DeadLetterV2::into_domain,
        Some(|buf| {
            read("dead letter", buf, |l: v1::DeadLetterV1| {
                v2::dead_letter(l.received_at_ms, l.reason, l.topic, l.detail, l.payload)
            })
        }),
    )
}

/// Decodes the maintenance windows a version 1 data directory kept under `meta` key
/// `maintenance` (they are in the snapshot from version 2 on).
pub fn decode_legacy_maintenance(buf: &[u8]) -> Result<Vec<MaintenanceWindow>, PersistError> {
    read(
        "maintenance windows",
        buf,
        |windows: Vec<v1::MaintenanceWindowV1>| {
            Ok(windows
                .into_iter()
                .map(v1::MaintenanceWindowV1::into_domain)
                .collect())
        },
    )
}

/// Encodes an audit record.
pub fn encode_audit(record: &AuditRecord) -> Vec<u8> {
    tagged(RECORD_VERSION, &v2::AuditRecordV2::from(record))
}

/// Decodes an audit record.
pub fn decode_audit(buf: &[u8]) -> Result<AuditRecord, PersistError> {
    decode_tagged(
        "audit",
        buf,
        RECORD_VERSION,
        |r: v2::AuditRecordV2| Ok(r.into()),
        None,
    )
}

/// Encodes a command with its actor for the WAL.
pub fn encode_command(command: &Submitted) -> Vec<u8> {
    tagged(COMMAND_VERSION, &v2::SubmittedV2::from(command))
}

/// Decodes a command from the WAL.
pub fn decode_command(buf: &[u8]) -> Result<Submitted, PersistError> {
    decode_tagged(
        "command",
        buf,
        COMMAND_VERSION,
        v2::SubmittedV2::into_domain,
        None,
    )
}

#[cfg(test)]
mod tests;
