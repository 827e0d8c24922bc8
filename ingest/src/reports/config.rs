//! `[reports]`: what district reports are computed with: the grid's carbon intensity (a constant,
//! and optionally a stored series of it) and the air-quality limits, checked by
//! [`ReportsConfig::validate`] into [`ReportSettings`].

use serde::{Deserialize, Serialize};

/// A `[reports]` value that cannot be used: its key and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid value for {key}: {message}")]
pub struct ReportsConfigError {
    /// The key, e.g. `reports.air_limits`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The pollutants a limit may name.
pub const POLLUTANTS: [&str; 2] = [NO2, PM25];
/// Nitrogen dioxide, µg/m³.
pub const NO2: &str = "no2_ugm3";
/// Fine particulate matter, µg/m³.
pub const PM25: &str = "pm25_ugm3";

/// `[reports]`: district reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Carbon intensity of the grid's electricity, kgCO2e per kWh: for every hour the series
    /// (if any) does not cover.
    pub grid_intensity_kg_per_kwh: f64,
    /// A stored series of the grid's carbon intensity (imported or published like any other),
    /// used hour by hour where it has values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid_intensity_series: Option<IntensitySeries>,
    /// Air-quality limits reported on, each named in the answer, in this order.
    pub air_limits: Vec<AirLimit>,
    /// One small cell's rated capacity, which demand is compared with.
    #[serde(default)]
    pub small_cell_capacity: SmallCellCapacity,
}

/// One small cell's rated capacity (0: not configured).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmallCellCapacity {
    /// Users a cell serves at once.
    pub connected_ues: f64,
    /// Throughput a cell carries, Mbit/s.
    pub throughput_mbps: f64,
    /// Share of `connected_ues` from which a cell-hour counts as busy, in percent.
    pub busy_percent: f64,
}

impl Default for SmallCellCapacity {
    fn default() -> Self {
        SmallCellCapacity {
            connected_ues: 0.0,
            throughput_mbps: 0.0,
            busy_percent: 80.0,
        }
    }
}

/// The stored series of the grid's carbon intensity: a metric of a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntensitySeries {
    /// The device it is stored under, e.g. `grid-gb`.
    pub device: String,
    /// Its metric, e.g. `carbon_intensity_g_per_kwh`.
    pub metric: String,
    /// The unit of its values.
    #[serde(default)]
    pub unit: IntensityUnit,
}

/// The unit of a carbon intensity series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntensityUnit {
    /// kgCO2e per kWh (the default).
    #[default]
    #[serde(rename = "kg_per_kwh")]
    KgPerKwh,
    /// gCO2e per kWh, as grid operators' feeds publish it.
    #[serde(rename = "g_per_kwh")]
    GPerKwh,
}

impl IntensityUnit {
    /// The factor from this unit to kgCO2e per kWh.
    pub fn to_kg_per_kwh(self) -> f64 {
        match self {
            IntensityUnit::KgPerKwh => 1.0,
            IntensityUnit::GPerKwh => 0.001,
        }
    }
}

/// Over what time a pollutant is averaged before it is compared with a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Averaging {
    /// A UTC clock hour.
    Hour,
    /// A UTC day.
    Day,
    /// The whole report period (annual objectives are compared with the period mean).
    Period,
}

impl Averaging {
    /// `"hour"`, `"day"` or `"period"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Averaging::Hour => "hour",
            Averaging::Day => "day",
            Averaging::Period => "period",
        }
    }
}

/// One air-quality limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AirLimit {
    /// The name the answer gives it, e.g. "WHO 2021 PM2.5 24-hour".
    pub name: String,
    /// The pollutant: `no2_ugm3` or `pm25_ugm3`.
    pub metric: String,
    /// The averaging time.
    pub averaging: Averaging,
    /// The limit, µg/m³: a mean strictly above it breaks it.
    pub limit_ugm3: f64,
}

/// The validated `[reports]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSettings {
    /// kgCO2e per kWh.
    pub grid_intensity_kg_per_kwh: f64,
    /// The series of the intensity, if one is configured.
    pub grid_intensity_series: Option<IntensitySeries>,
    /// The limits, in configuration order.
    pub air_limits: Vec<AirLimit>,
    /// One small cell's rated capacity.
    pub small_cell_capacity: SmallCellCapacity,
}

