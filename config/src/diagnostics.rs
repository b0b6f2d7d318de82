//! Errors in a pipeline file, each with the line and column it is about.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::template::TemplateError;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// What is wrong, without where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    /// The file is not valid TOML.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A value does not fit the schema (unknown key, wrong type, missing key, bad value).
    #[error("{0}")]
    Schema(String),
    /// Two entries of the same kind have the same name.
    #[error("duplicate {kind} name `{name}` (first declared at {first})")]
    Duplicate {
        /// `pipeline`, `listener` or `tenant`.
        kind: &'static str,
        /// The name.
        name: String,
        /// Where the first one is.
        first: Position,
    },
    /// A reference to a tenant or listener that is not declared.
    #[error("unknown {kind} `{name}`; declared: {known}")]
    UnknownReference {
        /// `tenant` or `listener`.
        kind: &'static str,
        /// The name used.
        name: String,
        /// The declared names, comma separated (or "none").
        known: String,
    },
    /// A name that is empty or has characters other than letters, digits, `_`, `-` and `.`.
    #[error(
        "invalid {kind} name {name:?}: use letters, digits, `_`, `-` or `.`, starting with a letter or digit"
    )]
    BadName {
        /// What is named.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A pipeline names no listener while there are several (or none).
    #[error("{0}")]
    Listener(String),
    /// A route template that does not parse.
    #[error("invalid path template: {0}")]
    Template(#[from] TemplateError),
    /// A `{ env = "NAME" }` table whose variable is not set.
    #[error("environment variable `{0}` is not set")]
    EnvMissing(String),
    /// A `{ env = "NAME" }` table whose variable is not valid UTF-8.
    #[error("environment variable `{0}` is not valid UTF-8")]
    EnvNotUnicode(String),
    /// A value that breaks a rule of its own (a range, a format, a conflict).
    #[error("{0}")]
    Invalid(String),
    /// A plugin name that is neither a first-party plugin nor a path.
    #[error(
        "unknown plugin `{name}`: first-party plugins are {known}; a path must contain `/` or end in `.wasm`"
    )]
    UnknownPlugin {
        /// The name used.
        name: String,
        /// The first-party plugins, comma separated.
        known: String,
    },
    /// A `native:` plugin name that names no built-in plugin.
    #[error("unknown built-in plugin `{name}`: built-in plugins are {known}")]
    UnknownNative {
        /// The name used.
        name: String,
        /// The built-in plugins, comma separated.
        known: String,
    },
    /// A plugin file that cannot be read.
    #[error("cannot read plugin file `{path}`: {reason}")]
    PluginUnreadable {
        /// The resolved path.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A plugin that does not export the world its place in the pipeline needs.
    #[error(
        "plugin `{plugin}` cannot be used as `{slot}`: that needs {needs} (world `sluice:plugin/{world}`), and it {exports}"
    )]
    WrongRole {
        /// The plugin as written.
        plugin: String,
        /// The pipeline key: `auth`, `router`, `transforms` or `handler`.
        slot: String,
        /// The role it needs, with its article (`an authenticator`).
        needs: String,
        /// The world of that role.
        world: &'static str,
        /// What it is instead, in words (`is a router`).
        exports: String,
    },
    /// The plugin host rejected the plugin (compile, instantiate or `init`).
    #[error("plugin `{plugin}` {fault}")]
    Plugin {
        /// The plugin as written.
        plugin: String,
        /// What went wrong, as the plugin host says it.
        fault: String,
    },
}

/// One error: which file, where in it, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {problem}", file.display(), position.map(|p| format!(":{}:{}", p.line, p.column)).unwrap_or_default())]
pub struct Diagnostic {
    /// The pipeline file.
    pub file: PathBuf,
    /// Where in it (`None` when the file as a whole is the problem).
    pub position: Option<Position>,
    /// What is wrong.
    pub problem: Problem,
}

/// Every error found in a pipeline file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Collects diagnostics for one file, turning byte spans into positions.
pub(crate) struct Report<'a> {
    file: PathBuf,
    text: &'a str,
    line_starts: Vec<usize>,
    found: Vec<Diagnostic>,
    /// `{ env = ... }` references: their span, variable, and whether it
    /// was missing (reported already).
    env_sources: Vec<(Range<usize>, String, bool)>,
}

impl<'a> Report<'a> {
    pub fn new(file: &Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file: file.to_owned(),
            text,
            line_starts,
            found: Vec::new(),
            env_sources: Vec::new(),
        }
    }

    /// The position of a byte offset.
    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Position {
            line: line + 1,
            column: column + 1,
        }
    }

    /// Where the file's `{ env = ... }` references are (`(span, variable,
    /// missing)`): an error about a value that came from a variable names
    /// it, and one about a missing variable's stand-in is left out (the
    /// missing variable was reported).
    pub fn env_sources(&mut self, sources: impl IntoIterator<Item = (Range<usize>, String, bool)>) {
        self.env_sources = sources.into_iter().collect();
    }

    /// Whether a variable referenced inside `span` is missing (a value
    /// built from it would be checked in vain).
    pub fn misses_env_within(&self, span: &Range<usize>) -> bool {
        self.env_sources
            .iter()
            .any(|(s, _, missing)| *missing && span.start <= s.start && s.end <= span.end)
    }

    /// Records an error at the start of `span`.
    pub fn error(&mut self, span: Range<usize>, problem: impl Into<Problem>) {
        let mut problem = problem.into();
        if let Some((_, name, missing)) = self.env_sources.iter().find(|(s, _, _)| *s == span) {
            if *missing {
                return;
            }
            let variable = format!("environment variable `{name}`");
            let message = problem.to_string();
            if !message.contains(&variable) {
                problem = Problem::Invalid(format!("{message} (the value of {variable})"));
            }
        }
        let position = Some(self.position(span.start));
        self.found.push(Diagnostic {
            file: self.file.clone(),
            position,
            problem,
        });
    }

    /// Records a TOML (syntax or deserialization) error.
    pub fn toml(&mut self, error: &toml::de::Error, syntax: bool) {
        let message = error.message().to_owned();
        let problem = if syntax {
            Problem::Syntax(message)
        } else {
            Problem::Schema(message)
        };
        self.error(error.span().unwrap_or(0..0), problem);
    }

    pub fn has_errors(&self) -> bool {
        !self.found.is_empty()
    }

    /// The errors in file order (stable for errors at the same place).
    pub fn finish(mut self) -> Diagnostics {
        self.found.sort_by_key(|d| d.position);
        Diagnostics(self.found)
    }
}

/// A diagnostic about the file as a whole.
pub(crate) fn whole_file(file: &Path, problem: Problem) -> Diagnostics {
    Diagnostics(vec![Diagnostic {
        file: file.to_owned(),
        position: None,
        problem,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let report = Report::new(Path::new("f"), "ab\nçd = 1\n\nx");
        assert_eq!(report.position(0), Position { line: 1, column: 1 });
        assert_eq!(report.position(3), Position { line: 2, column: 1 });
        // `ç` is two bytes, one column.
        assert_eq!(report.position(5), Position { line: 2, column: 2 });
        assert_eq!(report.position(12), Position { line: 4, column: 1 });
        assert_eq!(report.position(99), Position { line: 4, column: 2 });
    }
}
