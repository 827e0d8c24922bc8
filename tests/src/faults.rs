//! Seeded fault points, so a failing fault test can be repeated exactly.

/// The seed of a fault test: `CITYTEL_FAULT_SEED` if set (to repeat a failed run), else `default`.
/// Printed, so a failure report carries it.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("CITYTEL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("fault seed: {seed} (set CITYTEL_FAULT_SEED to repeat)");
    seed
}

/// `count` points drawn from `lo..hi` by a seeded generator (splitmix64), sorted.
pub fn fault_points(seed: u64, count: usize, lo: u64, hi: u64) -> Vec<u64> {
    let mut state = seed;
    let mut points: Vec<u64> = (0..count)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            lo + z % (hi - lo)
        })
        .collect();
    points.sort_unstable();
    points
}
