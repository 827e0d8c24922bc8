//! What a fleet simulates: how many devices of each kind, where they connect, how often they
//! report and for how long. [`FleetConfig::validate`] checks it before anything connects.

use std::time::Duration;

use rumqttc::QoS;
use tokio::time::Instant;

use crate::broker::BrokerAddr;
use crate::broker::MqttVersion;
use crate::device::{DeviceSettings, MAX_PACKET_BYTES};

/// Most readings in one telemetry message; a batch this large stays under the packet size limit.
pub const MAX_BATCH: u32 = 10_000;
/// Upper bound of the encoded size of one reading of five metrics, to check a [`MAX_BATCH`] batch
/// fits in a packet.
const MAX_READING_BYTES: usize = 100;
const _: () = assert!(MAX_BATCH as usize * MAX_READING_BYTES < MAX_PACKET_BYTES);

/// Everything a fleet run needs. [`Default`] gives the CLI's defaults: 50 cabinets, 50 small cells,
/// 100 sensors and 5 gateways with 4 sensors each over 10 sites, reporting every 10 s at QoS 1
/// until shut down.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// The MQTT broker (or citytel's device endpoint) to connect to.
    pub broker: BrokerAddr,
    /// The MQTT version devices speak (3.1.1 by default).
    pub mqtt_version: MqttVersion,
    /// Fibre street cabinets (`cab-0001`...).
    pub cabinets: u32,
    /// 5G small cells (`cell-0001`...).
    pub small_cells: u32,
    /// Environmental sensors with their own connection (`sen-0001`...).
    pub sensors: u32,
    /// Gateways (`gw-0001`...), each publishing for its children too.
    pub gateways: u32,
    /// Sensors behind each gateway (`gw-0001-s01`...), publishing over the gateway's connection.
    pub children_per_gateway: u32,
    /// Number of sites; devices are dealt round-robin to `site-01`, `site-02`... (children stay
    /// at their gateway's site).
    pub sites: u32,
    /// Time between two readings of a device.
    pub interval: Duration,
    /// Readings each device takes; the device stops once they are all acknowledged.
    pub readings: Option<u64>,
    /// How long devices take readings, from the start of the run.
    ///
    /// With neither `readings` nor `duration`, devices report until shutdown.
    pub duration: Option<Duration>,
    /// Readings per telemetry message: a device buffers `batch` readings, `interval` apart, and
    /// publishes them together (1 to [`MAX_BATCH`]).
    pub batch: u32,
    /// QoS of telemetry and status messages (the Last Will is always QoS 1). At QoS 0 nothing is
    /// ever acknowledged.
    pub qos: QoS,
    /// Seed of every random choice: metric values, boot ids, clock skews.
    pub seed: u64,
    /// Mixed into every boot id, so two runs with the same seed never share boot ids (an ingester
    /// that kept the first run's data would otherwise deduplicate the second run away).
    /// [`Default`] takes the wall-clock time in milliseconds; set it to reproduce boot ids.
    pub boot_epoch: u64,
    /// MQTT keep alive: zero (off) or at least one second.
    pub keepalive: Duration,
    /// Most unacknowledged QoS 1/2 publishes per connection.
    pub inflight: u16,
    /// Send a heartbeat after every this many readings (off if `None`).
    pub heartbeat_every: Option<u32>,
    /// Keep every acknowledged reading in the report ([`DeviceReport::acked_readings`](crate::DeviceReport::acked_readings)).
    pub record: bool,
    /// Prepended to device ids to form MQTT client ids, so several fleets can share a broker
    /// without taking over each other's sessions. Device ids and topics do not change.
    pub client_id_prefix: Option<String>,
    /// Each device's clock is off the wall clock by a fixed amount drawn from
    /// `-max_clock_skew..=max_clock_skew` (millisecond precision).
    pub max_clock_skew: Duration,
    /// Give up with [`FleetError::BrokerUnreachable`](super::FleetError::BrokerUnreachable) if no
    /// device connected within this time (never, if `None`).
    pub connect_timeout: Option<Duration>,
    /// How long a stopping device waits for its outstanding acknowledgements before disconnecting.
    pub drain_timeout: Duration,
    /// Devices state their location in the synthetic city ([`crate::city`]) in their births.
    pub city: bool,
    /// Delay between the first connection attempts of consecutive devices, so a large fleet does not
    /// connect all at once.
    pub connect_stagger: Duration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            broker: BrokerAddr::default(),
            mqtt_version: MqttVersion::V311,
            cabinets: 50,
            small_cells: 50,
            sensors: 100,
            gateways: 5,
            children_per_gateway: 4,
            sites: 10,
            interval: Duration::from_secs(10),
            readings: None,
            duration: None,
            batch: 1,
            qos: QoS::AtLeastOnce,
            seed: 42,
            boot_epoch: wall_clock_ms(),
            keepalive: Duration::from_secs(30),
            inflight: 100,
            heartbeat_every: None,
            record: false,
            client_id_prefix: None,
            max_clock_skew: Duration::ZERO,
            connect_timeout: Some(Duration::from_secs(10)),
            drain_timeout: Duration::from_secs(10),
            connect_stagger: Duration::from_millis(2),
            city: true,
        }
    }
}

