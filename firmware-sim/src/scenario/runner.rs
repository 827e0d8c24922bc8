//! Runs a [`Scenario`] against a broker (or citytel's device endpoint): steps through its
//! timeline, drives each device's [`Firmware`] and moves the bytes over MQTT [`Session`]s, and
//! records the ground truth.
//!
//! Time is the scenario's, in steps: each step is an instant at which something is due (a
//! scripted event, a boot, a reading or heartbeat). A [`Pacer`] decides how an instant is
//! reached: [`super::RealTime`] sleeps until it, a test moves its own clock. Within a step:
//! scripted events (file order), then boots, then readings and heartbeats are taken, then every
//! device with a working link connects if needed (birth, with its gateway children's births) and
//! sends what it has; the step ends once every publish is acknowledged. A connection the broker
//! closes is noticed at the device's next step: it buffers and reconnects when it can, as
//! firmware does.
//!
//! How devices leave: a power cut or a lost link closes the socket without a word (the broker
//! publishes the Last Will, listed in the [`Step`] so a test can wait for it); a shutdown or
//! reboot sends a death and disconnects cleanly; hung firmware sends nothing and keeps its
//! connection open, and after a watchdog reset its next connection takes the old one over (no
//! Last Will). A gateway child's death is sent by its gateway. A sleepy device connects only when
//! it has something to send, and ends each session with a clean disconnect and no death (listed
//! in the ground truth as [`Delivered::Disconnect`]); it is up while it sleeps. A clean
//! disconnect returns once the other side closed the connection, so citytel has seen it within
//! the step.
//!
//! At the end every device that can still reach citytel sends a heartbeat stamped with the end
//! time and disconnects cleanly (no death: it is still up when the scenario stops).

use std::collections::BTreeMap;
use std::time::Duration;

use citytel_proto::catalog;
use citytel_proto::topic::Channel;
use citytel_proto::v1::{DeathReason, Status, TelemetryBatch};
use prost::Message as _;

use super::firmware::Firmware;
use super::pacer::{Pacer, Step};
use super::session::Session;
use super::spec::Action;
use super::truth::{
    Delivered, DeviceCondition, DeviceTruth, ReadingTruth, Recorder, ScenarioReport,
};
use super::validate::{Scenario, ScheduledEvent};

/// How a run connects.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The true time of the scenario's start, ms since the epoch.
    pub start_unix_ms: i64,
    /// Prepended to device ids to form MQTT client ids.
    pub client_id_prefix: String,
    /// MQTT keep-alive of every connection.
    pub keep_alive: Duration,
}

impl RunOptions {
    /// Options for a run starting at `start_unix_ms`, with client ids `scenario-{device}` and a
    /// 60 s keep-alive.
    pub fn starting_at(start_unix_ms: i64) -> Self {
        RunOptions {
            start_unix_ms,
            client_id_prefix: "scenario-".into(),
            keep_alive: Duration::from_secs(60),
        }
    }
}

/// Runs `scenario` paced by `pacer` and returns its ground truth.
pub async fn run<P: Pacer>(
    scenario: &Scenario,
    options: &RunOptions,
    pacer: &mut P,
) -> ScenarioReport {
    let mut run = Run::new(scenario, options);
    run.go(pacer).await;
    run.recorder
        .finish(options.start_unix_ms + scenario.duration_ms)
}

/// A message waiting for its acknowledgement.
struct Pending {
    device: usize,
    boot_id: u64,
    what: Delivered,
    /// Readings it carries (taken from the front of the device's outbox).
    readings: u64,
}

/// The state of a run.
struct Run<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
    firmware: Vec<Firmware>,
    sessions: Vec<Option<Session>>,
    /// Per device: the connection (and its boot) a watchdog reset left open; the device's next
    /// connection takes it over.
    stale: Vec<Option<(Session, u64)>>,
    recorder: Recorder,
    /// Boots to come: (true time, order) -> (device, whether a watchdog resets it first).
    boots: BTreeMap<(i64, usize), (usize, bool)>,
    boot_order: usize,
    started: Vec<bool>,
    /// Per device: why it is down, if it is.
    down_cause: Vec<&'static str>,
    wills: Vec<String>,
}

