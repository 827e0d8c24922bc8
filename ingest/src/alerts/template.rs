//! Annotation templates: text with `{{ variable }}` placeholders, parsed once when the rules are
//! loaded (an unknown variable is an error then, not an empty string later) and rendered when an
//! alert's notification is made.
//!
//! Variables: `device`, `kind`, `site`, `district`, `target` (the device, site or district the
//! alert is about), `rule`, `severity`, `metric`, `value` (the value that fired it, where there
//! is one), `threshold`, `state` (the device's state), and `labels.NAME` for any label of the
//! alert. Prometheus' spellings `$value` and `$labels.NAME` are accepted too.

use std::fmt::Write as _;

/// A variable a template may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// A named value of the alert (`device`, `site`, `value`, ...).
    Named(&'static str),
    /// A label of the alert.
    Label(String),
}

/// The named variables.
pub const NAMES: [&str; 11] = [
    "device",
    "kind",
    "site",
    "district",
    "target",
    "rule",
    "severity",
    "metric",
    "value",
    "threshold",
    "state",
];

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed template.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What a template could not be parsed for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without `}}`.
    #[error("unclosed {{{{ at byte {0}")]
    Unclosed(usize),
    /// A name that is no variable.
    #[error("unknown variable {{{{ {0} }}}} (known: {known}, labels.NAME)", known = NAMES.join(", "))]
    Unknown(String),
}

impl Template {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or(TemplateError::Unclosed(offset + open))?;
            parts.push(Part::Var(variable(after[..close].trim())?));
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it renders to nothing.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Renders it, taking each variable's value from `lookup` (a variable without a value
    /// renders as nothing).
    pub fn render(&self, lookup: impl Fn(&Var) -> Option<String>) -> String {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    if let Some(value) = lookup(v) {
                        let _ = write!(out, "{value}");
                    }
                }
            }
        }
        out
    }
}

fn variable(text: &str) -> Result<Var, TemplateError> {
    let name = text.trim_start_matches('$');
    if let Some(label) = name.strip_prefix("labels.") {
        if !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Ok(Var::Label(label.to_string()));
        }
        return Err(TemplateError::Unknown(text.to_string()));
    }
    NAMES
        .iter()
        .find(|n| **n == name)
        .map(|n| Var::Named(n))
        .ok_or_else(|| TemplateError::Unknown(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_render_and_unknown_ones_are_errors() {
        let t = Template::parse(
            "{{ device }} at {{site}}: {{ $value }} > {{ threshold }} ({{ $labels.team }})",
        )
        .unwrap();
        let out = t.render(|v| match v {
            Var::Named("device") => Some("cab-1".into()),
            Var::Named("site") => Some("docks".into()),
            Var::Named("value") => Some("61.5".into()),
            Var::Label(l) if l == "team" => Some("fibre".into()),
            _ => None,
        });
        assert_eq!(out, "cab-1 at docks: 61.5 >  (fibre)");
        assert_eq!(
            Template::parse("{{ devce }}"),
            Err(TemplateError::Unknown("devce".into()))
        );
        assert_eq!(Template::parse("a {{ b"), Err(TemplateError::Unclosed(2)));
        assert!(Template::parse("").unwrap().is_empty());
    }
}
