//! The in-memory part of the engine: per-series sorted columns of points not yet flushed to
//! segments, indexed by series id.

use crate::series::{Point, Points};

/// One series' unflushed points, sorted by time, one point per timestamp (the last write wins).
#[derive(Debug, Default, Clone)]
pub struct Column {
    /// Timestamps, ascending, unique.
    pub times: Vec<i64>,
    /// Values.
    pub values: Vec<f64>,
}

impl Column {
    /// Adds a point; returns whether it was new (not a replacement).
    pub fn write(&mut self, p: Point) -> bool {
        match self.times.last() {
            Some(&last) if p.time_ms <= last => match self.times.binary_search(&p.time_ms) {
                Ok(i) => {
                    self.values[i] = p.value;
                    false
                }
                Err(i) => {
                    self.times.insert(i, p.time_ms);
                    self.values.insert(i, p.value);
                    true
                }
            },
            _ => {
                self.times.push(p.time_ms);
                self.values.push(p.value);
                true
            }
        }
    }

    /// The points with `start <= time < end`.
    pub fn range(&self, start: i64, end: i64) -> Points {
        let from = self.times.partition_point(|&t| t < start);
        let to = self.times.partition_point(|&t| t < end).max(from);
        Points {
            times_ms: self.times[from..to].to_vec(),
            values: self.values[from..to].to_vec(),
        }
    }

    /// Whether any point lies in `start <= time < end`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        let from = self.times.partition_point(|&t| t < start);
        from < self.times.len() && self.times[from] < end
    }
}

/// Unflushed points of every series.
#[derive(Debug, Default)]
pub struct MemHead {
    columns: Vec<Column>,
    points: u64,
    /// Emptied columns of a head that was written out, by series id. A full column moves into
    /// its spare, whose memory is in place already, instead of growing into fresh memory (new
    /// pages from the system, which zeroes them). Spares are used up as the head fills, so
    /// holding them costs no more than the written-out head did.
    spares: Vec<Column>,
}

impl MemHead {
    /// Adds a point to series `id`.
    pub fn write(&mut self, id: u32, p: Point) {
        let i = id as usize;
        if i >= self.columns.len() {
            self.columns.resize_with(i + 1, Column::default);
        }
        let column = &mut self.columns[i];
        if column.times.len() == column.times.capacity()
            && let Some(spare) = self.spares.get_mut(i)
            && spare.times.capacity() > column.times.len()
        {
            spare.times.extend_from_slice(&column.times);
            spare.values.extend_from_slice(&column.values);
            *column = std::mem::take(spare);
        }
        if column.write(p) {
            self.points += 1;
        }
    }

    /// Gives this head the memory of `written`, a head whose points are durable elsewhere: its
    /// columns become spares (see [`MemHead::write`]).
    pub fn adopt_spares(&mut self, written: MemHead) {
        let mut spares = written.columns;
        for column in &mut spares {
            column.times.clear();
            column.values.clear();
        }
        self.spares = spares;
    }

    /// The column of series `id`, if it has points.
    pub fn column(&self, id: u32) -> Option<&Column> {
        self.columns
            .get(id as usize)
            .filter(|c| !c.times.is_empty())
    }

    /// Every non-empty column with its series id.
    pub fn columns(&self) -> impl Iterator<Item = (u32, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.times.is_empty())
            .map(|(i, c)| (i as u32, c))
    }

    /// Number of points held.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Approximate memory held, in bytes.
    pub fn bytes(&self) -> u64 {
        self.points * 16 + self.columns.len() as u64 * 48
    }
}
