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
//!
//! The logic is `sluice_rules::key_router`, which the host's
//! `native:key-router` runs too; this crate only puts it behind the router
//! world.

use sluice_rules::key_router::KeyRouter as Rules;
use sluice_sdk::{Config, Record, Route, Router};

struct KeyRouter(Rules);

impl Router for KeyRouter {
    fn new(config: &Config) -> Result<Self, String> {
        Rules::new(&config.parse()?).map(KeyRouter)
    }

    fn route_record(&mut self, record: Record<'_>) -> Route {
        // The key is copied in only when a template needs it.
        let routing = self.0.route(|| record.key());
        Route {
            key_channel: routing.key_channel,
            channels: routing.channels,
        }
    }
}

sluice_sdk::export_router!(KeyRouter);
