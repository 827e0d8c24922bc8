use crate::Completeness;
use crate::completeness::combine;
use crate::seqset::SeqSet;

fn seqs(ranges: &[(u64, u64)]) -> SeqSet {
    let mut set = SeqSet::default();
    for &(low, high) in ranges {
        for seq in low..=high {
            set.insert(seq);
        }
    }
    set
}

fn assert_percent(c: Completeness, expected: f64) {
    let percent = c.percent().unwrap_or(f64::NAN);
    assert!(
        (percent - expected).abs() < 0.005,
        "{percent} != {expected}"
    );
}

#[test]
fn gaps_in_sequence_numbers_are_missing_readings() {
    let boot = seqs(&[(1, 10), (15, 20)]);
    let c = Completeness::of_boot(&boot, None);
    assert_eq!(
        c,
        Completeness {
            received: 16,
            expected: 20
        }
    );
    assert_eq!(c.missing(), 4);
    assert_percent(c, 80.0);
}

#[test]
fn a_heartbeat_reveals_readings_lost_at_the_end_of_a_boot() {
    let boot = seqs(&[(1, 10), (15, 20)]);
    assert_eq!(Completeness::of_boot(&boot, Some(25)).expected, 25);
    assert_eq!(Completeness::of_boot(&boot, Some(5)).expected, 20);
    assert_eq!(
        Completeness::of_boot(&SeqSet::default(), Some(25)),
        Completeness::default()
    );
    assert_eq!(Completeness::default().percent(), None);
}

#[test]
fn boots_add_up_per_device_and_devices_per_site() {
    let first = Completeness::of_boot(&seqs(&[(1, 10), (15, 20)]), None);
    let second = Completeness::of_boot(&seqs(&[(100, 109)]), None);
    let device = combine([&first, &second]);
    assert_eq!((device.received, device.expected), (26, 30));
    assert_percent(device, 86.67);

    let other = Completeness::of_boot(&seqs(&[(1, 70)]), None);
    // 96 of 100, weighed by readings rather than the mean of 86.67 % and 100 %.
    assert_percent(combine([&device, &other]), 96.0);
}

#[test]
fn extreme_sequence_numbers_do_not_overflow() {
    let mut set = SeqSet::default();
    set.insert(0);
    set.insert(u64::MAX);
    let c = Completeness::of_boot(&set, None);
    assert_eq!((c.received, c.expected), (2, u64::MAX));
}
