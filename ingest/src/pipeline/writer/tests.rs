//! The writer on storage that runs out: a full disk pauses acknowledgements until space returns,
//! a real I/O error stops the writer, and a shutdown while paused acknowledges nothing. Faults
//! are injected into the WAL (`citytel_storage`'s `testing` feature). With alert rules in
//! force, a deadline that passes on a full disk waits for space, then fires at its own instant
//! and replays the same.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use citytel_storage::wal::{FaultPoint, FaultSwitch};
use prost::Message as _;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::pipeline::{Ack, AckToken, Inbound, Origin, Pipeline};

const ENOSPC: i32 = 28;
const EMFILE: i32 = 24;
const EIO: i32 = 5;
const DEVICE: &str = "cab-0001";

struct Rig {
    runtime: tokio::runtime::Runtime,
    db: Arc<Database>,
    faults: FaultSwitch,
    pipeline: Pipeline,
    status: watch::Receiver<Option<Pause>>,
    stop: CancellationToken,
    writer: std::thread::JoinHandle<Result<WriterStats, DbError>>,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = crate::config::load_str(None, &[])
        .unwrap()
        .validate()
        .unwrap();
    let (db, wal, _) = Database::open(dir.path(), &settings.store_options(Clock::System)).unwrap();
    let faults = wal.faults();
    let (pipeline, queue) = Pipeline::with_clock(settings.ingest.limits(), 1 << 20, Clock::System);
    let (durability, status) = Durability::channel();
    let stop = CancellationToken::new();
    let policy = CheckpointPolicy {
        interval: Duration::from_secs(3600),
        housekeeping: None,
        threads: 1,
        clock: Clock::System,
        runtime: runtime.handle().clone(),
        gate: None,
        stop: stop.clone(),
        durability,
        min_free_bytes: 0,
    };
    let writer = Writer::new(queue, wal, db.clone(), policy);
    let writer = std::thread::spawn(move || writer.run());
    Rig {
        runtime,
        db,
        faults,
        pipeline,
        status,
        stop,
        writer,
        _dir: dir,
    }
}

impl Rig {
    /// Submits one reading (sequence `seq`) at QoS 1; returns where its PUBACK arrives.
    fn publish(&self, seq: u64) -> mpsc::UnboundedReceiver<AckToken> {
        let now = crate::clock::Clock::System.now_ms();
        let batch = citytel_proto::v1::TelemetryBatch {
            device_id: DEVICE.into(),
            boot_id: 1,
            metric_names: vec!["t".into()],
            readings: vec![citytel_proto::v1::Reading {
                seq,
                time_unix_ms: now,
                values: vec![seq as f64],
            }],
            gateway_id: None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let token = AckToken::new(seq as u16, rumqttc::mqttbytes::QoS::AtLeastOnce);
        let inbound = Inbound {
            topic: format!("citytel/v1/s/cabinet/{DEVICE}/telemetry"),
            payload: Bytes::from(batch.encode_to_vec()),
            received_at_ms: now,
            origin: Origin::Endpoint,
            ack: Some(Ack::new(token, tx)),
            user_properties: None,
        };
        self.runtime
            .block_on(self.pipeline.submit(inbound))
            .unwrap();
        rx
    }

    fn wait_status(&mut self, want: Option<Pause>) {
        let status = &mut self.status;
        self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), status.wait_for(|p| *p == want))
                .await
                .expect("status within 10 s")
                .expect("writer alive");
        });
    }

    fn stored(&self) -> u64 {
        self.db
            .read()
            .registry()
            .get(DEVICE)
            .map_or(0, |d| d.readings_total)
    }

    fn finish(self) -> Result<WriterStats, DbError> {
        self.stop.cancel();
        drop(self.pipeline);
        self.writer.join().expect("writer thread")
    }
}

fn acked(runtime: &tokio::runtime::Runtime, rx: &mut mpsc::UnboundedReceiver<AckToken>) -> u16 {
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), rx.recv()).await })
        .expect("ack within 10 s")
        .expect("ack sent")
        .pkid
}

#[test]
fn a_full_disk_withholds_acknowledgements_until_space_returns() {
    for (point, errno, pause) in [
        (FaultPoint::WritePartly, ENOSPC, Pause::DiskFull),
        (FaultPoint::Sync, ENOSPC, Pause::DiskFull),
        (FaultPoint::Write, EMFILE, Pause::Descriptors),
    ] {
        let mut rig = rig();
        let mut first = rig.publish(1);
        assert_eq!(acked(&rig.runtime, &mut first), 1);

        rig.faults.fail_until_cleared(point, errno);
        let mut second = rig.publish(2);
        rig.wait_status(Some(pause));
        assert!(
            second.try_recv().is_err(),
            "{point:?}: nothing acknowledged"
        );
        assert_eq!(rig.stored(), 1, "{point:?}: nothing applied");

        // Space returns: the same group is committed, applied and acknowledged, once.
        rig.faults.clear();
        assert_eq!(acked(&rig.runtime, &mut second), 2);
        rig.wait_status(None);
        assert_eq!(rig.stored(), 2);
        let stats = rig.finish().expect("a clean stop");
        assert_eq!(stats.accepted, 2);
    }
}

