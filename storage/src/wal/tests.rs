use std::fs::OpenOptions;
use std::io::Write;

use proptest::prelude::*;

use super::*;

fn options() -> WalOptions {
    WalOptions {
        segment_bytes: 1 << 20,
        fsync: FsyncPolicy::Always,
    }
}

fn read_all(dir: &Path) -> (Vec<Vec<u8>>, ReplayStats, Wal) {
    let mut records = Vec::new();
    let (wal, stats) = Wal::open(dir, options(), 0, |_, p| records.push(p.to_vec())).unwrap();
    (records, stats, wal)
}

fn write(dir: &Path, options: WalOptions, payloads: &[Vec<u8>]) -> Vec<Position> {
    let (mut wal, _) = Wal::open(dir, options, 0, |_, _| {}).unwrap();
    let positions = payloads.iter().map(|p| wal.append(p).unwrap()).collect();
    wal.commit().unwrap();
    positions
}

fn payloads(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("record-{i:04}-{}", "x".repeat(i % 37)).into_bytes())
        .collect()
}

fn last_segment_path(dir: &Path) -> PathBuf {
    let seqs = replay::list_segments(dir).unwrap();
    segment::path(dir, *seqs.last().unwrap())
}

#[test]
fn records_round_trip_in_order_across_commits() {
    let dir = tempfile::tempdir().unwrap();
    let all = payloads(50);
    write(dir.path(), options(), &all[..20]);
    write(dir.path(), options(), &all[20..]);
    let (got, stats, _) = read_all(dir.path());
    assert_eq!(got, all);
    assert_eq!(stats.corruptions, 0);
    assert_eq!(stats.records, 50);
}

#[test]
fn uncommitted_records_are_not_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), options(), 0, |_, _| {}).unwrap();
        wal.append(b"durable").unwrap();
        wal.commit().unwrap();
        wal.append(b"lost in the crash").unwrap();
        // Dropped without commit: as if the process died before the group commit.
    }
    let (got, _, _) = read_all(dir.path());
    assert_eq!(got, vec![b"durable".to_vec()]);
}

#[test]
fn segments_roll_over_and_replay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        segment_bytes: 64 * 1024,
        fsync: FsyncPolicy::Never,
    };
    let all: Vec<Vec<u8>> = (0..200).map(|i| vec![i as u8; 1000]).collect();
    for chunk in all.chunks(10) {
        write(dir.path(), small, chunk);
    }
    assert!(replay::list_segments(dir.path()).unwrap().len() >= 3);
    let (got, stats, _) = read_all(dir.path());
    assert_eq!(got, all);
    assert_eq!(stats.corruptions, 0);
}

#[test]
fn positions_point_at_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let all = payloads(10);
    let positions = write(dir.path(), options(), &all);
    let mut seen = Vec::new();
    Wal::open(dir.path(), options(), 0, |pos, p| {
        seen.push((pos, p.to_vec()))
    })
    .unwrap();
    let expected: Vec<_> = positions.into_iter().zip(all).collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_newer_format_version_is_refused_not_repaired() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), options(), &payloads(3));
    let path = last_segment_path(dir.path());
    let mut data = std::fs::read(&path).unwrap();
    data[4] = 2;
    std::fs::write(&path, &data).unwrap();
    let err = Wal::open(dir.path(), options(), 0, |_, _| {})
        .err()
        .unwrap();
    assert!(
        matches!(err, WalError::UnsupportedVersion { found: 2, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), data, "file left untouched");
}

