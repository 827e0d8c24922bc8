//! citytel's end-to-end tests, in one test binary: each module starts the real `citytel` binary
//! (and, in the `interop` group, Debian's Mosquitto, VictoriaMetrics, Alertmanager or Chromium) as child
//! processes and checks what a user would see. One binary links the service once instead of once
//! per file.
//!
//! The `interop` group needs Debian packages: its tests are always compiled, run with
//! `--features interop`, and otherwise listed as ignored with that command.
//!
//! Run one module with a filter, e.g. `cargo test -p citytel-tests --test e2e fault_kill`.

mod abuse_connections;
mod abuse_memory;
mod alerts;
mod api_keys;
mod api_session;
mod browser_script;
mod dashboard_alerts;
mod dashboard_browser;
mod dashboard_districts;
mod dashboard_export;
mod dashboard_guard;
mod device_identity;
mod devices_cli;
mod district_locations;
mod district_map;
mod endpoint_e2e;
mod fault_bad_input;
mod fault_disk_full;
mod fault_kill;
mod fault_mosquitto_restart;
mod fault_replay;
mod fault_storage_stall;
mod firmware_sim_mosquitto;
mod golden_data_dir;
mod grpc_tls;
mod health_broker;
mod heavy_read;
mod import_dataset;
mod influx_sink;
mod layout;
mod limit_attributes;
mod limit_devices;
mod listener_tls;
mod metrics_endpoint;
mod metrics_token;
mod mosquitto_interop;
mod mqtt5_interop;
mod mqtt5_reason_codes;
mod provisioned_locations;
mod report_cli;
mod report_files;
mod scenario_availability;
mod scopes;
mod shutdown_streams;
mod sink_grafana_schema;
mod sparkplug;
mod tls_interop;
mod tls_reload;
