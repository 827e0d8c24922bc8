//! What the generator hands the format encoders: the [`Encoder`] each format implements, and the
//! [`ReadingRef`] it gets for every reading.

use std::io;

/// What a format encoder does with the generator's readings.
pub(super) trait Encoder {
    /// One reading of device `device` (an index into the plan).
    fn reading(&mut self, device: usize, reading: &ReadingRef<'_>) -> io::Result<()>;
    /// Device `device` just went down: it takes no readings until its next boot.
    fn device_down(&mut self, device: usize) -> io::Result<()>;
    /// Every device has been handled at the current timestamp.
    fn end_of_step(&mut self) -> io::Result<()>;
    /// The span is over: writes what is left and flushes. Returns the records written.
    fn finish(&mut self) -> io::Result<u64>;
}

/// A reading as the generator hands it to an encoder.
#[derive(Debug)]
pub(super) struct ReadingRef<'a> {
    /// The device's current boot.
    pub(super) boot_id: u64,
    /// Sequence number within the boot, from 1.
    pub(super) seq: u64,
    /// Unix milliseconds.
    pub(super) time_ms: i64,
    /// One value per metric of the device's kind.
    pub(super) values: &'a [f64],
}
