//! The protobuf encoder: length-delimited `citytel.v1.DatasetRecord`s, as defined in
//! `proto/citytel/v1/dataset.proto`.
//!
//! Each record is one telemetry message as the device would publish it on
//! `citytel/v1/{site}/{kind}/{device_id}/telemetry`: up to `batch` consecutive readings of one
//! device from one boot, with the boot id, per-boot sequence numbers from 1 and the reading times.
//! A batch closes when it is full, when the device goes down (its readings before an outage are
//! never held back) or when the span ends, so batches before an outage or at the end may be
//! shorter. Records are written in the order of their first reading's time, ties in device order.

use std::collections::BTreeMap;
use std::io::{self, Write};

use citytel_proto::catalog::metric_names;
use citytel_proto::topic::{self, Channel};
use citytel_proto::v1::{DatasetRecord, Reading, TelemetryBatch};
use prost::Message as _;

use super::encoder::{Encoder, ReadingRef};
use super::plan::DatasetDevice;

/// Bytes gathered before they are handed to the writer.
const FLUSH_BYTES: usize = 1 << 20;

/// Writes readings as length-delimited dataset records.
pub(super) struct ProtoEncoder<'a, W> {
    out: W,
    devices: &'a [DatasetDevice],
    topics: Vec<String>,
    batch: usize,
    /// Per device: the boot id and readings of its open batch.
    open: Vec<(u64, Vec<Reading>)>,
    /// Closed batches waiting for every earlier-starting batch, by (first reading time, device).
    closed: BTreeMap<(i64, usize), (u64, Vec<Reading>)>,
    buf: Vec<u8>,
    records: u64,
}

impl<'a, W: Write> ProtoEncoder<'a, W> {
    /// An encoder for `devices` putting up to `batch` readings in a record, writing to `out`.
    pub(super) fn new(devices: &'a [DatasetDevice], batch: usize, out: W) -> Self {
        let topics = devices
            .iter()
            .map(|d| topic::build(&d.site, d.kind.as_str(), &d.device_id, Channel::Telemetry))
            .collect();
        ProtoEncoder {
            out,
            devices,
            topics,
            batch: batch.max(1),
            open: vec![(0, Vec::new()); devices.len()],
            closed: BTreeMap::new(),
            buf: Vec::with_capacity(FLUSH_BYTES + 65_536),
            records: 0,
        }
    }

    /// Moves the open batch of `device`, if any, to the closed ones.
    fn close(&mut self, device: usize) {
        let (boot_id, readings) = &mut self.open[device];
        if let Some(first) = readings.first() {
            let key = (first.time_unix_ms, device);
            let readings = std::mem::replace(readings, Vec::with_capacity(self.batch));
            self.closed.insert(key, (*boot_id, readings));
        }
    }

    /// Writes the closed batches that start before every open one, in order.
    fn write_ready(&mut self, everything: bool) -> io::Result<()> {
        let earliest_open = if everything {
            None
        } else {
            self.open
                .iter()
                .enumerate()
                .filter_map(|(device, (_, readings))| {
                    readings.first().map(|r| (r.time_unix_ms, device))
                })
                .min()
        };
        while let Some(entry) = self.closed.first_entry() {
            if earliest_open.is_some_and(|open| *entry.key() > open) {
                break;
            }
            let ((_, device), (boot_id, readings)) = entry.remove_entry();
            self.encode(device, boot_id, readings)?;
        }
        Ok(())
    }

    fn encode(&mut self, device: usize, boot_id: u64, readings: Vec<Reading>) -> io::Result<()> {
        let spec = &self.devices[device];
        let record = DatasetRecord {
            topic: self.topics[device].clone(),
            batch: Some(TelemetryBatch {
                device_id: spec.device_id.clone(),
                boot_id,
                metric_names: metric_names(spec.kind)
                    .iter()
                    .map(|n| n.to_string())
                    .collect(),
                readings,
                gateway_id: None,
            }),
        };
        record.encode_length_delimited(&mut self.buf)?;
        self.records += 1;
        if self.buf.len() >= FLUSH_BYTES {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Encoder for ProtoEncoder<'_, W> {
    fn reading(&mut self, device: usize, reading: &ReadingRef<'_>) -> io::Result<()> {
        if self.open[device].0 != reading.boot_id {
            self.close(device);
            self.open[device].0 = reading.boot_id;
        }
        let readings = &mut self.open[device].1;
        readings.push(Reading {
            seq: reading.seq,
            time_unix_ms: reading.time_ms,
            values: reading.values.to_vec(),
        });
        if readings.len() >= self.batch {
            self.close(device);
        }
        Ok(())
    }

    fn device_down(&mut self, device: usize) -> io::Result<()> {
        self.close(device);
        Ok(())
    }

    fn end_of_step(&mut self) -> io::Result<()> {
        if self.closed.is_empty() {
            return Ok(());
        }
        self.write_ready(false)
    }

    fn finish(&mut self) -> io::Result<u64> {
        for device in 0..self.open.len() {
            self.close(device);
        }
        self.write_ready(true)?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(self.records)
    }
}
