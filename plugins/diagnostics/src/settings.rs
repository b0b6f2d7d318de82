//! The plugin's `config` table: which endpoint to serve and the values the
//! welcome messages report.

use serde::Deserialize;
use serde_json::{Number, Value};
use sluice_sdk::Config;

/// Which of the seed's three endpoints a pipeline serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// `/ws/echo`: welcome, then every message echoed with latency info.
    Echo,
    /// `/ws/health`: health status, heartbeats, `get_status`.
    Health,
    /// `/ws`: ping/pong, everything else echoed.
    Main,
}

impl Endpoint {
    /// The first part of the client ids it hands out.
    pub fn client_prefix(self) -> &'static str {
        match self {
            Endpoint::Echo => "echo_client",
            Endpoint::Health => "health_client",
            Endpoint::Main => "ws_client",
        }
    }
}

/// The table as written; checked by [`Settings::from_config`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    // Optional here only so that a missing endpoint gets our own message.
    endpoint: Option<Endpoint>,
    #[serde(default = "thirty")]
    ping_interval: Number,
    #[serde(default = "ten")]
    ping_timeout: Number,
    #[serde(default = "thirty")]
    expected_min_connection_duration: Number,
    environment: Option<Value>,
}

fn thirty() -> Number {
    Number::from(30)
}

fn ten() -> Number {
    Number::from(10)
}

/// The checked configuration.
pub struct Settings {
    pub endpoint: Endpoint,
    /// Seconds, as written (`30` stays `30`, `2.5` stays `2.5` in messages).
    pub ping_interval: Number,
    pub ping_timeout: Number,
    pub expected_min_connection_duration: Number,
    /// Heartbeat period in milliseconds (at least 1).
    pub interval_ms: u64,
    /// The `environment` table as JSON text.
    pub environment: String,
}

impl Settings {
    /// `{"ping_interval", "ping_timeout"}`: the config every greeting shows.
    pub fn ping_config(&self) -> crate::json_text::Object {
        crate::json_text::Object::new()
            .number("ping_interval", &self.ping_interval)
            .number("ping_timeout", &self.ping_timeout)
    }

    pub fn from_config(config: &Config) -> Result<Self, String> {
        let raw: Raw = config.parse()?;
        let endpoint = raw.endpoint.ok_or(
            "invalid config: `endpoint` is required: one of \"echo\", \"health\", \"main\"",
        )?;
        let interval = seconds("ping_interval", &raw.ping_interval)?;
        // A period under a millisecond would make every tick due.
        if interval < 0.001 {
            return Err(format!(
                "invalid config: ping_interval must be at least 0.001 seconds (got {})",
                raw.ping_interval
            ));
        }
        seconds("ping_timeout", &raw.ping_timeout)?;
        seconds(
            "expected_min_connection_duration",
            &raw.expected_min_connection_duration,
        )?;
        let environment = match raw.environment {
            None => "{}".to_owned(),
            Some(value @ Value::Object(_)) => value.to_string(),
            Some(other) => {
                return Err(format!(
                    "invalid config: environment must be a table (got {})",
                    kind(&other)
                ));
            }
        };
        Ok(Settings {
            endpoint,
            ping_interval: raw.ping_interval,
            ping_timeout: raw.ping_timeout,
            expected_min_connection_duration: raw.expected_min_connection_duration,
            // `as` saturates: an absurdly long period just never comes due.
            interval_ms: (interval * 1000.0).round() as u64,
            environment,
        })
    }
}

/// A duration in seconds that must not be negative.
fn seconds(name: &str, value: &Number) -> Result<f64, String> {
    match value.as_f64() {
        Some(secs) if secs >= 0.0 => Ok(secs),
        _ => Err(format!(
            "invalid config: {name} must be a number of seconds, 0 or more (got {value})"
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    sluice_sdk::json::kind_of(value, "a table")
}
