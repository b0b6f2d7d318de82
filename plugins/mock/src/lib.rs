//! `mock`: a WebSocket mock server as a handler plugin. It answers clients
//! the way seed 003's mock server does: echo, fixed replies, pattern rules
//! with templates, JSON-RPC 2.0, chat rooms, periodic and delayed messages.
//! It is configured by the pipeline's `[pipelines.handler.config]` table.
//!
//! `kind` (required) says what happens to client messages: `"echo"`,
//! `"static"`, `"pattern"`, `"jsonrpc"` or `"rooms"`. With every kind:
//!
//! - `on_connect = <response>`: sent to each connection when it opens.
//! - `on_close = <response>`: sent to a client that closes the connection,
//!   before the host answers its Close frame (best effort: a client that
//!   stops reading never sees it).
//! - `scheduled = [{ interval_ms = 1000, message = <response> }]`: sent to
//!   every open connection every `interval_ms` (see "Scheduled messages").
//!
//! A *response* is any value: a string is sent as it is, as a text frame
//! (`'{"type": "ack"}'` is sent verbatim); a table, array, number or boolean
//! is sent as JSON text. Strings anywhere inside a response may hold
//! templates (see "Templates"). Unknown keys, keys of another kind and
//! malformed templates stop the pipeline at load time with a message that
//! names the place, e.g. `rules[2].match: must be a table of fields to
//! match (got a string)`.
//!
//! Client messages are read as JSON whatever their frame type (text or
//! binary).
//!
//! ## echo
//!
//! Every message is sent back unchanged: text as text, binary as binary.
//!
//! ```toml
//! [[pipelines]]
//! name = "echo"
//! path = "/echo"
//!
//! [pipelines.handler]
//! plugin = "mock"
//! config = { kind = "echo" }
//! ```
//!
//! ## static
//!
//! Fixed responses: `on_connect`, `on_message` (to every client message)
//! and `on_close`, each optional.
//!
//! ```toml
//! [[pipelines]]
//! name = "status"
//! path = "/status"
//!
//! [pipelines.handler]
//! plugin = "mock"
//!
//! [pipelines.handler.config]
//! kind = "static"
//! on_connect = '{"type": "connected", "server": "sluice"}'
//! on_message = { type = "ack", received = true, at = "{{now}}" }
//! on_close = { type = "goodbye" }
//! ```
//!
//! ## pattern
//!
//! `rules`: the first rule whose `match` fits the message answers with its
//! `response`, and, with `then`, with a second response `delay_ms`
//! milliseconds later. A message that no rule fits gets `no_match`
//! (optional; by default nothing).
//!
//! `match` fits a JSON object that has every field of the table with an
//! equal value: `"*"` stands for any value (the field must be there), a
//! table fits an object having (at least) its fields, arrays fit element by
//! element, numbers by value (`1` fits `1.0`). A message that is not a JSON
//! object fits no rule.
//!
//! ```toml
//! [[pipelines]]
//! name = "api"
//! path = "/api"
//!
//! [pipelines.handler]
//! plugin = "mock"
//!
//! [pipelines.handler.config]
//! kind = "pattern"
//! no_match = { type = "error", error = "unknown request", got = "{{message}}" }
//!
//! [[pipelines.handler.config.rules]]
//! match = { type = "ping" }
//! response = { type = "pong", timestamp = "{{now}}" }
//!
//! [[pipelines.handler.config.rules]]
//! match = { type = "subscribe", channel = "*" }
//! response = { type = "subscribed", channel = "{{message.channel}}", id = "{{uuid}}" }
//!
//! [[pipelines.handler.config.rules]]
//! match = { type = "request", user = { role = "admin" } }
//! response = { type = "processing", id = "{{message.id}}" }
//! then = { delay_ms = 2000, response = { type = "complete", id = "{{message.id}}", at = "{{now}}" } }
//! ```
//!
//! ### Per-connection state
//!
//! Each connection of a pattern mock has a state, a JSON object that starts
//! as `state.initial` (default `{}`) and lives until it closes (seed 003's
//! "State Management"). A rule may also require `when`, a condition on the
//! state and the message, and change the state before its response renders:
//!
//! - `set = { field = <template> }`: the field becomes the value;
//! - `append = { field = <template> }`: the value is pushed onto the field's
//!   array (a field that is not an array becomes a one-item array);
//! - `incr = { field = 1 }`: the number is added to the field (a missing
//!   field counts as 0).
//!
//! Their values render against the state before the rule; responses
//! (`response`, `then`, `no_match`) against the state after it, as
//! `{{state.field}}`. `when` is `&&`, `||`, `!`, parentheses and
//! comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`) over `state.<path>`,
//! `message.<path>` and literals (numbers, quoted strings, `true`, `false`,
//! `null`); truth is JavaScript's (`false`, `null`, `0`, `""` and a missing
//! field are false). The first rule whose `match` fits and whose `when`
//! holds answers; the others are not tried.
//!
//! ```toml
//! [[pipelines]]
//! name = "stateful"
//! path = "/stateful"
//!
//! [pipelines.handler]
//! plugin = "mock"
//!
//! [pipelines.handler.config]
//! kind = "pattern"
//! state = { initial = { authenticated = false, subscriptions = [] } }
//! no_match = { type = "error", error = "not allowed", authenticated = "{{state.authenticated}}" }
//!
//! [[pipelines.handler.config.rules]]
//! match = { type = "auth", token = "valid-token" }
//! set = { authenticated = true }
//! response = { type = "auth_success" }
//!
//! [[pipelines.handler.config.rules]]
//! match = { type = "auth" }
//! response = { type = "auth_failed" }
//!
//! [[pipelines.handler.config.rules]]
//! match = { type = "subscribe", channel = "*" }
//! when = "state.authenticated"
//! append = { subscriptions = "{{message.channel}}" }
//! incr = { subscribed = 1 }
//! response = { type = "subscribed", channel = "{{message.channel}}", subscriptions = "{{state.subscriptions}}" }
//! ```
//!
//! ## jsonrpc
//!
//! A JSON-RPC 2.0 server. Each of `methods` has a `name` and exactly one of
//! `result` (any value) and `error` (`code`, an integer; `message`, a
//! string; optional `data`). Requests get `{"jsonrpc": "2.0", "result": ...,
//! "id": ...}` or the error; `{{params...}}` reads the request's params. As
//! the specification says: an unknown method is `-32601 Method not found`;
//! a message that is not JSON is `-32700 Parse error` with id null; anything
//! but a request object (`"jsonrpc": "2.0"`, a string `method`, params an
//! array or object if present, id a string, number or null if present) is
//! `-32600 Invalid Request` (with its id if that could be read, else null);
//! a notification (no `id`) is never answered, not even with an error; a
//! batch (array) gets an array of the responses, or nothing when it held only
//! notifications; an empty batch is one `-32600`.
//!
//! ```toml
//! [[pipelines]]
//! name = "jsonrpc"
//! path = "/jsonrpc"
//!
//! [pipelines.handler]
//! plugin = "mock"
//!
//! [pipelines.handler.config]
//! kind = "jsonrpc"
//! methods = [
//!     { name = "user.get", result = { id = "{{params.id}}", name = "John Doe", email = "john@example.com" } },
//!     { name = "user.create", result = { id = "{{uuid}}", created = true } },
//!     { name = "user.delete", error = { code = -32000, message = "Permission denied" } },
//! ]
//! ```
//!
//! ## rooms
//!
//! Chat rooms; no settings beyond the common ones. Clients send:
//!
//! - `{"action": "join", "room": "A"}`: joins the room (the channel
//!   `room:A`) and tells everyone in it, the joiner included,
//!   `{"type": "user_joined", "user": <connection id>, "room": "A"}`;
//! - `{"action": "leave", "room": "A"}`: tells everyone in the room, the
//!   leaver included, `{"type": "user_left", ...}` and leaves it;
//! - `{"action": "message", "room": "A", "text": "hi"}`: sends everyone in
//!   the room `{"type": "chat", "from": <connection id>, "room": "A",
//!   "text": "hi", "timestamp": <ms since the epoch>}`; only from a member.
//!
//! Anything else (unknown action, a room not joined, joining twice, a room
//! name that makes no valid channel, more than 100 rooms) is answered with
//! `{"type": "error", "error": "<reason>"}` to the sender only. A closing
//! connection's rooms are told `user_left`.
//!
//! ```toml
//! [[pipelines]]
//! name = "chat"
//! path = "/chat"
//!
//! [pipelines.handler]
//! plugin = "mock"
//! config = { kind = "rooms", on_connect = { type = "welcome", you = "{{connection.id}}" } }
//! ```
//!
//! ## Scheduled messages
//!
//! Each of `scheduled` is rendered once per firing and sent to every open
//! connection. Time is the host's tick (`tick_ms` of the pipeline, 1000 by
//! default): the first tick starts the schedule, which first fires one
//! interval later, then at the first tick at or after each further
//! interval. With ticks slower than the interval it fires once per tick
//! (missed firings are dropped, not sent in a burst).
//!
//! ```toml
//! [[pipelines]]
//! name = "ticker"
//! path = "/ticker"
//! tick_ms = 100
//!
//! [pipelines.handler]
//! plugin = "mock"
//!
//! [pipelines.handler.config]
//! kind = "static"
//!
//! [[pipelines.handler.config.scheduled]]
//! interval_ms = 1000
//! message = { type = "price_update", symbol = "BTC", price = "{{random_float 40000 50000}}", timestamp = "{{now}}" }
//!
//! [[pipelines.handler.config.scheduled]]
//! interval_ms = 5000
//! message = { type = "stats", volume = "{{random_int 1000000 5000000}}", connections = "{{connection_count}}" }
//! ```
//!
//! ## Templates
//!
//! | placeholder | value |
//! |---|---|
//! | `{{now}}` | the time as RFC 3339 UTC with milliseconds, `"2024-05-01T12:30:00.123Z"` |
//! | `{{now_ms}}` | the time in milliseconds since the Unix epoch |
//! | `{{uuid}}` | a random version 4 UUID |
//! | `{{message.a.b}}` | a field of the client's message; a path step that is a number also indexes arrays (`message.items.0`); `{{message}}` is the whole message (its text, as a string, if it is not JSON) |
//! | `{{params.x}}` | a field of a JSON-RPC request's params (`{{params.0}}` for positional ones; `{{params}}` for all) |
//! | `{{random_int A B}}` | a random integer from A to B, both included |
//! | `{{random_float A B}}` | a random number from A up to B |
//! | `{{state.a.b}}` | a field of the connection's state (kind = "pattern": rules and `no_match`); `{{state}}` is all of it |
//! | `{{connection.id}}` | the connection's id, a number |
//! | `{{connection_count}}` | in scheduled messages, the connections they go to; elsewhere, the pipeline's open connections (on every node of a cluster), asked of the host |
//!
//! A string that is exactly one placeholder becomes its value, type
//! included (`id = "{{message.id}}"` keeps a number a number). Inside longer
//! text a value is written out: strings without quotes, other values as
//! JSON. A missing field is null on its own and nothing inside text.
//!
//! The time is the host's clock when the event arrived; in scheduled
//! messages, the tick's time; in a `then` response, the time it is due
//! (event time plus `delay_ms`), though it is rendered at the event.
//!
//! Checked at load time: an unknown placeholder, `{{` without `}}`, bad
//! random bounds, and placeholders that make no sense where they are:
//! `{{message...}}` where there is no client message (`on_connect`,
//! `on_close`, `scheduled`), `{{params...}}` outside JSON-RPC methods,
//! `{{state...}}` outside pattern rules, and
//! `{{connection.id}}` in scheduled messages (they go to every connection).
//! There is no escape: `{{` always starts a placeholder. Keys are never
//! templates.

