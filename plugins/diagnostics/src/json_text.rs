//! JSON text written key by key, in the order the seed's transcripts show.
//!
//! Why not `serde_json::Value`: without serde_json's `preserve_order`
//! feature its objects sort their keys, so `{"type":"echo",...}` would come
//! out as `{"client_id":...,"type":...}`. Enabling the feature for this
//! crate would not stay in this crate: cargo unifies features across the
//! plugin workspace, so every other plugin (and the SDK's
//! `Message::json`) would change behaviour and pull in `indexmap`. Writing
//! the few fixed shapes by hand keeps the order and costs nothing.

use serde_json::Value;
use sluice_sdk::Message;

/// A JSON object under construction; keys appear in the order added.
pub struct Object {
    text: String,
}

impl Object {
    pub fn new() -> Self {
        Object {
            text: String::from("{"),
        }
    }

    /// Adds `key` with `json`, which must already be JSON text.
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        self.text.push_str(&quote(key));
        self.text.push(':');
        self.text.push_str(json);
        self
    }

    pub fn str(self, key: &str, value: &str) -> Self {
        self.raw(key, &quote(value))
    }

    pub fn int(self, key: &str, value: u64) -> Self {
        self.raw(key, &value.to_string())
    }

    /// A float; serde_json always writes a fraction or exponent (`30.0`).
    pub fn float(self, key: &str, value: f64) -> Self {
        self.raw(key, &Value::from(value).to_string())
    }

    pub fn number(self, key: &str, value: &serde_json::Number) -> Self {
        self.raw(key, &value.to_string())
    }

    pub fn object(self, key: &str, value: Object) -> Self {
        self.raw(key, &value.finish())
    }

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }

    /// The object as a text frame.
    pub fn message(self) -> Message {
        Message::text(self.finish())
    }
}

/// `text` as a JSON string literal.
pub fn quote(text: &str) -> String {
    Value::from(text).to_string()
}

/// A client's text as JSON: itself (compacted, keys in the client's order)
/// when it is JSON, otherwise the text as a JSON string.
pub fn embed(text: &str) -> String {
    // Parsing into a Value is only the validity check (it catches what a
    // plain syntax scan would not, such as lone surrogate escapes); the
    // client's own text is what gets embedded, so its key order survives.
    match serde_json::from_str::<Value>(text) {
        Ok(_) => compact(text),
        Err(_) => quote(text),
    }
}

/// Valid JSON text without the whitespace between tokens.
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// Milliseconds since the epoch as the seed's float seconds
/// (`1699564800.123`).
pub fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// `value` rounded to `decimals` places.
pub fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
