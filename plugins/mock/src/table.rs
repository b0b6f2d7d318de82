//! Reading the config by hand rather than with serde derives, so that every
//! error names where it is (`rules[2].match: must be a table`): serde_json's
//! own errors do not carry the path, and the operator sees the message as is.

use serde_json::{Map, Value};

use crate::placeholder::Scope;
use crate::template::Template;

/// A table of the config, with its path for error messages.
pub struct Table<'a> {
    path: String,
    fields: &'a Map<String, Value>,
}

impl<'a> Table<'a> {
    /// `value` as a table found at `path` (empty for the whole config).
    pub fn of(value: &'a Value, path: &str) -> Result<Self, String> {
        match value {
            Value::Object(fields) => Ok(Table {
                path: path.to_owned(),
                fields,
            }),
            other => Err(format!(
                "{}: must be a table (got {})",
                if path.is_empty() { "config" } else { path },
                describe(other)
            )),
        }
    }

    /// Refuses any key not in `allowed` (typos would otherwise be ignored).
    pub fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.fields.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(key) => Err(format!(
                "{}unknown key `{key}` (expected {})",
                self.prefix(),
                list(allowed)
            )),
            None => Ok(()),
        }
    }

    /// The keys present, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.fields.keys().map(String::as_str)
    }

    /// The path of `key` in this table: `rules[0].match`.
    pub fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.fields.get(key)
    }

    pub fn required(&self, key: &str) -> Result<&'a Value, String> {
        self.get(key).ok_or_else(|| self.missing(key))
    }

    /// The error for a missing `key`.
    pub fn missing(&self, key: &str) -> String {
        format!("{}`{key}` is missing", self.prefix())
    }

    /// A non-empty string.
    pub fn string(&self, key: &str) -> Result<&'a str, String> {
        match self.required(key)? {
            Value::String(s) if !s.is_empty() => Ok(s),
            Value::String(_) => Err(format!("{}: must not be empty", self.path(key))),
            other => Err(format!(
                "{}: must be a string (got {})",
                self.path(key),
                describe(other)
            )),
        }
    }

    /// A whole number in `min..=max`, if present.
    pub fn uint(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{}: must be a whole number from {min} to {max} (got {value})",
                self.path(key)
            )),
        }
    }

    /// An array, if present.
    pub fn array(&self, key: &str) -> Result<Option<&'a [Value]>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(format!(
                "{}: must be an array (got {})",
                self.path(key),
                describe(other)
            )),
        }
    }

    /// A compiled template, if present.
    pub fn template(&self, key: &str, scope: Scope) -> Result<Option<Template>, String> {
        self.get(key)
            .map(|value| Template::compile(value, &self.path(key), scope))
            .transpose()
    }

    /// A compiled template that must be there.
    pub fn required_template(&self, key: &str, scope: Scope) -> Result<Template, String> {
        Template::compile(self.required(key)?, &self.path(key), scope)
    }

    /// `"rules[0]: "`, or nothing at the top level.
    fn prefix(&self) -> String {
        if self.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.path)
        }
    }
}

/// `a, b or c`, each in backticks.
pub fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// What kind of JSON value this is, for error messages.
pub fn describe(value: &Value) -> &'static str {
    sluice_sdk::json::kind_of(value, "a table")
}
