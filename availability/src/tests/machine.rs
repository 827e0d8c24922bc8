//! Scripted event sequences with exact expected states and times. The default policy and a
//! 10 s reporting interval give a late threshold of 15 s and an offline threshold of 30 s.

use citytel_proto::v1::DeathReason;

use crate::machine::REMEMBERED_BOOTS;
use crate::{Cause, Change, DeviceMachine, DeviceState, Event, Policy, Reboot, Transition};

use DeviceState::{Late, Offline, Online, Unknown, Unreachable};

pub(super) const BOOT: u64 = 7;

pub(super) fn machine() -> DeviceMachine {
    DeviceMachine::new(&Policy::default(), "cabinet")
}

fn birth(boot_id: u64) -> Event {
    announcing(boot_id, None)
}

/// A birth of `boot_id` saying (or not) that the device connects intermittently.
pub(super) fn announcing(boot_id: u64, intermittent: Option<bool>) -> Event {
    Event::Birth {
        boot_id,
        reporting_interval_ms: 10_000,
        heartbeat_interval_ms: None,
        intermittent,
    }
}

pub(super) fn death(boot_id: u64, reason: DeathReason) -> Event {
    Event::Death {
        boot_id,
        reason,
        via_will: false,
        at_ms: None,
    }
}

pub(super) fn t(at_ms: i64, from: DeviceState, to: DeviceState, cause: Cause, boot: u64) -> Change {
    Change::Transition(Transition {
        at_ms,
        from,
        to,
        cause,
        boot_id: Some(boot),
    })
}

fn reboot(at_ms: i64, old_boot_id: u64, new_boot_id: u64) -> Change {
    Change::Reboot(Reboot {
        at_ms,
        old_boot_id,
        new_boot_id,
    })
}

/// A machine that received a birth of [`BOOT`] at t=0.
fn online() -> DeviceMachine {
    let mut m = machine();
    assert_eq!(
        m.handle(&birth(BOOT), 0),
        [t(0, Unknown, Online, Cause::Birth, BOOT)]
    );
    m
}

#[test]
fn silence_makes_late_then_offline_and_a_reading_brings_it_back() {
    let mut m = online();
    assert_eq!(m.next_deadline(), Some(15_001));
    assert_eq!(m.handle(&Event::Tick, 15_000), []);
    assert_eq!(
        m.handle(&Event::Tick, 15_001),
        [t(15_000, Online, Late, Cause::HeartbeatMissed, BOOT)]
    );
    assert_eq!(m.next_deadline(), Some(30_001));
    assert_eq!(
        m.handle(&Event::Tick, 31_000),
        [t(30_000, Late, Offline, Cause::Silent, BOOT)]
    );
    assert_eq!(m.next_deadline(), None);
    assert_eq!(
        m.handle(&Event::Reading { boot_id: BOOT }, 45_000),
        [t(45_000, Offline, Online, Cause::Reading, BOOT)]
    );
    assert_eq!(m.next_deadline(), Some(60_001));
}

#[test]
fn timeouts_are_stamped_at_the_threshold_whenever_they_are_noticed() {
    let mut m = online();
    assert_eq!(
        m.handle(&Event::Heartbeat { boot_id: BOOT }, 45_000),
        [
            t(15_000, Online, Late, Cause::HeartbeatMissed, BOOT),
            t(30_000, Late, Offline, Cause::Silent, BOOT),
            t(45_000, Offline, Online, Cause::Heartbeat, BOOT),
        ]
    );
}

#[test]
fn a_device_heard_exactly_at_the_threshold_is_on_time() {
    let mut m = online();
    assert_eq!(m.handle(&Event::Reading { boot_id: BOOT }, 15_000), []);
    assert_eq!(m.next_deadline(), Some(30_001));
    assert_eq!(
        m.handle(&Event::Tick, 40_000),
        [t(30_000, Online, Late, Cause::HeartbeatMissed, BOOT)]
    );
    assert_eq!(m.state(), Late);
}

