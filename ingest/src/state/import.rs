//! Imported points written straight into the state (bulk import, no WAL: an import is
//! re-runnable, and the last write of a timestamp wins).

use std::collections::HashSet;
use std::sync::Arc;

use citytel_proto::topic::{Channel, DeviceTopic};
use citytel_storage::engine::keys;
use citytel_storage::series::Point;

use super::State;
use crate::import::{ImportError, PointBatch};

impl State {
    /// Writes an imported batch, registering its devices as seen at `now_ms` and noting every
    /// (series, day) written in `touched`. Returns whether the head is due for a flush.
    pub(crate) fn write_imported(
        &mut self,
        batch: &PointBatch,
        now_ms: i64,
        touched: &mut HashSet<(u32, i64)>,
    ) -> Result<bool, ImportError> {
        // Batch-local device and metric indices to series ids.
        let mut ids: Vec<Option<u32>> = vec![None; batch.devices.len() * batch.metrics.len()];
        let mut devices = Vec::with_capacity(batch.devices.len());
        for key in &batch.devices {
            let topic = DeviceTopic {
                site: &key.site,
                kind: &key.kind,
                device_id: &key.device_id,
                channel: Channel::Telemetry,
            };
            let record = self.registry.observe(&topic, now_ms);
            devices.push(record.device_id.clone());
        }
        self.count_moves();
        let mut readings = vec![0u64; batch.devices.len()];
        let mut last: Option<(u32, i64)> = None;
        let mut slot_day = vec![i64::MIN; ids.len()];
        for p in &batch.points {
            let slot = p.device as usize * batch.metrics.len() + p.metric as usize;
            let id = match ids[slot] {
                Some(id) => id,
                None => {
                    let device: &Arc<str> = &devices[p.device as usize];
                    let name = std::slice::from_ref(&batch.metrics[p.metric as usize]);
                    let metric =
                        self.registry
                            .metric_names(device, name)
                            .pop()
                            .ok_or_else(|| {
                                ImportError::sink(std::io::Error::other("device vanished"))
                            })?;
                    let id = self.engine.series_id(device, &metric);
                    ids[slot] = Some(id);
                    id
                }
            };
            let day = keys::day_of(p.time_ms);
            if slot_day[slot] != day {
                slot_day[slot] = day;
                touched.insert((id, day));
            }
            if last != Some((p.device, p.time_ms)) {
                readings[p.device as usize] += 1;
                last = Some((p.device, p.time_ms));
            }
            self.engine.write(
                id,
                Point {
                    time_ms: p.time_ms,
                    value: p.value,
                },
            );
        }
        for (device, n) in devices.iter().zip(readings) {
            if let Some(record) = self.registry.get_mut(device) {
                record.readings_total += n;
            }
        }
        Ok(self.engine.needs_flush())
    }
}
