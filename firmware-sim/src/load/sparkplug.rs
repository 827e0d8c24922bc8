//! Sparkplug B load (`--format sparkplug`): each connection is an edge node of group
//! [`GROUP`] whose devices are the connection's devices. It publishes NBIRTH (with its bdSeq)
//! and one DBIRTH per device declaring the device's metrics with aliases, then DDATA messages
//! carrying, for each reading of a message, every metric by alias with the reading's
//! timestamp: a message of `batch` readings of a device with five metrics holds `5 x batch`
//! metrics. `seq` runs 0 to 255 per edge node in sending order and wraps.
//!
//! Births go at QoS 0, as the specification has them; DDATA at QoS 1 so that each message's
//! PUBACK is counted and timed like citytel's own format. Every DDATA payload is encoded with
//! prost (not patched in place like [`super::template`]), which costs the generator a little
//! more CPU per message.

use bytes::BytesMut;
use citytel_proto::sparkplug::pb::Payload;
use citytel_proto::sparkplug::pb::payload::Metric;
use citytel_proto::sparkplug::pb::payload::metric::Value;
use citytel_proto::sparkplug::{DataType, MessageType, topic};
use prost::Message as _;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::Publish;
use rumqttc::v5::mqttbytes::v5;

use super::MqttVersion;
use super::plan::DeviceSpec;
use super::template::TemplateError;
use crate::model::DeviceModel;

/// The Sparkplug group of every edge node of the load.
pub const GROUP: &str = "load";
/// Samples per device the values are taken from, in turn.
const SAMPLES: usize = 64;
/// Model time between two samples.
const SAMPLE_STEP_MS: i64 = 10_000;

/// One device of an edge node: its DDATA topic and value samples.
#[derive(Debug, Clone)]
struct Device {
    name: String,
    ddata_topic: String,
    metric_names: Vec<&'static str>,
    /// [`SAMPLES`] samples, one value per metric each.
    samples: Vec<Vec<f64>>,
    next_sample: usize,
}

/// An edge node: the devices of one connection, its bdSeq and its `seq`.
#[derive(Debug, Clone)]
pub(crate) struct SparkplugNode {
    edge_node: String,
    devices: Vec<Device>,
    next_device: usize,
    bd_seq: u64,
    /// The `seq` of the next message.
    seq: u8,
    batch: usize,
    version: MqttVersion,
}

impl SparkplugNode {
    /// Edge node `edge_node` with `devices`, each message of `batch` readings, values from the
    /// devices' models seeded with `seed` and sampled before `now_ms`.
    pub(crate) fn new(
        edge_node: &str,
        devices: &[DeviceSpec],
        batch: usize,
        seed: u64,
        now_ms: i64,
        version: MqttVersion,
    ) -> SparkplugNode {
        let devices = devices
            .iter()
            .map(|d| {
                let mut model = DeviceModel::new(d.kind, seed, &d.device_id);
                let samples = (0..SAMPLES as i64)
                    .map(|k| model.sample(now_ms - (SAMPLES as i64 - k) * SAMPLE_STEP_MS))
                    .collect();
                Device {
                    ddata_topic: topic::build(
                        GROUP,
                        MessageType::DData,
                        edge_node,
                        Some(&d.device_id),
                    ),
                    name: d.device_id.clone(),
                    metric_names: model.metric_names().to_vec(),
                    samples,
                    next_sample: 0,
                }
            })
            .collect();
        SparkplugNode {
            edge_node: edge_node.to_string(),
            devices,
            next_device: 0,
            bd_seq: 0,
            seq: 0,
            batch,
            version,
        }
    }

