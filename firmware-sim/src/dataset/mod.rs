//! Deterministic reference datasets: a fleet's telemetry over a simulated span, written to a file
//! instead of published over MQTT.
//!
//! The reference dataset is 1,000 devices (300 cabinets, 300 small cells, 400 sensors) over 20
//! sites, 5 metrics each, every 10 s for 24 h: about 42 million values. Benchmarks, imports and
//! interoperability tests all read the same bytes, because the output depends only on the
//! [`DatasetConfig`] (seed and start time included), never on the clock or the machine.
//!
//! - [`config`](DatasetConfig): the span, grid, fleet, outage share and format, validated.
//! - [`plan`]: device ids and sites (the fleet's conventions), the outage plan and boot ids.
//! - [`write_dataset`]: the generator loop, time-major, feeding one encoder per format
//!   (`line_protocol`, `proto`) through the `Encoder` trait both implement (`encoder`).
//!
//! # What a device reports
//!
//! Every device reports on the same grid, `start + k * interval`, with no per-device phase offset
//! and no clock skew: its readings carry the grid timestamps exactly. Values come from the
//! device's own [`DeviceModel`](crate::model::DeviceModel), seeded as in a live fleet (random
//! walks with daily cycles, quantized to the sensor's resolution). The model keeps running through
//! an outage, so an outage only removes readings; it changes no other value.
//!
//! About 15% of the devices (`outage_fraction`) have 1 to 3 outages of 5 minutes to 6 hours,
//! log-uniform; see [`plan`] for the exact rules. A device takes no readings while it is down and
//! comes back with a new boot id, its sequence numbers starting again at 1.
//!
//! # Formats
//!
//! - **Line protocol** (`.lp`): InfluxDB v1/v2 line protocol, one line per device and timestamp,
//!   all devices at the first timestamp, then all at the second, and so on. The measurement is the
//!   kind (`cabinet`, `small_cell`, `sensor`), the tags `device_id`, `kind` and `site` in that
//!   (sorted) order, the fields are the five metrics as floats, the timestamp is in nanoseconds:
//!
//!   ```text
//!   cabinet,device_id=cab-0001,kind=cabinet,site=site-01 temperature_c=21.3,humidity_pct=45.5,door_open=0,optical_rx_dbm=-14.25,power_w=85.1 1795651200000000000
//!   ```
//!
//! - **Protobuf** (`.pb`): the format of `proto/citytel/v1/dataset.proto`, a sequence of
//!   `citytel.v1.DatasetRecord { topic, batch }`, each preceded by its length as a varint, with no
//!   header. A record carries up to `batch` consecutive readings of one device and one boot, with
//!   boot id, sequence numbers and times, exactly as the device would publish them on its
//!   telemetry topic. Records are ordered by the time of their first reading (ties in device
//!   order); a batch is cut short when its device goes down and at the end of the span.

mod config;
mod encoder;
mod generate;
mod line_protocol;
pub mod plan;
mod proto;

#[cfg(test)]
mod tests;

pub use config::{DatasetConfig, DatasetConfigError, DatasetFormat, default_start_ms};
pub use generate::{DatasetError, DatasetProgress, DatasetSummary, write_dataset};
pub use plan::{DatasetDevice, Outage};
