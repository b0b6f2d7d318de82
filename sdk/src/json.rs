//! Helpers for JSON payloads.

use serde_json::Value;

/// Parses a payload as JSON.
pub fn parse(payload: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))
}

/// Parses a payload as JSON, refusing an object that names a key twice, at
/// any depth. serde_json keeps the last of duplicates, so
/// `{"messageType":"SHOUT","messageType":"USER"}` would pass a check that
/// another reader of the same bytes (one keeping the first) disagrees with.
pub fn parse_strict(payload: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(payload).map(|strict| strict.0)
}

/// A JSON value deserialized with duplicate keys refused.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?}"
                )));
            }
            let Strict(value) = map.next_value()?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(value)) = seq.next_element()? {
            items.push(value);
        }
        Ok(Value::Array(items))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

/// The value at an RFC 6901 JSON pointer (`/user/id`) in a payload, if the
/// payload is JSON and the pointer resolves.
pub fn pointer(payload: &[u8], pointer: &str) -> Option<Value> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    value.pointer(pointer).cloned()
}

/// A JSON scalar as a channel-like string: strings as they are, numbers and
/// booleans in their JSON form; `None` for null, arrays and objects.
pub fn scalar_to_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What kind of value this is, for error messages: `"a string"`, `"null"`,
/// ...; an object is called `object` (`"a table"` in a config, `"an
/// object"` in a message).
pub fn kind_of(value: &Value, object: &'static str) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => object,
    }
}

/// Serializes a value into payload bytes.
pub fn to_payload(value: &Value) -> Vec<u8> {
    // Serializing a `Value` cannot fail: every key is a string.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_reads_nested_fields() {
        let payload = br#"{"user":{"id":42,"room":"a"}}"#;
        assert_eq!(pointer(payload, "/user/room"), Some(Value::from("a")));
        assert_eq!(pointer(payload, "/user/missing"), None);
        assert_eq!(pointer(b"not json", "/x"), None);
        assert_eq!(scalar_to_string(&Value::from(42)).as_deref(), Some("42"));
        assert_eq!(scalar_to_string(&Value::Null), None);
    }
}
