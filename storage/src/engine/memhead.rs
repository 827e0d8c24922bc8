//! The in-memory part of the engine: per-series sorted columns of points not yet flushed to
//! segments, indexed by series id.

use thin_vec::ThinVec;

use crate::series::{Point, Points};

/// One series' unflushed points, sorted by time, one point per timestamp (the last write wins).
///
/// The points live in one allocation that also holds its length and capacity, so the column
/// itself is one pointer, and a series without points (most of them right after a checkpoint)
/// costs those 8 bytes and nothing on the heap.
#[derive(Debug, Default, Clone)]
pub struct Column {
    points: ThinVec<Point>,
}

impl Column {
    /// Adds a point; returns whether it was new (not a replacement).
    pub fn write(&mut self, p: Point) -> bool {
        match self.points.last() {
            Some(last) if p.time_ms <= last.time_ms => {
                match self.points.binary_search_by_key(&p.time_ms, |q| q.time_ms) {
                    Ok(i) => {
                        self.points[i].value = p.value;
                        false
                    }
                    Err(i) => {
                        self.points.insert(i, p);
                        true
                    }
                }
            }
            _ => {
                self.points.push(p);
                true
            }
        }
    }

    /// The points, sorted by time.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the column holds no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Points the column holds without growing.
    pub fn capacity(&self) -> usize {
        self.points.capacity()
    }

    /// The points with `start <= time < end`.
    pub fn range(&self, start: i64, end: i64) -> Points {
        let from = self.points.partition_point(|q| q.time_ms < start);
        let to = self.points.partition_point(|q| q.time_ms < end).max(from);
        let points = &self.points[from..to];
        Points {
            times_ms: points.iter().map(|q| q.time_ms).collect(),
            values: points.iter().map(|q| q.value).collect(),
        }
    }

    /// Whether any point lies in `start <= time < end`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        let from = self.points.partition_point(|q| q.time_ms < start);
        self.points.get(from).is_some_and(|q| q.time_ms < end)
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
        if column.len() == column.capacity()
            && let Some(spare) = self.spares.get_mut(i)
            && spare.capacity() > column.len()
        {
            spare.points.extend(column.points.iter().copied());
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
            column.points.clear();
        }
        self.spares = spares;
    }

    /// The column of series `id`, if it has points.
    pub fn column(&self, id: u32) -> Option<&Column> {
        self.columns.get(id as usize).filter(|c| !c.is_empty())
    }

    /// Every non-empty column with its series id.
    pub fn columns(&self) -> impl Iterator<Item = (u32, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(i, c)| (i as u32, c))
    }

    /// Number of points held.
    pub fn points(&self) -> u64 {
        self.points
    }

    /// Approximate memory held, in bytes.
    pub fn bytes(&self) -> u64 {
        self.points * 16 + self.columns.len() as u64 * 8
    }
}
