//! The first admin key. When authentication is on and no admin key works (a new data directory,
//! or every admin key revoked or expired), citytel creates the bootstrap organisation if needed
//! and an admin key for it, through the WAL like any change, and writes the key to a file only
//! citytel's user can read. The secret is never logged.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ServiceError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Database;
use crate::pipeline::Pipeline;
use crate::state::access::{ApiKey, Organisation, Role, Scope, token};
use crate::state::command::{Actor, Command, Outcome, Submitted};

/// Creates the first admin key when none works; returns the file it was written to.
pub(super) async fn admin_key(
    settings: &Settings,
    db: &Arc<Database>,
    pipeline: &Pipeline,
    clock: Clock,
) -> Result<Option<PathBuf>, ServiceError> {
    let now = clock.now_ms();
    let org = settings.api.bootstrap_organisation.clone();
    let (has_admin, has_org) = {
        let state = db.read();
        (
            state.access().has_active_admin(now),
            state.access().org(&org).is_some(),
        )
    };
    if has_admin {
        return Ok(None);
    }
    let fail = |e: String| ServiceError::Bootstrap(e);
    if !has_org {
        let command = Command::CreateOrganisation(Organisation {
            id: org.clone(),
            name: org.clone(),
            licence: String::new(),
            created_ms: now,
        });
        apply(pipeline, command).await.map_err(fail)?;
    }
    let (id, secret, hash) = token::generate();
    let key = ApiKey {
        id,
        org,
        role: Role::Admin,
        scope: Scope::default(),
        name: "first admin key".into(),
        hash,
        created_ms: now,
        expires_ms: None,
        revoked_ms: None,
    };
    let path = key_path(settings);
    // Written before the key is stored: if writing fails, no key exists that nobody can see.
    write_private(&path, &secret).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    match apply(pipeline, Command::CreateKey(key))
        .await
        .map_err(fail)?
    {
        Outcome::KeyCreated(key) => {
            tracing::warn!(
                key_id = %key.id,
                file = %path.display(),
                "no admin API key worked: created one and wrote it to the file"
            );
            Ok(Some(path))
        }
        other => Err(fail(format!("unexpected outcome {other:?}"))),
    }
}

async fn apply(pipeline: &Pipeline, command: Command) -> Result<Outcome, String> {
    let submitted = Submitted {
        actor: Actor::default(),
        command,
    };
    match pipeline.command(&submitted).await {
        Ok(Outcome::Refused(r)) => Err(r.to_string()),
        Ok(outcome) => Ok(outcome),
        Err(e) => Err(e.to_string()),
    }
}

/// Where the first admin key goes: `api.admin_key_file`, relative to the data directory unless
/// absolute.
pub fn key_path(settings: &Settings) -> PathBuf {
    let file = &settings.api.admin_key_file;
    if file.is_absolute() {
        file.clone()
    } else {
        settings.storage.data_dir.join(file)
    }
}

/// Writes `text` to `path` (replacing it) readable and writable only by this user.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
