//! What citytel must report for a scenario run, computed from the run's ground truth alone.
//!
//! This is a second, deliberately plain reading of citytel's documented availability rules
//! (`fleet.proto`, `ARCHITECTURE.md`), written without citytel's code: a device is Online from
//! the moment anything of it is received, and from the moment its own connection to citytel's
//! device endpoint opens (cause `connected`); a death or Last Will makes it Offline at once, and
//! so does a clean DISCONNECT without a death (cause `disconnected`), except from a device whose
//! latest birth said it connects intermittently (the shipped configuration makes no kind
//! intermittent by default), which stays as it is until silence says otherwise; silence
//! makes it Late after `interval × late_grace` and Offline after `interval × offline_grace`
//! (stamped at the threshold; heard exactly at the threshold is on time); its gateway going
//! Offline makes it Unreachable at that instant (unless it is Offline itself; nothing of it can
//! arrive), a threshold passed while its gateway is still Offline makes it Unreachable instead
//! of Late or Offline, and the gateway's return makes it Unknown until heard; citytel's own downtime is Unknown, counted from the last message before the stop
//! with silence measured from the restart. Availability = (Online + Late) / (Online + Late +
//! Offline); an outage is a maximal Offline run; completeness counts, per boot, the distinct
//! sequence numbers received against the span from the first received to the highest received
//! or reported by a heartbeat.
//!
//! Connections are not in the ground truth, but the simulator's documented behaviour gives them:
//! a device that is not behind a gateway announces itself with a birth as the first message of
//! every connection it opens (and its gateway's connection carries a child's messages), so each
//! such birth is preceded, at the same instant, by its connection opening. A connection ends
//! after a death (already Offline), with its Last Will (the Last Will says it first), by a
//! takeover (no end), at the end of the run (outside the window), or, for a sleepy device, with
//! the clean DISCONNECT that ends each of its sessions, which the ground truth lists
//! ([`Delivered::Disconnect`]); only the last can change anything.
//!
//! Through a broker ([`Transport::Broker`]) citytel sees no connections at all: a birth makes a
//! device Online with cause `birth`, only the Last Will tells that a connection dropped, and a
//! clean DISCONNECT is not seen. A
//! takeover is different there too: when a device's new connection takes over one its hung
//! firmware left open, the broker closes the old connection, which never sent a DISCONNECT, and
//! Mosquitto (2.0, clean sessions) publishes its Last Will, for the old boot, while handling the
//! new CONNECT: at the instant of the new connection's birth and before it ([`takeover_wills`];
//! citytel's own endpoint fires no will on a takeover). A hung device's connection never expires by keep-alive in a run: its
//! MQTT client keeps answering the broker's keep-alive (a truly silent client would be dropped
//! 1.5 keep-alives after its last packet, at a wall-clock instant unrelated to scenario time).

use std::collections::{BTreeMap, BTreeSet};

use citytel_firmware_sim::scenario::{Delivered, DeviceTruth, ScenarioReport};

/// The silence thresholds, as grace factors of a device's expected interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Graces {
    /// Online becomes Late after this many intervals.
    pub late: f64,
    /// Silence becomes Offline after this many intervals.
    pub offline: f64,
}

impl Default for Graces {
    /// citytel's shipped defaults (`[availability]` in `citytel.toml`).
    fn default() -> Self {
        Graces {
            late: 1.5,
            offline: 3.0,
        }
    }
}

/// A device state, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// Not known.
    Unknown,
    /// Reporting.
    Online,
    /// Overdue.
    Late,
    /// Down.
    Offline,
    /// Behind an offline gateway.
    Unreachable,
}

/// An expected state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// The new state.
    pub to: State,
    /// The API's cause name.
    pub cause: &'static str,
}

