//! The compact forms of `QueryRange` answers: timestamps as runs of evenly spaced times
//! ([`v1::TimeRun`]) and values as scaled decimal integers ([`v1::DecimalValues`]), each asked
//! for on its own and used only where it is smaller than the plain column. A series sampled
//! every 10 s with two decimals sends a day's 8,640 timestamps as one run and its values in 1-2
//! bytes each (the mantissas go as differences from the one before).

use std::borrow::Cow;

use crate::v1::{self, DecimalValues, TimeRun};

/// Largest decimal scale of [`DecimalValues`].
pub const MAX_SCALE: u32 = 9;

/// `times` (ascending) as runs, or `None` when runs would not be smaller on the wire than one
/// 8-byte timestamp per point (a run costs about 16 bytes).
pub fn encode_times(times: &[i64]) -> Option<Vec<TimeRun>> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < times.len() {
        let start = times[i];
        let step = times.get(i + 1).and_then(|next| next.checked_sub(start));
        let mut count = 1usize;
        if let Some(step) = step {
            count = 2;
            while i + count < times.len()
                && count < u32::MAX as usize
                && times[i + count].checked_sub(times[i + count - 1]) == Some(step)
            {
                count += 1;
            }
        }
        runs.push(TimeRun {
            start_unix_ms: start,
            step_ms: if count == 1 { 0 } else { step.unwrap_or(0) },
            count: count as u32,
        });
        if runs.len() * 2 >= times.len() {
            return None;
        }
        i += count;
    }
    Some(runs)
}

/// The timestamps the runs stand for, in order.
pub fn decode_times(runs: &[TimeRun]) -> Vec<i64> {
    let total = runs.iter().map(|r| r.count as usize).sum();
    let mut times = Vec::with_capacity(total);
    for run in runs {
        times.extend(
            (0..i64::from(run.count))
                .map(|i| run.start_unix_ms.wrapping_add(run.step_ms.wrapping_mul(i))),
        );
    }
    times
}

fn pow10(scale: u32) -> f64 {
    // Exact: every power of ten up to 10^22 is a double, and so is each partial product.
    10f64.powi(scale as i32)
}

/// The mantissa of `v` at `10^scale = p` if `v` is exactly `mantissa / p` as [`decode_values`]
/// computes it. The rounding needs no care: a mantissa off by one fails the check.
fn mantissa(v: f64, p: f64) -> Option<i64> {
    let x = v * p;
    if x.is_nan() || x.abs() >= 9.0e15 {
        return None;
    }
    let k = (x + 0.5f64.copysign(x)) as i64;
    ((k as f64 / p).to_bits() == v.to_bits()).then_some(k)
}

/// Bytes of `k` as a protobuf `sint64` (zigzag varint).
fn sint64_len(k: i64) -> usize {
    let zigzag = ((k << 1) ^ (k >> 63)) as u64;
    (64 - zigzag.max(1).leading_zeros() as usize).div_ceil(7)
}

/// `values` as decimals at the smallest scale that holds every one of them exactly, or `None`
/// when some value is not such a decimal (`-0.0`, infinities, most results of arithmetic) or the
/// decimals would not be smaller on the wire than 8 bytes per value.
pub fn encode_values(values: &[f64]) -> Option<DecimalValues> {
    if values.is_empty() {
        return None;
    }
    let mut scale = 0;
    let mut deltas = Vec::with_capacity(values.len());
    // One pass at the current scale; a value that needs more decimals raises the scale and
    // starts the pass again (exact at a smaller scale does not prove exact at a larger one).
    'scale: loop {
        let p = pow10(scale);
        let mut bytes = 0usize;
        let mut previous = 0i64;
        deltas.clear();
        for &v in values {
            let Some(k) = mantissa(v, p) else {
                loop {
                    scale += 1;
                    if scale > MAX_SCALE {
                        return None;
                    }
                    if mantissa(v, pow10(scale)).is_some() {
                        continue 'scale;
                    }
                }
            };
            // Mantissas are below 9e15 in magnitude, so their difference fits.
            let delta = k - previous;
            previous = k;
            bytes += sint64_len(delta);
            deltas.push(delta);
        }
        return (bytes < values.len() * 8).then_some(DecimalValues {
            scale,
            mantissa_deltas: deltas,
        });
    }
}

/// The values the decimals stand for, bit for bit as they were encoded.
pub fn decode_values(decimals: &DecimalValues) -> Vec<f64> {
    let p = pow10(decimals.scale.min(MAX_SCALE));
    let mut k = 0i64;
    decimals
        .mantissa_deltas
        .iter()
        .map(|&delta| {
            k = k.wrapping_add(delta);
            k as f64 / p
        })
        .collect()
}

impl v1::QueryRangeResponse {
    /// The points' timestamps, whichever way the server sent them (`times_unix_ms` or
    /// `time_runs`).
    pub fn times(&self) -> Cow<'_, [i64]> {
        if self.time_runs.is_empty() {
            Cow::Borrowed(&self.times_unix_ms)
        } else {
            Cow::Owned(decode_times(&self.time_runs))
        }
    }

    /// The points' values, whichever way the server sent them (`values` or `decimal_values`).
    pub fn values(&self) -> Cow<'_, [f64]> {
        match &self.decimal_values {
            Some(decimals) if self.values.is_empty() => Cow::Owned(decode_values(decimals)),
            _ => Cow::Borrowed(&self.values),
        }
    }
}

#[cfg(test)]
mod tests;
