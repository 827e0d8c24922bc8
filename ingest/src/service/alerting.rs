//! Alerting in the running service: the configured rules are put in force through the WAL at
//! start (when they differ from the ones the data directory has) and again on reload, and each
//! configured receiver gets its delivery task.

use std::sync::Arc;

use super::ServiceError;
use crate::alerts::config::AlertSettings;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Database;
use crate::notify;
use crate::pipeline::{Pipeline, PipelineClosed};
use crate::state::command::{Actor, Command, Outcome, Submitted};

/// Puts alert rules in force in a running service.
#[derive(Clone)]
pub struct AlertsControl {
    db: Arc<Database>,
    pipeline: Pipeline,
}

impl AlertsControl {
    pub(super) fn new(db: Arc<Database>, pipeline: Pipeline) -> Self {
        AlertsControl { db, pipeline }
    }

    /// Puts the rules of `settings` in force, unless they already are. Returns how many rules
    /// are in force when they changed, `None` when they were already.
    pub async fn set_rules(&self, settings: &AlertSettings) -> Result<Option<usize>, String> {
        if self.db.read().alerts().rules_source() == settings.rules_source {
            return Ok(None);
        }
        let command = Submitted {
            actor: Actor::default(),
            command: Command::SetAlertRules {
                source: settings.rules_source.clone(),
            },
        };
        match self.pipeline.command(&command).await {
            Ok(Outcome::AlertRulesSet { rules }) => {
                tracing::info!(rules, "alert rules in force");
                Ok(Some(rules))
            }
            Ok(other) => Err(format!("the rules were refused: {other:?}")),
            Err(PipelineClosed) => Err("citytel is shutting down".into()),
        }
    }
}

/// Starts a delivery task per configured receiver.
pub(super) fn start_receivers(
    settings: &Settings,
    db: &Arc<Database>,
    clock: Clock,
) -> Result<Option<notify::Handle>, ServiceError> {
    Ok(notify::start(notify::Options {
        receivers: settings.alerts.receivers.clone(),
        config: settings.alerts.config.clone(),
        data_dir: settings.storage.data_dir.clone(),
        db: db.clone(),
        clock,
    })?)
}
