//! `key-router`: a record with key `K` goes to channel `K` (seed 000: the
//! key names the WebSocket path `/K`).
//!
//! Config (all optional):
//! - `template = "orders.{key}"`: the channel is the template with `{key}`
//!   replaced by the key. Without a template the channel is the key itself,
//!   which the host reads directly (the plugin copies nothing).
//! - `all_channel = "*"`: a channel that receives every record as well,
//!   including records without a key.
//!
//! A record without a key goes to `all_channel` only; a key that is not
//! UTF-8 is left to the host, which treats the record as poison.

use serde::Deserialize;
use sluice_sdk::{Config, Record, Route, Router};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Settings {
    template: Option<String>,
    all_channel: Option<String>,
}

struct KeyRouter {
    /// The template split at `{key}`: prefix and suffix.
    affixes: Option<(String, String)>,
    all_channel: Option<String>,
}

impl Router for KeyRouter {
    fn new(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        let affixes = match settings.template {
            None => None,
            Some(t) => {
                let (prefix, suffix) = t
                    .split_once("{key}")
                    .ok_or_else(|| format!("template {t:?} has no {{key}} placeholder"))?;
                if suffix.contains("{key}") {
                    return Err(format!("template {t:?} has more than one {{key}}"));
                }
                Some((prefix.to_owned(), suffix.to_owned()))
            }
        };
        if settings.all_channel.as_deref() == Some("") {
            return Err("all_channel must not be empty".into());
        }
        Ok(KeyRouter {
            affixes,
            all_channel: settings.all_channel,
        })
    }

    fn route_record(&mut self, record: Record<'_>) -> Route {
        let mut route = match &self.affixes {
            // The host reads the key itself: nothing crosses the boundary.
            None => Route::to_key(),
            Some((prefix, suffix)) => match record.key().map(String::from_utf8) {
                Some(Ok(key)) => Route::to([format!("{prefix}{key}{suffix}")]),
                // Not UTF-8: the host sees the key and applies its poison policy.
                Some(Err(_)) => Route::to_key(),
                None => Route::drop(),
            },
        };
        if let Some(all) = &self.all_channel {
            route.channels.push(all.clone());
        }
        route
    }
}

sluice_sdk::export_router!(KeyRouter);
