use crate::ClockEstimator;

const MINUTE: i64 = 60_000;
/// The device's clock is 2 s behind.
const SKEW: i64 = 2_000;

/// A network delay between 5 and 54 ms, varying with `i`.
fn delay(i: i64) -> i64 {
    5 + (i * 37) % 50
}

#[test]
fn the_estimate_ignores_delay_buffered_resends_and_glitches() {
    let mut clock = ClockEstimator::default();
    assert_eq!(clock.estimate(), None);
    let start = 60 * MINUTE;
    let mut samples = 0;
    // Every 10 s for 15 minutes (15 buckets).
    for i in 0..90 {
        let received = start + i * 10_000;
        if i / 6 == 7 {
            // Minute 7 brings nothing but a batch buffered during an outage, resent late.
            clock.observe(received - SKEW - 300_000, received);
        } else {
            clock.observe(received - SKEW - delay(i), received);
        }
        samples += 1;
    }
    // The device's clock glitches in minutes 0 and 3.
    clock.observe(start - 1_000_000_000, start + 5_000);
    clock.observe(start - 1_000_000_000, start + 3 * MINUTE);
    samples += 2;

    let estimate = clock.estimate().unwrap();
    // Bucket minima: two glitches, twelve between 2 005 and 2 017 ms, one resend.
    assert_eq!(estimate.offset_ms, SKEW + 11);
    assert_eq!((estimate.samples, estimate.buckets), (samples, 15));
}

#[test]
fn the_window_follows_a_clock_step_and_drops_old_samples() {
    let mut clock = ClockEstimator::new(MINUTE, 5);
    for minute in 0..5 {
        clock.observe(minute * MINUTE - SKEW, minute * MINUTE);
    }
    assert_eq!(clock.estimate().unwrap().offset_ms, SKEW);
    // The device's clock jumps 10 s ahead; after three of five minutes the estimate follows.
    for minute in 5..8 {
        clock.observe(minute * MINUTE + 10_000, minute * MINUTE);
    }
    let estimate = clock.estimate().unwrap();
    assert_eq!((estimate.offset_ms, estimate.buckets), (-10_000, 5));
    // A sample older than the window is ignored.
    clock.observe(0, MINUTE);
    assert_eq!(clock.estimate().unwrap().samples, 5);
}

#[test]
fn an_even_number_of_buckets_takes_the_middle_of_the_two_medians() {
    let mut clock = ClockEstimator::new(MINUTE, 4);
    for (minute, offset) in [(0, 100), (1, 200), (2, 300), (3, 1_000)] {
        clock.observe(minute * MINUTE - offset, minute * MINUTE);
    }
    assert_eq!(clock.estimate().unwrap().offset_ms, 250);
}

#[test]
fn absurd_timestamps_do_not_overflow() {
    let mut clock = ClockEstimator::new(MINUTE, 2);
    clock.observe(i64::MAX, 0);
    clock.observe(i64::MIN, MINUTE);
    assert_eq!(clock.estimate().unwrap().offset_ms, 0);
    clock.observe(0, i64::MIN);
    clock.observe(0, i64::MAX);
    assert_eq!(clock.estimate().unwrap().buckets, 1);
}
