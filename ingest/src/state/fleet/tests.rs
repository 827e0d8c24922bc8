use std::sync::Arc;

use citytel_proto::v1::{Birth, Death, DeathReason, Status, status};

use super::*;
use citytel_availability::{Cause, DeviceState};

fn tracker() -> Fleet {
    Fleet::new(Policy::default(), Default::default())
}

fn birth(device: &str, boot: u64, interval_ms: u32, gateway: Option<&str>) -> Status {
    announcing(device, boot, interval_ms, gateway, None)
}

/// A birth that says (or not) whether the device connects intermittently.
fn announcing(
    device: &str,
    boot: u64,
    interval_ms: u32,
    gateway: Option<&str>,
    intermittent: Option<bool>,
) -> Status {
    Status {
        device_id: device.into(),
        boot_id: boot,
        time_unix_ms: 0,
        gateway_id: gateway.map(Into::into),
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: "fw".into(),
            reporting_interval_ms: interval_ms,
            heartbeat_interval_ms: None,
            children: vec![],
            intermittent,
            location: None,
        })),
    }
}

fn death(device: &str, boot: u64) -> Status {
    Status {
        device_id: device.into(),
        boot_id: boot,
        time_unix_ms: 0,
        gateway_id: None,
        kind: Some(status::Kind::Death(Death {
            reason: DeathReason::ConnectionLost as i32,
            at_status_time: false,
        })),
    }
}

fn ids() -> (Arc<str>, Arc<str>, Arc<str>, Arc<str>) {
    (
        "gw-1".into(),
        "gw-1-s01".into(),
        "sensor".into(),
        "gateway".into(),
    )
}

#[test]
fn a_dead_gateway_makes_its_silent_children_unreachable_not_offline() {
    let (gw, child, sensor, gateway) = ids();
    let mut t = tracker();
    t.link(&child, &gw);
    t.on_status(&gw, &gateway, &birth("gw-1", 1, 10_000, None), 0);
    t.on_status(
        &child,
        &sensor,
        &birth("gw-1-s01", 1, 10_000, Some("gw-1")),
        0,
    );
    t.on_status(&gw, &gateway, &death("gw-1", 1), 5_000);
    // At the gateway's Last Will, not at the child's own late deadline (15 s).
    let (state, last) = t.state("gw-1-s01").unwrap();
    assert_eq!(state, DeviceState::Unreachable);
    let last = last.unwrap();
    assert_eq!((last.at_ms, last.cause), (5_000, Cause::GatewayOffline));
    t.advance(60_000);
    assert_eq!(t.state("gw-1").unwrap().0, DeviceState::Offline);
    assert!(
        t.transitions("gw-1-s01")
            .iter()
            .all(|x| x.to != DeviceState::Offline)
    );
}

#[test]
fn a_gateway_offline_by_silence_takes_its_children_along_at_its_deadline() {
    let (gw, child, sensor, gateway) = ids();
    let mut t = tracker();
    t.link(&child, &gw);
    // The gateway reports every 10 s, its child every 60 s: the gateway is offline 30 s after
    // it was last heard, long before the child's own late deadline (90 s).
    t.on_status(&gw, &gateway, &birth("gw-1", 1, 10_000, None), 0);
    t.on_status(
        &child,
        &sensor,
        &birth("gw-1-s01", 1, 60_000, Some("gw-1")),
        0,
    );
    t.advance(200_000);
    let at = |device: &str| -> Vec<(i64, DeviceState, Cause)> {
        t.transitions(device)
            .iter()
            .map(|x| (x.at_ms, x.to, x.cause))
            .collect()
    };
    assert_eq!(
        at("gw-1"),
        [
            (0, DeviceState::Online, Cause::Birth),
            (15_000, DeviceState::Late, Cause::HeartbeatMissed),
            (30_000, DeviceState::Offline, Cause::Silent),
        ]
    );
    assert_eq!(
        at("gw-1-s01"),
        [
            (0, DeviceState::Online, Cause::Birth),
            (30_000, DeviceState::Unreachable, Cause::GatewayOffline),
        ]
    );
}

