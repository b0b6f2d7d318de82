//! `{ env = "NAME" }` and `{ env = "NAME", default = ... }` wherever a
//! value stands, resolved before the schema sees the file, so every key
//! takes them (12-factor configuration) and errors keep their positions.
//!
//! A variable's value arrives as a string, and stays one where the key
//! takes text (names, addresses, plugin `config`, Kafka `properties`,
//! secrets). Where the key wants a number or a boolean, the schema refuses
//! the string; the text is then read as a TOML literal (`8080`, `1.5`,
//! `true`) and the entry is tried again. A text that is no such literal, or
//! a literal the key refuses, is an error at the reference that names the
//! variable but never prints its value (it may be a secret).

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::diagnostics::{Problem, Report};
use super::env::EnvLookup;

/// The keys of a reference table.
const ENV_KEY: &str = "env";
const DEFAULT_KEY: &str = "default";

/// What a reference stands for.
#[derive(Debug)]
enum Resolved {
    /// The variable's value.
    Value(String),
    /// The variable is not set: the table's `default`.
    Default,
    /// Not set and no default (already reported).
    Missing,
}

/// One `{ env = ... }` table of the file.
#[derive(Debug)]
struct EnvRef {
    /// The table's span.
    span: Range<usize>,
    name: String,
    resolved: Resolved,
}

/// Every reference of a file, resolved against an environment.
#[derive(Debug, Default)]
pub(crate) struct EnvRefs {
    refs: Vec<EnvRef>,
}

impl EnvRefs {
    /// Finds and resolves the references in `text`, reporting unset
    /// variables (without a default) and defaults that are not scalars.
    /// Finds nothing in a file with syntax errors (the parse reports those).
    pub fn resolve(text: &str, env: EnvLookup<'_>, report: &mut Report<'_>) -> Self {
        let (root, errors) = DeTable::parse_recoverable(text);
        let mut refs = Self::default();
        if errors.is_empty() {
            for (_, value) in root.get_ref() {
                refs.collect(value, env, report);
            }
        }
        report.env_sources(refs.refs.iter().map(|r| {
            let missing = matches!(r.resolved, Resolved::Missing);
            (r.span.clone(), r.name.clone(), missing)
        }));
        refs
    }

    fn collect(&mut self, value: &Spanned<DeValue<'_>>, env: EnvLookup<'_>, report: &mut Report) {
        match value.get_ref() {
            DeValue::Table(table) => match reference(table) {
                Some((name, default)) => {
                    let mut resolved = match env(name) {
                        Ok(text) => Resolved::Value(text),
                        Err(_) if default.is_some() => Resolved::Default,
                        Err(std::env::VarError::NotPresent) => {
                            report.error(value.span(), Problem::EnvMissing(name.to_owned()));
                            Resolved::Missing
                        }
                        Err(std::env::VarError::NotUnicode(_)) => {
                            report.error(value.span(), Problem::EnvNotUnicode(name.to_owned()));
                            Resolved::Missing
                        }
                    };
                    if let Some(default) = default
                        && (default.get_ref().is_table() || default.get_ref().is_array())
                    {
                        let message = format!(
                            "the `default` of environment variable `{name}` must be a string, number or boolean"
                        );
                        report.error(default.span(), Problem::Schema(message));
                        resolved = Resolved::Missing;
                    }
                    self.refs.push(EnvRef {
                        span: value.span(),
                        name: name.to_owned(),
                        resolved,
                    });
                }
                None => {
                    for (_, inner) in table {
                        self.collect(inner, env, report);
                    }
                }
            },
            DeValue::Array(items) => {
                for item in items {
                    self.collect(item, env, report);
                }
            }
            _ => {}
        }
    }

    fn at(&self, span: &Range<usize>) -> Option<&EnvRef> {
        self.refs.iter().find(|r| r.span == *span)
    }

