//! Helpers for JSON payloads.

use serde_json::Value;

/// Parses a payload as JSON.
pub fn parse(payload: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(payload).map_err(|e| format!("payload is not JSON: {e}"))
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
