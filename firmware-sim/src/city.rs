//! The synthetic city the simulator's fleet stands in: five made-up districts (the GeoJSON file
//! `firmware-sim/city/districts.geojson`, shipped with the repository for
//! `availability.districts_file`) and a location for every device.
//!
//! Sites are dealt to districts round-robin (`site-01` to the first district, `site-02` to the
//! second...), each at its own spot near its district's centre, and every device stands a little
//! way from its site's spot (an offset drawn from a hash of its id, so runs agree). Every point
//! stays well inside its district: offsets never exceed 0.008 degrees and every district extends
//! at least 0.01 degrees from its centre in both directions.

/// The districts' polygons, a GeoJSON FeatureCollection (features with a property `name`).
pub const DISTRICTS_GEOJSON: &str = include_str!("../city/districts.geojson");

/// The districts in file order, each with its centre (latitude, longitude).
// -3.14 is a longitude, not an approximation of pi.
#[allow(clippy::approx_constant)]
pub const DISTRICTS: [(&str, f64, f64); 5] = [
    ("west-end", 51.49, -3.22),
    ("north-hills", 51.51, -3.16),
    ("old-town", 51.49, -3.18),
    ("east-side", 51.48, -3.14),
    ("harbour", 51.47, -3.18),
];

/// Largest distance of a site's spot from its district's centre, per axis, in degrees.
const SITE_SPREAD: f64 = 0.005;
/// Largest distance of a device from its site's spot, per axis, in degrees.
const DEVICE_SPREAD: f64 = 0.003;

/// The district `site` is in (`site-NN` by its number, any other name by a hash of it).
pub fn district_of_site(site: &str) -> &'static str {
    DISTRICTS[site_number(site) % DISTRICTS.len()].0
}

/// Where the device `device_id` at `site` stands: (latitude, longitude).
pub fn location(device_id: &str, site: &str) -> (f64, f64) {
    let n = site_number(site);
    let (_, lat, lon) = DISTRICTS[n % DISTRICTS.len()];
    // The k-th site of a district sits on a small spiral around its centre.
    let k = (n / DISTRICTS.len()) as f64;
    let angle = k * 2.399_963; // the golden angle, in radians
    let radius = SITE_SPREAD * (1.0 - 1.0 / (k + 1.0));
    let h = fnv1a(device_id.as_bytes());
    let unit = |bits: u64| (bits & 0xffff) as f64 / 65_535.0 * 2.0 - 1.0;
    (
        lat + radius * angle.sin() + DEVICE_SPREAD * unit(h),
        lon + radius * angle.cos() + DEVICE_SPREAD * unit(h >> 16),
    )
}

/// 0-based number of a `site-NN` site; a hash of any other name.
fn site_number(site: &str) -> usize {
    match site
        .strip_prefix("site-")
        .and_then(|n| n.parse::<usize>().ok())
    {
        Some(n) if n > 0 => n - 1,
        _ => (fnv1a(site.as_bytes()) % 1_000_003) as usize,
    }
}

/// FNV-1a, 64 bits: stable across runs and releases (unlike std's hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use citytel_availability::{DistrictMap, Location};

    use super::*;

    #[test]
    fn the_shipped_file_names_the_districts_in_order() {
        let map = DistrictMap::from_geojson(DISTRICTS_GEOJSON).expect("the shipped file parses");
        let names: Vec<String> = map.names().iter().map(|n| n.to_string()).collect();
        let want: Vec<&str> = DISTRICTS.iter().map(|d| d.0).collect();
        assert_eq!(names, want);
        for (name, lat, lon) in DISTRICTS {
            let at = Location::new(lat, lon).expect("valid");
            assert_eq!(map.locate(at).map(|n| &**n), Some(name), "centre of {name}");
        }
    }

    #[test]
    fn every_device_of_a_large_fleet_stands_in_its_sites_district() {
        let map = DistrictMap::from_geojson(DISTRICTS_GEOJSON).expect("parses");
        for site in 1..=200 {
            let site = format!("site-{site:02}");
            for device in ["cab-0001", "cell-0420", "sen-9999", "gw-0003-s02", &site] {
                let (lat, lon) = location(device, &site);
                let at = Location::new(lat, lon).expect("valid");
                assert_eq!(
                    map.locate(at).map(|n| &**n),
                    Some(district_of_site(&site)),
                    "{device} at {site}: {lat} {lon}"
                );
            }
        }
        for odd in ["depot", "site-x", "site-00"] {
            let (lat, lon) = location("cab-0001", odd);
            let at = Location::new(lat, lon).expect("valid");
            assert_eq!(map.locate(at).map(|n| &**n), Some(district_of_site(odd)));
        }
    }

    #[test]
    fn locations_are_stable_and_devices_of_a_site_spread_out() {
        assert_eq!(
            location("cab-0001", "site-01"),
            location("cab-0001", "site-01")
        );
        assert_ne!(
            location("cab-0001", "site-01"),
            location("cab-0002", "site-01")
        );
        assert_eq!(district_of_site("site-01"), "west-end");
        assert_eq!(district_of_site("site-07"), "north-hills");
    }
}
