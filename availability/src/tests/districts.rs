//! Districts: point in polygon, the border rule, holes, the site fallback and bad files.

use std::collections::BTreeMap;

use crate::districts::{DistrictMap, Districts, DistrictsError, Location};

/// Two unit squares side by side sharing the border longitude 1 (west first in the file), and
/// east with a hole from 1.4 to 1.6 in both axes.
const MAP: &str = r#"{
  "type": "FeatureCollection",
  "features": [
    { "type": "Feature", "properties": { "name": "west" },
      "geometry": { "type": "Polygon",
        "coordinates": [[[0,0],[1,0],[1,1],[0,1],[0,0]]] } },
    { "type": "Feature", "properties": { "name": "east" },
      "geometry": { "type": "Polygon",
        "coordinates": [[[1,0],[2,0],[2,1],[1,1],[1,0]],
                        [[1.25,0.25],[1.75,0.25],[1.75,0.75],[1.25,0.75],[1.25,0.25]]] } }
  ]
}"#;

fn at(latitude: f64, longitude: f64) -> Location {
    Location::new(latitude, longitude).expect("valid")
}

fn map() -> DistrictMap {
    DistrictMap::from_geojson(MAP).expect("parses")
}

fn name(map: &DistrictMap, l: Location) -> Option<String> {
    map.locate(l).map(|d| d.to_string())
}

#[test]
fn a_point_inside_a_polygon_is_in_its_district() {
    let m = map();
    assert_eq!(name(&m, at(0.5, 0.5)).as_deref(), Some("west"));
    assert_eq!(name(&m, at(0.1, 1.9)).as_deref(), Some("east"));
    assert_eq!(m.names().len(), 2);
}

#[test]
fn a_point_on_a_shared_border_is_in_the_first_district_of_the_file() {
    let m = map();
    assert_eq!(name(&m, at(0.5, 1.0)).as_deref(), Some("west"));
    // The corner both squares share.
    assert_eq!(name(&m, at(1.0, 1.0)).as_deref(), Some("west"));
    // The same squares in the other order: the border goes to east.
    let swapped = MAP
        .replacen("\"west\"", "\"tmp\"", 1)
        .replacen("\"east\"", "\"west\"", 1);
    let swapped =
        DistrictMap::from_geojson(&swapped.replacen("\"tmp\"", "\"east\"", 1)).expect("parses");
    assert_eq!(name(&swapped, at(0.5, 1.0)).as_deref(), Some("east"));
}

#[test]
fn a_point_on_an_outer_edge_or_corner_is_in_the_district() {
    let m = map();
    assert_eq!(name(&m, at(0.0, 0.5)).as_deref(), Some("west"));
    assert_eq!(name(&m, at(0.0, 0.0)).as_deref(), Some("west"));
    assert_eq!(name(&m, at(1.0, 2.0)).as_deref(), Some("east"));
    // Just outside.
    assert_eq!(name(&m, at(-1e-9, 0.5)), None);
    assert_eq!(name(&m, at(0.5, 2.0 + 1e-9)), None);
}

#[test]
fn a_hole_is_outside_its_district_but_its_outline_is_inside() {
    let m = map();
    assert_eq!(name(&m, at(0.5, 1.5)), None);
    assert_eq!(name(&m, at(0.25, 1.5)).as_deref(), Some("east"));
}

#[test]
fn a_device_without_a_location_or_outside_every_polygon_keeps_its_sites_district() {
    let sites = BTreeMap::from([("site-1".to_string(), "harbour".to_string())]);
    let d = Districts::new(map(), &sites);
    let name = |site, l| d.locate(site, l).map(|d| d.to_string());
    assert_eq!(name("site-1", None).as_deref(), Some("harbour"));
    assert_eq!(
        name("site-1", Some(at(5.0, 5.0))).as_deref(),
        Some("harbour")
    );
    assert_eq!(name("site-1", Some(at(0.5, 0.5))).as_deref(), Some("west"));
    assert_eq!(name("site-unmapped", None), None);
    assert_eq!(name("site-unmapped", Some(at(0.5, 1.5))), None);
    let all: Vec<String> = d.names().iter().map(|n| n.to_string()).collect();
    assert_eq!(all, ["west", "east", "harbour"]);
}

