//! The scenarios that ship with the simulator, embedded from `firmware-sim/scenarios/*.toml`.

use super::validate::{Scenario, ScenarioError};

/// A built-in scenario: its name and TOML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// Name, as given to `firmware-sim scenario NAME`.
    pub name: &'static str,
    /// The scenario file.
    pub toml: &'static str,
}

/// Every built-in scenario.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "power-cut",
        toml: include_str!("../../scenarios/power-cut.toml"),
    },
    Builtin {
        name: "gateway-failure",
        toml: include_str!("../../scenarios/gateway-failure.toml"),
    },
    Builtin {
        name: "reboot-loop",
        toml: include_str!("../../scenarios/reboot-loop.toml"),
    },
    Builtin {
        name: "clock-skew",
        toml: include_str!("../../scenarios/clock-skew.toml"),
    },
    Builtin {
        name: "backfill",
        toml: include_str!("../../scenarios/backfill.toml"),
    },
    Builtin {
        name: "flapping-link",
        toml: include_str!("../../scenarios/flapping-link.toml"),
    },
    Builtin {
        name: "sleepy-sensor",
        toml: include_str!("../../scenarios/sleepy-sensor.toml"),
    },
];

impl Builtin {
    /// The parsed and checked scenario.
    pub fn scenario(&self) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml(self.name, self.toml)
    }
}

/// The built-in scenario `name`.
pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
    BUILTINS
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| ScenarioError::UnknownBuiltin(name.to_string()))?
        .scenario()
}
