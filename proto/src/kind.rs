//! The four device kinds citytel knows, and their stable names: the `{kind}` segment of a device's
//! topics, the measurement of its readings in the InfluxDB sink, and the key of its metrics in the
//! [`catalog`](crate::catalog).
//!
//! A topic may name any kind (the service stores the readings of kinds it does not know); these
//! four are the ones whose metrics the contract fixes.

use std::fmt;
use std::str::FromStr;

/// What a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A fibre street cabinet.
    Cabinet,
    /// A 5G small cell.
    SmallCell,
    /// An environmental sensor, with its own connection or behind a gateway.
    Sensor,
    /// A gateway that also reports for the sensors behind it.
    Gateway,
}

impl Kind {
    /// Every kind, in a fixed order: cabinets, small cells, sensors, gateways.
    pub const ALL: [Kind; 4] = [Kind::Cabinet, Kind::SmallCell, Kind::Sensor, Kind::Gateway];

    /// The stable snake_case name, e.g. `"small_cell"`: the `{kind}` topic segment.
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

impl FromStr for Kind {
    type Err = UnknownKind;

    /// Parses a stable name as [`Kind::as_str`] writes it; nothing else (no other case, no
    /// spaces).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or(UnknownKind)
    }
}

/// A name that is none of the four kinds' stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKind;

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a device kind: expected cabinet, small_cell, sensor or gateway")
    }
}

impl std::error::Error for UnknownKind {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_snake_case() {
        let names: Vec<_> = Kind::ALL.iter().map(|k| k.to_string()).collect();
        assert_eq!(names, ["cabinet", "small_cell", "sensor", "gateway"]);
    }

    #[test]
    fn parses_exactly_the_stable_names() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        for other in [
            "",
            "Cabinet",
            "small-cell",
            "smallcell",
            " sensor",
            "gateways",
        ] {
            assert_eq!(other.parse::<Kind>(), Err(UnknownKind), "{other:?}");
        }
    }
}
