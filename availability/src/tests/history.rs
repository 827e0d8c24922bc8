//! Availability, outages, MTTR and MTBF on hand-computed timelines, and properties over random
//! ones.

use proptest::prelude::*;

use crate::{
    Cause, DeviceState, Maintenance, Outage, Span, StateTimes, Summary, Transition, availability,
    roll_up,
};

use DeviceState::{Late, Offline, Online, Unknown, Unreachable};

fn t(at_ms: i64, from: DeviceState, to: DeviceState, cause: Cause) -> Transition {
    Transition {
        at_ms,
        from,
        to,
        cause,
        boot_id: Some(1),
    }
}

/// Online 40 s, Late 10 s, Offline 30 s (two outages, the second still open at 100 s),
/// Unreachable 10 s, Unknown 10 s.
fn timeline() -> Vec<Transition> {
    vec![
        t(0, Unknown, Online, Cause::Birth),
        t(10_000, Online, Late, Cause::HeartbeatMissed),
        t(20_000, Late, Offline, Cause::Silent),
        t(40_000, Offline, Online, Cause::Reading),
        t(60_000, Online, Unreachable, Cause::GatewayOffline),
        t(70_000, Unreachable, Unknown, Cause::GatewayOnline),
        t(80_000, Unknown, Online, Cause::Reading),
        t(90_000, Online, Offline, Cause::LastWill),
    ]
}

fn assert_percent(summary: &Summary, expected: f64) {
    let percent = summary.availability_percent().unwrap_or(f64::NAN);
    assert!(
        (percent - expected).abs() < 0.005,
        "availability {percent}, expected {expected}"
    );
}

#[test]
fn availability_excludes_unknown_and_unreachable() {
    let report = availability(&timeline(), &Maintenance::default(), Span::new(0, 100_000));
    let s = report.summary;
    assert_eq!(
        s.times,
        StateTimes {
            unknown_ms: 10_000,
            online_ms: 40_000,
            late_ms: 10_000,
            offline_ms: 30_000,
            unreachable_ms: 10_000,
            maintenance_ms: 0,
        }
    );
    assert_percent(&s, 62.5);
    assert_eq!(
        report.outages,
        [
            Outage {
                start_ms: 20_000,
                end_ms: 40_000,
                duration_ms: 20_000,
                cause: Cause::Silent,
                began_before: false,
                open: false,
            },
            Outage {
                start_ms: 90_000,
                end_ms: 100_000,
                duration_ms: 10_000,
                cause: Cause::LastWill,
                began_before: false,
                open: true,
            },
        ]
    );
    // MTTR counts the outage that ended; MTBF divides 50 s available by the 2 that started.
    assert_eq!((s.mttr_ms(), s.mtbf_ms()), (Some(20_000), Some(25_000)));
}

#[test]
fn maintenance_is_taken_out_of_both_sides_and_trims_outages() {
    let maintenance = Maintenance::new([Span::new(95_000, 120_000), Span::new(15_000, 25_000)]);
    let report = availability(&timeline(), &maintenance, Span::new(0, 100_000));
    let s = report.summary;
    assert_eq!(
        s.times,
        StateTimes {
            unknown_ms: 10_000,
            online_ms: 40_000,
            late_ms: 5_000,
            offline_ms: 20_000,
            unreachable_ms: 10_000,
            maintenance_ms: 15_000,
        }
    );
    // 45 / 65.
    assert_percent(&s, 69.23);
    let spans: Vec<_> = report
        .outages
        .iter()
        .map(|o| (o.start_ms, o.end_ms, o.duration_ms, o.open))
        .collect();
    assert_eq!(
        spans,
        [
            (25_000, 40_000, 15_000, false),
            (90_000, 95_000, 5_000, true)
        ]
    );
    assert_eq!((s.mttr_ms(), s.mtbf_ms()), (Some(15_000), Some(22_500)));
}

#[test]
fn maintenance_inside_an_outage_shortens_it_and_one_covering_it_removes_it() {
    let inside = Maintenance::new([Span::new(25_000, 30_000)]);
    let report = availability(&timeline(), &inside, Span::new(0, 50_000));
    assert_eq!(
        (report.outages[0].start_ms, report.outages[0].end_ms),
        (20_000, 40_000)
    );
    assert_eq!(report.outages[0].duration_ms, 15_000);

    let covering = Maintenance::new([Span::new(18_000, 30_000), Span::new(30_000, 41_000)]);
    let report = availability(&timeline(), &covering, Span::new(0, 50_000));
    assert_eq!(report.outages, []);
    assert_eq!(report.summary.times.offline_ms, 0);
    // Online 0-10 and 41-50, Late 10-18: 27 of 27.
    assert_percent(&report.summary, 100.0);
    assert_eq!(report.summary.mtbf_ms(), None);
}