    /// Replaces every reference in `value` with what it stands for: the
    /// variable's text, the default, or (when reported missing) an empty
    /// string whose errors [`Report`] leaves out.
    pub fn substitute<'i>(&'i self, value: &mut Spanned<DeValue<'i>>) {
        let span = value.span();
        let replacement = match value.get_mut() {
            DeValue::Table(table) => match (reference(table), self.at(&span)) {
                (Some(_), Some(found)) => Some(match &found.resolved {
                    Resolved::Value(text) => DeValue::String(Cow::Borrowed(text.as_str())),
                    Resolved::Default => table
                        .get(DEFAULT_KEY)
                        .map(|d| d.get_ref().clone())
                        .unwrap_or(DeValue::String(Cow::Borrowed(""))),
                    Resolved::Missing => DeValue::String(Cow::Borrowed("")),
                }),
                _ => {
                    for (_, inner) in table.iter_mut() {
                        self.substitute(inner);
                    }
                    None
                }
            },
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    self.substitute(item);
                }
                None
            }
            _ => None,
        };
        if let Some(replacement) = replacement {
            *value = Spanned::new(span, replacement);
        }
    }

    /// Deserializes a substituted value, reading a variable's text as a
    /// literal where its key refuses a string. An error not about a
    /// variable goes to `other`; one about a variable is reported here.
    pub fn deserialize<'i, T: Deserialize<'i>>(
        &'i self,
        mut value: Spanned<DeValue<'i>>,
        report: &mut Report<'_>,
        other: impl FnOnce(toml::de::Error, &mut Report<'_>),
    ) -> Option<T> {
        let mut literal: Vec<Range<usize>> = Vec::new();
        loop {
            let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(parsed) => return Some(parsed),
                Err(error) => error,
            };
            let found = error.span().and_then(|span| self.at(&span));
            let Some(found) = found else {
                other(error, report);
                return None;
            };
            let Resolved::Value(text) = &found.resolved else {
                // Missing (reported) or a default (its own type, its own error).
                if matches!(found.resolved, Resolved::Default) {
                    other(error, report);
                }
                return None;
            };
            if !literal.contains(&found.span)
                && let Some(parsed) = scalar_literal(text)
                && replace_at(&mut value, &found.span, parsed).is_none()
            {
                literal.push(found.span.clone());
                continue;
            }
            let message = error.message();
            // Serde quotes the refused string: keep it out of the message.
            let problem = match message.split_once(", expected ") {
                Some((refused, expected)) if refused.starts_with("invalid type: string") => {
                    format!("environment variable `{}` must be {expected}", found.name)
                }
                _ => format!("environment variable `{}`: {message}", found.name),
            };
            report.error(found.span.clone(), Problem::Schema(problem));
            return None;
        }
    }
}

/// `(name, default)` if `table` is `{ env = "NAME" }` or
/// `{ env = "NAME", default = ... }`.
fn reference<'t>(table: &'t DeTable<'_>) -> Option<(&'t str, Option<&'t Spanned<DeValue<'t>>>)> {
    let name = table.get(ENV_KEY)?.get_ref().as_str()?;
    match table.len() {
        1 => Some((name, None)),
        2 => table.get(DEFAULT_KEY).map(|d| (name, Some(d))),
        _ => None,
    }
}

/// `text` as a TOML integer, float or boolean, if it is one.
fn scalar_literal(text: &str) -> Option<DeValue<'_>> {
    let parsed = DeValue::parse(text.trim()).ok()?.into_inner();
    (parsed.is_integer() || parsed.is_float() || parsed.is_bool()).then_some(parsed)
}

/// Replaces the node at `span` inside `value`; gives `with` back if there
/// is none. (A table's own span may be its header only, so every branch
/// is searched.)
fn replace_at<'i>(
    value: &mut Spanned<DeValue<'i>>,
    span: &Range<usize>,
    with: DeValue<'i>,
) -> Option<DeValue<'i>> {
    if value.span() == *span {
        *value = Spanned::new(span.clone(), with);
        return None;
    }
    let mut with = Some(with);
    match value.get_mut() {
        DeValue::Table(table) => {
            for (_, inner) in table.iter_mut() {
                with = replace_at(inner, span, with?);
            }
        }
        DeValue::Array(items) => {
            for inner in items.iter_mut() {
                with = replace_at(inner, span, with?);
            }
        }
        _ => {}
    }
    with
}