impl<'a> Run<'a> {
    fn new(scenario: &'a Scenario, options: &'a RunOptions) -> Self {
        let start = options.start_unix_ms;
        let firmware: Vec<Firmware> = scenario
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| Firmware::new(i, d.clone(), scenario.seed, start))
            .collect();
        let truths = scenario
            .devices
            .iter()
            .map(|d| DeviceTruth {
                device_id: d.id.clone(),
                kind: d.kind.as_str().to_string(),
                site: d.site.clone(),
                gateway_id: d.gateway.map(|g| scenario.devices[g].id.clone()),
                reporting_interval_ms: d.interval_ms,
                heartbeat_interval_ms: d.heartbeat_ms,
                sleepy: d.sleepy,
                clock_skew_ms: d.clock_skew_ms,
                periods: Vec::new(),
                boots: Vec::new(),
                deliveries: Vec::new(),
                metric_names: catalog::metric_names(d.kind)
                    .iter()
                    .map(|m| (*m).to_string())
                    .collect(),
                readings: Vec::new(),
                readings_produced: 0,
                readings_delivered: 0,
                readings_lost: 0,
                readings_backfilled: 0,
            })
            .collect();
        let mut run = Run {
            scenario,
            options,
            sessions: firmware.iter().map(|_| None).collect(),
            stale: firmware.iter().map(|_| None).collect(),
            started: vec![false; firmware.len()],
            down_cause: vec!["not-started"; firmware.len()],
            firmware,
            recorder: Recorder::new(&scenario.name, start, truths),
            boots: BTreeMap::new(),
            boot_order: 0,
            wills: Vec::new(),
        };
        for (d, def) in scenario.devices.iter().enumerate() {
            run.schedule_boot(d, start + def.start_ms, false);
        }
        run
    }

    async fn go<P: Pacer>(&mut self, pacer: &mut P) {
        let start = self.options.start_unix_ms;
        let end = start + self.scenario.duration_ms;
        let scenario: &Scenario = self.scenario;
        let events = &scenario.events;
        let mut next_event = 0;
        loop {
            let due = [
                events.get(next_event).map(|e| start + e.at_ms),
                self.boots.keys().next().map(|(t, _)| *t),
                self.firmware.iter().filter_map(Firmware::next_due_ms).min(),
            ];
            let Some(t) = due.into_iter().flatten().min().filter(|t| *t < end) else {
                break;
            };
            pacer.until(t).await;
            while let Some(event) = events.get(next_event).filter(|e| start + e.at_ms == t) {
                self.apply(event, t).await;
                next_event += 1;
            }
            while let Some(entry) = self.boots.first_entry().filter(|e| e.key().0 == t) {
                let (d, reset) = entry.remove();
                if reset {
                    if !self.firmware[d].hung {
                        continue;
                    }
                    self.reset(d, "watchdog", t);
                }
                self.boot(d, t);
            }
            for d in 0..self.firmware.len() {
                self.take(d, t);
            }
            self.deliver_all(t, pacer).await;
            for d in 0..self.firmware.len() {
                let lost = self.firmware[d].trim_buffer();
                self.recorder.lost(d, self.firmware[d].boot_id, &lost, t);
            }
            self.note_conditions(t);
            let step = Step {
                at_unix_ms: t,
                last_wills: std::mem::take(&mut self.wills),
                last: false,
            };
            pacer.settled(&step).await;
        }
        pacer.until(end).await;
        for fw in &mut self.firmware {
            fw.heartbeat_due = fw.powered;
        }
        self.deliver_all(end, pacer).await;
        pacer
            .settled(&Step {
                at_unix_ms: end,
                last_wills: Vec::new(),
                last: true,
            })
            .await;
        for session in &mut self.sessions {
            if let Some(s) = session.take() {
                s.disconnect().await;
            }
        }
        for stale in &mut self.stale {
            if let Some((s, _)) = stale.take() {
                s.disconnect().await;
            }
        }
    }

    /// Device `d` takes the readings due at `t`; the ground truth lists them.
    fn take(&mut self, d: usize, t: i64) {
        let fw = &mut self.firmware[d];
        let taken = usize::try_from(fw.take_due(t)).unwrap_or(usize::MAX);
        let fw = &self.firmware[d];
        for r in fw.outbox.iter().skip(fw.outbox.len().saturating_sub(taken)) {
            let reading = ReadingTruth {
                boot_id: fw.boot_id,
                seq: r.seq,
                taken_unix_ms: fw.true_ms(r.time_unix_ms),
                time_unix_ms: r.time_unix_ms,
                values: r.values.clone(),
                delivered_unix_ms: None,
                lost_unix_ms: None,
            };
            self.recorder.took(d, reading);
        }
    }

    fn schedule_boot(&mut self, d: usize, at_ms: i64, reset: bool) {
        self.boots.insert((at_ms, self.boot_order), (d, reset));
        self.boot_order += 1;
    }

    fn boot(&mut self, d: usize, t: i64) {
        if self.firmware[d].powered {
            return;
        }
        self.firmware[d].boot(t);
        self.started[d] = true;
        self.recorder.boot(d, self.firmware[d].boot_id, t);
    }

    async fn apply(&mut self, e: &ScheduledEvent, t: i64) {
        let d = e.device;
        match e.action {
            Action::PowerOff if self.firmware[d].powered => {
                self.cut(d, t).await;
                self.power_off(d, "power-off", t);
            }
            Action::PowerOn => self.boot(d, t),
            // Hung firmware cannot say goodbye: its power just goes.
            Action::Shutdown if self.firmware[d].hung => {
                self.cut(d, t).await;
                self.power_off(d, "shutdown", t);
            }
            Action::Shutdown if self.firmware[d].powered => {
                self.goodbye(d, t, DeathReason::Shutdown).await;
                self.power_off(d, "shutdown", t);
            }
            Action::Reboot if self.firmware[d].hung => {
                self.reset(d, "reboot", t);
                self.schedule_boot(d, t + e.downtime_ms, false);
            }
            Action::Reboot if self.firmware[d].powered => {
                self.goodbye(d, t, DeathReason::Reboot).await;
                self.power_off(d, "reboot", t);
                self.schedule_boot(d, t + e.downtime_ms, false);
            }
            Action::Hang if self.firmware[d].powered && !self.firmware[d].hung => {
                self.firmware[d].hung = true;
                self.down_cause[d] = "hang";
                for c in self.scenario.devices[d].children.clone() {
                    self.firmware[c].announced = false;
                }
                if e.downtime_ms > 0 {
                    self.schedule_boot(d, t + e.downtime_ms, true);
                }
            }
            Action::LinkDown if self.firmware[d].link_up => {
                if self.firmware[d].powered {
                    self.cut(d, t).await;
                }
                self.firmware[d].link_up = false;
                self.firmware[d].asleep = false;
            }
            Action::LinkUp => {
                let fw = &mut self.firmware[d];
                fw.link_up = true;
                // A sleepy device goes back to its schedule (it wakes at once if it has news).
                fw.asleep = fw.def.sleepy && fw.powered && !fw.hung;
            }
            Action::SetClockSkew => {
                self.firmware[d].skew_ms = e.skew_ms;
                self.recorder.skew(d, e.skew_ms);
            }
            Action::SetMetric | Action::ResetMetric => {
                let value = (e.action == Action::SetMetric).then_some(e.value);
                if let Some(slot) = e.metric.and_then(|m| self.firmware[d].overrides.get_mut(m)) {
                    *slot = value;
                }
            }
            Action::PowerOff
            | Action::Shutdown
            | Action::Reboot
            | Action::LinkDown
            | Action::Hang => {}
        }
    }

    /// A hung device restarts without a word: its connection stays open on the broker's side
    /// until its next connection takes it over.
    fn reset(&mut self, d: usize, cause: &'static str, t: i64) {
        if let Some(session) = self.sessions[d].take() {
            self.stale[d] = Some((session, self.firmware[d].boot_id));
        }
        self.power_off(d, cause, t);
    }

    fn power_off(&mut self, d: usize, cause: &'static str, t: i64) {
        let boot_id = self.firmware[d].boot_id;
        let lost = self.firmware[d].power_off();
        self.recorder.lost(d, boot_id, &lost, t);
        self.down_cause[d] = cause;
        for c in self.scenario.devices[d].children.clone() {
            self.firmware[c].announced = false;
        }
    }

    /// The device's connection ends without a goodbye: a device's own connection drops (its
    /// Last Will goes out), a gateway child's gateway reports it lost.
    async fn cut(&mut self, d: usize, t: i64) {
        match self.scenario.devices[d].gateway {
            None => {
                let current = self.sessions[d]
                    .take()
                    .map(|s| (s, self.firmware[d].boot_id));
                for (session, boot_id) in [self.stale[d].take(), current].into_iter().flatten() {
                    let alive = !session.is_closed();
                    session.drop_abruptly().await;
                    if alive {
                        self.recorder
                            .delivered(d, t, boot_id, Delivered::LastWill, 0);
                        self.wills.push(self.scenario.devices[d].id.clone());
                    }
                }
                self.firmware[d].announced = false;
                for c in self.scenario.devices[d].children.clone() {
                    self.firmware[c].announced = false;
                }
            }
            Some(_) => self.goodbye(d, t, DeathReason::ConnectionLost).await,
        }
    }

    /// The device says goodbye with a death: on its own connection (then disconnects cleanly),
    /// or through its gateway.
    async fn goodbye(&mut self, d: usize, t: i64, reason: DeathReason) {
        let gateway = self.scenario.devices[d].gateway;
        let carrier = gateway.unwrap_or(d);
        let gateway_id = gateway.map(|g| self.scenario.devices[g].id.clone());
        if self.firmware[d].announced
            && let Some(session) = self.sessions[carrier].as_mut()
            && !session.is_closed()
        {
            let fw = &self.firmware[d];
            let death = fw.death(Some(t), reason, gateway_id.as_deref());
            let topic = fw.topic(Channel::Status);
            if session.publish(topic, death.encode_to_vec()).await && session.flush().await == 1 {
                let what = Delivered::Death {
                    reason: wire_reason(reason),
                };
                self.recorder.delivered(d, t, fw.boot_id, what, 0);
            }
        }
        self.firmware[d].announced = false;
        if gateway.is_none() {
            if let Some(session) = self.sessions[d].take() {
                session.disconnect().await;
            }
            for c in self.scenario.devices[d].children.clone() {
                self.firmware[c].announced = false;
            }
        }
    }

    async fn deliver_all<P: Pacer>(&mut self, t: i64, pacer: &P) {
        for d in 0..self.firmware.len() {
            if self.scenario.devices[d].gateway.is_none() {
                self.deliver(d, t, pacer).await;
            }
        }
    }

    /// Device `d` (not a child) connects if it must and can, and sends what it has, with its
    /// children's.
    async fn deliver<P: Pacer>(&mut self, d: usize, t: i64, pacer: &P) {
        let fw = &self.firmware[d];
        if !fw.powered || !fw.link_up || fw.hung || (fw.def.sleepy && !fw.has_news()) {
            return;
        }
        self.firmware[d].asleep = false;
        if self.sessions[d].as_ref().is_none_or(Session::is_closed) {
            if let Some(old) = self.sessions[d].take() {
                old.drop_abruptly().await;
            }
            self.firmware[d].announced = false;
            let children = self.scenario.devices[d].children.clone();
            for &c in &children {
                self.firmware[c].announced = false;
            }
            let fw = &self.firmware[d];
            let will = (
                fw.topic(Channel::Status),
                fw.death(None, DeathReason::ConnectionLost, None)
                    .encode_to_vec(),
            );
            let client_id = format!("{}{}", self.options.client_id_prefix, fw.def.id);
            match Session::open(&pacer.broker(), &client_id, will, self.options.keep_alive).await {
                Ok(session) => {
                    self.sessions[d] = Some(session);
                    // The new connection took the old one over: no Last Will.
                    if let Some((old, _)) = self.stale[d].take() {
                        old.drop_abruptly().await;
                    }
                }
                Err(error) => {
                    tracing::debug!(device = %fw.def.id, %error, "cannot connect; buffering");
                    return;
                }
            }
        }
        let pending = self.compose(d, t);
        let Some(session) = self.sessions[d].as_mut() else {
            return;
        };
        let mut sent = 0usize;
        for (topic, payload, _) in &pending {
            if !session.publish(topic.clone(), payload.clone()).await {
                break;
            }
            sent += 1;
        }
        let acked = usize::try_from(session.flush().await)
            .unwrap_or(usize::MAX)
            .min(sent);
        for (_, _, p) in pending.into_iter().take(acked) {
            let fw = &mut self.firmware[p.device];
            match &p.what {
                Delivered::Birth { .. } => fw.announced = true,
                Delivered::Readings { .. } => {
                    let n = usize::try_from(p.readings).unwrap_or(usize::MAX);
                    fw.outbox.drain(..n.min(fw.outbox.len()));
                }
                _ => {}
            }
            self.recorder
                .delivered(p.device, t, p.boot_id, p.what, p.readings);
        }
        if self.sessions[d].as_ref().is_some_and(Session::is_closed) {
            self.firmware[d].announced = false;
            for c in self.scenario.devices[d].children.clone() {
                self.firmware[c].announced = false;
            }
        }
        if self.scenario.devices[d].sleepy {
            self.sleep(d, t).await;
        }
    }

    /// A sleepy device ends its session cleanly, without a death, and sleeps; its next session
    /// starts with a birth again.
    async fn sleep(&mut self, d: usize, t: i64) {
        let Some(session) = self.sessions[d].take() else {
            return;
        };
        let fw = &mut self.firmware[d];
        fw.announced = false;
        if session.is_closed() {
            session.drop_abruptly().await;
            return;
        }
        session.disconnect().await;
        fw.asleep = true;
        let boot_id = fw.boot_id;
        self.recorder
            .delivered(d, t, boot_id, Delivered::Disconnect, 0);
    }

    /// What device `d` and its children send now: births where needed, buffered readings,
    /// heartbeats due.
    fn compose(&mut self, d: usize, t: i64) -> Vec<(String, Vec<u8>, Pending)> {
        let def = &self.scenario.devices[d];
        let reporters: Vec<usize> = std::iter::once(d)
            .chain(
                def.children
                    .iter()
                    .copied()
                    .filter(|&c| self.firmware[c].powered),
            )
            .collect();
        let gateway_of = |r: usize| (r != d).then_some(def.id.as_str());
        let mut out = Vec::new();
        for &r in &reporters {
            let fw = &self.firmware[r];
            if fw.announced {
                continue;
            }
            let children = if r == d {
                def.children
                    .iter()
                    .map(|&c| self.scenario.devices[c].id.clone())
                    .collect()
            } else {
                Vec::new()
            };
            let birth = fw.birth(t, gateway_of(r), children);
            out.push(status_message(
                fw,
                &birth,
                Delivered::Birth {
                    reporting_interval_ms: fw.def.interval_ms,
                    heartbeat_interval_ms: fw.def.heartbeat_ms,
                    intermittent: fw.intermittent(),
                },
            ));
        }
        for &r in &reporters {
            let fw = &self.firmware[r];
            let now_device = fw.device_ms(t);
            for batch in fw.batches(gateway_of(r)) {
                out.push(telemetry_message(fw, batch, now_device));
            }
        }
        for &r in &reporters {
            let fw = &mut self.firmware[r];
            if std::mem::take(&mut fw.heartbeat_due) {
                let hb = fw.heartbeat(t, gateway_of(r));
                let last_seq = fw.last_seq();
                out.push(status_message(fw, &hb, Delivered::Heartbeat { last_seq }));
            }
        }
        out
    }

    /// Records every device's condition after the step at `t`.
    fn note_conditions(&mut self, t: i64) {
        for d in 0..self.firmware.len() {
            if !self.started[d] {
                continue;
            }
            let fw = &self.firmware[d];
            let carrier = self.scenario.devices[d].gateway.unwrap_or(d);
            let carrier_fw = &self.firmware[carrier];
            let connected = carrier_fw.powered
                && !carrier_fw.hung
                && carrier_fw.link_up
                && self.sessions[carrier]
                    .as_ref()
                    .is_some_and(|s| !s.is_closed());
            let (condition, cause) = if !fw.powered || fw.hung {
                (DeviceCondition::Down, self.down_cause[d])
            } else if (connected && fw.announced) || fw.asleep {
                let cause = if fw.booted_at_ms == t {
                    "boot"
                } else if fw.asleep {
                    "asleep"
                } else {
                    "reconnected"
                };
                (DeviceCondition::Up, cause)
            } else if carrier != d {
                (DeviceCondition::Unreachable, "gateway-unreachable")
            } else if !fw.link_up {
                (DeviceCondition::Unreachable, "link-down")
            } else {
                (DeviceCondition::Unreachable, "connection-lost")
            };
            self.recorder.condition(d, condition, t, cause);
        }
    }
}

