//! The per-device availability state machine: pure (no I/O, no clock), fed [`Event`]s that each
//! come with an explicit `now`, answering with the [`Change`]s to persist.
//!
//! Rules:
//! - Hearing from the device (birth, heartbeat, reading, a new connection) makes it Online and
//!   restarts its silence clock.
//! - A boot id not seen before, in a birth, heartbeat or reading, emits a [`Reboot`]; the device
//!   stays (or becomes) Online. A boot id among the last [`REMEMBERED_BOOTS`] boots (buffered
//!   data resent after a reboot) counts as hearing from the device but changes no boot.
//! - A death (explicit or the Last Will) makes the device Offline, unless it names a boot other
//!   than the current one: such a death is stale and ignored. It is stamped with `now`, or with
//!   the time the device states it went away (a Sparkplug DDEATH's) clamped to between the last
//!   transition or the last time the device was heard and `now`. A closed connection makes it
//!   Offline, except a clean one (a DISCONNECT) of a device that connects intermittently (its
//!   latest birth says so, else its kind's default in the [`Policy`]): such a device sleeps
//!   between sessions and stays in its state until its silence thresholds pass.
//! - Silence: Online becomes Late after `interval × late_grace`; Late or Unknown becomes Offline
//!   after `interval × offline_grace` (see [`Policy`]). A device is on time if heard at or before
//!   the threshold instant; a timeout transition is stamped with the threshold instant, not the
//!   time of the event that noticed it, so history does not depend on how often ticks run.
//! - The device's gateway going offline makes it Unreachable at that instant, unless it is
//!   Offline already (down by its own account): nothing of it can arrive any more. Should it be
//!   heard while its gateway is still offline, a later silence threshold makes it Unreachable
//!   again instead of Late or Offline. The gateway coming back makes an Unreachable device
//!   Unknown until it is heard.
//! - [`Event::IngesterStarted`] makes every device Unknown from the moment citytel stopped
//!   watching (citytel's own downtime is unknown, not down); silence thresholds count from the
//!   restart, and a device still silent then becomes Offline, never Late.
//! - Every event first applies the timeouts that passed before its `now`; a `now` earlier than
//!   the last transition is treated as the time of that transition, so transitions stay sorted.

use citytel_proto::v1::DeathReason;

use super::policy::{Policy, Timing};
use super::state::{Cause, DeviceState};

/// How many earlier boot ids a machine remembers, so that buffered readings of a previous boot
/// that arrive after a reboot are not mistaken for yet another reboot.
pub const REMEMBERED_BOOTS: usize = 4;

/// Something that happened to, or was heard from, a device.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The device sent a birth.
    Birth {
        /// The boot the birth announces.
        boot_id: u64,
        /// Reading interval from the birth, ms (0: not stated).
        reporting_interval_ms: u32,
        /// Heartbeat interval from the birth, ms, if stated.
        heartbeat_interval_ms: Option<u32>,
        /// Whether the device connects intermittently, if the birth says.
        intermittent: Option<bool>,
    },
    /// The device sent a heartbeat.
    Heartbeat {
        /// The heartbeat's boot.
        boot_id: u64,
    },
    /// The device's readings arrived (one event per batch is enough).
    Reading {
        /// The batch's boot.
        boot_id: u64,
    },
    /// The device sent a death, or its Last Will was published.
    Death {
        /// The boot the death belongs to.
        boot_id: u64,
        /// The stated reason (an unknown wire value maps to `Unspecified`).
        reason: DeathReason,
        /// Whether this is the MQTT Last Will rather than a death the device sent itself.
        via_will: bool,
        /// When the device went away by its own account (a Sparkplug DDEATH's timestamp), if
        /// the transition is to be stamped then rather than at `now`: it is clamped to between
        /// the last transition or the last time the device was heard and `now`, so the history
        /// stays in order and no death precedes what was heard before it.
        at_ms: Option<i64>,
    },
    /// The device connected to citytel's device endpoint.
    ConnectionOpened,
    /// The device's connection to citytel's device endpoint closed.
    ConnectionClosed {
        /// Whether the device sent an MQTT DISCONNECT (rather than the connection dropping). A
        /// clean close changes nothing for a device that connects intermittently.
        clean: bool,
    },
    /// Time passed; see [`DeviceMachine::next_deadline`] for when a tick can change something.
    Tick,
    /// The gateway this device reports through went Offline (`now` is the time of the
    /// gateway's transition).
    GatewayOffline,
    /// The gateway this device reports through came back Online.
    GatewayOnline,
    /// citytel (re)started and is about to feed this device's events again.
    IngesterStarted {
        /// When the previous run stopped watching, e.g. the time of its last durable write. The
        /// device is Unknown from then on (from its last transition if that is later, at the
        /// latest from the restart); passing the restart time counts the gap in the old state.
        stopped_at_ms: i64,
    },
}

/// A change of state, to be stored in the device's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When the device entered `to`, ms since the Unix epoch.
    pub at_ms: i64,
    /// The state it left.
    pub from: DeviceState,
    /// The state it entered.
    pub to: DeviceState,
    /// Why.
    pub cause: Cause,
    /// The device's current boot after the change, if known.
    pub boot_id: Option<u64>,
}

