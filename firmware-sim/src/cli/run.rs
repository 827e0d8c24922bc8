//! `firmware-sim run`: connects a fleet to a broker and reports until done or interrupted.

use std::time::Duration;

use anyhow::Context as _;
use citytel_firmware_sim::load::MqttVersion;
use citytel_firmware_sim::{Fleet, FleetConfig, Progress, QoS};
use clap::Args;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::args::{BrokerArgs, SitesArgs};
use super::progress::{ProgressLine, summary};
use super::signals::Interrupts;

/// Connect a fleet of simulated devices to a broker and publish their telemetry.
///
/// Every device opens its own MQTT connection (persistent session, Last Will), publishes a birth,
/// then a reading every --interval, and at the end a death before it disconnects. Gateways also
/// publish for the sensors behind them. A progress line goes to stderr every second and a summary
/// to stdout at the end. Ctrl-C (or SIGTERM) stops the run gracefully; a second one quits at once.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    target: BrokerArgs,

    /// Fibre street cabinets (cab-0001...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_CABINETS",
        value_name = "N",
        default_value_t = 50
    )]
    cabinets: u32,

    /// 5G small cells (cell-0001...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_SMALL_CELLS",
        value_name = "N",
        default_value_t = 50
    )]
    small_cells: u32,

    /// Environmental sensors with their own connection (sen-0001...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_SENSORS",
        value_name = "N",
        default_value_t = 100
    )]
    sensors: u32,

    /// Gateways (gw-0001...), each also publishing for its child sensors.
    #[arg(
        long,
        env = "FIRMWARE_SIM_GATEWAYS",
        value_name = "N",
        default_value_t = 5
    )]
    gateways: u32,

    /// Sensors behind each gateway (gw-0001-s01...).
    #[arg(
        long,
        env = "FIRMWARE_SIM_CHILDREN_PER_GATEWAY",
        value_name = "N",
        default_value_t = 4
    )]
    children_per_gateway: u32,

    #[command(flatten)]
    spread: SitesArgs,

    /// Time between two readings of a device, e.g. 10s or 250ms.
    #[arg(
        long,
        env = "FIRMWARE_SIM_INTERVAL",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    interval: Duration,

    /// Readings per device; the run ends once all are acknowledged.
    #[arg(long, env = "FIRMWARE_SIM_READINGS", value_name = "N")]
    readings: Option<u64>,

    /// How long devices take readings, e.g. 5m. With neither --readings nor --duration the run
    /// lasts until Ctrl-C.
    #[arg(
        long,
        env = "FIRMWARE_SIM_DURATION",
        value_name = "DURATION",
        value_parser = humantime::parse_duration
    )]
    duration: Option<Duration>,

    /// Readings per telemetry message: each device buffers this many readings (--interval apart)
    /// and publishes them together.
    #[arg(
        long,
        env = "FIRMWARE_SIM_BATCH",
        value_name = "N",
        default_value_t = 1
    )]
    batch: u32,

    /// MQTT QoS of telemetry and status messages (the Last Will is always QoS 1).
    #[arg(
        long,
        env = "FIRMWARE_SIM_QOS",
        value_name = "0|1|2",
        default_value_t = 1,
        value_parser = clap::value_parser!(u8).range(0..=2)
    )]
    qos: u8,

    /// Seed of every random choice (metric values, boot ids, clock skews); the same seed gives the
    /// same fleet.
    #[arg(
        long,
        env = "FIRMWARE_SIM_SEED",
        value_name = "N",
        default_value_t = 42
    )]
    seed: u64,

    /// MQTT keep alive (0 turns it off).
    #[arg(
        long,
        env = "FIRMWARE_SIM_KEEPALIVE",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = humantime::parse_duration
    )]
    keepalive: Duration,

    /// Most unacknowledged QoS 1/2 publishes per connection.
    #[arg(
        long,
        env = "FIRMWARE_SIM_INFLIGHT",
        value_name = "N",
        default_value_t = 100
    )]
    inflight: u16,

    /// Send a heartbeat (with the last sequence number) after every N readings.
    #[arg(long, env = "FIRMWARE_SIM_HEARTBEAT_EVERY", value_name = "N")]
    heartbeat_every: Option<u32>,

    /// Prefix for MQTT client ids, so several fleets can share a broker (device ids and topics do
    /// not change).
    #[arg(long, env = "FIRMWARE_SIM_CLIENT_ID_PREFIX", value_name = "PREFIX")]
    client_id_prefix: Option<String>,

    /// Skew each device's clock by a fixed random offset of up to this much either way.
    #[arg(
        long,
        env = "FIRMWARE_SIM_MAX_CLOCK_SKEW",
        value_name = "DURATION",
        default_value = "0s",
        value_parser = humantime::parse_duration
    )]
    max_clock_skew: Duration,

    /// Give up (and exit non-zero) if no device could connect within this time; 0 retries forever.
    #[arg(
        long,
        env = "FIRMWARE_SIM_CONNECT_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    connect_timeout: Duration,

    /// How long stopping devices wait for outstanding acknowledgements before disconnecting.
    #[arg(
        long,
        env = "FIRMWARE_SIM_DRAIN_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    drain_timeout: Duration,
    /// Leave the location out of births. By default every device states where it stands in the
    /// synthetic city whose districts are `firmware-sim/city/districts.geojson` (sites dealt to
    /// its five districts round-robin): set `availability.districts_file` to that file.
    #[arg(long, env = "FIRMWARE_SIM_NO_LOCATION")]
    no_location: bool,
    /// MQTT version: 3.1.1 or 5. With 5, a PUBACK whose reason code refuses a message counts as
    /// an error, and its readings as not acknowledged.
    #[arg(
        long,
        env = "FIRMWARE_SIM_MQTT_VERSION",
        value_name = "VERSION",
        default_value = "3.1.1",
        value_parser = super::load::parse_mqtt_version
    )]
    mqtt_version: MqttVersion,
}

