//! The device endpoint as a Sparkplug B host application, with no broker in between.
//!
//! Edge nodes connect to the endpoint like any device. Their Sparkplug messages go through the
//! same [`Host`] as on the broker source (see [`crate::source::broker::submit::submit_sparkplug`]):
//! sessions, bdSeq, `seq`, births and deaths, the NDEATH of a node's Last Will when its
//! connection drops, each acknowledged once durable.
//!
//! - **Subscriptions** ([`decide`]): an edge node may subscribe to its own
//!   `spBv1.0/{group}/NCMD/{edge}`, `spBv1.0/{group}/DCMD/{edge}/#` (or `/+`, or one device), and
//!   to `spBv1.0/STATE/{host_id}` when citytel is a primary host; nothing else. Granted at QoS
//!   0, so citytel never needs an outgoing packet id.
//! - **Own node**: with device authentication, the node whose device id (by
//!   `sparkplug.node_id_template`) is the connection's identity; without, the first (group,
//!   edge) the connection subscribes to commands for or publishes an NBIRTH for binds it, for
//!   the rest of the connection.
//! - **STATE**: a subscription to citytel's STATE is answered right after its SUBACK with the
//!   retained `{"online":true,"timestamp":T}`, T being when this citytel became the primary
//!   host; at shutdown, `{"online":false,"timestamp":T}` before the connection closes.
//! - **Rebirth requests** ([`request_rebirths_until`]) go on the connection of the node they are
//!   for, found by (group, edge) in [`Routes`]; none when it is not connected.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use citytel_proto::sparkplug::topic::{self as sp_topic, MessageType, NAMESPACE};
use citytel_proto::topic::is_valid_id;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reply::ToClient;
use crate::pipeline::Pipeline;
use crate::sparkplug::state::HostState;
use crate::sparkplug::{Host, SparkplugSettings};
use crate::telemetry::metrics as m;

/// How often rebirth requests that fell due are looked for.
const REBIRTH_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// An edge node: (group, edge node).
pub(crate) type NodeKey = (String, String);

/// The endpoint's Sparkplug host, shared by every connection.
#[derive(Debug)]
pub(crate) struct EndpointSparkplug {
    /// The host application's sessions.
    pub(crate) host: Arc<Mutex<Host>>,
    /// The mapping and the primary host id.
    pub(crate) settings: SparkplugSettings,
    /// When this citytel became the primary host (its STATE's timestamp), ms since the epoch.
    pub(crate) online_since_ms: i64,
    /// Which connection each connected edge node is on.
    pub(crate) routes: Routes,
}

impl EndpointSparkplug {
    /// A host with no sessions, primary since `now_ms`.
    pub(crate) fn new(settings: SparkplugSettings, now_ms: i64) -> Self {
        EndpointSparkplug {
            host: Arc::new(Mutex::new(Host::new(settings.host.clone()))),
            settings,
            online_since_ms: now_ms,
            routes: Routes::default(),
        }
    }

    /// citytel's STATE PUBLISH (QoS 0, retained), online or not; `None` without a host id.
    pub(crate) fn state(&self, online: bool) -> Option<ToClient> {
        let id = self.settings.host_id.as_deref()?;
        let state = HostState {
            online,
            timestamp: self.online_since_ms,
        };
        Some(ToClient::Publish {
            topic: sp_topic::state(id),
            payload: state.encode().into(),
            retain: true,
        })
    }

    /// Whether edge node `node` is the one a connection authenticated as `identity` speaks for.
    pub(crate) fn is_identity(&self, node: &NodeKey, identity: &str) -> bool {
        self.settings.host.node_id(&node.0, &node.1).as_deref() == Some(identity)
    }
}

/// What a topic filter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// The commands (NCMD, or DCMD of its devices) of an edge node.
    Commands(NodeKey),
    /// citytel's own STATE.
    State,
}

/// Why a filter is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubscribeRefusal {
    /// Not a filter an edge node may subscribe to on the endpoint.
    Filter,
    /// The commands of another edge node than the connection's own.
    NotOwnNode,
    /// The STATE of another host (or citytel has no host id).
    OtherHost,
}

impl SubscribeRefusal {
    /// Metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            SubscribeRefusal::Filter => "filter",
            SubscribeRefusal::NotOwnNode => "not_own_node",
            SubscribeRefusal::OtherHost => "other_host",
        }
    }
}

/// What `filter` asks for, if it is one an edge node may subscribe to: its NCMD topic, its
/// DCMD topics (`/#`, `/+` or one device), or a host's STATE (checked against the host id by
/// [`decide`]).
pub(crate) fn wanted(filter: &str) -> Option<(Wanted, Option<&str>)> {
    let rest = filter.strip_prefix(NAMESPACE)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["STATE", host] if is_valid_id(host) => Some((Wanted::State, Some(host))),
        [group, "NCMD", edge] if is_valid_id(group) && is_valid_id(edge) => Some((
            Wanted::Commands((group.to_string(), edge.to_string())),
            None,
        )),
        [group, "DCMD", edge, device]
            if is_valid_id(group)
                && is_valid_id(edge)
                && (matches!(*device, "#" | "+") || is_valid_id(device)) =>
        {
            Some((
                Wanted::Commands((group.to_string(), edge.to_string())),
                None,
            ))
        }
        _ => None,
    }
}