#[test]
fn a_gateway_back_after_citytels_restart_clears_its_childrens_flag() {
    let (gw, child, sensor, gateway) = ids();
    let mut t = tracker();
    t.link(&child, &gw);
    t.on_status(&gw, &gateway, &birth("gw-1", 1, 10_000, None), 0);
    t.on_status(
        &child,
        &sensor,
        &birth("gw-1-s01", 1, 10_000, Some("gw-1")),
        0,
    );
    t.on_status(&gw, &gateway, &death("gw-1", 1), 5_000);
    t.advance(60_000);
    assert_eq!(t.state("gw-1-s01").unwrap().0, DeviceState::Unreachable);
    // citytel restarts during the gateway's outage; the gateway then comes back (Unknown ->
    // Online), and later the child falls silent: that is the child's own fault now.
    t.ingester_started(100_000);
    t.on_status(&gw, &gateway, &birth("gw-1", 2, 10_000, None), 110_000);
    t.on_status(
        &child,
        &sensor,
        &birth("gw-1-s01", 2, 10_000, Some("gw-1")),
        110_000,
    );
    for now in (120_000..=200_000).step_by(10_000) {
        t.on_status(&gw, &gateway, &birth("gw-1", 2, 10_000, None), now);
    }
    t.advance(200_000);
    let (state, last) = t.state("gw-1-s01").unwrap();
    assert_eq!(state, DeviceState::Offline);
    assert_eq!(
        last.unwrap().at_ms,
        140_000,
        "three intervals after the last birth"
    );
}

#[test]
fn timeouts_apply_in_deadline_order_whatever_the_ticks() {
    // The same events, once with a tick every second and once with no tick at all (as a WAL
    // replay sees them), give the same history.
    let run = |tick: bool| {
        let mut t = tracker();
        let (gw, child, sensor, gateway) = ids();
        t.link(&child, &gw);
        let events: Vec<(i64, &Arc<str>, &Arc<str>, Status)> = vec![
            (0, &gw, &gateway, birth("gw-1", 1, 10_000, None)),
            (
                100,
                &child,
                &sensor,
                birth("gw-1-s01", 1, 20_000, Some("gw-1")),
            ),
            (200_000, &gw, &gateway, birth("gw-1", 2, 10_000, None)),
        ];
        let mut now = 0;
        for (at, device, kind, status) in &events {
            if tick {
                while now < *at {
                    now += 1_000;
                    t.advance(now.min(*at));
                }
            }
            t.on_status(device, kind, status, *at);
        }
        t.advance(300_000);
        (
            t.transitions("gw-1").to_vec(),
            t.transitions("gw-1-s01").to_vec(),
        )
    };
    assert_eq!(run(true), run(false));
    let (gw, child) = run(false);
    assert!(gw.iter().any(|x| x.to == DeviceState::Offline));
    assert!(child.iter().any(|x| x.to == DeviceState::Unreachable));
}

#[test]
fn a_restart_makes_devices_unknown_not_offline() {
    let (gw, _, _, gateway) = ids();
    let mut t = tracker();
    t.on_status(&gw, &gateway, &birth("gw-1", 1, 10_000, None), 1_000);
    t.ingester_started(500_000);
    let (state, last) = t.state("gw-1").unwrap();
    assert_eq!(state, DeviceState::Unknown);
    assert_eq!(last.unwrap().cause, Cause::IngesterRestart);
    // Silent after the restart: offline, counted from the restart.
    t.advance(10_000_000);
    assert_eq!(t.state("gw-1").unwrap().0, DeviceState::Offline);
}

#[test]
fn snapshots_and_history_restore_the_same_tracker() {
    let (gw, child, sensor, gateway) = ids();
    let mut t = tracker();
    t.link(&child, &gw);
    t.on_status(&gw, &gateway, &birth("gw-1", 1, 10_000, None), 0);
    t.on_status(
        &child,
        &sensor,
        &birth("gw-1-s01", 1, 10_000, Some("gw-1")),
        0,
    );
    t.on_readings(&child, &sensor, 1, 900, 1_000);
    let snapshot = t.snapshot(7);
    let changes = t.take_unflushed();
    let mut back = tracker();
    back.restore(snapshot.clone());
    for c in &changes {
        back.restore_history(c.device.clone(), c.change);
    }
    assert_eq!(back.snapshot(7), snapshot);
    assert_eq!(back.transitions("gw-1-s01"), t.transitions("gw-1-s01"));
    assert_eq!(back.clock_offset("gw-1-s01"), t.clock_offset("gw-1-s01"));
    // Both go on identically.
    t.on_status(&gw, &gateway, &death("gw-1", 1), 2_000);
    back.on_status(&gw, &gateway, &death("gw-1", 1), 2_000);
    t.advance(100_000);
    back.advance(100_000);
    assert_eq!(back.transitions("gw-1-s01"), t.transitions("gw-1-s01"));
}

