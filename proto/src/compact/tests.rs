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
        values,
        ..Default::default()
    };
    assert!(compact.times_unix_ms.is_empty());
    assert_eq!(plain.times(), times.as_slice());
    assert_eq!(compact.times(), times.as_slice());
    assert!(prost::Message::encoded_len(&compact) < prost::Message::encoded_len(&plain));
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
}
