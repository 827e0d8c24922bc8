//! The four device kinds citytel knows and their stable names, the `{kind}` segment of a device's
//! topics.

use std::fmt;

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A fibre street cabinet (`cab-NNNN`).
    Cabinet,
    /// A 5G small cell (`cell-NNNN`).
    SmallCell,
    /// An environmental sensor (`sen-NNNN`, or a gateway child `gw-NNNN-sNN`).
    Sensor,
    /// A gateway that also reports for the sensors behind it (`gw-NNNN`).
    Gateway,
}

impl Kind {
    /// Every kind, in the order fleets allocate device numbers and sites.
    pub const ALL: [Kind; 4] = [Kind::Cabinet, Kind::SmallCell, Kind::Sensor, Kind::Gateway];

    /// The `{kind}` topic segment, e.g. `"small_cell"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cabinet => "cabinet",
            Kind::SmallCell => "small_cell",
            Kind::Sensor => "sensor",
            Kind::Gateway => "gateway",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
