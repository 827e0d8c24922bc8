//! The persisted vocabulary of device availability: the [`DeviceState`] a device is in and the
//! [`Cause`] of every transition between states.
//!
//! Both enums carry a stable one-byte code (for compact records) and a stable snake_case name (for
//! the API, logs and text formats). Codes start at 1 so that 0 can mean "absent" in a record, and a
//! variant's code and name never change once released; new variants take new codes.

use std::fmt;
use std::str::FromStr;

/// A name that is not one of the stable names of a [`DeviceState`] or a [`Cause`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} name {name:?}")]
pub struct UnknownName {
    /// What was being parsed: `"device state"` or `"cause"`.
    pub kind: &'static str,
    /// The name that was not recognised.
    pub name: String,
}

/// Generates `ALL`, `as_str`, `code`, `from_code`, `Display` and `FromStr` for a field-less enum
/// whose variants are listed in code order.
macro_rules! stable_enum {
    ($ty:ident, $kind:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every variant, in code order.
            pub const ALL: &[$ty] = &[$($ty::$variant),+];

            /// Stable snake_case name, used in the API, logs and text formats.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// Stable one-byte code (never 0), used in binary records.
            pub fn code(self) -> u8 {
                self as u8 + 1
            }

            /// The variant with the given [`code`](Self::code).
            pub fn from_code(code: u8) -> Option<$ty> {
                $ty::ALL.get(usize::from(code.checked_sub(1)?)).copied()
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;

            /// Parses a name produced by [`as_str`](Self::as_str).
            fn from_str(name: &str) -> Result<$ty, UnknownName> {
                match name {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(UnknownName { kind: $kind, name: name.to_owned() }),
                }
            }
        }
    };
}

/// What citytel believes about a device right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceState {
    /// Nothing is known: never heard from, or citytel itself was not watching (its own restart),
    /// or the device's gateway came back and the device has not spoken yet. Excluded from
    /// availability.
    #[default]
    Unknown,
    /// Heard from within the expected interval times the late grace.
    Online,
    /// Overdue: nothing heard for longer than the late threshold, not yet the offline threshold.
    /// Still counted as available.
    Late,
    /// Down: it said so (death, Last Will), its connection closed, or it stayed silent past the
    /// offline threshold. Counted as unavailable.
    Offline,
    /// Its gateway is offline, so nothing of it can arrive: not the device's own fault. Excluded
    /// from availability.
    Unreachable,
}

stable_enum!(DeviceState, "device state", [
    Unknown => "unknown",
    Online => "online",
    Late => "late",
    Offline => "offline",
    Unreachable => "unreachable",
]);

/// Why a device changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// The device sent a birth.
    Birth,
    /// The device sent a heartbeat.
    Heartbeat,
    /// The device sent readings.
    Reading,
    /// The device opened a connection to citytel's device endpoint.
    Connected,
    /// The device announced an orderly shutdown (death, reason shutdown).
    Shutdown,
    /// The device announced a reboot (death, reason reboot).
    Rebooting,
    /// The device announced it is losing power (death, reason power loss).
    PowerLoss,
    /// The device sent a death without a known reason.
    Death,
    /// The device's MQTT Last Will was published: its connection dropped.
    LastWill,
    /// The device closed its connection cleanly (MQTT DISCONNECT) without a death.
    Disconnected,
    /// The device's connection dropped without a DISCONNECT, seen by the device endpoint (or a
    /// death whose stated reason is a lost connection, e.g. from a gateway about a child).
    ConnectionLost,
    /// Nothing heard for longer than the late threshold: Online became Late.
    HeartbeatMissed,
    /// Nothing heard for longer than the offline threshold: the device became Offline.
    Silent,
    /// Its gateway went offline (or it fell silent past a threshold while its gateway was
    /// offline): the device became Unreachable.
    GatewayOffline,
    /// The gateway came back: an Unreachable device became Unknown until it is heard.
    GatewayOnline,
    /// citytel itself restarted: what happened while it was down is unknown.
    IngesterRestart,
}

stable_enum!(Cause, "cause", [
    Birth => "birth",
    Heartbeat => "heartbeat",
    Reading => "reading",
    Connected => "connected",
    Shutdown => "shutdown",
    Rebooting => "rebooting",
    PowerLoss => "power_loss",
    Death => "death",
    LastWill => "last_will",
    Disconnected => "disconnected",
    ConnectionLost => "connection_lost",
    HeartbeatMissed => "heartbeat_missed",
    Silent => "silent",
    GatewayOffline => "gateway_offline",
    GatewayOnline => "gateway_online",
    IngesterRestart => "ingester_restart",
]);
