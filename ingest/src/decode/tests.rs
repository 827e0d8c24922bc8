use citytel_proto::v1::{Birth, Location, Reading, Status, TelemetryBatch, status};
use proptest::prelude::*;
use prost::Message;

use super::*;

const NOW: i64 = 1_700_000_000_000;
const TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/telemetry";
const STATUS_TOPIC: &str = "citytel/v1/site-01/cabinet/cab-0001/status";

fn limits() -> Limits {
    Limits {
        max_payload_bytes: 4096,
        max_readings_per_message: 100,
        max_future_ms: 60_000,
        max_past_ms: 86_400_000,
    }
}

fn batch(values: &[f64]) -> TelemetryBatch {
    TelemetryBatch {
        device_id: "cab-0001".into(),
        boot_id: 7,
        metric_names: (0..values.len()).map(|i| format!("m{i}")).collect(),
        readings: vec![Reading {
            seq: 1,
            time_unix_ms: NOW - 1000,
            values: values.to_vec(),
        }],
        gateway_id: None,
    }
}

fn reject_reason(topic: &str, payload: &[u8]) -> RejectReason {
    decode(topic, payload, NOW, &limits()).unwrap_err().reason
}

#[test]
fn accepts_a_valid_telemetry_batch() {
    let b = batch(&[21.5, 40.0]);
    let got = decode(TOPIC, &b.encode_to_vec(), NOW, &limits()).unwrap();
    assert_eq!(got, Decoded::Telemetry(b));
}

#[test]
fn accepts_a_valid_birth() {
    let s = Status {
        device_id: "cab-0001".into(),
        boot_id: 7,
        time_unix_ms: NOW,
        gateway_id: None,
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: "fw 1".into(),
            reporting_interval_ms: 10_000,
            heartbeat_interval_ms: None,
            children: vec![],
            intermittent: Some(true),
            location: None,
        })),
    };
    let got = decode(STATUS_TOPIC, &s.encode_to_vec(), NOW, &limits()).unwrap();
    assert_eq!(got, Decoded::Status(s));
}

#[test]
fn rejects_an_empty_payload() {
    assert_eq!(reject_reason(TOPIC, &[]), RejectReason::EmptyPayload);
}

#[test]
fn rejects_malformed_protobuf() {
    assert_eq!(
        reject_reason(TOPIC, &[0xff, 0xff, 0xff]),
        RejectReason::Malformed
    );
    assert_eq!(
        reject_reason(STATUS_TOPIC, b"\x0a\x05ab"),
        RejectReason::Malformed
    );
}

#[test]
fn rejects_a_topic_payload_device_mismatch() {
    let mut b = batch(&[1.0]);
    b.device_id = "cab-0002".into();
    let err = decode(TOPIC, &b.encode_to_vec(), NOW, &limits()).unwrap_err();
    assert_eq!(err.reason, RejectReason::DeviceMismatch);
    assert!(err.detail.contains("cab-0002") && err.detail.contains("cab-0001"));
}

#[test]
fn rejects_unknown_topics() {
    let payload = batch(&[1.0]).encode_to_vec();
    assert_eq!(
        reject_reason("sensors/cab-0001", &payload),
        RejectReason::UnknownTopic
    );
    assert_eq!(
        reject_reason("citytel/v1/s/k/cab-0001/other", &payload),
        RejectReason::UnknownTopic
    );
}

#[test]
fn rejects_nan_and_infinities() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let payload = batch(&[1.0, bad]).encode_to_vec();
        assert_eq!(
            reject_reason(TOPIC, &payload),
            RejectReason::NonFiniteValue,
            "{bad}"
        );
    }
}

#[test]
fn rejects_oversize_payloads() {
    let payload = batch(&vec![1.0; 600]).encode_to_vec();
    assert!(payload.len() > 4096);
    assert_eq!(reject_reason(TOPIC, &payload), RejectReason::Oversize);
}

#[test]
fn rejects_timestamps_outside_the_bounds() {
    let mut b = batch(&[1.0]);
    b.readings[0].time_unix_ms = NOW + 60_001;
    assert_eq!(
        reject_reason(TOPIC, &b.encode_to_vec()),
        RejectReason::TimestampInFuture
    );
    b.readings[0].time_unix_ms = NOW + 60_000;
    assert!(decode(TOPIC, &b.encode_to_vec(), NOW, &limits()).is_ok());
    b.readings[0].time_unix_ms = NOW - 86_400_001;
    assert_eq!(
        reject_reason(TOPIC, &b.encode_to_vec()),
        RejectReason::TimestampTooOld
    );
}

#[test]
fn a_far_future_timestamp_is_rejected_whatever_the_receive_time() {
    // The lead over a receive time before the epoch does not fit an i64: still a rejection.
    let mut b = batch(&[1.0]);
    b.readings[0].time_unix_ms = i64::MAX;
    let rejection = decode(TOPIC, &b.encode_to_vec(), -1, &limits()).unwrap_err();
    assert_eq!(rejection.reason, RejectReason::TimestampInFuture);
    assert!(
        rejection.detail.contains(&i64::MAX.to_string()),
        "{}",
        rejection.detail
    );
}

#[test]
fn rejects_a_status_without_a_known_type() {
    let s = Status {
        device_id: "cab-0001".into(),
        boot_id: 7,
        time_unix_ms: NOW,
        gateway_id: None,
        kind: None,
    };
    // A field number this version does not know, as newer firmware might send.
    let mut payload = s.encode_to_vec();
    payload.extend_from_slice(&[0xa2, 0x01, 0x00]);
    assert_eq!(
        reject_reason(STATUS_TOPIC, &payload),
        RejectReason::UnknownStatusType
    );
}

