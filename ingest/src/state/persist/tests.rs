//! The persisted layouts, pinned: today's encodings byte for byte, the layouts written before
//! record format 2 still decoding, and round trips of every record type.

use std::sync::Arc;

use bytes::Bytes;
use citytel_availability::{
    Cause, Change, DeviceState, Location, Reboot, SeqSet, Span, Transition, machine,
};
use proptest::prelude::*;

use super::*;
use crate::decode::RejectReason;
use crate::state::access::{ApiKey, Organisation, Role, Scope, token};
use crate::state::attributes::Attribute;
use crate::state::command::{Actor, Command, Submitted};
use crate::state::fleet::FleetSnapshot;
use crate::state::maintenance::Target;
use crate::state::registry::DeviceRecord;

fn transition() -> Change {
    Change::Transition(Transition {
        at_ms: 1_000,
        from: DeviceState::Online,
        to: DeviceState::Offline,
        cause: Cause::LastWill,
        boot_id: Some(7),
    })
}

#[test]
fn a_history_record_has_the_documented_layout() {
    let bytes = encode_change(&transition());
    // tag, version 2, variant 0 (transition), at_ms 1000 zigzag varint (2000 = d0 0f),
    // from online (2), to offline (4), cause last_will (9), Some(7).
    assert_eq!(bytes, [0xc1, 2, 0, 0xd0, 0x0f, 2, 4, 9, 1, 7]);
    assert_eq!(decode_change(&bytes).unwrap(), transition());
}

#[test]
fn a_history_record_written_before_format_2_still_decodes() {
    // postcard of the old `Change::Transition(Transition { at_ms, from, to, cause, boot_id })`,
    // enums as variant indexes: online = 1, offline = 3, last_will = 8.
    let legacy = [0u8, 0xd0, 0x0f, 1, 3, 8, 1, 7];
    assert_eq!(decode_change(&legacy).unwrap(), transition());
    // A reboot: variant 1, at_ms 5 (10), old boot 1, new boot 2.
    let reboot = Change::Reboot(Reboot {
        at_ms: 5,
        old_boot_id: 1,
        new_boot_id: 2,
    });
    assert_eq!(decode_change(&[1, 10, 1, 2]).unwrap(), reboot);
}

fn letter() -> DeadLetter {
    DeadLetter {
        received_at_ms: 1_700_000_000_000,
        reason: RejectReason::Malformed,
        topic: "t".into(),
        detail: "d".into(),
        payload: Bytes::from_static(b"xy"),
    }
}

#[test]
fn a_dead_letter_has_the_documented_layout_and_the_old_one_still_decodes() {
    let bytes = encode_dead_letter(&letter());
    let time = [0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62];
    let mut want = vec![0xc1, 2];
    want.extend(time);
    want.extend([
        RejectReason::Malformed.code(),
        1,
        b't',
        1,
        b'd',
        2,
        b'x',
        b'y',
    ]);
    assert_eq!(bytes, want);
    assert_eq!(decode_dead_letter(&bytes).unwrap(), letter());
    // Before format 2: the same fields without tag and version.
    assert_eq!(decode_dead_letter(&want[2..]).unwrap(), letter());
}

fn submitted(command: Command) -> Submitted {
    Submitted {
        actor: Actor {
            org: "o".into(),
            key: "k".into(),
        },
        command,
    }
}

#[test]
fn a_command_has_the_documented_layout() {
    let command = submitted(Command::DeleteMaintenance { id: 3 });
    let bytes = encode_command(&command);
    // tag, version, actor org "o", actor key "k", variant 1, id 3.
    assert_eq!(bytes, [0xc1, 2, 1, b'o', 1, b'k', 1, 3]);
    assert_eq!(decode_command(&bytes).unwrap(), command);
}

