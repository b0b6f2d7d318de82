//! Built-in plugins written in Rust: the same logic as their WebAssembly
//! twins in `plugins/`, for pipelines that do not need Wasm and as the
//! baseline of the plugin-overhead benchmark. Selected in pipeline.toml as
//! `plugin = "native:<name>"`; they take the same `config` table, and run
//! behind the same [`super::PluginInstance`] calls (pools, checks of what
//! comes back, metrics), so a pipeline behaves the same either way.

mod basic_auth;
mod key_router;

use std::sync::Arc;

use super::bindings::auth::{Decision, Handshake};
use super::bindings::routing::Route;
use crate::config::Native;
use crate::record::Record;

pub use basic_auth::BasicAuth;
pub use key_router::KeyRouter;

/// A live built-in plugin, configured.
pub(crate) enum NativeInstance {
    KeyRouter(KeyRouter),
    BasicAuth(BasicAuth),
}

impl NativeInstance {
    /// Reads its config (a JSON object); `Err` says what is wrong with it.
    pub(crate) fn new(native: Native, config_json: &str) -> Result<Self, String> {
        Ok(match native {
            Native::KeyRouter => Self::KeyRouter(KeyRouter::new(&parse(config_json)?)?),
            Native::BasicAuth => Self::BasicAuth(BasicAuth::new(parse(config_json)?)?),
        })
    }

    /// One route per record (a router only).
    pub(crate) fn route_batch(&self, records: &Arc<[Record]>) -> Option<Vec<Route>> {
        match self {
            Self::KeyRouter(router) => Some(records.iter().map(|r| router.route(r)).collect()),
            Self::BasicAuth(_) => None,
        }
    }

    /// Judges a handshake (an authenticator only).
    pub(crate) fn authenticate(&self, request: &Handshake) -> Option<Decision> {
        match self {
            Self::BasicAuth(auth) => Some(auth.authenticate(request)),
            Self::KeyRouter(_) => None,
        }
    }
}

/// The config table into a plugin's settings, with the same wording as the
/// SDK's `Config::parse`.
fn parse<T: serde::de::DeserializeOwned>(config_json: &str) -> Result<T, String> {
    // Through a `Value`, as the SDK does, so errors carry no text position.
    let value: serde_json::Value =
        serde_json::from_str(config_json).map_err(|e| format!("invalid config: {e}"))?;
    serde_json::from_value(value).map_err(|e| format!("invalid config: {e}"))
}

#[cfg(test)]
mod tests;
