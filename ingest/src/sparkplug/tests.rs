//! The host's rules on a manual clock: sessions, seq, rebirth requests, deaths, datatypes.

use citytel_proto::sparkplug::pb::Payload;
use citytel_proto::sparkplug::pb::payload::Metric;
use citytel_proto::sparkplug::pb::payload::metric::Value as Wire;
use citytel_proto::v1::{DeathReason, TelemetryBatch, status};
use prost::Message as _;

use super::host::{REBIRTH_METRIC, Rebirth};
use super::*;
use crate::clock::Clock;
use crate::decode::{self, Decoded, Limits, RejectReason};
use crate::state::attributes::{Attributes, DeviceAttributes};

const T0: i64 = 1_700_000_000_000;
const NODE: &str = "spBv1.0/plant/NBIRTH/edge1";

fn limits() -> Limits {
    Limits {
        max_payload_bytes: 1 << 20,
        max_readings_per_message: 1000,
        max_future_ms: 60_000,
        max_past_ms: 30 * 86_400_000,
    }
}

fn topic(kind: &str, device: Option<&str>) -> String {
    match device {
        Some(d) => format!("spBv1.0/plant/{kind}/edge1/{d}"),
        None => format!("spBv1.0/plant/{kind}/edge1"),
    }
}

fn metric(name: Option<&str>, alias: Option<u64>, datatype: Option<u32>, value: Wire) -> Metric {
    Metric {
        name: name.map(str::to_string),
        alias,
        datatype,
        value: Some(value),
        ..Metric::default()
    }
}

fn payload(seq: Option<u64>, timestamp: i64, metrics: Vec<Metric>) -> Vec<u8> {
    Payload {
        timestamp: Some(timestamp as u64),
        metrics,
        seq,
        ..Payload::default()
    }
    .encode_to_vec()
}

fn nbirth(bd_seq: u64, seq: u64, at: i64) -> Vec<u8> {
    payload(
        Some(seq),
        at,
        vec![
            metric(Some("bdSeq"), None, Some(8), Wire::LongValue(bd_seq)),
            metric(
                Some(REBIRTH_METRIC),
                Some(0),
                Some(11),
                Wire::BooleanValue(false),
            ),
            metric(
                Some("Supply/Voltage"),
                Some(1),
                Some(10),
                Wire::DoubleValue(230.5),
            ),
            metric(
                Some("Firmware"),
                Some(2),
                Some(12),
                Wire::StringValue("2.1".into()),
            ),
        ],
    )
}

fn ndeath(bd_seq: u64) -> Vec<u8> {
    payload(
        None,
        0,
        vec![metric(
            Some("bdSeq"),
            None,
            Some(8),
            Wire::LongValue(bd_seq),
        )],
    )
}

fn dbirth(seq: u64, at: i64) -> Vec<u8> {
    payload(
        Some(seq),
        at,
        vec![
            metric(Some("rpm"), Some(10), Some(3), Wire::IntValue(1200)),
            metric(
                Some("running"),
                Some(11),
                Some(11),
                Wire::BooleanValue(true),
            ),
            metric(
                Some("mode"),
                Some(12),
                Some(12),
                Wire::StringValue("auto".into()),
            ),
            metric(
                Some("image"),
                Some(13),
                Some(17),
                Wire::BytesValue(vec![1, 2, 3]),
            ),
        ],
    )
}

/// A DDATA of rpm (by alias) at `at`.
fn ddata(seq: u64, at: i64, rpm: i32) -> Vec<u8> {
    let mut m = metric(None, Some(10), None, Wire::IntValue(rpm as u32));
    m.timestamp = Some(at as u64);
    payload(Some(seq), at, vec![m])
}

/// A host on a manual clock, with the attributes the state keeps of what it made.
struct Rig {
    host: Host,
    clock: Clock,
    attributes: Attributes,
}

impl Rig {
    fn new() -> Self {
        Rig {
            host: Host::new(HostSettings::default()),
            clock: Clock::manual(T0),
            attributes: Attributes::default(),
        }
    }

    /// The attributes of `device` kept so far.
    fn attributes(&self, device: &str) -> Option<&DeviceAttributes> {
        self.attributes.of(device)
    }

