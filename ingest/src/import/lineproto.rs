//! InfluxDB line protocol: a zero-copy parser of one line, and a writer.
//!
//! ```text
//! measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//! ```
//!
//! Escaping follows the InfluxDB v2 reference:
//!
//! - measurement: `\,` and `\ ` stand for a comma and a space;
//! - tag keys, tag values and field keys: `\,`, `\=` and `\ `;
//! - string field values are double-quoted, with `\"` and `\\` inside;
//! - everywhere, `\\` is one backslash, and a backslash before any other character is literal
//!   (`a\b` is `a\b`).
//!
//! Field values are floats (`1`, `-1.5`, `1e-3`, `.5`), signed integers (`1i`), unsigned integers
//! (`1u`), booleans (`t`, `T`, `true`, `True`, `TRUE`, `f`, `F`, `false`, `False`, `FALSE`) or
//! strings. The timestamp is an optional signed integer whose unit the caller knows. Leading and
//! trailing whitespace and a trailing `\r` are ignored; blank lines and lines starting with `#`
//! are skipped.
//!
//! Parsing borrows every name and string from the line: only a token that contains a backslash is
//! unescaped into an owned string, so lines without escapes allocate nothing (with
//! [`parse_into`], which reuses the tag and field vectors). One pass over the bytes with a
//! character-class table finds every delimiter.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// One parsed line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line<'a> {
    /// The measurement, unescaped.
    pub measurement: Cow<'a, str>,
    /// The tags in line order, unescaped.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The fields in line order (at least one), keys unescaped.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// The timestamp, if the line has one, in the writer's precision.
    pub timestamp: Option<i64>,
}

impl Line<'_> {
    /// The value of the first tag named `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }
}

/// A field value.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// A float, e.g. `1.5`, `-3`, `1e10`. May be infinite when the literal overflows `f64`.
    Float(f64),
    /// A signed integer, e.g. `42i`.
    Integer(i64),
    /// An unsigned integer, e.g. `42u`.
    UInteger(u64),
    /// A boolean, e.g. `true` or `F`.
    Boolean(bool),
    /// A string, unescaped.
    String(Cow<'a, str>),
}

/// Why a line is not valid line protocol, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based byte column in the line where the problem was found.
    pub column: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.kind)
    }
}

impl std::error::Error for ParseError {}

/// What is wrong with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The line starts with a comma or a space after its indentation.
    MissingMeasurement,
    /// A tag has no key (`m,=v` or `m,,`).
    MissingTagKey,
    /// A tag key is not followed by `=`.
    MissingTagEquals,
    /// A tag has an empty value.
    EmptyTagValue,
    /// A tag value contains an unescaped `=`.
    UnescapedEquals,
    /// The line has no field set.
    MissingFields,
    /// A field has no key.
    MissingFieldKey,
    /// A field key is not followed by `=`.
    MissingFieldEquals,
    /// A field has no value.
    MissingFieldValue,
    /// A string field has no closing quote.
    UnterminatedString,
    /// A string field's closing quote is followed by something other than `,`, a space or the end.
    TextAfterString,
    /// A value ending in `i` is not an `i64`.
    InvalidInteger,
    /// A value ending in `u` is not a `u64`.
    InvalidUnsigned,
    /// A value is neither a number, a boolean nor a quoted string.
    InvalidValue,
    /// The timestamp is not an `i64`.
    InvalidTimestamp,
    /// Something follows the timestamp.
    TextAfterTimestamp,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseErrorKind::MissingMeasurement => "missing measurement",
            ParseErrorKind::MissingTagKey => "missing tag key",
            ParseErrorKind::MissingTagEquals => "tag key without '=value'",
            ParseErrorKind::EmptyTagValue => "empty tag value",
            ParseErrorKind::UnescapedEquals => "unescaped '=' in tag value",
            ParseErrorKind::MissingFields => "missing field set",
            ParseErrorKind::MissingFieldKey => "missing field key",
            ParseErrorKind::MissingFieldEquals => "field key without '=value'",
            ParseErrorKind::MissingFieldValue => "missing field value",
            ParseErrorKind::UnterminatedString => "string field without closing quote",
            ParseErrorKind::TextAfterString => "unexpected text after closing quote",
            ParseErrorKind::InvalidInteger => "invalid integer (expected e.g. -42i)",
            ParseErrorKind::InvalidUnsigned => "invalid unsigned integer (expected e.g. 42u)",
            ParseErrorKind::InvalidValue => {
                "invalid field value (expected a number, a boolean or a quoted string)"
            }
            ParseErrorKind::InvalidTimestamp => "invalid timestamp (expected an integer)",
            ParseErrorKind::TextAfterTimestamp => "unexpected text after timestamp",
        })
    }
}

