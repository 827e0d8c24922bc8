//! Changing a data directory while the service is stopped (the command line's `keys` and
//! `orgs`): the command goes through the WAL and is applied exactly as the writer would, then a
//! checkpoint makes it part of the snapshot. With the service running the directory is locked;
//! the command line then asks the service over its admin API instead.

use super::{Database, DbError, StoreOptions, checkpoint};
use crate::journal::Entry;
use crate::state::command::{Outcome, Submitted};
use crate::state::persist;

/// Applies `command` to the stopped service's data directory at `data_dir`, submitted at
/// `now_ms`. [`DbError::Locked`] means the service is running.
pub fn apply(
    data_dir: &std::path::Path,
    options: &StoreOptions,
    command: &Submitted,
    now_ms: i64,
) -> Result<Outcome, DbError> {
    let (db, mut wal, _) = Database::open(data_dir, options)?;
    let encoded = persist::encode_command(command);
    let entry = Entry::Command {
        received_at_ms: now_ms,
        payload: &encoded,
    };
    wal.append_with(|buf| entry.encode(buf))?;
    wal.commit()?;
    let outcome = db.write().apply(&entry, None).outcome;
    checkpoint::run(&db, &mut wal, 1)?;
    Ok(outcome.unwrap_or_else(|| unreachable!("a command entry always has an outcome")))
}

/// What a stopped service's data directory holds, read without changing it (a checkpoint is
/// not written): the caller reads what it needs from the state.
pub fn read<T>(
    data_dir: &std::path::Path,
    options: &StoreOptions,
    read: impl FnOnce(&crate::state::State) -> T,
) -> Result<T, DbError> {
    let (db, _wal, _) = Database::open(data_dir, options)?;
    let state = db.read();
    Ok(read(&state))
}
