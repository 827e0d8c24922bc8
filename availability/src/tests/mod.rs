//! Tests of the availability component, one file per module.

mod completeness;
mod history;
mod intermittent;
mod machine;
mod machine_props;
mod offset;
mod state;
