//! The host application's sessions: one per edge node (its bdSeq, its `seq`, its metrics and its
//! devices' metrics), fed one Sparkplug message at a time in arrival order.
//!
//! [`Host::handle`] turns a message into citytel messages ([`Outcome::Messages`]) or a
//! rejection with a counted reason ([`Outcome::Rejected`]); [`Host::due`] returns the rebirth
//! requests whose reorder timeout has passed. The host reads no clock: every call is given the
//! time, so every rule is tested on a manual clock.

use std::collections::{BTreeSet, HashMap};

use citytel_proto::sparkplug::pb::Payload;
use citytel_proto::sparkplug::pb::payload::Metric;
use citytel_proto::sparkplug::pb::payload::metric::Value as Wire;
use citytel_proto::sparkplug::topic::{self, MessageType, SparkplugTopic};
use citytel_proto::v1::DeathReason;
use prost::Message as _;

use super::HostSettings;
use super::metrics::{Declarations, MetricError, Resolved};
use super::seq::{SeqCheck, SeqTracker};
use super::translate::{Message, Target};
use crate::decode::{RejectReason, Rejection};

/// What became of a Sparkplug message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// The citytel messages to submit, in order (never empty).
    Messages(Vec<Message>),
    /// The message is refused (or, for a stale death or a redelivery, ignored): it becomes a
    /// dead letter with this reason.
    Rejected(Rejection),
}

/// A rebirth request to publish (QoS 0, not retained).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rebirth {
    /// `spBv1.0/{group}/NCMD/{edge_node}`.
    pub(crate) topic: String,
    /// The encoded payload: `Node Control/Rebirth` = true, with the request's timestamp.
    pub(crate) payload: Vec<u8>,
}

/// The name of the rebirth command's metric.
pub(crate) const REBIRTH_METRIC: &str = "Node Control/Rebirth";

/// One device's session.
#[derive(Debug, Default)]
struct Device {
    /// What its messages become (its citytel id, site, kind, gateway and boot), fixed at its
    /// DBIRTH.
    target: Target,
    declared: Declarations,
    boot_id: u64,
    next_reading: u64,
    online: bool,
}

/// Why a node's rebirth timer runs.
#[derive(Debug, Default)]
struct Trouble {
    /// Data of the node itself could not be read (before its birth, an unknown metric): only a
    /// new NBIRTH clears it.
    node: bool,
    /// Devices whose data came before their birth or named an unknown metric: their DBIRTH
    /// clears them.
    devices: BTreeSet<String>,
}

/// One edge node.
#[derive(Debug, Default)]
struct Node {
    /// The bdSeq of the current (or last) session; `None` before any NBIRTH.
    bd_seq: Option<u64>,
    online: bool,
    boot_id: u64,
    seq: SeqTracker,
    declared: Declarations,
    next_reading: u64,
    devices: HashMap<String, Device>,
    trouble: Trouble,
    /// When to request a rebirth, unless the trouble clears first.
    deadline: Option<i64>,
    /// A rebirth was requested in this session: no other until the next NBIRTH.
    rebirth_requested: bool,
}

impl Node {
    fn troubled(&self) -> bool {
        self.trouble.node || !self.trouble.devices.is_empty() || self.seq.has_missing()
    }

    /// Starts the reorder timer (unless it runs, or a rebirth was requested already).
    fn arm(&mut self, now_ms: i64, timeout_ms: i64) {
        if self.deadline.is_none() && !self.rebirth_requested {
            self.deadline = Some(now_ms.saturating_add(timeout_ms));
        }
    }

    /// Stops the timer once nothing is wrong any more.
    fn settle(&mut self) {
        if !self.troubled() {
            self.deadline = None;
        }
    }
}

/// The Sparkplug host application state.
#[derive(Debug)]
pub(crate) struct Host {
    settings: HostSettings,
    nodes: HashMap<(String, String), Node>,
}

fn reject(reason: RejectReason, detail: impl Into<String>) -> Outcome {
    Outcome::Rejected(Rejection::new(reason, detail))
}

/// The bdSeq metric's value.
fn bd_seq(payload: &Payload) -> Option<u64> {
    let m = payload
        .metrics
        .iter()
        .find(|m| m.name.as_deref() == Some("bdSeq"))?;
    match m.value {
        Some(Wire::LongValue(v)) => Some(v),
        Some(Wire::IntValue(v)) => Some(u64::from(v)),
        _ => None,
    }
}

fn time_ms(t: Option<u64>) -> Option<i64> {
    t.and_then(|t| i64::try_from(t).ok())
}