#[test]
fn watchers_see_changes_as_they_happen() {
    let (gw, _, _, gateway) = ids();
    let mut t = tracker();
    let mut rx = t.watch();
    t.on_status(&gw, &gateway, &birth("gw-1", 1, 10_000, None), 0);
    let first = rx.try_recv().unwrap();
    assert_eq!(&*first.device, "gw-1");
    assert!(matches!(first.change, Change::Transition(x) if x.to == DeviceState::Online));
}

fn cabinet() -> (Arc<str>, Arc<str>) {
    ("cab-1".into(), "cabinet".into())
}

#[test]
fn a_connection_makes_an_unknown_device_online() {
    let (cab, kind) = cabinet();
    let mut t = tracker();
    t.connection_opened(&cab, &kind, 1_000);
    let (state, last) = t.state("cab-1").unwrap();
    assert_eq!(state, DeviceState::Online);
    let last = last.unwrap();
    assert_eq!(
        (last.at_ms, last.from, last.cause),
        (1_000, DeviceState::Unknown, Cause::Connected)
    );
    // The birth that follows on the connection changes nothing more.
    t.on_status(&cab, &kind, &birth("cab-1", 1, 10_000, None), 1_000);
    assert_eq!(t.transitions("cab-1").len(), 1);
}

#[test]
fn a_clean_disconnect_without_a_death_makes_the_device_offline() {
    let (cab, kind) = cabinet();
    let mut t = tracker();
    t.connection_opened(&cab, &kind, 0);
    t.on_status(&cab, &kind, &birth("cab-1", 1, 10_000, None), 0);
    t.connection_closed(&cab, &kind, true, 4_000);
    let (state, last) = t.state("cab-1").unwrap();
    assert_eq!(state, DeviceState::Offline);
    let last = last.unwrap();
    assert_eq!((last.at_ms, last.cause), (4_000, Cause::Disconnected));
}

#[test]
fn a_dropped_connection_goes_offline_once_with_or_without_a_will() {
    let (cab, kind) = cabinet();
    // With a Last Will: the endpoint publishes it before the connection's end.
    let mut t = tracker();
    t.connection_opened(&cab, &kind, 0);
    t.on_status(&cab, &kind, &birth("cab-1", 1, 10_000, None), 0);
    t.on_status(&cab, &kind, &death("cab-1", 1), 7_000);
    t.connection_closed(&cab, &kind, false, 7_000);
    let offline: Vec<_> = t
        .transitions("cab-1")
        .iter()
        .filter(|x| x.to == DeviceState::Offline)
        .map(|x| (x.at_ms, x.cause))
        .collect();
    assert_eq!(offline, vec![(7_000, Cause::LastWill)]);
    // Without one, the connection's end says it.
    let mut t = tracker();
    t.connection_opened(&cab, &kind, 0);
    t.connection_closed(&cab, &kind, false, 7_000);
    let last = t.state("cab-1").unwrap().1.unwrap();
    assert_eq!(
        (last.to, last.at_ms, last.cause),
        (DeviceState::Offline, 7_000, Cause::ConnectionLost)
    );
    assert_eq!(t.transitions("cab-1").len(), 2);
}

#[test]
fn a_takeover_opens_a_connection_without_closing_one() {
    // The endpoint queues no end for a connection taken over by the same client id: only the
    // new connection's start, which keeps an Online device Online.
    let (cab, kind) = cabinet();
    let mut t = tracker();
    t.connection_opened(&cab, &kind, 0);
    t.on_status(&cab, &kind, &birth("cab-1", 1, 10_000, None), 0);
    t.connection_opened(&cab, &kind, 5_000);
    t.on_status(&cab, &kind, &birth("cab-1", 2, 10_000, None), 5_000);
    assert!(
        t.transitions("cab-1")
            .iter()
            .all(|x| x.to != DeviceState::Offline)
    );
    assert_eq!(t.reboots("cab-1").len(), 1);
}