/// An expected outage, as GetAvailability reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpectedOutage {
    /// Start (clipped to the window).
    pub start_ms: i64,
    /// End (clipped).
    pub end_ms: i64,
    /// Offline time in the window.
    pub duration_ms: i64,
    /// Cause of going Offline.
    pub cause: &'static str,
    /// Still offline at the end of the window.
    pub open: bool,
    /// Already offline at its start.
    pub began_before: bool,
}

/// Everything expected of one device over the run's window.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// Its state changes before the end of the window.
    pub changes: Vec<Change>,
    /// Time per state in the window: unknown, online, late, offline, unreachable (ms).
    pub unknown_ms: i64,
    /// Online ms.
    pub online_ms: i64,
    /// Late ms.
    pub late_ms: i64,
    /// Offline ms.
    pub offline_ms: i64,
    /// Unreachable ms.
    pub unreachable_ms: i64,
    /// Outages, by start.
    pub outages: Vec<ExpectedOutage>,
    /// Distinct readings received.
    pub readings_received: u64,
    /// Readings the sequence numbers say were produced.
    pub readings_expected: u64,
    /// Reboots seen: (when, old boot, new boot).
    pub reboots: Vec<(i64, u64, u64)>,
}

impl Expected {
    /// Availability in percent, `None` with nothing observed.
    pub fn availability_percent(&self) -> Option<f64> {
        let available = self.online_ms + self.late_ms;
        let observed = available + self.offline_ms;
        (observed > 0).then(|| available as f64 * 100.0 / observed as f64)
    }

    /// Mean duration of the outages that ended in the window.
    pub fn mttr_ms(&self) -> Option<i64> {
        let ended: Vec<i64> = self
            .outages
            .iter()
            .filter(|o| !o.open)
            .map(|o| o.duration_ms)
            .collect();
        let n = i64::try_from(ended.len()).ok().filter(|n| *n > 0)?;
        Some(ended.iter().sum::<i64>().div_euclid(n))
    }

    /// Available time per outage that started in the window.
    pub fn mtbf_ms(&self) -> Option<i64> {
        let started = self.outages.iter().filter(|o| !o.began_before).count();
        let n = i64::try_from(started).ok().filter(|n| *n > 0)?;
        Some((self.online_ms + self.late_ms).div_euclid(n))
    }
}

/// How the devices reach citytel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// Connected to citytel's own device endpoint, which reports connections opening.
    #[default]
    Endpoint,
    /// Through an external broker: no connection events, and a takeover publishes the old
    /// connection's Last Will.
    Broker,
}

/// The Last Wills a broker publishes on takeovers, as (instant, boot): a device's own connection
/// opens with a birth and ends with a death (cleanly) or its Last Will; one still open at the
/// device's next birth is taken over by that birth's connection, and the broker publishes the
/// old connection's Last Will, for the old boot, just before (at the same instant). Gateway
/// children have no connection of their own.
pub fn takeover_wills(device: &DeviceTruth) -> Vec<(i64, u64)> {
    if device.gateway_id.is_some() {
        return Vec::new();
    }
    let mut open_boot: Option<u64> = None;
    let mut wills = Vec::new();
    for d in &device.deliveries {
        match d.what {
            Delivered::Birth { .. } => {
                if let Some(boot) = open_boot.replace(d.boot_id) {
                    wills.push((d.at_unix_ms, boot));
                }
            }
            Delivered::LastWill | Delivered::Death { .. } | Delivered::Disconnect => {
                open_boot = None;
            }
            Delivered::Readings { .. } | Delivered::Heartbeat { .. } => {}
        }
    }
    wills
}

/// citytel was down from `stopped_ms` (its last message) and back at `started_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// When the last message before the stop was received.
    pub stopped_ms: i64,
    /// When it started again.
    pub started_ms: i64,
}

/// What citytel must report for every device of `report` over the run's window, the devices
/// connected to citytel's device endpoint.
pub fn expect(
    report: &ScenarioReport,
    graces: Graces,
    restarts: &[Restart],
) -> BTreeMap<String, Expected> {
    expect_via(report, graces, restarts, Transport::Endpoint)
}

