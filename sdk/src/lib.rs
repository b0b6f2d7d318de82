//! # sluice-sdk: write Sluice plugins in Rust
//!
//! A Sluice plugin is a WebAssembly component with one role. Implement the
//! role's trait, write one export line, and build for `wasm32-wasip2`:
//!
//! | role | trait | export line | decides |
//! |---|---|---|---|
//! | router | [`Router`] | [`export_router!`] | which channels a Kafka record goes to |
//! | authenticator | [`Authenticator`] | [`export_authenticator!`] | who may open a WebSocket |
//! | transformer | [`Transformer`] | [`export_transformer!`] | how messages change on the way |
//! | handler | [`Handler`] | [`export_handler!`] | what an interactive endpoint does |
//!
//! Every role's `new` gets the plugin's `config` table from `pipeline.toml`
//! (see [`Config`]); an `Err` there stops the pipeline with your message.
//! A panic is a trap: the host reports it with the plugin's name, rebuilds
//! the instance, and applies the pipeline's failure policy to that call.
//!
//! The crate's `Cargo.toml` needs `crate-type = ["cdylib"]`; build with
//! `cargo build --release --target wasm32-wasip2`.
//!
//! `sluice plugin new NAME --role ROLE` writes such a crate with a working
//! example and unit tests, and `sluice plugin build` builds it and checks
//! its world; `docs/first-plugin.md` in the Sluice repository walks from
//! there to a plugin routing records in a running pipeline.
//!
//! ## Router
//!
//! ```no_run
//! use sluice_sdk::{Config, Record, Route, Router};
//!
//! /// Sends each record to the channel named by its key, and to `audit`.
//! struct KeyAndAudit;
//!
//! impl Router for KeyAndAudit {
//!     fn new(_config: &Config) -> Result<Self, String> {
//!         Ok(KeyAndAudit)
//!     }
//!
//!     fn route_record(&mut self, _record: Record<'_>) -> Route {
//!         Route { key_channel: true, channels: vec!["audit".into()] }
//!     }
//! }
//!
//! sluice_sdk::export_router!(KeyAndAudit);
//! # fn main() {}
//! ```
//!
//! ## Authenticator
//!
//! ```no_run
//! use sluice_sdk::{headers, Authenticator, Config, Decision, Handshake, Principal};
//!
//! #[derive(serde::Deserialize)]
//! struct Settings {
//!     user: String,
//!     password: String,
//! }
//!
//! /// Lets in one user, with HTTP Basic credentials.
//! struct OneUser(Settings);
//!
//! impl Authenticator for OneUser {
//!     fn new(config: &Config) -> Result<Self, String> {
//!         Ok(OneUser(config.parse()?))
//!     }
//!
//!     fn authenticate(&mut self, request: Handshake) -> Decision {
//!         let creds = request
//!             .header("authorization")
//!             .and_then(|v| headers::parse_basic_auth(v.as_bytes()));
//!         match creds {
//!             Some(c) if c.user == self.0.user && c.password == self.0.password => {
//!                 Decision::allow(Principal::new(c.user))
//!             }
//!             _ => Decision::unauthorized("Basic realm=\"sluice\"", "bad credentials"),
//!         }
//!     }
//! }
//!
//! sluice_sdk::export_authenticator!(OneUser);
//! # fn main() {}
//! ```
//!
//! ## Transformer
//!
//! ```no_run
//! use sluice_sdk::{json, Config, Context, Message, Outcome, Transformer};
//!
//! /// Rejects anything that is not a JSON object; wraps the rest.
//! struct Wrap;
//!
//! impl Transformer for Wrap {
//!     fn new(_config: &Config) -> Result<Self, String> {
//!         Ok(Wrap)
//!     }
//!
//!     fn transform(&mut self, msg: Message, ctx: Context) -> Outcome {
//!         match json::parse(&msg.payload) {
//!             Ok(value) if value.is_object() => Outcome::Replace(vec![Message::json(
//!                 &serde_json::json!({ "channel": ctx.channel, "data": value }),
//!             )]),
//!             Ok(_) => Outcome::Reject("expected a JSON object".into()),
//!             Err(e) => Outcome::Reject(e),
//!         }
//!     }
//! }
//!
//! sluice_sdk::export_transformer!(Wrap);
//! # fn main() {}
//! ```
//!
//! ## Handler
//!
//! ```no_run
//! use std::collections::HashMap;
//! use sluice_sdk::{Action, Config, Connection, Handler, Message};
//!
//! /// Echoes each message, numbered per connection.
//! #[derive(Default)]
//! struct CountingEcho {
//!     counts: HashMap<u64, u64>,
//! }
//!
//! impl Handler for CountingEcho {
//!     fn new(_config: &Config) -> Result<Self, String> {
//!         Ok(Self::default())
//!     }
//!
//!     fn on_open(&mut self, conn: Connection) -> Vec<Action> {
//!         self.counts.insert(conn.id, 0);
//!         vec![Action::reply(Message::text("welcome"))]
//!     }
//!
//!     fn on_message(&mut self, conn_id: u64, msg: Message) -> Vec<Action> {
//!         let n = self.counts.entry(conn_id).or_default();
//!         *n += 1;
//!         let text = format!("{n}: {}", msg.as_str().unwrap_or("<binary>"));
//!         vec![Action::reply(Message::text(text))]
//!     }
//!
//!     fn on_close(&mut self, conn_id: u64, _code: u16, _reason: String) -> Vec<Action> {
//!         self.counts.remove(&conn_id);
//!         Vec::new()
//!     }
//! }
//!
//! sluice_sdk::export_handler!(CountingEcho);
//! # fn main() {}
//! ```

pub mod bindings;
pub mod channel;
mod config;
pub mod headers;
pub mod json;
pub mod log;
pub mod presence;
pub mod random;

mod authenticator;
mod handler;
mod router;
mod transformer;

#[doc(hidden)]
pub mod __state {
    pub use crate::state::{install, with};
}
mod state;

pub use authenticator::Authenticator;
pub use config::Config;
pub use handler::Handler;
pub use router::{Record, Router};
pub use transformer::Transformer;

pub use bindings::authenticator::exports::sluice::plugin::auth::{Decision, Denial, Handshake};
pub use bindings::common::sluice::plugin::host::Level;
pub use bindings::common::sluice::plugin::types::{
    Connection, FrameKind, Header, Message, Principal, RecordBatch, RecordMeta,
};
pub use bindings::handler::exports::sluice::plugin::session::{Action, Publish};
pub use bindings::router::exports::sluice::plugin::routing::Route;
pub use bindings::transformer::exports::sluice::plugin::transform::{Context, Direction, Outcome};
pub use serde;
pub use serde_json;
