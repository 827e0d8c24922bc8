//! Tests of the availability component, one file per module.

mod clock;
mod completeness;
mod history;
mod machine;
mod machine_props;
mod state;