/// Parses one line (without its `\n`). `Ok(None)` for a blank line or a comment.
pub fn parse_line(text: &str) -> Result<Option<Line<'_>>, ParseError> {
    let mut line = Line::default();
    Ok(parse_into(text, &mut line)?.then_some(line))
}

/// Parses one line (without its `\n`) into `line`, reusing its vectors. Returns `Ok(false)`, with
/// `line` cleared, for a blank line or a comment.
pub fn parse_into<'a>(text: &'a str, line: &mut Line<'a>) -> Result<bool, ParseError> {
    line.tags.clear();
    line.fields.clear();
    line.timestamp = None;
    line.measurement = Cow::Borrowed("");
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b' ' | b'\t' | b'\r') {
        end -= 1;
    }
    let mut pos = 0;
    while pos < end && matches!(bytes[pos], b' ' | b'\t') {
        pos += 1;
    }
    if pos == end || bytes[pos] == b'#' {
        return Ok(false);
    }
    let p = Parser { text, bytes, end };

    let (stop, escaped) = p.scan(pos, COMMA | SPACE);
    if stop == pos {
        return Err(p.error(pos, ParseErrorKind::MissingMeasurement));
    }
    line.measurement = p.name(pos, stop, escaped, MEASUREMENT_ESCAPES);
    pos = stop;

    while pos < end && bytes[pos] == b',' {
        pos += 1;
        let (key_end, escaped) = p.scan(pos, COMMA | SPACE | EQUALS);
        if key_end == pos {
            return Err(p.error(pos, ParseErrorKind::MissingTagKey));
        }
        if key_end == end || bytes[key_end] != b'=' {
            return Err(p.error(key_end, ParseErrorKind::MissingTagEquals));
        }
        let key = p.name(pos, key_end, escaped, KEY_ESCAPES);
        pos = key_end + 1;
        let (value_end, escaped) = p.scan(pos, COMMA | SPACE | EQUALS);
        if value_end == pos {
            return Err(p.error(pos, ParseErrorKind::EmptyTagValue));
        }
        if value_end < end && bytes[value_end] == b'=' {
            return Err(p.error(value_end, ParseErrorKind::UnescapedEquals));
        }
        line.tags
            .push((key, p.name(pos, value_end, escaped, KEY_ESCAPES)));
        pos = value_end;
    }

    pos = p.skip_spaces(pos);
    if pos == end {
        return Err(p.error(pos, ParseErrorKind::MissingFields));
    }
    loop {
        let (key_end, escaped) = p.scan(pos, COMMA | SPACE | EQUALS);
        if key_end == pos {
            return Err(p.error(pos, ParseErrorKind::MissingFieldKey));
        }
        if key_end == end || bytes[key_end] != b'=' {
            return Err(p.error(key_end, ParseErrorKind::MissingFieldEquals));
        }
        let key = p.name(pos, key_end, escaped, KEY_ESCAPES);
        pos = key_end + 1;
        let (value, value_end) = p.field_value(pos)?;
        line.fields.push((key, value));
        pos = value_end;
        if pos < end && bytes[pos] == b',' {
            pos += 1;
        } else {
            break;
        }
    }

    pos = p.skip_spaces(pos);
    if pos < end {
        let (stop, _) = p.scan(pos, SPACE);
        if stop != end {
            return Err(p.error(p.skip_spaces(stop), ParseErrorKind::TextAfterTimestamp));
        }
        line.timestamp = Some(
            parse_integer::<i64>(&text[pos..stop])
                .ok_or(p.error(pos, ParseErrorKind::InvalidTimestamp))?,
        );
    }
    Ok(true)
}

