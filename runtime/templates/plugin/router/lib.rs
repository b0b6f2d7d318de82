//! `{{name}}`: a Sluice router. Each Kafka record goes to the channel named
//! by its key, after an optional `prefix` from the pipeline file; a record
//! without a key (or with one that is not UTF-8) goes nowhere.

use serde::Deserialize;
use sluice_sdk::{Config, Record, Route, Router};

/// This plugin's `config` table in `pipeline.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Put in front of every channel name, e.g. `"orders."`.
    #[serde(default)]
    prefix: String,
}

struct ChannelRouter {
    prefix: String,
}

impl ChannelRouter {
    /// The routing decision. It takes plain bytes, not a `Record` (records
    /// live in the host), so the unit tests below can call it.
    fn decide(&self, key: Option<&[u8]>, _payload: &[u8]) -> Route {
        match key.map(std::str::from_utf8) {
            Some(Ok(key)) if !key.is_empty() => Route::to([format!("{}{key}", self.prefix)]),
            _ => Route::drop(),
        }
    }
}

impl Router for ChannelRouter {
    fn new(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        Ok(ChannelRouter {
            prefix: settings.prefix,
        })
    }

    fn route_record(&mut self, record: Record<'_>) -> Route {
        self.decide(record.key().as_deref(), &record.payload())
    }
}

sluice_sdk::export_router!(ChannelRouter);

#[cfg(test)]
mod tests {
    use super::*;

    fn router(config: &str) -> ChannelRouter {
        ChannelRouter::new(&Config::from_json(config).unwrap()).unwrap()
    }

    #[test]
    fn the_key_names_the_channel_after_the_prefix() {
        let route = router(r#"{"prefix": "orders."}"#).decide(Some(b"eu"), b"{}");
        assert_eq!(route.channels, ["orders.eu"]);
    }

    #[test]
    fn a_record_without_a_key_goes_nowhere() {
        let route = router("{}").decide(None, b"{}");
        assert!(route.channels.is_empty() && !route.key_channel);
    }

    #[test]
    fn a_typo_in_the_config_is_refused() {
        let config = Config::from_json(r#"{"prefx": "orders."}"#).unwrap();
        assert!(ChannelRouter::new(&config).is_err());
    }
}