    fn advance(&mut self, ms: i64) {
        self.clock.set_ms(self.clock.now_ms() + ms);
    }

    /// Handles a message; every citytel message made must pass citytel's own validation.
    fn send(
        &mut self,
        topic: &str,
        payload: &[u8],
    ) -> Result<Vec<(String, Decoded)>, (RejectReason, String)> {
        let now = self.clock.now_ms();
        match self.host.handle(topic, payload, now) {
            Outcome::Messages(messages) => {
                assert!(!messages.is_empty());
                Ok(messages
                    .into_iter()
                    .map(|m| {
                        let decoded = decode::decode(&m.topic, &m.payload, now, &limits())
                            .unwrap_or_else(|e| panic!("{} does not validate: {e}", m.topic));
                        if let Decoded::Status(s) = &decoded
                            && let Some(status::Kind::Attributes(a)) = &s.kind
                        {
                            let device: std::sync::Arc<str> = s.device_id.as_str().into();
                            self.attributes
                                .apply(&device, &a.attributes, s.time_unix_ms);
                        }
                        (m.topic, decoded)
                    })
                    .collect())
            }
            Outcome::Rejected(r) => Err((r.reason, r.detail)),
        }
    }

    fn due(&mut self) -> Vec<Rebirth> {
        self.host.due(self.clock.now_ms())
    }

    /// An edge node born with bdSeq `bd_seq` (seq 0) and device `pump` (seq 1).
    fn born(&mut self, bd_seq: u64) {
        let now = self.clock.now_ms();
        self.send(NODE, &nbirth(bd_seq, 0, now)).unwrap();
        self.send(&topic("DBIRTH", Some("pump")), &dbirth(1, now))
            .unwrap();
    }
}

fn batch(decoded: &Decoded) -> &TelemetryBatch {
    match decoded {
        Decoded::Telemetry(b) => b,
        Decoded::Status(s) => panic!("expected readings, got {s:?}"),
    }
}

fn status_kind(decoded: &Decoded) -> &status::Kind {
    match decoded {
        Decoded::Status(s) => s.kind.as_ref().unwrap(),
        Decoded::Telemetry(b) => panic!("expected a status, got {b:?}"),
    }
}

#[test]
fn births_and_data_map_to_a_gateway_and_its_child() {
    let mut rig = Rig::new();
    let out = rig.send(NODE, &nbirth(3, 0, T0)).unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].0, "citytel/v1/plant/gateway/plant.edge1/status");
    let Decoded::Status(birth) = &out[0].1 else {
        panic!()
    };
    assert_eq!((birth.boot_id, birth.time_unix_ms), (T0 as u64, T0));
    assert!(matches!(birth.kind, Some(status::Kind::Birth(_))));
    // Numbers become series (control metrics and bdSeq do not); the string an attribute.
    let b = batch(&out[1].1);
    assert_eq!(out[1].0, "citytel/v1/plant/gateway/plant.edge1/telemetry");
    assert_eq!(b.metric_names, ["Supply.Voltage"]);
    assert_eq!(b.readings[0].values, [230.5]);
    assert_eq!(b.readings[0].time_unix_ms, T0);
    // The string an attributes status of its own, after the readings.
    let status::Kind::Attributes(a) = status_kind(&out[2].1) else {
        panic!("{:?}", out[2].1)
    };
    let a = &a.attributes[0];
    assert_eq!(
        (&*a.name, &*a.value, &*a.datatype, a.time_unix_ms),
        ("Firmware", "2.1", "String", T0)
    );
    let attrs = rig.attributes("plant.edge1").unwrap();
    assert_eq!(attrs["Firmware"].value, "2.1");

    rig.advance(100);
    let out = rig
        .send(&topic("DBIRTH", Some("pump")), &dbirth(1, T0 + 100))
        .unwrap();
    assert_eq!(out[0].0, "citytel/v1/plant/sensor/plant.edge1.pump/status");
    let Decoded::Status(birth) = &out[0].1 else {
        panic!()
    };
    assert_eq!(birth.gateway_id.as_deref(), Some("plant.edge1"));
    let b = batch(&out[1].1);
    assert_eq!(b.metric_names, ["rpm", "running"]);
    assert_eq!(b.readings[0].values, [1200.0, 1.0]);
    assert_eq!(b.gateway_id.as_deref(), Some("plant.edge1"));
    assert_eq!(
        rig.attributes("plant.edge1.pump").unwrap()["mode"].value,
        "auto"
    );
    assert!(
        !rig.attributes("plant.edge1.pump")
            .unwrap()
            .contains_key("image")
    );

    // Data by alias; the metric's own timestamp is the reading time.
    rig.advance(1000);
    let out = rig
        .send(&topic("DDATA", Some("pump")), &ddata(2, T0 + 900, -5))
        .unwrap();
    let b = batch(&out[0].1);
    assert_eq!(b.metric_names, ["rpm"]);
    assert_eq!(b.readings[0].values, [-5.0]);
    assert_eq!(b.readings[0].time_unix_ms, T0 + 900);
    assert_eq!(
        b.readings[0].seq, 1,
        "the device's readings are numbered from its birth"
    );
    assert!(rig.due().is_empty());
    assert_eq!(rig.host.next_deadline(), None);
}

