//! `envelope`: lets through only messages shaped like seed 002's envelope,
//! in either direction:
//!
//! ```json
//! {"messageType": "USER", "content": "hello", "timestamp": "2024-05-01T12:30:00Z"}
//! ```
//!
//! - `messageType`: a string, one of the allowed types;
//! - `content`: a string;
//! - `timestamp`: a string holding an RFC 3339 date-time (`T`/`Z` in either
//!   case, optional fractional seconds, `Z` or a `+hh:mm`/`-hh:mm` offset)
//!   that names a real calendar day and time.
//!
//! Other fields are allowed and left alone. A valid message passes on
//! untouched (nothing is copied back to the host). Anything else is
//! rejected with a reason naming the first problem, e.g.
//! `messageType must be one of USER, SYSTEM, ACK, ERROR (got "FOO")`,
//! `content is missing`, `timestamp must be a string (got a number)`,
//! `message must be a JSON object (got an array)`.
//!
//! Config (all optional):
//! - `allowed_types = ["USER", "SYSTEM", "ACK", "ERROR"]` (the default): the
//!   accepted `messageType` values, compared exactly.
//! - `require_timestamp = true` (the default): with `false`, a message
//!   without `timestamp` passes; one that has it must still be valid.

mod rfc3339;

use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_sdk::{Config, Context, Message, Outcome, Transformer};

/// Longest part of an offending value quoted in a reason, in characters.
const QUOTE_LIMIT: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_types")]
    allowed_types: Vec<String>,
    #[serde(default = "default_true")]
    require_timestamp: bool,
}

fn default_types() -> Vec<String> {
    ["USER", "SYSTEM", "ACK", "ERROR"]
        .map(String::from)
        .to_vec()
}

fn default_true() -> bool {
    true
}

struct Envelope {
    allowed_types: Vec<String>,
    require_timestamp: bool,
}

impl Transformer for Envelope {
    fn new(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.allowed_types.is_empty() {
            return Err("allowed_types is empty: no message could pass".into());
        }
        if settings.allowed_types.iter().any(String::is_empty) {
            return Err("allowed_types has an empty type".into());
        }
        Ok(Envelope {
            allowed_types: settings.allowed_types,
            require_timestamp: settings.require_timestamp,
        })
    }

    fn transform(&mut self, msg: Message, _ctx: Context) -> Outcome {
        match self.check(&msg.payload) {
            Ok(()) => Outcome::Keep,
            Err(reason) => Outcome::Reject(reason),
        }
    }
}

impl Envelope {
    fn check(&self, payload: &[u8]) -> Result<(), String> {
        // Duplicate keys refused: the bytes go on unchanged, and a consumer
        // that keeps the first `messageType` must see what was checked.
        let value = sluice_sdk::json::parse_strict(payload)
            .map_err(|e| format!("message is not JSON: {e}"))?;
        let Value::Object(fields) = value else {
            return Err(format!(
                "message must be a JSON object (got {})",
                kind(&value)
            ));
        };
        let message_type = string_field(&fields, "messageType")?
            .ok_or_else(|| "messageType is missing".to_owned())?;
        if !self.allowed_types.iter().any(|t| t == message_type) {
            return Err(format!(
                "messageType must be one of {} (got {})",
                self.allowed_types.join(", "),
                quote(message_type)
            ));
        }
        string_field(&fields, "content")?.ok_or_else(|| "content is missing".to_owned())?;
        match string_field(&fields, "timestamp")? {
            Some(timestamp) if !rfc3339::is_date_time(timestamp) => Err(format!(
                "timestamp must be an RFC 3339 date-time such as \"2024-05-01T12:30:00Z\" (got {})",
                quote(timestamp)
            )),
            Some(_) => Ok(()),
            None if self.require_timestamp => Err("timestamp is missing".into()),
            None => Ok(()),
        }
    }
}

/// The field `name` if present; an error if it is there but not a string.
fn string_field<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{name} must be a string (got {})", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    sluice_sdk::json::kind_of(value, "an object")
}

/// `text` quoted, cut to [`QUOTE_LIMIT`] characters so a reason stays short.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

sluice_sdk::export_transformer!(Envelope);