/// What citytel must report for every device of `report` over the run's window, the devices
/// reaching citytel by `transport`.
pub fn expect_via(
    report: &ScenarioReport,
    graces: Graces,
    restarts: &[Restart],
    transport: Transport,
) -> BTreeMap<String, Expected> {
    let window = (report.start_unix_ms, report.end_unix_ms);
    let mut changes: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    // Gateways first: their children depend on them.
    let mut order: Vec<&DeviceTruth> = report.devices.iter().collect();
    order.sort_by_key(|d| d.gateway_id.is_some());
    for device in order {
        let gateway = device.gateway_id.as_ref().and_then(|g| changes.get(g));
        let walked = walk(device, graces, restarts, gateway, window.1, transport);
        changes.insert(device.device_id.clone(), walked);
    }
    report
        .devices
        .iter()
        .map(|d| {
            let c = changes.remove(&d.device_id).unwrap_or_default();
            (d.device_id.clone(), summarize(d, c, window))
        })
        .collect()
}

/// Something that happens to a device, in the order it is handled at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Input {
    /// citytel restarts (handled before the instant's messages).
    Restart { stopped_ms: i64 },
    /// Its gateway went offline.
    GatewayDown,
    /// Its gateway came back.
    GatewayUp,
    /// A message of `boot` was heard; for a birth, the interval and intermittence it announced.
    Heard {
        cause: &'static str,
        boot: u64,
        birth: Option<(i64, Option<bool>)>,
    },
    /// A death or Last Will of `boot` (ignored when another boot is current).
    Down { cause: &'static str, boot: u64 },
    /// The device's own connection opened.
    Connected,
    /// The device's own connection ended with a DISCONNECT and no death.
    Disconnected,
}

