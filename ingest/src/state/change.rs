//! Applying the commands requested through the API (maintenance windows, organisations, keys,
//! acknowledgements, silences, alert rules), each with its audit record.

use super::State;
use super::access::audit::AuditRecord;
use super::alerting;
use super::command::{Command, Outcome, Refusal, Submitted};

impl State {
    /// Applies a command and writes its audit record.
    pub(super) fn apply_command(&mut self, submitted: Submitted, at_ms: i64) -> Outcome {
        let (method, target) = (submitted.command.method(), submitted.command.target());
        let outcome = self.change(submitted.command, at_ms);
        self.audit.push(AuditRecord {
            seq: 0,
            at_ms,
            org: submitted.actor.org,
            key: submitted.actor.key,
            method: method.to_string(),
            target,
            result: outcome.result(),
        });
        outcome
    }

    /// Applies one command at `at_ms`.
    fn change(&mut self, command: Command, at_ms: i64) -> Outcome {
        match command {
            Command::SetMaintenance {
                target,
                span,
                reason,
            } => match self.maintenance.add(target, span, reason) {
                Ok(window) => {
                    self.alert_mutes_changed(at_ms);
                    Outcome::MaintenanceSet(window)
                }
                Err(n) => Outcome::Refused(Refusal::TooManyWindows(n)),
            },
            Command::DeleteMaintenance { id } => match self.maintenance.remove(id) {
                Some(window) => {
                    self.alert_mutes_changed(at_ms);
                    Outcome::MaintenanceDeleted(window)
                }
                None => Outcome::Refused(Refusal::NoSuchWindow(id)),
            },
            Command::CreateOrganisation(org) => {
                if self.access.add_org(org.clone()) {
                    Outcome::OrganisationCreated(org)
                } else {
                    Outcome::Refused(Refusal::OrganisationExists(org.id))
                }
            }
            Command::CreateKey(key) => {
                if self.access.add_key(key.clone()) {
                    Outcome::KeyCreated(key)
                } else {
                    Outcome::Refused(Refusal::KeyNotAdded(key.id))
                }
            }
            Command::RevokeKey { id } => match self.access.revoke(&id, at_ms) {
                Some(key) => Outcome::KeyRevoked(key.clone()),
                None => Outcome::Refused(Refusal::NoSuchKey(id)),
            },
            Command::AckAlert { id, by } => {
                self.alert_command(alerting::AlertCommand::Ack { id, by }, at_ms)
            }
            Command::CreateSilence {
                matchers,
                starts_ms,
                ends_ms,
                created_by,
                comment,
            } => self.alert_command(
                alerting::AlertCommand::CreateSilence {
                    matchers,
                    starts_ms,
                    ends_ms,
                    created_by,
                    comment,
                },
                at_ms,
            ),
            Command::ExpireSilence { id } => {
                self.alert_command(alerting::AlertCommand::ExpireSilence { id }, at_ms)
            }
            Command::SetAlertRules { source } => {
                self.alert_command(alerting::AlertCommand::SetRules { source }, at_ms)
            }
        }
    }
}
