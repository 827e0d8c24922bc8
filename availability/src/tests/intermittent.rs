//! The state machine and devices that connect intermittently (sleepy battery sensors): exact
//! states and times around their clean disconnects, with the flag from the birth or the kind.

use citytel_proto::v1::DeathReason;

use super::machine::{BOOT, announcing, death, machine, t};
use crate::{Cause, Change, DeviceMachine, DeviceState, Event, Policy, Transition};

use DeviceState::{Late, Offline, Online, Unknown};

/// A sleepy sensor's session at `at`: it connects, is born, sends a reading, disconnects.
fn session(m: &mut DeviceMachine, at: i64, intermittent: Option<bool>) -> Vec<Change> {
    let mut out = m.handle(&Event::ConnectionOpened, at);
    out.extend(m.handle(&announcing(BOOT, intermittent), at));
    out.extend(m.handle(&Event::Reading { boot_id: BOOT }, at));
    out.extend(m.handle(&Event::ConnectionClosed { clean: true }, at + 500));
    out
}

fn connected(at_ms: i64, from: DeviceState) -> Change {
    Change::Transition(Transition {
        at_ms,
        from,
        to: Online,
        cause: Cause::Connected,
        boot_id: None,
    })
}

#[test]
fn an_intermittent_device_stays_online_between_its_sessions() {
    let mut m = machine();
    assert_eq!(
        session(&mut m, 0, Some(true)),
        [connected(0, Unknown)],
        "the clean disconnect after its session is not a goodbye"
    );
    assert_eq!(m.state(), Online);
    // Asleep: its silence counts from the reading at 0, like any device's.
    assert_eq!(m.next_deadline(), Some(15_001));
    assert_eq!(session(&mut m, 10_000, Some(true)), []);
    assert_eq!(session(&mut m, 20_000, Some(true)), []);
    assert_eq!(m.next_deadline(), Some(35_001));
    // Then it stops waking up: late, then offline, by silence alone.
    assert_eq!(
        m.handle(&Event::Tick, 60_000),
        [
            t(35_000, Online, Late, Cause::HeartbeatMissed, BOOT),
            t(50_000, Late, Offline, Cause::Silent, BOOT),
        ]
    );
    // It wakes again: online at its connection.
    assert_eq!(
        session(&mut m, 70_000, Some(true)),
        [t(70_000, Offline, Online, Cause::Connected, BOOT)]
    );
}

#[test]
fn a_device_expected_to_stay_connected_is_offline_at_its_clean_disconnect() {
    for intermittent in [None, Some(false)] {
        let mut m = machine();
        assert_eq!(
            session(&mut m, 0, intermittent),
            [
                connected(0, Unknown),
                t(500, Online, Offline, Cause::Disconnected, BOOT),
            ],
            "birth says {intermittent:?}"
        );
    }
}

#[test]
fn an_intermittent_device_still_goes_offline_at_once_on_its_will_or_death() {
    let will = Event::Death {
        boot_id: BOOT,
        reason: DeathReason::ConnectionLost,
        via_will: true,
        at_ms: None,
    };
    for (goodbye, cause) in [
        (will, Cause::LastWill),
        (death(BOOT, DeathReason::PowerLoss), Cause::PowerLoss),
        (
            Event::ConnectionClosed { clean: false },
            Cause::ConnectionLost,
        ),
    ] {
        let mut m = machine();
        assert_eq!(m.handle(&announcing(BOOT, Some(true)), 0).len(), 1);
        assert_eq!(
            m.handle(&goodbye, 4_000),
            [t(4_000, Online, Offline, cause, BOOT)],
            "{goodbye:?}"
        );
        // A clean disconnect after the goodbye changes nothing more.
        assert_eq!(
            m.handle(&Event::ConnectionClosed { clean: true }, 4_000),
            []
        );
    }
}

#[test]
fn the_kind_default_applies_unless_the_birth_says_otherwise() {
    let policy = Policy {
        intermittent_kinds: ["sensor".to_string()].into(),
        ..Policy::default()
    };
    let mut sensor = DeviceMachine::new(&policy, "sensor");
    assert_eq!(session(&mut sensor, 0, None), [connected(0, Unknown)]);
    assert!(sensor.intermittent(), "the kind's default");
    // The birth wins over the kind's default.
    let mut wired = DeviceMachine::new(&policy, "sensor");
    assert_eq!(
        session(&mut wired, 0, Some(false)),
        [
            connected(0, Unknown),
            t(500, Online, Offline, Cause::Disconnected, BOOT)
        ]
    );
    let mut cabinet = DeviceMachine::new(&policy, "cabinet");
    assert!(!cabinet.intermittent());
    assert_eq!(
        session(&mut cabinet, 0, Some(true)),
        [connected(0, Unknown)]
    );
}

#[test]
fn the_flag_follows_the_latest_birth_and_survives_a_restore() {
    let mut m = machine();
    m.handle(&announcing(BOOT, Some(true)), 0);
    assert_eq!(m.snapshot().announced_intermittent, Some(true));
    let mut restored = DeviceMachine::restore(&Policy::default(), "cabinet", m.snapshot().clone());
    assert_eq!(
        restored.handle(&Event::ConnectionClosed { clean: true }, 1_000),
        []
    );
    // A later birth that does not say falls back to the kind's default (not intermittent).
    m.handle(&announcing(BOOT, None), 2_000);
    assert_eq!(m.snapshot().announced_intermittent, None);
    assert_eq!(
        m.handle(&Event::ConnectionClosed { clean: true }, 3_000),
        [t(3_000, Online, Offline, Cause::Disconnected, BOOT)]
    );
}
