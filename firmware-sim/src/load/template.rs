//! Pre-encoded telemetry PUBLISH packets, patched in place for every message.
//!
//! Encoding a `TelemetryBatch` per message would cost the generator about what decoding costs the
//! ingester, on the same two cores. Instead each device gets one complete MQTT PUBLISH packet
//! (fixed header, topic, packet id, protobuf payload), built once with rumqttc's codec and prost.
//! A message is that packet copied into the write buffer with four kinds of fields overwritten:
//! the packet id, and per reading its sequence number, its timestamp and its values (taken from
//! a ring of samples the device's [`DeviceModel`] produced up front).
//!
//! Patching in place needs every patched field to keep its length, and protobuf varints grow
//! with their value. So sequence numbers start at [`SEQ_BASE`] = 2^28 (a 5-byte varint up to
//! 2^35, billions of readings per device and boot; the wire contract lets a boot start at any
//! value), and timestamps are milliseconds since 1970, a 6-byte varint from 1971 to 2109. The
//! encoding stays canonical: the packet is byte for byte what prost and rumqttc would produce
//! for the same message (the tests check exactly that).

use bytes::BytesMut;
use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::{Reading, TelemetryBatch};
use prost::Message as _;
use prost::encoding::encoded_len_varint;
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::Publish;
use rumqttc::v5::mqttbytes::v5;

use super::MqttVersion;
use super::plan::DeviceSpec;
use crate::model::DeviceModel;

/// First sequence number of every device (the smallest 5-byte varint).
pub(crate) const SEQ_BASE: u64 = 1 << 28;
/// Sequence numbers stay below this (the smallest 6-byte varint).
const SEQ_END: u64 = 1 << 35;
/// Bytes of every sequence number varint.
const SEQ_LEN: usize = 5;
/// Smallest timestamp with a 6-byte varint (1971-02-03).
const TIME_MIN_MS: i64 = 1 << 35;
/// Timestamps stay below this (2109-05-15).
const TIME_END_MS: i64 = 1 << 42;
/// Bytes of every timestamp varint.
const TIME_LEN: usize = 6;
/// Samples per device the values are taken from, in turn.
const SAMPLES: usize = 64;
/// Model time between two samples.
const SAMPLE_STEP_MS: i64 = 10_000;

/// Why a template cannot be built or patched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The clock is outside the range where a timestamp is a 6-byte varint.
    #[error("the clock reads {0} ms since 1970, outside 2^35..2^42 ms (1971..2109)")]
    ClockOutOfRange(i64),
    /// A device ran out of 5-byte sequence numbers.
    #[error("device {0} used up its sequence numbers (2^35 - 2^28 readings in one run)")]
    SeqExhausted(String),
    /// The encoding does not have the layout the patching relies on (a metric count that
    /// makes a reading 128 bytes or longer, for example).
    #[error("cannot lay out a patchable template for device {0}: {1}")]
    Layout(String, &'static str),
    /// rumqttc could not encode the PUBLISH.
    #[error("cannot encode the PUBLISH of device {0}: {1}")]
    Mqtt(String, String),
}

/// One device's PUBLISH packet and where to patch it.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    device_id: String,
    /// The whole packet as sent.
    packet: Vec<u8>,
    /// Offset of the 2-byte packet id.
    pkid_at: usize,
    /// Offset of the first reading's body.
    first_reading_at: usize,
    /// Bytes from one reading's body to the next.
    reading_stride: usize,
    /// Readings per message.
    batch: usize,
    /// Bytes of one reading's values (8 per metric).
    value_bytes: usize,
    /// [`SAMPLES`] samples of little-endian doubles, `value_bytes` each.
    samples: Vec<u8>,
    /// Sequence number of the next reading.
    next_seq: u64,
}

/// Within a reading's body: tag, seq varint, tag, time varint, tag, packed length, values.
const SEQ_AT: usize = 1;
/// Offset of the time varint in a reading's body.
const TIME_AT: usize = SEQ_AT + SEQ_LEN + 1;

