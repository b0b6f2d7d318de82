//! Reading fixture files (errors with `file:line:col`) and reporting each
//! case the way `cargo test` does.

use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::diff::{Mismatch, compare};
use super::fixture::Fixtures;
use crate::config::{Diagnostic, Diagnostics, Position, Problem};

/// Reads a fixture file: JSON when its name ends in `.json`, else TOML.
pub fn parse_fixtures(path: &Path, text: &str) -> Result<Fixtures, Diagnostics> {
    let problem = |position, message: String| {
        Diagnostics(vec![Diagnostic {
            file: path.to_owned(),
            position,
            problem: Problem::Schema(message),
        }])
    };
    let fixtures: Fixtures = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| {
            let position = (e.line() > 0).then_some(Position {
                line: e.line(),
                column: e.column().max(1),
            });
            problem(position, strip_position(&e.to_string()))
        })?
    } else {
        toml::from_str(text).map_err(|e| {
            let position = e.span().map(|span| position_of(text, span.start));
            problem(position, e.message().to_owned())
        })?
    };
    if fixtures.cases.is_empty() {
        return Err(problem(
            None,
            "no cases: add at least one `[[cases]]`".into(),
        ));
    }
    Ok(fixtures)
}

/// serde_json ends its messages with " at line L column C".
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn position_of(text: &str, offset: usize) -> Position {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

/// How one case went.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The case's name.
    pub name: String,
    /// The fields that differ (none: it passed).
    pub mismatches: Vec<Mismatch>,
    /// The whole outcome, shown when it failed.
    pub actual: Value,
}

/// Compares a case's expectation with its outcome.
pub fn verdict(name: &str, expected: &Value, actual: Value) -> Verdict {
    Verdict {
        name: name.to_owned(),
        mismatches: compare(expected, &actual),
        actual,
    }
}

impl Verdict {
    /// Whether every expected field matched.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// `test NAME ... ok`, or `... FAIL` followed by one line per differing
/// field and the whole outcome.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.passed() {
            return write!(f, "test {} ... ok", self.name);
        }
        write!(f, "test {} ... FAIL", self.name)?;
        for mismatch in &self.mismatches {
            write!(f, "\n    {mismatch}")?;
        }
        write!(f, "\n    actual: {}", self.actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_errors_have_the_line_and_column() {
        let text = "[[cases]]\nname = \"a\"\nrecord = { key = 1 }\n";
        let error = parse_fixtures(Path::new("f.toml"), text).unwrap_err();
        assert_eq!(error.0[0].position.map(|p| p.line), Some(3), "{error}");
        let text = "[[cases]]\nname = \"a\"\nrecord = { value = \"x\", value_base64 = \"eA==\" }\n";
        let error = parse_fixtures(Path::new("f.toml"), text).unwrap_err();
        assert!(error.to_string().contains("give one of `value`"), "{error}");
        assert_eq!(error.0[0].position.map(|p| p.line), Some(3), "{error}");
        let text = "[[cases]]\nname = \"a\"\nexpect = { status = 401 }\nhandshake = { path = \"/\", headers = { \"a b\" = \"x\" } }\n";
        let error = parse_fixtures(Path::new("f.toml"), text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "f.toml:4:13: header name \"a b\" is not valid HTTP"
        );
    }

    #[test]
    fn json_errors_have_the_line_and_column() {
        let text = "{\"cases\": [\n  {\"name\": \"a\", \"recrd\": {}}\n]}";
        let error = parse_fixtures(Path::new("f.json"), text).unwrap_err();
        assert_eq!(error.0[0].position.map(|p| p.line), Some(2), "{error}");
        assert!(error.to_string().starts_with("f.json:2:"), "{error}");
    }

    #[test]
    fn a_failed_case_shows_each_field_and_the_outcome() {
        let v = verdict(
            "wrong channel",
            &serde_json::json!({"channels": ["b"]}),
            serde_json::json!({"channels": ["a"]}),
        );
        assert_eq!(
            v.to_string(),
            "test wrong channel ... FAIL\n    channels[0]: expected \"b\", got \"a\"\n    actual: {\"channels\":[\"a\"]}"
        );
        let v = verdict("fine", &serde_json::json!({}), serde_json::json!({"x": 1}));
        assert_eq!(v.to_string(), "test fine ... ok");
    }
}