#[test]
fn an_io_error_stops_the_writer_without_acknowledging() {
    let rig = rig();
    rig.faults.fail_next(FaultPoint::Sync, EIO);
    let mut rx = rig.publish(1);
    let result = rig.writer.join().expect("writer thread");
    assert!(matches!(result, Err(DbError::Wal(_))), "{result:?}");
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_shutdown_while_paused_acknowledges_nothing() {
    let mut rig = rig();
    rig.faults
        .fail_until_cleared(FaultPoint::WritePartly, ENOSPC);
    let mut rx = rig.publish(1);
    rig.wait_status(Some(Pause::DiskFull));
    let result = rig.finish();
    assert!(
        matches!(result, Err(DbError::Paused("disk_full"))),
        "{result:?}"
    );
    assert!(rx.try_recv().is_err());
}

/// (sequence, status, time) of every notification in the outbox.
fn notifications(db: &Database) -> Vec<(u64, &'static str, i64)> {
    db.read()
        .alerts()
        .outbox()
        .from(0, usize::MAX)
        .iter()
        .map(|n| (n.seq, n.status.as_str(), n.at_ms))
        .collect()
}

#[test]
fn an_alert_deadline_on_a_full_disk_waits_then_fires_at_its_own_instant_and_replays_the_same() {
    use crate::state::command::{Actor, Command, Outcome, Submitted};
    let mut rig = rig();
    let rules = "[[rule]]\nname = \"offline\"\nkind = \"state\"\nseverity = \"critical\"\nstates = [\"offline\"]\n";
    let outcome = rig.runtime.block_on(rig.pipeline.command(&Submitted {
        actor: Actor::default(),
        command: Command::SetAlertRules {
            source: rules.into(),
        },
    }));
    assert_eq!(outcome, Ok(Outcome::AlertRulesSet { rules: 1 }));

    // A device that reports every 100 ms, silent after its birth: offline 300 ms later.
    let now = Clock::System.now_ms();
    let birth = citytel_proto::v1::Status {
        device_id: DEVICE.into(),
        boot_id: 1,
        time_unix_ms: now,
        gateway_id: None,
        kind: Some(citytel_proto::v1::status::Kind::Birth(
            citytel_proto::v1::Birth {
                firmware_version: "1".into(),
                reporting_interval_ms: 100,
                ..Default::default()
            },
        )),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let inbound = Inbound {
        topic: format!("citytel/v1/s/cabinet/{DEVICE}/status"),
        payload: Bytes::from(birth.encode_to_vec()),
        received_at_ms: now,
        origin: Origin::Endpoint,
        ack: Some(Ack::new(
            AckToken::new(1, rumqttc::mqttbytes::QoS::AtLeastOnce),
            tx,
        )),
        user_properties: None,
    };
    rig.runtime.block_on(rig.pipeline.submit(inbound)).unwrap();
    assert_eq!(acked(&rig.runtime, &mut rx), 1);

    // The disk fills before the deadlines (late at 150 ms, offline at 300 ms): the first tick
    // that applies one cannot be made durable, and the writer pauses; while paused, no more
    // ticks are written, so the deadlines wait.
    rig.faults
        .fail_until_cleared(FaultPoint::WritePartly, ENOSPC);
    rig.wait_status(Some(Pause::DiskFull));
    std::thread::sleep(Duration::from_millis(400));
    assert!(!rig.writer.is_finished(), "the writer waits for space");

    // Space returns: the idle writer commits the buffered tick, resumes, and applies the
    // deadlines late but at their own instants: the alert fired when the device went offline.
    rig.faults.clear();
    rig.wait_status(None);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while notifications(&rig.db).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the alert fires");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(notifications(&rig.db), [(0, "firing", now + 300)]);
    rig.stop.cancel();
    drop(rig.pipeline);
    rig.writer
        .join()
        .expect("writer thread")
        .expect("a clean stop");
    let live = notifications(&rig.db);
    drop(rig.db);

    // The replay rebuilds the same notification, at the same instant.
    let settings = crate::config::load_str(None, &[])
        .unwrap()
        .validate()
        .unwrap();
    let (db, _wal, _) =
        Database::open(rig._dir.path(), &settings.store_options(Clock::System)).unwrap();
    assert_eq!(notifications(&db), live);
}