/// The device restarted: its boot id changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reboot {
    /// When the new boot was first heard, ms since the Unix epoch.
    pub at_ms: i64,
    /// The boot before.
    pub old_boot_id: u64,
    /// The new boot.
    pub new_boot_id: u64,
}

/// What handling an event produced, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The state changed.
    Transition(Transition),
    /// The boot id changed.
    Reboot(Reboot),
}

/// Everything a [`DeviceMachine`] remembers: plain data, to persist and [`DeviceMachine::restore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Current state.
    pub state: DeviceState,
    /// When the current state was entered (`None`: never changed).
    pub since_ms: Option<i64>,
    /// Current boot, from the latest birth, heartbeat or reading.
    pub boot_id: Option<u64>,
    /// Earlier boots, oldest first, at most [`REMEMBERED_BOOTS`].
    pub previous_boots: Vec<u64>,
    /// Expected interval from the latest birth, ms: its heartbeat interval, else its reporting
    /// interval (`None`: not stated, the kind's default applies).
    pub announced_interval_ms: Option<i64>,
    /// Where the silence clock starts: when the device was last heard, or citytel restarted, or
    /// the gateway came back (`None`: no silence threshold applies).
    pub silent_since_ms: Option<i64>,
    /// Whether the device's gateway is offline.
    pub gateway_offline: bool,
    /// Whether the latest birth said the device connects intermittently (`None`: not stated,
    /// the kind's default applies).
    pub announced_intermittent: Option<bool>,
}

/// One device's availability state machine.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMachine {
    timing: Timing,
    snapshot: Snapshot,
}

impl DeviceMachine {
    /// A machine for a device of `kind` that nothing is known about yet.
    pub fn new(policy: &Policy, kind: &str) -> Self {
        Self::restore(policy, kind, Snapshot::default())
    }

    /// A machine resuming from a persisted [`Snapshot`]. Feed it [`Event::IngesterStarted`]
    /// before anything else after a restart.
    pub fn restore(policy: &Policy, kind: &str, snapshot: Snapshot) -> Self {
        DeviceMachine {
            timing: policy.timing(kind),
            snapshot,
        }
    }

    /// What the machine remembers, to persist.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The current state.
    pub fn state(&self) -> DeviceState {
        self.snapshot.state
    }

    /// Applies `event`, which happened at `now_ms`, and returns the changes to persist, in order.
    pub fn handle(&mut self, event: &Event, now_ms: i64) -> Vec<Change> {
        let now = now_ms.max(self.since());
        let mut out = Vec::new();
        let at = match *event {
            Event::IngesterStarted { stopped_at_ms } => stopped_at_ms.max(self.since()).min(now),
            Event::Death {
                at_ms: Some(stated),
                ..
            } => stated.max(self.last_heard()).min(now),
            _ => now,
        };
        self.advance(at, &mut out);
        match *event {
            Event::Birth {
                boot_id,
                reporting_interval_ms,
                heartbeat_interval_ms,
                intermittent,
            } => {
                if self.heard(Some(boot_id), Cause::Birth, now, &mut out) {
                    let stated = |ms: u32| (ms > 0).then_some(i64::from(ms));
                    self.snapshot.announced_interval_ms = heartbeat_interval_ms
                        .and_then(stated)
                        .or_else(|| stated(reporting_interval_ms));
                    self.snapshot.announced_intermittent = intermittent;
                }
            }
            Event::Heartbeat { boot_id } => {
                self.heard(Some(boot_id), Cause::Heartbeat, now, &mut out);
            }
            Event::Reading { boot_id } => {
                self.heard(Some(boot_id), Cause::Reading, now, &mut out);
            }
            Event::ConnectionOpened => {
                self.heard(None, Cause::Connected, now, &mut out);
            }
            Event::Death {
                boot_id,
                reason,
                via_will,
                ..
            } => {
                if self
                    .snapshot
                    .boot_id
                    .is_none_or(|current| current == boot_id)
                {
                    self.down(death_cause(reason, via_will), at, &mut out);
                }
            }
            // A device that connects only to report went back to sleep: not a goodbye.
            Event::ConnectionClosed { clean: true } if self.intermittent() => {}
            Event::ConnectionClosed { clean } => {
                let cause = if clean {
                    Cause::Disconnected
                } else {
                    Cause::ConnectionLost
                };
                self.down(cause, now, &mut out);
            }
            Event::Tick => {}
            Event::GatewayOffline => {
                self.snapshot.gateway_offline = true;
                if matches!(
                    self.snapshot.state,
                    DeviceState::Online | DeviceState::Late | DeviceState::Unknown
                ) {
                    self.set(
                        DeviceState::Unreachable,
                        Cause::GatewayOffline,
                        now,
                        &mut out,
                    );
                }
            }
            Event::GatewayOnline => {
                self.snapshot.gateway_offline = false;
                if self.snapshot.state == DeviceState::Unreachable {
                    self.snapshot.silent_since_ms = Some(now);
                    self.set(DeviceState::Unknown, Cause::GatewayOnline, now, &mut out);
                }
            }
            Event::IngesterStarted { .. } => {
                self.snapshot.silent_since_ms = Some(now);
                self.set(DeviceState::Unknown, Cause::IngesterRestart, at, &mut out);
            }
        }
        out
    }

