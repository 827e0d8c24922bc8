//! Tests of the availability component, one file per module.

mod completeness;
mod districts;
mod history;
mod intermittent;
mod machine;
mod machine_props;
mod offset;
mod state;
