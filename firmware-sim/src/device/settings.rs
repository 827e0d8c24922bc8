//! What a device needs to know: its own spec (who it is, where, which children) and the settings it
//! shares with the rest of its fleet.

use std::time::Duration;

use citytel_proto::kind::Kind;
use rumqttc::QoS;
use tokio::time::Instant;

use crate::broker::BrokerAddr;
use crate::broker::MqttVersion;

/// One device of a fleet: a single MQTT connection, and for a gateway the children behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceSpec {
    /// The device id, e.g. `cab-0001`.
    pub(crate) device_id: String,
    /// The device kind.
    pub(crate) kind: Kind,
    /// The site, e.g. `site-03`.
    pub(crate) site: String,
    /// For a gateway, the ids of the sensors it reports for.
    pub(crate) children: Vec<String>,
    /// How long to wait before the first connection attempt, so a fleet does not connect at once.
    pub(crate) start_delay: Duration,
}

/// Settings every device of a fleet shares.
#[derive(Debug, Clone)]
pub(crate) struct DeviceSettings {
    /// Where to connect.
    pub(crate) broker: BrokerAddr,
    /// The MQTT version spoken.
    pub(crate) mqtt_version: MqttVersion,
    /// Prepended to the device id to form the MQTT client id.
    pub(crate) client_id_prefix: String,
    /// MQTT keep alive (zero: off).
    pub(crate) keepalive: Duration,
    /// Most QoS 1/2 publishes awaiting acknowledgement at once.
    pub(crate) inflight: u16,
    /// QoS of telemetry and status publishes (the Last Will is always QoS 1).
    pub(crate) qos: QoS,
    /// Time between readings.
    pub(crate) interval: Duration,
    /// Readings per telemetry message.
    pub(crate) batch: usize,
    /// Readings each device takes before it stops, if limited.
    pub(crate) readings: Option<u64>,
    /// When devices stop taking readings, if limited.
    pub(crate) deadline: Option<Instant>,
    /// A heartbeat follows every this many readings, if set.
    pub(crate) heartbeat_every: Option<u64>,
    /// Keep every acknowledged reading for the report.
    pub(crate) record: bool,
    /// The fleet seed.
    pub(crate) seed: u64,
    /// Mixed into boot ids so runs never share them.
    pub(crate) boot_epoch: u64,
    /// Each device's clock is off by up to this many milliseconds either way.
    pub(crate) max_clock_skew_ms: u32,
    /// How long a stopping device waits for outstanding acknowledgements.
    pub(crate) drain_timeout: Duration,
    /// Births state the device's location in the synthetic city.
    pub(crate) city: bool,
}

impl DeviceSettings {
    /// The reading interval as a birth reports it.
    pub(crate) fn reporting_interval_ms(&self) -> u32 {
        u32::try_from(self.interval.as_millis()).unwrap_or(u32::MAX)
    }

    /// The heartbeat interval as a birth reports it, if heartbeats are on.
    pub(crate) fn heartbeat_interval_ms(&self) -> Option<u32> {
        self.heartbeat_every.map(|every| {
            let every = u32::try_from(every).unwrap_or(u32::MAX);
            self.reporting_interval_ms().saturating_mul(every)
        })
    }
}