/// Whether a connection whose own node is `own` (if known) may subscribe to `filter`:
/// `Ok(what)` when granted. `identity` is the connection's device id with device
/// authentication, and then decides the own node; without, a first subscription to an edge
/// node's commands names it (the caller binds it).
pub(crate) fn decide(
    sparkplug: &EndpointSparkplug,
    filter: &str,
    own: Option<&NodeKey>,
    identity: Option<&str>,
) -> Result<Wanted, SubscribeRefusal> {
    let (wanted, host) = wanted(filter).ok_or(SubscribeRefusal::Filter)?;
    match &wanted {
        Wanted::State => {
            if host.is_some() && host == sparkplug.settings.host_id.as_deref() {
                Ok(wanted)
            } else {
                Err(SubscribeRefusal::OtherHost)
            }
        }
        Wanted::Commands(node) => {
            let ours = match (identity, own) {
                (Some(identity), _) => sparkplug.is_identity(node, identity),
                (None, Some(own)) => own == node,
                (None, None) => true,
            };
            if ours {
                Ok(wanted)
            } else {
                Err(SubscribeRefusal::NotOwnNode)
            }
        }
    }
}

/// The edge node a Sparkplug PUBLISH topic is about, and its message type; `None` for a STATE
/// or a topic that is not Sparkplug's.
pub(crate) fn node_of(topic: &str) -> Option<(NodeKey, MessageType)> {
    match sp_topic::parse(topic).ok()? {
        sp_topic::SparkplugTopic::Node {
            group,
            kind,
            edge_node,
            ..
        } => Some(((group.to_string(), edge_node.to_string()), kind)),
        sp_topic::SparkplugTopic::State { .. } => None,
    }
}

/// One connection's route.
#[derive(Debug)]
struct Route {
    id: u64,
    control: mpsc::Sender<ToClient>,
}

/// The connection of each connected edge node, by (group, edge node), for rebirth requests. A
/// newer connection of a node replaces the older one's route; a connection removes only its
/// own.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    by_node: Mutex<HashMap<NodeKey, Route>>,
    next_id: AtomicU64,
}

/// A connection's hold on a route: removing it removes the route if it is still this one's.
#[derive(Debug)]
pub(crate) struct RouteHandle {
    node: NodeKey,
    id: u64,
}

impl Routes {
    /// Routes `node`'s commands to the connection writing through `control`.
    pub(crate) fn bind(&self, node: NodeKey, control: mpsc::Sender<ToClient>) -> RouteHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.by_node
            .lock()
            .insert(node.clone(), Route { id, control });
        RouteHandle { node, id }
    }

    /// Removes the route of `handle`, unless a newer connection of the node replaced it.
    pub(crate) fn unbind(&self, handle: &RouteHandle) {
        let mut map = self.by_node.lock();
        if map.get(&handle.node).is_some_and(|r| r.id == handle.id) {
            map.remove(&handle.node);
        }
    }

    /// Queues `packet` on `node`'s connection; `false` when it is not connected (or does not
    /// read what it is sent).
    pub(crate) fn send(&self, node: &NodeKey, packet: ToClient) -> bool {
        let map = self.by_node.lock();
        map.get(node)
            .is_some_and(|route| route.control.try_send(packet).is_ok())
    }
}

/// Sends the rebirth requests as they fall due, by the pipeline's clock, until `stop`.
pub(crate) async fn request_rebirths_until(
    sparkplug: Arc<EndpointSparkplug>,
    pipeline: Pipeline,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(REBIRTH_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        request_rebirths(&sparkplug, pipeline.now_ms());
    }
}

/// Sends the rebirth requests due at `now_ms` on their nodes' connections (QoS 0, not
/// retained); counts the ones sent and the ones with no connection to go on.
pub(crate) fn request_rebirths(sparkplug: &EndpointSparkplug, now_ms: i64) {
    let due = {
        let mut host = sparkplug.host.lock();
        if host.next_deadline().is_none_or(|d| d > now_ms) {
            return;
        }
        host.due(now_ms)
    };
    for rebirth in due {
        let Some((node, _)) = node_of(&rebirth.topic) else {
            continue;
        };
        let packet = ToClient::Publish {
            topic: rebirth.topic.clone(),
            payload: rebirth.payload.into(),
            retain: false,
        };
        if sparkplug.routes.send(&node, packet) {
            metrics::counter!(m::SPARKPLUG_REBIRTHS_REQUESTED_TOTAL).increment(1);
            tracing::info!(topic = %rebirth.topic, "requesting a Sparkplug rebirth");
        } else {
            metrics::counter!(m::SPARKPLUG_REBIRTHS_UNDELIVERED_TOTAL).increment(1);
            tracing::info!(topic = %rebirth.topic, "a Sparkplug rebirth is due, but the edge node is not connected");
        }
    }
}
