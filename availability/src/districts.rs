//! Districts: which district a device is in, from its location (a point in one of the polygons
//! of a GeoJSON file) or, failing that, from its site (the configured site-to-district mapping).
//!
//! Pure: the caller reads the file; [`DistrictMap::from_geojson`] parses its text and
//! [`Districts::locate`] answers for one device.
//!
//! **The rule for borders.** A district's polygon is closed: a point on its outline (or on the
//! outline of one of its holes) is in it. A point in more than one district (on a border two
//! districts share, or where polygons overlap) is in the first of them in file order. A point in
//! no polygon, and a device without a location, is in its site's district (if the site has one).
//!
//! **Which location.** A device's own (from its birth) when it stated one, else the one the
//! provisioning file gives it ([`Districts::with_provisioned`]): the birth wins.

use std::collections::BTreeMap;
use std::sync::Arc;

use geo::{BoundingRect, Intersects, MultiPolygon, Point, Polygon, Rect};
use geojson::{Feature, GeoJson};

/// A point on the earth, WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// Latitude, -90 to 90 (north positive).
    pub latitude: f64,
    /// Longitude, -180 to 180 (east positive).
    pub longitude: f64,
}

/// Why a location or a districts file was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistrictsError {
    /// A latitude or longitude that is not a number or is out of range.
    #[error(
        "invalid location: latitude {latitude} must be within -90..=90 and longitude {longitude} within -180..=180"
    )]
    InvalidLocation {
        /// The latitude given.
        latitude: f64,
        /// The longitude given.
        longitude: f64,
    },
    /// Text that is not GeoJSON.
    #[error("not GeoJSON: {0}")]
    NotGeoJson(String),
    /// GeoJSON that is not a FeatureCollection.
    #[error("the districts file must be a GeoJSON FeatureCollection")]
    NotFeatureCollection,
    /// A feature without a non-empty string property `name`.
    #[error("feature {0} has no \"name\" property (a non-empty string, the district)")]
    NoName(usize),
    /// A feature whose geometry is not a Polygon or MultiPolygon.
    #[error("feature {index} ({name}) must be a Polygon or MultiPolygon")]
    NotPolygon {
        /// Position of the feature in the file, from 1.
        index: usize,
        /// Its district.
        name: String,
    },
    /// A coordinate out of range or not a number.
    #[error(
        "feature {index} ({name}) has a coordinate out of range (GeoJSON order is [longitude, latitude])"
    )]
    BadCoordinate {
        /// Position of the feature in the file, from 1.
        index: usize,
        /// Its district.
        name: String,
    },
}

impl Location {
    /// A checked location: both finite and within range.
    pub fn new(latitude: f64, longitude: f64) -> Result<Self, DistrictsError> {
        let ok = (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude);
        if ok {
            Ok(Location {
                latitude,
                longitude,
            })
        } else {
            Err(DistrictsError::InvalidLocation {
                latitude,
                longitude,
            })
        }
    }

    fn point(self) -> Point<f64> {
        Point::new(self.longitude, self.latitude)
    }
}

/// One district's area: its polygons and their bounding box (a cheap first test).
#[derive(Debug, Clone, PartialEq)]
struct Area {
    name: Arc<str>,
    shape: MultiPolygon<f64>,
    bounds: Option<Rect<f64>>,
}

/// The district polygons of a GeoJSON file, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DistrictMap {
    areas: Vec<Area>,
}

