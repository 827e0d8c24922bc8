//! The metric catalogue: what a device of each [`Kind`] measures, in the order its readings carry
//! the values.
//!
//! A `TelemetryBatch` names its metrics once (`metric_names`) and every `Reading` in it carries one
//! value per name, in that order. For the four kinds the names, their order and their resolutions
//! are fixed here: the simulator produces exactly these, the service's InfluxDB sink schema and the
//! Grafana dashboards are written against them. Renaming or reordering a metric changes the wire
//! contract.
//!
//! Units are suffixes of the names (`temperature_c`, `humidity_pct`, `optical_rx_dbm`), so a name
//! says its unit wherever it appears; [`Metric::unit`] spells the unit out. Every value is a whole
//! multiple of its metric's [`resolution`](Metric::resolution). A device may report metrics beyond
//! its kind's; they are stored like any other, but the catalogue does not describe them.

use crate::kind::Kind;

/// One metric of a device kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// The name in `TelemetryBatch.metric_names`, with the unit as a suffix: `temperature_c`.
    pub name: &'static str,
    /// The unit's symbol, e.g. `°C` or `dBm`; empty for counts and 0/1 states.
    pub unit: &'static str,
    /// The sensor's resolution, `1/n` for a whole `n`: every value is a whole multiple of it.
    pub resolution: f64,
    /// What the metric measures, in one line.
    pub description: &'static str,
}

/// A fibre street cabinet's metrics, in reading order.
pub const CABINET: [Metric; 5] = [
    Metric {
        name: "temperature_c",
        unit: "°C",
        resolution: 0.1,
        description: "Air temperature inside the enclosure.",
    },
    Metric {
        name: "humidity_pct",
        unit: "%",
        resolution: 0.5,
        description: "Relative humidity inside the enclosure.",
    },
    Metric {
        name: "door_open",
        unit: "",
        resolution: 1.0,
        description: "Door contact: 1 while the door is open, 0 while it is closed.",
    },
    Metric {
        name: "optical_rx_dbm",
        unit: "dBm",
        resolution: 0.01,
        description: "Optical power received on the fibre uplink.",
    },
    Metric {
        name: "power_w",
        unit: "W",
        resolution: 0.1,
        description: "Electrical power drawn, fans and heat exchanger included.",
    },
];

/// A 5G small cell's metrics, in reading order.
pub const SMALL_CELL: [Metric; 5] = [
    Metric {
        name: "rsrp_dbm",
        unit: "dBm",
        resolution: 1.0,
        description: "Reference signal received power (RSRP) its users measure.",
    },
    Metric {
        name: "sinr_db",
        unit: "dB",
        resolution: 0.1,
        description: "Signal to interference and noise ratio (SINR) of its users.",
    },
    Metric {
        name: "connected_ues",
        unit: "",
        resolution: 1.0,
        description: "User equipments (phones, modems) connected to the cell.",
    },
    Metric {
        name: "throughput_mbps",
        unit: "Mbit/s",
        resolution: 0.1,
        description: "Data throughput over all connected users.",
    },
    Metric {
        name: "cpu_pct",
        unit: "%",
        resolution: 0.1,
        description: "CPU utilisation of the cell's baseband processor.",
    },
];

/// An environmental sensor's metrics, in reading order.
pub const SENSOR: [Metric; 5] = [
    Metric {
        name: "pm25_ugm3",
        unit: "µg/m³",
        resolution: 0.1,
        description: "Fine particulate matter (PM2.5) concentration.",
    },
    Metric {
        name: "no2_ugm3",
        unit: "µg/m³",
        resolution: 0.1,
        description: "Nitrogen dioxide (NO2) concentration.",
    },
    Metric {
        name: "temperature_c",
        unit: "°C",
        resolution: 0.1,
        description: "Outdoor air temperature.",
    },
    Metric {
        name: "humidity_pct",
        unit: "%",
        resolution: 0.5,
        description: "Outdoor relative humidity.",
    },
    Metric {
        name: "battery_pct",
        unit: "%",
        resolution: 0.1,
        description: "Charge left in the battery.",
    },
];

/// A gateway's own metrics, in reading order (the sensors behind it report as sensors).
pub const GATEWAY: [Metric; 3] = [
    Metric {
        name: "cpu_pct",
        unit: "%",
        resolution: 0.1,
        description: "CPU utilisation.",
    },
    Metric {
        name: "memory_pct",
        unit: "%",
        resolution: 0.1,
        description: "Share of the memory in use.",
    },
    Metric {
        name: "backhaul_rssi_dbm",
        unit: "dBm",
        resolution: 1.0,
        description: "Signal strength (RSSI) of the cellular backhaul.",
    },
];

/// The metrics of `kind`, in the order of a reading's values.
pub fn metrics(kind: Kind) -> &'static [Metric] {
    match kind {
        Kind::Cabinet => &CABINET,
        Kind::SmallCell => &SMALL_CELL,
        Kind::Sensor => &SENSOR,
        Kind::Gateway => &GATEWAY,
    }
}