/// One kind of damage: a function that damages the WAL in `dir` and the number of records (of
/// the 10 written) expected to survive.
type Damage = (&'static str, fn(&Path), usize);

fn damages() -> Vec<Damage> {
    fn modify(dir: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let path = last_segment_path(dir);
        let mut data = std::fs::read(&path).unwrap();
        f(&mut data);
        std::fs::write(&path, data).unwrap();
    }
    fn record_offsets(dir: &Path) -> Vec<usize> {
        let mut offsets = Vec::new();
        Wal::open(dir, options(), 0, |pos, _| {
            offsets.push(pos.offset as usize)
        })
        .unwrap();
        offsets
    }
    vec![
        (
            "torn last record",
            |d| modify(d, |b| b.truncate(b.len() - 3)),
            9,
        ),
        (
            "torn record header",
            |d| {
                let last = *record_offsets(d).last().unwrap();
                modify(d, |b| b.truncate(last + 5))
            },
            9,
        ),
        ("bad segment header", |d| modify(d, |b| b[0] = b'X'), 0),
        (
            "bad checksum",
            |d| {
                let third = record_offsets(d)[2];
                modify(d, |b| b[third + 5] ^= 0xff)
            },
            2,
        ),
        (
            "bad length",
            |d| {
                let fifth = record_offsets(d)[4];
                modify(d, |b| {
                    b[fifth..fifth + 4].copy_from_slice(&u32::MAX.to_le_bytes())
                })
            },
            4,
        ),
        (
            "zero length field",
            |d| {
                let fifth = record_offsets(d)[4];
                modify(d, |b| {
                    b[fifth..fifth + 4].copy_from_slice(&0u32.to_le_bytes())
                })
            },
            4,
        ),
        (
            "bad content",
            |d| {
                let seventh = record_offsets(d)[6];
                modify(d, |b| b[seventh + 9] ^= 0x01)
            },
            6,
        ),
        (
            "truncated mid-record",
            |d| {
                let eighth = record_offsets(d)[7];
                modify(d, |b| b.truncate(eighth + 10))
            },
            7,
        ),
        ("zero-length segment", |d| modify(d, |b| b.clear()), 0),
    ]
}

#[test]
fn damaged_segments_keep_every_record_before_the_damage() {
    for (name, damage, survivors) in damages() {
        let dir = tempfile::tempdir().unwrap();
        let all = payloads(10);
        write(dir.path(), options(), &all);
        damage(dir.path());
        let (got, stats, mut wal) = read_all(dir.path());
        assert_eq!(got, all[..survivors].to_vec(), "{name}: survivors");
        assert_eq!(stats.corruptions, 1, "{name}: counted once");
        // Appends work after the repair, and a second open finds a clean log.
        wal.append(b"after repair").unwrap();
        wal.commit().unwrap();
        drop(wal);
        let (again, stats, _) = read_all(dir.path());
        assert_eq!(stats.corruptions, 0, "{name}: repair is durable");
        assert_eq!(again.len(), survivors + 1, "{name}");
        assert_eq!(again.last().unwrap(), b"after repair", "{name}");
    }
}

#[test]
fn damage_in_one_segment_does_not_discard_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    let first = payloads(5);
    write(dir.path(), options(), &first);
    // Start a second segment by hand.
    let (wal, _) = Wal::open(dir.path(), options(), 0, |_, _| {}).unwrap();
    let second_seq = wal.active_segment() + 1;
    drop(wal);
    let mut f = segment::create(dir.path(), second_seq).unwrap();
    let mut framed = Vec::new();
    record::encode(b"in the second segment", &mut framed);
    f.write_all(&framed).unwrap();
    drop(f);
    // Tear the first segment's last record.
    let first_path = segment::path(dir.path(), second_seq - 1);
    let len = std::fs::metadata(&first_path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&first_path)
        .unwrap()
        .set_len(len - 2)
        .unwrap();

    let (got, stats, _) = read_all(dir.path());
    let mut expected = first[..4].to_vec();
    expected.push(b"in the second segment".to_vec());
    assert_eq!(got, expected);
    assert_eq!(stats.corruptions, 1);
}

#[test]
fn a_missing_segment_is_counted_and_replay_continues() {
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        segment_bytes: 64 * 1024,
        fsync: FsyncPolicy::Never,
    };
    let all: Vec<Vec<u8>> = (0..300).map(|i| vec![(i % 251) as u8; 1000]).collect();
    for chunk in all.chunks(10) {
        write(dir.path(), small, chunk);
    }
    let seqs = replay::list_segments(dir.path()).unwrap();
    assert!(seqs.len() >= 3);
    let mut in_missing = 0;
    Wal::open(dir.path(), small, 0, |pos, _| {
        in_missing += usize::from(pos.segment == seqs[1])
    })
    .unwrap();
    std::fs::remove_file(segment::path(dir.path(), seqs[1])).unwrap();
    let (got, stats, _) = read_all(dir.path());
    assert_eq!(stats.corruptions, 1);
    assert_eq!(got.len(), all.len() - in_missing);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn arbitrary_payloads_round_trip(
        batches in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..20),
            1..5,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        for batch in &batches {
            write(dir.path(), options(), batch);
        }
        let (got, stats, _) = read_all(dir.path());
        prop_assert_eq!(got, batches.concat());
        prop_assert_eq!(stats.corruptions, 0);
    }

    #[test]
    fn any_truncation_keeps_a_prefix(cut in 0usize..2000) {
        let dir = tempfile::tempdir().unwrap();
        let all = payloads(30);
        write(dir.path(), options(), &all);
        let path = last_segment_path(dir.path());
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        let keep = len.saturating_sub(cut);
        OpenOptions::new().write(true).open(&path).unwrap().set_len(keep as u64).unwrap();
        let (got, _, _) = read_all(dir.path());
        prop_assert_eq!(&got[..], &all[..got.len()]);
    }
}