/// Character classes for the delimiter scan.
const COMMA: u8 = 1;
const SPACE: u8 = 2;
const EQUALS: u8 = 4;
const BACKSLASH: u8 = 8;

/// The class of every byte; zero for bytes that never end a token.
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b',' as usize] = COMMA;
    table[b' ' as usize] = SPACE;
    table[b'=' as usize] = EQUALS;
    table[b'\\' as usize] = BACKSLASH;
    table
};

/// Characters a backslash escapes in a measurement, and in tag keys, tag values and field keys.
const MEASUREMENT_ESCAPES: &[u8] = b", \\";
const KEY_ESCAPES: &[u8] = b",= \\";

/// The line being parsed: its text and the end of its non-blank part.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    end: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, pos: usize, kind: ParseErrorKind) -> ParseError {
        ParseError {
            column: pos + 1,
            kind,
        }
    }

    /// The first position from `pos` holding an unescaped byte of class `stop` (or the end), and
    /// whether a backslash was seen on the way. A backslash always takes the next byte with it.
    #[inline]
    fn scan(&self, mut pos: usize, stop: u8) -> (usize, bool) {
        let mut escaped = false;
        while pos < self.end {
            let class = CLASS[usize::from(self.bytes[pos])];
            if class & stop != 0 {
                break;
            }
            if class & BACKSLASH != 0 {
                escaped = true;
                pos += 1;
            }
            pos += 1;
        }
        (pos.min(self.end), escaped)
    }

    fn skip_spaces(&self, mut pos: usize) -> usize {
        while pos < self.end && self.bytes[pos] == b' ' {
            pos += 1;
        }
        pos
    }

    /// The name in `start..stop`, unescaped only if it contains a backslash.
    #[inline]
    fn name(&self, start: usize, stop: usize, escaped: bool, escapes: &[u8]) -> Cow<'a, str> {
        let raw = &self.text[start..stop];
        if escaped {
            Cow::Owned(unescape(raw, escapes))
        } else {
            Cow::Borrowed(raw)
        }
    }

    /// Parses the field value starting at `pos`; returns it and the position after it.
    fn field_value(&self, pos: usize) -> Result<(FieldValue<'a>, usize), ParseError> {
        if pos == self.end || matches!(self.bytes[pos], b',' | b' ') {
            return Err(self.error(pos, ParseErrorKind::MissingFieldValue));
        }
        if self.bytes[pos] == b'"' {
            return self.string_value(pos);
        }
        let mut stop = pos;
        while stop < self.end && !matches!(self.bytes[stop], b',' | b' ') {
            stop += 1;
        }
        let value = parse_value(&self.text[pos..stop]).map_err(|kind| self.error(pos, kind))?;
        Ok((value, stop))
    }

    /// Parses the quoted string starting at `pos` (its opening quote).
    fn string_value(&self, pos: usize) -> Result<(FieldValue<'a>, usize), ParseError> {
        let start = pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let Some(offset) = memchr::memchr2(b'"', b'\\', &self.bytes[i..self.end]) else {
                return Err(self.error(pos, ParseErrorKind::UnterminatedString));
            };
            i += offset;
            if self.bytes[i] == b'"' {
                break;
            }
            escaped = true;
            i += 2;
            if i >= self.end {
                return Err(self.error(pos, ParseErrorKind::UnterminatedString));
            }
        }
        let after = i + 1;
        if after < self.end && !matches!(self.bytes[after], b',' | b' ') {
            return Err(self.error(after, ParseErrorKind::TextAfterString));
        }
        let raw = &self.text[start..i];
        let value = if escaped {
            Cow::Owned(unescape(raw, b"\"\\"))
        } else {
            Cow::Borrowed(raw)
        };
        Ok((FieldValue::String(value), after))
    }
}