#[test]
fn a_wal_replay_rebuilds_the_connection_history_built_live() {
    use prost::Message as _;

    use crate::clock::Clock;
    use crate::db::Database;
    use crate::journal::{Connection, Entry};

    const STATUS: &str = "citytel/v1/site-1/cabinet/cab-1/status";
    let dir = tempfile::tempdir().unwrap();
    let data_dir = format!("storage.data_dir={:?}", dir.path().display().to_string());
    let settings = crate::config::load_str(None, &[data_dir])
        .unwrap()
        .validate()
        .unwrap();
    let options = settings.store_options(Clock::manual(100_000));
    fn connection(at: i64, change: Connection) -> Entry<'static> {
        Entry::Connection {
            received_at_ms: at,
            change,
            topic: STATUS,
        }
    }
    fn message(at: i64, payload: &[u8]) -> Entry<'_> {
        Entry::Message {
            received_at_ms: at,
            topic: STATUS,
            payload,
        }
    }
    let hello = birth("cab-1", 1, 10_000, None).encode_to_vec();
    let will = death("cab-1", 1).encode_to_vec();
    let entries = [
        connection(0, Connection::Opened),
        message(0, &hello),
        connection(5_000, Connection::Closed),
        connection(6_000, Connection::Opened),
        message(6_000, &hello),
        message(9_000, &will),
        connection(9_000, Connection::Lost),
        connection(20_000, Connection::Opened),
    ];

    let live = {
        let (db, mut wal, _) = Database::open(dir.path(), &options).unwrap();
        for entry in &entries {
            wal.append_with(|buf| entry.encode(buf)).unwrap();
            wal.commit().unwrap();
            db.write().apply(entry, None);
        }
        db.read().fleet().transitions("cab-1").to_vec()
    };
    let causes: Vec<(i64, DeviceState, Cause)> =
        live.iter().map(|x| (x.at_ms, x.to, x.cause)).collect();
    assert_eq!(
        causes,
        vec![
            (0, DeviceState::Online, Cause::Connected),
            (5_000, DeviceState::Offline, Cause::Disconnected),
            (6_000, DeviceState::Online, Cause::Connected),
            (9_000, DeviceState::Offline, Cause::LastWill),
            (20_000, DeviceState::Online, Cause::Connected),
        ]
    );

    let (db, _wal, _) = Database::open(dir.path(), &options).unwrap();
    let replayed = db.read().fleet().transitions("cab-1").to_vec();
    assert_eq!(replayed[..live.len()], live[..], "replayed as built live");
    assert!(
        replayed[live.len()..]
            .iter()
            .all(|x| x.cause == Cause::IngesterRestart),
        "then only citytel's own restart: {replayed:?}"
    );
}

fn sensor() -> (Arc<str>, Arc<str>) {
    ("sen-1".into(), "sensor".into())
}

/// A sleepy sensor's session at `at`: it connects, is born, reports, and disconnects cleanly.
fn session(t: &mut Fleet, at: i64, intermittent: Option<bool>) {
    let (id, kind) = sensor();
    t.connection_opened(&id, &kind, at);
    t.on_status(
        &id,
        &kind,
        &announcing("sen-1", 1, 60_000, None, intermittent),
        at,
    );
    t.on_readings(&id, &kind, 1, at, at);
    t.connection_closed(&id, &kind, true, at + 200);
}

#[test]
fn a_sleepy_sensor_that_says_so_is_online_between_its_sessions() {
    let mut t = tracker();
    for at in (0..=300_000).step_by(60_000) {
        session(&mut t, at, Some(true));
    }
    t.advance(330_000);
    let history: Vec<(i64, DeviceState, Cause)> = t
        .transitions("sen-1")
        .iter()
        .map(|x| (x.at_ms, x.to, x.cause))
        .collect();
    assert_eq!(history, [(0, DeviceState::Online, Cause::Connected)]);
    // It stops waking: late and then offline by silence, from its last session.
    t.advance(1_000_000);
    let last: Vec<(i64, DeviceState, Cause)> = t.transitions("sen-1")[1..]
        .iter()
        .map(|x| (x.at_ms, x.to, x.cause))
        .collect();
    assert_eq!(
        last,
        [
            (390_000, DeviceState::Late, Cause::HeartbeatMissed),
            (480_000, DeviceState::Offline, Cause::Silent),
        ]
    );
}

#[test]
fn a_sleepy_kind_is_online_between_sessions_unless_its_birth_says_otherwise() {
    let policy = Policy {
        intermittent_kinds: ["sensor".to_string()].into(),
        ..Policy::default()
    };
    let mut t = Fleet::new(policy.clone(), Default::default());
    session(&mut t, 0, None);
    session(&mut t, 60_000, None);
    assert_eq!(t.state("sen-1").unwrap().0, DeviceState::Online);
    assert_eq!(t.transitions("sen-1").len(), 1);

    let mut t = Fleet::new(policy, Default::default());
    session(&mut t, 0, Some(false));
    let (state, last) = t.state("sen-1").unwrap();
    assert_eq!(state, DeviceState::Offline);
    assert_eq!(last.unwrap().cause, Cause::Disconnected);
}

