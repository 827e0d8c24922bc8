//! Maintenance windows: planned time that counts neither for nor against availability.
//!
//! A device's [`Maintenance`] is the union of its own windows and its site's, normalised once
//! (sorted, empty windows dropped, overlapping and touching windows merged) so that every query
//! is a binary search.

/// A half-open time interval `[start_ms, end_ms)`, in ms since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    /// First instant inside.
    pub start_ms: i64,
    /// First instant after.
    pub end_ms: i64,
}

impl Span {
    /// `[start_ms, end_ms)`.
    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        Span { start_ms, end_ms }
    }

    /// Its length in ms (0 when `end_ms <= start_ms`).
    pub fn len_ms(&self) -> i64 {
        self.end_ms.saturating_sub(self.start_ms).max(0)
    }
}

/// A set of maintenance windows, sorted and disjoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    spans: Vec<Span>,
}

impl Maintenance {
    /// The union of `windows`, in any order, possibly overlapping.
    pub fn new(windows: impl IntoIterator<Item = Span>) -> Self {
        let mut sorted: Vec<Span> = windows.into_iter().filter(|s| s.len_ms() > 0).collect();
        sorted.sort_unstable();
        let mut spans: Vec<Span> = Vec::with_capacity(sorted.len());
        for span in sorted {
            match spans.last_mut() {
                Some(last) if span.start_ms <= last.end_ms => {
                    last.end_ms = last.end_ms.max(span.end_ms);
                }
                _ => spans.push(span),
            }
        }
        Maintenance { spans }
    }

    /// The normalised windows: sorted, disjoint, not touching.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// How much of `span` lies inside maintenance, in ms.
    pub fn overlap_ms(&self, span: Span) -> i64 {
        let first = self.spans.partition_point(|m| m.end_ms <= span.start_ms);
        self.spans[first..]
            .iter()
            .take_while(|m| m.start_ms < span.end_ms)
            .map(|m| Span::new(m.start_ms.max(span.start_ms), m.end_ms.min(span.end_ms)).len_ms())
            .sum()
    }

    /// The part of `span` from its first to its last instant outside maintenance, or `None` when
    /// maintenance covers all of it.
    pub fn trim(&self, span: Span) -> Option<Span> {
        let covering = |t: i64| {
            let i = self.spans.partition_point(|m| m.end_ms <= t);
            self.spans.get(i).filter(|m| m.start_ms <= t)
        };
        let start = covering(span.start_ms).map_or(span.start_ms, |m| m.end_ms);
        // The last instant of `span` is `end_ms - 1`.
        let end = covering(span.end_ms.saturating_sub(1)).map_or(span.end_ms, |m| m.start_ms);
        (start < end).then_some(Span::new(start, end))
    }
}
