//! The ground truth as text for people: per device its periods up, down and unreachable, its
//! boots and its readings.

use std::fmt::Write as _;

use super::truth::{DeviceCondition, ScenarioReport};

/// Renders `report`; times are offsets from the start of the run.
pub fn render(report: &ScenarioReport) -> String {
    let mut out = String::new();
    let span = report.end_unix_ms - report.start_unix_ms;
    let _ = writeln!(
        out,
        "scenario {}: {} devices over {}",
        report.scenario,
        report.devices.len(),
        offset(span)
    );
    for d in &report.devices {
        let gateway = d
            .gateway_id
            .as_deref()
            .map(|g| format!(", via {g}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{} ({} at {}{gateway}, every {} ms, clock {:+} ms)",
            d.device_id, d.kind, d.site, d.reporting_interval_ms, d.clock_skew_ms
        );
        let _ = writeln!(
            out,
            "  up {}  down {}  unreachable {}  boots {}",
            offset(d.time_in(DeviceCondition::Up)),
            offset(d.time_in(DeviceCondition::Down)),
            offset(d.time_in(DeviceCondition::Unreachable)),
            d.boots.len()
        );
        let _ = writeln!(
            out,
            "  readings produced {}  delivered {}  backfilled {}  lost {}",
            d.readings_produced, d.readings_delivered, d.readings_backfilled, d.readings_lost
        );
        for p in &d.periods {
            let _ = writeln!(
                out,
                "  {:>9} .. {:>9}  {:<11} {}",
                offset(p.start_unix_ms - report.start_unix_ms),
                offset(p.end_unix_ms - report.start_unix_ms),
                condition(p.condition),
                p.cause
            );
        }
    }
    out
}

fn condition(c: DeviceCondition) -> &'static str {
    match c {
        DeviceCondition::Up => "up",
        DeviceCondition::Down => "down",
        DeviceCondition::Unreachable => "unreachable",
    }
}

/// `ms` as `1h02m03s` (or `4.5s` under a minute with a fraction).
fn offset(ms: i64) -> String {
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{frac:03}s")
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs:0>3}"),
        (h, m) => format!("{h}h{m:02}m{secs:0>3}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_read_naturally() {
        assert_eq!(super::offset(0), "0s");
        assert_eq!(super::offset(4_500), "4.500s");
        assert_eq!(super::offset(65_000), "1m05s");
        assert_eq!(super::offset(3_600_000 + 120_000), "1h02m00s");
    }
}
