//! Devices placed in districts: by the location their birth states (point in polygon of the
//! districts file), else by their site; kept across births without one and across restores.

use citytel_proto::v1::{Birth, Location as WireLocation, Status, status};
use prost::Message as _;

use super::*;
use crate::db::Database;

/// Two squares: west (longitude 0 to 1) and east (1 to 2), latitude 0 to 1.
const MAP: &str = r#"{"type":"FeatureCollection","features":[
  {"type":"Feature","properties":{"name":"west"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}},
  {"type":"Feature","properties":{"name":"east"},"geometry":{"type":"Polygon","coordinates":[[[1,0],[2,0],[2,1],[1,1],[1,0]]]}}]}"#;

fn open(dir: &std::path::Path) -> Arc<Database> {
    let file = dir.join("districts.geojson");
    std::fs::write(&file, MAP).unwrap();
    let text = format!(
        "[availability]\ndistricts = {{ harbour-site = \"harbour\" }}\ndistricts_file = {:?}\n",
        file.display().to_string()
    );
    let options = crate::config::load_str(Some(("test", &text)), &[])
        .unwrap()
        .validate()
        .unwrap()
        .store_options(crate::clock::Clock::System);
    Database::open(&dir.join("data"), &options).unwrap().0
}

fn birth(state: &mut State, device: &str, site: &str, at: Option<(f64, f64)>) {
    let s = Status {
        device_id: device.into(),
        boot_id: 1,
        time_unix_ms: 0,
        gateway_id: None,
        kind: Some(status::Kind::Birth(Birth {
            firmware_version: "fw".into(),
            reporting_interval_ms: 60_000,
            heartbeat_interval_ms: None,
            children: vec![],
            intermittent: None,
            location: at.map(|(latitude, longitude)| WireLocation {
                latitude,
                longitude,
            }),
        })),
    };
    let topic = format!("citytel/v1/{site}/cabinet/{device}/status");
    let payload = s.encode_to_vec();
    let entry = Entry::Message {
        received_at_ms: 1_000,
        topic: &topic,
        payload: &payload,
    };
    state.apply(&entry, Some(&Decoded::Status(s)));
}

fn district(state: &State, device: &str) -> Option<String> {
    state.device(device)?.district.map(str::to_string)
}

#[test]
fn a_birth_with_a_location_places_the_device_by_polygon_and_one_without_by_its_site() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut state = db.write();
    birth(&mut state, "cab-w", "harbour-site", Some((0.5, 0.5)));
    birth(&mut state, "cab-border", "harbour-site", Some((0.5, 1.0)));
    birth(&mut state, "cab-none", "harbour-site", None);
    birth(&mut state, "cab-outside", "harbour-site", Some((5.0, 5.0)));
    birth(&mut state, "cab-lost", "unmapped", Some((5.0, 5.0)));
    assert_eq!(district(&state, "cab-w").as_deref(), Some("west"));
    assert_eq!(
        district(&state, "cab-border").as_deref(),
        Some("west"),
        "first in file"
    );
    assert_eq!(district(&state, "cab-none").as_deref(), Some("harbour"));
    assert_eq!(district(&state, "cab-outside").as_deref(), Some("harbour"));
    assert_eq!(district(&state, "cab-lost"), None);
    let rec = state.registry().get("cab-w").unwrap();
    assert_eq!(rec.location, Some(Location::new(0.5, 0.5).unwrap()));
}

#[test]
fn a_later_birth_without_a_location_keeps_it_and_one_with_a_new_location_moves_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut state = db.write();
    birth(&mut state, "cab-1", "harbour-site", Some((0.5, 1.5)));
    assert_eq!(district(&state, "cab-1").as_deref(), Some("east"));
    birth(&mut state, "cab-1", "harbour-site", None);
    assert_eq!(district(&state, "cab-1").as_deref(), Some("east"));
    birth(&mut state, "cab-1", "harbour-site", Some((0.5, 0.5)));
    assert_eq!(district(&state, "cab-1").as_deref(), Some("west"));
}

