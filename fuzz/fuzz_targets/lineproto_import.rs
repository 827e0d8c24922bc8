//! InfluxDB line protocol: the line parser, and the chunked import path into a counting sink.
//!
//! The input is `[flags][file bytes...]`: `flags` picks the timestamp precision, the chunk size
//! (1 to 64 bytes, so chunks cut lines anywhere) and whether two worker threads parse. Asserted,
//! besides never panicking:
//! - a parsed line whose fields are all finite floats is written back by `write_line` and
//!   parses again to the same line;
//! - the import reports one line per line of the file, and hands the sink exactly the points it
//!   counts, each naming a listed device and metric with a finite value;
//! - the result (points in order, summary, bad-line samples with their line numbers) does not
//!   depend on the chunk size or the number of threads.

#![no_main]

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use citytel_ingest::import::lineproto::{self, FieldValue};
use citytel_ingest::import::{
    self, DeviceKey, Format, ImportError, ImportOptions, ImportSink, ImportSummary, PointBatch,
    Precision,
};
use libfuzzer_sys::fuzz_target;

/// Collects every point, resolved to its device and metric names.
#[derive(Default)]
struct CountingSink {
    points: Vec<(DeviceKey, String, i64, u64)>,
}

impl ImportSink for CountingSink {
    fn write(&mut self, batch: &PointBatch) -> Result<(), ImportError> {
        for point in &batch.points {
            let device = &batch.devices[point.device as usize];
            let metric = &batch.metrics[point.metric as usize];
            assert!(point.value.is_finite(), "{point:?}");
            self.points.push((
                device.clone(),
                metric.clone(),
                point.time_ms,
                point.value.to_bits(),
            ));
        }
        Ok(())
    }
}

fn run(path: &Path, options: &ImportOptions) -> (ImportSummary, CountingSink) {
    let mut sink = CountingSink::default();
    let mut summary = import::import_file(path, options, &mut sink, &|_| {})
        .expect("a line protocol import never fails on content");
    summary.elapsed = Duration::ZERO;
    assert_eq!(summary.points, sink.points.len() as u64);
    (summary, sink)
}

/// Parses each line and checks the writer's round trip.
fn round_trip(text: &str) {
    for text in text.split('\n') {
        let Ok(Some(line)) = lineproto::parse_line(text) else {
            continue;
        };
        assert!(!line.fields.is_empty());
        let fields: Option<Vec<(&str, f64)>> = line
            .fields
            .iter()
            .map(|(k, v)| match v {
                FieldValue::Float(f) if f.is_finite() => Some((k.as_ref(), *f)),
                _ => None,
            })
            .collect();
        let Some(fields) = fields else {
            continue;
        };
        let tags: Vec<(&str, &str)> = line
            .tags
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let mut out = String::new();
        let ts = line.timestamp.unwrap_or(0);
        lineproto::write_line(&mut out, &line.measurement, &tags, &fields, ts);
        let written = out.strip_suffix('\n').expect("write_line ends the line");
        let again = lineproto::parse_line(written)
            .unwrap_or_else(|e| panic!("{text:?} written as {written:?}: {e}"))
            .expect("not blank");
        assert_eq!(
            again.measurement, line.measurement,
            "{text:?} -> {written:?}"
        );
        assert_eq!(again.tags, line.tags, "{text:?} -> {written:?}");
        assert_eq!(again.fields, line.fields, "{text:?} -> {written:?}");
        assert_eq!(again.timestamp, Some(ts), "{text:?} -> {written:?}");
    }
}

/// A directory on a memory-backed file system when there is one.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("a temporary directory")
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(file) {
        round_trip(text);
    }

    let dir = scratch_dir();
    let path = dir.path().join("input.lp");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(file))
        .expect("write the input file");
    let precision = match flags & 3 {
        0 => Precision::Nanoseconds,
        1 => Precision::Microseconds,
        2 => Precision::Milliseconds,
        _ => Precision::Seconds,
    };
    let options = |threads, chunk_size| ImportOptions {
        format: Format::LineProtocol,
        device_tag: "device_id".into(),
        default_site: "unknown".into(),
        precision,
        threads,
        strict: false,
        max_error_samples: 3,
        chunk_size,
    };
    let (whole, whole_sink) = run(&path, &options(1, file.len() + 1));
    let lines = if file.is_empty() {
        0
    } else {
        file.split(|&b| b == b'\n').count() as u64 - u64::from(file.ends_with(b"\n"))
    };
    assert_eq!(whole.lines, lines, "one line per line");
    assert_eq!(whole.bytes, file.len() as u64);
    assert!(whole.skipped_lines + whole.bad_line_count() <= whole.lines);

    let threads = if flags & 0x80 != 0 { 2 } else { 1 };
    let chunk_size = usize::from((flags >> 2) & 0x1f) * 2 + 1;
    let (chunked, chunked_sink) = run(&path, &options(threads, chunk_size));
    assert_eq!(chunked, whole, "{threads} threads, {chunk_size} B chunks");
    assert!(
        chunked_sink.points == whole_sink.points,
        "same points in the same order"
    );
});
