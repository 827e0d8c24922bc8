use proptest::prelude::*;

use super::*;

#[test]
fn a_regular_day_is_one_run() {
    let times: Vec<i64> = (0..8640).map(|i| 1_795_564_800_000 + i * 10_000).collect();
    let runs = encode_times(&times).expect("regular times encode as runs");
    assert_eq!(
        runs,
        vec![TimeRun {
            start_unix_ms: 1_795_564_800_000,
            step_ms: 10_000,
            count: 8640
        }]
    );
    assert_eq!(decode_times(&runs), times);
}

#[test]
fn gaps_and_lone_points_start_new_runs() {
    let times = [0, 10, 20, 100, 110, 120, 130, 500, 510, 520, 530, 540];
    let runs = encode_times(&times).expect("three runs for twelve points");
    let shape: Vec<(i64, i64, u32)> = runs
        .iter()
        .map(|r| (r.start_unix_ms, r.step_ms, r.count))
        .collect();
    assert_eq!(shape, [(0, 10, 3), (100, 10, 4), (500, 10, 5)]);
    assert_eq!(decode_times(&runs), times);
}

#[test]
fn irregular_times_stay_one_per_point() {
    assert_eq!(encode_times(&[0, 1, 3, 7, 15, 31, 63, 127]), None);
    assert_eq!(encode_times(&[42]), None, "a lone point is not worth a run");
    assert_eq!(encode_times(&[]), Some(vec![]));
}

#[test]
fn extreme_times_do_not_overflow() {
    let times = [
        i64::MIN,
        i64::MIN + 1,
        i64::MIN + 2,
        0,
        i64::MAX - 1,
        i64::MAX,
    ];
    if let Some(runs) = encode_times(&times) {
        assert_eq!(decode_times(&runs), times);
    }
}

#[test]
fn sensor_decimals_take_the_smallest_scale() {
    let values = [21.5, -13.64, 57.0, 0.01, 1013.25];
    let decimals = encode_values(&values).expect("short decimals");
    assert_eq!(decimals.scale, 2);
    // Mantissas 2150, -1364, 5700, 1 and 101,325, each sent as its difference from the last.
    assert_eq!(
        decimals.mantissa_deltas,
        [2150, -3514, 7064, -5699, 101_324]
    );
    assert_eq!(bits(&decode_values(&decimals)), bits(&values));
    let whole = encode_values(&[3.0, 4.0, -7.0]).expect("integers");
    assert_eq!((whole.scale, whole.mantissa_deltas), (0, vec![3, 1, -11]));
}

#[test]
fn a_slowly_changing_reading_takes_a_byte_per_point() {
    // A temperature rising by 0.03 every 10 s and falling back every 97 points, for a day.
    let values: Vec<f64> = (0..8640)
        .map(|i| {
            format!("{:.2}", 21.0 + f64::from(i % 97) * 0.03)
                .parse()
                .unwrap()
        })
        .collect();
    let decimals = encode_values(&values).expect("decimals");
    assert_eq!(decimals.scale, 2);
    let encoded = prost::Message::encoded_len(&decimals);
    assert!(encoded * 100 < values.len() * 102, "{encoded} bytes");
    assert_eq!(bits(&decode_values(&decimals)), bits(&values));
}

#[test]
fn extreme_mantissas_round_trip() {
    // The largest differences there can be, among enough small ones to make decimals pay.
    let mut values = vec![8.9e15, -8.9e15, 8.9e15, -8.9e15];
    values.resize(100, 0.0);
    let decimals = encode_values(&values).expect("integers");
    assert_eq!(decimals.mantissa_deltas[1], -17_800_000_000_000_000);
    assert_eq!(bits(&decode_values(&decimals)), bits(&values));
}

#[test]
fn values_that_are_not_short_decimals_stay_doubles() {
    assert_eq!(encode_values(&[1.0 / 3.0, 2.0]), None);
    assert_eq!(
        encode_values(&[0.0, -0.0]),
        None,
        "-0.0 has no decimal form"
    );
    assert_eq!(encode_values(&[f64::INFINITY]), None);
    assert_eq!(encode_values(&[f64::NAN]), None);
    assert_eq!(encode_values(&[1e300]), None);
    assert_eq!(encode_values(&[f64::MIN_POSITIVE]), None);
    assert_eq!(encode_values(&[]), None);
    // Whole numbers near 2^50 take 8 bytes as varints: no smaller than doubles.
    assert_eq!(encode_values(&[9.0e14, -8.5e14]), None);
}

#[test]
fn a_response_reads_the_same_either_way() {
    let times: Vec<i64> = (0..100).map(|i| i * 1000).collect();
    let values: Vec<f64> = (0..100).map(|i| f64::from(i) * 0.25).collect();
    let plain = v1::QueryRangeResponse {
        times_unix_ms: times.clone(),
        values: values.clone(),
        ..Default::default()
    };
    let compact = v1::QueryRangeResponse {
        time_runs: encode_times(&times).expect("runs"),
        decimal_values: Some(encode_values(&values).expect("decimals")),
        ..Default::default()
    };
    assert!(compact.times_unix_ms.is_empty() && compact.values.is_empty());
    assert_eq!(plain.times(), times.as_slice());
    assert_eq!(compact.times(), times.as_slice());
    assert_eq!(bits(&plain.values()), bits(&values));
    assert_eq!(bits(&compact.values()), bits(&values));
    assert!(prost::Message::encoded_len(&compact) * 4 < prost::Message::encoded_len(&plain));
}

fn bits(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #[test]
    fn runs_round_trip(mut times in proptest::collection::vec(any::<i64>(), 0..200),
                       regular in 0usize..200, step in 1i64..100_000) {
        // Random times with a regular stretch, as real series have.
        times.extend((0..regular as i64).map(|i| i * step));
        times.sort_unstable();
        times.dedup();
        if let Some(runs) = encode_times(&times) {
            prop_assert!(runs.len() * 2 < times.len() || times.is_empty());
            prop_assert_eq!(decode_times(&runs), times);
        }
    }

    #[test]
    fn decimals_round_trip_bit_for_bit(
        mantissas in proptest::collection::vec(-10_000_000i64..10_000_000, 1..100),
        scale in 0u32..=MAX_SCALE,
    ) {
        // Values as a device would send them: short decimals, parsed from their text.
        let values: Vec<f64> = mantissas
            .iter()
            .map(|&k| format!("{}", k as f64 / 10f64.powi(scale as i32)).parse().unwrap_or(0.0))
            .collect();
        if let Some(decimals) = encode_values(&values) {
            prop_assert!(decimals.scale <= scale);
            prop_assert_eq!(bits(&decode_values(&decimals)), bits(&values));
        }
    }

    #[test]
    fn any_doubles_round_trip_or_stay_doubles(raw in proptest::collection::vec(any::<u64>(), 1..50)) {
        let values: Vec<f64> = raw.into_iter().map(f64::from_bits).collect();
        if let Some(decimals) = encode_values(&values) {
            prop_assert_eq!(bits(&decode_values(&decimals)), bits(&values));
        }
    }
}
