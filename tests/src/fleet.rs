//! The small simulated fleet most end-to-end tests publish with: 3 cabinets, 3 small cells,
//! 3 sensors and a gateway with 2 children on 2 sites, a reading every 20 ms, every publish
//! recorded as ground truth.

use std::path::Path;
use std::time::Duration;

use citytel_firmware_sim::city;
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

/// Writes the simulator's city districts (its GeoJSON) into `dir`, and returns the `--set`
/// value that points citytel's `availability.districts_file` at them.
pub fn city_districts(dir: &Path) -> String {
    let file = dir.join("districts.geojson");
    std::fs::write(&file, city::DISTRICTS_GEOJSON).expect("write the districts file");
    format!(
        "availability.districts_file={:?}",
        file.display().to_string()
    )
}

/// Runs a fleet placed in the simulator's city (its locations and districts) against
/// `host:port` to the end: `cabinets`, `small_cells` and `sensors` on 5 sites, `readings` each,
/// a reading every 20 ms; checks that readings were acknowledged.
pub async fn city(
    (host, port): (String, u16),
    (cabinets, small_cells, sensors): (u32, u32, u32),
    readings: u64,
) -> FleetReport {
    let report = Fleet::new(FleetConfig {
        broker: BrokerAddr::new(host, port),
        cabinets,
        small_cells,
        sensors,
        gateways: 0,
        sites: 5,
        interval: Duration::from_millis(20),
        readings: Some(readings),
        city: true,
        ..FleetConfig::default()
    })
    .expect("valid fleet")
    .run(CancellationToken::new(), None)
    .await
    .expect("fleet runs");
    assert!(report.totals.readings_acked > 0, "the city fleet was heard");
    report
}
