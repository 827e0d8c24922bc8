//! The data of a sink run: the reference dataset configuration (optionally shortened), written
//! as line protocol and as protobuf messages, and a citytel WAL built from the messages.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use citytel_firmware_sim::dataset::{
    DatasetConfig, DatasetFormat, DatasetSummary, default_start_ms, write_dataset,
};
use citytel_ingest::journal::Entry;
use citytel_proto::v1::DatasetRecord;
use citytel_storage::wal::{FsyncPolicy, Wal, WalOptions};
use prost::Message;

/// WAL segment size, as shipped (`storage.wal_segment_bytes`).
const SEGMENT_BYTES: u64 = 64 << 20;
/// Messages per group commit while building the WAL.
const GROUP: usize = 1024;

/// The reference configuration over `hours` hours, in `format`.
pub fn config(hours: u32, format: DatasetFormat) -> DatasetConfig {
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(0);
    let mut config = DatasetConfig::reference(default_start_ms(now_ms), format);
    config.duration = Duration::from_secs(u64::from(hours) * 3600);
    config
}

/// Writes the dataset of `config` to `path`.
pub fn write(config: &DatasetConfig, path: &Path) -> Result<DatasetSummary> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    write_dataset(config, BufWriter::new(file), &mut |_| {})
        .with_context(|| format!("writing {}", path.display()))
}

/// What building the WAL wrote.
#[derive(Debug, Clone, Copy)]
pub struct WalBuilt {
    /// Messages appended.
    pub messages: u64,
    /// Readings in them.
    pub readings: u64,
    /// Values in them.
    pub values: u64,
    /// Bytes of WAL records.
    pub bytes: u64,
}

/// Appends every message of the protobuf dataset at `pb` to a WAL in `data_dir/wal`, as the
/// writer stores accepted messages (receive time: the last reading's time).
pub fn build_wal(pb: &Path, data_dir: &Path) -> Result<WalBuilt> {
    let options = WalOptions {
        segment_bytes: SEGMENT_BYTES,
        fsync: FsyncPolicy::Never,
    };
    let (mut wal, _) =
        Wal::open(&data_dir.join("wal"), options, 0, |_, _| {}).context("opening the WAL")?;
    let mut input = BufReader::with_capacity(
        1 << 20,
        File::open(pb).with_context(|| format!("opening {}", pb.display()))?,
    );
    let mut built = WalBuilt {
        messages: 0,
        readings: 0,
        values: 0,
        bytes: 0,
    };
    let mut record = Vec::new();
    let mut payload = Vec::new();
    let mut in_group = 0;
    while let Some(len) = read_varint(&mut input)? {
        record.resize(usize::try_from(len)?, 0);
        input
            .read_exact(&mut record)
            .context("truncated dataset record")?;
        let message = DatasetRecord::decode(&record[..]).context("bad dataset record")?;
        let Some(batch) = message.batch else {
            bail!("a dataset record without a batch");
        };
        let received_at_ms = batch
            .readings
            .iter()
            .map(|r| r.time_unix_ms)
            .max()
            .unwrap_or(0);
        built.readings += batch.readings.len() as u64;
        built.values += batch
            .readings
            .iter()
            .map(|r| r.values.len() as u64)
            .sum::<u64>();
        payload.clear();
        batch.encode(&mut payload)?;
        wal.append_with(|buf| {
            let start = buf.len();
            Entry::Message {
                received_at_ms,
                topic: &message.topic,
                payload: &payload,
            }
            .encode(buf);
            built.bytes += (buf.len() - start) as u64;
        })?;
        built.messages += 1;
        in_group += 1;
        if in_group == GROUP {
            wal.commit()?;
            in_group = 0;
        }
    }
    wal.commit()?;
    Ok(built)
}

/// Reads a protobuf varint; `None` at a clean end of input.
fn read_varint(input: &mut impl Read) -> Result<Option<u64>> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        if input.read(&mut byte)? == 0 {
            if shift == 0 {
                return Ok(None);
            }
            bail!("truncated record length");
        }
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    bail!("record length is not a varint")
}