impl Host {
    /// A host with no sessions.
    pub(crate) fn new(settings: HostSettings) -> Self {
        Host {
            settings,
            nodes: HashMap::new(),
        }
    }

    /// The earliest time a rebirth request may fall due, if any timer runs.
    pub(crate) fn next_deadline(&self) -> Option<i64> {
        self.nodes.values().filter_map(|n| n.deadline).min()
    }

    /// The rebirth requests due at `now_ms`: one per edge node whose trouble outlasted the
    /// reorder timeout, and never a second one before the node's next NBIRTH.
    pub(crate) fn due(&mut self, now_ms: i64) -> Vec<Rebirth> {
        let mut out = Vec::new();
        for ((group, edge), node) in &mut self.nodes {
            if node.deadline.is_some_and(|d| d <= now_ms) {
                node.deadline = None;
                if node.troubled() && !node.rebirth_requested {
                    node.rebirth_requested = true;
                    out.push(rebirth(group, edge, now_ms));
                }
            }
        }
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// Handles one Sparkplug message received at `now_ms`.
    pub(crate) fn handle(&mut self, topic: &str, payload: &[u8], now_ms: i64) -> Outcome {
        let (group, kind, edge, device) = match topic::parse(topic) {
            Ok(SparkplugTopic::Node {
                group,
                kind,
                edge_node,
                device,
            }) => (group, kind, edge_node, device),
            Ok(SparkplugTopic::State { .. }) => {
                return reject(RejectReason::UnknownTopic, "STATE carries no data");
            }
            Err(e) => return reject(RejectReason::UnknownTopic, e.to_string()),
        };
        if matches!(kind, MessageType::NCmd | MessageType::DCmd) {
            return reject(RejectReason::UnknownTopic, "commands carry no data");
        }
        let payload = match Payload::decode(payload) {
            Ok(p) => p,
            Err(e) => {
                return reject(
                    RejectReason::Malformed,
                    format!("not a Sparkplug B payload: {e}"),
                );
            }
        };
        let Some(node_id) = self.settings.node_id(group, edge) else {
            return reject(
                RejectReason::UnknownTopic,
                format!("edge node {group}/{edge} makes no valid device id"),
            );
        };
        match (kind, device) {
            (MessageType::NBirth, None) => self.nbirth(group, edge, node_id, &payload, now_ms),
            (MessageType::NDeath, None) => self.ndeath(group, edge, node_id, &payload, now_ms),
            (_, device) => self.in_session(group, kind, edge, node_id, device, &payload, now_ms),
        }
    }

    fn node_target(&self, group: &str, node_id: &str, boot_id: u64) -> Target {
        Target {
            site: group.to_string(),
            kind: citytel_proto::kind::Kind::Gateway.as_str().to_string(),
            device_id: node_id.to_string(),
            gateway_id: None,
            boot_id,
        }
    }

    fn nbirth(
        &mut self,
        group: &str,
        edge: &str,
        node_id: String,
        payload: &Payload,
        now_ms: i64,
    ) -> Outcome {
        let Some(seq) = payload.seq.and_then(|s| u8::try_from(s).ok()) else {
            return reject(RejectReason::InvalidField, "NBIRTH has no seq of 0 to 255");
        };
        let Some(bd_seq) = bd_seq(payload) else {
            return reject(
                RejectReason::InvalidField,
                "NBIRTH has no integer bdSeq metric",
            );
        };
        let declared = match Declarations::from_birth(&payload.metrics) {
            Ok(d) => d,
            Err(MetricError::Invalid(e) | MetricError::Unknown(e)) => {
                return reject(RejectReason::InvalidField, format!("NBIRTH: {e}"));
            }
        };
        let born_ms = time_ms(payload.timestamp).unwrap_or(now_ms);
        let resolved = match declared.resolve(&payload.metrics, born_ms) {
            Ok(r) => r,
            Err(MetricError::Invalid(e) | MetricError::Unknown(e)) => {
                return reject(RejectReason::InvalidField, format!("NBIRTH: {e}"));
            }
        };
        let boot_id = u64::try_from(born_ms).unwrap_or_default();
        let node = Node {
            bd_seq: Some(bd_seq),
            online: true,
            boot_id,
            seq: SeqTracker::after_birth(seq),
            declared,
            ..Node::default()
        };
        let target = self.node_target(group, &node_id, boot_id);
        let mut messages = vec![target.birth(born_ms, self.settings.reporting_interval_ms)];
        let node = self
            .nodes
            .entry((group.to_string(), edge.to_string()))
            .insert_entry(node)
            .into_mut();
        let mut next = node.next_reading;
        messages.extend(data(&target, resolved, born_ms, &mut next));
        node.next_reading = next;
        Outcome::Messages(messages)
    }

    fn ndeath(
        &mut self,
        group: &str,
        edge: &str,
        node_id: String,
        payload: &Payload,
        now_ms: i64,
    ) -> Outcome {
        let Some(bd_seq) = bd_seq(payload) else {
            return reject(
                RejectReason::InvalidField,
                "NDEATH has no integer bdSeq metric",
            );
        };
        let key = (group.to_string(), edge.to_string());
        let node = self.nodes.entry(key).or_default();
        match node.bd_seq {
            Some(current) if current != bd_seq => {
                return reject(
                    RejectReason::SparkplugStale,
                    format!("NDEATH of bdSeq {bd_seq}, the current session has bdSeq {current}"),
                );
            }
            Some(_) if !node.online => {
                return reject(
                    RejectReason::SparkplugStale,
                    format!("NDEATH of bdSeq {bd_seq}: the session ended already"),
                );
            }
            _ => {}
        }
        // The host's clock, as the specification requires for NDEATH (a Will's timestamp is
        // that of the connect).
        node.online = false;
        node.deadline = None;
        node.trouble = Trouble::default();
        let boot_id = node.boot_id;
        let mut messages = Vec::new();
        let mut devices: Vec<(&String, &mut Device)> =
            node.devices.iter_mut().filter(|(_, d)| d.online).collect();
        devices.sort_by(|a, b| a.0.cmp(b.0));
        for (name, device) in devices {
            device.online = false;
            if let Some(target) =
                self.settings
                    .device_target(group, edge, name, &node_id, device.boot_id)
            {
                messages.push(target.death(now_ms, DeathReason::ConnectionLost));
            }
        }
        let target = self.node_target(group, &node_id, boot_id);
        messages.push(target.death(now_ms, DeathReason::ConnectionLost));
        Outcome::Messages(messages)
    }

    /// DBIRTH, DDEATH, NDATA, DDATA: messages of a node's session, which carry its `seq`.
    #[allow(clippy::too_many_arguments)]
    fn in_session(
        &mut self,
        group: &str,
        kind: MessageType,
        edge: &str,
        node_id: String,
        device: Option<&str>,
        payload: &Payload,
        now_ms: i64,
    ) -> Outcome {
        let timeout_ms = self.settings.reorder_timeout_ms;
        let key = (group.to_string(), edge.to_string());
        let node = self.nodes.entry(key).or_default();
        if !node.online {
            node.trouble.node = true;
            node.arm(now_ms, timeout_ms);
            return reject(
                RejectReason::SparkplugOutOfSession,
                format!(
                    "{} of edge node {group}/{edge} before its NBIRTH",
                    kind.as_str()
                ),
            );
        }
        let Some(seq) = payload.seq.and_then(|s| u8::try_from(s).ok()) else {
            return reject(
                RejectReason::InvalidField,
                format!("{} has no seq of 0 to 255", kind.as_str()),
            );
        };
        match node.seq.observe(seq) {
            SeqCheck::InOrder => {}
            SeqCheck::Late => node.settle(),
            SeqCheck::Gap => node.arm(now_ms, timeout_ms),
            SeqCheck::Duplicate => {
                return reject(
                    RejectReason::SparkplugStale,
                    format!("{} seq {seq} was received already", kind.as_str()),
                );
            }
        }
        let sent_ms = time_ms(payload.timestamp).unwrap_or(now_ms);
        let Some(device) = device else {
            // NDATA.
            let node_target = Target {
                site: group.to_string(),
                kind: citytel_proto::kind::Kind::Gateway.as_str().to_string(),
                device_id: node_id.clone(),
                gateway_id: None,
                boot_id: node.boot_id,
            };
            let resolved = match node.declared.resolve(&payload.metrics, sent_ms) {
                Ok(r) => r,
                Err(MetricError::Unknown(what)) => {
                    node.trouble.node = true;
                    node.arm(now_ms, timeout_ms);
                    return reject(
                        RejectReason::SparkplugUnknownMetric,
                        format!("NDATA names {what}, which the NBIRTH did not declare"),
                    );
                }
                Err(MetricError::Invalid(e)) => {
                    return reject(RejectReason::InvalidField, format!("NDATA: {e}"));
                }
            };
            let mut next = node.next_reading;
            let messages = data(&node_target, resolved, sent_ms, &mut next);
            node.next_reading = next;
            return Outcome::Messages(messages);
        };
        match kind {
            MessageType::DBirth => {
                let Some(mut target) = self
                    .settings
                    .device_target(group, edge, device, &node_id, 0)
                else {
                    return reject(
                        RejectReason::UnknownTopic,
                        format!("device {group}/{edge}/{device} makes no valid device id"),
                    );
                };
                let declared = Declarations::from_birth(&payload.metrics).and_then(|d| {
                    let resolved = d.resolve(&payload.metrics, sent_ms)?;
                    Ok((d, resolved))
                });
                let (declared, resolved) = match declared {
                    Ok(d) => d,
                    Err(MetricError::Invalid(e) | MetricError::Unknown(e)) => {
                        return reject(RejectReason::InvalidField, format!("DBIRTH: {e}"));
                    }
                };
                node.trouble.devices.remove(device);
                node.settle();
                let boot_id = u64::try_from(sent_ms).unwrap_or_default();
                target.boot_id = boot_id;
                let d = node.devices.entry(device.to_string()).or_default();
                *d = Device {
                    target,
                    declared,
                    boot_id,
                    next_reading: 0,
                    online: true,
                };
                let mut messages =
                    vec![d.target.birth(sent_ms, self.settings.reporting_interval_ms)];
                messages.extend(data(&d.target, resolved, sent_ms, &mut d.next_reading));
                Outcome::Messages(messages)
            }
            MessageType::DDeath | MessageType::DData => {
                let Some(d) = node.devices.get_mut(device).filter(|d| d.online) else {
                    node.trouble.devices.insert(device.to_string());
                    node.arm(now_ms, timeout_ms);
                    return reject(
                        RejectReason::SparkplugOutOfSession,
                        format!(
                            "{} of device {group}/{edge}/{device} before its DBIRTH",
                            kind.as_str()
                        ),
                    );
                };
                if kind == MessageType::DDeath {
                    // The payload's timestamp, as the specification requires for DDEATH (the
                    // state history records the transition then); without one, the receive
                    // time.
                    d.online = false;
                    let death = match payload.timestamp {
                        Some(_) => d.target.death_stated(sent_ms, DeathReason::Unspecified),
                        None => d.target.death(sent_ms, DeathReason::Unspecified),
                    };
                    return Outcome::Messages(vec![death]);
                }
                match d.declared.resolve(&payload.metrics, sent_ms) {
                    Ok(resolved) => {
                        Outcome::Messages(data(&d.target, resolved, sent_ms, &mut d.next_reading))
                    }
                    Err(MetricError::Unknown(what)) => {
                        node.trouble.devices.insert(device.to_string());
                        node.arm(now_ms, timeout_ms);
                        reject(
                            RejectReason::SparkplugUnknownMetric,
                            format!("DDATA names {what}, which the DBIRTH did not declare"),
                        )
                    }
                    Err(MetricError::Invalid(e)) => {
                        reject(RejectReason::InvalidField, format!("DDATA: {e}"))
                    }
                }
            }
            _ => reject(
                RejectReason::UnknownTopic,
                format!("{} is not a device message", kind.as_str()),
            ),
        }
    }
}

/// The messages of resolved data: live readings, then backfill, in their own batches, then the
/// text values as an attributes status (the state keeps the newest of each); a heartbeat when
/// there is nothing else (the device is alive). The attributes go in a status of their own, so
/// that one refused for the device's attribute limits takes nothing else with it.
fn data(target: &Target, resolved: Resolved, sent_ms: i64, next_reading: &mut u64) -> Vec<Message> {
    let Resolved {
        live,
        backfill,
        attributes,
    } = resolved;
    let mut messages = target.readings(&live, next_reading);
    messages.extend(target.readings(&backfill, next_reading));
    if !attributes.is_empty() {
        messages.push(target.attributes(sent_ms, attributes));
    } else if messages.is_empty() {
        messages.push(target.heartbeat(sent_ms));
    }
    messages
}

/// A rebirth request to `group`/`edge` at `now_ms`.
pub(crate) fn rebirth(group: &str, edge: &str, now_ms: i64) -> Rebirth {
    let now = u64::try_from(now_ms).unwrap_or_default();
    let payload = Payload {
        timestamp: Some(now),
        metrics: vec![Metric {
            name: Some(REBIRTH_METRIC.to_string()),
            timestamp: Some(now),
            datatype: Some(citytel_proto::sparkplug::DataType::Boolean.code()),
            value: Some(Wire::BooleanValue(true)),
            ..Metric::default()
        }],
        ..Payload::default()
    };
    Rebirth {
        topic: topic::build(group, MessageType::NCmd, edge, None),
        payload: payload.encode_to_vec(),
    }
}
