//! Who is connected to a handler's pipeline, asked of the host (handlers
//! only). With `[cluster]` the answers cover every node of the cluster,
//! else this process; every instance of the plugin gets the same answers,
//! so use these rather than counting `on_open`s in one instance.
//!
//! ```no_run
//! use sluice_sdk::{Action, Message, presence};
//!
//! fn who_is_here(room: &str) -> Action {
//!     let n = presence::channel_count(room);
//!     Action::Reply(Message::text(format!("{n} in {room}, {} in all", presence::connection_count())))
//! }
//! ```

use crate::bindings::handler::sluice::plugin::presence as host;

pub use host::Member;

/// Open connections of this pipeline.
pub fn connection_count() -> u32 {
    host::connection_count()
}

/// Connections of this pipeline subscribed to `channel`.
pub fn channel_count(channel: &str) -> u32 {
    host::channel_count(channel)
}

/// At most `limit` of the connections subscribed to `channel`, by id.
pub fn channel_members(channel: &str, limit: u32) -> Vec<Member> {
    host::channel_members(channel, limit)
}