#[test]
fn a_restored_device_is_placed_again_from_its_stored_location() {
    let sites = [("s".to_string(), "south".to_string())]
        .into_iter()
        .collect();
    let districts = Districts::new(
        citytel_availability::DistrictMap::from_geojson(MAP).unwrap(),
        &sites,
    );
    let mut registry = Registry::new(Arc::new(districts));
    let record = |id: &str, location| DeviceRecord {
        device_id: id.into(),
        kind: "cabinet".into(),
        site: "s".into(),
        first_seen_ms: 0,
        last_seen_ms: 0,
        firmware_version: None,
        boot_id: None,
        gateway_id: None,
        reporting_interval_ms: None,
        readings_total: 0,
        metrics: Default::default(),
        location,
        district: None,
    };
    registry.restore(record("a", Some(Location::new(0.5, 1.5).unwrap())));
    registry.restore(record("b", None));
    assert_eq!(registry.get("a").unwrap().district.as_deref(), Some("east"));
    assert_eq!(
        registry.get("b").unwrap().district.as_deref(),
        Some("south")
    );
}

/// `open`, with the provisioning file `devices` (absolute) in force.
fn open_provisioned(dir: &std::path::Path, devices: &str) -> Result<Arc<Database>, String> {
    let map = dir.join("districts.geojson");
    std::fs::write(&map, MAP).unwrap();
    let file = dir.join("devices.toml");
    std::fs::write(&file, devices).unwrap();
    let text = format!(
        "[availability]\ndistricts = {{ harbour-site = \"harbour\" }}\ndistricts_file = {:?}\n\
         [endpoint]\nauthentication = true\ndevices_file = {:?}\n",
        map.display().to_string(),
        file.display().to_string()
    );
    let options = crate::config::load_str(Some(("test", &text)), &[])
        .unwrap()
        .validate()
        .map_err(|e| e.to_string())?
        .store_options(crate::clock::Clock::System);
    Ok(Database::open(&dir.join("data"), &options).unwrap().0)
}

const PROVISIONED: &str = "version = 1\n\
    [[device]]\nid = \"cab-p\"\nkind = \"cabinet\"\nsite = \"harbour-site\"\nlatitude = 0.5\nlongitude = 1.5\n\
    [[device]]\nid = \"cab-q\"\nkind = \"cabinet\"\nsite = \"harbour-site\"\nlatitude = 0.5\nlongitude = 1.5\n\
    [[device]]\nid = \"cab-r\"\nkind = \"cabinet\"\nsite = \"harbour-site\"\n";

#[test]
fn a_provisioned_location_places_a_device_whose_birth_states_none_and_a_stated_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_provisioned(dir.path(), PROVISIONED).unwrap();
    let mut state = db.write();
    birth(&mut state, "cab-p", "harbour-site", None);
    birth(&mut state, "cab-q", "harbour-site", Some((0.5, 0.5)));
    birth(&mut state, "cab-r", "harbour-site", None);
    assert_eq!(
        district(&state, "cab-p").as_deref(),
        Some("east"),
        "provisioned"
    );
    assert_eq!(
        district(&state, "cab-q").as_deref(),
        Some("west"),
        "the birth wins"
    );
    assert_eq!(
        district(&state, "cab-r").as_deref(),
        Some("harbour"),
        "none: its site"
    );
    let located = |id: &str| state.device(id).and_then(|v| v.location);
    assert_eq!(located("cab-p"), Location::new(0.5, 1.5).ok());
    assert_eq!(located("cab-q"), Location::new(0.5, 0.5).ok());
    assert_eq!(located("cab-r"), None);
    // Only the birth's location is the device's own (what a checkpoint keeps).
    assert_eq!(state.registry().get("cab-p").unwrap().location, None);
    // A later birth that states a location moves it; one without keeps the stated one.
    birth(&mut state, "cab-p", "harbour-site", Some((0.5, 0.5)));
    assert_eq!(district(&state, "cab-p").as_deref(), Some("west"));
    birth(&mut state, "cab-p", "harbour-site", None);
    assert_eq!(district(&state, "cab-p").as_deref(), Some("west"));
}

#[test]
fn a_provisioning_file_with_a_bad_location_stops_citytel_naming_the_device_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = PROVISIONED.replace(
        "longitude = 1.5\n[[device]]\nid = \"cab-q\"",
        "[[device]]\nid = \"cab-q\"",
    );
    let err = open_provisioned(dir.path(), &bad).unwrap_err();
    assert!(err.contains("endpoint.devices_file"), "{err}");
    assert!(
        err.contains("device \"cab-p\" (line 2): give both latitude and longitude"),
        "{err}"
    );
}
