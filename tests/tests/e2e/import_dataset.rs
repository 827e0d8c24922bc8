//! Importing the simulator's datasets: the same fleet written as InfluxDB line protocol and as
//! protobuf records imports to the same points (the simulator is the independent writer).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use citytel_firmware_sim::dataset::{DatasetConfig, DatasetFormat, write_dataset};
use citytel_ingest::import::{
    DeviceKey, Format, ImportError, ImportOptions, ImportSink, PointBatch, import_file,
};

/// A point with its device and metric resolved.
type Point = (DeviceKey, String, i64, f64);

/// Keeps every point it is given.
#[derive(Default)]
struct VecSink {
    points: Vec<Point>,
}

impl ImportSink for VecSink {
    fn write(&mut self, batch: &PointBatch) -> Result<(), ImportError> {
        for p in &batch.points {
            self.points.push((
                batch.devices[p.device as usize].clone(),
                batch.metrics[p.metric as usize].clone(),
                p.time_ms,
                p.value,
            ));
        }
        Ok(())
    }
}

/// A temporary file holding `contents`.
fn file(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(contents))
        .expect("write file");
    (dir, path)
}

fn import(
    path: &Path,
    options: &ImportOptions,
) -> (citytel_ingest::import::ImportSummary, VecSink) {
    let mut sink = VecSink::default();
    let summary = import_file(path, options, &mut sink, &|_| {}).expect("imports");
    (summary, sink)
}

/// A small simulator dataset in `format`.
fn dataset(format: DatasetFormat) -> Vec<u8> {
    let config = DatasetConfig {
        duration: Duration::from_secs(2 * 3600),
        cabinets: 2,
        small_cells: 2,
        sensors: 3,
        sites: 2,
        outage_fraction: 0.5,
        batch: 30,
        ..DatasetConfig::reference(1_767_571_200_000, format)
    };
    let mut out = Vec::new();
    write_dataset(&config, &mut out, &mut |_| {}).expect("dataset");
    out
}

fn sorted(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    points
}

#[test]
fn a_dataset_imports_the_same_from_line_protocol_and_protobuf() {
    let (_a, lp) = file("ref.lp", &dataset(DatasetFormat::LineProtocol));
    let (_b, pb) = file("ref.pb", &dataset(DatasetFormat::Proto));
    let lp_options = ImportOptions {
        chunk_size: 10_000,
        threads: 2,
        ..ImportOptions::default()
    };
    let pb_options = ImportOptions {
        format: Format::DatasetProto,
        ..lp_options.clone()
    };
    let (lp_summary, lp_sink) = import(&lp, &lp_options);
    let (pb_summary, pb_sink) = import(&pb, &pb_options);
    assert_eq!(lp_summary.bad_line_count() + pb_summary.bad_line_count(), 0);
    assert_eq!(lp_summary.points, pb_summary.points);
    assert!(lp_summary.points > 7 * 5 * 600);
    assert!(
        pb_summary.lines < lp_summary.lines / 10,
        "records hold 30 readings"
    );
    assert_eq!(sorted(lp_sink.points), sorted(pb_sink.points));
}