#[test]
fn the_alert_commands_are_appended_variants() {
    let ack = submitted(Command::AckAlert {
        id: 3,
        by: "x".into(),
    });
    // ..., variant 5, id 3, by "x".
    assert_eq!(
        encode_command(&ack),
        [0xc1, 2, 1, b'o', 1, b'k', 5, 3, 1, b'x']
    );
    let expire = submitted(Command::ExpireSilence { id: 4 });
    assert_eq!(encode_command(&expire)[6..], [7, 4]);
    let rules = submitted(Command::SetAlertRules { source: "r".into() });
    assert_eq!(encode_command(&rules)[6..], [8, 1, b'r']);
}

fn key() -> ApiKey {
    let (id, _, hash) = token::generate();
    ApiKey {
        id,
        org: "council".into(),
        role: Role::Operator,
        scope: Scope {
            districts: vec!["north".into()],
            metrics: Some(vec!["no2_ugm3".into()]),
            ..Scope::default()
        },
        name: "dashboard".into(),
        hash,
        created_ms: 5,
        expires_ms: Some(10),
        revoked_ms: None,
    }
}

#[test]
fn access_commands_and_audit_records_round_trip() {
    let org = Organisation {
        id: "council".into(),
        name: "City Council".into(),
        licence: "CC BY 4.0".into(),
        created_ms: 1,
    };
    let key = key();
    for command in [
        Command::CreateOrganisation(org),
        Command::CreateKey(key.clone()),
        Command::RevokeKey { id: key.id },
    ] {
        let command = submitted(command);
        assert_eq!(decode_command(&encode_command(&command)).unwrap(), command);
    }
    let record = crate::state::access::audit::AuditRecord {
        seq: 7,
        at_ms: 9,
        org: "council".into(),
        key: "0123456789ab".into(),
        method: "RevokeKey".into(),
        target: "key 0123456789ab".into(),
        result: "ok".into(),
    };
    assert_eq!(decode_audit(&encode_audit(&record)).unwrap(), record);
}

#[test]
fn unknown_versions_and_garbage_are_errors_not_panics() {
    assert!(matches!(
        decode_change(&[0xc1, 9, 0]),
        Err(PersistError::Version { found: 9, .. })
    ));
    assert!(matches!(decode_change(&[]), Err(PersistError::Empty(_))));
    assert!(decode_change(&[0xc1, 2, 0, 0xff]).is_err());
    assert!(matches!(
        decode_snapshot(&[7]),
        Err(PersistError::Version { found: 7, .. })
    ));
    assert!(decode_command(&[1, 2, 3]).is_err());
    assert!(decode_dead_letter(&[0xc1]).is_err());
    // A transition with a state code no version defines.
    assert!(matches!(
        decode_change(&[0xc1, 2, 0, 0, 99, 4, 9, 0]),
        Err(PersistError::Invalid(_))
    ));
}

fn snapshot() -> Snapshot {
    let mut seqs = SeqSet::default();
    for s in [1, 2, 3, 7] {
        seqs.insert(s);
    }
    Snapshot {
        wal_segment: 4,
        devices: vec![DeviceRecord {
            device_id: "cab-1".into(),
            kind: "cabinet".into(),
            site: "s".into(),
            first_seen_ms: 1,
            last_seen_ms: 2,
            firmware_version: Some("1.0".into()),
            boot_id: Some(9),
            gateway_id: None,
            reporting_interval_ms: Some(60_000),
            readings_total: 4,
            metrics: [Arc::from("t")].into_iter().collect(),
            location: Some(Location::new(0.5, -3.0).unwrap()),
            district: None,
        }],
        dedup: vec![("cab-1".into(), vec![(9, seqs)])],
        latest: vec![(0, 2, 1.5)],
        dead_letter_counts: vec![(1, 3)],
        dirty_days: vec![(0, 0)],
        dead_letter_seq: 3,
        fleet: FleetSnapshot {
            machines: vec![
                (
                    "cab-1".into(),
                    "cabinet".into(),
                    machine::Snapshot {
                        state: DeviceState::Online,
                        since_ms: Some(5),
                        boot_id: Some(9),
                        announced_interval_ms: Some(60_000),
                        silent_since_ms: Some(5),
                        ..machine::Snapshot::default()
                    },
                ),
                (
                    "sen-1".into(),
                    "sensor".into(),
                    machine::Snapshot {
                        state: DeviceState::Online,
                        silent_since_ms: Some(6),
                        announced_intermittent: Some(true),
                        ..machine::Snapshot::default()
                    },
                ),
            ],
            ..FleetSnapshot::default()
        },
        maintenance: Some(vec![MaintenanceWindow {
            id: 1 << 32,
            target: Target::Site("s".into()),
            span: Span::new(10, 20),
            reason: "r".into(),
        }]),
        orgs: vec![Organisation {
            id: "council".into(),
            name: "Council".into(),
            licence: String::new(),
            created_ms: 3,
        }],
        keys: vec![key()],
        audit_seq: 12,
        alerts: alerts(),
        attributes: vec![(
            "cab-1".into(),
            [(
                "mode".to_string(),
                Attribute {
                    value: "auto".into(),
                    datatype: "String".into(),
                    time_ms: 7,
                },
            )]
            .into_iter()
            .collect(),
        )],
    }
}