#[test]
fn the_last_will_makes_the_device_offline_at_once() {
    let mut m = online();
    let will = Event::Death {
        boot_id: BOOT,
        reason: DeathReason::ConnectionLost,
        via_will: true,
        at_ms: None,
    };
    assert_eq!(
        m.handle(&will, 5_000),
        [t(5_000, Online, Offline, Cause::LastWill, BOOT)]
    );
    assert_eq!(m.next_deadline(), None);
    // The endpoint also reports the dropped connection: already Offline, nothing new.
    assert_eq!(
        m.handle(&Event::ConnectionClosed { clean: false }, 5_000),
        []
    );
    assert_eq!(m.handle(&Event::Tick, 1_000_000), []);
}

#[test]
fn each_death_reason_has_its_cause() {
    for (reason, cause) in [
        (DeathReason::Shutdown, Cause::Shutdown),
        (DeathReason::Reboot, Cause::Rebooting),
        (DeathReason::PowerLoss, Cause::PowerLoss),
        (DeathReason::ConnectionLost, Cause::ConnectionLost),
        (DeathReason::Unspecified, Cause::Death),
    ] {
        let mut m = online();
        assert_eq!(
            m.handle(&death(BOOT, reason), 1_000),
            [t(1_000, Online, Offline, cause, BOOT)]
        );
    }
}

#[test]
fn a_stale_death_never_overrides_a_newer_boot() {
    let mut m = online();
    assert_eq!(m.handle(&birth(8), 1_000), [reboot(1_000, BOOT, 8)]);
    assert_eq!(m.handle(&death(BOOT, DeathReason::Shutdown), 2_000), []);
    assert_eq!(m.state(), Online);
    assert_eq!(
        m.next_deadline(),
        Some(16_001),
        "the stale death kept no time"
    );
    assert_eq!(
        m.handle(&death(8, DeathReason::Shutdown), 3_000),
        [t(3_000, Online, Offline, Cause::Shutdown, 8)]
    );
}

#[test]
fn a_new_boot_emits_a_reboot_and_stays_online() {
    let mut m = online();
    assert_eq!(
        m.handle(&Event::Reading { boot_id: 8 }, 5_000),
        [reboot(5_000, BOOT, 8)]
    );
    assert_eq!((m.state(), m.snapshot().boot_id), (Online, Some(8)));
    // Buffered readings of the previous boot, resent after the reboot: alive, no reboot.
    assert_eq!(m.handle(&Event::Reading { boot_id: BOOT }, 6_000), []);
    assert_eq!(m.snapshot().boot_id, Some(8));
    assert_eq!(m.next_deadline(), Some(21_001));
}

#[test]
fn an_announced_reboot_is_an_outage_until_the_new_birth() {
    let mut m = online();
    assert_eq!(
        m.handle(&death(BOOT, DeathReason::Reboot), 1_000),
        [t(1_000, Online, Offline, Cause::Rebooting, BOOT)]
    );
    assert_eq!(
        m.handle(&birth(8), 9_000),
        [
            reboot(9_000, BOOT, 8),
            t(9_000, Offline, Online, Cause::Birth, 8)
        ]
    );
}

#[test]
fn only_the_last_few_boots_are_remembered() {
    let mut m = online();
    for boot in 8..=8 + REMEMBERED_BOOTS as u64 {
        m.handle(&birth(boot), 1_000);
    }
    let current = 8 + REMEMBERED_BOOTS as u64;
    assert_eq!(m.snapshot().previous_boots.len(), REMEMBERED_BOOTS);
    assert!(!m.snapshot().previous_boots.contains(&BOOT));
    assert_eq!(
        m.handle(&Event::Reading { boot_id: BOOT }, 2_000),
        [reboot(2_000, current, BOOT)]
    );
}

