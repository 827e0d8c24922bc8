//! Restarts, new rules and acknowledgements.

use citytel_availability::DeviceState;

use super::{Lab, M, T0, n};
use crate::alerts::outbox::Status::{Firing, Resolved};
use crate::alerts::view::Phase;

const OFFLINE: &str = r#"
[[rule]]
name = "offline"
kind = "state"
severity = "critical"
states = ["offline"]
for = "5m"
"#;

#[test]
fn a_restart_keeps_a_firing_alert_without_a_second_notification_and_drops_pending_ones() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.device("cab-2", "cabinet", "docks");
    lab.online("cab-1", T0);
    lab.online("cab-2", T0);
    lab.offline("cab-1", T0 + M);
    lab.advance(T0 + 8 * M);
    lab.offline("cab-2", T0 + 8 * M);
    // citytel stops at 9 and is back at 20: both devices are unknown from 9.
    lab.restart(T0 + 9 * M, T0 + 20 * M);
    assert_eq!(
        lab.alerts.open().len(),
        1,
        "the pending alert of cab-2 is dropped"
    );
    // Silence measured from the restart: both offline again at 23; cab-1's alert carries on,
    // cab-2's is pending from 23 and fires at 28.
    lab.change(
        "cab-1",
        DeviceState::Offline,
        T0 + 23 * M,
        citytel_availability::Cause::Silent,
    );
    lab.change(
        "cab-2",
        DeviceState::Offline,
        T0 + 23 * M,
        citytel_availability::Cause::Silent,
    );
    lab.advance(T0 + 40 * M);
    lab.online("cab-1", T0 + 41 * M);
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "offline", "cab-1", 6.0, 6.0),
            n(Firing, "offline", "cab-2", 28.0, 28.0),
            n(Resolved, "offline", "cab-1", 41.0, 6.0),
        ]
    );
}

#[test]
fn a_restart_during_downtime_raises_nothing() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.online("cab-1", T0);
    lab.restart(T0 + M, T0 + 60 * M);
    lab.advance(T0 + 62 * M);
    lab.online("cab-1", T0 + 62 * M);
    assert_eq!(lab.sent(), vec![]);
}

#[test]
fn new_rules_keep_unchanged_alerts_resolve_removed_ones_and_start_from_current_states() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.offline("cab-1", T0);
    lab.advance(T0 + 10 * M);
    assert_eq!(lab.sent().len(), 1);
    // Same condition, new severity and annotation: the alert carries on.
    let relabelled =
        OFFLINE.replace("critical", "major") + "annotations = { summary = \"down\" }\n";
    lab.set_rules(&relabelled, T0 + 11 * M);
    assert_eq!(lab.sent().len(), 1);
    assert_eq!(lab.alerts.open().len(), 1);
    // A changed condition: the old alert resolves; the new rule starts from the device's
    // current state (offline since T0), so it fires at once, stamped T0 + 2m.
    let changed = OFFLINE
        .replace("5m", "2m")
        .replace("\"offline\"\nkind", "\"down\"\nkind");
    lab.set_rules(&changed, T0 + 12 * M);
    lab.advance(T0 + 12 * M + 1);
    assert_eq!(
        lab.sent(),
        vec![
            n(Firing, "offline", "cab-1", 5.0, 5.0),
            n(Resolved, "offline", "cab-1", 12.0, 5.0),
            n(Firing, "down", "cab-1", 2.0, 2.0),
        ]
    );
    // No rules at all: everything resolves.
    lab.set_rules("", T0 + 13 * M);
    assert_eq!(lab.sent().len(), 4);
    assert!(!lab.alerts.has_rules());
}

#[test]
fn an_acknowledgement_is_kept_with_the_alert_and_its_resolution() {
    let mut lab = Lab::new(OFFLINE);
    lab.device("cab-1", "cabinet", "docks");
    lab.offline("cab-1", T0);
    lab.advance(T0 + 6 * M);
    let id = lab.alerts.open()[0].1.id;
    let (alerts, world) = (
        &mut lab.alerts,
        &super::View {
            devices: &lab.devices,
            districts: &lab.districts,
            maintenance: &lab.maintenance,
            times_read: &lab.times_read,
        },
    );
    let view = alerts
        .ack(id, "council/ab12".into(), T0 + 7 * M, world)
        .unwrap();
    assert_eq!(view.phase, Phase::Firing);
    assert_eq!(view.ack.as_ref().map(|a| a.at_ms), Some(T0 + 7 * M));
    assert!(alerts.ack(id + 100, "x".into(), T0, world).is_err());
    lab.online("cab-1", T0 + 8 * M);
    let resolved = lab.alerts.resolved().next().unwrap();
    assert_eq!(
        resolved.ack.as_ref().map(|a| a.by.as_str()),
        Some("council/ab12")
    );
}
