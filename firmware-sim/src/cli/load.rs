//! `firmware-sim load`: saturate a broker or citytel's device endpoint with QoS 1 telemetry.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use citytel_firmware_sim::load::{self, LoadConfig, Sample};
use clap::Args;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::args::{BrokerArgs, SitesArgs};
use super::signals::Interrupts;

/// Measure how many QoS 1 telemetry messages per second a broker or citytel acknowledges.
///
/// Opens --connections MQTT 3.1.1 (or, with --mqtt-version 5, MQTT 5) connections (clean
/// session) and keeps up to --inflight unacknowledged QoS 1 PUBLISHes on each (with MQTT 5 at
/// most the server's Receive Maximum), as fast as the server acknowledges them. Each message
/// is a citytel.v1.TelemetryBatch of --batch readings of 5 metrics for one of the connection's
/// devices (--devices cabinets, small cells and sensors dealt round-robin to the connections and
/// sites), on its telemetry topic, with consecutive sequence numbers per device, a fresh boot id
/// per run, timestamps of the moment it is sent and values from the device models. Messages are
/// pre-encoded once per device and patched, so generating them costs far less than decoding them
/// (sequence numbers start at 2^28 so that they keep their encoded length).
///
/// The run has a --warmup (not counted), then lasts --duration, or until --messages more
/// messages are published and acknowledged. With --rate the connections publish no faster than
/// that in all (a steady load, e.g. one message per device per minute), otherwise as fast as the
/// window allows. A message counts as acknowledged only when the
/// PUBACK with its packet id arrives. Rates are PUBACKs per second in the measured window;
/// latency is from queuing a PUBLISH to its PUBACK, for the messages published in the window
/// (against citytel's device endpoint, which acknowledges after the fsync, that is
/// publish-to-durable; against a broker, publish-to-broker). With the window full all the time
/// the latency is mostly queueing: about connections x inflight / rate.
///
/// When publishing stops the connections wait up to --drain-timeout for the PUBACKs still due,
/// then disconnect. The summary goes to stdout (and to --json as JSON, with a timeline of the
/// cumulative counts every 100 ms); progress to stderr every second. The exit status is
/// non-zero if any message was not acknowledged or a connection failed. Ctrl-C stops early and
/// drains.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    target: BrokerArgs,

    /// MQTT connections, each with its own window of unacknowledged messages.
    #[arg(
        long,
        env = "FIRMWARE_SIM_CONNECTIONS",
        value_name = "N",
        default_value_t = 50
    )]
    connections: u32,

    /// Devices the messages are for, dealt round-robin to the connections (at least one per
    /// connection): cab-00001, cell-00001, sen-00001, cab-00002, ...
    #[arg(
        long,
        env = "FIRMWARE_SIM_DEVICES",
        value_name = "N",
        default_value_t = 1000
    )]
    devices: u32,

    #[command(flatten)]
    spread: SitesArgs,

    /// Most unacknowledged QoS 1 PUBLISHes per connection (1 to 65535).
    #[arg(
        long,
        env = "FIRMWARE_SIM_INFLIGHT",
        value_name = "N",
        default_value_t = 1000,
        value_parser = clap::value_parser!(u16).range(1..)
    )]
    inflight: u16,

    /// MQTT version: 3.1.1 or 5. With 5, a PUBACK with a reason code other than success ends
    /// the connection with that reason.
    #[arg(
        long,
        env = "FIRMWARE_SIM_MQTT_VERSION",
        value_name = "VERSION",
        default_value = "3.1.1",
        value_parser = parse_mqtt_version
    )]
    mqtt_version: load::MqttVersion,

    /// Payload format: citytel (the wire contract) or sparkplug (Sparkplug B: each connection an
    /// edge node of group "load" named after its client id, births at QoS 0 first, then DDATA
    /// at QoS 1 with every metric of each reading by alias; citytel needs
    /// `sparkplug.enabled = true`).
    #[arg(
        long,
        env = "FIRMWARE_SIM_FORMAT",
        value_name = "FORMAT",
        default_value = "citytel",
        value_parser = parse_format
    )]
    format: load::LoadFormat,

    /// Readings per message (each of 5 metrics).
    #[arg(
        long,
        env = "FIRMWARE_SIM_BATCH",
        value_name = "N",
        default_value_t = 1
    )]
    batch: u32,

    /// How long to measure, after the warm-up, e.g. 10s or 1m.
    #[arg(
        long,
        env = "FIRMWARE_SIM_DURATION",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    duration: Duration,

    /// Instead of --duration: publish exactly N messages after the warm-up (split evenly over the
    /// connections); the window ends when the last is acknowledged.
    #[arg(long, env = "FIRMWARE_SIM_MESSAGES", value_name = "N")]
    messages: Option<u64>,

    /// At most this many messages per second in all, split evenly over the connections
    /// (warm-up included); without it, as fast as the server acknowledges.
    #[arg(long, env = "FIRMWARE_SIM_RATE", value_name = "MSG_PER_S")]
    rate: Option<f64>,

    /// Load before the measured window, not counted (0s for none).
    #[arg(
        long,
        env = "FIRMWARE_SIM_WARMUP",
        value_name = "DURATION",
        default_value = "2s",
        value_parser = humantime::parse_duration
    )]
    warmup: Duration,

    /// Prefix of the MQTT client ids; the connection number follows it.
    #[arg(
        long,
        env = "FIRMWARE_SIM_CLIENT_ID_PREFIX",
        value_name = "PREFIX",
        default_value = "firmware-sim-load-"
    )]
    client_id_prefix: String,

    /// Username for CONNECT (with --password).
    #[arg(
        long,
        env = "FIRMWARE_SIM_USERNAME",
        value_name = "NAME",
        requires = "password"
    )]
    username: Option<String>,

    /// Password for CONNECT (with --username).
    #[arg(
        long,
        env = "FIRMWARE_SIM_PASSWORD",
        value_name = "SECRET",
        requires = "username",
        hide_env_values = true
    )]
    password: Option<String>,

    /// Connect over TLS, checking the server's certificate against this CA bundle (PEM); the
    /// certificate must name the --broker host.
    #[arg(long, env = "FIRMWARE_SIM_TLS_CA", value_name = "PEM")]
    tls_ca: Option<PathBuf>,

    /// With --tls-ca: a client certificate (PEM) for servers that require one (with --tls-key).
    #[arg(long, env = "FIRMWARE_SIM_TLS_CERT", value_name = "PEM", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(
        long,
        env = "FIRMWARE_SIM_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Seed of the device models the metric values come from.
    #[arg(
        long,
        env = "FIRMWARE_SIM_SEED",
        value_name = "N",
        default_value_t = 42
    )]
    seed: u64,

    /// Time for every connection to get its CONNACK.
    #[arg(
        long,
        env = "FIRMWARE_SIM_CONNECT_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = humantime::parse_duration
    )]
    connect_timeout: Duration,

    /// How long to wait for outstanding PUBACKs after publishing stops; what is still missing
    /// then is reported as unacknowledged.
    #[arg(
        long,
        env = "FIRMWARE_SIM_DRAIN_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = humantime::parse_duration
    )]
    drain_timeout: Duration,

    /// Also write the results as JSON to this file.
    #[arg(long, env = "FIRMWARE_SIM_JSON", value_name = "FILE")]
    json: Option<PathBuf>,
}

