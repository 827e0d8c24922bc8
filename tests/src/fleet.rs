//! The small simulated fleet most end-to-end tests publish with: 3 cabinets, 3 small cells,
//! 3 sensors and a gateway with 2 children on 2 sites, a reading every 20 ms, every publish
//! recorded as ground truth.

use std::time::Duration;

use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::{Fleet, FleetConfig, FleetReport};
use tokio_util::sync::CancellationToken;

/// The small fleet against `host:port`, each device publishing `readings` readings.
pub fn small(host: impl Into<String>, port: u16, readings: u64) -> FleetConfig {
    FleetConfig {
        broker: BrokerAddr::new(host, port),
        cabinets: 3,
        small_cells: 3,
        sensors: 3,
        gateways: 1,
        children_per_gateway: 2,
        sites: 2,
        interval: Duration::from_millis(20),
        readings: Some(readings),
        record: true,
        ..FleetConfig::default()
    }
}

/// Runs `config` to the end and checks that it published and that its server acknowledged every
/// reading (a fault-free run).
pub async fn run(config: FleetConfig) -> FleetReport {
    let report = Fleet::new(config)
        .expect("valid fleet")
        .run(CancellationToken::new(), None)
        .await
        .expect("fleet runs");
    assert!(report.totals.readings_published > 0, "the fleet published");
    assert_eq!(
        report.totals.readings_acked, report.totals.readings_published,
        "every reading acknowledged in a fault-free run"
    );
    report
}