#[test]
fn seq_wraps_from_255_to_0_without_a_rebirth() {
    let mut rig = Rig::new();
    rig.send(NODE, &nbirth(0, 254, T0)).unwrap();
    rig.send(&topic("DBIRTH", Some("pump")), &dbirth(255, T0))
        .unwrap();
    for (i, seq) in [0u64, 1, 2].into_iter().enumerate() {
        rig.send(&topic("DDATA", Some("pump")), &ddata(seq, T0 + i as i64, 1))
            .unwrap();
    }
    rig.advance(60_000);
    assert!(rig.due().is_empty());
}

#[test]
fn a_seq_gap_requests_one_rebirth_after_the_reorder_timeout() {
    let mut rig = Rig::new();
    rig.born(0);
    // seq 2 is lost: 3 is stored, and the timer starts.
    rig.send(&topic("DDATA", Some("pump")), &ddata(3, T0, 7))
        .unwrap();
    assert_eq!(rig.host.next_deadline(), Some(T0 + 5_000));
    rig.advance(4_999);
    assert!(rig.due().is_empty(), "not before the timeout");
    rig.advance(1);
    let requests = rig.due();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].topic, "spBv1.0/plant/NCMD/edge1");
    let cmd = Payload::decode(&requests[0].payload[..]).unwrap();
    assert_eq!(cmd.timestamp, Some((T0 + 5_000) as u64));
    assert_eq!(cmd.metrics.len(), 1);
    assert_eq!(cmd.metrics[0].name.as_deref(), Some(REBIRTH_METRIC));
    assert_eq!(cmd.metrics[0].datatype, Some(11));
    assert_eq!(cmd.metrics[0].value, Some(Wire::BooleanValue(true)));
    // Another gap in the same session asks for nothing more.
    rig.send(&topic("DDATA", Some("pump")), &ddata(9, T0, 7))
        .unwrap();
    rig.advance(60_000);
    assert!(rig.due().is_empty());
    assert_eq!(rig.host.next_deadline(), None);
    // After the rebirth, a new gap may ask again.
    let now = rig.clock.now_ms();
    rig.send(NODE, &nbirth(0, 0, now)).unwrap();
    rig.send(&topic("NDATA", None), &payload(Some(5), now, vec![]))
        .unwrap();
    rig.advance(5_000);
    assert_eq!(rig.due().len(), 1);
}

#[test]
fn a_reordered_message_within_the_timeout_asks_for_nothing() {
    let mut rig = Rig::new();
    rig.born(0);
    rig.send(&topic("DDATA", Some("pump")), &ddata(3, T0 + 3, 3))
        .unwrap();
    rig.advance(2_000);
    let late = rig
        .send(&topic("DDATA", Some("pump")), &ddata(2, T0 + 2, 2))
        .unwrap();
    assert_eq!(
        batch(&late[0].1).readings[0].values,
        [2.0],
        "the late one is stored"
    );
    assert_eq!(rig.host.next_deadline(), None);
    rig.advance(10_000);
    assert!(rig.due().is_empty());
    // A redelivery of a seq already received is ignored.
    assert_eq!(
        rig.send(&topic("DDATA", Some("pump")), &ddata(3, T0 + 3, 3))
            .unwrap_err()
            .0,
        RejectReason::SparkplugStale
    );
}