impl DistrictMap {
    /// Parses a GeoJSON FeatureCollection whose features are Polygons or MultiPolygons with a
    /// string property `name` (the district; several features may share one). Coordinates are
    /// GeoJSON's `[longitude, latitude]`.
    pub fn from_geojson(text: &str) -> Result<Self, DistrictsError> {
        let json: GeoJson = text
            .parse()
            .map_err(|e: geojson::Error| DistrictsError::NotGeoJson(e.to_string()))?;
        let GeoJson::FeatureCollection(collection) = json else {
            return Err(DistrictsError::NotFeatureCollection);
        };
        let areas = collection
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| area(i + 1, f))
            .collect::<Result<_, _>>()?;
        Ok(DistrictMap { areas })
    }

    /// The district whose polygon holds `location` (see the module's rule for borders).
    pub fn locate(&self, location: Location) -> Option<&Arc<str>> {
        let point = location.point();
        self.areas
            .iter()
            .find(|a| a.bounds.is_some_and(|b| b.intersects(&point)) && a.shape.intersects(&point))
            .map(|a| &a.name)
    }

    /// The district names, in file order, each once.
    pub fn names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = Vec::new();
        for a in &self.areas {
            if !names.contains(&a.name) {
                names.push(a.name.clone());
            }
        }
        names
    }

    /// Number of features (areas) in the map.
    pub fn len(&self) -> usize {
        self.areas.len()
    }

    /// Whether the map has no area.
    pub fn is_empty(&self) -> bool {
        self.areas.is_empty()
    }
}

fn area(index: usize, feature: &Feature) -> Result<Area, DistrictsError> {
    let name = match feature.property("name").and_then(|v| v.as_str()) {
        Some(n) if !n.trim().is_empty() => n.to_string(),
        _ => return Err(DistrictsError::NoName(index)),
    };
    let not_polygon = || DistrictsError::NotPolygon {
        index,
        name: name.clone(),
    };
    let geometry = feature.geometry.clone().ok_or_else(not_polygon)?;
    let shape = match geo::Geometry::<f64>::try_from(geometry).map_err(|_| not_polygon())? {
        geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
        geo::Geometry::MultiPolygon(m) => m,
        _ => return Err(not_polygon()),
    };
    let in_range = |p: &Polygon<f64>| {
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .flat_map(|ring| ring.coords())
            .all(|c| Location::new(c.y, c.x).is_ok())
    };
    if !shape.0.iter().all(in_range) {
        return Err(DistrictsError::BadCoordinate { index, name });
    }
    Ok(Area {
        bounds: shape.bounding_rect(),
        name: name.into(),
        shape,
    })
}

/// Where devices are: the district polygons (if a districts file is configured), the
/// site-to-district mapping they fall back to, and the locations the provisioning file gives
/// devices (used when the device itself states none).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Districts {
    map: DistrictMap,
    sites: BTreeMap<String, Arc<str>>,
    provisioned: BTreeMap<String, Location>,
}

impl Districts {
    /// Districts from `map` (empty without a districts file) and the site-to-district mapping.
    pub fn new(map: DistrictMap, sites: &BTreeMap<String, String>) -> Self {
        Districts {
            map,
            sites: sites
                .iter()
                .map(|(s, d)| (s.clone(), Arc::from(d.as_str())))
                .collect(),
            provisioned: BTreeMap::new(),
        }
    }

    /// These districts with `locations`, by device id: where a device is when it states no
    /// location itself (see [`Districts::location`]).
    pub fn with_provisioned(mut self, locations: BTreeMap<String, Location>) -> Self {
        self.provisioned = locations;
        self
    }

    /// Where `device` is: the location it `stated` (its birth's) when it stated one, else the
    /// one provisioned for it, else unknown.
    pub fn location(&self, device: &str, stated: Option<Location>) -> Option<Location> {
        stated.or_else(|| self.provisioned.get(device).copied())
    }

    /// The district of a device at `site`, located at `location` if known: the polygon that
    /// holds the location, else the site's district.
    pub fn locate(&self, site: &str, location: Option<Location>) -> Option<&Arc<str>> {
        location
            .and_then(|l| self.map.locate(l))
            .or_else(|| self.site(site))
    }

    /// The district of `site` from the site-to-district mapping.
    pub fn site(&self, site: &str) -> Option<&Arc<str>> {
        self.sites.get(site)
    }

    /// The polygons.
    pub fn map(&self) -> &DistrictMap {
        &self.map
    }

    /// Every district known: those of the map in file order, then those only the site mapping
    /// names, sorted.
    pub fn names(&self) -> Vec<Arc<str>> {
        let mut names = self.map.names();
        let mut extra: Vec<Arc<str>> = self
            .sites
            .values()
            .filter(|d| !names.contains(d))
            .cloned()
            .collect();
        extra.sort();
        extra.dedup();
        names.extend(extra);
        names
    }
}
