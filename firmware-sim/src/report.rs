//! What a fleet run returns: totals and, per device, exactly which readings the broker acknowledged.
//!
//! A reading counts as acked only once the PUBACK (QoS 1) or PUBREC (QoS 2) of the message carrying
//! it arrived, so end-to-end tests can compare what the ingester stored with [`DeviceReport`]s.

use std::time::Duration;

use citytel_proto::kind::Kind;
use citytel_proto::v1::Reading;

/// The outcome of [`Fleet::run`](crate::Fleet::run).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetReport {
    /// Counters over the whole fleet.
    pub totals: Totals,
    /// One entry per simulated device, gateway children included (each right after its gateway),
    /// in device id order per kind: cabinets, small cells, sensors, gateways.
    pub devices: Vec<DeviceReport>,
}

impl FleetReport {
    /// The report of device `device_id`, if the fleet had it.
    pub fn device(&self, device_id: &str) -> Option<&DeviceReport> {
        self.devices.iter().find(|d| d.device_id == device_id)
    }
}

/// Counters over a whole run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Messages (telemetry and status) written to the broker, retransmissions not counted.
    pub messages_published: u64,
    /// QoS 1 and 2 messages the broker acknowledged.
    pub messages_acked: u64,
    /// Readings carried by the published telemetry messages.
    pub readings_published: u64,
    /// Readings carried by the acknowledged telemetry messages.
    pub readings_acked: u64,
    /// Successful connections after a device's first one.
    pub reconnects: u64,
    /// Failed connection attempts, dropped connections and protocol surprises.
    pub errors: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Totals {
    /// Readings published per second of the run.
    pub fn readings_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.readings_published as f64 / seconds
        } else {
            0.0
        }
    }
}

/// What one device (or gateway child) did during a run.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReport {
    /// The device id, e.g. `cab-0001` or `gw-0002-s03`.
    pub device_id: String,
    /// The device kind.
    pub kind: Kind,
    /// The site the device is at, e.g. `site-03`.
    pub site: String,
    /// The boot id every message of this run carried.
    pub boot_id: u64,
    /// For a gateway child, the gateway that published for it.
    pub gateway_id: Option<String>,
    /// The offset of the device's clock from the wall clock, in milliseconds.
    pub clock_skew_ms: i64,
    /// The metrics of every reading, in value order.
    pub metric_names: &'static [&'static str],
    /// Readings written to the broker.
    pub readings_published: u64,
    /// Readings whose message the broker acknowledged.
    pub readings_acked: u64,
    /// The acknowledged readings in acknowledgement order, when the fleet ran with
    /// [`FleetConfig::record`](crate::FleetConfig::record); empty otherwise.
    pub acked_readings: Vec<Reading>,
}
