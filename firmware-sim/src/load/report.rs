//! What a load run measured: rates over the measured window, exact acknowledgement totals,
//! publish-to-PUBACK latency percentiles and a timeline of the cumulative counts. Printed as a
//! short summary and written as JSON (`--json`) with the same figures.

use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The outcome of a load run. JSON field names are part of the interface `citytel-bench` reads.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Where the load went, `mqtt://host:port`.
    pub broker: String,
    /// Connections.
    pub connections: u32,
    /// Devices, spread over the connections.
    pub devices: u32,
    /// Readings per message.
    pub batch: u32,
    /// Most unacknowledged messages per connection.
    pub inflight: u16,
    /// MQTT QoS of every PUBLISH (always 1).
    pub qos: u8,
    /// Warm-up before the window, in seconds (not counted).
    pub warmup_s: f64,
    /// The measured window.
    pub window: Window,
    /// Messages acknowledged per second in the window.
    pub messages_per_s: f64,
    /// `messages_per_s` times the batch size.
    pub readings_per_s: f64,
    /// Messages the rates are computed from.
    pub window_messages: u64,
    /// Every PUBLISH sent, warm-up included.
    pub published: u64,
    /// Every PUBLISH whose PUBACK (with its packet id) arrived.
    pub acked: u64,
    /// PUBLISHes never acknowledged (lost, or still in flight when the drain timed out).
    pub unacked: u64,
    /// PUBACKs for a packet id that was not in flight.
    pub unexpected_acks: u64,
    /// Readings in acknowledged messages (`acked` times the batch size).
    pub readings_acked: u64,
    /// Publish-to-PUBACK latency of the messages published in the window.
    pub latency_ms: Latency,
    /// Connections that ended early, and why.
    pub errors: Vec<String>,
    /// Cumulative counts every 100 ms from the start: wall clock, published, acknowledged.
    pub timeline: Vec<Sample>,
}

/// The measured window, by the wall clock.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Window {
    /// Start, milliseconds since 1970 (fractional).
    pub start_unix_ms: f64,
    /// End, milliseconds since 1970 (fractional).
    pub end_unix_ms: f64,
    /// Length in seconds.
    pub seconds: f64,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    /// Messages measured.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    /// The percentiles of `hist` (microseconds).
    pub(crate) fn of(hist: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1e3;
        Latency {
            count: hist.len(),
            mean: hist.mean() / 1e3,
            p50: ms(hist.value_at_quantile(0.5)),
            p90: ms(hist.value_at_quantile(0.9)),
            p99: ms(hist.value_at_quantile(0.99)),
            p999: ms(hist.value_at_quantile(0.999)),
            max: ms(hist.max()),
        }
    }
}

/// Cumulative counts at one instant.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sample {
    /// Milliseconds since 1970.
    pub unix_ms: f64,
    /// PUBLISHes sent so far.
    pub published: u64,
    /// PUBACKs received so far.
    pub acked: u64,
}

impl LoadReport {
    /// Whether every message was acknowledged and no connection failed.
    pub fn is_complete(&self) -> bool {
        self.unacked == 0 && self.errors.is_empty() && self.published == self.acked
    }

    /// A few lines for people.
    pub fn summary(&self) -> String {
        let l = &self.latency_ms;
        let mut s = format!(
            "{} msg/s, {} readings/s over {:.1} s ({} connections, {} devices, batch {}, \
             inflight {}, QoS 1)\n\
             published {}, acked {}, unacked {}{}\n\
             publish-to-PUBACK latency ms: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} \
             messages)",
            thousands(self.messages_per_s),
            thousands(self.readings_per_s),
            self.window.seconds,
            self.connections,
            self.devices,
            self.batch,
            self.inflight,
            self.published,
            self.acked,
            self.unacked,
            if self.unexpected_acks > 0 {
                format!(", {} PUBACKs for unknown packet ids", self.unexpected_acks)
            } else {
                String::new()
            },
            l.p50,
            l.p99,
            l.p999,
            l.max,
            l.count,
        );
        for error in &self.errors {
            s.push_str("\nconnection error: ");
            s.push_str(error);
        }
        s
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json + "\n")
    }
}

/// `12345.6` as `12,346`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }
}
