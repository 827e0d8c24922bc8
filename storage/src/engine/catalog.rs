//! The series catalog: a dense `u32` id for every (device, metric) pair.
//!
//! Ids are assigned in order of first appearance and persisted by the checkpoint that first
//! writes a segment referencing them (in the table written right after the segments), so a
//! restart (which replays the WAL in the same order) assigns the same ids.

use std::sync::Arc;

use crate::hash::Map;

/// Every known series.
#[derive(Debug, Default)]
pub struct Catalog {
    by_device: Map<Arc<str>, Map<Arc<str>, u32>>,
    by_id: Vec<(Arc<str>, Arc<str>)>,
    persisted: usize,
    /// The metric names of restored series, each once (a restart would otherwise allocate one
    /// copy per series).
    metric_names: Map<Arc<str>, ()>,
}

impl Catalog {
    /// The id of (device, metric), assigning one if the series is new.
    pub fn id(&mut self, device: &Arc<str>, metric: &Arc<str>) -> u32 {
        if let Some(id) = self.by_device.get(device).and_then(|m| m.get(metric)) {
            return *id;
        }
        let id = self.by_id.len() as u32;
        self.by_id.push((device.clone(), metric.clone()));
        self.by_device
            .entry(device.clone())
            .or_default()
            .insert(metric.clone(), id);
        id
    }

    /// The id of (device, metric), if known.
    pub fn get(&self, device: &str, metric: &str) -> Option<u32> {
        self.by_device.get(device)?.get(metric).copied()
    }

    /// The (device, metric) of `id`.
    pub fn name(&self, id: u32) -> Option<&(Arc<str>, Arc<str>)> {
        self.by_id.get(id as usize)
    }

    /// The series of `device` as (metric, id).
    pub fn device_series(&self, device: &str) -> impl Iterator<Item = (&Arc<str>, u32)> {
        self.by_device
            .get(device)
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k, *v)))
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are no series.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Series created since the last [`mark_persisted`](Self::mark_persisted), with their ids.
    pub fn unpersisted(&self) -> impl Iterator<Item = (u32, &(Arc<str>, Arc<str>))> {
        self.by_id
            .iter()
            .enumerate()
            .skip(self.persisted)
            .map(|(i, n)| (i as u32, n))
    }

    /// Notes that every series up to `count` is persisted.
    pub fn mark_persisted(&mut self, count: usize) {
        self.persisted = self.persisted.max(count);
    }

    /// Restores a persisted series with its id (ids must arrive in order, without gaps).
    pub fn restore(&mut self, id: u32, device: &str, metric: &str) -> bool {
        if id as usize != self.by_id.len() {
            return false;
        }
        let device: Arc<str> = self
            .by_device
            .get_key_value(device)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| device.into());
        let metric: Arc<str> = match self.metric_names.get_key_value(metric) {
            Some((shared, ())) => shared.clone(),
            None => {
                let shared: Arc<str> = metric.into();
                self.metric_names.insert(shared.clone(), ());
                shared
            }
        };
        self.id(&device, &metric);
        self.persisted = self.by_id.len();
        true
    }
}

/// Encodes a series name for the catalog keyspace: `device \0 metric`.
pub fn encode_name(device: &str, metric: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(device.len() + metric.len() + 1);
    v.extend_from_slice(device.as_bytes());
    v.push(0);
    v.extend_from_slice(metric.as_bytes());
    v
}

/// Decodes [`encode_name`].
pub fn decode_name(buf: &[u8]) -> Option<(&str, &str)> {
    let zero = buf.iter().position(|&b| b == 0)?;
    let device = std::str::from_utf8(&buf[..zero]).ok()?;
    let metric = std::str::from_utf8(&buf[zero + 1..]).ok()?;
    Some((device, metric))
}
