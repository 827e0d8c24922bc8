//! The device registry: every device citytel has heard from, with what it said about itself,
//! and the district it is in (from its location, its own or else the provisioning file's, or
//! from its site; see [`Districts`]).
//!
//! It notes every device that appears or changes its [`Cell`] (kind, site or district), for the
//! fleet counts to follow ([`super::summary`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use citytel_availability::{Districts, Location};
use citytel_proto::topic::DeviceTopic;

/// What citytel knows about one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    /// Device id.
    pub device_id: Arc<str>,
    /// Kind, from the topic.
    pub kind: Arc<str>,
    /// Site, from the topic.
    pub site: Arc<str>,
    /// First receive time, ms.
    pub first_seen_ms: i64,
    /// Latest receive time, ms.
    pub last_seen_ms: i64,
    /// Firmware from the latest birth.
    pub firmware_version: Option<String>,
    /// Boot id of the latest birth or reading.
    pub boot_id: Option<u64>,
    /// Gateway the device reports through.
    pub gateway_id: Option<Arc<str>>,
    /// Reporting interval from the latest birth, ms.
    pub reporting_interval_ms: Option<u32>,
    /// Distinct readings stored.
    pub readings_total: u64,
    /// Metric names reported, shared with the series store.
    pub metrics: BTreeSet<Arc<str>>,
    /// Where it is, from the latest birth that said.
    pub location: Option<Location>,
    /// Its district: the polygon of the districts file that holds its location, else its site's
    /// (kept up to date by the registry; not persisted).
    pub district: Option<Arc<str>>,
}

/// Where a device is counted: its kind, site and district.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cell {
    /// Kind.
    pub kind: Arc<str>,
    /// Site.
    pub site: Arc<str>,
    /// District, if it is in one.
    pub district: Option<Arc<str>>,
}

impl DeviceRecord {
    /// Where the device is counted.
    pub fn cell(&self) -> Cell {
        Cell {
            kind: self.kind.clone(),
            site: self.site.clone(),
            district: self.district.clone(),
        }
    }
}

/// A device that appeared (`from` is `None`) or moved from the cell `from` to another.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    /// The device.
    pub device: Arc<str>,
    /// Where it was counted before.
    pub from: Option<Cell>,
}

/// All known devices, ordered by id.
#[derive(Debug, Default)]
pub struct Registry {
    devices: BTreeMap<Arc<str>, DeviceRecord>,
    kinds: BTreeSet<Arc<str>>,
    sites: BTreeSet<Arc<str>>,
    /// Every metric name, once: devices share them (and the series store shares them with
    /// the devices), instead of one copy per series.
    metric_names: BTreeSet<Arc<str>>,
    districts: Arc<Districts>,
    /// Devices that appeared or moved since [`Registry::take_moved`] was last called (restored
    /// devices are not noted: a restore rebuilds the counts).
    moved: Vec<Moved>,
}

impl Registry {
    /// An empty registry placing devices in `districts`.
    pub fn new(districts: Arc<Districts>) -> Self {
        Registry {
            districts,
            ..Registry::default()
        }
    }

    /// Where devices are placed.
    pub fn districts(&self) -> &Arc<Districts> {
        &self.districts
    }

    /// Where a device is: its own location, else the provisioned one (see
    /// [`Districts::location`]).
    pub fn location(&self, record: &DeviceRecord) -> Option<Location> {
        self.districts.location(&record.device_id, record.location)
    }

    /// Sets the location of `device_id` (a birth said it) and places it again.
    pub fn set_location(&mut self, device_id: &str, location: Location) {
        let districts = &self.districts;
        if let Some(record) = self.devices.get_mut(device_id) {
            record.location = Some(location);
            let district = place(districts, record);
            if district != record.district {
                self.moved.push(Moved {
                    device: record.device_id.clone(),
                    from: Some(record.cell()),
                });
                record.district = district;
            }
        }
    }

