//! CSV exports (RFC 4180, UTF-8, `\n` line ends): `#` comment lines saying who may use the data
//! (the organisation's licence) and what the values are, then a header row with the
//! [`COLUMNS`], then one row per point. Text fields are quoted when they hold a comma, a quote
//! or a line break; values are written in the shortest form that reads back to the same `f64`.

use std::io::{self, Write};

use super::Header;
use super::rows::{COLUMNS, SeriesInfo, rfc3339_ms};
use super::sink::ChunkSink;

/// Writes a CSV file into a [`ChunkSink`].
pub(crate) struct CsvEncoder {
    sink: ChunkSink,
    line: String,
}

/// One comment line's text: line breaks become spaces.
fn comment(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Appends a text field, quoted if it needs to be.
fn field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

impl CsvEncoder {
    /// Starts the file: its comment lines and header row.
    pub(crate) fn new(mut sink: ChunkSink, header: &Header) -> io::Result<Self> {
        let mut head = String::new();
        for (key, value) in header.describe() {
            head.push_str(&format!("# {key}: {}\n", comment(&value)));
        }
        head.push_str(&COLUMNS.join(","));
        head.push('\n');
        sink.write_all(head.as_bytes())?;
        Ok(CsvEncoder {
            sink,
            line: String::with_capacity(64 << 10),
        })
    }

    /// Appends the rows of one series: `times` and `values` side by side.
    pub(crate) fn write(
        &mut self,
        s: &SeriesInfo,
        times: &[i64],
        values: &[f64],
    ) -> io::Result<()> {
        // What every row of the series repeats, quoted once.
        let mut prefix = String::new();
        for text in [
            &*s.device_id,
            &*s.site,
            &*s.kind,
            s.district.as_deref().unwrap_or(""),
            &*s.metric,
            s.unit,
        ] {
            field(&mut prefix, text);
            prefix.push(',');
        }
        let mut ints = itoa::Buffer::new();
        let mut floats = ryu::Buffer::new();
        for (&t, &v) in times.iter().zip(values) {
            let line = &mut self.line;
            line.push_str(&prefix);
            line.push_str(ints.format(t));
            line.push(',');
            rfc3339_ms(t, line);
            line.push(',');
            line.push_str(if v.is_finite() {
                floats.format_finite(v)
            } else if v.is_nan() {
                "NaN"
            } else if v > 0.0 {
                "inf"
            } else {
                "-inf"
            });
            line.push('\n');
            if line.len() >= 60 << 10 {
                self.sink.write_all(line.as_bytes())?;
                line.clear();
            }
        }
        Ok(())
    }

    /// Ends the file and sends its last bytes.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.sink.write_all(self.line.as_bytes())?;
        self.sink.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_quoted_only_when_they_must_be() {
        let mut out = String::new();
        for text in ["north", "a,b", "say \"hi\"", "two\nlines"] {
            field(&mut out, text);
            out.push('|');
        }
        assert_eq!(out, "north|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|");
        assert_eq!(comment("CC BY 4.0\nCity"), "CC BY 4.0 City");
    }
}