#[test]
fn a_device_is_unreachable_the_moment_its_gateway_goes_offline() {
    let mut m = online();
    // Nothing of it can arrive any more: unreachable at once, not at its own late deadline.
    assert_eq!(
        m.handle(&Event::GatewayOffline, 1_000),
        [t(1_000, Online, Unreachable, Cause::GatewayOffline, BOOT)]
    );
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.handle(&Event::Tick, 100_000), []);
    assert_eq!(
        m.handle(&Event::GatewayOnline, 100_000),
        [t(100_000, Unreachable, Unknown, Cause::GatewayOnline, BOOT)]
    );
    assert_eq!(m.next_deadline(), Some(130_001));
    assert_eq!(
        m.handle(&Event::Reading { boot_id: BOOT }, 110_000),
        [t(110_000, Unknown, Online, Cause::Reading, BOOT)]
    );
}

#[test]
fn a_device_still_silent_after_its_gateway_returns_is_offline() {
    let mut m = online();
    m.handle(&Event::GatewayOffline, 1_000);
    m.handle(&Event::GatewayOnline, 100_000);
    assert_eq!(
        m.handle(&Event::Tick, 130_001),
        [t(130_000, Unknown, Offline, Cause::Silent, BOOT)]
    );
}

#[test]
fn a_gateway_blip_is_a_blip_of_unreachability() {
    let mut m = online();
    assert_eq!(
        m.handle(&Event::GatewayOffline, 1_000),
        [t(1_000, Online, Unreachable, Cause::GatewayOffline, BOOT)]
    );
    assert_eq!(
        m.handle(&Event::GatewayOnline, 2_000),
        [t(2_000, Unreachable, Unknown, Cause::GatewayOnline, BOOT)]
    );
    // Silence counts from the gateway's return.
    assert_eq!(
        m.handle(&Event::Tick, 40_000),
        [t(32_000, Unknown, Offline, Cause::Silent, BOOT)]
    );
}

#[test]
fn a_late_device_behind_a_failing_gateway_becomes_unreachable_at_once() {
    let mut m = online();
    assert_eq!(
        m.handle(&Event::Tick, 20_000),
        [t(15_000, Online, Late, Cause::HeartbeatMissed, BOOT)]
    );
    assert_eq!(
        m.handle(&Event::GatewayOffline, 21_000),
        [t(21_000, Late, Unreachable, Cause::GatewayOffline, BOOT)]
    );
}

#[test]
fn the_thresholds_before_the_gateway_went_offline_still_apply_first() {
    let mut m = online();
    // The gateway's offline transition is stamped 25 s in (its Last Will): the device was
    // already late at 15 s, then unreachable from 25 s.
    assert_eq!(
        m.handle(&Event::GatewayOffline, 25_000),
        [
            t(15_000, Online, Late, Cause::HeartbeatMissed, BOOT),
            t(25_000, Late, Unreachable, Cause::GatewayOffline, BOOT),
        ]
    );
}

#[test]
fn an_offline_device_stays_offline_when_its_gateway_goes_offline() {
    let mut m = online();
    m.handle(&death(BOOT, DeathReason::PowerLoss), 1_000);
    assert_eq!(m.handle(&Event::GatewayOffline, 2_000), []);
    assert_eq!(m.state(), Offline);
    // Its gateway's return says nothing about the device itself.
    assert_eq!(m.handle(&Event::GatewayOnline, 3_000), []);
    assert_eq!(m.state(), Offline);
}

#[test]
fn an_unknown_device_behind_a_failing_gateway_becomes_unreachable_at_once() {
    let mut m = online();
    m.handle(
        &Event::IngesterStarted {
            stopped_at_ms: 5_000,
        },
        10_000,
    );
    assert_eq!(
        m.handle(&Event::GatewayOffline, 12_000),
        [t(12_000, Unknown, Unreachable, Cause::GatewayOffline, BOOT)]
    );
}