/// The names of the metrics of `kind`, in order: a `TelemetryBatch`'s `metric_names`.
pub fn metric_names(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Cabinet => &CABINET_NAMES,
        Kind::SmallCell => &SMALL_CELL_NAMES,
        Kind::Sensor => &SENSOR_NAMES,
        Kind::Gateway => &GATEWAY_NAMES,
    }
}

/// The resolution of each metric of `kind`, in order.
pub fn metric_resolutions(kind: Kind) -> &'static [f64] {
    match kind {
        Kind::Cabinet => &CABINET_RESOLUTIONS,
        Kind::SmallCell => &SMALL_CELL_RESOLUTIONS,
        Kind::Sensor => &SENSOR_RESOLUTIONS,
        Kind::Gateway => &GATEWAY_RESOLUTIONS,
    }
}

const CABINET_NAMES: [&str; 5] = names(&CABINET);
const SMALL_CELL_NAMES: [&str; 5] = names(&SMALL_CELL);
const SENSOR_NAMES: [&str; 5] = names(&SENSOR);
const GATEWAY_NAMES: [&str; 3] = names(&GATEWAY);

const CABINET_RESOLUTIONS: [f64; 5] = resolutions(&CABINET);
const SMALL_CELL_RESOLUTIONS: [f64; 5] = resolutions(&SMALL_CELL);
const SENSOR_RESOLUTIONS: [f64; 5] = resolutions(&SENSOR);
const GATEWAY_RESOLUTIONS: [f64; 3] = resolutions(&GATEWAY);

const fn names<const N: usize>(metrics: &[Metric; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = metrics[i].name;
        i += 1;
    }
    out
}

const fn resolutions<const N: usize>(metrics: &[Metric; N]) -> [f64; N] {
    let mut out = [0.0; N];
    let mut i = 0;
    while i < N {
        out[i] = metrics[i].resolution;
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::is_valid_id;

    /// The wire contract, spelled out: a change here is a change for every device and dashboard.
    #[test]
    fn names_order_and_resolutions_are_the_contract() {
        let expected: [(Kind, &[(&str, f64)]); 4] = [
            (
                Kind::Cabinet,
                &[
                    ("temperature_c", 0.1),
                    ("humidity_pct", 0.5),
                    ("door_open", 1.0),
                    ("optical_rx_dbm", 0.01),
                    ("power_w", 0.1),
                ],
            ),
            (
                Kind::SmallCell,
                &[
                    ("rsrp_dbm", 1.0),
                    ("sinr_db", 0.1),
                    ("connected_ues", 1.0),
                    ("throughput_mbps", 0.1),
                    ("cpu_pct", 0.1),
                ],
            ),
            (
                Kind::Sensor,
                &[
                    ("pm25_ugm3", 0.1),
                    ("no2_ugm3", 0.1),
                    ("temperature_c", 0.1),
                    ("humidity_pct", 0.5),
                    ("battery_pct", 0.1),
                ],
            ),
            (
                Kind::Gateway,
                &[
                    ("cpu_pct", 0.1),
                    ("memory_pct", 0.1),
                    ("backhaul_rssi_dbm", 1.0),
                ],
            ),
        ];
        for (kind, want) in expected {
            let names: Vec<_> = want.iter().map(|(name, _)| *name).collect();
            let resolutions: Vec<_> = want.iter().map(|(_, r)| r.to_bits()).collect();
            assert_eq!(metric_names(kind), names, "{kind}");
            let got: Vec<_> = metric_resolutions(kind)
                .iter()
                .map(|r| r.to_bits())
                .collect();
            assert_eq!(got, resolutions, "{kind}");
            let from_metrics: Vec<_> = metrics(kind).iter().map(|m| m.name).collect();
            assert_eq!(from_metrics, names, "{kind}");
        }
    }

    #[test]
    fn units_are_the_name_suffixes() {
        const SUFFIXES: [(&str, &str); 7] = [
            ("°C", "_c"),
            ("%", "_pct"),
            ("dBm", "_dbm"),
            ("dB", "_db"),
            ("W", "_w"),
            ("Mbit/s", "_mbps"),
            ("µg/m³", "_ugm3"),
        ];
        for kind in Kind::ALL {
            for m in metrics(kind) {
                match SUFFIXES.iter().find(|(unit, _)| *unit == m.unit) {
                    Some((_, suffix)) => assert!(m.name.ends_with(suffix), "{}", m.name),
                    None => {
                        assert_eq!(m.unit, "", "{}: unknown unit", m.name);
                        for (_, suffix) in SUFFIXES {
                            assert!(!m.name.ends_with(suffix), "{} has no unit", m.name);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn metrics_are_well_formed() {
        for kind in Kind::ALL {
            let names = metric_names(kind);
            for (i, m) in metrics(kind).iter().enumerate() {
                assert!(is_valid_id(m.name), "{}", m.name);
                assert!(!names[..i].contains(&m.name), "{} twice in {kind}", m.name);
                let steps_per_unit = 1.0 / m.resolution;
                assert!(m.resolution > 0.0, "{}", m.name);
                assert!(
                    (steps_per_unit - steps_per_unit.round()).abs() < 1e-9,
                    "{}",
                    m.name
                );
                assert!(m.description.ends_with('.') && !m.description.contains('\n'));
            }
        }
    }
}
