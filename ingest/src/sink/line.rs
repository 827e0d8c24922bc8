//! Line protocol: WAL entries to lines, collected into a [`Batch`] whose lines can be sent
//! together or, to isolate a refused point, in halves.
//!
//! The output is what the `influxdb2` crate's `DataPoint` writes for the same point (tags and
//! fields in sorted order, the same escaping, floats in the shortest plain decimal form that reads
//! back exactly); property tests hold the two together.

use std::io::Write;
use std::ops::Range;

use citytel_proto::topic;
use citytel_proto::v1::TelemetryBatch;

use super::schema;
use crate::decode::{Decoded, decode_trusted};
use crate::journal::Entry;

/// Lines ready to send, with where each one ends.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    buf: Vec<u8>,
    /// End offset (after the newline) of each line.
    ends: Vec<usize>,
    /// Values (fields) of each line.
    values: Vec<u32>,
}

impl Batch {
    /// Number of lines.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no line.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Removes every line.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.values.clear();
    }

    /// The bytes of lines `range` (each ending in a newline).
    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        let start = if range.start == 0 {
            0
        } else {
            self.ends[range.start - 1]
        };
        let end = if range.end == 0 {
            0
        } else {
            self.ends[range.end - 1]
        };
        &self.buf[start..end]
    }

    /// Values (fields) in lines `range`.
    pub fn values(&self, range: Range<usize>) -> u64 {
        self.values[range].iter().map(|&v| u64::from(v)).sum()
    }

    /// Line `i` without its newline.
    pub fn line(&self, i: usize) -> &str {
        let bytes = self.bytes(i..i + 1);
        std::str::from_utf8(&bytes[..bytes.len() - 1]).unwrap_or("")
    }
}

/// Appends the readings of a WAL entry (accepted telemetry only; status messages and dead
/// letters carry no readings) as lines. `receive_threshold_ms`: the receive time is written as a
/// field when it differs from a reading's time by more than this. Returns the lines added.
pub fn append_entry(entry: &Entry<'_>, receive_threshold_ms: i64, batch: &mut Batch) -> usize {
    let Entry::Message {
        received_at_ms,
        topic,
        payload,
    } = *entry
    else {
        return 0;
    };
    let Ok(parsed) = topic::parse(topic) else {
        return 0;
    };
    let Ok(Decoded::Telemetry(telemetry)) = decode_trusted(topic, payload) else {
        return 0;
    };
    append_telemetry(
        &Tags {
            kind: parsed.kind,
            site: parsed.site,
            device_id: parsed.device_id,
        },
        &telemetry,
        received_at_ms,
        receive_threshold_ms,
        batch,
    )
}

/// The tag values of a device.
#[derive(Debug, Clone, Copy)]
pub struct Tags<'a> {
    /// Device kind (also the measurement).
    pub kind: &'a str,
    /// Site.
    pub site: &'a str,
    /// Device id.
    pub device_id: &'a str,
}

/// A field of a line: a metric (its index into the batch's names) or the receive time.
#[derive(Debug, Clone, Copy)]
enum Field {
    Metric(usize),
    ReceivedAt,
}

/// Appends one line per reading of `telemetry`. Non-finite values are left out (validation has
/// refused them before; line protocol cannot carry them), as are readings without any value or
/// whose nanosecond timestamp would overflow.
pub fn append_telemetry(
    tags: &Tags<'_>,
    telemetry: &TelemetryBatch,
    received_at_ms: i64,
    receive_threshold_ms: i64,
    batch: &mut Batch,
) -> usize {
    let names = &telemetry.metric_names;
    // Field order as the crate's `DataPoint` writes it: sorted, a repeated name keeps its last
    // value.
    let mut order: Vec<(&str, Field)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), Field::Metric(i)))
        .collect();
    order.push((schema::FIELD_RECEIVED_AT_MS, Field::ReceivedAt));
    order.sort_by(|a, b| a.0.cmp(b.0));
    let mut deduped: Vec<(&str, Field)> = Vec::with_capacity(order.len());
    for item in order {
        match deduped.last_mut() {
            Some(last) if last.0 == item.0 => *last = pick_later(*last, item),
            _ => deduped.push(item),
        }
    }
    let mut prefix = Vec::with_capacity(96);
    escape(&mut prefix, schema::measurement(tags.kind), MEASUREMENT);
    for (key, value) in [
        (schema::TAG_DEVICE_ID, tags.device_id),
        (schema::TAG_KIND, tags.kind),
        (schema::TAG_SITE, tags.site),
    ] {
        prefix.push(b',');
        escape(&mut prefix, key, KEY);
        prefix.push(b'=');
        escape(&mut prefix, value, KEY);
    }
    let mut added = 0;
    let mut floats = ryu::Buffer::new();
    batch
        .buf
        .reserve(telemetry.readings.len() * (prefix.len() + 24 * deduped.len() + 24));
    for reading in &telemetry.readings {
        let Some(ns) = reading.time_unix_ms.checked_mul(1_000_000) else {
            continue;
        };
        let start = batch.buf.len();
        batch.buf.extend_from_slice(&prefix);
        let late = received_at_ms.abs_diff(reading.time_unix_ms) > receive_threshold_ms as u64;
        let (mut fields, mut metrics) = (0u32, 0u32);
        for &(name, field) in &deduped {
            match field {
                Field::Metric(i) => {
                    if let Some(v) = reading.values.get(i).filter(|v| v.is_finite()) {
                        separator(&mut batch.buf, fields);
                        escape(&mut batch.buf, name, KEY);
                        batch.buf.push(b'=');
                        push_float(&mut batch.buf, *v, &mut floats);
                        fields += 1;
                        metrics += 1;
                    }
                }
                Field::ReceivedAt if late => {
                    separator(&mut batch.buf, fields);
                    escape(&mut batch.buf, name, KEY);
                    batch.buf.push(b'=');
                    push_int(&mut batch.buf, received_at_ms);
                    batch.buf.push(b'i');
                    fields += 1;
                }
                Field::ReceivedAt => {}
            }
        }
        if metrics == 0 {
            batch.buf.truncate(start);
            continue;
        }
        batch.buf.push(b' ');
        push_int(&mut batch.buf, ns);
        batch.buf.push(b'\n');
        batch.ends.push(batch.buf.len());
        batch.values.push(metrics);
        added += 1;
    }
    added
}