#[test]
fn segments_before_a_checkpoint_are_deleted_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), options(), 0, |_, _| {}).unwrap();
    wal.append(b"covered").unwrap();
    let next = wal.roll_now().unwrap();
    wal.append(b"after the checkpoint").unwrap();
    wal.commit().unwrap();
    drop(wal);
    let mut got = Vec::new();
    Wal::open(dir.path(), options(), next, |_, p| got.push(p.to_vec())).unwrap();
    assert_eq!(got, vec![b"after the checkpoint".to_vec()]);
    assert_eq!(replay::list_segments(dir.path()).unwrap(), vec![next]);
}

/// `ENOSPC`, `EMFILE` and `EIO` on Linux.
const ENOSPC: i32 = 28;
const EMFILE: i32 = 24;
const EIO: i32 = 5;

#[test]
fn running_out_of_space_or_descriptors_is_told_apart_from_io_errors() {
    let error = |errno| WalError::Io {
        op: "write",
        path: PathBuf::new(),
        source: std::io::Error::from_raw_os_error(errno),
    };
    assert_eq!(error(ENOSPC).exhausted(), Some(Exhausted::DiskFull));
    assert_eq!(error(EMFILE).exhausted(), Some(Exhausted::Descriptors));
    assert_eq!(error(EIO).exhausted(), None);
    assert_eq!(WalError::PayloadSize(0).exhausted(), None);
}

#[test]
fn a_failed_commit_leaves_no_partial_record_and_is_retried_in_place() {
    for point in [FaultPoint::WritePartly, FaultPoint::Write, FaultPoint::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let all = payloads(40);
        {
            let (mut wal, _) = Wal::open(dir.path(), options(), 0, |_, _| {}).unwrap();
            for p in &all[..10] {
                wal.append(p).unwrap();
            }
            wal.commit().unwrap();
            let good_len = std::fs::metadata(last_segment_path(dir.path()))
                .unwrap()
                .len();
            for p in &all[10..] {
                wal.append(p).unwrap();
            }
            wal.inject_fault(point, ENOSPC);
            let failed = wal.commit().unwrap_err();
            assert_eq!(failed.exhausted(), Some(Exhausted::DiskFull), "{point:?}");
            assert_eq!(
                std::fs::metadata(last_segment_path(dir.path()))
                    .unwrap()
                    .len(),
                good_len,
                "{point:?}: cut back to the last good commit"
            );
            // Space is back: the same group goes in, once.
            wal.commit().unwrap();
        }
        let (got, stats, _) = read_all(dir.path());
        assert_eq!(got, all, "{point:?}");
        assert_eq!(stats.corruptions, 0, "{point:?}");
    }
}

#[test]
fn a_crash_after_a_failed_commit_keeps_only_the_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let all = payloads(20);
    {
        let (mut wal, _) = Wal::open(dir.path(), options(), 0, |_, _| {}).unwrap();
        for p in &all[..5] {
            wal.append(p).unwrap();
        }
        wal.commit().unwrap();
        for p in &all[5..] {
            wal.append(p).unwrap();
        }
        wal.inject_fault(FaultPoint::WritePartly, ENOSPC);
        assert!(wal.commit().is_err());
        // Dropped: the process stops while the disk is still full.
    }
    let (got, stats, _) = read_all(dir.path());
    assert_eq!(got, all[..5]);
    assert_eq!(stats.corruptions, 0, "no torn record was left to repair");
}

#[test]
fn a_segment_that_cannot_be_created_is_tried_again_after_the_next_commit() {
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        segment_bytes: 64,
        fsync: FsyncPolicy::Always,
    };
    let all = payloads(6);
    {
        let (mut wal, _) = Wal::open(dir.path(), small, 0, |_, _| {}).unwrap();
        wal.append(&[7u8; 100]).unwrap();
        wal.inject_fault(FaultPoint::CreateSegment, EMFILE);
        // Durable despite the failed rollover: the segment grows past its size.
        wal.commit().unwrap();
        assert_eq!(wal.active_segment(), 1);
        for p in &all {
            wal.append(p).unwrap();
        }
        wal.commit().unwrap();
        assert_eq!(wal.active_segment(), 2, "rolled over after the next commit");
        // Checkpoints roll on demand: a failure there leaves the segment as it was.
        wal.append(b"more").unwrap();
        wal.commit().unwrap();
        wal.inject_fault(FaultPoint::CreateSegment, EMFILE);
        let err = wal.roll_now().unwrap_err();
        assert_eq!(err.exhausted(), Some(Exhausted::Descriptors));
        assert_eq!(wal.active_segment(), 2);
        assert_eq!(wal.roll_now().unwrap(), 3);
    }
    let (got, stats, _) = read_all(dir.path());
    let mut want = vec![vec![7u8; 100]];
    want.extend(all.iter().cloned());
    want.push(b"more".to_vec());
    assert_eq!(got, want);
    assert_eq!(stats.corruptions, 0);
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}
