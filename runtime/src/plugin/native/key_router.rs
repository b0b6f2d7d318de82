//! `native:key-router`: the `key-router` plugin (plugins/key-router) in
//! Rust. A record with key `K` goes to channel `K`, or to `template` with
//! `{key}` replaced; `all_channel` receives every record as well. Same
//! config, same errors, same routes.

use serde::Deserialize;

use crate::plugin::Route;
use crate::record::Record;

/// Its `config` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
    template: Option<String>,
    all_channel: Option<String>,
}

/// A configured key router.
#[derive(Debug)]
pub struct KeyRouter {
    /// The template split at `{key}`: prefix and suffix.
    affixes: Option<(String, String)>,
    all_channel: Option<String>,
}

impl KeyRouter {
    pub(super) fn new(settings: &Settings) -> Result<Self, String> {
        let affixes = match &settings.template {
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
        Ok(Self {
            affixes,
            all_channel: settings.all_channel.clone(),
        })
    }

    /// The record's route. Without a template the host reads the key itself
    /// (`key_channel`); a key that is not UTF-8 is left to the host, which
    /// treats the record as poison; a record without a key goes to
    /// `all_channel` only.
    pub fn route(&self, record: &Record) -> Route {
        let key_route = || Route {
            key_channel: true,
            channels: Vec::new(),
        };
        let mut route = match &self.affixes {
            None => key_route(),
            Some((prefix, suffix)) => match record.key.as_deref().map(std::str::from_utf8) {
                Some(Ok(key)) => Route {
                    key_channel: false,
                    channels: vec![format!("{prefix}{key}{suffix}")],
                },
                Some(Err(_)) => key_route(),
                None => Route {
                    key_channel: false,
                    channels: Vec::new(),
                },
            },
        };
        if let Some(all) = &self.all_channel {
            route.channels.push(all.clone());
        }
        route
    }
}