/// An alert engine's state with one of everything.
fn alerts() -> crate::alerts::snapshot::AlertsSnapshot {
    use crate::alerts::episode::{Ack, Episode, Target};
    use crate::alerts::outbox::{AlertInfo, Notification, Status};
    use crate::alerts::rule::{Severity, TargetKind};
    use crate::alerts::silence::{MatchOp, Matcher, Silence};
    use crate::alerts::snapshot::{AlertsSnapshot, OpenAlert};
    use crate::alerts::{Recovery, ResolvedAlert};
    let info = Arc::new(AlertInfo {
        id: 4,
        rule: "offline".into(),
        severity: Severity::Major,
        labels: [("alertname".to_string(), "offline".to_string())].into(),
        fingerprint: 99,
        annotations: [("summary".to_string(), "down".to_string())].into(),
        starts_at_ms: 1_000,
    });
    let target = Target {
        kind: TargetKind::Device,
        id: "cab-1".into(),
    };
    AlertsSnapshot {
        rules_source: "[[rule]]\nname = \"offline\"\nkind = \"state\"\nseverity = \"major\"\nstates = [\"offline\"]\n".into(),
        now_ms: 5_000,
        next_id: 5,
        next_silence: 2,
        next_seq: 3,
        open: vec![OpenAlert {
            rule: "offline".into(),
            target: target.clone(),
            episode: Episode {
                id: 4,
                active_since: 900,
                fired_at: Some(1_000),
                clearing_since: None,
                value: Some(1.5),
                notified: Some(2),
                ack: Some(Ack {
                    by: "ops".into(),
                    at_ms: 1_100,
                }),
            },
            info: Some(info.clone()),
        }],
        recovery: vec![(
            "cab-1".into(),
            Recovery {
                down: true,
                recovered_ms: Some(10),
            },
        )],
        absence: vec![("offline".into(), "cab-1".into(), 77)],
        buckets: vec![("offline".into(), "cab-1".into(), vec![(1, 2, 3)])],
        silences: vec![Silence {
            id: 1,
            matchers: vec![Matcher::new("site", MatchOp::Regex, "dock.*").unwrap()],
            starts_ms: 0,
            ends_ms: 9,
            created_by: "ops".into(),
            comment: "c".into(),
            created_ms: 0,
        }],
        outbox: vec![Notification {
            seq: 2,
            status: Status::Firing,
            at_ms: 1_000,
            alert: info.clone(),
        }],
        resolved: vec![ResolvedAlert {
            info,
            target,
            kind: Some("cabinet".into()),
            site: Some("docks".into()),
            district: None,
            active_since_ms: 1,
            fired_at_ms: 2,
            resolved_at_ms: 3,
            value: None,
            notified: true,
            ack: None,
        }],
    }
}

/// `s` in snapshot layout 3 (what the release before alerting wrote).
fn layout_3(s: &Snapshot) -> Vec<u8> {
    let mut bytes = vec![3];
    bytes.extend(postcard::to_stdvec(&v3::SnapshotV3::from(s)).unwrap());
    bytes
}