    /// The earliest `now` at which a [`Event::Tick`] would change something, if any: one
    /// millisecond after the next silence threshold (a device heard exactly at the threshold is
    /// on time). Drivers schedule ticks from it instead of polling.
    pub fn next_deadline(&self) -> Option<i64> {
        self.pending()
            .map(|(at, ..)| at.max(self.since()).saturating_add(1))
    }

    /// Whether the device connects intermittently: as its latest birth says, else as its kind's
    /// default.
    pub fn intermittent(&self) -> bool {
        self.snapshot
            .announced_intermittent
            .unwrap_or(self.timing.intermittent)
    }

    /// When the current state was entered, or the beginning of time.
    fn since(&self) -> i64 {
        self.snapshot.since_ms.unwrap_or(i64::MIN)
    }

    /// The latest of the last transition and the last time the device was heard: nothing the
    /// device says happened earlier is recorded earlier.
    fn last_heard(&self) -> i64 {
        self.since()
            .max(self.snapshot.silent_since_ms.unwrap_or(i64::MIN))
    }

    /// The next silence threshold: when, and the state and cause it leads to.
    fn pending(&self) -> Option<(i64, DeviceState, Cause)> {
        let anchor = self.snapshot.silent_since_ms?;
        let interval = self
            .snapshot
            .announced_interval_ms
            .unwrap_or(self.timing.fallback_interval_ms);
        let (after, to, cause) = match self.snapshot.state {
            DeviceState::Online => (
                self.timing.late_after_ms(interval),
                DeviceState::Late,
                Cause::HeartbeatMissed,
            ),
            DeviceState::Late | DeviceState::Unknown => (
                self.timing.offline_after_ms(interval),
                DeviceState::Offline,
                Cause::Silent,
            ),
            DeviceState::Offline | DeviceState::Unreachable => return None,
        };
        let (to, cause) = if self.snapshot.gateway_offline {
            (DeviceState::Unreachable, Cause::GatewayOffline)
        } else {
            (to, cause)
        };
        Some((anchor.saturating_add(after), to, cause))
    }

    /// Applies every silence threshold that passed before `now`, stamped with its own instant.
    fn advance(&mut self, now: i64, out: &mut Vec<Change>) {
        while let Some((at, to, cause)) = self.pending()
            && at < now
        {
            let at = at.max(self.since());
            self.set(to, cause, at, out);
        }
    }

    /// Notes that the device was heard at `now`, in `boot` if the message names one. Returns
    /// false when the message belongs to a previous boot.
    fn heard(&mut self, boot: Option<u64>, cause: Cause, now: i64, out: &mut Vec<Change>) -> bool {
        let current = boot.is_none_or(|boot| self.adopt(boot, now, out));
        self.snapshot.silent_since_ms = Some(now);
        self.set(DeviceState::Online, cause, now, out);
        current
    }

    /// Makes `boot` current unless it is a remembered earlier boot (then returns false); emits a
    /// [`Reboot`] when it replaces another boot.
    fn adopt(&mut self, boot: u64, now: i64, out: &mut Vec<Change>) -> bool {
        let snap = &mut self.snapshot;
        match snap.boot_id {
            Some(current) if current == boot => return true,
            _ if snap.previous_boots.contains(&boot) => return false,
            Some(old) => {
                if snap.previous_boots.len() == REMEMBERED_BOOTS {
                    snap.previous_boots.remove(0);
                }
                snap.previous_boots.push(old);
                out.push(Change::Reboot(Reboot {
                    at_ms: now,
                    old_boot_id: old,
                    new_boot_id: boot,
                }));
            }
            None => {}
        }
        snap.boot_id = Some(boot);
        true
    }

    /// The device went away at `now`.
    fn down(&mut self, cause: Cause, now: i64, out: &mut Vec<Change>) {
        self.snapshot.silent_since_ms = None;
        self.set(DeviceState::Offline, cause, now, out);
    }

    /// Enters `to` at `at` with `cause`, unless already there.
    fn set(&mut self, to: DeviceState, cause: Cause, at: i64, out: &mut Vec<Change>) {
        let from = self.snapshot.state;
        if from == to {
            return;
        }
        self.snapshot.state = to;
        self.snapshot.since_ms = Some(at);
        out.push(Change::Transition(Transition {
            at_ms: at,
            from,
            to,
            cause,
            boot_id: self.snapshot.boot_id,
        }));
    }
}

/// The cause of going Offline for a death.
fn death_cause(reason: DeathReason, via_will: bool) -> Cause {
    if via_will {
        return Cause::LastWill;
    }
    match reason {
        DeathReason::Shutdown => Cause::Shutdown,
        DeathReason::Reboot => Cause::Rebooting,
        DeathReason::PowerLoss => Cause::PowerLoss,
        DeathReason::ConnectionLost => Cause::ConnectionLost,
        DeathReason::Unspecified => Cause::Death,
    }
}