    /// Appends NBIRTH and every device's DBIRTH, at QoS 0, stamped `now_ms`.
    pub(crate) fn births(&mut self, out: &mut BytesMut, now_ms: i64) -> Result<(), TemplateError> {
        let time = u64::try_from(now_ms).unwrap_or(0);
        self.seq = 0;
        let nbirth = Payload {
            timestamp: Some(time),
            metrics: vec![Metric {
                name: Some("bdSeq".into()),
                datatype: Some(DataType::UInt64.code()),
                value: Some(Value::LongValue(self.bd_seq)),
                ..Metric::default()
            }],
            seq: Some(self.next_seq()),
            ..Payload::default()
        };
        let node_topic = topic::build(GROUP, MessageType::NBirth, &self.edge_node, None);
        self.publish(out, node_topic, nbirth, None)?;
        for i in 0..self.devices.len() {
            let device = &self.devices[i];
            let metrics = device
                .metric_names
                .iter()
                .zip(&device.samples[0])
                .enumerate()
                .map(|(k, (name, v))| Metric {
                    name: Some((*name).to_string()),
                    alias: Some(k as u64 + 1),
                    timestamp: Some(time),
                    datatype: Some(DataType::Double.code()),
                    value: Some(Value::DoubleValue(*v)),
                    ..Metric::default()
                })
                .collect();
            let topic = topic::build(
                GROUP,
                MessageType::DBirth,
                &self.edge_node,
                Some(&device.name),
            );
            let dbirth = Payload {
                timestamp: Some(time),
                metrics,
                seq: Some(self.next_seq()),
                ..Payload::default()
            };
            self.publish(out, topic, dbirth, None)?;
        }
        Ok(())
    }

    /// Appends the next device's next DDATA with packet id `pkid` at QoS 1: `batch` readings,
    /// the last stamped `now_ms` and each earlier one a millisecond before the next.
    pub(crate) fn write(
        &mut self,
        out: &mut BytesMut,
        pkid: u16,
        now_ms: i64,
    ) -> Result<(), TemplateError> {
        let i = self.next_device;
        self.next_device = (i + 1) % self.devices.len();
        let device = &mut self.devices[i];
        let mut metrics = Vec::with_capacity(self.batch * device.metric_names.len());
        for r in 0..self.batch {
            let time = u64::try_from(now_ms - (self.batch - 1 - r) as i64).unwrap_or(0);
            let sample = &device.samples[device.next_sample];
            device.next_sample = (device.next_sample + 1) % SAMPLES;
            metrics.extend(sample.iter().enumerate().map(|(k, v)| Metric {
                alias: Some(k as u64 + 1),
                timestamp: Some(time),
                datatype: Some(DataType::Double.code()),
                value: Some(Value::DoubleValue(*v)),
                ..Metric::default()
            }));
        }
        let topic = device.ddata_topic.clone();
        let payload = Payload {
            timestamp: Some(u64::try_from(now_ms).unwrap_or(0)),
            metrics,
            seq: Some(self.next_seq()),
            ..Payload::default()
        };
        self.publish(out, topic, payload, Some(pkid))
    }

