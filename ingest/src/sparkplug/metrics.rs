//! A birth's metric declarations (names, aliases, datatypes) and how the metrics of a message
//! resolve against them into series points and attribute values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use citytel_proto::sparkplug::datatype::{self, DataType, Value};
use citytel_proto::sparkplug::pb::payload::Metric;

use super::translate::{Point, metric_name};

/// Names of metrics that are Sparkplug's own machinery, not measurements: never stored.
fn is_control(name: &str) -> bool {
    name == "bdSeq" || name.starts_with("Node Control/") || name.starts_with("Device Control/")
}

/// A declared metric.
#[derive(Debug, Clone)]
struct Declared {
    /// citytel's name for it (shared by every point of it).
    name: Arc<str>,
    datatype: DataType,
    control: bool,
}

/// The metrics a birth declared.
#[derive(Debug, Clone, Default)]
pub(super) struct Declarations {
    by_name: HashMap<String, Declared>,
    by_alias: HashMap<u64, String>,
}

/// Why a message's metrics could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MetricError {
    /// A metric the birth did not declare (by alias or by name).
    Unknown(String),
    /// Anything else wrong with a metric.
    Invalid(String),
}

impl Declarations {
    /// Reads a birth's declarations.
    pub(super) fn from_birth(metrics: &[Metric]) -> Result<Self, MetricError> {
        let mut out = Declarations::default();
        let mut citytel_names: HashMap<String, String> = HashMap::new();
        for m in metrics {
            let name = m
                .name
                .clone()
                .ok_or_else(|| MetricError::Invalid("a birth metric has no name".into()))?;
            let datatype = m.datatype.and_then(DataType::from_code).ok_or_else(|| {
                MetricError::Invalid(format!(
                    "birth metric {name:?} has no known datatype ({:?})",
                    m.datatype
                ))
            })?;
            let control = is_control(&name);
            let citytel = metric_name(&name).ok_or_else(|| {
                MetricError::Invalid(format!(
                    "birth metric {name:?} has no citytel name of 1 to 64 characters"
                ))
            })?;
            if !control
                && let Some(other) = citytel_names.insert(citytel.clone(), name.clone())
                && other != name
            {
                return Err(MetricError::Invalid(format!(
                    "birth metrics {other:?} and {name:?} both map to {citytel:?}"
                )));
            }
            if let Some(alias) = m.alias
                && let Some(other) = out.by_alias.insert(alias, name.clone())
                && other != name
            {
                return Err(MetricError::Invalid(format!(
                    "birth metrics {other:?} and {name:?} share alias {alias}"
                )));
            }
            out.by_name.insert(
                name,
                Declared {
                    name: Arc::from(citytel),
                    datatype,
                    control,
                },
            );
        }
        Ok(out)
    }

    fn find(&self, m: &Metric) -> Result<&Declared, MetricError> {
        let name = match (&m.name, m.alias) {
            (Some(name), _) => name,
            (None, Some(alias)) => self
                .by_alias
                .get(&alias)
                .ok_or_else(|| MetricError::Unknown(format!("alias {alias}")))?,
            (None, None) => {
                return Err(MetricError::Invalid(
                    "a metric has neither a name nor an alias".into(),
                ));
            }
        };
        self.by_name
            .get(name)
            .ok_or_else(|| MetricError::Unknown(format!("metric {name:?}")))
    }

    /// Resolves `metrics` (sent at `default_time_ms` when a metric carries no timestamp).
    pub(super) fn resolve(
        &self,
        metrics: &[Metric],
        default_time_ms: i64,
    ) -> Result<Resolved, MetricError> {
        let mut out = Resolved::default();
        for m in metrics {
            let declared = self.find(m)?;
            if declared.control || m.is_transient == Some(true) {
                continue;
            }
            let time_ms = match m.timestamp {
                Some(t) => i64::try_from(t).map_err(|_| {
                    MetricError::Invalid(format!(
                        "metric {:?} timestamp {t} out of range",
                        declared.name
                    ))
                })?,
                None => default_time_ms,
            };
            let historical = m.is_historical == Some(true);
            match datatype::value(m, declared.datatype) {
                Ok(Value::Number(value)) => {
                    let point = Point {
                        metric: declared.name.clone(),
                        time_ms,
                        value,
                    };
                    if historical {
                        out.backfill.push(point);
                    } else {
                        out.live.push(point);
                    }
                }
                Ok(Value::Text(text)) => {
                    if !historical {
                        out.attributes.insert(
                            declared.name.to_string(),
                            Attribute {
                                value: text,
                                datatype: declared.datatype.name(),
                                time_ms,
                            },
                        );
                    }
                }
                Ok(Value::Null | Value::Unsupported) => {}
                Err(e) => {
                    return Err(MetricError::Invalid(format!(
                        "metric {:?}: {e}",
                        declared.name
                    )));
                }
            }
        }
        Ok(out)
    }
}

/// The latest text value of a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute {
    /// The value.
    pub(crate) value: String,
    /// Its Sparkplug datatype's name (`String`, `Text`, `UUID`, `DateTime`).
    pub(crate) datatype: &'static str,
    /// When it was taken, ms since the Unix epoch.
    pub(crate) time_ms: i64,
}

/// What a message's metrics amount to.
#[derive(Debug, Clone, Default)]
pub(super) struct Resolved {
    /// Real-time numeric values.
    pub(super) live: Vec<Point>,
    /// Historical numeric values (`is_historical`): stored as backfill.
    pub(super) backfill: Vec<Point>,
    /// Real-time text values, by citytel metric name.
    pub(super) attributes: BTreeMap<String, Attribute>,
}