#[test]
fn a_provisioned_location_places_a_device_that_states_none_and_its_own_wins() {
    let sites = BTreeMap::from([("site-1".to_string(), "harbour".to_string())]);
    let provisioned = BTreeMap::from([("cab-1".to_string(), at(0.1, 1.9))]);
    let d = Districts::new(map(), &sites).with_provisioned(provisioned);
    let placed = |device, stated| {
        let location = d.location(device, stated);
        (
            location,
            d.locate("site-1", location).map(|d| d.to_string()),
        )
    };
    assert_eq!(
        placed("cab-1", None),
        (Some(at(0.1, 1.9)), Some("east".into())),
        "the provisioned location"
    );
    assert_eq!(
        placed("cab-1", Some(at(0.5, 0.5))),
        (Some(at(0.5, 0.5)), Some("west".into())),
        "the birth wins"
    );
    assert_eq!(
        placed("cab-2", None),
        (None, Some("harbour".into())),
        "not provisioned: the site's"
    );
}

#[test]
fn without_a_districts_file_only_sites_decide() {
    let sites = BTreeMap::from([("s".to_string(), "north".to_string())]);
    let d = Districts::new(DistrictMap::default(), &sites);
    assert_eq!(
        d.locate("s", Some(at(0.5, 0.5))).map(|d| &**d),
        Some("north")
    );
    assert!(d.map().is_empty());
}

#[test]
fn locations_out_of_range_are_refused() {
    for (lat, lon) in [
        (90.1, 0.0),
        (-91.0, 0.0),
        (0.0, 180.5),
        (f64::NAN, 0.0),
        (0.0, f64::INFINITY),
    ] {
        assert!(
            matches!(
                Location::new(lat, lon),
                Err(DistrictsError::InvalidLocation { .. })
            ),
            "{lat} {lon}"
        );
    }
    assert!(Location::new(90.0, -180.0).is_ok());
}

#[test]
fn bad_districts_files_are_refused_with_the_reason() {
    let err = |text: &str| DistrictMap::from_geojson(text).expect_err("refused");
    assert!(matches!(err("{"), DistrictsError::NotGeoJson(_)));
    assert_eq!(
        err(r#"{"type":"Point","coordinates":[0,0]}"#),
        DistrictsError::NotFeatureCollection
    );
    let feature = |props: &str, geometry: &str| {
        format!(
            r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{props},"geometry":{geometry}}}]}}"#
        )
    };
    let square = r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#;
    assert_eq!(err(&feature("{}", square)), DistrictsError::NoName(1));
    assert_eq!(
        err(&feature(r#"{"name":""}"#, square)),
        DistrictsError::NoName(1)
    );
    assert!(matches!(
        err(&feature(
            r#"{"name":"a"}"#,
            r#"{"type":"Point","coordinates":[0,0]}"#
        )),
        DistrictsError::NotPolygon { index: 1, .. }
    ));
    assert!(matches!(
        err(&feature(r#"{"name":"a"}"#, "null")),
        DistrictsError::NotPolygon { index: 1, .. }
    ));
    // Latitude and longitude swapped: 200 is no latitude.
    let swapped = r#"{"type":"Polygon","coordinates":[[[0,0],[1,200],[1,1],[0,0]]]}"#;
    assert!(matches!(
        err(&feature(r#"{"name":"a"}"#, swapped)),
        DistrictsError::BadCoordinate { index: 1, .. }
    ));
}

#[test]
fn a_multipolygon_district_covers_each_of_its_parts() {
    let text = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"isles"},
      "geometry":{"type":"MultiPolygon","coordinates":[
        [[[0,0],[1,0],[1,1],[0,1],[0,0]]],
        [[[3,3],[4,3],[4,4],[3,4],[3,3]]]]}}]}"#;
    let m = DistrictMap::from_geojson(text).expect("parses");
    assert_eq!(name(&m, at(0.5, 0.5)).as_deref(), Some("isles"));
    assert_eq!(name(&m, at(3.5, 3.5)).as_deref(), Some("isles"));
    assert_eq!(name(&m, at(2.0, 2.0)), None);
}
