//! The state's side of alerting: what applying an entry feeds the alert engine
//! ([`crate::alerts::Alerts`]), the [`World`] it reads the rest of the state through, and the
//! alert commands.
//!
//! Every device transition the fleet records is fed to the engine in the order it was recorded
//! (a message's own transitions before its readings); every entry's time then moves the engine's
//! time. While rules are in force, the writer's ticks are WAL entries ([`Entry::Tick`]), so time
//! only moves through the WAL and the replay rebuilds exactly the alerts built live.
//!
//! [`Entry::Tick`]: crate::journal::Entry::Tick

use citytel_availability::{DeviceState, Span, StateTimes, availability};
use citytel_proto::v1::TelemetryBatch;

use super::State;
use super::command::{Outcome, Refusal};
use super::fleet::Fleet;
use super::maintenance::Windows;
use super::registry::Registry;
use crate::alerts::silence::{MatchOp, Matcher, Silence};
use crate::alerts::world::{DeviceRef, World};
use crate::alerts::{Alerts, BatchFacts, config};

/// What the writer's tick should do at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TickDue {
    /// Nothing is due.
    Nothing,
    /// Silence timeouts are due and no alert rule is in force: apply them, nothing to record.
    Unrecorded,
    /// Deadlines are due while alert rules are in force: write a tick to the WAL, then apply it.
    Recorded,
}

/// The rest of the state, as the alert engine reads it.
pub(crate) struct StateWorld<'a> {
    registry: &'a Registry,
    fleet: &'a Fleet,
    maintenance: &'a Windows,
}

impl World for StateWorld<'_> {
    fn state(&self, device: &str) -> DeviceState {
        self.fleet
            .state(device)
            .map_or(DeviceState::Unknown, |(s, _)| s)
    }

    fn state_at(&self, device: &str, at_ms: i64) -> DeviceState {
        let all = self.fleet.transitions(device);
        match all.partition_point(|t| t.at_ms <= at_ms) {
            // No history kept: the current state is all there is.
            0 if all.is_empty() => self.state(device),
            0 => DeviceState::Unknown,
            i => all[i - 1].to,
        }
    }

    fn since(&self, device: &str) -> Option<i64> {
        self.fleet.state(device)?.1.map(|t| t.at_ms)
    }

    fn times(&self, device: &str, window: Span) -> StateTimes {
        let site = self.registry.get(device).map_or("", |r| &*r.site);
        let maintenance = self.maintenance.for_device(device, site);
        let all = self.fleet.transitions(device);
        // The transition in force at the start, those inside, and the first after the end.
        let lo = all
            .partition_point(|t| t.at_ms <= window.start_ms)
            .saturating_sub(1);
        let hi = (all.partition_point(|t| t.at_ms < window.end_ms) + 1).min(all.len());
        availability(&all[lo..hi.max(lo)], &maintenance, window)
            .summary
            .times
    }

    fn devices(&self, f: &mut dyn FnMut(DeviceRef<'_>)) {
        for r in self.registry.iter_after(None) {
            f(DeviceRef {
                id: &r.device_id,
                kind: &r.kind,
                site: &r.site,
                district: r.district.as_deref(),
            });
        }
    }

    fn device(&self, id: &str) -> Option<DeviceRef<'_>> {
        let r = self.registry.get(id)?;
        Some(DeviceRef {
            id: &r.device_id,
            kind: &r.kind,
            site: &r.site,
            district: r.district.as_deref(),
        })
    }

    fn district(&self, site: &str) -> Option<&str> {
        self.fleet.district(site)
    }

    fn maintenance_until(&self, device: Option<&str>, site: Option<&str>, at: i64) -> Option<i64> {
        let windows = match (device, site) {
            (Some(d), _) => {
                let site = self.registry.get(d).map_or("", |r| &*r.site);
                self.maintenance.for_device(d, site)
            }
            (None, Some(s)) => self.maintenance.for_site(s),
            (None, None) => return None,
        };
        windows
            .spans()
            .iter()
            .find(|s| s.start_ms <= at && at < s.end_ms)
            .map(|s| s.end_ms)
    }
}

/// What a telemetry batch's readings looked like before they were stored, for the engine.
pub(crate) struct Probe {
    latest: Vec<Option<citytel_storage::series::Point>>,
    seq_max: Option<u64>,
}

