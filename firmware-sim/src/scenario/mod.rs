//! Scripted scenarios: a timeline of what a handful of devices do (boot, report, lose power,
//! reboot, lose their link, buffer and backfill, run with a wrong clock, fail as a gateway, show a
//! fault in their readings), run over real MQTT, and the ground truth of what they did, so tests
//! can compare citytel's view.
//!
//! ```text
//! scenario file (TOML) ─> spec::ScenarioFile ─> validate ─> Scenario
//!                                                              │
//!        runner::run(Scenario, pacer::Pacer) ── firmware::Firmware per device (pure)
//!                 │                    └─ session::Session per connection (rumqttc)
//!                 v
//!          truth::ScenarioReport ─> JSON (serde) | text::render
//! ```
//!
//! - [`spec`]: the file format.
//! - [`validate`]: checks a file and resolves it into a [`Scenario`]; [`ScenarioError`].
//! - [`mod@builtin`]: the scenarios shipped in `firmware-sim/scenarios/`.
//! - [`firmware`]: one device's firmware state, no I/O.
//! - [`session`]: one MQTT connection.
//! - [`pacer`]: how time passes: [`Pacer`], [`RealTime`].
//! - [`runner`]: steps through the timeline.
//! - [`truth`]: the ground truth, [`ScenarioReport`].
//! - [`text`]: the report for people.

pub mod builtin;
pub mod firmware;
pub mod pacer;
pub mod runner;
pub mod session;
pub mod spec;
pub mod text;
pub mod truth;
pub mod validate;

#[cfg(test)]
mod tests;

pub use builtin::{BUILTINS, Builtin, builtin};
pub use pacer::{Pacer, RealTime, Step, wall_clock_ms};
pub use runner::{RunOptions, run};
pub use spec::{Action, ScenarioFile};
pub use truth::{
    BootTruth, Delivered, Delivery, DeviceCondition, DeviceTruth, Period, ReadingTruth,
    ScenarioReport,
};
pub use validate::{DeviceDef, Scenario, ScenarioError, ScheduledEvent};