/// The state changes of one device up to `end_ms`.
fn walk(
    device: &DeviceTruth,
    graces: Graces,
    restarts: &[Restart],
    gateway: Option<&Vec<Change>>,
    end_ms: i64,
    transport: Transport,
) -> Vec<Change> {
    let mut inputs: Vec<(i64, Input)> = Vec::new();
    for r in restarts {
        inputs.push((
            r.started_ms,
            Input::Restart {
                stopped_ms: r.stopped_ms,
            },
        ));
    }
    if let Some(gw) = gateway {
        let mut previous = State::Unknown;
        for c in gw {
            if c.to == State::Offline {
                inputs.push((c.at_ms, Input::GatewayDown));
            } else if previous == State::Offline && matches!(c.to, State::Online | State::Late) {
                inputs.push((c.at_ms, Input::GatewayUp));
            }
            previous = c.to;
        }
    }
    let own_connection = device.gateway_id.is_none();
    if transport == Transport::Broker {
        for (at, boot) in takeover_wills(device) {
            inputs.push((
                at,
                Input::Down {
                    cause: "last_will",
                    boot,
                },
            ));
        }
    }
    let sees_connections = own_connection && transport == Transport::Endpoint;
    for d in &device.deliveries {
        if sees_connections && matches!(d.what, Delivered::Birth { .. }) {
            inputs.push((d.at_unix_ms, Input::Connected));
        }
        let input = match &d.what {
            Delivered::Birth {
                reporting_interval_ms,
                heartbeat_interval_ms,
                intermittent,
            } => Input::Heard {
                boot: d.boot_id,
                cause: "birth",
                birth: Some((
                    i64::from(heartbeat_interval_ms.unwrap_or(*reporting_interval_ms)),
                    *intermittent,
                )),
            },
            Delivered::Readings { .. } => Input::Heard {
                boot: d.boot_id,
                cause: "reading",
                birth: None,
            },
            Delivered::Heartbeat { .. } => Input::Heard {
                boot: d.boot_id,
                cause: "heartbeat",
                birth: None,
            },
            Delivered::Disconnect if sees_connections => Input::Disconnected,
            Delivered::Disconnect => continue,
            Delivered::LastWill => Input::Down {
                cause: "last_will",
                boot: d.boot_id,
            },
            Delivered::Death { reason } => Input::Down {
                boot: d.boot_id,
                cause: match reason.as_str() {
                    "shutdown" => "shutdown",
                    "reboot" => "rebooting",
                    "power_loss" => "power_loss",
                    // A death reporting a lost connection is what a Last Will says.
                    "connection_lost" => "last_will",
                    _ => "death",
                },
            },
        };
        inputs.push((d.at_unix_ms, input));
    }
    // Stable: deliveries keep their order within an instant, after gateway and restart inputs.
    let rank = |input: &Input| {
        u8::from(matches!(
            input,
            Input::Heard { .. } | Input::Down { .. } | Input::Connected | Input::Disconnected
        ))
    };
    inputs.sort_by_key(|(at, input)| (*at, rank(input)));
    let mut w = Walker {
        graces,
        state: State::Unknown,
        since: i64::MIN,
        silent_since: None,
        interval: i64::from(
            device
                .heartbeat_interval_ms
                .unwrap_or(device.reporting_interval_ms),
        ),
        gateway_down: false,
        intermittent: false,
        boots: Vec::new(),
        out: Vec::new(),
    };
    for (at, input) in inputs {
        match input {
            Input::Restart { stopped_ms } => {
                w.thresholds_before(stopped_ms);
                let at_stop = stopped_ms.max(w.since);
                w.silent_since = Some(at);
                w.enter(State::Unknown, at_stop, "ingester_restart");
            }
            Input::GatewayDown => {
                w.thresholds_before(at);
                w.gateway_down = true;
                // A device citytel has heard of (it tracks no other) is cut off at once.
                let tracked = !w.out.is_empty();
                if tracked && matches!(w.state, State::Online | State::Late | State::Unknown) {
                    w.enter(State::Unreachable, at, "gateway_offline");
                }
            }
            Input::GatewayUp => {
                w.thresholds_before(at);
                w.gateway_down = false;
                if w.state == State::Unreachable {
                    w.silent_since = Some(at);
                    w.enter(State::Unknown, at, "gateway_online");
                }
            }
            Input::Heard { cause, boot, birth } => {
                w.thresholds_before(at);
                if !w.boots.contains(&boot) {
                    w.boots.push(boot);
                }
                if let Some((interval, intermittent)) = birth {
                    w.interval = interval;
                    w.intermittent = intermittent.unwrap_or(false);
                }
                w.silent_since = Some(at);
                w.enter(State::Online, at, cause);
            }
            Input::Connected => {
                w.thresholds_before(at);
                w.silent_since = Some(at);
                w.enter(State::Online, at, "connected");
            }
            Input::Disconnected => {
                w.thresholds_before(at);
                if !w.intermittent {
                    w.silent_since = None;
                    w.enter(State::Offline, at, "disconnected");
                }
            }
            Input::Down { cause, boot } => {
                w.thresholds_before(at);
                // The newest boot heard is the current one; a death of another is stale.
                if w.boots.last().is_none_or(|current| *current == boot) {
                    w.silent_since = None;
                    w.enter(State::Offline, at, cause);
                }
            }
        }
    }
    w.thresholds_before(end_ms);
    w.out.retain(|c| c.at_ms < end_ms);
    w.out
}

struct Walker {
    graces: Graces,
    state: State,
    since: i64,
    silent_since: Option<i64>,
    interval: i64,
    gateway_down: bool,
    /// Whether its latest birth said it connects intermittently.
    intermittent: bool,
    /// Boots heard, in order.
    boots: Vec<u64>,
    out: Vec<Change>,
}