/// Of two fields with the same name, the one the crate's `BTreeMap` keeps (the later insert:
/// metrics in batch order; a metric named like the receive-time field wins over it).
fn pick_later<'a>(a: (&'a str, Field), b: (&'a str, Field)) -> (&'a str, Field) {
    match (a.1, b.1) {
        (Field::Metric(i), Field::Metric(j)) => {
            if j > i {
                b
            } else {
                a
            }
        }
        (Field::Metric(_), Field::ReceivedAt) => a,
        (Field::ReceivedAt, Field::Metric(_)) => b,
        (Field::ReceivedAt, Field::ReceivedAt) => a,
    }
}

/// Writes `v` (finite) as `Display` does: the shortest digits that read back as `v`, never in
/// exponent notation, without a fraction for whole numbers.
///
/// Most readings are short decimals (21.5, -13.64, 57): when `k / 10^s` for the smallest
/// `s <= 4` is exactly `v` (the division is correctly rounded, as parsing the text `k/10^s` is),
/// that text is the shortest form and is written with integer formatting. Below 1e9 a double's
/// spacing is far finer than 10^-4, so no other `k` of the same length reads back as `v`.
/// Otherwise `ryu` finds the shortest digits (where two shortest forms exist it may pick the
/// other one; both read back as `v`); outside the range where it writes plain decimals,
/// `Display` is used.
fn push_float(buf: &mut Vec<u8>, v: f64, ryu: &mut ryu::Buffer) {
    let a = v.abs();
    if a == 0.0 || !(1e-5..1e16).contains(&a) {
        let _ = write!(buf, "{v}");
        return;
    }
    if a < 1e9 {
        for (scale, &p) in POW10.iter().enumerate() {
            let k = (v * p).round();
            if k / p == v {
                push_decimal(buf, k as i64, scale);
                return;
            }
        }
    }
    let text = ryu.format_finite(v);
    buf.extend_from_slice(text.strip_suffix(".0").unwrap_or(text).as_bytes());
}

/// The scales [`push_float`] tries before `ryu`.
const POW10: [f64; 5] = [1.0, 10.0, 100.0, 1_000.0, 10_000.0];

/// Writes `k / 10^scale` in plain decimal (`k` not a multiple of 10 when `scale > 0`).
fn push_decimal(buf: &mut Vec<u8>, k: i64, scale: usize) {
    if k < 0 {
        buf.push(b'-');
    }
    let k = k.unsigned_abs();
    let p = 10u64.pow(scale as u32);
    let mut digits = itoa::Buffer::new();
    buf.extend_from_slice(digits.format(k / p).as_bytes());
    if scale > 0 {
        buf.push(b'.');
        let fraction = digits.format(k % p + p);
        // `k % p + p` has `scale + 1` digits: a leading 1, then the zero-padded fraction.
        buf.extend_from_slice(&fraction.as_bytes()[1..]);
    }
}

/// Appends `n` in decimal.
fn push_int(buf: &mut Vec<u8>, n: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn separator(buf: &mut Vec<u8>, fields_before: u32) {
    buf.push(if fields_before == 0 { b' ' } else { b',' });
}

const MEASUREMENT: &[u8] = b", ";
const KEY: &[u8] = b",= ";

/// Writes `s` with a backslash before each byte of `special`.
fn escape(buf: &mut Vec<u8>, s: &str, special: &[u8]) {
    for &b in s.as_bytes() {
        if special.contains(&b) {
            buf.push(b'\\');
        }
        buf.push(b);
    }
}

#[cfg(test)]
mod tests;
