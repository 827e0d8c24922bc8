//! Air quality: NO2 and PM2.5 means of a district (over the period and per UTC day), its worst
//! sensors, and how often each configured limit was broken, from the sensors' hourly rollups.
//!
//! Means pool every reading of every sensor (sum of values over count of readings). A limit
//! averaged over an hour (a day) is broken in an hour (a day) when at least one sensor's mean over
//! it is above the limit; hours and days without a reading are not evaluated. A limit averaged
//! over the period is compared with the district's period mean.

use std::collections::{BTreeMap, BTreeSet};

use citytel_availability::Span;
use citytel_proto::v1;
use citytel_storage::series::Bucket;

use super::basis::{Tally, of_series};
use super::config::{Averaging, NO2, PM25, ReportSettings};
use super::{DeviceSeries, DistrictSeries, within};

/// One UTC day, ms.
const DAY_MS: i64 = 24 * super::HOUR_MS;

/// Sum and count of readings.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    sum: f64,
    count: u64,
}

impl Sum {
    fn add(&mut self, b: &Bucket) {
        self.sum += b.sum;
        self.count += b.count;
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Each sensor's sums per UTC day within `span`.
fn daily(s: &DeviceSeries, span: Span) -> BTreeMap<i64, Sum> {
    let mut days: BTreeMap<i64, Sum> = BTreeMap::new();
    for b in within(&s.buckets, span) {
        days.entry(b.start_ms.div_euclid(DAY_MS) * DAY_MS)
            .or_default()
            .add(b);
    }
    days
}

/// The answer for one pollutant.
fn pollutant(metric: &str, series: &[DeviceSeries], span: Span, worst: usize) -> v1::Pollutant {
    let mut all = Sum::default();
    let mut tally = Tally::default();
    let mut days: BTreeMap<i64, Sum> = BTreeMap::new();
    let mut sensors = Vec::with_capacity(series.len());
    for s in series {
        tally.add(s, span);
        let mut own = Sum::default();
        for b in within(&s.buckets, span) {
            own.add(b);
        }
        for (day, sum) in daily(s, span) {
            let d = days.entry(day).or_default();
            d.sum += sum.sum;
            d.count += sum.count;
        }
        all.sum += own.sum;
        all.count += own.count;
        if let Some(mean_ugm3) = own.mean() {
            sensors.push(v1::WorstSensor {
                device_id: s.device.id.to_string(),
                mean_ugm3,
                basis: Some(of_series(s, span)),
            });
        }
    }
    sensors.sort_by(|a, b| {
        b.mean_ugm3
            .total_cmp(&a.mean_ugm3)
            .then_with(|| a.device_id.cmp(&b.device_id))
    });
    sensors.truncate(worst);
    v1::Pollutant {
        metric: metric.to_string(),
        period_mean_ugm3: Some(v1::MetricFigure {
            value: all.mean(),
            basis: Some(tally.to_wire()),
        }),
        daily_means: days
            .into_iter()
            .filter_map(|(day, sum)| {
                Some(v1::DailyMean {
                    day_unix_ms: day.max(span.start_ms),
                    mean_ugm3: sum.mean()?,
                    readings: sum.count,
                })
            })
            .collect(),
        worst_sensors: sensors,
    }
}

/// How often `limit` was broken by `series` over `span`.
fn exceedance(
    limit: &super::config::AirLimit,
    series: &[DeviceSeries],
    span: Span,
) -> v1::LimitExceedance {
    let (mut exceeded, mut evaluated) = (BTreeSet::new(), BTreeSet::new());
    match limit.averaging {
        Averaging::Hour => {
            for s in series {
                for b in within(&s.buckets, span).iter().filter(|b| b.count > 0) {
                    evaluated.insert(b.start_ms);
                    if super::mean(b) > limit.limit_ugm3 {
                        exceeded.insert(b.start_ms);
                    }
                }
            }
        }
        Averaging::Day => {
            for s in series {
                for (day, sum) in daily(s, span) {
                    if let Some(m) = sum.mean() {
                        evaluated.insert(day);
                        if m > limit.limit_ugm3 {
                            exceeded.insert(day);
                        }
                    }
                }
            }
        }
        Averaging::Period => {
            let mut all = Sum::default();
            for s in series {
                within(&s.buckets, span).iter().for_each(|b| all.add(b));
            }
            if let Some(m) = all.mean() {
                evaluated.insert(0);
                if m > limit.limit_ugm3 {
                    exceeded.insert(0);
                }
            }
        }
    }
    let n = |set: BTreeSet<i64>| u32::try_from(set.len()).unwrap_or(u32::MAX);
    v1::LimitExceedance {
        name: limit.name.clone(),
        metric: limit.metric.clone(),
        averaging: limit.averaging.as_str().to_string(),
        limit_ugm3: limit.limit_ugm3,
        exceeded: n(exceeded),
        evaluated: n(evaluated),
    }
}

/// The air-quality answer of a district over `span`.
pub(crate) fn report(
    series: &DistrictSeries,
    span: Span,
    settings: &ReportSettings,
    worst: usize,
) -> v1::AirQuality {
    v1::AirQuality {
        no2: Some(pollutant(NO2, series.of(NO2), span, worst)),
        pm25: Some(pollutant(PM25, series.of(PM25), span, worst)),
        limits: settings
            .air_limits
            .iter()
            .map(|l| exceedance(l, series.of(&l.metric), span))
            .collect(),
    }
}
