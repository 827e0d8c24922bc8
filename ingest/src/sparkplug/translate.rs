//! Builds citytel's own messages (statuses, `TelemetryBatch`es, attributes statuses) from what
//! the host resolved of a Sparkplug message, so that they take the same path as any device's:
//! validation, WAL, storage, the fleet's availability machine.

use std::collections::BTreeMap;
use std::sync::Arc;

use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::{Birth, Death, DeathReason, Reading, Status, TelemetryBatch, status};
use prost::Message as _;

use super::metrics::Attribute;

/// A citytel message the host made of a Sparkplug message: a topic and an encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// `citytel/v1/{site}/{kind}/{device_id}/{telemetry|status}`.
    pub(crate) topic: String,
    /// The encoded `TelemetryBatch` or `Status`.
    pub(crate) payload: Vec<u8>,
}

/// Which citytel device a Sparkplug edge node or device is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Target {
    /// The site: the Sparkplug group id.
    pub(crate) site: String,
    /// The kind (`gateway` for an edge node).
    pub(crate) kind: String,
    /// The derived device id.
    pub(crate) device_id: String,
    /// The edge node's device id, for a device.
    pub(crate) gateway_id: Option<String>,
    /// The session's boot id.
    pub(crate) boot_id: u64,
}

impl Target {
    fn topic(&self, channel: Channel) -> String {
        topic::build(&self.site, &self.kind, &self.device_id, channel)
    }

    fn status(&self, time_unix_ms: i64, kind: status::Kind) -> Message {
        let status = Status {
            device_id: self.device_id.clone(),
            boot_id: self.boot_id,
            time_unix_ms,
            gateway_id: self.gateway_id.clone(),
            kind: Some(kind),
        };
        Message {
            topic: self.topic(Channel::Status),
            payload: status.encode_to_vec(),
        }
    }

    /// A birth at `time_unix_ms`.
    pub(crate) fn birth(&self, time_unix_ms: i64, reporting_interval_ms: u32) -> Message {
        self.status(
            time_unix_ms,
            status::Kind::Birth(Birth {
                firmware_version: String::new(),
                reporting_interval_ms,
                heartbeat_interval_ms: None,
                children: Vec::new(),
                intermittent: Some(false),
                location: None,
            }),
        )
    }

    /// A death at `time_unix_ms`, the host's receive time (NDEATH): recorded when received.
    pub(crate) fn death(&self, time_unix_ms: i64, reason: DeathReason) -> Message {
        self.status(
            time_unix_ms,
            status::Kind::Death(Death {
                reason: reason as i32,
                at_status_time: false,
            }),
        )
    }

    /// A death the device states happened at `time_unix_ms` (a DDEATH's timestamp): the state
    /// history records it then, within bounds (see `Death.at_status_time`).
    pub(crate) fn death_stated(&self, time_unix_ms: i64, reason: DeathReason) -> Message {
        self.status(
            time_unix_ms,
            status::Kind::Death(Death {
                reason: reason as i32,
                at_status_time: true,
            }),
        )
    }

    /// A heartbeat at `time_unix_ms` (a data message with nothing to store: the device is alive).
    pub(crate) fn heartbeat(&self, time_unix_ms: i64) -> Message {
        self.status(
            time_unix_ms,
            status::Kind::Heartbeat(citytel_proto::v1::Heartbeat::default()),
        )
    }

    /// An attributes status at `time_unix_ms`: the text values of `attributes`, by name.
    pub(crate) fn attributes(
        &self,
        time_unix_ms: i64,
        attributes: BTreeMap<String, Attribute>,
    ) -> Message {
        let values = attributes
            .into_iter()
            .map(|(name, a)| citytel_proto::v1::Attribute {
                name,
                value: a.value,
                datatype: a.datatype.to_string(),
                time_unix_ms: a.time_ms,
            })
            .collect();
        self.status(
            time_unix_ms,
            status::Kind::Attributes(citytel_proto::v1::Attributes { attributes: values }),
        )
    }

