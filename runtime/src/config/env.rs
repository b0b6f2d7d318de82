//! Free-form values (plugin `config` tables, Kafka properties) kept with
//! their positions, and `{ env = "NAME" }` references resolved against the
//! environment.
//!
//! Any table of exactly the form `{ env = "NAME" }` stands for the value of
//! the environment variable `NAME`, so secrets stay out of the file:
//! `users = { alice = { env = "ALICE_PASSWORD" } }`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_spanned::Spanned;

use super::diagnostics::{Problem, Report};

/// Looks up an environment variable, as [`std::env::var`] does.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Result<String, std::env::VarError>;

/// The key toml uses to hand a datetime to serde as a one-entry map.
const TOML_DATETIME_FIELD: &str = "$__toml_private_datetime";

/// A TOML value with the position of each of its parts.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigValue {
    /// `"text"`
    String(String),
    /// `42`
    Integer(i64),
    /// `1.5`
    Float(f64),
    /// `true`
    Boolean(bool),
    /// `1979-05-27T07:32:00Z` (kept as its text)
    Datetime(String),
    /// `[1, 2]`
    Array(Vec<Spanned<ConfigValue>>),
    /// `{ a = 1 }`
    Table(BTreeMap<String, Spanned<ConfigValue>>),
}

impl ConfigValue {
    /// The variable name if this is an `{ env = "NAME" }` table.
    pub fn env_reference(&self) -> Option<&str> {
        match self {
            ConfigValue::Table(t) if t.len() == 1 => match t.get("env").map(Spanned::get_ref) {
                Some(ConfigValue::String(name)) => Some(name),
                _ => None,
            },
            _ => None,
        }
    }

    /// The TOML type's name with its article, for messages (`a string`).
    pub fn type_name(&self) -> &'static str {
        match self {
            ConfigValue::String(_) => "a string",
            ConfigValue::Integer(_) => "an integer",
            ConfigValue::Float(_) => "a float",
            ConfigValue::Boolean(_) => "a boolean",
            ConfigValue::Datetime(_) => "a datetime",
            ConfigValue::Array(_) => "an array",
            ConfigValue::Table(_) => "a table",
        }
    }
}

/// Resolves an `{ env = "NAME" }` reference, reporting a missing variable
/// at the table's position.
fn lookup(
    value: &Spanned<ConfigValue>,
    name: &str,
    env: EnvLookup<'_>,
    report: &mut Report<'_>,
) -> Option<String> {
    match env(name) {
        Ok(v) => Some(v),
        Err(std::env::VarError::NotPresent) => {
            report.error(value.span(), Problem::EnvMissing(name.to_owned()));
            None
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            report.error(value.span(), Problem::EnvNotUnicode(name.to_owned()));
            None
        }
    }
}

/// Converts a value to JSON, replacing every `{ env = "NAME" }` table with
/// the variable's value. Problems are reported to `report`; `None` if any.
pub(crate) fn to_json(
    value: &Spanned<ConfigValue>,
    env: EnvLookup<'_>,
    report: &mut Report<'_>,
) -> Option<serde_json::Value> {
    use serde_json::Value as J;
    if let Some(name) = value.get_ref().env_reference() {
        return lookup(value, name, env, report).map(J::String);
    }
    Some(match value.get_ref() {
        ConfigValue::String(s) | ConfigValue::Datetime(s) => J::String(s.clone()),
        ConfigValue::Integer(i) => J::from(*i),
        ConfigValue::Boolean(b) => J::Bool(*b),
        ConfigValue::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None => {
                report.error(
                    value.span(),
                    Problem::Invalid(format!(
                        "{f} cannot be passed to a plugin (JSON has no NaN or infinity)"
                    )),
                );
                return None;
            }
        },
        ConfigValue::Array(items) => {
            // Convert every element so each problem is reported.
            let items: Vec<_> = items.iter().map(|v| to_json(v, env, report)).collect();
            J::Array(items.into_iter().collect::<Option<_>>()?)
        }
        ConfigValue::Table(entries) => {
            let entries: Vec<_> = entries
                .iter()
                .map(|(k, v)| to_json(v, env, report).map(|v| (k.clone(), v)))
                .collect();
            J::Object(entries.into_iter().collect::<Option<_>>()?)
        }
    })
}