#[test]
fn a_wal_replay_after_a_checkpoint_remembers_what_the_birth_said() {
    use prost::Message as _;

    use crate::clock::Clock;
    use crate::db::{Database, checkpoint};
    use crate::journal::{Connection, Entry};

    const STATUS: &str = "citytel/v1/site-1/sensor/sen-1/status";
    let dir = tempfile::tempdir().unwrap();
    let data_dir = format!("storage.data_dir={:?}", dir.path().display().to_string());
    let settings = crate::config::load_str(None, &[data_dir])
        .unwrap()
        .validate()
        .unwrap();
    let options = settings.store_options(Clock::manual(100_000));
    let hello = announcing("sen-1", 1, 60_000, None, Some(true)).encode_to_vec();
    let connection = |at, change| Entry::Connection {
        received_at_ms: at,
        change,
        topic: STATUS,
    };
    let birth = |at| Entry::Message {
        received_at_ms: at,
        topic: STATUS,
        payload: &hello,
    };
    // The birth is in the checkpoint, the clean disconnect after it only in the WAL.
    let before = [connection(0, Connection::Opened), birth(0)];
    let after = [
        connection(500, Connection::Closed),
        connection(60_000, Connection::Opened),
        birth(60_000),
        connection(60_500, Connection::Closed),
    ];

    let live = {
        let (db, mut wal, _) = Database::open(dir.path(), &options).unwrap();
        for (i, entry) in before.iter().chain(&after).enumerate() {
            wal.append_with(|buf| entry.encode(buf)).unwrap();
            wal.commit().unwrap();
            db.write().apply(entry, None);
            if i + 1 == before.len() {
                checkpoint::run(&db, &mut wal, 1).unwrap();
            }
        }
        db.read().fleet().transitions("sen-1").to_vec()
    };
    assert_eq!(
        live.iter().map(|x| (x.to, x.cause)).collect::<Vec<_>>(),
        [(DeviceState::Online, Cause::Connected)]
    );

    let (db, _wal, _) = Database::open(dir.path(), &options).unwrap();
    let replayed = db.read().fleet().transitions("sen-1").to_vec();
    assert_eq!(replayed[..live.len()], live[..], "replayed as built live");
    assert!(
        replayed[live.len()..]
            .iter()
            .all(|x| x.cause == Cause::IngesterRestart),
        "then only citytel's own restart: {replayed:?}"
    );
}

#[test]
fn a_death_at_its_stated_time_is_recorded_then_and_before_later_thresholds_of_others() {
    let (gw, child, sensor, gateway) = ids();
    let mut t = tracker();
    t.on_status(&gw, &gateway, &birth("gw-1", 1, 10_000, None), 0);
    t.on_status(&child, &sensor, &birth("gw-1-s01", 1, 10_000, None), 0);
    t.on_readings(&child, &sensor, 1, 4_000, 4_000);
    // Dead at 8 s by its clock (a Sparkplug DDEATH), received at 20 s, past the late
    // thresholds of both (15 s).
    let stated = |time_unix_ms, at_status_time| Status {
        device_id: "gw-1-s01".into(),
        boot_id: 1,
        time_unix_ms,
        gateway_id: None,
        kind: Some(status::Kind::Death(Death {
            reason: DeathReason::Unspecified as i32,
            at_status_time,
        })),
    };
    t.on_status(&child, &sensor, &stated(8_000, true), 20_000);
    let history: Vec<(i64, DeviceState)> = t
        .transitions("gw-1-s01")
        .iter()
        .map(|x| (x.at_ms, x.to))
        .collect();
    assert_eq!(
        history,
        [(0, DeviceState::Online), (8_000, DeviceState::Offline)]
    );
    // The gateway's threshold, passed before the death arrived, still applies at its instant.
    t.advance(20_000);
    let (state, last) = t.state("gw-1").unwrap();
    assert_eq!((state, last.unwrap().at_ms), (DeviceState::Late, 15_000));

    // Without the flag, or without a time: at the receive time.
    let mut t = tracker();
    t.on_status(&child, &sensor, &birth("gw-1-s01", 1, 10_000, None), 0);
    t.on_status(&child, &sensor, &stated(8_000, false), 9_000);
    assert_eq!(t.state("gw-1-s01").unwrap().1.unwrap().at_ms, 9_000);
    let mut t = tracker();
    t.on_status(&child, &sensor, &birth("gw-1-s01", 1, 10_000, None), 0);
    t.on_status(&child, &sensor, &stated(0, true), 9_000);
    assert_eq!(t.state("gw-1-s01").unwrap().1.unwrap().at_ms, 9_000);
}