fn status_message(fw: &Firmware, status: &Status, what: Delivered) -> (String, Vec<u8>, Pending) {
    (
        fw.topic(Channel::Status),
        status.encode_to_vec(),
        Pending {
            device: fw.index,
            boot_id: fw.boot_id,
            what,
            readings: 0,
        },
    )
}

fn telemetry_message(
    fw: &Firmware,
    batch: TelemetryBatch,
    now_device_ms: i64,
) -> (String, Vec<u8>, Pending) {
    let first_seq = batch.readings.first().map_or(0, |r| r.seq);
    let last_seq = batch.readings.last().map_or(0, |r| r.seq);
    let backfilled = batch
        .readings
        .iter()
        .filter(|r| r.time_unix_ms < now_device_ms)
        .count() as u64;
    let readings = batch.readings.len() as u64;
    (
        fw.topic(Channel::Telemetry),
        batch.encode_to_vec(),
        Pending {
            device: fw.index,
            boot_id: fw.boot_id,
            what: Delivered::Readings {
                first_seq,
                last_seq,
                backfilled,
            },
            readings,
        },
    )
}

/// The wire name of a death reason, as the ground truth reports it.
fn wire_reason(reason: DeathReason) -> String {
    match reason {
        DeathReason::Unspecified => "unspecified",
        DeathReason::Shutdown => "shutdown",
        DeathReason::ConnectionLost => "connection_lost",
        DeathReason::Reboot => "reboot",
        DeathReason::PowerLoss => "power_loss",
    }
    .to_string()
}