#[test]
fn a_device_heard_while_its_gateway_is_offline_is_unreachable_when_it_falls_silent() {
    let mut m = online();
    m.handle(&Event::GatewayOffline, 1_000);
    // Heard after all (say, buffered data through another route): online, and its silence
    // behind the offline gateway makes it unreachable again at its late deadline.
    assert_eq!(
        m.handle(&Event::Reading { boot_id: BOOT }, 2_000),
        [t(2_000, Unreachable, Online, Cause::Reading, BOOT)]
    );
    assert_eq!(
        m.handle(&Event::Tick, 40_000),
        [t(17_000, Online, Unreachable, Cause::GatewayOffline, BOOT)]
    );
}

#[test]
fn an_ingester_restart_makes_devices_unknown_not_offline() {
    let before = online();
    let mut m = DeviceMachine::restore(&Policy::default(), "cabinet", before.snapshot().clone());
    assert_eq!(m, before);
    let started = Event::IngesterStarted {
        stopped_at_ms: 5_000,
    };
    assert_eq!(
        m.handle(&started, 100_000),
        [t(5_000, Online, Unknown, Cause::IngesterRestart, BOOT)]
    );
    // Timeouts count from the restart, and silence leads to Offline, never Late.
    assert_eq!(m.next_deadline(), Some(130_001));
    assert_eq!(
        m.handle(&Event::Tick, 200_000),
        [t(130_000, Unknown, Offline, Cause::Silent, BOOT)]
    );
}

#[test]
fn an_ingester_restart_applies_the_timeouts_that_passed_before_it_stopped() {
    let mut m = online();
    let started = Event::IngesterStarted {
        stopped_at_ms: 20_000,
    };
    assert_eq!(
        m.handle(&started, 100_000),
        [
            t(15_000, Online, Late, Cause::HeartbeatMissed, BOOT),
            t(20_000, Late, Unknown, Cause::IngesterRestart, BOOT),
        ]
    );
    assert_eq!(
        m.handle(&Event::Reading { boot_id: BOOT }, 101_000),
        [t(101_000, Unknown, Online, Cause::Reading, BOOT)]
    );
}

#[test]
fn an_offline_device_is_unknown_after_a_restart_and_keeps_its_boot() {
    let mut m = online();
    m.handle(&death(BOOT, DeathReason::Shutdown), 1_000);
    let started = Event::IngesterStarted {
        stopped_at_ms: 50_000,
    };
    assert_eq!(
        m.handle(&started, 60_000),
        [t(50_000, Offline, Unknown, Cause::IngesterRestart, BOOT)]
    );
    assert_eq!(m.handle(&birth(9), 61_000)[0], reboot(61_000, BOOT, 9));
}

#[test]
fn connections_seen_by_the_endpoint_drive_the_state() {
    let mut m = machine();
    let connected = |at| {
        Change::Transition(Transition {
            at_ms: at,
            from: Offline,
            to: Online,
            cause: Cause::Connected,
            boot_id: None,
        })
    };
    let first = m.handle(&Event::ConnectionOpened, 0);
    assert!(matches!(
        first[..],
        [Change::Transition(Transition {
            from: Unknown,
            to: Online,
            ..
        })]
    ));
    let closed = m.handle(&Event::ConnectionClosed { clean: true }, 1_000);
    assert!(matches!(
        closed[..],
        [Change::Transition(Transition {
            cause: Cause::Disconnected,
            ..
        })]
    ));
    assert_eq!(
        m.handle(&Event::ConnectionOpened, 2_000),
        [connected(2_000)]
    );
    let lost = m.handle(&Event::ConnectionClosed { clean: false }, 3_000);
    assert!(matches!(
        lost[..],
        [Change::Transition(Transition {
            cause: Cause::ConnectionLost,
            ..
        })]
    ));
}