#[test]
fn a_snapshot_round_trips() {
    let s = snapshot();
    let bytes = encode_snapshot(&s);
    assert_eq!(bytes[0], 6);
    assert_eq!(decode_snapshot(&bytes).unwrap(), s);
}

/// `s` in snapshot layout 4 (what the release before device locations wrote).
fn layout_4(s: &Snapshot) -> Vec<u8> {
    let mut bytes = vec![4];
    bytes.extend(postcard::to_stdvec(&v4::SnapshotV4::from(s)).unwrap());
    bytes
}

/// `s` without device locations (what layouts before 5 decode to).
fn without_locations(mut s: Snapshot) -> Snapshot {
    for d in &mut s.devices {
        d.location = None;
    }
    s.attributes.clear();
    s
}

/// `s` in snapshot layout 5 (what the release before device attributes wrote).
fn layout_5(s: &Snapshot) -> Vec<u8> {
    let mut bytes = vec![5];
    bytes.extend(postcard::to_stdvec(&v5::SnapshotV5::from(s)).unwrap());
    bytes
}

#[test]
fn a_snapshot_has_layout_5_followed_by_the_device_attributes() {
    let s = snapshot();
    let bytes = encode_snapshot(&s);
    let base = layout_5(&s);
    assert_eq!(
        &bytes[1..base.len()],
        &base[1..],
        "layout 5's snapshot first"
    );
    // One device, "cab-1", with one attribute: ("mode", "auto", "String", 7 zigzag = 14).
    let mut tail = vec![1, 5];
    tail.extend(b"cab-1");
    tail.extend([1, 4]);
    tail.extend(b"mode");
    tail.push(4);
    tail.extend(b"auto");
    tail.push(6);
    tail.extend(b"String");
    tail.push(14);
    assert_eq!(&bytes[base.len()..], &tail[..]);
    let mut without = s.clone();
    without.attributes.clear();
    assert_eq!(
        decode_snapshot(&base).unwrap(),
        without,
        "a layout 5 snapshot decodes with no attributes"
    );
    // Attributes of a device the registry does not hold make the snapshot invalid.
    let mut bad = bytes.clone();
    let at = base.len() + 2;
    bad[at..at + 5].copy_from_slice(b"cab-9");
    assert_eq!(
        decode_snapshot(&bad),
        Err(PersistError::Invalid("attributes of an unknown device"))
    );
}

#[test]
fn a_snapshot_has_layout_4_followed_by_the_device_locations() {
    let s = snapshot();
    let bytes = layout_5(&s);
    let base = layout_4(&s);
    assert_eq!(
        &bytes[1..base.len()],
        &base[1..],
        "layout 4's snapshot first"
    );
    // One device located: "cab-1" (length 5) at latitude 0.5, longitude -3.0 (f64, little endian).
    let mut tail = vec![1, 5, b'c', b'a', b'b', b'-', b'1'];
    tail.extend(0.5f64.to_le_bytes());
    tail.extend((-3.0f64).to_le_bytes());
    assert_eq!(&bytes[base.len()..], &tail[..]);
    assert_eq!(
        decode_snapshot(&base).unwrap(),
        without_locations(s),
        "a layout 4 snapshot decodes with no locations"
    );
}

#[test]
fn a_location_of_no_device_or_out_of_range_is_an_error() {
    let s = snapshot();
    let base = layout_4(&s);
    let with = |device: &[u8], latitude: f64| {
        let mut bytes = base.clone();
        bytes[0] = 5;
        bytes.extend([1, device.len() as u8]);
        bytes.extend(device);
        bytes.extend(latitude.to_le_bytes());
        bytes.extend(0.0f64.to_le_bytes());
        decode_snapshot(&bytes)
    };
    assert!(with(b"cab-1", 1.0).is_ok());
    assert_eq!(
        with(b"cab-9", 1.0),
        Err(PersistError::Invalid("location of an unknown device"))
    );
    assert_eq!(
        with(b"cab-1", 95.0),
        Err(PersistError::Invalid("device location"))
    );
}

