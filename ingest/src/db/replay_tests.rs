//! A restart from a checkpoint (snapshot plus the WAL after it) builds the same state as
//! replaying every entry from the start: the same devices, series, latest values, deduplication
//! and device states and history, wherever the checkpoint falls.

use std::path::Path;

use citytel_proto::v1::{
    Attribute, Attributes, Birth, Death, DeathReason, Reading, Status, TelemetryBatch, status,
};
use prost::Message as _;

use super::{Database, checkpoint};
use crate::clock::Clock;
use crate::journal::{Connection, Entry};
use crate::state::State;

const CAB: &str = "citytel/v1/site-1/cabinet/cab-1";
const CELL: &str = "citytel/v1/site-2/small_cell/cell-1";
const SEN: &str = "citytel/v1/site-2/sensor/sen-1";

/// An entry as the writer journals it: (topic, payload) or a connection change or a tick.
enum Step {
    Message(String, Vec<u8>, i64),
    Connection(String, Connection, i64),
    Tick(i64),
}

impl Step {
    fn entry(&self) -> Entry<'_> {
        match self {
            Step::Message(topic, payload, at) => Entry::Message {
                received_at_ms: *at,
                topic,
                payload,
            },
            Step::Connection(topic, change, at) => Entry::Connection {
                received_at_ms: *at,
                change: *change,
                topic,
            },
            Step::Tick(at) => Entry::Tick { at_ms: *at },
        }
    }
}

fn birth(device: &str, boot: u64, at: i64) -> Step {
    let status = Status {
        device_id: device.into(),
        boot_id: boot,
        time_unix_ms: at,
        gateway_id: None,
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: format!("fw-{boot}"),
            reporting_interval_ms: 10_000,
            heartbeat_interval_ms: None,
            children: vec![],
            intermittent: None,
            location: None,
        })),
    };
    let base = topic_of(device);
    Step::Message(format!("{base}/status"), status.encode_to_vec(), at)
}

fn death(device: &str, boot: u64, at: i64) -> Step {
    let status = Status {
        device_id: device.into(),
        boot_id: boot,
        time_unix_ms: at,
        gateway_id: None,
        kind: Some(status::Kind::Death(Death {
            reason: DeathReason::Shutdown as i32,
            at_status_time: false,
        })),
    };
    Step::Message(
        format!("{}/status", topic_of(device)),
        status.encode_to_vec(),
        at,
    )
}

/// An attributes status of `device` sent at `at`: (name, value, time; 0 for `at`).
fn attributes(device: &str, boot: u64, at: i64, values: &[(&str, &str, i64)]) -> Step {
    let status = Status {
        device_id: device.into(),
        boot_id: boot,
        time_unix_ms: at,
        gateway_id: None,
        kind: Some(status::Kind::Attributes(Attributes {
            attributes: values
                .iter()
                .map(|(name, value, time)| Attribute {
                    name: (*name).into(),
                    value: (*value).into(),
                    datatype: "String".into(),
                    time_unix_ms: *time,
                })
                .collect(),
        })),
    };
    Step::Message(
        format!("{}/status", topic_of(device)),
        status.encode_to_vec(),
        at,
    )
}

/// Readings `seqs` of `device` (boot `boot`), one per 10 s from `at`, of `metrics`.
fn readings(
    device: &str,
    boot: u64,
    seqs: std::ops::Range<u64>,
    metrics: &[&str],
    at: i64,
) -> Step {
    let batch = TelemetryBatch {
        device_id: device.into(),
        boot_id: boot,
        metric_names: metrics.iter().map(|m| (*m).to_string()).collect(),
        readings: seqs
            .map(|seq| Reading {
                seq,
                time_unix_ms: at + seq as i64 * 10_000,
                values: (0..metrics.len())
                    .map(|i| seq as f64 + i as f64 / 4.0)
                    .collect(),
            })
            .collect(),
        gateway_id: None,
    };
    Step::Message(
        format!("{}/telemetry", topic_of(device)),
        batch.encode_to_vec(),
        at,
    )
}