#[test]
fn rejects_structurally_invalid_batches() {
    let mut no_readings = batch(&[1.0]);
    no_readings.readings.clear();
    let mut short = batch(&[1.0, 2.0]);
    short.readings[0].values.pop();
    let mut twice = batch(&[1.0, 2.0]);
    twice.metric_names[1] = "m0".into();
    let mut bad_name = batch(&[1.0]);
    bad_name.metric_names[0] = "temp c".into();
    let mut too_many = batch(&[1.0]);
    too_many.readings = vec![too_many.readings[0].clone(); 101];
    for b in [no_readings, short, twice, bad_name, too_many] {
        assert_eq!(
            reject_reason(TOPIC, &b.encode_to_vec()),
            RejectReason::InvalidField,
            "{b:?}"
        );
    }
}

#[test]
fn trusted_decoding_skips_limits_but_checks_identity() {
    let mut b = batch(&[1.0]);
    b.readings[0].time_unix_ms = 0;
    assert!(decode_trusted(TOPIC, &b.encode_to_vec()).is_ok());
    b.device_id = "other".into();
    assert_eq!(
        decode_trusted(TOPIC, &b.encode_to_vec())
            .unwrap_err()
            .reason,
        RejectReason::DeviceMismatch
    );
}

#[test]
fn reason_codes_round_trip() {
    for reason in RejectReason::ALL {
        assert_eq!(RejectReason::from_code(reason.code()), Some(reason));
    }
    assert_eq!(RejectReason::from_code(0), None);
    assert_eq!(RejectReason::from_code(200), None);
}

proptest! {
    #[test]
    fn finite_in_bounds_batches_round_trip(
        values in proptest::collection::vec(-1e12f64..1e12, 1..8),
        seq in any::<u64>(),
        offset in -86_400_000i64..60_000,
    ) {
        let mut b = batch(&values);
        b.readings[0].seq = seq;
        b.readings[0].time_unix_ms = NOW + offset;
        let got = decode(TOPIC, &b.encode_to_vec(), NOW, &limits()).unwrap();
        prop_assert_eq!(got, Decoded::Telemetry(b));
    }
}

fn birth_at(time_unix_ms: i64, firmware_version: &str, children: Vec<String>) -> Vec<u8> {
    Status {
        device_id: "cab-0001".into(),
        boot_id: 7,
        time_unix_ms,
        gateway_id: None,
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: firmware_version.into(),
            reporting_interval_ms: 10_000,
            heartbeat_interval_ms: None,
            children,
            intermittent: None,
            location: None,
        })),
    }
    .encode_to_vec()
}

#[test]
fn status_timestamps_are_checked_like_reading_timestamps() {
    let future = birth_at(NOW + 60_001, "fw", vec![]);
    assert_eq!(
        reject_reason(STATUS_TOPIC, &future),
        RejectReason::TimestampInFuture
    );
    let old = birth_at(NOW - 86_400_001, "fw", vec![]);
    assert_eq!(
        reject_reason(STATUS_TOPIC, &old),
        RejectReason::TimestampTooOld
    );
    // The clock offsets an unchecked status once produced.
    let absurd = birth_at(i64::MIN / 2, "fw", vec![]);
    assert_eq!(
        reject_reason(STATUS_TOPIC, &absurd),
        RejectReason::TimestampTooOld
    );
    for ok in [0, NOW + 60_000, NOW - 86_400_000] {
        let birth = birth_at(ok, "fw", vec![]);
        assert!(decode(STATUS_TOPIC, &birth, NOW, &limits()).is_ok(), "{ok}");
    }
}

#[test]
fn a_birth_with_an_overlong_firmware_version_or_bad_children_is_invalid() {
    let long = "x".repeat(validate::MAX_FIRMWARE_VERSION_LEN + 1);
    let mut limits = limits();
    limits.max_payload_bytes = 1 << 20;
    let reason = |payload: Vec<u8>| {
        decode(STATUS_TOPIC, &payload, NOW, &limits)
            .unwrap_err()
            .reason
    };
    assert_eq!(
        reason(birth_at(NOW, &long, vec![])),
        RejectReason::InvalidField
    );
    let just = "x".repeat(validate::MAX_FIRMWARE_VERSION_LEN);
    assert!(decode(STATUS_TOPIC, &birth_at(NOW, &just, vec![]), NOW, &limits).is_ok());
    assert_eq!(
        reason(birth_at(NOW, "fw", vec!["not a/device".into()])),
        RejectReason::InvalidField
    );
    let many = (0..10_001).map(|i| format!("c{i}")).collect();
    assert_eq!(
        reason(birth_at(NOW, "fw", many)),
        RejectReason::InvalidField
    );
}

#[test]
fn a_birth_with_a_location_out_of_range_is_invalid_and_one_in_range_is_kept() {
    let with = |latitude: f64, longitude: f64| {
        let mut s = Status::decode(&birth_at(NOW, "fw", vec![])[..]).expect("decodes");
        if let Some(status::Kind::Birth(b)) = &mut s.kind {
            b.location = Some(Location {
                latitude,
                longitude,
            });
        }
        s
    };
    for (lat, lon) in [(91.0, 0.0), (0.0, -181.0), (f64::NAN, 0.0)] {
        let err = decode(
            STATUS_TOPIC,
            &with(lat, lon).encode_to_vec(),
            NOW,
            &limits(),
        )
        .expect_err("refused");
        assert_eq!(err.reason, RejectReason::InvalidField, "{lat} {lon}");
    }
    let ok = with(51.5, -0.12);
    let got = decode(STATUS_TOPIC, &ok.encode_to_vec(), NOW, &limits()).expect("accepted");
    assert_eq!(got, Decoded::Status(ok));
}
