//! Paged answers: every device and every latest value exactly once across the pages of
//! `ListDevices` and `ListLatest`, also while devices register between pages, and no
//! `ListLatest` page near gRPC's 4 MiB message limit however large the page asked for; a
//! device's attributes, only those named like a metric the caller's scope sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_proto::v1::{self, Reading, TelemetryBatch};
use prost::Message as _;

use super::*;
use crate::clock::Clock;
use crate::db::Database;
use crate::decode::Decoded;
use crate::journal::Entry;
use crate::state::access::Scope;

fn open(dir: &std::path::Path) -> Arc<Database> {
    let options = crate::config::load_str(None, &[])
        .unwrap()
        .validate()
        .unwrap()
        .store_options(Clock::manual(1_000_000));
    Database::open(&dir.join("data"), &options).unwrap().0
}

/// Stores one reading of every metric of `device`, the values `value`, `value + 1`, ...
fn report(state: &mut State, device: &str, metrics: &[String], at: i64, value: f64) {
    let batch = TelemetryBatch {
        device_id: device.into(),
        boot_id: 1,
        metric_names: metrics.to_vec(),
        readings: vec![Reading {
            seq: u64::try_from(at).unwrap(),
            time_unix_ms: at,
            values: (0..metrics.len()).map(|i| value + i as f64).collect(),
        }],
        gateway_id: None,
    };
    let topic = format!("citytel/v1/site-1/sensor/{device}/telemetry");
    let payload = batch.encode_to_vec();
    let entry = Entry::Message {
        received_at_ms: at,
        topic: &topic,
        payload: &payload,
    };
    state.apply(&entry, Some(&Decoded::Telemetry(batch)));
}

fn metrics(n: usize, name_len: usize) -> Vec<String> {
    (0..n).map(|i| format!("{i:0>name_len$}")).collect()
}

/// Every device's latest values, as `ListLatest` should answer them.
fn expected(state: &State) -> BTreeMap<String, Vec<v1::LatestValue>> {
    state
        .registry()
        .iter_after(None)
        .map(|d| {
            let values = state.latest(&d.device_id).into_iter().map(latest_to_wire);
            (d.device_id.to_string(), values.collect())
        })
        .collect()
}

fn everyone(state: &State) -> Visible {
    Visible::of(&Scope::default(), state)
}

#[test]
fn every_device_and_latest_value_comes_once_across_pages_while_devices_register() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let names = metrics(3, 4);
    let mut at = 1_000_000;
    for i in 0..1000 {
        at += 1;
        report(&mut db.write(), &format!("m-{i:04}"), &names, at, i as f64);
    }
    let before = expected(&db.read());

    // ListLatest, pages of 70, with a device registering before and one after the cursor
    // between pages.
    let (mut seen, mut token, mut pages) = (BTreeMap::new(), String::new(), 0);
    let mut added_after = Vec::new();
    loop {
        let answer = {
            let state = db.read();
            let req = v1::ListLatestRequest {
                page_size: 70,
                page_token: token.clone(),
                ..Default::default()
            };
            list_latest(&state, &req, &everyone(&state)).unwrap()
        };
        pages += 1;
        assert!(answer.devices.len() <= 70);
        for d in answer.devices {
            assert!(d.device_id > token, "{} after {token}", d.device_id);
            token.clone_from(&d.device_id);
            assert!(seen.insert(d.device_id, d.values).is_none());
        }
        if answer.next_page_token.is_empty() {
            break;
        }
        assert_eq!(answer.next_page_token, token);
        let mut state = db.write();
        at += 1;
        report(&mut state, &format!("a-{pages:04}"), &names, at, -1.0);
        let later = format!("z-{pages:04}");
        report(&mut state, &later, &names, at, -2.0);
        added_after.push(later);
    }
    assert!(pages > 1000 / 70, "{pages} pages");
    for (device, values) in &before {
        let got = seen
            .get(device)
            .unwrap_or_else(|| panic!("{device} missing"));
        assert_eq!(got, values, "{device}");
    }
    for device in &added_after {
        assert_eq!(
            seen[device].len(),
            3,
            "{device} registered ahead of the cursor"
        );
    }
    assert!(seen.keys().all(|d| !d.starts_with("a-")));
    assert_eq!(seen.len(), before.len() + added_after.len());

    // ListDevices the same way, with its total.
    let (mut listed, mut token) = (Vec::new(), String::new());
    loop {
        let answer = {
            let state = db.read();
            let req = v1::ListDevicesRequest {
                page_size: 333,
                page_token: token.clone(),
                ..Default::default()
            };
            list(&state, &req, &everyone(&state)).unwrap()
        };
        assert_eq!(answer.total as usize, db.read().registry().len());
        for d in answer.devices {
            assert!(d.device_id > token);
            token.clone_from(&d.device_id);
            listed.push(d.device_id);
        }
        if answer.next_page_token.is_empty() {
            break;
        }
        at += 1;
        report(&mut db.write(), &format!("zz-{at}"), &names, at, 0.0);
    }
    let registry: Vec<String> = db
        .read()
        .registry()
        .iter_after(None)
        .map(|d| d.device_id.to_string())
        .collect();
    assert_eq!(listed, registry, "every device once, in order");
}