fn topic_of(device: &str) -> &'static str {
    match device {
        "cab-1" => CAB,
        "cell-1" => CELL,
        _ => SEN,
    }
}

fn connection(device: &str, change: Connection, at: i64) -> Step {
    Step::Connection(format!("{}/status", topic_of(device)), change, at)
}

/// Three devices over a few minutes: connections, births, readings (with a redelivered batch, a
/// backfilled one and a reboot), attributes (one value older than the kept one), a death,
/// silence timeouts and ticks.
fn story() -> Vec<Step> {
    vec![
        connection("cab-1", Connection::Opened, 0),
        birth("cab-1", 1, 0),
        readings("cab-1", 1, 1..4, &["temp", "door"], 1_000),
        attributes("cab-1", 1, 1_500, &[("mode", "auto", 0)]),
        connection("cell-1", Connection::Opened, 2_000),
        birth("cell-1", 7, 2_000),
        readings("cell-1", 7, 1..3, &["rsrp", "temp", "load"], 3_000),
        readings("sen-1", 3, 1..2, &["pm25"], 4_000),
        Step::Tick(30_000),
        readings("cab-1", 1, 1..4, &["temp", "door"], 1_000),
        readings("cab-1", 1, 4..9, &["temp", "door"], 31_000),
        attributes(
            "cab-1",
            1,
            35_000,
            &[("mode", "manual", 34_000), ("serial", "X1", 0)],
        ),
        connection("cab-1", Connection::Lost, 40_000),
        readings(
            "cell-1",
            7,
            3..5,
            &["rsrp", "temp", "load", "power"],
            45_000,
        ),
        Step::Tick(120_000),
        readings("sen-1", 3, 2..3, &["pm25", "no2"], 10_000),
        connection("cab-1", Connection::Opened, 130_000),
        birth("cab-1", 2, 130_000),
        readings("cab-1", 2, 1..3, &["temp", "door"], 131_000),
        attributes("cab-1", 2, 132_000, &[("mode", "stale", 20_000)]),
        attributes("sen-1", 3, 133_000, &[("owner", "uni", 0)]),
        death("cell-1", 7, 140_000),
        connection("cell-1", Connection::Closed, 140_500),
        Step::Tick(400_000),
        readings("sen-1", 3, 3..6, &["pm25", "no2"], LAST_MS),
    ]
}

const DEVICES: [&str; 3] = ["cab-1", "cell-1", "sen-1"];

/// The time of the story's last entry, and the clock of its checkpoints: a checkpoint written
/// later would tell a restart that citytel watched the devices until then, which a full replay
/// of the WAL cannot know.
const LAST_MS: i64 = 401_000;

/// A device's deduplication state: per boot, the ranges of sequence numbers seen.
type Seqs = Vec<(u64, Vec<(u64, u64)>)>;

/// Everything a restart must bring back, in a comparable form.
#[derive(Debug, PartialEq)]
struct Seen {
    devices: Vec<crate::state::registry::DeviceRecord>,
    series: usize,
    latest: Vec<Vec<citytel_storage::series::LatestPoint>>,
    states: Vec<String>,
    history: Vec<String>,
    completeness: Vec<citytel_availability::Completeness>,
    seqs: Vec<Seqs>,
    /// Per device: (name, value, datatype, time).
    attributes: Vec<Vec<(String, String, String, i64)>>,
}

fn seen(state: &State) -> Seen {
    Seen {
        devices: state.registry().iter_after(None).cloned().collect(),
        series: state.series_count(),
        latest: DEVICES.iter().map(|d| state.latest(d)).collect(),
        states: DEVICES
            .iter()
            .map(|d| format!("{:?}", state.fleet().state(d)))
            .collect(),
        history: DEVICES
            .iter()
            .map(|d| {
                format!(
                    "{:?} {:?}",
                    state.fleet().transitions(d),
                    state.fleet().reboots(d)
                )
            })
            .collect(),
        completeness: DEVICES
            .iter()
            .map(|d| state.device(d).map(|v| v.completeness).unwrap_or_default())
            .collect(),
        seqs: DEVICES
            .iter()
            .map(|d| {
                state
                    .dedup()
                    .boots(d)
                    .iter()
                    .map(|(b, s)| (*b, s.as_ranges().to_vec()))
                    .collect()
            })
            .collect(),
        attributes: DEVICES
            .iter()
            .map(|d| {
                state
                    .attributes()
                    .of(d)
                    .into_iter()
                    .flatten()
                    .map(|(n, a)| (n.clone(), a.value.clone(), a.datatype.clone(), a.time_ms))
                    .collect()
            })
            .collect(),
    }
}