    /// The `seq` of the next message (0 to 255, wrapping).
    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        u64::from(seq)
    }

    /// Appends a PUBLISH of `payload` to `topic`: at QoS 1 with `pkid`, else at QoS 0.
    fn publish(
        &self,
        out: &mut BytesMut,
        topic: String,
        payload: Payload,
        pkid: Option<u16>,
    ) -> Result<(), TemplateError> {
        let failed = |e: String| TemplateError::Mqtt(self.edge_node.clone(), e);
        let payload = payload.encode_to_vec();
        match self.version {
            MqttVersion::V311 => {
                let qos = if pkid.is_some() {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                };
                let mut publish = Publish::new(topic, qos, payload);
                publish.pkid = pkid.unwrap_or(0);
                publish.write(out).map_err(|e| failed(e.to_string()))?;
            }
            MqttVersion::V5 => {
                let qos = if pkid.is_some() {
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce
                } else {
                    rumqttc::v5::mqttbytes::QoS::AtMostOnce
                };
                let mut publish = v5::Publish::new(topic, qos, payload, None);
                publish.pkid = pkid.unwrap_or(0);
                v5::Packet::Publish(publish)
                    .write(out, None)
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use citytel_proto::kind::Kind;
    use rumqttc::mqttbytes::v4::Packet;

    use super::*;

    const NOW_MS: i64 = 1_767_225_600_000;

    fn spec(id: &str) -> DeviceSpec {
        DeviceSpec {
            device_id: id.into(),
            kind: Kind::Cabinet,
            site: "site-01".into(),
            boot_id: 7,
        }
    }

    fn read(buf: &mut BytesMut) -> (Publish, Payload) {
        let Packet::Publish(p) = Packet::read(buf, 1 << 20).expect("a whole packet") else {
            panic!("not a PUBLISH");
        };
        let payload = Payload::decode(p.payload.clone()).expect("a Sparkplug payload");
        (p, payload)
    }

    #[test]
    fn births_declare_aliases_and_data_use_them_in_seq_order() {
        let devices = [spec("cab-1"), spec("cab-2")];
        let mut node = SparkplugNode::new("e1", &devices, 2, 3, NOW_MS, MqttVersion::V311);
        let mut buf = BytesMut::new();
        node.births(&mut buf, NOW_MS).unwrap();
        let (nbirth, payload) = read(&mut buf);
        assert_eq!(nbirth.topic, "spBv1.0/load/NBIRTH/e1");
        assert_eq!(nbirth.qos, QoS::AtMostOnce);
        assert_eq!(payload.seq, Some(0));
        assert_eq!(payload.metrics[0].name.as_deref(), Some("bdSeq"));
        let (dbirth, payload) = read(&mut buf);
        assert_eq!(dbirth.topic, "spBv1.0/load/DBIRTH/e1/cab-1");
        assert_eq!(payload.seq, Some(1));
        let names: Vec<_> = payload
            .metrics
            .iter()
            .map(|m| m.name.clone().unwrap())
            .collect();
        let model = DeviceModel::new(Kind::Cabinet, 3, "cab-1");
        assert_eq!(names, model.metric_names());
        let aliases: Vec<_> = payload.metrics.iter().map(|m| m.alias.unwrap()).collect();
        assert_eq!(aliases, (1..=names.len() as u64).collect::<Vec<_>>());
        let (_, payload) = read(&mut buf);
        assert_eq!(payload.seq, Some(2));
        assert!(buf.is_empty());

        node.write(&mut buf, 9, NOW_MS + 50).unwrap();
        node.write(&mut buf, 10, NOW_MS + 60).unwrap();
        let (first, payload) = read(&mut buf);
        assert_eq!((first.pkid, first.qos), (9, QoS::AtLeastOnce));
        assert_eq!(first.topic, "spBv1.0/load/DDATA/e1/cab-1");
        assert_eq!(payload.seq, Some(3));
        assert_eq!(payload.metrics.len(), 2 * names.len(), "two readings");
        assert!(
            payload
                .metrics
                .iter()
                .all(|m| m.name.is_none() && m.alias.is_some())
        );
        let times: Vec<u64> = payload
            .metrics
            .iter()
            .map(|m| m.timestamp.unwrap())
            .collect();
        assert_eq!(times[0], NOW_MS as u64 + 49);
        assert_eq!(times[times.len() - 1], NOW_MS as u64 + 50);
        let (second, payload) = read(&mut buf);
        assert_eq!(second.topic, "spBv1.0/load/DDATA/e1/cab-2");
        assert_eq!(payload.seq, Some(4));
    }

    #[test]
    fn seq_wraps_after_255() {
        let mut node = SparkplugNode::new("e1", &[spec("cab-1")], 1, 3, NOW_MS, MqttVersion::V5);
        let mut buf = BytesMut::new();
        node.births(&mut buf, NOW_MS).unwrap();
        for _ in 0..300 {
            node.write(&mut buf, 1, NOW_MS).unwrap();
        }
        let mut seqs = Vec::new();
        while !buf.is_empty() {
            let v5::Packet::Publish(p) = v5::Packet::read(&mut buf, None).unwrap() else {
                panic!("not a PUBLISH");
            };
            seqs.push(Payload::decode(p.payload).unwrap().seq.unwrap());
        }
        assert_eq!(seqs.len(), 302);
        assert_eq!(&seqs[254..258], &[254, 255, 0, 1]);
    }
}
