//! Hash maps for the engine's per-write lookups (series by device and metric).
//!
//! They hash with foldhash's fast hasher, seeded randomly per process, instead of std's SipHash,
//! which costs several times more on short keys such as device ids and metric names. The random
//! seed keeps keys sent by devices from being chosen to collide.

/// A `HashMap` with foldhash's per-process seeded hasher.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