/// Why a fleet configuration cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Every device count is zero.
    #[error("nothing to simulate: cabinets, small_cells, sensors and gateways are all 0")]
    NoDevices,
    /// `sites` is zero.
    #[error("sites must be at least 1")]
    NoSites,
    /// `interval` is under a millisecond or over `u32::MAX` milliseconds.
    #[error("interval must be between 1 ms and 49 days")]
    Interval,
    /// `readings` is zero.
    #[error("readings per device must be at least 1")]
    NoReadings,
    /// `duration` is zero.
    #[error("duration must be longer than 0")]
    NoDuration,
    /// `batch` is zero or over [`MAX_BATCH`].
    #[error("batch must be between 1 and {MAX_BATCH}")]
    Batch,
    /// `keepalive` is between zero and one second.
    #[error("keepalive must be 0 (off) or at least 1 s")]
    Keepalive,
    /// `inflight` is zero.
    #[error("inflight must be at least 1")]
    Inflight,
    /// `heartbeat_every` is zero.
    #[error("heartbeat_every must be at least 1")]
    HeartbeatEvery,
    /// `max_clock_skew` is over `u32::MAX` milliseconds.
    #[error("max_clock_skew must be under 49 days")]
    ClockSkew,
}

impl FleetConfig {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let devices = [self.cabinets, self.small_cells, self.sensors, self.gateways];
        if devices.iter().all(|count| *count == 0) {
            return Err(ConfigError::NoDevices);
        }
        if self.sites == 0 {
            return Err(ConfigError::NoSites);
        }
        if self.interval < Duration::from_millis(1) || millis_u32(self.interval).is_none() {
            return Err(ConfigError::Interval);
        }
        if self.readings == Some(0) {
            return Err(ConfigError::NoReadings);
        }
        if self.duration == Some(Duration::ZERO) {
            return Err(ConfigError::NoDuration);
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(ConfigError::Batch);
        }
        if !self.keepalive.is_zero() && self.keepalive < Duration::from_secs(1) {
            return Err(ConfigError::Keepalive);
        }
        if self.inflight == 0 {
            return Err(ConfigError::Inflight);
        }
        if self.heartbeat_every == Some(0) {
            return Err(ConfigError::HeartbeatEvery);
        }
        if millis_u32(self.max_clock_skew).is_none() {
            return Err(ConfigError::ClockSkew);
        }
        Ok(())
    }

    /// MQTT connections the fleet opens: every device but gateway children.
    pub fn connections(&self) -> u64 {
        [self.cabinets, self.small_cells, self.sensors, self.gateways]
            .iter()
            .map(|count| u64::from(*count))
            .sum()
    }

    /// Devices the fleet simulates, gateway children included.
    pub fn devices(&self) -> u64 {
        self.connections() + u64::from(self.gateways) * u64::from(self.children_per_gateway)
    }

    /// The settings every device shares, for a run that started at `started`.
    pub(crate) fn device_settings(&self, started: Instant) -> DeviceSettings {
        DeviceSettings {
            broker: self.broker.clone(),
            mqtt_version: self.mqtt_version,
            client_id_prefix: self.client_id_prefix.clone().unwrap_or_default(),
            keepalive: self.keepalive,
            inflight: self.inflight,
            qos: self.qos,
            interval: self.interval,
            batch: self.batch as usize,
            readings: self.readings,
            deadline: self.duration.map(|duration| started + duration),
            heartbeat_every: self.heartbeat_every.map(u64::from),
            record: self.record,
            seed: self.seed,
            boot_epoch: self.boot_epoch,
            max_clock_skew_ms: millis_u32(self.max_clock_skew).unwrap_or(u32::MAX),
            drain_timeout: self.drain_timeout,
            city: self.city,
        }
    }
}

/// Milliseconds since the Unix epoch, or 0 if the clock is before it.
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `duration` in whole milliseconds, if that fits a `u32`.
fn millis_u32(duration: Duration) -> Option<u32> {
    u32::try_from(duration.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        let config = FleetConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.connections(), 205);
        assert_eq!(config.devices(), 225);
    }

    #[test]
    fn out_of_range_fields_are_rejected() {
        type Breaker = fn(&mut FleetConfig);
        let cases: [(Breaker, ConfigError); 11] = [
            (
                |c| {
                    c.cabinets = 0;
                    c.small_cells = 0;
                    c.sensors = 0;
                    c.gateways = 0;
                },
                ConfigError::NoDevices,
            ),
            (|c| c.sites = 0, ConfigError::NoSites),
            (
                |c| c.interval = Duration::from_micros(500),
                ConfigError::Interval,
            ),
            (
                |c| c.interval = Duration::from_secs(50 * 86_400),
                ConfigError::Interval,
            ),
            (|c| c.readings = Some(0), ConfigError::NoReadings),
            (
                |c| c.duration = Some(Duration::ZERO),
                ConfigError::NoDuration,
            ),
            (|c| c.batch = 0, ConfigError::Batch),
            (|c| c.batch = MAX_BATCH + 1, ConfigError::Batch),
            (
                |c| c.keepalive = Duration::from_millis(500),
                ConfigError::Keepalive,
            ),
            (|c| c.inflight = 0, ConfigError::Inflight),
            (|c| c.heartbeat_every = Some(0), ConfigError::HeartbeatEvery),
        ];
        for (break_it, error) in cases {
            let mut config = FleetConfig::default();
            break_it(&mut config);
            assert_eq!(config.validate(), Err(error.clone()), "{error}");
        }
        let gateways_only = FleetConfig {
            cabinets: 0,
            small_cells: 0,
            sensors: 0,
            keepalive: Duration::ZERO,
            ..FleetConfig::default()
        };
        assert_eq!(gateways_only.validate(), Ok(()));
    }
}
