//! The four device kinds citytel knows and what is fixed per kind: the topic segment, the device id
//! prefix and the firmware version string a device of that kind reports in its birth.

use std::fmt;

/// What a simulated device is.
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

    /// The prefix of the device ids a fleet gives this kind, e.g. `"cab"` for `cab-0001`.
    pub(crate) fn id_prefix(self) -> &'static str {
        match self {
            Kind::Cabinet => "cab",
            Kind::SmallCell => "cell",
            Kind::Sensor => "sen",
            Kind::Gateway => "gw",
        }
    }

    /// The firmware version string a device of this kind reports in its birth.
    pub(crate) fn firmware_version(self) -> &'static str {
        match self {
            Kind::Cabinet => "cab-fw 2.4.1",
            Kind::SmallCell => "cell-fw 5.1.0",
            Kind::Sensor => "sen-fw 1.8.3",
            Kind::Gateway => "gw-fw 3.2.0",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