    /// Notes that a message from the device in `topic` arrived at `received_at_ms` and returns
    /// its record, creating it on first contact. Kind and site follow the latest topic.
    pub fn observe(&mut self, topic: &DeviceTopic<'_>, received_at_ms: i64) -> &mut DeviceRecord {
        if !self.devices.contains_key(topic.device_id) {
            let kind = intern(&mut self.kinds, topic.kind);
            let site = intern(&mut self.sites, topic.site);
            let id: Arc<str> = topic.device_id.into();
            self.moved.push(Moved {
                device: id.clone(),
                from: None,
            });
            self.devices.insert(
                id.clone(),
                DeviceRecord {
                    device_id: id,
                    kind,
                    site,
                    first_seen_ms: received_at_ms,
                    last_seen_ms: received_at_ms,
                    firmware_version: None,
                    boot_id: None,
                    gateway_id: None,
                    reporting_interval_ms: None,
                    readings_total: 0,
                    metrics: BTreeSet::new(),
                    location: None,
                    district: self
                        .districts
                        .locate(topic.site, self.districts.location(topic.device_id, None))
                        .cloned(),
                },
            );
            metrics::gauge!(crate::telemetry::metrics::DEVICES).set(self.devices.len() as f64);
        }
        let kinds = &mut self.kinds;
        let sites = &mut self.sites;
        let record = self
            .devices
            .get_mut(topic.device_id)
            .expect("inserted above");
        if *record.kind != *topic.kind || *record.site != *topic.site {
            self.moved.push(Moved {
                device: record.device_id.clone(),
                from: Some(record.cell()),
            });
        }
        if *record.kind != *topic.kind {
            record.kind = intern(kinds, topic.kind);
        }
        if *record.site != *topic.site {
            record.site = intern(sites, topic.site);
            record.district = place(&self.districts, record);
        }
        record.first_seen_ms = record.first_seen_ms.min(received_at_ms);
        record.last_seen_ms = record.last_seen_ms.max(received_at_ms);
        record
    }

    /// The record of `device_id`.
    pub fn get(&self, device_id: &str) -> Option<&DeviceRecord> {
        self.devices.get(device_id)
    }

    /// The record of `device_id`, for updates.
    pub fn get_mut(&mut self, device_id: &str) -> Option<&mut DeviceRecord> {
        self.devices.get_mut(device_id)
    }

    /// The shared names of `names` (metrics reported by `device_id`), in order, each noted among
    /// the device's metrics. Empty if the device is unknown.
    pub fn metric_names(&mut self, device_id: &str, names: &[String]) -> Vec<Arc<str>> {
        let Some(record) = self.devices.get_mut(device_id) else {
            return Vec::new();
        };
        names
            .iter()
            .map(|name| match record.metrics.get(name.as_str()) {
                Some(known) => known.clone(),
                None => {
                    let shared = intern(&mut self.metric_names, name);
                    record.metrics.insert(shared.clone());
                    shared
                }
            })
            .collect()
    }

    /// The registry's own copy of a device id and a kind, for state restored from a snapshot
    /// to share instead of keeping copies of its own (`id` itself if the device is unknown).
    pub fn share(&mut self, id: Arc<str>, kind: &str) -> (Arc<str>, Arc<str>) {
        let id = self.devices.get(&*id).map_or(id, |r| r.device_id.clone());
        (id, intern(&mut self.kinds, kind))
    }

    /// The registry's own copy of a device id, if it knows the device.
    pub fn shared_id(&self, id: &str) -> Option<Arc<str>> {
        self.devices.get(id).map(|r| r.device_id.clone())
    }

    /// Number of known devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is known.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }

    /// Restores a device from a snapshot.
    pub fn restore(&mut self, mut record: DeviceRecord) {
        record.kind = intern(&mut self.kinds, &record.kind);
        record.site = intern(&mut self.sites, &record.site);
        let names = &mut self.metric_names;
        record.metrics = record.metrics.iter().map(|m| intern(names, m)).collect();
        record.district = place(&self.districts, &record);
        self.devices.insert(record.device_id.clone(), record);
    }

    /// The devices that appeared or moved since the last call, in order.
    pub fn take_moved(&mut self) -> std::vec::Drain<'_, Moved> {
        self.moved.drain(..)
    }

    /// Devices with an id greater than `after` (all if `None`), in id order.
    pub fn iter_after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a DeviceRecord> + 'a {
        use std::ops::Bound;
        let lower = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        self.devices
            .range::<str, _>((lower, Bound::Unbounded))
            .map(|(_, r)| r)
    }
}

/// Returns the shared copy of `s` from `set`, adding it if new.
pub fn intern(set: &mut BTreeSet<Arc<str>>, s: &str) -> Arc<str> {
    if let Some(existing) = set.get(s) {
        return existing.clone();
    }
    let arc: Arc<str> = s.into();
    set.insert(arc.clone());
    arc
}

/// The district of `record`: by its own location, else its provisioned one, else its site.
fn place(districts: &Districts, record: &DeviceRecord) -> Option<Arc<str>> {
    let location = districts.location(&record.device_id, record.location);
    districts.locate(&record.site, location).cloned()
}
