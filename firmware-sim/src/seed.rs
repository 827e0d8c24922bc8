//! Deterministic per-device random streams.
//!
//! Every random choice the simulator makes (metric walks, boot ids, clock skews) comes from a
//! ChaCha8 generator seeded with the fleet seed and set to a stream derived from the device id and
//! the purpose of the draws. Devices therefore never share a stream, a device's metric values do not
//! depend on how many other draws were made for it, and the same seed reproduces everything.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is used for; each purpose gets an independent stream per device.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// The metric model's walks and noise.
    Model,
    /// Per-boot identity: boot id and clock skew.
    Identity,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Model => b"model",
            Purpose::Identity => b"identity",
        }
    }
}

/// The generator for `purpose` draws of device `device_id` in a fleet seeded with `seed`.
pub(crate) fn device_rng(seed: u64, device_id: &str, purpose: Purpose) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream_id(purpose, device_id));
    rng
}

/// 64-bit FNV-1a of `purpose`, a separator and `device_id`: stable across platforms and releases,
/// unlike `std`'s hasher.
fn stream_id(purpose: Purpose, device_id: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    purpose
        .tag()
        .iter()
        .chain(b"/")
        .chain(device_id.as_bytes())
        .fold(OFFSET, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_inputs_give_the_same_stream() {
        let a: Vec<u64> = (0..4)
            .map(|_| device_rng(7, "cab-0001", Purpose::Model).random())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn devices_and_purposes_get_different_streams() {
        let first = |seed, id, purpose| device_rng(seed, id, purpose).random::<u64>();
        let base = first(7, "cab-0001", Purpose::Model);
        assert_ne!(base, first(7, "cab-0002", Purpose::Model));
        assert_ne!(base, first(7, "cab-0001", Purpose::Identity));
        assert_ne!(base, first(8, "cab-0001", Purpose::Model));
    }
}
