//! Declared names (listeners, tenants, pipelines): each valid and new, and
//! references to them resolved, with the known names in the error.

use std::collections::HashSet;

use serde_spanned::Spanned;

use super::diagnostics::{Position, Problem, Report};
use super::parse::Entry;

/// Declared names of one kind, and the names of entries too broken to check.
pub(super) struct Names {
    kind: &'static str,
    seen: Vec<(String, Position)>,
    broken: HashSet<String>,
}

impl Names {
    pub(super) fn new<T>(kind: &'static str, entries: &[Entry<'_, T>]) -> Self {
        let broken = entries
            .iter()
            .filter(|e| e.parsed.is_none())
            .filter_map(|e| e.raw_name().map(str::to_owned))
            .collect();
        Self {
            kind,
            seen: Vec::new(),
            broken,
        }
    }

    /// Checks a declared name: its characters and that it is new.
    pub(super) fn declare(&mut self, name: &Spanned<String>, report: &mut Report<'_>) -> bool {
        let (text, span) = (name.get_ref(), name.span());
        if !is_name(text) {
            report.error(
                span,
                Problem::BadName {
                    kind: self.kind,
                    name: text.clone(),
                },
            );
            return false;
        }
        if let Some((_, first)) = self.seen.iter().find(|(n, _)| n == text) {
            let first = *first;
            report.error(
                span,
                Problem::Duplicate {
                    kind: self.kind,
                    name: text.clone(),
                    first,
                },
            );
            return false;
        }
        self.seen.push((text.clone(), report.position(span.start)));
        true
    }

    /// Declares a name the file does not spell out (the implicit tenant).
    pub(super) fn implicit(&mut self, name: &str) {
        self.seen
            .push((name.to_owned(), Position { line: 1, column: 1 }));
    }

    /// How many names are declared.
    pub(super) fn count(&self) -> usize {
        self.seen.len()
    }

    /// The first declared name.
    pub(super) fn first(&self) -> Option<&str> {
        self.seen.first().map(|(n, _)| n.as_str())
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.seen.iter().any(|(n, _)| n == name)
    }

    /// Checks a reference; a reference to a broken entry is not reported again.
    pub(super) fn resolve(&self, name: &Spanned<String>, report: &mut Report<'_>) -> bool {
        if self.contains(name.get_ref()) {
            return true;
        }
        if !self.broken.contains(name.get_ref()) {
            let known = self.known();
            report.error(
                name.span(),
                Problem::UnknownReference {
                    kind: self.kind,
                    name: name.get_ref().clone(),
                    known,
                },
            );
        }
        false
    }

    pub(super) fn known(&self) -> String {
        if self.seen.is_empty() {
            return "none".into();
        }
        self.seen
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Letters, digits, `_`, `-`, `.`; starting with a letter or digit.
fn is_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