impl ReportsConfig {
    /// Checks the intensity and each limit.
    pub fn validate(&self) -> Result<ReportSettings, ReportsConfigError> {
        let invalid = |key, message: String| ReportsConfigError { key, message };
        let intensity = self.grid_intensity_kg_per_kwh;
        if !intensity.is_finite() || intensity < 0.0 {
            return Err(invalid(
                "reports.grid_intensity_kg_per_kwh",
                format!("{intensity} is not a number of kgCO2e per kWh, 0 or more"),
            ));
        }
        let capacity = self.small_cell_capacity;
        for (what, value, max) in [
            ("connected_ues", capacity.connected_ues, f64::MAX),
            ("throughput_mbps", capacity.throughput_mbps, f64::MAX),
            ("busy_percent", capacity.busy_percent, 100.0),
        ] {
            if !value.is_finite() || value < 0.0 || value > max {
                return Err(invalid(
                    "reports.small_cell_capacity",
                    format!("{what} {value} is out of range"),
                ));
            }
        }
        if let Some(series) = &self.grid_intensity_series {
            for (what, id) in [("device", &series.device), ("metric", &series.metric)] {
                if !citytel_proto::topic::is_valid_id(id) {
                    return Err(invalid(
                        "reports.grid_intensity_series",
                        format!("{what} {id:?} is not a valid {what} name"),
                    ));
                }
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for limit in &self.air_limits {
            if limit.name.trim().is_empty() || limit.name.len() > 128 {
                return Err(invalid(
                    "reports.air_limits",
                    format!("{:?}: a name is 1 to 128 characters", limit.name),
                ));
            }
            if !names.insert(limit.name.as_str()) {
                return Err(invalid(
                    "reports.air_limits",
                    format!("{:?} is named twice", limit.name),
                ));
            }
            if !POLLUTANTS.contains(&limit.metric.as_str()) {
                return Err(invalid(
                    "reports.air_limits",
                    format!(
                        "{:?}: metric {:?} is not one of {POLLUTANTS:?}",
                        limit.name, limit.metric
                    ),
                ));
            }
            if !limit.limit_ugm3.is_finite() || limit.limit_ugm3 < 0.0 {
                return Err(invalid(
                    "reports.air_limits",
                    format!(
                        "{:?}: limit_ugm3 {} is not a concentration, 0 or more",
                        limit.name, limit.limit_ugm3
                    ),
                ));
            }
        }
        Ok(ReportSettings {
            grid_intensity_kg_per_kwh: intensity,
            grid_intensity_series: self.grid_intensity_series.clone(),
            small_cell_capacity: capacity,
            air_limits: self.air_limits.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, load_str};

    fn check(text: &str) -> Result<(), ConfigError> {
        load_str(Some(("test", text)), &[])?.validate().map(|_| ())
    }

    fn refused(text: &str, needle: &str) {
        let e = check(text).expect_err(text).to_string();
        assert!(e.contains("reports.") && e.contains(needle), "{e}");
    }

    #[test]
    fn the_defaults_name_the_uk_objectives_and_the_who_guidelines() {
        let settings = load_str(None, &[]).unwrap().validate().unwrap().reports;
        assert_eq!(settings.grid_intensity_kg_per_kwh, 0.20705);
        let names: Vec<&str> = settings.air_limits.iter().map(|l| &*l.name).collect();
        assert_eq!(names.len(), 7);
        assert!(names.iter().filter(|n| n.starts_with("UK AQO")).count() == 3);
        assert!(names.iter().filter(|n| n.starts_with("WHO 2021")).count() == 4);
    }

    #[test]
    fn bad_limits_and_intensities_are_refused_with_the_offending_one_named() {
        refused(
            "[reports]\ngrid_intensity_kg_per_kwh = -1.0\n",
            "grid_intensity_kg_per_kwh",
        );
        let limit = |name: &str, metric: &str, averaging: &str, value: f64| {
            format!(
                "[reports]\nair_limits = [{{ name = {name:?}, metric = {metric:?}, averaging = \
                 {averaging:?}, limit_ugm3 = {value:?} }}]\n"
            )
        };
        refused(&limit("x", "o3_ugm3", "hour", 100.0), "o3_ugm3");
        refused(&limit(" ", "no2_ugm3", "hour", 100.0), "name");
        refused(&limit("neg", "no2_ugm3", "day", -5.0), "neg");
        let twice = "[reports]\nair_limits = [\
            { name = \"a\", metric = \"no2_ugm3\", averaging = \"hour\", limit_ugm3 = 1.0 },\
            { name = \"a\", metric = \"pm25_ugm3\", averaging = \"day\", limit_ugm3 = 1.0 }]\n";
        refused(twice, "named twice");
        let e = check(&limit("x", "no2_ugm3", "week", 1.0)).unwrap_err();
        assert!(e.to_string().contains("week"), "{e}");
        assert!(check(&limit("EU PM2.5 day", "pm25_ugm3", "day", 25.0)).is_ok());
    }

    #[test]
    fn an_intensity_series_names_a_device_and_a_metric_in_a_known_unit() {
        let series = |device: &str, unit: &str| {
            format!(
                "[reports]
grid_intensity_series = {{ device = {device:?}, metric =                  \"carbon_intensity\", unit = {unit:?} }}
"
            )
        };
        let settings = load_str(Some(("test", &series("grid-gb", "g_per_kwh"))), &[])
            .unwrap()
            .validate()
            .unwrap()
            .reports;
        let s = settings.grid_intensity_series.expect("the series");
        assert_eq!(
            (s.device.as_str(), s.unit.to_kg_per_kwh()),
            ("grid-gb", 0.001)
        );
        refused(&series("grid gb", "g_per_kwh"), "grid_intensity_series");
        refused(
            "[reports]\nsmall_cell_capacity = { connected_ues = -1.0 }\n",
            "connected_ues",
        );
        refused(
            "[reports]\nsmall_cell_capacity = { busy_percent = 120.0 }\n",
            "busy_percent",
        );
        assert!(
            check(&series("grid-gb", "tonnes"))
                .unwrap_err()
                .to_string()
                .contains("tonnes")
        );
        assert_eq!(
            load_str(None, &[])
                .unwrap()
                .validate()
                .unwrap()
                .reports
                .grid_intensity_series,
            None
        );
    }
}