#[test]
fn explicit_ids_and_filters_page_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let names = metrics(2, 2);
    for i in 0..9 {
        report(
            &mut db.write(),
            &format!("d-{i}"),
            &names,
            1_000_000 + i,
            0.0,
        );
    }
    let state = db.read();
    let selector = v1::DeviceSelector {
        device_ids: ["d-7", "d-1", "d-3", "d-1", "d-5", "d-8"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    let (mut got, mut token) = (Vec::new(), String::new());
    loop {
        let req = v1::ListLatestRequest {
            devices: Some(selector.clone()),
            page_size: 2,
            page_token: token.clone(),
        };
        let answer = list_latest(&state, &req, &everyone(&state)).unwrap();
        got.extend(answer.devices.iter().map(|d| d.device_id.clone()));
        if answer.next_page_token.is_empty() {
            break;
        }
        token = answer.next_page_token;
    }
    assert_eq!(got, ["d-1", "d-3", "d-5", "d-7", "d-8"]);
    let too_big = v1::ListLatestRequest {
        page_size: 10_001,
        ..Default::default()
    };
    assert!(list_latest(&state, &too_big, &everyone(&state)).is_err());
}

#[test]
fn large_pages_stay_well_under_the_grpc_message_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    // 400 metrics of 40-byte names: about 25 KB of latest values per device, 300 devices.
    let names = metrics(400, 40);
    for i in 0..300 {
        report(
            &mut db.write(),
            &format!("big-{i:03}"),
            &names,
            1_000_000 + i,
            0.0,
        );
    }
    let state = db.read();
    let (mut values, mut pages, mut token) = (0, 0, String::new());
    loop {
        let req = v1::ListLatestRequest {
            page_size: 10_000,
            page_token: token.clone(),
            ..Default::default()
        };
        let answer = list_latest(&state, &req, &everyone(&state)).unwrap();
        let bytes = answer.encoded_len();
        assert!(bytes < 3 << 20, "a page of {bytes} bytes");
        pages += 1;
        values += answer.devices.iter().map(|d| d.values.len()).sum::<usize>();
        if answer.next_page_token.is_empty() {
            break;
        }
        assert!(
            bytes >= LATEST_PAGE_BYTES,
            "a page cut short at {bytes} bytes"
        );
        token = answer.next_page_token;
    }
    assert_eq!(values, 300 * 400);
    assert!(pages >= 3, "{pages} pages");
}

#[test]
fn attributes_are_shown_only_when_the_scope_sees_their_metric_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut state = db.write();
    report(&mut state, "sen-1", &["pm25".to_string()], 1_000, 1.0);
    let status = v1::Status {
        device_id: "sen-1".into(),
        boot_id: 1,
        time_unix_ms: 2_000,
        gateway_id: None,
        kind: Some(v1::status::Kind::Attributes(v1::Attributes {
            attributes: ["mode", "serial"]
                .iter()
                .map(|name| v1::Attribute {
                    name: (*name).into(),
                    value: format!("{name}-value"),
                    datatype: "String".into(),
                    time_unix_ms: 1_500,
                })
                .collect(),
        })),
    };
    let topic = "citytel/v1/site-1/sensor/sen-1/status";
    let payload = status.encode_to_vec();
    let entry = Entry::Message {
        received_at_ms: 2_000,
        topic,
        payload: &payload,
    };
    state.apply(&entry, Some(&Decoded::Status(status)));

    let names = |d: &v1::Device| -> Vec<(String, String, String, i64)> {
        d.attributes
            .iter()
            .map(|a| {
                (
                    a.name.clone(),
                    a.value.clone(),
                    a.datatype.clone(),
                    a.time_unix_ms,
                )
            })
            .collect()
    };
    let all = get(&state, "sen-1".into(), &everyone(&state)).unwrap();
    let all = all.device.unwrap();
    assert_eq!(
        names(&all),
        [
            ("mode".into(), "mode-value".into(), "String".into(), 1_500),
            (
                "serial".into(),
                "serial-value".into(),
                "String".into(),
                1_500
            )
        ]
    );
    let scope = Scope {
        metrics: Some(vec!["pm25".into(), "serial".into()]),
        ..Scope::default()
    };
    let restricted = Visible::of(&scope, &state);
    let seen = get(&state, "sen-1".into(), &restricted).unwrap();
    assert_eq!(names(&seen.device.unwrap())[..].len(), 1);
    let listed = list(&state, &v1::ListDevicesRequest::default(), &restricted).unwrap();
    let only: Vec<String> = listed.devices[0]
        .attributes
        .iter()
        .map(|a| a.name.clone())
        .collect();
    assert_eq!(only, ["serial"]);
}