impl Template {
    /// The template of `device`, for messages of `batch` readings, with values from the device's
    /// model seeded with `seed` and sampled before `now_ms`, as PUBLISH packets of `version`
    /// (MQTT 5: with an empty property length after the packet id).
    pub(crate) fn new(
        device: &DeviceSpec,
        batch: usize,
        seed: u64,
        now_ms: i64,
        version: MqttVersion,
    ) -> Result<Self, TemplateError> {
        check_time(now_ms)?;
        let layout = |why| TemplateError::Layout(device.device_id.clone(), why);
        let mut model = DeviceModel::new(device.kind, seed, &device.device_id);
        let names = model.metric_names();
        let value_bytes = names.len() * 8;
        let mut values = vec![0.0; names.len()];
        let mut samples = Vec::with_capacity(SAMPLES * value_bytes);
        for k in 0..SAMPLES as i64 {
            model.sample_into(now_ms - (SAMPLES as i64 - k) * SAMPLE_STEP_MS, &mut values);
            samples.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        }
        let first = values_of(&samples, value_bytes, 0);

        let header = TelemetryBatch {
            device_id: device.device_id.clone(),
            boot_id: device.boot_id,
            metric_names: names.iter().map(|n| (*n).to_string()).collect(),
            readings: Vec::new(),
            gateway_id: None,
        };
        let reading = Reading {
            seq: SEQ_BASE,
            time_unix_ms: now_ms,
            values: first.clone(),
        };
        let body = reading.encoded_len();
        if body != TIME_AT + TIME_LEN + 1 + encoded_len_varint(value_bytes as u64) + value_bytes
            || encoded_len_varint(SEQ_BASE) != SEQ_LEN
            || names.is_empty()
        {
            return Err(layout(
                "a reading is not tag, seq, tag, time, tag, packed values",
            ));
        }
        let reading_stride = 1 + encoded_len_varint(body as u64) + body;
        let mut batch_message = header.clone();
        batch_message.readings = (0..batch as u64)
            .map(|i| Reading {
                seq: SEQ_BASE + i,
                ..reading.clone()
            })
            .collect();
        let payload = batch_message.encode_to_vec();
        if payload.len() != header.encoded_len() + batch * reading_stride {
            return Err(layout("the readings are not at the end of the batch"));
        }

        let topic = topic::build(
            &device.site,
            device.kind.as_str(),
            &device.device_id,
            Channel::Telemetry,
        );
        let payload_len = payload.len();
        let mut packet = BytesMut::new();
        let encoded = match version {
            MqttVersion::V311 => {
                let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload);
                publish.pkid = 1;
                publish
                    .write(&mut packet)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            MqttVersion::V5 => {
                let mut publish = v5::Publish::new(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    payload,
                    None,
                );
                publish.pkid = 1;
                v5::Packet::Publish(publish)
                    .write(&mut packet, None)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        };
        encoded.map_err(|e| TemplateError::Mqtt(device.device_id.clone(), e))?;
        let payload_at = packet.len() - payload_len;
        // The packet id ends where the payload starts, or (MQTT 5) before the property length.
        let pkid_at = match version {
            MqttVersion::V311 => payload_at - 2,
            MqttVersion::V5 => payload_at - 3,
        };
        Ok(Template {
            device_id: device.device_id.clone(),
            packet: packet.to_vec(),
            pkid_at,
            first_reading_at: payload_at
                + header.encoded_len()
                + 1
                + encoded_len_varint(body as u64),
            reading_stride,
            batch,
            value_bytes,
            samples,
            next_seq: SEQ_BASE,
        })
    }

    /// Appends the next message of this device to `out`: packet id `pkid`, the next `batch`
    /// sequence numbers, the last reading stamped `now_ms` and each earlier one a millisecond
    /// before the next. Returns the first sequence number used.
    pub(crate) fn write(
        &mut self,
        out: &mut BytesMut,
        pkid: u16,
        now_ms: i64,
    ) -> Result<u64, TemplateError> {
        let batch = self.batch as u64;
        let first_seq = self.next_seq;
        if first_seq + batch > SEQ_END {
            return Err(TemplateError::SeqExhausted(self.device_id.clone()));
        }
        let first_time = now_ms - (self.batch as i64 - 1);
        check_time(first_time)?;
        check_time(now_ms)?;
        self.next_seq += batch;

        let start = out.len();
        out.extend_from_slice(&self.packet);
        let packet = &mut out[start..];
        packet[self.pkid_at..self.pkid_at + 2].copy_from_slice(&pkid.to_be_bytes());
        let values_at = TIME_AT + TIME_LEN + 1 + encoded_len_varint(self.value_bytes as u64);
        for i in 0..self.batch {
            let reading = &mut packet[self.first_reading_at + i * self.reading_stride..];
            let seq = first_seq + i as u64;
            put_fixed_varint(&mut reading[SEQ_AT..SEQ_AT + SEQ_LEN], seq);
            let time = first_time + i as i64;
            put_fixed_varint(&mut reading[TIME_AT..TIME_AT + TIME_LEN], time as u64);
            let k = (seq % SAMPLES as u64) as usize * self.value_bytes;
            reading[values_at..values_at + self.value_bytes]
                .copy_from_slice(&self.samples[k..k + self.value_bytes]);
        }
        Ok(first_seq)
    }
}

/// Fails unless `time_ms` encodes as a [`TIME_LEN`]-byte varint.
fn check_time(time_ms: i64) -> Result<(), TemplateError> {
    if (TIME_MIN_MS..TIME_END_MS).contains(&time_ms) {
        Ok(())
    } else {
        Err(TemplateError::ClockOutOfRange(time_ms))
    }
}

/// The doubles of sample `k`.
fn values_of(samples: &[u8], value_bytes: usize, k: usize) -> Vec<f64> {
    samples[k * value_bytes..(k + 1) * value_bytes]
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect()
}

/// Writes `value` as a varint of exactly `out.len()` bytes. The caller keeps `value` in the
/// range where that length is also the canonical (shortest) one.
fn put_fixed_varint(out: &mut [u8], mut value: u64) {
    let last = out.len() - 1;
    for byte in &mut out[..last] {
        *byte = (value & 0x7f) as u8 | 0x80;
        value >>= 7;
    }
    debug_assert!(
        value > 0 && value < 0x80,
        "value out of the fixed varint range"
    );
    out[last] = value as u8;
}

#[cfg(test)]
mod tests {
    use citytel_proto::catalog;
    use citytel_proto::kind::Kind;
    use rumqttc::mqttbytes::v4::Packet;

