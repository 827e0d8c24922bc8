//! The sink against a fault-injecting HTTP server: every error class, splitting, holding,
//! backpressure, WAL retention and restarts, with a real WAL in a temporary directory.

mod faults;
mod retention;
mod server;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citytel_proto::v1::{Reading, TelemetryBatch};
use parking_lot::Mutex;
use prost::Message;

use super::{Handle, InfluxDbConfig, Options, start};
use crate::journal::Entry;
use crate::sink::line::{self, Batch, Tags};
use crate::sink::{DeadLetterFn, RejectedPoint};
use citytel_storage::wal::FsyncPolicy;
use citytel_storage::wal::{Wal, WalOptions};
use server::FaultServer;

/// Segments small enough that a test's data spans several.
const SEGMENT_BYTES: u64 = 16 * 1024;

/// A sink configuration for `server` with short waits.
fn config(server: &FaultServer) -> InfluxDbConfig {
    let mut config = crate::config::load_str(None, &[])
        .expect("defaults")
        .sink
        .influxdb;
    config.enabled = true;
    config.url = server.url();
    config.org = "test-org".into();
    config.bucket = "test-bucket".into();
    config.token_env = "CITYTEL_SINK_TEST_TOKEN_UNSET".into();
    config.token_file = None;
    config.batch_size = 50;
    config.linger = Duration::from_millis(5);
    config.request_timeout = Duration::from_millis(500);
    config.retry_initial = Duration::from_millis(2);
    config.retry_max = Duration::from_millis(20);
    config
}

/// Writes the token file and points `config` at it.
fn with_token(config: &mut InfluxDbConfig, dir: &Path) {
    let path = dir.join("token");
    std::fs::write(&path, format!("{}\n", server::TOKEN)).unwrap();
    config.token_file = Some(path);
}

/// A device's telemetry message.
struct Sent {
    topic: String,
    batch: TelemetryBatch,
    received_at_ms: i64,
}

/// `devices` devices with `readings` readings each, in messages of 5 readings.
fn fleet(devices: usize, readings: usize, first_ms: i64) -> Vec<Sent> {
    let mut out = Vec::new();
    for d in 0..devices {
        let device = format!("cab-{d:04}");
        for chunk in 0..readings.div_ceil(5) {
            let batch = TelemetryBatch {
                device_id: device.clone(),
                boot_id: 1,
                metric_names: vec!["temperature_c".into(), "power_w".into()],
                readings: (chunk * 5..(chunk * 5 + 5).min(readings))
                    .map(|i| Reading {
                        seq: i as u64,
                        time_unix_ms: first_ms + i as i64 * 1000,
                        values: vec![20.0 + i as f64 / 10.0, d as f64 + 0.5],
                    })
                    .collect(),
                gateway_id: None,
            };
            out.push(Sent {
                topic: format!("citytel/v1/site-{:02}/cabinet/{device}/telemetry", d % 3),
                received_at_ms: first_ms + (chunk as i64 * 5 + 4) * 1000,
                batch,
            });
        }
    }
    out
}

/// Appends `messages` to the WAL in `data_dir` (as the writer would) and returns the lines the
/// sink must deliver for them.
fn append(data_dir: &Path, messages: &[Sent]) -> Vec<String> {
    let options = WalOptions {
        segment_bytes: SEGMENT_BYTES,
        fsync: FsyncPolicy::Never,
    };
    let (mut wal, _) = Wal::open(&data_dir.join("wal"), options, 0, |_, _| {}).unwrap();
    let mut expected = Batch::default();
    for m in messages {
        let payload = m.batch.encode_to_vec();
        wal.append_with(|buf| {
            Entry::Message {
                received_at_ms: m.received_at_ms,
                topic: &m.topic,
                payload: &payload,
            }
            .encode(buf)
        })
        .unwrap();
        wal.commit().unwrap();
        let parsed = citytel_proto::topic::parse(&m.topic).unwrap();
        let tags = Tags {
            kind: parsed.kind,
            site: parsed.site,
            device_id: parsed.device_id,
        };
        line::append_telemetry(&tags, &m.batch, m.received_at_ms, 60_000, &mut expected);
    }
    (0..expected.len())
        .map(|i| expected.line(i).to_string())
        .collect()
}

/// Collected dead letters.
fn dead_letters() -> (DeadLetterFn, Arc<Mutex<Vec<RejectedPoint>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    (Arc::new(move |p| sink.lock().push(p)), got)
}

fn start_sink(data_dir: &Path, config: InfluxDbConfig, letters: DeadLetterFn) -> Handle {
    start(Options {
        config,
        data_dir: data_dir.to_path_buf(),
        dead_letters: letters,
    })
    .expect("sink starts")
}

/// Polls `done` until it holds; fails the test after a minute (a hang, not a slow run).
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}
