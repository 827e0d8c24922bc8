//! What the simulator fixes per device kind beyond the contract's [`Kind`]: the prefix of the
//! device ids it gives a kind and the firmware version string its devices report in their birth.

use citytel_proto::kind::Kind;

/// The prefix of the device ids a fleet gives `kind`, e.g. `"cab"` for `cab-0001`.
pub(crate) fn id_prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::Cabinet => "cab",
        Kind::SmallCell => "cell",
        Kind::Sensor => "sen",
        Kind::Gateway => "gw",
    }
}

/// The firmware version string a device of `kind` reports in its birth.
pub(crate) fn firmware_version(kind: Kind) -> &'static str {
    match kind {
        Kind::Cabinet => "cab-fw 2.4.1",
        Kind::SmallCell => "cell-fw 5.1.0",
        Kind::Sensor => "sen-fw 1.8.3",
        Kind::Gateway => "gw-fw 3.2.0",
    }
}