impl State {
    /// The alert engine.
    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// The alert engine, to change settings that are not state (the outbox limit).
    pub(crate) fn alerts_mut(&mut self) -> &mut Alerts {
        &mut self.alerts
    }

    /// The engine and the world it reads, borrowed apart.
    fn split(&mut self) -> (&mut Alerts, StateWorld<'_>) {
        (
            &mut self.alerts,
            StateWorld {
                registry: &self.registry,
                fleet: &self.fleet,
                maintenance: &self.maintenance,
            },
        )
    }

    /// The world the engine reads (for views of alerts).
    pub fn alert_world(&self) -> impl World + '_ {
        StateWorld {
            registry: &self.registry,
            fleet: &self.fleet,
            maintenance: &self.maintenance,
        }
    }

    /// Feeds the engine the device transitions recorded since it was last fed.
    pub(super) fn feed_alerts(&mut self) {
        let total = self.fleet.unflushed_len();
        if self.alerts_fed >= total {
            self.alerts_fed = total;
            return;
        }
        if !self.alerts.has_rules() {
            self.alerts_fed = total;
            return;
        }
        let changes: Vec<_> = self.fleet.unflushed_from(self.alerts_fed).to_vec();
        self.alerts_fed = total;
        let (alerts, world) = self.split();
        for change in changes {
            let citytel_availability::Change::Transition(t) = change.change else {
                continue;
            };
            let Some(device) = world.device(&change.device) else {
                continue;
            };
            alerts.on_transition(device, &t, &world);
        }
    }

    /// After an entry at `at_ms`: the transitions it caused, then the engine's time.
    pub(super) fn alerts_after_entry(&mut self, at_ms: i64) {
        self.feed_alerts();
        if self.alerts.has_rules() {
            let (alerts, world) = self.split();
            alerts.advance(at_ms, &world);
        }
    }

    /// What the writer's tick should do at `now_ms`.
    pub(crate) fn tick_due(&self, now_ms: i64) -> TickDue {
        let fleet = self.fleet.next_deadline().is_some_and(|d| d <= now_ms);
        if !self.alerts.has_rules() {
            return if fleet {
                TickDue::Unrecorded
            } else {
                TickDue::Nothing
            };
        }
        let alerts = self.alerts.next_deadline().is_some_and(|d| d < now_ms);
        if fleet || alerts {
            TickDue::Recorded
        } else {
            TickDue::Nothing
        }
    }

    /// The earliest time at which the writer's tick may have something to do.
    pub(crate) fn next_due(&self) -> Option<i64> {
        let alerts = self
            .alerts
            .has_rules()
            .then(|| self.alerts.next_deadline().map(|d| d.saturating_add(1)))
            .flatten();
        match (self.fleet.next_deadline(), alerts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A recorded tick: silence timeouts and the engine's deadlines up to `at_ms`.
    pub(super) fn apply_tick(&mut self, at_ms: i64) {
        self.fleet.advance(at_ms);
        self.alerts_after_entry(at_ms);
    }

    /// citytel started at `at_ms`: its downtime is unknown to the fleet and to the engine.
    pub(super) fn apply_started(&mut self, at_ms: i64) {
        self.fleet.ingester_started(at_ms);
        self.feed_alerts();
        let (alerts, world) = self.split();
        alerts.restarted(at_ms, &world);
    }

    /// What a telemetry batch finds before it is stored, when rules read readings: the latest
    /// points of the metrics threshold rules compare, and the boot's highest sequence number
    /// when completeness rules count readings.
    pub(super) fn alert_probe(&self, device: &str, batch: &TelemetryBatch) -> Option<Probe> {
        if !self.alerts.reads_readings() {
            return None;
        }
        let catalog = self.engine.catalog();
        Some(Probe {
            latest: batch
                .metric_names
                .iter()
                .map(|m| {
                    if !self.alerts.reads_value(m) {
                        return None;
                    }
                    catalog
                        .get(device, m)
                        .and_then(|id| self.engine.latest_point(id))
                })
                .collect(),
            seq_max: if self.alerts.counts_readings() {
                self.dedup
                    .seqs(device, batch.boot_id)
                    .and_then(|s| s.span())
                    .map(|(_, hi)| hi)
            } else {
                None
            },
        })
    }

    /// Feeds the engine a stored batch of `device` (as the registry has it) received at
    /// `at_ms`.
    pub(super) fn alert_readings(
        &mut self,
        device: DeviceRef<'_>,
        batch: &TelemetryBatch,
        probe: Probe,
        stored: u64,
        at_ms: i64,
    ) {
        self.feed_alerts();
        let catalog = self.engine.catalog();
        let mut latest = probe.latest;
        for (name, before) in batch.metric_names.iter().zip(latest.iter_mut()) {
            if !self.alerts.reads_value(name) {
                continue;
            }
            let now = catalog
                .get(device.id, name)
                .and_then(|id| self.engine.latest_point(id));
            let was = *before;
            *before = now.filter(|p| Some(*p) != was);
        }
        let latest: Vec<Option<f64>> = latest.iter().map(|p| p.map(|p| p.value)).collect();
        let produced = if self.alerts.counts_readings() {
            let span = self
                .dedup
                .seqs(device.id, batch.boot_id)
                .and_then(|s| s.span());
            match (probe.seq_max, span) {
                (None, Some((lo, hi))) => hi - lo + 1,
                (Some(before), Some((_, hi))) => hi.saturating_sub(before),
                (_, None) => 0,
            }
        } else {
            0
        };
        let facts = BatchFacts {
            metrics: &batch.metric_names,
            latest: &latest,
            stored,
            produced,
        };
        let (alerts, world) = self.split();
        alerts.on_readings(device, at_ms, facts, &world);
    }

    /// Applies an alert command at `at_ms`.
    pub(super) fn alert_command(&mut self, command: AlertCommand, at_ms: i64) -> Outcome {
        {
            let (alerts, world) = self.split();
            alerts.advance(at_ms, &world);
        }
        match command {
            AlertCommand::Ack { id, by } => {
                let (alerts, world) = self.split();
                match alerts.ack(id, by, at_ms, &world) {
                    Ok(view) => Outcome::AlertAcknowledged(Box::new(view)),
                    Err(r) => Outcome::Refused(r.into()),
                }
            }
            AlertCommand::CreateSilence {
                matchers,
                starts_ms,
                ends_ms,
                created_by,
                comment,
            } => {
                let matchers: Result<Vec<Matcher>, _> = matchers
                    .iter()
                    .map(|(n, op, v)| Matcher::new(n, *op, v))
                    .collect();
                let matchers = match matchers {
                    Ok(m) => m,
                    Err(e) => return Outcome::Refused(Refusal::InvalidAlerting(e.to_string())),
                };
                let silence = Silence {
                    id: 0,
                    matchers,
                    starts_ms,
                    ends_ms,
                    created_by,
                    comment,
                    created_ms: at_ms,
                };
                match self.alerts.create_silence(silence) {
                    Ok(s) => Outcome::SilenceCreated(s),
                    Err(r) => Outcome::Refused(r.into()),
                }
            }
            AlertCommand::ExpireSilence { id } => match self.alerts.expire_silence(id, at_ms) {
                Ok(s) => Outcome::SilenceExpired(s),
                Err(r) => Outcome::Refused(r.into()),
            },
            AlertCommand::SetRules { source } => {
                let rules = if source.trim().is_empty() {
                    Ok(Vec::new())
                } else {
                    config::parse_rules(&source).map(|(_, rules)| rules)
                };
                match rules {
                    Ok(rules) => {
                        let n = rules.len();
                        let source = if n == 0 { String::new() } else { source };
                        // Everything up to now was evaluated under the old rules.
                        self.feed_alerts();
                        let (alerts, world) = self.split();
                        alerts.set_rules(rules, source, at_ms, &world);
                        Outcome::AlertRulesSet { rules: n }
                    }
                    Err(e) => Outcome::Refused(Refusal::InvalidAlerting(e.to_string())),
                }
            }
        }
    }

    /// Maintenance windows changed at `at_ms`: alerts they held back may be notified now.
    pub(super) fn alert_mutes_changed(&mut self, at_ms: i64) {
        self.alerts.mutes_changed(at_ms);
    }
}

/// An alert command, taken apart from [`super::command::Command`].
pub(super) enum AlertCommand {
    /// Acknowledge.
    Ack { id: u64, by: String },
    /// Add a silence.
    CreateSilence {
        matchers: Vec<(String, MatchOp, String)>,
        starts_ms: i64,
        ends_ms: i64,
        created_by: String,
        comment: String,
    },
    /// End a silence.
    ExpireSilence { id: u64 },
    /// New rules.
    SetRules { source: String },
}

#[cfg(test)]
mod tests;
