//! The districts' outlines for drawing a map (`ReportService.GetDistrictMap`): the polygons of
//! `availability.districts_file`, read once at start from the same text the district
//! assignment uses ([`citytel_availability::DistrictMap`] checks it and places devices; this
//! keeps the rings themselves, which the assignment does not hand out), and given to a caller
//! only for the districts where it sees a device.

use citytel_proto::v1;
use geojson::{GeoJson, Value};

/// Why the outlines of a districts file cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MapError {
    /// Text that is not a GeoJSON FeatureCollection.
    #[error("not a GeoJSON FeatureCollection: {0}")]
    NotFeatureCollection(String),
    /// A feature without a name or without a polygon.
    #[error("feature {0} is not a named Polygon or MultiPolygon")]
    NotNamedPolygon(usize),
}

/// One feature: a district's polygons, each an outer ring then its holes, each ring a list of
/// `[longitude, latitude]` points.
#[derive(Debug, Clone, PartialEq)]
struct Area {
    district: String,
    polygons: Vec<Vec<Vec<[f64; 2]>>>,
}

/// The districts' outlines, in file order; empty without a districts file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DistrictOutlines {
    areas: Vec<Area>,
}

impl DistrictOutlines {
    /// The outlines of a GeoJSON FeatureCollection of named Polygons and MultiPolygons (a
    /// districts file, already checked by the district assignment).
    pub fn from_geojson(text: &str) -> Result<Self, MapError> {
        let GeoJson::FeatureCollection(collection) = text
            .parse::<GeoJson>()
            .map_err(|e| MapError::NotFeatureCollection(e.to_string()))?
        else {
            return Err(MapError::NotFeatureCollection(
                "another GeoJSON object".into(),
            ));
        };
        // A position has a longitude and a latitude (and maybe an altitude, not drawn).
        let ring = |r: &Vec<Vec<f64>>| {
            r.iter()
                .map(|p| match p[..] {
                    [longitude, latitude, ..] => Some([longitude, latitude]),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
        };
        let polygon = |p: &Vec<Vec<Vec<f64>>>| p.iter().map(ring).collect::<Option<Vec<_>>>();
        let areas = collection
            .features
            .iter()
            .enumerate()
            .map(|(i, feature)| {
                let district = feature.property("name").and_then(|v| v.as_str());
                let polygons = match feature.geometry.as_ref().map(|g| &g.value) {
                    Some(Value::Polygon(p)) => polygon(p).map(|p| vec![p]),
                    Some(Value::MultiPolygon(m)) => m.iter().map(polygon).collect(),
                    _ => None,
                };
                match (district, polygons) {
                    (Some(d), Some(polygons)) if !d.trim().is_empty() => Ok(Area {
                        district: d.to_string(),
                        polygons,
                    }),
                    _ => Err(MapError::NotNamedPolygon(i + 1)),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(DistrictOutlines { areas })
    }

    /// The answer to `GetDistrictMap`: the areas of the districts `sees` accepts, in file order.
    pub(crate) fn to_wire(&self, sees: impl Fn(&str) -> bool) -> v1::GetDistrictMapResponse {
        let point = |p: &[f64; 2]| v1::Location {
            latitude: p[1],
            longitude: p[0],
        };
        let areas = self
            .areas
            .iter()
            .filter(|a| sees(&a.district))
            .map(|a| v1::DistrictArea {
                district: a.district.clone(),
                polygons: a
                    .polygons
                    .iter()
                    .map(|rings| v1::MapPolygon {
                        rings: rings
                            .iter()
                            .map(|r| v1::MapRing {
                                points: r.iter().map(point).collect(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        v1::GetDistrictMapResponse { areas }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"type": "FeatureCollection", "features": [
      {"type": "Feature", "properties": {"name": "west"},
       "geometry": {"type": "Polygon", "coordinates": [
         [[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]],
         [[0.5, 0.2], [0.6, 0.2], [0.6, 0.3], [0.5, 0.2]]]}},
      {"type": "Feature", "properties": {"name": "east"},
       "geometry": {"type": "MultiPolygon", "coordinates": [
         [[[2, 0], [3, 0], [3, 1], [2, 0]]],
         [[[4, 0], [5, 0], [5, 1], [4, 0]]]]}}]}"#;

    #[test]
    fn the_outlines_keep_file_order_rings_holes_and_latitude_longitude() {
        let map = DistrictOutlines::from_geojson(FILE)
            .unwrap()
            .to_wire(|_| true);
        let names: Vec<&str> = map.areas.iter().map(|a| a.district.as_str()).collect();
        assert_eq!(names, ["west", "east"]);
        let west = &map.areas[0].polygons;
        assert_eq!(west.len(), 1);
        assert_eq!(west[0].rings.len(), 2, "outer ring and one hole");
        assert_eq!(west[0].rings[1].points.len(), 4);
        let corner = &west[0].rings[0].points[1];
        assert_eq!((corner.longitude, corner.latitude), (2.0, 0.0));
        let corner = &west[0].rings[0].points[2];
        assert_eq!((corner.longitude, corner.latitude), (2.0, 1.0));
        assert_eq!(map.areas[1].polygons.len(), 2, "a MultiPolygon's two parts");
        assert_eq!(map.areas[1].polygons[1].rings[0].points[0].longitude, 4.0);
    }

    #[test]
    fn a_caller_gets_only_the_districts_it_sees() {
        let map = DistrictOutlines::from_geojson(FILE)
            .unwrap()
            .to_wire(|d| d == "east");
        let names: Vec<&str> = map.areas.iter().map(|a| a.district.as_str()).collect();
        assert_eq!(names, ["east"]);
        assert!(
            DistrictOutlines::default()
                .to_wire(|_| true)
                .areas
                .is_empty()
        );
    }

    #[test]
    fn a_file_that_is_not_named_polygons_is_refused() {
        let point = r#"{"type": "FeatureCollection", "features": [{"type": "Feature",
          "properties": {"name": "x"}, "geometry": {"type": "Point", "coordinates": [0, 0]}}]}"#;
        assert_eq!(
            DistrictOutlines::from_geojson(point),
            Err(MapError::NotNamedPolygon(1))
        );
        let unnamed = FILE.replace(r#""name": "east""#, r#""title": "east""#);
        assert_eq!(
            DistrictOutlines::from_geojson(&unnamed),
            Err(MapError::NotNamedPolygon(2))
        );
        assert!(matches!(
            DistrictOutlines::from_geojson(r#"{"type": "Point", "coordinates": [0, 0]}"#),
            Err(MapError::NotFeatureCollection(_))
        ));
    }
}
