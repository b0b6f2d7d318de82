//! Expected against actual, field by field. Tables match on the fields the
//! expectation lists (an outcome may have more); lists match item by item
//! and in length; a `json` field matches the JSON inside the text next to
//! it (`json` against `text`, `value_json` against `value`), so a reply
//! with a timestamp can be checked on the fields that matter.

use std::fmt;

use serde_json::Value;

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Where, e.g. `actions[0].reply.json.type` (`.` for the whole outcome).
    pub path: String,
    /// The expected value, as JSON.
    pub expected: String,
    /// The actual value, as JSON, or `nothing` when it is absent.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.path, self.expected, self.actual
        )
    }
}

/// Every field of `expected` that `actual` does not match, in order.
pub fn compare(expected: &Value, actual: &Value) -> Vec<Mismatch> {
    let mut found = Vec::new();
    walk(expected, Some(actual), &mut String::new(), &mut found);
    found
}

fn walk(expected: &Value, actual: Option<&Value>, path: &mut String, found: &mut Vec<Mismatch>) {
    match (expected, actual) {
        (Value::Object(want), Some(Value::Object(have))) => {
            for (key, value) in want {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match (have.get(key), json_source(key, have)) {
                    (Some(actual), _) => walk(value, Some(actual), path, found),
                    (None, Some(Ok(parsed))) => walk(value, Some(&parsed), path, found),
                    (None, Some(Err(text))) => found.push(Mismatch {
                        path: path.clone(),
                        expected: value.to_string(),
                        actual: format!("{text} (not JSON)"),
                    }),
                    (None, None) => walk(value, None, path, found),
                }
                path.truncate(len);
            }
        }
        (Value::Array(want), Some(Value::Array(have))) if want.len() == have.len() => {
            for (i, (want, have)) in want.iter().zip(have).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(want, Some(have), path, found);
                path.truncate(len);
            }
        }
        (Value::Array(want), Some(Value::Array(have))) => found.push(Mismatch {
            path: shown(path),
            expected: format!("{} item(s): {expected}", want.len()),
            actual: format!("{} item(s): {}", have.len(), Value::Array(have.clone())),
        }),
        (want, Some(have)) if same_scalar(want, have) => {}
        (want, have) => found.push(Mismatch {
            path: shown(path),
            expected: want.to_string(),
            actual: have.map_or_else(|| "nothing".to_owned(), Value::to_string),
        }),
    }
}

/// For an expected `json` or `X_json` key the outcome lacks: the text it
/// stands for (`text` or `X`), parsed, or the text when it is not JSON.
fn json_source(key: &str, have: &serde_json::Map<String, Value>) -> Option<Result<Value, String>> {
    let source = match key {
        "json" => "text",
        _ => key.strip_suffix("_json")?,
    };
    let text = have.get(source)?.as_str()?;
    Some(serde_json::from_str(text).map_err(|_| Value::String(text.to_owned()).to_string()))
}

/// Numbers compare by value (`401` and `401.0` are equal); anything else
/// exactly.
fn same_scalar(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Number(a), Value::Number(b)) => a == b || a.as_f64() == b.as_f64(),
        _ => want == have,
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        ".".into()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(expected: Value, actual: Value) -> Vec<String> {
        compare(&expected, &actual)
            .into_iter()
            .map(|m| m.to_string())
            .collect()
    }

    #[test]
    fn tables_match_on_the_fields_they_list() {
        let actual = json!({"decision": "allow", "principal": "testuser", "status": 101});
        assert!(compare(&json!({"principal": "testuser"}), &actual).is_empty());
        assert_eq!(
            paths(json!({"principal": "other", "status": 401}), actual),
            [
                r#"principal: expected "other", got "testuser""#,
                "status: expected 401, got 101"
            ]
        );
    }

    #[test]
    fn a_missing_field_is_reported_as_nothing() {
        assert_eq!(
            paths(json!({"error": "trap"}), json!({"channels": ["a"]})),
            [r#"error: expected "trap", got nothing"#]
        );
    }

    #[test]
    fn lists_match_in_length_and_item_by_item() {
        let actual = json!({"channels": ["a", "b"]});
        assert!(compare(&json!({"channels": ["a", "b"]}), &actual).is_empty());
        assert_eq!(
            paths(json!({"channels": ["b", "a"]}), actual.clone()),
            [
                r#"channels[0]: expected "b", got "a""#,
                r#"channels[1]: expected "a", got "b""#
            ]
        );
        assert_eq!(
            paths(json!({"channels": ["a"]}), actual),
            [r#"channels: expected 1 item(s): ["a"], got 2 item(s): ["a","b"]"#]
        );
    }

    #[test]
    fn json_fields_match_the_json_inside_the_text() {
        let actual = json!({"actions": [{"reply": {"text": "{\"type\":\"pong\",\"ts\":5}"}}]});
        let want = json!({"actions": [{"reply": {"json": {"type": "pong"}}}]});
        assert!(compare(&want, &actual).is_empty());
        let want = json!({"actions": [{"reply": {"json": {"type": "ping"}}}]});
        assert_eq!(
            paths(want, actual),
            [r#"actions[0].reply.json.type: expected "ping", got "pong""#]
        );
        assert!(
            compare(
                &json!({"value_json": {"a": 1}}),
                &json!({"value": "{\"a\":1}"})
            )
            .is_empty()
        );
        assert_eq!(
            paths(json!({"value_json": {"a": 1}}), json!({"value": "hello"})),
            [r#"value_json: expected {"a":1}, got "hello" (not JSON)"#]
        );
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(compare(&json!({"n": 1.0}), &json!({"n": 1})).is_empty());
        assert!(!compare(&json!({"n": "1"}), &json!({"n": 1})).is_empty());
    }
}