#[test]
fn data_before_the_birth_waits_for_it_then_asks_once() {
    let mut rig = Rig::new();
    let err = rig
        .send(&topic("NDATA", None), &payload(Some(4), T0, vec![]))
        .unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugOutOfSession);
    // The birth arrives within the timeout: nothing to ask.
    rig.advance(1_000);
    rig.send(NODE, &nbirth(1, 0, T0 + 1_000)).unwrap();
    rig.advance(10_000);
    assert!(rig.due().is_empty());

    // A device's data before its DBIRTH.
    let err = rig
        .send(&topic("DDATA", Some("valve")), &ddata(1, T0, 1))
        .unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugOutOfSession);
    rig.advance(5_000);
    assert_eq!(rig.due().len(), 1);
    rig.advance(5_000);
    assert!(rig.due().is_empty(), "only one request");
}

#[test]
fn an_unknown_alias_is_refused_and_requests_a_rebirth() {
    let mut rig = Rig::new();
    rig.born(0);
    let unknown = payload(
        Some(2),
        T0,
        vec![metric(None, Some(99), None, Wire::IntValue(1))],
    );
    let err = rig
        .send(&topic("DDATA", Some("pump")), &unknown)
        .unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugUnknownMetric);
    assert!(err.1.contains("alias 99"), "{}", err.1);
    // A DBIRTH of the device clears it.
    rig.send(&topic("DBIRTH", Some("pump")), &dbirth(3, T0))
        .unwrap();
    rig.advance(5_000);
    assert!(rig.due().is_empty());
    // An unknown node metric only a rebirth clears.
    let unknown = payload(
        Some(4),
        T0,
        vec![metric(Some("nope"), None, None, Wire::IntValue(1))],
    );
    let err = rig.send(&topic("NDATA", None), &unknown).unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugUnknownMetric);
    rig.advance(5_000);
    assert_eq!(rig.due().len(), 1);
}

#[test]
fn ndeath_of_the_session_takes_node_and_devices_offline_at_the_host_time() {
    let mut rig = Rig::new();
    rig.born(7);
    rig.advance(30_000);
    let out = rig.send(&topic("NDEATH", None), &ndeath(7)).unwrap();
    let topics: Vec<&str> = out.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "citytel/v1/plant/sensor/plant.edge1.pump/status",
            "citytel/v1/plant/gateway/plant.edge1/status"
        ]
    );
    for (_, d) in &out {
        let Decoded::Status(s) = d else { panic!() };
        assert_eq!(s.time_unix_ms, T0 + 30_000, "the host's clock");
        assert_eq!(s.boot_id, T0 as u64);
        assert!(matches!(
            s.kind,
            Some(status::Kind::Death(ref death)) if death.reason == DeathReason::ConnectionLost as i32
        ));
    }
    // Data after the death is out of session; a second NDEATH is stale.
    let err = rig
        .send(&topic("DDATA", Some("pump")), &ddata(2, T0, 1))
        .unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugOutOfSession);
    let err = rig.send(&topic("NDEATH", None), &ndeath(7)).unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugStale);
}

#[test]
fn a_stale_ndeath_after_a_newer_nbirth_is_ignored() {
    let mut rig = Rig::new();
    rig.born(4);
    rig.advance(1_000);
    rig.born(5);
    let err = rig.send(&topic("NDEATH", None), &ndeath(4)).unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugStale);
    assert!(
        err.1.contains("bdSeq 4") && err.1.contains("bdSeq 5"),
        "{}",
        err.1
    );
    // The session goes on.
    rig.send(&topic("DDATA", Some("pump")), &ddata(2, T0 + 1_000, 1))
        .unwrap();
    assert_eq!(
        rig.send(&topic("NDEATH", None), &ndeath(5)).unwrap().len(),
        2
    );
}

