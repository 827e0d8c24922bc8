//! Names of the metrics the storage library records through the `metrics` facade (no-ops
//! without an installed exporter). Units are in the names.

/// WAL repairs at start-up (torn or corrupt records, bad headers, missing segments).
pub const WAL_CORRUPTIONS_TOTAL: &str = "citytel_wal_corruptions_total";
