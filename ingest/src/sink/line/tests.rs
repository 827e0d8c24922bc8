use citytel_proto::v1::{Reading, TelemetryBatch};
use influxdb2::models::{DataPoint, WriteDataPoint};
use proptest::prelude::*;

use super::*;

const TAGS: Tags<'static> = Tags {
    kind: "cabinet",
    site: "site-01",
    device_id: "cab-0001",
};

fn telemetry(names: &[&str], readings: Vec<(i64, Vec<f64>)>) -> TelemetryBatch {
    TelemetryBatch {
        device_id: TAGS.device_id.into(),
        boot_id: 1,
        metric_names: names.iter().map(|n| n.to_string()).collect(),
        readings: readings
            .into_iter()
            .enumerate()
            .map(|(i, (t, values))| Reading {
                seq: i as u64,
                time_unix_ms: t,
                values,
            })
            .collect(),
        gateway_id: None,
    }
}

/// What the `influxdb2` crate writes for the same point.
fn reference(tags: &Tags<'_>, fields: &[(&str, f64)], received: Option<i64>, ns: i64) -> String {
    let mut point = DataPoint::builder(tags.kind)
        .tag("device_id", tags.device_id)
        .tag("kind", tags.kind)
        .tag("site", tags.site);
    for &(name, value) in fields {
        point = point.field(name, value);
    }
    if let Some(ms) = received {
        point = point.field("received_at_ms", ms);
    }
    let mut out = Vec::new();
    point
        .timestamp(ns)
        .build()
        .unwrap()
        .write_data_point_to(&mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn one_line_per_reading_with_sorted_fields_and_nanoseconds() {
    let mut batch = Batch::default();
    let t = telemetry(
        &["temperature_c", "door_open"],
        vec![
            (1_700_000_000_000, vec![21.5, 0.0]),
            (1_700_000_010_000, vec![-3.25, 1.0]),
        ],
    );
    assert_eq!(
        append_telemetry(&TAGS, &t, 1_700_000_010_500, 60_000, &mut batch),
        2
    );
    assert_eq!(
        batch.line(0),
        "cabinet,device_id=cab-0001,kind=cabinet,site=site-01 door_open=0,temperature_c=21.5 1700000000000000000"
    );
    assert_eq!(
        batch.line(1),
        "cabinet,device_id=cab-0001,kind=cabinet,site=site-01 door_open=1,temperature_c=-3.25 1700000010000000000"
    );
    assert_eq!(batch.values(0..2), 4);
    assert_eq!(batch.bytes(0..2).iter().filter(|&&b| b == b'\n').count(), 2);
    assert_eq!(batch.bytes(1..2), format!("{}\n", batch.line(1)).as_bytes());
}

#[test]
fn receive_time_is_a_field_only_past_the_threshold() {
    let mut batch = Batch::default();
    let t = telemetry(
        &["x"],
        vec![(1_000_000, vec![1.0]), (1_000_000 - 60_001, vec![2.0])],
    );
    append_telemetry(&TAGS, &t, 1_000_000, 60_000, &mut batch);
    assert!(!batch.line(0).contains("received_at_ms"));
    assert!(
        batch.line(1).contains(" received_at_ms=1000000i,x=2 "),
        "{}",
        batch.line(1)
    );
    assert_eq!(
        batch.values(0..2),
        2,
        "the receive time is not a metric value"
    );
}

#[test]
fn non_finite_values_are_left_out_and_empty_readings_skipped() {
    let mut batch = Batch::default();
    let t = telemetry(
        &["a", "b"],
        vec![(1, vec![f64::NAN, 2.0]), (2, vec![f64::INFINITY, f64::NAN])],
    );
    assert_eq!(append_telemetry(&TAGS, &t, 1, 60_000, &mut batch), 1);
    assert_eq!(batch.len(), 1);
    assert!(batch.line(0).ends_with(" b=2 1000000"), "{}", batch.line(0));
}

#[test]
fn status_messages_and_dead_letters_write_nothing() {
    let mut batch = Batch::default();
    let dead = Entry::DeadLetter {
        received_at_ms: 1,
        reason: crate::decode::RejectReason::Malformed,
        topic: "citytel/v1/s/cabinet/cab-1/telemetry",
        detail: "x",
        payload: b"junk",
    };
    assert_eq!(append_entry(&dead, 0, &mut batch), 0);
    assert!(batch.is_empty());
}

#[test]
fn entries_decode_from_their_topic_and_payload() {
    use prost::Message;
    let t = telemetry(&["power_w"], vec![(5, vec![12.5])]);
    let payload = t.encode_to_vec();
    let entry = Entry::Message {
        received_at_ms: 5,
        topic: "citytel/v1/site-01/cabinet/cab-0001/telemetry",
        payload: &payload,
    };
    let mut batch = Batch::default();
    assert_eq!(append_entry(&entry, 60_000, &mut batch), 1);
    assert_eq!(
        batch.line(0),
        "cabinet,device_id=cab-0001,kind=cabinet,site=site-01 power_w=12.5 5000000"
    );
}

proptest! {
    /// Byte for byte what the influxdb2 crate's DataPoint writes, escaping included.
    #[test]
    fn lines_match_the_influxdb2_crate(
        kind in "[a-z ,=_]{1,12}",
        site in "[a-z0-9 ,=-]{1,12}",
        names in proptest::collection::btree_set("[a-z ,=_.]{1,10}", 1..6),
        // Decimals of up to 15 digits, as devices send them: their shortest form is unique, so
        // the bytes must match (arbitrary floats are checked by the next property).
        values in proptest::collection::vec((-10i64.pow(15)..10i64.pow(15)).prop_map(|m| m as f64 / 1000.0), 6),
        time in 0i64..4_000_000_000_000,
        late in any::<bool>(),
    ) {
        let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let tags = Tags { kind: &kind, site: &site, device_id: "dev 1,x=y" };
        let received = if late { time + 120_000 } else { time };
        let t = telemetry(&names, vec![(time, values[..names.len()].to_vec())]);
        let mut batch = Batch::default();
        append_telemetry(&tags, &t, received, 60_000, &mut batch);
        let fields: Vec<(&str, f64)> = names.iter().copied().zip(values.iter().copied()).collect();
        let want = reference(&tags, &fields, late.then_some(received), time * 1_000_000);
        prop_assert_eq!(format!("{}\n", batch.line(0)), want);
    }
}

proptest! {
    /// The fast float path writes what `Display` writes: plain decimals, the shortest digits
    /// that read back as the same float (where two shortest forms exist, either may be chosen).
    #[test]
    fn floats_read_back_exactly_in_the_shortest_plain_form(
        bits in any::<u64>(),
        small in -1e7f64..1e7,
        (k, scale) in (-10_000_000_000_000i64..10_000_000_000_000, 0i32..6),
    ) {
        let mut ryu = ryu::Buffer::new();
        let decimal = k as f64 / 10f64.powi(scale);
        for v in [f64::from_bits(bits), small, small / 1e6, small.round(), -small * 1e9, decimal] {
            if v.is_finite() {
                let mut out = Vec::new();
                push_float(&mut out, v, &mut ryu);
                let text = String::from_utf8(out).unwrap();
                prop_assert!(!text.contains(['e', 'E']), "{}", text);
                prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), v.to_bits());
                prop_assert_eq!(text.len(), format!("{v}").len());
            }
        }
    }
}

#[test]
fn float_edge_cases_match_display() {
    let mut ryu = ryu::Buffer::new();
    for v in [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        1e-5,
        9.99e-6,
        1e15,
        1e16,
        123456789012345.6,
        19.5,
        -13.64,
        0.05,
        -0.5,
        57.0,
        1e-4,
        123.4567,
        0.30000000000000004,
        999999999.9999,
        1e9 + 0.5,
        5e-324,
        f64::MAX,
    ] {
        let mut out = Vec::new();
        push_float(&mut out, v, &mut ryu);
        assert_eq!(String::from_utf8(out).unwrap(), format!("{v}"), "{v:e}");
    }
}
