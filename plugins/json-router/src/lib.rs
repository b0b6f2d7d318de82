//! `json-router`: routes each record to the channel(s) named inside it, by a
//! field of its JSON payload or by one of its headers.
//!
//! Config: exactly one of `pointer` and `header`, plus optional settings.
//!
//! - `pointer = "/user/room"`: an RFC 6901 JSON pointer into the payload
//!   (`""` is the whole payload). A string, number or boolean there names one
//!   channel (`42` becomes `"42"`, `true` becomes `"true"`); an array of them
//!   names several, each delivered once. Only the payload is read.
//! - `header = "channel"`: the record header (name matched exactly) whose
//!   UTF-8 value names the channel. Only that header is read, never the
//!   payload.
//! - `prefix = "rooms."`: put before every channel found (default none).
//! - `on_missing = "drop"` (default) or `"fallback"`: what happens to a
//!   record whose channel cannot be found: dropped (counted as unrouted by
//!   the host) or sent to the `fallback` channel.
//! - `fallback = "unrouted"`: the channel for such records, used as it is
//!   (no `prefix`). Setting it implies `on_missing = "fallback"`.
//!
//! A record has no usable channel when the payload is not JSON, the pointer
//! does not resolve, the value there is null, an object, an empty array or an
//! array holding anything but strings, numbers and booleans, the header is
//! absent or not UTF-8, a name is empty (even with a prefix), a resulting
//! channel is not valid (longer than 255 bytes, control characters), or
//! there would be more than 1024 channels. Such a record never fails the batch: `on_missing`
//! decides.

use serde::Deserialize;
use serde_json::Value;
use sluice_sdk::{Config, Record, Route, Router, json};

use sluice_sdk::channel::{MAX_LEN as MAX_CHANNEL_LEN, MAX_PER_RECORD as MAX_CHANNELS};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    pointer: Option<String>,
    header: Option<String>,
    #[serde(default)]
    prefix: String,
    on_missing: Option<OnMissing>,
    fallback: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum OnMissing {
    Drop,
    Fallback,
}

enum Source {
    Pointer(String),
    Header(String),
}

struct JsonRouter {
    source: Source,
    prefix: String,
    fallback: Option<String>,
}

impl Router for JsonRouter {
    fn new(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        let source = match (settings.pointer, settings.header) {
            (Some(pointer), None) => Source::Pointer(check_pointer(pointer)?),
            (None, Some(header)) if header.is_empty() => {
                return Err("header must not be empty".into());
            }
            (None, Some(header)) => Source::Header(header),
            (Some(_), Some(_)) => {
                return Err("set only one of `pointer` and `header`, not both".into());
            }
            (None, None) => {
                return Err(
                    "set one of `pointer` (a JSON pointer into the payload, e.g. \"/user/room\") \
                     or `header` (a record header name)"
                        .into(),
                );
            }
        };
        if let Some(c) = settings.prefix.chars().find(|c| c.is_control()) {
            return Err(format!(
                "prefix {:?} contains control character {c:?}",
                settings.prefix
            ));
        }
        if settings.prefix.len() >= MAX_CHANNEL_LEN {
            return Err(format!(
                "prefix is {} bytes: channel names are at most {MAX_CHANNEL_LEN}",
                settings.prefix.len()
            ));
        }
        let fallback = match (settings.on_missing, settings.fallback) {
            (None | Some(OnMissing::Drop), None) => None,
            (Some(OnMissing::Drop), Some(_)) => {
                return Err(
                    "`fallback` is set but `on_missing = \"drop\"`: remove one of them".into(),
                );
            }
            (Some(OnMissing::Fallback), None) => {
                return Err("`on_missing = \"fallback\"` needs a `fallback` channel name".into());
            }
            (None | Some(OnMissing::Fallback), Some(channel)) => {
                sluice_sdk::channel::validate(&channel).map_err(|e| format!("fallback: {e}"))?;
                Some(channel)
            }
        };
        Ok(JsonRouter {
            source,
            prefix: settings.prefix,
            fallback,
        })
    }

    fn route_record(&mut self, record: Record<'_>) -> Route {
        let names = match &self.source {
            Source::Header(name) => record
                .header(name)
                .and_then(|v| String::from_utf8(v).ok())
                .map(|v| vec![v]),
            Source::Pointer(pointer) => names_at(&record.payload(), pointer),
        };
        match names.and_then(|names| self.channels(names)) {
            Some(channels) => Route::to(channels),
            None => match &self.fallback {
                Some(fallback) => Route::to([fallback.clone()]),
                None => Route::drop(),
            },
        }
    }
}

impl JsonRouter {
    /// Prefixes and deduplicates the names; `None` if any is not a valid
    /// channel or there are too many.
    fn channels(&self, names: Vec<String>) -> Option<Vec<String>> {
        if names.len() > MAX_CHANNELS {
            return None;
        }
        let mut channels: Vec<String> = Vec::with_capacity(names.len());
        for name in names {
            if name.is_empty() {
                return None;
            }
            let channel = if self.prefix.is_empty() {
                name
            } else {
                format!("{}{name}", self.prefix)
            };
            sluice_sdk::channel::validate(&channel).ok()?;
            if !channels.contains(&channel) {
                channels.push(channel);
            }
        }
        Some(channels)
    }
}

/// The channel names at `pointer` in a JSON payload: one for a scalar,
/// several for a non-empty array of scalars, `None` otherwise.
fn names_at(payload: &[u8], pointer: &str) -> Option<Vec<String>> {
    let document = json::parse(payload).ok()?;
    match document.pointer(pointer)? {
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => items.iter().map(json::scalar_to_string).collect(),
        scalar => json::scalar_to_string(scalar).map(|name| vec![name]),
    }
}

/// Checks an RFC 6901 pointer: empty, or `/`-separated tokens in which `~`
/// only appears as `~0` or `~1`.
fn check_pointer(pointer: String) -> Result<String, String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "pointer {pointer:?} must start with \"/\" (an RFC 6901 JSON pointer, e.g. \"/user/room\")"
        ));
    }
    let mut rest = pointer.as_str();
    while let Some(at) = rest.find('~') {
        rest = &rest[at + 1..];
        if !(rest.starts_with('0') || rest.starts_with('1')) {
            return Err(format!(
                "pointer {pointer:?} has a \"~\" that is not \"~0\" or \"~1\" (RFC 6901 escapes)"
            ));
        }
    }
    Ok(pointer)
}

sluice_sdk::export_router!(JsonRouter);
