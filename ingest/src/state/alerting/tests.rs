//! Alerting through the state, as the writer drives it: rules set by a command, devices heard,
//! ticks recorded in the WAL, a restart recorded too; opening the data directory again (from
//! the last checkpoint and the WAL after it) rebuilds exactly the notifications built live.

use citytel_proto::v1::{Birth, Reading, Status, TelemetryBatch, status};
use prost::Message as _;

use crate::alerts::outbox::Notification;
use crate::clock::Clock;
use crate::db::{Database, checkpoint};
use crate::journal::Entry;
use crate::state::command::{Actor, Command, Outcome, Submitted};
use crate::state::persist;

const RULES: &str = r#"
[[rule]]
name = "offline"
kind = "state"
severity = "critical"
states = ["offline"]
for = "1m"

[[rule]]
name = "hot"
kind = "threshold"
severity = "minor"
metric = "t"
op = ">"
value = 50.0

[[rule]]
name = "missing"
kind = "absence"
severity = "warning"
metric = "h"
after = "2m"
"#;

const T0: i64 = 1_700_000_000_000;
const S: i64 = 1_000;

fn birth(device: &str) -> (String, Vec<u8>) {
    let s = Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: 0,
        gateway_id: None,
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: "1".into(),
            reporting_interval_ms: 10_000,
            heartbeat_interval_ms: None,
            intermittent: None,
            location: None,
            ..Birth::default()
        })),
    };
    (
        format!("citytel/v1/docks/cabinet/{device}/status"),
        s.encode_to_vec(),
    )
}

fn telemetry(device: &str, seq: u64, at: i64, metrics: &[(&str, f64)]) -> (String, Vec<u8>) {
    let b = TelemetryBatch {
        device_id: device.into(),
        boot_id: 1,
        metric_names: metrics.iter().map(|(m, _)| m.to_string()).collect(),
        readings: vec![Reading {
            seq,
            time_unix_ms: at,
            values: metrics.iter().map(|(_, v)| *v).collect(),
        }],
        gateway_id: None,
    };
    (
        format!("citytel/v1/docks/cabinet/{device}/telemetry"),
        b.encode_to_vec(),
    )
}

/// What the scenario writes, in order: (time, entry bytes).
fn script() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut push = |entry: Entry<'_>| {
        let mut buf = Vec::new();
        entry.encode(&mut buf);
        out.push(buf);
    };
    let rules = persist::encode_command(&Submitted {
        actor: Actor::default(),
        command: Command::SetAlertRules {
            source: RULES.into(),
        },
    });
    push(Entry::Command {
        received_at_ms: T0,
        payload: &rules,
    });
    for d in ["cab-1", "cab-2"] {
        let (topic, payload) = birth(d);
        push(Entry::Message {
            received_at_ms: T0,
            topic: &topic,
            payload: &payload,
        });
    }
    for i in 0..40i64 {
        let at = T0 + i * 10 * S;
        // cab-1 stops at 100 s; cab-2 runs hot from 150 s to 250 s and loses "h" from 200 s.
        if i < 10 {
            let (topic, payload) = telemetry("cab-1", i as u64, at, &[("t", 20.0), ("h", 1.0)]);
            push(Entry::Message {
                received_at_ms: at,
                topic: &topic,
                payload: &payload,
            });
        }
        let t = if (15..25).contains(&i) { 60.0 } else { 30.0 };
        let metrics: Vec<(&str, f64)> = if i >= 20 {
            vec![("t", t)]
        } else {
            vec![("t", t), ("h", 2.0)]
        };
        let (topic, payload) = telemetry("cab-2", i as u64, at, &metrics);
        push(Entry::Message {
            received_at_ms: at,
            topic: &topic,
            payload: &payload,
        });
        if i == 30 {
            push(Entry::Started { at_ms: at + 5 * S });
        }
        push(Entry::Tick { at_ms: at + 9 * S });
    }
    out
}

fn notifications(db: &Database) -> Vec<(u64, String, i64, String)> {
    db.read()
        .alerts()
        .outbox()
        .from(0, usize::MAX)
        .iter()
        .map(|n: &std::sync::Arc<Notification>| {
            (
                n.seq,
                n.status.as_str().to_string(),
                n.at_ms - T0,
                format!("{} {}", n.alert.rule, n.alert.labels["device"]),
            )
        })
        .collect()
}

#[test]
fn reopening_rebuilds_the_notifications_built_live_from_the_checkpoint_and_the_wal() {
    let script = script();
    let end = T0 + 400 * S;
    for cut in [None, Some(12usize), Some(47), Some(80)] {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = format!("storage.data_dir={:?}", dir.path().display().to_string());
        let settings = crate::config::load_str(None, &[data_dir])
            .unwrap()
            .validate()
            .unwrap();
        // Live, the service opens the data directory before the script; it reopens after it.
        let live = {
            let options = settings.store_options(Clock::manual(T0));
            let (db, mut wal, _) = Database::open(dir.path(), &options).unwrap();
            for (i, bytes) in script.iter().enumerate() {
                let entry = Entry::decode(bytes).unwrap();
                wal.append_with(|buf| buf.extend_from_slice(bytes)).unwrap();
                wal.commit().unwrap();
                let applied = db.write().apply(&entry, None);
                if let Some(outcome) = applied.outcome {
                    assert_eq!(outcome, Outcome::AlertRulesSet { rules: 3 });
                }
                if cut == Some(i) {
                    checkpoint::run(&db, &mut wal, 1).unwrap();
                }
            }
            notifications(&db)
        };
        // From the script: cab-1's last reading is at 90 s, so it is offline at 120 s (three
        // 10 s intervals) and the rule fires 1 m later; cab-2 reads 60 from 150 s to 240 s; its
        // "h" was last received at 190 s, 2 m before 310 s. citytel's restart at 305 s changes
        // none of it: cab-2 is heard again at 310 s, and cab-1 stays offline.
        let expected = [
            (0, "firing", 150_000, "hot cab-2"),
            (1, "firing", 180_000, "offline cab-1"),
            (2, "resolved", 250_000, "hot cab-2"),
            (3, "firing", 310_000, "missing cab-2"),
        ];
        let expected: Vec<(u64, String, i64, String)> = expected
            .iter()
            .map(|(seq, status, at, what)| (*seq, status.to_string(), *at, what.to_string()))
            .collect();
        assert_eq!(live, expected, "live, checkpoint after entry {cut:?}");
        let options = settings.store_options(Clock::manual(end));
        let (db, _wal, _) = Database::open(dir.path(), &options).unwrap();
        assert_eq!(notifications(&db), live, "checkpoint after entry {cut:?}");
    }
}
