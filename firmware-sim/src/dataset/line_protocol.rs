//! The line protocol encoder: one InfluxDB line per device and timestamp.
//!
//! ```text
//! cabinet,device_id=cab-0001,kind=cabinet,site=site-01 temperature_c=21.3,humidity_pct=45.5,door_open=0,optical_rx_dbm=-14.25,power_w=85.1 1795651200000000000
//! ```
//!
//! The measurement is the device kind; the tags are `device_id`, `kind` and `site`, sorted by key
//! as InfluxDB recommends; the fields are the kind's metrics in model order, each a float written
//! with Rust's `{}` (the shortest text that parses back to the same `f64`, never with an `i`
//! suffix, so InfluxDB stores floats even for whole values such as `door_open=0`); the timestamp is
//! in nanoseconds. Ids, kinds and metric names are `[A-Za-z0-9._-]`, so nothing needs escaping.

use std::io::{self, Write};

use citytel_proto::catalog::metric_names;

use super::encoder::{Encoder, ReadingRef};
use super::plan::DatasetDevice;

/// Bytes gathered before they are handed to the writer.
const FLUSH_BYTES: usize = 1 << 20;

/// Writes readings as line protocol.
pub(super) struct LineProtocolEncoder<W> {
    out: W,
    /// Per device: `measurement,tags ` with the trailing space.
    prefixes: Vec<Vec<u8>>,
    /// Per device: `name=` for the first metric, `,name=` for the others.
    keys: Vec<Vec<Vec<u8>>>,
    buf: Vec<u8>,
}

impl<W: Write> LineProtocolEncoder<W> {
    /// An encoder for `devices`, writing to `out`.
    pub(super) fn new(devices: &[DatasetDevice], out: W) -> Self {
        let prefixes = devices
            .iter()
            .map(|d| {
                let kind = d.kind.as_str();
                format!(
                    "{kind},device_id={},kind={kind},site={} ",
                    d.device_id, d.site
                )
                .into_bytes()
            })
            .collect();
        let keys = devices
            .iter()
            .map(|d| {
                metric_names(d.kind)
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let separator = if i == 0 { "" } else { "," };
                        format!("{separator}{name}=").into_bytes()
                    })
                    .collect()
            })
            .collect();
        LineProtocolEncoder {
            out,
            prefixes,
            keys,
            buf: Vec::with_capacity(FLUSH_BYTES + 4096),
        }
    }
}

impl<W: Write> Encoder for LineProtocolEncoder<W> {
    fn reading(&mut self, device: usize, reading: &ReadingRef<'_>) -> io::Result<()> {
        let buf = &mut self.buf;
        buf.extend_from_slice(&self.prefixes[device]);
        for (key, value) in self.keys[device].iter().zip(reading.values) {
            buf.extend_from_slice(key);
            write!(buf, "{value}")?;
        }
        writeln!(buf, " {}", reading.time_ms.saturating_mul(1_000_000))?;
        if buf.len() >= FLUSH_BYTES {
            self.out.write_all(buf)?;
            buf.clear();
        }
        Ok(())
    }

    fn device_down(&mut self, _device: usize) -> io::Result<()> {
        Ok(())
    }

    fn end_of_step(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> io::Result<u64> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(0)
    }
}