    use super::*;

    const NOW_MS: i64 = 1_767_225_600_000; // 2026-01-01

    fn device(kind: Kind) -> DeviceSpec {
        DeviceSpec {
            device_id: "cell-00042".into(),
            kind,
            site: "site-07".into(),
            boot_id: 0xdead_beef_1234_5678,
        }
    }

    /// Parses one PUBLISH off `buf` and decodes its payload.
    fn decode(buf: &mut BytesMut) -> (Publish, TelemetryBatch) {
        let Packet::Publish(publish) = Packet::read(buf, 1 << 20).expect("a whole packet") else {
            panic!("not a PUBLISH");
        };
        let batch = TelemetryBatch::decode(publish.payload.clone()).expect("valid protobuf");
        (publish, batch)
    }

    #[test]
    fn an_mqtt5_message_decodes_with_the_mqtt5_codec() {
        let spec = device(Kind::Cabinet);
        let v4 = Template::new(&spec, 2, 1, NOW_MS, MqttVersion::V311).unwrap();
        let mut v5 = Template::new(&spec, 2, 1, NOW_MS, MqttVersion::V5).unwrap();
        assert_eq!(
            v5.packet.len(),
            v4.packet.len() + 1,
            "one property length byte"
        );
        let mut buf = BytesMut::new();
        v5.write(&mut buf, 513, NOW_MS + 10).unwrap();
        let packet = v5::Packet::read(&mut buf, None).expect("a whole MQTT 5 packet");
        let v5::Packet::Publish(publish) = packet else {
            panic!("not a PUBLISH: {packet:?}");
        };
        assert_eq!(publish.pkid, 513);
        assert!(publish.properties.is_none());
        let batch = TelemetryBatch::decode(publish.payload).expect("valid protobuf");
        let seqs: Vec<u64> = batch.readings.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [SEQ_BASE, SEQ_BASE + 1]);
        assert_eq!(batch.readings[1].time_unix_ms, NOW_MS + 10);
    }