mod condition;
mod config;
mod jsonrpc;
mod matching;
mod placeholder;
mod rooms;
mod schedule;
mod state;
mod table;
mod template;
mod time;

use std::collections::HashMap;

use serde_json::{Map, Value};
use sluice_sdk::{Action, Config, Connection, Handler, Message};

use config::{Kind, Settings};
use template::{Ctx, Template};

struct Mock {
    settings: Settings,
    /// Open connections, each with what it is here.
    connections: HashMap<u64, Conn>,
}

/// What the mock keeps per connection.
#[derive(Default)]
struct Conn {
    /// The rooms it is in (kind = "rooms"), in the order joined.
    rooms: Vec<String>,
    /// Its state (kind = "pattern").
    state: Map<String, Value>,
}

impl Handler for Mock {
    fn new(config: &Config) -> Result<Self, String> {
        Ok(Mock {
            settings: Settings::parse(config.value())?,
            connections: HashMap::new(),
        })
    }

    fn on_open(&mut self, conn: Connection) -> Vec<Action> {
        self.conn(conn.id);
        self.reply(self.settings.on_connect.as_ref(), conn.id)
    }

    fn on_message(&mut self, conn_id: u64, msg: Message) -> Vec<Action> {
        let ctx = |message| Ctx {
            now_ms: sluice_sdk::log::now_ms(),
            message,
            params: None,
            state: None,
            conn_id: Some(conn_id),
            connection_count: None,
        };
        match &self.settings.kind {
            Kind::Echo => vec![Action::Reply(msg)],
            Kind::Static { on_message } => {
                let message = read(&msg);
                on_message
                    .iter()
                    .map(|t| Action::Reply(t.message(&ctx(message.as_ref()))))
                    .collect()
            }
            Kind::Pattern(rules) => {
                let message = read(&msg);
                let conn = self
                    .connections
                    .entry(conn_id)
                    .or_insert_with(|| Conn::starting(&self.settings));
                rules.answer(message.as_ref(), &mut conn.state, &ctx(message.as_ref()))
            }
            Kind::JsonRpc(methods) => methods
                .answer(&msg.payload, &ctx(None))
                .map(|response| Action::Reply(Message::json(&response)))
                .into_iter()
                .collect(),
            Kind::Rooms => {
                let joined = &mut self.connections.entry(conn_id).or_default().rooms;
                let now_ms = sluice_sdk::log::now_ms();
                rooms::on_message(conn_id, joined, read(&msg).as_ref(), now_ms)
            }
        }
    }