fn options(dir: &Path) -> super::StoreOptions {
    let data_dir = format!("storage.data_dir={:?}", dir.display().to_string());
    crate::config::load_str(None, &[data_dir])
        .unwrap()
        .validate()
        .unwrap()
        .store_options(Clock::manual(LAST_MS))
}

/// Writes `steps` through the WAL as the writer does, with a checkpoint after the first
/// `checkpoint_after` (none if `None`); returns what the live state held.
fn write(dir: &Path, steps: &[Step], checkpoint_after: Option<usize>) -> Seen {
    let (db, mut wal, _) = Database::open(dir, &options(dir)).unwrap();
    for (i, step) in steps.iter().enumerate() {
        let entry = step.entry();
        wal.append_with(|buf| entry.encode(buf)).unwrap();
        wal.commit().unwrap();
        db.write().apply(&entry, None);
        if checkpoint_after == Some(i + 1) {
            checkpoint::run(&db, &mut wal, 1).unwrap().unwrap();
        }
    }
    seen(&db.read())
}

#[test]
fn a_snapshot_plus_the_wal_after_it_rebuilds_what_a_full_replay_does() {
    let steps = story();
    let full_dir = tempfile::tempdir().unwrap();
    let live = write(full_dir.path(), &steps, None);
    assert_eq!(live.devices.len(), 3);
    assert_eq!(live.series, 8, "cab 2, cell 4, sen 2");
    let attribute = |n: &str, v: &str, t| (n.to_string(), v.to_string(), "String".to_string(), t);
    assert_eq!(
        live.attributes,
        [
            vec![
                attribute("mode", "manual", 34_000),
                attribute("serial", "X1", 35_000)
            ],
            vec![],
            vec![attribute("owner", "uni", 133_000)],
        ],
        "the newest value of each name, by its own time"
    );
    let (db, _wal, report) = Database::open(full_dir.path(), &options(full_dir.path())).unwrap();
    assert_eq!(report.replay.records, steps.len() as u64);
    let full = seen(&db.read());
    drop(db);
    assert_eq!(full.devices, live.devices);
    assert_eq!(full.latest, live.latest);

    for split in 1..=steps.len() {
        let dir = tempfile::tempdir().unwrap();
        let built = write(dir.path(), &steps, Some(split));
        assert_eq!(built, live, "live state with a checkpoint after {split}");
        let (db, _wal, report) = Database::open(dir.path(), &options(dir.path())).unwrap();
        assert_eq!(
            report.replay.records,
            (steps.len() - split) as u64,
            "only the entries after the checkpoint at {split} are replayed"
        );
        assert_eq!(
            seen(&db.read()),
            full,
            "snapshot after {split} entries plus the WAL after it"
        );
    }
}

#[test]
fn a_restart_after_a_restart_keeps_the_state_of_the_first() {
    let steps = story();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &steps, Some(steps.len() / 2));
    let first = {
        let (db, mut wal, _) = Database::open(dir.path(), &options(dir.path())).unwrap();
        checkpoint::run(&db, &mut wal, 1).unwrap().unwrap();
        seen(&db.read())
    };
    let (db, _wal, report) = Database::open(dir.path(), &options(dir.path())).unwrap();
    assert_eq!(report.replay.records, 0, "everything was checkpointed");
    let second = seen(&db.read());
    assert_eq!(second.devices, first.devices);
    assert_eq!(second.latest, first.latest);
    assert_eq!(second.seqs, first.seqs);
    assert_eq!(second.attributes, first.attributes);
}