impl RunArgs {
    /// Runs the fleet, printing progress and the final summary.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let fleet = Fleet::new(self.into_config())?;
        let config = fleet.config();
        eprintln!(
            "firmware-sim: {} connections ({} devices with gateway children) to {}, a reading \
             every {} at QoS {}",
            config.connections(),
            config.devices(),
            config.broker,
            humantime::format_duration(config.interval),
            qos_number(config.qos),
        );

        let shutdown = CancellationToken::new();
        let done = CancellationToken::new();
        let interrupts = tokio::spawn(Interrupts::new(shutdown.clone()).run(done.clone()));
        let (progress, updates) = watch::channel(Progress::default());
        let printer = tokio::spawn(ProgressLine::new(updates).run(done.clone()));

        let outcome = fleet.run(shutdown, Some(progress)).await;
        done.cancel();
        for task in [interrupts, printer] {
            task.await.context("output task failed")?;
        }
        let report = outcome?;
        println!("{}", summary(&report.totals));
        Ok(())
    }

    fn into_config(self) -> FleetConfig {
        FleetConfig {
            broker: self.target.broker,
            cabinets: self.cabinets,
            small_cells: self.small_cells,
            sensors: self.sensors,
            gateways: self.gateways,
            children_per_gateway: self.children_per_gateway,
            sites: self.spread.sites,
            interval: self.interval,
            readings: self.readings,
            duration: self.duration,
            batch: self.batch,
            qos: match self.qos {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            },
            seed: self.seed,
            keepalive: self.keepalive,
            inflight: self.inflight,
            heartbeat_every: self.heartbeat_every,
            record: false,
            client_id_prefix: self.client_id_prefix,
            max_clock_skew: self.max_clock_skew,
            connect_timeout: Some(self.connect_timeout).filter(|timeout| !timeout.is_zero()),
            drain_timeout: self.drain_timeout,
            city: !self.no_location,
            mqtt_version: self.mqtt_version,
            ..FleetConfig::default()
        }
    }
}

fn qos_number(qos: QoS) -> u8 {
    match qos {
        QoS::AtMostOnce => 0,
        QoS::AtLeastOnce => 1,
        QoS::ExactlyOnce => 2,
    }
}

#[cfg(test)]
mod tests {
    use citytel_firmware_sim::broker::BrokerAddr;
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: RunArgs,
    }

    fn config(args: &[&str]) -> FleetConfig {
        let argv = std::iter::once("run").chain(args.iter().copied());
        Wrapper::try_parse_from(argv)
            .expect("arguments parse")
            .args
            .into_config()
    }

    #[test]
    fn defaults_match_the_library_defaults() {
        assert_eq!(config(&[]), FleetConfig::default());
    }

    #[test]
    fn flags_reach_the_config() {
        let c = config(&[
            "--broker=mqtt://broker:1999",
            "--interval=250ms",
            "--readings=5",
            "--duration=1m",
            "--qos=2",
            "--connect-timeout=0",
            "--client-id-prefix=load-a-",
            "--mqtt-version=5",
        ]);
        assert_eq!(c.broker, BrokerAddr::new("broker", 1999));
        assert_eq!(c.interval, Duration::from_millis(250));
        assert_eq!(c.readings, Some(5));
        assert_eq!(c.duration, Some(Duration::from_secs(60)));
        assert_eq!(c.qos, QoS::ExactlyOnce);
        assert_eq!(c.connect_timeout, None);
        assert_eq!(c.client_id_prefix.as_deref(), Some("load-a-"));
        assert_eq!(c.mqtt_version, MqttVersion::V5);
    }

    #[test]
    fn bad_values_are_rejected_with_the_reason() {
        let error = |args: &[&str]| {
            let argv = std::iter::once("run").chain(args.iter().copied());
            Wrapper::try_parse_from(argv)
                .expect_err("arguments are rejected")
                .to_string()
        };
        assert!(error(&["--qos=3"]).contains("3 is not in 0..=2"));
        assert!(error(&["--broker=mqtts://b:8883"]).contains("not supported"));
        assert!(error(&["--interval=soon"]).contains("--interval"));
    }
}