#[test]
fn ddeath_takes_the_device_offline_at_the_payload_time() {
    let mut rig = Rig::new();
    rig.born(0);
    rig.advance(10_000);
    let out = rig
        .send(
            &topic("DDEATH", Some("pump")),
            &payload(Some(2), T0 + 4_000, vec![]),
        )
        .unwrap();
    let Decoded::Status(s) = &out[0].1 else {
        panic!()
    };
    assert_eq!(out[0].0, "citytel/v1/plant/sensor/plant.edge1.pump/status");
    assert_eq!(s.time_unix_ms, T0 + 4_000, "the payload's timestamp");
    let status::Kind::Death(death) = status_kind(&out[0].1) else {
        panic!("{s:?}")
    };
    assert!(death.at_status_time, "the transition at the payload's time");
    let err = rig
        .send(&topic("DDATA", Some("pump")), &ddata(3, T0, 1))
        .unwrap_err();
    assert_eq!(err.0, RejectReason::SparkplugOutOfSession);
    // The NDEATH then names only the node (the device is offline already).
    assert_eq!(
        rig.send(&topic("NDEATH", None), &ndeath(0)).unwrap().len(),
        1
    );
}

#[test]
fn a_ddeath_without_a_timestamp_and_an_ndeath_are_at_the_receive_time() {
    let mut rig = Rig::new();
    rig.born(0);
    rig.advance(10_000);
    let untimed = Payload {
        seq: Some(2),
        ..Payload::default()
    }
    .encode_to_vec();
    let out = rig.send(&topic("DDEATH", Some("pump")), &untimed).unwrap();
    let Decoded::Status(s) = &out[0].1 else {
        panic!()
    };
    let status::Kind::Death(death) = status_kind(&out[0].1) else {
        panic!("{s:?}")
    };
    assert_eq!(s.time_unix_ms, T0 + 10_000, "the receive time");
    assert!(!death.at_status_time);
    let out = rig.send(&topic("NDEATH", None), &ndeath(0)).unwrap();
    let status::Kind::Death(death) = status_kind(&out[0].1) else {
        panic!("{:?}", out[0].1)
    };
    assert!(!death.at_status_time, "the host's clock");
}

#[test]
fn historical_values_are_backfill_in_their_own_batch_and_never_attributes() {
    let mut rig = Rig::new();
    rig.born(0);
    let mut old = metric(None, Some(10), None, Wire::IntValue(11));
    old.timestamp = Some((T0 - 3_600_000) as u64);
    old.is_historical = Some(true);
    let mut old_mode = metric(None, Some(12), None, Wire::StringValue("manual".into()));
    old_mode.timestamp = Some((T0 - 3_600_000) as u64);
    old_mode.is_historical = Some(true);
    let mut live = metric(None, Some(10), None, Wire::IntValue(22));
    live.timestamp = Some(T0 as u64);
    let out = rig
        .send(
            &topic("DDATA", Some("pump")),
            &payload(Some(2), T0, vec![old, old_mode, live]),
        )
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(batch(&out[0].1).readings[0].values, [22.0]);
    let backfill = batch(&out[1].1);
    assert_eq!(backfill.readings[0].values, [11.0]);
    assert_eq!(backfill.readings[0].time_unix_ms, T0 - 3_600_000);
    assert_eq!(
        rig.attributes("plant.edge1.pump").unwrap()["mode"].value,
        "auto"
    );
}