/// Parses an unquoted field value: a number (with an `i` or `u` suffix for integers) if it
/// starts like one, else a boolean.
fn parse_value(token: &str) -> Result<FieldValue<'static>, ParseErrorKind> {
    let bytes = token.as_bytes();
    if !matches!(bytes.first(), Some(b'0'..=b'9' | b'-' | b'.')) {
        return match token {
            "t" | "T" | "true" | "True" | "TRUE" => Ok(FieldValue::Boolean(true)),
            "f" | "F" | "false" | "False" | "FALSE" => Ok(FieldValue::Boolean(false)),
            _ => Err(ParseErrorKind::InvalidValue),
        };
    }
    // `None` when the last character is not ASCII, so never a cut inside a character.
    match token.split_at_checked(token.len() - 1) {
        Some((digits, "i")) => parse_integer(digits)
            .map(FieldValue::Integer)
            .ok_or(ParseErrorKind::InvalidInteger),
        Some((digits, "u")) => match digits.as_bytes().first() {
            Some(b'0'..=b'9') => digits.parse().ok().map(FieldValue::UInteger),
            _ => None,
        }
        .ok_or(ParseErrorKind::InvalidUnsigned),
        _ => parse_float(token)
            .map(FieldValue::Float)
            .ok_or(ParseErrorKind::InvalidValue),
    }
}

/// A float literal: an optional `-`, then a digit or a `.` (so `inf`, `NaN` and `+1` are not
/// floats), then whatever `f64::from_str` accepts.
fn parse_float(token: &str) -> Option<f64> {
    let unsigned = token.strip_prefix('-').unwrap_or(token);
    match unsigned.as_bytes().first() {
        Some(b'0'..=b'9' | b'.') => token.parse().ok(),
        _ => None,
    }
}

/// A signed integer literal: an optional `-`, then digits only.
fn parse_integer<T: std::str::FromStr>(token: &str) -> Option<T> {
    let unsigned = token.strip_prefix('-').unwrap_or(token);
    match unsigned.as_bytes().first() {
        Some(b'0'..=b'9') => token.parse().ok(),
        _ => None,
    }
}

/// Removes the backslash before each character of `escapes`; other backslashes stay.
fn unescape(raw: &str, escapes: &[u8]) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = memchr::memchr(b'\\', &bytes[i..]) {
        let at = i + offset;
        match bytes.get(at + 1) {
            Some(next) if escapes.contains(next) => {
                out.push_str(&raw[copied..at]);
                copied = at + 1;
                i = at + 2;
            }
            _ => i = at + 1,
        }
        if i >= bytes.len() {
            break;
        }
    }
    out.push_str(&raw[copied..]);
    out
}

/// Appends one line (with its `\n`) to `out`: `measurement`, `tags` in the given order (InfluxDB
/// recommends sorting them by key), float `fields` written with `{}` (the shortest text that
/// parses back to the same bits) and a timestamp.
///
/// Names are escaped as [`parse_line`] expects (backslashes too, as `\\`). Line protocol cannot
/// carry a newline in a name, an empty name or tag value, a measurement starting with `#` or a
/// tab, a line without fields, or non-finite floats: the caller must not pass them.
pub fn write_line(
    out: &mut String,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, f64)],
    ts_ns: i64,
) {
    escape_into(out, measurement, MEASUREMENT_ESCAPES);
    for (key, value) in tags {
        out.push(',');
        escape_into(out, key, KEY_ESCAPES);
        out.push('=');
        escape_into(out, value, KEY_ESCAPES);
    }
    for (i, (key, value)) in fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape_into(out, key, KEY_ESCAPES);
        // Writing to a String cannot fail.
        let _ = write!(out, "={value}");
    }
    let _ = writeln!(out, " {ts_ns}");
}

/// Appends `value` as a quoted line protocol string field value (`"` and `\` escaped).
pub fn write_string_value(out: &mut String, value: &str) {
    out.push('"');
    escape_into(out, value, b"\"\\");
    out.push('"');
}

/// Appends `name` with a backslash before each character of `escapes`.
fn escape_into(out: &mut String, name: &str, escapes: &[u8]) {
    let mut copied = 0;
    for (i, byte) in name.bytes().enumerate() {
        if escapes.contains(&byte) {
            out.push_str(&name[copied..i]);
            out.push('\\');
            copied = i;
        }
    }
    out.push_str(&name[copied..]);
}
