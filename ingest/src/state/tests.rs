//! The series, device and attribute limits, applied through the state as the writer does.

use citytel_proto::v1::Reading;
use prost::Message as _;

use std::collections::HashSet;

use super::*;
use crate::db::Database;
use crate::decode::{RejectReason, Rejection};

/// A database in `dir` with the default configuration, and its WAL (kept open by the caller).
fn open_db(dir: &std::path::Path) -> (std::sync::Arc<Database>, citytel_storage::wal::Wal) {
    let options = crate::config::load_str(None, &[])
        .unwrap()
        .validate()
        .unwrap()
        .store_options(crate::clock::Clock::System);
    let (db, wal, _) = Database::open(dir, &options).unwrap();
    (db, wal)
}

fn telemetry(device: &str, metrics: &[&str]) -> (String, Vec<u8>, Decoded) {
    let batch = TelemetryBatch {
        device_id: device.into(),
        boot_id: 1,
        metric_names: metrics.iter().map(|m| (*m).to_string()).collect(),
        readings: vec![Reading {
            seq: 1,
            time_unix_ms: 1_000,
            values: vec![1.0; metrics.len()],
        }],
        gateway_id: None,
    };
    let topic = format!("citytel/v1/s/cabinet/{device}/telemetry");
    (topic, batch.encode_to_vec(), Decoded::Telemetry(batch))
}

#[test]
fn the_series_limit_refuses_only_batches_adding_series_beyond_it() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _wal) = open_db(dir.path());
    let mut state = db.write();
    let too_many = |r: Result<(), Rejection>| r.unwrap_err().reason;

    // Limit 3: a device with 2 metrics is admitted and stored.
    let mut pending = HashSet::new();
    let (topic, payload, first) = telemetry("cab-1", &["t", "h"]);
    assert!(state.admit_series(&first, 3, &mut pending).is_ok());
    let entry = Entry::Message {
        received_at_ms: 1_000,
        topic: &topic,
        payload: &payload,
    };
    state.apply(&entry, Some(&first));
    assert_eq!(state.series_count(), 2);

    // A second device with 2 new metrics would make 4 series.
    let mut pending = HashSet::new();
    let (_, _, second) = telemetry("cab-2", &["t", "h"]);
    assert_eq!(
        too_many(state.admit_series(&second, 3, &mut pending)),
        RejectReason::TooManySeries
    );
    assert!(pending.is_empty());
    // Known series always pass; one new series still fits and is then taken, also for the
    // rest of the same commit group.
    assert!(state.admit_series(&first, 3, &mut pending).is_ok());
    let (_, _, one) = telemetry("cab-2", &["t"]);
    assert!(state.admit_series(&one, 3, &mut pending).is_ok());
    assert!(state.admit_series(&one, 3, &mut pending).is_ok());
    let (_, _, another) = telemetry("cab-3", &["t"]);
    assert_eq!(
        too_many(state.admit_series(&another, 3, &mut pending)),
        RejectReason::TooManySeries
    );
}

#[test]
fn the_device_limit_refuses_new_devices_status_and_connections_alike() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _wal) = open_db(dir.path());
    let mut state = db.write();

    let (topic, payload, first) = telemetry("cab-1", &["t"]);
    let mut pending = HashSet::new();
    assert!(state.admit_device(&topic, 2, &mut pending).is_ok());
    let entry = Entry::Message {
        received_at_ms: 1_000,
        topic: &topic,
        payload: &payload,
    };
    state.apply(&entry, Some(&first));
    assert_eq!(state.registry().len(), 1);

    // One more fits (a status message counts as much as telemetry), and is taken for the rest
    // of the group; a third device is refused, however it shows up.
    let mut pending = HashSet::new();
    let status = "citytel/v1/s/cabinet/cab-2/status";
    assert!(state.admit_device(status, 2, &mut pending).is_ok());
    assert!(state.admit_device(status, 2, &mut pending).is_ok());
    for topic in [
        "citytel/v1/s/cabinet/cab-3/status",
        "citytel/v1/s/cabinet/cab-3/telemetry",
    ] {
        let refused = state.admit_device(topic, 2, &mut pending).unwrap_err();
        assert_eq!(refused.reason, RejectReason::TooManyDevices);
    }
    // Known devices and topics naming no device always pass.
    assert!(state.admit_device(&topic, 2, &mut pending).is_ok());
    assert!(state.admit_device("not/a/device", 2, &mut pending).is_ok());
}

fn attributes_status(device: &str, values: &[(&str, &str)]) -> (String, Vec<u8>, Decoded) {
    let status = citytel_proto::v1::Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: 1_000,
        gateway_id: None,
        kind: Some(status::Kind::Attributes(citytel_proto::v1::Attributes {
            attributes: values
                .iter()
                .map(|(name, value)| citytel_proto::v1::Attribute {
                    name: (*name).into(),
                    value: (*value).into(),
                    datatype: String::new(),
                    time_unix_ms: 0,
                })
                .collect(),
        })),
    };
    let topic = format!("citytel/v1/s/cabinet/{device}/status");
    (topic, status.encode_to_vec(), Decoded::Status(status))
}

#[test]
fn the_attribute_limits_refuse_a_status_that_would_bring_a_device_beyond_them() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _wal) = open_db(dir.path());
    let mut state = db.write();
    let limits = attributes::AttributeLimits {
        max_per_device: 2,
        max_bytes_per_device: 100,
    };

    let (topic, payload, first) = attributes_status("cab-1", &[("mode", "auto")]);
    let mut pending = attributes::Pending::new();
    assert!(state.admit_attributes(&first, limits, &mut pending).is_ok());
    let entry = Entry::Message {
        received_at_ms: 1_000,
        topic: &topic,
        payload: &payload,
    };
    state.apply(&entry, Some(&first));
    let kept = state.device("cab-1").unwrap().attributes.unwrap();
    assert_eq!(kept["mode"].value, "auto");
    assert_eq!(kept["mode"].time_ms, 1_000, "the status's time");

    // A second name fits, and counts for the rest of the group: a third is refused.
    let mut pending = attributes::Pending::new();
    let (_, _, second) = attributes_status("cab-1", &[("serial", "X1")]);
    assert!(
        state
            .admit_attributes(&second, limits, &mut pending)
            .is_ok()
    );
    let (_, _, third) = attributes_status("cab-1", &[("owner", "uni")]);
    let refused = state
        .admit_attributes(&third, limits, &mut pending)
        .unwrap_err();
    assert_eq!(refused.reason, RejectReason::TooManyAttributes);
    // Too many bytes at once; other messages and other devices pass.
    let long = "x".repeat(100);
    let (_, _, big) = attributes_status("cab-2", &[("note", &long)]);
    let refused = state
        .admit_attributes(&big, limits, &mut pending)
        .unwrap_err();
    assert_eq!(refused.reason, RejectReason::TooManyAttributes);
    assert!(refused.detail.contains("bytes"), "{refused}");
    let (_, _, readings) = telemetry("cab-1", &["t"]);
    assert!(
        state
            .admit_attributes(&readings, limits, &mut pending)
            .is_ok()
    );
    let (_, _, other) = attributes_status("cab-3", &[("owner", "uni")]);
    assert!(state.admit_attributes(&other, limits, &mut pending).is_ok());
}
