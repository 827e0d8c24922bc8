//! The load: `firmware-sim load` (the binary next to this one) as a child process, and the JSON
//! report it writes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use citytel_testkit::process::ChildGuard;

use crate::process;

/// How the generator runs.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `firmware-sim`.
    pub bin: PathBuf,
    /// Connections.
    pub connections: u32,
    /// Devices.
    pub devices: u32,
    /// In-flight window per connection.
    pub inflight: u16,
    /// Readings per message.
    pub batch: u32,
    /// Measured time.
    pub duration: Duration,
    /// Warm-up time.
    pub warmup: Duration,
    /// Connect over TLS, trusting this CA.
    pub tls_ca: Option<PathBuf>,
    /// Speak MQTT 5 instead of 3.1.1.
    pub mqtt5: bool,
    /// Publish Sparkplug B (each connection an edge node) instead of citytel's format.
    pub sparkplug: bool,
}

/// The part of `firmware-sim load --json` the harness uses.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadReport {
    /// The measured window.
    pub window: Window,
    /// Readings per second in the window.
    pub readings_per_s: f64,
    /// Every PUBLISH sent.
    pub published: u64,
    /// Every PUBLISH acknowledged.
    pub acked: u64,
    /// Never acknowledged.
    pub unacked: u64,
    /// Latency percentiles, ms.
    pub latency_ms: Latency,
    /// Connection errors.
    pub errors: Vec<String>,
    /// Cumulative counts every 100 ms.
    pub timeline: Vec<Sample>,
}

/// The measured window, wall clock.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Window {
    /// Start, ms since 1970.
    pub start_unix_ms: f64,
    /// End, ms since 1970.
    pub end_unix_ms: f64,
    /// Seconds.
    pub seconds: f64,
}

/// Publish-to-PUBACK latency, ms.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// Cumulative counts at one instant.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Sample {
    /// ms since 1970.
    pub unix_ms: f64,
    /// Sent so far.
    pub published: u64,
}

/// A running generator.
pub struct Generator {
    /// The process.
    pub guard: ChildGuard,
    json: PathBuf,
}

impl Generator {
    /// Starts `firmware-sim load` against `broker`; its log and JSON go to `dir`.
    pub fn start(spec: &LoadSpec, broker: &str, client_prefix: &str, dir: &Path) -> Result<Self> {
        let json = dir.join("load.json");
        let mut cmd = Command::new(&spec.bin);
        cmd.arg("load")
            .arg("--broker")
            .arg(broker)
            .arg(format!("--connections={}", spec.connections))
            .arg(format!("--devices={}", spec.devices))
            .arg(format!("--inflight={}", spec.inflight))
            .arg(format!("--batch={}", spec.batch))
            .arg(format!("--duration={}ms", spec.duration.as_millis()))
            .arg(format!("--warmup={}ms", spec.warmup.as_millis()))
            .arg(format!("--client-id-prefix={client_prefix}"))
            .arg("--json")
            .arg(&json);
        if let Some(ca) = &spec.tls_ca {
            cmd.arg("--tls-ca").arg(ca);
        }
        if spec.mqtt5 {
            cmd.arg("--mqtt-version=5");
        }
        if spec.sparkplug {
            cmd.arg("--format=sparkplug");
        }
        cmd.env("RUST_LOG", "warn");
        let guard = process::spawn("firmware-sim load", &mut cmd, &dir.join("load.log"), false)?;
        Ok(Generator { guard, json })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Waits for it to exit (checking `alive` meanwhile, e.g. that the server still runs) and
    /// reads its report. A non-zero exit (some messages unacknowledged) still yields the report.
    pub async fn finish(mut self, mut alive: impl FnMut() -> Result<()>) -> Result<LoadReport> {
        let status = loop {
            if let Some(status) = self.guard.try_wait()? {
                break status;
            }
            alive()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let text = match std::fs::read_to_string(&self.json) {
            Ok(text) => text,
            Err(_) => bail!(
                "firmware-sim load failed ({status}) without a report\n{}",
                self.guard.log_tail()
            ),
        };
        serde_json::from_str(&text).with_context(|| format!("parsing {}", self.json.display()))
    }
}
