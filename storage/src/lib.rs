//! citytel's storage, as a library that knows nothing of the service around it: it stores opaque
//! WAL records and numeric series, and hands back what it stored.
//!
//! - [`wal`]: the write-ahead log: segmented, CRC-checked files with group commit, replay and
//!   repair of a torn tail, and a [`wal::tail::Tail`] for readers that follow it (sinks). It
//!   makes a record durable; what a record means is the caller's business.
//! - [`engine`]: the embedded time-series engine: an in-memory head per series, compressed
//!   segments and rollups in fjall, compaction, retention and reads that merge them.
//! - [`series`]: the write and read traits every series backend implements, and the point,
//!   bucket and resolution types they speak.
//! - [`metrics`]: the names of the metrics the library records.
//!
//! With the `testing` feature (and in its own tests) it also offers [`model`], a plain in-memory
//! backend that defines the expected behaviour, and [`conformance`], the assertions every
//! backend must pass. On-disk formats are documented next to their code (`wal/FORMAT.md`,
//! `engine/FORMAT.md`).

pub mod engine;
pub(crate) mod hash;
pub mod metrics;
pub mod series;
pub mod wal;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
#[cfg(any(test, feature = "testing"))]
pub mod model;