#[test]
fn an_outage_that_began_before_the_window_is_clipped_and_not_counted_as_started() {
    let report = availability(
        &timeline(),
        &Maintenance::default(),
        Span::new(30_000, 50_000),
    );
    assert_eq!(
        report.outages,
        [Outage {
            start_ms: 30_000,
            end_ms: 40_000,
            duration_ms: 10_000,
            cause: Cause::Silent,
            began_before: true,
            open: false,
        }]
    );
    let s = report.summary;
    assert_percent(&s, 50.0);
    assert_eq!((s.outages_started, s.outages_ended), (0, 1));
    assert_eq!((s.mttr_ms(), s.mtbf_ms()), (Some(10_000), None));
}

#[test]
fn windows_outside_the_history_and_at_transition_instants() {
    let none = Maintenance::default();
    let before = availability(&timeline(), &none, Span::new(-50_000, 0));
    assert_eq!(before.summary.times.unknown_ms, 50_000);
    assert_eq!(before.summary.availability_percent(), None);

    // A window starting at the instant of recovery sees no outage.
    let after = availability(&timeline(), &none, Span::new(40_000, 60_000));
    assert_eq!(after.outages, []);
    assert_percent(&after.summary, 100.0);

    // A window ending at the instant of recovery sees a closed outage.
    let upto = availability(&timeline(), &none, Span::new(0, 40_000));
    assert!(!upto.outages[0].open);

    // After the last transition the device stays Offline.
    let later = availability(&timeline(), &none, Span::new(200_000, 300_000));
    assert_eq!(later.summary.times.offline_ms, 100_000);
    assert!(later.outages[0].began_before && later.outages[0].open);
}

#[test]
fn roll_up_is_time_weighted_and_associative() {
    let none = Maintenance::default();
    let window = Span::new(0, 100_000);
    let a = availability(&timeline(), &none, window).summary;
    let b = availability(&[t(0, Unknown, Online, Cause::Birth)], &none, window).summary;
    let c = availability(&[t(50_000, Unknown, Online, Cause::Birth)], &none, window).summary;

    let site = roll_up([&a, &b]);
    // (50 + 100) / (80 + 100), not the mean of 62.5 % and 100 %.
    assert_percent(&site, 83.33);
    assert_eq!(site.devices, 2);
    assert_eq!(site.times.total_ms(), 200_000);
    assert_eq!(
        (site.mttr_ms(), site.mtbf_ms()),
        (Some(20_000), Some(75_000))
    );

    let other_site = roll_up([&c]);
    assert_eq!(roll_up([&site, &other_site]), roll_up([&a, &b, &c]));
    assert_eq!(roll_up([]).availability_percent(), None);
}

fn state() -> impl Strategy<Value = DeviceState> {
    prop::sample::select(DeviceState::ALL)
}

fn transitions() -> impl Strategy<Value = Vec<Transition>> {
    prop::collection::vec((0i64..3_000, state()), 0..30).prop_map(|steps| {
        let mut at = 0;
        let mut from = Unknown;
        let mut out = Vec::new();
        for (gap, to) in steps {
            at += gap;
            out.push(t(at, from, to, Cause::Silent));
            from = to;
        }
        out
    })
}

fn maintenance() -> impl Strategy<Value = Maintenance> {
    prop::collection::vec((-5_000i64..60_000, 0i64..8_000), 0..5)
        .prop_map(|spans| Maintenance::new(spans.into_iter().map(|(s, len)| Span::new(s, s + len))))
}

proptest! {
    #[test]
    fn figures_stay_in_range_and_split_windows_add_up(
        transitions in transitions(),
        maintenance in maintenance(),
        from in -5_000i64..60_000,
        len in 0i64..60_000,
        cut in 0.0f64..=1.0,
    ) {
        let to = from + len;
        let mid = from + (len as f64 * cut) as i64;
        let whole = availability(&transitions, &maintenance, Span::new(from, to));
        let s = whole.summary;
        if let Some(percent) = s.availability_percent() {
            prop_assert!((0.0..=100.0).contains(&percent));
        }
        prop_assert_eq!(s.times.total_ms(), len);
        prop_assert_eq!(whole.outages.iter().map(|o| o.duration_ms).sum::<i64>(), s.times.offline_ms);
        for o in &whole.outages {
            prop_assert!(from <= o.start_ms && o.start_ms < o.end_ms && o.end_ms <= to);
            prop_assert!(0 < o.duration_ms && o.duration_ms <= o.end_ms - o.start_ms);
        }

        let mut halves = availability(&transitions, &maintenance, Span::new(from, mid)).summary.times;
        halves.merge(&availability(&transitions, &maintenance, Span::new(mid, to)).summary.times);
        prop_assert_eq!(halves, s.times);
    }
}
