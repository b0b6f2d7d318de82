//! `native:key-router`: the `key-router` plugin (plugins/key-router)
//! without the Wasm boundary. Both run `sluice_rules::key_router`; this
//! file only turns its routing into the host's route type.

use sluice_rules::key_router::{KeyRouter as Rules, Settings};

use crate::plugin::Route;
use crate::record::Record;

/// A configured key router.
#[derive(Debug)]
pub struct KeyRouter(Rules);

impl KeyRouter {
    pub(super) fn new(settings: &Settings) -> Result<Self, String> {
        Rules::new(settings).map(Self)
    }

    /// The record's route (see `sluice_rules::key_router::KeyRouter::route`).
    pub fn route(&self, record: &Record) -> Route {
        let routing = self.0.route(|| record.key.as_deref());
        Route {
            key_channel: routing.key_channel,
            channels: routing.channels,
        }
    }
}
