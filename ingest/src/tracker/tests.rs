use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_proto::v1::{Birth, Death, DeathReason, Status, status};

use super::*;
use crate::availability::{Cause, DeviceState};

fn tracker() -> Tracker {
    Tracker::new(Policy::default(), BTreeMap::new(), Vec::new())
}

fn birth(device: &str, boot: u64, interval_ms: u32, gateway: Option<&str>) -> Status {
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
    t.advance(60_000);
    assert_eq!(t.state("gw-1").unwrap().0, DeviceState::Offline);
    let (state, last) = t.state("gw-1-s01").unwrap();
    assert_eq!(state, DeviceState::Unreachable);
    assert_eq!(last.unwrap().cause, Cause::GatewayOffline);
    assert!(
        t.transitions("gw-1-s01")
            .iter()
            .all(|x| x.to != DeviceState::Offline)
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