#[test]
fn text_only_data_is_an_attributes_status_and_the_newest_value_wins() {
    let mut rig = Rig::new();
    rig.born(0);
    let text = metric(None, Some(12), None, Wire::StringValue("manual".into()));
    let out = rig
        .send(
            &topic("DDATA", Some("pump")),
            &payload(Some(2), T0, vec![text]),
        )
        .unwrap();
    assert_eq!(out.len(), 1);
    assert!(matches!(
        status_kind(&out[0].1),
        status::Kind::Attributes(_)
    ));
    assert_eq!(
        rig.attributes("plant.edge1.pump").unwrap()["mode"].value,
        "manual"
    );
    // A value stamped before the one kept changes nothing; nothing at all is a heartbeat.
    let mut late = metric(None, Some(12), None, Wire::StringValue("auto".into()));
    late.timestamp = Some((T0 - 1) as u64);
    rig.send(
        &topic("DDATA", Some("pump")),
        &payload(Some(3), T0, vec![late]),
    )
    .unwrap();
    let mode = &rig.attributes("plant.edge1.pump").unwrap()["mode"];
    assert_eq!((&*mode.value, mode.time_ms), ("manual", T0));
    let out = rig
        .send(&topic("DDATA", Some("pump")), &payload(Some(4), T0, vec![]))
        .unwrap();
    assert!(matches!(status_kind(&out[0].1), status::Kind::Heartbeat(_)));
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let mut rig = Rig::new();
    let cases: Vec<(&str, Vec<u8>, RejectReason)> = vec![
        (
            "spBv1.0/plant/NBIRTH/edge1/x",
            nbirth(0, 0, T0),
            RejectReason::UnknownTopic,
        ),
        (
            "spBv1.0/plant/NCMD/edge1",
            nbirth(0, 0, T0),
            RejectReason::UnknownTopic,
        ),
        (
            "spBv1.0/STATE/h",
            b"{}".to_vec(),
            RejectReason::UnknownTopic,
        ),
        (NODE, vec![0xff, 0xff], RejectReason::Malformed),
        (
            NODE,
            payload(Some(0), T0, vec![]),
            RejectReason::InvalidField,
        ),
        (NODE, payload(None, T0, vec![]), RejectReason::InvalidField),
        (
            NODE,
            payload(
                Some(0),
                T0,
                vec![
                    metric(Some("bdSeq"), None, Some(8), Wire::LongValue(0)),
                    metric(Some("x"), None, None, Wire::IntValue(0)),
                ],
            ),
            RejectReason::InvalidField,
        ),
        (
            NODE,
            payload(
                Some(0),
                T0,
                vec![
                    metric(Some("bdSeq"), None, Some(8), Wire::LongValue(0)),
                    metric(Some("x"), Some(1), Some(10), Wire::StringValue("no".into())),
                ],
            ),
            RejectReason::InvalidField,
        ),
        (
            NODE,
            payload(
                Some(0),
                T0,
                vec![
                    metric(Some("bdSeq"), None, Some(8), Wire::LongValue(0)),
                    metric(Some("a"), Some(1), Some(10), Wire::DoubleValue(1.0)),
                    metric(Some("b"), Some(1), Some(10), Wire::DoubleValue(1.0)),
                ],
            ),
            RejectReason::InvalidField,
        ),
        (
            "spBv1.0/plant/NDEATH/edge1",
            payload(None, T0, vec![]),
            RejectReason::InvalidField,
        ),
    ];
    for (topic, payload, want) in cases {
        let err = rig.send(topic, &payload).unwrap_err();
        assert_eq!(err.0, want, "{topic}: {}", err.1);
    }
    rig.born(0);
    let err = rig
        .send(&topic("NDATA", None), &payload(None, T0, vec![]))
        .unwrap_err();
    assert_eq!(err.0, RejectReason::InvalidField);
}

#[test]
fn device_ids_follow_the_templates() {
    let settings = HostSettings {
        node_id_template: "sp-{edge_node}".into(),
        device_id_template: "{edge_node}-{device}".into(),
        device_kind: "cabinet".into(),
        ..HostSettings::default()
    };
    assert_eq!(settings.node_id("g", "e").as_deref(), Some("sp-e"));
    let t = settings.device_target("g", "e", "d", "sp-e", 1).unwrap();
    assert_eq!(
        (t.device_id.as_str(), t.kind.as_str(), t.site.as_str()),
        ("e-d", "cabinet", "g")
    );
    let long = "x".repeat(100);
    assert_eq!(HostSettings::default().node_id(&long, &long), None);
    let mut host = Host::new(HostSettings::default());
    let topic = format!("spBv1.0/{long}/NBIRTH/{long}");
    assert!(matches!(
        host.handle(&topic, &nbirth(0, 0, T0), T0),
        Outcome::Rejected(ref r) if r.reason == RejectReason::UnknownTopic
    ));
}