    /// The batches of `points`, their readings numbered from `*next_seq` on (advanced).
    ///
    /// Points taken at the same time form one reading; readings naming the same metrics form one
    /// batch. A metric given twice for one time keeps its last value.
    pub(crate) fn readings(&self, points: &[Point], next_seq: &mut u64) -> Vec<Message> {
        // By time, then name, then arrival: the last of a metric given twice for one time wins.
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by(|&a, &b| {
            let (pa, pb) = (&points[a], &points[b]);
            (pa.time_ms, &*pa.metric, a).cmp(&(pb.time_ms, &*pb.metric, b))
        });
        let mut batches: Vec<TelemetryBatch> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let time_ms = points[order[i]].time_ms;
            names.clear();
            let mut values = Vec::new();
            while i < order.len() && points[order[i]].time_ms == time_ms {
                let p = &points[order[i]];
                i += 1;
                let superseded = order
                    .get(i)
                    .is_some_and(|&n| points[n].time_ms == time_ms && points[n].metric == p.metric);
                if !superseded {
                    names.push(&p.metric);
                    values.push(p.value);
                }
            }
            let reading = Reading {
                seq: *next_seq,
                time_unix_ms: time_ms,
                values,
            };
            *next_seq += 1;
            let same = |b: &&mut TelemetryBatch| {
                b.metric_names
                    .iter()
                    .map(String::as_str)
                    .eq(names.iter().copied())
            };
            match batches.iter_mut().find(same) {
                Some(batch) => batch.readings.push(reading),
                None => batches.push(TelemetryBatch {
                    device_id: self.device_id.clone(),
                    boot_id: self.boot_id,
                    metric_names: names.iter().map(|n| (*n).to_string()).collect(),
                    readings: vec![reading],
                    gateway_id: self.gateway_id.clone(),
                }),
            }
        }
        batches
            .into_iter()
            .map(|b| Message {
                topic: self.topic(Channel::Telemetry),
                payload: b.encode_to_vec(),
            })
            .collect()
    }
}

/// One numeric value of a metric at a time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    /// citytel's metric name.
    pub(crate) metric: Arc<str>,
    /// When it was taken, ms since the Unix epoch.
    pub(crate) time_ms: i64,
    /// The value.
    pub(crate) value: f64,
}

/// citytel's name for a Sparkplug metric: `/` (Sparkplug's folder separator) becomes `.`, any
/// other character outside `[A-Za-z0-9_.-]` becomes `_`. `None` when the result is empty or
/// longer than 64 bytes.
pub(crate) fn metric_name(sparkplug: &str) -> Option<String> {
    let name: String = sparkplug
        .chars()
        .map(|c| match c {
            '/' => '.',
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' => c,
            _ => '_',
        })
        .collect();
    (!name.is_empty() && name.len() <= 64).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_map_to_citytel_names() {
        assert_eq!(
            metric_name("Inputs/Temp C").as_deref(),
            Some("Inputs.Temp_C")
        );
        assert_eq!(metric_name("température").as_deref(), Some("temp_rature"));
        assert_eq!(metric_name(""), None);
        assert_eq!(metric_name(&"x".repeat(65)), None);
    }

    #[test]
    fn points_group_into_readings_by_time_and_batches_by_metric_set() {
        let target = Target {
            site: "g".into(),
            kind: "sensor".into(),
            device_id: "g.e.d".into(),
            gateway_id: Some("g.e".into()),
            boot_id: 7,
        };
        let p = |metric: &str, time_ms, value| Point {
            metric: metric.into(),
            time_ms,
            value,
        };
        let points = [
            p("a", 10, 1.0),
            p("b", 10, 2.0),
            p("a", 20, 3.0),
            p("b", 20, 4.0),
            p("a", 30, 5.0),
        ];
        let mut seq = 100;
        let out = target.readings(&points, &mut seq);
        assert_eq!(seq, 103);
        let batches: Vec<TelemetryBatch> = out
            .iter()
            .map(|m| {
                assert_eq!(m.topic, "citytel/v1/g/sensor/g.e.d/telemetry");
                TelemetryBatch::decode(&m.payload[..]).unwrap()
            })
            .collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].metric_names, ["a", "b"]);
        assert_eq!(batches[0].readings.len(), 2);
        assert_eq!(batches[0].readings[1].seq, 101);
        assert_eq!(batches[0].readings[1].values, [3.0, 4.0]);
        assert_eq!(batches[1].metric_names, ["a"]);
        assert_eq!(batches[1].readings[0].seq, 102);
        assert_eq!(batches[1].gateway_id.as_deref(), Some("g.e"));

        // Out of order, a metric twice at one time (the last wins), names sorted per reading.
        let points = [
            p("b", 20, 1.0),
            p("a", 10, 2.0),
            p("b", 10, 3.0),
            p("a", 20, 4.0),
            p("b", 10, 5.0),
        ];
        let out = target.readings(&points, &mut seq);
        assert_eq!(seq, 105);
        let batch = TelemetryBatch::decode(&out[0].payload[..]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(batch.metric_names, ["a", "b"]);
        let readings: Vec<(i64, Vec<f64>)> = batch
            .readings
            .iter()
            .map(|r| (r.time_unix_ms, r.values.clone()))
            .collect();
        assert_eq!(readings, [(10, vec![2.0, 5.0]), (20, vec![4.0, 1.0])]);
    }
}