#[test]
fn a_snapshot_has_layout_3_followed_by_the_alert_engine() {
    let s = snapshot();
    let bytes = encode_snapshot(&s);
    let base = layout_3(&s);
    assert_eq!(
        &bytes[1..base.len()],
        &base[1..],
        "layout 3's snapshot first"
    );
    let mut want = without_locations(s);
    want.alerts = Default::default();
    assert_eq!(
        decode_snapshot(&base).unwrap(),
        want,
        "a layout 3 snapshot decodes with no rules and no alerts"
    );
}

#[test]
fn a_layout_3_snapshot_has_layout_2_followed_by_what_births_said() {
    let s = snapshot();
    let bytes = layout_3(&s);
    let base = postcard::to_stdvec(&v2::SnapshotV2::from(&s)).unwrap();
    assert_eq!(
        &bytes[1..=base.len()],
        &base[..],
        "layout 2's snapshot first"
    );
    // One device stated it: "sen-1" (length 5) connects intermittently (true).
    assert_eq!(
        &bytes[1 + base.len()..],
        &[1, 5, b's', b'e', b'n', b'-', b'1', 1]
    );
}

#[test]
fn a_layout_2_snapshot_still_decodes_with_nothing_stated() {
    let s = snapshot();
    let mut bytes = vec![2];
    bytes.extend(postcard::to_stdvec(&v2::SnapshotV2::from(&s)).unwrap());
    let mut want = without_locations(s);
    want.alerts = Default::default();
    for (_, _, m) in &mut want.fleet.machines {
        m.announced_intermittent = None;
    }
    assert_eq!(decode_snapshot(&bytes).unwrap(), want);
}

#[test]
fn a_stated_intermittence_of_no_machine_is_an_error() {
    let mut s = snapshot();
    s.fleet.machines.retain(|(d, ..)| &**d == "cab-1");
    let mut bytes = layout_3(&s);
    bytes.truncate(bytes.len() - 1);
    bytes.extend([1, 5, b's', b'e', b'n', b'-', b'1', 1]);
    assert_eq!(
        decode_snapshot(&bytes),
        Err(PersistError::Invalid(
            "intermittence of a device without a machine"
        ))
    );
}

proptest! {
    #[test]
    fn commands_round_trip(
        device in proptest::option::of("[a-z0-9-]{1,20}"),
        start in any::<i64>(),
        end in any::<i64>(),
        reason in "\\PC{0,100}",
        id in any::<u64>(),
    ) {
        let target = match device {
            Some(d) => Target::Device(d),
            None => Target::Site("site".into()),
        };
        for command in [
            Command::SetMaintenance { target: target.clone(), span: Span::new(start, end), reason: reason.clone() },
            Command::DeleteMaintenance { id },
            Command::AckAlert { id, by: reason.clone() },
            Command::CreateSilence {
                matchers: vec![("site".into(), crate::alerts::silence::MatchOp::NotRegex, reason.clone())],
                starts_ms: start,
                ends_ms: end,
                created_by: reason.clone(),
                comment: String::new(),
            },
            Command::ExpireSilence { id },
            Command::SetAlertRules { source: reason.clone() },
        ] {
            let command = submitted(command);
            prop_assert_eq!(decode_command(&encode_command(&command)).unwrap(), command);
        }
    }

    #[test]
    fn history_records_round_trip(at in any::<i64>(), from in 1u8..=5, to in 1u8..=5, cause in 1u8..=16, boot in any::<Option<u64>>()) {
        let change = Change::Transition(Transition {
            at_ms: at,
            from: DeviceState::from_code(from).unwrap(),
            to: DeviceState::from_code(to).unwrap(),
            cause: Cause::from_code(cause).unwrap(),
            boot_id: boot,
        });
        prop_assert_eq!(decode_change(&encode_change(&change)).unwrap(), change);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_change(&bytes);
        let _ = decode_dead_letter(&bytes);
        let _ = decode_command(&bytes);
        let _ = decode_snapshot(&bytes);
    }
}
