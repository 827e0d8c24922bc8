//! The districts' outlines (`ReportService.GetDistrictMap`) and the devices' locations
//! (`Device.location`) on the real binary, with the simulator's districts file, its city fleet
//! and API keys: a key that sees everything gets every polygon of the file, in file order and
//! with the file's coordinates; a key scoped to two sites gets only the districts of those
//! sites; every device that stated a location lists the one the simulator gave it; and
//! `ListDevices` with a district filter lists that district's devices the key sees, in pages.
//!
//! The oracles are the file itself (parsed here as plain JSON) and the simulator's own layout
//! (`city::district_of_site`, `city::location`), not citytel's reading of them.

use citytel_firmware_sim::city;
use citytel_proto::v1::report_service_client::ReportServiceClient;
use citytel_proto::v1::{self, GetDistrictMapResponse, ListDevicesRequest};
use citytel_tests::fleet;
use citytel_tests::keys::{self, Bearer};
use citytel_tests::process::Citytel;

/// `GetDistrictMap` as `key` sees it.
async fn district_map(citytel: &Citytel, key: &str) -> GetDistrictMapResponse {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", citytel.grpc))
        .expect("url")
        .connect()
        .await
        .expect("gRPC connects");
    ReportServiceClient::with_interceptor(channel, Bearer(Some(key.to_string())))
        .get_district_map(v1::GetDistrictMapRequest {})
        .await
        .expect("GetDistrictMap")
        .into_inner()
}

fn names(map: &GetDistrictMapResponse) -> Vec<&str> {
    map.areas.iter().map(|a| a.district.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_district_map_and_device_locations_follow_each_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let set = fleet::city_districts(dir.path());
    let data = dir.path().join("data");
    let citytel = Citytel::start(&data, &["--set", &set, "--set", "api.authentication=true"]);
    let admin_key = keys::admin_key(&data);
    let mut admin = keys::admin(&citytel, &admin_key).await;
    keys::create_org(&mut admin, "works", "Public works").await;
    let sites = ["site-01", "site-03"];
    let scope = v1::Scope {
        sites: sites.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let scoped = keys::create_key(&mut admin, "works", "viewer", Some(scope), 0).await;

    fleet::city(citytel.mqtt_host_port(), (5, 0, 5), 2).await;

    // Everything: every feature of the file, in its order, with its coordinates.
    let file: serde_json::Value = serde_json::from_str(city::DISTRICTS_GEOJSON).expect("JSON");
    let features = file["features"].as_array().expect("features");
    let map = district_map(&citytel, &admin_key).await;
    let in_file: Vec<&str> = features
        .iter()
        .map(|f| f["properties"]["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names(&map), in_file, "every district, in file order");
    for (area, feature) in map.areas.iter().zip(features) {
        let rings = feature["geometry"]["coordinates"]
            .as_array()
            .expect("rings");
        assert_eq!(area.polygons.len(), 1, "{}: one polygon", area.district);
        let got = &area.polygons[0].rings;
        assert_eq!(got.len(), rings.len(), "{}: its rings", area.district);
        for (ring, want) in got.iter().zip(rings) {
            let want: Vec<(f64, f64)> = want
                .as_array()
                .expect("points")
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect();
            let got: Vec<(f64, f64)> = ring
                .points
                .iter()
                .map(|p| (p.longitude, p.latitude))
                .collect();
            assert_eq!(
                got, want,
                "{}: GeoJSON's [longitude, latitude]",
                area.district
            );
        }
    }

    // A key scoped to two sites: only their districts, still in file order.
    let seen: Vec<&str> = in_file
        .iter()
        .copied()
        .filter(|d| sites.iter().any(|s| city::district_of_site(s) == *d))
        .collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(names(&district_map(&citytel, &scoped).await), seen);

    // Every device stated the simulator's location for it.
    let devices = keys::query(&citytel, Some(&admin_key))
        .await
        .list_devices(ListDevicesRequest::default())
        .await
        .expect("ListDevices")
        .into_inner()
        .devices;
    assert_eq!(devices.len(), 10);
    for d in &devices {
        let (latitude, longitude) = city::location(&d.device_id, &d.site);
        assert_eq!(
            d.location,
            Some(v1::Location {
                latitude,
                longitude
            }),
            "{}",
            d.device_id
        );
    }

    // ListDevices with a district filter: that district's devices (by the simulator's layout),
    // and of those only the ones the key sees.
    for district in &in_file {
        for (key, key_sites) in [(&admin_key, None), (&scoped, Some(&sites))] {
            let answer = keys::query(&citytel, Some(key))
                .await
                .list_devices(ListDevicesRequest {
                    district: district.to_string(),
                    page_size: 1,
                    ..Default::default()
                })
                .await
                .expect("ListDevices")
                .into_inner();
            let want: Vec<&str> = devices
                .iter()
                .filter(|d| city::district_of_site(&d.site) == *district)
                .filter(|d| key_sites.is_none_or(|s| s.contains(&d.site.as_str())))
                .map(|d| d.device_id.as_str())
                .collect();
            let got: Vec<&str> = answer
                .devices
                .iter()
                .map(|d| d.device_id.as_str())
                .collect();
            let first_page: Vec<&str> = want.iter().copied().take(1).collect();
            assert_eq!(
                got,
                first_page,
                "{district}, scoped: {}",
                key_sites.is_some()
            );
            assert_eq!(answer.total as usize, want.len(), "{district}: the total");
            assert_eq!(
                answer.next_page_token.is_empty(),
                want.len() <= 1,
                "{district}: more pages"
            );
        }
    }
    assert!(citytel.stop().success(), "citytel exits cleanly");
}