#[test]
fn the_expected_interval_comes_from_the_birth_then_the_kind() {
    let mut m = machine();
    let with_heartbeat = Event::Birth {
        boot_id: 1,
        reporting_interval_ms: 10_000,
        heartbeat_interval_ms: Some(60_000),
        intermittent: None,
    };
    m.handle(&with_heartbeat, 0);
    assert_eq!(m.next_deadline(), Some(90_001));

    let silent_birth = Event::Birth {
        boot_id: 1,
        reporting_interval_ms: 0,
        heartbeat_interval_ms: None,
        intermittent: None,
    };
    let mut sensor = DeviceMachine::new(&Policy::default(), "sensor");
    sensor.handle(&silent_birth, 0);
    assert_eq!(sensor.next_deadline(), Some(450_001));
    let mut other = DeviceMachine::new(&Policy::default(), "tram_stop");
    other.handle(&silent_birth, 0);
    assert_eq!(other.next_deadline(), Some(90_001));
}

#[test]
fn a_never_heard_device_has_no_deadline() {
    let mut m = machine();
    assert_eq!(m.next_deadline(), None);
    assert_eq!(m.handle(&Event::Tick, 1_000_000), []);
    assert_eq!(m.state(), Unknown);
}

#[test]
fn time_going_backwards_keeps_transitions_in_order() {
    let mut m = machine();
    m.handle(&birth(BOOT), 10_000);
    assert_eq!(m.handle(&Event::Reading { boot_id: BOOT }, 5_000), []);
    assert_eq!(
        m.handle(&death(BOOT, DeathReason::Shutdown), 4_000),
        [t(10_000, Online, Offline, Cause::Shutdown, BOOT)]
    );
}

/// A death that states when it happened (a Sparkplug DDEATH), arriving at `now`.
fn stated_death(at_ms: i64) -> Event {
    Event::Death {
        boot_id: BOOT,
        reason: DeathReason::Unspecified,
        via_will: false,
        at_ms: Some(at_ms),
    }
}

#[test]
fn a_death_at_its_stated_time_is_clamped_between_the_last_time_heard_and_its_arrival() {
    // Heard at 5 s; dead at 8 s by its own account, arriving at 9 s: recorded at 8 s.
    let mut m = online();
    m.handle(&Event::Reading { boot_id: BOOT }, 5_000);
    assert_eq!(
        m.handle(&stated_death(8_000), 9_000),
        [t(8_000, Online, Offline, Cause::Death, BOOT)]
    );
    assert_eq!(m.next_deadline(), None);

    // Stated before the last reading (a slow clock): at the reading, not before.
    let mut m = online();
    m.handle(&Event::Reading { boot_id: BOOT }, 5_000);
    assert_eq!(
        m.handle(&stated_death(1_000), 9_000),
        [t(5_000, Online, Offline, Cause::Death, BOOT)]
    );

    // Stated after its arrival (a fast clock): at the arrival.
    let mut m = online();
    assert_eq!(
        m.handle(&stated_death(60_000), 9_000),
        [t(9_000, Online, Offline, Cause::Death, BOOT)]
    );

    // Stated before a silence threshold it arrived after: dead then, never late.
    let mut m = online();
    assert_eq!(
        m.handle(&stated_death(12_000), 20_000),
        [t(12_000, Online, Offline, Cause::Death, BOOT)]
    );

    // A threshold already applied (by a tick) is the earliest the death can be recorded.
    let mut m = online();
    assert_eq!(
        m.handle(&Event::Tick, 16_000),
        [t(15_000, Online, Late, Cause::HeartbeatMissed, BOOT)]
    );
    assert_eq!(
        m.handle(&stated_death(12_000), 20_000),
        [t(15_000, Late, Offline, Cause::Death, BOOT)]
    );

    // Stated after a threshold that passed: late first, then dead at its time.
    let mut m = online();
    assert_eq!(
        m.handle(&stated_death(17_000), 20_000),
        [
            t(15_000, Online, Late, Cause::HeartbeatMissed, BOOT),
            t(17_000, Late, Offline, Cause::Death, BOOT)
        ]
    );

    // Without a stated time (or of another boot): as before.
    let mut m = online();
    assert_eq!(
        m.handle(&death(BOOT, DeathReason::Unspecified), 9_000),
        [t(9_000, Online, Offline, Cause::Death, BOOT)]
    );
}
