//! Mapping rules, chunked parallel imports with exact line numbers, and dataset files (the
//! simulator's own datasets are imported in the end-to-end tests, `import_dataset.rs`).

use std::cell::Cell;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use citytel_proto::v1::{DatasetRecord, Reading, TelemetryBatch};
use prost::Message as _;

use super::lineproto::parse_line;
use super::mapping::{BatchBuilder, MapError, Mapping, map_line};
use super::*;

/// A point with its device and metric resolved.
type Point = (DeviceKey, String, i64, f64);

/// Keeps everything it is given.
#[derive(Default)]
struct VecSink {
    batches: usize,
    points: Vec<Point>,
}

impl ImportSink for VecSink {
    fn write(&mut self, batch: &PointBatch) -> Result<(), ImportError> {
        self.batches += 1;
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

fn key(device_id: &str, site: &str, kind: &str) -> DeviceKey {
    DeviceKey {
        device_id: device_id.into(),
        site: site.into(),
        kind: kind.into(),
    }
}

const MAPPING: Mapping<'static> = Mapping {
    device_tag: "device_id",
    default_site: "unknown",
    precision: Precision::Nanoseconds,
};

/// Maps one line with `mapping`: its points, or the error text.
fn map(text: &str, mapping: &Mapping<'_>) -> Result<Vec<Point>, String> {
    let line = parse_line(text).expect("valid syntax").expect("a line");
    let mut builder = BatchBuilder::new();
    map_line(&line, mapping, &mut builder).map_err(|e| e.to_string())?;
    let mut sink = VecSink::default();
    sink.write(&builder.finish()).expect("vec sink");
    Ok(sink.points)
}

#[test]
fn fields_in_a_changing_order_map_to_their_own_metrics() {
    // The first line sets the names remembered per field position; the others reorder, drop,
    // add and rename fields, and put a string field where a number was.
    let lines = [
        "m,device_id=a x=1,y=2 1000000",
        "m,device_id=a y=3,x=4 2000000",
        "m,device_id=a x=5,z=6,y=7 3000000",
        "m,device_id=a s=\"text\",x=8 4000000",
        "m,device_id=a x=9,y=10 5000000",
    ];
    let mut builder = BatchBuilder::new();
    for text in lines {
        let line = parse_line(text).expect("valid syntax").expect("a line");
        map_line(&line, &MAPPING, &mut builder).expect("maps");
    }
    let mut sink = VecSink::default();
    sink.write(&builder.finish()).expect("vec sink");
    let got: Vec<(String, i64, f64)> = sink
        .points
        .into_iter()
        .map(|(_, metric, time_ms, value)| (metric, time_ms, value))
        .collect();
    let want = [
        ("x", 1, 1.0),
        ("y", 1, 2.0),
        ("y", 2, 3.0),
        ("x", 2, 4.0),
        ("x", 3, 5.0),
        ("z", 3, 6.0),
        ("y", 3, 7.0),
        ("x", 4, 8.0),
        ("x", 5, 9.0),
        ("y", 5, 10.0),
    ];
    let want: Vec<(String, i64, f64)> = want
        .into_iter()
        .map(|(m, t, v)| (m.to_string(), t, v))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn lines_map_to_devices_metrics_and_milliseconds() {
    let points = map(
        "cabinet,device_id=cab-1,site=s1 t=21.5,n=3i,u=4u,door=true,off=F,note=\"hi\" 1700000000123456789",
        &MAPPING,
    )
    .expect("maps");
    let device = key("cab-1", "s1", "cabinet");
    let at = 1_700_000_000_123;
    assert_eq!(
        points,
        vec![
            (device.clone(), "t".into(), at, 21.5),
            (device.clone(), "n".into(), at, 3.0),
            (device.clone(), "u".into(), at, 4.0),
            (device.clone(), "door".into(), at, 1.0),
            (device, "off".into(), at, 0.0),
        ]
    );
    // The kind tag wins over the measurement; a missing site is the default one.
    let points = map(
        "telemetry,kind=sensor,device_id=sen-9 pm25=3 1000000",
        &MAPPING,
    )
    .expect("maps");
    assert_eq!(
        points,
        vec![(key("sen-9", "unknown", "sensor"), "pm25".into(), 1, 3.0)]
    );
    // Another device tag and default site.
    let mapping = Mapping {
        device_tag: "host",
        default_site: "hq",
        ..MAPPING
    };
    let points = map("cpu,host=web-1 usage=0.5 2000000", &mapping).expect("maps");
    assert_eq!(
        points,
        vec![(key("web-1", "hq", "cpu"), "usage".into(), 2, 0.5)]
    );
}

#[test]
fn precisions_convert_to_milliseconds_rounding_down() {
    use Precision::*;
    assert_eq!(Nanoseconds.to_millis(1_999_999), Some((1, true)));
    assert_eq!(Nanoseconds.to_millis(2_000_000), Some((2, false)));
    assert_eq!(Nanoseconds.to_millis(-1), Some((-1, true)));
    assert_eq!(Microseconds.to_millis(1_500), Some((1, true)));
    assert_eq!(Milliseconds.to_millis(-7), Some((-7, false)));
    assert_eq!(Seconds.to_millis(3), Some((3_000, false)));
    assert_eq!(Seconds.to_millis(i64::MAX), None);
    for (text, precision) in [
        ("ns", Nanoseconds),
        ("us", Microseconds),
        ("ms", Milliseconds),
        ("s", Seconds),
    ] {
        assert_eq!(text.parse::<Precision>(), Ok(precision));
        assert_eq!(precision.to_string(), text);
    }
    assert!("h".parse::<Precision>().is_err());
}

#[test]
fn bad_lines_give_no_points_and_a_clear_reason() {
    let long = "x".repeat(65);
    let cases = [
        ("m,device_id=d f=1".to_string(), "missing timestamp"),
        (
            "m,host=d f=1 1".to_string(),
            "missing device tag \"device_id\"",
        ),
        (
            "m,device_id=d/1 f=1 1".to_string(),
            "invalid device id \"d/1\"",
        ),
        (
            "m,device_id=d,site=a\\ b f=1 1".to_string(),
            "invalid site \"a b\"",
        ),
        (
            "m\\,x,device_id=d f=1 1".to_string(),
            "invalid kind \"m,x\"",
        ),
        (
            "m,device_id=d ok=1,bad\\ name=2 1".to_string(),
            "invalid metric name \"bad name\"",
        ),
        (format!("m,device_id=d {long}=1 1"), "invalid metric name"),
        (
            "m,device_id=d ok=1,big=1e999 1".to_string(),
            "field \"big\" is NaN or infinite",
        ),
    ];
    for (text, want) in cases {
        let error = map(&text, &MAPPING).expect_err(&text);
        assert!(error.starts_with(want), "{text}: {error}");
    }
    let mapping = Mapping {
        precision: Precision::Seconds,
        ..MAPPING
    };
    let error = map("m,device_id=d f=1 9223372036854775807", &mapping).expect_err("overflow");
    assert!(error.contains("out of range"), "{error}");
    assert_eq!(
        MapError::MissingTimestamp.reason(),
        BadLineReason::MissingTimestamp
    );
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

fn import(path: &Path, options: &ImportOptions) -> (Result<ImportSummary, ImportError>, VecSink) {
    let mut sink = VecSink::default();
    let result = import_file(path, options, &mut sink, &|_| {});
    (result, sink)
}

/// 300 lines: good ones, with a bad one every 7th line and a comment every 11th.
fn mixed_file() -> (String, Vec<u64>) {
    let mut text = String::new();
    let mut bad = Vec::new();
    for n in 1..=300u64 {
        if n % 11 == 0 {
            text.push_str("# comment\n");
        } else if n % 7 == 0 {
            text.push_str(&format!("sensor,device_id=sen-{n} pm25=\n"));
            bad.push(n);
        } else {
            text.push_str(&format!(
                "sensor,device_id=sen-{n},site=s pm25={n},note=\"x\" {n}000000\n"
            ));
        }
    }
    (text, bad)
}

#[test]
fn bad_lines_keep_exact_line_numbers_across_chunks_and_threads() {
    let (text, bad) = mixed_file();
    let (_dir, path) = file("mixed.lp", text.as_bytes());
    let options = |threads, chunk_size| ImportOptions {
        threads,
        chunk_size,
        max_error_samples: 1_000,
        ..ImportOptions::default()
    };
    let (reference, reference_sink) = import(&path, &options(1, 1 << 20));
    let reference = reference.expect("imports");
    let samples = &reference.bad_lines[&BadLineReason::Syntax].samples;
    assert_eq!(samples.iter().map(|s| s.line).collect::<Vec<_>>(), bad);
    assert_eq!(samples[0].reason, "column 29: missing field value");
    assert_eq!(samples[0].text, "sensor,device_id=sen-7 pm25=");
    assert_eq!(reference.lines, 300);
    assert_eq!(reference.skipped_lines, 27);
    assert_eq!(reference.points, 300 - 27 - bad.len() as u64);
    assert_eq!(reference.skipped_string_fields, reference.points);
    assert_eq!(reference.bytes, text.len() as u64);

    // Tiny chunks (some shorter than a line) over several threads: the same result.
    for (threads, chunk_size) in [(1, 1), (2, 7), (3, 64), (4, 200)] {
        let (summary, sink) = import(&path, &options(threads, chunk_size));
        let summary = summary.expect("imports");
        assert_eq!(
            summary.bad_lines, reference.bad_lines,
            "{threads} threads, {chunk_size} B"
        );
        assert_eq!(
            (summary.lines, summary.points),
            (reference.lines, reference.points)
        );
        assert_eq!(sink.points, reference_sink.points);
    }
}

#[test]
fn samples_are_limited_per_reason_and_cut_to_200_characters() {
    let long = format!("m,device_id=d f=\"{}\n", "y".repeat(300));
    let text = format!(
        "{long}{}m f=1 1\nm f=1 1\n",
        "m,device_id=d f=1\n".repeat(5)
    );
    let (_dir, path) = file("limits.lp", text.as_bytes());
    let options = ImportOptions {
        max_error_samples: 2,
        chunk_size: 16,
        threads: 2,
        ..ImportOptions::default()
    };
    let (summary, _) = import(&path, &options);
    let summary = summary.expect("imports");
    let syntax = &summary.bad_lines[&BadLineReason::Syntax];
    assert_eq!(syntax.count, 1);
    assert_eq!(syntax.samples[0].text.chars().count(), SAMPLE_CHARS + 1);
    assert!(syntax.samples[0].text.ends_with('…'));
    let missing = &summary.bad_lines[&BadLineReason::MissingTimestamp];
    assert_eq!(missing.count, 5);
    assert_eq!(
        missing.samples.iter().map(|s| s.line).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(summary.bad_lines[&BadLineReason::MissingDeviceTag].count, 2);
    assert_eq!(summary.bad_line_count(), 8);
}

#[test]
fn crlf_a_last_line_without_newline_and_invalid_utf8() {
    let mut bytes =
        b"m,device_id=a f=1 1000000\r\n\r\nm,device_id=\xff f=1 1\r\nm,device_id=b f=2 2000000"
            .to_vec();
    bytes.extend_from_slice(b"");
    let (_dir, path) = file("crlf.txt", &bytes);
    let (summary, sink) = import(
        &path,
        &ImportOptions {
            threads: 1,
            ..ImportOptions::default()
        },
    );
    let summary = summary.expect("imports");
    assert_eq!(
        (summary.lines, summary.skipped_lines, summary.points),
        (4, 1, 2)
    );
    let utf8 = &summary.bad_lines[&BadLineReason::InvalidUtf8];
    assert_eq!(utf8.samples[0].line, 3);
    assert_eq!(utf8.samples[0].reason, "column 13: invalid UTF-8");
    assert_eq!(
        sink.points[1],
        (key("b", "unknown", "m"), "f".into(), 2, 2.0)
    );
}

#[test]
fn strict_mode_stops_at_the_first_bad_line_after_importing_the_ones_before() {
    let (text, bad) = mixed_file();
    let (_dir, path) = file("strict.lp", text.as_bytes());
    let options = ImportOptions {
        strict: true,
        threads: 3,
        chunk_size: 50,
        ..ImportOptions::default()
    };
    let (result, sink) = import(&path, &options);
    match result {
        Err(ImportError::BadLine {
            line, reason, text, ..
        }) => {
            assert_eq!(line, bad[0]);
            assert_eq!(reason, "column 29: missing field value");
            assert_eq!(text, "sensor,device_id=sen-7 pm25=");
        }
        other => panic!("expected a bad line error, got {other:?}"),
    }
    assert_eq!(sink.points.len(), 6);
    let message = import(&path, &options).0.expect_err("strict").to_string();
    assert!(
        message.contains("strict.lp:7: column 29: missing field value"),
        "{message}"
    );
}

#[test]
fn sink_errors_and_unreadable_files_are_reported() {
    struct Failing;
    impl ImportSink for Failing {
        fn write(&mut self, _: &PointBatch) -> Result<(), ImportError> {
            Err(ImportError::sink("disk full"))
        }
    }
    let (_dir, path) = file("x.lp", b"m,device_id=a f=1 1\n");
    let error =
        import_file(&path, &ImportOptions::default(), &mut Failing, &|_| {}).expect_err("fails");
    assert_eq!(
        error.to_string(),
        "storing imported points failed: disk full"
    );
    let missing = path.with_file_name("missing.lp");
    let error = import(&missing, &ImportOptions::default())
        .0
        .expect_err("no file");
    assert!(matches!(error, ImportError::Io { .. }), "{error}");
    let bad_site = ImportOptions {
        default_site: "no site".into(),
        ..ImportOptions::default()
    };
    assert!(matches!(
        import(&path, &bad_site).0,
        Err(ImportError::Options(_))
    ));
}

#[test]
fn progress_reaches_the_file_size() {
    let (text, _) = mixed_file();
    let (_dir, path) = file("progress.lp", text.as_bytes());
    let last = Cell::new(None);
    let calls = Cell::new(0);
    let options = ImportOptions {
        chunk_size: 256,
        threads: 2,
        ..ImportOptions::default()
    };
    import_file(&path, &options, &mut VecSink::default(), &|p| {
        calls.set(calls.get() + 1);
        last.set(Some(p));
    })
    .expect("imports");
    let last = last.get().expect("progress reported");
    assert_eq!(
        (last.bytes_done, last.bytes_total, last.lines),
        (text.len() as u64, text.len() as u64, 300)
    );
    assert!(calls.get() > 10);
}

#[test]
fn formats_are_guessed_from_the_extension() {
    for (name, format) in [
        ("a.lp", Some(Format::LineProtocol)),
        ("a.txt", Some(Format::LineProtocol)),
        ("a.line", Some(Format::LineProtocol)),
        ("a.pb", Some(Format::DatasetProto)),
        ("a.csv", None),
        ("lp", None),
    ] {
        assert_eq!(Format::from_path(Path::new(name)), format, "{name}");
    }
    assert_eq!("proto".parse::<Format>(), Ok(Format::DatasetProto));
}

fn record(topic: &str, device_id: &str, names: &[&str], values: Vec<f64>) -> Vec<u8> {
    DatasetRecord {
        topic: topic.into(),
        batch: Some(TelemetryBatch {
            device_id: device_id.into(),
            boot_id: 7,
            metric_names: names.iter().map(|n| n.to_string()).collect(),
            readings: vec![Reading {
                seq: 1,
                time_unix_ms: 5,
                values,
            }],
            gateway_id: None,
        }),
    }
    .encode_length_delimited_to_vec()
}

#[test]
fn bad_dataset_records_are_counted_and_a_torn_tail_reported() {
    let topic = "citytel/v1/s1/sensor/sen-1/telemetry";
    let good = record(topic, "sen-1", &["a", "b"], vec![1.0, 2.0]);
    let mut bytes = good.clone();
    bytes.extend(record(topic, "sen-2", &["a"], vec![1.0]));
    bytes.extend(record("not/a/topic", "sen-1", &["a"], vec![1.0]));
    bytes.extend(record(topic, "sen-1", &["a b"], vec![1.0]));
    bytes.extend(record(topic, "sen-1", &["a"], vec![f64::NAN]));
    bytes.extend(record(topic, "sen-1", &["a", "b"], vec![1.0]));
    bytes.extend([3, 0xff, 0xff, 0xff]);
    bytes.extend(&good);
    bytes.extend(&good[..good.len() - 3]);
    let (_dir, path) = file("bad.pb", &bytes);
    for threads in [1, 2] {
        let options = ImportOptions {
            format: Format::DatasetProto,
            threads,
            chunk_size: 40,
            ..ImportOptions::default()
        };
        let (summary, sink) = import(&path, &options);
        let summary = summary.expect("imports");
        assert_eq!(summary.lines, 9);
        assert_eq!(summary.points, 4);
        assert_eq!(
            sink.points[0],
            (key("sen-1", "s1", "sensor"), "a".into(), 5, 1.0)
        );
        let lines = |reason| {
            summary.bad_lines[&reason]
                .samples
                .iter()
                .map(|s| s.line)
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(BadLineReason::InvalidRecord), [2, 3, 6, 7]);
        assert_eq!(lines(BadLineReason::InvalidMetricName), [4]);
        assert_eq!(lines(BadLineReason::NonFiniteValue), [5]);
        assert_eq!(lines(BadLineReason::TruncatedRecord), [9]);
        let sample = &summary.bad_lines[&BadLineReason::InvalidRecord].samples[0];
        assert_eq!(
            sample.reason,
            "batch device id \"sen-2\" is not the topic's \"sen-1\""
        );
    }
}

#[test]
fn a_corrupt_record_length_stops_the_import_with_its_position() {
    let good = record(
        "citytel/v1/s1/sensor/sen-1/telemetry",
        "sen-1",
        &["a"],
        vec![1.0],
    );
    let mut bytes = good.clone();
    bytes.extend([0xff; 12]);
    bytes.extend(&good);
    let (_dir, path) = file("corrupt.pb", &bytes);
    let options = ImportOptions {
        format: Format::DatasetProto,
        threads: 2,
        chunk_size: 8,
        ..ImportOptions::default()
    };
    let (result, sink) = import(&path, &options);
    match result {
        Err(ImportError::Corrupt { record, offset, .. }) => {
            assert_eq!((record, offset), (2, good.len() as u64));
        }
        other => panic!("expected a corrupt file error, got {other:?}"),
    }
    assert_eq!(sink.points.len(), 1);
}
