//! Silences: label matchers with a start and an end. An alert whose labels match every matcher
//! of a silence in force is silenced: it is still evaluated and listed, but no notification goes
//! out for it until no silence covers it any more (then, if it still fires, it is notified).
//! Matchers work as Alertmanager's: `=`, `!=`, and `=~`, `!~` with a regular expression that
//! must match the whole value.

use regex::Regex;

use super::labels::Labels;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// The value equals.
    Equal,
    /// The value differs (a missing label is the empty value).
    NotEqual,
    /// The regular expression matches the whole value.
    Regex,
    /// The regular expression does not match the whole value.
    NotRegex,
}

impl MatchOp {
    /// Every operator, in code order.
    pub const ALL: [MatchOp; 4] = [
        MatchOp::Equal,
        MatchOp::NotEqual,
        MatchOp::Regex,
        MatchOp::NotRegex,
    ];

    /// Stable one-byte code in persisted records (never 0).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The operator of a [`code`](Self::code).
    pub fn from_code(code: u8) -> Option<MatchOp> {
        MatchOp::ALL.get(usize::from(code.checked_sub(1)?)).copied()
    }

    /// As written: `=`, `!=`, `=~`, `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The label.
    pub name: String,
    /// How it compares.
    pub op: MatchOp,
    /// The value or the regular expression.
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

/// A matcher that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    /// An empty label name.
    #[error("a matcher needs a label name")]
    NoName,
    /// A regular expression that does not compile.
    #[error("matcher {name}: invalid regular expression: {message}")]
    Regex {
        /// The label.
        name: String,
        /// Why.
        message: String,
    },
}

impl Matcher {
    /// A matcher of label `name` by `op` with `value`.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        if name.is_empty() {
            return Err(MatcherError::NoName);
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError::Regex {
                    name: name.to_string(),
                    message: e.to_string(),
                })?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether `labels` satisfy it.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// A silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// Its id (assigned when it is created).
    pub id: u64,
    /// Every matcher must match.
    pub matchers: Vec<Matcher>,
    /// When it starts, ms since the Unix epoch.
    pub starts_ms: i64,
    /// When it ends (exclusive); expiring a silence sets this to the time it was expired.
    pub ends_ms: i64,
    /// Who created it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was created.
    pub created_ms: i64,
}

impl Silence {
    /// Whether it is in force at `at_ms`.
    pub fn active(&self, at_ms: i64) -> bool {
        self.starts_ms <= at_ms && at_ms < self.ends_ms
    }

    /// Whether it covers an alert with `labels` (at any time).
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matchers_compare_as_alertmanager_does() {
        let l = labels(&[("alertname", "cabinet-offline"), ("site", "docks")]);
        let m = |name, op, value| Matcher::new(name, op, value).unwrap().matches(&l);
        assert!(m("site", MatchOp::Equal, "docks"));
        assert!(!m("site", MatchOp::NotEqual, "docks"));
        assert!(m("alertname", MatchOp::Regex, "cabinet-.*"));
        assert!(!m("alertname", MatchOp::Regex, "cabinet"), "anchored");
        assert!(m("alertname", MatchOp::NotRegex, "cell-.*"));
        assert!(m("team", MatchOp::Equal, ""), "a missing label is empty");
        assert!(Matcher::new("x", MatchOp::Regex, "(").is_err());
        assert_eq!(
            Matcher::new("", MatchOp::Equal, "a"),
            Err(MatcherError::NoName)
        );
    }
}