impl Walker {
    fn enter(&mut self, to: State, at_ms: i64, cause: &'static str) {
        if self.state != to {
            self.out.push(Change { at_ms, to, cause });
            self.state = to;
            self.since = at_ms;
        }
    }

    /// Applies the silence thresholds that fall strictly before `limit`.
    fn thresholds_before(&mut self, limit: i64) {
        loop {
            let Some(from) = self.silent_since else {
                return;
            };
            let (grace, to, cause) = match self.state {
                State::Online => (self.graces.late, State::Late, "heartbeat_missed"),
                State::Late | State::Unknown => (self.graces.offline, State::Offline, "silent"),
                State::Offline | State::Unreachable => return,
            };
            let at = from + (self.interval as f64 * grace).round() as i64;
            if at >= limit {
                return;
            }
            let (to, cause) = if self.gateway_down {
                (State::Unreachable, "gateway_offline")
            } else {
                (to, cause)
            };
            self.enter(to, at.max(self.since), cause);
        }
    }
}

/// Times, outages, completeness and reboots from a device's changes.
fn summarize(device: &DeviceTruth, changes: Vec<Change>, (w0, w1): (i64, i64)) -> Expected {
    let mut e = Expected {
        changes: Vec::new(),
        unknown_ms: 0,
        online_ms: 0,
        late_ms: 0,
        offline_ms: 0,
        unreachable_ms: 0,
        outages: Vec::new(),
        readings_received: 0,
        readings_expected: 0,
        reboots: Vec::new(),
    };
    // Runs: (state, start, end, cause), the first Unknown from the beginning of time.
    let mut runs: Vec<(State, i64, i64, &'static str)> =
        vec![(State::Unknown, i64::MIN, i64::MAX, "")];
    for c in &changes {
        if let Some(last) = runs.last_mut() {
            last.2 = c.at_ms;
        }
        runs.push((c.to, c.at_ms, i64::MAX, c.cause));
    }
    for (state, start, end, cause) in runs {
        let (s, t) = (start.max(w0), end.min(w1));
        if t <= s {
            continue;
        }
        let len = t - s;
        match state {
            State::Unknown => e.unknown_ms += len,
            State::Online => e.online_ms += len,
            State::Late => e.late_ms += len,
            State::Offline => e.offline_ms += len,
            State::Unreachable => e.unreachable_ms += len,
        }
        if state == State::Offline {
            e.outages.push(ExpectedOutage {
                start_ms: s,
                end_ms: t,
                duration_ms: len,
                cause,
                open: end > w1,
                began_before: start < w0,
            });
        }
    }
    e.changes = changes;
    // Completeness, per boot.
    let mut seqs: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut reported: BTreeMap<u64, u64> = BTreeMap::new();
    for d in &device.deliveries {
        match &d.what {
            Delivered::Readings {
                first_seq,
                last_seq,
                ..
            } => {
                seqs.entry(d.boot_id)
                    .or_default()
                    .extend(*first_seq..=*last_seq);
            }
            Delivered::Heartbeat {
                last_seq: Some(last),
            } => {
                let slot = reported.entry(d.boot_id).or_default();
                *slot = (*slot).max(*last);
            }
            _ => {}
        }
    }
    for (boot, set) in &seqs {
        let (Some(low), Some(high)) = (set.first(), set.last()) else {
            continue;
        };
        let high = reported.get(boot).map_or(*high, |r| (*r).max(*high));
        e.readings_received += set.len() as u64;
        e.readings_expected += high - low + 1;
    }
    // Reboots: the first message of a boot other than the previous one.
    let mut current: Option<u64> = None;
    for d in &device.deliveries {
        if matches!(
            d.what,
            Delivered::LastWill | Delivered::Death { .. } | Delivered::Disconnect
        ) {
            continue;
        }
        match current {
            Some(old) if old != d.boot_id => e.reboots.push((d.at_unix_ms, old, d.boot_id)),
            _ => {}
        }
        current = Some(d.boot_id);
    }
    e
}
