//! citytel as a Sparkplug B 3.0 host application (Eclipse Sparkplug, ISO/IEC 20237).
//!
//! Edge nodes and their devices become citytel devices: an edge node is a `gateway` on the site
//! named by its group, its devices are its children, their ids derived from group, edge node and
//! device by configurable templates ([`HostSettings`]). The [`host`] keeps one session per edge
//! node (bdSeq, `seq`, the metrics its births declared) and turns each Sparkplug message into
//! citytel's own messages ([`translate`]), which then take the path of any device's: validation,
//! WAL, storage and the fleet's availability machine. What it makes of each datatype is in
//! [`citytel_proto::sparkplug::datatype`]; text values become an attributes status, which the
//! state keeps as the device's latest attributes ([`crate::state::attributes`]).
//!
//! - [`host`]: sessions, rebirth requests, the mapping of births, data and deaths.
//! - [`seq`]: the `seq` counter (gaps, late arrivals, redeliveries).
//! - [`metrics`]: a birth's declarations and how data resolves against them.
//! - [`translate`]: citytel messages from resolved data.
//! - [`state`]: the primary host's STATE messages.

pub(crate) mod host;
pub(crate) mod metrics;
pub(crate) mod seq;
pub(crate) mod state;
pub(crate) mod translate;

use citytel_proto::topic::is_valid_id;

pub(crate) use host::{Host, Outcome};

use translate::Target;

/// The validated `[sparkplug]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkplugSettings {
    /// How the host maps and paces.
    pub host: HostSettings,
    /// The primary host id, when citytel publishes its STATE.
    pub host_id: Option<String>,
}

/// How the host maps and paces (the `[sparkplug]` configuration section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSettings {
    /// Device id of an edge node: `{group}` and `{edge_node}` are replaced.
    pub node_id_template: String,
    /// Device id of a device: `{group}`, `{edge_node}` and `{device}` are replaced.
    pub device_id_template: String,
    /// citytel kind of a Sparkplug device (an edge node is always a `gateway`).
    pub device_kind: String,
    /// How long a seq gap, data before a birth or an unknown metric may last before a rebirth
    /// is requested, ms.
    pub reorder_timeout_ms: i64,
    /// Reporting interval stated in the births citytel makes (0: the kind's default).
    pub reporting_interval_ms: u32,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            node_id_template: "{group}.{edge_node}".into(),
            device_id_template: "{group}.{edge_node}.{device}".into(),
            device_kind: "sensor".into(),
            reorder_timeout_ms: 5_000,
            reporting_interval_ms: 0,
        }
    }
}

impl HostSettings {
    /// The device id of edge node `edge` of `group`; `None` when the template makes no valid id.
    pub(crate) fn node_id(&self, group: &str, edge: &str) -> Option<String> {
        let id = self
            .node_id_template
            .replace("{group}", group)
            .replace("{edge_node}", edge);
        is_valid_id(&id).then_some(id)
    }

    /// The citytel device of Sparkplug device `device` of `edge`, in session `boot_id`; `None`
    /// when the template makes no valid id.
    pub(crate) fn device_target(
        &self,
        group: &str,
        edge: &str,
        device: &str,
        node_id: &str,
        boot_id: u64,
    ) -> Option<Target> {
        let id = self
            .device_id_template
            .replace("{group}", group)
            .replace("{edge_node}", edge)
            .replace("{device}", device);
        is_valid_id(&id).then(|| Target {
            site: group.to_string(),
            kind: self.device_kind.clone(),
            device_id: id,
            gateway_id: Some(node_id.to_string()),
            boot_id,
        })
    }
}

#[cfg(test)]
mod tests;