/// Converts a scalar (or an `{ env = "NAME" }` table) to the string form
/// librdkafka takes.
pub(crate) fn to_property(
    value: &Spanned<ConfigValue>,
    env: EnvLookup<'_>,
    report: &mut Report<'_>,
) -> Option<String> {
    let scalar = |v: &ConfigValue| match v {
        ConfigValue::String(s) => Some(s.clone()),
        ConfigValue::Integer(i) => Some(i.to_string()),
        ConfigValue::Float(f) => Some(f.to_string()),
        ConfigValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    let expected = "a Kafka property must be a string, number, boolean or { env = \"NAME\" }";
    resolved(value, (scalar, expected), env, report)
}

/// A string value (or an `{ env = "NAME" }` table) of the key `key`: a
/// secret or a name, never a number or a table.
pub(crate) fn to_text(
    value: &Spanned<ConfigValue>,
    key: &str,
    env: EnvLookup<'_>,
    report: &mut Report<'_>,
) -> Option<String> {
    let string = |v: &ConfigValue| match v {
        ConfigValue::String(s) => Some(s.clone()),
        _ => None,
    };
    let expected = format!("`{key}` must be a string or {{ env = \"NAME\" }}");
    resolved(value, (string, &expected), env, report)
}

/// `value` as text: the variable it references, or what `convert` makes of
/// it; reported (`expected`, not what it is) when it makes nothing.
fn resolved(
    value: &Spanned<ConfigValue>,
    (convert, expected): (impl Fn(&ConfigValue) -> Option<String>, &str),
    env: EnvLookup<'_>,
    report: &mut Report<'_>,
) -> Option<String> {
    if let Some(name) = value.get_ref().env_reference() {
        return lookup(value, name, env, report);
    }
    let text = convert(value.get_ref());
    if text.is_none() {
        let message = format!("{expected}, not {}", value.get_ref().type_name());
        report.error(value.span(), Problem::Schema(message));
    }
    text
}

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = ConfigValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Boolean(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigValue, E> {
        i64::try_from(v)
            .map(ConfigValue::Integer)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<ConfigValue, E> {
        Ok(ConfigValue::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<ConfigValue, E> {
        Ok(ConfigValue::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<ConfigValue, E> {
        Ok(ConfigValue::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ConfigValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(ConfigValue::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ConfigValue, A::Error> {
        let mut entries = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == TOML_DATETIME_FIELD {
                return Ok(ConfigValue::Datetime(map.next_value()?));
            }
            entries.insert(key, map.next_value()?);
        }
        Ok(ConfigValue::Table(entries))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env(name: &str) -> Result<String, std::env::VarError> {
        match name {
            "SECRET" => Ok("s3cret".into()),
            _ => Err(std::env::VarError::NotPresent),
        }
    }

    fn convert(text: &str) -> (Option<serde_json::Value>, String) {
        let value =
            Spanned::<ConfigValue>::deserialize(toml::de::ValueDeserializer::parse(text).unwrap())
                .unwrap();
        let mut report = Report::new(Path::new("f"), text);
        let json = to_json(&value, &env, &mut report);
        (json, report.finish().to_string())
    }

    #[test]
    fn env_tables_are_replaced_anywhere() {
        let (json, errors) = convert(
            r#"{ a = { env = "SECRET" }, b = [1, { env = "SECRET" }], c = { env = "SECRET", other = 1 }, d = 1979-05-27T07:32:00Z, e = 1.5 }"#,
        );
        assert_eq!(errors, "");
        let expected = serde_json::json!({
            "a": "s3cret",
            "b": [1, "s3cret"],
            "c": { "env": "SECRET", "other": 1 },
            "d": "1979-05-27T07:32:00Z",
            "e": 1.5,
        });
        assert_eq!(json, Some(expected));
    }

    #[test]
    fn every_missing_variable_is_reported_at_its_table() {
        let (json, errors) =
            convert(r#"{ a = { env = "NOPE_A" }, b = [{ env = "NOPE_B" }], c = inf }"#);
        assert_eq!(json, None);
        assert_eq!(
            errors,
            "f:1:7: environment variable `NOPE_A` is not set\n\
             f:1:32: environment variable `NOPE_B` is not set\n\
             f:1:57: inf cannot be passed to a plugin (JSON has no NaN or infinity)"
        );
    }
}
