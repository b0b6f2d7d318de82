//! The plugin's own configuration: the `config` table of its entry in
//! `pipeline.toml`, handed over by the host as JSON.

use serde::de::DeserializeOwned;

use crate::bindings::common::sluice::plugin::host;

/// The plugin's `config` table, parsed from the JSON the host passes in.
///
/// Values written in the pipeline file as `{ env = "NAME" }` arrive already
/// replaced by the environment variable's value: plugins have no access to
/// the environment themselves.
#[derive(Debug, Clone, Default)]
pub struct Config {
    value: serde_json::Value,
}

impl Config {
    /// Asks the host for this plugin's configuration.
    pub fn load() -> Result<Self, String> {
        Self::from_json(&host::config())
    }

    /// Parses a configuration from JSON text (useful in unit tests).
    pub fn from_json(json: &str) -> Result<Self, String> {
        let value = serde_json::from_str(json).map_err(|e| format!("config is not JSON: {e}"))?;
        Ok(Self { value })
    }

    /// The raw JSON value (an object; empty when the pipeline gave none).
    pub fn value(&self) -> &serde_json::Value {
        &self.value
    }

    /// Deserializes the whole table into `T`, with an error naming the field
    /// that did not fit. Use `#[serde(deny_unknown_fields)]` on `T` to catch
    /// typos in the pipeline file.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.value.clone()).map_err(|e| format!("invalid config: {e}"))
    }
}
