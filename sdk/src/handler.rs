//! The `handler` role: a session's whole life on an interactive endpoint.

use crate::{Action, Config, Connection, Message};

/// A handler plugin. Implement it and call
/// [`export_handler!`](crate::export_handler).
///
/// One instance serves many connections of its pipeline (the host runs a
/// few instances and sends every event of a connection to the same one, in
/// order), so keep per-connection state in a map keyed by connection id and
/// drop it in [`on_close`](Handler::on_close). If a call fails (a panic, the
/// deadline, the memory cap, an invalid action), the host closes that
/// connection with 1011 and rebuilds the instance: the state it kept for
/// its other connections starts empty, so treat an unknown id gracefully.
pub trait Handler: Sized + 'static {
    /// Builds the handler from its configuration.
    fn new(config: &Config) -> Result<Self, String>;

    /// A connection opened.
    fn on_open(&mut self, conn: Connection) -> Vec<Action> {
        let _ = conn;
        Vec::new()
    }

    /// A connection sent a message.
    fn on_message(&mut self, conn_id: u64, msg: Message) -> Vec<Action>;

    /// A connection closed. When the peer started the close, replies
    /// returned here are still sent, before the server's close frame.
    fn on_close(&mut self, conn_id: u64, code: u16, reason: String) -> Vec<Action> {
        let _ = (conn_id, code, reason);
        Vec::new()
    }

    /// The pipeline's timer fired (every `tick_ms`); `connections` are the
    /// open ones this instance serves. Only `Send`, `Broadcast` and
    /// `Publish` make sense here; the others are an invalid return.
    fn on_tick(&mut self, now_ms: u64, connections: Vec<u64>) -> Vec<Action> {
        let _ = (now_ms, connections);
        Vec::new()
    }
}

/// Exports a [`Handler`] implementation as the component's `handler` world.
#[macro_export]
macro_rules! export_handler {
    ($plugin:ty) => {
        const _: () = {
            struct SluiceExport;
            impl $crate::bindings::handler::exports::sluice::plugin::session::Guest for SluiceExport {
                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    let config = $crate::Config::load()?;
                    $crate::__state::install(<$plugin as $crate::Handler>::new(&config)?);
                    Ok(())
                }
                fn on_open(conn: $crate::Connection) -> ::std::vec::Vec<$crate::Action> {
                    $crate::__state::with(|p: &mut $plugin| $crate::Handler::on_open(p, conn))
                }
                fn on_message(conn_id: u64, msg: $crate::Message) -> ::std::vec::Vec<$crate::Action> {
                    $crate::__state::with(|p: &mut $plugin| $crate::Handler::on_message(p, conn_id, msg))
                }
                fn on_close(conn_id: u64, code: u16, reason: ::std::string::String) -> ::std::vec::Vec<$crate::Action> {
                    $crate::__state::with(|p: &mut $plugin| $crate::Handler::on_close(p, conn_id, code, reason))
                }
                fn on_tick(now_ms: u64, connections: ::std::vec::Vec<u64>) -> ::std::vec::Vec<$crate::Action> {
                    $crate::__state::with(|p: &mut $plugin| $crate::Handler::on_tick(p, now_ms, connections))
                }
            }
            $crate::bindings::handler::__export_handler_world!(SluiceExport with_types_in $crate::bindings::handler);
        };
    };
}

/// Convenience constructors for [`Action`].
impl Action {
    /// Reply to the connection the event came from.
    pub fn reply(msg: Message) -> Self {
        Action::Reply(msg)
    }

    /// Reply with a JSON text message.
    pub fn reply_json(value: &serde_json::Value) -> Self {
        Action::Reply(Message::json(value))
    }
}