    fn on_close(&mut self, conn_id: u64, _code: u16, _reason: String) -> Vec<Action> {
        let mut actions = self.reply(self.settings.on_close.as_ref(), conn_id);
        if let Some(conn) = self.connections.remove(&conn_id) {
            actions.extend(rooms::on_close(conn_id, &conn.rooms));
        }
        actions
    }

    fn on_tick(&mut self, now_ms: u64, connections: Vec<u64>) -> Vec<Action> {
        schedule::on_tick(&mut self.settings.scheduled, now_ms, &connections)
    }
}

impl Mock {
    /// The connection's record, made when it opens (or, for a connection
    /// unknown here because the instance was rebuilt after a failed call,
    /// adopted on its next message rather than ignored).
    fn conn(&mut self, id: u64) -> &mut Conn {
        self.connections
            .entry(id)
            .or_insert_with(|| Conn::starting(&self.settings))
    }

    /// A reply with `template` rendered for `conn_id`, if there is one.
    fn reply(&self, template: Option<&Template>, conn_id: u64) -> Vec<Action> {
        let Some(template) = template else {
            return Vec::new();
        };
        let ctx = Ctx {
            now_ms: sluice_sdk::log::now_ms(),
            message: None,
            params: None,
            state: None,
            conn_id: Some(conn_id),
            connection_count: None,
        };
        vec![Action::Reply(template.message(&ctx))]
    }
}

impl Conn {
    fn starting(settings: &Settings) -> Self {
        let state = match &settings.kind {
            Kind::Pattern(rules) => rules.initial.clone(),
            _ => Map::new(),
        };
        Conn {
            rooms: Vec::new(),
            state,
        }
    }
}

/// A client message for templates and matching: its JSON, else its text as
/// a string, else (binary, not UTF-8) nothing.
fn read(msg: &Message) -> Option<Value> {
    serde_json::from_slice(&msg.payload)
        .ok()
        .or_else(|| msg.as_str().map(|text| Value::String(text.to_owned())))
}

sluice_sdk::export_handler!(Mock);