    #[test]
    fn a_patched_message_decodes_to_its_packet_id_seqs_and_times() {
        let spec = device(Kind::SmallCell);
        let mut template = Template::new(&spec, 3, 42, NOW_MS, MqttVersion::V311).unwrap();
        let mut buf = BytesMut::new();
        assert_eq!(template.write(&mut buf, 7, NOW_MS + 5).unwrap(), SEQ_BASE);
        assert_eq!(
            template.write(&mut buf, 65_535, NOW_MS + 90).unwrap(),
            SEQ_BASE + 3
        );
        assert_eq!(buf.len(), 2 * template.packet.len());

        let (first, batch) = decode(&mut buf);
        assert_eq!(first.pkid, 7);
        assert_eq!(first.qos, QoS::AtLeastOnce);
        assert_eq!(
            first.topic,
            "citytel/v1/site-07/small_cell/cell-00042/telemetry"
        );
        assert_eq!(batch.device_id, "cell-00042");
        assert_eq!(batch.boot_id, spec.boot_id);
        assert_eq!(batch.metric_names, catalog::metric_names(Kind::SmallCell));
        let seqs: Vec<u64> = batch.readings.iter().map(|r| r.seq).collect();
        let times: Vec<i64> = batch.readings.iter().map(|r| r.time_unix_ms).collect();
        assert_eq!(seqs, [SEQ_BASE, SEQ_BASE + 1, SEQ_BASE + 2]);
        assert_eq!(times, [NOW_MS + 3, NOW_MS + 4, NOW_MS + 5]);

        let (second, batch) = decode(&mut buf);
        assert_eq!(second.pkid, 65_535);
        let seqs: Vec<u64> = batch.readings.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [SEQ_BASE + 3, SEQ_BASE + 4, SEQ_BASE + 5]);
        assert_eq!(batch.readings[2].time_unix_ms, NOW_MS + 90);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_patched_message_is_exactly_what_prost_and_rumqttc_encode() {
        for kind in [Kind::Cabinet, Kind::SmallCell, Kind::Sensor] {
            let spec = device(kind);
            let mut template = Template::new(&spec, 10, 9, NOW_MS, MqttVersion::V311).unwrap();
            let mut buf = BytesMut::new();
            template.write(&mut buf, 1, NOW_MS).unwrap();
            let mut buf = BytesMut::new();
            template.write(&mut buf, 300, NOW_MS + 1_000).unwrap();

            let mut model = DeviceModel::new(kind, 9, &spec.device_id);
            let samples: Vec<Vec<f64>> = (0..SAMPLES as i64)
                .map(|k| model.sample(NOW_MS - (SAMPLES as i64 - k) * SAMPLE_STEP_MS))
                .collect();
            let expected = TelemetryBatch {
                device_id: spec.device_id.clone(),
                boot_id: spec.boot_id,
                metric_names: model.metric_names().iter().map(|n| n.to_string()).collect(),
                readings: (10..20)
                    .map(|i| Reading {
                        seq: SEQ_BASE + i,
                        time_unix_ms: NOW_MS + 1_000 - (19 - i as i64),
                        values: samples[((SEQ_BASE + i) % SAMPLES as u64) as usize].clone(),
                    })
                    .collect(),
                gateway_id: None,
            };
            let mut publish = Publish::new(
                topic::build("site-07", kind.as_str(), "cell-00042", Channel::Telemetry),
                QoS::AtLeastOnce,
                expected.encode_to_vec(),
            );
            publish.pkid = 300;
            let mut reference = BytesMut::new();
            publish.write(&mut reference).unwrap();
            assert_eq!(buf, reference, "{kind}");
        }
    }

    #[test]
    fn values_come_from_the_device_model() {
        let spec = device(Kind::Sensor);
        let mut template = Template::new(&spec, 1, 1, NOW_MS, MqttVersion::V311).unwrap();
        let mut buf = BytesMut::new();
        let mut seen = Vec::new();
        for i in 0..SAMPLES {
            template.write(&mut buf, 1, NOW_MS + i as i64).unwrap();
            let (_, batch) = decode(&mut buf);
            let values = &batch.readings[0].values;
            assert_eq!(values.len(), 5);
            assert!(values.iter().all(|v| v.is_finite()));
            seen.push(values.clone());
        }
        seen.dedup();
        assert!(
            seen.len() > SAMPLES / 2,
            "values vary from message to message"
        );
    }

    #[test]
    fn clocks_and_sequence_numbers_out_of_the_fixed_width_range_are_errors() {
        let spec = device(Kind::Cabinet);
        assert_eq!(
            Template::new(&spec, 1, 1, 1_000, MqttVersion::V311).unwrap_err(),
            TemplateError::ClockOutOfRange(1_000)
        );
        let mut template = Template::new(&spec, 2, 1, NOW_MS, MqttVersion::V311).unwrap();
        let mut buf = BytesMut::new();
        assert!(matches!(
            template.write(&mut buf, 1, TIME_END_MS),
            Err(TemplateError::ClockOutOfRange(_))
        ));
        template.next_seq = SEQ_END - 2;
        assert!(template.write(&mut buf, 1, NOW_MS).is_ok());
        assert!(matches!(
            template.write(&mut buf, 1, NOW_MS),
            Err(TemplateError::SeqExhausted(_))
        ));
    }

    #[test]
    fn fixed_varints_are_canonical_at_the_range_ends() {
        for value in [SEQ_BASE, SEQ_END - 1] {
            let mut out = [0; SEQ_LEN];
            put_fixed_varint(&mut out, value);
            let mut buf = &out[..];
            assert_eq!(prost::encoding::decode_varint(&mut buf).unwrap(), value);
            assert_eq!(encoded_len_varint(value), SEQ_LEN);
        }
        for value in [TIME_MIN_MS, TIME_END_MS - 1] {
            assert_eq!(encoded_len_varint(value as u64), TIME_LEN);
        }
    }
}
