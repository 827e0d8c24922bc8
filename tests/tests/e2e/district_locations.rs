//! Device locations and districts on the real binary: the simulator's fleet states where each
//! device stands in its synthetic city, citytel places it with the city's GeoJSON districts, and
//! a device that states no location stays in its site's district.
//!
//! The expected districts come from the simulator's own layout (`city::district_of_site`: which
//! district each site was dealt to), not from citytel's point-in-polygon.

use std::collections::BTreeMap;
use std::time::Duration;

use citytel_firmware_sim::city;
use citytel_firmware_sim::fleet::BrokerAddr;
use citytel_firmware_sim::{Fleet, FleetConfig};
use citytel_proto::v1::ListDevicesRequest;
use citytel_tests::process::Citytel;
use tokio_util::sync::CancellationToken;

async fn run(config: FleetConfig) {
    let report = Fleet::new(config)
        .expect("valid fleet")
        .run(CancellationToken::new(), None)
        .await
        .expect("fleet runs");
    assert!(report.totals.readings_acked > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_placed_by_their_stated_location_and_otherwise_by_their_site() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("districts.geojson");
    std::fs::write(&file, city::DISTRICTS_GEOJSON).unwrap();
    let mut args = vec![
        "--set".to_string(),
        format!(
            "availability.districts_file={:?}",
            file.display().to_string()
        ),
    ];
    // Every site's fallback is "depot": a device placed there stated no location.
    for site in 1..=5 {
        args.push("--set".into());
        args.push(format!("availability.districts.site-{site:02}=\"depot\""));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let citytel = Citytel::start(&dir.path().join("data"), &args);
    let (host, port) = citytel.mqtt_host_port();
    let fleet = |city: bool| FleetConfig {
        broker: BrokerAddr::new(host.clone(), port),
        cabinets: 0,
        small_cells: 0,
        sensors: 0,
        gateways: 0,
        children_per_gateway: 2,
        sites: 5,
        interval: Duration::from_millis(20),
        readings: Some(2),
        city,
        ..FleetConfig::default()
    };
    // Located: 5 cabinets (one per site) and a gateway with 2 children at site-01... the sixth
    // device deals to site-01 again.
    run(FleetConfig {
        cabinets: 5,
        gateways: 1,
        ..fleet(true)
    })
    .await;
    // Not located: 3 small cells.
    run(FleetConfig {
        small_cells: 3,
        ..fleet(false)
    })
    .await;

    let devices = citytel
        .client()
        .await
        .list_devices(ListDevicesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .devices;
    let got: BTreeMap<String, (String, String)> = devices
        .into_iter()
        .map(|d| (d.device_id, (d.site, d.district)))
        .collect();
    assert_eq!(got.len(), 5 + 1 + 2 + 3, "{got:?}");
    let mut districts_seen = std::collections::BTreeSet::new();
    for (id, (site, district)) in &got {
        let want = if id.starts_with("cell-") {
            "depot"
        } else {
            city::district_of_site(site)
        };
        assert_eq!(district, want, "{id} at {site}");
        districts_seen.insert(district.clone());
    }
    assert_eq!(
        districts_seen.len(),
        6,
        "all five city districts and the fallback: {districts_seen:?}"
    );
}
