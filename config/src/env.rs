//! Free-form values (plugin `config` tables, Kafka properties, secrets)
//! kept with their positions. `{ env = "NAME" }` references in them were
//! replaced by the variable's text before they got here (`env_refs`).

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

/// Converts a value to JSON. Problems are reported to `report`; `None` if any.
pub(crate) fn to_json(
    value: &Spanned<ConfigValue>,
    report: &mut Report<'_>,
) -> Option<serde_json::Value> {
    use serde_json::Value as J;
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
            let items: Vec<_> = items.iter().map(|v| to_json(v, report)).collect();
            J::Array(items.into_iter().collect::<Option<_>>()?)
        }
        ConfigValue::Table(entries) => {
            let entries: Vec<_> = entries
                .iter()
                .map(|(k, v)| to_json(v, report).map(|v| (k.clone(), v)))
                .collect();
            J::Object(entries.into_iter().collect::<Option<_>>()?)
        }
    })
}

/// Converts a scalar to the string form librdkafka takes.
pub(crate) fn to_property(value: &Spanned<ConfigValue>, report: &mut Report<'_>) -> Option<String> {
    let scalar = |v: &ConfigValue| match v {
        ConfigValue::String(s) => Some(s.clone()),
        ConfigValue::Integer(i) => Some(i.to_string()),
        ConfigValue::Float(f) => Some(f.to_string()),
        ConfigValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    let expected = "a Kafka property must be a string, number or boolean";
    resolved(value, (scalar, expected), report)
}

/// A string value of the key `key`: a secret or a name, never a number or
/// a table.
pub(crate) fn to_text(
    value: &Spanned<ConfigValue>,
    key: &str,
    report: &mut Report<'_>,
) -> Option<String> {
    let string = |v: &ConfigValue| match v {
        ConfigValue::String(s) => Some(s.clone()),
        _ => None,
    };
    let expected = format!("`{key}` must be a string");
    resolved(value, (string, &expected), report)
}

/// `value` as text: what `convert` makes of it; reported (`expected`, not
/// what it is) when it makes nothing.
fn resolved(
    value: &Spanned<ConfigValue>,
    (convert, expected): (impl Fn(&ConfigValue) -> Option<String>, &str),
    report: &mut Report<'_>,
) -> Option<String> {
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

    fn convert(text: &str) -> (Option<serde_json::Value>, String) {
        let value =
            Spanned::<ConfigValue>::deserialize(toml::de::ValueDeserializer::parse(text).unwrap())
                .unwrap();
        let mut report = Report::new(Path::new("f"), text);
        let json = to_json(&value, &mut report);
        (json, report.finish().to_string())
    }

    #[test]
    fn values_become_json() {
        let (json, errors) =
            convert(r#"{ b = [1, "x"], c = { other = 1 }, d = 1979-05-27T07:32:00Z, e = 1.5 }"#);
        assert_eq!(errors, "");
        let expected = serde_json::json!({
            "b": [1, "x"],
            "c": { "other": 1 },
            "d": "1979-05-27T07:32:00Z",
            "e": 1.5,
        });
        assert_eq!(json, Some(expected));
    }

    #[test]
    fn every_non_json_number_is_reported() {
        let (json, errors) = convert(r#"{ a = nan, b = [inf] }"#);
        assert_eq!(json, None);
        assert_eq!(
            errors,
            "f:1:7: NaN cannot be passed to a plugin (JSON has no NaN or infinity)\n\
             f:1:17: inf cannot be passed to a plugin (JSON has no NaN or infinity)"
        );
    }
}