impl LoadArgs {
    /// Runs the load, printing progress and the summary.
    pub(crate) async fn run(self) -> anyhow::Result<()> {
        let json = self.json.clone();
        let config = self.into_config();
        config.validate()?;
        eprintln!(
            "firmware-sim load: {} connections x {} in flight, {} devices, {} reading(s) per \
             message, QoS 1, to {}{}; warm-up {}, then {}",
            config.connections,
            config.inflight,
            config.devices,
            config.batch,
            config.broker,
            if config.tls.is_some() {
                " over TLS"
            } else {
                ""
            },
            humantime::format_duration(config.warmup),
            match config.messages {
                Some(n) => format!("{n} messages"),
                None => humantime::format_duration(config.duration).to_string(),
            }
        );

        let shutdown = CancellationToken::new();
        let done = CancellationToken::new();
        let interrupts = tokio::spawn(Interrupts::new(shutdown.clone()).run(done.clone()));
        let (progress, updates) = watch::channel(Sample {
            unix_ms: 0.0,
            published: 0,
            acked: 0,
        });
        let printer = tokio::spawn(print_progress(updates, done.clone()));
        let outcome = load::run(config, shutdown, Some(progress)).await;
        done.cancel();
        for task in [interrupts, printer] {
            task.await.context("output task failed")?;
        }
        let report = outcome?;
        println!("{}", report.summary());
        if let Some(path) = json {
            report
                .write_json(&path)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if !report.is_complete() {
            bail!(
                "{} of {} messages were not acknowledged{}",
                report.published - report.acked,
                report.published,
                if report.errors.is_empty() {
                    String::new()
                } else {
                    format!("; {} connection(s) failed", report.errors.len())
                }
            );
        }
        Ok(())
    }

    fn into_config(self) -> LoadConfig {
        LoadConfig {
            broker: self.target.broker,
            tls: self.tls_ca.map(|ca_file| load::LoadTls {
                ca_file,
                client: self.tls_cert.zip(self.tls_key),
            }),
            connections: self.connections,
            devices: self.devices,
            sites: self.spread.sites,
            inflight: self.inflight,
            mqtt_version: self.mqtt_version,
            format: self.format,
            batch: self.batch,
            duration: self.duration,
            messages: self.messages,
            rate: self.rate,
            warmup: self.warmup,
            client_id_prefix: self.client_id_prefix,
            login: self.username.zip(self.password),
            seed: self.seed,
            connect_timeout: self.connect_timeout,
            drain_timeout: self.drain_timeout,
        }
    }
}

/// `3.1.1` (or `311`, `4`) or `5`.
pub(super) fn parse_mqtt_version(text: &str) -> Result<load::MqttVersion, String> {
    match text {
        "3.1.1" | "311" | "4" => Ok(load::MqttVersion::V311),
        "5" | "5.0" => Ok(load::MqttVersion::V5),
        other => Err(format!("{other:?} is not an MQTT version: use 3.1.1 or 5")),
    }
}

/// `citytel` or `sparkplug`.
fn parse_format(text: &str) -> Result<load::LoadFormat, String> {
    match text {
        "citytel" => Ok(load::LoadFormat::Citytel),
        "sparkplug" => Ok(load::LoadFormat::Sparkplug),
        other => Err(format!(
            "{other:?} is not a payload format: use citytel or sparkplug"
        )),
    }
}

/// Prints the acknowledged rate of the last second to stderr, every second, until `done`.
async fn print_progress(mut updates: watch::Receiver<Sample>, done: CancellationToken) {
    let mut last: Option<Sample> = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = *updates.borrow_and_update();
        if let Some(prev) = last.filter(|p| now.unix_ms > p.unix_ms && p.unix_ms > 0.0) {
            let seconds = (now.unix_ms - prev.unix_ms) / 1e3;
            eprintln!(
                "  {:>9.0} msg/s acked, {:>7} in flight, {} acked in total",
                (now.acked - prev.acked) as f64 / seconds,
                now.published - now.acked,
                now.acked
            );
        }
        last = Some(now);
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
        args: LoadArgs,
    }

    fn config(args: &[&str]) -> LoadConfig {
        let argv = std::iter::once("load").chain(args.iter().copied());
        Wrapper::try_parse_from(argv)
            .expect("arguments parse")
            .args
            .into_config()
    }

    #[test]
    fn defaults_match_the_library_defaults() {
        assert_eq!(config(&[]), LoadConfig::default());
    }

    #[test]
    fn flags_reach_the_config() {
        let c = config(&[
            "--broker=mqtt://127.0.0.1:1999",
            "--connections=4",
            "--devices=8",
            "--inflight=65535",
            "--batch=10",
            "--messages=1000",
            "--rate=250.5",
            "--warmup=0s",
            "--client-id-prefix=bench-",
            "--username=u",
            "--password=p",
            "--tls-ca=/ca.pem",
        ]);
        assert_eq!(
            c.tls,
            Some(load::LoadTls {
                ca_file: "/ca.pem".into(),
                client: None
            })
        );
        assert_eq!(c.broker, BrokerAddr::new("127.0.0.1", 1999));
        assert_eq!(
            (c.connections, c.devices, c.inflight, c.batch),
            (4, 8, 65535, 10)
        );
        assert_eq!(c.messages, Some(1000));
        assert_eq!(c.rate, Some(250.5));
        assert_eq!(c.warmup, Duration::ZERO);
        assert_eq!(c.client_id_prefix, "bench-");
        assert_eq!(c.login, Some(("u".into(), "p".into())));
    }

    #[test]
    fn bad_values_are_rejected() {
        let argv = ["load", "--inflight=0"];
        assert!(Wrapper::try_parse_from(argv).is_err());
        let argv = ["load", "--username=u"];
        assert!(Wrapper::try_parse_from(argv).is_err());
    }
}
